-- A site's bookings by slot start, for its reception (audited): $1 territory,
-- $2 site id, $3 statuses or NULL, $4 from, $5 to, $6 limit + 1, $7 actor.
SELECT v::text FROM snp_site_booking_list($1, $2::bigint, $3::text[], $4::timestamptz,
                                          $5::timestamptz, $6::int, $7) v
