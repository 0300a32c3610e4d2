/* Lists of members by a 64-bit key: each key's members in a doubly linked
 * list threaded through the members themselves (struct idlist_link), the
 * lists found by key in an idmap.  A member leaves in constant time and
 * without allocating; joining allocates a key's head the first time.
 * dispatcher/commands/api.c keeps a topic's subscribers so, by the key a
 * push names (the organisation, the practitioner, the site). */
#ifndef SNP_IDLISTS_H
#define SNP_IDLISTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/idmap.h"

struct idlist_head;

/* A member's place on one list; zero (or after idlists_leave) when on none. */
struct idlist_link {
    struct idlist_link *next;
    struct idlist_link *prev;
    struct idlist_head *head; /* the list it is on, or NULL */
    void *owner;              /* the member, for whoever walks the list */
};

struct idlists {
    struct idmap heads; /* key -> struct idlist_head */
};

/* Puts `link` (on no list) first on the list of `key`, for `owner`.
 * Returns false when memory is short (nothing changed). */
bool idlists_join(struct idlists *l, int64_t key, struct idlist_link *link, void *owner)
    __attribute__((warn_unused_result));

/* Takes `link` off its list, if it is on one; a list left empty is
 * forgotten.  Never allocates. */
void idlists_leave(struct idlists *l, struct idlist_link *link);

/* The first member of the list of `key`, or NULL; then link->next. */
struct idlist_link *idlists_first(const struct idlists *l, int64_t key);

/* How many keys have a list. */
size_t idlists_keys(const struct idlists *l);

/* Frees every head; members still on a list are left with dangling heads,
 * so call it once no member will be used again. */
void idlists_free(struct idlists *l);

#endif
