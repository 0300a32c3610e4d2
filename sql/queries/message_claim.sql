-- Claims the messages that are due (sql/migrations/0026): $1 lease in
-- seconds, $2 at most this many rows.  A row is due when it is pending, its
-- time has come and no process holds its lease; SKIP LOCKED lets several snpd
-- processes claim at once without taking each other's rows.  Each row comes
-- with what the sender needs: the channel, the address, and the text written
-- now from the booking (snp_message_text).
WITH due AS (
    SELECT o.id
      FROM message_outbox o
     WHERE o.state = 'pending' AND o.due_at <= now()
       AND (o.lease_until IS NULL OR o.lease_until < now())
     ORDER BY o.due_at, o.id
     LIMIT $2::int
       FOR UPDATE OF o SKIP LOCKED)
UPDATE message_outbox o
   SET lease_until = now() + make_interval(secs => $1::int), attempts = o.attempts + 1
  FROM due
 WHERE o.id = due.id
RETURNING o.id, o.attempts, o.kind, o.channel, o.recipient, o.territory_id,
          snp_message_text(o.id)::text AS content
