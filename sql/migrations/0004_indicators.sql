-- Monthly indicators and data protection (issue 6).
--
-- Every indicator is computed from the append-only event log alone, for one
-- territory and a closed period [from, to) of the territory's local time,
-- by the functions below; docs/indicators.md documents each one (label,
-- formula in words, unit, version, SQL).  Two rules make an extraction
-- reproducible byte for byte:
--
--   * Cohorts, not moments.  Request indicators follow the requests created
--     during the period; slot indicators follow the slots whose start falls
--     in the period; the participation statement follows ISO weeks whose
--     Thursday falls in the period.  Their fate (booked, cancelled, outcome)
--     is read from the events recorded before the consolidation instant,
--     `to` + indicator_consolidation_days (default 7).  Once that instant has
--     passed nothing can change the figures: events are never updated.
--   * Fixed presentation.  Values are rounded to the definition's number of
--     decimals, every list is ordered on stable keys with the "C" collation,
--     and no result depends on now().
--
-- Cells that count fewer patients than the territory's
-- indicator_mask_threshold (default 5) are masked, with a complementary
-- cell in the same breakdown (snp_indicator_table).
--
-- Data protection: snp_identity_erase() and snp_audit_purge() are the
-- scheduled jobs run by snpd (dispatcher/protection.c); both record what
-- they did (counts only).  docs/data-protection.md describes the whole.

-- Indexes for following a cohort through the log.
CREATE INDEX event_kind_at ON event (territory_id, kind, at);
CREATE INDEX event_request ON event (request_id, id) WHERE request_id IS NOT NULL;
CREATE INDEX event_slot ON event (slot_id, id) WHERE slot_id IS NOT NULL;

-- --- The catalogue ---------------------------------------------------------------------

-- One row per version of each written definition.  A definition is never
-- edited in place: a change adds version n+1, computed by a new function
-- named in sql_function, and the older row stays so that figures extracted
-- under it can still be explained.  Extractions use the highest version.
CREATE TABLE indicator_definition (
    code         text NOT NULL CHECK (code ~ '^[a-z0-9_]{1,48}$'),
    version      int NOT NULL CHECK (version >= 1),
    section      text NOT NULL CHECK (section IN ('demandes', 'reponse', 'creneaux',
                                                  'participation', 'issues', 'urgences',
                                                  'publics', 'releve')),
    position     int NOT NULL,
    label_fr     text NOT NULL,
    formula_fr   text NOT NULL,
    unit         text NOT NULL CHECK (unit IN ('count', 'percent', 'minutes', 'hours')),
    decimals     int NOT NULL CHECK (decimals BETWEEN 0 AND 2),
    -- The breakdown dimension ('' for a single figure): source, motif,
    -- urgency, reason, mode, site_kind, group, commune.
    breakdown    text NOT NULL DEFAULT '',
    -- Which way is progress, for targets: higher, lower, or none.
    direction    text NOT NULL DEFAULT 'none' CHECK (direction IN ('higher', 'lower', 'none')),
    sql_function text NOT NULL,
    PRIMARY KEY (code, version)
);

-- French labels of breakdown values, in display order.  Communes are
-- labelled from the commune reference table.
CREATE TABLE indicator_key_label (
    breakdown text NOT NULL,
    key       text NOT NULL,
    label_fr  text NOT NULL,
    position  int NOT NULL,
    PRIMARY KEY (breakdown, key)
);

-- Targets from a territory's contract, per indicator and kind of period.
-- They apply to the indicator's single figure (not to its breakdowns).
CREATE TABLE indicator_target (
    territory_id text NOT NULL REFERENCES territory (id),
    code         text NOT NULL,
    period_kind  text NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    target       numeric NOT NULL CHECK (target >= 0),
    note         text CHECK (length(note) <= 500), -- e.g. the contract clause
    PRIMARY KEY (territory_id, code, period_kind)
);

