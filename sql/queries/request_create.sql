-- Creates a request: $1 territory, $2 organisation, $3 actor, $4 request
-- JSON, $5 identity JSON, $6 slot to hold or NULL, $7 hold seconds.  Times
-- are the database's, in whole seconds (floor), like every instant snpd
-- reads.
SELECT request_id, created, status, coalesce(held_slot, 0) AS held_slot,
       coalesce(floor(extract(epoch FROM hold_expires_at))::bigint, 0) AS hold_expires_at_epoch,
       floor(extract(epoch FROM created_at))::bigint AS created_at_epoch,
       floor(extract(epoch FROM deadline))::bigint AS deadline_epoch
  FROM snp_request_create($1, $2::bigint, $3, $4::jsonb, $5::jsonb, $6::bigint, $7::int)
