/* Offers and holds: the ranking of the slots a request may be offered, the
 * changes of a hold applied to memory (a slot held, freed or released), the
 * matching pass that gives a free slot to the waiting request that should
 * have it (docs/dispatch.md "Invariants"), and the offer moves (a decline,
 * an expiry, a free slot for a waiting request) that release one hold and
 * make the next in one round trip (offer_move.sql).
 *
 * Changes the store's slots and requests and queues for the matching pass;
 * pushes capacity (push_capacity) on every change of a slot's status. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define HOLD_ATTEMPTS 4 /* candidates tried when the database refuses a hold */

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

/* Ranks the slots `r` may be offered now (its territory's and its
 * neighbours', each kept sorted by start); returns the count in `out`. */
size_t rank_for(struct dispatch *d, const struct request *r, struct match_candidate *out,
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
    match_rank_sorted(r, t->slots, t->briefs, t->nslots, &ctx, out, &n, max);
    for (size_t i = 0; i < t->nneighbours; i++) {
        const struct territory *nb = t->neighbours[i];
        match_rank_sorted(r, nb->slots, nb->briefs, nb->nslots, &ctx, out, &n, max);
    }
    return n;
}

/* --- applying committed changes to memory ----------------------------------------- */

/* (Capacity is pushed once per change: the announcement of this process's
 * own commit may have been applied before its answer.) */
void slot_set_free(struct dispatch *d, struct slot *s)
{
    bool changed = s->status != SLOT_FREE;
    store_slot_set_status(s, SLOT_FREE);
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
    store_slot_set_status(s, SLOT_HELD);
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
        store_slot_set_status(s, SLOT_EXPIRED);
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
void request_refuse_locally(struct request *r, int64_t id)
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

/* Applies a cancellation's freed slot to memory: free again, and offered to
 * the waiting by the matching pass.  `held_for` is the request the slot was
 * held for (request.cancel), 0 when it was booked.  Memory may already show
 * a later change: another process can take the freed slot at once, and its
 * notification can arrive before this answer (the slot is not pending
 * during a cancellation).  Memory in any other state than the one the
 * cancellation ended is therefore read again, not overwritten. */
void apply_freed(struct dispatch *d, int64_t freed_slot, int64_t held_for)
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
    slot_set_free(d, s);
    want_slot(d, s);
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

void id_queue_free(struct id_queue *q)
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
void want_later(struct dispatch *d, struct request *r, struct slot *s)
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

void on_before_poll(uv_prepare_t *h)
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

/* --- offer moves (decline, expiry, a free slot for a waiting request) ------------- */

static void on_offer_moved(void *arg, enum db_status st, const PGresult *res);

/* Sends snp_offer_move for o->req: release o->release (o->reason, and a
 * decline's o->why), hold o->slot (may be NULL). */
static void offer_move_send(struct op *o)
{
    struct dispatch *d = o->d;
    struct request *r = o->req;
    char req_id[24], rel_id[24], next_id[24], hold[16];
    snprintf(req_id, sizeof(req_id), "%lld", (long long)r->id);
    snprintf(rel_id, sizeof(rel_id), "%lld", (long long)(o->release ? o->release->id : 0));
    snprintf(next_id, sizeof(next_id), "%lld", (long long)(o->slot ? o->slot->id : 0));
    snprintf(hold, sizeof(hold), "%d", r->territory->settings.hold_seconds);
    const char *params[] = {req_id,
                            o->release ? rel_id : NULL,
                            o->reason,
                            o->slot ? next_id : NULL,
                            hold,
                            o->caller.actor,
                            o->release && o->why[0] ? o->why : NULL};
    r->pending = true;
    if (o->slot)
        o->slot->pending = true;
    if (o->release)
        o->release->pending = true;
    db_query(d->db, sql_text[SQL_OFFER_MOVE], 7, params, on_offer_moved, o);
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
    struct op *o = op_new(d, NULL, NULL, NULL);
    if (!o)
        return;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    op_set_request(o, r);
    op_set_release(o, release);
    op_set_slot(o, next);
    offer_move_send(o);
}

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
    enum { C_RELEASED, C_HELD, C_EXPIRES, C_REFUSED, C_N };
    static const char *const names[C_N] = {[C_RELEASED] = "released",
                                           [C_HELD] = "held_slot",
                                           [C_EXPIRES] = "hold_expires_at_epoch",
                                           [C_REFUSED] = "refused"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_OFFER_MOVE, names, C_N, c))
        return;
    bool released = strcmp(PQgetvalue(res, 0, c[C_RELEASED]), "t") == 0;
    int64_t held = strtoll(PQgetvalue(res, 0, c[C_HELD]), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(res, 0, c[C_EXPIRES]), NULL, 10);

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
        if (strcmp(PQgetvalue(res, 0, c[C_REFUSED]), "t") == 0)
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
    finish_with_request(o, r, NULL, 0);
}
