-- Withdraws a free slot: $1 slot, $2 territory, $3 practitioner or NULL, $4 actor.
SELECT id FROM snp_slot_withdraw($1::bigint, $2, $3, $4)
