/* The appointment push to the SAS platform (dispatcher/jobs/outbox.c,
 * sql/migrations/0018_appointment_outbox.sql, docs/fhir.md "Appointment
 * push"), against real snpd processes, a real PostgreSQL and a stand-in
 * platform: a small HTTP server in a thread of the test that answers as told
 * (2xx, 5xx, a stall, a refusal) and keeps every request it received.
 *
 * The tests assert what arrives, never how fast: every wait is a poll with a
 * generous bound, so that they pass on a slow, loaded machine and under the
 * sanitizers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/httpstub.h"
#include "tests/support/wait.h"

#define PUBLIC_URL   "https://snp.cpts-test.example"
#define ID_SYSTEM    PUBLIC_URL "/fhir/sid/appointment"
#define REGULATOR    "10999900045"
#define NBOOKINGS    3
#define MAX_RECEIVED 512
#define WAIT_MS                                                                                    \
    (getenv("SNP_OUTBOX_WAIT_MS")                                                                  \
         ? atoi(getenv("SNP_OUTBOX_WAIT_MS"))                                                      \
         : 120000) /* the bound of every wait; reached only when broken */

/* --- the stand-in platform --------------------------------------------------------- */

enum platform_mode {
    ANSWER_OK,     /* 201 to a creation, 200 to an update of a known one, 404 otherwise */
    ANSWER_5XX,    /* 503 to everything */
    ANSWER_STALL,  /* reads the request and says nothing until told otherwise */
    ANSWER_REFUSE, /* 422 to everything */
};

struct received {
    char method[8];
    long long booking; /* the identifier's value */
    char status[16];   /* the Appointment's status */
    char *body;
    int answer; /* what the platform answered (0: nothing) */
};

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* signalled when mode or stop change */
    int listen_fd;
    int port;
    volatile int stop;
    enum platform_mode mode;
    long long known[64]; /* appointments created */
    int nknown;
    int nstalled; /* requests held without an answer */
    struct received got[MAX_RECEIVED];
    int ngot;
} pf;

static enum platform_mode pf_mode(void)
{
    pthread_mutex_lock(&pf.lock);
    enum platform_mode m = pf.mode;
    pthread_mutex_unlock(&pf.lock);
    return m;
}

static void pf_set_mode(enum platform_mode m)
{
    pthread_mutex_lock(&pf.lock);
    pf.mode = m;
    pthread_cond_broadcast(&pf.changed);
    pthread_mutex_unlock(&pf.lock);
}

/* Forgets every appointment, as a platform that lost them would. */
static void pf_forget(void)
{
    pthread_mutex_lock(&pf.lock);
    pf.nknown = 0;
    pthread_mutex_unlock(&pf.lock);
}

static bool pf_known(long long id)
{
    for (int i = 0; i < pf.nknown; i++) {
        if (pf.known[i] == id)
            return true;
    }
    return false;
}

static void answer(int fd, int status)
{
    char text[256];
    int n = snprintf(text, sizeof(text),
                     "HTTP/1.1 %d X\r\nContent-Type: application/fhir+json\r\n"
                     "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
                     status);
    ssize_t w = write(fd, text, (size_t)n);
    (void)w;
}

