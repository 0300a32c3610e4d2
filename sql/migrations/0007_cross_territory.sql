-- A booking belongs to two territories when a requester borrows capacity
-- from a neighbour (a SAS of the département booking a CPTS practitioner's
-- slot): booking.territory_id is the requester's, the slot's is the
-- practitioner's.  The practitioner's side (their bookings, cancelling,
-- reporting the outcome) now goes by the slot's territory, or either.

CREATE OR REPLACE FUNCTION snp_booking_list(p_territory text, p_rpps text, p_statuses text[],
                                 p_from timestamptz, p_to timestamptz, p_limit int,
                                 p_actor text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
BEGIN
    FOR b IN SELECT bk.* FROM booking bk JOIN slot s ON s.id = bk.slot_id
              WHERE s.territory_id = p_territory AND bk.rpps = p_rpps
                AND (p_statuses IS NULL OR bk.status = ANY (p_statuses))
                AND s.starts_at >= p_from AND s.starts_at < p_to
              ORDER BY s.starts_at, bk.id LIMIT p_limit LOOP
        IF EXISTS (SELECT 1 FROM patient_identity WHERE request_id = b.request_id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, 'gp', 'patient.read', b.request_id,
                    ARRAY['display_name', 'initials', 'birth_date', 'phone', 'motif_text']);
        END IF;
        RETURN NEXT snp_booking_view(b, true);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION snp_booking_cancel(p_booking bigint, p_territory text, p_rpps text,
                                   p_reason text, p_actor text,
                                   OUT slot_id bigint, OUT slot_status text,
                                   OUT request_id bigint, OUT request_status text)
LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    s slot;
    r request;
BEGIN
    UPDATE booking SET status = 'cancelled', cancelled_at = now(), cancelled_by = p_actor,
                       cancel_reason = p_reason
     WHERE id = p_booking AND booking.status = 'booked'
       AND (booking.territory_id = p_territory
            OR booking.slot_id IN (SELECT s2.id FROM slot s2 WHERE s2.territory_id = p_territory))
       AND (p_rpps IS NULL OR rpps = p_rpps)
    RETURNING * INTO b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no live booking % of yours', p_booking USING ERRCODE = 'SN404';
    END IF;
    UPDATE slot SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END
     WHERE id = b.slot_id RETURNING * INTO s;
    UPDATE request
       SET status = CASE WHEN deadline > now() THEN 'waiting' ELSE 'unserved' END,
           closed_at = CASE WHEN deadline > now() THEN NULL ELSE now() END
     WHERE id = b.request_id RETURNING * INTO r;
    PERFORM snp_event(b.territory_id, p_actor, 'booking.cancelled', s.id, r.id, b.id, 'booked',
                      'cancelled', snp_slot_facts(s) || jsonb_build_object('reason', p_reason,
                                                                           'by', 'practitioner'));
    PERFORM snp_event(r.territory_id, p_actor, 'request.' || r.status, NULL, r.id, NULL,
                      'booked', r.status, '{}'::jsonb);
    slot_id := s.id;
    slot_status := s.status;
    request_id := r.id;
    request_status := r.status;
END $$;

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
