/* Races and failures: many requesters on few slots, two snpd processes on
 * one database, kill -9 under load, and the database disappearing under
 * load.  The database is the arbiter: no slot is ever booked twice. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/pgproxy.h"
#include "tests/support/wait.h"

static struct fixture f;

static void setup(void)
{
    /* The requesters open REQUESTERS connections at once from 127.0.0.1,
     * more than snpd's default per address (the protocol's
     * max_connections_per_address): the snpd processes started here, which
     * inherit the environment, are given room for them. */
    setenv("SNPD_MAX_PER_ADDRESS", "1000", 1);
    fixture_setup(&f, "{}");
}

static void teardown(void)
{
    fixture_teardown(&f);
}

TestSuite(race, .init = setup, .fini = teardown, .timeout = 240);

#define REQUESTERS 64

struct requester {
    int port;
    const char *token;
    int index;
    int round;
    json_int_t booking; /* acknowledged booking, or 0 */
    int create_status;
    int accept_status;
    pthread_barrier_t *start;
};

/* A request that may fail (snpd killed under it): status -1 then, and no
 * assertion, since requesters run on their own threads. */
static json_t *try_api(int port, const char *path, const char *token, const char *body, int *st)
{
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    struct http_response r;
    if (http_request(port, "POST", path, auth, body, &r) != 0) {
        *st = -1;
        return NULL;
    }
    *st = r.status;
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    http_response_free(&r);
    return j;
}

/* One requester: create a request, accept the slot held for it. */
static void *requester_run(void *arg)
{
    struct requester *q = arg;
    if (q->start)
        pthread_barrier_wait(q->start);
    char ref[48];
    snprintf(ref, sizeof(ref), "race-%d-%d", q->round, q->index);
    char *body = fix_request_body(ref, "24h");
    int st;
    json_t *r = try_api(q->port, "/api/v1/requests", q->token, body, &st);
    free(body);
    q->create_status = st;
    json_int_t slot = json_integer_value(
        json_object_get(json_object_get(json_object_get(r, "offer"), "slot"), "slot_id"));
    if (slot > 0) {
        char path[64], b[64];
        snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept",
                 (long long)json_integer_value(json_object_get(r, "request_id")));
        snprintf(b, sizeof(b), "{\"slot_id\": %lld}", (long long)slot);
        json_t *a = try_api(q->port, path, q->token, b, &st);
        q->accept_status = st;
        if (st == 200)
            q->booking = json_integer_value(json_object_get(a, "booking_id"));
        json_decref(a);
    }
    json_decref(r);
    return NULL;
}

/* Runs REQUESTERS requesters at once, spread over `nports` snpd processes. */
static int run_requesters(const int *ports, int nports, struct requester *q)
{
    pthread_t t[REQUESTERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, REQUESTERS);
    for (int i = 0; i < REQUESTERS; i++) {
        q[i] = (struct requester){
            .port = ports[i % nports], .token = f.token[FIX_PHARMACY], .index = i, .start = &start};
        pthread_create(&t[i], NULL, requester_run, &q[i]);
    }
    int booked = 0;
    for (int i = 0; i < REQUESTERS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(q[i].create_status, 201, "requester %d: create answered %d", i,
                     q[i].create_status);
        booked += q[i].booking > 0;
    }
    pthread_barrier_destroy(&start);
    return booked;
}

static void check_no_double_booking(void)
{
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM (SELECT slot_id FROM booking WHERE "
                                    "status = 'booked' GROUP BY slot_id HAVING count(*) > 1) x"),
                 0, "a slot was booked twice");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking b JOIN slot s ON s.id = "
                                    "b.slot_id WHERE b.status = 'booked' AND s.status <> 'booked'"),
                 0, "a booking points to a slot that is not booked");
}