static void serve(int fd)
{
    char *body = NULL;
    char *req = httpstub_read_request(fd, &pf.stop, &body);
    if (!req)
        return;
    json_t *doc = json_loads(body, 0, NULL);
    const char *value = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "identifier"), 0), "value"));
    struct received r = {0};
    sscanf(req, "%7s", r.method);
    r.booking = value ? atoll(value) : 0;
    const char *status = json_string_value(json_object_get(doc, "status"));
    snprintf(r.status, sizeof(r.status), "%s", status ? status : "");
    r.body = strdup(body);
    json_decref(doc);
    enum platform_mode m = pf_mode();
    char c;
    if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        /* snpd gave up on this exchange while it waited in the listen
         * queue: a real platform would have handled it when it came, not
         * now, so it is not handled at all. */
    } else if (m == ANSWER_STALL) {
        pthread_mutex_lock(&pf.lock);
        pf.nstalled++;
        /* Hold the exchange until the test changes the mode: snpd's timeout
         * ends it first. */
        while (!pf.stop && pf.mode == ANSWER_STALL)
            pthread_cond_wait(&pf.changed, &pf.lock);
        pthread_mutex_unlock(&pf.lock);
    } else {
        pthread_mutex_lock(&pf.lock);
        if (m == ANSWER_5XX)
            r.answer = 503;
        else if (m == ANSWER_REFUSE)
            r.answer = 422;
        else if (strcmp(r.method, "POST") == 0) {
            r.answer = 201;
            if (!pf_known(r.booking) && pf.nknown < 64)
                pf.known[pf.nknown++] = r.booking;
        } else
            r.answer = pf_known(r.booking) ? 200 : 404;
        pthread_mutex_unlock(&pf.lock);
        answer(fd, r.answer);
    }
    pthread_mutex_lock(&pf.lock);
    if (pf.ngot < MAX_RECEIVED)
        pf.got[pf.ngot++] = r;
    else
        free(r.body);
    pthread_mutex_unlock(&pf.lock);
    free(req);
}

static void *platform_main(void *arg)
{
    (void)arg;
    while (!pf.stop) {
        struct pollfd p = {.fd = pf.listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(pf.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(fd);
        close(fd);
    }
    return NULL;
}

static void platform_start(void)
{
    pthread_mutex_init(&pf.lock, NULL);
    pthread_cond_init(&pf.changed, NULL);
    pf.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(pf.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(pf.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(pf.listen_fd, (struct sockaddr *)&a, &alen);
    pf.port = ntohs(a.sin_port);
    cr_assert_eq(listen(pf.listen_fd, 64), 0);
    cr_assert_eq(pthread_create(&pf.thread, NULL, platform_main, NULL), 0);
}

static void platform_stop(void)
{
    pthread_mutex_lock(&pf.lock);
    pf.stop = 1;
    pthread_cond_broadcast(&pf.changed);
    pthread_mutex_unlock(&pf.lock);
    pthread_join(pf.thread, NULL);
    close(pf.listen_fd);
    for (int i = 0; i < pf.ngot; i++)
        free(pf.got[i].body);
    pthread_cond_destroy(&pf.changed);
    pthread_mutex_destroy(&pf.lock);
}

static int pf_stalled(void)
{
    pthread_mutex_lock(&pf.lock);
    int n = pf.nstalled;
    pthread_mutex_unlock(&pf.lock);
    return n;
}

/* How many requests the platform answered `status` to (0: any, answered or not). */
static int pf_count(int status)
{
    pthread_mutex_lock(&pf.lock);
    int n = 0;
    for (int i = 0; i < pf.ngot; i++)
        n += status == 0 || pf.got[i].answer == status;
    pthread_mutex_unlock(&pf.lock);
    return n;
}

/* --- snpd and the territory -------------------------------------------------------- */

static struct fixture f;

static void setup(void)
{
    memset(&pf, 0, sizeof(pf));
    platform_start();
    setenv("SNPD_PUBLIC_URL", PUBLIC_URL, 1);
    setenv("SNPD_SAS_PUSH_TIMEOUT_MS", "1000", 1);
    setenv("SNPD_SAS_PUSH_RETRY_MAX_S", "1", 1);
    setenv("SNPD_SAS_PUSH_POLL_MS", "200", 1);
    setenv("SNPD_SAS_PUSH_DEAD_AFTER_S", "2", 1);
    fixture_setup(&f, "{}");
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    platform_stop();
}

static void set_platform_url(void)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE territory SET sas_platform_url = 'http://127.0.0.1:%d/fhir' WHERE id = '%s'",
             pf.port, FIX_TERRITORY);
    PQclear(pgtest_exec(&f.pg, sql));
}

/* A request of the fixture's SAS regulator, booked on the slot offered;
 * returns the booking id. */
static long long sas_request_booked(const char *client_ref)
{
    json_t *b = json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:b}, s:{s:s}, s:s, s:{s:{s:s, s:s}}}",
                          "client_ref", client_ref, "patient", "initials", "A. B.", "birth_year",
                          1970, "sex", "male", "commune_insee", "35236", "has_mt", 0, "motif",
                          "code", "ent", "urgency", "48h", "source", "sas", "regulator_name",
                          "Dr Régulateur", "regulator_id", REGULATOR);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int st;
    json_t *r = fix_api(&f, "POST", "/api/v1/requests", FIX_SAS, body, &st);
    free(body);
    cr_assert_eq(st, 201, "request.create answered %d", st);
    long long request = json_integer_value(json_object_get(r, "request_id"));
    long long slot = json_integer_value(
        json_object_get(json_object_get(json_object_get(r, "offer"), "slot"), "slot_id"));
    json_decref(r);
    cr_assert_gt(slot, 0, "no offer for %s", client_ref);
    char path[80], accept[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", request);
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", slot);
    r = fix_api(&f, "POST", path, FIX_SAS, accept, &st);
    cr_assert_eq(st, 200, "offer.accept answered %d", st);
    long long booking = json_integer_value(json_object_get(r, "booking_id"));
    json_decref(r);
    return booking;
}

