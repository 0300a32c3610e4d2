-- The protocol's indicators.get, audited: $1 territory, $2 month (YYYY-MM),
-- $3 actor, $4 role.
SELECT snp_indicators_get($1, $2, $3, $4)::text
