-- SAS calls (the regulator's record of a call, docs/dispatch.md): the check
-- of a call's organisation, its view, recording and listing.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The database's own guarantee of what snp_call_record checks: the linked
-- request is one of the call's organisation, in the call's territory.
CREATE OR REPLACE FUNCTION sas_call_check() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- A call as the protocol shows it (type "call").
CREATE OR REPLACE FUNCTION snp_call_view(c sas_call) RETURNS jsonb LANGUAGE sql STABLE AS $$
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
CREATE OR REPLACE FUNCTION snp_call_record(p_territory text, p_organisation bigint, p_actor text,
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
CREATE OR REPLACE FUNCTION snp_call_list(p_territory text, p_organisation bigint, p_outcomes text[],
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
