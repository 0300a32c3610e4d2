/* snpbench setup: writes the benchmark territory as SQL, and the secrets of
 * its pharmacy tokens, one a line.
 *
 * The territory "bench-t" has ten communes around Redon, `gps` general
 * practitioners with one practice each, `pharmacies` pharmacies, `slots`
 * free slots of 20 minutes spread evenly over the 45 hours that start one
 * hour after loading (so that they are all before the 48 h deadline of a
 * request made during the run, and none starts during it), and `tokens`
 * pharmacy tokens (token i acts for pharmacy i modulo `pharmacies`).  Nine
 * slots in ten are open to pharmacies; modes are eight in ten office, one
 * home, one teleconsultation.  On request, it also has a SAS organisation
 * with `watchers` sas tokens (the capacity watchers of bench/push.c) and a
 * token of the first practitioner (who publishes the slots there).
 *
 * Slot times are computed by the database from now() when the SQL runs.
 * Slots are inserted directly rather than through snp_slots_publish: their
 * publication events are not what is being measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "bench/bench.h"
#include "dispatcher/core/token.h"

#define WINDOW_MIN 2700 /* 45 hours */
#define LEAD_MIN   60
#define TOKEN_ROWS 1000 /* token rows per INSERT */

/* The SAS organisation whose tokens watch the territory's capacity. */
#define WATCHERS_ORG "SAS de mesure"

/* Draws `n` tokens of `role`, writes their secrets to `tok`, one a line,
 * and to `sql` the INSERTs of their hashes, TOKEN_ROWS rows each.
 * `organisation` and `rpps` are SQL expressions of each row's number v.n
 * (0 ... n - 1) for the token's organisation and practitioner.  Returns
 * false when a token cannot be drawn. */
static bool write_tokens(FILE *sql, FILE *tok, long n, const char *role, const char *organisation,
                         const char *rpps)
{
    for (long i = 0; i < n; i++) {
        char secret[TOKEN_SECRET_SIZE];
        uint8_t hash[DIGEST_SHA256_LEN];
        char hex[DIGEST_SHA256_HEX_LEN];
        if (!token_generate(secret, hash)) {
            fprintf(stderr, "snpbench setup: cannot draw a token\n");
            return false;
        }
        digest_hex(hash, sizeof(hash), hex);
        fprintf(tok, "%s\n", secret);
        if (i % TOKEN_ROWS == 0)
            fprintf(sql,
                    "INSERT INTO api_token (secret_sha256, role, territory_id, "
                    "organisation_id, rpps, label)\n"
                    "SELECT decode(v.h, 'hex'), '%s', '" BENCH_TERRITORY "',\n"
                    "       %s,\n"
                    "       %s, 'bench-%s-' || v.n\n"
                    "  FROM (VALUES\n",
                    role, organisation, rpps, role);
        bool last = i % TOKEN_ROWS == TOKEN_ROWS - 1 || i == n - 1;
        fprintf(sql, "    ('%s', %ld)%s\n", hex, i, last ? "" : ",");
        if (last)
            fprintf(sql, "  ) AS v (h, n);\n");
    }
    return true;
}

