/* Failover of the PostgreSQL primary under a booking burst (issue 13).
 *
 * deploy/ha/up.sh starts three PostgreSQL nodes under Patroni, one etcd
 * member and HAProxy; two snpd processes connect through HAProxy and apply
 * their migrations at start.  Six WebSocket clients, three on each process,
 * book one slot after another (request.create, then offer.accept of the slot
 * held), retrying a call answered `unavailable` as the protocol says (§7: the
 * same message again, the same client_ref).  A moment into the burst the
 * primary goes: its postmaster killed (SIGKILL), or, in the second test, a
 * planned switchover (patronictl); Patroni promotes the synchronous standby
 * and HAProxy follows it.  The clients go on booking until both processes
 * have booked again, then the test checks:
 *
 *   - every booking a client got acknowledged is in the database once, on
 *     the slot it was acknowledged for, and the database holds no other
 *     booking of these clients (a retried call never booked twice);
 *   - no slot is booked twice;
 *   - every call was answered within 20 s (no hang), and every error
 *     answered was `unavailable`;
 *   - both processes booked again after the kill without being restarted.
 *
 * It prints "[failover]" lines: bookings, errors, when each process answered
 * unavailable, and the time from the kill (or the switchover's end) to each
 * process's first booking afterwards.  Without the commands patroni,
 * etcd and haproxy the program exits with status 77, which ctest reports as
 * skipped (deploy/install.sh --ha installs them).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "clients/lib/snpclient.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#define SKIP_STATUS  77 /* ctest's SKIP_RETURN_CODE for this test */
#define PROCESSES    2
#define CLIENTS      6 /* three per process */
#define MAX_BOOKINGS 512
#define CALL_TIMEOUT 20000 /* ms: past it a call counts as a hang */
#define RETRY_MS     200   /* between two tries of a call answered unavailable */
#define PAUSE_MS     150   /* between two bookings: under the protocol's rate limit */
#define NODES        3

static struct fixture f;
static struct snpd_proc procs[PROCESSES];
static char ha_dir[160];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* True when `name` is an executable file in a folder of $PATH or in
 * /usr/sbin (haproxy's, often missing from a user's PATH; up.sh adds it). */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char full[4200];
        snprintf(full, sizeof(full), "%s/%s", d, name);
        if (access(full, X_OK) == 0)
            return true;
    }
    return false;
}

/* --- the Patroni set-up ------------------------------------------------------------ */

/* Reads the value of `key` (KEY=value) from DIR/ha.env into `out`. */
static bool ha_env(const char *key, char *out, size_t size)
{
    char path[256], line[512];
    snprintf(path, sizeof(path), "%s/ha.env", ha_dir);
    FILE *in = fopen(path, "r");
    if (!in)
        return false;
    size_t klen = strlen(key);
    bool found = false;
    while (!found && fgets(line, sizeof(line), in)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            /* Values may be in single quotes (paths). */
            const char *v = line + klen + 1;
            v += *v == '\'';
            snprintf(out, size, "%s", v);
            out[strcspn(out, "'\n")] = '\0';
            found = true;
        }
    }
    fclose(in);
    return found;
}

/* The node whose Patroni answers 200 to GET `path` (/primary, /sync), or -1. */
static int ha_node(const char *path)
{
    for (int i = 0; i < NODES; i++) {
        char key[32], port[16];
        snprintf(key, sizeof(key), "HA_REST_PORT_node%d", i + 1);
        cr_assert(ha_env(key, port, sizeof(port)), "%s missing from ha.env", key);
        struct http_response r;
        if (http_request(atoi(port), "GET", path, NULL, NULL, &r) == 0) {
            bool yes = r.status == 200;
            http_response_free(&r);
            if (yes)
                return i;
        }
    }
    return -1;
}

/* The postmaster's pid of node `i`: the first line of its postmaster.pid. */
static pid_t ha_postmaster(int i)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/node%d/data/postmaster.pid", ha_dir, i + 1);
    FILE *in = fopen(path, "r");
    cr_assert(in, "cannot read %s", path);
    long pid = 0;
    cr_assert(fscanf(in, "%ld", &pid) == 1 && pid > 1, "no pid in %s", path);
    fclose(in);
    return (pid_t)pid;
}

static void run_script(const char *script, const char *arg)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s/deploy/ha/%s' %s '%s' </dev/null", getenv("SNP_SOURCE_DIR"),
             script, arg, ha_dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", script);
}

