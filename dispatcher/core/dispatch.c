#include "dispatcher/core/dispatch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/validate.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/net/handles.h"
#include "dispatcher/core/match.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define TIMER_MS      250
#define HOLD_ATTEMPTS 4 /* candidates tried when the database refuses a hold */

/* The one answer for a request that is missing, closed, or another
 * organisation's: they are not told apart. */
#define NO_SUCH_REQUEST "no request with this id for your organisation"

/* --- errors ----------------------------------------------------------------------- */

static const struct {
    const char *code;
    int status;
} error_table[] = {
    [DISPATCH_OK] = {"ok", 200},
    [DERR_INVALID_FIELD] = {"invalid_field", 400},
    [DERR_FORBIDDEN] = {"forbidden", 403},
    [DERR_OTHER_TERRITORY] = {"other_territory", 403},
    [DERR_NOT_FOUND] = {"not_found", 404},
    [DERR_CONFLICT] = {"conflict", 409},
    [DERR_SLOT_TAKEN] = {"slot_taken", 409},
    [DERR_HOLD_EXPIRED] = {"hold_expired", 409},
    [DERR_TOO_LATE] = {"too_late", 409},
    [DERR_UNAVAILABLE] = {"unavailable", 503},
    [DERR_INTERNAL] = {"internal", 500},
};

const char DISPATCH_REPEAT[] = "repeat";

const char *dispatch_error_code(enum dispatch_error e)
{
    return error_table[e].code;
}

int dispatch_error_status(enum dispatch_error e)
{
    return error_table[e].status;
}

/* Maps a failed database call to an error; the SN* SQLSTATEs are raised by
 * the snp_* functions of sql/migrations/0002_dispatch.sql. */
