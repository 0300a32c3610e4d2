-- No territory reaches another's data (issue 11).
--
-- Reference data.  Communes (INSEE) and practitioners (RPPS) are national
-- records shared by every territory that uses them; what is a territory's own
-- is its membership (territory_commune, territory_practitioner) and what hangs
-- off it (its sites, organisations, slots, tokens).  A territory may create a
-- national record nobody has yet, change it while no other territory uses
-- it, and join one that exists by importing it with the values recorded;
-- once another territory uses a record, an import that would change it is
-- refused with SNT03 (protocol error other_territory) naming the field, so
-- that territory B can neither rename territory A's practitioner nor move
-- A's commune.  Joining gives nothing of A: every read and push of a
-- practitioner's bookings is filtered by the territory of the session too
-- (snp_booking_list by the slot's territory, snpd's bookings topic likewise).
--
-- Data protection.  The practitioner's free-text outcome note (which may
-- hold a name or a phone number) is shown to the practitioner booked only,
-- in their own booking list, and never to the requester, the coordinator or
-- in a push.  A cancelled booking shows no patient identity any more: its
-- practitioner no longer receives that patient.
--
-- Reads confined to a territory.  The requester's lists and the slip take
-- the caller's territory besides the organisation, so that no read relies on
-- an id alone.

-- Raises the error of a national record that another territory uses: the
-- field is its path in the request, as snp_field_error gives it.
CREATE FUNCTION snp_other_territory(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = 'SNT03', DETAIL = p_field;
END $$;

-- Whether a territory other than p_territory uses commune p_insee: it is one
-- of its communes, or one of its sites or organisations is there.
CREATE FUNCTION snp_commune_used_elsewhere(p_insee text, p_territory text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM territory_commune
                    WHERE insee = p_insee AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM site WHERE commune_insee = p_insee AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM organisation
                    WHERE commune_insee = p_insee AND territory_id <> p_territory)
$$;

-- Whether a territory other than p_territory uses practitioner p_rpps: the
-- practitioner practises there, or has slots or tokens there.
CREATE FUNCTION snp_practitioner_used_elsewhere(p_rpps text, p_territory text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM territory_practitioner
                    WHERE rpps = p_rpps AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM slot WHERE rpps = p_rpps AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM api_token WHERE rpps = p_rpps AND territory_id <> p_territory)
$$;

-- Refuses commune `item` (communes[idx] of an import by p_territory) when it
-- would change a commune another territory uses.  The row is locked until
-- the import commits, so that another territory joining it at the same
-- moment sees either the old values or the new ones, never a change it did
-- not agree to.  The first member that differs is named, in the order of
-- the protocol's type.
CREATE FUNCTION snp_import_check_commune(p_territory text, item jsonb, idx bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c     commune;
    field text;
BEGIN
    SELECT * INTO c FROM commune WHERE insee = item ->> 'insee' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    field := CASE
        WHEN c.name IS DISTINCT FROM item ->> 'name' THEN 'name'
        WHEN c.postal_code IS DISTINCT FROM coalesce(item ->> 'postal_code', c.postal_code)
            THEN 'postal_code'
        WHEN c.latitude IS DISTINCT FROM (item ->> 'latitude')::float8 THEN 'latitude'
        WHEN c.longitude IS DISTINCT FROM (item ->> 'longitude')::float8 THEN 'longitude'
    END;
    IF field IS NOT NULL AND snp_commune_used_elsewhere(c.insee, p_territory) THEN
        PERFORM snp_other_territory(format('communes[%s].%s', idx, field),
            format('commune %s is used by another territory: its %s cannot change (import it '
                   'with the values recorded, as territory.get shows them)', c.insee, field));
    END IF;
END $$;

-- The same for practitioner `item` (practitioners[idx]): their identity
-- (names) cannot change once another territory uses them.
CREATE FUNCTION snp_import_check_practitioner(p_territory text, item jsonb, idx bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p     practitioner;
    field text;
BEGIN
    SELECT * INTO p FROM practitioner WHERE rpps = item ->> 'rpps' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    field := CASE
        WHEN p.family_name IS DISTINCT FROM item ->> 'family_name' THEN 'family_name'
        WHEN p.given_name IS DISTINCT FROM item ->> 'given_name' THEN 'given_name'
    END;
    IF field IS NOT NULL AND snp_practitioner_used_elsewhere(p.rpps, p_territory) THEN
        PERFORM snp_other_territory(format('practitioners[%s].%s', idx, field),
            format('practitioner %s practises in another territory: their %s cannot change',
                   p.rpps, field));
    END IF;
END $$;

-- territory.import: 0008's import, once every commune and practitioner of
-- the request has passed the checks above.  0008's function is kept under
-- another name and called as it is, so that its upserts stay written once.
-- Sites and organisations were already the territory's own (looked up by
-- territory and name), and a practitioner is only ever joined to sites of
-- the importing territory.
ALTER FUNCTION snp_import(text, text, text, jsonb) RENAME TO snp_import_unchecked;
CREATE FUNCTION snp_import(p_territory text, p_actor text, p_role text, p_data jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    idx  bigint;
BEGIN
    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'communes', '[]'))
                            WITH ORDINALITY LOOP
        PERFORM snp_import_check_commune(p_territory, item, idx);
    END LOOP;
    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'practitioners', '[]'))
                            WITH ORDINALITY LOOP
        PERFORM snp_import_check_practitioner(p_territory, item, idx);
    END LOOP;
    RETURN snp_import_unchecked(p_territory, p_actor, p_role, p_data);
