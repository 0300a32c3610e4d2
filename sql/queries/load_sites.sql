-- Start-up: practice sites, CSNP and teleconsultation services, with the
-- RPPS of the practitioners who practise there (comma-separated, in order).
-- The RPPS are gathered in one pass over practitioner_site: a subquery per
-- site scanned the whole table for each (its key starts with the RPPS), 1.2 s
-- at 5,000 sites (bench/README.md §9).
SELECT s.id, s.territory_id, s.kind, s.name, s.address, s.commune_insee, s.latitude, s.longitude,
       coalesce(s.phone, '') AS phone, coalesce(ps.rpps, '') AS rpps_list
  FROM site s
  LEFT JOIN (SELECT site_id, string_agg(rpps, ',' ORDER BY rpps) AS rpps
               FROM practitioner_site GROUP BY site_id) ps ON ps.site_id = s.id
 ORDER BY s.id