enum dispatch_error dispatch_db_error(enum db_status st, const PGresult *res)
{
    if (st == DB_UNAVAILABLE || st == DB_SHUTTING_DOWN)
        return DERR_UNAVAILABLE;
    const char *code = db_sqlstate(res);
    static const struct {
        const char *sqlstate;
        enum dispatch_error err;
    } map[] = {
        {"SN403", DERR_FORBIDDEN},     {"SN404", DERR_NOT_FOUND},
        {"SN409", DERR_CONFLICT},      {"SN410", DERR_SLOT_TAKEN},
        {"SN411", DERR_HOLD_EXPIRED},  {"SN412", DERR_TOO_LATE},
        {"23505", DERR_CONFLICT},      {"23503", DERR_INVALID_FIELD},
        {"23514", DERR_INVALID_FIELD}, {"22P02", DERR_INVALID_FIELD},
        {"SN422", DERR_INVALID_FIELD}, {"SNT03", DERR_OTHER_TERRITORY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(code, map[i].sqlstate) == 0)
            return map[i].err;
    return DERR_INTERNAL;
}

const char *dispatch_db_message(enum db_status st, const PGresult *res)
{
    if (st == DB_UNAVAILABLE || st == DB_SHUTTING_DOWN)
        return "the database is unavailable; retry";
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return m ? m : "database error";
}

const char *dispatch_db_field(const PGresult *res)
{
    if (!res)
        return NULL;
    const char *code = db_sqlstate(res);
    if (strcmp(code, "SN422") == 0 || strcmp(code, "SN409") == 0 || strcmp(code, "SNT03") == 0)
        return PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    return NULL;
}

/* --- operation contexts ----------------------------------------------------------- */

void op_set_request(struct op *o, struct request *r)
{
    if (r)
        store_request_ref(r);
    if (o->req)
        store_request_unref(o->req);
    o->req = r;
}

static void op_set_slot(struct op *o, struct slot *s)
{
    if (s)
        store_slot_ref(s);
    if (o->slot)
        store_slot_unref(o->slot);
    o->slot = s;
}

void op_set_release(struct op *o, struct slot *s)
{
    if (s)
        store_slot_ref(s);
    if (o->release)
        store_slot_unref(o->release);
    o->release = s;
}

struct op *op_new(struct dispatch *d, const struct caller *c, json_t *data, dispatch_cb cb,
                  void *arg)
{
    struct op *o = calloc(1, sizeof(*o));
    if (!o) {
        if (cb)
            cb(arg, DERR_INTERNAL, "out of memory", NULL, NULL);
        return NULL;
    }
    o->d = d;
    if (c)
        o->caller = *c;
    else
        snprintf(o->caller.actor, sizeof(o->caller.actor), "system");
    o->cb = cb;
    o->arg = arg;
    o->data = data ? json_incref(data) : NULL;
    d->inflight++;
    return o;
}

static void want_later(struct dispatch *d, struct request *r, struct slot *s);

/* --- calls that wait for their request's update ------------------------------------ *
 *
 * A requester's call (offer.accept, offer.decline, request.cancel) that
 * finds its request with an update on its way to the database waits for it,
 * then runs as if it had just arrived: the usual case is a confirmation
 * sent at once on an offer.made push, which the announcement of the hold
 * can bring before this process has the hold's own answer.  Answering
 * `conflict` there would refuse a valid confirmation. */

typedef void (*dispatch_call_fn)(struct dispatch *d, const struct caller *c, json_t *data,
                                 dispatch_cb cb, void *arg);

struct parked_call {
    struct parked_call *next;
    int64_t request_id;
    dispatch_call_fn run;
    struct caller caller;
    json_t *data;
    dispatch_cb cb;
    void *arg;
};

/* Parks the call until request `r` has no update in flight. */
static void park_call(struct dispatch *d, const struct request *r, dispatch_call_fn run,
                      const struct caller *c, json_t *data, dispatch_cb cb, void *arg)
{
    struct parked_call *p = calloc(1, sizeof(*p));
    if (!p) {
        cb(arg, DERR_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    p->request_id = r->id;
    p->run = run;
    p->caller = *c;
    p->data = json_incref(data);
    p->cb = cb;
    p->arg = arg;
    struct parked_call **end = &d->parked;
    while (*end)
        end = &(*end)->next; /* in arrival order */
    *end = p;
    d->inflight++;
}

/* Runs again, in arrival order, the calls parked on request `id` (its
 * update was answered); each may park again. */
static void resume_calls(struct dispatch *d, int64_t id)
{
    struct parked_call *ready = NULL, **tail = &ready;
    for (struct parked_call **pp = &d->parked; *pp;) {
        struct parked_call *p = *pp;
        if (p->request_id != id) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
    }
    while (ready) {
        struct parked_call *p = ready;
        ready = p->next;
        d->inflight--;
        p->run(d, &p->caller, p->data, p->cb, p->arg);
        json_decref(p->data);
        free(p);
    }
}

/* At close: every parked call is answered. */
static void answer_parked(struct dispatch *d)
{
    while (d->parked) {
        struct parked_call *p = d->parked;
        d->parked = p->next;
        d->inflight--;
        p->cb(p->arg, DERR_UNAVAILABLE, "snpd is shutting down", NULL, NULL);
        json_decref(p->data);
        free(p);
    }
}

void op_finish(struct op *o, enum dispatch_error err, const char *message, const char *field,
               json_t *result)
{
    struct dispatch *d = o->d;
    d->inflight--;
    if (err == DISPATCH_OK && o->repeat)
        message = DISPATCH_REPEAT;
    if (o->cb)
        o->cb(o->arg, err, message, field, err == DISPATCH_OK ? result : NULL);
    json_decref(result);
    json_decref(o->data);
    json_decref(o->result);
    /* What the operation touched may now serve or be served: the matching
     * pass looks at it again (a busy slot or request is retried when its
     * update ends, never dropped), after reading again what another process
     * changed meanwhile. */
    if (!d->closed) {
        refresh_stale(d, o->req, o->slot);
        refresh_stale(d, NULL, o->release);
        if (o->req && !o->req->pending && d->parked)
            resume_calls(d, o->req->id);
        if (o->retry_later) {
            want_later(d, o->req, o->slot);
            want_later(d, NULL, o->release);
        } else {
            if (o->req)
                want_request(d, o->req);
            if (o->slot)
                want_slot(d, o->slot);
            if (o->release)
                want_slot(d, o->release);
        }
    }
    op_set_request(o, NULL);
    op_set_slot(o, NULL);
    op_set_release(o, NULL);
    free(o);
}

static void op_fail(struct op *o, enum dispatch_error err, const char *message, const char *field)
{
    op_finish(o, err, message, field, NULL);
}

static void op_fail_db(struct op *o, enum db_status st, const PGresult *res)
{
    enum dispatch_error e = dispatch_db_error(st, res);
    if (e == DERR_UNAVAILABLE || e == DERR_INTERNAL)
        o->retry_later = true;
    /* Only the primary message and the SQLSTATE, and only in the log: the
     * detail of a failed constraint may quote a row, and rows may hold
     * patient data.  The caller learns that it was logged. */
    if (e == DERR_INTERNAL) {
        log_error("dispatch", "database error %s: %s", db_sqlstate(res),
                  dispatch_db_message(st, res));
        op_finish(o, e, "internal error; it was logged", NULL, NULL);
        return;
    }
    op_finish(o, e, dispatch_db_message(st, res), NULL, NULL);
}

/* Answers an operation whose database call came back after dispatch_close
 * (memory is gone) and returns true; false otherwise. */
static bool op_closed(struct op *o)
{
    if (!o->d->closed)
        return false;
    op_fail(o, DERR_UNAVAILABLE, "snpd is shutting down", NULL);
    return true;
}

/* The usual start of a database callback: answers and returns true when
 * snpd is closing or the call failed. */
static bool op_settled_early(struct op *o, enum db_status st, const PGresult *res)
{
    if (op_closed(o))
        return true;
    if (st == DB_OK)
        return false;
    op_fail_db(o, st, res);
    return true;
}

static void on_view_read(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    json_t *view = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
                       ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                       : NULL;
    if (!view) {
        op_fail(o, DERR_NOT_FOUND, "not found", NULL);
        return;
    }
    op_finish(o, DISPATCH_OK, NULL, NULL, view);
}

/* Answers with the request as the database shows it (an audited read, as
 * request.get): for the answers memory cannot give, a request no longer
 * open. */
static void answer_request_view(struct op *o, int64_t request_id)
{
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld", (long long)request_id);
    snprintf(org, sizeof(org), "%lld", (long long)o->caller.organisation_id);
    const char *params[] = {id, org, o->caller.actor, token_role_name(o->caller.role)};
    db_query(o->d->db, sql_text[SQL_REQUEST_READ], 4, params, on_view_read, o);
}

/* Answers with a booking of the caller's organisation as the database shows
 * it (a repeated confirmation). */
static void answer_booking_view(struct op *o, int64_t booking_id)
{
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld", (long long)booking_id);
    snprintf(org, sizeof(org), "%lld", (long long)o->caller.organisation_id);
    const char *params[] = {id, org};
    db_query(o->d->db, sql_text[SQL_BOOKING_GET], 2, params, on_view_read, o);
}

/* --- pushes ----------------------------------------------------------------------- */

static void push(struct dispatch *d, const struct push_target *to, const char *event, json_t *data)
{
    if (d->hooks.push && data)
        d->hooks.push(d->hooks.ctx, to, event, data);
    json_decref(data);
}

/* Tells capacity watchers of the slot's territory what became of it. */
void push_capacity(struct dispatch *d, const struct slot *s)
{
    json_t *change = json_pack("{s:I, s:s, s:o, s:i, s:s, s:o, s:I, s:s}", "slot_id",
                               (json_int_t)s->id, "status", model_slot_status_name(s->status),
                               "start", time_json(s->territory, s->start), "duration_min",
                               s->duration_min, "mode", model_mode_name(s->mode), "audiences",
                               bits_json(s->audience, model_audience_name), "site_id",
                               (json_int_t)s->site->id, "commune_insee", s->site->commune);
    json_t *data = json_pack("{s:s, s:[o]}", "territory_id", s->territory->id, "changes", change);
    struct push_target to = {.territory = s->territory->id, .topic = SNP_TOPIC_CAPACITY};
    push(d, &to, snp_push_name(SNP_PUSH_CAPACITY_CHANGED), data);
}

/* --- matching --------------------------------------------------------------------- */

static double mean_booked_ratio(const struct store *st)
{
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < st->practitioners.cap; i++) {
        const struct practitioner *p = st->practitioners.buckets[i].value;
        if (p && p->published > 0) {
            sum += (double)p->booked / p->published;
            n++;
        }
    }
    return n ? sum / n : 0.0;
}

/* Ranks the slots `r` may be offered now (its territory's and its
 * neighbours', each kept sorted by start); returns the count in `out`. */
/* A table of one distance per site (site index), all negative (not
 * computed), for one ranking or one capacity query; NULL when out of
 * memory or there is no site (then distances are computed each time). */
double *site_memo(struct dispatch *d)
{
    size_t n = d->store.site_count;
    if (n == 0)
        return NULL;
    if (n > d->site_km_cap) {
        double *p = realloc(d->site_km, n * sizeof(*p));
        if (!p)
            return NULL;
        d->site_km = p;
        d->site_km_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        d->site_km[i] = -1;
    return d->site_km;
}

static size_t rank_for(struct dispatch *d, const struct request *r, struct match_candidate *out,
                       size_t max)
{
    /* Scarcity counts the requests still waiting for a slot. */
    const struct territory *t = r->territory;
    size_t nwaiting = 0;
    if (t->nopen > d->waiting_cap) {
        struct request **p = realloc(d->waiting, t->nopen * sizeof(*p));
        if (p) {
            d->waiting = p;
            d->waiting_cap = t->nopen;
        }
    }
    for (size_t i = 0; i < t->nopen && i < d->waiting_cap; i++)
        if (t->open[i]->status == REQ_WAITING)
            d->waiting[nwaiting++] = t->open[i];
    double *site_km = site_memo(d);
    struct match_context ctx = {
        .now = timeutil_now(),
        .weights = t->settings.weights,
        .mean_booked_ratio = mean_booked_ratio(&d->store),
        .waiting = (struct request *const *)d->waiting,
        .nwaiting = nwaiting,
        .site_km = site_km,
        .nsite_km = site_km ? d->store.site_count : 0,
    };
    size_t n = 0;
    match_rank_sorted(r, t->slots, t->nslots, &ctx, out, &n, max);
    for (size_t i = 0; i < t->nneighbours; i++)
        match_rank_sorted(r, t->neighbours[i]->slots, t->neighbours[i]->nslots, &ctx, out, &n, max);
    return n;
}

/* The offer of `r` with, as alternatives, the slots of `ids` still free
 * (ranked already), or a fresh ranking when `ids` is NULL. */
static json_t *offer_json_with(struct dispatch *d, const struct request *r, const int64_t *ids,
                               int nids)
{
    struct slot *held = r->held_slot ? idmap_get(&d->store.slots, r->held_slot) : NULL;
    if (!held)
        return NULL;
    json_t *alts = json_array();
    int want = r->territory->settings.alternatives;
    if (want > MAX_CANDIDATES - 1)
        want = MAX_CANDIDATES - 1;
    if (ids) {
        for (int i = 0; i < nids && (int)json_array_size(alts) < want; i++) {
            struct slot *s = idmap_get(&d->store.slots, ids[i]);
            if (s && s->status == SLOT_FREE && !s->pending)
                json_array_append_new(alts, dispatch_slot_json(d, s));
        }
    } else if (want > 0) {
        struct match_candidate c[MAX_CANDIDATES];
        size_t n = rank_for(d, r, c, (size_t)want);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(alts, dispatch_slot_json(d, c[i].slot));
    }
    return json_pack("{s:o, s:o, s:o}", "slot", dispatch_slot_json(d, held), "expires_at",
                     time_json(r->territory, r->hold_expires_at), "alternatives", alts);
}

json_t *dispatch_offer_json(struct dispatch *d, const struct request *r)
{
    return offer_json_with(d, r, NULL, 0);
}

/* --- applying committed changes to memory ----------------------------------------- */

/* (Capacity is pushed once per change: the announcement of this process's
 * own commit may have been applied before its answer.) */
static void slot_set_free(struct dispatch *d, struct slot *s)
{
    bool changed = s->status != SLOT_FREE;
    s->status = SLOT_FREE;
    s->held_for = 0;
    s->hold_expires_at = 0;
    if (changed)
        push_capacity(d, s);
}

void request_set_offer(struct dispatch *d, struct request *r, struct slot *s, int64_t expires)
{
    bool changed = s->status != SLOT_HELD || s->held_for != r->id;
    r->status = REQ_OFFERED;
    r->held_slot = s->id;
    r->hold_expires_at = expires;
    s->status = SLOT_HELD;
    s->held_for = r->id;
    s->hold_expires_at = expires;
    if (changed)
        push_capacity(d, s);
}

void request_clear_offer(struct request *r)
{
    r->held_slot = 0;
    r->hold_expires_at = 0;
    r->status = REQ_WAITING;
}

/* A slot released by the database (its start passed: expired, otherwise
 * free again). */
void slot_released(struct dispatch *d, struct slot *s)
{
    if (s->gone)
        return;
    if (s->start <= timeutil_now()) {
        s->status = SLOT_EXPIRED;
        push_capacity(d, s);
        store_remove_slot(&d->store, s);
        return;
    }
    slot_set_free(d, s);
    want_slot(d, s);
}

/* Keeps `r` from being offered slot `id` again by this process: the
 * database refused it (declined, taken, or outside the request's window by
 * the database's clock). */
static void request_refuse_locally(struct request *r, int64_t id)
{
    for (size_t i = 0; i < r->ndeclined; i++)
        if (r->declined[i] == id)
            return;
    int64_t *p = realloc(r->declined, (r->ndeclined + 1) * sizeof(*p));
    if (p) {
        r->declined = p;
        r->declined[r->ndeclined++] = id;
    }
}

/* --- the matching pass ------------------------------------------------------------ *
 *
 * The invariant (docs/dispatch.md): once the changes in flight are committed,
 * no free slot exists that a waiting request may use.  Whatever can change
 * that queues the objects concerned: a slot that becomes free (published,
 * released, cancelled, freed by another process, its release rule opening
 * it) and a request that begins to wait (created, declined or expired
 * without another candidate, requeued, learnt from another process); and
 * every operation queues what it touched when it ends (op_finish), because a
 * slot or request busy with an update is skipped, never dropped.  The pass
 * runs before the loop polls (a uv_prepare_t, Redis's beforeSleep): each
 * queued free slot goes to the waiting request that should have it first,
 * then each queued waiting request gets its best free slot.  Each offer
 * ends an operation, which queues again what it touched, so passes repeat
 * until nothing more can be matched. */

/* The work a matching pass does before it lets the loop answer what came
 * meanwhile; the rest waits for the next loop turn (which does not sleep). */
#define MATCH_SLICE_NS (5 * 1000 * 1000)

static void id_queue_push(struct id_queue *q, int64_t id)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        int64_t *p = realloc(q->ids, cap * sizeof(*p));
        if (!p) {
            log_error("dispatch", "out of memory queueing a match");
            return;
        }
        q->ids = p;
        q->cap = cap;
    }
    q->ids[q->n++] = id;
}

static void id_queue_free(struct id_queue *q)
{
    free(q->ids);
    memset(q, 0, sizeof(*q));
}

void want_slot(struct dispatch *d, struct slot *s)
{
    if (s->gone || s->queued || s->status != SLOT_FREE)
        return;
    s->queued = true;
    id_queue_push(&d->match_slots, s->id);
}

void want_request(struct dispatch *d, struct request *r)
{
    if (r->gone || r->queued || r->status != REQ_WAITING)
        return;
    r->queued = true;
    id_queue_push(&d->match_requests, r->id);
}

/* After a failed database call: the next timer tick queues them again, so
 * that an error does not spin the loop. */
static void want_later(struct dispatch *d, struct request *r, struct slot *s)
{
    if (r && !r->gone)
        id_queue_push(&d->retry_requests, r->id);
    if (s && !s->gone)
        id_queue_push(&d->retry_slots, s->id);
}

static void system_move(struct dispatch *d, struct request *r, struct slot *release,
                        const char *reason, struct slot *next);

/* A free slot: the waiting request that should have it first, among those
 * of every territory that may use it and that have no change in flight. */
static void offer_slot_to_waiting(struct dispatch *d, struct slot *s)
{
    int64_t now = timeutil_now();
    struct request *best = NULL;
    for (size_t i = 0; i < d->store.nterritories; i++) {
        struct territory *t = d->store.territories[i];
        bool uses = t == s->territory;
        for (size_t k = 0; !uses && k < t->nneighbours; k++)
            uses = t->neighbours[k] == s->territory;
        if (!uses || t->nopen == 0)
            continue;
        struct request *cand =
            match_pick_request(s, (struct request *const *)t->open, t->nopen, now);
        if (cand && (!best || cand->deadline < best->deadline ||
                     (cand->deadline == best->deadline && cand->urgency < best->urgency)))
            best = cand;
    }
    if (best)
        system_move(d, best, NULL, "none", s);
}

/* A waiting request: the best free slot it may use, if any. */
static void offer_best_slot(struct dispatch *d, struct request *r)
{
    struct match_candidate c[1];
    if (rank_for(d, r, c, 1) == 1)
        system_move(d, r, NULL, "none", c[0].slot);
}

/* Makes `q` (what was queued during a pass) the ids of `taken` from `from`
 * on, which the pass had no time for and which are still marked queued,
 * followed by what `q` held; empties `taken`. */
static void id_queue_requeue(struct id_queue *q, struct id_queue *taken, size_t from)
{
    if (from == taken->n) {
        id_queue_free(taken);
        return;
    }
    size_t n = taken->n - from;
    memmove(taken->ids, taken->ids + from, n * sizeof(*taken->ids));
    taken->n = n;
    for (size_t i = 0; i < q->n; i++)
        id_queue_push(taken, q->ids[i]);
    id_queue_free(q);
    *q = *taken;
    memset(taken, 0, sizeof(*taken));
}

/* Nothing: an active idle handle only keeps the loop from sleeping in its
 * poll while a pass has work left for the next turn. */
static void on_match_more(uv_idle_t *h)
{
    (void)h;
}

static void match_run(struct dispatch *d)
{
    if (!d->ready || d->closed || (d->match_slots.n == 0 && d->match_requests.n == 0)) {
        uv_idle_stop(&d->match_more);
        return;
    }
    /* Without the database nothing can be offered: keep the queue. */
    if (!db_is_up(d->db)) {
        uv_idle_stop(&d->match_more);
        return;
    }
    struct id_queue slots = d->match_slots, requests = d->match_requests;
    memset(&d->match_slots, 0, sizeof(d->match_slots));
    memset(&d->match_requests, 0, sizeof(d->match_requests));
    d->stats.match_passes++;
    /* A pass stops after MATCH_SLICE_NS of work and goes on at the next
     * loop turn, so that a backlog (a restart with thousands of waiting
     * requests and free slots) never keeps the loop from answering. */
    uint64_t until = uv_hrtime() + MATCH_SLICE_NS;
    size_t i = 0, k = 0;
    bool out_of_time = false;
    for (; i < slots.n && !(out_of_time = uv_hrtime() > until); i++) {
        struct slot *s = store_slot(&d->store, slots.ids[i]);
        if (!s)
            continue;
        s->queued = false;
        if (s->status == SLOT_FREE && !s->pending)
            offer_slot_to_waiting(d, s);
    }
    for (; !out_of_time && k < requests.n && !(out_of_time = uv_hrtime() > until); k++) {
        struct request *r = store_request(&d->store, requests.ids[k]);
        if (!r)
            continue;
        r->queued = false;
        if (r->status == REQ_WAITING && !r->pending)
            offer_best_slot(d, r);
    }
    if (out_of_time)
        d->stats.match_slices++;
    id_queue_requeue(&d->match_slots, &slots, i);
    id_queue_requeue(&d->match_requests, &requests, k);
    if (d->match_slots.n > 0 || d->match_requests.n > 0)
        uv_idle_start(&d->match_more, on_match_more);
    else
        uv_idle_stop(&d->match_more);
}

static void on_before_poll(uv_prepare_t *h)
{
    match_run(container_of(h, struct dispatch, matcher));
}

/* Queues again what failed operations touched (from the timer). */
void retry_queued(struct dispatch *d)
{
    for (size_t i = 0; i < d->retry_slots.n; i++) {
        struct slot *s = store_slot(&d->store, d->retry_slots.ids[i]);
        if (s)
            want_slot(d, s);
    }
    for (size_t i = 0; i < d->retry_requests.n; i++) {
        struct request *r = store_request(&d->store, d->retry_requests.ids[i]);
        if (r)
            want_request(d, r);
    }
    d->retry_slots.n = 0;
    d->retry_requests.n = 0;
}

/* --- reading back what another process changed meanwhile -------------------------- */

static void on_slot_reread(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct slot *s = o->slot;
    s->pending = false;
    if (o->d->closed || s->gone || st != DB_OK) {
        o->retry_later = st != DB_OK;
        op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
        return;
    }
    enum slot_status ns = SLOT_EXPIRED;
    int64_t held_for = 0, expires = 0;
    if (PQntuples(res) == 1) {
        if (!model_slot_status_parse(PQgetvalue(res, 0, 12), &ns))
            ns = SLOT_EXPIRED;
        held_for = strtoll(PQgetvalue(res, 0, 13), NULL, 10);
        expires = strtoll(PQgetvalue(res, 0, 14), NULL, 10);
    }
    apply_slot_state(o->d, s, ns, held_for, expires, false, false);
    op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
}

/* Reads slot `s` again from the database (memory was wrong about it, or
 * another process changed it while it was pending); pending until then. */
static void reread_slot(struct dispatch *d, struct slot *s)
{
    if (s->gone || s->pending)
        return;
    struct op *o = op_new(d, NULL, NULL, NULL, NULL);
    if (!o)
        return;
    op_set_slot(o, s);
    s->pending = true;
    s->stale = false;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)s->id);
    const char *params[] = {id};
    db_query(d->db, sql_text[SQL_SLOT_GET], 1, params, on_slot_reread, o);
}

