-- Dispatch invariants (docs/dispatch.md "Invariants"):
--
-- * Accepting checks what offering checks.  snp_slot_refusal() is the SQL
--   twin of match_eligible() (dispatcher/match.c); snp_offer_accept refuses
--   an alternative the request could not have been offered, and a second
--   slot for a request already booked is a conflict, not a repeat.
-- * One clock.  Deadlines, creation times and hold expiries come from the
--   database's clock; hold expiries are whole seconds, so that memory (which
--   counts in seconds) and the database agree on when a hold ends, and a hold
--   is released as expired only once the database's clock says so.
-- * Pushes follow the subscriber.  The change notifications carry what
--   another snpd process needs to push the change to its own subscribers:
--   the cause of a slot change (a hold made inside request.create, or a
--   release's reason), a request's previous status, organisation and
--   client_ref, and bookings get notifications of their own.
-- * Lock order.  Every function that locks a request and a slot locks the
--   request first; housekeeping never waits for a lock (40P01 was seen
--   between snp_offer_move and snp_housekeeping).

-- Why slot s may not be given to request r now, or NULL when it may: the
-- hard filters of dispatcher/match.h, in the same order and with the same
-- distance formula (the equirectangular approximation of model.c).
CREATE FUNCTION snp_slot_refusal(r request, s slot) RETURNS text LANGUAGE plpgsql STABLE AS $$
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

-- The deadline of a request made at p_now with urgency p_urgency in time
-- zone p_tz: the next local midnight for same_day (a day of 23 or 25 hours
-- on the change days), 24 or 48 hours later otherwise.  The same rule as
-- timeutil_deadline() (base/timeutil.c), on the database's clock.
CREATE FUNCTION snp_deadline(p_urgency text, p_tz text, p_now timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE p_urgency
        WHEN 'same_day' THEN (date_trunc('day', p_now AT TIME ZONE p_tz) + interval '1 day')
                             AT TIME ZONE p_tz
        WHEN '24h' THEN p_now + interval '24 hours'
        ELSE p_now + interval '48 hours' END
$$;

-- The cause of the slot and request changes that follow in this transaction,
-- read by the notification triggers: 'create' (a hold made by
-- request.create, which answers with its offer instead of pushing it),
-- 'move' (a hold made afterwards), or the reason of a release ('expired',
-- 'declined', 'cancelled', 'superseded').
CREATE FUNCTION snp_cause(p_cause text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('snp.cause', p_cause, true)
$$;

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
CREATE OR REPLACE FUNCTION snp_release(r request, p_slot bigint, p_reason text, p_actor text)
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
                          s.status, snp_slot_facts(s));
    END IF;
    RETURN s;
END $$;

-- Whether request.create's p_request and p_identity describe another
-- request than r (same client_ref): what the requester sent, compared with
-- what was recorded; the patient's age, derived from the date, and the
-- deadline, derived from the time, are not compared.  An identity already
-- erased is not compared either.
CREATE FUNCTION snp_request_differs(r request, p_request jsonb, p_identity jsonb)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    x record;
    i patient_identity;
BEGIN
    SELECT * INTO x FROM jsonb_to_record(p_request) AS j (
        motif text, urgency text, modes text[], max_distance_km real, reduced_mobility boolean,
        patient_commune text, patient_birth_year int, patient_sex text, has_mt boolean,
        mt_rpps text, priority_groups text[], source jsonb);
    IF (x.motif, x.urgency, x.modes, x.max_distance_km, coalesce(x.reduced_mobility, false),
        x.patient_commune, x.patient_birth_year, x.patient_sex, x.has_mt, x.mt_rpps,
        coalesce(x.priority_groups, '{}'), coalesce(x.source, '{}'::jsonb))
       IS DISTINCT FROM
       (r.motif, r.urgency, r.modes, r.max_distance_km, r.reduced_mobility, r.patient_commune,
        r.patient_birth_year, r.patient_sex, r.has_mt, r.mt_rpps, r.priority_groups, r.source) THEN
        RETURN true;
    END IF;
    SELECT * INTO i FROM patient_identity WHERE request_id = r.id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN (p_identity ->> 'display_name', p_identity ->> 'initials',
            (p_identity ->> 'birth_date')::date, p_identity ->> 'phone',
            p_identity ->> 'motif_text')
           IS DISTINCT FROM (i.display_name, i.initials, i.birth_date, i.phone, i.motif_text);
END $$;

-- request.create, now returning the deadline it computed on the database's
-- clock (the deadline of p_request is ignored).
DROP FUNCTION snp_request_create(text, bigint, text, jsonb, jsonb, bigint, int);
CREATE FUNCTION snp_request_create(p_territory text, p_organisation bigint, p_actor text,
                                   p_request jsonb, p_identity jsonb, p_slot bigint,
                                   p_hold_seconds int,
                                   OUT request_id bigint, OUT created boolean, OUT status text,
                                   OUT held_slot bigint, OUT hold_expires_at timestamptz,
                                   OUT created_at timestamptz, OUT deadline timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    v_kind text;
BEGIN
    SELECT kind INTO v_kind FROM organisation
     WHERE id = p_organisation AND territory_id = p_territory;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organisation % is not in territory %', p_organisation, p_territory
            USING ERRCODE = 'SN403';
    END IF;
    PERFORM snp_cause('create');
    INSERT INTO request (territory_id, organisation_id, requester_kind, created_by, client_ref,
                         motif, urgency, deadline, modes, max_distance_km, reduced_mobility,
                         patient_commune, patient_birth_year, patient_age, patient_sex, has_mt,
                         mt_rpps, priority_groups, source)
    SELECT p_territory, p_organisation, v_kind, p_actor, x.client_ref, x.motif, x.urgency,
           snp_deadline(x.urgency, snp_tz(p_territory), now()), x.modes, x.max_distance_km,
           coalesce(x.reduced_mobility, false), x.patient_commune, x.patient_birth_year,
           x.patient_age, x.patient_sex, x.has_mt, x.mt_rpps, coalesce(x.priority_groups, '{}'),
           coalesce(x.source, '{}'::jsonb)
      FROM jsonb_to_record(p_request) AS x (client_ref text, motif text, urgency text,
                                            modes text[], max_distance_km real,
                                            reduced_mobility boolean, patient_commune text,
                                            patient_birth_year int, patient_age int,
                                            patient_sex text, has_mt boolean, mt_rpps text,
                                            priority_groups text[], source jsonb)
    ON CONFLICT (organisation_id, client_ref) DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM request
         WHERE organisation_id = p_organisation AND client_ref = p_request ->> 'client_ref';
        -- A true retry carries the same request; the same client_ref for
        -- another one is a conflict (protocol: request.create).
        IF snp_request_differs(r, p_request, p_identity) THEN
            RAISE EXCEPTION 'client_ref % was used for another request',
                p_request ->> 'client_ref' USING ERRCODE = 'SN409';
        END IF;
        request_id := r.id;
        created := false;
        status := r.status;
        created_at := r.created_at;
        deadline := r.deadline;
        SELECT id, slot.hold_expires_at INTO held_slot, hold_expires_at
          FROM slot WHERE held_for = r.id AND slot.status = 'held';
        RETURN;
    END IF;
    INSERT INTO patient_identity (request_id, display_name, initials, birth_date, phone,
                                  motif_text, erase_after)
    SELECT r.id, x.display_name, x.initials, x.birth_date, x.phone, x.motif_text,
           r.deadline + make_interval(days => coalesce(
               (SELECT (settings ->> 'identity_retention_days')::int FROM territory
                 WHERE id = p_territory), 90))
      FROM jsonb_to_record(p_identity) AS x (display_name text, initials text, birth_date date,
                                             phone text, motif_text text);
    PERFORM snp_event(p_territory, p_actor, 'request.created', NULL, r.id, NULL, NULL, 'waiting',
                      snp_request_facts(r));
    request_id := r.id;
    created := true;
    status := 'waiting';
    created_at := r.created_at;
    deadline := r.deadline;
    IF p_slot IS NOT NULL THEN
        s := snp_hold(r, p_slot, p_hold_seconds, p_actor);
        IF s.id IS NOT NULL THEN
            UPDATE request SET status = 'offered' WHERE id = r.id;
            status := 'offered';
            held_slot := s.id;
            hold_expires_at := s.hold_expires_at;
        END IF;
    END IF;
END $$;

-- Moves a request's offer, as in 0002, with the cause of its hold announced
-- ('move'), an expiry that has not run out yet by the database's clock left
-- alone (the offer then stays as it is), and, when p_next could not be
-- held, whether it is free all the same (refused: it may not be held for
-- this request, so snpd stops proposing it) or taken (snpd reads it again).
DROP FUNCTION snp_offer_move(bigint, bigint, text, bigint, int, text);
CREATE FUNCTION snp_offer_move(p_request bigint, p_release bigint, p_reason text,
                               p_next bigint, p_hold_seconds int, p_actor text,
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
        s := snp_release(r, p_release, p_reason, p_actor);
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

-- Housekeeping, as in 0002, except that an expired hold is taken only when
-- both its request and its slot can be locked at once without waiting (the
-- request first, as everywhere else); one that cannot is another
-- transaction's business and is looked at again next time.
CREATE OR REPLACE FUNCTION snp_housekeeping(p_actor text)
RETURNS TABLE (change text, slot_id bigint, request_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    s slot;
    r request;
BEGIN
    FOR r IN SELECT q.* FROM request q
              WHERE q.status = 'offered'
                AND EXISTS (SELECT 1 FROM slot h WHERE h.held_for = q.id AND h.status = 'held'
                               AND h.hold_expires_at <= now())
                FOR UPDATE SKIP LOCKED LOOP
        SELECT * INTO s FROM slot h WHERE h.held_for = r.id AND h.status = 'held'
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        s := snp_release(r, s.id, 'expired', p_actor);
        CONTINUE WHEN s.id IS NULL;
        UPDATE request SET status = 'waiting' WHERE id = r.id;
        PERFORM snp_event(r.territory_id, p_actor, 'request.waiting', NULL, r.id, NULL,
                          'offered', 'waiting', '{}'::jsonb);
        change := 'hold_expired'; slot_id := s.id; request_id := r.id;
        RETURN NEXT;
    END LOOP;
    PERFORM snp_cause('');
    FOR s IN UPDATE slot SET status = 'expired'
              WHERE slot.status = 'free' AND starts_at <= now() RETURNING * LOOP
        PERFORM snp_event(s.territory_id, p_actor, 'slot.expired', s.id, NULL, NULL, 'free',
                          'expired', snp_slot_facts(s));
        change := 'slot_expired'; slot_id := s.id; request_id := NULL;
        RETURN NEXT;
    END LOOP;
    FOR s IN UPDATE slot SET released_at = now()
              WHERE slot.status = 'free' AND release_minutes IS NOT NULL AND released_at IS NULL
                AND starts_at - make_interval(mins => release_minutes) <= now()
              RETURNING * LOOP
        PERFORM snp_event(s.territory_id, p_actor, 'slot.released', s.id, NULL, NULL, 'free',
                          'free', snp_slot_facts(s));
        change := 'slot_released'; slot_id := s.id; request_id := NULL;
        RETURN NEXT;
    END LOOP;
    FOR r IN UPDATE request SET status = 'unserved', closed_at = now()
              WHERE request.status = 'waiting' AND deadline <= now() RETURNING * LOOP
        PERFORM snp_event(r.territory_id, p_actor, 'request.unserved', NULL, r.id, NULL,
                          'waiting', 'unserved', snp_request_facts(r));
        change := 'request_unserved'; slot_id := NULL; request_id := r.id;
        RETURN NEXT;
    END LOOP;
END $$;

-- Notifications (0005) with what every snpd process needs to push the
-- change to its own subscribers (docs/dispatch.md "Pushes"):
--   slots:    {"k":"s","id","st","h","x","r","c": cause,
--              "os": previous status, "q": the request it is or was held
--              for, "ox": the previous hold's expiry, and that request's
--              "o" organisation, "t" territory, "f" client_ref}
--   requests: {"k":"r","id","st","p": previous status (null when new),
--              "o", "t", "f", "b": the booking when booked or leaving
--              booked, "c": cause}
--   bookings: {"k":"b","id","st","e": "created" | "cancelled" | "outcome",
--              "t", "rp": rpps, "q": request, "o", "f", "oc": outcome}
-- Hold expiries are whole seconds (see snp_hold), sent as such.
CREATE OR REPLACE FUNCTION snp_notify_slot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_request bigint;
    v_previous text;
    v_old_expiry bigint;
    q request;
BEGIN
    v_request := NEW.held_for;
    IF TG_OP = 'UPDATE' THEN
        v_previous := OLD.status;
        v_request := coalesce(NEW.held_for, OLD.held_for);
        v_old_expiry := floor(extract(epoch FROM OLD.hold_expires_at))::bigint;
    END IF;
    IF v_request IS NOT NULL THEN
        SELECT * INTO q FROM request WHERE id = v_request;
    END IF;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 's', 'id', NEW.id, 'st', NEW.status, 'h', coalesce(NEW.held_for, 0),
        'x', coalesce(floor(extract(epoch FROM NEW.hold_expires_at))::bigint, 0),
        'r', NEW.released_at IS NOT NULL,
        'c', coalesce(current_setting('snp.cause', true), ''), 'os', v_previous,
        'q', v_request, 'ox', v_old_expiry, 'o', q.organisation_id, 't', q.territory_id,
        'f', q.client_ref)::text);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION snp_notify_request() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous text;
    v_booking bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        previous := OLD.status;
    END IF;
    IF NEW.status = 'booked' OR previous = 'booked' THEN
        SELECT max(id) INTO v_booking FROM booking WHERE booking.request_id = NEW.id;
    END IF;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'r', 'id', NEW.id, 'st', NEW.status, 'p', previous, 'o', NEW.organisation_id,
        't', NEW.territory_id, 'f', coalesce(NEW.client_ref, ''), 'b', v_booking,
        'c', coalesce(current_setting('snp.cause', true), ''))::text);
    RETURN NULL;
END $$;

CREATE FUNCTION snp_notify_booking() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_event text;
    q request;
BEGIN
    SELECT * INTO q FROM request WHERE id = NEW.request_id;
    v_event := CASE WHEN TG_OP = 'INSERT' THEN 'created'
                    WHEN NEW.status <> OLD.status THEN NEW.status
                    ELSE 'outcome' END;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'b', 'id', NEW.id, 'st', NEW.status, 'e', v_event, 't', NEW.territory_id,
        'rp', NEW.rpps, 'q', NEW.request_id, 'o', q.organisation_id,
        'f', coalesce(q.client_ref, ''), 'oc', NEW.outcome)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER booking_notify AFTER INSERT OR UPDATE OF status, outcome_at ON booking
    FOR EACH ROW EXECUTE FUNCTION snp_notify_booking();
