-- The SAS call record (issue 15, section 3).
--
-- A SAS regulator records, in one step, what a call became: medical advice,
-- a prescription sent to the patient's pharmacy, the call sent (back) to the
-- 15, another ending (no answer, ...), or a request for an SNP slot, which
-- then names the request the regulator created (request.create) for the
-- patient.  Indre's inter-CPTS reports its SAS activity this way (2022: 42 %
-- advice, 37 % slot, 14 % prescription, 8 % other); snpd knew only the
-- requests, not the calls that ended without one.
--
-- A call holds no patient identity at all, not even a free-text note: the
-- indicators need only its territory, its organisation, its outcome, its
-- instant and the request it led to.  Like every figure, the indicators of
-- calls are computed from the event log (event 'call.recorded'), never from
-- the table, which serves the regulator's own list (call.list).

CREATE TABLE sas_call (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id    text NOT NULL REFERENCES territory (id),
    organisation_id bigint NOT NULL REFERENCES organisation (id),
    -- The token that recorded it ("token:12"), and the regulator, when the
    -- caller names them as request.create's source does (their RPPS or the
    -- SAS platform's technical id): a professional, not the patient.
    recorded_by     text NOT NULL,
    regulator_id    text CHECK (length(regulator_id) BETWEEN 1 AND 64),
    client_ref      text CHECK (length(client_ref) BETWEEN 1 AND 64),
    outcome         text NOT NULL CHECK (outcome IN ('advice', 'prescription', 'sent_to_15',
                                                      'slot_request', 'other')),
    request_id      bigint REFERENCES request (id),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- A request for a slot names its request, and only it does.
    CHECK ((outcome = 'slot_request') = (request_id IS NOT NULL)),
    -- A request is the issue of one call at most.
    UNIQUE (request_id),
    -- A retried call.record (same client_ref) records nothing twice.
    UNIQUE (organisation_id, client_ref)
);
CREATE INDEX sas_call_recent ON sas_call (organisation_id, recorded_at);

-- The database's own guarantee of what snp_call_record checks: the linked
-- request is one of the call's organisation, in the call's territory.
CREATE FUNCTION sas_call_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM organisation
                    WHERE id = NEW.organisation_id AND territory_id = NEW.territory_id
                      AND kind = 'sas') THEN
        RAISE EXCEPTION 'organisation % is not a SAS of territory %', NEW.organisation_id,
            NEW.territory_id USING ERRCODE = '23514';
    END IF;
    IF NEW.request_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM request
         WHERE id = NEW.request_id AND organisation_id = NEW.organisation_id
           AND territory_id = NEW.territory_id) THEN
        RAISE EXCEPTION 'request % is not one of organisation % in territory %', NEW.request_id,
            NEW.organisation_id, NEW.territory_id USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sas_call_check BEFORE INSERT OR UPDATE ON sas_call
    FOR EACH ROW EXECUTE FUNCTION sas_call_check();

-- A call as the protocol shows it (type "call").
CREATE FUNCTION snp_call_view(c sas_call) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'call_id', c.id, 'client_ref', c.client_ref, 'outcome', c.outcome,
        'request_id', c.request_id, 'regulator_id', c.regulator_id,
        'recorded_at', snp_rfc3339(c.recorded_at, snp_tz(c.territory_id))))
$$;