/* Books a slot of GP1 open to the SAS `first_min` minutes ahead for a
 * request of the fixture's SAS regulator; returns the booking id. */
static long long book_for_sas(const char *client_ref, int first_min)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, first_min, 20, "[\"sas\"]"), 1);
    return sas_request_booked(client_ref);
}

/* The practitioner's report, written as snp_outcome_report writes it (the
 * API accepts one only from the slot's start, hours ahead here). */
static void report_outcome(long long booking, const char *outcome)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE booking SET outcome = '%s', outcome_at = now(), outcome_by = 'test' "
             "WHERE id = %lld",
             outcome, booking);
    PQclear(pgtest_exec(&f.pg, sql));
}

static void cancel_by_sas(long long booking)
{
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", booking);
    int st;
    json_t *r = fix_api(&f, "POST", path, FIX_SAS, "{\"reason\": \"patient_seen_elsewhere\"}", &st);
    cr_assert_eq(st, 200, "booking.cancel answered %d", st);
    json_decref(r);
}

static long outbox_count(const char *where)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM appointment_outbox WHERE %s", where);
    return pgtest_long(&f.pg, sql);
}

/* Prints the end of snpd's log, to see why a wait failed. */
static void dump_log(void)
{
    char *log = snpd_proc_log(&f.snpd);
    if (log) {
        size_t n = strlen(log);
        fprintf(stderr, "--- end of snpd's log ---\n%s\n", n > 4000 ? log + n - 4000 : log);
        free(log);
    }
}

/* Waits until `sql` (a count) reaches `want`; fails the test after WAIT_MS. */
static void wait_count(const char *where, long want)
{
    bool reached;
    WAIT_UNTIL(reached, outbox_count(where) == want, WAIT_MS);
    if (!reached)
        dump_log();
    cr_assert(reached, "appointment_outbox never had %ld rows where %s (%ld)", want, where,
              outbox_count(where));
}

static void wait_platform(int status, int want)
{
    bool reached;
    WAIT_UNTIL(reached, pf_count(status) >= want, WAIT_MS);
    cr_assert(reached, "the platform never had %d requests answered %d", want, status);
}

/* What the platform accepted for `booking`, in order, each run of identical
 * retries counted once; also checks that each retry carried the same
 * document. */
static int accepted_statuses(long long booking, char out[][16], int max)
{
    int n = 0;
    const char *last_body = NULL;
    pthread_mutex_lock(&pf.lock);
    for (int i = 0; i < pf.ngot; i++) {
        const struct received *r = &pf.got[i];
        if (r->booking != booking || r->answer < 200 || r->answer >= 300)
            continue;
        if (n > 0 && strcmp(out[n - 1], r->status) == 0) {
            cr_expect_str_eq(r->body, last_body, "a retry of booking %lld differs", booking);
            continue;
        }
        if (n < max)
            snprintf(out[n++], 16, "%s", r->status);
        last_body = r->body;
    }
    pthread_mutex_unlock(&pf.lock);
    return n;
}

