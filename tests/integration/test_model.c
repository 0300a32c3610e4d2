/* A randomized, model-based test of the dispatcher's invariants
 * (docs/dispatch.md "Invariants") across two snpd processes on one database.
 *
 * Random sequences of publish (at the practitioners' practices, and slots
 * of the CSNP published by the coordinator with nobody on duty), withdraw,
 * create, accept (the held slot or any free one), decline, cancel, a
 * practitioner's cancellation, hold expiry and the naming (or removal) of
 * the practitioner on duty for a CSNP shift are sent over HTTP to either
 * process, by three requester organisations, two practitioners and the
 * coordinator.  Each organisation and practitioner, and the CSNP's
 * reception, watches its topic on both processes (WebSocket).  After every few
 * operations the test waits for a quiet point and checks, against its own
 * reference model and the database:
 *
 *   - no slot is booked twice, and every booking points to a booked slot;
 *   - no free slot exists that a waiting request may use (eligibility is
 *     computed here, from the rules of docs/dispatch.md, not by snpd);
 *   - an alternative is booked only when eligible, refused only when not;
 *   - every acknowledged booking, withdrawal and cancellation is in the
 *     database as acknowledged;
 *   - both processes' memories (slot.list) equal the database, the
 *     practitioner of each slot included, and so do their capacity.query
 *     counts and lists of free slots;
 *   - every live slot of a CSNP shift, and its booking, is the shift's
 *     practitioner on duty's (or nobody's while it is unfilled);
 *   - every offer made after a request's creation was pushed exactly once
 *     to each subscriber of its organisation, on both processes; every
 *     expiry likewise; each subscriber's last request.updated agrees with
 *     the database; each booking and cancellation reached each subscriber
 *     of its practitioner exactly once (a booking of a CSNP shift reached
 *     the practitioner on duty, and no other, as booking.created), and
 *     each booking and cancellation at the CSNP reached each subscriber of
 *     its reception exactly once;
 *   - a capacity watcher on each process saw every slot published during
 *     the run, and the last status it was pushed for each slot is the
 *     database's (whichever process made the change).
 *
 * The suite runs a fixed seed set.  For longer runs with random seeds:
 *   SNP_MODEL_MINUTES=30 ./deploy/test.sh -- -R test_model -V   (up to 55)
 * (SNP_MODEL_SEEDS="7 8 9" and SNP_MODEL_OPS=400 choose seeds and length).
 * The figures are printed as "[model] ...".
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "clients/lib/snpclient.h"
#include "tests/support/fixture.h"
#include "tests/support/rng.h"
#include "tests/support/wait.h"

#define SETTLE_MS 20000 /* a quiet point must come within this (housekeeping runs every 5 s) */

static struct fixture f;
static struct snpd_proc second;
static int ports[2];
static struct snpclient *clients[2];

static void setup(void)
{
    /* Holds run out only when the test makes them (op_expire): one that ran
     * out by itself between a quiet point and its checks would be counted
     * before its pushes were taken.  The run is capped below this. */
    fixture_setup(&f, "{\"hold_seconds\": 3600}");
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++) {
        snpclient_free(clients[i]);
        clients[i] = NULL;
    }
    if (second.pid > 0)
        snpd_proc_stop(&second, SIGTERM, 15000);
    fixture_teardown(&f);
}

TestSuite(model, .init = setup, .fini = teardown, .timeout = 4100);

/* --- randomness ------------------------------------------------------------------- */

static struct rng rng;

static int rnd(int n)
{
    return rng_below(&rng, n);
}

/* --- the reference model ---------------------------------------------------------- */

enum { ORG_PHARMACY, ORG_SAS, ORG_DESK, NORGS };
static const enum fix_role org_role[NORGS] = {FIX_PHARMACY, FIX_SAS, FIX_DESK};
static const enum fix_role gp_role[2] = {FIX_GP_1, FIX_GP_2};
static int64_t org_id[NORGS];

struct ids {
    int64_t *v;
    size_t n, cap;
};

static void ids_add(struct ids *s, int64_t v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        cr_assert_not_null(s->v);
    }
    s->v[s->n++] = v;
}

static bool ids_has(const struct ids *s, int64_t v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == v)
            return true;
    return false;
}

/* One push received: event, and the ids and status it names. */
struct push {
    char event[24];
    int64_t request;
    int64_t slot;
    int64_t booking;
    char status[16];
};

struct subscriber {
    struct snpclient_ws *ws;
    struct push *got;
    size_t n, cap;
};

static struct subscriber req_sub[NORGS][2];
static struct subscriber gp_sub[2][2];
static struct subscriber desk_sub[2]; /* the CSNP's reception */
static struct subscriber cap_sub[2];  /* the coordinator, on the capacity topic */
static int64_t slots_before;          /* the last slot id before the watchers subscribed */
static char reception[64];            /* its token's secret */

/* What the test knows for sure, from acknowledged answers. */
static struct {
    struct ids bookings;           /* acknowledged */
    struct ids bookings_cancelled; /* cancelled by an acknowledged call */
    struct ids withdrawn;
    struct ids requests_cancelled;
    struct ids created; /* requests, with their status at creation below */
    struct ids created_offered;
    long ops, quiet_points, violations;
    long counts[10];
} m;

static const char *const op_names[10] = {"publish",     "withdraw", "create", "accept",
                                         "alternative", "decline",  "cancel", "gp_cancel",
                                         "expire",      "assign"};

static void violation(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[model] VIOLATION: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    m.violations++;
}

/* --- talking to snpd -------------------------------------------------------------- */

static json_t *call(int port, const char *method, const char *path, enum fix_role as,
                    json_t *body, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *r = fix_api_port(port, method, path, f.token[as], text, status);
    free(text);
    return r;
}

static int any_port(void)
{
    return ports[rnd(2)];
}

