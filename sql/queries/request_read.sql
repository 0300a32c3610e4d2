-- One request of an organisation with its patient (audited): $1 request,
-- $2 organisation, $3 actor, $4 role.  NULL when it is not theirs.
SELECT snp_request_read($1::bigint, $2::bigint, $3, $4)::text
