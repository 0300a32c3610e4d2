-- Expires holds, slots and requests whose time has passed (snp_housekeeping).
SELECT change, coalesce(slot_id, 0), coalesce(request_id, 0) FROM snp_housekeeping($1)
