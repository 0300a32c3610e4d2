/* The operations on a booking: booking.cancel (by its practitioner, its
 * site's reception or the territory's desk, or by its requester) and
 * outcome.report.
 *
 * Each is one call (booking_cancel.sql, booking_cancel_by_requester.sql,
 * outcome_report.sql); a cancelled booking's slot is freed in memory
 * (apply_freed) and, when its request waits again, the request is read
 * back in for the matching pass (request_get_open.sql).  Pushes the
 * booking's cancellation and the outcome (push, dispatch_push.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "sql_queries.h"

/* --- booking.cancel --------------------------------------------------------------- */

static void on_requeue_loaded(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct store_request_cols cols;
    if (d->closed || st != DB_OK || PQntuples(res) != 1 ||
        !store_request_cols(res, sql_name[SQL_REQUEST_GET_OPEN], &cols)) {
        op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
        return;
    }
    struct request *r = store_request_from_cols(&d->store, res, 0, &cols);
    if (r && store_request(&d->store, r->id)) {
        store_request_unref(r);
        r = NULL;
    }
    if (r) {
        op_set_request(o, r); /* op_finish queues it for the matching pass */
        if (!store_add_request(&d->store, r))
            log_warn("dispatch", "out of memory taking a request back");
    }
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* Takes a request that went back to waiting into memory again; the
 * matching pass offers it the best slot there is. */
static void requeue(struct dispatch *d, int64_t request_id)
{
    fetch_by_id(d, SQL_REQUEST_GET_OPEN, request_id, on_requeue_loaded);
}

/* Pushes a booking's cancellation to whom it concerns and answers with the
 * booking as the database shows it (columns `booking`, `rpps`, `site` of
 * `res`; `org`: the requester's organisation). */
static void finish_cancelled(struct op *o, const PGresult *res, int booking, int rpps, int site,
                             int64_t org)
{
    const char *stored = PQgetvalue(res, 0, booking);
    push_booking_cancelled(o->d, o->caller.territory, stored,
                           PQgetisnull(res, 0, rpps) ? NULL : PQgetvalue(res, 0, rpps),
                           strtoll(PQgetvalue(res, 0, site), NULL, 10), org);
    struct dispatch_answer a = {.kind = ANSWER_STORED, .stored = stored};
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
}

static void on_booking_cancelled(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    enum {
        C_SLOT,
        C_SLOT_STATUS,
        C_REQUEST,
        C_REQUEST_STATUS,
        C_ORG,
        C_BOOKING,
        C_RPPS,
        C_SITE,
        C_N
    };
    static const char *const names[C_N] = {
        [C_SLOT] = "slot_id",        [C_SLOT_STATUS] = "slot_status",
        [C_REQUEST] = "request_id",  [C_REQUEST_STATUS] = "request_status",
        [C_ORG] = "organisation_id", [C_BOOKING] = "booking",
        [C_RPPS] = "rpps",           [C_SITE] = "site_id"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_BOOKING_CANCEL, names, C_N, c))
        return;
    struct dispatch *d = o->d;
    int64_t slot_id = strtoll(PQgetvalue(res, 0, c[C_SLOT]), NULL, 10);
    const char *slot_status = PQgetvalue(res, 0, c[C_SLOT_STATUS]);
    int64_t request_id = strtoll(PQgetvalue(res, 0, c[C_REQUEST]), NULL, 10);
    const char *request_status = PQgetvalue(res, 0, c[C_REQUEST_STATUS]);
    int64_t org = strtoll(PQgetvalue(res, 0, c[C_ORG]), NULL, 10);
    struct slot *s = store_slot(&d->store, slot_id);
    if (s) {
        if (strcmp(slot_status, "free") == 0)
            apply_freed(d, slot_id, 0);
        else
            store_remove_slot(&d->store, s);
    }
    finish_cancelled(o, res, c[C_BOOKING], c[C_RPPS], c[C_SITE], org);
    /* The patient still needs a doctor: the request re-enters the queue. */
    if (strcmp(request_status, "waiting") == 0)
        requeue(d, request_id);
}

