/* Expiry and housekeeping: the dispatch core's periodic timer (on_timer,
 * every TIMER_MS once the store is ready).  It queues again what failed
 * operations touched, releases the holds that ran out (offer moves, through
 * dispatch_offers.c), and every HOUSEKEEPING_MS runs the database's housekeeping
 * (sql/queries/housekeeping.sql), reloads stale reference data and starts a
 * due catch-up (dispatch_sync.c).
 *
 * Touches the store and the matching queues only through the functions of
 * dispatch_internal.h; its database calls are the housekeeping query and the
 * offer moves. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define HOUSEKEEPING_MS 5000

/* --- expiry and housekeeping ------------------------------------------------------ */

/* Releases the holds that ran out, offering each request its next slot in
 * the same round trip.  Expiries are whole seconds of the database's clock;
 * the database releases a hold only once that clock says it ran out. */
static void expire_holds(struct dispatch *d)
{
    int64_t now = timeutil_now();
    for (size_t i = 0; i < d->store.nterritories; i++) {
        struct territory *t = d->store.territories[i];
        for (size_t k = 0; k < t->nopen; k++) {
            struct request *r = t->open[k];
            if (r->status != REQ_OFFERED || r->pending || r->hold_expires_at > now)
                continue;
            struct slot *held = store_slot(&d->store, r->held_slot);
            if (held && held->pending)
                continue;
            struct op *o = op_new(d, NULL, NULL, NULL);
            if (!o)
                return;
            snprintf(o->reason, sizeof(o->reason), "expired");
            op_set_request(o, r);
            op_set_release(o, held);
            offer_move_next(o);
        }
    }
}

/* The columns of housekeeping.sql: one change of an object. */
enum change_col { CHANGE_KIND, CHANGE_SLOT, CHANGE_REQUEST, CHANGE_NCOLS };
static const char *const change_names[CHANGE_NCOLS] = {
    [CHANGE_KIND] = "change",
    [CHANGE_SLOT] = "slot_id",
    [CHANGE_REQUEST] = "request_id",
};

/* Applies housekeeping's changes to memory.  Its pushes (offer.expired,
 * request.updated) come, as every push of the requests topic, from the
 * database's notifications (see "pushes" below).  An object with a change
 * in flight is read again once that change is answered. */
static void on_housekeeping(void *arg, enum db_status st, const PGresult *res)
{
    struct dispatch *d = arg;
    d->housekeeping_running = false;
    d->inflight--;
    if (d->closed)
        return;
    if (st != DB_OK) {
        if (st == DB_QUERY_ERROR)
            log_warn("dispatch", "housekeeping failed: %s", dispatch_db_message(st, res));
        return;
    }
    int c[CHANGE_NCOLS];
    if (!db_cols_resolve(res, change_names, CHANGE_NCOLS, c, sql_name[SQL_HOUSEKEEPING]))
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *change = PQgetvalue(res, i, c[CHANGE_KIND]);
        struct slot *s =
            store_slot(&d->store, strtoll(PQgetvalue(res, i, c[CHANGE_SLOT]), NULL, 10));
        struct request *r =
            store_request(&d->store, strtoll(PQgetvalue(res, i, c[CHANGE_REQUEST]), NULL, 10));
        if (s && s->pending)
            s->stale = true;
        if (r && r->pending)
            r->stale = true;
        if (strcmp(change, "hold_expired") == 0) {
            /* A hold that outlived a crash, or that this pass saw first. */
            if (r && !r->pending && s && r->held_slot == s->id) {
                request_clear_offer(r);
                want_request(d, r);
            }
            if (s && !s->pending && s->status == SLOT_HELD && (!r || s->held_for == r->id)) {
                d->stats.holds_expired++;
                slot_released(d, s);
            }
        } else if (strcmp(change, "slot_expired") == 0 && s && !s->pending) {
            store_slot_set_status(s, SLOT_EXPIRED);
            push_capacity(d, s);
            store_remove_slot(&d->store, s);
        } else if (strcmp(change, "slot_released") == 0 && s) {
            s->released_at = timeutil_now();
            want_slot(d, s);
        } else if (strcmp(change, "request_unserved") == 0 && r && !r->pending) {
            r->status = REQ_UNSERVED;
            store_remove_request(&d->store, r);
        }
    }
}

static void housekeeping(struct dispatch *d)
{
    if (d->housekeeping_running || !db_is_up(d->db))
        return;
    d->housekeeping_running = true;
    d->inflight++;
    const char *params[] = {"system"};
    db_query(d->db, sql_text[SQL_HOUSEKEEPING], 1, params, on_housekeeping, d);
}

void on_timer(uv_timer_t *t)
{
    struct dispatch *d = container_of(t, struct dispatch, timer);
    if (!d->ready)
        return;
    retry_queued(d);
    expire_holds(d);
    uint64_t now = uv_now(d->loop);
    if (now - d->last_housekeeping_ms >= HOUSEKEEPING_MS) {
        d->last_housekeeping_ms = now;
        housekeeping(d);
        if (d->store.reference_stale && !d->store.reload && db_is_up(d->db))
            store_reload_reference(&d->store, d->db, NULL, NULL);
        if (d->catch_up_due && db_is_up(d->db))
            catch_up(d);
    }
}
