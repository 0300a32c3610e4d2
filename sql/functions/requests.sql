-- Requests: creation (with its first offer), cancellation, their views and
-- lists, and the emergency department's redirection slip.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Cancels a request: its held slot is released, its booking (if any) is
-- cancelled and the slot freed when its start is still ahead.
CREATE OR REPLACE FUNCTION snp_request_cancel(p_request bigint, p_organisation bigint, p_reason text,
                                   p_actor text,
                                   OUT freed_slot bigint, OUT cancelled_booking bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    b booking;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request
       AND (p_organisation IS NULL OR organisation_id = p_organisation) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    IF r.status IN ('cancelled', 'unserved') THEN
        RAISE EXCEPTION 'request % is already %', p_request, r.status USING ERRCODE = 'SN409';
    END IF;
    SELECT * INTO s FROM slot WHERE held_for = r.id AND slot.status = 'held';
    IF FOUND THEN
        s := snp_release(r, s.id, 'cancelled', p_actor);
        freed_slot := s.id;
    END IF;
    UPDATE booking SET status = 'cancelled', cancelled_at = now(), cancelled_by = p_actor,
                       cancel_reason = p_reason
     WHERE request_id = r.id AND booking.status = 'booked'
    RETURNING * INTO b;
    IF FOUND THEN
        UPDATE slot SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END
         WHERE id = b.slot_id RETURNING * INTO s;
        PERFORM snp_event(r.territory_id, p_actor, 'booking.cancelled', s.id, r.id, b.id,
                          'booked', 'cancelled',
                          snp_slot_facts(s) || jsonb_build_object('reason', p_reason,
                                                                  'by', 'requester'));
        cancelled_booking := b.id;
        IF s.status = 'free' THEN
            freed_slot := s.id;
        END IF;
    END IF;
    UPDATE request SET status = 'cancelled', closed_at = now(),
                       slip_refused = slip_refused OR p_reason = 'patient_refused'
     WHERE id = r.id;
    PERFORM snp_event(r.territory_id, p_actor, 'request.cancelled', NULL, r.id, NULL, r.status,
                      'cancelled', jsonb_build_object('reason', p_reason));
END $$;

CREATE OR REPLACE FUNCTION snp_patient_view(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'display_name', p.display_name, 'initials', p.initials,
        'birth_date', p.birth_date,
        'birth_year', CASE WHEN p.birth_date IS NULL THEN r.patient_birth_year END,
        'sex', r.patient_sex, 'phone', p.phone, 'commune_insee', r.patient_commune,
        'has_mt', r.has_mt, 'mt_rpps', r.mt_rpps,
        'ald', 'ald' = ANY (r.priority_groups), 'c2s', 'c2s' = ANY (r.priority_groups)))
      FROM patient_identity p WHERE p.request_id = r.id
$$;

-- The request view as its requester sees it (with the patient).  The offer,
-- which lives in snpd's memory, is added by snpd.
CREATE OR REPLACE FUNCTION snp_request_view(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'request_id', r.id, 'client_ref', r.client_ref, 'status', r.status,
        'created_at', snp_rfc3339(r.created_at, snp_tz(r.territory_id)),
        'deadline', snp_rfc3339(r.deadline, snp_tz(r.territory_id)),
        'urgency', r.urgency,
        'motif', jsonb_strip_nulls(jsonb_build_object(
            'code', r.motif,
            'text', (SELECT motif_text FROM patient_identity WHERE request_id = r.id))),
        'patient', snp_patient_view(r),
        'priority_groups', to_jsonb(r.priority_groups),
        'constraints', jsonb_strip_nulls(jsonb_build_object(
            'modes', to_jsonb(r.modes), 'max_distance_km', r.max_distance_km,
            'reduced_mobility', r.reduced_mobility)),
        'source', CASE WHEN r.source <> '{}'::jsonb THEN r.source END,
        'booking_id', b.id,
        'booking', CASE WHEN b.id IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
            'booking_id', b.id, 'status', b.status,
            'slot', (SELECT snp_slot_view(s) FROM slot s WHERE s.id = b.slot_id),
            'cancellation', CASE WHEN b.status = 'cancelled' THEN jsonb_build_object(
                'reason', b.cancel_reason, 'cancelled_by', snp_actor_role(b.cancelled_by),
                'cancelled_at', snp_rfc3339(b.cancelled_at, snp_tz(b.territory_id))) END,
            'outcome', CASE WHEN b.outcome IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
                'kind', b.outcome, 'note', b.outcome_note,
                'reported_at', snp_rfc3339(b.outcome_at, snp_tz(b.territory_id)))) END)) END,
        'cancellation', CASE WHEN r.status = 'cancelled' THEN jsonb_build_object(
            'reason', coalesce((SELECT e.data ->> 'reason' FROM event e
                                 WHERE e.request_id = r.id AND e.kind = 'request.cancelled'
                                 ORDER BY e.id DESC LIMIT 1), 'other'),
            'cancelled_by', snp_actor_role((SELECT e.actor FROM event e
                                             WHERE e.request_id = r.id
                                               AND e.kind = 'request.cancelled'
                                             ORDER BY e.id DESC LIMIT 1)),
            'cancelled_at', snp_rfc3339(r.closed_at, snp_tz(r.territory_id))) END))
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT * FROM booking bk WHERE bk.request_id = r.id
                          ORDER BY bk.status = 'booked' DESC, bk.id DESC LIMIT 1) b ON true