Test(race, many_requesters_one_slot)
{
    fixture_start(&f);
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    struct requester q[REQUESTERS];
    int booked = run_requesters(&f.snpd.port, 1, q);
    cr_assert_eq(booked, 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'waiting'"), 63);
    check_no_double_booking();
}

Test(race, many_requesters_fifty_slots)
{
    fixture_start(&f);
    fix_publish(&f, FIX_GP_1, 25, 60, 20, "[\"pharmacy\"]");
    fix_publish(&f, FIX_GP_2, 25, 60, 20, "[\"pharmacy\"]");
    struct requester q[REQUESTERS];
    int booked = run_requesters(&f.snpd.port, 1, q);
    cr_assert_eq(booked, 50);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(DISTINCT slot_id) FROM booking WHERE status = "
                                    "'booked'"),
                 50);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'waiting'"), 14);
    check_no_double_booking();
}

Test(race, two_processes_one_database)
{
    fixture_start(&f);
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    fix_publish(&f, FIX_GP_1, 25, 60, 20, "[\"pharmacy\"]");
    fix_publish(&f, FIX_GP_2, 25, 60, 20, "[\"pharmacy\"]");
    /* The second process hears of the slots published through the first
     * (LISTEN/NOTIFY); both then hold the same free slots and really race. */
    cr_assert(fix_wait_capacity(&f, second.port, 50, 15000),
              "the second process never counted the 50 slots published through the first");
    int ports[2] = {f.snpd.port, second.port};
    struct requester q[REQUESTERS];
    int booked = run_requesters(ports, 2, q);
    /* A requester whose creation lost every race it tried is answered
     * "waiting" and offered a slot a moment later (offer.made, which these
     * HTTP requesters do not wait for): every slot ends booked or held, and
     * the requests left wait for none of them. */
    cr_assert_leq(booked, 50, "%d bookings", booked);
    bool none_free;
    WAIT_UNTIL(none_free,
               pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'free'") == 0, 10000);
    cr_assert(none_free, "slots are still free once the requesters are done");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status IN ('booked', 'held')"),
                 50);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'offered'"),
                 50 - booked);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'waiting'"), 14);
    check_no_double_booking();
    /* Both memories agree with the database: nothing free is left. */
    for (int i = 0; i < 2; i++)
        cr_assert(fix_wait_capacity(&f, ports[i], 0, 5000), "process %d still counts free slots",
                  i);
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
}

Test(race, a_waiting_request_in_one_process_gets_a_slot_published_in_another)
{
    fixture_start(&f);
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    /* The request waits in the second process... */
    char *body = fix_request_body("cross-1", "24h");
    int st;
    json_t *r =
        fix_api_port(second.port, "POST", "/api/v1/requests", f.token[FIX_PHARMACY], body, &st);
    free(body);
    cr_assert_eq(st, 201);
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "waiting");
    json_decref(r);
    /* ...the slot is published through the first; whichever process acts,
     * the request gets it before it counts as free capacity. */
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    bool offered;
    WAIT_UNTIL(offered,
               pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'offered'") == 1,
               5000);
    cr_assert(offered, "the waiting request was not offered the new slot");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held'"), 1);
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
}

struct loader {
    int port;
    int round;
    atomic_bool *stop;
    atomic_int *acked; /* acknowledged bookings of all loaders */
    json_int_t acknowledged[256];
    int nack;
};

static void *load_run(void *arg)
{
    struct loader *l = arg;
    for (int i = 0; !atomic_load(l->stop) && l->nack < 256; i++) {
        struct requester q = {
            .port = l->port, .token = f.token[FIX_PHARMACY], .index = i, .round = l->round};
        requester_run(&q);
        if (q.booking > 0) {
            l->acknowledged[l->nack++] = q.booking;
            atomic_fetch_add(l->acked, 1);
        }
    }
    return NULL;
}

