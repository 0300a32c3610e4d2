-- snpd territory create: $1 id, $2 name, $3 kind (cpts or sas), $4 IANA
-- time zone.  No row when it exists already.  Running snpd processes learn
-- of it from the notification of sql/migrations/0008.
INSERT INTO territory (id, name, kind, time_zone) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO NOTHING RETURNING id
