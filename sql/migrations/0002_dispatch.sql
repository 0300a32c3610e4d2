-- The dispatch flow: slots, requests (with the patient's identity kept apart
-- so that it can be erased), bookings, the append-only event log that every
-- indicator is computed from, and the audit log of reads of patient data.
--
-- Every state change is one call to one of the snp_* functions below: one
-- statement, one round trip, one transaction.  The conditional updates in
-- them are what guarantees that no slot is ever given twice, whatever any
-- snpd process believes in memory.  The state machines are documented in
-- docs/dispatch.md.
--
-- Errors raised for the caller use SQLSTATEs of class SN, mapped by snpd to
-- protocol errors: SN403 forbidden, SN404 not_found, SN409 conflict,
-- SN410 slot_taken, SN411 hold_expired, SN412 too_late.

CREATE TABLE slot (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id    text NOT NULL REFERENCES territory (id),
    site_id         bigint NOT NULL REFERENCES site (id),
    rpps            text REFERENCES practitioner (rpps), -- NULL: a CSNP shift slot
    starts_at       timestamptz NOT NULL,
    duration_min    int NOT NULL CHECK (duration_min BETWEEN 5 AND 240),
    mode            text NOT NULL CHECK (mode IN ('office', 'home', 'teleconsultation')),
    audience        text[] NOT NULL CHECK (cardinality(audience) BETWEEN 1 AND 6 AND audience <@
                        ARRAY['sas', 'emergency', 'pharmacy', 'professional', 'desk', 'public']),
    motifs          text[],   -- only these motifs; NULL: any
    min_age         int CHECK (min_age BETWEEN 0 AND 120),
    max_age         int CHECK (max_age BETWEEN 0 AND 120),
    -- Open to every audience this many minutes before its start if still free.
    release_minutes int CHECK (release_minutes BETWEEN 10 AND 10080),
    released_at     timestamptz,
    status          text NOT NULL DEFAULT 'free'
                    CHECK (status IN ('free', 'held', 'booked', 'withdrawn', 'expired')),
    held_for        bigint,   -- the request it is offered to, while held
    hold_expires_at timestamptz,
    published_at    timestamptz NOT NULL DEFAULT now(),
    published_by    text NOT NULL,
    CHECK ((status = 'held') = (held_for IS NOT NULL)),
    CHECK ((status = 'held') = (hold_expires_at IS NOT NULL)),
    CHECK (min_age IS NULL OR max_age IS NULL OR min_age <= max_age)
);

-- A practitioner cannot offer two slots starting at the same time at one site.
CREATE UNIQUE INDEX slot_one_per_start ON slot (site_id, coalesce(rpps, ''), starts_at)
    WHERE status <> 'withdrawn';
CREATE INDEX slot_live ON slot (territory_id, starts_at) WHERE status IN ('free', 'held', 'booked');
CREATE INDEX slot_held ON slot (hold_expires_at) WHERE status = 'held';

