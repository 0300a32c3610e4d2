-- Records a failed attempt $2 of message $1: tried again in $3 milliseconds,
-- unless it was queued $4 seconds ago or more: then it is given up ("dead")
-- and its address erased.  $5: what went wrong, for the operator.  Returns
-- the row's new state.
UPDATE message_outbox
   SET lease_until = NULL, last_error = $5,
       state = CASE WHEN now() - created_at >= make_interval(secs => $4::int)
                    THEN 'dead' ELSE 'pending' END,
       recipient = CASE WHEN now() - created_at >= make_interval(secs => $4::int)
                        THEN NULL ELSE recipient END,
       done_at = CASE WHEN now() - created_at >= make_interval(secs => $4::int)
                      THEN now() END,
       due_at = now() + make_interval(secs => $3::float8 / 1000)
 WHERE id = $1::bigint AND attempts = $2::int AND state = 'pending'
RETURNING state