static void setup(void)
{
    snprintf(ha_dir, sizeof(ha_dir), "%s/ha.XXXXXX", proc_scratch_dir());
    cr_assert(mkdtemp(ha_dir), "mkdtemp: %s", strerror(errno));
    run_script("up.sh", "");
}

/* Reads snpd's connection string, through HAProxy, into f.pg.conninfo. */
static void read_conninfo(void)
{
    char file[256];
    cr_assert(ha_env("HA_CONNINFO_FILE", file, sizeof(file)), "ha.env names no connection string");
    FILE *in = fopen(file, "r");
    cr_assert(in, "cannot read %s", file);
    cr_assert(fgets(f.pg.conninfo, sizeof(f.pg.conninfo), in));
    fclose(in);
    f.pg.conninfo[strcspn(f.pg.conninfo, "\n")] = '\0';
}

static void teardown(void)
{
    for (int i = 0; i < PROCESSES; i++)
        if (procs[i].pid > 0)
            snpd_proc_stop(&procs[i], SIGTERM, 15000);
    if (f.pg.conn)
        PQfinish(f.pg.conn);
    if (ha_dir[0])
        run_script("down.sh", "--purge");
}

TestSuite(failover, .init = setup, .fini = teardown, .timeout = 240);

/* --- the clients -------------------------------------------------------------------- */

struct acked {
    json_int_t booking;
    json_int_t slot;
};

struct client {
    int index;
    int port;
    int process;
    atomic_bool *stop;
    atomic_llong *event_ns; /* 0 until the primary is killed or switched */
    struct acked acked[MAX_BOOKINGS];
    int nacked;
    int unavailable;              /* calls answered unavailable (each retried) */
    int busy;                     /* accepts answered conflict (retried; see call()) */
    int other_errors;             /* calls answered another error */
    char last_error[200];         /* the last of those */
    int hangs;                    /* calls unanswered after CALL_TIMEOUT */
    int reconnects;               /* WebSocket connections lost and opened again */
    int64_t recovered_ns;         /* first booking acknowledged after the event */
    int64_t first_unavailable_ns; /* first and last answer unavailable */
    int64_t last_unavailable_ns;
};

/* The error code of a response text ("" when none). */
static void error_code(const char *response, char *code, size_t size)
{
    json_t *j = json_loads(response ? response : "", 0, NULL);
    snprintf(code, size, "%s",
             json_string_value(json_object_get(json_object_get(j, "error"), "code"))
                 ? json_string_value(json_object_get(json_object_get(j, "error"), "code"))
                 : "");
    json_decref(j);
}

/* Sends `type` with `data` until it is answered by anything but
 * `unavailable`, reopening the connection if it closed.  Returns the
 * response's data (a reference) or NULL after an error other than
 * unavailable, a hang, or the deadline. */
static json_t *call(struct client *c, struct snpclient *cl, struct snpclient_ws **ws,
                    const char *token, const char *type, const char *data, int64_t deadline_ns)
{
    while (now_ns() < deadline_ns) {
        if (!*ws) {
            *ws = snpclient_ws_open(cl, NULL, token, 5000, NULL, 0);
            if (!*ws) {
                test_sleep_ms(RETRY_MS);
                continue;
            }
        }
        char *response = NULL;
        int rc = snpclient_ws_call(*ws, type, data, CALL_TIMEOUT, &response);
        if (rc == 0) {
            json_t *j = json_loads(response, 0, NULL);
            free(response);
            json_t *d = json_incref(json_object_get(j, "data"));
            json_decref(j);
            return d;
        }
        if (rc == SNPCLIENT_ETIMEDOUT) {
            c->hangs++;
            return NULL;
        }
        if (rc == SNPCLIENT_ECLOSED) {
            snpclient_ws_close(*ws);
            *ws = NULL;
            c->reconnects++;
            continue;
        }
        char code[40];
        error_code(response, code, sizeof(code));
        if (strcmp(code, "unavailable") == 0) {
            c->unavailable++;
            c->last_unavailable_ns = now_ns();
            if (!c->first_unavailable_ns)
                c->first_unavailable_ns = c->last_unavailable_ns;
            free(response);
            test_sleep_ms(RETRY_MS);
            continue;
        }
        /* The held slot is accepted, so a conflict is never the final
         * "another slot for a booked request".  snpd used to answer it
         * while another update of the request was in flight in that process;
         * such a call now waits for the update (docs/dispatch.md), so this
         * count is expected to stay 0; it is retried and reported all the
         * same, so that a regression shows in the figures. */
        if (strcmp(code, "conflict") == 0 && strcmp(type, "offer.accept") == 0) {
            c->busy++;
            free(response);
            test_sleep_ms(RETRY_MS);
            continue;
        }
        c->other_errors++;
        snprintf(c->last_error, sizeof(c->last_error), "%s: %s", type,
                 response ? response : snpclient_strerror(rc));
        free(response);
        return NULL;
    }
    return NULL;
}

