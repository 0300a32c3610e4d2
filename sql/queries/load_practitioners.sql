-- Start-up: practitioners of every territory.
SELECT DISTINCT p.rpps, p.family_name, p.given_name, p.specialty
  FROM practitioner p JOIN territory_practitioner tp ON tp.rpps = p.rpps