-- Records a call of a SAS organisation (call.record), with the event the
-- indicators read; returns {"call": view, "created": bool}.  A repeat with
-- the same client_ref and the same content answers the call recorded first
-- (created false); with other content it is a conflict.  A linked request
-- that is not the organisation's in this territory is answered as a missing
-- one (SN404), whatever the reason: a regulator cannot learn from the answer
-- whether another organisation's request exists.
CREATE FUNCTION snp_call_record(p_territory text, p_organisation bigint, p_actor text,
                                p_outcome text, p_request bigint, p_client_ref text,
                                p_regulator text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c sas_call;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM organisation
                    WHERE id = p_organisation AND territory_id = p_territory
                      AND kind = 'sas') THEN
        RAISE EXCEPTION 'organisation % is not a SAS of territory %', p_organisation,
            p_territory USING ERRCODE = 'SN403';
    END IF;
    IF (p_outcome = 'slot_request') <> (p_request IS NOT NULL) THEN
        PERFORM snp_field_error('request_id',
            'request_id is required with the outcome slot_request, and only with it');
    END IF;
    IF p_client_ref IS NOT NULL THEN
        SELECT * INTO c FROM sas_call
         WHERE organisation_id = p_organisation AND client_ref = p_client_ref;
        IF FOUND THEN
            IF c.outcome IS DISTINCT FROM p_outcome OR c.request_id IS DISTINCT FROM p_request
               OR c.regulator_id IS DISTINCT FROM p_regulator
               OR c.territory_id <> p_territory THEN
                RAISE EXCEPTION 'client_ref % was used for another call', p_client_ref
                    USING ERRCODE = 'SN409';
            END IF;
            RETURN jsonb_build_object('call', snp_call_view(c), 'created', false);
        END IF;
    END IF;
    IF p_request IS NOT NULL THEN
        -- Locked so that two calls cannot claim the same request at once.
        PERFORM 1 FROM request
          WHERE id = p_request AND organisation_id = p_organisation
            AND territory_id = p_territory FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
        END IF;
        IF EXISTS (SELECT 1 FROM sas_call WHERE request_id = p_request) THEN
            RAISE EXCEPTION 'request % is already the issue of another call', p_request
                USING ERRCODE = 'SN409';
        END IF;
    END IF;
    INSERT INTO sas_call (territory_id, organisation_id, recorded_by, regulator_id, client_ref,
                          outcome, request_id)
    VALUES (p_territory, p_organisation, p_actor, p_regulator, p_client_ref, p_outcome,
            p_request)
    RETURNING * INTO c;
    PERFORM snp_event(p_territory, p_actor, 'call.recorded', NULL, p_request, NULL, NULL,
                      p_outcome,
                      jsonb_build_object('call_id', c.id, 'organisation_id', p_organisation,
                                         'recorded_at', c.recorded_at));
    RETURN jsonb_build_object('call', snp_call_view(c), 'created', true);
END $$;

-- An organisation's calls in a territory, newest first (call.list): no
-- patient field, so nothing to audit.
CREATE FUNCTION snp_call_list(p_territory text, p_organisation bigint, p_outcomes text[],
                              p_from timestamptz, p_to timestamptz, p_limit int)
RETURNS SETOF jsonb LANGUAGE sql STABLE AS $$
    SELECT snp_call_view(c)
      FROM sas_call c
     WHERE c.territory_id = p_territory AND c.organisation_id = p_organisation
       AND (p_outcomes IS NULL OR c.outcome = ANY (p_outcomes))
       AND c.recorded_at >= p_from AND c.recorded_at < p_to
     ORDER BY c.recorded_at DESC, c.id DESC
     LIMIT p_limit
$$;

-- --- Indicators -------------------------------------------------------------------------

-- The calls recorded in [p_from, p_to) by the territory's SAS, followed until
-- p_as_of: for a request for a slot, whether the request had a booking not
-- cancelled by then (served).  Read from the log alone, like the other
-- cohorts (docs/indicators.md, "Principles").
CREATE FUNCTION snp_ind_call_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (call_id bigint, recorded_at timestamptz, outcome text, request_id bigint,
               served boolean)
LANGUAGE sql STABLE AS $$
    WITH calls AS MATERIALIZED (
        SELECT (e.data ->> 'call_id')::bigint AS call_id, e.at, e.to_status, e.request_id
          FROM event e
         WHERE e.territory_id = p_territory AND e.kind = 'call.recorded'
           AND e.at >= p_from AND e.at < p_to AND e.at < p_as_of
    ), bookings AS (
        SELECT b.request_id, b.booking_id,
               bool_or(b.kind = 'booking.created') AS made,
               bool_or(b.kind = 'booking.cancelled') AS cancelled
          FROM calls c JOIN event b ON b.request_id = c.request_id
         WHERE b.booking_id IS NOT NULL AND b.at < p_as_of
           AND b.kind IN ('booking.created', 'booking.cancelled')
         GROUP BY b.request_id, b.booking_id
    )
    SELECT c.call_id, c.at, c.to_status, c.request_id,
           c.request_id IS NOT NULL AND EXISTS (
               SELECT 1 FROM bookings b
                WHERE b.request_id = c.request_id AND b.made AND NOT b.cancelled)
      FROM calls c
$$;

