/* The JSON of the model's values: an instant in a territory's zone, a set
 * of bits by their names, the priority groups.  Shared by the protocol's
 * views, written at the edge (dispatcher/commands/views.c), and the JSON
 * parameters the core sends to its SQL functions (slot.publish,
 * request.create).  Pure: no store, no database. */
#ifndef SNP_VALUES_H
#define SNP_VALUES_H

#include <stdint.h>

#include <jansson.h>

#include "dispatcher/core/store.h"

/* An instant as RFC 3339 in territory `t`'s zone (JSON null if it cannot be
 * shown); a new reference. */
json_t *value_time_json(const struct territory *t, int64_t utc);

/* The same in `zone` (timeutil_zone_find). */
json_t *value_time_json_in(const struct timeutil_zone *zone, int64_t utc);

/* The names, by `name`, of the bits set in `bits`, as a new array. */
json_t *value_bits_json(uint8_t bits, const char *(*name)(uint8_t));

/* The priority groups in `bits` (PRIORITY_*), as a new array of their
 * names. */
json_t *value_priority_json(uint8_t bits);

#endif