static json_int_t num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void open_subscriber(struct subscriber *s, int process, const char *secret,
                            const char *topic)
{
    char err[200], data[64];
    s->ws = snpclient_ws_open(clients[process], NULL, secret, 5000, err, sizeof(err));
    cr_assert_not_null(s->ws, "WebSocket: %s", err);
    snprintf(data, sizeof(data), "{\"topics\": [\"%s\"]}", topic);
    char *resp = NULL;
    cr_assert_eq(snpclient_ws_call(s->ws, "subscribe", data, 5000, &resp), 0, "subscribe");
    free(resp);
}

/* A new, zeroed entry at the end of what `s` received. */
static struct push *next_push(struct subscriber *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->got = realloc(s->got, s->cap * sizeof(*s->got));
        cr_assert_not_null(s->got);
    }
    struct push *p = &s->got[s->n++];
    memset(p, 0, sizeof(*p));
    return p;
}

/* Takes every push waiting on `s` (nothing more within `quiet_ms`). */
static void drain(struct subscriber *s, int quiet_ms)
{
    char *text = NULL;
    while (snpclient_ws_recv(s->ws, quiet_ms, &text) == 0) {
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        const char *event = json_string_value(json_object_get(j, "event"));
        json_t *d = json_object_get(j, "data");
        if (event && strcmp(event, "capacity.changed") == 0) {
            /* One entry per change the push carries. */
            size_t i;
            json_t *c;
            json_array_foreach (json_object_get(d, "changes"), i, c) {
                struct push *p = next_push(s);
                snprintf(p->event, sizeof(p->event), "%s", event);
                p->slot = num(c, "slot_id");
                const char *st = json_string_value(json_object_get(c, "status"));
                snprintf(p->status, sizeof(p->status), "%s", st ? st : "");
            }
        } else if (event) {
            struct push *p = next_push(s);
            snprintf(p->event, sizeof(p->event), "%s", event);
            p->request = num(d, "request_id");
            p->booking = num(d, "booking_id");
            p->slot = num(d, "slot_id");
            if (!p->slot)
                p->slot = num(json_object_get(json_object_get(d, "offer"), "slot"), "slot_id");
            if (!p->slot)
                p->slot = num(json_object_get(d, "slot"), "slot_id");
            const char *st = json_string_value(json_object_get(d, "status"));
            snprintf(p->status, sizeof(p->status), "%s", st ? st : "");
        }
        json_decref(j);
    }
}

/* --- operations ------------------------------------------------------------------- */

static char *iso_in_minutes(int minutes, char buf[32])
{
    time_t t = time(NULL) + 60 * (time_t)minutes;
    t -= t % 300;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:00Z", &tm);
    return buf;
}

static void op_publish(void)
{
    int gp = rnd(2);
    static const char *const kinds[] = {"pharmacy", "sas", "desk", "public"};
    json_t *aud = json_array();
    int mask = 1 + rnd(15);
    for (int i = 0; i < 4; i++)
        if (mask & (1 << i))
            json_array_append_new(aud, json_string(kinds[i]));
    json_t *slots = json_array();
    int n = 1 + rnd(3);
    char buf[32];
    for (int i = 0; i < n; i++)
        json_array_append_new(slots, json_pack("{s:s, s:i}", "start",
                                               iso_in_minutes(30 + rnd(1380), buf),
                                               "duration_min", 15));
    /* One publication in four: slots of the CSNP, by the coordinator, for
     * whoever is on duty. */
    bool csnp = rnd(4) == 0;
    json_t *body = json_pack("{s:I, s:s, s:o, s:o}", "site_id",
                             (json_int_t)(csnp      ? f.site_csnp
                                          : gp == 0 ? f.site_gp1
                                                    : f.site_gp2),
                             "mode", "office", "audiences", aud, "slots", slots);
    if (rnd(4) == 0)
        json_object_set_new(body, "restrictions",
                            rnd(2) ? json_pack("{s:i}", "max_age_years", 15 + rnd(40))
                                   : json_pack("{s:i}", "min_age_years", 18 + rnd(50)));
    int st;
    json_t *r =
        call(any_port(), "POST", "/api/v1/slots", csnp ? FIX_COORDINATOR : gp_role[gp], body, &st);
    if (st != 201)
        violation("publish answered %d", st);
    json_decref(r);
}

/* A row of a query's result, chosen at random; NULL when it has none. */
static PGresult *pick(const char *sql, int *row)
{
    return rng_pick_row(&rng, &f.pg, sql, row);
}

static int64_t val(PGresult *res, int row, int col)
{
    return atoll(PQgetvalue(res, row, col));
}

static void op_withdraw(void)
{
    int row;
    PGresult *res = pick("SELECT id, coalesce(rpps, ''), shift_id IS NOT NULL FROM slot"
                         " WHERE status = 'free' ORDER BY id",
                         &row);
    if (!res)
        return;
    int gp = strcmp(PQgetvalue(res, row, 1), FIX_GP1) == 0 ? 0 : 1;
    bool csnp = strcmp(PQgetvalue(res, row, 2), "t") == 0;
    int64_t id = val(res, row, 0);
    PQclear(res);
    int st;
    json_t *r =
        call(any_port(), "POST", "/api/v1/slots/withdraw", csnp ? FIX_COORDINATOR : gp_role[gp],
             json_pack("{s:[I]}", "slot_ids", (json_int_t)id), &st);
    if (st == 200)
        ids_add(&m.withdrawn, id);
    else if (st != 409)
        violation("withdraw of slot %lld answered %d", (long long)id, st);
    json_decref(r);
}

