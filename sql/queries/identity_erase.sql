-- Erases the patient identities past their erase_after: $1 actor, $2 most
-- rows per call.  Returns the number erased.
SELECT coalesce(sum(erased), 0)::bigint FROM snp_identity_erase($1, $2::int)
