-- Start-up: the lowest and highest slot ids (0 and 0 when there is none),
-- which store.c cuts into ranges read side by side by load_slots_page.sql.
-- Both ends of the primary key's index: no row is read in between.
SELECT coalesce(min(id), 0) AS low, coalesce(max(id), 0) AS high
  FROM slot
