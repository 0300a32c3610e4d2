-- message.list: $1 territory, $2 state or NULL, $3 at most this many: the
-- territory's messages, newest first, without address or text.
SELECT json_build_object('messages', coalesce(json_agg(m.item ORDER BY m.created_at DESC, m.id DESC),
                                              '[]'))::text
  FROM (SELECT o.id, o.created_at, snp_message_view(o, true) AS item
          FROM message_outbox o
         WHERE o.territory_id = $1 AND ($2::text IS NULL OR o.state = $2)
         ORDER BY o.created_at DESC, o.id DESC
         LIMIT $3::int) m