static void reread_request(struct dispatch *d, struct request *r);

/* Makes `r` hold `s` by the word of a database answer during which `s` was
 * not pending.  Memory of `s` may then be newer than the answer (another
 * process's change to it, whose notification was applied before the answer
 * came), so when memory disagreed, `s` — and the request memory said held
 * it — are read again rather than trusted. */
static void request_take_answered(struct dispatch *d, struct request *r, struct slot *s,
                                  int64_t expires)
{
    bool agreed = s->status == SLOT_HELD && s->held_for == r->id;
    struct request *other = s->status == SLOT_HELD && s->held_for != r->id
                                ? store_request(&d->store, s->held_for)
                                : NULL;
    request_set_offer(d, r, s, expires);
    if (agreed)
        return;
    if (s->pending)
        s->stale = true;
    else
        reread_slot(d, s);
    if (other && other->pending)
        other->stale = true;
    else if (other)
        reread_request(d, other);
}

/* Brings `r`'s offer to what `fresh` (just read from the database) says. */
static void request_apply_fresh(struct dispatch *d, struct request *r, const struct request *fresh)
{
    struct slot *held = fresh->held_slot ? store_slot(&d->store, fresh->held_slot) : NULL;
    if (fresh->status == REQ_OFFERED && held) {
        request_take_answered(d, r, held, fresh->hold_expires_at);
    } else if (fresh->status == REQ_OFFERED) {
        r->status = REQ_OFFERED;
        r->held_slot = fresh->held_slot;
        r->hold_expires_at = fresh->hold_expires_at;
    } else {
        request_clear_offer(r);
    }
    for (size_t i = 0; i < fresh->ndeclined; i++)
        request_refuse_locally(r, fresh->declined[i]);
}

static void on_request_reread(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req;
    r->pending = false;
    if (d->closed || r->gone || st != DB_OK) {
        o->retry_later = st != DB_OK;
        op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
        return;
    }
    struct request *fresh = PQntuples(res) == 1 ? store_request_from_row(&d->store, res, 0) : NULL;
    if (!fresh) {
        /* No longer open: booked, cancelled or unserved elsewhere. */
        store_remove_request(&d->store, r);
        op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
        return;
    }
    request_apply_fresh(d, r, fresh);
    store_request_unref(fresh);
    op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
}

static void reread_request(struct dispatch *d, struct request *r)
{
    if (r->gone || r->pending)
        return;
    struct op *o = op_new(d, NULL, NULL, NULL, NULL);
    if (!o)
        return;
    op_set_request(o, r);
    r->pending = true;
    r->stale = false;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)r->id);
    const char *params[] = {id};
    db_query(d->db, sql_text[SQL_REQUEST_GET_OPEN], 1, params, on_request_reread, o);
}

/* After an operation: what another process changed while it was pending
 * (its notification was set aside) is read again. */
void refresh_stale(struct dispatch *d, struct request *r, struct slot *s)
{
    if (r && r->stale && !r->pending)
        reread_request(d, r);
    if (s && s->stale && !s->pending)
        reread_slot(d, s);
}

/* --- offer moves (decline, expiry, a free slot for a waiting request) ------------- */

static void on_offer_moved(void *arg, enum db_status st, const PGresult *res);

/* Sends snp_offer_move for o->req: release o->release (o->reason), hold
 * o->slot (may be NULL). */
static void offer_move_send(struct op *o)
{
    struct dispatch *d = o->d;
    struct request *r = o->req;
    char req_id[24], rel_id[24], next_id[24], hold[16];
    snprintf(req_id, sizeof(req_id), "%lld", (long long)r->id);
    snprintf(rel_id, sizeof(rel_id), "%lld", (long long)(o->release ? o->release->id : 0));
    snprintf(next_id, sizeof(next_id), "%lld", (long long)(o->slot ? o->slot->id : 0));
    snprintf(hold, sizeof(hold), "%d", r->territory->settings.hold_seconds);
    const char *params[] = {req_id,    o->release ? rel_id : NULL,
                            o->reason, o->slot ? next_id : NULL,
                            hold,      o->caller.actor};
    r->pending = true;
    if (o->slot)
        o->slot->pending = true;
    if (o->release)
        o->release->pending = true;
    db_query(d->db, sql_text[SQL_OFFER_MOVE], 6, params, on_offer_moved, o);
}

/* Picks the best candidate for o->req (none: NULL) and sends the move. */
void offer_move_next(struct op *o)
{
    struct match_candidate c[1];
    op_set_slot(o, rank_for(o->d, o->req, c, 1) ? c[0].slot : NULL);
    offer_move_send(o);
}

/* An offer move nobody waits for: a free slot for a waiting request, or a
 * hold that ran out. */
static void system_move(struct dispatch *d, struct request *r, struct slot *release,
                        const char *reason, struct slot *next)
{
    struct op *o = op_new(d, NULL, NULL, NULL, NULL);
    if (!o)
        return;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    op_set_request(o, r);
    op_set_release(o, release);
    op_set_slot(o, next);
    offer_move_send(o);
}

static json_t *request_summary_json(struct dispatch *d, const struct request *r);
static json_t *created_json(struct dispatch *d, const struct request *r, json_t *input,
                            const int64_t *alts, int nalts);

static void on_offer_moved(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req;
    r->pending = false;
    if (o->slot)
        o->slot->pending = false;
    if (o->release)
        o->release->pending = false;
    if (op_closed(o))
        return;
    if (st != DB_OK) {
        /* The request is no longer open (cancelled, booked or unserved,
         * possibly by another process): memory lets it go. */
        const char *code = db_sqlstate(res);
        if (st == DB_QUERY_ERROR && !r->gone &&
            (strcmp(code, "SN409") == 0 || strcmp(code, "SN404") == 0))
            store_remove_request(&d->store, r);
        op_fail_db(o, st, res);
        return;
    }
    bool released = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    int64_t held = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(res, 0, 3), NULL, 10);

    if (o->release && released) {
        if (strcmp(o->reason, "declined") == 0)
            request_refuse_locally(r, o->release->id);
        if (strcmp(o->reason, "expired") == 0)
            d->stats.holds_expired++;
        if (r->held_slot == o->release->id)
            request_clear_offer(r);
        slot_released(d, o->release);
    }
    /* The request's offer is what the database says it is. */
    struct slot *now_held = held > 0 ? store_slot(&d->store, held) : NULL;
    if (now_held) {
        if (now_held == o->slot || now_held == o->release)
            request_set_offer(d, r, now_held, expires); /* pending while asked */
        else
            request_take_answered(d, r, now_held, expires);
        if (now_held == o->slot)
            d->stats.offers++;
    } else if (held > 0) {
        /* Held by a slot this process does not know yet: read it. */
        r->status = REQ_OFFERED;
        r->held_slot = held;
        r->hold_expires_at = expires;
        read_unknown_slot(d, held);
    } else {
        request_clear_offer(r);
    }
    if (o->slot && held != o->slot->id && held == 0) {
        /* Not held: taken (by another process) — memory reads the slot
         * again — or free but not to be held for this request by the
         * database's word (its clock) — this request stops proposing it. */
        d->stats.conflicts++;
        if (strcmp(PQgetvalue(res, 0, 4), "t") == 0)
            request_refuse_locally(r, o->slot->id);
        else
            o->slot->stale = true;
        if (o->cb && ++o->attempts < HOLD_ATTEMPTS) {
            refresh_stale(d, NULL, o->slot);
            /* The slot given back leaves the operation here, not through
             * op_finish: what another process did to it meanwhile (held it
             * as soon as it was free) is read now, or nobody ever would. */
            refresh_stale(d, NULL, o->release);
            op_set_release(o, NULL);
            offer_move_next(o);
            return;
        }
    }
    /* A creation that had to try several slots answers as a creation. */
    json_t *result = !o->cb                                ? NULL
                     : json_object_get(o->data, "patient") ? created_json(d, r, o->data, NULL, 0)
                                                           : request_summary_json(d, r);
    op_finish(o, DISPATCH_OK, NULL, NULL, result);
}

/* --- slot.publish ----------------------------------------------------------------- */

static bool parse_hhmm(const char *s, int *minutes)
{
    if (strlen(s) != 5 || s[2] != ':')
        return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return false;
    *minutes = h * 60 + m;
    return true;
}

static bool parse_date(const char *s, struct tm *tm)
{
    memset(tm, 0, sizeof(*tm));
    int y, mo, da;
    if (sscanf(s, "%4d-%2d-%2d", &y, &mo, &da) != 3)
        return false;
    tm->tm_year = y - 1900;
    tm->tm_mon = mo - 1;
    tm->tm_mday = da;
    return true;
}

/* Appends one slot to the JSON array sent to snp_slots_publish. */
static void publish_add(json_t *arr, json_t *common, int64_t start, int duration,
                        const struct territory *t)
{
    json_t *one = json_deep_copy(common);
    json_object_set_new(one, "start", time_json(t, start));
    json_object_set_new(one, "duration_min", json_integer(duration));
    json_array_append_new(arr, one);
}

/* Expands a local-time pattern or shift into slots.  Returns false (with
 * `err`) on impossible dates or times. */
static bool expand_range(json_t *arr, json_t *common, const struct territory *t, struct tm day,
                         int from_min, int to_min, int every, int duration, const char **err)
{
    for (int m = from_min; m + duration <= to_min; m += every) {
        struct tm local = day;
        local.tm_hour = m / 60;
        local.tm_min = m % 60;
        int64_t start;
        if (!timeutil_from_local(t->zone, &local, &start)) {
            *err = "impossible local time";
            return false;
        }
        publish_add(arr, common, start, duration, t);
        if (json_array_size(arr) > 1000) {
            *err = "more than 1000 slots in one call";
            return false;
        }
    }
    return true;
}

static int weekday_index(const char *name)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int i = 0; i < 7; i++)
        if (strcmp(name, days[i]) == 0)
            return i;
    return -1;
}

