-- token.create: $1 territory, $2 actor, $3 actor's role, $4 SHA-256 of the
-- new secret (hex), $5 the request (JSON).  Returns the token's view.
SELECT snp_token_create($1, $2, $3, decode($4, 'hex'), $5::jsonb)::text
