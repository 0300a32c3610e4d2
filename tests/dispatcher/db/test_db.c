/* The database pool against a real PostgreSQL: grouped commits.  Grouped
 * queries that wait for a busy connection share one transaction; each gets
 * its own answer after the commit; a group in which anything fails is rolled
 * back and each query runs again alone; a broken connection answers every
 * query of its group once.  The pool has one connection here, kept busy by
 * a pg_sleep while the grouped queries are queued.  A query with parameters
 * runs as a statement prepared once per session, alone or in a group, and
 * again on a new session; one whose Prepare fails answers its own error
 * each time; one gone stale (its function replaced, or deallocated) is
 * prepared afresh and answers as if nothing happened.  And a query whose session the server ends
 * (as a switchover does) is unavailable, not a query error.  Sessions speak
 * UTF-8 whatever the environment asks. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dispatcher/db/db.h"
#include "tests/support/pgtest.h"

static struct pgtest pg;

static void setup(void)
{
    pgtest_create(&pg);
    PQclear(pgtest_exec(&pg, "CREATE TABLE t (x int PRIMARY KEY)"));
}

static void teardown(void)
{
    pgtest_drop(&pg);
}

TestSuite(db, .init = setup, .fini = teardown, .timeout = 60);

#define N 12

struct answer {
    bool done;
    int calls;
    enum db_status status;
    char sqlstate[6];
    char value[64];
    long visible; /* rows of t another connection saw when the answer came */
    int x;
};

static struct db pool;
static bool pool_ready;

static void on_ready(struct db *db, bool up)
{
    (void)db;
    pool_ready = up;
}

static void on_answer(void *arg, enum db_status st, const PGresult *res)
{
    struct answer *a = arg;
    a->calls++;
    a->done = true;
    a->status = st;
    snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", db_sqlstate(res));
    if (st == DB_OK && PQntuples(res) == 1)
        snprintf(a->value, sizeof(a->value), "%s", PQgetvalue(res, 0, 0));
    if (st == DB_OK && a->x > 0) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE x = %d", a->x);
        a->visible = pgtest_long(&pg, sql);
    }
}

static void on_closed(struct db *db)
{
    (void)db;
}

/* Opens a pool of one connection on `loop` and waits until it is up. */
static void pool_open(uv_loop_t *loop, int group_max)
{
    cr_assert_eq(uv_loop_init(loop), 0);
    pool_ready = false;
    cr_assert_eq(db_init(&pool, loop, pg.conninfo, 1), 0);
    pool.on_ready_change = on_ready;
    pool.group_max = group_max;
    for (int i = 0; i < 2000 && !pool_ready; i++)
        uv_run(loop, UV_RUN_ONCE);
    cr_assert(pool_ready, "the pool never connected");
}

static void pool_close(uv_loop_t *loop)
{
    db_close(&pool, on_closed);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open on the loop");
}

/* Queues a pg_sleep that keeps the only connection busy, then `n` grouped
 * inserts of 1..n, each answering `sql`'s first column; runs the loop until
 * every answer came. */
static void run_inserts(uv_loop_t *loop, const char *sql, struct answer *a, int n)
{
    struct answer sleeper = {0};
    db_query(&pool, "SELECT pg_sleep(0.3)", 0, NULL, on_answer, &sleeper);
    for (int i = 0; i < n; i++) {
        char x[16];
        snprintf(x, sizeof(x), "%d", i + 1);
        a[i] = (struct answer){.x = i + 1};
        const char *params[] = {x};
        db_query_grouped(&pool, sql, 1, params, on_answer, &a[i]);
    }
    for (int spin = 0; spin < 100000; spin++) {
        bool all = sleeper.done;
        for (int i = 0; i < n; i++)
            all = all && a[i].done;
        if (all)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    cr_assert(sleeper.done && sleeper.status == DB_OK);
}

Test(db, waiting_grouped_queries_share_one_commit_and_get_their_own_answers)
{
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer a[N];
    run_inserts(&loop, "INSERT INTO t VALUES ($1::int) RETURNING x || ':' || txid_current()", a, N);
    const char *txid = strchr(a[0].value, ':');
    cr_assert(txid, "%s", a[0].value);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].calls, 1, "query %d answered %d times", i, a[i].calls);
        cr_assert_eq(a[i].status, DB_OK, "query %d: %d %s", i, a[i].status, a[i].sqlstate);
        char want[16];
        snprintf(want, sizeof(want), "%d:", i + 1);
        cr_assert(strncmp(a[i].value, want, strlen(want)) == 0, "query %d got %s", i, a[i].value);
        cr_assert_str_eq(strchr(a[i].value, ':'), txid, "query %d ran in another transaction", i);
        cr_assert_eq(a[i].visible, 1, "query %d answered before its commit", i);
    }
    cr_assert_eq(pool.stats.groups, 1);
    cr_assert_eq(pool.stats.grouped, N);
    cr_assert_eq(pool.stats.group_retries, 0);
    /* One Prepare, in the pipeline before the first insert; the others use it. */
    cr_assert_eq(pool.stats.prepared, 1);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM t"), N);
    pool_close(&loop);
}