static void op_create(void)
{
    static int serial;
    int org = rnd(NORGS);
    char ref[48];
    snprintf(ref, sizeof(ref), "model-%llu-%d", (unsigned long long)(rng.state % 100000), serial++);
    json_t *body = json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:b}, s:{s:s}, s:s}", "client_ref", ref,
                             "patient", "initials", "M. D.", "birth_year", 1940 + rnd(83), "sex",
                             "female", "commune_insee", rnd(2) ? "35236" : "56001", "has_mt", 0,
                             "motif", "code", "ent", "urgency", rnd(2) ? "24h" : "48h");
    int st;
    json_t *r = call(any_port(), "POST", "/api/v1/requests", org_role[org], body, &st);
    if (st != 201) {
        violation("request.create answered %d", st);
    } else {
        ids_add(&m.created, num(r, "request_id"));
        const char *status = json_string_value(json_object_get(r, "status"));
        if (status && strcmp(status, "offered") == 0)
            ids_add(&m.created_offered, num(r, "request_id"));
    }
    json_decref(r);
}

static int org_of(int64_t organisation)
{
    for (int i = 0; i < NORGS; i++)
        if (org_id[i] == organisation)
            return i;
    return -1;
}

static const char *const OFFERED =
    "SELECT r.id, s.id, r.organisation_id FROM request r"
    " JOIN slot s ON s.held_for = r.id AND s.status = 'held'"
    " WHERE r.status = 'offered' ORDER BY r.id";

static void op_accept(void)
{
    int row;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0), slot = val(res, row, 1);
    int org = org_of(val(res, row, 2));
    PQclear(res);
    if (org < 0)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)rq);
    int st;
    json_t *r =
        call(any_port(), "POST", path, org_role[org], json_pack("{s:I}", "slot_id", slot), &st);
    if (st == 200)
        ids_add(&m.bookings, num(r, "booking_id"));
    else if (st != 409)
        violation("accept of held slot %lld for request %lld answered %d", (long long)slot,
                  (long long)rq, st);
    json_decref(r);
}

/* Eligibility, written from docs/dispatch.md and match.h for what this test
 * publishes: free, starting more than 5 minutes from now and not after the
 * deadline, open to the requester's kind, the patient's age within the
 * restrictions, not declined.  `r` and `s` are rows of the two queries below. */
static const char *const WAITING_ROWS =
    "SELECT r.id, r.requester_kind, floor(extract(epoch FROM r.deadline))::bigint,"
    " r.patient_age, r.declined_slots::text FROM request r WHERE r.status = 'waiting'"
    " ORDER BY r.id";
static const char *const FREE_ROWS =
    "SELECT s.id, floor(extract(epoch FROM s.starts_at))::bigint, s.audience::text,"
    " coalesce(s.min_age, -1), coalesce(s.max_age, -1) FROM slot s WHERE s.status = 'free'"
    " ORDER BY s.id";

static bool eligible(PGresult *rq, int i, PGresult *sl, int k, int64_t now)
{
    int64_t start = val(sl, k, 1);
    if (start <= now + 300 || start > val(rq, i, 2))
        return false;
    const char *aud = PQgetvalue(sl, k, 2);
    if (!strstr(aud, PQgetvalue(rq, i, 1)) && !strstr(aud, "public"))
        return false;
    int age = (int)val(rq, i, 3), lo = (int)val(sl, k, 3), hi = (int)val(sl, k, 4);
    if ((lo >= 0 && age < lo) || (hi >= 0 && age > hi))
        return false;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)val(sl, k, 0));
    const char *declined = PQgetvalue(rq, i, 4); /* {1,2,3} */
    for (const char *p = declined; (p = strstr(p, id)) != NULL; p++) {
        char before = p > declined ? p[-1] : '{', after = p[strlen(id)];
        if ((before == '{' || before == ',') && (after == '}' || after == ','))
            return false;
    }
    return true;
}

static int64_t db_now(void)
{
    return pgtest_long(&f.pg, "SELECT floor(extract(epoch FROM now()))::bigint");
}

static void op_alternative(void)
{
    int row;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0);
    int org = org_of(val(res, row, 2));
    PQclear(res);
    if (org < 0)
        return;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT r.id, r.requester_kind, floor(extract(epoch FROM r.deadline))::bigint,"
             " r.patient_age, r.declined_slots::text FROM request r WHERE r.id = %lld",
             (long long)rq);
    PGresult *rr = pgtest_exec(&f.pg, sql);
    int k;
    PGresult *sl = pick(FREE_ROWS, &k);
    if (!sl) {
        PQclear(rr);
        return;
    }
    bool ok = eligible(rr, 0, sl, k, db_now());
    int64_t slot = val(sl, k, 0);
    PQclear(rr);
    PQclear(sl);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)rq);
    int st;
    json_t *r =
        call(any_port(), "POST", path, org_role[org], json_pack("{s:I}", "slot_id", slot), &st);
    if (st == 200) {
        ids_add(&m.bookings, num(r, "booking_id"));
        if (!ok)
            violation("request %lld booked slot %lld, which it may not use", (long long)rq,
                      (long long)slot);
    } else if (st == 400 && ok) {
        violation("request %lld was refused slot %lld, which it may use", (long long)rq,
                  (long long)slot);
    } else if (st != 400 && st != 409) {
        violation("accept of alternative %lld answered %d", (long long)slot, st);
    }
    json_decref(r);
}

static void op_decline(void)
{
    int row;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0), slot = val(res, row, 1);
    int org = org_of(val(res, row, 2));
    PQclear(res);
    if (org < 0)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/decline", (long long)rq);
    int st;
    json_decref(
        call(any_port(), "POST", path, org_role[org], json_pack("{s:I}", "slot_id", slot), &st));
    if (st != 200 && st != 409)
        violation("decline answered %d", st);
}

