/* Keeping memory in step with the database when other snpd processes share
 * it (docs/dispatch.md "Several snpd processes"): the changes announced on
 * the channel snp_change, applied to memory as they come
 * (dispatch_on_db_notify in dispatch.c hands them here); the objects memory
 * did not know, read in; the catch-up after the listening connection comes
 * back (dispatch_on_db_listening); and the announcements heard while the
 * store loads, kept and applied once it is ready.
 *
 * Changes the store (slots, requests, practitioners' counts) and queues for
 * the matching pass; its database calls are reads only (slot_get.sql,
 * request_get_open.sql, load_slots.sql, load_requests.sql, each an
 * operation without a caller, struct op, so that shutdown waits for it, and
 * the reference data through store_reload_reference).
 * Pushes nothing but capacity (push_capacity); the requests and bookings
 * topics are pushed by dispatch_push.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/idmap.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "sql_queries.h"

/* --- changes made by other snpd processes ----------------------------------------- */

/* A read of a slot or request memory did not know, in flight.  A change
 * announced meanwhile may be newer than what the read returns: the object is
 * then read again rather than taken as the read saw it. */
struct unknown_read {
    bool again;
};

/* Starts reading `id` into memory, or, when a read of it is in flight
 * already, makes that read start again when it ends. */
static void read_unknown(struct dispatch *d, struct idmap *reads, enum sql_id query, int64_t id,
                         db_result_cb cb)
{
    struct unknown_read *u = idmap_get(reads, id);
    if (u) {
        u->again = true;
        return;
    }
    u = calloc(1, sizeof(*u));
    if (!u || !idmap_put(reads, id, u)) {
        free(u);
        log_warn("dispatch", "out of memory reading object %lld", (long long)id);
        return;
    }
    fetch_by_id(d, query, id, cb);
}

/* Ends the read of `id`; returns false when it must be read again (it has
 * been started again then). */
static bool unknown_read_done(struct dispatch *d, struct idmap *reads, enum sql_id query,
                              int64_t id, db_result_cb cb)
{
    struct unknown_read *u = idmap_del(reads, id);
    bool again = u && u->again;
    free(u);
    if (again)
        read_unknown(d, reads, query, id, cb);
    return !again;
}

/* A change announced about `id` while memory does not hold it. */
void unknown_changed(struct idmap *reads, int64_t id)
{
    struct unknown_read *u = idmap_get(reads, id);
    if (u)
        u->again = true;
}

static void on_foreign_slot_loaded(void *arg, enum db_status st, const PGresult *res);
static void on_foreign_request_loaded(void *arg, enum db_status st, const PGresult *res);

void read_unknown_slot(struct dispatch *d, int64_t id)
{
    read_unknown(d, &d->slot_reads, SQL_SLOT_GET, id, on_foreign_slot_loaded);
}

static void read_unknown_request(struct dispatch *d, int64_t id)
{
    read_unknown(d, &d->request_reads, SQL_REQUEST_GET_OPEN, id, on_foreign_request_loaded);
}

/* The read of an object memory did not know has ended, but memory holds it
 * now: it arrived meanwhile by another way (this process's own publish or
 * creation answered), with the state of that answer, while the read may
 * have seen a later change, announced when memory lacked the object and so
 * not applied to it.  Neither is known to be the newer: it is read again. */
static void arrived_meanwhile(struct dispatch *d, struct request *r, struct slot *s)
{
    if (r)
        r->stale = true;
    if (s)
        s->stale = true;
    refresh_stale(d, r, s);
}

