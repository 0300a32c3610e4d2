-- A GP's proof of participation (docs/participation.md): preconditions, the
-- fee supplement's rules, the participation of a period and the attestation.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The participation statement of a period: one row per practitioner and ISO
-- week, then one row per practitioner for the whole period (iso_week
-- 'total', with weeks_2h and weeks_in_period).  SAS consultation counts
-- below the threshold are masked, with a complementary week per
-- practitioner as in snp_indicator_table; hours count no patients and are
-- never masked.
CREATE OR REPLACE FUNCTION snp_participation_statement(p_territory text, p_kind text, p_period text)
RETURNS TABLE (ord bigint, rpps text, family_name text, given_name text, iso_week text,
               week_monday date, slots bigint, hours numeric, rule_2h_met boolean,
               weeks_2h bigint, weeks_in_period int, sas_48h bigint, sas_48h_capped bigint,
               sas_text text, capped_text text, masked boolean)
LANGUAGE sql STABLE AS $$
    WITH p AS (
        SELECT * FROM snp_ind_period(p_territory, p_kind, p_period)
    ), thr AS (
        SELECT snp_ind_mask_threshold(p_territory) AS n
    ), w AS (
        SELECT x.weeks FROM p, snp_ind_week_window(p.period_from, p.period_to, p.time_zone) x
    ), g AS (
        SELECT x.* FROM p, snp_ind_participation_v1(p_territory, p.period_from, p.period_to,
                                                   p.consolidated_at) x
    ), cells AS (
        SELECT g.rpps, g.iso_week, g.week_monday, g.slots, g.minutes,
               (g.minutes >= 120) AS rule_2h_met, NULL::bigint AS weeks_2h, g.sas_48h,
               least(g.sas_48h, 20) AS capped, false AS is_total
          FROM g
        UNION ALL
        SELECT g.rpps, 'total', NULL, sum(g.slots), sum(g.minutes), NULL,
               count(*) FILTER (WHERE g.minutes >= 120), sum(g.sas_48h),
               sum(least(g.sas_48h, 20)), true
          FROM g GROUP BY g.rpps
    ), ranked AS (
        SELECT cells.*, cells.sas_48h > 0 AND cells.sas_48h < thr.n AS primary_mask,
               count(*) FILTER (WHERE cells.sas_48h > 0 AND cells.sas_48h < thr.n
                                  AND NOT cells.is_total)
                   OVER (PARTITION BY cells.rpps) AS n_primary,
               row_number() OVER (PARTITION BY cells.rpps, cells.is_total,
                                               cells.sas_48h >= thr.n
                                  ORDER BY cells.sas_48h, cells.iso_week COLLATE "C") AS rk
          FROM cells, thr
    ), decided AS (
        SELECT ranked.*,
               primary_mask OR (NOT is_total AND n_primary = 1 AND sas_48h >= thr.n AND rk = 1)
                   AS is_masked
          FROM ranked, thr
    )
    SELECT row_number() OVER (ORDER BY f.rpps COLLATE "C", f.is_total,
                                       f.iso_week COLLATE "C"),
           f.rpps, pr.family_name, pr.given_name, f.iso_week, f.week_monday, f.slots,
           snp_ind_hours(f.minutes), f.rule_2h_met, f.weeks_2h,
           CASE WHEN f.is_total THEN w.weeks END,
           CASE WHEN NOT f.is_masked THEN f.sas_48h END,
           CASE WHEN NOT f.is_masked THEN f.capped END,
           CASE WHEN f.primary_mask THEN '<' || thr.n WHEN f.is_masked THEN 'secret'
                ELSE f.sas_48h::text END,
           CASE WHEN f.primary_mask THEN '<' || thr.n WHEN f.is_masked THEN 'secret'
                ELSE f.capped::text END,
           f.is_masked
      FROM decided f
     CROSS JOIN thr
     CROSS JOIN w
      LEFT JOIN practitioner pr ON pr.rpps = f.rpps
     ORDER BY 1
$$;

-- A precondition as the protocol shows it (type "precondition").
CREATE OR REPLACE FUNCTION snp_precondition_view(p gp_precondition) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'precondition_id', p.id, 'rpps', p.rpps, 'territory', p.territory_id, 'kind', p.kind,
        'valid_from', to_char(p.valid_from, 'YYYY-MM-DD'),
        'valid_to', to_char(p.valid_to, 'YYYY-MM-DD'),
        'recorded_at', snp_rfc3339(p.recorded_at, snp_tz(p.territory_id))))
