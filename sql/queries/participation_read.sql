-- participation.get: $1 territory, $2 role, $3 caller's RPPS (gp) or NULL,
-- $4 practitioner, $5 year or NULL, $6 from or NULL, $7 to or NULL,
-- $8 limit.  The document of snp_participation_get.
SELECT snp_participation_read($1, $2, $3, $4, $5::int, $6::date, $7::date, $8::int)::text
