-- Offers: the hard filters of a slot for a request, the hold and its release,
-- moving an offer to another slot, and accepting it (the booking).
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Why slot s may not be given to request r now, or NULL when it may: the
-- hard filters of dispatcher/core/match.h, in the same order and with the same
-- distance formula (the equirectangular approximation of model.c).
CREATE OR REPLACE FUNCTION snp_slot_refusal(r request, s slot) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    d double precision;
    plat double precision;
    plon double precision;
    slat double precision;
    slon double precision;
BEGIN
    IF s.territory_id <> r.territory_id AND NOT EXISTS (
        SELECT 1 FROM territory_neighbour
         WHERE territory_id = r.territory_id AND neighbour_id = s.territory_id) THEN
        RETURN 'the slot belongs to a territory this request may not use';
    END IF;
    IF s.starts_at <= now() + interval '5 minutes' THEN
        RETURN 'the slot starts too soon';
    END IF;
    IF s.starts_at > r.deadline THEN
        RETURN 'the slot starts after the request''s deadline';
    END IF;
    IF NOT s.mode = ANY (r.modes) THEN
        RETURN 'the request does not accept this mode';
    END IF;
    IF NOT (r.requester_kind = ANY (s.audience) OR 'public' = ANY (s.audience)
            OR (s.release_minutes IS NOT NULL
                AND now() >= s.starts_at - make_interval(mins => s.release_minutes))) THEN
        RETURN 'the slot is not open to your kind of requester';
    END IF;
    IF cardinality(s.motifs) > 0 AND NOT r.motif = ANY (s.motifs) THEN
        RETURN 'the slot is restricted to other motifs';
    END IF;
    IF r.patient_age < coalesce(s.min_age, 0) OR r.patient_age > coalesce(s.max_age, 200) THEN
        RETURN 'the patient''s age is outside the slot''s restrictions';
    END IF;
    IF s.id = ANY (r.declined_slots) THEN
        RETURN 'the request declined this slot';
    END IF;
    IF s.mode <> 'teleconsultation' AND r.max_distance_km IS NOT NULL THEN
        SELECT latitude, longitude INTO plat, plon FROM commune WHERE insee = r.patient_commune;
        SELECT latitude, longitude INTO slat, slon FROM site WHERE id = s.site_id;
        d := 6371.0 * sqrt(power(radians(slon - plon) * cos(radians((plat + slat) / 2)), 2) +
                           power(radians(slat - plat), 2));
        -- A metre of tolerance: memory computes in C doubles.
        IF d > r.max_distance_km + 0.001 THEN
            RETURN 'the slot is farther than the request''s maximum distance';
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- Holds slot p_slot for request r if it is still free and ahead, as in
-- 0002; the slot was chosen by snpd's ranking, whose filters
-- snp_slot_refusal mirrors.  The expiry is a whole second (see the header).
CREATE OR REPLACE FUNCTION snp_hold(r request, p_slot bigint, p_hold_seconds int, p_actor text)
RETURNS slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    UPDATE slot
       SET status = 'held', held_for = r.id,
           hold_expires_at = date_trunc('second', now() + make_interval(secs => p_hold_seconds))
     WHERE id = p_slot AND status = 'free' AND starts_at > now()
       AND territory_id IN (SELECT r.territory_id UNION
                            SELECT neighbour_id FROM territory_neighbour
                             WHERE territory_id = r.territory_id)
    RETURNING * INTO s;
    IF FOUND THEN
        PERFORM snp_event(r.territory_id, p_actor, 'offer.made', s.id, r.id, NULL, 'free', 'held',
                          snp_slot_facts(s) || jsonb_build_object('hold_expires_at',
                                                                  s.hold_expires_at));
    END IF;
    RETURN s;
END $$;

-- Releases the slot held for request r (declined, expired, cancelled,
-- superseded).  The slot becomes free again, or expired if its start has
-- passed.  An 'expired' release happens only once the hold has run out by
-- the database's clock.
-- p_why: the requester's reason for a decline (protocol: decline_reason),
-- kept in the event's data so that declines can be counted by reason; never
-- the free-text note, which may describe the patient.  The four-argument
-- form of 0002 is replaced (a call with four arguments takes this one).
DROP FUNCTION IF EXISTS snp_release(request, bigint, text, text);
CREATE OR REPLACE FUNCTION snp_release(r request, p_slot bigint, p_reason text, p_actor text,
                                       p_why text DEFAULT NULL)
RETURNS slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    PERFORM snp_cause(p_reason);
    UPDATE slot
       SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END,
           held_for = NULL, hold_expires_at = NULL
     WHERE id = p_slot AND status = 'held' AND held_for = r.id
       AND (p_reason <> 'expired' OR hold_expires_at <= now())
    RETURNING * INTO s;
    IF FOUND THEN
        PERFORM snp_event(r.territory_id, p_actor, 'offer.' || p_reason, s.id, r.id, NULL, 'held',
                          s.status, CASE WHEN p_why IS NULL THEN snp_slot_facts(s)
                                         ELSE snp_slot_facts(s) || jsonb_build_object('reason', p_why)
                                    END);
    END IF;
    RETURN s;
END $$;

