-- Records an outcome: $1 booking, $2 territory, $3 practitioner or NULL,
-- $4 outcome, $5 note, $6 delay in hours, $7 actor.
SELECT id, request_id, slot_id, outcome,
       (SELECT organisation_id FROM request r WHERE r.id = request_id) AS organisation_id,
       to_char(outcome_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS reported_at,
       (SELECT coalesce(client_ref, '') FROM request r WHERE r.id = request_id) AS client_ref
  FROM snp_outcome_report($1::bigint, $2, $3, $4, $5, $6::int, $7)