static void op_cancel(void)
{
    int row;
    PGresult *res = pick("SELECT id, organisation_id FROM request"
                         " WHERE status IN ('waiting', 'offered', 'booked') ORDER BY id",
                         &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0);
    int org = org_of(val(res, row, 1));
    PQclear(res);
    if (org < 0)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/cancel", (long long)rq);
    int st;
    json_decref(call(any_port(), "POST", path, org_role[org],
                     json_pack("{s:s}", "reason", "patient_request"), &st));
    if (st == 200)
        ids_add(&m.requests_cancelled, rq);
    else if (st != 409)
        violation("request.cancel answered %d", st);
}

static void op_gp_cancel(void)
{
    int row;
    PGresult *res = pick("SELECT id, rpps FROM booking WHERE status = 'booked' ORDER BY id", &row);
    if (!res)
        return;
    int64_t id = val(res, row, 0);
    int gp = strcmp(PQgetvalue(res, row, 1), FIX_GP1) == 0 ? 0 : 1;
    PQclear(res);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)id);
    int st;
    json_decref(call(any_port(), "POST", path, gp_role[gp],
                     json_pack("{s:s}", "reason", "practitioner_unavailable"), &st));
    if (st == 200)
        ids_add(&m.bookings_cancelled, id);
    else if (st != 404 && st != 409)
        violation("booking.cancel answered %d", st);
}

/* A hold runs out: by the database's clock (the processes' memories still
 * expect it later), ended by housekeeping, the test's or the processes'. */
static void op_expire(void)
{
    int row;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE slot SET hold_expires_at = date_trunc('second', now()) - interval '1 second'"
             " WHERE id = %lld AND status = 'held'",
             (long long)val(res, row, 1));
    PQclear(res);
    PQclear(pgtest_exec(&f.pg, sql));
    if (rnd(2))
        PQclear(pgtest_exec(&f.pg, "SELECT count(*) FROM snp_housekeeping('test')"));
}

/* The coordinator names GP1 or GP2 on duty for a CSNP shift, with a
 * status, or frees it.  A practitioner with a slot of their own at the CSNP
 * at the same time would be a conflict; here they publish only at their
 * practices, so every assignment is answered 200. */
static void op_assign(void)
{
    int row;
    PGresult *res = pick("SELECT id FROM shift ORDER BY id", &row);
    if (!res)
        return;
    int64_t shift = val(res, row, 0);
    PQclear(res);
    static const char *const statuses[] = {"independent", "locum", "retired", "resident"};
    int who = rnd(3);
    json_t *body = who == 2 ? json_object()
                            : json_pack("{s:s, s:s}", "rpps", who == 0 ? FIX_GP1 : FIX_GP2,
                                        "duty_status", statuses[rnd(4)]);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/shifts/%lld/assign", (long long)shift);
    int st;
    json_decref(call(any_port(), "POST", path, FIX_COORDINATOR, body, &st));
    if (st != 200)
        violation("shift.assign of shift %lld answered %d", (long long)shift, st);
}

static void run_one(void)
{
    static void (*const ops[])(void) = {op_publish,     op_withdraw, op_create, op_accept,
                                        op_alternative, op_decline,  op_cancel, op_gp_cancel,
                                        op_expire,      op_assign};
    static const int weight[] = {14, 3, 30, 14, 6, 8, 8, 4, 6, 6};
    size_t i = rng_weighted(&rng, weight, sizeof(weight) / sizeof(weight[0]));
    ops[i]();
    m.counts[i]++;
    m.ops++;
}

/* --- checks at a quiet point ------------------------------------------------------ */

static long idle_pairs(char *detail, size_t n)
{
    PGresult *rq = pgtest_exec(&f.pg, WAITING_ROWS);
    PGresult *sl = pgtest_exec(&f.pg, FREE_ROWS);
    int64_t now = db_now();
    long idle = 0;
    for (int i = 0; i < PQntuples(rq); i++)
        for (int k = 0; k < PQntuples(sl); k++)
            if (eligible(rq, i, sl, k, now) && idle++ == 0)
                snprintf(detail, n, "slot %s free while request %s waits", PQgetvalue(sl, k, 0),
                         PQgetvalue(rq, i, 0));
    PQclear(rq);
    PQclear(sl);
    return idle;
}

static int64_t mismatched_slot; /* the last slot memory and database disagreed on */

/* Prints the event log of a slot (to understand a violation). */
static void explain_slot(int64_t id)
{
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT id, kind, coalesce(request_id, 0), actor, xmin::text,"
             " to_char(at, 'HH24:MI:SS.MS') FROM event WHERE slot_id = %lld ORDER BY id",
             (long long)id);
    PGresult *res = pgtest_exec(&f.pg, sql);
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(stderr, "[model]   slot %lld: event %s %s request %s by %s (xact %s) at %s\n",
                (long long)id, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                PQgetvalue(res, i, 5));
    PQclear(res);
}

