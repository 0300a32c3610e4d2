-- territory.import: $1 territory, $2 actor, $3 actor's role, $4 the request
-- (JSON).  One call, one transaction (sql/migrations/0008).
SELECT snp_import($1, $2, $3, $4::jsonb)::text
