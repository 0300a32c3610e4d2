-- Deletes outbox rows delivered long ago (sql/migrations/0028): $1 actor,
-- $2 days kept, $3 most rows per table and call.  Returns the number deleted.
SELECT snp_outbox_purge($1, $2::int, $3::int)
