-- The append-only guards of event and audit, and the territory an audit row
-- belongs to.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

CREATE OR REPLACE FUNCTION snp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;

-- Audit rows may only be removed by the retention job (issue 6), which sets
-- snp.audit_retention for its own transaction.
CREATE OR REPLACE FUNCTION snp_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('snp.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit is append-only' USING ERRCODE = '42501';
END $$;

-- The territory an audit row belongs to: its request's, its token's, or
-- the one named in its detail; NULL for rows of no territory.
CREATE OR REPLACE FUNCTION snp_audit_territory(a audit) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT r.territory_id FROM request r WHERE r.id = a.request_id),
                    (SELECT k.territory_id FROM api_token k WHERE 'token:' || k.id = a.actor),
                    a.detail ->> 'territory')
$$;
