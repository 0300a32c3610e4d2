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

#include "dispatcher/store.h"

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
