-- Slots: publication, withdrawal and their view.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Publishes slots (a JSON array of {start, duration_min, mode, audience,
-- motifs, min_age, max_age, release_minutes}) at one site, for one
-- practitioner or for the site's shift (p_rpps NULL).  Slots colliding with
-- an existing one are skipped; the inserted ones are returned.
CREATE OR REPLACE FUNCTION snp_slots_publish(p_territory text, p_site bigint, p_rpps text, p_actor text,
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
CREATE OR REPLACE FUNCTION snp_slot_withdraw(p_slot bigint, p_territory text, p_rpps text, p_actor text)
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

CREATE OR REPLACE FUNCTION snp_slot_view(s slot) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'slot_id', s.id, 'status', s.status,
        'start', snp_rfc3339(s.starts_at, snp_tz(s.territory_id)),
        'end', snp_rfc3339(s.starts_at + make_interval(mins => s.duration_min),
                           snp_tz(s.territory_id)),
        'duration_min', s.duration_min, 'mode', s.mode, 'audiences', to_jsonb(s.audience),
        'practitioner', (SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                                                   'given_name', p.given_name)
                           FROM practitioner p WHERE p.rpps = s.rpps),
        'site', (SELECT jsonb_strip_nulls(jsonb_build_object(
                     'site_id', si.id, 'kind', si.kind, 'name', si.name, 'address', si.address,
                     'commune_insee', si.commune_insee, 'commune_name', c.name,
                     'postal_code', c.postal_code, 'phone', si.phone,
                     'latitude', si.latitude, 'longitude', si.longitude))
                   FROM site si JOIN commune c ON c.insee = si.commune_insee
                  WHERE si.id = s.site_id),
        'release_minutes', s.release_minutes,
        'released_at', snp_rfc3339(s.released_at, snp_tz(s.territory_id))))
$$;
