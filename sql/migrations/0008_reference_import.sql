-- A territory's reference data and access tokens, managed through the
-- protocol (territory.import, token.create/list/revoke) instead of SQL:
--   * snp_import upserts communes, sites, practitioners and organisations in
--     one call (one transaction, one round trip), nothing deleted;
--   * snp_token_create/list/revoke confine coordinators and admins to their
--     territory, and audit every change;
--   * every change of reference data or of a token's revocation is announced
--     on snp_change so that every snpd process sharing the database updates
--     its memory: {"k":"ref"} (reload the reference data) and
--     {"k":"tok","id":…} (forget that token, close its connections).
-- Errors raised here: SN422 (a field at fault: the DETAIL is its path in the
-- request, as the protocol's codec names fields: practitioners[0].sites[1]),
-- SN404, SN403, SN409 (the DETAIL may name a field the same way).

-- Reference data changed: one notification per transaction (PostgreSQL
-- folds identical notifications of a transaction into one).
CREATE FUNCTION snp_notify_reference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', '{"k":"ref"}');
    RETURN NULL;
END $$;

CREATE TRIGGER territory_notify AFTER INSERT OR UPDATE OR DELETE ON territory
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER territory_neighbour_notify AFTER INSERT OR UPDATE OR DELETE ON territory_neighbour
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER commune_notify AFTER INSERT OR UPDATE OR DELETE ON commune
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER territory_commune_notify AFTER INSERT OR UPDATE OR DELETE ON territory_commune
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER practitioner_notify AFTER INSERT OR UPDATE OR DELETE ON practitioner
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER territory_practitioner_notify AFTER INSERT OR UPDATE OR DELETE
    ON territory_practitioner FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER site_notify AFTER INSERT OR UPDATE OR DELETE ON site
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER practitioner_site_notify AFTER INSERT OR UPDATE OR DELETE ON practitioner_site
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();
CREATE TRIGGER organisation_notify AFTER INSERT OR UPDATE OR DELETE ON organisation
    FOR EACH STATEMENT EXECUTE FUNCTION snp_notify_reference();

-- A token was revoked (by snpd, `snpd token revoke` or SQL).
CREATE FUNCTION snp_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        PERFORM pg_notify('snp_change', json_build_object('k', 'tok', 'id', NEW.id)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_token_notify AFTER UPDATE OF revoked_at ON api_token
    FOR EACH ROW EXECUTE FUNCTION snp_notify_token();

-- Raises the error of a field at fault.
CREATE FUNCTION snp_field_error(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = 'SN422', DETAIL = p_field;
END $$;

-- Raises the error of field p_field unless p_insee is a commune of the
-- territory.
CREATE FUNCTION snp_check_commune(p_territory text, p_insee text, p_field text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM territory_commune
                    WHERE territory_id = p_territory AND insee = p_insee) THEN
        PERFORM snp_field_error(p_field,
            format('commune %s is not a commune of the territory: import it with the communes first',
                   p_insee));
    END IF;
END $$;

-- The outcome of one imported record: 1 created (it was not part of the
-- territory), 2 updated (it was, and something changed), 3 unchanged.
CREATE FUNCTION snp_import_outcome(p_new boolean, p_changed boolean) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_new THEN 1 WHEN p_changed THEN 2 ELSE 3 END
$$;

-- Imports reference data into territory p_territory for p_actor (role
-- p_role): p_data is the territory.import request, already validated by
-- the protocol's codec (types, ranges, RPPS and FINESS keys).  Returns the
-- territory.import response.  Communes first, then sites, practitioners
-- (who name their sites) and organisations, so that one request may refer
-- to what it creates.  A record counts as created when it was not part of
-- the territory, updated when it was and something changed.  An optional
-- member left out (postal code, phone, FINESS, RPPS) keeps its value.
CREATE FUNCTION snp_import(p_territory text, p_actor text, p_role text, p_data jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    -- tally[kind][outcome]: kinds 1 communes, 2 sites, 3 practitioners,
    -- 4 organisations; outcomes 1 created, 2 updated, 3 unchanged.
    tally     int[] := array_fill(0, ARRAY[4, 3]);
    o_kind    int;
    item      jsonb;
    idx       bigint;
    site_name jsonb;
    sidx      bigint;
    c         commune;
    s         site;
    o         organisation;
    p         practitioner;
    linked    boolean; -- already part of the territory
    fresh     boolean; -- not there before this import
    changed   boolean;
    new_id    bigint;
    sites     jsonb := '[]';
    orgs      jsonb := '[]';
    counts    jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM territory WHERE id = p_territory) THEN
        RAISE EXCEPTION 'unknown territory %', p_territory USING ERRCODE = 'SN404';
    END IF;

    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'communes', '[]'))
                            WITH ORDINALITY LOOP
        SELECT * INTO c FROM commune WHERE insee = item ->> 'insee' FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO commune (insee, name, postal_code, latitude, longitude)
            VALUES (item ->> 'insee', item ->> 'name', item ->> 'postal_code',
                    (item ->> 'latitude')::float8, (item ->> 'longitude')::float8);
            changed := true;
        ELSE
            changed := (c.name, c.postal_code, c.latitude, c.longitude) IS DISTINCT FROM
                       (item ->> 'name', coalesce(item ->> 'postal_code', c.postal_code),
                        (item ->> 'latitude')::float8, (item ->> 'longitude')::float8);
            IF changed THEN
                UPDATE commune
                   SET name = item ->> 'name',
                       postal_code = coalesce(item ->> 'postal_code', c.postal_code),
                       latitude = (item ->> 'latitude')::float8,
                       longitude = (item ->> 'longitude')::float8
                 WHERE insee = c.insee;
            END IF;
        END IF;
        INSERT INTO territory_commune (territory_id, insee)
        VALUES (p_territory, item ->> 'insee') ON CONFLICT DO NOTHING;
        linked := NOT FOUND;
        o_kind := snp_import_outcome(NOT linked, changed);
        tally[1][o_kind] := tally[1][o_kind] + 1;
    END LOOP;

    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'sites', '[]'))
                            WITH ORDINALITY LOOP
        PERFORM snp_check_commune(p_territory, item ->> 'commune_insee',
                                  format('sites[%s].commune_insee', idx));
        SELECT * INTO s FROM site
         WHERE territory_id = p_territory AND name = item ->> 'name' FOR UPDATE;
        fresh := NOT FOUND;
        IF fresh THEN
            INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude,
                              longitude, phone)
            VALUES (p_territory, item ->> 'kind', item ->> 'name', item ->> 'address',
                    item ->> 'commune_insee', (item ->> 'latitude')::float8,
                    (item ->> 'longitude')::float8, item ->> 'phone')
            RETURNING id INTO new_id;
            changed := true;
        ELSE
            new_id := s.id;
            IF (s.kind, s.address, s.commune_insee, s.latitude, s.longitude, s.phone)
               IS DISTINCT FROM
               (item ->> 'kind', item ->> 'address', item ->> 'commune_insee',
                (item ->> 'latitude')::float8, (item ->> 'longitude')::float8,
                coalesce(item ->> 'phone', s.phone))
            THEN
                UPDATE site
                   SET kind = item ->> 'kind', address = item ->> 'address',
                       commune_insee = item ->> 'commune_insee',
                       latitude = (item ->> 'latitude')::float8,
                       longitude = (item ->> 'longitude')::float8,
                       phone = coalesce(item ->> 'phone', s.phone)
                 WHERE id = s.id;
                changed := true;
            ELSE
                changed := false;
            END IF;
        END IF;
        o_kind := snp_import_outcome(fresh, changed);
        tally[2][o_kind] := tally[2][o_kind] + 1;
        sites := sites || jsonb_build_object('site_id', new_id, 'name', item ->> 'name');
    END LOOP;

    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'practitioners', '[]'))
                            WITH ORDINALITY LOOP
        SELECT * INTO p FROM practitioner WHERE rpps = item ->> 'rpps' FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO practitioner (rpps, family_name, given_name)
            VALUES (item ->> 'rpps', item ->> 'family_name', item ->> 'given_name');
            changed := true;
        ELSE
            changed := (p.family_name, p.given_name) IS DISTINCT FROM
                       (item ->> 'family_name', item ->> 'given_name');
            IF changed THEN
                UPDATE practitioner
                   SET family_name = item ->> 'family_name', given_name = item ->> 'given_name'
                 WHERE rpps = p.rpps;
            END IF;
        END IF;
        INSERT INTO territory_practitioner (territory_id, rpps)
        VALUES (p_territory, item ->> 'rpps') ON CONFLICT DO NOTHING;
        linked := NOT FOUND;
        FOR site_name, sidx IN SELECT value, ordinality - 1
                                 FROM jsonb_array_elements(item -> 'sites') WITH ORDINALITY LOOP
            SELECT id INTO new_id FROM site
             WHERE territory_id = p_territory AND name = site_name #>> '{}';
            IF NOT FOUND THEN
                PERFORM snp_field_error(format('practitioners[%s].sites[%s]', idx, sidx),
                    format('no site named "%s" in the territory: import it with the sites first',
                           site_name #>> '{}'));
            END IF;
            INSERT INTO practitioner_site (rpps, site_id)
            VALUES (item ->> 'rpps', new_id) ON CONFLICT DO NOTHING;
            changed := changed OR FOUND;
        END LOOP;
        o_kind := snp_import_outcome(NOT linked, changed);
        tally[3][o_kind] := tally[3][o_kind] + 1;
    END LOOP;

    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'organisations', '[]'))
                            WITH ORDINALITY LOOP
        IF item ->> 'finess' IS NULL AND item ->> 'rpps' IS NULL THEN
            PERFORM snp_field_error(format('organisations[%s]', idx),
                'an organisation has a FINESS number or the RPPS of the professional who runs it');
        END IF;
        PERFORM snp_check_commune(p_territory, item ->> 'commune_insee',
                                  format('organisations[%s].commune_insee', idx));
        SELECT * INTO o FROM organisation
         WHERE territory_id = p_territory AND name = item ->> 'name' FOR UPDATE;
        fresh := NOT FOUND;
        IF fresh THEN
            INSERT INTO organisation (territory_id, kind, name, finess, rpps, commune_insee)
            VALUES (p_territory, item ->> 'kind', item ->> 'name', upper(item ->> 'finess'),
                    item ->> 'rpps', item ->> 'commune_insee')
            RETURNING id INTO new_id;
            changed := true;
        ELSE
            new_id := o.id;
            -- Its tokens and requests were made for its kind.
            IF o.kind <> item ->> 'kind' THEN
                RAISE EXCEPTION 'organisation "%" is a %; its kind cannot change',
                    o.name, o.kind USING ERRCODE = 'SN409', DETAIL = format('organisations[%s].kind', idx);
            END IF;
            IF (o.finess, o.rpps, o.commune_insee) IS DISTINCT FROM
               (coalesce(upper(item ->> 'finess'), o.finess), coalesce(item ->> 'rpps', o.rpps),
                item ->> 'commune_insee') THEN
                UPDATE organisation
                   SET finess = coalesce(upper(item ->> 'finess'), o.finess),
                       rpps = coalesce(item ->> 'rpps', o.rpps),
                       commune_insee = item ->> 'commune_insee'
                 WHERE id = o.id;
                changed := true;
            ELSE
                changed := false;
            END IF;
        END IF;
        o_kind := snp_import_outcome(fresh, changed);
        tally[4][o_kind] := tally[4][o_kind] + 1;
        orgs := orgs || jsonb_build_object('organisation_id', new_id, 'kind', item ->> 'kind',
                                           'name', item ->> 'name');
    END LOOP;

    SELECT jsonb_object_agg(outcome, jsonb_build_object(
               'communes', tally[1][k], 'sites', tally[2][k], 'practitioners', tally[3][k],
               'organisations', tally[4][k]))
      INTO counts
      FROM unnest(ARRAY['created', 'updated', 'unchanged']) WITH ORDINALITY AS x (outcome, k);
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'territory.import', counts || jsonb_build_object('territory', p_territory));
    RETURN counts || jsonb_build_object('sites', sites, 'organisations', orgs);
