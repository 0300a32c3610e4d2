/* A hash map from 64-bit keys to pointers (open addressing, linear probing,
 * tombstone-free deletion by backward shift).  Keys are ids from the
 * database, or codes packed with idmap_code_key(). */
#ifndef SNP_IDMAP_H
#define SNP_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idmap_entry {
    int64_t key;
    void *value; /* NULL marks an empty bucket */
};

struct idmap {
    struct idmap_entry *buckets;
    size_t cap; /* a power of two, or 0 */
    size_t len;
};

/* Returns the value stored under `key`, or NULL. */
void *idmap_get(const struct idmap *m, int64_t key);

/* Stores `value` (not NULL) under `key`, replacing any previous value.
 * Returns false when memory is short (the map is unchanged). */
bool idmap_put(struct idmap *m, int64_t key, void *value) __attribute__((warn_unused_result));

/* Makes room for `more` entries beyond those stored, so that they are put
 * without rehashing on the way (a load of a million slots rehashed twenty
 * times).  Returns false when memory is short (the map is unchanged). */
bool idmap_reserve(struct idmap *m, size_t more) __attribute__((warn_unused_result));

/* Removes `key`; returns the value it had, or NULL. */
void *idmap_del(struct idmap *m, int64_t key);

/* Frees the buckets (not the values). */
void idmap_free(struct idmap *m);

/* Packs a short code of digits and capital letters (an RPPS, an INSEE code
 * such as 2A004) into a key, one base-37 digit per character; at most 12
 * characters. */
int64_t idmap_code_key(const char *code);

#endif
