-- Records that the platform acknowledged push $1, claimed as attempt $2 (a
-- row another process has claimed since is left to that process).
UPDATE appointment_outbox
   SET state = 'sent', done_at = now(), lease_until = NULL, last_error = NULL
 WHERE id = $1::bigint AND attempts = $2::int AND state = 'pending'
RETURNING id
