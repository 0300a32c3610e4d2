/* What the files of the dispatch core share, and nothing else includes:
 * dispatch.c (operations, errors, matching, offers, the state-changing
 * handlers, lifecycle, pushes), dispatch_views.c (JSON views),
 * dispatch_reads.c (slot.list and capacity.query, from memory),
 * dispatch_housekeeping.c (expiry and the periodic timer) and
 * dispatch_sync.c (changes made by other snpd processes).
 *
 * These functions were file-local to dispatch.c before it was split; each
 * keeps its contract, and none is meant for another module (use
 * dispatch.h). */
#ifndef SNP_DISPATCH_INTERNAL_H
#define SNP_DISPATCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "dispatcher/dispatch.h"
#include "dispatcher/store.h"

#define MAX_CANDIDATES 11 /* the offer and up to 10 alternatives */

/* --- dispatch.c: operation contexts --- */

/* One operation in flight: who asked, whom to answer, and what it needs
 * between its database round trips.  It holds a reference on each slot and
 * request it points to (store.h, "Lifetime"), dropped in op_finish. */
struct op {
    struct dispatch *d;
    struct caller caller;
    dispatch_cb cb;
    void *arg;
    json_t *data; /* the request (a reference we hold) */
    struct request *req;
    struct slot *slot;
    struct slot *release; /* the held slot an offer move releases */
    int64_t ids[2];
    int attempts;
    int count;
    bool retry_later; /* the database failed: look at its objects again later */
    bool repeat;      /* answers a repeated call (DISPATCH_REPEAT) */
    char reason[40];
    json_t *result;
    /* request.create ranks once: the slot to hold and the alternatives. */
    int64_t alternatives[MAX_CANDIDATES];
    int nalternatives;
};

/* A new operation for caller `c` (NULL: the system), answered through `cb`
 * (may be NULL); counted in flight until op_finish.  NULL when out of
 * memory, after answering `cb`. */
struct op *op_new(struct dispatch *d, const struct caller *c, json_t *data, dispatch_cb cb,
                  void *arg);

/* Makes `r` the operation's request (NULL: none): takes a reference on `r`
 * and drops the one on the request it replaces. */
void op_set_request(struct op *o, struct request *r);

/* Makes `s` the slot the operation's offer move releases (NULL: none), with
 * references as op_set_request. */
void op_set_release(struct op *o, struct slot *s);

/* Answers the operation (takes `result`), queues what it touched for the
 * matching pass, drops its references and frees it. */
void op_finish(struct op *o, enum dispatch_error err, const char *message, const char *field,
               json_t *result);

/* --- dispatch.c: pushes and memory --- */

/* Tells capacity watchers of the slot's territory what became of it. */
void push_capacity(struct dispatch *d, const struct slot *s);

/* Makes `r` wait again, holding no slot (memory only: the slot is left as
 * it is). */
void request_clear_offer(struct request *r);

/* A slot released by the database: expired if its start passed, otherwise
 * free again and queued for the matching pass. */
void slot_released(struct dispatch *d, struct slot *s);

/* --- dispatch.c: the matching pass and offer moves --- */

/* Queues free slot `s` for the next matching pass (nothing if it is gone,
 * queued already, or not free). */
void want_slot(struct dispatch *d, struct slot *s);

/* Queues waiting request `r` for the next matching pass (as want_slot). */
void want_request(struct dispatch *d, struct request *r);

/* Queues again what failed operations touched (from the timer). */
void retry_queued(struct dispatch *d);

/* Picks the best candidate for o->req (none: NULL) and sends the offer move
 * releasing o->release; the move's answer finishes `o`. */
void offer_move_next(struct op *o);

/* --- dispatch_housekeeping.c --- */

/* The dispatch core's periodic timer (d->timer), started once the store is
 * ready. */
void on_timer(uv_timer_t *t);

/* --- dispatch.c, to move to dispatch_sync.c --- */

/* Starts a catch-up with the database after the listening connection came
 * back: the reference data, the live slots, the open requests. */
void catch_up(struct dispatch *d);

/* --- dispatch_views.c --- */

/* An instant as RFC 3339 in territory `t`'s zone (JSON null if it cannot be
 * shown); a new reference. */
json_t *time_json(const struct territory *t, int64_t utc);

/* The names, by `name`, of the bits set in `bits`, as a new array. */
json_t *bits_json(uint8_t bits, const char *(*name)(uint8_t));

/* --- dispatch.c: matching --- */

/* A table of one distance per site (site index), all negative (not
 * computed), owned by `d` and reused by the next call: for one ranking or
 * one capacity query.  NULL when out of memory or there is no site. */
double *site_memo(struct dispatch *d);

/* --- dispatch.c: requests --- */

/* Whether commune `c` is one of `t`'s or of a territory it borrows from. */
bool territory_has_commune(const struct territory *t, const struct commune *c);

#endif