CREATE FUNCTION indicator_target_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM indicator_definition
                    WHERE code = NEW.code AND breakdown = '' AND section <> 'releve') THEN
        RAISE EXCEPTION 'no indicator % with a single figure', NEW.code USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER indicator_target_check BEFORE INSERT OR UPDATE ON indicator_target
    FOR EACH ROW EXECUTE FUNCTION indicator_target_check();

INSERT INTO indicator_definition (code, version, section, position, label_fr, formula_fr, unit,
                                  decimals, breakdown, direction, sql_function) VALUES
('requests', 1, 'demandes', 10, 'Demandes reçues',
 'Nombre de demandes de rendez-vous créées pendant la période (heure locale du territoire), quel que soit leur devenir.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('requests_by_source', 1, 'demandes', 11, 'Demandes par origine',
 'Demandes reçues, ventilées selon le type du demandeur : pharmacie, service d''urgences, SAS, professionnel de santé, accueil de la CPTS.',
 'count', 0, 'source', 'none', 'snp_ind_requests_v1'),
('requests_by_motif', 1, 'demandes', 12, 'Demandes par motif',
 'Demandes reçues, ventilées selon le motif codé de la demande.',
 'count', 0, 'motif', 'none', 'snp_ind_requests_v1'),
('requests_by_urgency', 1, 'demandes', 13, 'Demandes par degré d''urgence',
 'Demandes reçues, ventilées selon le délai demandé : le jour même, sous 24 h, sous 48 h.',
 'count', 0, 'urgency', 'none', 'snp_ind_requests_v1'),
('requests_cancelled', 1, 'demandes', 14, 'Demandes annulées',
 'Demandes reçues que le demandeur a annulées (y compris les refus de réorientation par le patient), sans rendez-vous maintenu à la date de consolidation.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('requests_cancelled_by_reason', 1, 'demandes', 15, 'Demandes annulées par motif d''annulation',
 'Demandes annulées, ventilées selon le motif d''annulation déclaré.',
 'count', 0, 'reason', 'none', 'snp_ind_requests_v1'),
('requests_served', 1, 'reponse', 20, 'Demandes servies',
 'Demandes reçues qui ont un rendez-vous réservé et non annulé à la date de consolidation.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('requests_served_rate', 1, 'reponse', 21, 'Part des demandes servies',
 'Demandes servies divisées par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_requests_v1'),
