/* Result columns read by name, against a real PostgreSQL: each name found
 * wherever its column is; a missing column, or a name two columns share,
 * refused with an error that names the query and the column; names folded
 * to lower case unless double-quoted, as PQfnumber does. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dispatcher/db/db_cols.h"
#include "tests/support/pgtest.h"
#include "tests/support/proc.h"

static struct pgtest pg;

static void setup(void)
{
    pgtest_create(&pg);
}

static void teardown(void)
{
    pgtest_drop(&pg);
}

TestSuite(db_cols, .init = setup, .fini = teardown, .timeout = 60);

/* db_cols_resolve, with what it wrote to standard error (the log) in
 * `log`, room for LOG_SIZE. */
#define LOG_SIZE 1024

static bool resolve(const PGresult *res, const char *const *names, size_t n, int *cols,
                    const char *query, char *log)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/snp_db_cols_XXXXXX", proc_scratch_dir());
    fflush(stderr);
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    int saved = dup(2);
    cr_assert(saved >= 0 && dup2(fd, 2) >= 0);
    close(fd);
    bool ok = db_cols_resolve(res, names, n, cols, query);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    log[fread(log, 1, LOG_SIZE - 1, f)] = '\0';
    fclose(f);
    unlink(path);
    return ok;
}

Test(db_cols, finds_each_name_wherever_its_column_is)
{
    PGresult *res = pgtest_exec(&pg, "SELECT n AS id, 'row ' || n AS name, n * 10 AS tens"
                                     "  FROM generate_series(1, 3) n ORDER BY n");
    static const char *const names[] = {"tens", "id", "name"};
    int cols[3];
    char log[LOG_SIZE];
    cr_assert(resolve(res, names, 3, cols, "test", log));
    cr_assert_str_empty(log);
    cr_assert_eq(cols[0], 2);
    cr_assert_eq(cols[1], 0);
    cr_assert_eq(cols[2], 1);
    cr_assert_str_eq(PQgetvalue(res, 2, cols[0]), "30");
    cr_assert_str_eq(PQgetvalue(res, 1, cols[2]), "row 2");
    PQclear(res);
}

Test(db_cols, an_empty_result_still_has_its_columns)
{
    PGresult *res = pgtest_exec(&pg, "SELECT 1 AS id WHERE false");
    static const char *const names[] = {"id"};
    int cols[1];
    cr_assert(db_cols_resolve(res, names, 1, cols, "test"));
    cr_assert_eq(cols[0], 0);
    cr_assert_eq(PQntuples(res), 0);
    PQclear(res);
}

Test(db_cols, a_missing_column_is_refused_and_named_in_the_log)
{
    PGresult *res = pgtest_exec(&pg, "SELECT 1 AS id, 2 AS kind");
    static const char *const names[] = {"id", "status", "kind"};
    int cols[3] = {7, 7, 7};
    char log[LOG_SIZE];
    cr_assert_not(resolve(res, names, 3, cols, "slot_get", log));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cols[i], -1, "column %d left at %d", i, cols[i]);
    cr_assert(strstr(log, "error") && strstr(log, "query slot_get: no column named status"), "%s",
              log);
    PQclear(res);
}

Test(db_cols, a_command_without_rows_has_no_columns)
{
    PGresult *res = pgtest_exec(&pg, "CREATE TABLE t (id int)");
    static const char *const names[] = {"id"};
    int cols[1];
    char log[LOG_SIZE];
    cr_assert_not(resolve(res, names, 1, cols, "create", log));
    cr_assert(strstr(log, "query create: no column named id"), "%s", log);
    PQclear(res);
}

Test(db_cols, no_result_is_refused)
{
    static const char *const names[] = {"id"};
    int cols[1] = {7};
    char log[LOG_SIZE];
    cr_assert_not(resolve(NULL, names, 1, cols, "gone", log));
    cr_assert_eq(cols[0], -1);
    cr_assert(strstr(log, "query gone: no result"), "%s", log);
}

Test(db_cols, a_name_two_columns_share_is_refused)
{
    /* s.id and r.id both come out as "id": which one is meant is a guess. */
    PGresult *res = pgtest_exec(&pg, "SELECT s.id, r.id, 'x' AS other"
                                     "  FROM (SELECT 1 AS id) s, (SELECT 2 AS id) r");
    static const char *const id[] = {"id"};
    static const char *const other[] = {"other"};
    int cols[1];
    char log[LOG_SIZE];
    cr_assert_not(resolve(res, id, 1, cols, "pair", log));
    cr_assert_eq(cols[0], -1);
    cr_assert(strstr(log, "query pair: more than one column named id"), "%s", log);
    /* The result's other columns can still be read. */
    cr_assert(db_cols_resolve(res, other, 1, cols, "pair"));
    cr_assert_eq(cols[0], 2);
    PQclear(res);
}

Test(db_cols, unnamed_expressions_need_an_alias)
{
    /* The first two are both named after their function: "coalesce". */
    PGresult *res = pgtest_exec(&pg, "SELECT coalesce(NULL::int, 1), coalesce(NULL::text, ''),"
                                     "       coalesce(NULL::int, 0) AS held_for");
    static const char *const unnamed[] = {"coalesce"};
    static const char *const named[] = {"held_for"};
    int cols[1];
    char log[LOG_SIZE];
    cr_assert_not(resolve(res, unnamed, 1, cols, "unnamed", log));
    cr_assert(strstr(log, "more than one column named coalesce"), "%s", log);
    cr_assert(db_cols_resolve(res, named, 1, cols, "named"));
    cr_assert_eq(cols[0], 2);
    PQclear(res);
}

