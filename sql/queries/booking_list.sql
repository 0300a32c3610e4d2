-- A practitioner's bookings by slot start (audited): $1 territory, $2 RPPS,
-- $3 statuses or NULL, $4 from, $5 to, $6 limit + 1, $7 actor.  Each with
-- the summary sent to the patient's médecin traitant and the GP the patient
-- was referred to, when there are (migration 0026).
SELECT (v || jsonb_strip_nulls(jsonb_build_object(
           'mt_summary', (SELECT jsonb_strip_nulls(jsonb_build_object(
                                     'practitioner', snp_message_practitioner(o),
                                     'state', o.state,
                                     'done_at', snp_rfc3339(o.done_at, snp_tz($1))))
                            FROM message_outbox o
                           WHERE o.booking_id = (v ->> 'booking_id')::bigint
                             AND o.kind = 'mt_summary'),
           'referred_to', (SELECT snp_message_practitioner(o)
                             FROM message_outbox o
                            WHERE o.booking_id = (v ->> 'booking_id')::bigint
                              AND o.kind = 'mt_handover'))))::text
  FROM snp_booking_list($1, $2, $3::text[], $4::timestamptz, $5::timestamptz, $6::int, $7) v
