/* The requester's operations on a request: request.create (one ranking for
 * the slot to hold and the alternatives, one call that creates and holds),
 * offer.accept (the booking), offer.decline (the next slot in the same
 * round trip) and request.cancel.  A call that finds its request with an
 * update in flight is parked until it ends (park_call).
 *
 * Each change is one call (request_create.sql, offer_accept.sql,
 * offer_move.sql through offer_move_next, request_cancel.sql), applied to
 * memory once it is answered; the reads are a request memory does not know
 * yet (request_get_open.sql, for a decline) and the booking of a cancelled
 * request (booking_get.sql, pushed to its practitioner). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"
#include "dispatcher/core/values.h"
#include "dispatcher/db/db_cols.h"
#include "protocol/jsonout.h"
#include "sql_queries.h"

/* The one answer for a request that is missing, closed, or another
 * organisation's: they are not told apart. */
#define NO_SUCH_REQUEST "no request with this id for your organisation"

/* --- request.create --------------------------------------------------------------- */

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

static void on_request_created(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct dispatch *d = o->d;
    struct request *r = o->req; /* the op's reference; not in the store yet */
    if (o->slot)
        o->slot->pending = false;
    enum { C_ID, C_CREATED, C_HELD, C_EXPIRES, C_CREATED_AT, C_DEADLINE, C_N };
    static const char *const names[C_N] = {[C_ID] = "request_id",
                                           [C_CREATED] = "created",
                                           [C_HELD] = "held_slot",
                                           [C_EXPIRES] = "hold_expires_at_epoch",
                                           [C_CREATED_AT] = "created_at_epoch",
                                           [C_DEADLINE] = "deadline_epoch"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_REQUEST_CREATE, names, C_N, c))
        return;
    int64_t id = strtoll(PQgetvalue(res, 0, c[C_ID]), NULL, 10);
    bool created = strcmp(PQgetvalue(res, 0, c[C_CREATED]), "t") == 0;
    int64_t held = strtoll(PQgetvalue(res, 0, c[C_HELD]), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(res, 0, c[C_EXPIRES]), NULL, 10);
    if (!created) {
        /* A retried creation (the database checked it is the same request):
         * answer with the request as it stands. */
        o->repeat = true;
        op_set_request(o, NULL);
        struct request *existing = store_request(&d->store, id);
        if (existing) {
            finish_with_request(o, existing, NULL, 0);
            return;
        }
        answer_request_view(o, id);
        return;
    }
    r->id = id;
    /* The database's clock: creation time and deadline. */
    r->created_at = strtoll(PQgetvalue(res, 0, c[C_CREATED_AT]), NULL, 10);
    r->deadline = strtoll(PQgetvalue(res, 0, c[C_DEADLINE]), NULL, 10);
    store_request_ref(r);
    if (!store_add_request(&d->store, r)) {
        op_fail(o, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    if (held > 0 && o->slot && held == o->slot->id) {
        request_set_offer(d, r, o->slot, expires);
        d->stats.offers++;
        finish_with_request(o, r, o->alternatives, o->nalternatives);
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
    finish_with_request(o, r, o->alternatives, o->nalternatives);
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

/* The requester's kind's details (source) as snp_request_create keeps
 * them (its request JSON's "source"). */
static json_t *source_json(const struct dispatch_request_args *a)
{
    json_t *j = json_object();
    if (a->sources & SOURCE_EMERGENCY)
        json_object_set_new(j, "emergency",
                            json_pack("{s:i, s:s}", "triage_level", a->emergency.triage_level,
                                      "senior_rpps", a->emergency.senior_rpps));
    if (a->sources & SOURCE_PHARMACY) {
        json_t *p = json_pack("{s:s, s:s}", "protocol", a->pharmacy.protocol, "test_result",
                              a->pharmacy.test_result);
        if (p && a->pharmacy.nexclusions > 0) {
            json_t *ex = json_array();
            for (size_t i = 0; i < a->pharmacy.nexclusions; i++)
                json_array_append_new(ex, json_string(a->pharmacy.exclusions[i]));
            json_object_set_new(p, "exclusions", ex);
        }
        json_object_set_new(j, "pharmacy", p);
    }
    if (a->sources & SOURCE_SAS) {
        json_t *p = json_pack("{s:s}", "regulator_name", a->sas.regulator_name);
        if (p && a->sas.regulator_id)
            json_object_set_new(p, "regulator_id", json_string(a->sas.regulator_id));
        json_object_set_new(j, "sas", p);
    }
    return j;
}

/* The patient's identity, kept apart from what is countable (the
 * identity JSON of snp_request_create). */
static json_t *identity_json(const struct dispatch_request_args *a)
{
    json_t *j = json_object();
    const char *const fields[][2] = {{"display_name", a->patient.display_name},
                                     {"initials", a->patient.initials},
                                     {"birth_date", a->patient.birth_date},
                                     {"phone", a->patient.phone},
                                     {"motif_text", a->motif_text}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i][1])
            json_object_set_new(j, fields[i][0], json_string(fields[i][1]));
    return j;
}

void dispatch_request_create(struct dispatch *d, const struct caller *c,
                             const struct dispatch_request_args *a, dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t || !token_role_is_requester(c->role)) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "only requesters create requests", NULL, NULL);
        return;
    }
    const char *insee = a->patient.commune_insee;
    struct commune *commune = insee ? store_commune(&d->store, insee) : NULL;
    if (!commune) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "unknown commune", "patient.commune_insee", NULL);
        return;
    }
    if (!territory_has_commune(t, commune)) {
        cb(arg, SNP_PROTO_E_OTHER_TERRITORY, "this commune is not one of your territory's",
           "patient.commune_insee", NULL);
        return;
    }
    /* The source details must be those of the caller's kind. */
    unsigned own = c->role == ROLE_EMERGENCY  ? SOURCE_EMERGENCY
                   : c->role == ROLE_PHARMACY ? SOURCE_PHARMACY
                   : c->role == ROLE_SAS      ? SOURCE_SAS
                                              : 0;
    if (a->sources & ~own) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "source details must match your role", "source", NULL);
        return;
    }
    if (c->role == ROLE_EMERGENCY && !(a->sources & SOURCE_EMERGENCY)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD,
           "an emergency redirection needs the triage level and the senior doctor",
           "source.emergency", NULL);
        return;
    }

    struct request *r = calloc(1, sizeof(*r));
    if (!r) {
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
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
    snprintf(r->client_ref, sizeof(r->client_ref), "%s", a->client_ref);
    r->motif = a->motif;
    r->urgency = a->urgency;
    int by = a->patient.birth_year;
    r->age = age_at(t, now, by, a->patient.birth_month, a->patient.birth_day);
    r->deadline = timeutil_deadline(t->zone, now,
                                    r->urgency == URGENCY_SAME_DAY ? TIMEUTIL_SAME_DAY
                                    : r->urgency == URGENCY_24H    ? TIMEUTIL_H24
                                                                   : TIMEUTIL_H48);
    r->modes = a->modes ? a->modes : MODE_ALL;
    r->max_distance_km = a->max_distance_km;
    bool has_mt = a->patient.has_mt;
    if (a->patient.mt_rpps && has_mt)
        snprintf(r->mt_rpps, sizeof(r->mt_rpps), "%s", a->patient.mt_rpps);
    r->priority_groups =
        (uint8_t)((a->patient.ald ? PRIORITY_ALD : 0) | (a->patient.c2s ? PRIORITY_C2S : 0) |
                  (r->age >= 70 ? PRIORITY_AGED_70_PLUS : 0));
    r->status = REQ_WAITING;

    /* What the database keeps countable, and the identity kept apart. */
    char deadline[TIMEUTIL_RFC3339_SIZE];
    if (!timeutil_format_rfc3339(t->zone, r->deadline, deadline, sizeof(deadline))) {
        free(r);
        cb(arg, SNP_PROTO_E_INTERNAL, "cannot format the deadline", NULL, NULL);
        return;
    }
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:i, s:s, s:b, s:o, s:o}",
                            "client_ref", r->client_ref, "motif", model_motif_name(r->motif),
                            "urgency", model_urgency_name(r->urgency), "deadline", deadline,
                            "modes", value_bits_json(r->modes, model_mode_name), "patient_commune",
                            commune->insee, "patient_birth_year", by, "patient_age", r->age,
                            "patient_sex", a->patient.sex, "has_mt", has_mt, "priority_groups",
                            value_priority_json(r->priority_groups), "source", source_json(a));
    if (!req) {
        free(r);
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    if (r->max_distance_km > 0)
        json_object_set_new(req, "max_distance_km", json_real(r->max_distance_km));
    if (a->reduced_mobility)
        json_object_set_new(req, "reduced_mobility", json_true());
    if (r->mt_rpps[0])
        json_object_set_new(req, "mt_rpps", json_string(r->mt_rpps));
    json_t *ident = identity_json(a);

    struct op *o = op_new(d, c, cb, arg);
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
    char *req_text = jsonout_dumps(req, 0, NULL);
    char *ident_text = jsonout_dumps(ident, 0, NULL);
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
        enum snp_proto_code e = dispatch_db_error(st, res);
        if (e == SNP_PROTO_E_SLOT_TAKEN && o->slot) {
            /* Memory thought it free: another process has it. */
            d->stats.conflicts++;
            o->slot->stale = true;
        }
        /* The hold ran out or the request closed by the database's word:
         * memory reads the request again. */
        if ((e == SNP_PROTO_E_HOLD_EXPIRED || e == SNP_PROTO_E_CONFLICT) && r)
            r->stale = true;
        if (e == SNP_PROTO_E_NOT_FOUND) {
            /* One answer for a request that does not exist and one of
             * another organisation: ids are not to be probed. */
            op_fail(o, e, NO_SUCH_REQUEST, "request_id");
            return;
        }
        if (e == SNP_PROTO_E_INVALID_FIELD) {
            op_fail(o, e, dispatch_db_message(st, res), "slot_id");
            return;
        }
        op_fail_db(o, st, res);
        return;
    }
    enum { C_BOOKING, C_CREATED, C_SLOT, C_RELEASED, C_N };
    static const char *const names[C_N] = {[C_BOOKING] = "booking_id",
                                           [C_CREATED] = "created",
                                           [C_SLOT] = "slot_id",
                                           [C_RELEASED] = "released_slot"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_OFFER_ACCEPT, names, C_N, c))
        return;
    int64_t booking_id = strtoll(PQgetvalue(res, 0, c[C_BOOKING]), NULL, 10);
    bool created = strcmp(PQgetvalue(res, 0, c[C_CREATED]), "t") == 0;
    int64_t slot_id = strtoll(PQgetvalue(res, 0, c[C_SLOT]), NULL, 10);
    int64_t released = strtoll(PQgetvalue(res, 0, c[C_RELEASED]), NULL, 10);
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
        store_slot_set_status(s, SLOT_BOOKED);
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
                             SNP_PUSH_BOOKING_CREATED, false, NULL);
        answer_booking_view(o, booking_id);
        return;
    }
    struct dispatch_answer a = {
        .kind = ANSWER_BOOKING,
        .booking = {
            .booking_id = booking_id, .request = r, .slot = s, .created_at = timeutil_now()}};
    struct push_target to = {.territory = s->territory->id,
                             .topic = SNP_TOPIC_BOOKINGS,
                             .rpps = s->practitioner ? s->practitioner->rpps : NULL,
                             .site_id = s->site->id};
    struct dispatch_push p = {
        .event = SNP_PUSH_BOOKING_CREATED, .site_id = s->site->id, .booking = a.booking};
    push(d, &to, &p);
    /* The answer reads `r` after it left the store: the operation holds it. */
    r->status = REQ_BOOKED;
    store_remove_request(&d->store, r);
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
}

