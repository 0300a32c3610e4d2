-- Start-up: open requests (waiting or offered) with what matching needs.
-- The column list is shared with request_get_open.sql (store_request_from_row).
SELECT r.id, r.territory_id, r.organisation_id, r.requester_kind, r.motif, r.urgency,
       r.patient_age, floor(extract(epoch FROM r.created_at))::bigint,
       floor(extract(epoch FROM r.deadline))::bigint, r.modes::text, coalesce(r.max_distance_km, 0),
       c.latitude, c.longitude, coalesce(r.mt_rpps, ''), r.status, r.declined_slots::text,
       coalesce((SELECT s.id FROM slot s WHERE s.held_for = r.id AND s.status = 'held'), 0),
       coalesce((SELECT floor(extract(epoch FROM s.hold_expires_at))::bigint FROM slot s
                  WHERE s.held_for = r.id AND s.status = 'held'), 0),
       coalesce(r.client_ref, ''), r.priority_groups::text
  FROM request r JOIN commune c ON c.insee = r.patient_commune
 WHERE r.status IN ('waiting', 'offered')
 ORDER BY r.id
