-- CSNP shifts that belong to someone (issue 15, section 1).
--
-- A non-scheduled care centre (site kind 'csnp') is staffed by a rota of
-- volunteers: each half-day is a shift, published as slots before anyone is
-- named for it.  Until now such a slot had no practitioner, so its bookings
-- reached nobody.  Here:
--
--   * every slot published at a CSNP belongs to the shift of its site, local
--     day and half-day (created on first use by a trigger, whatever the way
--     the slots were published: a shift, a pattern or a list);
--   * a practitioner who publishes under their own name on a shift nobody
--     holds is on duty (their status not stated); otherwise
--   * a coordinator assigns the shift to a practitioner of the territory with
--     their duty status (independent GP, locum, retired GP, resident): the
--     shift's live slots and their bookings not yet reported become the
--     practitioner's, who then receives them, sees the patients and reports
--     the outcomes exactly as for their own slots; slots published later for
--     an assigned shift are the practitioner's at once;
--   * each slot handed over is an event 'slot.assigned' (the practitioner and
--     the duty status), so that indicators and the participation count the
--     hours of the practitioner on duty;
--   * snpd processes learn of a handed-over slot through snp_change
--     ({"k":"p"}) and of a handed-over booking through the booking
--     notification with event 'assigned' (the practitioner's push).

CREATE TABLE shift (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id text NOT NULL REFERENCES territory (id),
    site_id      bigint NOT NULL REFERENCES site (id),
    day          date NOT NULL,
    half_day     text NOT NULL CHECK (half_day IN ('morning', 'afternoon', 'evening')),
    -- The practitioner on duty and their status, both NULL while unfilled;
    -- the status is NULL too for a practitioner on duty because they
    -- published under their own name, until the coordinator gives it.
    rpps         text REFERENCES practitioner (rpps),
    duty_status  text CHECK (duty_status IN ('independent', 'locum', 'retired', 'resident')),
    assigned_at  timestamptz,
    assigned_by  text,
    CHECK (rpps IS NOT NULL OR duty_status IS NULL),
    UNIQUE (site_id, day, half_day)
);
CREATE INDEX shift_territory_day ON shift (territory_id, day);
CREATE INDEX shift_rpps_day ON shift (rpps, day) WHERE rpps IS NOT NULL;

ALTER TABLE slot ADD COLUMN shift_id bigint REFERENCES shift (id);
CREATE INDEX slot_shift ON slot (shift_id) WHERE shift_id IS NOT NULL;

-- The half-day of a local time: before 13:00 the morning, before 18:00 the
-- afternoon, then the evening (the shift hours of snp.v1's slot_shift are
-- 08-12, 14-18 and 18-22; a slot between them goes to the nearer one).
CREATE FUNCTION snp_half_day(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN extract(hour FROM p_at AT TIME ZONE p_tz) < 13 THEN 'morning'
                WHEN extract(hour FROM p_at AT TIME ZONE p_tz) < 18 THEN 'afternoon'
                ELSE 'evening' END
$$;

-- Puts each slot of a CSNP in its shift; an assigned shift gives the slot
-- its practitioner when the publisher named none, and a slot published for
-- a practitioner makes them the practitioner on duty of a shift nobody
-- holds (unless slots published for nobody wait there).
CREATE FUNCTION snp_slot_shift() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_tz text;
    v_day date;
    v_half text;
    h shift;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM site WHERE id = NEW.site_id AND kind = 'csnp') THEN
        RETURN NEW;
    END IF;
    v_tz := snp_tz(NEW.territory_id);
    v_day := (NEW.starts_at AT TIME ZONE v_tz)::date;
    v_half := snp_half_day(NEW.starts_at, v_tz);
    -- FOR SHARE: an assignment of this shift in progress is waited for, and
    -- its practitioner read once it commits.
    SELECT * INTO h FROM shift WHERE site_id = NEW.site_id AND day = v_day AND half_day = v_half
       FOR SHARE;
    IF NOT FOUND THEN
        INSERT INTO shift (territory_id, site_id, day, half_day)
        VALUES (NEW.territory_id, NEW.site_id, v_day, v_half)
        ON CONFLICT DO NOTHING;
        SELECT * INTO h FROM shift
         WHERE site_id = NEW.site_id AND day = v_day AND half_day = v_half FOR SHARE;
    END IF;
    NEW.shift_id := h.id;
    IF NEW.rpps IS NULL THEN
        NEW.rpps := h.rpps;
    ELSIF h.rpps IS NULL AND NOT EXISTS (
        SELECT 1 FROM slot s
         WHERE s.shift_id = h.id AND s.rpps IS NULL AND s.status IN ('free', 'held', 'booked')) THEN
        -- A practitioner publishing under their own name on a shift nobody
        -- holds yet is on duty: the shift is theirs, their status not
        -- stated until the coordinator gives it.  (Slots already published
        -- for nobody would have to be handed over: then only the
        -- coordinator names someone.)
        UPDATE shift
           SET rpps = NEW.rpps, duty_status = NULL, assigned_at = now(),
               assigned_by = NEW.published_by
         WHERE id = h.id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER slot_shift BEFORE INSERT ON slot
    FOR EACH ROW EXECUTE FUNCTION snp_slot_shift();

-- A shift as the protocol shows it (type "shift"), with its live slots
-- counted.
CREATE FUNCTION snp_shift_view(h shift) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'shift_id', h.id, 'site_id', h.site_id,
        'site_name', (SELECT name FROM site WHERE id = h.site_id),
        'date', to_char(h.day, 'YYYY-MM-DD'), 'half_day', h.half_day,
        'practitioner', (SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                                                   'given_name', p.given_name)
                           FROM practitioner p WHERE p.rpps = h.rpps),
        'duty_status', h.duty_status,
        'assigned_at', snp_rfc3339(h.assigned_at, snp_tz(h.territory_id)),
        'slots', (SELECT count(*) FROM slot s
                   WHERE s.shift_id = h.id AND s.status IN ('free', 'held', 'booked')),
        'free', (SELECT count(*) FROM slot s WHERE s.shift_id = h.id AND s.status = 'free'),
        'booked', (SELECT count(*) FROM slot s WHERE s.shift_id = h.id AND s.status = 'booked'),
        -- Booked slots whose patient nobody on duty will see yet.
        'unattended', (SELECT count(*) FROM slot s
                        WHERE s.shift_id = h.id AND s.status IN ('held', 'booked')
                          AND s.rpps IS NULL)))
