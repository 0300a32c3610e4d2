-- Cancels a booking on the requester's side, which ends its request:
-- $1 booking, $2 organisation, $3 reason, $4 actor.  Returns the booking
-- view, and its slot's practitioner and site, whom its push is for.
SELECT coalesce(freed_slot, 0) AS freed_slot, request_id, booking::text AS booking,
       booking->'slot'->'practitioner'->>'rpps' AS rpps,
       (booking->'slot'->'site'->>'site_id')::bigint AS site_id
  FROM snp_booking_cancel_by_requester($1::bigint, $2::bigint, $3, $4)
