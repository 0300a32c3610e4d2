-- shift.assign: $1 territory, $2 actor, $3 role, $4 shift id, $5 practitioner
-- or NULL, $6 duty status or NULL.  {"shift": view, "changed": bool,
-- "slots": n, "bookings": n} (snp_shift_assign).
SELECT snp_shift_assign($1, $2, $3, $4::bigint, $5, $6)::text
