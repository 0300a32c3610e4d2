-- Helpers shared by every concept: RFC 3339 times in a territory's time zone,
-- the role of an actor, territory settings, the error of a request field, and
-- the deadline of an urgency.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- An instant as RFC 3339 in a territory's time zone: 2026-12-01T14:00:00+01:00.
CREATE OR REPLACE FUNCTION snp_rfc3339(t timestamptz, tz text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE tz, 'YYYY-MM-DD"T"HH24:MI:SS') ||
           CASE WHEN off < interval '0' THEN '-' ELSE '+' END ||
           to_char(abs(extract(epoch FROM off))::int / 3600, 'FM00') || ':' ||
           to_char(abs(extract(epoch FROM off))::int % 3600 / 60, 'FM00')
      FROM (SELECT (t AT TIME ZONE tz) - (t AT TIME ZONE 'UTC') AS off) o
$$;

-- The role behind an actor recorded in the log ("token:12").
CREATE OR REPLACE FUNCTION snp_actor_role(p_actor text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT role FROM api_token WHERE 'token:' || id = p_actor), 'admin')
$$;

-- Applies a territory's settings patch (keys validated by the codec).
CREATE OR REPLACE FUNCTION snp_settings_update(p_territory text, p_patch jsonb, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v jsonb;
BEGIN
    UPDATE territory
       SET settings = settings || (p_patch - 'weights') ||
                      CASE WHEN p_patch ? 'weights'
                           THEN jsonb_build_object('weights', coalesce(settings -> 'weights',
                                                                        '{}'::jsonb) ||
                                                              (p_patch -> 'weights'))
                           ELSE '{}'::jsonb END
     WHERE id = p_territory
    RETURNING settings INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no territory %', p_territory USING ERRCODE = 'SN404';
    END IF;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, snp_actor_role(p_actor), 'settings.update',
            jsonb_build_object('territory', p_territory, 'patch', p_patch));
    RETURN v;
END $$;

-- An integer territory setting, or p_default when absent, not an integer,
-- or outside [p_min, p_max].
CREATE OR REPLACE FUNCTION snp_setting_int(p_territory text, p_key text, p_default int, p_min int,
                                p_max int) RETURNS int LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT CASE WHEN jsonb_typeof(settings -> p_key) = 'number'
                                  AND (settings ->> p_key)::numeric BETWEEN p_min AND p_max
                                  AND (settings ->> p_key)::numeric
                                      = trunc((settings ->> p_key)::numeric)
                                 THEN (settings ->> p_key)::int END
                       FROM territory WHERE id = p_territory), p_default)
$$;

-- Raises the error of a field at fault.
CREATE OR REPLACE FUNCTION snp_field_error(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = 'SN422', DETAIL = p_field;
END $$;

CREATE OR REPLACE FUNCTION snp_tz(p_territory text) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_zone text;
BEGIN
    SELECT time_zone INTO v_zone FROM territory WHERE id = p_territory;
    RETURN coalesce(v_zone, 'Europe/Paris');
END $$;

CREATE OR REPLACE FUNCTION snp_deadline(p_urgency text, p_tz text, p_now timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN CASE p_urgency
        WHEN 'same_day' THEN (date_trunc('day', p_now AT TIME ZONE p_tz) + interval '1 day')
                             AT TIME ZONE p_tz
        WHEN '24h' THEN p_now + interval '24 hours'
        ELSE p_now + interval '48 hours' END;
END $$;
