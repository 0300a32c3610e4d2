-- An organisation's requests in the caller's territory, newest first
-- (audited): $1 territory, $2 organisation, $3 statuses (text array literal)
-- or NULL, $4 from, $5 to, $6 limit + 1, $7 actor, $8 role.
SELECT v::text FROM snp_request_list($1, $2::bigint, $3::text[], $4::timestamptz,
                                     $5::timestamptz, $6::int, $7, $8) v
