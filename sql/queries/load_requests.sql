-- Start-up: open requests (waiting or offered) with what matching needs.
-- The columns and their names are shared with request_get_open.sql (store.h,
-- enum store_request_col).
SELECT r.id, r.territory_id, r.organisation_id, r.requester_kind, r.motif, r.urgency,
       r.patient_age, floor(extract(epoch FROM r.created_at))::bigint AS created_at_epoch,
       floor(extract(epoch FROM r.deadline))::bigint AS deadline_epoch, r.modes::text AS modes,
       coalesce(r.max_distance_km, 0) AS max_distance_km, c.latitude, c.longitude,
       coalesce(r.mt_rpps, '') AS mt_rpps, r.status, r.declined_slots::text AS declined_slots,
       coalesce((SELECT s.id FROM slot s WHERE s.held_for = r.id AND s.status = 'held'), 0)
         AS held_slot,
       coalesce((SELECT floor(extract(epoch FROM s.hold_expires_at))::bigint FROM slot s
                  WHERE s.held_for = r.id AND s.status = 'held'), 0) AS hold_expires_at_epoch,
       coalesce(r.client_ref, '') AS client_ref, r.priority_groups::text AS priority_groups
  FROM request r JOIN commune c ON c.insee = r.patient_commune
 WHERE r.status IN ('waiting', 'offered')
 ORDER BY r.id
