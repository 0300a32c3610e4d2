-- booking.mt_handover: $1 territory, $2 the caller's RPPS, $3 actor, $4 booking.
SELECT snp_message_mt_handover($1, $2, $3, $4::bigint)::text
