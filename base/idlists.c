#include "base/idlists.h"

#include <stdlib.h>

struct idlist_head {
    struct idlist_link *first;
    int64_t key;
};

bool idlists_join(struct idlists *l, int64_t key, struct idlist_link *link, void *owner)
{
    struct idlist_head *h = idmap_get(&l->heads, key);
    if (!h) {
        h = malloc(sizeof(*h));
        if (!h)
            return false;
        *h = (struct idlist_head){.first = NULL, .key = key};
        if (!idmap_put(&l->heads, key, h)) {
            free(h);
            return false;
        }
    }
    link->owner = owner;
    link->head = h;
    link->prev = NULL;
    link->next = h->first;
    if (h->first)
        h->first->prev = link;
    h->first = link;
    return true;
}

void idlists_leave(struct idlists *l, struct idlist_link *link)
{
    struct idlist_head *h = link->head;
    if (!h)
        return;
    if (link->prev)
        link->prev->next = link->next;
    else
        h->first = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->next = link->prev = NULL;
    link->head = NULL;
    if (!h->first) {
        idmap_del(&l->heads, h->key);
        free(h);
    }
}

struct idlist_link *idlists_first(const struct idlists *l, int64_t key)
{
    struct idlist_head *h = idmap_get(&l->heads, key);
    return h ? h->first : NULL;
}

size_t idlists_keys(const struct idlists *l)
{
    return l->heads.len;
}

void idlists_free(struct idlists *l)
{
    for (size_t i = 0; i < l->heads.cap; i++)
        free(l->heads.buckets[i].value);
    idmap_free(&l->heads);
}
