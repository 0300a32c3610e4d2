-- Records a failed attempt $2 of push $1: tried again in $3 milliseconds.
-- $4 true: the platform refused it (4xx); refused for $5 seconds or more
-- since its first refusal, the row is given up ("dead").  $6: what went wrong,
-- for the operator.  Returns the row's new state.
UPDATE appointment_outbox
   SET lease_until = NULL, last_error = $6,
       refused_since = CASE WHEN $4::boolean THEN coalesce(refused_since, now())
                            ELSE refused_since END,
       state = CASE WHEN $4::boolean
                     AND now() - coalesce(refused_since, now()) >= make_interval(secs => $5::int)
                    THEN 'dead' ELSE 'pending' END,
       due_at = now() + make_interval(secs => $3::float8 / 1000)
 WHERE id = $1::bigint AND attempts = $2::int AND state = 'pending'
RETURNING state
