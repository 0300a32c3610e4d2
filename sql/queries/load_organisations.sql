-- Start-up: requester organisations, for the names shown with bookings.
SELECT id, territory_id, kind, name, coalesce(finess, '') AS finess, commune_insee FROM organisation
