-- Authenticates a bearer token by the SHA-256 of its secret ($1, hex).
SELECT t.id, t.role, t.territory_id, coalesce(t.rpps, '') AS rpps,
       coalesce(t.organisation_id, 0) AS organisation_id, coalesce(o.name, '') AS organisation_name,
       t.revoked_at IS NOT NULL AS revoked,
       t.expires_at IS NOT NULL AND t.expires_at <= now() AS expired,
       coalesce(floor(extract(epoch FROM t.expires_at))::bigint, 0) AS expires_at_epoch,
       coalesce(t.site_id, 0) AS site_id
  FROM api_token t LEFT JOIN organisation o ON o.id = t.organisation_id
 WHERE t.secret_sha256 = decode($1, 'hex')