static void on_booking_cancelled_by_requester(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    enum { C_FREED, C_BOOKING, C_RPPS, C_SITE, C_N };
    static const char *const names[C_N] = {
        [C_FREED] = "freed_slot", [C_BOOKING] = "booking", [C_RPPS] = "rpps", [C_SITE] = "site_id"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_BOOKING_CANCEL_BY_REQUESTER, names, C_N, c))
        return;
    struct dispatch *d = o->d;
    int64_t freed = strtoll(PQgetvalue(res, 0, c[C_FREED]), NULL, 10);
    apply_freed(d, freed, 0);
    finish_cancelled(o, res, c[C_BOOKING], c[C_RPPS], c[C_SITE], o->caller.organisation_id);
}

void dispatch_booking_cancel(struct dispatch *d, const struct caller *c,
                             const struct dispatch_cancel_args *a, dispatch_cb cb, void *arg)
{
    int64_t id = a->id;
    const char *reason = a->reason[0] ? a->reason : "other";
    struct op *o = op_new(d, c, cb, arg);
    if (!o)
        return;
    o->ids[0] = id;
    o->ids[1] = id;
    char bid[24], org[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)id);
    if (token_role_is_requester(c->role)) {
        snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
        const char *params[] = {bid, org, reason, c->actor};
        db_query(d->db, sql_text[SQL_BOOKING_CANCEL_BY_REQUESTER], 4, params,
                 on_booking_cancelled_by_requester, o);
        return;
    }
    const char *params[] = {bid, c->territory, c->role == ROLE_GP ? c->rpps : NULL, reason,
                            c->actor};
    db_query(d->db, sql_text[SQL_BOOKING_CANCEL], 5, params, on_booking_cancelled, o);
}

/* --- outcome.report --------------------------------------------------------------- */

static void on_outcome(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    enum { C_BOOKING, C_REQUEST, C_OUTCOME, C_ORG, C_REPORTED, C_CLIENT_REF, C_VIEW, C_N };
    static const char *const names[C_N] = {
        [C_BOOKING] = "id",          [C_REQUEST] = "request_id",   [C_OUTCOME] = "outcome",
        [C_ORG] = "organisation_id", [C_REPORTED] = "reported_at", [C_CLIENT_REF] = "client_ref",
        [C_VIEW] = "booking"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_OUTCOME_REPORT, names, C_N, c))
        return;
    struct dispatch_push p = {
        .event = SNP_PUSH_OUTCOME_REPORTED,
        .outcome = {.booking_id = strtoll(PQgetvalue(res, 0, c[C_BOOKING]), NULL, 10),
                    .request_id = strtoll(PQgetvalue(res, 0, c[C_REQUEST]), NULL, 10),
                    .client_ref = PQgetvalue(res, 0, c[C_CLIENT_REF]),
                    .outcome = PQgetvalue(res, 0, c[C_OUTCOME]),
                    .reported_at = PQgetvalue(res, 0, c[C_REPORTED])}};
    struct push_target to = {.territory = o->caller.territory,
                             .topic = SNP_TOPIC_REQUESTS,
                             .organisation_id = strtoll(PQgetvalue(res, 0, c[C_ORG]), NULL, 10)};
    push(o->d, &to, &p);
    struct dispatch_answer a = {.kind = ANSWER_STORED, .stored = PQgetvalue(res, 0, c[C_VIEW])};
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
}

void dispatch_outcome_report(struct dispatch *d, const struct caller *c,
                             const struct dispatch_outcome_args *a, dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    struct op *o = op_new(d, c, cb, arg);
    if (!o)
        return;
    char bid[24], delay[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)a->booking_id);
    snprintf(delay, sizeof(delay), "%d", t->settings.outcome_delay_hours);
    const char *params[] = {bid,        c->territory, c->role == ROLE_GP ? c->rpps : NULL,
                            a->outcome, a->note,      delay,
                            c->actor};
    db_query(d->db, sql_text[SQL_OUTCOME_REPORT], 7, params, on_outcome, o);
}
