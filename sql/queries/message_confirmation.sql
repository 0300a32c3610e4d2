-- request.confirmation.send: $1 territory, $2 organisation, $3 actor, $4 role,
-- $5 request, $6 channel, $7 address (checked and normalised by snpd).
SELECT snp_message_confirmation($1, $2::bigint, $3, $4, $5::bigint, $6, $7)::text
