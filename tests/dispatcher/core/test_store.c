/* The row types of the store against a real PostgreSQL: every query that
 * returns slots or open requests to snpd names the columns that
 * store_slot_cols and store_request_cols look for (described, not run, on
 * the migrated schema), and the slot's stored audience bits (0031) are the
 * model's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dispatcher/core/model.h"
#include "dispatcher/core/store.h"
#include "dispatcher/db/migrate.h"
#include "sql_queries.h"
#include "tests/support/pgtest.h"

static struct pgtest pg;

static void setup(void)
{
    pgtest_create(&pg);
}

static void teardown(void)
{
    pgtest_drop(&pg);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

static void on_migrated(struct migrate *m, int result, const char *message)
{
    int *out = m->data;
    *out = result;
    if (result != MIGRATE_OK)
        fprintf(stderr, "migrate: %s\n", message);
}

static void migrate_schema(void)
{
    uv_loop_t loop;
    struct migrate m;
    int result = -1;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(migrate_start(&m, &loop, pg.conninfo, snp_migrations, snp_migration_count,
                               snp_functions, snp_function_count, 10000, on_migrated),
                 0);
    m.data = &result;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    cr_assert_eq(result, MIGRATE_OK);
}

/* The columns `query` would return, without running it. */
static PGresult *describe(enum sql_id query)
{
    PGresult *res = PQprepare(pg.conn, sql_name[query], sql_text[query], 0, NULL);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql_name[query],
                 PQresultErrorMessage(res));
    PQclear(res);
    res = PQdescribePrepared(pg.conn, sql_name[query]);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql_name[query],
                 PQresultErrorMessage(res));
    return res;
}

Test(store, every_query_returning_slots_or_requests_names_their_columns)
{
    migrate_schema();
    static const enum sql_id slots[] = {SQL_LOAD_SLOTS, SQL_LOAD_SLOTS_PAGE, SQL_SLOT_GET,
                                        SQL_SLOTS_PUBLISH};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        PGresult *res = describe(slots[i]);
        struct store_slot_cols cols;
        cr_assert(store_slot_cols(res, sql_name[slots[i]], &cols), "%s", sql_name[slots[i]]);
        PQclear(res);
    }
    static const enum sql_id requests[] = {SQL_LOAD_REQUESTS, SQL_REQUEST_GET_OPEN};
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        PGresult *res = describe(requests[i]);
        struct store_request_cols cols;
        cr_assert(store_request_cols(res, sql_name[requests[i]], &cols), "%s",
                  sql_name[requests[i]]);
        PQclear(res);
    }
}

/* The generation expression of slot.audience_bits, evaluated for each
 * audience alone and for all six, gives model.h's bits: the start-up's
 * pages read the bits, everything else the names. */
Test(store, the_stored_audience_bits_are_the_model_bits)
{
    migrate_schema();
    PGresult *res = pgtest_exec(&pg, "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
                                     " JOIN pg_attribute a ON a.attrelid = d.adrelid"
                                     " AND a.attnum = d.adnum WHERE d.adrelid = 'slot'::regclass"
                                     " AND a.attname = 'audience_bits'");
    cr_assert_eq(PQntuples(res), 1, "slot.audience_bits has no generation expression");
    char *expr = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    static const char *const names[] = {"sas",          "emergency", "pharmacy",
                                        "professional", "desk",      "public"};
    uint8_t all = 0;
    char sql[2048];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        uint8_t bit = 0;
        cr_assert(model_audience_parse(names[i], &bit), "%s", names[i]);
        all |= bit;
        snprintf(sql, sizeof(sql), "SELECT %s FROM (SELECT ARRAY['%s'] AS audience) x", expr,
                 names[i]);
        cr_expect_eq(pgtest_long(&pg, sql), bit, "audience %s", names[i]);
    }
    cr_assert_eq(all, AUD_ALL);
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM (SELECT ARRAY['sas', 'emergency', 'pharmacy', 'professional',"
             " 'desk', 'public'] AS audience) x",
             expr);
    cr_expect_eq(pgtest_long(&pg, sql), AUD_ALL);
    free(expr);
}
