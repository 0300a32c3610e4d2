/* What the files of the dispatch core share, and nothing else includes:
 * dispatch.c (errors, operation contexts, parked calls, lifecycle, the
 * routing of announcements), dispatch_slots.c (slot.publish,
 * slot.withdraw), dispatch_requests.c (request.create, offer.accept,
 * offer.decline, request.cancel), dispatch_bookings.c (booking.cancel,
 * outcome.report), dispatch_offers.c (ranking, holds, the matching pass,
 * offer moves), dispatch_reread.c (rows read again after an answer),
 * dispatch_push.c (pushes), dispatch_answers.c (typed answers and offers),
 * dispatch_reads.c (slot.list and capacity.query, from memory),
 * dispatch_housekeeping.c (expiry and the periodic timer) and
 * dispatch_sync.c (changes made by other snpd processes).
 *
 * The handlers of one file never call another's: what they share is the
 * steps declared here.  These functions were file-local to dispatch.c
 * before it was split; each keeps its contract, and none is meant for
 * another module (use dispatch.h). */
#ifndef SNP_DISPATCH_INTERNAL_H
#define SNP_DISPATCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/idmap.h"
#include "dispatcher/db/db.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/match.h"
#include "dispatcher/core/payload.h"
#include "dispatcher/core/store.h"
#include "sql_queries.h"

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
    int64_t *slot_ids; /* slot.withdraw's slots (owned) */
    size_t nslot_ids;
    struct request *req;
    struct slot *slot;
    struct slot *release; /* the held slot an offer move releases */
    int64_t ids[2];
    int attempts;
    int count;
    bool retry_later; /* the database failed: look at its objects again later */
    bool repeat;      /* answers a repeated call (struct dispatch_answer) */
    char reason[40];
    char why[DISPATCH_ENUM_LEN]; /* offer.decline: the requester's reason, or "" */
    void *carry;                 /* an internal operation's own state, freed by its callback */
    /* request.create ranks once: the slot to hold and the alternatives. */
    int64_t alternatives[MAX_CANDIDATES];
    int nalternatives;
};

/* A new operation for caller `c` (NULL: the system), answered through `cb`
 * (may be NULL); counted in flight until op_finish.  NULL when out of
 * memory, after answering `cb`. */
struct op *op_new(struct dispatch *d, const struct caller *c, dispatch_cb cb, void *arg);

/* Makes `r` the operation's request (NULL: none): takes a reference on `r`
 * and drops the one on the request it replaces. */
void op_set_request(struct op *o, struct request *r);

/* Makes `s` the operation's slot (NULL: none), with references as
 * op_set_request. */
void op_set_slot(struct op *o, struct slot *s);

/* Makes `s` the slot the operation's offer move releases (NULL: none), with
 * references as op_set_request. */
void op_set_release(struct op *o, struct slot *s);

/* Answers the operation (`answer` on success, borrowed; its `repeat` is
 * set from the operation's), queues what it touched for the matching pass,
 * drops its references and frees it. */
void op_finish(struct op *o, enum snp_proto_code err, const char *message, const char *field,
               const struct dispatch_answer *answer);

/* op_finish with error `err` and no result. */
void op_fail(struct op *o, enum snp_proto_code err, const char *message, const char *field);

/* Fails the operation with the error of database call `st`/`res` (logged,
 * not shown, when internal); looks at its objects again later when the
 * database failed. */
void op_fail_db(struct op *o, enum db_status st, const PGresult *res);

/* Answers an operation whose database call came back after dispatch_close
 * and returns true; false otherwise. */
bool op_closed(struct op *o);

/* The usual start of a database callback: answers and returns true when
 * snpd is closing or the call failed. */
bool op_settled_early(struct op *o, enum db_status st, const PGresult *res);

/* op_settled_early for a callback that reads its result by name: also
 * writes into `cols` the columns named by the `n` entries of `names`
 * (db_cols_resolve), and answers internal (logged) and returns true when
 * the answer of `query` lacks one. */
bool op_settled_early_cols(struct op *o, enum db_status st, const PGresult *res, enum sql_id query,
                           const char *const *names, size_t n, int *cols);

/* Answers internal for a result that lacked a column its reader names
 * (logged by db_cols_resolve); what the operation touched is looked at
 * again later. */
void op_fail_cols(struct op *o);

/* --- dispatch.c: calls that wait, answers read back --- */

/* The arguments of the operations that may park (dispatch.h), kept by
 * value while they wait. */
union parked_args {
    struct dispatch_offer_args offer;
    struct dispatch_cancel_args cancel;
};

/* An operation of dispatch.h, run again when a parked call resumes, with
 * the arguments it was parked with (the handler's own struct). */
