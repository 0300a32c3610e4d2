-- Read views of the protocol (protocol/snp.v1.json: slot, request, booking,
-- slip), built in SQL so that a read is one round trip, and the audit of
-- every read of patient fields, written in the same statement as the read.

-- An instant as RFC 3339 in a territory's time zone: 2026-12-01T14:00:00+01:00.
CREATE FUNCTION snp_rfc3339(t timestamptz, tz text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE tz, 'YYYY-MM-DD"T"HH24:MI:SS') ||
           CASE WHEN off < interval '0' THEN '-' ELSE '+' END ||
           to_char(abs(extract(epoch FROM off))::int / 3600, 'FM00') || ':' ||
           to_char(abs(extract(epoch FROM off))::int % 3600 / 60, 'FM00')
      FROM (SELECT (t AT TIME ZONE tz) - (t AT TIME ZONE 'UTC') AS off) o
$$;

CREATE FUNCTION snp_tz(p_territory text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT time_zone FROM territory WHERE id = p_territory), 'Europe/Paris')
$$;

-- The role behind an actor recorded in the log ("token:12").
CREATE FUNCTION snp_actor_role(p_actor text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT role FROM api_token WHERE 'token:' || id = p_actor), 'admin')
$$;

CREATE FUNCTION snp_slot_view(s slot) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'slot_id', s.id, 'status', s.status,
        'start', snp_rfc3339(s.starts_at, snp_tz(s.territory_id)),
        'end', snp_rfc3339(s.starts_at + make_interval(mins => s.duration_min),
                           snp_tz(s.territory_id)),
        'duration_min', s.duration_min, 'mode', s.mode, 'audiences', to_jsonb(s.audience),
        'practitioner', (SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                                                   'given_name', p.given_name)
                           FROM practitioner p WHERE p.rpps = s.rpps),
        'site', (SELECT jsonb_strip_nulls(jsonb_build_object(
                     'site_id', si.id, 'kind', si.kind, 'name', si.name, 'address', si.address,
                     'commune_insee', si.commune_insee, 'commune_name', c.name,
                     'postal_code', c.postal_code, 'phone', si.phone,
                     'latitude', si.latitude, 'longitude', si.longitude))
                   FROM site si JOIN commune c ON c.insee = si.commune_insee
                  WHERE si.id = s.site_id),
        'release_minutes', s.release_minutes,
        'released_at', snp_rfc3339(s.released_at, snp_tz(s.territory_id))))
$$;

CREATE FUNCTION snp_patient_view(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'display_name', p.display_name, 'initials', p.initials,
        'birth_date', p.birth_date,
        'birth_year', CASE WHEN p.birth_date IS NULL THEN r.patient_birth_year END,
        'sex', r.patient_sex, 'phone', p.phone, 'commune_insee', r.patient_commune,
        'has_mt', r.has_mt, 'mt_rpps', r.mt_rpps,
        'ald', 'ald' = ANY (r.priority_groups), 'c2s', 'c2s' = ANY (r.priority_groups)))
      FROM patient_identity p WHERE p.request_id = r.id
$$;

-- The booking view; with p_patient, the patient's identity is included.
CREATE FUNCTION snp_booking_view(b booking, p_patient boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'booking_id', b.id, 'request_id', b.request_id, 'status', b.status,
        'created_at', snp_rfc3339(b.booked_at, snp_tz(b.territory_id)),
        'slot', (SELECT snp_slot_view(s) FROM slot s WHERE s.id = b.slot_id),
        'urgency', r.urgency,
        'motif', jsonb_strip_nulls(jsonb_build_object(
            'code', r.motif,
            'text', CASE WHEN p_patient THEN (SELECT motif_text FROM patient_identity
                                               WHERE request_id = r.id) END)),
        'patient', CASE WHEN p_patient THEN snp_patient_view(r) END,
        'priority_groups', to_jsonb(r.priority_groups),
        'requester', (SELECT jsonb_strip_nulls(jsonb_build_object(
                          'kind', o.kind, 'organisation_id', o.id, 'name', o.name,
                          'finess', o.finess))
                        FROM organisation o WHERE o.id = r.organisation_id),
        'source', CASE WHEN r.source <> '{}'::jsonb THEN r.source END,
        'cancellation', CASE WHEN b.status = 'cancelled' THEN jsonb_build_object(
            'reason', b.cancel_reason, 'cancelled_by', snp_actor_role(b.cancelled_by),
            'cancelled_at', snp_rfc3339(b.cancelled_at, snp_tz(b.territory_id))) END,
        'outcome', CASE WHEN b.outcome IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
            'kind', b.outcome, 'note', b.outcome_note,
            'reported_at', snp_rfc3339(b.outcome_at, snp_tz(b.territory_id)))) END))
      FROM request r WHERE r.id = b.request_id