static void resume_offer_accept(struct dispatch *d, const struct caller *c, const void *args,
                                dispatch_cb cb, void *arg)
{
    dispatch_offer_accept(d, c, args, cb, arg);
}

void dispatch_offer_accept(struct dispatch *d, const struct caller *c,
                           const struct dispatch_offer_args *a, dispatch_cb cb, void *arg)
{
    int64_t id = a->request_id;
    int64_t slot_id = a->slot_id;
    struct request *r = store_request(&d->store, id);
    if (r && r->organisation_id != c->organisation_id)
        r = NULL; /* the database answers as for any request not the caller's */
    if (r && r->pending) {
        park_call(d, r, resume_offer_accept, c, a, sizeof(*a), cb, arg);
        return;
    }
    /* Not in memory: already booked (a retried confirmation) or unknown; the
     * database answers either way, and checks the slot as offering would. */
    struct op *o = op_new(d, c, cb, arg);
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
        op_fail(o, SNP_PROTO_E_CONFLICT, "this slot is not the one offered to the request",
                "slot_id");
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
    struct store_request_cols cols;
    if (op_settled_early(o, st, res))
        return;
    if (!store_request_cols(res, sql_name[SQL_REQUEST_GET_OPEN], &cols)) {
        op_fail_cols(o);
        return;
    }
    struct dispatch *d = o->d;
    struct request *fresh =
        PQntuples(res) == 1 ? store_request_from_cols(&d->store, res, 0, &cols) : NULL;
    if (!fresh || fresh->organisation_id != o->caller.organisation_id ||
        strcmp(fresh->territory->id, o->caller.territory) != 0) {
        if (fresh)
            store_request_unref(fresh);
        op_fail(o, SNP_PROTO_E_NOT_FOUND, NO_SUCH_REQUEST, "request_id");
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
            op_fail(o, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
            return;
        }
        store_request_unref(r); /* the store's reference remains */
    }
    if (r->pending) {
        op_fail(o, SNP_PROTO_E_CONFLICT, "the request is being updated; retry", "request_id");
        return;
    }
    op_set_request(o, r);
    decline_start(o);
}