static json_int_t offered_slot(const json_t *request)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(request, "offer"), "slot"), "slot_id"));
}

/* One booking: create (or find again) the request, wait for its offer if it
 * waits, accept the slot held.  Returns false when the client should stop. */
static bool book_one(struct client *c, struct snpclient *cl, struct snpclient_ws **ws, int n)
{
    const char *token = f.token[FIX_PHARMACY];
    int64_t deadline = now_ns() + (int64_t)60 * 1000000000;
    char ref[48];
    snprintf(ref, sizeof(ref), "ha-%d-%d", c->index, n);
    char *body = fix_request_body(ref, "24h");
    int64_t started = now_ns();
    json_t *r = call(c, cl, ws, token, "request.create", body, deadline);
    free(body);
    if (!r)
        return false;
    json_int_t request_id = json_integer_value(json_object_get(r, "request_id"));
    json_int_t slot = offered_slot(r);
    json_decref(r);
    /* Every candidate raced away by the other process: it waits and is
     * offered a slot by the next matching pass. */
    char get[64];
    snprintf(get, sizeof(get), "{\"request_id\": %lld}", (long long)request_id);
    while (slot <= 0 && now_ns() < deadline) {
        test_sleep_ms(RETRY_MS);
        r = call(c, cl, ws, token, "request.get", get, deadline);
        if (!r)
            return false;
        slot = offered_slot(r);
        json_decref(r);
    }
    if (slot <= 0)
        return false;
    char accept[96];
    snprintf(accept, sizeof(accept), "{\"request_id\": %lld, \"slot_id\": %lld}",
             (long long)request_id, (long long)slot);
    json_t *a = call(c, cl, ws, token, "offer.accept", accept, deadline);
    if (!a)
        return false;
    c->acked[c->nacked++] = (struct acked){
        .booking = json_integer_value(json_object_get(a, "booking_id")),
        .slot = json_integer_value(json_object_get(json_object_get(a, "slot"), "slot_id")),
    };
    json_decref(a);
    long long event = atomic_load(c->event_ns);
    if (event && started > event && !c->recovered_ns)
        c->recovered_ns = now_ns();
    return true;
}

static void *client_run(void *arg)
{
    struct client *c = arg;
    struct snpclient *cl = snpclient_new("127.0.0.1", c->port, false);
    struct snpclient_ws *ws = NULL;
    for (int n = 0; cl && !atomic_load(c->stop) && c->nacked < MAX_BOOKINGS; n++) {
        if (!book_one(c, cl, &ws, n))
            break;
        test_sleep_ms(PAUSE_MS);
    }
    snpclient_ws_close(ws);
    snpclient_free(cl);
    return NULL;
}

/* --- the test ------------------------------------------------------------------------- */

static long db_long(const char *sql)
{
    return pgtest_long(&f.pg, sql);
}

/* The primary's end during the burst: a crash (its postmaster killed) or a
 * planned switchover (patronictl, which stops it in fast mode: the sessions
 * with a query in flight get "terminating connection due to administrator
 * command"). */
enum event { EVENT_KILL, EVENT_SWITCHOVER };

/* Brings the primary down by `event`; returns when it started, and stores
 * in *event_ns when it ended: the kill itself, or patronictl's return (the
 * new primary leads then).  Bookings started after *event_ns count as
 * "booked again". */
