/* Migrations against a real PostgreSQL: order, once only, checksum changes
 * refused, failing migrations rolled back, concurrent runs, the function
 * files applied after them when they change, and the `snpd migrate` command
 * itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "dispatcher/db/migrate.h"
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

/* Runs `runs` migration runs of the same lists concurrently on one loop and
 * checks that the loop ends with no live handle. */
static void run_many_with(const struct snp_embedded_sql *list, int count,
                          const struct snp_embedded_sql *functions, int function_count, int runs,
                          struct outcome *out)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct migrate m[4];
    for (int i = 0; i < runs; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        cr_assert_eq(migrate_start(&m[i], &loop, pg.conninfo, list, count, functions,
                                   function_count, 10000, on_done),
                     0);
        m[i].data = &out[i];
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < runs; i++)
        cr_assert(out[i].done, "run %d never finished", i);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
}

static void run_many(const struct snp_embedded_sql *list, int count, int runs, struct outcome *out)
{
    run_many_with(list, count, NULL, 0, runs, out);
}

static struct outcome run(const struct snp_embedded_sql *list, int count)
{
    struct outcome o;
    run_many(list, count, 1, &o);
    return o;
}

static struct outcome run_with(const struct snp_embedded_sql *list, int count,
                               const struct snp_embedded_sql *functions, int function_count)
{
    struct outcome o;
    run_many_with(list, count, functions, function_count, 1, &o);
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
                               snp_migration_count, snp_functions, snp_function_count, 500,
                               on_done),
                 0);
    m.data = &o;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.result, MIGRATE_UNREACHABLE, "%s", o.message);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* snpd trusts the text it reads from the database to be UTF-8: a database
 * that does not check it (SQL_ASCII), or that holds another encoding, is
 * refused before anything is applied. */
Test(migrate, a_database_not_in_utf8_is_refused_untouched)
{
    const char *const encodings[] = {"SQL_ASCII", "LATIN1"};
    for (size_t i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
        struct pgtest other;
        char options[128];
        snprintf(options, sizeof(options),
                 "ENCODING '%s' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'", encodings[i]);
        pgtest_create_with(&other, options);
        uv_loop_t loop;
        cr_assert_eq(uv_loop_init(&loop), 0);
        struct migrate m;
        struct outcome o = {0};
        cr_assert_eq(migrate_start(&m, &loop, other.conninfo, two, 2, NULL, 0, 10000, on_done), 0);
        m.data = &o;
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(uv_loop_close(&loop), 0);
        cr_assert_eq(o.result, MIGRATE_ENCODING, "%s: %s", encodings[i], o.message);
        cr_assert(strstr(o.message, encodings[i]) && strstr(o.message, "UTF8"), "%s", o.message);
        cr_assert_eq(pgtest_long(&other, "SELECT count(*) FROM pg_tables WHERE tablename IN "
                                         "('a', 'schema_migration')"),
                     0, "%s: something was applied", encodings[i]);
        pgtest_drop(&other);
    }
    /* The suite's own database is UTF8 and goes through. */
    cr_assert_eq(run(two, 2).result, MIGRATE_OK);
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

/* --- function files ------------------------------------------------------------- */

/* a_count() is a SQL function: its body is checked when it is created, so it
 * can only be created once migration 0001 made table a. */
static const struct snp_embedded_sql functions_v1[] = {
    {"a.sql", "CREATE OR REPLACE FUNCTION a_count() RETURNS bigint LANGUAGE sql STABLE AS "
              "$$ SELECT count(*) FROM a $$;"},
    {"b.sql", "CREATE OR REPLACE FUNCTION b_version() RETURNS int LANGUAGE sql IMMUTABLE AS "
              "$$ SELECT 1 $$;"},
};

/* The same files with b.sql changed. */
static const struct snp_embedded_sql functions_v2[] = {
    {"a.sql", "CREATE OR REPLACE FUNCTION a_count() RETURNS bigint LANGUAGE sql STABLE AS "
              "$$ SELECT count(*) FROM a $$;"},
    {"b.sql", "CREATE OR REPLACE FUNCTION b_version() RETURNS int LANGUAGE sql IMMUTABLE AS "
              "$$ SELECT 2 $$;"},
};

/* The number of function files a finished run says it applied. */
static int functions_applied(const struct outcome *o)
{
    const char *p = strstr(o->message, "; ");
    cr_assert(p && strstr(p, "function files applied"), "%s", o->message);
    return atoi(p + 2);
}

static long b_version(void)
{
    return pgtest_long(&pg, "SELECT b_version()");
}

Test(migrate, function_files_applied_after_migrations_and_recorded)
{
    struct outcome o = run_with(two, 2, functions_v1, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
    cr_assert(strstr(o.message, "2 applied"), "%s", o.message);
    cr_assert_eq(functions_applied(&o), 2, "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT a_count()"), 1);
    cr_assert_eq(b_version(), 1);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function WHERE name = 'a.sql' AND "
                                  "sha256 = encode(sha256(convert_to('CREATE OR REPLACE FUNCTION "
                                  "a_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT "
                                  "count(*) FROM a $$;', 'UTF8')), 'hex')"),
                 1);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function"), 2);
}

