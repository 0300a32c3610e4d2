-- Cancellations that answer with the booking as the protocol shows it (and
-- that snpd pushes to the practitioner and the requester), still in one
-- round trip.

CREATE FUNCTION snp_booking_cancel_view(p_booking bigint, p_territory text, p_rpps text,
                                        p_reason text, p_actor text,
                                        OUT slot_id bigint, OUT slot_status text,
                                        OUT request_id bigint, OUT request_status text,
                                        OUT organisation_id bigint, OUT booking jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.slot_id, c.slot_status, c.request_id, c.request_status
      INTO slot_id, slot_status, request_id, request_status
      FROM snp_booking_cancel(p_booking, p_territory, p_rpps, p_reason, p_actor) c;
    SELECT r.organisation_id INTO organisation_id FROM request r
     WHERE r.id = snp_booking_cancel_view.request_id;
    SELECT snp_booking_view(b, false) INTO booking FROM booking b WHERE b.id = p_booking;
END $$;

-- A requester cancelling its booking ends the request (snp_request_cancel).
CREATE FUNCTION snp_booking_cancel_by_requester(p_booking bigint, p_organisation bigint,
                                                p_reason text, p_actor text,
                                                OUT freed_slot bigint, OUT request_id bigint,
                                                OUT booking jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT b.request_id INTO request_id
      FROM booking b JOIN request r ON r.id = b.request_id
     WHERE b.id = p_booking AND b.status = 'booked' AND r.organisation_id = p_organisation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no live booking % of yours', p_booking USING ERRCODE = 'SN404';
    END IF;
    SELECT c.freed_slot INTO freed_slot
      FROM snp_request_cancel(request_id, p_organisation, p_reason, p_actor) c;
    SELECT snp_booking_view(b, false) INTO booking FROM booking b WHERE b.id = p_booking;
END $$;
