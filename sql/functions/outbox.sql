-- The appointment push to the SAS platform (docs/fhir.md): the appointment
-- status of a booking, the triggers that queue a push, and resending one.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- What the platform shows of a booking: its FHIR Appointment.status.
CREATE OR REPLACE FUNCTION snp_appointment_status(p_status text, p_outcome text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_status = 'cancelled' OR p_outcome = 'cancelled_by_patient' THEN 'cancelled'
        WHEN p_outcome = 'no_show' THEN 'noshow'
        WHEN p_outcome IN ('attended', 'redirected_emergency', 'hospitalised') THEN 'fulfilled'
        ELSE 'booked' END
$$;

-- A new booking: one row when its slot's territory has a platform and the
-- slot is open to the SAS at this moment (the FHIR search's test,
-- match_slot_open_to in dispatcher/core/match.c: audience sas or public, or its
-- release rule has opened it to all) and names its practitioner.  Without
-- a platform this is one look-up of the slot and its territory by key.
CREATE OR REPLACE FUNCTION snp_outbox_booked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_territory text;
BEGIN
    SELECT s.territory_id INTO v_territory
      FROM slot s JOIN territory t ON t.id = s.territory_id
     WHERE s.id = NEW.slot_id AND t.sas_platform_url IS NOT NULL AND s.rpps IS NOT NULL
       AND ('sas' = ANY (s.audience) OR 'public' = ANY (s.audience)
            OR (s.release_minutes IS NOT NULL
                AND now() >= s.starts_at - make_interval(mins => s.release_minutes)));
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, 1, v_territory, snp_appointment_status(NEW.status, NEW.outcome));
    END IF;
    RETURN NULL;
END $$;

-- A later change: a row only when the platform's status changes and the
-- booking was announced (it has rows).  The booking's row lock, held by
-- the UPDATE, orders concurrent changes, so max(seq) + 1 is free.
CREATE OR REPLACE FUNCTION snp_outbox_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_old text := snp_appointment_status(OLD.status, OLD.outcome);
    v_new text := snp_appointment_status(NEW.status, NEW.outcome);
    v_last appointment_outbox;
BEGIN
    IF v_old = v_new THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_last FROM appointment_outbox
     WHERE booking_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, v_last.seq + 1, v_last.territory_id, v_new);
    END IF;
    RETURN NULL;
END $$;

-- Puts dead push p_push of p_territory back, with the later changes of its
-- booking.  SN404 for a push of another territory or none, SN409 for one
-- that is not dead.  Audited as push.resend.  Returns {"push_id": id,
-- "requeued": n}.
CREATE OR REPLACE FUNCTION snp_push_resend(p_territory text, p_actor text, p_role text, p_push bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    o appointment_outbox;
    v_count int;
BEGIN
    SELECT * INTO o FROM appointment_outbox
     WHERE id = p_push AND territory_id = p_territory FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no push % in this territory', p_push USING ERRCODE = 'SN404';
    END IF;
    IF o.state <> 'dead' THEN
        RAISE EXCEPTION 'push % is %, not given up', p_push, o.state USING ERRCODE = 'SN409';
    END IF;
    UPDATE appointment_outbox
       SET state = 'pending', due_at = now(), lease_until = NULL, attempts = 0,
           refused_since = NULL, done_at = NULL
     WHERE booking_id = o.booking_id AND seq >= o.seq AND state <> 'pending';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'push.resend',
            jsonb_build_object('territory', p_territory, 'push_id', p_push,
                               'booking_id', o.booking_id, 'requeued', v_count));
    RETURN jsonb_build_object('push_id', p_push, 'requeued', v_count);
END $$;

CREATE OR REPLACE FUNCTION snp_outbox_practitioner() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_territory text;
    v_last appointment_outbox;
BEGIN
    SELECT * INTO v_last FROM appointment_outbox
     WHERE booking_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, v_last.seq + 1, v_last.territory_id,
                snp_appointment_status(NEW.status, NEW.outcome));
        RETURN NULL;
    END IF;
    SELECT s.territory_id INTO v_territory
      FROM slot s JOIN territory t ON t.id = s.territory_id
     WHERE s.id = NEW.slot_id AND t.sas_platform_url IS NOT NULL
       AND ('sas' = ANY (s.audience) OR 'public' = ANY (s.audience)
            OR (s.release_minutes IS NOT NULL
                AND now() >= s.starts_at - make_interval(mins => s.release_minutes)));
    IF FOUND THEN
        INSERT INTO appointment_outbox (booking_id, seq, territory_id, status)
        VALUES (NEW.id, 1, v_territory, snp_appointment_status(NEW.status, NEW.outcome));
    END IF;
    RETURN NULL;
END $$;