$$;

-- The shifts of p_territory from p_from to p_to (included, at most 92 days;
-- SN422 on field "to" otherwise), of one site when p_site is given, only
-- the unfilled ones when p_unfilled, only p_rpps's when given (a gp's own).
-- At most 1000, by day, half-day and site.
CREATE FUNCTION snp_shift_list(p_territory text, p_from date, p_to date, p_site bigint,
                               p_unfilled boolean, p_rpps text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v jsonb;
BEGIN
    IF p_to < p_from OR p_to - p_from > 92 THEN
        RAISE EXCEPTION 'to must be from 0 to 92 days after from' USING ERRCODE = 'SN422',
            DETAIL = 'to';
    END IF;
    SELECT coalesce(jsonb_agg(snp_shift_view(h.s) ORDER BY h.day, h.half_order, h.site_id),
                    '[]'::jsonb)
      INTO v
      FROM (SELECT x AS s, x.day, x.site_id,
                   array_position(ARRAY['morning', 'afternoon', 'evening'], x.half_day)
                       AS half_order
              FROM shift x
             WHERE x.territory_id = p_territory AND x.day BETWEEN p_from AND p_to
               AND (p_site IS NULL OR x.site_id = p_site)
               AND (NOT p_unfilled OR x.rpps IS NULL)
               AND (p_rpps IS NULL OR x.rpps = p_rpps)
             ORDER BY x.day, half_order, x.site_id
             LIMIT 1000) h;
    RETURN v;
END $$;

-- Assigns shift p_shift of p_territory to practitioner p_rpps with duty
-- status p_status, or frees it (both NULL).  The shift's slots that were the
-- previous practitioner's (or nobody's) and are still free, held, or booked
-- without a reported outcome follow, with their bookings.  Raises SN404 for
-- a shift of another territory or a practitioner who does not practise in
-- the territory, SN409 when the practitioner already has a slot at the same
-- site and time.  Returns {"shift": view, "changed": bool, "slots": n,
-- "bookings": n}; assigning again the same practitioner and status changes
-- nothing (changed false).  Audited as shift.assign.
CREATE FUNCTION snp_shift_assign(p_territory text, p_actor text, p_role text, p_shift bigint,
                                 p_rpps text, p_status text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    h shift;
    v_old text;
    v_slots int := 0;
    v_bookings int := 0;
    s slot;
BEGIN
    SELECT * INTO h FROM shift WHERE id = p_shift AND territory_id = p_territory FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no shift % in this territory', p_shift USING ERRCODE = 'SN404';
    END IF;
    IF p_rpps IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM territory_practitioner
         WHERE territory_id = p_territory AND rpps = p_rpps) THEN
        RAISE EXCEPTION 'practitioner % does not practise in this territory', p_rpps
            USING ERRCODE = 'SN404';
    END IF;
    IF h.rpps IS NOT DISTINCT FROM p_rpps AND h.duty_status IS NOT DISTINCT FROM p_status THEN
        RETURN jsonb_build_object('shift', snp_shift_view(h), 'changed', false, 'slots', 0,
                                  'bookings', 0);
    END IF;
    v_old := h.rpps;
    -- The shift's live slots are locked first, in id order: a booking being
    -- confirmed on one of them commits before the next statements look
    -- (each takes a new snapshot), so that it is handed over with its slot.
    PERFORM 1 FROM slot x
      WHERE x.shift_id = p_shift AND x.status IN ('free', 'held', 'booked')
      ORDER BY x.id FOR UPDATE;
    UPDATE shift
       SET rpps = p_rpps, duty_status = p_status,
           assigned_at = CASE WHEN p_rpps IS NULL THEN NULL ELSE now() END,
           assigned_by = p_actor
     WHERE id = p_shift
    RETURNING * INTO h;
    IF v_old IS DISTINCT FROM p_rpps THEN
        BEGIN
            FOR s IN
                UPDATE slot x SET rpps = p_rpps
                 WHERE x.shift_id = p_shift AND x.rpps IS NOT DISTINCT FROM v_old
                   AND (x.status IN ('free', 'held')
                        OR (x.status = 'booked' AND EXISTS (
                                SELECT 1 FROM booking b
                                 WHERE b.slot_id = x.id AND b.status = 'booked'
                                   AND b.outcome IS NULL)))
                RETURNING x.*
            LOOP
                v_slots := v_slots + 1;
                PERFORM snp_event(p_territory, p_actor, 'slot.assigned', s.id, NULL, NULL,
                                  NULL, s.status,
                                  jsonb_build_object('rpps', p_rpps, 'duty_status', p_status,
                                                     'shift_id', p_shift,
                                                     'site_id', s.site_id));
            END LOOP;
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'practitioner % already has a slot at this site during the shift',
                p_rpps USING ERRCODE = 'SN409', DETAIL = 'rpps';
        END;
        UPDATE booking b SET rpps = p_rpps
          FROM slot x
         WHERE x.id = b.slot_id AND x.shift_id = p_shift AND b.status = 'booked'
           AND b.outcome IS NULL AND b.rpps IS NOT DISTINCT FROM v_old;
        GET DIAGNOSTICS v_bookings = ROW_COUNT;
    ELSE
        -- Only the status changed: the slots stay the practitioner's, the
        -- events say the new status.
        FOR s IN
            SELECT * FROM slot x
             WHERE x.shift_id = p_shift AND x.rpps IS NOT DISTINCT FROM p_rpps
               AND x.status IN ('free', 'held', 'booked')
        LOOP
            PERFORM snp_event(p_territory, p_actor, 'slot.assigned', s.id, NULL, NULL, NULL,
                              s.status,
                              jsonb_build_object('rpps', p_rpps, 'duty_status', p_status,
                                                 'shift_id', p_shift, 'site_id', s.site_id));
        END LOOP;
    END IF;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'shift.assign',
            jsonb_build_object('territory', p_territory, 'shift_id', p_shift, 'rpps', p_rpps,
                               'duty_status', p_status, 'previous_rpps', v_old,
                               'slots', v_slots, 'bookings', v_bookings));
    RETURN jsonb_build_object('shift', snp_shift_view(h), 'changed', true, 'slots', v_slots,
                              'bookings', v_bookings);