Test(migrate, unchanged_function_files_are_skipped)
{
    cr_assert_eq(run_with(two, 2, functions_v1, 2).result, MIGRATE_OK);
    PQclear(pgtest_exec(&pg, "UPDATE schema_function SET applied_at = '2000-01-01'"));
    struct outcome o = run_with(two, 2, functions_v1, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
    cr_assert_eq(functions_applied(&o), 0, "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function "
                                  "WHERE applied_at = '2000-01-01'"),
                 2, "an unchanged file was applied again");
}

Test(migrate, changed_function_file_is_applied_again)
{
    cr_assert_eq(run_with(two, 2, functions_v1, 2).result, MIGRATE_OK);
    PQclear(pgtest_exec(&pg, "UPDATE schema_function SET applied_at = '2000-01-01'"));
    struct outcome o = run_with(two, 2, functions_v2, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
    cr_assert_eq(functions_applied(&o), 1, "%s", o.message);
    cr_assert_eq(b_version(), 2, "the new body is not in force");
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function WHERE name = 'a.sql' "
                                  "AND applied_at = '2000-01-01'"),
                 1, "the unchanged a.sql was applied again");
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function WHERE name = 'b.sql' "
                                  "AND applied_at > '2000-01-01' AND sha256 = encode(sha256("
                                  "convert_to('CREATE OR REPLACE FUNCTION b_version() RETURNS "
                                  "int LANGUAGE sql IMMUTABLE AS $$ SELECT 2 $$;', 'UTF8')), "
                                  "'hex')"),
                 1, "b.sql's new checksum is not recorded");
    /* A new migration in a later release still runs before the files. */
    static const struct snp_embedded_sql three[] = {
        two[0], two[1], {"0003_c.sql", "INSERT INTO a VALUES (2);"}};
    o = run_with(three, 3, functions_v2, 2);
    cr_assert(strstr(o.message, "(1 applied now; 0 function files"), "%s", o.message);
}

Test(migrate, failing_function_file_rolls_back_and_keeps_the_previous_body)
{
    cr_assert_eq(run_with(two, 2, functions_v1, 2).result, MIGRATE_OK);
    static const struct snp_embedded_sql failing[] = {
        {"a.sql", "CREATE OR REPLACE FUNCTION a_count() RETURNS bigint LANGUAGE sql STABLE AS "
                  "$$ SELECT count(*) FROM no_such_table $$;"},
        {"b.sql", "CREATE OR REPLACE FUNCTION b_version() RETURNS int LANGUAGE sql IMMUTABLE AS "
                  "$$ SELECT 3 $$;"},
    };
    static const struct snp_embedded_sql failing_late[] = {
        functions_v1[0],
        {"b.sql", "CREATE OR REPLACE FUNCTION b_version() RETURNS int LANGUAGE sql IMMUTABLE AS "
                  "$$ SELECT 3 $$; SELECT 1/0;"},
    };
    /* The first file fails: the run stops there and b.sql is not applied. */
    struct outcome o = run_with(two, 2, failing, 2);
    cr_assert_eq(o.result, MIGRATE_FAILED, "%s", o.message);
    cr_assert(strstr(o.message, "function file a.sql failed and was rolled back"), "%s", o.message);
    cr_assert(strstr(o.message, "no_such_table"), "%s", o.message);
    cr_assert_eq(pgtest_long(&pg, "SELECT a_count()"), 1, "a_count lost its previous body");
    cr_assert_eq(b_version(), 1, "b.sql ran after a failing file");
    /* A file whose function was replaced before a later statement failed
     * keeps its previous body and checksum. */
    o = run_with(two, 2, failing_late, 2);
    cr_assert_eq(o.result, MIGRATE_FAILED, "%s", o.message);
    cr_assert(strstr(o.message, "function file b.sql failed and was rolled back"), "%s", o.message);
    cr_assert(strstr(o.message, "division by zero"), "%s", o.message);
    cr_assert_eq(b_version(), 1, "the failed file's body is in force");
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function WHERE name = 'b.sql' "
                                  "AND sha256 = encode(sha256(convert_to('"
                                  "CREATE OR REPLACE FUNCTION b_version() RETURNS int LANGUAGE "
                                  "sql IMMUTABLE AS $$ SELECT 1 $$;', 'UTF8')), 'hex')"),
                 1, "the failed file's checksum was recorded");
    /* Fixed, it then applies. */
    o = run_with(two, 2, functions_v1, 2);
    cr_assert_eq(o.result, MIGRATE_OK, "%s", o.message);
}

