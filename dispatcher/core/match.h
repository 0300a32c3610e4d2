/*
 * Matching: which slots a request may use, how they rank, and which waiting
 * request gets a slot that just became free.
 *
 * Everything here is a pure function of the in-memory model (model.h): it
 * reads its arguments, allocates nothing, does no I/O, keeps no state and
 * never changes a slot or a request.  Instants are int64_t seconds since the
 * epoch (UTC); the caller passes `now`, so results are reproducible.
 *
 * Ranking has two stages.
 *
 * 1. Hard filters (match_eligible()): a slot that fails one is never offered.
 *    The slot is free; it starts more than MATCH_MIN_LEAD_S after now and no
 *    later than the request's deadline; its mode is one the request accepts;
 *    it is open to the requester's kind (its audience, or its release rule);
 *    its motif and age restrictions admit the patient; the request has not
 *    declined it; and, unless it is a teleconsultation, its site lies within
 *    the request's maximum distance of the patient's commune.
 *
 * 2. A score (match_score()), lower is better, the sum of five terms whose
 *    weights are a territory setting (struct weights, defaults from
 *    model_weights_default()):
 *
 *      start_per_hour  (default 1.0)  x hours from now to the slot's start.
 *                      Sooner is better.
 *      distance_per_km (default 0.1)  x kilometres from the patient's commune
 *                      centroid to the site (0 for a teleconsultation).  With
 *                      the defaults, 10 km weigh as much as one hour.
 *      own_mt_bonus    (default 4.0)  subtracted when the slot's practitioner
 *                      is the patient's médecin traitant: their own GP wins
 *                      over any slot up to 4 hours earlier.
 *      fairness        (default 2.0)  x (the practitioner's booked/published
 *                      - the territory mean of that ratio).  Spreads bookings
 *                      over volunteering GPs relative to what each offered; 0
 *                      for a slot without practitioner (a CSNP shift) or one
 *                      whose practitioner published nothing.
 *      scarcity        (default 0.5)  x the number of other waiting requests
 *                      for which the slot is eligible.  Keeps the slots that
 *                      many could use for them, and gives this request the
 *                      ones only it can use.
 *
 *    Equal scores are ordered by earlier start, then lower slot id, so that
 *    the ranking is deterministic.
 */
#ifndef SNP_MATCH_H
#define SNP_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatcher/core/model.h"

#define MATCH_MUST_CHECK __attribute__((warn_unused_result))

/*
 * Minimum lead time, in seconds: a slot is offered only if it starts more
 * than this after now, so that the patient has time to get there (or to be
 * called back, for a teleconsultation).  A slot starting exactly 5 minutes
 * from now is no longer offered.
 */
#define MATCH_MIN_LEAD_S 300

/* One ranked slot. */
struct match_candidate {
    struct slot *slot;
    double score;       /* match_score(); lower is better */
    double distance_km; /* patient's commune to the site; 0 for a teleconsultation */
};

/*
 * Returns true when slot `s` may be offered to a requester of kind `kind`
 * (one AUD_ bit) at instant `now`: its audience contains `kind` or AUD_PUBLIC,
 * or its release rule applies (release_minutes > 0 and now is at least
 * release_minutes before its start), which opens it to every kind.  With
 * `kind` 0: whether it is open to every kind (published for the public, or
 * released).  The slot's status is not looked at.
 */
MATCH_MUST_CHECK bool match_slot_open_to(const struct slot *s, uint8_t kind, int64_t now);

/* The AUD_ bits of every audience a slot is open to at `now`, by the rule
 * of match_slot_open_to: all of them (AUD_ALL) once it is released or when
 * it was published for the public, else those it was published for.  Of
 * the slot's fields (capacity.query reads them from its brief, store.h).
 * Inline: capacity.query asks it of every slot in its window. */
static inline uint8_t match_audiences(uint8_t audience, int release_minutes, int64_t start,
                                      int64_t now)
{
    bool released = release_minutes > 0 && now >= start - (int64_t)release_minutes * 60;
    return released || (audience & AUD_PUBLIC) ? (uint8_t)AUD_ALL : audience;
}

/* The same, of slot `s`. */
static inline uint8_t match_slot_audiences(const struct slot *s, int64_t now)
{
    return match_audiences(s->audience, s->release_minutes, s->start, now);
}

