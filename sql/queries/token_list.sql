-- Lists tokens (never their hashes), optionally of one territory ($1).
SELECT id, role, territory_id, coalesce(rpps, '') AS rpps,
       coalesce(organisation_id::text, '') AS organisation_id, label,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
       coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')
         AS expires_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
            ELSE 'active' END AS state
  FROM api_token
 WHERE $1::text IS NULL OR territory_id = $1::text
 ORDER BY id
