-- call.record: $1 territory, $2 organisation, $3 actor, $4 outcome,
-- $5 request or NULL, $6 client_ref or NULL, $7 regulator_id or NULL.
-- {"call": view, "created": bool}.
SELECT snp_call_record($1, $2::bigint, $3, $4, $5::bigint, $6, $7)::text