/*
 * Returns true when slot `s` passes every hard filter for request `r` at
 * instant `now` (see the list at the top of this file):
 *   - s->status is SLOT_FREE;
 *   - s->start > now + MATCH_MIN_LEAD_S;
 *   - s->start <= r->deadline;
 *   - s->mode is one of r->modes;
 *   - match_slot_open_to(s, r->kind, now);
 *   - s->motifs is 0 or contains the bit of r->motif;
 *   - r->age >= s->min_age and r->age <= s->max_age (a bound of -1 is none);
 *   - s->id is not in r->declined;
 *   - for a slot whose mode is not MODE_TELECONSULTATION: it has a site, and
 *     when r->max_distance_km > 0 the distance from (r->lat, r->lon) to the
 *     site is at most r->max_distance_km.  Home visits are measured from the
 *     site as well: the doctor travels from there.
 * The request's own status is not looked at.  When the result is true and
 * `distance_km` is not NULL, *distance_km receives the distance in
 * kilometres (0 for a teleconsultation); otherwise it is left unchanged.
 */
MATCH_MUST_CHECK bool match_eligible(const struct request *r, const struct slot *s, int64_t now,
                                     double *distance_km);

/*
 * Returns the score of slot `s` for request `r`, lower is better: the sum of
 * the five weighted terms described at the top of this file, with the
 * weights, instant and territory figures of `ctx`.  `distance_km` is the
 * distance match_eligible() reported.  The scarcity term counts the requests
 * of ctx->waiting, other than `r` (compared by id), for which `s` is eligible
 * at ctx->now; the caller puts only waiting requests there.  The result is
 * meaningful only for an eligible slot.
 */
double match_score(const struct request *r, const struct slot *s, double distance_km,
                   const struct match_context *ctx);

/*
 * Ranks the `nslots` slots of `slots` for request `r` at ctx->now: writes
 * the best `max` eligible ones to `out`, best first (lower score, then
 * earlier start, then lower id), and returns how many were written (at most
 * `max`, 0 when none is eligible).  `out` must have room for `max` entries;
 * it may be NULL when `max` is 0.  The candidates point into `slots`, which
 * keep belonging to the caller.  The cost is O(nslots x (max + nwaiting)).
 * When ctx->site_km is given, the distances computed are kept there (one
 * per site) and reused; it must hold distances from (r->lat, r->lon) only.
 */
size_t match_rank(const struct request *r, struct slot *const *slots, size_t nslots,
                  const struct match_context *ctx, struct match_candidate *out, size_t max);

/*
 * The same for slots sorted by start (a territory's live slots and their
 * briefs, store.h: briefs[i] is slots[i]'s and tells the status, mode,
 * audiences and start without reading the slot), merged into the `*n`
 * candidates already in `out` (sorted, at most `max`), so that a territory and
 * its neighbours are ranked run after run.  Slots with a change on its way to
 * the database (pending) are skipped.  Only the slots that can still rank are
 * looked at: those that start after ctx->now + MATCH_MIN_LEAD_S, not after the
 * deadline, and before the start from which no score can beat the worst
 * candidate kept (the start term grows with the start; the other terms are
 * bounded below).
 */
void match_rank_sorted(const struct request *r, struct slot *const *slots,
                       const struct slot_brief *briefs, size_t nslots,
                       const struct match_context *ctx, struct match_candidate *out, size_t *n,
                       size_t max);

/*
 * Returns the request of `waiting` that gets slot `s` first, now that it is
 * free (s->status must already be SLOT_FREE): among the `n` requests whose
 * status is REQ_WAITING, that have no change on its way to the database
 * (pending), and for which `s` is eligible at `now`, the one with
 * the earliest deadline; ties go to the more urgent (same day before 24 h
 * before 48 h), then to the earlier created_at, then to the lower id.
 * Returns NULL when no request qualifies.  The result points into `waiting`.
 */
struct request *match_pick_request(const struct slot *s, struct request *const *waiting, size_t n,
                                   int64_t now);

/*
 * Returns the mean of booked/published over the `n` practitioners of `ps`
 * that published at least one slot, or 0 when none did.  This is the
 * mean_booked_ratio of struct match_context.
 */
double match_mean_booked_ratio(struct practitioner *const *ps, size_t n);

#endif
