-- indicators.get gives each indicator its French label from the catalogue
-- (indicator_definition.label_fr, and the label of its breakdown value,
-- e.g. "Demandes reçues — pharmacie"), so that clients show the same words
-- as the monthly export instead of keeping their own list.  Same function as
-- in 0004 otherwise.
CREATE OR REPLACE FUNCTION snp_indicators_get(p_territory text, p_month text, p_actor text,
                                              p_role text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v json;
BEGIN
    SELECT json_build_object(
               'territory_id', p_territory, 'month', p_month,
               'indicators', coalesce(json_agg(json_strip_nulls(json_build_object(
                   'name', x.name, 'label', x.label, 'value', x.value,
                   'unit', CASE WHEN x.unit <> 'count' THEN x.unit END,
                   'definition_version', x.version)) ORDER BY x.rank), '[]'::json))
      INTO v
      FROM (SELECT row_number() OVER (ORDER BY i.key <> '', i.ord) AS rank, i.unit, i.version,
                   i.value,
                   i.code || CASE WHEN i.key = '' THEN ''
                                  ELSE '__' || lower(regexp_replace(i.key, '[^A-Za-z0-9_]', '_',
                                                                    'g')) END AS name,
                   left(i.label_fr || CASE WHEN i.key = '' THEN ''
                                           ELSE ' — ' || coalesce(i.key_label, i.key) END,
                        300) AS label
              FROM snp_indicator_table(p_territory, 'month', p_month) i
             WHERE NOT i.masked AND i.value IS NOT NULL
             ORDER BY 1 LIMIT 200) x;
    INSERT INTO audit (actor, role, action, detail)
    VALUES (p_actor, p_role, 'indicators.read',
            jsonb_build_object('territory', p_territory, 'period_kind', 'month',
                               'period', p_month));
    RETURN v;
END $$;