/* Whether process `p`'s memory (slot.list) equals the database's live slots. */
static bool memory_matches(int p, char *detail, size_t n)
{
    int st;
    json_t *r = call(ports[p], "GET", "/api/v1/slots?limit=1000", FIX_COORDINATOR, NULL, &st);
    PGresult *db = pgtest_exec(&f.pg, "SELECT id, status, coalesce(rpps, '') FROM slot"
                                      " WHERE status IN ('free', 'held', 'booked')"
                                      " AND starts_at >= now() ORDER BY starts_at, id");
    json_t *list = json_object_get(r, "slots");
    bool same = st == 200 && (int)json_array_size(list) == PQntuples(db);
    for (int i = 0; same && i < PQntuples(db); i++) {
        json_t *s = json_array_get(list, (size_t)i);
        const char *rpps = fix_json_str(s, "practitioner.rpps");
        same = num(s, "slot_id") == val(db, i, 0) &&
               strcmp(json_string_value(json_object_get(s, "status")), PQgetvalue(db, i, 1)) == 0 &&
               strcmp(rpps ? rpps : "", PQgetvalue(db, i, 2)) == 0;
        if (!same)
            mismatched_slot = num(s, "slot_id");
        if (!same)
            snprintf(detail, n,
                     "process %d: slot %lld %s of '%s' in memory, %s %s of '%s' in the database",
                     p + 1, (long long)num(s, "slot_id"),
                     json_string_value(json_object_get(s, "status")), rpps ? rpps : "",
                     PQgetvalue(db, i, 0), PQgetvalue(db, i, 1), PQgetvalue(db, i, 2));
    }
    if (!same && !detail[0]) {
        /* Name the first slot one side has and the other has not. */
        size_t i = 0;
        int k = 0;
        while (i < json_array_size(list) && k < PQntuples(db) &&
               num(json_array_get(list, i), "slot_id") == val(db, k, 0)) {
            i++;
            k++;
        }
        mismatched_slot = num(json_array_get(list, i), "slot_id");
        snprintf(detail, n, "process %d: %zu slots in memory, %d in the database (memory has %lld"
                            " where the database has %s)",
                 p + 1, json_array_size(list), PQntuples(db),
                 (long long)num(json_array_get(list, i), "slot_id"),
                 k < PQntuples(db) ? PQgetvalue(db, k, 0) : "none");
    }
    PQclear(db);
    json_decref(r);
    return same;
}

/* Whether process `p`'s capacity.query (as the SAS, over 48 hours: every
 * slot the test publishes starts within a day) counts and lists the
 * database's free slots.  It reads the slots' briefs (store.h), which
 * memory keeps apart from the slots that slot.list reads. */
static bool capacity_matches(int p, char *detail, size_t n)
{
    int st;
    json_t *r = call(ports[p], "GET", "/api/v1/capacity?horizon=48h", FIX_SAS, NULL, &st);
    PGresult *db = pgtest_exec(&f.pg, "SELECT id FROM slot WHERE status = 'free'"
                                      " AND starts_at >= now() ORDER BY starts_at, id");
    json_t *list = json_object_get(r, "slots");
    bool truncated = json_is_true(json_object_get(r, "truncated"));
    bool same = st == 200 && num(r, "total") == PQntuples(db) &&
                json_integer_value(fix_json_at(r, "by_mode.office")) == PQntuples(db) &&
                (truncated || (int)json_array_size(list) == PQntuples(db));
    for (int i = 0; same && !truncated && i < PQntuples(db); i++)
        same = num(json_array_get(list, (size_t)i), "slot_id") == val(db, i, 0);
    if (!same)
        snprintf(detail, n,
                 "process %d: capacity.query counts %lld free slots (%zu listed), the database"
                 " has %d",
                 p + 1, (long long)num(r, "total"), json_array_size(list), PQntuples(db));
    PQclear(db);
    json_decref(r);
    return same;
}

static bool settled(char *detail, size_t n)
{
    detail[0] = 0;
    if (idle_pairs(detail, n) > 0)
        return false;
    return memory_matches(0, detail, n) && memory_matches(1, detail, n) &&
           capacity_matches(0, detail, n) && capacity_matches(1, detail, n);
}

/* Whether the processes agree with the database and stay so: `arg` gets
 * what differs. */
static bool quiet(void *arg)
{
    char *detail = arg;
    long before = pgtest_long(&f.pg, "SELECT coalesce(max(id), 0) FROM event");
    if (!settled(detail, 256))
        return false;
    /* A time, not a condition: a silence window in which no event may
     * happen, so that the agreement is not a passing one. */
    test_sleep_ms(250);
    return pgtest_long(&f.pg, "SELECT coalesce(max(id), 0) FROM event") == before &&
           settled(detail, 256);
}

static void wait_quiet_point(void)
{
    char detail[256] = "";
    if (!wait_until(quiet, detail, SETTLE_MS)) {
        violation("no quiet point within %d ms: %s", SETTLE_MS, detail);
        if (mismatched_slot)
            explain_slot(mismatched_slot);
    }
    m.quiet_points++;
}

static void check_database(void)
{
    if (pgtest_long(&f.pg, "SELECT count(*) FROM (SELECT slot_id FROM booking WHERE status ="
                           " 'booked' GROUP BY slot_id HAVING count(*) > 1) x") != 0)
        violation("a slot is booked twice");
    if (pgtest_long(&f.pg, "SELECT count(*) FROM booking b JOIN slot s ON s.id = b.slot_id"
                           " WHERE b.status = 'booked' AND s.status <> 'booked'") != 0)
        violation("a live booking points to a slot that is not booked");
    /* The CSNP: every live slot and booking is the practitioner on duty's
     * (nobody's while the shift is unfilled); no outcome is reported here. */
    if (pgtest_long(&f.pg, "SELECT count(*) FROM slot s JOIN shift h ON h.id = s.shift_id"
                           " WHERE s.status IN ('free', 'held', 'booked')"
                           " AND s.rpps IS DISTINCT FROM h.rpps") != 0)
        violation("a live slot of a CSNP shift is not the practitioner on duty's");
    if (pgtest_long(&f.pg, "SELECT count(*) FROM booking b JOIN slot s ON s.id = b.slot_id"
                           " JOIN shift h ON h.id = s.shift_id WHERE b.status = 'booked'"
                           " AND b.rpps IS DISTINCT FROM h.rpps") != 0)
        violation("a live booking of a CSNP shift is not the practitioner on duty's");
    char sql[160];
    for (size_t i = 0; i < m.bookings.n; i++) {
        bool cancelled = ids_has(&m.bookings_cancelled, m.bookings.v[i]);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM booking WHERE id = %lld%s",
                 (long long)m.bookings.v[i], cancelled ? "" : " AND status = 'booked'");
        /* A booking may be cancelled through its request without the test
         * recording it: look for that cancellation too. */
        if (pgtest_long(&f.pg, sql) != 1) {
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM booking b JOIN request r ON r.id = b.request_id"
                     " WHERE b.id = %lld AND r.status = 'cancelled'",
                     (long long)m.bookings.v[i]);
            if (pgtest_long(&f.pg, sql) != 1)
                violation("acknowledged booking %lld is not in the database as acknowledged",
                          (long long)m.bookings.v[i]);
        }
    }
    for (size_t i = 0; i < m.withdrawn.n; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM slot WHERE id = %lld AND status ="
                                   " 'withdrawn'",
                 (long long)m.withdrawn.v[i]);
        if (pgtest_long(&f.pg, sql) != 1)
            violation("withdrawn slot %lld is not withdrawn", (long long)m.withdrawn.v[i]);
    }
    for (size_t i = 0; i < m.requests_cancelled.n; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM request WHERE id = %lld AND status ="
                                   " 'cancelled'",
                 (long long)m.requests_cancelled.v[i]);
        if (pgtest_long(&f.pg, sql) != 1)
            violation("cancelled request %lld is not cancelled",
                      (long long)m.requests_cancelled.v[i]);
    }
}