Test(race, kill_9_under_load_loses_no_acknowledged_booking)
{
    fixture_start(&f);
    fix_publish(&f, FIX_GP_1, 60, 60, 10, "[\"pharmacy\"]");
    fix_publish(&f, FIX_GP_2, 60, 60, 10, "[\"pharmacy\"]");
    atomic_bool stop = false;
    atomic_int acked_before = 0;
    struct loader l[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        l[i] =
            (struct loader){.port = f.snpd.port, .round = i, .stop = &stop, .acked = &acked_before};
        pthread_create(&t[i], NULL, load_run, &l[i]);
    }
    /* The kill comes under load, once bookings are being acknowledged. */
    bool loaded;
    WAIT_UNTIL(loaded, atomic_load(&acked_before) >= 8, 30000);
    cr_assert(loaded, "the load had no booking acknowledged");
    kill(f.snpd.pid, SIGKILL);
    snpd_proc_wait_exit(&f.snpd, 5000);
    atomic_store(&stop, true);
    int acked = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        for (int k = 0; k < l[i].nack; k++) {
            char sql[128];
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM booking WHERE id = %lld AND status = 'booked'",
                     (long long)l[i].acknowledged[k]);
            cr_assert_eq(pgtest_long(&f.pg, sql), 1, "acknowledged booking %lld is missing",
                         (long long)l[i].acknowledged[k]);
            acked++;
        }
    }
    cr_assert_gt(acked, 0, "no booking was acknowledged before the kill");
    /* Restart: holds whose time has passed are released at once, and the
     * others have their expiry in the future (none is held forever). */
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET hold_expires_at = now() - interval '1 second' "
                               "WHERE status = 'held' AND id % 2 = 0"));
    fixture_start(&f);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held' AND "
                                    "hold_expires_at <= now()"),
                 0, "a stale hold survived the restart");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held' AND "
                                    "hold_expires_at > now() + interval '181 seconds'"),
                 0);
    check_no_double_booking();
    /* And the service works again. */
    struct requester q = {.port = f.snpd.port, .token = f.token[FIX_PHARMACY], .round = 9};
    requester_run(&q);
    cr_assert_eq(q.create_status, 201);
}

Test(race, database_lost_under_load_then_recovered)
{
    /* Static: the relay threads may still be finishing when the test ends. */
    static struct pgproxy proxy;
    char conninfo[256];
    pgproxy_start(&proxy, f.pg.name, conninfo, sizeof(conninfo));
    snpd_proc_start(&f.snpd, conninfo, NULL, true);
    fix_publish(&f, FIX_GP_1, 40, 60, 10, "[\"pharmacy\"]");

    pgproxy_set_down(&proxy, true);
    /* While it is gone: clear, quick errors; alive but not ready. */
    int unavailable = 0;
    int64_t until = test_now_ms() + 10000;
    for (int i = 0; test_now_ms() < until; i++) {
        struct requester q = {
            .port = f.snpd.port, .token = f.token[FIX_PHARMACY], .index = i, .round = 1};
        char ref[32];
        snprintf(ref, sizeof(ref), "lost-%d", i);
        char *body = fix_request_body(ref, "24h");
        int st;
        json_t *r = fix_api_port(q.port, "POST", "/api/v1/requests", q.token, body, &st);
        free(body);
        cr_assert(st == 503 || st == 201, "answered %d during the outage", st);
        if (st == 503) {
            unavailable++;
            cr_assert_str_eq(
                json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                "unavailable");
        }
        json_decref(r);
        /* A time, not a condition: requests paced over the ten seconds of
         * the outage, each of which must be refused cleanly. */
        test_sleep_ms(200);
    }
    cr_assert_gt(unavailable, 10, "only %d unavailable answers", unavailable);
    struct http_response h;
    cr_assert_eq(http_request(f.snpd.port, "GET", "/healthz", NULL, NULL, &h), 0);
    cr_assert_eq(h.status, 200);
    http_response_free(&h);
    cr_assert_eq(http_request(f.snpd.port, "GET", "/readyz", NULL, NULL, &h), 0);
    cr_assert_eq(h.status, 503);
    http_response_free(&h);

    /* Back: it reconnects by itself and serves again, same process. */
    pid_t pid = f.snpd.pid;
    pgproxy_set_down(&proxy, false);
    cr_assert(snpd_proc_wait_status(&f.snpd, "/readyz", 200, 15000), "never ready again");
    cr_assert_eq(f.snpd.pid, pid);
    struct requester q = {.port = f.snpd.port, .token = f.token[FIX_PHARMACY], .round = 2};
    requester_run(&q);
    cr_assert_eq(q.create_status, 201);
    cr_assert_gt(q.booking, 0);
    check_no_double_booking();
    snpd_proc_stop(&f.snpd, SIGTERM, 15000);
    pgproxy_stop(&proxy);
}

