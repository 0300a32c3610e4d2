-- Lists tokens (never their hashes), optionally of one territory ($1).
SELECT id, role, territory_id, coalesce(rpps, ''), coalesce(organisation_id::text, ''), label,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ''),
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
            ELSE 'active' END
  FROM api_token
 WHERE $1::text IS NULL OR territory_id = $1::text
 ORDER BY id
