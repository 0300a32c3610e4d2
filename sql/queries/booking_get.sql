-- One booking of an organisation's request, as the protocol shows it
-- (without the patient): $1 booking, $2 organisation.
SELECT snp_booking_view(b, false)::text
  FROM booking b JOIN request r ON r.id = b.request_id
 WHERE b.id = $1::bigint AND r.organisation_id = $2::bigint
