-- Creates a request: $1 territory, $2 organisation, $3 actor, $4 request
-- JSON, $5 identity JSON, $6 slot to hold or NULL, $7 hold seconds.  Times
-- are the database's, in whole seconds (floor), like every instant snpd
-- reads.
SELECT request_id, created, status, coalesce(held_slot, 0),
       coalesce(floor(extract(epoch FROM hold_expires_at))::bigint, 0),
       floor(extract(epoch FROM created_at))::bigint,
       floor(extract(epoch FROM deadline))::bigint
  FROM snp_request_create($1, $2::bigint, $3, $4::jsonb, $5::jsonb, $6::bigint, $7::int)