TestSuite(outbox, .init = setup, .fini = teardown, .timeout = 600);

/* Only a slot the SAS sees, in a territory with a platform, is pushed; the
 * pushes survive a platform outage (5xx, then exchanges that stall), a
 * kill -9 of snpd in the middle, and a second snpd on the same database:
 * every change arrives, in order per appointment, none lost, duplicates only
 * as identical retries; an update the platform does not know is created. */
Test(outbox, every_change_arrives_in_order_through_outages_and_restarts)
{
    /* Without a platform URL nothing is written. */
    long long before = book_for_sas("sans-plateforme", 60);
    cr_assert_eq(outbox_count("true"), 0, "a push without a platform configured");
    (void)before;
    set_platform_url();
    /* A slot only pharmacies see is not pushed. */
    struct fix_booking hidden;
    fix_book(&f, "pharmacie", "Jeanne Dupont", "0600000000", 90, &hidden);
    cr_assert_eq(outbox_count("true"), 0, "a slot the SAS cannot see was pushed");

    long long booking[NBOOKINGS];
    for (int i = 0; i < NBOOKINGS; i++) {
        char ref[32];
        snprintf(ref, sizeof(ref), "sas-%d", i);
        booking[i] = book_for_sas(ref, 120 + 30 * i);
    }
    wait_count("state = 'sent'", NBOOKINGS);

    /* The platform fails: the no-shows wait. */
    pf_set_mode(ANSWER_5XX);
    for (int i = 0; i < NBOOKINGS; i++)
        report_outcome(booking[i], "no_show");
    wait_platform(503, 1);
    /* Then it stalls, and snpd dies without a word in the middle of an
     * exchange: that row stays leased to the dead process until its lease
     * runs out. */
    pf_set_mode(ANSWER_STALL);
    bool stalled;
    WAIT_UNTIL(stalled, pf_stalled() >= 1, WAIT_MS);
    cr_assert(stalled, "no push reached the stalled platform");
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGKILL, 10000), 128 + SIGKILL);
    /* The platform forgets everything; two processes share the database. */
    pf_forget();
    snpd_proc_start(&f.snpd, f.pg.conninfo, NULL, true);
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    for (int i = 0; i < NBOOKINGS; i++)
        report_outcome(booking[i], "attended");
    /* The new processes' exchanges wait behind the stalled one and time out. */
    bool timed_out;
    WAIT_UNTIL(timed_out, outbox_count("last_error ILIKE '%timed out%'") >= 1, WAIT_MS);
    cr_assert(timed_out, "no exchange timed out");
    pf_set_mode(ANSWER_OK);
    for (int i = 0; i < NBOOKINGS; i++)
        cancel_by_sas(booking[i]);

    wait_count("state <> 'sent'", 0);
    cr_assert_eq(outbox_count("true"), NBOOKINGS * 4);
    static const char *const expected[] = {"booked", "noshow", "fulfilled", "cancelled"};
    for (int i = 0; i < NBOOKINGS; i++) {
        char got[16][16];
        int n = accepted_statuses(booking[i], got, 16);
        cr_assert_eq(n, 4, "booking %lld: %d distinct changes accepted", booking[i], n);
        for (int k = 0; k < 4; k++)
            cr_expect_str_eq(got[k], expected[k], "booking %lld, change %d", booking[i], k + 1);
    }
    if (getenv("SNP_OUTBOX_VERBOSE")) {
        for (int i = 0; i < pf.ngot; i++)
            fprintf(stderr, "[outbox] %s booking %lld %s -> %d\n", pf.got[i].method,
                    pf.got[i].booking, pf.got[i].status, pf.got[i].answer);
    }
    /* The platform had forgotten them: each update was answered 404 and
     * sent again as a creation. */
    cr_expect_geq(pf_count(404), 1, "no update of an unknown appointment");

    /* The document (FrAppointmentSAS). */
    pthread_mutex_lock(&pf.lock);
    json_t *doc = json_loads(pf.got[0].body, 0, NULL);
    cr_expect_str_eq(pf.got[0].method, "POST", "the first push is not a creation");
    pthread_mutex_unlock(&pf.lock);
    cr_assert_not_null(doc);
    const char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect(strstr(text, "\"resourceType\":\"Appointment\"") != NULL, "%s", text);
    cr_expect(strstr(text, "\"system\":\"" ID_SYSTEM "\"") != NULL, "%s", text);
    cr_expect(strstr(text, "\"value\":\"8" FIX_GP1 "\"") != NULL, "%s", text);
    cr_expect(strstr(text, "\"status\":\"accepted\"") != NULL, "%s", text);
    cr_expect(strstr(text, "\"value\":\"8" REGULATOR "\"") != NULL, "%s", text);
    cr_expect(strstr(text, "FrAppointmentOperator") != NULL, "%s", text);
    cr_expect(strstr(text, "\"reference\":\"Slot/") != NULL, "%s", text);
    /* No patient data in the push. */
    cr_expect(strstr(text, "A. B.") == NULL && strstr(text, "1970") == NULL, "%s", text);
    free((void *)text);
    json_decref(doc);

    /* Visible in /metrics. */
    struct http_response m;
    cr_assert_eq(http_request(second.port, "GET", "/metrics", NULL, NULL, &m), 0);
    cr_expect(strstr(m.body, "snpd_sas_push_sent_total") != NULL);
    cr_expect(strstr(m.body, "snpd_sas_push_failures_total") != NULL);
    http_response_free(&m);
    snpd_proc_stop(&second, SIGTERM, 20000);
}