/* Prints the event log of a request (to understand a violation). */
static void explain_request(int64_t id)
{
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT id, kind, coalesce(slot_id, 0), actor, xmin::text, to_char(at, 'HH24:MI:SS.MS')"
             " FROM event WHERE request_id = %lld ORDER BY id",
             (long long)id);
    PGresult *res = pgtest_exec(&f.pg, sql);
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(stderr, "[model]   event %s %s slot %s by %s (xact %s) at %s\n",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    PQclear(res);
}

/* Counts the pushes `event` on `s` naming (request, slot). */
static int count_pushes(const struct subscriber *s, const char *event, int64_t request,
                        int64_t slot)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->got[i].event, event) == 0 && s->got[i].request == request &&
            (slot == 0 || s->got[i].slot == slot))
            n++;
    return n;
}

/* Each (request, slot) of `sql` (rows: request, slot, times) pushed as
 * `event` to every subscriber of organisation `org` exactly `times` times,
 * and nothing else of that event. */
static void check_event_pushes(int org, const char *event, const char *sql)
{
    PGresult *res = pgtest_exec(&f.pg, sql);
    for (int c = 0; c < 2; c++) {
        const struct subscriber *s = &req_sub[org][c];
        long expected = 0;
        for (int i = 0; i < PQntuples(res); i++) {
            int want = (int)val(res, i, 2);
            int got = count_pushes(s, event, val(res, i, 0), val(res, i, 1));
            expected += want;
            if (got != want) {
                violation("organisation %d, process %d: %s for request %s slot %s pushed %d"
                          " times, %d expected",
                          org, c + 1, event, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), got,
                          want);
                explain_request(val(res, i, 0));
            }
        }
        long total = 0;
        for (size_t i = 0; i < s->n; i++)
            total += strcmp(s->got[i].event, event) == 0;
        if (total != expected)
            violation("organisation %d, process %d: %ld %s pushes, %ld expected", org, c + 1,
                      total, event, expected);
    }
    PQclear(res);
}

/* Counts the booking.created (*nc) and booking.cancelled (*nx) pushes of
 * booking `b` that `s` received. */
static void count_booking_pushes(const struct subscriber *s, int64_t b, int *nc, int *nx)
{
    *nc = *nx = 0;
    for (size_t k = 0; k < s->n; k++) {
        if (s->got[k].booking != b)
            continue;
        *nc += strcmp(s->got[k].event, "booking.created") == 0;
        *nx += strcmp(s->got[k].event, "booking.cancelled") == 0;
    }
}

/* The pushes of the CSNP's bookings.  Its reception: each booking created
 * once and, if cancelled, cancelled once, on both processes.  A GP: each
 * live booking they are on duty for reached them (its last push to them is
 * booking.created), and nothing reached them of a booking that was never
 * theirs (its slot neither published for them, as a shift already assigned
 * to them does, nor handed to them), and a GP a live booking was taken from
 * was told so last (booking.handed_over). */
static void check_csnp_pushes(void)
{
    PGresult *res = pgtest_exec(&f.pg, "SELECT b.id, b.status, coalesce(b.rpps, ''),"
                                       " b.slot_id FROM booking b JOIN slot s"
                                       " ON s.id = b.slot_id WHERE s.shift_id IS NOT NULL"
                                       " ORDER BY b.id");
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t b = val(res, i, 0);
        bool is_cancelled = strcmp(PQgetvalue(res, i, 1), "cancelled") == 0;
        for (int c = 0; c < 2; c++) {
            int nc, nx;
            count_booking_pushes(&desk_sub[c], b, &nc, &nx);
            if (nc != 1 || nx != (is_cancelled ? 1 : 0))
                violation("reception, process %d: booking %lld pushed created %d, cancelled %d"
                          " times",
                          c + 1, (long long)b, nc, nx);
        }
        for (int g = 0; g < 2; g++) {
            const char *rpps = g == 0 ? FIX_GP1 : FIX_GP2;
            char sql[300];
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM event WHERE slot_id = %s"
                     " AND kind IN ('slot.published', 'slot.assigned') AND data ->> 'rpps' = '%s'",
                     PQgetvalue(res, i, 3), rpps);
            bool ever = strcmp(PQgetvalue(res, i, 2), rpps) == 0 || pgtest_long(&f.pg, sql) > 0;
            bool on_duty = !is_cancelled && strcmp(PQgetvalue(res, i, 2), rpps) == 0;
            for (int c = 0; c < 2; c++) {
                const struct subscriber *s = &gp_sub[g][c];
                const char *last = NULL;
                for (size_t k = 0; k < s->n; k++)
                    if (s->got[k].booking == b)
                        last = s->got[k].event;
                if (last && !ever)
                    violation("GP %d, process %d: %s pushed for booking %lld, never theirs", g + 1,
                              c + 1, last, (long long)b);
                if (on_duty && (!last || strcmp(last, "booking.created") != 0))
                    violation("GP %d, process %d: on duty for booking %lld, last pushed %s", g + 1,
                              c + 1, (long long)b, last ? last : "nothing");
                /* Handed to someone else (or to nobody): told so. */
                if (!on_duty && !is_cancelled && last && strcmp(last, "booking.created") == 0)
                    violation("GP %d, process %d: booking %lld handed over, last pushed %s", g + 1,
                              c + 1, (long long)b, last);
            }
        }
    }
    PQclear(res);
}

