-- Expires holds, slots and requests whose time has passed (snp_housekeeping).
SELECT change, coalesce(slot_id, 0) AS slot_id, coalesce(request_id, 0) AS request_id
  FROM snp_housekeeping($1)