static int64_t end_primary(enum event event, atomic_llong *event_ns, int before)
{
    int primary = ha_node("/primary");
    cr_assert(primary >= 0, "no node answers GET /primary");
    if (event == EVENT_KILL) {
        pid_t postmaster = ha_postmaster(primary);
        int64_t start = now_ns();
        atomic_store(event_ns, start);
        cr_assert_eq(kill(postmaster, SIGKILL), 0);
        printf("[failover] kill: killed the primary (node%d, postmaster %ld) after %d "
               "bookings\n",
               primary + 1, (long)postmaster, before);
        return start;
    }
    int standby = ha_node("/sync");
    cr_assert(standby >= 0, "no node answers GET /sync");
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "patronictl -c '%s/node%d/patroni.yml' switchover --force --candidate node%d "
             ">/dev/null",
             ha_dir, primary + 1, standby + 1);
    int64_t start = now_ns();
    int st = system(cmd);
    atomic_store(event_ns, now_ns());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "patronictl switchover failed");
    printf("[failover] switchover: from node%d to node%d after %d bookings; patronictl took "
           "%.2f s\n",
           primary + 1, standby + 1, before, (double)(atomic_load(event_ns) - start) / 1e9);
    return start;
}

static const char *const event_names[] = {"kill", "switchover"};

/* Two snpd processes, a booking burst, `event` three seconds in, and the
 * checks of the header. */
