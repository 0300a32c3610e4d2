/* slot.list and capacity.query: the reads the dispatch core answers from
 * memory alone (the slot index of the store), without the database and
 * without an audit row.  The reads that need the database (patient fields,
 * audited) are in reads.c.
 *
 * Reads the store and changes nothing in it; the only shared state it
 * writes is the per-site distance memo of dispatch_internal.h (site_memo).
 * Same calling convention as dispatch.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"

/* --- reads from memory: slot.list, capacity.query --------------------------------- */

void dispatch_slot_list(struct dispatch *d, const struct caller *c, json_t *data, dispatch_cb cb,
                        void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    int64_t now = timeutil_now();
    int64_t from = now, to;
    const char *v;
    if ((v = json_string_value(json_object_get(data, "from"))) &&
        !timeutil_parse_rfc3339(v, &from)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid instant", "from", NULL);
        return;
    }
    to = from + 7 * 86400;
    if ((v = json_string_value(json_object_get(data, "to"))) && !timeutil_parse_rfc3339(v, &to)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid instant", "to", NULL);
        return;
    }
    const char *rpps = json_string_value(json_object_get(data, "practitioner_rpps"));
    if (c->role == ROLE_GP) {
        if (rpps && strcmp(rpps, c->rpps) != 0) {
            cb(arg, SNP_PROTO_E_FORBIDDEN, "a practitioner sees only their own slots",
               "practitioner_rpps", NULL);
            return;
        }
        rpps = c->rpps;
    }
    unsigned statuses = 0;
    size_t i;
    json_t *sv;
    json_array_foreach (json_object_get(data, "status"), i, sv) {
        enum slot_status ss;
        if (model_slot_status_parse(json_string_value(sv), &ss))
            statuses |= 1u << ss;
    }
    json_t *limit_v = json_object_get(data, "limit");
    size_t limit = limit_v ? (size_t)json_integer_value(limit_v) : 500;
    json_t *list = json_array();
    bool truncated = false;
    for (size_t k = 0; k < t->nslots; k++) {
        struct slot *s = t->slots[k];
        if (s->start < from || s->start >= to)
            continue;
        if (rpps && (!s->practitioner || strcmp(s->practitioner->rpps, rpps) != 0))
            continue;
        if (statuses && !(statuses & (1u << s->status)))
            continue;
        if (json_array_size(list) == limit) {
            truncated = true;
            break;
        }
        json_array_append_new(list, dispatch_slot_json(d, s));
    }
    json_t *result = json_pack("{s:o, s:b}", "slots", list, "truncated", truncated);
    cb(arg, SNP_PROTO_OK, NULL, NULL, result);
    json_decref(result);
}

static int64_t horizon_end(const struct territory *t, const char *h, int64_t now)
{
    if (strcmp(h, "2h") == 0)
        return now + 2 * 3600;
    if (strcmp(h, "4h") == 0)
        return now + 4 * 3600;
    if (strcmp(h, "today") == 0)
        return timeutil_local_day_end(t->zone, now);
    if (strcmp(h, "24h") == 0)
        return now + 24 * 3600;
    return now + 48 * 3600;
}

/* The distance from commune `centre` to `site`, through `memo` (one entry
 * per site index, negative until computed; NULL: no memo). */
static double site_distance_km(double *memo, const struct commune *centre, const struct site *site)
{
    if (memo && memo[site->index] >= 0)
        return memo[site->index];
    double km = model_distance_km(centre->lat, centre->lon, site->lat, site->lon);
    if (memo)
        memo[site->index] = km;
    return km;
}

/* Whether `a` comes before `b` in a territory's slots: by start, then id. */
static inline bool slot_before(const struct slot *a, const struct slot *b)
{
    return a->start < b->start || (a->start == b->start && a->id < b->id);
}

