-- bench/events.sql: an event log of :events events (about), for the
-- indicators benchmark (bench/run.sh --only indicators).  Run with psql on a
-- database that holds the benchmark territory (snpbench setup, 200
-- practitioners), with the variables
--   events       how many events, about (the units below come in 4.7 on average)
--   territories  over how many territories they are spread (bench-t and
--                bench-o1, bench-o2 ..., created here)
--   months       how many months of history, ending with the last month
--                before the current one (the month extracted)
--
-- The log is what snpd's snp_* functions write, built in bulk: each unit is
-- one slot and one request of one territory, its slot starting at a time
-- spread evenly over the history; eight units in ten are a booking that was
-- honoured (slot.published, request.created, offer.made, booking.created,
-- outcome.reported), one a slot withdrawn and a request cancelled, one a
-- slot left free and a request unserved.  The facts in `data` have the
-- members snp_slot_facts and snp_request_facts write (0009), with values
-- like the benchmark territory's: its practitioners, its communes.  Slot,
-- request and booking ids are the unit's number: the event table has no
-- foreign key on them, and the indicators read nothing else.
--
-- Loaded with session_replication_role = replica, i.e. without the
-- foreign-key check of each row on territory (the rows name territories
-- created just before) -- the event table has no other insert trigger.
-- That needs a superuser (the cluster's owner, in run.sh).
\set ON_ERROR_STOP 1

INSERT INTO territory (id, name, kind)
SELECT 'bench-o' || i, 'Territoire voisin ' || i, 'cpts'
  FROM generate_series(1, :territories - 1) i;

BEGIN;
SET LOCAL session_replication_role = replica;
WITH span AS (
    SELECT date_trunc('month', now() AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris'
               - make_interval(months => :months) AS from_at,
           date_trunc('month', now() AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris'
               AS to_at,
           (:events / 4.7)::bigint AS units
), unit AS (
    SELECT u, u % 10 AS class,
           CASE WHEN u % :territories = 0 THEN 'bench-t'
                ELSE 'bench-o' || (u % :territories) END AS territory,
           date_trunc('minute', span.from_at
                      + (span.to_at - span.from_at) * (u::float8 / span.units)) AS starts_at,
           '8' || lpad((1 + (u / :territories) % 200)::text, 10, '0') AS rpps,
           CASE WHEN u % 10 = 3 THEN 'teleconsultation' WHEN u % 10 = 6 THEN 'home'
                ELSE 'office' END AS mode,
           (ARRAY['pharmacy', 'sas', 'emergency', 'professional', 'desk'])[1 + u % 5] AS kind,
           (ARRAY['ent', 'fever', 'respiratory', 'urinary', 'skin', 'other'])[1 + u % 6] AS motif,
           (ARRAY['same_day', '24h', '48h'])[1 + u % 3] AS urgency,
           CASE WHEN u % 10 = 0 THEN '35236' ELSE (35900 + u % 10)::text END AS commune,
           (u * 7) % 95 AS age
      FROM span, generate_series(0, span.units - 1) u
), facts AS (
    SELECT unit.*,
           starts_at - make_interval(hours => 1 + (u % 47)::int) AS published_at,
           starts_at - make_interval(hours => 2 + (u % 20)::int) AS created_at,
           jsonb_build_object('starts_at', starts_at, 'duration_min', 20, 'mode', mode,
                              'audience', ARRAY['sas', 'emergency', 'pharmacy', 'desk'],
                              'site_id', 1 + (u / :territories) % 200, 'rpps', rpps,
                              'site_kind', 'practice') AS slot_facts
      FROM unit
), full_facts AS (
    SELECT facts.*,
           jsonb_build_object('requester_kind', kind, 'organisation_id', 1 + u % 500,
                              'motif', motif, 'urgency', urgency,
                              'deadline', created_at + interval '24 hours',
                              'patient_commune', commune, 'patient_age', age,
                              'patient_sex', CASE WHEN u % 2 = 0 THEN 'female' ELSE 'male' END,
                              'has_mt', u % 4 <> 0,
                              'mt_rpps', CASE WHEN u % 4 = 1 THEN rpps END,
                              'priority_groups', CASE WHEN age >= 70 THEN '["aged_70_plus"]'::jsonb
                                                      ELSE '[]'::jsonb END,
                              'created_at', created_at,
                              'triage_level', NULL::jsonb,
                              'pharmacy_protocol', CASE WHEN kind = 'pharmacy'
                                                        THEN '"sore_throat"'::jsonb END)
               AS request_facts
      FROM facts
)
INSERT INTO event (at, territory_id, actor, kind, slot_id, request_id, booking_id, from_status,
                   to_status, data)
SELECT e.at, f.territory, 'bench', e.kind, e.slot_id, e.request_id, e.booking_id, e.from_status,
       e.to_status, e.data
  FROM full_facts f
 CROSS JOIN LATERAL (VALUES
    (f.published_at, 'slot.published', f.u + 1, NULL::bigint, NULL::bigint, NULL::text, 'free',
     f.slot_facts, true),
    (f.created_at, 'request.created', NULL, f.u + 1, NULL, NULL, 'waiting', f.request_facts, true),
    (f.created_at + interval '1 second', 'offer.made', f.u + 1, f.u + 1, NULL, 'free', 'held',
     f.slot_facts || jsonb_build_object('hold_expires_at', f.created_at + interval '181 seconds'),
     f.class < 8),
    (f.created_at + interval '1 minute', 'booking.created', f.u + 1, f.u + 1, f.u + 1, 'offered',
     'booked',
     f.slot_facts || f.request_facts
         || jsonb_build_object('delay_min', extract(epoch FROM f.starts_at - f.created_at) / 60,
                               'before_deadline', true,
                               'seen_by_mt', f.request_facts ->> 'mt_rpps' = f.rpps),
     f.class < 8),
    (f.starts_at + interval '30 minutes', 'outcome.reported', f.u + 1, f.u + 1, f.u + 1, NULL,
     CASE WHEN f.u % 20 = 1 THEN 'no_show' ELSE 'attended' END, f.slot_facts, f.class < 8),
    (f.published_at + interval '1 hour', 'slot.withdrawn', f.u + 1, NULL, NULL, 'free',
     'withdrawn', '{}'::jsonb, f.class = 8),
    (f.created_at + interval '2 hours', 'request.cancelled', NULL, f.u + 1, NULL, 'waiting',
     'cancelled', '{"reason": "patient_request"}'::jsonb, f.class = 8),
    (f.created_at + interval '24 hours', 'request.unserved', NULL, f.u + 1, NULL, 'waiting',
     'unserved', '{}'::jsonb, f.class = 9)
 ) AS e (at, kind, slot_id, request_id, booking_id, from_status, to_status, data, keep)
 WHERE e.keep;
COMMIT;
