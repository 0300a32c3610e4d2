-- Cancels a booking on the practitioner's side: $1 booking, $2 territory,
-- $3 practitioner or NULL, $4 reason, $5 actor.  Returns the booking view.
SELECT slot_id, slot_status, request_id, request_status, organisation_id,
       booking::text AS booking
  FROM snp_booking_cancel_view($1::bigint, $2, $3, $4, $5)