typedef void (*dispatch_call_fn)(struct dispatch *d, const struct caller *c, const void *args,
                                 dispatch_cb cb, void *arg);

/* Parks call `run` until request `r` has no update in flight, then runs it
 * as if it had just arrived (answered "unavailable" at close); `args`, of
 * `size` bytes (at most a union parked_args), are copied. */
void park_call(struct dispatch *d, const struct request *r, dispatch_call_fn run,
               const struct caller *c, const void *args, size_t size, dispatch_cb cb, void *arg);

/* Finishes `o` with request `request_id` as the database shows it to the
 * caller (an audited read, as request.get). */
void answer_request_view(struct op *o, int64_t request_id);

/* Finishes `o` with booking `booking_id` of the caller's organisation as the
 * database shows it. */
void answer_booking_view(struct op *o, int64_t booking_id);

/* --- dispatch_push.c --- */

/* Hands push `p` for `to` to the push hook. */
void push(struct dispatch *d, const struct push_target *to, const struct dispatch_push *p);

/* Tells capacity watchers of the slot's territory what became of it. */
void push_capacity(struct dispatch *d, const struct slot *s);

/* Tells the practitioner `rpps` (NULL: none), the reception of site
 * `site_id` and the requester that a booking was cancelled (`stored`: the
 * booking as the database shows it, JSON text). */
void push_booking_cancelled(struct dispatch *d, const char *territory, const char *stored,
                            const char *rpps, int64_t site_id, int64_t organisation_id);

/* Pushes `event` (booking.created or booking.cancelled) of booking
 * `booking_id`, read from the database first, to its practitioner, its
 * site's reception and (cancelled) requester `organisation_id`; a
 * hand-over (`handed_over`) goes as booking.created to the practitioner on
 * duty only, and as booking.handed_over to `previous` (NULL: nobody). */
void push_booking_from_db(struct dispatch *d, int64_t booking_id, const char *territory,
                          int64_t organisation_id, enum snp_push event, bool handed_over,
                          const char *previous);

/* The requests topic's pushes of slot `id`'s announcement `j` (offer.made,
 * offer.expired). */
void push_slot_change(struct dispatch *d, int64_t id, const struct payload *j);

/* request.updated, from request `id`'s announcement `j`. */
void push_request_change(struct dispatch *d, int64_t id, const struct payload *j);

/* Whether booking announcement `j` is its hand-over to the practitioner on
 * duty of a CSNP shift. */
bool handed_over(const struct payload *j);

/* The bookings and outcomes pushes of booking `id`'s announcement `j`, made
 * by another process (or a hand-over by any). */
void push_foreign_booking(struct dispatch *d, int64_t id, const struct payload *j);

/* --- dispatch_offers.c: ranking --- */

/* A table of one distance per site (site index), all negative (not
 * computed), owned by `d` and reused by the next call: for one ranking or
 * one capacity query.  NULL when out of memory or there is no site. */
double *site_memo(struct dispatch *d);

/* Ranks the slots `r` may be offered now into `out` (at most `max`, best
 * first) and returns how many. */
size_t rank_for(struct dispatch *d, const struct request *r, struct match_candidate *out,
                size_t max);

/* --- dispatch_offers.c: holds in memory --- */

/* Makes slot `s` free in memory, telling capacity watchers if it was not. */
void slot_set_free(struct dispatch *d, struct slot *s);

/* Makes request `r` hold slot `s` until `expires` (memory only), and tells
 * capacity watchers when the slot was not already held for `r`: every
 * change of a slot's status in memory is pushed once. */
void request_set_offer(struct dispatch *d, struct request *r, struct slot *s, int64_t expires);

/* Makes `r` wait again, holding no slot (memory only: the slot is left as
 * it is). */
void request_clear_offer(struct request *r);

/* A slot released by the database: expired if its start passed, otherwise
 * free again and queued for the matching pass. */
void slot_released(struct dispatch *d, struct slot *s);

/* Keeps this process from offering slot `id` to `r` again. */
void request_refuse_locally(struct request *r, int64_t id);

/* Applies a cancellation's freed slot to memory (`held_for`: the request it
 * was held for, 0 when booked); reads it again if memory disagrees. */
void apply_freed(struct dispatch *d, int64_t freed_slot, int64_t held_for);

/* --- dispatch_offers.c: the matching pass and offer moves --- */

/* Queues free slot `s` for the next matching pass (nothing if it is gone,
 * queued already, or not free). */
void want_slot(struct dispatch *d, struct slot *s);

/* Queues waiting request `r` for the next matching pass (as want_slot). */
void want_request(struct dispatch *d, struct request *r);

