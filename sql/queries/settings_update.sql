-- Patches a territory's settings: $1 territory, $2 JSON patch, $3 actor.
SELECT snp_settings_update($1, $2::jsonb, $3)::text
