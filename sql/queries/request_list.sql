-- An organisation's requests, newest first (audited): $1 organisation,
-- $2 statuses (text array literal) or NULL, $3 from, $4 to, $5 limit + 1,
-- $6 actor, $7 role.
SELECT v::text FROM snp_request_list($1::bigint, $2::text[], $3::timestamptz, $4::timestamptz,
                                     $5::int, $6, $7) v
