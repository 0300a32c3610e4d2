-- Records a new token.  $1 SHA-256 of the secret (hex), $2 role,
-- $3 territory, $4 practitioner RPPS or NULL, $5 organisation id or NULL,
-- $6 label, $7 validity in days or NULL for no expiry.
INSERT INTO api_token (secret_sha256, role, territory_id, rpps, organisation_id, label, expires_at)
VALUES (decode($1, 'hex'), $2, $3, $4, $5::bigint, $6,
        now() + make_interval(days => $7::int))
RETURNING id, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
