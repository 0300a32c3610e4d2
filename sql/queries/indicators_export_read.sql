-- The protocol's indicators.export: the document of a period, with the
-- audit row of the extraction written in the same statement (the action of
-- snpd indicators, with the caller's role): $1 territory, $2 period kind,
-- $3 period, $4 format, $5 actor, $6 role.
WITH audited AS (
    INSERT INTO audit (actor, role, action, detail)
    VALUES ($5, $6, 'indicators.export',
            jsonb_build_object('territory', $1::text, 'period_kind', $2::text,
                               'period', $3::text, 'format', $4::text))
)
SELECT snp_indicators_document($1, $2, $3)::text
