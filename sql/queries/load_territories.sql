-- Start-up: every territory with its settings.
SELECT id, name, kind, time_zone, settings::text FROM territory ORDER BY id
