-- Revokes the active tokens matching $1 (id, or NULL) and $2 (label, or
-- NULL); at least one of the two is given.  Returns the revoked ids.
UPDATE api_token
   SET revoked_at = now()
 WHERE revoked_at IS NULL
   AND ($1::bigint IS NULL OR id = $1::bigint)
   AND ($2::text IS NULL OR label = $2::text)
   AND ($1::bigint IS NOT NULL OR $2::text IS NOT NULL)
RETURNING id
