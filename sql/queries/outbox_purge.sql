-- Deletes outbox rows delivered long ago, and gives up messages pending too
-- long (sql/migrations/0028): $1 actor, $2 days kept, $3 seconds a message
-- may wait, $4 most rows per table and call.  Returns the number of rows.
SELECT snp_outbox_purge($1, $2::int, $3::int, $4::int)