CREATE TABLE request (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id       text NOT NULL REFERENCES territory (id),
    organisation_id    bigint NOT NULL REFERENCES organisation (id),
    requester_kind     text NOT NULL
                       CHECK (requester_kind IN ('pharmacy', 'emergency', 'sas', 'professional', 'desk')),
    created_by         text NOT NULL,
    client_ref         text CHECK (length(client_ref) BETWEEN 1 AND 64),
    motif              text NOT NULL,
    urgency            text NOT NULL CHECK (urgency IN ('same_day', '24h', '48h')),
    deadline           timestamptz NOT NULL,
    modes              text[] NOT NULL CHECK (cardinality(modes) BETWEEN 1 AND 3),
    max_distance_km    real CHECK (max_distance_km > 0),
    reduced_mobility   boolean NOT NULL DEFAULT false,
    -- What stays countable once the identity is erased: no name, no exact date.
    patient_commune    text NOT NULL REFERENCES commune (insee),
    patient_birth_year int NOT NULL CHECK (patient_birth_year BETWEEN 1890 AND 2100),
    patient_age        int NOT NULL CHECK (patient_age BETWEEN 0 AND 130),
    patient_sex        text NOT NULL CHECK (patient_sex IN ('female', 'male', 'unspecified')),
    has_mt             boolean NOT NULL,
    mt_rpps            text CHECK (mt_rpps ~ '^[0-9]{11}$'),
    priority_groups    text[] NOT NULL DEFAULT '{}'
                       CHECK (priority_groups <@ ARRAY['ald', 'c2s', 'aged_70_plus']),
    -- Requester-kind details (triage level, pharmacy protocol, regulator);
    -- no patient identity goes here.
    source             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status             text NOT NULL DEFAULT 'waiting'
                       CHECK (status IN ('waiting', 'offered', 'booked', 'cancelled', 'unserved')),
    declined_slots     bigint[] NOT NULL DEFAULT '{}',
    slip_refused       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    closed_at          timestamptz,
    UNIQUE (organisation_id, client_ref)
);
CREATE INDEX request_open ON request (territory_id, deadline) WHERE status IN ('waiting', 'offered');

ALTER TABLE slot ADD FOREIGN KEY (held_for) REFERENCES request (id);

-- The patient's identity, erased (row deleted) a configurable time after
-- the appointment; everything else about the request stays countable.
CREATE TABLE patient_identity (
    request_id   bigint PRIMARY KEY REFERENCES request (id) ON DELETE CASCADE,
    display_name text CHECK (length(display_name) <= 100),
    initials     text CHECK (length(initials) <= 8),
    birth_date   date,
    phone        text CHECK (length(phone) <= 20),
    motif_text   text CHECK (length(motif_text) <= 500),
    erase_after  timestamptz NOT NULL,
    CHECK (display_name IS NOT NULL OR initials IS NOT NULL)
);
CREATE INDEX patient_identity_erase ON patient_identity (erase_after);

CREATE TABLE booking (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id  text NOT NULL REFERENCES territory (id),
    request_id    bigint NOT NULL REFERENCES request (id),
    slot_id       bigint NOT NULL REFERENCES slot (id),
    rpps          text REFERENCES practitioner (rpps),
    status        text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    booked_at     timestamptz NOT NULL DEFAULT now(),
    booked_by     text NOT NULL,
    cancelled_at  timestamptz,
    cancelled_by  text,
    cancel_reason text,
    outcome       text CHECK (outcome IN ('attended', 'no_show', 'redirected_emergency',
                                          'hospitalised', 'cancelled_by_patient')),
    outcome_note  text CHECK (length(outcome_note) <= 500),
    outcome_at    timestamptz,
    outcome_by    text
);
-- The database's own guarantee: one live booking per slot and per request.
CREATE UNIQUE INDEX booking_slot_once ON booking (slot_id) WHERE status = 'booked';
CREATE UNIQUE INDEX booking_request_once ON booking (request_id) WHERE status = 'booked';
CREATE INDEX booking_rpps ON booking (rpps, booked_at);

