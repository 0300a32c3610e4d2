-- Cancels a request: $1 request, $2 organisation, $3 reason, $4 actor.
SELECT coalesce(freed_slot, 0) AS freed_slot, coalesce(cancelled_booking, 0) AS cancelled_booking
  FROM snp_request_cancel($1::bigint, $2::bigint, $3, $4)