END $$;

-- The booking view.  With p_patient (the practitioner booked reading their
-- own list), the patient's identity and the practitioner's outcome note are
-- included, but only while the booking stands: a cancelled booking no longer
-- concerns its practitioner.  Without it (answers and pushes to the
-- requester and the coordinator, booking.cancelled), neither is: 0003's view
-- left the note in.  0003's view is kept under another name and called.
ALTER FUNCTION snp_booking_view(booking, boolean) RENAME TO snp_booking_view_full;
CREATE FUNCTION snp_booking_view(b booking, p_patient boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_patient AND b.status = 'booked' THEN snp_booking_view_full(b, true)
                ELSE snp_booking_view_full(b, false) #- '{outcome,note}' END
$$;

-- The request as its requester reads it: 0003's view without the
-- practitioner's outcome note, which is the practitioner's alone.
CREATE FUNCTION snp_request_view_for_requester(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT snp_request_view(r) #- '{booking,outcome,note}'
$$;

-- Reads one request of an organisation, auditing the read of its patient
-- fields.  Returns no row when the request is not the organisation's, or
-- not of the organisation's territory (an organisation belongs to one
-- territory; the check keeps a moved organisation from reading its old
-- territory's requests).
CREATE OR REPLACE FUNCTION snp_request_read(p_request bigint, p_organisation bigint,
                                            p_actor text, p_role text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r request;
BEGIN
    SELECT rq.* INTO r FROM request rq JOIN organisation o ON o.id = rq.organisation_id
     WHERE rq.id = p_request AND rq.organisation_id = p_organisation
       AND rq.territory_id = o.territory_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = r.id) THEN
        INSERT INTO audit (actor, role, action, request_id, fields)
        VALUES (p_actor, p_role, 'patient.read', r.id,
                ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
    END IF;
    RETURN snp_request_view_for_requester(r);
END $$;

-- Lists an organisation's requests in the caller's territory (newest
-- first) with their patients, auditing each read.
DROP FUNCTION snp_request_list(bigint, text[], timestamptz, timestamptz, int, text, text);
CREATE FUNCTION snp_request_list(p_territory text, p_organisation bigint, p_statuses text[],
                                 p_from timestamptz, p_to timestamptz, p_limit int, p_actor text,
                                 p_role text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    r request;
BEGIN
    FOR r IN SELECT * FROM request
              WHERE territory_id = p_territory AND organisation_id = p_organisation
                AND (p_statuses IS NULL OR status = ANY (p_statuses))
                AND created_at >= p_from AND created_at < p_to
              ORDER BY created_at DESC, id DESC LIMIT p_limit LOOP
        IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = r.id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, p_role, 'patient.read', r.id,
                    ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
        END IF;
        RETURN NEXT snp_request_view_for_requester(r);
    END LOOP;
END $$;

-- Lists a practitioner's bookings on the slots of p_territory by slot
-- start.  The identity is shown (and its read audited) for live bookings
-- only: snp_booking_view leaves it out of cancelled ones.
CREATE OR REPLACE FUNCTION snp_booking_list(p_territory text, p_rpps text, p_statuses text[],
                                            p_from timestamptz, p_to timestamptz, p_limit int,
                                            p_actor text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
BEGIN
    FOR b IN SELECT bk.* FROM booking bk JOIN slot s ON s.id = bk.slot_id
              WHERE s.territory_id = p_territory AND bk.rpps = p_rpps
                AND (p_statuses IS NULL OR bk.status = ANY (p_statuses))
                AND s.starts_at >= p_from AND s.starts_at < p_to
              ORDER BY s.starts_at, bk.id LIMIT p_limit LOOP
        IF b.status = 'booked'
           AND EXISTS (SELECT 1 FROM patient_identity WHERE request_id = b.request_id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, 'gp', 'patient.read', b.request_id,
                    ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text',
                          'outcome_note']);
        END IF;
        RETURN NEXT snp_booking_view(b, true);
    END LOOP;
END $$;

-- The redirection slip, as in 0003, of a request of the caller's territory.
CREATE FUNCTION snp_slip(p_territory text, p_request bigint, p_organisation bigint,
                         p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM request WHERE id = p_request AND territory_id = p_territory
                                           AND organisation_id = p_organisation) THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    RETURN snp_slip(p_request, p_organisation, p_actor);
END $$;
