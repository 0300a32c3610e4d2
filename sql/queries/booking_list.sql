-- A practitioner's bookings by slot start (audited): $1 territory, $2 RPPS,
-- $3 statuses or NULL, $4 from, $5 to, $6 limit + 1, $7 actor.
SELECT v::text FROM snp_booking_list($1, $2, $3::text[], $4::timestamptz, $5::timestamptz,
                                     $6::int, $7) v