$$;

-- Raises not_found unless p_rpps practises in p_territory (a coordinator
-- sees only their territory's practitioners; another's is answered as a
-- missing one).
CREATE OR REPLACE FUNCTION snp_check_territory_practitioner(p_territory text, p_rpps text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM territory_practitioner
                    WHERE territory_id = p_territory AND rpps = p_rpps) THEN
        RAISE EXCEPTION 'no practitioner % in your territory', p_rpps USING ERRCODE = 'SN404';
    END IF;
END $$;

-- Records (or sets again: closes, corrects) a precondition of a practitioner
-- of the caller's territory (participation.precondition.set), with its
-- audit row; returns {"precondition": view, "created": bool}.
CREATE OR REPLACE FUNCTION snp_precondition_set(p_territory text, p_actor text, p_role text, p_rpps text,
                                     p_kind text, p_from date, p_to date)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    p gp_precondition;
    pid bigint;
    created boolean;
BEGIN
    PERFORM snp_check_territory_practitioner(p_territory, p_rpps);
    IF p_to < p_from THEN
        PERFORM snp_field_error('valid_to', 'valid_to is before valid_from');
    END IF;
    INSERT INTO gp_precondition AS g (rpps, territory_id, kind, valid_from, valid_to,
                                      recorded_by)
    VALUES (p_rpps, p_territory, p_kind, p_from, p_to, p_actor)
    ON CONFLICT (rpps, territory_id, kind, valid_from) DO UPDATE
       SET valid_to = EXCLUDED.valid_to, recorded_by = EXCLUDED.recorded_by,
           recorded_at = now()
    RETURNING g.id, (g.xmax = 0) INTO pid, created;
    SELECT * INTO p FROM gp_precondition WHERE id = pid;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'participation.precondition.set',
            jsonb_build_object('territory', p_territory, 'rpps', p_rpps, 'kind', p_kind,
                               'valid_from', p_from, 'valid_to', p_to));
    RETURN jsonb_build_object('precondition', snp_precondition_view(p), 'created', created);
END $$;

-- The preconditions a caller may see (participation.precondition.list): a
-- GP (p_own) their own in every territory; a coordinator or an admin those
-- recorded by their territory, of one practitioner when p_rpps is given.
CREATE OR REPLACE FUNCTION snp_precondition_list(p_territory text, p_own boolean, p_rpps text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(snp_precondition_view(p)
                              ORDER BY p.rpps, p.valid_from, p.kind, p.territory_id), '[]')
      FROM gp_precondition p
     WHERE (p_own AND p.rpps = p_rpps)
        OR (NOT p_own AND p.territory_id = p_territory AND (p_rpps IS NULL OR p.rpps = p_rpps))
$$;

-- The weekly cap of the SNP fee supplement (NGAP article 14.1.3).
CREATE OR REPLACE FUNCTION snp_supplement_weekly_cap() RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT 20
$$;

-- The supplement's conditions that one booking of practitioner p_rpps fails,
-- in a fixed order, from the facts of snp_ind_slot_cohort: not requested by
-- the SAS regulation, seen more than 48 h (2,880 min) after the request, the
-- practitioner is the patient's médecin traitant, reported as a no-show or
-- a cancellation by the patient (an unreported outcome counts as seen).
-- Empty when the booking meets them all: the bookings counted in sas_48h of
-- snp_ind_participation_v1.
CREATE OR REPLACE FUNCTION snp_supplement_refusals(p_rpps text, p_requester_kind text,
                                        p_delay_min numeric, p_mt_rpps text, p_outcome text)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT array_remove(ARRAY[
        CASE WHEN p_requester_kind IS DISTINCT FROM 'sas' THEN 'not_sas' END,
        CASE WHEN NOT coalesce(p_delay_min <= 2880, false) THEN 'after_48h' END,
        CASE WHEN p_mt_rpps IS NOT DISTINCT FROM p_rpps THEN 'is_mt' END,
        CASE WHEN coalesce(p_outcome, '') IN ('no_show', 'cancelled_by_patient')
             THEN 'not_fulfilled' END], NULL)
$$;

