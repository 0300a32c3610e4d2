/* Pushes to subscribers: capacity.changed (from memory, as each process
 * applies a change), the requests topic (offer.made, offer.expired,
 * request.updated, from the announcements on snp_change), and the bookings
 * topic and outcomes (booking.created, booking.cancelled,
 * booking.handed_over, outcome.reported).
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
 * likewise (each process from its own memory, as it applies the change).
 *
 * Reads the store and changes nothing in it; its database calls are reads
 * (slot_get.sql for a slot memory does not know yet, booking_push.sql), each
 * an operation without a caller. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/db/db_cols.h"
#include "sql_queries.h"

/* --- pushes ----------------------------------------------------------------------- */

void push(struct dispatch *d, const struct push_target *to, const struct dispatch_push *p)
{
    if (d->hooks.push)
        d->hooks.push(d->hooks.ctx, to, p);
}

/* Tells capacity watchers of the slot's territory what became of it. */
void push_capacity(struct dispatch *d, const struct slot *s)
{
    struct push_target to = {.territory = s->territory->id, .topic = SNP_TOPIC_CAPACITY};
    struct dispatch_push p = {.event = SNP_PUSH_CAPACITY_CHANGED, .capacity = s};
    push(d, &to, &p);
}

void push_booking_cancelled(struct dispatch *d, const char *territory, const char *stored,
                            const char *rpps, int64_t site_id, int64_t organisation_id)
{
    struct dispatch_push p = {
        .event = SNP_PUSH_BOOKING_CANCELLED, .stored = stored, .site_id = site_id};
    struct push_target gp = {
        .territory = territory, .topic = SNP_TOPIC_BOOKINGS, .rpps = rpps, .site_id = site_id};
    push(d, &gp, &p);
    struct push_target to = {
        .territory = territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = organisation_id};
    push(d, &to, &p);
}

static bool wanted(struct dispatch *d, const struct push_target *to)
{
    return d->hooks.push && (!d->hooks.wants || d->hooks.wants(d->hooks.ctx, to));
}

/* --- what an announcement may put in a push ----------------------------------------- *
 *
 * Announcements come from snpd's own triggers (sql/functions/notify.sql), but
 * any session allowed to NOTIFY on the database can send one.  A push copies
 * some of an announcement's strings as they are: it is made only when each of
 * them has the shape the declaration (snp.v1.json) gives its field, so that
 * no subscriber receives a push that breaks it.  An announcement that fails
 * pushes nothing; the change it claims, if real, reaches memory by its own
 * path (announced_slot, announced_request). */

/* A client_ref: 1 to 64 of [A-Za-z0-9._:-]. */
static bool announced_client_ref(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 64;
}

static bool announced_request_status(const char *s)
{
    enum request_status st;
    return s && model_request_status_parse(s, &st);
}

/* One of the declaration's outcome kinds. */
static bool announced_outcome_kind(const char *s)
{
    const char *const *values;
    size_t n = s ? snp_proto_enum_values("outcome_kind", &values) : 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, values[i]) == 0)
            return true;
    return false;
}

/* An instant, as the declaration's type timestamp takes it (the codec's own
 * check; notify.sql writes YYYY-MM-DDTHH:MM:SSZ). */
static bool announced_instant(const char *s)
{
    int64_t ignored;
    return timeutil_parse_rfc3339(s, &ignored);
}

/* offer.made for request `q` to `to`, slot `s`
 * held until `expires`. */
