-- Start-up: one page of the live slots, those of id above $1 and at most $3,
-- by id, at most $2 of them (store.c reads them page by page, in ranges of
-- ids read side by side: a million rows in one result cost hundreds of
-- megabytes, bench/README.md §9).  The rows of load_slots.sql (store.h,
-- enum store_slot_col), the times read through date_part, whose double
-- precision floors to the same second as extract's numeric for timestamps
-- in microseconds, at a fraction of the cost.  Keyset pages
-- on the primary key: each page continues the index scan where the last
-- ended.
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, '') AS rpps,
       floor(date_part('epoch', s.starts_at))::bigint AS starts_at_epoch, s.duration_min, s.mode,
       s.audience::text AS audience, coalesce(s.motifs::text, '') AS motifs,
       coalesce(s.min_age, -1) AS min_age, coalesce(s.max_age, -1) AS max_age,
       coalesce(s.release_minutes, 0) AS release_minutes, s.status,
       coalesce(s.held_for, 0) AS held_for,
       coalesce(floor(date_part('epoch', s.hold_expires_at))::bigint, 0)
         AS hold_expires_at_epoch
  FROM slot s
 WHERE s.id > $1::bigint AND s.id <= $3::bigint
   AND s.status IN ('free', 'held', 'booked')
   AND s.starts_at + make_interval(mins => s.duration_min) > now()
 ORDER BY s.id
 LIMIT $2::bigint
