-- A practitioner's bookings by slot start (audited): $1 territory, $2 RPPS,
-- $3 statuses or NULL, $4 from, $5 to, $6 limit + 1, $7 actor.  Each with
-- the GP its patient was referred to and the summary sent to the patient's
-- médecin traitant (booking.mt_handover and the outcome, migration 0026).
SELECT (v || coalesce((SELECT jsonb_object_agg(
                                  CASE o.kind WHEN 'mt_handover' THEN 'referred_to'
                                              ELSE 'mt_summary' END,
                                  CASE o.kind WHEN 'mt_handover' THEN doctor
                                       ELSE jsonb_strip_nulls(jsonb_build_object(
                                           'practitioner', doctor, 'state', o.state,
                                           'done_at', snp_rfc3339(o.done_at, snp_tz($1)))) END)
                         FROM message_outbox o
                         JOIN practitioner p ON p.rpps = o.practitioner_rpps,
                              LATERAL (SELECT jsonb_build_object('rpps', p.rpps,
                                                                 'family_name', p.family_name,
                                                                 'given_name', p.given_name)
                                              AS doctor) d
                        WHERE o.booking_id = (v ->> 'booking_id')::bigint
                          AND o.kind IN ('mt_handover', 'mt_summary')), '{}'))::text
  FROM snp_booking_list($1, $2, $3::text[], $4::timestamptz, $5::timestamptz, $6::int, $7) v
