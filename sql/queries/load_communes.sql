-- Start-up: the communes of every territory, with their centroids and postal
-- codes ('' when unknown).
SELECT c.insee, c.name, c.latitude, c.longitude, tc.territory_id,
       coalesce(c.postal_code, '') AS postal_code
  FROM commune c JOIN territory_commune tc ON tc.insee = c.insee
 ORDER BY c.insee
