/* slot.list and capacity.query: the reads the dispatch core answers from
 * memory alone (the slot index of the store), without the database and
 * without an audit row.  The reads that need the database (patient fields,
 * audited) are in reads.c.
 *
 * Reads the store and changes nothing in it; the only shared state it
 * writes is the per-site distance memo of dispatch_internal.h (site_memo).
 * Same calling convention as dispatch.h. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"

/* --- reads from memory: slot.list, capacity.query --------------------------------- */

/* Puts `s` at index `n` of the answer's list (d->listed, reused by every
 * read); false when out of memory. */
static bool list_slot(struct dispatch *d, size_t n, struct slot *s)
{
    if (n >= d->listed_cap) {
        size_t cap = d->listed_cap ? 2 * d->listed_cap : 64;
        struct slot **p = realloc(d->listed, cap * sizeof(*p));
        if (!p)
            return false;
        d->listed = p;
        d->listed_cap = cap;
    }
    d->listed[n] = s;
    return true;
}

void dispatch_slot_list(struct dispatch *d, const struct caller *c,
                        const struct dispatch_slot_list_args *a, dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    int64_t from = a->has_from ? a->from : timeutil_now();
    int64_t to = a->has_to ? a->to : from + 7 * 86400;
    const char *rpps = a->rpps[0] ? a->rpps : NULL;
    if (c->role == ROLE_GP) {
        if (rpps && strcmp(rpps, c->rpps) != 0) {
            cb(arg, SNP_PROTO_E_FORBIDDEN, "a practitioner sees only their own slots",
               "practitioner_rpps", NULL);
            return;
        }
        rpps = c->rpps;
    }
    unsigned statuses = a->statuses;
    size_t limit = a->limit;
    size_t n = 0;
    bool truncated = false;
    for (size_t k = 0; k < t->nslots; k++) {
        struct slot *s = t->slots[k];
        if (s->start < from || s->start >= to)
            continue;
        if (rpps && (!s->practitioner || strcmp(s->practitioner->rpps, rpps) != 0))
            continue;
        if (statuses && !(statuses & (1u << s->status)))
            continue;
        if (n == limit) {
            truncated = true;
            break;
        }
        if (!list_slot(d, n, s)) {
            cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
            return;
        }
        n++;
    }
    struct dispatch_answer answer = {
        .kind = ANSWER_SLOTS, .slots = {.slots = d->listed, .nslots = n, .truncated = truncated}};
    cb(arg, SNP_PROTO_OK, NULL, NULL, &answer);
}

static const char *const horizon_names[] = {[HORIZON_2H] = "2h",
                                            [HORIZON_4H] = "4h",
                                            [HORIZON_TODAY] = "today",
                                            [HORIZON_24H] = "24h",
                                            [HORIZON_48H] = "48h"};

bool dispatch_horizon_parse(const char *s, enum dispatch_horizon *out)
{
    for (size_t i = 0; s && i < sizeof(horizon_names) / sizeof(horizon_names[0]); i++) {
        if (strcmp(s, horizon_names[i]) == 0) {
            *out = (enum dispatch_horizon)i;
            return true;
        }
    }
    return false;
}

const char *dispatch_horizon_name(enum dispatch_horizon h)
{
    return (size_t)h < sizeof(horizon_names) / sizeof(horizon_names[0]) ? horizon_names[h] : "48h";
}

static int64_t horizon_end(const struct territory *t, enum dispatch_horizon h, int64_t now)
{
    switch (h) {
    case HORIZON_2H:
        return now + 2 * 3600;
    case HORIZON_4H:
        return now + 4 * 3600;
    case HORIZON_TODAY:
        return timeutil_local_day_end(t->zone, now);
    case HORIZON_24H:
        return now + 24 * 3600;
    case HORIZON_48H:
        break;
    }
    return now + 48 * 3600;
}

/* The distance from commune `centre` to the site of slot `k` of `from`,
 * whose index is `index` (its brief's), kept in `memo` (one entry per site
 * index, negative until computed; NULL: no memo).  Out of line: the walk
 * reads the memo itself and comes here once a site. */
__attribute__((noinline)) static double site_distance_km(double *memo, const struct commune *centre,
                                                         uint32_t index,
                                                         const struct territory *from, size_t k)
{
    const struct site *site = from->slots[k]->site;
    double km = model_distance_km(centre->lat, centre->lon, site->lat, site->lon);
    if (memo)
        memo[index] = km;
    return km;
}

/* Whether `a` comes before `b` in a territory's slots: by start, then id. */
static inline bool slot_before(const struct slot *a, const struct slot *b)
{
    return a->start < b->start || (a->start == b->start && a->id < b->id);
}