Test(db, a_failure_rolls_the_group_back_and_each_query_runs_alone)
{
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer a[N];
    /* The fifth insert divides by zero. */
    run_inserts(&loop, "INSERT INTO t VALUES ($1::int) RETURNING 10 / ($1::int - 5)", a, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].calls, 1, "query %d answered %d times", i, a[i].calls);
        if (i == 4) {
            cr_assert_eq(a[i].status, DB_QUERY_ERROR);
            cr_assert_str_eq(a[i].sqlstate, "22012");
            continue;
        }
        cr_assert_eq(a[i].status, DB_OK, "query %d: %d %s", i, a[i].status, a[i].sqlstate);
        cr_assert_eq(a[i].visible, 1, "query %d answered before its commit", i);
    }
    cr_assert_eq(pool.stats.group_retries, 1);
    /* The statement prepared in the group outlived its rollback: the
     * queries run alone afterwards used it (a lost one would have answered
     * 26000, "prepared statement does not exist"). */
    cr_assert_eq(pool.stats.prepared, 1);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM t"), N - 1);
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM t WHERE x = 5"), 0);
    pool_close(&loop);
}

Test(db, a_group_max_of_one_commits_each_alone)
{
    uv_loop_t loop;
    pool_open(&loop, 1);
    struct answer a[N];
    run_inserts(&loop, "INSERT INTO t VALUES ($1::int) RETURNING txid_current()", a, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].status, DB_OK);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(a[i].value, a[j].value, "queries %d and %d shared a transaction", j,
                              i);
    }
    cr_assert_eq(pool.stats.groups, 0);
    pool_close(&loop);
}

/* --- prepared statements ------------------------------------------------------------ */

/* Runs `sql` alone with one parameter and waits for its answer. */
static void run_one(uv_loop_t *loop, const char *sql, const char *param, struct answer *a)
{
    *a = (struct answer){0};
    const char *params[] = {param};
    db_query(&pool, sql, 1, params, on_answer, a);
    for (int spin = 0; spin < 100000 && !a->done; spin++)
        uv_run(loop, UV_RUN_ONCE);
    cr_assert(a->done, "%s: never answered", sql);
    cr_assert_eq(a->calls, 1, "%s: answered %d times", sql, a->calls);
}

static const char add_one[] = "SELECT $1::int + 1";
static const char count_prepared[] = "SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE statement = $1 AND name LIKE 'snp%'";

