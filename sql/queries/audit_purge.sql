-- Deletes audit rows past their retention: $1 actor, $2 default retention
-- in months, $3 most rows per call.  Returns the number deleted.
SELECT snp_audit_purge($1, $2::int, $3::int)
