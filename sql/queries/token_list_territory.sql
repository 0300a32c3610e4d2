-- token.list: $1 territory, $2 state or NULL.  Never the hashes.
SELECT snp_token_list($1, $2)::text