static void resume_offer_decline(struct dispatch *d, const struct caller *c, const void *args,
                                 dispatch_cb cb, void *arg)
{
    dispatch_offer_decline(d, c, args, cb, arg);
}

void dispatch_offer_decline(struct dispatch *d, const struct caller *c,
                            const struct dispatch_offer_args *a, dispatch_cb cb, void *arg)
{
    int64_t id = a->request_id;
    int64_t slot_id = a->slot_id;
    struct request *r = store_request(&d->store, id);
    if (r &&
        (r->organisation_id != c->organisation_id || strcmp(r->territory->id, c->territory) != 0)) {
        cb(arg, SNP_PROTO_E_NOT_FOUND, NO_SUCH_REQUEST, "request_id", NULL);
        return;
    }
    if (r && r->pending) {
        park_call(d, r, resume_offer_decline, c, a, sizeof(*a), cb, arg);
        return;
    }
    struct op *o = op_new(d, c, cb, arg);
    if (!o)
        return;
    o->ids[0] = slot_id;
    snprintf(o->why, sizeof(o->why), "%s", a->reason);
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

/* --- request.cancel --------------------------------------------------------------- */

static void on_cancelled_booking_view(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    if (op_closed(o))
        return;
    enum { C_BOOKING, C_RPPS, C_SITE, C_N };
    static const char *const names[C_N] = {
        [C_BOOKING] = "booking", [C_RPPS] = "rpps", [C_SITE] = "site_id"};
    int c[C_N];
    if (st == DB_OK && PQntuples(res) == 1 &&
        db_cols_resolve(res, names, C_N, c, sql_name[SQL_BOOKING_GET]))
        push_booking_cancelled(
            o->d, o->caller.territory, PQgetvalue(res, 0, c[C_BOOKING]),
            PQgetisnull(res, 0, c[C_RPPS]) ? NULL : PQgetvalue(res, 0, c[C_RPPS]),
            strtoll(PQgetvalue(res, 0, c[C_SITE]), NULL, 10), o->caller.organisation_id);
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
        if (st == DB_OK || dispatch_db_error(st, res) == SNP_PROTO_E_NOT_FOUND)
            op_fail(o, SNP_PROTO_E_NOT_FOUND, NO_SUCH_REQUEST, "request_id");
        else
            op_fail_db(o, st, res);
        return;
    }
    enum { C_FREED, C_BOOKING, C_N };
    static const char *const names[C_N] = {
        [C_FREED] = "freed_slot", [C_BOOKING] = "cancelled_booking"};
    int c[C_N];
    if (op_settled_early_cols(o, st, res, SQL_REQUEST_CANCEL, names, C_N, c))
        return;
    int64_t freed = strtoll(PQgetvalue(res, 0, c[C_FREED]), NULL, 10);
    int64_t booking = strtoll(PQgetvalue(res, 0, c[C_BOOKING]), NULL, 10);
    apply_freed(d, freed, booking > 0 ? 0 : o->ids[0]);
    if (!r)
        unknown_changed(&d->request_reads, o->ids[0]);
    if (r && !r->gone) {
        r->status = REQ_CANCELLED;
        r->held_slot = 0;
        if (booking == 0) {
            /* Answered after it left the store: the operation holds it. */
            store_remove_request(&d->store, r);
            finish_with_request(o, r, NULL, 0);
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

static void resume_request_cancel(struct dispatch *d, const struct caller *c, const void *args,
                                  dispatch_cb cb, void *arg)
{
    dispatch_request_cancel(d, c, args, cb, arg);
}

void dispatch_request_cancel(struct dispatch *d, const struct caller *c,
                             const struct dispatch_cancel_args *a, dispatch_cb cb, void *arg)
{
    int64_t id = a->id;
    struct request *r = store_request(&d->store, id);
    if (r && r->organisation_id != c->organisation_id)
        r = NULL; /* the database answers as for any request not the caller's */
    if (r && r->pending) {
        park_call(d, r, resume_request_cancel, c, a, sizeof(*a), cb, arg);
        return;
    }
    const char *reason = a->reason[0] ? a->reason : "other";
    struct op *o = op_new(d, c, cb, arg);
    if (!o)
        return;
    op_set_request(o, r);
    o->ids[0] = id;
    if (r)
        r->pending = true;
    char rid[24], org[24];
    snprintf(rid, sizeof(rid), "%lld", (long long)id);
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    const char *params[] = {rid, org, reason, c->actor};
    db_query(d->db, sql_text[SQL_REQUEST_CANCEL], 4, params, on_request_cancelled, o);
}
