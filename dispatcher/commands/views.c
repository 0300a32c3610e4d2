/* The protocol's JSON of the dispatch core's answers and pushes (views.h). */
#include "dispatcher/commands/views.h"

#include <stdint.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/core/model.h"
#include "dispatcher/core/values.h"

json_t *views_slot(const struct store *st, const struct slot *s)
{
    const struct territory *t = s->territory;
    const struct site *site = s->site;
    const struct commune *commune = store_commune(st, site->commune);
    json_t *j = json_object();
    json_object_set_new(j, "slot_id", json_integer(s->id));
    json_object_set_new(j, "status", json_string(model_slot_status_name(s->status)));
    json_object_set_new(j, "start", value_time_json(t, s->start));
    json_object_set_new(j, "end", value_time_json(t, s->start + 60 * (int64_t)s->duration_min));
    json_object_set_new(j, "duration_min", json_integer(s->duration_min));
    json_object_set_new(j, "mode", json_string(model_mode_name(s->mode)));
    json_object_set_new(j, "audiences", value_bits_json(s->audience, model_audience_name));
    if (s->practitioner)
        json_object_set_new(j, "practitioner",
                            json_pack("{s:s, s:s, s:s}", "rpps", s->practitioner->rpps,
                                      "family_name", s->practitioner->family_name, "given_name",
                                      s->practitioner->given_name));
    json_t *sj = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:f, s:f}", "site_id",
                           (json_int_t)site->id, "kind", model_site_kind_name(site->kind), "name",
                           site->name, "address", site->address, "commune_insee", site->commune,
                           "commune_name", commune ? commune->name : site->commune, "latitude",
                           site->lat, "longitude", site->lon);
    if (site->phone && site->phone[0])
        json_object_set_new(sj, "phone", json_string(site->phone));
    json_object_set_new(j, "site", sj);
    if (s->release_minutes > 0)
        json_object_set_new(j, "release_minutes", json_integer(s->release_minutes));
    if (s->released_at > 0)
        json_object_set_new(j, "released_at", value_time_json(t, s->released_at));
    return j;
}

/* The slots of `v` as an array. */
static json_t *slots_json(const struct store *st, const struct slot *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, views_slot(st, v[i]));
    return a;
}

static json_t *ids_json(const int64_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

json_t *views_offer(const struct store *st, const struct territory *t,
                    const struct dispatch_offer *o)
{
    json_t *slot = views_slot(st, o->slot);
    /* An offer's slot is held for it, whatever this process has heard of
     * the slot yet. */
    json_object_set_new(slot, "status", json_string(model_slot_status_name(SLOT_HELD)));
    return json_pack("{s:o, s:o, s:o}", "slot", slot, "expires_at",
                     value_time_json(t, o->expires_at), "alternatives",
                     slots_json(st, o->alternatives, o->nalternatives));
}

/* A request as its requester sees it, without patient identity. */
static json_t *request_json(const struct store *st, const struct request *r,
                            const struct dispatch_offer *offer)
{
    const struct territory *t = r->territory;
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:o, s:o, s:s, s:{s:s}, s:o}", "request_id", (json_int_t)r->id,
        "client_ref", r->client_ref, "status", model_request_status_name(r->status), "created_at",
        value_time_json(t, r->created_at), "deadline", value_time_json(t, r->deadline), "urgency",
        model_urgency_name(r->urgency), "motif", "code", model_motif_name(r->motif),
        "priority_groups", value_priority_json(r->priority_groups));
    if (offer)
        json_object_set_new(j, "offer", views_offer(st, t, offer));
    return j;
}

static json_t *booking_json(const struct store *st, const struct dispatch_booking *b)
{
    const struct slot *s = b->slot;
    json_t *j = json_pack("{s:I, s:s, s:o}", "booking_id", (json_int_t)b->booking_id, "status",
                          "booked", "created_at", value_time_json(s->territory, b->created_at));
    json_object_set_new(j, "slot", views_slot(st, s));
    const struct request *r = b->request;
    if (r) {
        json_object_set_new(j, "request_id", json_integer(r->id));
        json_object_set_new(j, "urgency", json_string(model_urgency_name(r->urgency)));
        json_object_set_new(j, "motif", json_pack("{s:s}", "code", model_motif_name(r->motif)));
        json_object_set_new(j, "priority_groups", value_priority_json(r->priority_groups));
        const struct organisation *org = idmap_get(&st->organisations, r->organisation_id);
        json_t *rq =
            json_pack("{s:s, s:I, s:s}", "kind", model_audience_name(r->kind), "organisation_id",
                      (json_int_t)r->organisation_id, "name", org ? org->name : "");
        if (org && org->finess[0])
            json_object_set_new(rq, "finess", json_string(org->finess));
        json_object_set_new(j, "requester", rq);
    }
    return j;
}