/* A push the platform keeps refusing (4xx) is given up after
 * sas_push_dead_after_s, and shown as such. */
/* Whether /metrics counts one push given up; the request must succeed. */
static bool metrics_show_one_dead_push(void *arg)
{
    (void)arg;
    struct http_response m;
    cr_assert_eq(http_request(f.snpd.port, "GET", "/metrics", NULL, NULL, &m), 0);
    bool seen = strstr(m.body, "\nsnpd_sas_push_dead 1\n") != NULL;
    http_response_free(&m);
    return seen;
}

Test(outbox, a_refused_push_goes_to_dead_letter)
{
    set_platform_url();
    pf_set_mode(ANSWER_REFUSE);
    long long booking = book_for_sas("refus", 120);
    wait_count("state = 'dead'", 1);
    char where[128];
    snprintf(where, sizeof(where), "booking_id = %lld AND last_error LIKE 'HTTP 422%%'", booking);
    cr_expect_eq(outbox_count(where), 1);
    cr_expect_geq(pf_count(422), 2, "given up without retrying");
    /* The territory's coordinator sees it (push.list), a requester may not. */
    int st;
    json_t *r = fix_api(&f, "GET", "/api/v1/pushes?state=dead", FIX_COORDINATOR, NULL, &st);
    cr_assert_eq(st, 200, "push.list answered %d", st);
    json_t *p = json_array_get(json_object_get(r, "pushes"), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "pushes")), 1);
    cr_expect_eq(json_integer_value(json_object_get(p, "booking_id")), booking);
    cr_expect_str_eq(json_string_value(json_object_get(p, "state")), "dead");
    cr_expect_str_eq(json_string_value(json_object_get(p, "status")), "booked");
    cr_expect(strncmp(json_string_value(json_object_get(p, "last_error")), "HTTP 422", 8) == 0);
    json_decref(r);
    r = fix_api(&f, "GET", "/api/v1/pushes?state=pending", FIX_COORDINATOR, NULL, &st);
    cr_expect_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "pushes")), 0);
    json_decref(r);
    r = fix_api(&f, "GET", "/api/v1/pushes", FIX_PHARMACY, NULL, &st);
    cr_expect_eq(st, 403, "a pharmacy read the pushes (%d)", st);
    json_decref(r);
    /* The backlog figures follow within a few seconds. */
    cr_assert(wait_until(metrics_show_one_dead_push, NULL, WAIT_MS),
              "/metrics never showed the dead push");

    /* The cause understood, the coordinator sends it again (push.resend):
     * it reaches the platform, which now accepts it. */
    r = fix_api(&f, "GET", "/api/v1/pushes?state=dead", FIX_COORDINATOR, NULL, &st);
    json_int_t push = json_integer_value(fix_json_at(r, "pushes.0.push_id"));
    json_decref(r);
    cr_assert_gt(push, 0);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/pushes/%lld/resend", (long long)push);
    r = fix_api(&f, "POST", path, FIX_PHARMACY, NULL, &st);
    cr_expect_eq(st, 403, "a pharmacy sent a push again (%d)", st);
    json_decref(r);
    pf_set_mode(ANSWER_OK);
    r = fix_api(&f, "POST", path, FIX_COORDINATOR, NULL, &st);
    cr_assert_eq(st, 200, "push.resend answered %d", st);
    cr_expect_eq(json_integer_value(json_object_get(r, "requeued")), 1);
    json_decref(r);
    wait_count("state = 'sent'", 1);
    cr_expect_eq(outbox_count("state = 'dead'"), 0);
    cr_expect_geq(pf_count(201), 1, "the platform never received the push sent again");
    /* Not dead any more: a second resend is a conflict; none is not found. */
    r = fix_api(&f, "POST", path, FIX_COORDINATOR, NULL, &st);
    cr_expect_eq(st, 409, "%d", st);
    json_decref(r);
    r = fix_api(&f, "POST", "/api/v1/pushes/999999/resend", FIX_COORDINATOR, NULL, &st);
    cr_expect_eq(st, 404, "%d", st);
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'push.resend'"), 1);
}

