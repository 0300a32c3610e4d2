-- Appointment push to the national SAS platform through a durable outbox
-- (issue 12, docs/fhir.md "Appointment push").
--
-- A booking on a slot the SAS can see, and each later change of what the
-- platform would show of it (fulfilled, no-show, cancelled), is written as one
-- row of appointment_outbox in the transaction of the change itself, by the
-- triggers below: nothing is announced that did not commit, and nothing that
-- committed is lost when snpd stops or the platform is down.  snpd sends the
-- rows (dispatcher/outbox.c) in order per booking, at least once.

-- 1. Where a territory's appointments go: the platform's FHIR base, scheme and
--    host and path without a trailing slash ("https://host/fhir").  NULL: the
--    territory pushes nothing, and its bookings cost no outbox row.
ALTER TABLE territory ADD COLUMN sas_platform_url text
    CHECK (sas_platform_url ~ '^https?://[^[:space:]?#"<>]+[^/]$');

-- 2. The outbox.  One row per change to announce; `seq` orders one booking's
--    rows (1 is the creation).  `state`:
--      pending  to send, from due_at on, unless another process holds its lease
--      sent     the platform acknowledged it (2xx)
--      dead     the platform refused it (4xx) for longer than snpd's
--               sas_push_dead_after_s: given up, shown in /metrics
--    `attempts` counts the claims; a claim's result is recorded only if the
--    row still carries that count, so that a process whose lease ran out
--    cannot overwrite the result of the one that took the row over.
CREATE TABLE appointment_outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id    bigint NOT NULL REFERENCES booking (id),
    seq           int NOT NULL CHECK (seq >= 1),
    territory_id  text NOT NULL REFERENCES territory (id), -- the slot's: whose platform
    status        text NOT NULL CHECK (status IN ('booked', 'fulfilled', 'noshow', 'cancelled')),
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    due_at        timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz,
    attempts      int NOT NULL DEFAULT 0,
    refused_since timestamptz, -- the first 4xx answer to this row
    last_error    text,
    done_at       timestamptz,
    UNIQUE (booking_id, seq)
);
-- What is still to do: the claim and the backlog figures read only this.
CREATE INDEX appointment_outbox_open ON appointment_outbox (state, due_at) WHERE state <> 'sent';

-- What the platform shows of a booking: its FHIR Appointment.status.
CREATE FUNCTION snp_appointment_status(p_status text, p_outcome text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_status = 'cancelled' OR p_outcome = 'cancelled_by_patient' THEN 'cancelled'
        WHEN p_outcome = 'no_show' THEN 'noshow'
        WHEN p_outcome IN ('attended', 'redirected_emergency', 'hospitalised') THEN 'fulfilled'
        ELSE 'booked' END
$$;

-- 3. A new booking: one row when its slot's territory has a platform and the
--    slot is open to the SAS at this moment (the FHIR search's test,
--    match_slot_open_to in dispatcher/match.c: audience sas or public, or its
--    release rule has opened it to all) and names its practitioner.  Without
--    a platform this is one look-up of the slot and its territory by key.
CREATE FUNCTION snp_outbox_booked() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER booking_outbox_booked AFTER INSERT ON booking
    FOR EACH ROW EXECUTE FUNCTION snp_outbox_booked();

-- 4. A later change: a row only when the platform's status changes and the
--    booking was announced (it has rows).  The booking's row lock, held by
--    the UPDATE, orders concurrent changes, so max(seq) + 1 is free.
CREATE FUNCTION snp_outbox_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER booking_outbox_changed AFTER UPDATE OF status, outcome ON booking
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.outcome IS DISTINCT FROM NEW.outcome)
    EXECUTE FUNCTION snp_outbox_changed();
