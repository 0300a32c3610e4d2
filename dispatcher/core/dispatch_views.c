/* The JSON views of the dispatch core: a slot, an instant, a set of bits, a
 * request, its offer and a booking as the protocol shows them
 * (protocol/snp.v1.json).
 *
 * Reads the store (slots, sites, communes, practitioners, organisations)
 * and changes nothing in it: an offer's alternatives are ranked afresh
 * (rank_for), which writes only the ranking's scratch tables.  No database,
 * no pushes.  Shared with the other dispatch_*.c files through
 * dispatch_internal.h. */
#include <stdint.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"

/* --- rendering -------------------------------------------------------------------- */

json_t *time_json(const struct territory *t, int64_t utc)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    if (!timeutil_format_rfc3339(t->zone, utc, buf, sizeof(buf)))
        return json_null();
    return json_string(buf);
}

json_t *bits_json(uint8_t bits, const char *(*name)(uint8_t))
{
    json_t *a = json_array();
    for (int i = 0; i < 8; i++)
        if (bits & (1u << i))
            json_array_append_new(a, json_string(name((uint8_t)(1u << i))));
    return a;
}

json_t *dispatch_slot_json(const struct dispatch *d, const struct slot *s)
{
    const struct territory *t = s->territory;
    const struct site *site = s->site;
    const struct commune *commune = store_commune(&d->store, site->commune);
    json_t *j = json_object();
    json_object_set_new(j, "slot_id", json_integer(s->id));
    json_object_set_new(j, "status", json_string(model_slot_status_name(s->status)));
    json_object_set_new(j, "start", time_json(t, s->start));
    json_object_set_new(j, "end", time_json(t, s->start + 60 * (int64_t)s->duration_min));
    json_object_set_new(j, "duration_min", json_integer(s->duration_min));
    json_object_set_new(j, "mode", json_string(model_mode_name(s->mode)));
    json_object_set_new(j, "audiences", bits_json(s->audience, model_audience_name));
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
        json_object_set_new(j, "released_at", time_json(t, s->released_at));
    return j;
}

/* --- requests, offers, bookings --------------------------------------------------- */

json_t *priority_json(uint8_t bits)
{
    json_t *a = json_array();
    if (bits & PRIORITY_ALD)
        json_array_append_new(a, json_string("ald"));
    if (bits & PRIORITY_C2S)
        json_array_append_new(a, json_string("c2s"));
    if (bits & PRIORITY_AGED_70_PLUS)
        json_array_append_new(a, json_string("aged_70_plus"));
    return a;
}

/* The offer of `r` with, as alternatives, the slots of `ids` still free
 * (ranked already), or a fresh ranking when `ids` is NULL. */
static json_t *offer_json_with(struct dispatch *d, const struct request *r, const int64_t *ids,
                               int nids)
{
    struct slot *held = r->held_slot ? idmap_get(&d->store.slots, r->held_slot) : NULL;
    if (!held)
        return NULL;
    json_t *alts = json_array();
    int want = r->territory->settings.alternatives;
    if (want > MAX_CANDIDATES - 1)
        want = MAX_CANDIDATES - 1;
    if (ids) {
        for (int i = 0; i < nids && (int)json_array_size(alts) < want; i++) {
            struct slot *s = idmap_get(&d->store.slots, ids[i]);
            if (s && s->status == SLOT_FREE && !s->pending)
                json_array_append_new(alts, dispatch_slot_json(d, s));
        }
    } else if (want > 0) {
        struct match_candidate c[MAX_CANDIDATES];
        size_t n = rank_for(d, r, c, (size_t)want);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(alts, dispatch_slot_json(d, c[i].slot));
    }
    return json_pack("{s:o, s:o, s:o}", "slot", dispatch_slot_json(d, held), "expires_at",
                     time_json(r->territory, r->hold_expires_at), "alternatives", alts);
}

json_t *dispatch_offer_json(struct dispatch *d, const struct request *r)
{
    return offer_json_with(d, r, NULL, 0);
}

/* The request as its requester sees it, without patient identity; the
 * offer's alternatives are `alts` when given (already ranked). */
static json_t *request_summary_with(struct dispatch *d, const struct request *r,
                                    const int64_t *alts, int nalts)
{
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:o, s:o, s:s, s:{s:s}, s:o}", "request_id", (json_int_t)r->id,
        "client_ref", r->client_ref, "status", model_request_status_name(r->status), "created_at",
        time_json(r->territory, r->created_at), "deadline", time_json(r->territory, r->deadline),
        "urgency", model_urgency_name(r->urgency), "motif", "code", model_motif_name(r->motif),
        "priority_groups", priority_json(r->priority_groups));
    if (r->status == REQ_OFFERED) {
        json_t *offer = offer_json_with(d, r, alts, nalts);
        if (offer)
            json_object_set_new(j, "offer", offer);
    }
    return j;
}

json_t *request_summary_json(struct dispatch *d, const struct request *r)
{
    return request_summary_with(d, r, NULL, 0);
}

/* The answer to a creation: the request with the alternatives ranked
 * with its offer (the edge adds what the requester gave, calls.c). */
json_t *created_json(struct dispatch *d, const struct request *r, const int64_t *alts, int nalts)
{
    return request_summary_with(d, r, alts, nalts);
}

json_t *booking_json(struct dispatch *d, int64_t booking_id, const struct request *r,
                     const struct slot *s, int64_t now)
{
    json_t *j = json_pack("{s:I, s:s, s:o}", "booking_id", (json_int_t)booking_id, "status",
                          "booked", "created_at", time_json(s->territory, now));
    json_object_set_new(j, "slot", dispatch_slot_json(d, s));
    if (r) {
        json_object_set_new(j, "request_id", json_integer(r->id));
        json_object_set_new(j, "urgency", json_string(model_urgency_name(r->urgency)));
        json_object_set_new(j, "motif", json_pack("{s:s}", "code", model_motif_name(r->motif)));
        json_object_set_new(j, "priority_groups", priority_json(r->priority_groups));
        const struct organisation *org = idmap_get(&d->store.organisations, r->organisation_id);
        json_t *rq =
            json_pack("{s:s, s:I, s:s}", "kind", model_audience_name(r->kind), "organisation_id",
                      (json_int_t)r->organisation_id, "name", org ? org->name : "");
        if (org && org->finess[0])
            json_object_set_new(rq, "finess", json_string(org->finess));
        json_object_set_new(j, "requester", rq);
    }
    return j;
}
