-- Bookings: their views (the practitioner's, the requester's, a cancellation's),
-- their cancellation by the practitioner or the requester, and the lists of a
-- practitioner's and a care centre's bookings.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The booking view; with p_patient, the patient's identity is included.
CREATE OR REPLACE FUNCTION snp_booking_view_full(b booking, p_patient boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'booking_id', b.id, 'request_id', b.request_id, 'status', b.status,
        'created_at', snp_rfc3339(b.booked_at, snp_tz(b.territory_id)),
        'slot', (SELECT snp_slot_view(s) FROM slot s WHERE s.id = b.slot_id),
        'urgency', r.urgency,
        'motif', jsonb_strip_nulls(jsonb_build_object(
            'code', r.motif,
            'text', CASE WHEN p_patient THEN (SELECT motif_text FROM patient_identity
                                               WHERE request_id = r.id) END)),
        'patient', CASE WHEN p_patient THEN snp_patient_view(r) END,
        'priority_groups', to_jsonb(r.priority_groups),
        'requester', (SELECT jsonb_strip_nulls(jsonb_build_object(
                          'kind', o.kind, 'organisation_id', o.id, 'name', o.name,
                          'finess', o.finess))
                        FROM organisation o WHERE o.id = r.organisation_id),
        'source', CASE WHEN r.source <> '{}'::jsonb THEN r.source END,
        'cancellation', CASE WHEN b.status = 'cancelled' THEN jsonb_build_object(
            'reason', b.cancel_reason, 'cancelled_by', snp_actor_role(b.cancelled_by),
            'cancelled_at', snp_rfc3339(b.cancelled_at, snp_tz(b.territory_id))) END,
        'outcome', CASE WHEN b.outcome IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
            'kind', b.outcome, 'note', b.outcome_note,
            'reported_at', snp_rfc3339(b.outcome_at, snp_tz(b.territory_id)))) END))
      FROM request r WHERE r.id = b.request_id
$$;

CREATE OR REPLACE FUNCTION snp_booking_cancel_view(p_booking bigint, p_territory text, p_rpps text,
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
CREATE OR REPLACE FUNCTION snp_booking_cancel_by_requester(p_booking bigint, p_organisation bigint,
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

-- A booking cancelled by its practitioner or a coordinator, as in 0007, with
-- the request locked first (the order of snp_request_cancel and
-- snp_offer_accept), so that a requester's cancellation and a
-- practitioner's cannot deadlock.
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
    PERFORM 1 FROM request WHERE id = (SELECT bk.request_id FROM booking bk WHERE bk.id = p_booking)
        FOR UPDATE;
    PERFORM snp_cause('cancelled');
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

-- The booking view.  With p_patient (the practitioner booked reading their
-- own list), the patient's identity and the practitioner's outcome note are
-- included, but only while the booking stands: a cancelled booking no longer
-- concerns its practitioner.  Without it (answers and pushes to the
-- requester and the coordinator, booking.cancelled), neither is: 0003's view
-- left the note in.  0003's view is kept under another name and called.
CREATE OR REPLACE FUNCTION snp_booking_view(b booking, p_patient boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_patient AND b.status = 'booked' THEN snp_booking_view_full(b, true)
                ELSE snp_booking_view_full(b, false) #- '{outcome,note}' END
$$;

-- The bookings of p_territory by slot start, of practitioner p_rpps or on
-- the slots of site p_site (whichever is given), for p_actor of role p_role:
-- the identity shown (and its read audited under that role) for live
-- bookings only.  A reception welcomes the patient and needs no more: the
-- requester's free text on the motif and the practitioner's note on the
-- outcome are left out of its view, and out of its audited fields.  snp_booking_list (a gp's, 0013) now calls it; a reception's
-- list is snp_site_booking_list.
CREATE OR REPLACE FUNCTION snp_bookings_shown(p_territory text, p_rpps text, p_site bigint,
                                   p_statuses text[], p_from timestamptz, p_to timestamptz,
                                   p_limit int, p_actor text, p_role text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
BEGIN
    FOR b IN SELECT bk.* FROM booking bk JOIN slot s ON s.id = bk.slot_id
              WHERE s.territory_id = p_territory
                AND (p_rpps IS NULL OR bk.rpps = p_rpps)
                AND (p_site IS NULL OR s.site_id = p_site)
                AND (p_rpps IS NOT NULL OR p_site IS NOT NULL)
                AND (p_statuses IS NULL OR bk.status = ANY (p_statuses))
                AND s.starts_at >= p_from AND s.starts_at < p_to
              ORDER BY s.starts_at, bk.id LIMIT p_limit LOOP
        IF b.status = 'booked'
           AND EXISTS (SELECT 1 FROM patient_identity WHERE request_id = b.request_id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, p_role, 'patient.read', b.request_id,
                    CASE WHEN p_role = 'reception'
                         THEN ARRAY['display_name', 'initials', 'birth_date', 'phone']
                         ELSE ARRAY['display_name', 'initials', 'birth_date', 'phone',
                                    'motif_text', 'outcome_note'] END);
        END IF;
        RETURN NEXT CASE WHEN p_role = 'reception'
                         THEN snp_booking_view(b, true) #- '{motif,text}' #- '{outcome,note}'
                         ELSE snp_booking_view(b, true) END;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION snp_booking_list(p_territory text, p_rpps text, p_statuses text[],
                                            p_from timestamptz, p_to timestamptz, p_limit int,
                                            p_actor text)
RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT * FROM snp_bookings_shown(p_territory, p_rpps, NULL, p_statuses, p_from, p_to,
                                     p_limit, p_actor, 'gp')
$$;

CREATE OR REPLACE FUNCTION snp_site_booking_list(p_territory text, p_site bigint, p_statuses text[],
                                      p_from timestamptz, p_to timestamptz, p_limit int,
                                      p_actor text)
RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT * FROM snp_bookings_shown(p_territory, NULL, p_site, p_statuses, p_from, p_to,
                                     p_limit, p_actor, 'reception')
$$;