void dispatch_capacity_query(struct dispatch *d, const struct caller *c,
                             const struct dispatch_capacity_args *a, dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    int64_t now = timeutil_now();
    int64_t end = horizon_end(t, a->horizon, now);
    const char *insee = a->commune_insee[0] ? a->commune_insee : NULL;
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
    double radius = a->radius_km;
    uint8_t modes = a->modes ? a->modes : MODE_ALL;
    /* Each site's distance to the centre, computed once: a query looks at
     * up to every live slot of the territory and its neighbours, and a site
     * has many (NULL when there is no radius or no memory: computed each
     * time). */
    double *site_km = centre && radius > 0 ? site_memo(d) : NULL;
    bool with_list = c->role == ROLE_SAS || c->role == ROLE_DESK;
    struct dispatch_answer answer = {
        .kind = ANSWER_CAPACITY,
        .capacity = {
            .territory = t, .horizon = a->horizon, .from = now, .to = end, .listed = with_list}};
    /* The slots counted, by mode and by the audiences they are open to:
     * one add a slot, the totals come from it after the walk.  Four
     * copies, the slot's index picking one: consecutive slots mostly land
     * in the same cell, and each add would otherwise wait for the last. */
    int counted[4][MODE_ALL + 1][AUD_ALL + 1] = {{{0}}};
    bool by_radius = centre && radius > 0;
    size_t nlisted = 0;
    /* Listed at most (the declaration's max_array_items); beyond, the
     * answer says `truncated`. */
    size_t list_max = snp_proto_limits()->max_array_items;
    bool out_of_memory = false;
    /* The slots of the territory and of each neighbour, in one walk by
     * start (each territory's are sorted by start, then id): only those
     * between now and the horizon's end are looked at, and the list is by
     * start whichever territory a slot is in. */
    size_t nruns = 1 + t->nneighbours;
    size_t next_on_stack[16];
    size_t *next = nruns <= 16 ? next_on_stack : calloc(nruns, sizeof(*next));
    if (!next) {
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
        /* Read from the territory's briefs (store.h), in sequence: a slot
         * itself only when it counts and is listed, or its site's distance
         * is not yet known. */
        const struct territory *from = taken == 0 ? t : t->neighbours[taken - 1];
        const struct slot_brief *briefs = from->briefs;
        size_t k = next[taken];
        for (; k < from->nslots; k++) {
            const struct slot_brief *b = &briefs[k];
            assert(b->start == from->slots[k]->start && b->status == from->slots[k]->status);
            if (b->start >= end ||
                (second && b->start >= second->start && !slot_before(from->slots[k], second)))
                break;
            if (b->status != SLOT_FREE || !(b->mode & modes))
                continue;
            /* Within the radius: added as 0 or 1 rather than branched on,
             * the sites of a window coming in no order. */
            bool near = true;
            if (by_radius && b->mode != MODE_TELECONSULTATION) {
                double km = site_km ? site_km[b->site_index] : -1;
                if (km < 0)
                    km = site_distance_km(site_km, centre, b->site_index, from, k);
                near = km <= radius;
            }
            /* Open to an audience as matching sees it: named for it,
             * published for the public (any requester), or released. */
            uint8_t open = match_audiences(b->audience, b->release_minutes, b->start, now);
            counted[k & 3][b->mode & MODE_ALL][open & AUD_ALL] += near;
            if (with_list && near && nlisted < list_max && !out_of_memory) {
                if (list_slot(d, nlisted, from->slots[k]))
                    nlisted++;
                else
                    out_of_memory = true; /* the list stops here */
            }
        }
        next[taken] = k;
    }
    if (next != next_on_stack)
        free(next);
    int *by_mode = answer.capacity.by_mode, *by_aud = answer.capacity.by_audience;
    for (int mode = 0; mode <= MODE_ALL; mode++) {
        for (int open = 0; open <= AUD_ALL; open++) {
            int n = counted[0][mode][open] + counted[1][mode][open] + counted[2][mode][open] +
                    counted[3][mode][open];
            answer.capacity.total += n;
            for (int bit = 0; bit < 3; bit++)
                by_mode[bit] += n * ((mode >> bit) & 1);
            for (int bit = 0; bit < 6; bit++)
                by_aud[bit] += n * ((open >> bit) & 1);
        }
    }
    answer.capacity.slots = d->listed;
    answer.capacity.nslots = nlisted;
    answer.capacity.truncated =
        with_list && (out_of_memory || (size_t)answer.capacity.total > nlisted);
    cb(arg, SNP_PROTO_OK, NULL, NULL, &answer);
}
