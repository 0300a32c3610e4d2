-- The free slots that wait for their release rule, found by an index
-- (issue 13).  The housekeeping, every five seconds and once before each
-- start-up's load, releases the free slots whose release time has come
-- (starts_at - release_minutes <= now()); without an index PostgreSQL read
-- the whole slot table for it: 212 ms on a database of 1,000,000 slots,
-- none of which had a release rule.  Partial: a slot is in it only while it
-- is free, has a release rule and is not released yet, so that publishing
-- a slot without a rule, holding or booking one adds nothing to it.  The
-- housekeeping's look-up also bounds starts_at by the rule's declared
-- maximum (0002: at most 10,080 minutes), so that only the next seven days
-- of the index are read.
CREATE INDEX slot_release_pending ON slot (starts_at)
    WHERE status = 'free' AND release_minutes IS NOT NULL AND released_at IS NULL;