static void push_offer_made(struct dispatch *d, const struct push_target *to, int64_t q,
                            const char *client_ref, const struct slot *s, int64_t expires)
{
    struct dispatch_offer offer;
    offer_fill(d, store_request(&d->store, q), s, expires, NULL, 0, &offer);
    struct dispatch_push p = {
        .event = SNP_PUSH_OFFER_MADE,
        .offer_made = {.request_id = q, .client_ref = client_ref, .offer = &offer}};
    push(d, to, &p);
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
    struct pending_offer_push *p = o->carry;
    o->carry = NULL;
    struct dispatch *d = o->d;
    struct store_slot_cols cols;
    if (!d->closed && st == DB_OK && PQntuples(res) == 1 &&
        store_slot_cols(res, sql_name[SQL_SLOT_GET], &cols)) {
        struct slot *s = store_slot_from_cols(&d->store, res, 0, &cols);
        if (s) {
            p->to.territory = p->territory;
            push_offer_made(d, &p->to, p->request, p->client_ref, s, p->expires);
            store_slot_unref(s);
        }
    }
    free(p);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* The pushes of the requests topic, from a slot's notification: a hold
 * made after the request's creation (offer.made) and a hold that ran out
 * (offer.expired). */
void push_slot_change(struct dispatch *d, int64_t id, const struct payload *j)
{
    const char *st = payload_str(j, "st");
    const char *os = payload_str(j, "os");
    const char *cause = payload_str(j, "c");
    const char *territory = payload_str(j, "t");
    const char *client_ref = payload_str(j, "f");
    int64_t q = payload_int(j, "q");
    struct push_target to = {.territory = territory,
                             .topic = SNP_TOPIC_REQUESTS,
                             .organisation_id = payload_int(j, "o")};
    if (!st || !territory || q <= 0 || !announced_client_ref(client_ref) || !wanted(d, &to))
        return;
    bool was_held = os && strcmp(os, "held") == 0;
    if (was_held && strcmp(st, "held") != 0 && cause && strcmp(cause, "expired") == 0) {
        struct dispatch_push p = {.event = SNP_PUSH_OFFER_EXPIRED,
                                  .offer_expired = {.request_id = q,
                                                    .client_ref = client_ref,
                                                    .slot_id = id,
                                                    .expired_at = payload_int(j, "ox")}};
        push(d, &to, &p);
    }
    if (!was_held && strcmp(st, "held") == 0 && (!cause || strcmp(cause, "create") != 0)) {
        int64_t expires = payload_int(j, "x");
        struct slot *s = store_slot(&d->store, id);
        if (s) {
            push_offer_made(d, &to, q, client_ref, s, expires);
            return;
        }
        /* A slot this process has not read yet (published a moment ago by
         * another process): read it, then push. */
        struct pending_offer_push *p = calloc(1, sizeof(*p));
        struct op *o = p ? op_new(d, NULL, NULL, NULL) : NULL;
        if (!o) {
            free(p);
            return;
        }
        p->to = to;
        snprintf(p->territory, sizeof(p->territory), "%s", territory);
        snprintf(p->client_ref, sizeof(p->client_ref), "%s", client_ref);
        p->request = q;
        p->expires = expires;
        o->carry = p;
        char sid[24];
        snprintf(sid, sizeof(sid), "%lld", (long long)id);
        const char *params[] = {sid};
        db_query(d->db, sql_text[SQL_SLOT_GET], 1, params, on_offer_slot_loaded, o);
    }
}

/* request.updated, from a request's notification: every change of status
 * but the creation itself (answered to the requester instead). */
void push_request_change(struct dispatch *d, int64_t id, const struct payload *j)
{
    const char *st = payload_str(j, "st");
    const char *previous = payload_str(j, "p");
    const char *cause = payload_str(j, "c");
    struct push_target to = {.territory = payload_str(j, "t"),
                             .topic = SNP_TOPIC_REQUESTS,
                             .organisation_id = payload_int(j, "o")};
    const char *client_ref = payload_str(j, "f");
    if (!announced_request_status(st) || !announced_request_status(previous) ||
        strcmp(st, previous) == 0 || !to.territory || (cause && strcmp(cause, "create") == 0) ||
        !announced_client_ref(client_ref) || !wanted(d, &to))
        return;
    struct dispatch_push p = {.event = SNP_PUSH_REQUEST_UPDATED,
                              .request_updated = {.request_id = id,
                                                  .client_ref = client_ref,
                                                  .status = st,
                                                  .previous_status = previous,
                                                  .booking_id = payload_int(j, "b")}};
    push(d, &to, &p);
}

/* A booking to push once read from the database (push_booking_from_db). */
struct pending_booking_push {
    char territory[64];
    char previous[12]; /* a hand-over: the practitioner it was taken from, or "" */
    int64_t organisation_id;
    enum snp_push event;
    bool handed_over;
};

static void on_foreign_booking_view(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct pending_booking_push *b = o->carry;
    o->carry = NULL;
    struct dispatch *d = o->d;
    enum { C_BOOKING, C_RPPS, C_SITE, C_N };
    static const char *const names[C_N] = {
        [C_BOOKING] = "booking", [C_RPPS] = "rpps", [C_SITE] = "site_id"};
    int c[C_N];
    if (!d->closed && st == DB_OK && PQntuples(res) == 1 &&
        db_cols_resolve(res, names, C_N, c, sql_name[SQL_BOOKING_PUSH])) {
        struct dispatch_push p = {.event = b->event,
                                  .stored = PQgetvalue(res, 0, c[C_BOOKING]),
                                  .site_id = strtoll(PQgetvalue(res, 0, c[C_SITE]), NULL, 10)};
        struct push_target gp = {
            .territory = b->territory,
            .topic = SNP_TOPIC_BOOKINGS,
            .rpps = PQgetisnull(res, 0, c[C_RPPS]) ? NULL : PQgetvalue(res, 0, c[C_RPPS]),
            .site_id = p.site_id};
        if (b->handed_over) {
            /* For the practitioner named on duty only: the site's
             * reception had it when it was booked.  The one it was taken
             * from is told so. */
            gp.site_id = 0;
            if (b->previous[0]) {
                struct push_target before = {
                    .territory = b->territory, .topic = SNP_TOPIC_BOOKINGS, .rpps = b->previous};
                struct dispatch_push handed = p;
                handed.event = SNP_PUSH_BOOKING_HANDED_OVER;
                push(d, &before, &handed);
            }
        }
        push(d, &gp, &p);
        if (b->event == SNP_PUSH_BOOKING_CANCELLED) {
            struct push_target to = {.territory = b->territory,
                                     .topic = SNP_TOPIC_REQUESTS,
                                     .organisation_id = b->organisation_id};
            push(d, &to, &p);
        }
    }
    free(b);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* Whether a booking's notification is its hand-over to the practitioner on
 * duty of a CSNP shift (sql/migrations/0022): their booking.created comes
 * from the notification in every process, the one that assigned included. */
bool handed_over(const struct payload *j)
{
    const char *event = payload_str(j, "e");
    return event && strcmp(event, "assigned") == 0;
}

/* booking.created, booking.cancelled and outcome.reported made by another
 * process (and the hand-overs of every process), for the subscribers connected to this one. */
void push_foreign_booking(struct dispatch *d, int64_t id, const struct payload *j)
{
    const char *event = payload_str(j, "e");
    const char *territory = payload_str(j, "t");
    const char *rpps = payload_str(j, "rp");
    int64_t org = payload_int(j, "o");
    if (!event || !territory)
        return;
    bool assigned = handed_over(j);
    const char *previous = assigned ? payload_str(j, "prp") : NULL;
    struct push_target before = {
        .territory = territory, .topic = SNP_TOPIC_BOOKINGS, .rpps = previous};
    struct push_target gp = {.territory = territory,
                             .topic = SNP_TOPIC_BOOKINGS,
                             .rpps = rpps,
                             .site_id = assigned ? 0 : payload_int(j, "si")};
    struct push_target requester = {
        .territory = territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = org};
    if (strcmp(event, "outcome") == 0) {
        const char *outcome = payload_str(j, "oc");
        const char *reported_at = payload_str(j, "oa");
        const char *client_ref = payload_str(j, "f");
        int64_t q = payload_int(j, "q");
        if (announced_outcome_kind(outcome) && announced_instant(reported_at) && q > 0 &&
            announced_client_ref(client_ref) && wanted(d, &requester)) {
            struct dispatch_push p = {.event = SNP_PUSH_OUTCOME_REPORTED,
                                      .outcome = {.booking_id = id,
                                                  .request_id = q,
                                                  .client_ref = client_ref,
                                                  .outcome = outcome,
                                                  .reported_at = reported_at}};
            push(d, &requester, &p);
        }
        return;
    }
    bool cancelled = strcmp(event, "cancelled") == 0;
    if (!wanted(d, &gp) && !(cancelled && wanted(d, &requester)) &&
        !(previous && wanted(d, &before)))
        return;
    push_booking_from_db(d, id, territory, org,
                         cancelled ? SNP_PUSH_BOOKING_CANCELLED : SNP_PUSH_BOOKING_CREATED,
                         assigned, previous);
}

void push_booking_from_db(struct dispatch *d, int64_t booking_id, const char *territory,
                          int64_t organisation_id, enum snp_push event, bool handed_over,
                          const char *previous)
{
    struct pending_booking_push *b = calloc(1, sizeof(*b));
    struct op *o = b ? op_new(d, NULL, NULL, NULL) : NULL;
    if (!o) {
        free(b);
        return;
    }
    snprintf(b->territory, sizeof(b->territory), "%s", territory);
    snprintf(b->previous, sizeof(b->previous), "%s", previous ? previous : "");
    b->organisation_id = organisation_id;
    b->event = event;
    b->handed_over = handed_over;
    o->carry = b;
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)booking_id);
    const char *params[] = {bid};
    db_query(d->db, sql_text[SQL_BOOKING_PUSH], 1, params, on_foreign_booking_view, o);
}
