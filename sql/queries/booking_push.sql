-- One booking as the protocol shows it, without the patient, to push a
-- change another snpd process made to the subscribers of this one: $1
-- booking.  Also its slot's practitioner and site, whom the push is for.
SELECT v::text AS booking, v->'slot'->'practitioner'->>'rpps' AS rpps,
       (v->'slot'->'site'->>'site_id')::bigint AS site_id
  FROM booking b, LATERAL snp_booking_view(b, false) v
 WHERE b.id = $1::bigint
