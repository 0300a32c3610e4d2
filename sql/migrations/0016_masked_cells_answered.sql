-- indicators.get answers the masked cells as masked (issue 15, section 5):
-- until now it left them out (0011: WHERE NOT i.masked), so a coordinator
-- whose territory made 3 requests from one commune saw that row vanish and
-- believed nothing was counted.  The answer keeps its "indicators" as they
-- were (old clients read them unchanged) and adds "masked" (protocol 1.2.0):
-- each masked cell by name and label, with its reason — "small_count", the
-- cell describes from 1 to below - 1 patients, or "complementary", hidden so
-- that a small cell cannot be recomputed from the total (docs/indicators.md,
-- "Masking") — never its value.
--
-- The function of 0011 is kept under another name and wrapped, rather than
-- copied here to add one member: it still writes the one audit row.
ALTER FUNCTION snp_indicators_get(text, text, text, text)
    RENAME TO snp_indicators_get_unmasked_only;

CREATE FUNCTION snp_indicators_get(p_territory text, p_month text, p_actor text,
                                   p_role text)
RETURNS json LANGUAGE sql AS $$
    SELECT (snp_indicators_get_unmasked_only(p_territory, p_month, p_actor, p_role)::jsonb
            || jsonb_build_object('masked', coalesce((
                SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                           'name', x.name, 'label', x.label,
                           'reason', x.reason, 'below', x.below,
                           'definition_version', x.version)) ORDER BY x.ord)
                  FROM (SELECT i.ord, i.version,
                               i.code || CASE WHEN i.key = '' THEN ''
                                              ELSE '__' || lower(regexp_replace(
                                                      i.key, '[^A-Za-z0-9_]', '_', 'g')) END
                                   AS name,
                               left(i.label_fr || CASE WHEN i.key = '' THEN ''
                                                       ELSE ' — ' || coalesce(i.key_label, i.key)
                                                  END, 300) AS label,
                               CASE WHEN i.value_text LIKE '<%' THEN 'small_count'
                                    ELSE 'complementary' END AS reason,
                               CASE WHEN i.value_text LIKE '<%'
                                    THEN substr(i.value_text, 2)::int END AS below
                          FROM snp_indicator_table(p_territory, 'month', p_month) i
                         WHERE i.masked
                         ORDER BY i.ord LIMIT 200) x), '[]'::jsonb)))::json
$$;
