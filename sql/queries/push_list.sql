-- push.list: $1 territory, $2 state or NULL: the territory's appointment
-- pushes not acknowledged yet (sql/migrations/0018), oldest first, at most 500.
SELECT json_build_object('pushes', coalesce(json_agg(p.item ORDER BY p.created_at, p.id), '[]'))::text
  FROM (SELECT o.id, o.created_at, json_strip_nulls(json_build_object(
               'push_id', o.id, 'booking_id', o.booking_id, 'seq', o.seq, 'status', o.status,
               'state', o.state, 'attempts', o.attempts,
               'created_at', snp_rfc3339(o.created_at, snp_tz($1)),
               'next_attempt_at', CASE WHEN o.state = 'pending'
                                       THEN snp_rfc3339(greatest(o.due_at, o.lease_until), snp_tz($1)) END,
               'last_error', left(o.last_error, 500))) AS item
          FROM appointment_outbox o
         WHERE o.territory_id = $1 AND o.state <> 'sent' AND ($2::text IS NULL OR o.state = $2)
         ORDER BY o.created_at, o.id
         LIMIT 500) p
