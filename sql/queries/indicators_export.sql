-- An audited extraction of the indicators (snpd indicators): $1 territory,
-- $2 period kind (month, quarter, year), $3 period, $4 format, $5 actor.
SELECT snp_indicators_export($1, $2, $3, $4, $5)::text