Test(migrate, concurrent_runs_apply_each_function_file_once)
{
    struct outcome o[3];
    run_many_with(two, 2, functions_v1, 2, 3, o);
    int applied = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(o[i].result, MIGRATE_OK, "run %d: %s", i, o[i].message);
        applied += functions_applied(&o[i]);
    }
    cr_assert_eq(applied, 2, "function files applied %d times in all", applied);
    /* And again with one file changed: one run applies it, the others find
     * it recorded once they hold the lock. */
    run_many_with(two, 2, functions_v2, 2, 3, o);
    applied = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(o[i].result, MIGRATE_OK, "run %d: %s", i, o[i].message);
        applied += functions_applied(&o[i]);
    }
    cr_assert_eq(applied, 1, "the changed file was applied %d times", applied);
    cr_assert_eq(b_version(), 2);
}

/* The names of the functions the embedded files of sql/functions/ define
 * (every "FUNCTION name(" of their text), one per line, each framed by
 * newlines so that a name is found with strstr("\nname\n"). */
static char *function_file_names(void)
{
    size_t cap = 1, len = 0;
    for (int i = 0; i < snp_function_count; i++)
        cap += strlen(snp_functions[i].sql);
    char *names = malloc(cap + 1);
    cr_assert(names);
    names[len++] = '\n';
    for (int i = 0; i < snp_function_count; i++) {
        const char *p = snp_functions[i].sql;
        while ((p = strstr(p, "FUNCTION ")) != NULL) {
            p += strlen("FUNCTION ");
            size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
            if (n > 0 && p[n] == '(') {
                memcpy(names + len, p, n);
                len += n;
                names[len++] = '\n';
            }
        }
    }
    names[len] = '\0';
    return names;
}

Test(migrate, every_function_of_the_schema_is_in_a_function_file)
{
    const char *bin = getenv("SNPD_BINARY");
    cr_assert(bin);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>&1 | grep -c 'applied functions'",
             bin, pg.conninfo);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    int logged = -1;
    cr_assert_eq(fscanf(f, "%d", &logged), 1);
    pclose(f);
    cr_assert_eq(logged, snp_function_count, "%d function files logged as applied", logged);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM schema_function"), snp_function_count);

    /* Every function of the public schema that no extension owns: a
     * function left only in a migration would be missing from the files,
     * and a later change to it would have to copy its body again. */
    char *names = function_file_names();
    PGresult *r = pgtest_exec(&pg, "SELECT DISTINCT p.proname FROM pg_proc p "
                                   "JOIN pg_namespace n ON n.oid = p.pronamespace "
                                   "WHERE n.nspname = 'public' AND NOT EXISTS ("
                                   "  SELECT 1 FROM pg_depend d WHERE d.classid = "
                                   "  'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') "
                                   "ORDER BY 1");
    cr_assert_gt(PQntuples(r), 100);
    for (int i = 0; i < PQntuples(r); i++) {
        char framed[80]; /* NAMEDATALEN (64) and the two newlines */
        snprintf(framed, sizeof(framed), "\n%s\n", PQgetvalue(r, i, 0));
        cr_expect(strstr(names, framed), "function %s is defined in no file of sql/functions/",
                  PQgetvalue(r, i, 0));
    }
    PQclear(r);
    free(names);

    /* A second run finds every file recorded. */
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>&1 | grep -q '; 0 function files'",
             bin, pg.conninfo);
    cr_assert_eq(system(cmd), 0, "a second snpd migrate applied function files");
}
