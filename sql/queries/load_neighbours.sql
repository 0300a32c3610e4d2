-- Start-up: which territories may borrow capacity from which.
SELECT territory_id, neighbour_id FROM territory_neighbour
