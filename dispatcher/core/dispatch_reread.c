/* Reading rows again after a database answer: a slot or request memory was
 * wrong about, or that another process changed while it was pending (its
 * announcement set aside: `stale`), is read again rather than trusted; and
 * an answer's word on a request's offer is applied to memory, reading
 * again what memory disagreed with.
 *
 * Changes the store's slots and requests; its database calls are reads
 * (slot_get.sql, request_get_open.sql), each an operation without a caller,
 * the object pending until the answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "sql_queries.h"

/* --- reading back what another process changed meanwhile -------------------------- */

static void on_slot_reread(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct slot *s = o->slot;
    struct store_slot_cols cols;
    s->pending = false;
    if (o->d->closed || s->gone || st != DB_OK ||
        !store_slot_cols(res, sql_name[SQL_SLOT_GET], &cols)) {
        /* A failed read, or one that lacked a column (logged): again later. */
        o->retry_later = st != DB_OK || (!o->d->closed && !s->gone);
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    const int *c = cols.at;
    enum slot_status ns = SLOT_EXPIRED;
    int64_t held_for = 0, expires = 0;
    if (PQntuples(res) == 1) {
        if (!model_slot_status_parse(PQgetvalue(res, 0, c[STORE_SLOT_STATUS]), &ns))
            ns = SLOT_EXPIRED;
        held_for = strtoll(PQgetvalue(res, 0, c[STORE_SLOT_HELD_FOR]), NULL, 10);
        expires = strtoll(PQgetvalue(res, 0, c[STORE_SLOT_HOLD_EXPIRES_AT]), NULL, 10);
    }
    apply_slot_state(o->d, s, ns, held_for, expires, false, false);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* Reads slot `s` again from the database (memory was wrong about it, or
 * another process changed it while it was pending); pending until then. */
void reread_slot(struct dispatch *d, struct slot *s)
{
    if (s->gone || s->pending)
        return;
    struct op *o = op_new(d, NULL, NULL, NULL);
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
void request_take_answered(struct dispatch *d, struct request *r, struct slot *s, int64_t expires)
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
void request_apply_fresh(struct dispatch *d, struct request *r, const struct request *fresh)
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
    struct store_request_cols cols;
    r->pending = false;
    if (d->closed || r->gone || st != DB_OK ||
        !store_request_cols(res, sql_name[SQL_REQUEST_GET_OPEN], &cols)) {
        /* A failed read, or one that lacked a column (logged): again later. */
        o->retry_later = st != DB_OK || (!d->closed && !r->gone);
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct request *fresh =
        PQntuples(res) == 1 ? store_request_from_cols(&d->store, res, 0, &cols) : NULL;
    if (!fresh) {
        /* No longer open: booked, cancelled or unserved elsewhere. */
        store_remove_request(&d->store, r);
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    request_apply_fresh(d, r, fresh);
    store_request_unref(fresh);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

static void reread_request(struct dispatch *d, struct request *r)
{
    if (r->gone || r->pending)
        return;
    struct op *o = op_new(d, NULL, NULL, NULL);
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
