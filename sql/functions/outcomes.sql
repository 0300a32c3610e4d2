-- The outcome of a booking, reported by its practitioner.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

CREATE OR REPLACE FUNCTION snp_outcome_report(p_booking bigint, p_territory text, p_rpps text,
                                   p_outcome text, p_note text, p_delay_hours int,
                                   p_actor text)
RETURNS booking LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    s slot;
BEGIN
    SELECT * INTO b FROM booking WHERE id = p_booking
       AND (booking.territory_id = p_territory
            OR booking.slot_id IN (SELECT s2.id FROM slot s2 WHERE s2.territory_id = p_territory))
       AND (p_rpps IS NULL OR rpps = p_rpps) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking % of yours', p_booking USING ERRCODE = 'SN404';
    END IF;
    IF b.status <> 'booked' THEN
        RAISE EXCEPTION 'booking % was cancelled', p_booking USING ERRCODE = 'SN409';
    END IF;
    SELECT * INTO s FROM slot WHERE id = b.slot_id;
    IF now() > s.starts_at + make_interval(hours => p_delay_hours) THEN
        RAISE EXCEPTION 'outcomes are accepted until % hours after the appointment',
            p_delay_hours USING ERRCODE = 'SN412';
    END IF;
    IF now() < s.starts_at AND p_outcome <> 'cancelled_by_patient' THEN
        RAISE EXCEPTION 'the appointment has not started yet' USING ERRCODE = 'SN412';
    END IF;
    UPDATE booking SET outcome = p_outcome, outcome_note = p_note, outcome_at = now(),
                       outcome_by = p_actor
     WHERE id = b.id RETURNING * INTO b;
    PERFORM snp_event(b.territory_id, p_actor, 'outcome.reported', s.id, b.request_id, b.id,
                      NULL, p_outcome, snp_slot_facts(s));
    RETURN b;
END $$;