/* Queues `r` and `s` (each may be NULL) for the next timer tick, after a
 * failed database call. */
void want_later(struct dispatch *d, struct request *r, struct slot *s);

/* Frees queue `q`'s ids and empties it. */
void id_queue_free(struct id_queue *q);

/* The matching pass, before the loop polls (d->matcher). */
void on_before_poll(uv_prepare_t *h);

/* Queues again what failed operations touched (from the timer). */
void retry_queued(struct dispatch *d);

/* Picks the best candidate for o->req (none: NULL) and sends the offer move
 * releasing o->release; the move's answer finishes `o`. */
void offer_move_next(struct op *o);

/* --- dispatch_reread.c --- */

/* Reads slot `s` again from the database; pending until then. */
void reread_slot(struct dispatch *d, struct slot *s);

/* Makes `r` hold `s` by a database answer's word, reading again `s` and the
 * request memory said held it when memory disagreed. */
void request_take_answered(struct dispatch *d, struct request *r, struct slot *s, int64_t expires);

/* Brings `r`'s offer to what `fresh` (just read from the database) says. */
void request_apply_fresh(struct dispatch *d, struct request *r, const struct request *fresh);

/* After an operation: reads again what another process changed while it
 * was pending (r or s may be NULL). */
void refresh_stale(struct dispatch *d, struct request *r, struct slot *s);

/* --- dispatch_requests.c --- */

/* Whether commune `c` is one of `t`'s or of a territory it borrows from. */
bool territory_has_commune(const struct territory *t, const struct commune *c);

/* --- dispatch_answers.c --- */

/* Fills `out` with the offer of slot `held` until `expires` to request `r`
 * (NULL: not in memory, then without alternatives): as alternatives the
 * slots of `ids` still free (ranked already), or a fresh ranking when `ids`
 * is NULL. */
void offer_fill(struct dispatch *d, const struct request *r, const struct slot *held,
                int64_t expires, const int64_t *ids, int nids, struct dispatch_offer *out);

/* Finishes `o` with request `r` as memory holds it (ANSWER_REQUEST); its
 * offer's alternatives are the slots of `ids` still free (ranked already),
 * or ranked afresh when `ids` is NULL. */
void finish_with_request(struct op *o, const struct request *r, const int64_t *ids, int nids);

/* --- dispatch_housekeeping.c --- */

/* The dispatch core's periodic timer (d->timer), started once the store is
 * ready. */
void on_timer(uv_timer_t *t);

/* --- dispatch_sync.c --- */

/* Starts a catch-up with the database (the reference data, the live slots,
 * the open requests): when the listening connection comes back, after a
 * load that heard too much, and from the timer when one is due. */
void catch_up(struct dispatch *d);

/* Reads slot `id`, which memory does not hold, and takes it in if it is
 * live and still missing when the answer comes (when a read of it is in
 * flight already, that read starts again once it ends). */
void read_unknown_slot(struct dispatch *d, int64_t id);

/* Notes a change to object `id` while memory does not hold it: a read of it
 * in flight (in `reads`: d->slot_reads or d->request_reads) starts again. */
void unknown_changed(struct idmap *reads, int64_t id);

/* Reads one row by id with `query` for an internal operation (no caller to
 * answer); `cb` gets the struct op, whose ids[0] is `id`, and finishes it. */
void fetch_by_id(struct dispatch *d, enum sql_id query, int64_t id, db_result_cb cb);

/* Brings slot `s` to the state the database announced or returned.  `own`:
 * announced for a commit of this process, whose answer reaches the requests
 * it concerns. */
void apply_slot_state(struct dispatch *d, struct slot *s, enum slot_status ns, int64_t held_for,
                      int64_t hold_expires, bool released, bool own);

/* A slot's change, announced on snp_change (own: by this process). */
void announced_slot(struct dispatch *d, int64_t id, const char *status, int64_t held_for,
                    int64_t hold_expires, bool released, bool own);

/* A request's change, announced on snp_change: as announced_slot. */
void announced_request(struct dispatch *d, int64_t id, const char *status, bool own);

/* Slot `id` handed to practitioner `rpps` (NULL: taken back), announced on
 * snp_change. */
void announced_practitioner(struct dispatch *d, int64_t id, const char *rpps);

/* Keeps an announcement heard before the store is ready, to apply it once
 * it is (past a limit: drops them all and catches up instead). */
void keep_heard(struct dispatch *d, const char *payload, int be_pid);

/* Applies, in order, the announcements kept during the load, then a
 * catch-up if one became due; the store is ready. */
void apply_heard(struct dispatch *d);

/* Drops the announcements kept during the load. */
void free_heard(struct dispatch *d);

#endif
