#include "base/idmap.h"

#include <stdlib.h>

static size_t slot_of(int64_t key, size_t cap)
{
    uint64_t x = (uint64_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

void *idmap_get(const struct idmap *m, int64_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->buckets[i].value)
            return NULL;
        if (m->buckets[i].key == key)
            return m->buckets[i].value;
    }
}

/* Rehashes into `cap` buckets (a power of two that holds every entry). */
static bool rehash(struct idmap *m, size_t cap)
{
    struct idmap_entry *b = calloc(cap, sizeof(*b));
    if (!b)
        return false;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->buckets[j].value)
            continue;
        size_t i = slot_of(m->buckets[j].key, cap);
        while (b[i].value)
            i = (i + 1) & (cap - 1);
        b[i] = m->buckets[j];
    }
    free(m->buckets);
    m->buckets = b;
    m->cap = cap;
    return true;
}

static bool grow(struct idmap *m)
{
    return rehash(m, m->cap ? m->cap * 2 : 64);
}

bool idmap_reserve(struct idmap *m, size_t more)
{
    size_t cap = m->cap ? m->cap : 64;
    while ((m->len + more) * 4 > cap * 3)
        cap *= 2;
    return cap == m->cap || rehash(m, cap);
}

bool idmap_put(struct idmap *m, int64_t key, void *value)
{
    if ((m->len + 1) * 4 > m->cap * 3 && !grow(m))
        return false;
    size_t i = slot_of(key, m->cap);
    while (m->buckets[i].value && m->buckets[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->buckets[i].value)
        m->len++;
    m->buckets[i].key = key;
    m->buckets[i].value = value;
    return true;
}

void *idmap_del(struct idmap *m, int64_t key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = slot_of(key, m->cap);
    while (m->buckets[i].value && m->buckets[i].key != key)
        i = (i + 1) & mask;
    if (!m->buckets[i].value)
        return NULL;
    void *old = m->buckets[i].value;
    /* Backward-shift: move later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->buckets[j].value; j = (j + 1) & mask) {
        size_t home = slot_of(m->buckets[j].key, m->cap);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->buckets[hole] = m->buckets[j];
            hole = j;
        }
    }
    m->buckets[hole].value = NULL;
    m->buckets[hole].key = 0;
    m->len--;
    return old;
}

void idmap_free(struct idmap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->cap = 0;
    m->len = 0;
}

int64_t idmap_code_key(const char *code)
{
    int64_t k = 0;
    for (int i = 0; code[i] && i < 12; i++) {
        char c = code[i];
        int d = c >= '0' && c <= '9' ? c - '0' + 1 : c >= 'A' && c <= 'Z' ? c - 'A' + 11 : 0;
        k = k * 37 + d;
    }
    return k;
}
