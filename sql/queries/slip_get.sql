-- The redirection slip of an emergency department's request (audited):
-- $1 territory, $2 request, $3 organisation, $4 actor.
SELECT snp_slip($1, $2::bigint, $3::bigint, $4)::text
