-- participation.precondition.list: $1 territory, $2 a gp's own (boolean),
-- $3 practitioner or NULL.  {"preconditions": [view...]}.
SELECT jsonb_build_object('preconditions', snp_precondition_list($1, $2::boolean, $3))::text