-- Moves a request's offer, as in 0002, with the cause of its hold announced
-- ('move'), an expiry that has not run out yet by the database's clock left
-- alone (the offer then stays as it is), and, when p_next could not be
-- held, whether it is free all the same (refused: it may not be held for
-- this request, so snpd stops proposing it) or taken (snpd reads it again).
-- p_why: the decline's reason (snp_release), NULL otherwise; the
-- six-argument form is replaced.
DROP FUNCTION IF EXISTS snp_offer_move(bigint, bigint, text, bigint, int, text);
CREATE OR REPLACE FUNCTION snp_offer_move(p_request bigint, p_release bigint, p_reason text,
                               p_next bigint, p_hold_seconds int, p_actor text,
                               p_why text DEFAULT NULL,
                               OUT status text, OUT released boolean, OUT held_slot bigint,
                               OUT hold_expires_at timestamptz, OUT refused boolean)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request %', p_request USING ERRCODE = 'SN404';
    END IF;
    IF r.status NOT IN ('waiting', 'offered') THEN
        RAISE EXCEPTION 'request % is %', p_request, r.status USING ERRCODE = 'SN409';
    END IF;
    released := false;
    refused := false;
    IF p_release IS NOT NULL THEN
        s := snp_release(r, p_release, p_reason, p_actor, p_why);
        released := s.id IS NOT NULL;
        IF released AND p_reason = 'declined' THEN
            UPDATE request SET declined_slots = declined_slots || p_release WHERE id = r.id
            RETURNING * INTO r;
        END IF;
    END IF;
    IF p_next IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM slot WHERE held_for = r.id AND slot.status = 'held') THEN
        PERFORM snp_cause('move');
        s := snp_hold(r, p_next, p_hold_seconds, p_actor);
        held_slot := s.id;
        hold_expires_at := s.hold_expires_at;
        IF s.id IS NULL THEN
            refused := EXISTS (SELECT 1 FROM slot WHERE id = p_next AND slot.status = 'free');
        END IF;
    ELSE
        SELECT id, slot.hold_expires_at INTO held_slot, hold_expires_at
          FROM slot WHERE held_for = r.id AND slot.status = 'held';
    END IF;
    status := CASE WHEN held_slot IS NOT NULL THEN 'offered' ELSE 'waiting' END;
    IF status <> r.status THEN
        UPDATE request SET status = snp_offer_move.status WHERE id = r.id;
        PERFORM snp_event(r.territory_id, p_actor, 'request.' || status, NULL, r.id, NULL,
                          r.status, status, '{}'::jsonb);
    END IF;
END $$;

-- Confirms an offer, as in 0010, except that (1) a request already booked on
-- another slot is a conflict (the same slot is still a repeat), and (2) an
-- alternative is booked only if the request could have been offered it
-- (snp_slot_refusal, SQLSTATE SN422 with the reason).
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
    why text;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request AND organisation_id = p_organisation
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    -- A live booking exists only for a request 'booked' (they change
    -- together), so an offered request, the usual case, needs no look-up.
    IF r.status = 'booked' THEN
        SELECT * INTO b FROM booking WHERE request_id = r.id AND booking.status = 'booked';
        IF FOUND THEN
            IF b.slot_id <> p_slot THEN
                RAISE EXCEPTION 'request % is already booked on another slot', p_request
                    USING ERRCODE = 'SN409';
            END IF;
            booking_id := b.id;
            created := false;
            slot_id := b.slot_id;
            RETURN;
        END IF;
    END IF;
    IF r.status <> 'offered' THEN
        RAISE EXCEPTION 'request % is %, not offered', p_request, r.status
            USING ERRCODE = CASE WHEN r.status = 'waiting' THEN 'SN411' ELSE 'SN409' END;
    END IF;
    -- The usual case, the held slot accepted while its hold runs: booked
    -- in one statement, by its primary key.  Otherwise the slot held for
    -- the request, if any, is looked for and locked: either its hold has
    -- run out, or another slot is taken and the held one released.
    UPDATE slot SET status = 'booked', held_for = NULL, hold_expires_at = NULL
     WHERE id = p_slot AND slot.status = 'held' AND held_for = r.id
       AND slot.hold_expires_at > now()
    RETURNING * INTO s;
    IF NOT FOUND THEN
        SELECT * INTO held FROM slot WHERE held_for = r.id AND slot.status = 'held' FOR UPDATE;
        IF held.id = p_slot THEN
            RAISE EXCEPTION 'the hold on slot % has expired', p_slot USING ERRCODE = 'SN411';
        END IF;
        SELECT * INTO s FROM slot WHERE id = p_slot FOR UPDATE;
        IF NOT FOUND OR s.status <> 'free' THEN
            RAISE EXCEPTION 'slot % is no longer free', p_slot USING ERRCODE = 'SN410';
        END IF;
        why := snp_slot_refusal(r, s);
        IF why IS NOT NULL THEN
            RAISE EXCEPTION '%', why USING ERRCODE = 'SN422';
        END IF;
        UPDATE slot SET status = 'booked' WHERE id = p_slot RETURNING * INTO s;
        IF held.id IS NOT NULL THEN
            PERFORM snp_release(r, held.id, 'superseded', p_actor);
            released_slot := held.id;
        END IF;
    END IF;
    PERFORM snp_cause('booked');
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