Test(db, a_query_with_parameters_is_prepared_once_per_session)
{
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer a;
    for (int i = 1; i <= 3; i++) {
        char x[16], want[16];
        snprintf(x, sizeof(x), "%d", i);
        snprintf(want, sizeof(want), "%d", i + 1);
        run_one(&loop, add_one, x, &a);
        cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
        cr_assert_str_eq(a.value, want);
    }
    cr_assert_eq(pool.stats.prepared, 1);
    /* The session itself holds it, once. */
    run_one(&loop, count_prepared, add_one, &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "1");
    cr_assert_eq(pool.stats.prepared, 2);

    /* A new session prepares it again. */
    PQclear(pgtest_exec(&pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"));
    for (int spin = 0; spin < 100000 && (pool.stats.reconnects == 0 || !pool_ready); spin++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(pool.stats.reconnects == 1 && pool_ready, "the pool did not reconnect");
    run_one(&loop, add_one, "41", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "42");
    cr_assert_eq(pool.stats.prepared, 3);
    run_one(&loop, count_prepared, add_one, &a);
    cr_assert_str_eq(a.value, "1");
    pool_close(&loop);
}

Test(db, a_statement_that_cannot_be_prepared_answers_its_own_error_each_time)
{
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer a;
    for (int i = 0; i < 2; i++) {
        run_one(&loop, "SELECT no_such_column + $1::int", "1", &a);
        cr_assert_eq(a.status, DB_QUERY_ERROR);
        cr_assert_str_eq(a.sqlstate, "42703", "attempt %d: SQLSTATE %s", i, a.sqlstate);
    }
    /* In a group: its pipeline fails at the Prepare, and each query, run
     * alone, answers the same error. */
    struct answer g[N];
    run_inserts(&loop, "INSERT INTO t VALUES ($1::int) RETURNING no_such_column", g, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(g[i].calls, 1, "query %d answered %d times", i, g[i].calls);
        cr_assert_eq(g[i].status, DB_QUERY_ERROR, "query %d: %d", i, g[i].status);
        cr_assert_str_eq(g[i].sqlstate, "42703", "query %d: SQLSTATE %s", i, g[i].sqlstate);
    }
    cr_assert_eq(pool.stats.group_retries, 1);
    /* The connection serves on. */
    run_one(&loop, add_one, "1", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "2");
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM t"), 0);
    pool_close(&loop);
}

/* What a migration does to a running process's statement: the function it
 * calls is dropped and made again with another result type, so the
 * statement refuses (0A000, "cached plan must not change result type");
 * then every statement of the session is deallocated (26000 next time).
 * Each time the query is answered as an unnamed one would be. */
Test(db, a_stale_prepared_statement_is_prepared_afresh)
{
    static const char call_f[] = "SELECT * FROM f($1::int)";
    PQclear(pgtest_exec(&pg, "CREATE FUNCTION f(a int) RETURNS TABLE (x int) "
                             "LANGUAGE sql AS 'SELECT a'"));
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer a;
    run_one(&loop, call_f, "7", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "7");
    cr_assert_eq(pool.stats.prepared, 1);

    PQclear(pgtest_exec(&pg, "DROP FUNCTION f(int)"));
    PQclear(pgtest_exec(&pg, "CREATE FUNCTION f(a int) RETURNS TABLE (x text, y int) "
                             "LANGUAGE sql AS 'SELECT ''v'' || a, a'"));
    run_one(&loop, call_f, "8", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "v8");
    cr_assert_eq(pool.stats.prepared, 2);

    struct answer d = {0};
    db_query(&pool, "DEALLOCATE ALL", 0, NULL, on_answer, &d);
    for (int spin = 0; spin < 100000 && !d.done; spin++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(d.status, DB_OK, "%d %s", d.status, d.sqlstate);
    run_one(&loop, call_f, "9", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "v9");
    cr_assert_eq(pool.stats.prepared, 3);
    pool_close(&loop);
}

/* A statement of the group that waits for a lock a test connection holds,
 * and that connection's backend killed meanwhile: every query of the group
 * is answered once, DB_UNAVAILABLE, and none of them committed. */
struct killer {
    uv_timer_t timer;
    int pid;
};

static void on_kill(uv_timer_t *t)
{
    struct killer *k = t->data;
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", k->pid);
    PQclear(pgtest_exec(&pg, sql));
}

Test(db, a_connection_lost_mid_group_answers_each_query_once)
{
    uv_loop_t loop;
    pool_open(&loop, 16);
    struct answer sleeper = {0};
    struct answer a[N];
    db_query(&pool, "SELECT pg_sleep(0.2)", 0, NULL, on_answer, &sleeper);
    for (int i = 0; i < N; i++) {
        char x[16];
        snprintf(x, sizeof(x), "%d", i + 1);
        a[i] = (struct answer){0};
        const char *params[] = {x};
        /* The last one sleeps, so that the kill lands inside the group. */
        db_query_grouped(&pool,
                         i == N - 1 ? "SELECT pg_sleep(5), $1::int"
                                    : "INSERT INTO t VALUES ($1::int) RETURNING x",
                         1, params, on_answer, &a[i]);
    }
    struct killer k = {0};
    PGresult *r =
        pgtest_exec(&pg, "SELECT pid FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    cr_assert_eq(PQntuples(r), 1);
    k.pid = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    uv_timer_init(&loop, &k.timer);
    k.timer.data = &k;
    uv_timer_start(&k.timer, on_kill, 800, 0);
    for (int spin = 0; spin < 100000; spin++) {
        bool all = true;
        for (int i = 0; i < N; i++)
            all = all && a[i].done;
        if (all)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&k.timer, NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].calls, 1, "query %d answered %d times", i, a[i].calls);
        cr_assert_eq(a[i].status, DB_UNAVAILABLE, "query %d: %d", i, a[i].status);
    }
    cr_assert_eq(pgtest_long(&pg, "SELECT count(*) FROM t"), 0);
    pool_close(&loop);
}

/* --- a session the server ends --------------------------------------------------- */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The query whose session the server ends; the comment finds it in
 * pg_stat_activity. */
static const char sleep_sql[] = "SELECT pg_sleep(30) -- test_db";

struct session_end {
    struct db db;
    uv_timer_t timer;
    bool sent;
    bool answered;
    enum db_status status;
    char sqlstate[8];
    bool closed;
};

static void on_end_closed(struct db *db)
{
    container_of(db, struct session_end, db)->closed = true;
}

static void on_sleep_done(void *arg, enum db_status st, const PGresult *res)
{
    struct session_end *t = arg;
    t->answered = true;
    t->status = st;
    snprintf(t->sqlstate, sizeof(t->sqlstate), "%s", db_sqlstate(res));
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, NULL);
    db_close(&t->db, on_end_closed);
}

/* Ends the sleeping session as a switchover's fast shutdown does: SIGTERM
 * to its backend, which answers FATAL 57P01 ("terminating connection due to
 * administrator command") before closing.  Tries until the query is seen. */
static void on_end_timer(uv_timer_t *h)
{
    (void)h;
    PQclear(pgtest_exec(&pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE query = 'SELECT pg_sleep(30) -- test_db'"));
}

static void on_end_ready(struct db *db, bool up)
{
    struct session_end *t = container_of(db, struct session_end, db);
    if (!up || t->sent)
        return;
    t->sent = true;
    db_query(db, sleep_sql, 0, NULL, on_sleep_done, t);
    uv_timer_start(&t->timer, on_end_timer, 200, 200);
}

Test(db, a_session_ended_by_the_server_is_unavailable_not_a_query_error)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    static struct session_end t;
    memset(&t, 0, sizeof(t));
    uv_timer_init(&loop, &t.timer);
    cr_assert_eq(db_init(&t.db, &loop, pg.conninfo, 1), 0);
    t.db.on_ready_change = on_end_ready;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(t.answered);
    /* The query did nothing wrong: its session ended, as during a
     * switchover.  Callers answer "unavailable, retry", not "internal". */
    cr_assert_eq(t.status, DB_UNAVAILABLE, "status %d, SQLSTATE %s", t.status, t.sqlstate);
    cr_assert(t.closed);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* snpd reads UTF-8 from its sessions whatever PGCLIENTENCODING says. */
Test(db, the_sessions_speak_utf8_whatever_the_environment_says)
{
    setenv("PGCLIENTENCODING", "LATIN1", 1);
    uv_loop_t loop;
    pool_open(&loop, 16);
    unsetenv("PGCLIENTENCODING");
    struct answer a;
    run_one(&loop, "SELECT $1::text || chr(233)", "caf", &a);
    cr_assert_eq(a.status, DB_OK, "%d %s", a.status, a.sqlstate);
    cr_assert_str_eq(a.value, "caf\xc3\xa9", "the answer is not in UTF-8");
    run_one(&loop, "SELECT current_setting($1)", "client_encoding", &a);
    cr_assert_str_eq(a.value, "UTF8");
    pool_close(&loop);
}