static void on_published(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    int n = PQntuples(res);
    json_t *ids = json_array();
    struct slot **added = calloc((size_t)n + 1, sizeof(*added));
    int nadded = 0;
    for (int i = 0; i < n; i++) {
        struct slot *s = store_slot_from_row(&d->store, res, i);
        if (!s)
            continue;
        int64_t id = s->id;
        if (store_slot(&d->store, id)) {
            /* Known already: another process's notification came first. */
            store_slot_unref(s);
            s = store_slot(&d->store, id);
            json_array_append_new(ids, json_integer(id));
            if (added)
                added[nadded++] = s;
            continue;
        }
        if (!store_add_slot(&d->store, s)) {
            log_error("dispatch", "out of memory adding slot %lld", (long long)id);
            continue;
        }
        json_array_append_new(ids, json_integer(id));
        if (added)
            added[nadded++] = s;
    }
    json_t *result =
        json_pack("{s:i, s:o, s:i}", "count", n, "slot_ids", ids, "skipped", o->count - n);
    /* The matching pass gives waiting requests the new slots first. */
    for (int i = 0; added && i < nadded; i++) {
        push_capacity(d, added[i]);
        want_slot(d, added[i]);
    }
    free(added);
    op_finish(o, DISPATCH_OK, NULL, NULL, result);
}

void dispatch_slot_publish(struct dispatch *d, const struct caller *c, json_t *data, dispatch_cb cb,
                           void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, DERR_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    json_int_t site_id = json_integer_value(json_object_get(data, "site_id"));
    struct site *site = idmap_get(&d->store.sites, site_id);
    if (!site) {
        cb(arg, DERR_NOT_FOUND, "no such site", "site_id", NULL);
        return;
    }
    if (site->territory != t) {
        cb(arg, DERR_OTHER_TERRITORY, "this site belongs to another territory", "site_id", NULL);
        return;
    }
    const char *rpps = json_string_value(json_object_get(data, "practitioner_rpps"));
    if (c->role == ROLE_GP) {
        if (rpps && strcmp(rpps, c->rpps) != 0) {
            cb(arg, DERR_FORBIDDEN, "a practitioner publishes only their own slots",
               "practitioner_rpps", NULL);
            return;
        }
        rpps = c->rpps;
    }
    json_t *shift = json_object_get(data, "shift");
    if (shift && site->kind != SITE_CSNP) {
        cb(arg, DERR_INVALID_FIELD, "shifts are published at a csnp site", "shift", NULL);
        return;
    }

    /* What every slot shares. */
    json_t *common = json_object();
    json_object_set(common, "mode", json_object_get(data, "mode"));
    json_object_set(common, "audience", json_object_get(data, "audiences"));
    json_t *rel = json_object_get(data, "release_minutes");
    if (rel)
        json_object_set(common, "release_minutes", rel);
    json_t *restr = json_object_get(data, "restrictions");
    if (restr) {
        json_t *v;
        if ((v = json_object_get(restr, "min_age_years")))
            json_object_set(common, "min_age", v);
        if ((v = json_object_get(restr, "max_age_years")))
            json_object_set(common, "max_age", v);
        if ((v = json_object_get(restr, "motifs")))
            json_object_set(common, "motifs", v);
    }

    json_t *arr = json_array();
    const char *err = NULL;
    const char *field = NULL;
    json_t *slots = json_object_get(data, "slots");
    json_t *pattern = json_object_get(data, "pattern");
    if (slots) {
        size_t i;
        json_t *one;
        json_array_foreach (slots, i, one) {
            int64_t start;
            if (!timeutil_parse_rfc3339(json_string_value(json_object_get(one, "start")), &start)) {
                err = "invalid start";
                field = "slots.start";
                break;
            }
            publish_add(arr, common, start,
                        (int)json_integer_value(json_object_get(one, "duration_min")), t);
        }
    } else if (pattern) {
        struct tm from, to;
        int from_min, to_min;
        int every = (int)json_integer_value(json_object_get(pattern, "every_min"));
        json_t *dur = json_object_get(pattern, "duration_min");
        int duration = dur ? (int)json_integer_value(dur) : every;
        field = "pattern";
        if (!parse_date(json_string_value(json_object_get(pattern, "from_date")), &from) ||
            !parse_date(json_string_value(json_object_get(pattern, "to_date")), &to) ||
            !parse_hhmm(json_string_value(json_object_get(pattern, "from_time")), &from_min) ||
            !parse_hhmm(json_string_value(json_object_get(pattern, "to_time")), &to_min)) {
            err = "invalid date or time";
        } else if (to_min <= from_min) {
            err = "to_time must be after from_time";
        } else {
            bool days[7] = {false};
            size_t i;
            json_t *dv;
            json_array_foreach (json_object_get(pattern, "days"), i, dv) {
                int w = weekday_index(json_string_value(dv));
                if (w >= 0)
                    days[w] = true;
            }
            /* Walk the calendar day by day, on day numbers since the epoch. */
            from.tm_hour = to.tm_hour = 12;
            int64_t first = (int64_t)timegm(&from) / 86400;
            int64_t last = (int64_t)timegm(&to) / 86400;
            for (int64_t dn = first; dn <= last && last - first <= 62 && !err; dn++) {
                time_t noon = (time_t)(dn * 86400 + 43200);
                struct tm day;
                gmtime_r(&noon, &day);
                if (!days[day.tm_wday])
                    continue;
                day.tm_hour = 0;
                expand_range(arr, common, t, day, from_min, to_min, every, duration, &err);
            }
            if (!err && timegm(&to) - timegm(&from) > 62 * 86400)
                err = "a pattern covers at most 62 days";
            if (!err && timegm(&to) < timegm(&from))
                err = "to_date is before from_date";
        }
    } else if (shift) {
        struct tm day;
        int every = (int)json_integer_value(json_object_get(shift, "every_min"));
        const char *half = json_string_value(json_object_get(shift, "half_day"));
        int from_min = 8 * 60, to_min = 12 * 60;
        if (strcmp(half, "afternoon") == 0) {
            from_min = 14 * 60;
            to_min = 18 * 60;
        } else if (strcmp(half, "evening") == 0) {
            from_min = 18 * 60;
            to_min = 22 * 60;
        }
        field = "shift";
        if (!parse_date(json_string_value(json_object_get(shift, "date")), &day))
            err = "invalid date";
        else
            expand_range(arr, common, t, day, from_min, to_min, every, every, &err);
    }
    json_decref(common);
    if (!err && json_array_size(arr) == 0) {
        err = "no slot to publish";
    }
    if (err) {
        json_decref(arr);
        cb(arg, DERR_INVALID_FIELD, err, field, NULL);
        return;
    }

    struct op *o = op_new(d, c, data, cb, arg);
    if (!o) {
        json_decref(arr);
        return;
    }
    o->count = (int)json_array_size(arr);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char site_s[24];
    snprintf(site_s, sizeof(site_s), "%lld", (long long)site->id);
    const char *params[] = {t->id, site_s, rpps, c->actor, text};
    db_query(d->db, sql_text[SQL_SLOTS_PUBLISH], 5, params, on_published, o);
    free(text);
}

/* --- requests --------------------------------------------------------------------- */

static json_t *priority_json(uint8_t bits)
{
    json_t *a = json_array();
    if (bits & PRIORITY_ALD)
        json_array_append_new(a, json_string("ald"));
    if (bits & PRIORITY_C2S)
        json_array_append_new(a, json_string("c2s"));
    if (bits & PRIORITY_AGED_70_PLUS)
        json_array_append_new(a, json_string("aged_70_plus"));
    return a;
}

/* The request as its requester sees it, without patient identity. */
/* The request as its requester sees it, without patient identity; the
 * offer's alternatives are `alts` when given (already ranked). */
static json_t *request_summary_with(struct dispatch *d, const struct request *r,
                                    const int64_t *alts, int nalts)
{
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:o, s:o, s:s, s:{s:s}, s:o}", "request_id", (json_int_t)r->id,
        "client_ref", r->client_ref, "status", model_request_status_name(r->status), "created_at",
        time_json(r->territory, r->created_at), "deadline", time_json(r->territory, r->deadline),
        "urgency", model_urgency_name(r->urgency), "motif", "code", model_motif_name(r->motif),
        "priority_groups", priority_json(r->priority_groups));
    if (r->status == REQ_OFFERED) {
        json_t *offer = offer_json_with(d, r, alts, nalts);
        if (offer)
            json_object_set_new(j, "offer", offer);
    }
    return j;
}

static json_t *request_summary_json(struct dispatch *d, const struct request *r)
{
    return request_summary_with(d, r, NULL, 0);
}

static int age_at(const struct territory *t, int64_t now, int birth_year, int bmonth, int bday)
{
    struct tm today;
    if (!timeutil_to_local(t->zone, now, &today))
        return 0;
    int age = today.tm_year + 1900 - birth_year;
    if (bmonth > 0 &&
        (today.tm_mon + 1 < bmonth || (today.tm_mon + 1 == bmonth && today.tm_mday < bday)))
        age--;
    return age < 0 ? 0 : age;
}

/* The answer to a creation: the request, with the patient and motif as
 * the requester just gave them (nothing is read back from the database). */
static json_t *created_json(struct dispatch *d, const struct request *r, json_t *input,
                            const int64_t *alts, int nalts)
{
    json_t *j = request_summary_with(d, r, alts, nalts);
    json_t *patient = json_object_get(input, "patient");
    if (patient)
        json_object_set(j, "patient", patient);
    json_t *motif = json_object_get(input, "motif");
    if (motif)
        json_object_set(j, "motif", motif);
    json_t *v;
    if ((v = json_object_get(input, "constraints")))
        json_object_set(j, "constraints", v);
    if ((v = json_object_get(input, "source")))
        json_object_set(j, "source", v);
    return j;
}

static void on_request_created(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req; /* the op's reference; not in the store yet */
    if (o->slot)
        o->slot->pending = false;
    if (op_settled_early(o, st, res))
        return;
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool created = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    int64_t held = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    if (!created) {
        /* A retried creation (the database checked it is the same request):
         * answer with the request as it stands. */
        o->repeat = true;
        op_set_request(o, NULL);
        struct request *existing = store_request(&d->store, id);
        if (existing) {
            op_finish(o, DISPATCH_OK, NULL, NULL, request_summary_json(d, existing));
            return;
        }
        answer_request_view(o, id);
        return;
    }
    r->id = id;
    /* The database's clock: creation time and deadline. */
    r->created_at = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    r->deadline = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    store_request_ref(r);
    if (!store_add_request(&d->store, r)) {
        op_fail(o, DERR_INTERNAL, "out of memory", NULL);
        return;
    }
    if (held > 0 && o->slot && held == o->slot->id) {
        request_set_offer(d, r, o->slot, expires);
        d->stats.offers++;
        op_finish(o, DISPATCH_OK, NULL, NULL,
                  created_json(d, r, o->data, o->alternatives, o->nalternatives));
        return;
    }
    if (o->slot) {
        /* Refused (taken by another process meanwhile, or outside the
         * window by the database's clock): try the next candidates. */
        d->stats.conflicts++;
        o->slot->stale = true;
        refresh_stale(d, NULL, o->slot);
        o->attempts = 1;
        op_set_release(o, NULL);
        snprintf(o->reason, sizeof(o->reason), "none");
        offer_move_next(o);
        return;
    }
    /* Waiting: op_finish queues it for the matching pass, which also covers
     * a slot published while this creation was on its way. */
    op_finish(o, DISPATCH_OK, NULL, NULL,
              created_json(d, r, o->data, o->alternatives, o->nalternatives));
}

/* Whether commune `c` is one of `t`'s or of a territory it borrows from. */
bool territory_has_commune(const struct territory *t, const struct commune *c)
{
    for (size_t i = 0; i < t->ncommunes; i++)
        if (t->communes[i] == c)
            return true;
    for (size_t k = 0; k < t->nneighbours; k++)
        for (size_t i = 0; i < t->neighbours[k]->ncommunes; i++)
            if (t->neighbours[k]->communes[i] == c)
                return true;
    return false;
}