Test(race, changes_made_while_a_process_was_cut_off_reach_its_memory)
{
    /* The first process reaches the database through the relay, the second
     * directly.  What the second changes while the first is cut off is
     * announced while nobody in the first listens (a failover, a restart of
     * PostgreSQL): the first catches up once it listens again. */
    static struct pgproxy proxy;
    char conninfo[256];
    pgproxy_start(&proxy, f.pg.name, conninfo, sizeof(conninfo));
    snpd_proc_start(&f.snpd, conninfo, NULL, true);
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    int first_port = f.snpd.port;
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    cr_assert(fix_wait_capacity(&f, first_port, 2, 5000));
    cr_assert(fix_wait_capacity(&f, second.port, 2, 5000));

    pgproxy_set_down(&proxy, true);
    cr_assert(snpd_proc_wait_status(&f.snpd, "/readyz", 503, 5000));
    /* Through the second: one slot withdrawn, three published. */
    char body[96];
    snprintf(body, sizeof(body), "{\"slot_ids\": [%ld]}",
             pgtest_long(&f.pg, "SELECT min(id) FROM slot"));
    int st;
    json_decref(
        fix_api_port(second.port, "POST", "/api/v1/slots/withdraw", f.token[FIX_GP_1], body, &st));
    cr_assert_eq(st, 200);
    f.snpd.port = second.port;
    fix_publish(&f, FIX_GP_2, 3, 90, 30, "[\"pharmacy\"]");
    f.snpd.port = first_port;
    cr_assert(fix_wait_capacity(&f, second.port, 4, 5000));

    pgproxy_set_down(&proxy, false);
    cr_assert(snpd_proc_wait_status(&f.snpd, "/readyz", 200, 15000), "never ready again");
    cr_assert(fix_wait_capacity(&f, first_port, 4, 5000),
              "the first process still counts what it knew before the cut");
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
    snpd_proc_stop(&f.snpd, SIGTERM, 15000);
    pgproxy_stop(&proxy);
}

Test(race, changes_made_while_a_process_loads_reach_its_memory)
{
    /* The second process loads its slots, then its requests: what the first
     * changes in between is announced before the second is ready.  Its
     * requests' query is held by the relay until those changes are made. */
    static struct pgproxy proxy;
    char conninfo[256];
    pgproxy_start(&proxy, f.pg.name, conninfo, sizeof(conninfo));
    snpd_proc_start(&f.snpd, f.pg.conninfo, NULL, true);
    int first_port = f.snpd.port;
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    cr_assert(fix_wait_capacity(&f, first_port, 2, 5000));

    pgproxy_hold(&proxy, "FROM request r JOIN commune c");
    struct snpd_proc second;
    snpd_proc_start(&second, conninfo, NULL, false);
    bool holding;
    WAIT_UNTIL(holding, pgproxy_holding(&proxy), 10000);
    cr_assert(holding, "the second process never read its requests");
    cr_assert(snpd_proc_wait_status(&second, "/readyz", 503, 5000));

    /* Through the first, after the second read the slots: one withdrawn,
     * three published. */
    char body[96];
    snprintf(body, sizeof(body), "{\"slot_ids\": [%ld]}",
             pgtest_long(&f.pg, "SELECT min(id) FROM slot"));
    int st;
    json_decref(
        fix_api_port(first_port, "POST", "/api/v1/slots/withdraw", f.token[FIX_GP_1], body, &st));
    cr_assert_eq(st, 200);
    fix_publish(&f, FIX_GP_2, 3, 90, 30, "[\"pharmacy\"]");
    cr_assert(fix_wait_capacity(&f, first_port, 4, 5000));
    /* The announcements have left the database before the load goes on.
     * Their delivery to the held process cannot be seen from here (nothing
     * answers for it until the load is released), so this stays a time: the
     * changes are committed already, and PostgreSQL sends a notification to
     * an idle listener at once. */
    test_sleep_ms(200);

    pgproxy_release(&proxy);
    cr_assert(snpd_proc_wait_status(&second, "/readyz", 200, 15000), "never ready");
    cr_assert(fix_wait_capacity(&f, second.port, 4, 5000),
              "the second process counts the slots as they were when it read them");
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
    snpd_proc_stop(&f.snpd, SIGTERM, 15000);
    pgproxy_stop(&proxy);
}