/* Every slot published since the watchers subscribed was pushed to the
 * capacity watcher of each process, and the last status pushed is the
 * database's. */
static void check_capacity_pushes(void)
{
    for (int c = 0; c < 2; c++)
        drain(&cap_sub[c], 150);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT id, status FROM slot WHERE id > %lld",
             (long long)slots_before);
    PGresult *res = pgtest_exec(&f.pg, sql);
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = val(res, i, 0);
        for (int c = 0; c < 2; c++) {
            const struct subscriber *s = &cap_sub[c];
            const char *last = NULL;
            for (size_t k = 0; k < s->n; k++)
                if (s->got[k].slot == id && strcmp(s->got[k].event, "capacity.changed") == 0)
                    last = s->got[k].status;
            if (!last)
                violation("process %d: slot %lld (%s) was never pushed to the capacity watcher",
                          c + 1, (long long)id, PQgetvalue(res, i, 1));
            else if (strcmp(last, PQgetvalue(res, i, 1)) != 0)
                violation("process %d: slot %lld is %s, last pushed to the capacity watcher %s",
                          c + 1, (long long)id, PQgetvalue(res, i, 1), last);
        }
    }
    PQclear(res);
}

static void check_pushes(void)
{
    for (int org = 0; org < NORGS; org++)
        for (int c = 0; c < 2; c++)
            drain(&req_sub[org][c], 150);
    for (int g = 0; g < 2; g++)
        for (int c = 0; c < 2; c++)
            drain(&gp_sub[g][c], 150);
    for (int c = 0; c < 2; c++)
        drain(&desk_sub[c], 150);
    char sql[900];
    for (int org = 0; org < NORGS; org++) {
        /* Offers made after the creation's own transaction (that one is
         * answered to the requester, not pushed). */
        snprintf(sql, sizeof(sql),
                 "SELECT e.request_id, e.slot_id, count(*) FROM event e"
                 " JOIN request r ON r.id = e.request_id"
                 " WHERE e.kind = 'offer.made' AND r.organisation_id = %lld"
                 " AND NOT EXISTS (SELECT 1 FROM event c WHERE c.request_id = e.request_id"
                 "   AND c.kind = 'request.created' AND c.xmin = e.xmin)"
                 " GROUP BY 1, 2",
                 (long long)org_id[org]);
        check_event_pushes(org, "offer.made", sql);
        snprintf(sql, sizeof(sql),
                 "SELECT e.request_id, e.slot_id, count(*) FROM event e"
                 " JOIN request r ON r.id = e.request_id"
                 " WHERE e.kind = 'offer.expired' AND r.organisation_id = %lld GROUP BY 1, 2",
                 (long long)org_id[org]);
        check_event_pushes(org, "offer.expired", sql);
        /* The last request.updated of each request agrees with the database. */
        snprintf(sql, sizeof(sql), "SELECT id, status FROM request WHERE organisation_id = %lld",
                 (long long)org_id[org]);
        PGresult *res = pgtest_exec(&f.pg, sql);
        for (int i = 0; i < PQntuples(res); i++) {
            int64_t id = val(res, i, 0);
            const char *initial = ids_has(&m.created_offered, id) ? "offered" : "waiting";
            for (int c = 0; c < 2; c++) {
                const struct subscriber *s = &req_sub[org][c];
                const char *last = initial;
                for (size_t k = 0; k < s->n; k++)
                    if (strcmp(s->got[k].event, "request.updated") == 0 && s->got[k].request == id)
                        last = s->got[k].status;
                if (strcmp(last, PQgetvalue(res, i, 1)) != 0)
                    violation("organisation %d, process %d: request %lld is %s, last pushed %s",
                              org, c + 1, (long long)id, PQgetvalue(res, i, 1), last);
            }
        }
        PQclear(res);
    }
    /* Bookings at the practices and their cancellations, to each subscriber
     * of the GP (those of the CSNP: check_csnp_pushes). */
    PGresult *csnp = pgtest_exec(&f.pg, "SELECT b.id FROM booking b JOIN slot s"
                                        " ON s.id = b.slot_id WHERE s.shift_id IS NOT NULL");
    struct ids at_csnp = {0};
    for (int i = 0; i < PQntuples(csnp); i++)
        ids_add(&at_csnp, val(csnp, i, 0));
    PQclear(csnp);
    for (int g = 0; g < 2; g++) {
        snprintf(sql, sizeof(sql),
                 "SELECT b.id, b.status FROM booking b JOIN slot s ON s.id = b.slot_id"
                 " WHERE b.rpps = '%s' AND s.shift_id IS NULL",
                 g == 0 ? FIX_GP1 : FIX_GP2);
        PGresult *res = pgtest_exec(&f.pg, sql);
        for (int c = 0; c < 2; c++) {
            const struct subscriber *s = &gp_sub[g][c];
            size_t created = 0, cancelled = 0;
            for (size_t k = 0; k < s->n; k++) {
                if (ids_has(&at_csnp, s->got[k].booking))
                    continue;
                created += strcmp(s->got[k].event, "booking.created") == 0;
                cancelled += strcmp(s->got[k].event, "booking.cancelled") == 0;
            }
            size_t want_cancelled = 0;
            for (int i = 0; i < PQntuples(res); i++) {
                int64_t b = val(res, i, 0);
                bool is_cancelled = strcmp(PQgetvalue(res, i, 1), "cancelled") == 0;
                want_cancelled += is_cancelled;
                int nc, nx;
                count_booking_pushes(s, b, &nc, &nx);
                if (nc != 1 || nx != (is_cancelled ? 1 : 0))
                    violation("GP %d, process %d: booking %lld pushed created %d, cancelled %d"
                              " times",
                              g + 1, c + 1, (long long)b, nc, nx);
            }
            if (created != (size_t)PQntuples(res) || cancelled != want_cancelled)
                violation("GP %d, process %d: %zu booking.created for %d bookings, %zu"
                          " booking.cancelled for %zu",
                          g + 1, c + 1, created, PQntuples(res), cancelled, want_cancelled);
        }
        PQclear(res);
    }
    free(at_csnp.v);
    check_csnp_pushes();
    check_capacity_pushes();
}