/* A booking on a CSNP shift nobody is named for cannot be pushed (the
 * Appointment names its practitioner); once the coordinator names one it is
 * created on the platform, a new practitioner updates it, and freeing the
 * shift sends nothing (sql/migrations/0027). */
Test(outbox, a_csnp_booking_is_pushed_once_a_practitioner_is_named)
{
    set_platform_url();
    char when[32];
    fix_slot_start(150, when);
    json_t *body =
        json_pack("{s:I, s:s, s:[s], s:[{s:s, s:i}]}", "site_id", (json_int_t)f.site_csnp, "mode",
                  "office", "audiences", "sas", "slots", "start", when, "duration_min", 20);
    int st;
    json_t *r = fix_api_json(&f, "POST", "/api/v1/slots", FIX_COORDINATOR, body, &st);
    cr_assert_eq(st, 201, "publishing for the CSNP's shift answered %d", st);
    long long slot = json_integer_value(json_array_get(json_object_get(r, "slot_ids"), 0));
    json_decref(r);
    long long booking = sas_request_booked("csnp-sans-medecin");
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT slot_id FROM booking WHERE id = %lld", booking);
    cr_assert_eq(pgtest_long(&f.pg, sql), slot, "the SAS's request was not booked on the shift");
    cr_assert_eq(outbox_count("true"), 0, "a booking without a practitioner was pushed");

    snprintf(sql, sizeof(sql), "SELECT shift_id FROM slot WHERE id = %lld", slot);
    long long shift = pgtest_long(&f.pg, sql);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/shifts/%lld/assign", shift);
    static const char *const who[] = {FIX_GP1, FIX_GP2};
    for (int i = 0; i < 2; i++) {
        char assign[96];
        snprintf(assign, sizeof(assign), "{\"rpps\": \"%s\", \"duty_status\": \"locum\"}", who[i]);
        r = fix_api(&f, "POST", path, FIX_COORDINATOR, assign, &st);
        cr_assert_eq(st, 200, "shift.assign answered %d", st);
        json_decref(r);
        wait_count("state = 'sent'", i + 1);
    }
    r = fix_api(&f, "POST", path, FIX_COORDINATOR, "{}", &st);
    cr_assert_eq(st, 200, "freeing the shift answered %d", st);
    json_decref(r);
    cr_expect_eq(outbox_count("true"), 2, "freeing the shift was announced");

    /* Created with the first practitioner, updated with the second. */
    int created = 0, updated = 0;
    pthread_mutex_lock(&pf.lock);
    for (int i = 0; i < pf.ngot; i++) {
        const struct received *g = &pf.got[i];
        if (g->booking != booking || g->answer < 200 || g->answer >= 300)
            continue;
        cr_expect_str_eq(g->status, "booked");
        if (strcmp(g->method, "POST") == 0) {
            created++;
            cr_expect(strstr(g->body, "\"8" FIX_GP1 "\"") != NULL, "%s", g->body);
        } else {
            updated++;
            cr_expect(strstr(g->body, "\"8" FIX_GP2 "\"") != NULL, "%s", g->body);
        }
    }
    pthread_mutex_unlock(&pf.lock);
    cr_expect_eq(created, 1);
    cr_expect_eq(updated, 1);
}

