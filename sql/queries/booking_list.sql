-- A practitioner's bookings by slot start (audited): $1 territory, $2 RPPS,
-- $3 statuses or NULL, $4 from, $5 to, $6 limit + 1, $7 actor.  Each with
-- the GP its patient was referred to (booking.mt_handover, migration 0026).
SELECT (v || coalesce((SELECT jsonb_build_object('referred_to', jsonb_build_object(
                                  'rpps', p.rpps, 'family_name', p.family_name,
                                  'given_name', p.given_name))
                         FROM message_outbox o JOIN practitioner p ON p.rpps = o.practitioner_rpps
                        WHERE o.booking_id = (v ->> 'booking_id')::bigint
                          AND o.kind = 'mt_handover'), '{}'))::text
  FROM snp_booking_list($1, $2, $3::text[], $4::timestamptz, $5::timestamptz, $6::int, $7) v