void dispatch_request_create(struct dispatch *d, const struct caller *c, json_t *data,
                             dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t || !token_role_is_requester(c->role)) {
        cb(arg, DERR_FORBIDDEN, "only requesters create requests", NULL, NULL);
        return;
    }
    json_t *patient = json_object_get(data, "patient");
    json_t *motif = json_object_get(data, "motif");
    json_t *cons = json_object_get(data, "constraints");
    json_t *source = json_object_get(data, "source");
    const char *insee = json_string_value(json_object_get(patient, "commune_insee"));
    struct commune *commune = insee ? store_commune(&d->store, insee) : NULL;
    if (!commune) {
        cb(arg, DERR_INVALID_FIELD, "unknown commune", "patient.commune_insee", NULL);
        return;
    }
    if (!territory_has_commune(t, commune)) {
        cb(arg, DERR_OTHER_TERRITORY, "this commune is not one of your territory's",
           "patient.commune_insee", NULL);
        return;
    }
    /* The source details must be those of the caller's kind. */
    static const char *const source_key[] = {
        [ROLE_EMERGENCY] = "emergency", [ROLE_PHARMACY] = "pharmacy", [ROLE_SAS] = "sas"};
    const char *own = c->role <= ROLE_SAS ? source_key[c->role] : NULL;
    const char *key;
    json_t *value;
    json_object_foreach (source, key, value) {
        if (!own || strcmp(key, own) != 0) {
            cb(arg, DERR_INVALID_FIELD, "source details must match your role", "source", NULL);
            return;
        }
    }
    if (c->role == ROLE_EMERGENCY && !json_object_get(source, "emergency")) {
        cb(arg, DERR_INVALID_FIELD,
           "an emergency redirection needs the triage level and the senior doctor",
           "source.emergency", NULL);
        return;
    }

    struct request *r = calloc(1, sizeof(*r));
    if (!r) {
        cb(arg, DERR_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    r->refs = 1; /* the creation's own, passed to its operation below */
    int64_t now = timeutil_now();
    r->territory = t;
    r->organisation_id = c->organisation_id;
    r->kind = (uint8_t)(c->role == ROLE_PHARMACY    ? AUD_PHARMACY
                        : c->role == ROLE_EMERGENCY ? AUD_EMERGENCY
                        : c->role == ROLE_SAS       ? AUD_SAS
                        : c->role == ROLE_DESK      ? AUD_DESK
                                                    : AUD_PROFESSIONAL);
    r->created_at = now;
    r->lat = commune->lat;
    r->lon = commune->lon;
    snprintf(r->client_ref, sizeof(r->client_ref), "%s",
             json_string_value(json_object_get(data, "client_ref")));
    bool ok = model_motif_parse(json_string_value(json_object_get(motif, "code")), &r->motif) &&
              model_urgency_parse(json_string_value(json_object_get(data, "urgency")), &r->urgency);
    const char *birth_date = json_string_value(json_object_get(patient, "birth_date"));
    int by = 0, bm = 0, bd = 0;
    if (birth_date)
        ok = ok && sscanf(birth_date, "%4d-%2d-%2d", &by, &bm, &bd) == 3;
    else
        by = (int)json_integer_value(json_object_get(patient, "birth_year"));
    if (!ok || by < 1890) {
        free(r);
        cb(arg, DERR_INVALID_FIELD, "invalid motif, urgency or birth date", NULL, NULL);
        return;
    }
    r->age = age_at(t, now, by, bm, bd);
    r->deadline = timeutil_deadline(t->zone, now,
                                    r->urgency == URGENCY_SAME_DAY ? TIMEUTIL_SAME_DAY
                                    : r->urgency == URGENCY_24H    ? TIMEUTIL_H24
                                                                   : TIMEUTIL_H48);
    r->modes = MODE_ALL;
    json_t *modes = json_object_get(cons, "modes");
    if (modes) {
        r->modes = 0;
        size_t i;
        json_t *m;
        json_array_foreach (modes, i, m) {
            uint8_t bit;
            if (model_mode_parse(json_string_value(m), &bit))
                r->modes |= bit;
        }
    }
    r->max_distance_km = json_number_value(json_object_get(cons, "max_distance_km"));
    const char *mt = json_string_value(json_object_get(patient, "mt_rpps"));
    bool has_mt = json_is_true(json_object_get(patient, "has_mt"));
    if (mt && has_mt)
        snprintf(r->mt_rpps, sizeof(r->mt_rpps), "%s", mt);
    r->priority_groups =
        (uint8_t)((json_is_true(json_object_get(patient, "ald")) ? PRIORITY_ALD : 0) |
                  (json_is_true(json_object_get(patient, "c2s")) ? PRIORITY_C2S : 0) |
                  (r->age >= 70 ? PRIORITY_AGED_70_PLUS : 0));
    r->status = REQ_WAITING;

    /* What the database keeps countable, and the identity kept apart. */
    char deadline[TIMEUTIL_RFC3339_SIZE];
    if (!timeutil_format_rfc3339(t->zone, r->deadline, deadline, sizeof(deadline))) {
        free(r);
        cb(arg, DERR_INTERNAL, "cannot format the deadline", NULL, NULL);
        return;
    }
    json_t *empty = json_object();
    json_t *req = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:i, s:s, s:b, s:o, s:O}", "client_ref", r->client_ref,
        "motif", model_motif_name(r->motif), "urgency", model_urgency_name(r->urgency), "deadline",
        deadline, "modes", bits_json(r->modes, model_mode_name), "patient_commune", commune->insee,
        "patient_birth_year", by, "patient_age", r->age, "patient_sex",
        json_string_value(json_object_get(patient, "sex")), "has_mt", has_mt, "priority_groups",
        priority_json(r->priority_groups), "source", source ? source : empty);
    json_decref(empty);
    if (!req) {
        free(r);
        cb(arg, DERR_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    if (r->max_distance_km > 0)
        json_object_set_new(req, "max_distance_km", json_real(r->max_distance_km));
    if (json_is_true(json_object_get(cons, "reduced_mobility")))
        json_object_set_new(req, "reduced_mobility", json_true());
    if (r->mt_rpps[0])
        json_object_set_new(req, "mt_rpps", json_string(r->mt_rpps));
    json_t *ident = json_object();
    static const char *const ident_keys[] = {"display_name", "initials", "birth_date", "phone"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(patient, ident_keys[i]);
        if (v)
            json_object_set(ident, ident_keys[i], v);
    }
    json_t *mtext = json_object_get(motif, "text");
    if (mtext)
        json_object_set(ident, "motif_text", mtext);

    struct op *o = op_new(d, c, data, cb, arg);
    if (!o) {
        free(r);
        json_decref(req);
        json_decref(ident);
        return;
    }
    o->req = r;
    /* One ranking serves both the slot to hold and the alternatives.  The
     * deadline used here is snpd's estimate; the database computes the one
     * recorded (and refuses a hold past it). */
    struct match_candidate cand[MAX_CANDIDATES];
    int want = t->settings.alternatives < MAX_CANDIDATES - 1 ? t->settings.alternatives
                                                             : MAX_CANDIDATES - 1;
    size_t ncand = rank_for(d, r, cand, (size_t)want + 1);
    op_set_slot(o, ncand ? cand[0].slot : NULL);
    if (o->slot)
        o->slot->pending = true;
    for (size_t i = 1; i < ncand; i++)
        o->alternatives[o->nalternatives++] = cand[i].slot->id;
    char *req_text = json_dumps(req, JSON_COMPACT);
    char *ident_text = json_dumps(ident, JSON_COMPACT);
    json_decref(req);
    json_decref(ident);
    char org[24], slot[24], hold[16];
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    snprintf(slot, sizeof(slot), "%lld", (long long)(o->slot ? o->slot->id : 0));
    snprintf(hold, sizeof(hold), "%d", t->settings.hold_seconds);
    const char *params[] = {t->id, org, c->actor, req_text, ident_text, o->slot ? slot : NULL,
                            hold};
    /* Grouped (db.h): when every connection is busy, creations and
     * confirmations that wait share one commit.  snp_request_create sets its
     * cause before its first change. */
    db_query_grouped(d->db, sql_text[SQL_REQUEST_CREATE], 7, params, on_request_created, o);
    free(req_text);
    free(ident_text);
}

/* --- offer.accept ----------------------------------------------------------------- */

static json_t *booking_json(struct dispatch *d, int64_t booking_id, const struct request *r,
                            const struct slot *s, int64_t now)
{
    json_t *j = json_pack("{s:I, s:s, s:o}", "booking_id", (json_int_t)booking_id, "status",
                          "booked", "created_at", time_json(s->territory, now));
    json_object_set_new(j, "slot", dispatch_slot_json(d, s));
    if (r) {
        json_object_set_new(j, "request_id", json_integer(r->id));
        json_object_set_new(j, "urgency", json_string(model_urgency_name(r->urgency)));
        json_object_set_new(j, "motif", json_pack("{s:s}", "code", model_motif_name(r->motif)));
        json_object_set_new(j, "priority_groups", priority_json(r->priority_groups));
        const struct organisation *org = idmap_get(&d->store.organisations, r->organisation_id);
        json_t *rq =
            json_pack("{s:s, s:I, s:s}", "kind", model_audience_name(r->kind), "organisation_id",
                      (json_int_t)r->organisation_id, "name", org ? org->name : "");
        if (org && org->finess[0])
            json_object_set_new(rq, "finess", json_string(org->finess));
        json_object_set_new(j, "requester", rq);
    }
    return j;
}

static void push_booking_from_db(struct dispatch *d, int64_t booking_id, const char *territory,
                                 int64_t organisation_id, const char *event, const char *previous);

static void on_accepted(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req;
    if (r)
        r->pending = false;
    if (o->slot && o->ids[1])
        o->slot->pending = false;
    if (op_closed(o))
        return;
    if (st != DB_OK) {
        enum dispatch_error e = dispatch_db_error(st, res);
        if (e == DERR_SLOT_TAKEN && o->slot) {
            /* Memory thought it free: another process has it. */
            d->stats.conflicts++;
            o->slot->stale = true;
        }
        /* The hold ran out or the request closed by the database's word:
         * memory reads the request again. */
        if ((e == DERR_HOLD_EXPIRED || e == DERR_CONFLICT) && r)
            r->stale = true;
        if (e == DERR_NOT_FOUND) {
            /* One answer for a request that does not exist and one of
             * another organisation: ids are not to be probed. */
            op_fail(o, e, NO_SUCH_REQUEST, "request_id");
            return;
        }
        if (e == DERR_INVALID_FIELD) {
            op_fail(o, e, dispatch_db_message(st, res), "slot_id");
            return;
        }
        op_fail_db(o, st, res);
        return;
    }
    int64_t booking_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool created = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    int64_t slot_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    int64_t released = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    if (!created) {
        /* A repeated confirmation: the booking as it stands (and memory,
         * if it still had the request open, reads it again). */
        if (r && !r->gone)
            r->stale = true;
        answer_booking_view(o, booking_id);
        return;
    }
    d->stats.bookings++;
    struct slot *s = store_slot(&d->store, slot_id);
    struct slot *rel = released ? store_slot(&d->store, released) : NULL;
    if (rel) {
        slot_set_free(d, rel);
        want_slot(d, rel);
    }
    if (s) {
        bool changed = s->status != SLOT_BOOKED; /* see slot_set_free */
        if (changed && s->practitioner)
            s->practitioner->booked++;
        s->status = SLOT_BOOKED;
        s->held_for = 0;
        s->hold_expires_at = 0;
        if (changed)
            push_capacity(d, s);
    } else {
        read_unknown_slot(d, slot_id);
    }
    if (!r || r->gone || !s) {
        /* Booked by the database for a request or slot this process had not
         * read yet (another process made them a moment ago): the
         * practitioner's push and the answer come from the database. */
        if (r && !r->gone) {
            r->status = REQ_BOOKED;
            store_remove_request(&d->store, r);
        }
        push_booking_from_db(d, booking_id, o->caller.territory, o->caller.organisation_id,
                             snp_push_name(SNP_PUSH_BOOKING_CREATED), NULL);
        answer_booking_view(o, booking_id);
        return;
    }
    int64_t now = timeutil_now();
    json_t *result = booking_json(d, booking_id, r, s, now);
    struct push_target to = {.territory = s->territory->id,
                             .topic = SNP_TOPIC_BOOKINGS,
                             .rpps = s->practitioner ? s->practitioner->rpps : NULL,
                             .site_id = s->site->id};
    push(d, &to, snp_push_name(SNP_PUSH_BOOKING_CREATED), booking_json(d, booking_id, r, s, now));
    r->status = REQ_BOOKED;
    store_remove_request(&d->store, r);
    op_finish(o, DISPATCH_OK, NULL, NULL, result);
}

void dispatch_offer_accept(struct dispatch *d, const struct caller *c, json_t *data, dispatch_cb cb,
                           void *arg)
{
    json_int_t id = json_integer_value(json_object_get(data, "request_id"));
    json_int_t slot_id = json_integer_value(json_object_get(data, "slot_id"));
    struct request *r = store_request(&d->store, id);
    if (r && r->organisation_id != c->organisation_id)
        r = NULL; /* the database answers as for any request not the caller's */
    if (r && r->pending) {
        park_call(d, r, dispatch_offer_accept, c, data, cb, arg);
        return;
    }
    /* Not in memory: already booked (a retried confirmation) or unknown; the
     * database answers either way, and checks the slot as offering would. */
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    op_set_request(o, r);
    struct slot *s = store_slot(&d->store, slot_id);
    op_set_slot(o, s);
    if (r)
        r->pending = true;
    if (s && s->status == SLOT_FREE && !s->pending) {
        /* An alternative: the matching pass leaves it alone meanwhile. */
        s->pending = true;
        o->ids[1] = 1;
    }
    char rid[24], org[24], sid[24];
    snprintf(rid, sizeof(rid), "%lld", (long long)id);
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    snprintf(sid, sizeof(sid), "%lld", (long long)slot_id);
    const char *params[] = {rid, org, sid, c->actor};
    /* Grouped, as request.create.  snp_offer_accept books the held slot
     * before it sets its cause, so that change may carry the cause an
     * earlier statement of its group left; no push reads the cause of a
     * slot that becomes booked (push_slot_change). */
    db_query_grouped(d->db, sql_text[SQL_OFFER_ACCEPT], 4, params, on_accepted, o);
}

/* --- offer.decline ---------------------------------------------------------------- */

/* Declines o->req's offer of slot o->ids[0] and offers the next slot. */
static void decline_start(struct op *o)
{
    struct request *r = o->req;
    json_int_t slot_id = o->ids[0];
    if (r->status != REQ_OFFERED || r->held_slot != slot_id) {
        op_fail(o, DERR_CONFLICT, "this slot is not the one offered to the request", "slot_id");
        return;
    }
    op_set_release(o, store_slot(&o->d->store, slot_id));
    snprintf(o->reason, sizeof(o->reason), "declined");
    /* The declined slot is held, so ranking already leaves it out. */
    offer_move_next(o);
}

/* The request as the database has it, for a decline this process could not
 * judge from memory (made through another process a moment ago). */
static void on_decline_read(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    struct request *fresh = PQntuples(res) == 1 ? store_request_from_row(&d->store, res, 0) : NULL;
    if (!fresh || fresh->organisation_id != o->caller.organisation_id ||
        strcmp(fresh->territory->id, o->caller.territory) != 0) {
        if (fresh)
            store_request_unref(fresh);
        op_fail(o, DERR_NOT_FOUND, NO_SUCH_REQUEST, "request_id");
        return;
    }
    struct request *r = store_request(&d->store, fresh->id);
    if (r) {
        if (!r->pending)
            request_apply_fresh(d, r, fresh);
        store_request_unref(fresh);
    } else {
        r = fresh;
        store_request_ref(r);
        if (!store_add_request(&d->store, r)) {
            store_request_unref(r);
            op_fail(o, DERR_INTERNAL, "out of memory", NULL);
            return;
        }
        store_request_unref(r); /* the store's reference remains */
    }
    if (r->pending) {
        op_fail(o, DERR_CONFLICT, "the request is being updated; retry", "request_id");
        return;
    }
    op_set_request(o, r);
    decline_start(o);
}

void dispatch_offer_decline(struct dispatch *d, const struct caller *c, json_t *data,
                            dispatch_cb cb, void *arg)
{
    json_int_t id = json_integer_value(json_object_get(data, "request_id"));
    json_int_t slot_id = json_integer_value(json_object_get(data, "slot_id"));
    struct request *r = store_request(&d->store, id);
    if (r &&
        (r->organisation_id != c->organisation_id || strcmp(r->territory->id, c->territory) != 0)) {
        cb(arg, DERR_NOT_FOUND, NO_SUCH_REQUEST, "request_id", NULL);
        return;
    }
    if (r && r->pending) {
        park_call(d, r, dispatch_offer_decline, c, data, cb, arg);
        return;
    }
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    o->ids[0] = slot_id;
    if (r && r->status == REQ_OFFERED && r->held_slot == slot_id) {
        op_set_request(o, r);
        decline_start(o);
        return;
    }
    /* Memory does not know the request or its offer yet: ask the database. */
    char rid[24];
    snprintf(rid, sizeof(rid), "%lld", (long long)id);
    const char *params[] = {rid};
    db_query(d->db, sql_text[SQL_REQUEST_GET_OPEN], 1, params, on_decline_read, o);
}

/* --- request.cancel, booking.cancel ----------------------------------------------- */

/* Applies a cancellation's freed slot to memory: free again, and offered to
 * the waiting by the matching pass.  `held_for` is the request the slot was
 * held for (request.cancel), 0 when it was booked.  Memory may already show
 * a later change: another process can take the freed slot at once, and its
 * notification can arrive before this answer (the slot is not pending
 * during a cancellation).  Memory in any other state than the one the
 * cancellation ended is therefore read again, not overwritten. */
static void apply_freed(struct dispatch *d, int64_t freed_slot, int64_t held_for)
{
    struct slot *s = freed_slot ? store_slot(&d->store, freed_slot) : NULL;
    if (!s)
        return;
    bool as_known =
        held_for ? s->status == SLOT_HELD && s->held_for == held_for : s->status == SLOT_BOOKED;
    if (!as_known) {
        if (s->pending)
            s->stale = true;
        else
            reread_slot(d, s);
        return;
    }
    if (s->status == SLOT_BOOKED && s->practitioner && s->practitioner->booked > 0)
        s->practitioner->booked--;
    slot_set_free(d, s);
    want_slot(d, s);
}

static void push_booking_cancelled(struct dispatch *d, const char *territory, json_t *view,
                                   int64_t organisation_id);

static void on_cancelled_booking_view(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_closed(o))
        return;
    json_t *view =
        st == DB_OK && PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    if (view) {
        push_booking_cancelled(o->d, o->caller.territory, view, o->caller.organisation_id);
        json_decref(view);
    }
    answer_request_view(o, o->ids[0]);
}

