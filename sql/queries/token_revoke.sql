-- snpd token revoke: revokes the active tokens matching $1 (id, or NULL) and
-- $2 (label, or NULL), at least one of the two given, each through the
-- audited snp_token_revoke as admin $3 ("cli:<login>").  Returns the ids.
SELECT (snp_token_revoke(t.territory_id, $3, 'admin', t.id) ->> 'token_id')
  FROM api_token t
 WHERE t.revoked_at IS NULL
   AND ($1::bigint IS NULL OR t.id = $1::bigint)
   AND ($2::text IS NULL OR t.label = $2::text)
   AND ($1::bigint IS NOT NULL OR $2::text IS NOT NULL)
 ORDER BY t.id
