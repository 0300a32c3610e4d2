-- The triggers' functions that announce changes on the channel snp_change, so
-- that every snpd process hears of them (docs/dispatch.md).
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Reference data changed: one notification per transaction (PostgreSQL
-- folds identical notifications of a transaction into one).
CREATE OR REPLACE FUNCTION snp_notify_reference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', '{"k":"ref"}');
    RETURN NULL;
END $$;

-- Notifications (0005) with what every snpd process needs to push the
-- change to its own subscribers (docs/dispatch.md "Pushes"):
--   slots:    {"k":"s","id","st","h","x","r","c": cause,
--              "os": previous status, "q": the request it is or was held
--              for, "ox": the previous hold's expiry, and that request's
--              "o" organisation, "t" territory, "f" client_ref}
--   requests: {"k":"r","id","st","p": previous status (null when new),
--              "o", "t", "f", "b": the booking when booked or leaving
--              booked, "c": cause}
--   bookings: {"k":"b","id","st","e": "created" | "cancelled" | "outcome",
--              "t", "rp": rpps, "q": request, "o", "f", "oc": outcome,
--              "oa": when it was reported (UTC, as outcome_report.sql)}
-- Hold expiries are whole seconds (see snp_hold), sent as such.
CREATE OR REPLACE FUNCTION snp_notify_slot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_request bigint;
    v_previous text;
    v_old_expiry bigint;
    q request;
BEGIN
    v_request := NEW.held_for;
    IF TG_OP = 'UPDATE' THEN
        v_previous := OLD.status;
        v_request := coalesce(NEW.held_for, OLD.held_for);
        v_old_expiry := floor(extract(epoch FROM OLD.hold_expires_at))::bigint;
    END IF;
    IF v_request IS NOT NULL THEN
        SELECT * INTO q FROM request WHERE id = v_request;
    END IF;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 's', 'id', NEW.id, 'st', NEW.status, 'h', coalesce(NEW.held_for, 0),
        'x', coalesce(floor(extract(epoch FROM NEW.hold_expires_at))::bigint, 0),
        'r', NEW.released_at IS NOT NULL,
        'c', coalesce(current_setting('snp.cause', true), ''), 'os', v_previous,
        'q', v_request, 'ox', v_old_expiry, 'o', q.organisation_id, 't', q.territory_id,
        'f', q.client_ref)::text);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION snp_notify_request() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous text;
    v_booking bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        previous := OLD.status;
    END IF;
    IF NEW.status = 'booked' OR previous = 'booked' THEN
        SELECT max(id) INTO v_booking FROM booking WHERE booking.request_id = NEW.id;
    END IF;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'r', 'id', NEW.id, 'st', NEW.status, 'p', previous, 'o', NEW.organisation_id,
        't', NEW.territory_id, 'f', coalesce(NEW.client_ref, ''), 'b', v_booking,
        'c', coalesce(current_setting('snp.cause', true), ''))::text);
    RETURN NULL;
END $$;

-- snpd processes: a slot handed to another practitioner.
CREATE OR REPLACE FUNCTION snp_notify_slot_practitioner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'p', 'id', NEW.id, 't', NEW.territory_id, 'rp', NEW.rpps)::text);
    RETURN NULL;
END $$;

-- snpd processes: a booking handed to the practitioner on duty, who gets it
-- as booking.created, and taken from the previous one ("prp"), who gets
-- booking.handed_over (the payload of snp_notify_booking, event 'assigned').
CREATE OR REPLACE FUNCTION snp_notify_booking_assigned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    q request;
BEGIN
    SELECT * INTO q FROM request WHERE id = NEW.request_id;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'b', 'id', NEW.id, 'st', NEW.status, 'e', 'assigned', 't', NEW.territory_id,
        'rp', NEW.rpps, 'prp', OLD.rpps, 'q', NEW.request_id, 'o', q.organisation_id,
        'f', coalesce(q.client_ref, ''),
        'si', (SELECT site_id FROM slot WHERE id = NEW.slot_id))::text);
    RETURN NULL;
END $$;

-- The booking notification of 0012 with the slot's site ("si").
CREATE OR REPLACE FUNCTION snp_notify_booking() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_event text;
    q request;
BEGIN
    SELECT * INTO q FROM request WHERE id = NEW.request_id;
    v_event := CASE WHEN TG_OP = 'INSERT' THEN 'created'
                    WHEN NEW.status <> OLD.status THEN NEW.status
                    ELSE 'outcome' END;
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'b', 'id', NEW.id, 'st', NEW.status, 'e', v_event, 't', NEW.territory_id,
        'rp', NEW.rpps, 'q', NEW.request_id, 'o', q.organisation_id,
        'f', coalesce(q.client_ref, ''), 'oc', NEW.outcome,
        'oa', to_char(NEW.outcome_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'si', (SELECT site_id FROM slot WHERE id = NEW.slot_id))::text);
    RETURN NULL;
END $$;