void dispatch_capacity_query(struct dispatch *d, const struct caller *c, json_t *data,
                             dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    int64_t now = timeutil_now();
    const char *horizon = json_string_value(json_object_get(data, "horizon"));
    int64_t end = horizon_end(t, horizon, now);
    const char *insee = json_string_value(json_object_get(data, "commune_insee"));
    struct commune *centre = insee ? store_commune(&d->store, insee) : NULL;
    if (insee && !centre) {
        cb(arg, SNP_PROTO_E_NOT_FOUND, "unknown commune", "commune_insee", NULL);
        return;
    }
    if (centre && !territory_has_commune(t, centre)) {
        cb(arg, SNP_PROTO_E_OTHER_TERRITORY, "this commune belongs to another territory",
           "commune_insee", NULL);
        return;
    }
    double radius = json_number_value(json_object_get(data, "radius_km"));
    uint8_t modes = MODE_ALL;
    json_t *mv = json_object_get(data, "modes");
    if (mv) {
        modes = 0;
        size_t i;
        json_t *m;
        json_array_foreach (mv, i, m) {
            uint8_t bit;
            if (model_mode_parse(json_string_value(m), &bit))
                modes |= bit;
        }
    }
    /* Each site's distance to the centre, computed once: a query looks at
     * up to every live slot of the territory and its neighbours, and a site
     * has many (NULL when there is no radius or no memory: computed each
     * time). */
    double *site_km = centre && radius > 0 ? site_memo(d) : NULL;
    bool with_list = c->role == ROLE_SAS || c->role == ROLE_DESK;
    int by_mode[3] = {0}, by_aud[6] = {0}, total = 0;
    json_t *list = with_list ? json_array() : NULL;
    bool truncated = false;
    /* The slots of the territory and of each neighbour, in one walk by
     * start (each territory's are sorted by start, then id): only those
     * between now and the horizon's end are looked at, and the list is by
     * start whichever territory a slot is in. */
    size_t nruns = 1 + t->nneighbours;
    size_t *next = calloc(nruns, sizeof(*next));
    if (!next) {
        json_decref(list);
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    for (size_t run = 0; run < nruns; run++) {
        const struct territory *from = run == 0 ? t : t->neighbours[run - 1];
        next[run] = model_slots_after(from->slots, from->nslots, now - 1);
    }
    for (;;) {
        /* The run whose next slot starts first, and the start (and id) of
         * the next slot of the others: that run is read up to there in one
         * go, so a territory without neighbours is one straight walk. */
        const struct slot *first = NULL, *second = NULL;
        size_t taken = 0;
        for (size_t run = 0; run < nruns; run++) {
            const struct territory *from = run == 0 ? t : t->neighbours[run - 1];
            if (next[run] >= from->nslots || from->slots[next[run]]->start >= end)
                continue;
            const struct slot *head = from->slots[next[run]];
            if (!first || slot_before(head, first)) {
                second = first;
                first = head;
                taken = run;
            } else if (!second || slot_before(head, second)) {
                second = head;
            }
        }
        if (!first)
            break;
        const struct territory *from = taken == 0 ? t : t->neighbours[taken - 1];
        size_t k = next[taken];
        for (; k < from->nslots; k++) {
            struct slot *s = from->slots[k];
            if (s->start >= end || (second && !slot_before(s, second)))
                break;
            if (s->status != SLOT_FREE || !(s->mode & modes))
                continue;
            if (centre && radius > 0 && s->mode != MODE_TELECONSULTATION &&
                site_distance_km(site_km, centre, s->site) > radius)
                continue;
            total++;
            for (int b = 0; b < 3; b++)
                by_mode[b] += (s->mode >> b) & 1;
            /* Open to an audience as matching sees it: named for it,
             * published for the public (any requester), or released. */
            uint8_t open = match_slot_audiences(s, now);
            for (int b = 0; b < 6; b++)
                by_aud[b] += (open >> b) & 1;
            if (list) {
                if (json_array_size(list) >= 1000)
                    truncated = true;
                else
                    json_array_append_new(list, dispatch_slot_json(d, s));
            }
        }
        next[taken] = k;
    }
    free(next);
    json_t *result = json_pack(
        "{s:s, s:s, s:o, s:o, s:i, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i}}",
        "territory_id", t->id, "horizon", horizon, "from", time_json(t, now), "to",
        time_json(t, end), "total", total, "by_mode", "office", by_mode[0], "home", by_mode[1],
        "teleconsultation", by_mode[2], "by_audience", "sas", by_aud[0], "emergency", by_aud[1],
        "pharmacy", by_aud[2], "professional", by_aud[3], "desk", by_aud[4], "public", by_aud[5]);
    if (list) {
        json_object_set_new(result, "slots", list);
        json_object_set_new(result, "truncated", json_boolean(truncated));
    }
    cb(arg, SNP_PROTO_OK, NULL, NULL, result);
    json_decref(result);
}
