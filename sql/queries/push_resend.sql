-- push.resend: $1 territory, $2 actor, $3 role, $4 push id.
-- {"push_id": id, "requeued": n} (snp_push_resend, migration 0025).
SELECT snp_push_resend($1, $2, $3, $4::bigint)::text
