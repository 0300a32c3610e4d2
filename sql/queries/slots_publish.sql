-- Publishes slots: $1 territory, $2 site id, $3 practitioner RPPS or NULL,
-- $4 actor, $5 JSON array of slots (see snp_slots_publish).
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, '') AS rpps,
       floor(extract(epoch FROM s.starts_at))::bigint AS starts_at_epoch, s.duration_min, s.mode,
       s.audience::text AS audience, coalesce(s.motifs::text, '') AS motifs,
       coalesce(s.min_age, -1) AS min_age, coalesce(s.max_age, -1) AS max_age,
       coalesce(s.release_minutes, 0) AS release_minutes, s.status,
       coalesce(s.held_for, 0) AS held_for,
       coalesce(floor(extract(epoch FROM s.hold_expires_at))::bigint, 0) AS hold_expires_at_epoch
  FROM snp_slots_publish($1, $2::bigint, $3, $4, $5::jsonb) s
 ORDER BY s.starts_at, s.id
