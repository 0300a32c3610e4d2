-- The national SAS platform reads a territory's free slots through FHIR
-- (issue 12, docs/fhir.md).
--
-- 1. The platform shows a CPTS's slots under the CPTS as an organisation,
--    identified by its FINESS number (9 characters; the FHIR answer prefixes
--    it with 1 as the platform requires).  Corsican FINESS numbers (2A, 2B)
--    cannot take that prefix and are refused here.  NULL: the territory has
--    none (a SAS, or a CPTS not registered yet), and its slots are shown
--    without the CPTS.
ALTER TABLE territory ADD COLUMN finess text CHECK (finess ~ '^[0-9]{9}$');

-- 2. A token role for the platform's accounts: each is confined to its
--    territory like every token, and may only search that territory's slots
--    over FHIR.  It names neither a practitioner nor an organisation.
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_role_check
    CHECK (role IN ('gp', 'pharmacy', 'emergency', 'sas', 'professional', 'desk', 'coordinator',
                    'admin', 'platform'));
