-- The catch-up after a lost listening connection (dispatch_sync.c): live
-- slots (free, held or booked) that have not ended yet; the start-up reads
-- the same rows in pages (load_slots_page.sql).  The column list is shared
-- by every query that returns slots to snpd (store_slot_from_row).  In no
-- order (a sort of a million rows here spilled to disk, bench/README.md §9).
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, ''),
       floor(extract(epoch FROM s.starts_at))::bigint, s.duration_min, s.mode, s.audience::text,
       coalesce(s.motifs::text, ''), coalesce(s.min_age, -1), coalesce(s.max_age, -1),
       coalesce(s.release_minutes, 0), s.status, coalesce(s.held_for, 0),
       coalesce(floor(extract(epoch FROM s.hold_expires_at))::bigint, 0)
  FROM slot s
 WHERE s.status IN ('free', 'held', 'booked')
   AND s.starts_at + make_interval(mins => s.duration_min) > now()