-- Every state change, append-only: the single source of the indicators.
CREATE TABLE event (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    territory_id text NOT NULL REFERENCES territory (id),
    actor        text NOT NULL,
    kind         text NOT NULL,
    slot_id      bigint,
    request_id   bigint,
    booking_id   bigint,
    from_status  text,
    to_status    text,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX event_territory_at ON event (territory_id, at);

-- Who read which patient fields, and other sensitive actions.
CREATE TABLE audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL,
    role       text NOT NULL,
    action     text NOT NULL,
    request_id bigint,
    fields     text[] NOT NULL DEFAULT '{}',
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_at ON audit (at);

CREATE FUNCTION snp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;

CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION snp_append_only();
-- Audit rows may only be removed by the retention job (issue 6), which sets
-- snp.audit_retention for its own transaction.
CREATE FUNCTION snp_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('snp.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION snp_audit_guard();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION snp_append_only();

-- Slot attributes copied into events, so that indicators never need to join
-- mutable tables.
CREATE FUNCTION snp_slot_facts(s slot) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'starts_at', s.starts_at, 'duration_min', s.duration_min, 'mode', s.mode,
        'audience', s.audience, 'site_id', s.site_id, 'rpps', s.rpps,
        'site_kind', (SELECT kind FROM site WHERE id = s.site_id))
$$;

-- Request attributes copied into events: what the indicators count, never
-- who the patient is.
CREATE FUNCTION snp_request_facts(r request) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'requester_kind', r.requester_kind, 'organisation_id', r.organisation_id,
        'motif', r.motif, 'urgency', r.urgency, 'deadline', r.deadline,
        'patient_commune', r.patient_commune, 'patient_age', r.patient_age,
        'patient_sex', r.patient_sex, 'has_mt', r.has_mt, 'mt_rpps', r.mt_rpps,
        'priority_groups', r.priority_groups, 'created_at', r.created_at,
        'triage_level', r.source #> '{emergency,triage_level}',
        'pharmacy_protocol', r.source #> '{pharmacy,protocol}')
$$;

CREATE FUNCTION snp_event(p_territory text, p_actor text, p_kind text, p_slot bigint,
                          p_request bigint, p_booking bigint, p_from text, p_to text,
                          p_data jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO event (territory_id, actor, kind, slot_id, request_id, booking_id,
                       from_status, to_status, data)
    VALUES (p_territory, p_actor, p_kind, p_slot, p_request, p_booking, p_from, p_to,
            coalesce(p_data, '{}'::jsonb))
$$;

-- Publishes slots (a JSON array of {start, duration_min, mode, audience,
-- motifs, min_age, max_age, release_minutes}) at one site, for one
-- practitioner or for the site's shift (p_rpps NULL).  Slots colliding with
-- an existing one are skipped; the inserted ones are returned.
CREATE FUNCTION snp_slots_publish(p_territory text, p_site bigint, p_rpps text, p_actor text,
                                  p_slots jsonb)
RETURNS SETOF slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM site WHERE id = p_site AND territory_id = p_territory) THEN
        RAISE EXCEPTION 'site % is not in territory %', p_site, p_territory
            USING ERRCODE = 'SN404';
    END IF;
    IF p_rpps IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM practitioner_site WHERE rpps = p_rpps AND site_id = p_site) THEN
        RAISE EXCEPTION 'practitioner % does not practise at site %', p_rpps, p_site
            USING ERRCODE = 'SN403';
    END IF;
    FOR s IN
        INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode, audience,
                          motifs, min_age, max_age, release_minutes, published_by)
        SELECT p_territory, p_site, p_rpps, x.start, x.duration_min, x.mode, x.audience,
               x.motifs, x.min_age, x.max_age, x.release_minutes, p_actor
          FROM jsonb_to_recordset(p_slots) AS x (start timestamptz, duration_min int, mode text,
                                                 audience text[], motifs text[], min_age int,
                                                 max_age int, release_minutes int)
         WHERE x.start > now()
        ON CONFLICT DO NOTHING
        RETURNING *
    LOOP
        PERFORM snp_event(p_territory, p_actor, 'slot.published', s.id, NULL, NULL, NULL, 'free',
                          snp_slot_facts(s));
        RETURN NEXT s;
    END LOOP;
END $$;

