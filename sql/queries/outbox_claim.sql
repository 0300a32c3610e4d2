-- Claims the appointment pushes that are due (sql/migrations/0018): $1 lease
-- in seconds, $2 at most this many rows, $3 snpd's identifier system for
-- appointments.  A row is due when it is pending, its time has come, no
-- process holds its lease, and no earlier row of its booking is still
-- pending: one booking's changes go out one after the other.  SKIP LOCKED
-- lets several snpd processes claim at once without waiting for or taking
-- each other's rows.  Each row comes with the platform's base URL and the
-- Appointment to send, built here from what never changes once booked (slot,
-- practitioner, requester) and the row's own status, so that every retry of a
-- row sends the same document.
WITH due AS (
    SELECT o.id
      FROM appointment_outbox o
     WHERE o.state = 'pending' AND o.due_at <= now()
       AND (o.lease_until IS NULL OR o.lease_until < now())
       AND NOT EXISTS (SELECT 1 FROM appointment_outbox e
                        WHERE e.booking_id = o.booking_id AND e.seq < o.seq
                          AND e.state = 'pending')
     ORDER BY o.due_at, o.id
     LIMIT $2::int
       FOR UPDATE OF o SKIP LOCKED)
UPDATE appointment_outbox o
   SET lease_until = now() + make_interval(secs => $1::int), attempts = o.attempts + 1
  FROM due, booking b, slot s, request r, territory t
 WHERE o.id = due.id AND b.id = o.booking_id AND s.id = b.slot_id AND r.id = b.request_id
   AND t.id = o.territory_id AND t.sas_platform_url IS NOT NULL
RETURNING o.id, o.booking_id, o.seq, o.attempts, t.sas_platform_url AS base_url,
    json_build_object(
        'resourceType', 'Appointment',
        'meta', json_build_object(
            'profile', json_build_array('http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS')),
        'extension', CASE WHEN r.requester_kind = 'sas' THEN json_build_array(json_build_object(
            'url', 'http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator',
            'valueReference', json_strip_nulls(json_build_object(
                'identifier', CASE
                    WHEN r.source #>> '{sas,regulator_id}' ~ '^[0-9]{11}$' THEN json_build_object(
                        'type', json_build_object('coding', json_build_array(json_build_object(
                            'system', 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203',
                            'code', 'IDNPS'))),
                        'system', 'urn:oid:1.2.250.1.71.4.2.1',
                        'value', '8' || (r.source #>> '{sas,regulator_id}'))
                    WHEN r.source #>> '{sas,regulator_id}' IS NOT NULL THEN json_build_object(
                        'type', json_build_object('coding', json_build_array(json_build_object(
                            'system', 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203',
                            'code', 'INTRN'))),
                        'system', 'urn:oid:1.2.250.1.213.3.6',
                        'value', r.source #>> '{sas,regulator_id}') END,
                'display', r.source #>> '{sas,regulator_name}')))) END,
        'identifier', json_build_array(json_build_object('system', $3::text, 'value', b.id::text)),
        'status', o.status,
        'start', snp_rfc3339(s.starts_at, t.time_zone),
        'end', snp_rfc3339(s.starts_at + make_interval(mins => s.duration_min), t.time_zone),
        'created', snp_rfc3339(b.booked_at, t.time_zone),
        'slot', json_build_array(json_build_object('reference', 'Slot/' || s.id)),
        'participant', json_build_array(json_build_object(
            'actor', json_build_object('identifier', json_build_object(
                'type', json_build_object('coding', json_build_array(json_build_object(
                    'system', 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203',
                    'code', 'IDNPS'))),
                'system', 'urn:oid:1.2.250.1.71.4.2.1',
                'value', '8' || coalesce(b.rpps, s.rpps))),
            'status', 'accepted')))::text AS body