static void burst_around(enum event event)
{
    /* Both processes apply the migrations themselves, through HAProxy, at
     * the same time (snpd's advisory lock orders them). */
    read_conninfo();
    for (int i = 0; i < PROCESSES; i++)
        snpd_proc_start(&procs[i], f.pg.conninfo, NULL, false);
    for (int i = 0; i < PROCESSES; i++)
        cr_assert(snpd_proc_wait_status(&procs[i], "/readyz", 200, 30000), "snpd %d is not ready",
                  i);
    f.pg.conn = PQconnectdb(f.pg.conninfo);
    cr_assert(PQstatus(f.pg.conn) == CONNECTION_OK, "%s", PQerrorMessage(f.pg.conn));
    fixture_load(&f, "{}");
    f.snpd.port = procs[0].port; /* fix_publish's process; procs[] owns both */
    /* The territory reaches the running processes by notification. */
    cr_assert(fix_wait_capacity(&f, procs[0].port, 0, 10000) &&
              fix_wait_capacity(&f, procs[1].port, 0, 10000));
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 300, 60, 2, "[\"pharmacy\"]"), 300);
    cr_assert_eq(fix_publish(&f, FIX_GP_2, 300, 61, 2, "[\"pharmacy\"]"), 300);
    for (int i = 0; i < PROCESSES; i++)
        cr_assert(fix_wait_capacity(&f, procs[i].port, 600, 10000),
                  "snpd %d does not see the slots", i);

    atomic_bool stop = false;
    atomic_llong event_ns = 0;
    static struct client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct client){.index = i,
                                     .process = i % PROCESSES,
                                     .port = procs[i % PROCESSES].port,
                                     .stop = &stop,
                                     .event_ns = &event_ns};
        pthread_create(&threads[i], NULL, client_run, &clients[i]);
    }

    /* Into the burst, the primary goes. */
    test_sleep_ms(3000);
    int before = 0;
    for (int i = 0; i < CLIENTS; i++)
        before += clients[i].nacked;
    int64_t start = end_primary(event, &event_ns, before);

    /* Until both processes booked again (or a minute passed), then 2 s more. */
    int64_t recovered_deadline = now_ns() + (int64_t)60 * 1000000000;
    bool recovered = false;
    while (!recovered && now_ns() < recovered_deadline) {
        test_sleep_ms(100);
        int64_t first[PROCESSES] = {0};
        for (int i = 0; i < CLIENTS; i++) {
            int64_t t = clients[i].recovered_ns;
            int p = clients[i].process;
            if (t && (!first[p] || t < first[p]))
                first[p] = t;
        }
        recovered = true;
        for (int p = 0; p < PROCESSES; p++)
            recovered = recovered && first[p];
    }
    test_sleep_ms(2000);
    atomic_store(&stop, true);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);

    /* Figures. */
    int acked = 0, unavailable = 0, busy = 0, reconnects = 0;
    int64_t first[PROCESSES] = {0};
    for (int i = 0; i < CLIENTS; i++) {
        struct client *c = &clients[i];
        acked += c->nacked;
        unavailable += c->unavailable;
        busy += c->busy;
        reconnects += c->reconnects;
        if (c->recovered_ns && (!first[c->process] || c->recovered_ns < first[c->process]))
            first[c->process] = c->recovered_ns;
    }
    int64_t at = atomic_load(&event_ns);
    static const char *const after[] = {"the kill", "patronictl returned"};
    const char *what = event_names[event];
    printf("[failover] %s: %d bookings acknowledged (%d before); calls retried: %d answered "
           "unavailable, %d accepts answered conflict (request busy); %d WebSocket "
           "reconnections\n",
           what, acked, before, unavailable, busy, reconnects);
    for (int p = 0; p < PROCESSES; p++) {
        int64_t from = 0, to = 0;
        for (int i = 0; i < CLIENTS; i++) {
            const struct client *c = &clients[i];
            if (c->process != p || !c->first_unavailable_ns)
                continue;
            if (!from || c->first_unavailable_ns < from)
                from = c->first_unavailable_ns;
            if (c->last_unavailable_ns > to)
                to = c->last_unavailable_ns;
        }
        if (from)
            printf("[failover] %s: snpd %d answered unavailable from %.2f s to %.2f s after "
                   "it\n",
                   what, p, (double)(from - start) / 1e9, (double)(to - start) / 1e9);
        if (first[p])
            printf("[failover] %s: snpd %d booked again %.2f s after %s\n", what, p,
                   (double)(first[p] - at) / 1e9, after[event]);
        else
            printf("[failover] %s: snpd %d did not book again within 60 s\n", what, p);
    }
    fflush(stdout);

    /* Answers: only unavailable, never a hang. */
    for (int i = 0; i < CLIENTS; i++) {
        cr_expect_eq(clients[i].hangs, 0, "client %d: a call got no answer within %d ms", i,
                     CALL_TIMEOUT);
        cr_expect_eq(clients[i].other_errors, 0, "client %d: %s", i, clients[i].last_error);
    }
    for (int p = 0; p < PROCESSES; p++)
        cr_assert(first[p], "snpd %d did not book again after the failover", p);

    /* The connection opened before the kill went with the old primary. */
    PQfinish(f.pg.conn);
    f.pg.conn = PQconnectdb(f.pg.conninfo);
    cr_assert(PQstatus(f.pg.conn) == CONNECTION_OK, "%s", PQerrorMessage(f.pg.conn));

    /* Every acknowledged booking, once, on its slot; nothing else booked. */
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < clients[i].nacked; k++) {
            char sql[200];
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM booking WHERE id = %lld AND slot_id = %lld "
                     "AND status = 'booked'",
                     (long long)clients[i].acked[k].booking, (long long)clients[i].acked[k].slot);
            cr_assert_eq(db_long(sql), 1, "acknowledged booking %lld (slot %lld) is missing",
                         (long long)clients[i].acked[k].booking,
                         (long long)clients[i].acked[k].slot);
        }
    }
    cr_assert_eq(db_long("SELECT count(*) FROM booking WHERE status = 'booked'"), acked,
                 "the database holds bookings nobody was told of");
    cr_assert_eq(db_long("SELECT count(*) FROM (SELECT slot_id FROM booking WHERE status = "
                         "'booked' GROUP BY slot_id HAVING count(*) > 1) x"),
                 0, "a slot was booked twice");
    cr_assert_eq(db_long("SELECT count(*) FROM (SELECT request_id FROM booking GROUP BY "
                         "request_id HAVING count(*) > 1) x"),
                 0, "a request was booked twice");
    /* Both processes still ready, never restarted, and their memories
     * agree with the new primary: as many free slots. */
    long free_slots = db_long("SELECT count(*) FROM slot WHERE status = 'free'");
    for (int p = 0; p < PROCESSES; p++) {
        cr_assert(snpd_proc_wait_status(&procs[p], "/readyz", 200, 5000), "snpd %d not ready", p);
        cr_assert(fix_wait_capacity(&f, procs[p].port, free_slots, 10000),
                  "snpd %d does not count the %ld free slots of the database", p, free_slots);
    }
}

Test(failover, primary_killed_during_a_booking_burst)
{
    burst_around(EVENT_KILL);
}

Test(failover, switchover_during_a_booking_burst)
{
    burst_around(EVENT_SWITCHOVER);
}

/* Criterion's own entry point, behind a check for the tools: without them
 * the whole program is skipped (ctest's SKIP_RETURN_CODE). */
int main(int argc, char *argv[])
{
    const char *missing = !in_path("patroni")   ? "patroni"
                          : !in_path("etcd")    ? "etcd"
                          : !in_path("haproxy") ? "haproxy"
                                                : NULL;
    if (missing) {
        printf("[failover] skipped: %s is not installed (deploy/install.sh --ha installs "
               "patroni, etcd-server and haproxy)\n",
               missing);
        return SKIP_STATUS;
    }
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