static void on_request_cancelled(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req;
    if (r)
        r->pending = false;
    if (op_closed(o))
        return;
    if (st != DB_OK || PQntuples(res) == 0) {
        if (st == DB_OK || dispatch_db_error(st, res) == DERR_NOT_FOUND)
            op_fail(o, DERR_NOT_FOUND, NO_SUCH_REQUEST, "request_id");
        else
            op_fail_db(o, st, res);
        return;
    }
    int64_t freed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t booking = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    apply_freed(d, freed, booking > 0 ? 0 : o->ids[0]);
    if (!r)
        unknown_changed(&d->request_reads, o->ids[0]);
    if (r && !r->gone) {
        r->status = REQ_CANCELLED;
        r->held_slot = 0;
        if (booking == 0) {
            json_t *result = request_summary_json(d, r);
            store_remove_request(&d->store, r);
            op_finish(o, DISPATCH_OK, NULL, NULL, result);
            return;
        }
        /* Booked through another process, which memory had not heard yet:
         * the booking's cancellation is pushed all the same, below. */
        store_remove_request(&d->store, r);
    }
    if (booking > 0) {
        /* A booked request: its practitioner is told, with the booking. */
        o->ids[1] = booking;
        char id[24], org[24];
        snprintf(id, sizeof(id), "%lld", (long long)booking);
        snprintf(org, sizeof(org), "%lld", (long long)o->caller.organisation_id);
        const char *params[] = {id, org};
        db_query(d->db, sql_text[SQL_BOOKING_GET], 2, params, on_cancelled_booking_view, o);
        return;
    }
    answer_request_view(o, o->ids[0]);
}

void dispatch_request_cancel(struct dispatch *d, const struct caller *c, json_t *data,
                             dispatch_cb cb, void *arg)
{
    json_int_t id = json_integer_value(json_object_get(data, "request_id"));
    struct request *r = store_request(&d->store, id);
    if (r && r->organisation_id != c->organisation_id)
        r = NULL; /* the database answers as for any request not the caller's */
    if (r && r->pending) {
        park_call(d, r, dispatch_request_cancel, c, data, cb, arg);
        return;
    }
    const char *reason = json_string_value(json_object_get(data, "reason"));
    if (reason && strcmp(reason, "patient_refused") == 0 && c->role != ROLE_EMERGENCY) {
        cb(arg, DERR_INVALID_FIELD, "patient_refused is recorded with slip.refuse", "reason", NULL);
        return;
    }
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    op_set_request(o, r);
    o->ids[0] = id;
    if (r)
        r->pending = true;
    char rid[24], org[24];
    snprintf(rid, sizeof(rid), "%lld", (long long)id);
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    const char *params[] = {rid, org, reason ? reason : "other", c->actor};
    db_query(d->db, sql_text[SQL_REQUEST_CANCEL], 4, params, on_request_cancelled, o);
}

static void on_requeue_loaded(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    if (d->closed || st != DB_OK || PQntuples(res) != 1) {
        op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
        return;
    }
    struct request *r = store_request_from_row(&d->store, res, 0);
    if (r && store_request(&d->store, r->id)) {
        store_request_unref(r);
        r = NULL;
    }
    if (r) {
        op_set_request(o, r); /* op_finish queues it for the matching pass */
        if (!store_add_request(&d->store, r))
            log_warn("dispatch", "out of memory taking a request back");
    }
    op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
}

/* Takes a request that went back to waiting into memory again; the
 * matching pass offers it the best slot there is. */
static void requeue(struct dispatch *d, int64_t request_id)
{
    fetch_by_id(d, SQL_REQUEST_GET_OPEN, request_id, on_requeue_loaded);
}

/* The subscribers of the bookings topic concerned by a booking (`view`, as
 * the protocol shows it): its practitioner (if any) and its site's
 * reception. */
static struct push_target bookings_target(const char *territory, json_t *view)
{
    json_t *slot = json_object_get(view, "slot");
    return (struct push_target){
        .territory = territory,
        .topic = SNP_TOPIC_BOOKINGS,
        .rpps = json_string_value(json_object_get(json_object_get(slot, "practitioner"), "rpps")),
        .site_id = json_integer_value(json_object_get(json_object_get(slot, "site"), "site_id"))};
}

/* Tells the practitioner and the requester that a booking was cancelled
 * (`view` is the booking as the protocol shows it, borrowed). */
static void push_booking_cancelled(struct dispatch *d, const char *territory, json_t *view,
                                   int64_t organisation_id)
{
    struct push_target gp = bookings_target(territory, view);
    push(d, &gp, snp_push_name(SNP_PUSH_BOOKING_CANCELLED), json_incref(view));
    struct push_target to = {
        .territory = territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = organisation_id};
    push(d, &to, snp_push_name(SNP_PUSH_BOOKING_CANCELLED), json_incref(view));
}

