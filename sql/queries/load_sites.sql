-- Start-up: practice sites, CSNP and teleconsultation services.
SELECT id, territory_id, kind, name, address, commune_insee, latitude, longitude,
       coalesce(phone, '') FROM site
