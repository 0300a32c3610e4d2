-- What the appointment outbox's booking trigger (sql/migrations/0018) costs
-- per booking: N bookings through snp_request_create and snp_offer_accept,
-- one transaction each, on slots of demo-redon open to the SAS.  Run on a
-- scratch database migrated and loaded with sql/demo/demo_territory.sql,
-- once with territory.sas_platform_url NULL and once set, e.g.
--   psql -d cost -v n=1000 -v offset=0 -f bench/outbox_cost.sql
-- (offset: minutes added to the slots' starts, distinct per run), then, from
-- another session, read pg_stat_user_functions for snp_outbox_booked and
-- snp_offer_accept (total_time / calls).  Figures in docs/fhir.md, "Cost".
\set ON_ERROR_STOP 1
SET track_functions = 'all';
SELECT set_config('cost.n', :'n', false), set_config('cost.offset', :'offset', false);
SELECT pg_stat_reset();
DO $$
DECLARE
    v_org bigint := (SELECT id FROM organisation WHERE territory_id = 'demo-redon' AND kind = 'pharmacy' ORDER BY id LIMIT 1);
    v_site bigint;
    v_rpps text;
    v_slot bigint;
    v_req bigint;
BEGIN
    SELECT ps.site_id, ps.rpps INTO v_site, v_rpps FROM practitioner_site ps JOIN site s ON s.id = ps.site_id
     WHERE s.territory_id = 'demo-redon' ORDER BY 1 LIMIT 1;
    FOR i IN 1..current_setting('cost.n')::int LOOP
        INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode, audience, published_by)
        VALUES ('demo-redon', v_site, v_rpps, date_trunc('minute', now()) + make_interval(mins => 600 + i * 5 + current_setting('cost.offset')::int), 20, 'office',
                ARRAY['sas', 'pharmacy'], 'cost') RETURNING id INTO v_slot;
        SELECT request_id INTO v_req FROM snp_request_create('demo-redon', v_org, 'token:cost',
            jsonb_build_object('client_ref', 'cost-' || current_setting('cost.offset') || '-' || i, 'motif', 'ent', 'urgency', '48h',
                'deadline', to_char(now() + interval '47 hours', 'YYYY-MM-DD"T"HH24:MI:SSOF'),
                'modes', jsonb_build_array('office'), 'patient_commune', '35236', 'patient_birth_year', 1980,
                'patient_age', 46, 'patient_sex', 'female', 'has_mt', false, 'priority_groups', '[]'::jsonb,
                'source', '{}'::jsonb),
            '{"initials":"J. D."}'::jsonb, v_slot, 180);
        PERFORM snp_offer_accept(v_req, v_org, v_slot, 'token:cost');
    END LOOP;
END $$;
