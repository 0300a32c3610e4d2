-- The slot a request holds, found by an index (issue 13).  Accepting,
-- declining and cancelling an offer, moving it, reading a request again and
-- the hold's expiry all look for "the slot held for request r" (held_for =
-- r.id AND status = 'held'); without an index PostgreSQL read every held
-- slot of the database for it, so each of those operations cost more the
-- more offers were open at once.  Partial, as slot_held: only held slots
-- are in it, and a slot leaves it when it stops being held.
CREATE INDEX slot_held_for ON slot (held_for) WHERE status = 'held';