-- Withdraws a free slot.  A held or booked slot cannot be withdrawn: the
-- booking must be cancelled first (snp_booking_cancel).
CREATE FUNCTION snp_slot_withdraw(p_slot bigint, p_territory text, p_rpps text, p_actor text)
RETURNS slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    UPDATE slot SET status = 'withdrawn'
     WHERE id = p_slot AND territory_id = p_territory AND status = 'free'
       AND (p_rpps IS NULL OR rpps = p_rpps)
    RETURNING * INTO s;
    IF NOT FOUND THEN
        SELECT * INTO s FROM slot WHERE id = p_slot AND territory_id = p_territory
           AND (p_rpps IS NULL OR rpps = p_rpps);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no slot % of yours', p_slot USING ERRCODE = 'SN404';
        END IF;
        RAISE EXCEPTION 'slot % is %, only a free slot can be withdrawn', p_slot, s.status
            USING ERRCODE = 'SN409';
    END IF;
    PERFORM snp_event(s.territory_id, p_actor, 'slot.withdrawn', s.id, NULL, NULL, 'free',
                      'withdrawn', snp_slot_facts(s));
    RETURN s;
END $$;

-- Holds slot p_slot for request r if it is still free and ahead.  Returns
-- whether it did (and records the offer).
CREATE FUNCTION snp_hold(r request, p_slot bigint, p_hold_seconds int, p_actor text)
RETURNS slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    UPDATE slot
       SET status = 'held', held_for = r.id,
           hold_expires_at = now() + make_interval(secs => p_hold_seconds)
     WHERE id = p_slot AND status = 'free' AND starts_at > now()
       AND territory_id IN (SELECT r.territory_id UNION
                            SELECT neighbour_id FROM territory_neighbour
                             WHERE territory_id = r.territory_id)
    RETURNING * INTO s;
    IF FOUND THEN
        PERFORM snp_event(r.territory_id, p_actor, 'offer.made', s.id, r.id, NULL, 'free', 'held',
                          snp_slot_facts(s) || jsonb_build_object('hold_expires_at',
                                                                  s.hold_expires_at));
    END IF;
    RETURN s;
END $$;

-- Releases the slot held for request r (declined, expired, cancelled).
-- The slot becomes free again, or expired if its start has passed.
CREATE FUNCTION snp_release(r request, p_slot bigint, p_reason text, p_actor text)
RETURNS slot LANGUAGE plpgsql AS $$
DECLARE
    s slot;
BEGIN
    UPDATE slot
       SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END,
           held_for = NULL, hold_expires_at = NULL
     WHERE id = p_slot AND status = 'held' AND held_for = r.id
    RETURNING * INTO s;
    IF FOUND THEN
        PERFORM snp_event(r.territory_id, p_actor, 'offer.' || p_reason, s.id, r.id, NULL, 'held',
                          s.status, snp_slot_facts(s));
    END IF;
    RETURN s;
END $$;

