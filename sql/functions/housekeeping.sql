-- The periodic expiry of holds, offers and requests (the housekeeping timer
-- of dispatcher/core/dispatch_housekeeping.c).
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

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
    -- starts_at is also bounded by the rule's largest value (0002's CHECK:
    -- 10,080 minutes), so that the index slot_release_pending (0030) reads
    -- only the next seven days.
    FOR s IN UPDATE slot SET released_at = now()
              WHERE slot.status = 'free' AND release_minutes IS NOT NULL AND released_at IS NULL
                AND starts_at <= now() + interval '10080 minutes'
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
