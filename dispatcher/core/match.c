#include "dispatcher/core/match.h"

#include <string.h>

bool match_slot_open_to(const struct slot *s, uint8_t kind, int64_t now)
{
    /* kind 0 asks whether the slot is open to everyone (fhir.c). */
    return (match_slot_audiences(s, now) & (kind | AUD_PUBLIC)) != 0;
}

static bool declined(const struct request *r, int64_t slot_id)
{
    for (size_t i = 0; i < r->ndeclined; i++) {
        if (r->declined[i] == slot_id)
            return true;
    }
    return false;
}

/* The distance from (r->lat, r->lon) to `site`, through `ctx`'s memo when
 * it has one that covers the site. */
static double site_distance(const struct request *r, const struct site *site,
                            const struct match_context *ctx)
{
    double *memo =
        ctx && ctx->site_km && site->index < ctx->nsite_km ? &ctx->site_km[site->index] : NULL;
    if (memo && *memo >= 0)
        return *memo;
    double d = model_distance_km(r->lat, r->lon, site->lat, site->lon);
    if (memo)
        *memo = d;
    return d;
}

/* match_eligible, with `ctx`'s distance memo (ctx may be NULL). */
static bool eligible(const struct request *r, const struct slot *s, int64_t now,
                     const struct match_context *ctx, double *distance_km)
{
    double d = 0.0;

    /* Cheapest tests first: this runs for every slot of every ranking. */
    if (s->status != SLOT_FREE)
        return false;
    if (s->start <= now + MATCH_MIN_LEAD_S)
        return false;
    if (s->start > r->deadline)
        return false;
    if ((s->mode & r->modes) == 0)
        return false;
    if (!match_slot_open_to(s, r->kind, now))
        return false;
    if (s->motifs != 0) {
        unsigned m = (unsigned)r->motif;
        if (m >= MOTIF_COUNT || (s->motifs & (1u << m)) == 0)
            return false;
    }
    if (s->min_age >= 0 && r->age < s->min_age)
        return false;
    if (s->max_age >= 0 && r->age > s->max_age)
        return false;
    if (declined(r, s->id))
        return false;
    if (s->mode != MODE_TELECONSULTATION) {
        if (s->site == NULL)
            return false;
        d = site_distance(r, s->site, ctx);
        if (r->max_distance_km > 0 && d > r->max_distance_km)
            return false;
    }
    if (distance_km != NULL)
        *distance_km = d;
    return true;
}

bool match_eligible(const struct request *r, const struct slot *s, int64_t now, double *distance_km)
{
    return eligible(r, s, now, NULL, distance_km);
}

/* The practitioner's booked/published, or -1 when the fairness term does not apply. */
static double booked_ratio(const struct practitioner *p)
{
    if (p == NULL || p->published == 0)
        return -1.0;
    return (double)p->booked / (double)p->published;
}

static bool own_mt(const struct request *r, const struct slot *s)
{
    return r->mt_rpps[0] != '\0' && s->practitioner != NULL &&
           strncmp(r->mt_rpps, s->practitioner->rpps, sizeof(r->mt_rpps)) == 0;
}

/* How many requests of ctx->waiting other than `r` could use `s`. */
static size_t competitors(const struct request *r, const struct slot *s,
                          const struct match_context *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < ctx->nwaiting; i++) {
        const struct request *w = ctx->waiting[i];
        if (w->id != r->id && match_eligible(w, s, ctx->now, NULL))
            n++;
    }
    return n;
}

double match_score(const struct request *r, const struct slot *s, double distance_km,
                   const struct match_context *ctx)
{
    const struct weights *w = &ctx->weights;
    double score = 0.0;

    score += w->start_per_hour * ((double)(s->start - ctx->now) / 3600.0);
    score += w->distance_per_km * distance_km;
    if (own_mt(r, s))
        score -= w->own_mt_bonus;
    double ratio = booked_ratio(s->practitioner);
    if (ratio >= 0)
        score += w->fairness * (ratio - ctx->mean_booked_ratio);
    /* Skip the O(nwaiting) count when it cannot change anything. */
    if (w->scarcity != 0.0)
        score += w->scarcity * (double)competitors(r, s, ctx);
    return score;
}

/* Returns true when candidate `a` ranks strictly before `b`. */
static bool better(const struct match_candidate *a, const struct match_candidate *b)
{
    if (a->score != b->score)
        return a->score < b->score;
    if (a->slot->start != b->slot->start)
        return a->slot->start < b->slot->start;
    return a->slot->id < b->slot->id;
}

