-- Records an outcome: $1 booking, $2 territory, $3 practitioner or NULL,
-- $4 outcome, $5 note, $6 delay in hours, $7 actor.  The answer is the
-- booking as outcome.report declares it (without the patient's identity
-- or the note, which booking.list shows the practitioner); the other
-- columns are for the requester's push.
SELECT o.id, o.request_id, o.outcome,
       (SELECT organisation_id FROM request r WHERE r.id = o.request_id) AS organisation_id,
       to_char(o.outcome_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS reported_at,
       (SELECT coalesce(client_ref, '') FROM request r WHERE r.id = o.request_id) AS client_ref,
       snp_booking_view(o, false)::text AS booking
  FROM snp_outcome_report($1::bigint, $2, $3, $4, $5, $6::int, $7) o
