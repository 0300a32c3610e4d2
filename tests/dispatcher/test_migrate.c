/* Migrations against a real PostgreSQL: order, once only, checksum changes
 * refused, failing migrations rolled back, concurrent runs, and the
 * `snpd migrate` command itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "dispatcher/migrate.h"
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

struct outcome {
    int result;
    char message[512];
    bool done;
};

static void on_done(struct migrate *m, int result, const char *message)
{
    struct outcome *o = m->data;
    o->result = result;
    snprintf(o->message, sizeof(o->message), "%s", message);
    o->done = true;
}

/* Runs `count` migration lists concurrently on one loop and checks that the
 * loop ends with no live handle. */
static void run_many(const struct snp_embedded_sql *list, int count, int runs, struct outcome *out)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct migrate m[4];
    for (int i = 0; i < runs; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        cr_assert_eq(migrate_start(&m[i], &loop, pg.conninfo, list, count, 10000, on_done), 0);
        m[i].data = &out[i];
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < runs; i++)
        cr_assert(out[i].done, "run %d never finished", i);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
}

static struct outcome run(const struct snp_embedded_sql *list, int count)
{
    struct outcome o;
    run_many(list, count, 1, &o);
    return o;
}

static const struct snp_embedded_sql two[] = {
    {"0001_a.sql", "CREATE TABLE a (x int PRIMARY KEY);"},
    {"0002_b.sql", "CREATE TABLE b (x int REFERENCES a (x)); INSERT INTO a VALUES (1);"},
};

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 60);

Test(migrate, applies_in_order_and_records_checksums)
{
    struct outcome o = run(two, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
    cr_assert(strstr(o.message, "2 applied"), "%s", o.message);
    /* 0002 references 0001's table: it only works in order. */
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM a"), 1);
    PGresult *r = pgtest_exec(&pg, "SELECT name, sha256 FROM schema_migration ORDER BY name");
    cr_assert_eq(PQntuples(r), 2);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "0001_a.sql");
    cr_assert_eq(strlen(PQgetvalue(r, 0, 1)), 64);
    PQclear(r);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_migration WHERE sha256 = "
                                  "encode(sha256(convert_to('CREATE TABLE a (x int PRIMARY "
                                  "KEY);', 'UTF8')), 'hex')"),
                 1);
}

Test(migrate, each_applied_once)
{
    cr_assert_eq(run(two, 2).result, MIGRATE_OK);
    struct outcome o = run(two, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
    cr_assert(strstr(o.message, "0 applied"), "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM a"), 1, "0002 ran twice");
    /* A new migration is applied on its own. */
    static const struct snp_embedded_sql three[] = {
        two[0], two[1], {"0003_c.sql", "INSERT INTO a VALUES (2);"}};
    o = run(three, 3);
    cr_assert(strstr(o.message, "1 applied"), "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM a"), 2);
}

Test(migrate, changed_migration_is_refused_and_nothing_applied)
{
    cr_assert_eq(run(two, 1).result, MIGRATE_OK);
    static const struct snp_embedded_sql changed[] = {
        {"0001_a.sql", "CREATE TABLE a (x bigint PRIMARY KEY);"}, two[1]};
    struct outcome o = run(changed, 2);
    cr_assert_eq(o.result, MIGRATE_CHECKSUM, "%s", o.message);
    cr_assert(strstr(o.message, "0001_a.sql was changed after it was applied"), "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0,
                 "0002 must not run after a checksum mismatch");
}

Test(migrate, unknown_applied_migration_is_refused)
{
    cr_assert_eq(run(two, 2).result, MIGRATE_OK);
    struct outcome o = run(two, 1);
    cr_assert_eq(o.result, MIGRATE_UNKNOWN, "%s", o.message);
    cr_assert(strstr(o.message, "0002_b.sql"), "%s", o.message);
}

Test(migrate, failing_migration_rolls_back)
{
    static const struct snp_embedded_sql failing[] = {
        two[0],
        {"0002_bad.sql", "CREATE TABLE b (x int); INSERT INTO a VALUES (7); SELECT 1/0;"},
        {"0003_never.sql", "CREATE TABLE never (x int);"},
    };
    struct outcome o = run(failing, 3);
    cr_assert_eq(o.result, MIGRATE_FAILED, "%s", o.message);
    cr_assert(strstr(o.message, "0002_bad.sql failed and was rolled back"), "%s", o.message);
    cr_assert(strstr(o.message, "division by zero"), "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM pg_tables WHERE tablename IN "
                                  "('b', 'never')"),
                 0);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM a"), 0);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_migration"), 1);
    /* Fixed, it then applies. */
    struct outcome fixed = run(two, 2);
    cr_assert_eq(fixed.result, MIGRATE_OK, "%s", fixed.message);
}

Test(migrate, concurrent_runs_apply_each_once)
{
    struct outcome o[3];
    run_many(two, 2, 3, o);
    int applied = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(o[i].result, MIGRATE_OK, "run %d: %s", i, o[i].message);
        applied += atoi(strstr(o[i].message, "(") + 1);
    }
    cr_assert_eq(applied, 2, "migrations applied %d times in all", applied);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM a"), 1);
}

Test(migrate, unreachable_database_gives_up)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct migrate m;
    struct outcome o = {0};
    cr_assert_eq(migrate_start(&m, &loop, "host=/nonexistent port=1 dbname=x", snp_migrations,
                               snp_migration_count, 500, on_done),
                 0);
    m.data = &o;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.result, MIGRATE_UNREACHABLE, "%s", o.message);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(migrate, embedded_schema_applies_and_snpd_migrate_command_works)
{
    const char *bin = getenv("SNPD_BINARY");
    cr_assert(bin);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>/dev/null", bin, pg.conninfo);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "snpd migrate failed");
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_migration"), snp_migration_count);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM pg_tables WHERE tablename = 'territory'"),
                 1);
    /* Tampering with a recorded checksum makes the command fail, with the
     * reason on standard error. */
    PQclear(pgtest_exec(&pg, "UPDATE schema_migration SET sha256 = repeat('0', 64) "
                             "WHERE name = '0001_reference.sql'"));
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>&1 | grep -q 'was changed after'",
             bin, pg.conninfo);
    cr_assert_eq(system(cmd), 0, "no checksum message");
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>/dev/null", bin, pg.conninfo);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}
