-- Cancels a booking on the requester's side, which ends its request:
-- $1 booking, $2 organisation, $3 reason, $4 actor.
SELECT coalesce(c.freed_slot, 0), coalesce(c.cancelled_booking, 0), b.request_id
  FROM booking b
 CROSS JOIN LATERAL snp_request_cancel(b.request_id, $2::bigint, $3, $4) c
 WHERE b.id = $1::bigint AND b.status = 'booked'
