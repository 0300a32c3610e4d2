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
#include "dispatcher/core/match.h"
#include "sql_queries.h"

/* --- pushes ----------------------------------------------------------------------- */

void push(struct dispatch *d, const struct push_target *to, const char *event, json_t *data)
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
void push_booking_cancelled(struct dispatch *d, const char *territory, json_t *view,
                            int64_t organisation_id)
{
    struct push_target gp = bookings_target(territory, view);
    push(d, &gp, snp_push_name(SNP_PUSH_BOOKING_CANCELLED), json_incref(view));
    struct push_target to = {
        .territory = territory, .topic = SNP_TOPIC_REQUESTS, .organisation_id = organisation_id};
    push(d, &to, snp_push_name(SNP_PUSH_BOOKING_CANCELLED), json_incref(view));
}

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
void push_slot_change(struct dispatch *d, int64_t id, json_t *j)
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
        o->result = (json_t *)p; /* carried, not JSON: taken back in the callback */
        char sid[24];
        snprintf(sid, sizeof(sid), "%lld", (long long)id);
        const char *params[] = {sid};
        db_query(d->db, sql_text[SQL_SLOT_GET], 1, params, on_offer_slot_loaded, o);
    }
}

/* request.updated, from a request's notification: every change of status
 * but the creation itself (answered to the requester instead). */
void push_request_change(struct dispatch *d, int64_t id, json_t *j)
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
    op_finish(o, SNP_PROTO_OK, NULL, NULL, NULL);
}

/* Whether a booking's notification is its hand-over to the practitioner on
 * duty of a CSNP shift (sql/migrations/0022): their booking.created comes
 * from the notification in every process, the one that assigned included. */
bool handed_over(json_t *j)
{
    const char *event = json_string_value(json_object_get(j, "e"));
    return event && strcmp(event, "assigned") == 0;
}

/* booking.created, booking.cancelled and outcome.reported made by another
 * process (and the hand-overs of every process), for the subscribers connected to this one. */
void push_foreign_booking(struct dispatch *d, int64_t id, json_t *j)
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
        const char *reported_at = json_string_value(json_object_get(j, "oa"));
        const char *client_ref = json_string_value(json_object_get(j, "f"));
        if (outcome && reported_at && wanted(d, &requester))
            push(d, &requester, snp_push_name(SNP_PUSH_OUTCOME_REPORTED),
                 json_pack("{s:I, s:I, s:s, s:{s:s, s:s}}", "booking_id", (json_int_t)id,
                           "request_id", json_integer_value(json_object_get(j, "q")), "client_ref",
                           client_ref ? client_ref : "", "outcome", "kind", outcome, "reported_at",
                           reported_at));
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
void push_booking_from_db(struct dispatch *d, int64_t booking_id, const char *territory,
                          int64_t organisation_id, const char *event, const char *previous)
{
    struct op *o = op_new(d, NULL, NULL, NULL);
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