Test(db_cols, the_same_name_asked_twice_gives_the_same_column)
{
    PGresult *res = pgtest_exec(&pg, "SELECT 1 AS a, 2 AS b");
    static const char *const names[] = {"b", "a", "b"};
    int cols[3];
    cr_assert(db_cols_resolve(res, names, 3, cols, "test"));
    cr_assert_eq(cols[0], 1);
    cr_assert_eq(cols[1], 0);
    cr_assert_eq(cols[2], 1);
    PQclear(res);
}

Test(db_cols, names_fold_to_lower_case_unless_quoted)
{
    PGresult *res = pgtest_exec(&pg, "SELECT 1 AS \"Mixed\", 2 AS lower, 3 AS \"two words\"");
    int cols[1];
    /* Quoted: exactly as written. */
    static const char *const quoted[] = {"\"Mixed\""};
    cr_assert(db_cols_resolve(res, quoted, 1, cols, "test"));
    cr_assert_eq(cols[0], 0);
    static const char *const spaced[] = {"\"two words\""};
    cr_assert(db_cols_resolve(res, spaced, 1, cols, "test"));
    cr_assert_eq(cols[0], 2);
    /* Unquoted: folded, as SQL folds identifiers. */
    static const char *const upper[] = {"LOWER"};
    cr_assert(db_cols_resolve(res, upper, 1, cols, "test"));
    cr_assert_eq(cols[0], 1);
    static const char *const unquoted[] = {"Mixed"};
    char log[LOG_SIZE];
    cr_assert_not(resolve(res, unquoted, 1, cols, "test", log),
                  "Mixed unquoted is mixed, which no column is");
    cr_assert(strstr(log, "no column named Mixed"), "%s", log);
    PQclear(res);
}

/* The rows of `sql` in text (format 0) or binary (format 1). */
static PGresult *exec_as(const char *sql, int format)
{
    PGresult *res = PQexecParams(pg.conn, sql, 0, NULL, NULL, NULL, NULL, format);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    cr_assert_eq(PQfformat(res, 0), format);
    return res;
}

/* Appends each item to the string `arg` points to, after a '|'. */
static bool join_item(const char *item, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "|%s", item);
    return true;
}

/* What the readers make of row `row` of `res` (columns: i2, i4, i8, text,
 * epoch as a bigint, epoch as a timestamp, a text[]), as one string. */
static void read_row(const PGresult *res, int row, char out[512])
{
    char items[256] = "";
    bool ok = db_col_each_text(res, row, 6, join_item, items);
    snprintf(out, 512, "%lld %lld %lld '%s' %lld %lld %s%s", (long long)db_col_int(res, row, 0, -7),
             (long long)db_col_int(res, row, 1, -7), (long long)db_col_int(res, row, 2, -7),
             PQgetvalue(res, row, 3), (long long)db_col_epoch(res, row, 4, -7),
             (long long)db_col_epoch(res, row, 5, -7), ok ? "ok" : "refused", items);
}

Test(db_cols, typed_readers_read_text_and_binary_results_alike)
{
    /* Negative numbers, NULLs, an instant before PostgreSQL's epoch of
     * 2000 with a fraction (floored, not truncated), arrays empty, NULL
     * and with items.  Instants in binary are timestamps; in text they are
     * given as seconds, the form the text queries give them. */
    static const char binary[] =
        "SELECT * FROM (VALUES"
        " (1::smallint, 2::int, 3::bigint, 'a'::text, 1700000000::bigint,"
        "  timestamptz '2023-11-14 22:13:20.75+00', ARRAY['sas','desk']::text[]),"
        " (-1::smallint, -70000::int, -5000000000::bigint, '', -1::bigint,"
        "  timestamptz '1999-12-31 23:59:59.5+00', '{}'::text[]),"
        " (NULL, NULL, NULL, NULL, NULL, NULL, NULL)) v(a, b, c, d, e, f, g)";
    static const char text[] =
        "SELECT * FROM (VALUES"
        " (1::smallint, 2::int, 3::bigint, 'a'::text, 1700000000::bigint,"
        "  1700000000::bigint, ARRAY['sas','desk']::text[]),"
        " (-1::smallint, -70000::int, -5000000000::bigint, '', -1::bigint,"
        "  floor(date_part('epoch', timestamptz '1999-12-31 23:59:59.5+00'))::bigint,"
        "  '{}'::text[]),"
        " (NULL, NULL, NULL, NULL, NULL, NULL, NULL)) v(a, b, c, d, e, f, g)";
    static const char *const expected[] = {
        "1 2 3 'a' 1700000000 1700000000 ok|sas|desk",
        "-1 -70000 -5000000000 '' -1 946684799 ok",
        "-7 -7 -7 '' -7 -7 ok",
    };
    for (int format = 0; format <= 1; format++) {
        PGresult *res = exec_as(format ? binary : text, format);
        cr_assert_eq(PQntuples(res), 3);
        for (int row = 0; row < 3; row++) {
            char got[512];
            read_row(res, row, got);
            cr_assert_str_eq(got, expected[row], "format %d, row %d", format, row);
        }
        PQclear(res);
    }
}

Test(db_cols, an_array_item_too_long_or_null_or_not_an_array_is_refused)
{
    char items[256] = "";
    for (int format = 0; format <= 1; format++) {
        PGresult *res = exec_as("SELECT ARRAY[repeat('x', 64)]::text[]", format);
        cr_assert_not(db_col_each_text(res, 0, 0, join_item, items), "format %d", format);
        PQclear(res);
    }
    PGresult *res = exec_as("SELECT ARRAY['a', NULL]::text[], 'sas'::text", 1);
    cr_assert_not(db_col_each_text(res, 0, 0, join_item, items), "a NULL item");
    cr_assert_not(db_col_each_text(res, 0, 1, join_item, items), "a text, not an array");
    PQclear(res);
}
