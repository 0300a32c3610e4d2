-- shift.list: $1 territory, $2 first day, $3 last day (included), $4 site id
-- or NULL, $5 only unfilled (boolean), $6 a gp's RPPS (their own shifts) or
-- NULL.  {"shifts": [view...]} (snp_shift_list).
SELECT jsonb_build_object('shifts', snp_shift_list($1, $2::date, $3::date, $4::bigint,
                                                   $5::boolean, $6))::text
