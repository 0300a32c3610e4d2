-- Sending a given-up appointment push again (issue 12), without SQL: a
-- coordinator, after the platform's refusals were understood and fixed
-- (a practitioner unknown there, a FINESS corrected), puts the push back.
--
-- A push goes out only after the earlier changes of its booking (the claim
-- of sql/queries/outbox_claim.sql), but the later ones did not wait for a
-- push given up.  So the push and every later change of its booking go back
-- to pending, due now, their attempts and refusal clock reset: the platform
-- receives them again in order (a change it has already received comes as
-- the same conditional update, which changes nothing there).

-- Puts dead push p_push of p_territory back, with the later changes of its
-- booking.  SN404 for a push of another territory or none, SN409 for one
-- that is not dead.  Audited as push.resend.  Returns {"push_id": id,
-- "requeued": n}.
CREATE FUNCTION snp_push_resend(p_territory text, p_actor text, p_role text, p_push bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    o appointment_outbox;
    v_count int;
BEGIN
    SELECT * INTO o FROM appointment_outbox
     WHERE id = p_push AND territory_id = p_territory FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no push % in this territory', p_push USING ERRCODE = 'SN404';
    END IF;
    IF o.state <> 'dead' THEN
        RAISE EXCEPTION 'push % is %, not given up', p_push, o.state USING ERRCODE = 'SN409';
    END IF;
    UPDATE appointment_outbox
       SET state = 'pending', due_at = now(), lease_until = NULL, attempts = 0,
           refused_since = NULL, done_at = NULL
     WHERE booking_id = o.booking_id AND seq >= o.seq AND state <> 'pending';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'push.resend',
            jsonb_build_object('territory', p_territory, 'push_id', p_push,
                               'booking_id', o.booking_id, 'requeued', v_count));
    RETURN jsonb_build_object('push_id', p_push, 'requeued', v_count);
END $$;
