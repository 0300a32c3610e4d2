-- The redirection slip of an emergency department's request (audited):
-- $1 request, $2 organisation, $3 actor.
SELECT snp_slip($1::bigint, $2::bigint, $3)::text