static void on_booking_cancelled(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    int64_t slot_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    const char *slot_status = PQgetvalue(res, 0, 1);
    int64_t request_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    const char *request_status = PQgetvalue(res, 0, 3);
    int64_t org = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    json_t *view = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
    struct slot *s = store_slot(&d->store, slot_id);
    if (s) {
        if (strcmp(slot_status, "free") == 0)
            apply_freed(d, slot_id, 0);
        else
            store_remove_slot(&d->store, s);
    }
    if (view)
        push_booking_cancelled(d, o->caller.territory, view, org);
    /* The patient still needs a doctor: the request re-enters the queue. */
    if (strcmp(request_status, "waiting") == 0)
        requeue(d, request_id);
    if (!view)
        view = json_pack("{s:I, s:s}", "booking_id", (json_int_t)o->ids[0], "status", "cancelled");
    op_finish(o, DISPATCH_OK, NULL, NULL, view);
}

static void on_booking_cancelled_by_requester(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    int64_t freed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    json_t *view = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    apply_freed(d, freed, 0);
    if (view)
        push_booking_cancelled(d, o->caller.territory, view, o->caller.organisation_id);
    else
        view = json_pack("{s:I, s:s}", "booking_id", (json_int_t)o->ids[0], "status", "cancelled");
    op_finish(o, DISPATCH_OK, NULL, NULL, view);
}

void dispatch_booking_cancel(struct dispatch *d, const struct caller *c, json_t *data,
                             dispatch_cb cb, void *arg)
{
    json_int_t id = json_integer_value(json_object_get(data, "booking_id"));
    const char *reason = json_string_value(json_object_get(data, "reason"));
    if (reason && strcmp(reason, "patient_refused") == 0) {
        cb(arg, DERR_INVALID_FIELD, "patient_refused is recorded with slip.refuse", "reason", NULL);
        return;
    }
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    o->ids[0] = id;
    o->ids[1] = id;
    char bid[24], org[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)id);
    if (token_role_is_requester(c->role)) {
        snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
        const char *params[] = {bid, org, reason ? reason : "other", c->actor};
        db_query(d->db, sql_text[SQL_BOOKING_CANCEL_BY_REQUESTER], 4, params,
                 on_booking_cancelled_by_requester, o);
        return;
    }
    const char *params[] = {bid, c->territory, c->role == ROLE_GP ? c->rpps : NULL,
                            reason ? reason : "other", c->actor};
    db_query(d->db, sql_text[SQL_BOOKING_CANCEL], 5, params, on_booking_cancelled, o);
}

/* --- outcome.report --------------------------------------------------------------- */

static void on_outcome(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    json_int_t booking = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    json_int_t request = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int64_t org = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    const char *outcome = PQgetvalue(res, 0, 3);
    json_t *result = json_pack("{s:I, s:I, s:s, s:{s:s, s:s}}", "booking_id", booking, "request_id",
                               request, "status", "booked", "outcome", "kind", outcome,
                               "reported_at", PQgetvalue(res, 0, 5));
    json_t *data = json_pack("{s:I, s:I, s:s, s:s}", "booking_id", booking, "request_id", request,
                             "client_ref", PQgetvalue(res, 0, 6), "outcome", outcome);
    struct push_target to = {
        .territory = o->caller.territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = org};
    push(o->d, &to, snp_push_name(SNP_PUSH_OUTCOME_REPORTED), data);
    op_finish(o, DISPATCH_OK, NULL, NULL, result);
}

void dispatch_outcome_report(struct dispatch *d, const struct caller *c, json_t *data,
                             dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, DERR_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    char bid[24], delay[16];
    snprintf(bid, sizeof(bid), "%lld",
             (long long)json_integer_value(json_object_get(data, "booking_id")));
    snprintf(delay, sizeof(delay), "%d", t->settings.outcome_delay_hours);
    const char *params[] = {bid,
                            c->territory,
                            c->role == ROLE_GP ? c->rpps : NULL,
                            json_string_value(json_object_get(data, "outcome")),
                            json_string_value(json_object_get(data, "note")),
                            delay,
                            c->actor};
    db_query(d->db, sql_text[SQL_OUTCOME_REPORT], 7, params, on_outcome, o);
}

/* --- slot.withdraw ---------------------------------------------------------------- */

static void withdraw_next(struct op *o);

static void on_withdrawn(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct slot *s = o->slot;
    if (s)
        s->pending = false;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    json_t *ids = json_object_get(o->data, "slot_ids");
    json_int_t id = json_integer_value(json_array_get(ids, (size_t)o->count));
    if (s && !s->gone) {
        s->status = SLOT_WITHDRAWN;
        push_capacity(d, s);
        store_remove_slot(&d->store, s);
    }
    /* A read of it in flight may return it free. */
    unknown_changed(&d->slot_reads, id);
    op_set_slot(o, NULL);
    json_array_append_new(json_object_get(o->result, "slot_ids"), json_integer(id));
    o->count++;
    withdraw_next(o);
}

/* Withdraws the listed slots one by one; stops at the first refusal (the
 * ones before it stay withdrawn, and are named in the error's message). */
static void withdraw_next(struct op *o)
{
    struct dispatch *d = o->d;
    json_t *ids = json_object_get(o->data, "slot_ids");
    if ((size_t)o->count >= json_array_size(ids)) {
        json_object_set_new(o->result, "count", json_integer(o->count));
        json_t *result = json_incref(o->result);
        op_finish(o, DISPATCH_OK, NULL, NULL, result);
        return;
    }
    json_int_t id = json_integer_value(json_array_get(ids, (size_t)o->count));
    struct slot *s = store_slot(&d->store, id);
    /* A slot busy with an offer is the database's to refuse (it is held);
     * one that is free is kept from the matching pass meanwhile. */
    if (s && !s->pending) {
        op_set_slot(o, s);
        s->pending = true;
    }
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *params[] = {sid, o->caller.territory,
                            o->caller.role == ROLE_GP ? o->caller.rpps : NULL, o->caller.actor};
    db_query(d->db, sql_text[SQL_SLOT_WITHDRAW], 4, params, on_withdrawn, o);
}

void dispatch_slot_withdraw(struct dispatch *d, const struct caller *c, json_t *data,
                            dispatch_cb cb, void *arg)
{
    struct op *o = op_new(d, c, data, cb, arg);
    if (!o)
        return;
    o->result = json_pack("{s:i, s:[]}", "count", 0, "slot_ids");
    withdraw_next(o);
}

/* --- lifecycle -------------------------------------------------------------------- */

void dispatch_init(struct dispatch *d, uv_loop_t *loop, struct db *db,
                   const struct dispatch_hooks *hooks)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    d->db = db;
    d->heard_tail = &d->heard;
    if (hooks)
        d->hooks = *hooks;
    uv_timer_init(loop, &d->timer);
    handle_mark_own((uv_handle_t *)&d->timer);
    uv_prepare_init(loop, &d->matcher);
    handle_mark_own((uv_handle_t *)&d->matcher);
    uv_idle_init(loop, &d->match_more);
    handle_mark_own((uv_handle_t *)&d->match_more);
}

struct load_ctx {
    struct dispatch *d;
    void (*done)(struct dispatch *d, bool ok);
};

static void on_store_loaded(struct store *st, bool ok, void *arg)
{
    struct load_ctx *l = arg;
    struct dispatch *d = l->d;
    d->ready = ok;
    d->loading = false;
    if (ok) {
        apply_heard(d);
        d->last_housekeeping_ms = uv_now(d->loop);
        uv_timer_start(&d->timer, on_timer, TIMER_MS, TIMER_MS);
        uv_prepare_start(&d->matcher, on_before_poll);
        /* Requests that waited while snpd was down may find slots now. */
        for (size_t i = 0; i < st->nterritories; i++)
            for (size_t k = 0; k < st->territories[i]->nopen; k++)
                want_request(d, st->territories[i]->open[k]);
    }
    l->done(d, ok);
    free(l);
}

static void on_first_housekeeping(void *arg, enum db_status st, const PGresult *res)
{
    struct load_ctx *l = arg;
    if (st != DB_OK) {
        log_error("dispatch", "start-up housekeeping failed: %s", dispatch_db_message(st, res));
        l->done(l->d, false);
        free(l);
        return;
    }
    if (PQntuples(res) > 0)
        log_info("dispatch", "start-up housekeeping: %d expired holds, slots or requests",
                 PQntuples(res));
    l->d->loading = true;
    store_load(&l->d->store, l->d->db, l->d->load_batch, on_store_loaded, l);
}

void dispatch_load(struct dispatch *d, void (*done)(struct dispatch *d, bool ok))
{
    struct load_ctx *l = calloc(1, sizeof(*l));
    if (!l) {
        done(d, false);
        return;
    }
    l->d = d;
    l->done = done;
    /* Holds left by a crash are released before the store is built, so
     * memory starts from a state where nothing is held forever. */
    const char *params[] = {"system"};
    db_query(d->db, sql_text[SQL_HOUSEKEEPING], 1, params, on_first_housekeeping, l);
}

void dispatch_stop(struct dispatch *d)
{
    uv_timer_stop(&d->timer);
    uv_prepare_stop(&d->matcher);
    uv_idle_stop(&d->match_more);
    d->ready = false;
}

void dispatch_close(struct dispatch *d)
{
    dispatch_stop(d);
    d->closed = true;
    answer_parked(d);
    free_heard(d);
    store_free(&d->store);
    free(d->waiting);
    d->waiting = NULL;
    d->waiting_cap = 0;
    free(d->site_km);
    d->site_km = NULL;
    d->site_km_cap = 0;
    id_queue_free(&d->match_slots);
    id_queue_free(&d->match_requests);
    id_queue_free(&d->retry_slots);
    id_queue_free(&d->retry_requests);
    for (int k = 0; k < 2; k++) {
        struct idmap *m = k ? &d->request_reads : &d->slot_reads;
        for (size_t i = 0; i < m->cap; i++)
            free(m->buckets[i].value);
        idmap_free(m);
    }
    uv_close((uv_handle_t *)&d->timer, NULL);
    uv_close((uv_handle_t *)&d->matcher, NULL);
    uv_close((uv_handle_t *)&d->match_more, NULL);
}

/* --- pushes ------------------------------------------------------------------------ *
 *
 * Pushes follow the subscriber, not the process (protocol §8).  Every
 * committed change of a slot, a request or a booking is announced once on
 * the channel snp_change (sql/migrations/0012), and every snpd process hears
 * it once.  The requests topic (offer.made, offer.expired, request.updated)
 * is pushed from these notifications by every process, the one that made
 * the change included, to the subscribers connected to it: each subscriber
 * is connected to one process, so it gets each push exactly once, in commit
 * order.  Bookings and outcomes are pushed from memory by the process that
 * made the change and from the notification by the others; capacity
 * likewise (each process from its own memory, as it applies the change). */

static bool wanted(struct dispatch *d, const struct push_target *to)
{
    return d->hooks.push && (!d->hooks.wants || d->hooks.wants(d->hooks.ctx, to));
}

static json_t *time_json_in(struct dispatch *d, const char *territory, int64_t utc)
{
    const struct territory *t = territory ? store_territory(&d->store, territory) : NULL;
    char buf[TIMEUTIL_RFC3339_SIZE];
    if (!timeutil_format_rfc3339(t ? t->zone : timeutil_zone_find("Europe/Paris"), utc, buf,
                                 sizeof(buf)))
        return json_null();
    return json_string(buf);
}

/* offer.made for request `q` (organisation `org` of `territory`), slot `s`
 * held until `expires`. */
static void push_offer_made(struct dispatch *d, const struct push_target *to, int64_t q,
                            const char *client_ref, const struct slot *s, int64_t expires)
{
    json_t *slot = dispatch_slot_json(d, s);
    json_object_set_new(slot, "status", json_string("held"));
    json_t *offer = json_pack("{s:o, s:o}", "slot", slot, "expires_at",
                              time_json_in(d, to->territory, expires));
    struct request *r = store_request(&d->store, q);
    int want = r ? r->territory->settings.alternatives : 0;
    if (want > MAX_CANDIDATES - 1)
        want = MAX_CANDIDATES - 1;
    json_t *alts = json_array();
    if (r && want > 0) {
        struct match_candidate c[MAX_CANDIDATES];
        size_t n = rank_for(d, r, c, (size_t)want + 1);
        for (size_t i = 0; i < n && (int)json_array_size(alts) < want; i++)
            if (c[i].slot != s)
                json_array_append_new(alts, dispatch_slot_json(d, c[i].slot));
    }
    json_object_set_new(offer, "alternatives", alts);
    push(d, to, snp_push_name(SNP_PUSH_OFFER_MADE),
         json_pack("{s:I, s:s, s:o}", "request_id", (json_int_t)q, "client_ref", client_ref,
                   "offer", offer));
}

