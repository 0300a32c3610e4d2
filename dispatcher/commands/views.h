/* The protocol's JSON of what the dispatch core answers and pushes
 * (dispatch.h: struct dispatch_answer, struct dispatch_push): a slot, a
 * request and its offer, a booking, capacity, and every push's data, as
 * protocol/snp.v1.json declares them.
 *
 * Reads the store (sites, communes, practitioners, organisations,
 * territories' zones) and changes nothing.  Every function returns a new
 * reference, or NULL when out of memory or, for JSON the database wrote
 * (stored), when it cannot be read. */
#ifndef SNP_VIEWS_H
#define SNP_VIEWS_H

#include <jansson.h>

#include "dispatcher/core/dispatch.h"

/* A slot, with its site and practitioner. */
json_t *views_slot(const struct store *st, const struct slot *s);

/* An offer: the held slot (shown held), its expiry in the zone of
 * territory `t`, and the alternatives. */
json_t *views_offer(const struct store *st, const struct territory *t,
                    const struct dispatch_offer *o);

/* The response data of an operation's answer. */
json_t *views_answer(const struct store *st, const struct dispatch_answer *a);

/* The data of push `p` to `to`. */
json_t *views_push(const struct store *st, const struct push_target *to,
                   const struct dispatch_push *p);

#endif
