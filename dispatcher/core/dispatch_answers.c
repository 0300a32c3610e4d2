/* The typed answers of the dispatch core (dispatch.h, struct
 * dispatch_answer): a request as memory holds it and its offer, with the
 * alternatives the requester may take instead.  The edge writes them as
 * the protocol's JSON (dispatcher/commands/views.c).
 *
 * Reads the store and changes nothing in it: an offer's alternatives are
 * ranked afresh (rank_for), which writes only the ranking's scratch tables.
 * No database, no pushes.  Shared with the other dispatch_*.c files through
 * dispatch_internal.h. */
#include <stdint.h>

#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/match.h"

_Static_assert(MAX_CANDIDATES == DISPATCH_MAX_ALTERNATIVES + 1,
               "a ranking holds the offer and every alternative it may show");

void offer_fill(struct dispatch *d, const struct request *r, const struct slot *held,
                int64_t expires, const int64_t *ids, int nids, struct dispatch_offer *out)
{
    out->slot = held;
    out->expires_at = expires;
    out->nalternatives = 0;
    int want = r ? r->territory->settings.alternatives : 0;
    if (want > DISPATCH_MAX_ALTERNATIVES)
        want = DISPATCH_MAX_ALTERNATIVES;
    if (want <= 0)
        return;
    if (ids) {
        for (int i = 0; i < nids && (int)out->nalternatives < want; i++) {
            struct slot *s = store_slot(&d->store, ids[i]);
            if (s && s != held && s->status == SLOT_FREE && !s->pending)
                out->alternatives[out->nalternatives++] = s;
        }
        return;
    }
    struct match_candidate c[MAX_CANDIDATES];
    size_t n = rank_for(d, r, c, (size_t)want + 1);
    for (size_t i = 0; i < n && (int)out->nalternatives < want; i++)
        if (c[i].slot != held)
            out->alternatives[out->nalternatives++] = c[i].slot;
}

/* The offer of offered request `r`; false when memory knows no slot it
 * holds. */
static bool offer_of(struct dispatch *d, const struct request *r, const int64_t *ids, int nids,
                     struct dispatch_offer *out)
{
    struct slot *held = r->held_slot ? store_slot(&d->store, r->held_slot) : NULL;
    if (!held)
        return false;
    offer_fill(d, r, held, r->hold_expires_at, ids, nids, out);
    return true;
}

bool dispatch_offer(struct dispatch *d, const struct request *r, struct dispatch_offer *out)
{
    return r->status == REQ_OFFERED && offer_of(d, r, NULL, 0, out);
}

void finish_with_request(struct op *o, const struct request *r, const int64_t *ids, int nids)
{
    struct dispatch_offer offer;
    bool offered = o->cb && r->status == REQ_OFFERED && offer_of(o->d, r, ids, nids, &offer);
    struct dispatch_answer a = {.kind = ANSWER_REQUEST,
                                .request = {.request = r, .offer = offered ? &offer : NULL}};
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
}