$$;

-- The redirection slip of an emergency department's booked request, in
-- French for the patient; audited (it shows the patient's name).
CREATE OR REPLACE FUNCTION snp_slip(p_request bigint, p_organisation bigint, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r request;
    b booking;
    s slot;
    o organisation;
    p patient_identity;
    v jsonb;
    tz text;
    place text;
    phone text;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request AND organisation_id = p_organisation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    SELECT * INTO b FROM booking WHERE request_id = r.id ORDER BY status = 'booked' DESC, id DESC
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % has no booking', p_request USING ERRCODE = 'SN409';
    END IF;
    SELECT * INTO s FROM slot WHERE id = b.slot_id;
    SELECT * INTO o FROM organisation WHERE id = r.organisation_id;
    SELECT * INTO p FROM patient_identity WHERE request_id = r.id;
    tz := snp_tz(r.territory_id);
    SELECT si.name || ', ' || si.address, si.phone INTO place, phone
      FROM site si WHERE si.id = s.site_id;
    INSERT INTO audit (actor, role, action, request_id, fields)
    VALUES (p_actor, 'emergency', 'slip.read', r.id, ARRAY['display_name', 'initials']);
    v := jsonb_strip_nulls(jsonb_build_object(
        'request_id', r.id, 'booking_id', b.id, 'issued_at', snp_rfc3339(now(), tz),
        'display_name', p.display_name, 'initials', p.initials,
        'start', snp_rfc3339(s.starts_at, tz), 'mode', s.mode,
        'practitioner', (SELECT jsonb_build_object('rpps', pr.rpps, 'family_name', pr.family_name,
                                                   'given_name', pr.given_name)
                           FROM practitioner pr WHERE pr.rpps = s.rpps),
        'site', snp_slot_view(s) -> 'site',
        'department', o.name,
        'senior_rpps', r.source #>> '{emergency,senior_rpps}',
        'how_to_cancel', CASE WHEN phone IS NOT NULL
            THEN 'En cas d''empêchement, prévenez le cabinet au ' || phone || '.'
            ELSE 'En cas d''empêchement, prévenez le service des urgences qui vous a orienté.' END,
        'text', 'Rendez-vous le ' || to_char(s.starts_at AT TIME ZONE tz, 'DD/MM/YYYY') ||
                ' à ' || to_char(s.starts_at AT TIME ZONE tz, 'HH24"h"MI') ||
                CASE s.mode WHEN 'teleconsultation' THEN ' en téléconsultation'
                            WHEN 'home' THEN ' à domicile' ELSE ' : ' || place END ||
                coalesce(' avec le Dr ' || (SELECT pr.given_name || ' ' || pr.family_name
                                              FROM practitioner pr WHERE pr.rpps = s.rpps), '') ||
                '. Orientation décidée par le service des urgences (' || o.name || ').',
        'refused', r.slip_refused,
        'refused_at', CASE WHEN r.slip_refused THEN snp_rfc3339(r.closed_at, tz) END));
    RETURN v;
END $$;

-- Whether request.create's p_request and p_identity describe another
-- request than r (same client_ref): what the requester sent, compared with
-- what was recorded; the patient's age, derived from the date, and the
-- deadline, derived from the time, are not compared.  An identity already
-- erased is not compared either.
CREATE OR REPLACE FUNCTION snp_request_differs(r request, p_request jsonb, p_identity jsonb)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    x record;
    i patient_identity;
BEGIN
    SELECT * INTO x FROM jsonb_to_record(p_request) AS j (
        motif text, urgency text, modes text[], max_distance_km real, reduced_mobility boolean,
        patient_commune text, patient_birth_year int, patient_sex text, has_mt boolean,
        mt_rpps text, priority_groups text[], source jsonb);
    IF (x.motif, x.urgency, x.modes, x.max_distance_km, coalesce(x.reduced_mobility, false),
        x.patient_commune, x.patient_birth_year, x.patient_sex, x.has_mt, x.mt_rpps,
        coalesce(x.priority_groups, '{}'), coalesce(x.source, '{}'::jsonb))
       IS DISTINCT FROM
       (r.motif, r.urgency, r.modes, r.max_distance_km, r.reduced_mobility, r.patient_commune,
        r.patient_birth_year, r.patient_sex, r.has_mt, r.mt_rpps, r.priority_groups, r.source) THEN
        RETURN true;
    END IF;
    SELECT * INTO i FROM patient_identity WHERE request_id = r.id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN (p_identity ->> 'display_name', p_identity ->> 'initials',
            (p_identity ->> 'birth_date')::date, p_identity ->> 'phone',
            p_identity ->> 'motif_text')
           IS DISTINCT FROM (i.display_name, i.initials, i.birth_date, i.phone, i.motif_text);
END $$;

-- request.create, now returning the deadline it computed on the database's
-- clock (the deadline of p_request is ignored).
CREATE OR REPLACE FUNCTION snp_request_create(p_territory text, p_organisation bigint, p_actor text,
                                   p_request jsonb, p_identity jsonb, p_slot bigint,
                                   p_hold_seconds int,
                                   OUT request_id bigint, OUT created boolean, OUT status text,
                                   OUT held_slot bigint, OUT hold_expires_at timestamptz,
                                   OUT created_at timestamptz, OUT deadline timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    v_kind text;
BEGIN
    SELECT kind INTO v_kind FROM organisation
     WHERE id = p_organisation AND territory_id = p_territory;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organisation % is not in territory %', p_organisation, p_territory
            USING ERRCODE = 'SN403';
    END IF;
    PERFORM snp_cause('create');
    -- A request given a slot is written 'offered' at once: snpd chose a
    -- free slot in memory, so the hold below almost always succeeds, and
    -- one row version and one notification per booking are saved.  When it
    -- does not, the request is set back to 'waiting' below.
    INSERT INTO request (territory_id, organisation_id, requester_kind, created_by, client_ref,
                         motif, urgency, deadline, modes, max_distance_km, reduced_mobility,
                         patient_commune, patient_birth_year, patient_age, patient_sex, has_mt,
                         mt_rpps, priority_groups, source, status)
    SELECT p_territory, p_organisation, v_kind, p_actor, x.client_ref, x.motif, x.urgency,
           snp_deadline(x.urgency, snp_tz(p_territory), now()), x.modes, x.max_distance_km,
           coalesce(x.reduced_mobility, false), x.patient_commune, x.patient_birth_year,
           x.patient_age, x.patient_sex, x.has_mt, x.mt_rpps, coalesce(x.priority_groups, '{}'),
           coalesce(x.source, '{}'::jsonb),
           CASE WHEN p_slot IS NULL THEN 'waiting' ELSE 'offered' END
      FROM jsonb_to_record(p_request) AS x (client_ref text, motif text, urgency text,
                                            modes text[], max_distance_km real,
                                            reduced_mobility boolean, patient_commune text,
                                            patient_birth_year int, patient_age int,
                                            patient_sex text, has_mt boolean, mt_rpps text,
                                            priority_groups text[], source jsonb)
    ON CONFLICT (organisation_id, client_ref) DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM request
         WHERE organisation_id = p_organisation AND client_ref = p_request ->> 'client_ref';
        -- A true retry carries the same request; the same client_ref for
        -- another one is a conflict (protocol: request.create).
        IF snp_request_differs(r, p_request, p_identity) THEN
            RAISE EXCEPTION 'client_ref % was used for another request',
                p_request ->> 'client_ref' USING ERRCODE = 'SN409';
        END IF;
        request_id := r.id;
        created := false;
        status := r.status;
        created_at := r.created_at;
        deadline := r.deadline;
        SELECT id, slot.hold_expires_at INTO held_slot, hold_expires_at
          FROM slot WHERE held_for = r.id AND slot.status = 'held';
        RETURN;
    END IF;
    INSERT INTO patient_identity (request_id, display_name, initials, birth_date, phone,
                                  motif_text, erase_after)
    SELECT r.id, x.display_name, x.initials, x.birth_date, x.phone, x.motif_text,
           r.deadline + make_interval(days => coalesce(
               (SELECT (settings ->> 'identity_retention_days')::int FROM territory
                 WHERE id = p_territory), 90))
      FROM jsonb_to_record(p_identity) AS x (display_name text, initials text, birth_date date,
                                             phone text, motif_text text);
    PERFORM snp_event(p_territory, p_actor, 'request.created', NULL, r.id, NULL, NULL, 'waiting',
                      snp_request_facts(r));
    request_id := r.id;
    created := true;
    status := r.status;
    created_at := r.created_at;
    deadline := r.deadline;
    IF p_slot IS NOT NULL THEN
        s := snp_hold(r, p_slot, p_hold_seconds, p_actor);
        IF s.id IS NOT NULL THEN
            held_slot := s.id;
            hold_expires_at := s.hold_expires_at;
        ELSE
            UPDATE request SET status = 'waiting' WHERE id = r.id;
            status := 'waiting';
        END IF;
    END IF;
END $$;

-- The request as its requester reads it: 0003's view without the
-- practitioner's outcome note, which is the practitioner's alone.
CREATE OR REPLACE FUNCTION snp_request_view_for_requester(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
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
CREATE OR REPLACE FUNCTION snp_request_list(p_territory text, p_organisation bigint, p_statuses text[],
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

-- The redirection slip, as in 0003, of a request of the caller's territory.
CREATE OR REPLACE FUNCTION snp_slip(p_territory text, p_request bigint, p_organisation bigint,
                         p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM request WHERE id = p_request AND territory_id = p_territory
                                           AND organisation_id = p_organisation) THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    RETURN snp_slip(p_request, p_organisation, p_actor);
END $$;
