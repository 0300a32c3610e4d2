-- One slot, to refresh the memory of a slot another process changed.
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, ''),
       floor(extract(epoch FROM s.starts_at))::bigint, s.duration_min, s.mode, s.audience::text,
       coalesce(s.motifs::text, ''), coalesce(s.min_age, -1), coalesce(s.max_age, -1),
       coalesce(s.release_minutes, 0), s.status, coalesce(s.held_for, 0),
       coalesce(floor(extract(epoch FROM s.hold_expires_at))::bigint, 0) FROM slot s WHERE s.id = $1::bigint
