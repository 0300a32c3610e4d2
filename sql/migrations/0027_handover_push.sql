-- The appointment push follows a CSNP booking handed to the practitioner on
-- duty (issue 12 with issue 15 §1, docs/fhir.md "Appointment push").
--
-- A booking on a CSNP shift nobody was named for has no practitioner, so
-- 0018 announced nothing (the platform's Appointment names one).  When the
-- coordinator names the practitioner on duty (snp_shift_assign, 0022, sets
-- booking.rpps), the booking is announced now if it never was, and announced
-- again (same status, the new practitioner) if it was, so that the platform
-- shows who will see the patient.  A shift freed (rpps back to NULL)
-- announces nothing: the platform keeps the last practitioner named until
-- the next one.  Same eligibility as 0018's snp_outbox_booked, tested now: a
-- territory with a platform, a slot the SAS sees.
CREATE FUNCTION snp_outbox_practitioner() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_territory text;
    v_last appointment_outbox;
BEGIN
    SELECT * INTO v_last FROM appointment_outbox
     WHERE booking_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, v_last.seq + 1, v_last.territory_id,
                snp_appointment_status(NEW.status, NEW.outcome));
        RETURN NULL;
    END IF;
    SELECT s.territory_id INTO v_territory
      FROM slot s JOIN territory t ON t.id = s.territory_id
     WHERE s.id = NEW.slot_id AND t.sas_platform_url IS NOT NULL
       AND ('sas' = ANY (s.audience) OR 'public' = ANY (s.audience)
            OR (s.release_minutes IS NOT NULL
                AND now() >= s.starts_at - make_interval(mins => s.release_minutes)));
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, 1, v_territory, snp_appointment_status(NEW.status, NEW.outcome));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER booking_outbox_practitioner AFTER UPDATE OF rpps ON booking
    FOR EACH ROW WHEN (NEW.rpps IS NOT NULL AND OLD.rpps IS DISTINCT FROM NEW.rpps
                       AND NEW.status = 'booked')
    EXECUTE FUNCTION snp_outbox_practitioner();