-- Creates a request with the patient's identity and, when p_slot is given,
-- holds that slot for it.  With a client_ref already used by the same
-- organisation, nothing is created and the existing request is returned
-- (created = false), so that a retried creation never makes a second one.
CREATE FUNCTION snp_request_create(p_territory text, p_organisation bigint, p_actor text,
                                   p_request jsonb, p_identity jsonb, p_slot bigint,
                                   p_hold_seconds int,
                                   OUT request_id bigint, OUT created boolean, OUT status text,
                                   OUT held_slot bigint, OUT hold_expires_at timestamptz,
                                   OUT created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    v_kind text;
BEGIN
    SELECT kind INTO v_kind FROM organisation
     WHERE id = p_organisation AND territory_id = p_territory;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organisation % is not in territory %', p_organisation, p_territory
            USING ERRCODE = 'SN403';
    END IF;
    INSERT INTO request (territory_id, organisation_id, requester_kind, created_by, client_ref,
                         motif, urgency, deadline, modes, max_distance_km, reduced_mobility,
                         patient_commune, patient_birth_year, patient_age, patient_sex, has_mt,
                         mt_rpps, priority_groups, source)
    SELECT p_territory, p_organisation, v_kind, p_actor, x.client_ref, x.motif, x.urgency,
           x.deadline, x.modes, x.max_distance_km, coalesce(x.reduced_mobility, false),
           x.patient_commune, x.patient_birth_year, x.patient_age, x.patient_sex, x.has_mt,
           x.mt_rpps, coalesce(x.priority_groups, '{}'), coalesce(x.source, '{}'::jsonb)
      FROM jsonb_to_record(p_request) AS x (client_ref text, motif text, urgency text,
                                            deadline timestamptz, modes text[],
                                            max_distance_km real, reduced_mobility boolean,
                                            patient_commune text, patient_birth_year int,
                                            patient_age int, patient_sex text, has_mt boolean,
                                            mt_rpps text, priority_groups text[], source jsonb)
    ON CONFLICT (organisation_id, client_ref) DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM request
         WHERE organisation_id = p_organisation AND client_ref = p_request ->> 'client_ref';
        request_id := r.id;
        created := false;
        status := r.status;
        created_at := r.created_at;
        SELECT id, slot.hold_expires_at INTO held_slot, hold_expires_at
          FROM slot WHERE held_for = r.id AND slot.status = 'held';
        RETURN;
    END IF;
    INSERT INTO patient_identity (request_id, display_name, initials, birth_date, phone,
                                  motif_text, erase_after)
    SELECT r.id, x.display_name, x.initials, x.birth_date, x.phone, x.motif_text,
           r.deadline + make_interval(days => coalesce(
               (SELECT (settings ->> 'identity_retention_days')::int FROM territory
                 WHERE id = p_territory), 90))
      FROM jsonb_to_record(p_identity) AS x (display_name text, initials text, birth_date date,
                                             phone text, motif_text text);
    PERFORM snp_event(p_territory, p_actor, 'request.created', NULL, r.id, NULL, NULL, 'waiting',
                      snp_request_facts(r));
    request_id := r.id;
    created := true;
    status := 'waiting';
    created_at := r.created_at;
    IF p_slot IS NOT NULL THEN
        s := snp_hold(r, p_slot, p_hold_seconds, p_actor);
        IF s.id IS NOT NULL THEN
            UPDATE request SET status = 'offered' WHERE id = r.id;
            status := 'offered';
            held_slot := s.id;
            hold_expires_at := s.hold_expires_at;
        END IF;
    END IF;
END $$;

-- Moves a request's offer: releases p_release (for p_reason: declined,
-- expired, withdrawn) and, when p_next is given and still free, holds it.
-- The request ends offered (a slot is held for it) or waiting.
CREATE FUNCTION snp_offer_move(p_request bigint, p_release bigint, p_reason text, p_next bigint,
                               p_hold_seconds int, p_actor text,
                               OUT status text, OUT released boolean, OUT held_slot bigint,
                               OUT hold_expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request %', p_request USING ERRCODE = 'SN404';
    END IF;
    IF r.status NOT IN ('waiting', 'offered') THEN
        RAISE EXCEPTION 'request % is %', p_request, r.status USING ERRCODE = 'SN409';
    END IF;
    released := false;
    IF p_release IS NOT NULL THEN
        s := snp_release(r, p_release, p_reason, p_actor);
        released := s.id IS NOT NULL;
        IF released AND p_reason = 'declined' THEN
            UPDATE request SET declined_slots = declined_slots || p_release WHERE id = r.id;
        END IF;
    END IF;
    IF p_next IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM slot WHERE held_for = r.id AND slot.status = 'held') THEN
        s := snp_hold(r, p_next, p_hold_seconds, p_actor);
        held_slot := s.id;
        hold_expires_at := s.hold_expires_at;
    ELSE
        SELECT id, slot.hold_expires_at INTO held_slot, hold_expires_at
          FROM slot WHERE held_for = r.id AND slot.status = 'held';
    END IF;
    status := CASE WHEN held_slot IS NOT NULL THEN 'offered' ELSE 'waiting' END;
    IF status <> r.status THEN
        UPDATE request SET status = snp_offer_move.status WHERE id = r.id;
        PERFORM snp_event(r.territory_id, p_actor, 'request.' || status, NULL, r.id, NULL,
                          r.status, status, '{}'::jsonb);
    END IF;
