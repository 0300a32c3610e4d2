-- An organisation's calls in the caller's territory, newest first:
-- $1 territory, $2 organisation, $3 outcomes (text array literal) or NULL,
-- $4 from, $5 to, $6 limit + 1.
SELECT v::text FROM snp_call_list($1, $2::bigint, $3::text[], $4::timestamptz,
                                  $5::timestamptz, $6::int) v
