-- token.revoke: $1 territory, $2 actor, $3 actor's role, $4 token id.
SELECT snp_token_revoke($1, $2, $3, $4::bigint)::text