END $$;

-- A token as the protocol shows it (type token), times in the territory's
-- zone; never its hash.
CREATE FUNCTION snp_token_view(t api_token) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'token_id', t.id, 'role', t.role, 'rpps', t.rpps,
        'organisation_id', t.organisation_id,
        'organisation_name', (SELECT name FROM organisation WHERE id = t.organisation_id),
        'label', t.label,
        'created_at', snp_rfc3339(t.created_at, snp_tz(t.territory_id)),
        'expires_at', snp_rfc3339(t.expires_at, snp_tz(t.territory_id)),
        'revoked_at', snp_rfc3339(t.revoked_at, snp_tz(t.territory_id)),
        'state', CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
                      WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN 'expired'
                      ELSE 'active' END))
$$;

-- Creates a token of territory p_territory for p_actor (role p_role) and
-- returns its view; p_sha256 is the hash of the secret snpd generated.
-- The checks the protocol's codec cannot make are made here, each with the
-- field at fault.
CREATE FUNCTION snp_token_create(p_territory text, p_actor text, p_role text, p_sha256 bytea,
                                 p_data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_role text := p_data ->> 'role';
    v_rpps text := p_data ->> 'rpps';
    v_org  bigint := (p_data ->> 'organisation_id')::bigint;
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
    INSERT INTO api_token (secret_sha256, role, territory_id, rpps, organisation_id, label,
                           expires_at)
    VALUES (p_sha256, v_role, p_territory, v_rpps, v_org, coalesce(p_data ->> 'label', ''),
            now() + make_interval(days => (p_data ->> 'expires_days')::int))
    RETURNING * INTO t;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'token.create',
            jsonb_build_object('token_id', t.id, 'role', t.role, 'territory', p_territory));
    RETURN snp_token_view(t);
END $$;

-- The tokens of a territory, newest first, optionally in one state.
CREATE FUNCTION snp_token_list(p_territory text, p_state text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('tokens', coalesce(jsonb_agg(v ORDER BY id DESC), '[]'))
      FROM (SELECT t.id, snp_token_view(t) AS v FROM api_token t
             WHERE t.territory_id = p_territory) x
     WHERE p_state IS NULL OR v ->> 'state' = p_state
$$;

-- Revokes token p_token of territory p_territory.  A coordinator may not
-- revoke an admin token; a token already revoked is a conflict.
CREATE FUNCTION snp_token_revoke(p_territory text, p_actor text, p_role text, p_token bigint)
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