-- The territories a practitioner works in.
CREATE OR REPLACE FUNCTION snp_practitioner_territories(p_rpps text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT territory_id FROM territory_practitioner WHERE rpps = p_rpps ORDER BY 1
$$;

-- The instants of the ISO weeks whose Thursday falls in the days
-- [p_from, p_to] (both included) of a territory, and the instant until which
-- its events are read: the day after p_to plus the territory's
-- indicator_consolidation_days, as the indicators do (0004).
CREATE OR REPLACE FUNCTION snp_participation_window(p_territory text, p_from date, p_to date,
                                         OUT period_from timestamptz,
                                         OUT period_to timestamptz, OUT as_of timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT p_from::timestamp AT TIME ZONE snp_tz(p_territory),
           (p_to + 1)::timestamp AT TIME ZONE snp_tz(p_territory),
           ((p_to + 1)::timestamp + make_interval(days => snp_setting_int(
               p_territory, 'indicator_consolidation_days', 7, 1, 90)))
               AT TIME ZONE snp_tz(p_territory)
$$;

-- Every booking not cancelled on a slot of p_rpps, in every territory, in
-- the ISO weeks whose Thursday falls in [p_from, p_to]: the supplement's
-- conditions (snp_supplement_refusals), the precondition on the
-- consultation's day (a precondition recorded by any territory: the SAS
-- registration and the CPTS membership are the practitioner's, wherever
-- they consult), and the weekly cap.  The cap counts, per ISO week of the
-- consultation's local day, the bookings that meet every other condition,
-- in the order of the consultations (start, then booking id), across all
-- territories: from the 21st on they are over_weekly_cap.  refusals is
-- empty exactly when qualifies.
CREATE OR REPLACE FUNCTION snp_participation_bookings(p_rpps text, p_from date, p_to date)
RETURNS TABLE (booking_id bigint, territory_id text, starts_at timestamptz, day date,
               iso_week text, requester_kind text, sas boolean, within_48h boolean,
               is_mt boolean, fulfilled boolean, outcome text, precondition boolean,
               refusals text[], qualifies boolean)
LANGUAGE sql STABLE AS $$
    WITH b AS MATERIALIZED (
        SELECT c.booking_id, t.id AS territory_id, c.starts_at,
               (c.starts_at AT TIME ZONE snp_tz(t.id))::date AS day, c.requester_kind,
               c.outcome,
               snp_supplement_refusals(p_rpps, c.requester_kind, c.delay_min, c.mt_rpps,
                                       c.outcome) AS conditions
          FROM snp_practitioner_territories(p_rpps) t (id),
               snp_participation_window(t.id, p_from, p_to) pw,
               snp_ind_week_window(pw.period_from, pw.period_to, snp_tz(t.id)) w,
               snp_ind_slot_cohort(t.id, w.week_from, w.week_to, pw.as_of) c
         WHERE c.rpps = p_rpps AND c.booking_id IS NOT NULL
    ), p AS (
        SELECT b.*, to_char(b.day, 'IYYY-"W"IW') AS iso_week,
               EXISTS (SELECT 1 FROM gp_precondition g
                        WHERE g.rpps = p_rpps AND g.valid_from <= b.day
                          AND (g.valid_to IS NULL OR b.day <= g.valid_to)) AS precondition
          FROM b
    ), r AS (
        SELECT p.*,
               p.conditions || CASE WHEN p.precondition THEN '{}'::text[]
                                    ELSE ARRAY['no_precondition'] END AS before_cap
          FROM p
    ), ranked AS (
        SELECT r.*,
               CASE WHEN cardinality(r.before_cap) = 0
                    THEN row_number() OVER (PARTITION BY r.iso_week,
                                                         cardinality(r.before_cap) = 0
                                            ORDER BY r.starts_at, r.booking_id) END AS rank
          FROM r
    )
    SELECT x.booking_id, x.territory_id, x.starts_at, x.day, x.iso_week, x.requester_kind,
           NOT ('not_sas' = ANY (x.conditions)), NOT ('after_48h' = ANY (x.conditions)),
           'is_mt' = ANY (x.conditions), NOT ('not_fulfilled' = ANY (x.conditions)), x.outcome,
           x.precondition, refused.refusals, cardinality(refused.refusals) = 0
      FROM ranked x,
           LATERAL (SELECT x.before_cap || CASE WHEN x.rank > snp_supplement_weekly_cap()
                                                THEN ARRAY['over_weekly_cap']
                                                ELSE '{}'::text[] END) refused (refusals)
$$;

-- Per ISO week whose Thursday falls in [p_from, p_to], every week listed:
-- the practitioner's hours open to patients not their own and slots, summed
-- over their territories from snp_ind_participation_v1 (0004), whether they
-- reach the 2 hours of the participation payment, the bookings meeting every
-- condition but the cap (eligible) and the supplements within the cap.
CREATE OR REPLACE FUNCTION snp_participation_weeks(p_rpps text, p_from date, p_to date)
RETURNS TABLE (iso_week text, monday date, slots bigint, minutes bigint, hours numeric,
               open_2h boolean, eligible bigint, supplements bigint)
LANGUAGE sql STABLE AS $$
    WITH weeks AS (
        SELECT d::date AS monday, to_char(d, 'IYYY-"W"IW') AS iso_week
          FROM snp_ind_week_window(p_from::timestamp AT TIME ZONE 'UTC',
                                   (p_to + 1)::timestamp AT TIME ZONE 'UTC', 'UTC') w,
               generate_series(w.week_from AT TIME ZONE 'UTC',
                               w.week_to AT TIME ZONE 'UTC' - interval '1 day',
                               interval '7 days') d
    ), open AS (
        SELECT s.iso_week, sum(s.slots) AS slots, sum(s.minutes) AS minutes
          FROM snp_practitioner_territories(p_rpps) t (id),
               snp_participation_window(t.id, p_from, p_to) pw,
               snp_ind_participation_v1(t.id, pw.period_from, pw.period_to, pw.as_of) s
         WHERE s.rpps = p_rpps
         GROUP BY s.iso_week
    ), used AS (
        SELECT b.iso_week,
               count(*) FILTER (WHERE b.refusals <@ ARRAY['over_weekly_cap']) AS eligible,
               count(*) FILTER (WHERE b.qualifies) AS supplements
          FROM snp_participation_bookings(p_rpps, p_from, p_to) b
         GROUP BY b.iso_week
    )
    SELECT w.iso_week, w.monday, coalesce(o.slots, 0)::bigint, coalesce(o.minutes, 0)::bigint,
           snp_ind_hours(o.minutes), coalesce(o.minutes, 0) >= 120,
           coalesce(u.eligible, 0), coalesce(u.supplements, 0)
      FROM weeks w
      LEFT JOIN open o ON o.iso_week = w.iso_week
      LEFT JOIN used u ON u.iso_week = w.iso_week
     ORDER BY w.monday
$$;

-- Checks that the caller may read p_rpps's participation: a GP their own
-- only (forbidden otherwise), a coordinator or an admin a practitioner of
-- their territory (not_found otherwise, as for a missing one).
CREATE OR REPLACE FUNCTION snp_participation_check(p_territory text, p_role text, p_caller_rpps text,
                                        p_rpps text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_role = 'gp' THEN
        IF p_rpps IS DISTINCT FROM p_caller_rpps THEN
            RAISE EXCEPTION 'a GP reads only their own participation' USING ERRCODE = 'SN403';
        END IF;
    ELSE
        PERFORM snp_check_territory_practitioner(p_territory, p_rpps);
    END IF;
END $$;

-- The participation of p_rpps over the days [p_from, p_to]
-- (participation.get): the weeks of snp_participation_weeks, totals, the
-- preconditions, and up to p_limit bookings of snp_participation_bookings
-- (a coordinator's or an admin's: of their territory only; the cap still
-- counted across all territories).  No patient field: nothing to audit.
CREATE OR REPLACE FUNCTION snp_participation_get(p_territory text, p_role text, p_caller_rpps text,
                                      p_rpps text, p_from date, p_to date, p_limit int)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    weeks jsonb;
    totals jsonb;
    bookings jsonb;
    n bigint;
BEGIN
    PERFORM snp_participation_check(p_territory, p_role, p_caller_rpps, p_rpps);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'iso_week', w.iso_week, 'monday', to_char(w.monday, 'YYYY-MM-DD'),
               'slots', w.slots, 'hours', w.hours, 'open_2h', w.open_2h,
               'eligible', w.eligible, 'supplements', w.supplements) ORDER BY w.monday), '[]'),
           jsonb_build_object('weeks', count(*), 'weeks_open_2h', count(*) FILTER (WHERE w.open_2h),
                              'hours', snp_ind_hours(sum(w.minutes)),
                              'eligible', coalesce(sum(w.eligible), 0),
                              'supplements', coalesce(sum(w.supplements), 0))
      INTO weeks, totals
      FROM snp_participation_weeks(p_rpps, p_from, p_to) w;
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'booking_id', b.booking_id, 'territory', b.territory_id,
               'start', snp_rfc3339(b.starts_at, snp_tz(b.territory_id)),
               'day', to_char(b.day, 'YYYY-MM-DD'), 'iso_week', b.iso_week,
               'requester_kind', b.requester_kind, 'sas', b.sas, 'within_48h', b.within_48h,
               'is_mt', b.is_mt, 'fulfilled', b.fulfilled, 'outcome', b.outcome,
               'precondition', b.precondition, 'qualifies', b.qualifies,
               'reasons', to_jsonb(b.refusals)))
               ORDER BY b.starts_at, b.booking_id) FILTER (WHERE b.k <= p_limit), '[]'),
           count(*)
      INTO bookings, n
      FROM (SELECT x.*, row_number() OVER (ORDER BY x.starts_at, x.booking_id) AS k
              FROM snp_participation_bookings(p_rpps, p_from, p_to) x
             WHERE p_role = 'gp' OR x.territory_id = p_territory) b;
    RETURN jsonb_build_object(
        'rpps', p_rpps,
        'practitioner', (SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                                                   'given_name', p.given_name)
                           FROM practitioner p WHERE p.rpps = p_rpps),
        'from', to_char(p_from, 'YYYY-MM-DD'), 'to', to_char(p_to, 'YYYY-MM-DD'),
        'weekly_cap', snp_supplement_weekly_cap(), 'weeks', weeks, 'totals', totals,
        'preconditions', snp_precondition_list(NULL, true, p_rpps),
        'bookings', bookings, 'truncated', n > p_limit);
