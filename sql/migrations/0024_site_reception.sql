-- The reception desk of a site (issue 15, section 1): a token of role
-- 'reception' names one site of its territory (a CSNP's reception, a
-- practice's secretariat) and sees the bookings on that site's slots,
-- whoever sees the patient and even while a CSNP shift has nobody on duty
-- (booking.list, the bookings topic), and the site's shifts.  It asks for
-- nothing and changes nothing.  docs/rota.md.
--
-- snp_token_create and snp_token_view of 0008 are replaced whole to learn
-- site_id (a plpgsql body cannot be extended in place); the only changes are
-- the site's checks, its column and its two view members.  A gp's booking
-- list and a reception's share one function, snp_bookings_shown.  The booking
-- notification of 0012 is replaced to carry the slot's site ("si"), which
-- snpd needs to find the reception sessions of another process's booking.

ALTER TABLE api_token ADD COLUMN site_id bigint REFERENCES site (id);
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_role_check
    CHECK (role IN ('gp', 'pharmacy', 'emergency', 'sas', 'professional', 'desk', 'coordinator',
                    'admin', 'platform', 'reception'));
ALTER TABLE api_token ADD CONSTRAINT api_token_site_check
    CHECK ((role = 'reception') = (site_id IS NOT NULL));

-- A reception token's site must be of its territory.
CREATE FUNCTION snp_api_token_site_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.site_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM site WHERE id = NEW.site_id AND territory_id = NEW.territory_id) THEN
        RAISE EXCEPTION 'site % is not in territory %', NEW.site_id, NEW.territory_id
            USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_token_site_check BEFORE INSERT OR UPDATE OF site_id, territory_id
    ON api_token FOR EACH ROW EXECUTE FUNCTION snp_api_token_site_check();

CREATE OR REPLACE FUNCTION snp_token_view(t api_token) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'token_id', t.id, 'role', t.role, 'rpps', t.rpps,
        'organisation_id', t.organisation_id,
        'organisation_name', (SELECT name FROM organisation WHERE id = t.organisation_id),
        'site_id', t.site_id,
        'site_name', (SELECT name FROM site WHERE id = t.site_id),
        'label', t.label,
        'created_at', snp_rfc3339(t.created_at, snp_tz(t.territory_id)),
        'expires_at', snp_rfc3339(t.expires_at, snp_tz(t.territory_id)),
        'revoked_at', snp_rfc3339(t.revoked_at, snp_tz(t.territory_id)),
        'state', CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
                      WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN 'expired'
                      ELSE 'active' END))
$$;

CREATE OR REPLACE FUNCTION snp_token_create(p_territory text, p_actor text, p_role text, p_sha256 bytea,
                                 p_data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_role text := p_data ->> 'role';
    v_rpps text := p_data ->> 'rpps';
    v_org  bigint := (p_data ->> 'organisation_id')::bigint;
    v_site bigint := (p_data ->> 'site_id')::bigint;
    t      api_token;
BEGIN
    IF v_role = 'admin' AND p_role <> 'admin' THEN
        RAISE EXCEPTION 'only an admin may create admin tokens' USING ERRCODE = 'SN403';
    END IF;
    IF v_role = 'gp' AND v_rpps IS NULL THEN
        PERFORM snp_field_error('rpps', 'a gp token needs the practitioner''s RPPS');
    END IF;
    IF v_role <> 'gp' AND v_rpps IS NOT NULL THEN
        PERFORM snp_field_error('rpps', 'only gp tokens name a practitioner');
    END IF;
    IF v_role IN ('pharmacy', 'emergency', 'sas', 'professional', 'desk') THEN
        IF v_org IS NULL THEN
            PERFORM snp_field_error('organisation_id',
                format('a %s token needs the organisation it acts for', v_role));
        END IF;
    ELSIF v_org IS NOT NULL THEN
        PERFORM snp_field_error('organisation_id', 'only requester tokens name an organisation');
    END IF;
    IF v_role = 'reception' AND v_site IS NULL THEN
        PERFORM snp_field_error('site_id', 'a reception token needs its site');
    END IF;
    IF v_role <> 'reception' AND v_site IS NOT NULL THEN
        PERFORM snp_field_error('site_id', 'only reception tokens name a site');
    END IF;
    IF v_site IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM site WHERE id = v_site AND territory_id = p_territory) THEN
        PERFORM snp_field_error('site_id', format('site %s is not in the territory', v_site));
    END IF;
    IF v_rpps IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM territory_practitioner WHERE territory_id = p_territory AND rpps = v_rpps) THEN
        PERFORM snp_field_error('rpps',
            format('practitioner %s does not practise in the territory', v_rpps));
    END IF;
    IF v_org IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM organisation WHERE id = v_org AND territory_id = p_territory
                                     AND kind = v_role) THEN
        PERFORM snp_field_error('organisation_id',
            format('organisation %s is not a %s of the territory', v_org, v_role));
    END IF;
    INSERT INTO api_token (secret_sha256, role, territory_id, rpps, organisation_id, site_id,
                           label, expires_at)
    VALUES (p_sha256, v_role, p_territory, v_rpps, v_org, v_site, coalesce(p_data ->> 'label', ''),
            now() + make_interval(days => (p_data ->> 'expires_days')::int))
    RETURNING * INTO t;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'token.create',
            jsonb_build_object('token_id', t.id, 'role', t.role, 'territory', p_territory));
    RETURN snp_token_view(t);