static void on_foreign_slot_loaded(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    if (d->closed ||
        !unknown_read_done(d, &d->slot_reads, SQL_SLOT_GET, o->ids[0], on_foreign_slot_loaded)) {
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct slot *known = store_slot(&d->store, o->ids[0]);
    if (known) {
        arrived_meanwhile(d, NULL, known);
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct store_slot_cols cols;
    if (st == DB_OK && PQntuples(res) == 1 && store_slot_cols(res, sql_name[SQL_SLOT_GET], &cols)) {
        struct slot *s = store_slot_from_cols(&d->store, res, 0, &cols);
        if (s && (s->status == SLOT_FREE || s->status == SLOT_HELD || s->status == SLOT_BOOKED)) {
            int64_t id = s->id;
            if (store_add_slot(&d->store, s)) {
                s = store_slot(&d->store, id);
                struct request *r =
                    s->status == SLOT_HELD ? store_request(&d->store, s->held_for) : NULL;
                if (r && !r->pending && r->held_slot == s->id)
                    r->status = REQ_OFFERED;
                push_capacity(d, s);
                want_slot(d, s);
            }
        } else if (s) {
            /* Gone already (withdrawn or expired by another call before
             * this process read it in): its watchers here never saw it,
             * and are told how it ended all the same. */
            push_capacity(d, s);
            store_slot_unref(s);
        }
    }
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

static void on_foreign_request_loaded(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    if (d->closed || !unknown_read_done(d, &d->request_reads, SQL_REQUEST_GET_OPEN, o->ids[0],
                                        on_foreign_request_loaded)) {
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct request *known = store_request(&d->store, o->ids[0]);
    if (known) {
        arrived_meanwhile(d, known, NULL);
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct store_request_cols cols;
    if (st == DB_OK && PQntuples(res) == 1 &&
        store_request_cols(res, sql_name[SQL_REQUEST_GET_OPEN], &cols)) {
        struct request *r = store_request_from_cols(&d->store, res, 0, &cols);
        if (r) {
            op_set_request(o, r); /* op_finish queues it for the matching pass */
            if (!store_add_request(&d->store, r))
                log_warn("dispatch", "out of memory taking in a request");
        }
    }
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* Reads one row by id for an internal operation (no caller to answer). */
void fetch_by_id(struct dispatch *d, enum sql_id query, int64_t id, db_result_cb cb)
{
    struct op *o = op_new(d, NULL, NULL, NULL);
    if (!o)
        return;
    o->ids[0] = id;
    char s[24];
    snprintf(s, sizeof(s), "%lld", (long long)id);
    const char *params[] = {s};
    db_query(d->db, sql_text[query], 1, params, cb, o);
}

/* Brings slot `s` to the state the database announced or returned.  `own`:
 * announced for a commit of this process, whose answer reaches the requests
 * it concerns; a request with an update in flight is then left to that
 * answer rather than read again. */
void apply_slot_state(struct dispatch *d, struct slot *s, enum slot_status ns, int64_t held_for,
                      int64_t hold_expires, bool released, bool own)
{
    /* A request that held this slot no longer does. */
    struct request *was = s->held_for ? store_request(&d->store, s->held_for) : NULL;
    if (was && was->held_slot == s->id && (ns != SLOT_HELD || held_for != was->id)) {
        if (was->pending) {
            was->stale = was->stale || !own;
        } else {
            request_clear_offer(was);
            want_request(d, was);
        }
    }
    bool changed = s->status != ns || s->held_for != (ns == SLOT_HELD ? held_for : 0);
    store_slot_set_status(s, ns);
    s->held_for = ns == SLOT_HELD ? held_for : 0;
    s->hold_expires_at = ns == SLOT_HELD ? hold_expires : 0;
    if (released && !s->released_at)
        s->released_at = timeutil_now();
    if (changed)
        push_capacity(d, s);
    if (ns == SLOT_WITHDRAWN || ns == SLOT_EXPIRED) {
        store_remove_slot(&d->store, s);
        return;
    }
    if (ns == SLOT_HELD) {
        struct request *r = store_request(&d->store, held_for);
        if (r && r->pending)
            r->stale = r->stale || !own;
        else if (r)
            request_set_offer(d, r, s, hold_expires);
    }
    if (ns == SLOT_FREE)
        want_slot(d, s);
}

/* A slot's change, announced on snp_change (docs/dispatch.md "Several snpd
 * processes").  Announcements come in commit order, this process's own
 * included, and memory applies them all: an answer of this process may
 * have been applied before the announcement of an older change by another
 * process, which then takes memory back in time; only the announcement of
 * the answer's own commit, which comes after, brings it forward again. */
void announced_slot(struct dispatch *d, int64_t id, const char *status, int64_t held_for,
                    int64_t hold_expires, bool released, bool own)
{
    enum slot_status ns;
    if (!model_slot_status_parse(status, &ns))
        return;
    /* A read of this slot in flight may predate this change, even when
     * memory holds the slot now (its own publish answered meanwhile, and a
     * removal would let the read bring it back): it starts again. */
    unknown_changed(&d->slot_reads, id);
    struct slot *s = store_slot(&d->store, id);
    if (!s) {
        /* Our own (a publish) is in memory once it is answered. */
        if (!own && (ns == SLOT_FREE || ns == SLOT_HELD || ns == SLOT_BOOKED))
            read_unknown_slot(d, id);
        return;
    }
    if (s->pending) {
        /* A change of ours is on its way.  Another process's change: read
         * the slot again once ours is answered, so that this one is not
         * lost.  Our own: that answer, or an earlier one, says it. */
        s->stale = s->stale || !own;
        return;
    }
    apply_slot_state(d, s, ns, held_for, hold_expires, released, own);
}

/* A slot handed to the practitioner on duty of its CSNP shift, or taken
 * back (sql/migrations/0022, {"k":"p"}): every process, this one included,
 * learns it here.  The practitioner practises in the territory, so the
 * reference data in memory knows them; a slot not in memory has nothing to
 * update. */
void announced_practitioner(struct dispatch *d, int64_t id, const char *rpps)
{
    struct slot *s = store_slot(&d->store, id);
    if (!s)
        return;
    struct practitioner *p = rpps ? store_practitioner(&d->store, rpps) : NULL;
    if (rpps && !p) {
        log_warn("dispatch", "slot %lld handed to a practitioner not in memory", (long long)id);
        return;
    }
    /* The practitioners' counts of published and booked slots (the ranking's
     * booked/published ratio) follow the slot, as store_add_slot and
     * store_remove_slot keep them. */
    struct practitioner *was = s->practitioner;
    if (was && was->published > 0)
        was->published--;
    if (was && s->status == SLOT_BOOKED && was->booked > 0)
        was->booked--;
    if (p) {
        p->published++;
        if (s->status == SLOT_BOOKED)
            p->booked++;
    }
    s->practitioner = p;
    push_capacity(d, s);
}

/* A request's change, announced on snp_change: as announced_slot. */
void announced_request(struct dispatch *d, int64_t id, const char *status, bool own)
{
    enum request_status ns;
    if (!model_request_status_parse(status, &ns))
        return;
    unknown_changed(&d->request_reads, id); /* as for slots */
    struct request *r = store_request(&d->store, id);
    if (!r) {
        if (!own && (ns == REQ_WAITING || ns == REQ_OFFERED))
            read_unknown_request(d, id);
        return;
    }
    if (r->pending) {
        r->stale = r->stale || !own;
        return;
    }
    if (ns == REQ_BOOKED || ns == REQ_CANCELLED || ns == REQ_UNSERVED) {
        r->status = ns;
        store_remove_request(&d->store, r);
    } else if (ns == REQ_WAITING && r->status == REQ_OFFERED) {
        request_clear_offer(r);
        want_request(d, r);
    }
}

/* --- catching up after the listening connection comes back ------------------------ *
 *
 * What other processes announced while this one had no listening connection
 * (PostgreSQL restarted, a failover, a network cut) never arrives.  Once the
 * LISTEN has run again, memory is compared with the live slots and open
 * requests of the database, and each object that differs, that memory lacks
 * or that is no longer live is read again through the paths a notification
 * takes (an object with an update in flight is read once that update ends).
 * Changes committed after the LISTEN are notified as usual; a notification
 * and a read of the same object are ordered as for any notification. */

enum catch_up_kind { CATCH_UP_SLOTS, CATCH_UP_REQUESTS };

static char catch_up_seen; /* the value of the sets of ids below */

/* The columns of a catch-up's result, load_slots.sql or load_requests.sql. */
union catch_up_cols {
    struct store_slot_cols slot;
    struct store_request_cols request;
};

static bool catch_up_cols(enum catch_up_kind kind, const PGresult *res, union catch_up_cols *c)
{
    if (kind == CATCH_UP_SLOTS)
        return store_slot_cols(res, sql_name[SQL_LOAD_SLOTS], &c->slot);
    return store_request_cols(res, sql_name[SQL_LOAD_REQUESTS], &c->request);
}

/* True when memory holds the object of row `i` of `res`, of columns `c`, as
 * the database does; sets `*id`. */
static bool catch_up_same(struct dispatch *d, enum catch_up_kind kind, const PGresult *res, int i,
                          const union catch_up_cols *c, int64_t *id)
{
    bool same = false;
    if (kind == CATCH_UP_SLOTS) {
        *id = strtoll(PQgetvalue(res, i, c->slot.at[STORE_SLOT_ID]), NULL, 10);
        struct slot *fresh = store_slot_from_cols(&d->store, res, i, &c->slot);
        struct slot *s = store_slot(&d->store, *id);
        same = fresh && s && s->status == fresh->status && s->held_for == fresh->held_for &&
               s->hold_expires_at == fresh->hold_expires_at;
        if (fresh)
            store_slot_unref(fresh);
    } else {
        *id = strtoll(PQgetvalue(res, i, c->request.at[STORE_REQUEST_ID]), NULL, 10);
        struct request *fresh = store_request_from_cols(&d->store, res, i, &c->request);
        struct request *r = store_request(&d->store, *id);
        same = fresh && r && r->status == fresh->status && r->held_slot == fresh->held_slot &&
               r->hold_expires_at == fresh->hold_expires_at;
        if (fresh)
            store_request_unref(fresh);
    }
    return same;
}

/* Reads object `id` again: memory lacks it, holds it otherwise than the
 * database, or holds it while the database no longer lists it as live. */
static void catch_up_object(struct dispatch *d, enum catch_up_kind kind, int64_t id)
{
    if (kind == CATCH_UP_SLOTS) {
        struct slot *s = store_slot(&d->store, id);
        if (!s) {
            read_unknown_slot(d, id);
            return;
        }
        s->stale = true;
        refresh_stale(d, NULL, s);
        return;
    }
    struct request *r = store_request(&d->store, id);
    if (!r) {
        read_unknown_request(d, id);
        return;
    }
    r->stale = true;
    refresh_stale(d, r, NULL);
}

/* One half of a catch-up, slots or requests: an op without a caller, which
 * keeps shutdown waiting for it like any other. */
static void on_catch_up(struct op *o, enum catch_up_kind kind, enum db_status st,
                        const PGresult *res)
{
    struct dispatch *d = o->d;
    union catch_up_cols cols;
    if (d->closed || st != DB_OK || !catch_up_cols(kind, res, &cols)) {
        if (!d->closed)
            d->catch_up_due = true; /* the timer tries again */
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct idmap seen = {0};
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id;
        if (!catch_up_same(d, kind, res, i, &cols, &id))
            catch_up_object(d, kind, id);
        if (!idmap_put(&seen, id, &catch_up_seen)) {
            d->catch_up_due = true;
            break;
        }
    }
    /* Live in memory, no longer in the database.  A read started here
     * changes memory only when it is answered, so the walk is safe. */
    const struct idmap *memory = kind == CATCH_UP_SLOTS ? &d->store.slots : &d->store.requests;
    for (size_t b = 0; !d->catch_up_due && b < memory->cap; b++) {
        const struct idmap_entry *e = &memory->buckets[b];
        if (e->value && !idmap_get(&seen, e->key))
            catch_up_object(d, kind, e->key);
    }
    idmap_free(&seen);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

static void on_catch_up_slots(void *arg, enum db_status st, const PGresult *res)
{
    on_catch_up(arg, CATCH_UP_SLOTS, st, res);
}

static void on_catch_up_requests(void *arg, enum db_status st, const PGresult *res)
{
    on_catch_up(arg, CATCH_UP_REQUESTS, st, res);
}

/* Starts a catch-up: the reference data, the live slots, the open requests. */
void catch_up(struct dispatch *d)
{
    d->catch_up_due = false;
    log_info("dispatch", "listening again: catching up with the changes announced meanwhile");
    store_reload_reference(&d->store, d->db, NULL, NULL);
    struct op *slots = op_new(d, NULL, NULL, NULL);
    if (slots)
        db_query(d->db, sql_text[SQL_LOAD_SLOTS], 0, NULL, on_catch_up_slots, slots);
    struct op *requests = op_new(d, NULL, NULL, NULL);
    if (requests)
        db_query(d->db, sql_text[SQL_LOAD_REQUESTS], 0, NULL, on_catch_up_requests, requests);
    if (!slots || !requests)
        d->catch_up_due = true;
}

void dispatch_on_db_listening(struct db *db)
{
    struct dispatch *d = db->data;
    if (!d || d->closed)
        return;
    if (d->ready) {
        catch_up(d);
        return;
    }
    /* What was heard before may have missed changes since: the load, if it
     * has not started, reads them; if it has, a catch-up follows it. */
    free_heard(d);
    if (d->loading)
        d->catch_up_on_load = true;
}

/* --- announcements heard while the store loads ----------------------------------- *
 *
 * Each query of the load reads the database as it is when it runs, and the
 * store is ready only after the last: a change another process commits
 * meanwhile (a slot booked after the slots were read) would be missing from
 * memory for good.  So every announcement heard before the store is ready
 * is kept, and applied in order once it is: the state each one carries is
 * as new as, or newer than, what the load read.  Past HEARD_MAX of them (a
 * busy neighbour during a slow start), they are dropped and the process
 * catches up as after a lost listening connection instead. */

enum { HEARD_MAX = 10000 };

struct heard_notice {
    struct heard_notice *next;
    int be_pid;
    char payload[]; /* the announcement's JSON */
};

void free_heard(struct dispatch *d)
{
    while (d->heard) {
        struct heard_notice *n = d->heard;
        d->heard = n->next;
        free(n);
    }
    d->heard_tail = &d->heard;
    d->nheard = 0;
}

void keep_heard(struct dispatch *d, const char *payload, int be_pid)
{
    if (d->catch_up_on_load)
        return; /* the catch-up reads everything */
    size_t len = strlen(payload);
    struct heard_notice *n = d->nheard < HEARD_MAX ? malloc(sizeof(*n) + len + 1) : NULL;
    if (!n) {
        free_heard(d);
        d->catch_up_on_load = true;
        return;
    }
    n->next = NULL;
    n->be_pid = be_pid;
    memcpy(n->payload, payload, len + 1);
    *d->heard_tail = n;
    d->heard_tail = &n->next;
    d->nheard++;
}

void apply_heard(struct dispatch *d)
{
    struct heard_notice *n = d->heard;
    size_t count = d->nheard;
    d->heard = NULL;
    d->heard_tail = &d->heard;
    d->nheard = 0;
    if (count > 0)
        log_info("dispatch", "applying %zu changes announced during the load", count);
    while (n) {
        struct heard_notice *next = n->next;
        dispatch_on_db_notify(d->db, "snp_change", n->payload, n->be_pid);
        free(n);
        n = next;
    }
    if (d->catch_up_on_load) {
        d->catch_up_on_load = false;
        catch_up(d);
    }
}
