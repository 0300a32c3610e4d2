-- Records that the sender accepted attempt $2 of message $1: the address is
-- erased with it.
UPDATE message_outbox
   SET state = 'sent', done_at = now(), recipient = NULL, lease_until = NULL, last_error = NULL
 WHERE id = $1::bigint AND attempts = $2::int AND state = 'pending'
