-- Authenticates a bearer token by the SHA-256 of its secret ($1, hex).
SELECT t.id, t.role, t.territory_id, coalesce(t.rpps, ''), coalesce(t.organisation_id, 0),
       coalesce(o.name, ''), t.revoked_at IS NOT NULL,
       t.expires_at IS NOT NULL AND t.expires_at <= now(),
       coalesce(floor(extract(epoch FROM t.expires_at))::bigint, 0), coalesce(t.site_id, 0)
  FROM api_token t LEFT JOIN organisation o ON o.id = t.organisation_id
 WHERE t.secret_sha256 = decode($1, 'hex')