/* Delivered rows go after outbox_retention_days (sql/migrations/0028): a
 * booking keeps its last push (a later change is still announced, with the
 * next seq), the confirmations sent go, recent rows stay. */
Test(outbox, delivered_rows_are_deleted_after_their_retention)
{
    set_platform_url();
    long long old = book_for_sas("purge-old", 120);
    report_outcome(old, "no_show");
    long long recent = book_for_sas("purge-recent", 150);
    wait_count("state = 'sent'", 3);
    char sql[256], path[80];
    snprintf(sql, sizeof(sql), "SELECT request_id FROM booking WHERE id = %lld", old);
    snprintf(path, sizeof(path), "/api/v1/requests/%ld/confirmation", pgtest_long(&f.pg, sql));
    int st;
    json_t *r =
        fix_api(&f, "POST", path, FIX_SAS, "{\"channel\": \"sms\", \"to\": \"0700000001\"}", &st);
    cr_assert_eq(st, 200, "request.confirmation.send answered %d", st);
    json_decref(r);
    bool sent;
    WAIT_UNTIL(sent,
               pgtest_long(&f.pg, "SELECT count(*) FROM message_outbox WHERE state = 'sent'") == 1,
               WAIT_MS);
    cr_assert(sent, "the confirmation was never sent");
    /* Forty days pass for the old booking's pushes and the message. */
    snprintf(sql, sizeof(sql),
             "UPDATE appointment_outbox SET done_at = now() - interval '40 days' "
             "WHERE booking_id = %lld",
             old);
    PQclear(pgtest_exec(&f.pg, sql));
    PQclear(pgtest_exec(&f.pg, "UPDATE message_outbox SET done_at = now() - interval '40 days'"));
    /* The jobs run at start-up, then hourly. */
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 20000), 0);
    snpd_proc_start(&f.snpd, f.pg.conninfo, NULL, true);
    char where[128];
    snprintf(where, sizeof(where), "booking_id = %lld", old);
    wait_count(where, 1);
    snprintf(where, sizeof(where), "booking_id = %lld AND seq = 2", old);
    cr_expect_eq(outbox_count(where), 1, "the booking's last push was not the one kept");
    snprintf(where, sizeof(where), "booking_id = %lld", recent);
    cr_expect_eq(outbox_count(where), 1, "a recent push was deleted");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM message_outbox"), 0);
    cr_expect_eq(pgtest_long(&f.pg,
                             "SELECT count(*) FROM audit WHERE action = 'outbox.purge' "
                             "AND detail ->> 'pushes' = '1' AND detail ->> 'messages' = '1'"),
                 1);
    /* A later change of the old booking is still announced. */
    report_outcome(old, "attended");
    snprintf(where, sizeof(where), "booking_id = %lld AND seq = 3 AND state = 'sent'", old);
    wait_count(where, 1);
}