/* --- the run ---------------------------------------------------------------------- */

static void start_processes(void)
{
    fixture_start(&f);
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    ports[0] = f.snpd.port;
    ports[1] = second.port;
    for (int p = 0; p < 2; p++) {
        clients[p] = snpclient_new("127.0.0.1", ports[p], false);
        cr_assert_not_null(clients[p]);
    }
    const char *kinds[NORGS] = {"pharmacy", "sas", "desk"};
    for (int o = 0; o < NORGS; o++) {
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT id FROM organisation WHERE territory_id = '%s' AND kind = '%s'",
                 FIX_TERRITORY, kinds[o]);
        org_id[o] = pgtest_long(&f.pg, sql);
        for (int p = 0; p < 2; p++)
            open_subscriber(&req_sub[o][p], p, f.token[org_role[o]], "requests");
    }
    for (int g = 0; g < 2; g++)
        for (int p = 0; p < 2; p++)
            open_subscriber(&gp_sub[g][p], p, f.token[gp_role[g]], "bookings");
    /* The CSNP's reception, a token made through the protocol. */
    char body[96];
    snprintf(body, sizeof(body), "{\"role\": \"reception\", \"site_id\": %lld}",
             (long long)f.site_csnp);
    int st;
    json_t *r = fix_api(&f, "POST", "/api/v1/tokens", FIX_COORDINATOR, body, &st);
    cr_assert_eq(st, 201, "reception token: %d", st);
    snprintf(reception, sizeof(reception), "%s", json_string_value(json_object_get(r, "secret")));
    json_decref(r);
    for (int p = 0; p < 2; p++)
        open_subscriber(&desk_sub[p], p, reception, "bookings");
    slots_before = pgtest_long(&f.pg, "SELECT coalesce(max(id), 0) FROM slot");
    for (int p = 0; p < 2; p++)
        open_subscriber(&cap_sub[p], p, f.token[FIX_COORDINATOR], "capacity");
}

static void run_seed(uint64_t seed, void *arg)
{
    int ops = *(const int *)arg;
    rng_seed(&rng, seed);
    for (int i = 0; i < ops; i++) {
        run_one();
        if (i % 8 == 7 || i == ops - 1) {
            wait_quiet_point();
            check_database();
            check_pushes();
        }
    }
}

static bool no_violation(void *arg)
{
    (void)arg;
    return m.violations == 0;
}

Test(model, two_processes_random_operations)
{
    start_processes();
    const char *env_ops = getenv("SNP_MODEL_OPS");
    int ops = env_ops ? atoi(env_ops) : 120;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char seeds_run[512];
    /* At most 55 minutes: holds last an hour; ctest's timeout is 70 minutes. */
    int nseeds = rng_run_seeds("SNP_MODEL", "1 2 3", 55, run_seed, no_violation, &ops, seeds_run,
                               sizeof(seeds_run));
    clock_gettime(CLOCK_MONOTONIC, &t);
    double took = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "[model] 2 processes, %d seeds (%s), %ld operations, %ld quiet points, %.1f minutes,"
            " %ld violations\n",
            nseeds, seeds_run, m.ops, m.quiet_points, took / 60, m.violations);
    fprintf(stderr, "[model] operations:");
    for (int i = 0; i < 10; i++)
        fprintf(stderr, " %s %ld", op_names[i], m.counts[i]);
    fprintf(stderr, "; bookings %ld, offers %ld, expiries %ld\n",
            pgtest_long(&f.pg, "SELECT count(*) FROM booking"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.made'"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.expired'"));
    fprintf(stderr, "[model] CSNP: %ld shifts, %ld bookings, %ld slots handed over\n",
            pgtest_long(&f.pg, "SELECT count(*) FROM shift"),
            pgtest_long(&f.pg, "SELECT count(*) FROM booking b JOIN slot s ON s.id = b.slot_id"
                               " WHERE s.shift_id IS NOT NULL"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'slot.assigned'"));
    cr_assert_eq(m.violations, 0, "%ld violations (see [model] VIOLATION lines)", m.violations);
    for (int o = 0; o < NORGS; o++)
        for (int p = 0; p < 2; p++)
            snpclient_ws_close(req_sub[o][p].ws);
    for (int g = 0; g < 2; g++)
        for (int p = 0; p < 2; p++)
            snpclient_ws_close(gp_sub[g][p].ws);
    for (int p = 0; p < 2; p++) {
        snpclient_ws_close(desk_sub[p].ws);
        snpclient_ws_close(cap_sub[p].ws);
    }
    /* Both processes end cleanly (under the sanitizers: no memory error). */
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0, "the second process did not end"
                                                             " cleanly");
    second.pid = 0;
}
