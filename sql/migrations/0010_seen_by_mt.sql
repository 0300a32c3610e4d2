-- booking.created recorded seen_by_mt true for a CSNP shift slot without a
-- named practitioner booked for a patient without médecin traitant (NULL IS
-- NOT DISTINCT FROM NULL).  From now on it is true only when the slot's
-- practitioner is the patient's médecin traitant.  Events already written
-- stay as they are (the log is append-only); the indicators never read that
-- member (0004 derives it from the slot and the request).  Same function as
-- in 0002 otherwise.
CREATE OR REPLACE FUNCTION snp_offer_accept(p_request bigint, p_organisation bigint,
                                            p_slot bigint, p_actor text,
                                            OUT booking_id bigint, OUT created boolean,
                                            OUT slot_id bigint, OUT released_slot bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    b booking;
    held slot;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request AND organisation_id = p_organisation
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    SELECT * INTO b FROM booking WHERE request_id = r.id AND booking.status = 'booked';
    IF FOUND THEN
        booking_id := b.id;
        created := false;
        slot_id := b.slot_id;
        RETURN;
    END IF;
    IF r.status <> 'offered' THEN
        RAISE EXCEPTION 'request % is %, not offered', p_request, r.status
            USING ERRCODE = CASE WHEN r.status = 'waiting' THEN 'SN411' ELSE 'SN409' END;
    END IF;
    SELECT * INTO held FROM slot WHERE held_for = r.id AND slot.status = 'held' FOR UPDATE;
    IF held.id = p_slot THEN
        UPDATE slot SET status = 'booked', held_for = NULL, hold_expires_at = NULL
         WHERE id = p_slot AND slot.hold_expires_at > now()
        RETURNING * INTO s;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the hold on slot % has expired', p_slot USING ERRCODE = 'SN411';
        END IF;
    ELSE
        UPDATE slot SET status = 'booked'
         WHERE id = p_slot AND slot.status = 'free' AND starts_at > now()
           AND territory_id IN (SELECT r.territory_id UNION
                                SELECT neighbour_id FROM territory_neighbour
                                 WHERE territory_id = r.territory_id)
        RETURNING * INTO s;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'slot % is no longer free', p_slot USING ERRCODE = 'SN410';
        END IF;
        IF held.id IS NOT NULL THEN
            PERFORM snp_release(r, held.id, 'superseded', p_actor);
            released_slot := held.id;
        END IF;
    END IF;
    INSERT INTO booking (territory_id, request_id, slot_id, rpps, booked_by)
    VALUES (r.territory_id, r.id, s.id, s.rpps, p_actor)
    RETURNING * INTO b;
    UPDATE request SET status = 'booked', closed_at = now() WHERE id = r.id;
    UPDATE patient_identity
       SET erase_after = s.starts_at + make_interval(days => coalesce(
               (SELECT (settings ->> 'identity_retention_days')::int FROM territory
                 WHERE id = r.territory_id), 90))
     WHERE request_id = r.id;
    PERFORM snp_event(r.territory_id, p_actor, 'booking.created', s.id, r.id, b.id, 'offered',
                      'booked', snp_slot_facts(s) || snp_request_facts(r) ||
                      jsonb_build_object('delay_min',
                                         extract(epoch FROM s.starts_at - r.created_at) / 60,
                                         'before_deadline', s.starts_at <= r.deadline,
                                         'seen_by_mt', coalesce(s.rpps = r.mt_rpps, false)));
    booking_id := b.id;
    created := true;
    slot_id := s.id;
END $$;
