-- The practitioner on duty in the indicators (issue 15, section 1).
--
-- Since 0022 a CSNP shift is published first and assigned afterwards: its
-- slots and their bookings become the practitioner's, and each slot handed
-- over is an event 'slot.assigned' with {rpps, duty_status, shift_id,
-- site_id} (rpps and duty_status null when the shift is freed).  The
-- indicators still took a slot's practitioner from its slot.published facts
-- (snp_ind_slot_cohort, 0004), so the hours and bookings of a shift counted
-- for nobody: not in the participation statement nor in a GP's
-- participation.get (snp_ind_participation_v1 of 0004, read by 0021), not
-- among the participating GPs.  Here:
--
--   * snp_ind_slot_cohort of 0004 is replaced.  What changes: a slot's rpps
--     is the rpps of its latest slot.assigned event recorded before p_as_of
--     when it has one (NULL when that event freed the shift), the published
--     one otherwise; and a last column, duty_status, gives that event's
--     status (NULL for a slot never assigned or freed).  Everything else is
--     0004's, unchanged: its function is kept as
--     snp_ind_slot_cohort_as_published and wrapped rather than copied, the
--     latest assignment of each slot being one probe of the event_slot
--     index.  Its callers (snp_ind_slots_v1 and snp_ind_participation_v1 of
--     0004, snp_ind_slot_breakdowns_v1 of 0020, snp_participation_bookings
--     of 0021) call it by name and read its columns by name: they now count
--     a shift's hours and bookings for the practitioner on duty as of the
--     consolidation instant.
--   * A slot published into a shift already assigned takes the shift's
--     practitioner at once (0022's trigger snp_slot_shift), but no event
--     said under which status: it now gets its slot.assigned event when it
--     is inserted.
--   * A new breakdown, duty_status (the status of the practitioner on duty),
--     of the slots of the CSNP: slots published, their hours and the slots
--     used.  Its keys are the four statuses of 0022, 'not_stated' for a slot
--     published in a practitioner's own name and never assigned (no status
--     was ever given), and 'unfilled' for a slot that nobody is on duty for.
--
-- The definitions keep their version 1: until 0022 no slot changed
-- practitioner and no event slot.assigned existed, so every figure of a
-- period without one is what it was (docs/indicators.md, "The practitioner
-- of a slot").

ALTER FUNCTION snp_ind_slot_cohort(text, timestamptz, timestamptz, timestamptz)
    RENAME TO snp_ind_slot_cohort_as_published;

-- The slots published by a territory whose start falls in [p_from, p_to),
-- as 0004's cohort, with the practitioner on duty as of p_as_of and their
-- duty status.
CREATE FUNCTION snp_ind_slot_cohort(p_territory text, p_from timestamptz, p_to timestamptz,
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

-- A slot that took its practitioner from its assigned shift when it was
-- inserted: the event of 0022's snp_shift_assign, written at publication.
CREATE FUNCTION snp_slot_assigned_at_publication() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h shift;
BEGIN
    SELECT * INTO h FROM shift WHERE id = NEW.shift_id;
    IF h.rpps = NEW.rpps THEN
        PERFORM snp_event(NEW.territory_id, NEW.published_by, 'slot.assigned', NEW.id, NULL,
                          NULL, NULL, NEW.status,
                          jsonb_build_object('rpps', h.rpps, 'duty_status', h.duty_status,
                                             'shift_id', h.id, 'site_id', NEW.site_id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER slot_assigned_at_publication AFTER INSERT ON slot
    FOR EACH ROW WHEN (NEW.shift_id IS NOT NULL AND NEW.rpps IS NOT NULL)
    EXECUTE FUNCTION snp_slot_assigned_at_publication();

-- Per duty status: the CSNP slots of the period (withdrawn included, as
-- slots_published), their hours, and those used.  A slot's status is that
-- of its practitioner on duty (snp_ind_slot_cohort above): 'unfilled'
-- without one, 'not_stated' for a practitioner named at publication who was
-- never given a status.  Every key labelled in indicator_key_label is
-- listed, zeros included, when the period has CSNP slots; none otherwise
-- (as the care centres of 0020).  Slots and hours describe no patient;
-- slots used do.
CREATE FUNCTION snp_ind_duty_status_v1(p_territory text, p_from timestamptz, p_to timestamptz,
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
ALTER FUNCTION snp_ind_rows(text, timestamptz, timestamptz, timestamptz)
    RENAME TO snp_ind_rows_without_duty_status;

CREATE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_duty_status(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_duty_status_v1(p_territory, p_from, p_to, p_as_of)
$$;

INSERT INTO indicator_definition (code, version, section, position, label_fr, formula_fr, unit,
                                  decimals, breakdown, direction, sql_function) VALUES
('slots_by_duty_status', 1, 'creneaux', 54, 'Créneaux des centres de soins non programmés par statut du médecin de garde',
 'Créneaux dont le début tombe dans la période, publiés sur les centres de soins non programmés (CSNP) du territoire, retirés compris, ventilés selon le statut du médecin de garde à la date de consolidation (dernière affectation de la garde enregistrée avant elle) : libéral, remplaçant, retraité, interne ; statut non renseigné pour un créneau publié au nom d''un médecin sans affectation de garde ; non pourvu lorsque personne n''est de garde.',
 'count', 0, 'duty_status', 'none', 'snp_ind_duty_status_v1'),
('slot_hours_by_duty_status', 1, 'creneaux', 55, 'Heures de créneaux des centres de soins non programmés par statut du médecin de garde',
 'Somme des durées de ces créneaux, en heures, ventilée de même.',
 'hours', 2, 'duty_status', 'none', 'snp_ind_duty_status_v1'),
('slots_used_by_duty_status', 1, 'creneaux', 56, 'Créneaux utilisés des centres de soins non programmés par statut du médecin de garde',
 'Créneaux de ces centres qui ont un rendez-vous réservé et non annulé à la date de consolidation, ventilés de même.',
 'count', 0, 'duty_status', 'none', 'snp_ind_duty_status_v1');

INSERT INTO indicator_key_label (breakdown, key, label_fr, position) VALUES
('duty_status', 'independent', 'Libéral', 1),
('duty_status', 'locum', 'Remplaçant', 2),
('duty_status', 'retired', 'Retraité', 3),
('duty_status', 'resident', 'Interne', 4),
('duty_status', 'not_stated', 'Statut non renseigné', 5),
('duty_status', 'unfilled', 'Non pourvu', 6);
