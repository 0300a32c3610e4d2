-- Start-up: practice sites, CSNP and teleconsultation services, with the
-- RPPS of the practitioners who practise there (comma-separated).
SELECT id, territory_id, kind, name, address, commune_insee, latitude, longitude,
       coalesce(phone, ''),
       array_to_string(ARRAY(SELECT ps.rpps FROM practitioner_site ps
                              WHERE ps.site_id = site.id ORDER BY ps.rpps), ',')
  FROM site ORDER BY id
