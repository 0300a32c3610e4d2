-- Start-up: every territory with its settings and FINESS ('' when none).
SELECT id, name, kind, time_zone, settings::text AS settings, coalesce(finess, '') AS finess
  FROM territory ORDER BY id
