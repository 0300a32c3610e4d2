-- Moves an offer: $1 request, $2 slot to release or NULL, $3 reason,
-- $4 slot to hold next or NULL, $5 hold seconds, $6 actor, $7 the
-- requester's reason for a decline or NULL.  Columns:
-- status, released, held slot (0: none), its expiry (whole seconds), and
-- whether $4 was refused although free.
SELECT status, released, coalesce(held_slot, 0) AS held_slot,
       coalesce(floor(extract(epoch FROM hold_expires_at))::bigint, 0) AS hold_expires_at_epoch,
       refused
  FROM snp_offer_move($1::bigint, $2::bigint, $3, $4::bigint, $5::int, $6, $7)
