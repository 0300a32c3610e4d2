/* The JSON views of the dispatch core: a slot, an instant, a set of bits as
 * the protocol shows them (protocol/snp.v1.json).
 *
 * Reads the store (slots, sites, communes, practitioners) and changes
 * nothing; no database, no pushes.  Shared with the other dispatch_*.c files
 * through dispatch_internal.h. */
#include <stdint.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"

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