END $$;

-- snpd processes: a slot handed to another practitioner.
CREATE FUNCTION snp_notify_slot_practitioner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 'p', 'id', NEW.id, 't', NEW.territory_id, 'rp', NEW.rpps)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER slot_practitioner_notify AFTER UPDATE OF rpps ON slot
    FOR EACH ROW WHEN (OLD.rpps IS DISTINCT FROM NEW.rpps)
    EXECUTE FUNCTION snp_notify_slot_practitioner();

-- snpd processes: a booking handed to the practitioner on duty, who gets it
-- as booking.created, and taken from the previous one ("prp"), who gets
-- booking.handed_over (the payload of snp_notify_booking, event 'assigned').
CREATE FUNCTION snp_notify_booking_assigned() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER booking_assigned_notify AFTER UPDATE OF rpps ON booking
    FOR EACH ROW WHEN (OLD.rpps IS DISTINCT FROM NEW.rpps)
    EXECUTE FUNCTION snp_notify_booking_assigned();

-- Every shift already published: the CSNP slots of before this migration
-- join their shift (nobody was on duty: they stay without practitioner).
INSERT INTO shift (territory_id, site_id, day, half_day)
SELECT DISTINCT s.territory_id, s.site_id, (s.starts_at AT TIME ZONE snp_tz(s.territory_id))::date,
       snp_half_day(s.starts_at, snp_tz(s.territory_id))
  FROM slot s JOIN site si ON si.id = s.site_id AND si.kind = 'csnp'
ON CONFLICT DO NOTHING;
UPDATE slot s SET shift_id = h.id
  FROM shift h
 WHERE h.site_id = s.site_id AND s.shift_id IS NULL
   AND h.day = (s.starts_at AT TIME ZONE snp_tz(s.territory_id))::date
   AND h.half_day = snp_half_day(s.starts_at, snp_tz(s.territory_id));
-- A shift whose live slots were all published for one practitioner is
-- theirs, as the trigger would have made it.
UPDATE shift h
   SET rpps = x.rpps, duty_status = NULL, assigned_at = now(),
       assigned_by = 'migration 0022'
  FROM (SELECT s.shift_id, min(s.rpps) AS rpps FROM slot s
         WHERE s.shift_id IS NOT NULL AND s.status IN ('free', 'held', 'booked')
         GROUP BY s.shift_id
        HAVING count(*) FILTER (WHERE s.rpps IS NULL) = 0 AND count(DISTINCT s.rpps) = 1) x
 WHERE h.id = x.shift_id AND h.rpps IS NULL;
