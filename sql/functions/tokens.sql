-- Access tokens: their checks, creation, listing and revocation, and the
-- announcement of their changes.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- A token's practitioner or organisation must belong to its territory, and a
-- requester token must name an organisation of its own kind: a pharmacy token
-- acts for a pharmacy.
CREATE OR REPLACE FUNCTION api_token_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rpps IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM territory_practitioner
         WHERE territory_id = NEW.territory_id AND rpps = NEW.rpps) THEN
        RAISE EXCEPTION 'practitioner % does not practise in territory %',
            NEW.rpps, NEW.territory_id USING ERRCODE = '23503';
    END IF;
    IF NEW.organisation_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM organisation
         WHERE id = NEW.organisation_id AND territory_id = NEW.territory_id
           AND (kind = NEW.role OR NEW.role NOT IN
                ('pharmacy', 'emergency', 'sas', 'professional', 'desk'))) THEN
        RAISE EXCEPTION 'organisation % is not a % of territory %',
            NEW.organisation_id, NEW.role, NEW.territory_id USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;

-- A token was revoked (by snpd, `snpd token revoke` or SQL).
CREATE OR REPLACE FUNCTION snp_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        PERFORM pg_notify('snp_change', json_build_object('k', 'tok', 'id', NEW.id)::text);
    END IF;
    RETURN NULL;
END $$;

-- The tokens of a territory, newest first, optionally in one state.
CREATE OR REPLACE FUNCTION snp_token_list(p_territory text, p_state text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('tokens', coalesce(jsonb_agg(v ORDER BY id DESC), '[]'))
      FROM (SELECT t.id, snp_token_view(t) AS v FROM api_token t
             WHERE t.territory_id = p_territory) x
     WHERE p_state IS NULL OR v ->> 'state' = p_state
$$;

-- Revokes token p_token of territory p_territory.  A coordinator may not
-- revoke an admin token; a token already revoked is a conflict.
CREATE OR REPLACE FUNCTION snp_token_revoke(p_territory text, p_actor text, p_role text, p_token bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t api_token;
BEGIN
    SELECT * INTO t FROM api_token WHERE id = p_token AND territory_id = p_territory FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no token % in the territory', p_token USING ERRCODE = 'SN404';
    END IF;
    IF t.role = 'admin' AND p_role <> 'admin' THEN
        RAISE EXCEPTION 'only an admin may revoke admin tokens' USING ERRCODE = 'SN403';
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'token % was already revoked', p_token USING ERRCODE = 'SN409';
    END IF;
    UPDATE api_token SET revoked_at = now() WHERE id = p_token RETURNING * INTO t;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'token.revoke',
            jsonb_build_object('token_id', t.id, 'role', t.role, 'territory', p_territory));
    RETURN snp_token_view(t);
END $$;

-- A reception token's site must be of its territory.
CREATE OR REPLACE FUNCTION snp_api_token_site_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.site_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM site WHERE id = NEW.site_id AND territory_id = NEW.territory_id) THEN
        RAISE EXCEPTION 'site % is not in territory %', NEW.site_id, NEW.territory_id
            USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;

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
