-- One booking as the protocol shows it, without the patient, to push a
-- change another snpd process made to the subscribers of this one: $1
-- booking.
SELECT snp_booking_view(b, false)::text FROM booking b WHERE b.id = $1::bigint