static json_t *capacity_json(const struct store *st, const struct dispatch_answer *a)
{
    const struct territory *t = a->capacity.territory;
    const int *m = a->capacity.by_mode, *au = a->capacity.by_audience;
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:o, s:i, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i}}",
        "territory_id", t->id, "horizon", dispatch_horizon_name(a->capacity.horizon), "from",
        value_time_json(t, a->capacity.from), "to", value_time_json(t, a->capacity.to), "total",
        a->capacity.total, "by_mode", "office", m[0], "home", m[1], "teleconsultation", m[2],
        "by_audience", "sas", au[0], "emergency", au[1], "pharmacy", au[2], "professional", au[3],
        "desk", au[4], "public", au[5]);
    if (j && a->capacity.listed) {
        json_object_set_new(
            j, "slots",
            slots_json(st, (const struct slot *const *)a->capacity.slots, a->capacity.nslots));
        json_object_set_new(j, "truncated", json_boolean(a->capacity.truncated));
    }
    return j;
}

json_t *views_answer(const struct store *st, const struct dispatch_answer *a)
{
    switch (a->kind) {
    case ANSWER_PUBLISHED:
        return json_pack("{s:i, s:o, s:i}", "count", a->published.count, "slot_ids",
                         ids_json(a->published.slot_ids, a->published.nslot_ids), "skipped",
                         a->published.skipped);
    case ANSWER_WITHDRAWN:
        return json_pack("{s:i, s:o}", "count", (int)a->withdrawn.nslot_ids, "slot_ids",
                         ids_json(a->withdrawn.slot_ids, a->withdrawn.nslot_ids));
    case ANSWER_SLOTS:
        return json_pack(
            "{s:o, s:b}", "slots",
            slots_json(st, (const struct slot *const *)a->slots.slots, a->slots.nslots),
            "truncated", a->slots.truncated);
    case ANSWER_REQUEST:
        return request_json(st, a->request.request, a->request.offer);
    case ANSWER_BOOKING:
        return booking_json(st, &a->booking);
    case ANSWER_STORED:
        return a->stored ? json_loads(a->stored, 0, NULL) : NULL;
    case ANSWER_CAPACITY:
        return capacity_json(st, a);
    }
    return NULL;
}

/* An instant in the zone of territory `id` (Europe/Paris when memory does
 * not know it). */
static json_t *time_in(const struct store *st, const char *id, int64_t utc)
{
    const struct territory *t = id ? store_territory(st, id) : NULL;
    return value_time_json_in(t ? t->zone : timeutil_zone_find("Europe/Paris"), utc);
}

json_t *views_push(const struct store *st, const struct push_target *to,
                   const struct dispatch_push *p)
{
    if (p->stored)
        return json_loads(p->stored, 0, NULL);
    switch (p->event) {
    case SNP_PUSH_CAPACITY_CHANGED: {
        const struct slot *s = p->capacity;
        json_t *change = json_pack("{s:I, s:s, s:o, s:i, s:s, s:o, s:I, s:s}", "slot_id",
                                   (json_int_t)s->id, "status", model_slot_status_name(s->status),
                                   "start", value_time_json(s->territory, s->start), "duration_min",
                                   s->duration_min, "mode", model_mode_name(s->mode), "audiences",
                                   value_bits_json(s->audience, model_audience_name), "site_id",
                                   (json_int_t)s->site->id, "commune_insee", s->site->commune);
        return json_pack("{s:s, s:[o]}", "territory_id", s->territory->id, "changes", change);
    }
    case SNP_PUSH_OFFER_MADE: {
        const struct territory *t = store_territory(st, to->territory);
        if (!t)
            t = p->offer_made.offer->slot->territory;
        return json_pack("{s:I, s:s, s:o}", "request_id", (json_int_t)p->offer_made.request_id,
                         "client_ref", p->offer_made.client_ref, "offer",
                         views_offer(st, t, p->offer_made.offer));
    }
    case SNP_PUSH_OFFER_EXPIRED:
        return json_pack("{s:I, s:s, s:I, s:o}", "request_id",
                         (json_int_t)p->offer_expired.request_id, "client_ref",
                         p->offer_expired.client_ref, "slot_id",
                         (json_int_t)p->offer_expired.slot_id, "expired_at",
                         time_in(st, to->territory, p->offer_expired.expired_at));
    case SNP_PUSH_REQUEST_UPDATED: {
        json_t *j = json_pack("{s:I, s:s, s:s, s:s}", "request_id",
                              (json_int_t)p->request_updated.request_id, "client_ref",
                              p->request_updated.client_ref, "status", p->request_updated.status,
                              "previous_status", p->request_updated.previous_status);
        if (j && p->request_updated.booking_id > 0)
            json_object_set_new(j, "booking_id", json_integer(p->request_updated.booking_id));
        return j;
    }
    case SNP_PUSH_BOOKING_CREATED:
        return booking_json(st, &p->booking);
    case SNP_PUSH_OUTCOME_REPORTED:
        return json_pack(
            "{s:I, s:I, s:s, s:{s:s, s:s}}", "booking_id", (json_int_t)p->outcome.booking_id,
            "request_id", (json_int_t)p->outcome.request_id, "client_ref", p->outcome.client_ref,
            "outcome", "kind", p->outcome.outcome, "reported_at", p->outcome.reported_at);
    default:
        /* The other bookings' events are stored views. */
        return NULL;
    }
}
