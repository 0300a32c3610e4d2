-- CSNP shifts (docs/rota.md): half-days, the practitioner on duty given a
-- slot, shift views, lists and assignment.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The half-day of a local time: before 13:00 the morning, before 18:00 the
-- afternoon, then the evening (the shift hours of snp.v1's slot_shift are
-- 08-12, 14-18 and 18-22; a slot between them goes to the nearer one).
CREATE OR REPLACE FUNCTION snp_half_day(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN extract(hour FROM p_at AT TIME ZONE p_tz) < 13 THEN 'morning'
                WHEN extract(hour FROM p_at AT TIME ZONE p_tz) < 18 THEN 'afternoon'
                ELSE 'evening' END
$$;

-- Puts each slot of a CSNP in its shift; an assigned shift gives the slot
-- its practitioner when the publisher named none, and a slot published for
-- a practitioner makes them the practitioner on duty of a shift nobody
-- holds (unless slots published for nobody wait there).
CREATE OR REPLACE FUNCTION snp_slot_shift() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- A shift as the protocol shows it (type "shift"), with its live slots
-- counted.
CREATE OR REPLACE FUNCTION snp_shift_view(h shift) RETURNS jsonb LANGUAGE sql STABLE AS $$
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
CREATE OR REPLACE FUNCTION snp_shift_list(p_territory text, p_from date, p_to date, p_site bigint,
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
CREATE OR REPLACE FUNCTION snp_shift_assign(p_territory text, p_actor text, p_role text, p_shift bigint,
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

-- A slot that took its practitioner from its assigned shift when it was
-- inserted: the event of 0022's snp_shift_assign, written at publication.
CREATE OR REPLACE FUNCTION snp_slot_assigned_at_publication() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h shift;
BEGIN
    SELECT * INTO h FROM shift WHERE id = NEW.shift_id;
    IF h.rpps = NEW.rpps THEN
        PERFORM snp_event(NEW.territory_id, NEW.published_by, 'slot.assigned', NEW.id, NULL,
                          NULL, NULL, NEW.status,
                          jsonb_build_object('rpps', h.rpps, 'duty_status', h.duty_status,
                                             'shift_id', h.id, 'site_id', NEW.site_id));
    END IF;
    RETURN NULL;
END $$;
