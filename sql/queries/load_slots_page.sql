-- Start-up: one page of the live slots, those of id above $1 and at most $3,
-- by id, at most $2 of them (store.c reads them page by page, in ranges of
-- ids read side by side: a million rows in one result cost hundreds of
-- megabytes, bench/README.md §9).  The rows of load_slots.sql (store.h,
-- enum store_slot_col), read in binary format (db_query_binary): the
-- columns as they are stored, NULLs included, without the text output of
-- integers, instants and arrays that was most of PostgreSQL's part of a
-- page.  The two instants are timestamps here (db_col_epoch reads either
-- form), under the names the text queries give their seconds.  The
-- audiences come as their stored bits (audience_bits, migration 0031), not
-- as the text[] that was a third of PostgreSQL's part (store_slot_cols
-- takes either).  Keyset
-- pages on the primary key: each page continues the index scan where the
-- last ended.  A slot not ended yet is one that starts later, or started
-- less than its duration ago: the first test answers for almost every row
-- and spares it the interval's arithmetic (a few percent of PostgreSQL's
-- part of a page, bench/README.md "Latest figures").
SELECT s.id, s.territory_id, s.site_id, s.rpps, s.starts_at AS starts_at_epoch,
       s.duration_min, s.mode, s.audience_bits, s.motifs, s.min_age, s.max_age,
       s.release_minutes, s.status, s.held_for,
       s.hold_expires_at AS hold_expires_at_epoch
  FROM slot s
 WHERE s.id > $1::bigint AND s.id <= $3::bigint
   AND s.status IN ('free', 'held', 'booked')
   AND (s.starts_at > now() OR s.starts_at + make_interval(mins => s.duration_min) > now())
 ORDER BY s.id
 LIMIT $2::bigint
