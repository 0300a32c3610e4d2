-- The messages still to send, for /metrics: how many are pending, how old the
-- oldest is (seconds), how many were given up.
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending')),
                0)::float8 AS oldest_s,
       count(*) FILTER (WHERE state = 'dead') AS dead
  FROM message_outbox
 WHERE state <> 'sent'