/* Inserts `c` into `out` (`*n` candidates, sorted, at most `max`) if it
 * ranks among the best `max`. */
static void insert_candidate(struct match_candidate *out, size_t *n, size_t max,
                             const struct match_candidate *c)
{
    if (*n == max && !better(c, &out[*n - 1]))
        return;
    size_t pos = *n < max ? *n : max - 1;
    while (pos > 0 && better(c, &out[pos - 1]))
        pos--;
    size_t last = *n < max ? *n : max - 1;
    memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof(out[0]));
    out[pos] = *c;
    if (*n < max)
        (*n)++;
}

size_t match_rank(const struct request *r, struct slot *const *slots, size_t nslots,
                  const struct match_context *ctx, struct match_candidate *out, size_t max)
{
    size_t n = 0;

    if (max == 0)
        return 0;
    for (size_t i = 0; i < nslots; i++) {
        struct match_candidate c = {.slot = slots[i]};
        if (!eligible(r, c.slot, ctx->now, ctx, &c.distance_km))
            continue;
        c.score = match_score(r, c.slot, c.distance_km, ctx);
        insert_candidate(out, &n, max, &c);
    }
    return n;
}

/* The lowest score a slot starting at `start` may have for `r`: distance
 * and scarcity only add; the médecin traitant bonus takes off at most
 * own_mt_bonus, and only for a patient who has one (own_mt); the fairness
 * term at most fairness x the mean ratio (a practitioner's booked/published
 * is never negative).  Without the bonus to allow for, a ranking stops
 * own_mt_bonus hours (4 by default) of slots sooner. */
static double score_floor(const struct request *r, int64_t start, const struct match_context *ctx)
{
    const struct weights *w = &ctx->weights;
    double bonus = r->mt_rpps[0] != '\0' ? w->own_mt_bonus : 0.0;
    return w->start_per_hour * ((double)(start - ctx->now) / 3600.0) - bonus -
           w->fairness * ctx->mean_booked_ratio;
}

void match_rank_sorted(const struct request *r, struct slot *const *slots,
                       const struct slot_brief *briefs, size_t nslots,
                       const struct match_context *ctx, struct match_candidate *out, size_t *n,
                       size_t max)
{
    if (max == 0)
        return;
    for (size_t i = model_slots_after(slots, nslots, ctx->now + MATCH_MIN_LEAD_S); i < nslots;
         i++) {
        /* The brief first: the slots taken (booked, held), of another
         * mode, or not open to this requester are passed over without
         * reading the slot itself, which costs a cache miss each where
         * they have piled up (the slots others took, those others may
         * use).  eligible() then checks again. */
        const struct slot_brief *b = &briefs[i];
        if (b->start > r->deadline)
            break;
        if (*n == max && score_floor(r, b->start, ctx) > out[*n - 1].score)
            break;
        if (b->status != SLOT_FREE || (b->mode & r->modes) == 0 ||
            (match_audiences(b->audience, b->release_minutes, b->start, ctx->now) &
             (r->kind | AUD_PUBLIC)) == 0)
            continue;
        struct match_candidate c = {.slot = slots[i]};
        if (c.slot->pending || !eligible(r, c.slot, ctx->now, ctx, &c.distance_km))
            continue;
        c.score = match_score(r, c.slot, c.distance_km, ctx);
        insert_candidate(out, n, max, &c);
    }
}

/* Returns true when waiting request `a` should be served before `b`. */
static bool served_before(const struct request *a, const struct request *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    if (a->urgency != b->urgency)
        return a->urgency < b->urgency; /* same_day < 24h < 48h in the enum */
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at;
    return a->id < b->id;
}

struct request *match_pick_request(const struct slot *s, struct request *const *waiting, size_t n,
                                   int64_t now)
{
    struct request *best = NULL;

    for (size_t i = 0; i < n; i++) {
        struct request *r = waiting[i];
        if (r->status != REQ_WAITING || r->pending || !match_eligible(r, s, now, NULL))
            continue;
        if (best == NULL || served_before(r, best))
            best = r;
    }
    return best;
}

double match_mean_booked_ratio(struct practitioner *const *ps, size_t n)
{
    double sum = 0.0;
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if (ps[i]->published == 0)
            continue;
        sum += (double)ps[i]->booked / (double)ps[i]->published;
        count++;
    }
    return count == 0 ? 0.0 : sum / (double)count;
}
