-- Old outbox rows go (issue 12, docs/fhir.md "Appointment push",
-- docs/messages.md): what was delivered long ago is of use to no one, and
-- both outboxes would otherwise grow with every booking for ever.
--
-- snp_outbox_purge deletes, in batches of at most p_limit per table, rows
-- delivered (or given up) more than p_days ago:
--   - appointment_outbox: sent rows, except each booking's last one, which
--     says the booking was announced and carries its seq (0018 and 0027
--     write the next change only for an announced booking, as max(seq) + 1);
--     dead rows stay for the coordinator's push.resend;
--   - message_outbox: confirmations and summaries sent or given up (their
--     address is already erased); referrals stay, since they decide the
--     next referral's turn and booking.list's referred_to.
-- Before that, messages still pending p_message_dead_s after they were
-- queued are given up and their address erased, whether or not a sender
-- tried them (message_sender none, a message file that cannot be opened):
-- an address is never kept longer than that.
-- Nothing an indicator reads is deleted (indicators read the event log).
-- Safe to run from several snpd processes at once.  Returns the rows deleted
-- or given up.
CREATE FUNCTION snp_outbox_purge(p_actor text, p_days int, p_message_dead_s int, p_limit int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_pushes bigint;
    v_messages bigint;
    v_given_up bigint;
BEGIN
    UPDATE message_outbox
       SET state = 'dead', recipient = NULL, done_at = now(), lease_until = NULL,
           last_error = coalesce(last_error, 'not sent in time: no sender took it')
     WHERE id IN (
        SELECT m.id FROM message_outbox m
         WHERE m.state = 'pending'
           AND m.created_at < now() - make_interval(secs => p_message_dead_s)
           AND (m.lease_until IS NULL OR m.lease_until < now())
         ORDER BY m.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_given_up = ROW_COUNT;
    DELETE FROM appointment_outbox
     WHERE id IN (
        SELECT o.id FROM appointment_outbox o
         WHERE o.state = 'sent' AND o.done_at < now() - make_interval(days => p_days)
           AND EXISTS (SELECT 1 FROM appointment_outbox l
                        WHERE l.booking_id = o.booking_id AND l.seq > o.seq)
         ORDER BY o.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_pushes = ROW_COUNT;
    DELETE FROM message_outbox
     WHERE id IN (
        SELECT m.id FROM message_outbox m
         WHERE m.state IN ('sent', 'dead') AND m.kind IN ('confirmation', 'mt_summary')
           AND m.done_at < now() - make_interval(days => p_days)
         ORDER BY m.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_messages = ROW_COUNT;
    IF v_pushes + v_messages + v_given_up > 0 THEN
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'outbox.purge',
                jsonb_build_object('pushes', v_pushes, 'messages', v_messages, 'days', p_days,
                                   'messages_given_up', v_given_up));
    END IF;
    RETURN v_pushes + v_messages + v_given_up;
END $$;
