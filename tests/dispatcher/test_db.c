/* dispatcher/db.c against the throwaway PostgreSQL: how a query ends when
 * the server ends its session under it. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "dispatcher/db.h"
#include "tests/support/pgtest.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static struct pgtest pg;

static void setup(void)
{
    pgtest_create(&pg);
}

static void teardown(void)
{
    pgtest_drop(&pg);
}

TestSuite(db, .init = setup, .fini = teardown, .timeout = 60);

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

static void on_closed(struct db *db)
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
    db_close(&t->db, on_closed);
}

/* Ends the sleeping session as a switchover's fast shutdown does: SIGTERM
 * to its backend, which answers FATAL 57P01 ("terminating connection due to
 * administrator command") before closing.  Tries until the query is seen. */
static void on_timer(uv_timer_t *h)
{
    (void)h;
    PQclear(pgtest_exec(&pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE query = 'SELECT pg_sleep(30) -- test_db'"));
}

static void on_ready(struct db *db, bool up)
{
    struct session_end *t = container_of(db, struct session_end, db);
    if (!up || t->sent)
        return;
    t->sent = true;
    db_query(db, sleep_sql, 0, NULL, on_sleep_done, t);
    uv_timer_start(&t->timer, on_timer, 200, 200);
}

Test(db, a_session_ended_by_the_server_is_unavailable_not_a_query_error)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    static struct session_end t;
    memset(&t, 0, sizeof(t));
    uv_timer_init(&loop, &t.timer);
    cr_assert_eq(db_init(&t.db, &loop, pg.conninfo, 1), 0);
    t.db.on_ready_change = on_ready;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(t.answered);
    /* The query did nothing wrong: its session ended, as during a
     * switchover.  Callers answer "unavailable, retry", not "internal". */
    cr_assert_eq(t.status, DB_UNAVAILABLE, "status %d, SQLSTATE %s", t.status, t.sqlstate);
    cr_assert(t.closed);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
