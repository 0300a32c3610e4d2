-- Reference data of a territory: who works where, who may ask for slots,
-- and the access tokens that identify every caller.  Patient data and the
-- dispatch flow live in 0002.

CREATE TABLE territory (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('cpts', 'sas')),
    time_zone   text NOT NULL DEFAULT 'Europe/Paris',
    -- Tunables read by snpd (hold duration, ranking weights, delays); the
    -- keys and their defaults are documented in docs/dispatch.md.
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A territory may borrow capacity from its neighbours (a CPTS from the next
-- one, a SAS from the CPTS of its département).
CREATE TABLE territory_neighbour (
    territory_id text NOT NULL REFERENCES territory (id),
    neighbour_id text NOT NULL REFERENCES territory (id),
    PRIMARY KEY (territory_id, neighbour_id),
    CHECK (territory_id <> neighbour_id)
);

-- Communes are national reference data; territories overlap (a SAS covers the
-- communes of several CPTS), hence the link table.
CREATE TABLE commune (
    insee       text PRIMARY KEY CHECK (insee ~ '^([0-9]{5}|2[AB][0-9]{3})$'),
    name        text NOT NULL,
    postal_code text CHECK (postal_code ~ '^[0-9]{5}$'),
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180)
);

CREATE TABLE territory_commune (
    territory_id text NOT NULL REFERENCES territory (id),
    insee        text NOT NULL REFERENCES commune (insee),
    PRIMARY KEY (territory_id, insee)
);

-- RPPS numbers are 11 digits with a Luhn check digit; snpd validates the
-- checksum before inserting, the database guards the shape.
CREATE TABLE practitioner (
    rpps                 text PRIMARY KEY CHECK (rpps ~ '^[0-9]{11}$'),
    family_name          text NOT NULL,
    given_name           text NOT NULL,
    profession           text NOT NULL DEFAULT 'medecin',
    specialty            text NOT NULL DEFAULT 'SM54',
    accepts_new_patients boolean NOT NULL DEFAULT false
);

CREATE TABLE territory_practitioner (
    territory_id text NOT NULL REFERENCES territory (id),
    rpps         text NOT NULL REFERENCES practitioner (rpps),
    PRIMARY KEY (territory_id, rpps)
);

CREATE TABLE site (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id  text NOT NULL REFERENCES territory (id),
    kind          text NOT NULL CHECK (kind IN ('practice', 'csnp', 'teleconsultation')),
    name          text NOT NULL,
    address       text NOT NULL,
    commune_insee text NOT NULL REFERENCES commune (insee),
    latitude      double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    phone         text,
    UNIQUE (territory_id, name)
);

CREATE TABLE practitioner_site (
    rpps    text NOT NULL REFERENCES practitioner (rpps),
    site_id bigint NOT NULL REFERENCES site (id),
    PRIMARY KEY (rpps, site_id)
);

-- Requester organisations: identified by FINESS (establishments) or by the
-- RPPS of the professional who runs them.
CREATE TABLE organisation (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id  text NOT NULL REFERENCES territory (id),
    kind          text NOT NULL
                  CHECK (kind IN ('pharmacy', 'emergency', 'sas', 'professional', 'desk')),
    name          text NOT NULL,
    finess        text CHECK (finess ~ '^[0-9][0-9AB][0-9]{7}$'),
    rpps          text CHECK (rpps ~ '^[0-9]{11}$'),
    commune_insee text NOT NULL REFERENCES commune (insee),
    CHECK (finess IS NOT NULL OR rpps IS NOT NULL),
    UNIQUE (territory_id, name)
);

-- Bearer tokens.  Only the SHA-256 of the secret is kept; the secret is shown
-- once, when the token is created.
CREATE TABLE api_token (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_sha256   bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    role            text NOT NULL CHECK (role IN ('gp', 'pharmacy', 'emergency', 'sas',
                                                  'professional', 'desk', 'coordinator', 'admin')),
    territory_id    text NOT NULL REFERENCES territory (id),
    rpps            text REFERENCES practitioner (rpps),
    organisation_id bigint REFERENCES organisation (id),
    label           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz,
    CHECK (role <> 'gp' OR rpps IS NOT NULL),
    CHECK (role NOT IN ('pharmacy', 'emergency', 'sas', 'professional', 'desk')
           OR organisation_id IS NOT NULL)
);

-- A token's practitioner or organisation must belong to its territory, and a
-- requester token must name an organisation of its own kind: a pharmacy token
-- acts for a pharmacy.
CREATE FUNCTION api_token_check() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER api_token_check BEFORE INSERT OR UPDATE OF rpps, organisation_id, role,
    territory_id ON api_token FOR EACH ROW EXECUTE FUNCTION api_token_check();