$$;

-- The request view as its requester sees it (with the patient).  The offer,
-- which lives in snpd's memory, is added by snpd.
CREATE FUNCTION snp_request_view(r request) RETURNS jsonb LANGUAGE sql STABLE AS $$
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

-- Reads one request of an organisation, auditing the read of its patient
-- fields.  Returns no row when the request is not the organisation's.
CREATE FUNCTION snp_request_read(p_request bigint, p_organisation bigint, p_actor text,
                                 p_role text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r request;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request AND organisation_id = p_organisation;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = r.id) THEN
        INSERT INTO audit (actor, role, action, request_id, fields)
        VALUES (p_actor, p_role, 'patient.read', r.id,
                ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
    END IF;
    RETURN snp_request_view(r);
END $$;

-- Lists an organisation's requests (newest first) with their patients,
-- auditing each read.
CREATE FUNCTION snp_request_list(p_organisation bigint, p_statuses text[], p_from timestamptz,
                                 p_to timestamptz, p_limit int, p_actor text, p_role text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    r request;
BEGIN
    FOR r IN SELECT * FROM request
              WHERE organisation_id = p_organisation
                AND (p_statuses IS NULL OR status = ANY (p_statuses))
                AND created_at >= p_from AND created_at < p_to
              ORDER BY created_at DESC, id DESC LIMIT p_limit LOOP
        IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = r.id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, p_role, 'patient.read', r.id,
                    ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
        END IF;
        RETURN NEXT snp_request_view(r);
    END LOOP;
END $$;

-- Lists a practitioner's bookings by slot start, with the patients (the
-- practitioner booked may see them), auditing each read.
CREATE FUNCTION snp_booking_list(p_territory text, p_rpps text, p_statuses text[],
                                 p_from timestamptz, p_to timestamptz, p_limit int,
                                 p_actor text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
BEGIN
    FOR b IN SELECT bk.* FROM booking bk JOIN slot s ON s.id = bk.slot_id
              WHERE bk.territory_id = p_territory AND bk.rpps = p_rpps
                AND (p_statuses IS NULL OR bk.status = ANY (p_statuses))
                AND s.starts_at >= p_from AND s.starts_at < p_to
              ORDER BY s.starts_at, bk.id LIMIT p_limit LOOP
        IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = b.request_id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, 'gp', 'patient.read', b.request_id,
                    ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
        END IF;
        RETURN NEXT snp_booking_view(b, true);
    END LOOP;
END $$;

-- The redirection slip of an emergency department's booked request, in
-- French for the patient; audited (it shows the patient's name).
CREATE FUNCTION snp_slip(p_request bigint, p_organisation bigint, p_actor text)
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

-- Applies a territory's settings patch (keys validated by the codec).
CREATE FUNCTION snp_settings_update(p_territory text, p_patch jsonb, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v jsonb;
BEGIN
    UPDATE territory
       SET settings = settings || (p_patch - 'weights') ||
                      CASE WHEN p_patch ? 'weights'
                           THEN jsonb_build_object('weights', coalesce(settings -> 'weights',
                                                                        '{}'::jsonb) ||
                                                              (p_patch -> 'weights'))
                           ELSE '{}'::jsonb END
     WHERE id = p_territory
    RETURNING settings INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no territory %', p_territory USING ERRCODE = 'SN404';
    END IF;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, snp_actor_role(p_actor), 'settings.update',
            jsonb_build_object('territory', p_territory, 'patch', p_patch));
    RETURN v;
END $$;
