-- Confirms an offer: $1 request, $2 organisation, $3 slot, $4 actor.
SELECT booking_id, created, slot_id, coalesce(released_slot, 0) AS released_slot
  FROM snp_offer_accept($1::bigint, $2::bigint, $3::bigint, $4)