-- Indre's estimate of emergency visits avoided, as a ratio of the calls the
-- ambulatory SAS took: 2,615 visits for 17,232 calls in 2022 (docs/indicators.md,
-- sas_ed_visits_avoided).  A new ratio is a new version of the definition.
CREATE FUNCTION snp_ind_calls_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                 p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS MATERIALIZED (
        SELECT * FROM snp_ind_call_cohort(p_territory, p_from, p_to, p_as_of)
    ), t AS (
        SELECT count(*) AS n,
               count(*) FILTER (WHERE outcome = 'slot_request') AS to_slot,
               count(*) FILTER (WHERE outcome = 'slot_request' AND served) AS booked
          FROM c
    )
    SELECT v.code, 1, v.key, v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('sas_calls', '', t.n::numeric, t.n),
        ('sas_calls_to_slot_rate', '', snp_ind_pct(t.to_slot, t.n), snp_ind_base(t.to_slot, t.n)),
        ('sas_calls_slot_booked', '', t.booked::numeric, t.booked),
        ('sas_ed_visits_avoided', '', round(t.n * 2615.0 / 17232), t.n)
      ) v (code, key, value, patient_count)
    UNION ALL
    SELECT 'sas_calls_by_outcome', 1, k.key, count(c.call_id), count(c.call_id)
      FROM unnest(ARRAY['advice', 'prescription', 'slot_request', 'sent_to_15', 'other']) k (key)
      LEFT JOIN c ON c.outcome = k.key
     GROUP BY k.key
$$;

-- Every figure of the catalogue's current versions, unmasked
-- (snp_indicator_table masks them): 0004's function, kept under another
-- name and wrapped rather than copied, with the calls added.
ALTER FUNCTION snp_ind_rows(text, timestamptz, timestamptz, timestamptz)
    RENAME TO snp_ind_rows_without_calls;

CREATE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_calls(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_calls_v1(p_territory, p_from, p_to, p_as_of)
$$;

ALTER TABLE indicator_definition DROP CONSTRAINT indicator_definition_section_check;
ALTER TABLE indicator_definition ADD CONSTRAINT indicator_definition_section_check
    CHECK (section IN ('demandes', 'reponse', 'creneaux', 'participation', 'issues', 'urgences',
                       'sas', 'publics', 'releve'));

INSERT INTO indicator_definition (code, version, section, position, label_fr, formula_fr, unit,
                                  decimals, breakdown, direction, sql_function) VALUES
('sas_calls', 1, 'sas', 85, 'Appels régulés par le SAS',
 'Nombre d''appels dont un régulateur du SAS du territoire a enregistré l''issue pendant la période (heure locale du territoire).',
 'count', 0, '', 'none', 'snp_ind_calls_v1'),
('sas_calls_by_outcome', 1, 'sas', 86, 'Appels régulés par issue',
 'Appels régulés, ventilés selon l''issue enregistrée : conseil médical, prescription, demande de créneau de soins non programmés, renvoi vers le 15, autre issue.',
 'count', 0, 'call_outcome', 'none', 'snp_ind_calls_v1'),
('sas_calls_to_slot_rate', 1, 'sas', 87, 'Part des appels orientés vers un créneau',
 'Appels dont l''issue est une demande de créneau de soins non programmés, divisés par les appels régulés, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_calls_v1'),
('sas_calls_slot_booked', 1, 'sas', 88, 'Appels conclus par un rendez-vous',
 'Appels orientés vers un créneau dont la demande liée a un rendez-vous réservé et non annulé à la date de consolidation.',
 'count', 0, '', 'higher', 'snp_ind_calls_v1'),
('sas_ed_visits_avoided', 1, 'sas', 89, 'Passages aux urgences évités par la régulation (estimation)',
 'Appels régulés multipliés par 2 615 / 17 232, arrondi à l''unité : le rapport observé dans l''Indre en 2022 entre les passages aux urgences estimés évités et les appels basculés vers le SAS ambulatoire. Estimation, non mesure.',
 'count', 0, '', 'higher', 'snp_ind_calls_v1');

INSERT INTO indicator_key_label (breakdown, key, label_fr, position) VALUES
('call_outcome', 'advice', 'Conseil médical', 1),
('call_outcome', 'prescription', 'Prescription', 2),
('call_outcome', 'slot_request', 'Créneau de soins non programmés', 3),
('call_outcome', 'sent_to_15', 'Renvoi vers le 15', 4),
('call_outcome', 'other', 'Autre issue', 5);