END $$;

-- participation.get's period and call: the ISO weeks of year p_year, or
-- the days [p_from, p_to] (at most 366 of them), or the current year of the
-- caller's territory when none is given; a wrong combination is the field
-- error of the field at fault.
CREATE OR REPLACE FUNCTION snp_participation_read(p_territory text, p_role text, p_caller_rpps text,
                                       p_rpps text, p_year int, p_from date, p_to date,
                                       p_limit int)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_year IS NOT NULL AND (p_from IS NOT NULL OR p_to IS NOT NULL) THEN
        PERFORM snp_field_error('year', 'give either year or from and to');
    ELSIF (p_from IS NULL) <> (p_to IS NULL) THEN
        PERFORM snp_field_error(CASE WHEN p_from IS NULL THEN 'from' ELSE 'to' END,
                                'from and to go together');
    ELSIF p_from IS NOT NULL AND (p_to < p_from OR p_to - p_from > 365) THEN
        PERFORM snp_field_error('to', 'to must be from 0 to 365 days after from');
    END IF;
    IF p_from IS NULL THEN
        p_year := coalesce(p_year, extract(year FROM now() AT TIME ZONE snp_tz(p_territory))::int);
        p_from := make_date(p_year, 1, 1);
        p_to := make_date(p_year, 12, 31);
    END IF;
    RETURN snp_participation_get(p_territory, p_role, p_caller_rpps, p_rpps, p_from, p_to,
                                 p_limit);
END $$;

-- The yearly attestation's document (participation.attestation): the
-- participation of p_rpps over the ISO weeks of year p_year without the
-- bookings, when and by whom it was generated, and its audit row.
CREATE OR REPLACE FUNCTION snp_participation_attestation(p_territory text, p_role text, p_actor text,
                                              p_caller_rpps text, p_rpps text, p_year int,
                                              p_format text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
BEGIN
    doc := snp_participation_get(p_territory, p_role, p_caller_rpps, p_rpps,
                                 make_date(p_year, 1, 1), make_date(p_year, 12, 31), 0)
           - 'bookings' - 'truncated';
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'participation.attestation',
            jsonb_build_object('territory', p_territory, 'rpps', p_rpps, 'year', p_year,
                               'format', p_format));
    RETURN doc || jsonb_build_object('year', p_year,
                                     'generated_at', snp_rfc3339(now(), snp_tz(p_territory)));
END $$;