END $$;

-- Confirms an offer: books p_slot for the request, which is either the slot
-- held for it (before the hold expires) or a free alternative (then the held
-- slot is released).  Idempotent: a request already booked returns its
-- booking with created = false.
CREATE FUNCTION snp_offer_accept(p_request bigint, p_organisation bigint, p_slot bigint,
                                 p_actor text,
                                 OUT booking_id bigint, OUT created boolean, OUT slot_id bigint,
                                 OUT released_slot bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    b booking;
    held slot;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request AND organisation_id = p_organisation
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    SELECT * INTO b FROM booking WHERE request_id = r.id AND booking.status = 'booked';
    IF FOUND THEN
        booking_id := b.id;
        created := false;
        slot_id := b.slot_id;
        RETURN;
    END IF;
    IF r.status <> 'offered' THEN
        RAISE EXCEPTION 'request % is %, not offered', p_request, r.status
            USING ERRCODE = CASE WHEN r.status = 'waiting' THEN 'SN411' ELSE 'SN409' END;
    END IF;
    SELECT * INTO held FROM slot WHERE held_for = r.id AND slot.status = 'held' FOR UPDATE;
    IF held.id = p_slot THEN
        UPDATE slot SET status = 'booked', held_for = NULL, hold_expires_at = NULL
         WHERE id = p_slot AND slot.hold_expires_at > now()
        RETURNING * INTO s;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the hold on slot % has expired', p_slot USING ERRCODE = 'SN411';
        END IF;
    ELSE
        UPDATE slot SET status = 'booked'
         WHERE id = p_slot AND slot.status = 'free' AND starts_at > now()
           AND territory_id IN (SELECT r.territory_id UNION
                                SELECT neighbour_id FROM territory_neighbour
                                 WHERE territory_id = r.territory_id)
        RETURNING * INTO s;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'slot % is no longer free', p_slot USING ERRCODE = 'SN410';
        END IF;
        IF held.id IS NOT NULL THEN
            PERFORM snp_release(r, held.id, 'superseded', p_actor);
            released_slot := held.id;
        END IF;
    END IF;
    INSERT INTO booking (territory_id, request_id, slot_id, rpps, booked_by)
    VALUES (r.territory_id, r.id, s.id, s.rpps, p_actor)
    RETURNING * INTO b;
    UPDATE request SET status = 'booked', closed_at = now() WHERE id = r.id;
    UPDATE patient_identity
       SET erase_after = s.starts_at + make_interval(days => coalesce(
               (SELECT (settings ->> 'identity_retention_days')::int FROM territory
                 WHERE id = r.territory_id), 90))
     WHERE request_id = r.id;
    PERFORM snp_event(r.territory_id, p_actor, 'booking.created', s.id, r.id, b.id, 'offered',
                      'booked', snp_slot_facts(s) || snp_request_facts(r) ||
                      jsonb_build_object('delay_min',
                                         extract(epoch FROM s.starts_at - r.created_at) / 60,
                                         'before_deadline', s.starts_at <= r.deadline,
                                         'seen_by_mt', s.rpps IS NOT DISTINCT FROM r.mt_rpps));
    booking_id := b.id;
    created := true;
    slot_id := s.id;
END $$;

-- Cancels a request: its held slot is released, its booking (if any) is
-- cancelled and the slot freed when its start is still ahead.
CREATE FUNCTION snp_request_cancel(p_request bigint, p_organisation bigint, p_reason text,
                                   p_actor text,
                                   OUT freed_slot bigint, OUT cancelled_booking bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r request;
    s slot;
    b booking;
BEGIN
    SELECT * INTO r FROM request WHERE id = p_request
       AND (p_organisation IS NULL OR organisation_id = p_organisation) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no request % of yours', p_request USING ERRCODE = 'SN404';
    END IF;
    IF r.status IN ('cancelled', 'unserved') THEN
        RAISE EXCEPTION 'request % is already %', p_request, r.status USING ERRCODE = 'SN409';
    END IF;
    SELECT * INTO s FROM slot WHERE held_for = r.id AND slot.status = 'held';
    IF FOUND THEN
        s := snp_release(r, s.id, 'cancelled', p_actor);
        freed_slot := s.id;
    END IF;
    UPDATE booking SET status = 'cancelled', cancelled_at = now(), cancelled_by = p_actor,
                       cancel_reason = p_reason
     WHERE request_id = r.id AND booking.status = 'booked'
    RETURNING * INTO b;
    IF FOUND THEN
        UPDATE slot SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END
         WHERE id = b.slot_id RETURNING * INTO s;
        PERFORM snp_event(r.territory_id, p_actor, 'booking.cancelled', s.id, r.id, b.id,
                          'booked', 'cancelled',
                          snp_slot_facts(s) || jsonb_build_object('reason', p_reason,
                                                                  'by', 'requester'));
        cancelled_booking := b.id;
        IF s.status = 'free' THEN
            freed_slot := s.id;
        END IF;
    END IF;
    UPDATE request SET status = 'cancelled', closed_at = now(),
                       slip_refused = slip_refused OR p_reason = 'patient_refused'
     WHERE id = r.id;
    PERFORM snp_event(r.territory_id, p_actor, 'request.cancelled', NULL, r.id, NULL, r.status,
                      'cancelled', jsonb_build_object('reason', p_reason));
END $$;

-- Cancels a booking on the practitioner's side (p_rpps) or a coordinator's
-- (p_rpps NULL).  The slot is freed if its start is ahead; the request goes
-- back to waiting if its deadline is ahead (the patient still needs a
-- doctor), otherwise it ends unserved.
CREATE FUNCTION snp_booking_cancel(p_booking bigint, p_territory text, p_rpps text,
                                   p_reason text, p_actor text,
                                   OUT slot_id bigint, OUT slot_status text,
                                   OUT request_id bigint, OUT request_status text)
LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    s slot;
    r request;
BEGIN
    UPDATE booking SET status = 'cancelled', cancelled_at = now(), cancelled_by = p_actor,
                       cancel_reason = p_reason
     WHERE id = p_booking AND territory_id = p_territory AND booking.status = 'booked'
       AND (p_rpps IS NULL OR rpps = p_rpps)
    RETURNING * INTO b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no live booking % of yours', p_booking USING ERRCODE = 'SN404';
    END IF;
    UPDATE slot SET status = CASE WHEN starts_at > now() THEN 'free' ELSE 'expired' END
     WHERE id = b.slot_id RETURNING * INTO s;
    UPDATE request
       SET status = CASE WHEN deadline > now() THEN 'waiting' ELSE 'unserved' END,
           closed_at = CASE WHEN deadline > now() THEN NULL ELSE now() END
     WHERE id = b.request_id RETURNING * INTO r;
    PERFORM snp_event(b.territory_id, p_actor, 'booking.cancelled', s.id, r.id, b.id, 'booked',
                      'cancelled', snp_slot_facts(s) || jsonb_build_object('reason', p_reason,
                                                                           'by', 'practitioner'));
    PERFORM snp_event(r.territory_id, p_actor, 'request.' || r.status, NULL, r.id, NULL,
                      'booked', r.status, '{}'::jsonb);
    slot_id := s.id;
    slot_status := s.status;
    request_id := r.id;
    request_status := r.status;
END $$;

-- Records what happened at an appointment.  Accepted from the slot's start
-- (any time for cancelled_by_patient) until p_delay_hours after it; a later
-- report replaces an earlier one and both stay in the event log.
CREATE FUNCTION snp_outcome_report(p_booking bigint, p_territory text, p_rpps text,
                                   p_outcome text, p_note text, p_delay_hours int,
                                   p_actor text)
RETURNS booking LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    s slot;
BEGIN
    SELECT * INTO b FROM booking WHERE id = p_booking AND territory_id = p_territory
       AND (p_rpps IS NULL OR rpps = p_rpps) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking % of yours', p_booking USING ERRCODE = 'SN404';
    END IF;
    IF b.status <> 'booked' THEN
        RAISE EXCEPTION 'booking % was cancelled', p_booking USING ERRCODE = 'SN409';
    END IF;
    SELECT * INTO s FROM slot WHERE id = b.slot_id;
    IF now() > s.starts_at + make_interval(hours => p_delay_hours) THEN
        RAISE EXCEPTION 'outcomes are accepted until % hours after the appointment',
            p_delay_hours USING ERRCODE = 'SN412';
    END IF;
    IF now() < s.starts_at AND p_outcome <> 'cancelled_by_patient' THEN
        RAISE EXCEPTION 'the appointment has not started yet' USING ERRCODE = 'SN412';
    END IF;
    UPDATE booking SET outcome = p_outcome, outcome_note = p_note, outcome_at = now(),
                       outcome_by = p_actor
     WHERE id = b.id RETURNING * INTO b;
    PERFORM snp_event(b.territory_id, p_actor, 'outcome.reported', s.id, b.request_id, b.id,
                      NULL, p_outcome, snp_slot_facts(s));
    RETURN b;
END $$;

-- Housekeeping, run by snpd at start-up and every few seconds; safe to run
-- from several processes at once.  Returns what changed:
--   hold_expired    slot_id, request_id: a hold ran out (slot free again,
--                   request waiting), also after a crash;
--   slot_expired    slot_id: a free slot's start passed;
--   slot_released   slot_id: a release rule opened the slot to every audience;
--   request_unserved request_id: a deadline passed without a booking.
CREATE FUNCTION snp_housekeeping(p_actor text)
RETURNS TABLE (change text, slot_id bigint, request_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    s slot;
    r request;
BEGIN
    FOR s IN SELECT * FROM slot WHERE slot.status = 'held' AND hold_expires_at <= now()
               FOR UPDATE SKIP LOCKED LOOP
        SELECT * INTO r FROM request WHERE id = s.held_for;
        PERFORM snp_release(r, s.id, 'expired', p_actor);
        UPDATE request SET status = 'waiting' WHERE id = r.id AND request.status = 'offered';
        change := 'hold_expired'; slot_id := s.id; request_id := r.id;
        RETURN NEXT;
    END LOOP;
    FOR s IN UPDATE slot SET status = 'expired'
              WHERE slot.status = 'free' AND starts_at <= now() RETURNING * LOOP
        PERFORM snp_event(s.territory_id, p_actor, 'slot.expired', s.id, NULL, NULL, 'free',
                          'expired', snp_slot_facts(s));
        change := 'slot_expired'; slot_id := s.id; request_id := NULL;
        RETURN NEXT;
    END LOOP;
    FOR s IN UPDATE slot SET released_at = now()
              WHERE slot.status = 'free' AND release_minutes IS NOT NULL AND released_at IS NULL
                AND starts_at - make_interval(mins => release_minutes) <= now()
              RETURNING * LOOP
        PERFORM snp_event(s.territory_id, p_actor, 'slot.released', s.id, NULL, NULL, 'free',
                          'free', snp_slot_facts(s));
        change := 'slot_released'; slot_id := s.id; request_id := NULL;
        RETURN NEXT;
    END LOOP;
    FOR r IN UPDATE request SET status = 'unserved', closed_at = now()
              WHERE request.status = 'waiting' AND deadline <= now() RETURNING * LOOP
        PERFORM snp_event(r.territory_id, p_actor, 'request.unserved', NULL, r.id, NULL,
                          'waiting', 'unserved', snp_request_facts(r));
        change := 'request_unserved'; slot_id := NULL; request_id := r.id;
        RETURN NEXT;
    END LOOP;
END $$;
