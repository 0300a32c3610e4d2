-- Cancels a booking on the practitioner's side: $1 booking, $2 territory,
-- $3 practitioner or NULL, $4 reason, $5 actor.  Returns the booking view,
-- and its slot's practitioner and site, whom its push is for.
SELECT slot_id, slot_status, request_id, request_status, organisation_id,
       booking::text AS booking, booking->'slot'->'practitioner'->>'rpps' AS rpps,
       (booking->'slot'->'site'->>'site_id')::bigint AS site_id
  FROM snp_booking_cancel_view($1::bigint, $2, $3, $4, $5)