END $$;

-- The bookings of p_territory by slot start, of practitioner p_rpps or on
-- the slots of site p_site (whichever is given), for p_actor of role p_role:
-- the identity shown (and its read audited under that role) for live
-- bookings only.  A reception welcomes the patient and needs no more: the
-- requester's free text on the motif and the practitioner's note on the
-- outcome are left out of its view, and out of its audited fields.  snp_booking_list (a gp's, 0013) now calls it; a reception's
-- list is snp_site_booking_list.
CREATE FUNCTION snp_bookings_shown(p_territory text, p_rpps text, p_site bigint,
                                   p_statuses text[], p_from timestamptz, p_to timestamptz,
                                   p_limit int, p_actor text, p_role text)
RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
BEGIN
    FOR b IN SELECT bk.* FROM booking bk JOIN slot s ON s.id = bk.slot_id
              WHERE s.territory_id = p_territory
                AND (p_rpps IS NULL OR bk.rpps = p_rpps)
                AND (p_site IS NULL OR s.site_id = p_site)
                AND (p_rpps IS NOT NULL OR p_site IS NOT NULL)
                AND (p_statuses IS NULL OR bk.status = ANY (p_statuses))
                AND s.starts_at >= p_from AND s.starts_at < p_to
              ORDER BY s.starts_at, bk.id LIMIT p_limit LOOP
        IF b.status = 'booked'
           AND EXISTS (SELECT 1 FROM patient_identity WHERE request_id = b.request_id) THEN
            INSERT INTO audit (actor, role, action, request_id, fields)
            VALUES (p_actor, p_role, 'patient.read', b.request_id,
                    CASE WHEN p_role = 'reception'
                         THEN ARRAY['display_name', 'initials', 'birth_date', 'phone']
                         ELSE ARRAY['display_name', 'initials', 'birth_date', 'phone',
                                    'motif_text', 'outcome_note'] END);
        END IF;
        RETURN NEXT CASE WHEN p_role = 'reception'
                         THEN snp_booking_view(b, true) #- '{motif,text}' #- '{outcome,note}'
                         ELSE snp_booking_view(b, true) END;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION snp_booking_list(p_territory text, p_rpps text, p_statuses text[],
                                            p_from timestamptz, p_to timestamptz, p_limit int,
                                            p_actor text)
RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT * FROM snp_bookings_shown(p_territory, p_rpps, NULL, p_statuses, p_from, p_to,
                                     p_limit, p_actor, 'gp')
$$;

CREATE FUNCTION snp_site_booking_list(p_territory text, p_site bigint, p_statuses text[],
                                      p_from timestamptz, p_to timestamptz, p_limit int,
                                      p_actor text)
RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT * FROM snp_bookings_shown(p_territory, NULL, p_site, p_statuses, p_from, p_to,
                                     p_limit, p_actor, 'reception')
$$;

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
        'si', (SELECT site_id FROM slot WHERE id = NEW.slot_id))::text);
    RETURN NULL;
END $$;
