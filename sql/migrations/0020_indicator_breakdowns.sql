-- Breakdowns the seeds use (issue 15, section 5):
--
-- * per requester organisation: a hospital's redirections justify its flat
--   fee, a pharmacy's its part in the service; the figures by kind of
--   requester (requests_by_source) cannot say which pharmacy or which
--   emergency department;
-- * the médecin traitant crossings: patients without an MT, per group the MT
--   indicators follow (aged 17 or more, ALD, C2S, aged 70 or more);
-- * per care centre (CSNP): in Vendée most capacity was centre shifts, and a
--   centre's slots vanish into the "csnp" kind of slots_published_by_site_kind.
--
-- The organisation is a fact of request.created (snp_request_facts has
-- carried organisation_id since 0009), so the breakdown is read from the log
-- like every figure.  The request cohort of 0004 does not return it: the new
-- function joins the cohort to the creation events by request id (indexed)
-- rather than copying the cohort function to add one column; the cohort is
-- then computed twice per extraction (docs/indicators.md, "Known limits").
-- Organisation names are labels read from the reference table, never values.

CREATE FUNCTION snp_ind_request_breakdowns_v1(p_territory text, p_from timestamptz,
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
CREATE FUNCTION snp_ind_slot_breakdowns_v1(p_territory text, p_from timestamptz,
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
CREATE OR REPLACE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
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
ALTER FUNCTION snp_indicator_table(text, text, text)
    RENAME TO snp_indicator_table_unlabelled_organisations;

CREATE FUNCTION snp_indicator_table(p_territory text, p_kind text, p_period text)
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

INSERT INTO indicator_definition (code, version, section, position, label_fr, formula_fr, unit,
                                  decimals, breakdown, direction, sql_function) VALUES
('requests_by_organisation', 1, 'demandes', 16, 'Demandes par organisation demandeuse',
 'Demandes reçues, ventilées selon l''organisation qui les a faites (pharmacie, service d''urgences, SAS, professionnel, accueil), telle qu''enregistrée à la création de la demande.',
 'count', 0, 'organisation', 'none', 'snp_ind_request_breakdowns_v1'),
('served_by_organisation', 1, 'reponse', 37, 'Demandes servies par organisation demandeuse',
 'Demandes servies (rendez-vous réservé et non annulé à la date de consolidation), ventilées selon l''organisation qui les a faites.',
 'count', 0, 'organisation', 'higher', 'snp_ind_request_breakdowns_v1'),
('slots_by_care_centre', 1, 'creneaux', 51, 'Créneaux publiés par centre de soins non programmés',
 'Créneaux dont le début tombe dans la période, publiés sur chaque centre de soins non programmés (CSNP) du territoire, retirés compris, comme les créneaux publiés.',
 'count', 0, 'care_centre', 'none', 'snp_ind_slot_breakdowns_v1'),
('slot_hours_by_care_centre', 1, 'creneaux', 52, 'Heures de créneaux par centre de soins non programmés',
 'Somme des durées de ces créneaux, en heures.',
 'hours', 2, 'care_centre', 'none', 'snp_ind_slot_breakdowns_v1'),
('slots_used_by_care_centre', 1, 'creneaux', 53, 'Créneaux utilisés par centre de soins non programmés',
 'Créneaux de chaque centre qui ont un rendez-vous réservé et non annulé à la date de consolidation.',
 'count', 0, 'care_centre', 'higher', 'snp_ind_slot_breakdowns_v1'),
('requests_without_mt_by_group', 1, 'publics', 97, 'Demandes de patients sans médecin traitant, par public',
 'Demandes reçues pour des patients déclarés sans médecin traitant, ventilées selon les publics des indicateurs médecin traitant : 17 ans et plus, ALD, C2S, 70 ans et plus (un patient peut relever de plusieurs publics).',
 'count', 0, 'mt_group', 'none', 'snp_ind_request_breakdowns_v1'),
('served_without_mt_by_group', 1, 'publics', 98, 'Patients sans médecin traitant servis, par public',
 'Demandes servies pour des patients déclarés sans médecin traitant, ventilées selon les mêmes publics.',
 'count', 0, 'mt_group', 'higher', 'snp_ind_request_breakdowns_v1');

INSERT INTO indicator_key_label (breakdown, key, label_fr, position) VALUES
('organisation', 'unknown', 'Organisation non enregistrée', 1),
('mt_group', 'aged_17_plus', '17 ans et plus', 1),
('mt_group', 'ald', 'ALD', 2),
('mt_group', 'c2s', 'C2S', 3),
('mt_group', 'aged_70_plus', '70 ans et plus', 4);
