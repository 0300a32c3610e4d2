-- snpd territory set: $1 territory, $2 actor ("cli:<login>"), $3 its FINESS
-- ('' removes it, NULL keeps it), $4 the SAS platform's FHIR base URL (the
-- same).  Audited as territory.set.  No row when the territory does not
-- exist.  Running snpd processes learn the FINESS from the notification of
-- sql/migrations/0008 and read the URL at each claim of the outbox.
WITH updated AS (
    UPDATE territory
       SET finess = CASE WHEN $3::text IS NULL THEN finess ELSE nullif($3::text, '') END,
           sas_platform_url = CASE WHEN $4::text IS NULL THEN sas_platform_url
                                   ELSE nullif($4::text, '') END
     WHERE id = $1
    RETURNING id, coalesce(finess, '') AS finess, coalesce(sas_platform_url, '') AS url
), audited AS (
    INSERT INTO audit (actor, role, action, detail)
    SELECT $2, 'admin', 'territory.set',
           jsonb_strip_nulls(jsonb_build_object('territory', u.id, 'finess', $3::text,
                                                'sas_platform_url', $4::text))
      FROM updated u
)
SELECT id, finess, url FROM updated