struct pending_offer_push {
    struct push_target to;
    char territory[64];
    char client_ref[65];
    int64_t request;
    int64_t expires;
};

static void on_offer_slot_loaded(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct pending_offer_push *p = (struct pending_offer_push *)o->result;
    o->result = NULL;
    struct dispatch *d = o->d;
    if (!d->closed && st == DB_OK && PQntuples(res) == 1) {
        struct slot *s = store_slot_from_row(&d->store, res, 0);
        if (s) {
            p->to.territory = p->territory;
            push_offer_made(d, &p->to, p->request, p->client_ref, s, p->expires);
            store_slot_unref(s);
        }
    }
    free(p);
    op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
}

/* The pushes of the requests topic, from a slot's notification: a hold
 * made after the request's creation (offer.made) and a hold that ran out
 * (offer.expired). */
static void push_slot_change(struct dispatch *d, int64_t id, json_t *j)
{
    const char *st = json_string_value(json_object_get(j, "st"));
    const char *os = json_string_value(json_object_get(j, "os"));
    const char *cause = json_string_value(json_object_get(j, "c"));
    const char *territory = json_string_value(json_object_get(j, "t"));
    const char *client_ref = json_string_value(json_object_get(j, "f"));
    int64_t q = json_integer_value(json_object_get(j, "q"));
    struct push_target to = {.territory = territory,
                             .topic = SNP_TOPIC_REQUESTS,
                             .organisation_id = json_integer_value(json_object_get(j, "o"))};
    if (!st || !territory || q <= 0 || !wanted(d, &to))
        return;
    if (!client_ref)
        client_ref = "";
    bool was_held = os && strcmp(os, "held") == 0;
    if (was_held && strcmp(st, "held") != 0 && cause && strcmp(cause, "expired") == 0) {
        int64_t at = json_integer_value(json_object_get(j, "ox"));
        push(d, &to, snp_push_name(SNP_PUSH_OFFER_EXPIRED),
             json_pack("{s:I, s:s, s:I, s:o}", "request_id", (json_int_t)q, "client_ref",
                       client_ref, "slot_id", (json_int_t)id, "expired_at",
                       time_json_in(d, territory, at)));
    }
    if (!was_held && strcmp(st, "held") == 0 && (!cause || strcmp(cause, "create") != 0)) {
        int64_t expires = json_integer_value(json_object_get(j, "x"));
        struct slot *s = store_slot(&d->store, id);
        if (s) {
            push_offer_made(d, &to, q, client_ref, s, expires);
            return;
        }
        /* A slot this process has not read yet (published a moment ago by
         * another process): read it, then push. */
        struct pending_offer_push *p = calloc(1, sizeof(*p));
        struct op *o = p ? op_new(d, NULL, NULL, NULL, NULL) : NULL;
        if (!o) {
            free(p);
            return;
        }
        p->to = to;
        snprintf(p->territory, sizeof(p->territory), "%s", territory);
        snprintf(p->client_ref, sizeof(p->client_ref), "%s", client_ref);
        p->request = q;
        p->expires = expires;
        o->result = (json_t *)p; /* carried, not JSON: taken back in the callback */
        char sid[24];
        snprintf(sid, sizeof(sid), "%lld", (long long)id);
        const char *params[] = {sid};
        db_query(d->db, sql_text[SQL_SLOT_GET], 1, params, on_offer_slot_loaded, o);
    }
}

/* request.updated, from a request's notification: every change of status
 * but the creation itself (answered to the requester instead). */
static void push_request_change(struct dispatch *d, int64_t id, json_t *j)
{
    const char *st = json_string_value(json_object_get(j, "st"));
    const char *previous = json_string_value(json_object_get(j, "p"));
    const char *cause = json_string_value(json_object_get(j, "c"));
    struct push_target to = {.territory = json_string_value(json_object_get(j, "t")),
                             .topic = SNP_TOPIC_REQUESTS,
                             .organisation_id = json_integer_value(json_object_get(j, "o"))};
    if (!st || !previous || strcmp(st, previous) == 0 || !to.territory ||
        (cause && strcmp(cause, "create") == 0) || !wanted(d, &to))
        return;
    const char *client_ref = json_string_value(json_object_get(j, "f"));
    json_t *data =
        json_pack("{s:I, s:s, s:s, s:s}", "request_id", (json_int_t)id, "client_ref",
                  client_ref ? client_ref : "", "status", st, "previous_status", previous);
    json_int_t booking = json_integer_value(json_object_get(j, "b"));
    if (booking > 0)
        json_object_set_new(data, "booking_id", json_integer(booking));
    push(d, &to, snp_push_name(SNP_PUSH_REQUEST_UPDATED), data);
}

/* The reason of a booking's read (op.reason) when it was handed to the
 * practitioner on duty of a CSNP shift: pushed to them as booking.created. */
static const char HANDED_OVER[] = "(hand-over)";

static void on_foreign_booking_view(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    json_t *view = !d->closed && st == DB_OK && PQntuples(res) == 1
                       ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                       : NULL;
    if (view) {
        const char *event = o->reason;
        struct push_target gp = bookings_target(o->caller.territory, view);
        if (strcmp(event, HANDED_OVER) == 0) {
            /* For the practitioner named on duty only: the site's
             * reception had it when it was booked.  The one it was taken
             * from (o->caller.rpps) is told so. */
            event = snp_push_name(SNP_PUSH_BOOKING_CREATED);
            gp.site_id = 0;
            if (o->caller.rpps[0]) {
                struct push_target before = {.territory = o->caller.territory,
                                             .topic = SNP_TOPIC_BOOKINGS,
                                             .rpps = o->caller.rpps};
                push(d, &before, snp_push_name(SNP_PUSH_BOOKING_HANDED_OVER), json_incref(view));
            }
        }
        push(d, &gp, event, json_incref(view));
        if (strcmp(event, snp_push_name(SNP_PUSH_BOOKING_CANCELLED)) == 0) {
            struct push_target to = {.territory = o->caller.territory,
                                     .topic = SNP_TOPIC_REQUESTS,
                                     .organisation_id = o->caller.organisation_id};
            push(d, &to, event, json_incref(view));
        }
        json_decref(view);
    }
    op_finish(o, DISPATCH_OK, NULL, NULL, NULL);
}

/* Whether a booking's notification is its hand-over to the practitioner on
 * duty of a CSNP shift (sql/migrations/0022): their booking.created comes
 * from the notification in every process, the one that assigned included. */
static bool handed_over(json_t *j)
{
    const char *event = json_string_value(json_object_get(j, "e"));
    return event && strcmp(event, "assigned") == 0;
}

/* booking.created, booking.cancelled and outcome.reported made by another
 * process (and the hand-overs of every process), for the subscribers connected to this one. */
static void push_foreign_booking(struct dispatch *d, int64_t id, json_t *j)
{
    const char *event = json_string_value(json_object_get(j, "e"));
    const char *territory = json_string_value(json_object_get(j, "t"));
    const char *rpps = json_string_value(json_object_get(j, "rp"));
    int64_t org = json_integer_value(json_object_get(j, "o"));
    if (!event || !territory)
        return;
    bool assigned = handed_over(j);
    const char *previous = assigned ? json_string_value(json_object_get(j, "prp")) : NULL;
    struct push_target before = {
        .territory = territory, .topic = SNP_TOPIC_BOOKINGS, .rpps = previous};
    struct push_target gp = {.territory = territory,
                             .topic = SNP_TOPIC_BOOKINGS,
                             .rpps = rpps,
                             .site_id =
                                 assigned ? 0 : json_integer_value(json_object_get(j, "si"))};
    struct push_target requester = {
        .territory = territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = org};
    if (strcmp(event, "outcome") == 0) {
        const char *outcome = json_string_value(json_object_get(j, "oc"));
        const char *client_ref = json_string_value(json_object_get(j, "f"));
        if (outcome && wanted(d, &requester))
            push(d, &requester, snp_push_name(SNP_PUSH_OUTCOME_REPORTED),
                 json_pack("{s:I, s:I, s:s, s:s}", "booking_id", (json_int_t)id, "request_id",
                           json_integer_value(json_object_get(j, "q")), "client_ref",
                           client_ref ? client_ref : "", "outcome", outcome));
        return;
    }
    bool cancelled = strcmp(event, "cancelled") == 0;
    if (!wanted(d, &gp) && !(cancelled && wanted(d, &requester)) &&
        !(previous && wanted(d, &before)))
        return;
    push_booking_from_db(d, id, territory, org,
                         cancelled  ? snp_push_name(SNP_PUSH_BOOKING_CANCELLED)
                         : assigned ? HANDED_OVER
                                    : snp_push_name(SNP_PUSH_BOOKING_CREATED),
                         previous);
}

/* Pushes `event` (booking.created, booking.cancelled, or HANDED_OVER with
 * the practitioner it was taken from, `previous`, or NULL) for booking
 * `booking_id` of `organisation_id` in `territory`, with the booking as the
 * database shows it without the patient: one read. */
static void push_booking_from_db(struct dispatch *d, int64_t booking_id, const char *territory,
                                 int64_t organisation_id, const char *event, const char *previous)
{
    struct op *o = op_new(d, NULL, NULL, NULL, NULL);
    if (!o)
        return;
    snprintf(o->caller.territory, sizeof(o->caller.territory), "%s", territory);
    snprintf(o->caller.rpps, sizeof(o->caller.rpps), "%s", previous ? previous : "");
    o->caller.organisation_id = organisation_id;
    snprintf(o->reason, sizeof(o->reason), "%s", event);
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)booking_id);
    const char *params[] = {bid};
    db_query(d->db, sql_text[SQL_BOOKING_PUSH], 1, params, on_foreign_booking_view, o);
}

void dispatch_on_db_notify(struct db *db, const char *channel, const char *payload, int be_pid)
{
    struct dispatch *d = db->data;
    if (!d || d->closed || strcmp(channel, "snp_change") != 0)
        return;
    if (!d->ready) {
        keep_heard(d, payload, be_pid);
        return;
    }
    bool own = db_own_backend(db, be_pid);
    json_t *j = json_loads(payload, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "k"));
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    const char *status = json_string_value(json_object_get(j, "st"));
    /* Reference data and tokens (sql/migrations/0008): our own changes
     * are in memory already.  Slots and requests: see announced_slot.  The
     * pushes of the requests topic come from here, ours included. */
    if (!kind) {
        /* not an announcement of ours: nothing to apply */
    } else if (strcmp(kind, "ref") == 0) {
        if (!own)
            store_reload_reference(&d->store, d->db, NULL, NULL);
    } else if (strcmp(kind, "tok") == 0) {
        if (id > 0 && !own && d->hooks.token_revoked)
            d->hooks.token_revoked(d->hooks.ctx, id);
    } else if (status && id > 0 && kind[0] == 's') {
        announced_slot(d, id, status, json_integer_value(json_object_get(j, "h")),
                       json_integer_value(json_object_get(j, "x")),
                       json_is_true(json_object_get(j, "r")), own);
    } else if (status && id > 0 && kind[0] == 'r') {
        announced_request(d, id, status, own);
    } else if (id > 0 && strcmp(kind, "p") == 0) {
        announced_practitioner(d, id, json_string_value(json_object_get(j, "rp")));
    } else if (id > 0 && kind[0] == 'b' && (!own || handed_over(j))) {
        push_foreign_booking(d, id, j);
    }
    if (kind && id > 0 && kind[0] == 's')
        push_slot_change(d, id, j);
    else if (kind && id > 0 && kind[0] == 'r')
        push_request_change(d, id, j);
    json_decref(j);
}
