/* The frame of the dispatch core: the errors and the one mapping of the
 * database's SQLSTATEs to them, the operation contexts (struct op) every
 * flow runs in, the calls parked while their request's update is in flight,
 * the answers read back from the database (a request or a booking as it
 * shows them), the lifecycle (init, load, stop, close) and the routing of
 * the announcements heard on snp_change (applied to memory by
 * dispatch_sync.c, pushed by dispatch_push.c).
 *
 * The flows are in files of their own, one concept each, listed in
 * dispatch_internal.h, which declares what they share.  This file's
 * database calls are the views read back (request_read.sql,
 * booking_get.sql), and at start-up the housekeeping, then the store's
 * load (store_load). */
#include "dispatcher/core/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/net/handles.h"
#include "sql_queries.h"

#define TIMER_MS 250

/* --- errors ----------------------------------------------------------------------- */

/* Maps a failed database call to an error; the SN* SQLSTATEs are raised by
 * the snp_* functions of sql/migrations/0002_dispatch.sql. */
enum snp_proto_code dispatch_db_error(enum db_status st, const PGresult *res)
{
    if (st == DB_UNAVAILABLE || st == DB_SHUTTING_DOWN)
        return SNP_PROTO_E_UNAVAILABLE;
    const char *code = db_sqlstate(res);
    static const struct {
        const char *sqlstate;
        enum snp_proto_code err;
    } map[] = {
        {"SN403", SNP_PROTO_E_FORBIDDEN},     {"SN404", SNP_PROTO_E_NOT_FOUND},
        {"SN409", SNP_PROTO_E_CONFLICT},      {"SN410", SNP_PROTO_E_SLOT_TAKEN},
        {"SN411", SNP_PROTO_E_HOLD_EXPIRED},  {"SN412", SNP_PROTO_E_TOO_LATE},
        {"23505", SNP_PROTO_E_CONFLICT},      {"23503", SNP_PROTO_E_INVALID_FIELD},
        {"23514", SNP_PROTO_E_INVALID_FIELD}, {"22P02", SNP_PROTO_E_INVALID_FIELD},
        {"SN422", SNP_PROTO_E_INVALID_FIELD}, {"SNT03", SNP_PROTO_E_OTHER_TERRITORY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(code, map[i].sqlstate) == 0)
            return map[i].err;
    return SNP_PROTO_E_INTERNAL;
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

void op_set_slot(struct op *o, struct slot *s)
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

struct op *op_new(struct dispatch *d, const struct caller *c, dispatch_cb cb, void *arg)
{
    struct op *o = calloc(1, sizeof(*o));
    if (!o) {
        if (cb)
            cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return NULL;
    }
    o->d = d;
    if (c)
        o->caller = *c;
    else
        snprintf(o->caller.actor, sizeof(o->caller.actor), "system");
    o->cb = cb;
    o->arg = arg;
    d->inflight++;
    return o;
}

/* --- calls that wait for their request's update ------------------------------------ *
 *
 * A requester's call (offer.accept, offer.decline, request.cancel) that
 * finds its request with an update on its way to the database waits for it,
 * then runs as if it had just arrived: the usual case is a confirmation
 * sent at once on an offer.made push, which the announcement of the hold
 * can bring before this process has the hold's own answer.  Answering
 * `conflict` there would refuse a valid confirmation. */

struct parked_call {
    struct parked_call *next;
    int64_t request_id;
    dispatch_call_fn run;
    struct caller caller;
    union parked_args args; /* a copy: the caller's are gone when it runs */
    dispatch_cb cb;
    void *arg;
};

/* Parks the call until request `r` has no update in flight. */
void park_call(struct dispatch *d, const struct request *r, dispatch_call_fn run,
               const struct caller *c, const void *args, size_t size, dispatch_cb cb, void *arg)
{
    struct parked_call *p = calloc(1, sizeof(*p));
    if (!p || size > sizeof(p->args)) {
        free(p);
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    p->request_id = r->id;
    p->run = run;
    p->caller = *c;
    memcpy(&p->args, args, size);
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
        p->run(d, &p->caller, &p->args, p->cb, p->arg);
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
        p->cb(p->arg, SNP_PROTO_E_UNAVAILABLE, "snpd is shutting down", NULL, NULL);
        free(p);
    }
}

void op_finish(struct op *o, enum snp_proto_code err, const char *message, const char *field,
               const struct dispatch_answer *answer)
{
    struct dispatch *d = o->d;
    d->inflight--;
    if (o->cb) {
        struct dispatch_answer a;
        if (err == SNP_PROTO_OK && answer) {
            a = *answer;
            a.repeat = o->repeat;
        }
        o->cb(o->arg, err, message, field, err == SNP_PROTO_OK && answer ? &a : NULL);
    }
    free(o->slot_ids);
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

void op_fail(struct op *o, enum snp_proto_code err, const char *message, const char *field)
{
    op_finish(o, err, message, field, NULL);
}

void op_fail_db(struct op *o, enum db_status st, const PGresult *res)
{
    enum snp_proto_code e = dispatch_db_error(st, res);
    if (e == SNP_PROTO_E_UNAVAILABLE || e == SNP_PROTO_E_INTERNAL)
        o->retry_later = true;
    /* Only the primary message and the SQLSTATE, and only in the log: the
     * detail of a failed constraint may quote a row, and rows may hold
     * patient data.  The caller learns that it was logged. */
    if (e == SNP_PROTO_E_INTERNAL) {
        log_error("dispatch", "database error %s: %s", db_sqlstate(res),
                  dispatch_db_message(st, res));
        op_finish(o, e, "internal error; it was logged", NULL, NULL);
        return;
    }
    op_finish(o, e, dispatch_db_message(st, res), NULL, NULL);
}

/* Answers an operation whose database call came back after dispatch_close
 * (memory is gone) and returns true; false otherwise. */
bool op_closed(struct op *o)
{
    if (!o->d->closed)
        return false;
    op_fail(o, SNP_PROTO_E_UNAVAILABLE, "snpd is shutting down", NULL);
    return true;
}

/* The usual start of a database callback: answers and returns true when
 * snpd is closing or the call failed. */
bool op_settled_early(struct op *o, enum db_status st, const PGresult *res)
{
    if (op_closed(o))
        return true;
    if (st == DB_OK)
        return false;
    op_fail_db(o, st, res);
    return true;
}

bool op_settled_early_cols(struct op *o, enum db_status st, const PGresult *res, enum sql_id query,
                           const char *const *names, size_t n, int *cols)
{
    if (op_settled_early(o, st, res))
        return true;
    if (db_cols_resolve(res, names, n, cols, sql_name[query]))
        return false;
    op_fail_cols(o);
    return true;
}

void op_fail_cols(struct op *o)
{
    o->retry_later = true; /* what it touched is looked at again */
    op_fail(o, SNP_PROTO_E_INTERNAL, "internal error; it was logged", NULL);
}

static void on_view_read(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_settled_early(o, st, res))
        return;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        op_fail(o, SNP_PROTO_E_NOT_FOUND, "not found", NULL);
        return;
    }
    struct dispatch_answer a = {.kind = ANSWER_STORED, .stored = PQgetvalue(res, 0, 0)};
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
}

/* Answers with the request as the database shows it (an audited read, as
 * request.get): for the answers memory cannot give, a request no longer
 * open. */
void answer_request_view(struct op *o, int64_t request_id)
{
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld", (long long)request_id);
    snprintf(org, sizeof(org), "%lld", (long long)o->caller.organisation_id);
    const char *params[] = {id, org, o->caller.actor, token_role_name(o->caller.role)};
    db_query(o->d->db, sql_text[SQL_REQUEST_READ], 4, params, on_view_read, o);
}

/* Answers with a booking of the caller's organisation as the database shows
 * it (a repeated confirmation). */
void answer_booking_view(struct op *o, int64_t booking_id)
{
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld", (long long)booking_id);
    snprintf(org, sizeof(org), "%lld", (long long)o->caller.organisation_id);
    const char *params[] = {id, org};
    db_query(o->d->db, sql_text[SQL_BOOKING_GET], 2, params, on_view_read, o);
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
    free(d->listed);
    d->listed = NULL;
    d->listed_cap = 0;
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
    struct payload j;
    payload_read(&j, payload); /* no field when unreadable: not ours */
    const char *kind = payload_str(&j, "k");
    int64_t id = payload_int(&j, "id");
    const char *status = payload_str(&j, "st");
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
        announced_slot(d, id, status, payload_int(&j, "h"), payload_int(&j, "x"),
                       payload_true(&j, "r"), own);
    } else if (status && id > 0 && kind[0] == 'r') {
        announced_request(d, id, status, own);
    } else if (id > 0 && strcmp(kind, "p") == 0) {
        announced_practitioner(d, id, payload_str(&j, "rp"));
    } else if (id > 0 && kind[0] == 'b' && (!own || handed_over(&j))) {
        push_foreign_booking(d, id, &j);
    }
    if (kind && id > 0 && kind[0] == 's')
        push_slot_change(d, id, &j);
    else if (kind && id > 0 && kind[0] == 'r')
        push_request_change(d, id, &j);
    payload_free(&j);
}