int bench_setup(int argc, char **argv)
{
    long slots = 20000, gps = 200, pharmacies = 500, ntokens = 10000, watchers = 0;
    const char *sql_path = NULL, *tokens_path = NULL, *watchers_path = NULL, *gp_path = NULL,
               *platform_path = NULL;
    bool bulk = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--bulk") == 0) {
            bulk = true;
            continue;
        }
        if (!v)
            goto usage;
        if (strcmp(a, "--slots") == 0)
            slots = bench_parse_long(a, v, 1, 1000000);
        else if (strcmp(a, "--gps") == 0)
            gps = bench_parse_long(a, v, 1, 100000);
        else if (strcmp(a, "--pharmacies") == 0)
            pharmacies = bench_parse_long(a, v, 1, 9999999);
        else if (strcmp(a, "--tokens") == 0)
            ntokens = bench_parse_long(a, v, 1, 1000000);
        else if (strcmp(a, "--sql") == 0)
            sql_path = v;
        else if (strcmp(a, "--tokens-file") == 0)
            tokens_path = v;
        else if (strcmp(a, "--watchers") == 0)
            watchers = bench_parse_long(a, v, 1, 1000000);
        else if (strcmp(a, "--watchers-file") == 0)
            watchers_path = v;
        else if (strcmp(a, "--gp-token-file") == 0)
            gp_path = v;
        else if (strcmp(a, "--platform-token-file") == 0)
            platform_path = v;
        else
            goto usage;
        i++;
    }
    if (!sql_path || !tokens_path || (!watchers) != (!watchers_path))
        goto usage;

    FILE *sql = fopen(sql_path, "w");
    FILE *tok = fopen(tokens_path, "w");
    if (!sql || !tok) {
        perror("snpbench setup");
        return 1;
    }
    long per_gp = (slots + gps - 1) / gps;
    long every = WINDOW_MIN / per_gp;
    if (every < 1) {
        fprintf(stderr, "snpbench setup: %ld slots per practitioner do not fit in 45 hours\n",
                per_gp);
        return 2;
    }

    fprintf(sql,
            "-- Generated by snpbench setup: the benchmark territory.\n"
            "BEGIN;\n"
            "INSERT INTO territory (id, name, kind, settings)\n"
            "VALUES ('" BENCH_TERRITORY "', 'Territoire de mesure', 'cpts', '{}');\n"
            "INSERT INTO commune (insee, name, postal_code, latitude, longitude)\n"
            "VALUES ('35236', 'Redon', '35600', 47.6514, -2.0840);\n"
            "INSERT INTO commune (insee, name, postal_code, latitude, longitude)\n"
            "SELECT (35900 + i)::text, 'Commune ' || i, '35600', 47.6514 + (i %% 3 - 1) * 0.05,\n"
            "       -2.0840 + (i / 3 - 1) * 0.07\n"
            "  FROM generate_series(1, 9) i;\n"
            "INSERT INTO territory_commune\n"
            "SELECT '" BENCH_TERRITORY "', insee FROM commune WHERE insee = '35236' OR insee LIKE "
            "'359%%';\n"
            "INSERT INTO practitioner (rpps, family_name, given_name)\n"
            "SELECT '8' || lpad(g::text, 10, '0'), 'Medecin ' || g, 'Bench'\n"
            "  FROM generate_series(1, %ld) g;\n"
            "INSERT INTO territory_practitioner\n"
            "SELECT '" BENCH_TERRITORY "', '8' || lpad(g::text, 10, '0') FROM generate_series(1, "
            "%ld) g;\n"
            "INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude, "
            "longitude)\n"
            "SELECT '" BENCH_TERRITORY "', 'practice', 'Cabinet ' || g, g || ' rue de la Mesure',\n"
            "       c.insee, c.latitude + (g %% 7) * 0.002, c.longitude - (g %% 5) * 0.002\n"
            "  FROM generate_series(1, %ld) g\n"
            "  JOIN commune c ON c.insee = CASE WHEN g %% 10 = 0 THEN '35236'\n"
            "                                   ELSE (35900 + g %% 10)::text END;\n"
            "INSERT INTO practitioner_site\n"
            "SELECT '8' || lpad(g::text, 10, '0'), s.id\n"
            "  FROM generate_series(1, %ld) g JOIN site s ON s.name = 'Cabinet ' || g;\n"
            "INSERT INTO organisation (territory_id, kind, name, finess, commune_insee)\n"
            "SELECT '" BENCH_TERRITORY "', 'pharmacy', 'Pharmacie ' || i, '35' || lpad(i::text, "
            "7, '0'),\n"
            "       CASE WHEN i %% 10 = 0 THEN '35236' ELSE (35900 + i %% 10)::text END\n"
            "  FROM generate_series(1, %ld) i;\n",
            gps, gps, gps, gps, pharmacies);

    /* Ordered by round (k), so that slot ids grow with time, roughly.  In
     * bulk, the slot triggers are off for the INSERT: no notification per
     * slot (a million of them would fill PostgreSQL's queue for nothing:
     * snpd is not running yet) and no foreign-key check (the rows join
     * what was just inserted).  That needs a superuser. */
    if (bulk)
        fprintf(sql, "SET LOCAL session_replication_role = replica;\n");
    fprintf(sql,
            "INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode, "
            "audience,\n"
            "                  published_by)\n"
            "SELECT '" BENCH_TERRITORY "', s.id, '8' || lpad(g::text, 10, '0'),\n"
            "       date_trunc('minute', now()) + make_interval(mins => %d + (g %% %ld) + k * "
            "%ld),\n"
            "       20,\n"
            "       CASE WHEN (g + k) %% 10 = 0 THEN 'teleconsultation'\n"
            "            WHEN (g + k) %% 10 = 5 THEN 'home' ELSE 'office' END,\n"
            "       CASE WHEN (g * 7 + k) %% 10 = 3 THEN '{sas,desk}'\n"
            "            ELSE '{sas,emergency,pharmacy,desk}' END::text[],\n"
            "       'bench'\n"
            "  FROM generate_series(0, %ld) k CROSS JOIN generate_series(1, %ld) g\n"
            "  JOIN site s ON s.name = 'Cabinet ' || g\n"
            " WHERE k * %ld + g <= %ld\n"
            " ORDER BY k, g;\n",
            LEAD_MIN, every, every, per_gp - 1, gps, gps, slots);
    if (bulk)
        fprintf(sql, "SET LOCAL session_replication_role = origin;\n");

    /* Tokens: the pharmacies', then the capacity watchers' and the
     * practitioner's when asked for. */
    char org[160];
    snprintf(org, sizeof(org),
             "(SELECT id FROM organisation WHERE territory_id = '" BENCH_TERRITORY "'\n"
             "           AND name = 'Pharmacie ' || (v.n %% %ld + 1))",
             pharmacies);
    if (!write_tokens(sql, tok, ntokens, "pharmacy", org, "NULL"))
        return 1;
    if (watchers_path) {
        fprintf(sql, "INSERT INTO organisation (territory_id, kind, name, finess, commune_insee)\n"
                     "VALUES ('" BENCH_TERRITORY "', 'sas', '" WATCHERS_ORG "', '359999999', "
                     "'35236');\n");
        FILE *w = fopen(watchers_path, "w");
        if (!w ||
            !write_tokens(sql, w, watchers, "sas",
                          "(SELECT id FROM organisation WHERE territory_id = '" BENCH_TERRITORY
                          "'\n           AND name = '" WATCHERS_ORG "')",
                          "NULL") ||
            fclose(w) != 0) {
            perror("snpbench setup");
            return 1;
        }
    }
    if (gp_path) {
        FILE *g = fopen(gp_path, "w");
        if (!g || !write_tokens(sql, g, 1, "gp", "NULL", "'" BENCH_GP_RPPS "'") || fclose(g) != 0) {
            perror("snpbench setup");
            return 1;
        }
    }
    if (platform_path) {
        /* The SAS platform's account, and the FINESS its answers show. */
        fprintf(sql, "UPDATE territory SET finess = '350099990' WHERE id = '%s';\n",
                BENCH_TERRITORY);
        FILE *p = fopen(platform_path, "w");
        if (!p || !write_tokens(sql, p, 1, "platform", "NULL", "NULL") || fclose(p) != 0) {
            perror("snpbench setup");
            return 1;
        }
    }
    fprintf(sql, "COMMIT;\n");
    if (fclose(sql) != 0 || fclose(tok) != 0) {
        perror("snpbench setup");
        return 1;
    }
    return 0;

usage:
    fprintf(stderr,
            "usage: snpbench setup --sql FILE --tokens-file FILE [--slots N] [--gps N]\n"
            "                      [--pharmacies N] [--tokens N] [--bulk]\n"
            "                      [--watchers N --watchers-file FILE] [--gp-token-file FILE]\n"
            "                      [--platform-token-file FILE]\n"
            "  --bulk           insert the slots with their triggers off (no notification,\n"
            "                   no foreign-key check: a million slots load in seconds)\n"
            "  --watchers       sas tokens of one SAS organisation, to watch the capacity\n"
            "  --gp-token-file  a token of the first practitioner (" BENCH_GP_RPPS "),\n"
            "                   who practises at 'Cabinet 1'\n"
            "  --platform-token-file  a token of the SAS platform (FHIR slot search), and a\n"
            "                   FINESS for the territory\n");
    return 2;
}
