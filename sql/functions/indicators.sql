-- The monthly indicators (docs/indicators.md): the cohorts, one function per
-- indicator definition and version (snp_ind_*_v1), the rows of a period, the
-- masked and labelled table, the document and the export.  Several functions
-- wrap an earlier one kept under another name (snp_ind_rows over
-- snp_ind_rows_without_messages over ... over snp_ind_rows_without_calls); the
-- chain is what the migrations left and is kept as it is.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

CREATE OR REPLACE FUNCTION indicator_target_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM indicator_definition
                    WHERE code = NEW.code AND breakdown = '' AND section <> 'releve') THEN
        RAISE EXCEPTION 'no indicator % with a single figure', NEW.code USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;

-- A percentage with one decimal (half away from zero); NULL when den is 0.
CREATE OR REPLACE FUNCTION snp_ind_pct(num bigint, den bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN den > 0 THEN round(100.0 * num / den, 1) END
$$;

-- How many patients a ratio reveals: its numerator when there is one,
-- otherwise its denominator.
CREATE OR REPLACE FUNCTION snp_ind_base(num bigint, den bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN num > 0 THEN least(num, den) ELSE den END
$$;

-- Minutes as hours with two decimals.
CREATE OR REPLACE FUNCTION snp_ind_hours(minutes numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT round(coalesce(minutes, 0) / 60.0, 2)
$$;

-- The instants bounding a period of a territory, in its time zone:
--   month 'YYYY-MM', quarter 'YYYY-Qn', year 'YYYY' (the contract year,
--   starting in the month of setting contract_start_month, default 1).
-- consolidated_at is period_to + indicator_consolidation_days (default 7):
-- only events recorded before it are read.
CREATE OR REPLACE FUNCTION snp_ind_period(p_territory text, p_kind text, p_period text,
                               OUT period_from timestamptz, OUT period_to timestamptz,
                               OUT consolidated_at timestamptz, OUT time_zone text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    first_day date;
    n_months int;
BEGIN
    time_zone := snp_tz(p_territory);
    IF p_kind = 'month' AND p_period ~ '^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$' THEN
        first_day := make_date(substr(p_period, 1, 4)::int, substr(p_period, 6, 2)::int, 1);
        n_months := 1;
    ELSIF p_kind = 'quarter' AND p_period ~ '^(19|20|21)[0-9]{2}-Q[1-4]$' THEN
        first_day := make_date(substr(p_period, 1, 4)::int,
                               (substr(p_period, 7, 1)::int - 1) * 3 + 1, 1);
        n_months := 3;
    ELSIF p_kind = 'year' AND p_period ~ '^(19|20|21)[0-9]{2}$' THEN
        first_day := make_date(p_period::int,
                               snp_setting_int(p_territory, 'contract_start_month', 1, 1, 12), 1);
        n_months := 12;
    ELSE
        RAISE EXCEPTION 'invalid period: % %', p_kind, p_period USING ERRCODE = '22023';
    END IF;
    period_from := first_day::timestamp AT TIME ZONE time_zone;
    period_to := (first_day + make_interval(months => n_months)) AT TIME ZONE time_zone;
    -- Days are added in local time, so that the result does not depend on
    -- the session's TimeZone when a clock change falls in between.
    consolidated_at := ((period_to AT TIME ZONE time_zone) + make_interval(days => snp_setting_int(
        p_territory, 'indicator_consolidation_days', 7, 1, 90))) AT TIME ZONE time_zone;
END $$;

-- The ISO weeks that belong to a period: those whose Thursday falls in it
-- (the ISO rule for years, applied to months and quarters), as the instants
-- of their first Monday and of the Monday after the last one, local time.
CREATE OR REPLACE FUNCTION snp_ind_week_window(p_from timestamptz, p_to timestamptz, p_tz text,
                                    OUT week_from timestamptz, OUT week_to timestamptz,
                                    OUT weeks int)
LANGUAGE sql STABLE AS $$
    SELECT (first_thu - 3)::timestamp AT TIME ZONE p_tz,
           (last_thu + 4)::timestamp AT TIME ZONE p_tz,
           greatest((last_thu - first_thu) / 7 + 1, 0)
      FROM (SELECT d0 + (4 - extract(isodow FROM d0)::int + 7) % 7 AS first_thu,
                   (d1 - 1) - (extract(isodow FROM d1 - 1)::int - 4 + 7) % 7 AS last_thu
              FROM (SELECT (p_from AT TIME ZONE p_tz)::date AS d0,
                           (p_to AT TIME ZONE p_tz)::date AS d1) d) w
$$;

-- The requests of a territory created in [p_from, p_to), with their facts
-- as recorded at creation and their fate as told by the events recorded
-- before p_as_of.  final_status is booked (a booking not cancelled),
-- cancelled, unserved, or open.  Only the event table is read.
--
-- After fetching the cohort's events through the index, everything is
-- grouping, no join: the planner cannot estimate cohorts read out of JSON
-- and would pick quadratic nested loops for joins between them.
CREATE OR REPLACE FUNCTION snp_ind_request_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
                                       p_as_of timestamptz)
RETURNS TABLE (request_id bigint, created_at timestamptz, requester_kind text, motif text,
               urgency text, deadline timestamptz, patient_commune text, patient_age int,
               has_mt boolean, mt_rpps text, priority_groups text[], final_status text,
               cancel_reason text, booking_id bigint, slot_rpps text, starts_at timestamptz,
               delay_min numeric, outcome text, offers_made int, offers_declined int,
               holds_expired int)
LANGUAGE sql STABLE AS $$
    WITH cohort AS MATERIALIZED (
        SELECT e.request_id
          FROM event e
         WHERE e.territory_id = p_territory AND e.kind = 'request.created'
           AND e.at >= p_from AND e.at < p_as_of
           AND (e.data ->> 'created_at')::timestamptz >= p_from
           AND (e.data ->> 'created_at')::timestamptz < p_to
    ), ev AS MATERIALIZED (
        SELECT e.id, e.request_id, e.booking_id, e.kind, e.to_status, e.data
          FROM cohort c JOIN event e ON e.request_id = c.request_id
         WHERE e.at < p_as_of
    ), bookings AS (
        -- Per booking: when it was made, with what facts, whether it was
        -- cancelled, and its last reported outcome.
        SELECT b.request_id, b.booking_id,
               max(b.id) FILTER (WHERE b.kind = 'booking.created') AS made,
               bool_or(b.kind = 'booking.cancelled') AS cancelled,
               (array_agg(b.data ORDER BY b.id DESC)
                    FILTER (WHERE b.kind = 'booking.created'))[1] AS facts,
               (array_agg(b.to_status ORDER BY b.id DESC)
                    FILTER (WHERE b.kind = 'outcome.reported'))[1] AS outcome
          FROM ev b
         WHERE b.booking_id IS NOT NULL
         GROUP BY b.request_id, b.booking_id
    ), rows AS (
        SELECT ev.request_id, ev.id, ev.kind, ev.data, NULL::bigint AS booking_id,
               NULL::text AS outcome
          FROM ev
        UNION ALL
        SELECT bk.request_id, bk.made, 'live', bk.facts, bk.booking_id, bk.outcome
          FROM bookings bk
         WHERE bk.made IS NOT NULL AND NOT bk.cancelled
    ), per_request AS (
        SELECT x.request_id,
               (array_agg(x.data) FILTER (WHERE x.kind = 'request.created'))[1] AS f,
               (array_agg(x.kind ORDER BY x.id DESC)
                    FILTER (WHERE x.kind IN ('request.created', 'request.waiting',
                                             'request.offered', 'booking.created',
                                             'request.cancelled', 'request.unserved')))[1]
                   AS last_kind,
               (array_agg(x.data ->> 'reason' ORDER BY x.id DESC)
                    FILTER (WHERE x.kind = 'request.cancelled'))[1] AS reason,
               (array_agg(x.data ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1] AS live,
               (array_agg(x.booking_id ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1]
                   AS live_booking,
               (array_agg(x.outcome ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1]
                   AS live_outcome,
               count(*) FILTER (WHERE x.kind = 'offer.made')::int AS made,
               count(*) FILTER (WHERE x.kind = 'offer.declined')::int AS declined,
               count(*) FILTER (WHERE x.kind = 'offer.expired')::int AS expired
          FROM rows x
         GROUP BY x.request_id
    )
    SELECT q.request_id, (q.f ->> 'created_at')::timestamptz, q.f ->> 'requester_kind',
           q.f ->> 'motif', q.f ->> 'urgency', (q.f ->> 'deadline')::timestamptz,
           q.f ->> 'patient_commune', (q.f ->> 'patient_age')::int,
           (q.f ->> 'has_mt')::boolean, q.f ->> 'mt_rpps',
           ARRAY(SELECT jsonb_array_elements_text(q.f -> 'priority_groups')),
           CASE WHEN q.live_booking IS NOT NULL THEN 'booked'
                WHEN q.last_kind = 'request.cancelled' THEN 'cancelled'
                WHEN q.last_kind = 'request.unserved' THEN 'unserved'
                ELSE 'open' END,
           CASE WHEN q.live_booking IS NULL AND q.last_kind = 'request.cancelled'
                THEN coalesce(q.reason, 'other') END,
           q.live_booking, q.live ->> 'rpps', (q.live ->> 'starts_at')::timestamptz,
           (q.live ->> 'delay_min')::numeric, q.live_outcome, q.made, q.declined, q.expired
      FROM per_request q
$$;

-- The slots published by a territory whose start falls in [p_from, p_to),
-- with their fate as told by the events recorded before p_as_of: withdrawn,
-- released to every audience, and the booking not cancelled (whichever
-- territory's request it serves) with its request's facts and outcome.
-- Join-free after the indexed fetch, as snp_ind_request_cohort.
CREATE OR REPLACE FUNCTION snp_ind_slot_cohort_as_published(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (slot_id bigint, rpps text, site_kind text, mode text, starts_at timestamptz,
               duration_min int, withdrawn boolean, released boolean, booking_id bigint,
               requester_kind text, delay_min numeric, mt_rpps text, outcome text)
LANGUAGE sql STABLE AS $$
    WITH cohort AS MATERIALIZED (
        SELECT e.slot_id
          FROM event e
         WHERE e.territory_id = p_territory AND e.kind = 'slot.published' AND e.at < p_as_of
           AND (e.data ->> 'starts_at')::timestamptz >= p_from
           AND (e.data ->> 'starts_at')::timestamptz < p_to
    ), ev AS MATERIALIZED (
        SELECT e.id, e.slot_id, e.booking_id, e.kind, e.to_status, e.data
          FROM cohort c JOIN event e ON e.slot_id = c.slot_id
         WHERE e.at < p_as_of
    ), bookings AS (
        SELECT b.slot_id, b.booking_id,
               max(b.id) FILTER (WHERE b.kind = 'booking.created') AS made,
               bool_or(b.kind = 'booking.cancelled') AS cancelled,
               (array_agg(b.data ORDER BY b.id DESC)
                    FILTER (WHERE b.kind = 'booking.created'))[1] AS facts,
               (array_agg(b.to_status ORDER BY b.id DESC)
                    FILTER (WHERE b.kind = 'outcome.reported'))[1] AS outcome
          FROM ev b
         WHERE b.booking_id IS NOT NULL
         GROUP BY b.slot_id, b.booking_id
    ), rows AS (
        SELECT ev.slot_id, ev.id, ev.kind, ev.data, NULL::bigint AS booking_id,
               NULL::text AS outcome
          FROM ev
        UNION ALL
        SELECT bk.slot_id, bk.made, 'live', bk.facts, bk.booking_id, bk.outcome
          FROM bookings bk
         WHERE bk.made IS NOT NULL AND NOT bk.cancelled
    ), per_slot AS (
        SELECT x.slot_id,
               (array_agg(x.data) FILTER (WHERE x.kind = 'slot.published'))[1] AS f,
               bool_or(x.kind = 'slot.withdrawn') AS withdrawn,
               bool_or(x.kind = 'slot.released') AS released,
               (array_agg(x.data ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1] AS live,
               (array_agg(x.booking_id ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1]
                   AS live_booking,
               (array_agg(x.outcome ORDER BY x.id DESC) FILTER (WHERE x.kind = 'live'))[1]
                   AS live_outcome
          FROM rows x
         GROUP BY x.slot_id
    )
    SELECT q.slot_id, q.f ->> 'rpps', q.f ->> 'site_kind', q.f ->> 'mode',
           (q.f ->> 'starts_at')::timestamptz, (q.f ->> 'duration_min')::int, q.withdrawn,
           q.released, q.live_booking, q.live ->> 'requester_kind',
           (q.live ->> 'delay_min')::numeric, q.live ->> 'mt_rpps', q.live_outcome
      FROM per_slot q
$$;

-- Each returns (code, version, key, value, patient_count): key is '' for a
-- single figure; patient_count is how many patients the cell describes
-- (NULL when it counts no patients, e.g. slots or hours), for masking.
CREATE OR REPLACE FUNCTION snp_ind_requests_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH r AS MATERIALIZED (
        SELECT c.*, c.final_status = 'booked' AS served,
               (c.created_at AT TIME ZONE snp_tz(p_territory))::date AS created_day,
               (c.starts_at AT TIME ZONE snp_tz(p_territory))::date AS seen_day
          FROM snp_ind_request_cohort(p_territory, p_from, p_to, p_as_of) c
    ), t AS (
        SELECT count(*) AS n,
               count(*) FILTER (WHERE served) AS served,
               count(*) FILTER (WHERE served AND starts_at <= deadline) AS before_deadline,
               count(*) FILTER (WHERE served AND seen_day = created_day) AS same_day,
               count(*) FILTER (WHERE served AND delay_min <= 1440) AS h24,
               count(*) FILTER (WHERE served AND delay_min <= 2880) AS h48,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY delay_min) FILTER (WHERE served)
                   AS median,
               percentile_disc(0.9) WITHIN GROUP (ORDER BY delay_min) FILTER (WHERE served)
                   AS p90,
               count(*) FILTER (WHERE final_status = 'unserved') AS unserved,
               count(*) FILTER (WHERE final_status = 'cancelled') AS cancelled,
               coalesce(sum(offers_made), 0) AS offers_made,
               count(*) FILTER (WHERE offers_made > 0) AS offers_made_p,
               coalesce(sum(offers_declined), 0) AS offers_declined,
               count(*) FILTER (WHERE offers_declined > 0) AS offers_declined_p,
               coalesce(sum(holds_expired), 0) AS holds_expired,
               count(*) FILTER (WHERE holds_expired > 0) AS holds_expired_p,
               count(*) FILTER (WHERE served AND outcome IS NOT NULL) AS outcomes,
               count(*) FILTER (WHERE served AND outcome = 'no_show') AS no_shows,
               count(*) FILTER (WHERE served AND outcome = 'redirected_emergency') AS redirected,
               count(*) FILTER (WHERE served AND outcome = 'hospitalised') AS hospitalised,
               count(*) FILTER (WHERE served AND outcome = 'cancelled_by_patient')
                   AS cancelled_by_patient,
               count(*) FILTER (WHERE requester_kind = 'emergency') AS ed,
               count(*) FILTER (WHERE requester_kind = 'emergency'
                                  AND cancel_reason = 'patient_refused') AS ed_refused,
               count(*) FILTER (WHERE requester_kind = 'emergency' AND served) AS ed_served,
               count(*) FILTER (WHERE requester_kind = 'emergency' AND served
                                  AND outcome IN ('attended', 'redirected_emergency',
                                                  'hospitalised')) AS ed_honoured,
               count(*) FILTER (WHERE requester_kind = 'emergency' AND served
                                  AND outcome = 'attended') AS ed_avoided,
               count(*) FILTER (WHERE served AND NOT has_mt) AS served_no_mt,
               -- Derived rather than read from booking.created's seen_by_mt,
               -- which is true for a practitioner-less centre slot booked for
               -- a patient without a médecin traitant (NULL = NULL).
               count(*) FILTER (WHERE served AND slot_rpps IS NOT NULL
                                  AND slot_rpps = mt_rpps) AS own_mt
          FROM r
    ), groups AS (
        SELECT r.request_id, r.served, g.grp
          FROM r CROSS JOIN LATERAL (
              SELECT x FROM unnest(r.priority_groups) x WHERE x IN ('ald', 'c2s')
              UNION
              SELECT 'aged_70_plus' WHERE r.patient_age >= 70
                                       OR 'aged_70_plus' = ANY (r.priority_groups)) g (grp)
    )
    SELECT v.code, 1, v.key, v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('requests', '', t.n::numeric, t.n),
        ('requests_cancelled', '', t.cancelled, t.cancelled),
        ('requests_served', '', t.served, t.served),
        ('requests_served_rate', '', snp_ind_pct(t.served, t.n), snp_ind_base(t.served, t.n)),
        ('served_before_deadline', '', t.before_deadline, t.before_deadline),
        ('served_before_deadline_rate', '', snp_ind_pct(t.before_deadline, t.n),
         snp_ind_base(t.before_deadline, t.n)),
        ('seen_same_day', '', t.same_day, t.same_day),
        ('seen_same_day_rate', '', snp_ind_pct(t.same_day, t.n), snp_ind_base(t.same_day, t.n)),
        ('seen_within_24h', '', t.h24, t.h24),
        ('seen_within_24h_rate', '', snp_ind_pct(t.h24, t.n), snp_ind_base(t.h24, t.n)),
        ('seen_within_48h', '', t.h48, t.h48),
        ('seen_within_48h_rate', '', snp_ind_pct(t.h48, t.n), snp_ind_base(t.h48, t.n)),
        ('delay_median', '', round(t.median, 1), t.served),
        ('delay_p90', '', round(t.p90, 1), t.served),
        ('requests_unserved', '', t.unserved, t.unserved),
        ('requests_unserved_rate', '', snp_ind_pct(t.unserved, t.n),
         snp_ind_base(t.unserved, t.n)),
        ('offers_made', '', t.offers_made, t.offers_made_p),
        ('offers_declined', '', t.offers_declined, t.offers_declined_p),
        ('holds_expired', '', t.holds_expired, t.holds_expired_p),
        ('outcomes_reported', '', t.outcomes, t.outcomes),
        ('no_shows', '', t.no_shows, t.no_shows),
        ('no_show_rate', '', snp_ind_pct(t.no_shows, t.outcomes),
         snp_ind_base(t.no_shows, t.outcomes)),
        ('redirected_emergency', '', t.redirected, t.redirected),
        ('hospitalised', '', t.hospitalised, t.hospitalised),
        ('cancelled_by_patient', '', t.cancelled_by_patient, t.cancelled_by_patient),
        ('ed_redirections', '', t.ed, t.ed),
        ('ed_redirections_refused', '', t.ed_refused, t.ed_refused),
        ('ed_redirections_served', '', t.ed_served, t.ed_served),
        ('ed_redirections_honoured', '', t.ed_honoured, t.ed_honoured),
        ('ed_visits_avoided', '', t.ed_avoided, t.ed_avoided),
        ('served_without_mt', '', t.served_no_mt, t.served_no_mt),
        ('served_without_mt_share', '', snp_ind_pct(t.served_no_mt, t.served),
         snp_ind_base(t.served_no_mt, t.served)),
        ('seen_by_own_mt', '', t.own_mt, t.own_mt)
      ) v (code, key, value, patient_count)
    UNION ALL
    SELECT 'requests_by_source', 1, k.key, count(r.request_id), count(r.request_id)
      FROM unnest(ARRAY['pharmacy', 'emergency', 'sas', 'professional', 'desk']) k (key)
      LEFT JOIN r ON r.requester_kind = k.key
     GROUP BY k.key
    UNION ALL
    SELECT 'requests_by_motif', 1, k.key, count(r.request_id), count(r.request_id)
      FROM (SELECT unnest(ARRAY['fever', 'ent', 'respiratory', 'urinary', 'digestive', 'skin',
                                'minor_trauma', 'musculoskeletal', 'headache', 'eye',
                                'psychological', 'other'])
            UNION SELECT motif FROM r) k (key)
      LEFT JOIN r ON r.motif = k.key
     GROUP BY k.key
    UNION ALL
    SELECT 'requests_by_urgency', 1, k.key, count(r.request_id), count(r.request_id)
      FROM unnest(ARRAY['same_day', '24h', '48h']) k (key)
      LEFT JOIN r ON r.urgency = k.key
     GROUP BY k.key
    UNION ALL
    SELECT 'requests_cancelled_by_reason', 1, k.key, count(r.request_id), count(r.request_id)
      FROM (SELECT unnest(ARRAY['patient_request', 'patient_seen_elsewhere',
                                'practitioner_unavailable', 'patient_refused', 'duplicate',
                                'entered_in_error', 'other'])
            UNION SELECT cancel_reason FROM r WHERE cancel_reason IS NOT NULL) k (key)
      LEFT JOIN r ON r.cancel_reason = k.key
     GROUP BY k.key
    UNION ALL
    SELECT c.code, 1, k.key, count(g.request_id) FILTER (WHERE c.all_requests OR g.served),
           count(g.request_id) FILTER (WHERE c.all_requests OR g.served)
      FROM (VALUES ('requests_priority_group', true), ('served_priority_group', false))
           c (code, all_requests)
     CROSS JOIN unnest(ARRAY['ald', 'c2s', 'aged_70_plus']) k (key)
      LEFT JOIN groups g ON g.grp = k.key
     GROUP BY c.code, k.key
    UNION ALL
    SELECT 'requests_by_commune', 1, r.patient_commune, count(*), count(*)
      FROM r GROUP BY r.patient_commune
    UNION ALL
    SELECT 'served_by_commune', 1, r.patient_commune, count(*) FILTER (WHERE r.served),
           count(*) FILTER (WHERE r.served)
      FROM r GROUP BY r.patient_commune
$$;

CREATE OR REPLACE FUNCTION snp_ind_slots_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                 p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH s AS MATERIALIZED (
        SELECT * FROM snp_ind_slot_cohort(p_territory, p_from, p_to, p_as_of)
    ), t AS (
        SELECT count(*) AS n, sum(duration_min) AS minutes,
               count(*) FILTER (WHERE withdrawn) AS withdrawn,
               count(*) FILTER (WHERE booking_id IS NOT NULL) AS used,
               count(*) FILTER (WHERE released) AS released,
               count(DISTINCT rpps) FILTER (WHERE NOT withdrawn) AS gps
          FROM s
    )
    SELECT v.code, 1, v.key, v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('slots_published', '', t.n::numeric, NULL::bigint),
        ('slot_hours_published', '', snp_ind_hours(t.minutes), NULL),
        ('slots_withdrawn', '', t.withdrawn, NULL),
        ('slots_used', '', t.used, t.used),
        ('slot_use_rate', '', snp_ind_pct(t.used, t.n - t.withdrawn), t.used),
        ('slots_released', '', t.released, NULL),
        ('participating_gps', '', t.gps, NULL)
      ) v (code, key, value, patient_count)
    UNION ALL
    SELECT c.code, 1, k.key,
           CASE WHEN c.hours THEN snp_ind_hours(sum(s.duration_min)) ELSE count(s.slot_id) END,
           NULL
      FROM (VALUES ('slots_published_by_mode', false), ('slot_hours_by_mode', true)) c (code, hours)
     CROSS JOIN unnest(ARRAY['office', 'home', 'teleconsultation']) k (key)
      LEFT JOIN s ON s.mode = k.key
     GROUP BY c.code, c.hours, k.key
    UNION ALL
    SELECT c.code, 1, k.key,
           CASE WHEN c.hours THEN snp_ind_hours(sum(s.duration_min)) ELSE count(s.slot_id) END,
           NULL
      FROM (VALUES ('slots_published_by_site_kind', false), ('slot_hours_by_site_kind', true))
           c (code, hours)
     CROSS JOIN unnest(ARRAY['practice', 'csnp', 'teleconsultation']) k (key)
      LEFT JOIN s ON s.site_kind = k.key
     GROUP BY c.code, c.hours, k.key
$$;

-- Per practitioner and ISO week (weeks whose Thursday falls in the period,
-- taken whole): slots not withdrawn, their minutes, and the consultations
-- eligible to the SAS fee supplement (requested by the SAS, starting within
-- 48 h of the request, for a patient whose médecin traitant is someone
-- else, not reported as a no-show or a cancellation by the patient).
CREATE OR REPLACE FUNCTION snp_ind_participation_v1(p_territory text, p_from timestamptz,
                                         p_to timestamptz, p_as_of timestamptz)
RETURNS TABLE (rpps text, iso_week text, week_monday date, slots bigint, minutes bigint,
               sas_48h bigint)
LANGUAGE sql STABLE AS $$
    WITH w AS (
        SELECT * FROM snp_ind_week_window(p_from, p_to, snp_tz(p_territory))
    ), s AS (
        SELECT c.*, (c.starts_at AT TIME ZONE snp_tz(p_territory))::date AS day
          FROM w, snp_ind_slot_cohort(p_territory, w.week_from, w.week_to, p_as_of) c
         WHERE c.rpps IS NOT NULL
    )
    SELECT s.rpps, to_char(s.day, 'IYYY-"W"IW'),
           min(s.day - (extract(isodow FROM s.day)::int - 1)),
           count(*) FILTER (WHERE NOT s.withdrawn),
           coalesce(sum(s.duration_min) FILTER (WHERE NOT s.withdrawn), 0),
           count(*) FILTER (WHERE s.booking_id IS NOT NULL AND s.requester_kind = 'sas'
                              AND s.delay_min <= 2880 AND s.mt_rpps IS DISTINCT FROM s.rpps
                              AND coalesce(s.outcome, '') NOT IN ('no_show',
                                                                  'cancelled_by_patient'))
      FROM s
     GROUP BY s.rpps, to_char(s.day, 'IYYY-"W"IW')
$$;

CREATE OR REPLACE FUNCTION snp_ind_participation_totals_v1(p_territory text, p_from timestamptz,
                                                p_to timestamptz, p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH g AS (
        SELECT * FROM snp_ind_participation_v1(p_territory, p_from, p_to, p_as_of)
    ), t AS (
        SELECT count(*) FILTER (WHERE slots > 0) AS weeks,
               count(*) FILTER (WHERE minutes >= 120) AS weeks_2h,
               coalesce(sum(sas_48h), 0) AS sas,
               coalesce(sum(least(sas_48h, 20)), 0) AS sas_capped
          FROM g
    )
    SELECT v.code, 1, '', v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('gp_weeks_with_slots', t.weeks::numeric, NULL::bigint),
        ('gp_weeks_2h', t.weeks_2h, NULL),
        ('sas_48h_consultations', t.sas, t.sas),
        ('sas_48h_consultations_capped', t.sas_capped, t.sas_capped)
      ) v (code, value, patient_count)
$$;

-- Every indicator of the catalogue's current versions, unmasked: for
-- operators and tests only; exports go through snp_indicator_table.
CREATE OR REPLACE FUNCTION snp_ind_rows_without_calls(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_requests_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_slots_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_participation_totals_v1(p_territory, p_from, p_to, p_as_of)
$$;

-- Cells counting fewer patients than this are masked: territory setting
-- indicator_mask_threshold, 2 to 100, default 5.
CREATE OR REPLACE FUNCTION snp_ind_mask_threshold(p_territory text) RETURNS int LANGUAGE sql STABLE AS $$
    SELECT snp_setting_int(p_territory, 'indicator_mask_threshold', 5, 2, 100)
$$;

-- The indicators of a period as published: masked, rounded, labelled, with
-- targets, in a fixed order (ord).
--
-- Masking: a cell describing 1 to threshold-1 patients is masked, its
-- value_text '<threshold' (zero describes nobody and stays visible).  In a
-- breakdown where exactly one cell is so masked, the smallest other non-zero
-- cell is masked too, value_text 'secret', so that the first cannot be
-- recomputed from the total.
CREATE OR REPLACE FUNCTION snp_indicator_table_unlabelled_organisations(p_territory text, p_kind text, p_period text)
RETURNS TABLE (ord bigint, section text, code text, version int, label_fr text, unit text,
               breakdown text, key text, key_label text, value numeric, value_text text,
               masked boolean, target numeric, progress_pct numeric, target_met boolean)
LANGUAGE sql STABLE AS $$
    WITH p AS (
        SELECT * FROM snp_ind_period(p_territory, p_kind, p_period)
    ), thr AS (
        SELECT snp_ind_mask_threshold(p_territory) AS n
    ), raw AS (
        SELECT r.key, r.value, r.patient_count, d.*,
               coalesce(r.patient_count > 0 AND r.patient_count < thr.n, false) AS primary_mask
          FROM p, thr, snp_ind_rows(p_territory, p.period_from, p.period_to, p.consolidated_at) r
          JOIN indicator_definition d ON d.code = r.code AND d.version = r.version
    ), ranked AS (
        SELECT raw.*,
               count(*) FILTER (WHERE primary_mask) OVER (PARTITION BY raw.code) AS n_primary,
               row_number() OVER (PARTITION BY raw.code,
                                               NOT primary_mask
                                               AND coalesce(patient_count, 0) > 0
                                  ORDER BY patient_count, raw.key COLLATE "C") AS rk
          FROM raw
    ), decided AS (
        SELECT ranked.*,
               primary_mask OR (breakdown <> '' AND n_primary = 1 AND NOT primary_mask
                                AND coalesce(patient_count, 0) > 0 AND rk = 1) AS is_masked
          FROM ranked
    )
    SELECT row_number() OVER (ORDER BY f.position, kl.position NULLS LAST, f.key COLLATE "C"),
           f.section, f.code, f.version, f.label_fr, f.unit, f.breakdown, f.key,
           CASE WHEN f.breakdown = '' THEN ''
                ELSE coalesce(kl.label_fr, (SELECT c.name || ' (' || c.insee || ')'
                                              FROM commune c
                                             WHERE f.breakdown = 'commune' AND c.insee = f.key),
                              f.key) END,
           CASE WHEN NOT f.is_masked THEN round(f.value, f.decimals) END,
           CASE WHEN f.primary_mask THEN '<' || thr.n
                WHEN f.is_masked THEN 'secret'
                WHEN f.value IS NULL THEN ''
                ELSE round(f.value, f.decimals)::text END,
           f.is_masked,
           t.target,
           CASE WHEN NOT f.is_masked AND f.value IS NOT NULL AND f.direction = 'higher'
                     AND t.target > 0
                THEN round(100 * round(f.value, f.decimals) / t.target, 1) END,
           CASE WHEN NOT f.is_masked AND f.value IS NOT NULL AND t.target IS NOT NULL
                THEN CASE f.direction WHEN 'higher' THEN round(f.value, f.decimals) >= t.target
                                      WHEN 'lower' THEN round(f.value, f.decimals) <= t.target
                     END END
      FROM decided f
     CROSS JOIN thr
      LEFT JOIN indicator_key_label kl ON kl.breakdown = f.breakdown AND kl.key = f.key
      LEFT JOIN indicator_target t ON t.territory_id = p_territory AND t.code = f.code
                                  AND t.period_kind = p_kind AND f.key = ''
     ORDER BY 1
$$;

-- The whole extraction of a period as one JSON document (key order as
-- written, lists in their fixed order): territory, period, threshold,
-- indicators, participation statement and the definitions used.  Rendered
-- to CSV, JSON and HTML by snpd (dispatcher/commands/indicators.c).
CREATE OR REPLACE FUNCTION snp_indicators_document(p_territory text, p_kind text, p_period text)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'format', 'snp-indicators/1',
        'territory', json_build_object('id', t.id, 'name', t.name),
        'period', json_build_object(
            'kind', p_kind, 'label', p_period, 'time_zone', p.time_zone,
            'from', snp_rfc3339(p.period_from, p.time_zone),
            'to', snp_rfc3339(p.period_to, p.time_zone),
            'last_day', to_char((p.period_to AT TIME ZONE p.time_zone)::date - 1, 'YYYY-MM-DD'),
            'consolidated_at', snp_rfc3339(p.consolidated_at, p.time_zone),
            'weeks_from', to_char((w.week_from AT TIME ZONE p.time_zone)::date, 'YYYY-MM-DD'),
            'weeks_to', to_char((w.week_to AT TIME ZONE p.time_zone)::date - 1, 'YYYY-MM-DD'),
            'weeks', w.weeks),
        'mask_threshold', snp_ind_mask_threshold(p_territory),
        'indicators', coalesce((
            SELECT json_agg(json_build_object(
                       'code', i.code, 'version', i.version, 'section', i.section,
                       'label', i.label_fr, 'unit', i.unit, 'breakdown', i.breakdown,
                       'key', i.key, 'key_label', i.key_label, 'value', i.value,
                       'value_text', i.value_text, 'masked', i.masked, 'target', i.target,
                       'progress_pct', i.progress_pct, 'target_met', i.target_met)
                       ORDER BY i.ord)
              FROM snp_indicator_table(p_territory, p_kind, p_period) i), '[]'::json),
        'participation', coalesce((
            SELECT json_agg(json_build_object(
                       'rpps', s.rpps, 'family_name', s.family_name, 'given_name', s.given_name,
                       'iso_week', s.iso_week,
                       'week_monday', to_char(s.week_monday, 'YYYY-MM-DD'),
                       'slots', s.slots, 'hours', s.hours, 'rule_2h_met', s.rule_2h_met,
                       'weeks_2h', s.weeks_2h, 'weeks_in_period', s.weeks_in_period,
                       'sas_48h', s.sas_48h, 'sas_48h_capped', s.sas_48h_capped,
                       'sas_text', s.sas_text, 'capped_text', s.capped_text,
                       'masked', s.masked)
                       ORDER BY s.ord)
              FROM snp_participation_statement(p_territory, p_kind, p_period) s), '[]'::json),
        'definitions', (
            SELECT json_agg(json_build_object(
                       'code', d.code, 'version', d.version, 'section', d.section,
                       'label', d.label_fr, 'formula', d.formula_fr, 'unit', d.unit,
                       'breakdown', d.breakdown, 'sql_function', d.sql_function)
                       ORDER BY d.position, d.code COLLATE "C")
              FROM indicator_definition d
             WHERE d.version = (SELECT max(x.version) FROM indicator_definition x
                                 WHERE x.code = d.code)))
      FROM territory t, snp_ind_period(p_territory, p_kind, p_period) p,
           snp_ind_week_window(p.period_from, p.period_to, p.time_zone) w
     WHERE t.id = p_territory
$$;

-- An extraction by an operator (snpd indicators): audited with who, which
-- territory, which period and which format, then the document.
CREATE OR REPLACE FUNCTION snp_indicators_export(p_territory text, p_kind text, p_period text,
                                      p_format text, p_actor text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    doc json;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM territory WHERE id = p_territory) THEN
        RAISE EXCEPTION 'no territory %', p_territory USING ERRCODE = 'SN404';
    END IF;
    doc := snp_indicators_document(p_territory, p_kind, p_period);
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, 'admin', 'indicators.export',
            jsonb_build_object('territory', p_territory, 'period_kind', p_kind,
                               'period', p_period, 'format', p_format));
    RETURN doc;
END $$;

CREATE OR REPLACE FUNCTION snp_indicators_get_unmasked_only(p_territory text, p_month text, p_actor text,
                                              p_role text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v json;
BEGIN
    SELECT json_build_object(
               'territory_id', p_territory, 'month', p_month,
               'indicators', coalesce(json_agg(json_strip_nulls(json_build_object(
                   'name', x.name, 'label', x.label, 'value', x.value,
                   'unit', CASE WHEN x.unit <> 'count' THEN x.unit END,
                   'definition_version', x.version)) ORDER BY x.rank), '[]'::json))
      INTO v
      FROM (SELECT row_number() OVER (ORDER BY i.key <> '', i.ord) AS rank, i.unit, i.version,
                   i.value,
                   i.code || CASE WHEN i.key = '' THEN ''
                                  ELSE '__' || lower(regexp_replace(i.key, '[^A-Za-z0-9_]', '_',
                                                                    'g')) END AS name,
                   left(i.label_fr || CASE WHEN i.key = '' THEN ''
                                           ELSE ' — ' || coalesce(i.key_label, i.key) END,
                        300) AS label
              FROM snp_indicator_table(p_territory, 'month', p_month) i
             WHERE NOT i.masked AND i.value IS NOT NULL
             ORDER BY 1 LIMIT 200) x;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'indicators.read',
            jsonb_build_object('territory', p_territory, 'period_kind', 'month',
                               'period', p_month));
    RETURN v;
END $$;

CREATE OR REPLACE FUNCTION snp_indicators_get(p_territory text, p_month text, p_actor text,
                                   p_role text)
RETURNS json LANGUAGE sql AS $$
    SELECT (snp_indicators_get_unmasked_only(p_territory, p_month, p_actor, p_role)::jsonb
            || jsonb_build_object('masked', coalesce((
                SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                           'name', x.name, 'label', x.label,
                           'reason', x.reason, 'below', x.below,
                           'definition_version', x.version)) ORDER BY x.ord)
                  FROM (SELECT i.ord, i.version,
                               i.code || CASE WHEN i.key = '' THEN ''
                                              ELSE '__' || lower(regexp_replace(
                                                      i.key, '[^A-Za-z0-9_]', '_', 'g')) END
                                   AS name,
                               left(i.label_fr || CASE WHEN i.key = '' THEN ''
                                                       ELSE ' — ' || coalesce(i.key_label, i.key)
                                                  END, 300) AS label,
                               CASE WHEN i.value_text LIKE '<%' THEN 'small_count'
                                    ELSE 'complementary' END AS reason,
                               CASE WHEN i.value_text LIKE '<%'
                                    THEN substr(i.value_text, 2)::int END AS below
                          FROM snp_indicator_table(p_territory, 'month', p_month) i
                         WHERE i.masked
                         ORDER BY i.ord LIMIT 200) x), '[]'::jsonb)))::json
$$;

-- The calls recorded in [p_from, p_to) by the territory's SAS, followed until
-- p_as_of: for a request for a slot, whether the request had a booking not
-- cancelled by then (served).  Read from the log alone, like the other
-- cohorts (docs/indicators.md, "Principles").
CREATE OR REPLACE FUNCTION snp_ind_call_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
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
CREATE OR REPLACE FUNCTION snp_ind_calls_v1(p_territory text, p_from timestamptz, p_to timestamptz,
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

CREATE OR REPLACE FUNCTION snp_ind_request_breakdowns_v1(p_territory text, p_from timestamptz,
                                              p_to timestamptz, p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS MATERIALIZED (
        SELECT request_id, final_status = 'booked' AS served, has_mt, patient_age,
               priority_groups
          FROM snp_ind_request_cohort(p_territory, p_from, p_to, p_as_of)
    ), o AS MATERIALIZED (
        SELECT c.served, coalesce(e.data ->> 'organisation_id', 'unknown') AS organisation
          FROM c JOIN event e ON e.request_id = c.request_id AND e.kind = 'request.created'
    ), no_mt AS (
        -- A request counts in each group of its patient, as in 0004.
        SELECT c.request_id, c.served, g.grp
          FROM c CROSS JOIN LATERAL (
              SELECT 'aged_17_plus' WHERE c.patient_age >= 17
              UNION
              SELECT x FROM unnest(c.priority_groups) x WHERE x IN ('ald', 'c2s')
              UNION
              SELECT 'aged_70_plus' WHERE c.patient_age >= 70
                                       OR 'aged_70_plus' = ANY (c.priority_groups)) g (grp)
         WHERE NOT c.has_mt
    )
    SELECT 'requests_by_organisation', 1, o.organisation, count(*), count(*)
      FROM o GROUP BY o.organisation
    UNION ALL
    SELECT 'served_by_organisation', 1, o.organisation, count(*) FILTER (WHERE o.served),
           count(*) FILTER (WHERE o.served)
      FROM o GROUP BY o.organisation
    UNION ALL
    SELECT k.code, 1, g.key, count(n.request_id) FILTER (WHERE k.all_requests OR n.served),
           count(n.request_id) FILTER (WHERE k.all_requests OR n.served)
      FROM (VALUES ('requests_without_mt_by_group', true),
                   ('served_without_mt_by_group', false)) k (code, all_requests)
     CROSS JOIN unnest(ARRAY['aged_17_plus', 'ald', 'c2s', 'aged_70_plus']) g (key)
      LEFT JOIN no_mt n ON n.grp = g.key
     GROUP BY k.code, g.key
$$;

-- Per care centre: the slots of the period at each CSNP site (site_id is a
-- fact of slot.published since 0009), joined to the slot cohort of 0004 as
-- above.  Slots and hours describe no patient; slots used do.
CREATE OR REPLACE FUNCTION snp_ind_slot_breakdowns_v1(p_territory text, p_from timestamptz,
                                           p_to timestamptz, p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS MATERIALIZED (
        SELECT slot_id, duration_min, booking_id
          FROM snp_ind_slot_cohort(p_territory, p_from, p_to, p_as_of)
         WHERE site_kind = 'csnp'
    ), s AS MATERIALIZED (
        SELECT c.*, e.data ->> 'site_id' AS site
          FROM c JOIN event e ON e.slot_id = c.slot_id AND e.kind = 'slot.published'
    )
    SELECT v.code, 1, s.site, v.value, v.patient_count
      FROM (SELECT site, count(*) AS n, sum(duration_min) AS minutes,
                   count(booking_id) AS used
              FROM s GROUP BY site) s,
           LATERAL (VALUES ('slots_by_care_centre', s.n::numeric, NULL::bigint),
                           ('slot_hours_by_care_centre', snp_ind_hours(s.minutes), NULL),
                           ('slots_used_by_care_centre', s.used::numeric, s.used))
               v (code, value, patient_count)
$$;

-- Every figure of the catalogue's current versions, unmasked: 0019's
-- wrapper of 0004's function (snp_ind_rows_without_calls), with the
-- breakdowns added.
CREATE OR REPLACE FUNCTION snp_ind_rows_without_duty_status(p_territory text, p_from timestamptz, p_to timestamptz,
                                        p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_calls(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_calls_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_request_breakdowns_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_slot_breakdowns_v1(p_territory, p_from, p_to, p_as_of)
$$;

-- The published table of 0004 labels a breakdown value from
-- indicator_key_label, or from the commune table for communes; an
-- organisation's or a care centre's value is its id, labelled here with its
-- name.  Wrapped,
-- not copied: the masking and the order stay 0004's.
CREATE OR REPLACE FUNCTION snp_indicator_table(p_territory text, p_kind text, p_period text)
RETURNS TABLE (ord bigint, section text, code text, version int, label_fr text, unit text,
               breakdown text, key text, key_label text, value numeric, value_text text,
               masked boolean, target numeric, progress_pct numeric, target_met boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.ord, t.section, t.code, t.version, t.label_fr, t.unit, t.breakdown, t.key,
           CASE WHEN t.breakdown = 'organisation' AND t.key <> 'unknown'
                THEN coalesce((SELECT o.name FROM organisation o WHERE o.id::text = t.key),
                              t.key)
                WHEN t.breakdown = 'care_centre'
                THEN coalesce((SELECT x.name FROM site x WHERE x.id::text = t.key), t.key)
                ELSE t.key_label END,
           t.value, t.value_text, t.masked, t.target, t.progress_pct, t.target_met
      FROM snp_indicator_table_unlabelled_organisations(p_territory, p_kind, p_period) t
     ORDER BY t.ord
$$;

-- The slots published by a territory whose start falls in [p_from, p_to),
-- as 0004's cohort, with the practitioner on duty as of p_as_of and their
-- duty status.
CREATE OR REPLACE FUNCTION snp_ind_slot_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (slot_id bigint, rpps text, site_kind text, mode text, starts_at timestamptz,
               duration_min int, withdrawn boolean, released boolean, booking_id bigint,
               requester_kind text, delay_min numeric, mt_rpps text, outcome text,
               duty_status text)
LANGUAGE sql STABLE AS $$
    SELECT c.slot_id, CASE WHEN a.data IS NULL THEN c.rpps ELSE a.data ->> 'rpps' END,
           c.site_kind, c.mode, c.starts_at, c.duration_min, c.withdrawn, c.released,
           c.booking_id, c.requester_kind, c.delay_min, c.mt_rpps, c.outcome,
           a.data ->> 'duty_status'
      FROM snp_ind_slot_cohort_as_published(p_territory, p_from, p_to, p_as_of) c
      LEFT JOIN LATERAL (
          SELECT e.data
            FROM event e
           WHERE e.slot_id = c.slot_id AND e.kind = 'slot.assigned' AND e.at < p_as_of
           ORDER BY e.id DESC
           LIMIT 1) a ON true
$$;

-- Per duty status: the CSNP slots of the period (withdrawn included, as
-- slots_published), their hours, and those used.  A slot's status is that
-- of its practitioner on duty (snp_ind_slot_cohort above): 'unfilled'
-- without one, 'not_stated' for a practitioner named at publication who was
-- never given a status.  Every key labelled in indicator_key_label is
-- listed, zeros included, when the period has CSNP slots; none otherwise
-- (as the care centres of 0020).  Slots and hours describe no patient;
-- slots used do.
CREATE OR REPLACE FUNCTION snp_ind_duty_status_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                       p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH s AS MATERIALIZED (
        SELECT CASE WHEN c.rpps IS NULL THEN 'unfilled'
                    ELSE coalesce(c.duty_status, 'not_stated') END AS status,
               c.duration_min, c.booking_id
          FROM snp_ind_slot_cohort(p_territory, p_from, p_to, p_as_of) c
         WHERE c.site_kind = 'csnp'
    )
    SELECT m.code, 1, k.key,
           CASE m.measure WHEN 'hours' THEN snp_ind_hours(sum(s.duration_min))
                          WHEN 'used' THEN count(s.booking_id)
                          ELSE count(s.status) END,
           CASE WHEN m.measure = 'used' THEN count(s.booking_id) END
      FROM (VALUES ('slots_by_duty_status', 'slots'), ('slot_hours_by_duty_status', 'hours'),
                   ('slots_used_by_duty_status', 'used')) m (code, measure)
     CROSS JOIN (SELECT l.key FROM indicator_key_label l WHERE l.breakdown = 'duty_status'
                 UNION
                 SELECT s.status FROM s) k
      LEFT JOIN s ON s.status = k.key
     WHERE EXISTS (SELECT 1 FROM s)
     GROUP BY m.code, m.measure, k.key
$$;

-- Every figure of the catalogue's current versions, unmasked: 0020's
-- function, wrapped, with the duty status breakdown added.
CREATE OR REPLACE FUNCTION snp_ind_rows_without_messages(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_duty_status(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_duty_status_v1(p_territory, p_from, p_to, p_as_of)
$$;

-- Indicators (docs/indicators.md): the MT summaries and the referrals,
-- read from the log like every figure (events message.queued).  0019's
-- snp_ind_rows is wrapped, not copied.
CREATE OR REPLACE FUNCTION snp_ind_messages_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH q AS MATERIALIZED (
        SELECT e.data ->> 'kind' AS kind
          FROM event e
         WHERE e.territory_id = p_territory AND e.kind = 'message.queued'
           AND e.at >= p_from AND e.at < p_to AND e.at < p_as_of
    ), t AS (
        SELECT count(*) FILTER (WHERE kind = 'mt_summary') AS summaries,
               count(*) FILTER (WHERE kind = 'mt_handover') AS handovers,
               count(*) FILTER (WHERE kind = 'confirmation') AS confirmations
          FROM q
    )
    SELECT v.code, 1, '', v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('mt_summaries_sent', t.summaries::numeric, t.summaries),
        ('patients_referred_to_new_mt', t.handovers::numeric, t.handovers),
        ('confirmations_sent_to_patients', t.confirmations::numeric, t.confirmations)
      ) v (code, value, patient_count)
$$;

CREATE OR REPLACE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_messages(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_messages_v1(p_territory, p_from, p_to, p_as_of)
$$;
