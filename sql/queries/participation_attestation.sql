-- participation.attestation: $1 territory, $2 role, $3 actor, $4 caller's
-- RPPS (gp) or NULL, $5 practitioner, $6 year, $7 format.  The document
-- to render, with the audit row written in the same statement.
SELECT snp_participation_attestation($1, $2, $3, $4, $5, $6::int, $7)::text
