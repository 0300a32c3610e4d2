-- Reference data of a territory: the CSV import of communes, practitioners,
-- sites and organisations (territory.import) and its checks that a national
-- record another territory uses is not changed.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Raises the error of field p_field unless p_insee is a commune of the
-- territory.
CREATE OR REPLACE FUNCTION snp_check_commune(p_territory text, p_insee text, p_field text) RETURNS void
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
CREATE OR REPLACE FUNCTION snp_import_outcome(p_new boolean, p_changed boolean) RETURNS int
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
CREATE OR REPLACE FUNCTION snp_import_unchecked(p_territory text, p_actor text, p_role text, p_data jsonb)
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

-- Raises the error of a national record that another territory uses: the
-- field is its path in the request, as snp_field_error gives it.
CREATE OR REPLACE FUNCTION snp_other_territory(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = 'SNT03', DETAIL = p_field;
END $$;

-- Whether a territory other than p_territory uses commune p_insee: it is one
-- of its communes, or one of its sites or organisations is there.
CREATE OR REPLACE FUNCTION snp_commune_used_elsewhere(p_insee text, p_territory text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM territory_commune
                    WHERE insee = p_insee AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM site WHERE commune_insee = p_insee AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM organisation
                    WHERE commune_insee = p_insee AND territory_id <> p_territory)
$$;

-- Whether a territory other than p_territory uses practitioner p_rpps: the
-- practitioner practises there, or has slots or tokens there.
CREATE OR REPLACE FUNCTION snp_practitioner_used_elsewhere(p_rpps text, p_territory text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM territory_practitioner
                    WHERE rpps = p_rpps AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM slot WHERE rpps = p_rpps AND territory_id <> p_territory)
        OR EXISTS (SELECT 1 FROM api_token WHERE rpps = p_rpps AND territory_id <> p_territory)
$$;

-- Refuses commune `item` (communes[idx] of an import by p_territory) when it
-- would change a commune another territory uses.  The row is locked until
-- the import commits, so that another territory joining it at the same
-- moment sees either the old values or the new ones, never a change it did
-- not agree to.  The first member that differs is named, in the order of
-- the protocol's type.
CREATE OR REPLACE FUNCTION snp_import_check_commune(p_territory text, item jsonb, idx bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c     commune;
    field text;
BEGIN
    SELECT * INTO c FROM commune WHERE insee = item ->> 'insee' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    field := CASE
        WHEN c.name IS DISTINCT FROM item ->> 'name' THEN 'name'
        WHEN c.postal_code IS DISTINCT FROM coalesce(item ->> 'postal_code', c.postal_code)
            THEN 'postal_code'
        WHEN c.latitude IS DISTINCT FROM (item ->> 'latitude')::float8 THEN 'latitude'
        WHEN c.longitude IS DISTINCT FROM (item ->> 'longitude')::float8 THEN 'longitude'
    END;
    IF field IS NOT NULL AND snp_commune_used_elsewhere(c.insee, p_territory) THEN
        PERFORM snp_other_territory(format('communes[%s].%s', idx, field),
            format('commune %s is used by another territory: its %s cannot change (import it '
                   'with the values recorded, as territory.get shows them)', c.insee, field));
    END IF;
END $$;

-- The same for practitioner `item` (practitioners[idx]): their identity
-- (names) cannot change once another territory uses them.
CREATE OR REPLACE FUNCTION snp_import_check_practitioner(p_territory text, item jsonb, idx bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p     practitioner;
    field text;
BEGIN
    SELECT * INTO p FROM practitioner WHERE rpps = item ->> 'rpps' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    field := CASE
        WHEN p.family_name IS DISTINCT FROM item ->> 'family_name' THEN 'family_name'
        WHEN p.given_name IS DISTINCT FROM item ->> 'given_name' THEN 'given_name'
    END;
    IF field IS NOT NULL AND snp_practitioner_used_elsewhere(p.rpps, p_territory) THEN
        PERFORM snp_other_territory(format('practitioners[%s].%s', idx, field),
            format('practitioner %s practises in another territory: their %s cannot change',
                   p.rpps, field));
    END IF;
END $$;

-- territory.import: 0008's import, once every commune and practitioner of
-- the request has passed the checks above.  0008's function is kept under
-- another name and called as it is, so that its upserts stay written once.
-- Sites and organisations were already the territory's own (looked up by
-- territory and name), and a practitioner is only ever joined to sites of
-- the importing territory.
CREATE OR REPLACE FUNCTION snp_import(p_territory text, p_actor text, p_role text, p_data jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    idx  bigint;
BEGIN
    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'communes', '[]'))
                            WITH ORDINALITY LOOP
        PERFORM snp_import_check_commune(p_territory, item, idx);
    END LOOP;
    FOR item, idx IN SELECT value, ordinality - 1
                       FROM jsonb_array_elements(coalesce(p_data -> 'practitioners', '[]'))
                            WITH ORDINALITY LOOP
        PERFORM snp_import_check_practitioner(p_territory, item, idx);
    END LOOP;
    RETURN snp_import_unchecked(p_territory, p_actor, p_role, p_data);
END $$;
