-- The event log: the facts of a slot or a request as recorded in an event,
-- snp_event, which every state change calls, and snp_cause, which names the
-- cause the change's triggers announce.  They are PL/pgSQL rather than SQL so
-- that their plans are kept for the session (migrations 0009 and 0014,
-- bench/README.md).
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The site's kind is read first (site.id is the primary key: one row or
-- none, as the scalar subquery of 0002 gave) so that the object is built by
-- a simple expression, without the executor.
CREATE OR REPLACE FUNCTION snp_slot_facts(s slot) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_site_kind text;
BEGIN
    SELECT kind INTO v_site_kind FROM site WHERE id = s.site_id;
    RETURN jsonb_build_object(
        'starts_at', s.starts_at, 'duration_min', s.duration_min, 'mode', s.mode,
        'audience', s.audience, 'site_id', s.site_id, 'rpps', s.rpps,
        'site_kind', v_site_kind);
END $$;

CREATE OR REPLACE FUNCTION snp_request_facts(r request) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN jsonb_build_object(
        'requester_kind', r.requester_kind, 'organisation_id', r.organisation_id,
        'motif', r.motif, 'urgency', r.urgency, 'deadline', r.deadline,
        'patient_commune', r.patient_commune, 'patient_age', r.patient_age,
        'patient_sex', r.patient_sex, 'has_mt', r.has_mt, 'mt_rpps', r.mt_rpps,
        'priority_groups', r.priority_groups, 'created_at', r.created_at,
        'triage_level', r.source #> '{emergency,triage_level}',
        'pharmacy_protocol', r.source #> '{pharmacy,protocol}');
END $$;

CREATE OR REPLACE FUNCTION snp_event(p_territory text, p_actor text, p_kind text, p_slot bigint,
                                     p_request bigint, p_booking bigint, p_from text, p_to text,
                                     p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event (territory_id, actor, kind, slot_id, request_id, booking_id,
                       from_status, to_status, data)
    VALUES (p_territory, p_actor, p_kind, p_slot, p_request, p_booking, p_from, p_to,
            coalesce(p_data, '{}'::jsonb));
END $$;

-- snp_cause, snp_tz and snp_deadline were SQL functions PostgreSQL cannot
-- inline (a volatile set_config, a sub-select, an argument used twice
-- that is itself a look-up), so each call parsed and planned its body
-- again: 26 µs for snp_cause, twice per booking.  As PL/pgSQL functions
-- their plans are kept for the session.  Same arguments, same results.
CREATE OR REPLACE FUNCTION snp_cause(p_cause text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('snp.cause', p_cause, true);
END $$;
