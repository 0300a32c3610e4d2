-- participation.precondition.set: $1 territory, $2 actor, $3 role,
-- $4 practitioner, $5 kind, $6 valid_from, $7 valid_to or NULL.
-- {"precondition": view, "created": bool}.
SELECT snp_precondition_set($1, $2, $3, $4, $5, $6::date, $7::date)::text
