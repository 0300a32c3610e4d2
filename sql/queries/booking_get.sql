-- One booking of an organisation's request, as the protocol shows it
-- (without the patient): $1 booking, $2 organisation.  Also its slot's
-- practitioner and site, whom a push of it is for.
SELECT v::text AS booking, v->'slot'->'practitioner'->>'rpps' AS rpps,
       (v->'slot'->'site'->>'site_id')::bigint AS site_id
  FROM booking b JOIN request r ON r.id = b.request_id,
       LATERAL snp_booking_view(b, false) v
 WHERE b.id = $1::bigint AND r.organisation_id = $2::bigint
