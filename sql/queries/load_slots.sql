-- The catch-up after a lost listening connection (dispatch_sync.c): live
-- slots (free, held or booked) that have not ended yet; the start-up reads
-- the same rows in pages (load_slots_page.sql).  The columns and their names
-- are shared by every query that returns slots to snpd (store.h, enum
-- store_slot_col).  In no order (a sort of a million rows here spilled to
-- disk, bench/README.md §9).  Not ended yet: the test as in
-- load_slots_page.sql.
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, '') AS rpps,
       floor(extract(epoch FROM s.starts_at))::bigint AS starts_at_epoch, s.duration_min, s.mode,
       s.audience::text AS audience, coalesce(s.motifs::text, '') AS motifs,
       coalesce(s.min_age, -1) AS min_age, coalesce(s.max_age, -1) AS max_age,
       coalesce(s.release_minutes, 0) AS release_minutes, s.status,
       coalesce(s.held_for, 0) AS held_for,
       coalesce(floor(extract(epoch FROM s.hold_expires_at))::bigint, 0) AS hold_expires_at_epoch
  FROM slot s
 WHERE s.status IN ('free', 'held', 'booked')
   AND (s.starts_at > now() OR s.starts_at + make_interval(mins => s.duration_min) > now())
