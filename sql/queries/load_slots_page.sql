-- Start-up: one page of the live slots, those of id above $1 and at most $3,
-- by id, at most $2 of them (store.c reads them page by page, in ranges of
-- ids read side by side: a million rows in one result cost hundreds of
-- megabytes, bench/README.md §9).  The rows of
-- load_slots.sql (store_slot_from_row), the times read through date_part,
-- whose double precision floors to the same second as extract's numeric
-- for timestamps in microseconds, at a fraction of the cost.  Keyset pages
-- on the primary key: each page continues the index scan where the last
-- ended.
SELECT s.id, s.territory_id, s.site_id, coalesce(s.rpps, ''),
       floor(date_part('epoch', s.starts_at))::bigint, s.duration_min, s.mode, s.audience::text,
       coalesce(s.motifs::text, ''), coalesce(s.min_age, -1), coalesce(s.max_age, -1),
       coalesce(s.release_minutes, 0), s.status, coalesce(s.held_for, 0),
       coalesce(floor(date_part('epoch', s.hold_expires_at))::bigint, 0)
  FROM slot s
 WHERE s.id > $1::bigint AND s.id <= $3::bigint
   AND s.status IN ('free', 'held', 'booked')
   AND s.starts_at + make_interval(mins => s.duration_min) > now()
 ORDER BY s.id
 LIMIT $2::bigint