('served_before_deadline', 1, 'reponse', 22, 'Demandes servies avant l''échéance',
 'Demandes servies dont le rendez-vous commence au plus tard à l''échéance de la demande (fin du jour local pour « le jour même », 24 h ou 48 h après la demande).',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('served_before_deadline_rate', 1, 'reponse', 23, 'Part des demandes servies avant l''échéance',
 'Demandes servies avant l''échéance divisées par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_requests_v1'),
('seen_same_day', 1, 'reponse', 24, 'Rendez-vous le jour même',
 'Demandes servies dont le rendez-vous a lieu le même jour calendaire local que la demande.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('seen_same_day_rate', 1, 'reponse', 25, 'Part des demandes avec rendez-vous le jour même',
 'Rendez-vous le jour même divisés par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_requests_v1'),
('seen_within_24h', 1, 'reponse', 26, 'Rendez-vous sous 24 h',
 'Demandes servies dont le rendez-vous commence au plus 24 heures (1 440 minutes) après la création de la demande.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('seen_within_24h_rate', 1, 'reponse', 27, 'Part des demandes avec rendez-vous sous 24 h',
 'Rendez-vous sous 24 h divisés par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_requests_v1'),
('seen_within_48h', 1, 'reponse', 28, 'Rendez-vous sous 48 h',
 'Demandes servies dont le rendez-vous commence au plus 48 heures (2 880 minutes) après la création de la demande.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('seen_within_48h_rate', 1, 'reponse', 29, 'Part des demandes avec rendez-vous sous 48 h',
 'Rendez-vous sous 48 h divisés par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_requests_v1'),
('delay_median', 1, 'reponse', 30, 'Délai médian entre la demande et le rendez-vous',
 'Médiane (méthode discrète : la plus petite valeur observée telle qu''au moins la moitié des délais lui sont inférieurs ou égaux) du délai entre la création de la demande et le début du rendez-vous, sur les demandes servies, en minutes.',
 'minutes', 1, '', 'lower', 'snp_ind_requests_v1'),
('delay_p90', 1, 'reponse', 31, 'Délai au 90e centile',
 'Plus petite valeur observée telle qu''au moins 90 % des délais demande → rendez-vous des demandes servies lui sont inférieurs ou égaux, en minutes.',
 'minutes', 1, '', 'lower', 'snp_ind_requests_v1'),
('requests_unserved', 1, 'reponse', 32, 'Demandes non servies',
 'Demandes reçues dont l''échéance est passée sans rendez-vous (y compris celles dont le rendez-vous a été annulé par le médecin après l''échéance).',
 'count', 0, '', 'lower', 'snp_ind_requests_v1'),
('requests_unserved_rate', 1, 'reponse', 33, 'Part des demandes non servies',
 'Demandes non servies divisées par les demandes reçues, en pourcentage.',
 'percent', 1, '', 'lower', 'snp_ind_requests_v1'),
('offers_made', 1, 'reponse', 34, 'Propositions de créneau',
 'Nombre de fois où un créneau a été réservé provisoirement pour une demande reçue pendant la période.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('offers_declined', 1, 'reponse', 35, 'Propositions refusées',
 'Nombre de propositions de créneau refusées par le demandeur (patient indisponible, trop loin…), pour les demandes reçues.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('holds_expired', 1, 'reponse', 36, 'Propositions expirées',
 'Nombre de propositions de créneau restées sans réponse jusqu''à la fin de leur durée de réservation, pour les demandes reçues.',
 'count', 0, '', 'lower', 'snp_ind_requests_v1'),
('slots_published', 1, 'creneaux', 40, 'Créneaux publiés',
 'Créneaux publiés par les médecins et centres du territoire dont le début tombe dans la période, y compris ceux retirés ensuite.',
 'count', 0, '', 'higher', 'snp_ind_slots_v1'),
('slots_published_by_mode', 1, 'creneaux', 41, 'Créneaux publiés par modalité',
 'Créneaux publiés, ventilés selon la modalité : cabinet, visite à domicile, téléconsultation.',
 'count', 0, 'mode', 'none', 'snp_ind_slots_v1'),
('slots_published_by_site_kind', 1, 'creneaux', 42, 'Créneaux publiés par type de lieu',
 'Créneaux publiés, ventilés selon le type de lieu : cabinet, centre de soins non programmés, téléconsultation.',
 'count', 0, 'site_kind', 'none', 'snp_ind_slots_v1'),
('slot_hours_published', 1, 'creneaux', 43, 'Heures de créneaux publiées',
 'Somme des durées des créneaux publiés, en heures.',
 'hours', 2, '', 'higher', 'snp_ind_slots_v1'),
('slot_hours_by_mode', 1, 'creneaux', 44, 'Heures publiées par modalité',
 'Heures de créneaux publiées, ventilées selon la modalité.',
 'hours', 2, 'mode', 'none', 'snp_ind_slots_v1'),
('slot_hours_by_site_kind', 1, 'creneaux', 45, 'Heures publiées par type de lieu',
 'Heures de créneaux publiées, ventilées selon le type de lieu.',
 'hours', 2, 'site_kind', 'none', 'snp_ind_slots_v1'),
('slots_withdrawn', 1, 'creneaux', 46, 'Créneaux retirés',
 'Créneaux publiés que leur médecin (ou la coordination) a retirés avant qu''ils soient utilisés.',
 'count', 0, '', 'lower', 'snp_ind_slots_v1'),
('slots_used', 1, 'creneaux', 47, 'Créneaux utilisés',
 'Créneaux publiés portant un rendez-vous réservé et non annulé à la date de consolidation, quel que soit le territoire du demandeur.',
 'count', 0, '', 'higher', 'snp_ind_slots_v1'),
('slot_use_rate', 1, 'creneaux', 48, 'Taux d''utilisation des créneaux',
 'Créneaux utilisés divisés par les créneaux publiés non retirés, en pourcentage.',
 'percent', 1, '', 'higher', 'snp_ind_slots_v1'),
('slots_released', 1, 'creneaux', 49, 'Créneaux ouverts à tous les demandeurs',
 'Créneaux réservés au départ à certains demandeurs, encore libres à l''heure prévue par leur règle d''ouverture et alors ouverts à tous.',
 'count', 0, '', 'none', 'snp_ind_slots_v1'),
('participating_gps', 1, 'creneaux', 50, 'Médecins participants',
 'Nombre de médecins distincts (RPPS) ayant au moins un créneau publié et non retiré dans la période ; les créneaux de garde d''un centre sans médecin nommé ne comptent pas.',
 'count', 0, '', 'higher', 'snp_ind_slots_v1'),
('gp_weeks_with_slots', 1, 'participation', 60, 'Semaines-médecin avec créneaux',
 'Nombre de couples (médecin, semaine ISO) avec au moins un créneau non retiré ; une semaine appartient à la période qui contient son jeudi.',
 'count', 0, '', 'none', 'snp_ind_participation_totals_v1'),
('gp_weeks_2h', 1, 'participation', 61, 'Semaines-médecin d''au moins 2 h ouvertes',
 'Nombre de couples (médecin, semaine ISO) dont les créneaux non retirés ouverts aux patients qui ne sont pas les siens totalisent au moins 2 heures (règle de participation au SAS).',
 'count', 0, '', 'higher', 'snp_ind_participation_totals_v1'),
('sas_48h_consultations', 1, 'participation', 62, 'Consultations SAS sous 48 h hors patientèle',
 'Rendez-vous non annulés sur les créneaux d''un médecin, demandés par la régulation du SAS, commençant au plus 48 h après la demande, pour un patient dont ce médecin n''est pas le médecin traitant, sauf absence du patient ou annulation par le patient déclarées.',
 'count', 0, '', 'none', 'snp_ind_participation_totals_v1'),
('sas_48h_consultations_capped', 1, 'participation', 63, 'Consultations SAS sous 48 h plafonnées',
 'Somme, sur les couples (médecin, semaine ISO), du nombre de consultations SAS sous 48 h hors patientèle plafonné à 20 par médecin et par semaine (règle du supplément de 15 euros).',
 'count', 0, '', 'none', 'snp_ind_participation_totals_v1'),
('outcomes_reported', 1, 'issues', 70, 'Issues déclarées',
 'Demandes servies dont le médecin a déclaré l''issue du rendez-vous (la dernière déclaration compte).',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('no_shows', 1, 'issues', 71, 'Rendez-vous non honorés',
 'Demandes servies dont l''issue déclarée est « patient absent ».',
 'count', 0, '', 'lower', 'snp_ind_requests_v1'),
('no_show_rate', 1, 'issues', 72, 'Taux de rendez-vous non honorés',
 'Rendez-vous non honorés divisés par les issues déclarées, en pourcentage.',
 'percent', 1, '', 'lower', 'snp_ind_requests_v1'),
('redirected_emergency', 1, 'issues', 73, 'Orientés vers les urgences après consultation',
 'Demandes servies dont l''issue déclarée est une orientation vers un service d''urgences après la consultation.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('hospitalised', 1, 'issues', 74, 'Hospitalisés après consultation',
 'Demandes servies dont l''issue déclarée est une hospitalisation.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('cancelled_by_patient', 1, 'issues', 75, 'Annulés par le patient',
 'Demandes servies dont l''issue déclarée est une annulation par le patient.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('ed_redirections', 1, 'urgences', 80, 'Réorientations depuis les urgences',
 'Demandes reçues émanant d''un service d''urgences (réorientation d''un patient non urgent vers la ville).',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('ed_redirections_refused', 1, 'urgences', 81, 'Réorientations refusées par le patient',
 'Réorientations depuis les urgences annulées parce que le patient a refusé le bon de réorientation.',
 'count', 0, '', 'lower', 'snp_ind_requests_v1'),
('ed_redirections_served', 1, 'urgences', 82, 'Réorientations avec rendez-vous',
 'Réorientations depuis les urgences qui ont un rendez-vous non annulé à la date de consolidation.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('ed_redirections_honoured', 1, 'urgences', 83, 'Réorientations honorées',
 'Réorientations depuis les urgences dont le patient s''est présenté au rendez-vous (issue déclarée : vu, orienté vers les urgences ou hospitalisé).',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('ed_visits_avoided', 1, 'urgences', 84, 'Passages aux urgences évités (estimation)',
 'Réorientations depuis les urgences dont le patient a été vu en ville sans être renvoyé vers les urgences ni hospitalisé (issue déclarée : vu). Estimation basse : les issues non déclarées ne comptent pas.',
 'count', 0, '', 'higher', 'snp_ind_requests_v1'),
('served_without_mt', 1, 'publics', 90, 'Patients sans médecin traitant servis',
 'Demandes servies pour des patients déclarés sans médecin traitant.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('served_without_mt_share', 1, 'publics', 91, 'Part des patients sans médecin traitant parmi les servis',
 'Patients sans médecin traitant servis divisés par les demandes servies, en pourcentage.',
 'percent', 1, '', 'none', 'snp_ind_requests_v1'),
('seen_by_own_mt', 1, 'publics', 92, 'Patients vus par leur médecin traitant',
 'Demandes servies dont le créneau est celui du médecin traitant déclaré du patient.',
 'count', 0, '', 'none', 'snp_ind_requests_v1'),
('requests_priority_group', 1, 'publics', 93, 'Demandes des publics prioritaires',
 'Demandes reçues pour des patients en ALD, bénéficiaires de la C2S ou âgés de 70 ans ou plus (un patient peut relever de plusieurs groupes).',
 'count', 0, 'group', 'none', 'snp_ind_requests_v1'),
('served_priority_group', 1, 'publics', 94, 'Demandes servies des publics prioritaires',
 'Demandes servies pour des patients en ALD, bénéficiaires de la C2S ou âgés de 70 ans ou plus.',
 'count', 0, 'group', 'higher', 'snp_ind_requests_v1'),
('requests_by_commune', 1, 'publics', 95, 'Demandes par commune de résidence',
 'Demandes reçues, ventilées selon la commune de résidence déclarée du patient (code INSEE).',
 'count', 0, 'commune', 'none', 'snp_ind_requests_v1'),
('served_by_commune', 1, 'publics', 96, 'Demandes servies par commune de résidence',
 'Demandes servies, ventilées selon la commune de résidence déclarée du patient (code INSEE).',
 'count', 0, 'commune', 'none', 'snp_ind_requests_v1'),
('gp_week_slot_hours', 1, 'releve', 100, 'Heures ouvertes aux patients hors patientèle (par semaine)',
 'Relevé de participation : pour un médecin et une semaine ISO, somme des durées de ses créneaux non retirés, en heures ; la règle des 2 h est respectée à partir de 2,00 h.',
 'hours', 2, '', 'higher', 'snp_ind_participation_v1'),
('gp_week_sas_48h', 1, 'releve', 101, 'Consultations SAS sous 48 h hors patientèle (par semaine)',
 'Relevé de participation : pour un médecin et une semaine ISO, consultations SAS sous 48 h pour des patients dont il n''est pas le médecin traitant (même définition que sas_48h_consultations).',
 'count', 0, '', 'none', 'snp_ind_participation_v1'),
('gp_week_sas_48h_capped', 1, 'releve', 102, 'Consultations SAS sous 48 h plafonnées (par semaine)',
 'Relevé de participation : le nombre précédent plafonné à 20.',
 'count', 0, '', 'none', 'snp_ind_participation_v1');

INSERT INTO indicator_key_label (breakdown, key, label_fr, position) VALUES
('source', 'pharmacy', 'Pharmacie', 1),
('source', 'emergency', 'Service d''urgences', 2),
('source', 'sas', 'SAS (régulation)', 3),
('source', 'professional', 'Professionnel de santé', 4),
('source', 'desk', 'Accueil de la CPTS', 5),
('motif', 'fever', 'Fièvre', 1),
('motif', 'ent', 'ORL', 2),
('motif', 'respiratory', 'Respiratoire', 3),
('motif', 'urinary', 'Urinaire', 4),
('motif', 'digestive', 'Digestif', 5),
('motif', 'skin', 'Peau', 6),
('motif', 'minor_trauma', 'Petite traumatologie', 7),
('motif', 'musculoskeletal', 'Douleur ostéo-articulaire', 8),
('motif', 'headache', 'Céphalée', 9),
('motif', 'eye', 'Œil', 10),
('motif', 'psychological', 'Détresse psychologique', 11),
('motif', 'other', 'Autre', 12),
('urgency', 'same_day', 'Le jour même', 1),
('urgency', '24h', 'Sous 24 h', 2),
('urgency', '48h', 'Sous 48 h', 3),
('reason', 'patient_request', 'À la demande du patient', 1),
('reason', 'patient_seen_elsewhere', 'Patient vu ailleurs', 2),
('reason', 'practitioner_unavailable', 'Médecin indisponible', 3),
('reason', 'patient_refused', 'Réorientation refusée par le patient', 4),
('reason', 'duplicate', 'Doublon', 5),
('reason', 'entered_in_error', 'Saisie erronée', 6),
('reason', 'other', 'Autre', 7),
('mode', 'office', 'Cabinet', 1),
('mode', 'home', 'Visite à domicile', 2),
('mode', 'teleconsultation', 'Téléconsultation', 3),
('site_kind', 'practice', 'Cabinet', 1),
('site_kind', 'csnp', 'Centre de soins non programmés', 2),
('site_kind', 'teleconsultation', 'Téléconsultation', 3),
('group', 'ald', 'ALD', 1),
('group', 'c2s', 'C2S', 2),
('group', 'aged_70_plus', '70 ans et plus', 3);

-- --- Helpers ---------------------------------------------------------------------------

-- An integer territory setting, or p_default when absent, not an integer,
-- or outside [p_min, p_max].
CREATE FUNCTION snp_setting_int(p_territory text, p_key text, p_default int, p_min int,
                                p_max int) RETURNS int LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT CASE WHEN jsonb_typeof(settings -> p_key) = 'number'
                                  AND (settings ->> p_key)::numeric BETWEEN p_min AND p_max
                                  AND (settings ->> p_key)::numeric
                                      = trunc((settings ->> p_key)::numeric)
                                 THEN (settings ->> p_key)::int END
                       FROM territory WHERE id = p_territory), p_default)
$$;

-- A percentage with one decimal (half away from zero); NULL when den is 0.
CREATE FUNCTION snp_ind_pct(num bigint, den bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN den > 0 THEN round(100.0 * num / den, 1) END
$$;

-- How many patients a ratio reveals: its numerator when there is one,
-- otherwise its denominator.
CREATE FUNCTION snp_ind_base(num bigint, den bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN num > 0 THEN least(num, den) ELSE den END
$$;

-- Minutes as hours with two decimals.
CREATE FUNCTION snp_ind_hours(minutes numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT round(coalesce(minutes, 0) / 60.0, 2)
$$;

-- The instants bounding a period of a territory, in its time zone:
--   month 'YYYY-MM', quarter 'YYYY-Qn', year 'YYYY' (the contract year,
--   starting in the month of setting contract_start_month, default 1).
-- consolidated_at is period_to + indicator_consolidation_days (default 7):
-- only events recorded before it are read.
CREATE FUNCTION snp_ind_period(p_territory text, p_kind text, p_period text,
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
CREATE FUNCTION snp_ind_week_window(p_from timestamptz, p_to timestamptz, p_tz text,
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

-- --- Cohorts ---------------------------------------------------------------------------

-- The requests of a territory created in [p_from, p_to), with their facts
-- as recorded at creation and their fate as told by the events recorded
-- before p_as_of.  final_status is booked (a booking not cancelled),
-- cancelled, unserved, or open.  Only the event table is read.
--
-- After fetching the cohort's events through the index, everything is
-- grouping, no join: the planner cannot estimate cohorts read out of JSON
-- and would pick quadratic nested loops for joins between them.
CREATE FUNCTION snp_ind_request_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
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
CREATE FUNCTION snp_ind_slot_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
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

-- --- Indicator values (version 1) ------------------------------------------------------
-- Each returns (code, version, key, value, patient_count): key is '' for a
-- single figure; patient_count is how many patients the cell describes
-- (NULL when it counts no patients, e.g. slots or hours), for masking.

CREATE FUNCTION snp_ind_requests_v1(p_territory text, p_from timestamptz, p_to timestamptz,
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

CREATE FUNCTION snp_ind_slots_v1(p_territory text, p_from timestamptz, p_to timestamptz,
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
CREATE FUNCTION snp_ind_participation_v1(p_territory text, p_from timestamptz,
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

CREATE FUNCTION snp_ind_participation_totals_v1(p_territory text, p_from timestamptz,
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
CREATE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_requests_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_slots_v1(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_participation_totals_v1(p_territory, p_from, p_to, p_as_of)
$$;

-- --- Masked, presented indicators ------------------------------------------------------

-- Cells counting fewer patients than this are masked: territory setting
-- indicator_mask_threshold, 2 to 100, default 5.
CREATE FUNCTION snp_ind_mask_threshold(p_territory text) RETURNS int LANGUAGE sql STABLE AS $$
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
CREATE FUNCTION snp_indicator_table(p_territory text, p_kind text, p_period text)
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

-- The participation statement of a period: one row per practitioner and ISO
-- week, then one row per practitioner for the whole period (iso_week
-- 'total', with weeks_2h and weeks_in_period).  SAS consultation counts
-- below the threshold are masked, with a complementary week per
-- practitioner as in snp_indicator_table; hours count no patients and are
-- never masked.
CREATE FUNCTION snp_participation_statement(p_territory text, p_kind text, p_period text)
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

-- The whole extraction of a period as one JSON document (key order as
-- written, lists in their fixed order): territory, period, threshold,
-- indicators, participation statement and the definitions used.  Rendered
-- to CSV, JSON and HTML by snpd (dispatcher/indicators.c).
CREATE FUNCTION snp_indicators_document(p_territory text, p_kind text, p_period text)
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
CREATE FUNCTION snp_indicators_export(p_territory text, p_kind text, p_period text,
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

-- The answer of the protocol message indicators.get for one month: the
-- cells that are not masked, as {name, value, unit, definition_version},
-- name being the code, or code__key for a breakdown cell; single figures
-- first, at most 200.  The read is audited.
CREATE FUNCTION snp_indicators_get(p_territory text, p_month text, p_actor text, p_role text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v json;
BEGIN
    SELECT json_build_object(
               'territory_id', p_territory, 'month', p_month,
               'indicators', coalesce(json_agg(json_strip_nulls(json_build_object(
                   'name', x.name, 'value', x.value,
                   'unit', CASE WHEN x.unit <> 'count' THEN x.unit END,
                   'definition_version', x.version)) ORDER BY x.rank), '[]'::json))
      INTO v
      FROM (SELECT row_number() OVER (ORDER BY i.key <> '', i.ord) AS rank, i.unit, i.version,
                   i.value,
                   i.code || CASE WHEN i.key = '' THEN ''
                                  ELSE '__' || lower(regexp_replace(i.key, '[^A-Za-z0-9_]', '_',
                                                                    'g')) END AS name
              FROM snp_indicator_table(p_territory, 'month', p_month) i
             WHERE NOT i.masked AND i.value IS NOT NULL
             ORDER BY 1 LIMIT 200) x;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'indicators.read',
            jsonb_build_object('territory', p_territory, 'period_kind', 'month',
                               'period', p_month));
    RETURN v;
END $$;

-- --- Data protection jobs --------------------------------------------------------------

-- Erases the identity of patients whose erase_after has passed (at most
-- p_limit per call): the patient_identity row goes, and with it the free
-- text the practitioner may have written about the appointment
-- (booking.outcome_note).  The request, its booking and its events stay, so
-- every indicator still counts them.  Records an event identity.erased per
-- territory and one audit row, with counts only.  Returns the counts.
CREATE FUNCTION snp_identity_erase(p_actor text, p_limit int)
RETURNS TABLE (territory_id text, erased bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    per jsonb;
    total bigint;
BEGIN
    WITH gone AS (
        DELETE FROM patient_identity p
         WHERE p.request_id IN (SELECT x.request_id FROM patient_identity x
                                 WHERE x.erase_after <= now()
                                 ORDER BY x.erase_after, x.request_id
                                 LIMIT greatest(p_limit, 1)
                                   FOR UPDATE SKIP LOCKED)
        RETURNING p.request_id
    ), done AS (
        SELECT g.request_id, r.territory_id FROM gone g JOIN request r ON r.id = g.request_id
    ), notes AS (
        UPDATE booking b SET outcome_note = NULL
          FROM done d
         WHERE b.request_id = d.request_id AND b.outcome_note IS NOT NULL
        RETURNING b.id
    )
    SELECT coalesce(jsonb_object_agg(c.territory_id, c.n), '{}'::jsonb), coalesce(sum(c.n), 0)
      INTO per, total
      FROM (SELECT d.territory_id, count(*) AS n FROM done d GROUP BY d.territory_id) c;
    IF total > 0 THEN
        PERFORM snp_event(c.key, p_actor, 'identity.erased', NULL, NULL, NULL, NULL, NULL,
                          jsonb_build_object('count', c.value::bigint))
           FROM (SELECT j.key, j.value FROM jsonb_each(per) j ORDER BY j.key COLLATE "C") c;
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'identity.erase',
                jsonb_build_object('erased', total, 'territories', per));
    END IF;
    RETURN QUERY SELECT j.key, j.value::bigint FROM jsonb_each(per) j
                  ORDER BY j.key COLLATE "C";
END $$;

-- The territory an audit row belongs to: its request's, its token's, or
-- the one named in its detail; NULL for rows of no territory.
CREATE FUNCTION snp_audit_territory(a audit) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT r.territory_id FROM request r WHERE r.id = a.request_id),
                    (SELECT k.territory_id FROM api_token k WHERE 'token:' || k.id = a.actor),
                    a.detail ->> 'territory')
$$;

-- Deletes audit rows older than their territory's audit_retention_months
-- (1 to 120), or p_default_months for rows of no territory or territories
-- without the setting; at most p_limit rows per call.  The audit table's
-- guard accepts the deletion only because snp.audit_retention is 'on' for
-- this transaction.  Records one audit row with the count.  Returns the
-- number of rows deleted.
CREATE FUNCTION snp_audit_purge(p_actor text, p_default_months int, p_limit int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    shortest int;
BEGIN
    SELECT least(p_default_months,
                 min(snp_setting_int(t.id, 'audit_retention_months', p_default_months, 1, 120)))
      INTO shortest FROM territory t;
    shortest := coalesce(shortest, p_default_months);
    PERFORM set_config('snp.audit_retention', 'on', true);
    DELETE FROM audit
     WHERE id IN (
        SELECT a.id FROM audit a
         WHERE a.at < now() - make_interval(months => shortest)
           AND a.at < now() - make_interval(months => coalesce(
                   snp_setting_int(snp_audit_territory(a), 'audit_retention_months',
                                   p_default_months, 1, 120), p_default_months))
         ORDER BY a.id LIMIT greatest(p_limit, 1));
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('snp.audit_retention', 'off', true);
    IF n > 0 THEN
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'audit.purge',
                jsonb_build_object('deleted', n, 'default_months', p_default_months));
    END IF;
    RETURN n;
END $$;
