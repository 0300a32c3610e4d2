/* base/idmap.c: the id → pointer map every index of snpd uses (slots,
 * requests, sites, connections).  Checked against a plain array as the
 * model, through random puts, replacements and deletions (which shift the
 * entries of a probe run back), and idmap_reserve. */
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "base/idmap.h"
#include "tests/support/rng.h"

#define KEYS 5000

static struct rng rng;

Test(idmap, agrees_with_a_model_through_random_puts_and_deletions)
{
    rng_seed(&rng, 1);
    static void *model[KEYS];
    static int values[KEYS];
    struct idmap m = {0};
    size_t len = 0;
    for (int step = 0; step < 200000; step++) {
        /* Keys in a narrow range collide and make long probe runs; some are
         * negative. */
        int k = (int)(rng_next(&rng) % KEYS);
        int64_t key = (int64_t)k * (k % 3 == 0 ? 1024 : 1) - KEYS / 2;
        if (rng_next(&rng) % 3 == 0) {
            void *old = idmap_del(&m, key);
            cr_assert_eq(old, model[k], "del %lld at step %d", (long long)key, step);
            len -= model[k] != NULL;
            model[k] = NULL;
        } else {
            cr_assert(idmap_put(&m, key, &values[k]));
            len += model[k] == NULL;
            model[k] = &values[k];
        }
        if (step % 997 == 0)
            for (int j = 0; j < KEYS; j++) {
                int64_t kj = (int64_t)j * (j % 3 == 0 ? 1024 : 1) - KEYS / 2;
                cr_assert_eq(idmap_get(&m, kj), model[j], "get %lld at step %d", (long long)kj,
                             step);
            }
        cr_assert_eq(m.len, len);
    }
    idmap_free(&m);
}

Test(idmap, reserve_makes_room_without_losing_entries)
{
    struct idmap m = {0};
    static int v[3000];
    for (int i = 0; i < 100; i++)
        cr_assert(idmap_put(&m, i, &v[i]));
    cr_assert(idmap_reserve(&m, 2900));
    size_t cap = m.cap;
    cr_assert_geq(cap * 3, 3000 * 4, "cap %zu cannot hold 3,000 entries", cap);
    for (int i = 100; i < 3000; i++)
        cr_assert(idmap_put(&m, i, &v[i]));
    cr_assert_eq(m.cap, cap, "rehashed after the reservation");
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(idmap_get(&m, i), &v[i]);
    /* A reservation the map already has room for changes nothing. */
    cr_assert(idmap_reserve(&m, 0));
    cr_assert_eq(m.cap, cap);
    idmap_free(&m);
}

/* The longest run of occupied buckets in `m`: what a look-up that misses
 * may have to read. */
static size_t longest_run(const struct idmap *m)
{
    size_t longest = 0, run = 0;
    for (size_t i = 0; i < 2 * m->cap; i++) { /* twice round: a run may wrap */
        run = m->buckets[i & (m->cap - 1)].value ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    return longest;
}

/* Keys of every shape the maps hold spread over the buckets, so that no
 * look-up reads a long run: consecutive ids (a page of slots), pointers
 * (multiples of 16 or 64), codes and ids far apart.  A hash that kept the
 * key's low bits as they are fails it (runs of 10,000 and 2,500). */
Test(idmap, keys_of_every_shape_spread_over_the_buckets)
{
    static int v[10000];
    static const int64_t strides[] = {1, 16, 64, 4096, 37, 1000003};
    for (size_t s = 0; s < sizeof(strides) / sizeof(strides[0]); s++) {
        struct idmap m = {0};
        for (int i = 0; i < 10000; i++)
            cr_assert(idmap_put(&m, 0x5555000 + strides[s] * i, &v[i]));
        size_t run = longest_run(&m);
        cr_log_info("stride %lld: %zu buckets, longest run %zu", (long long)strides[s], m.cap, run);
        cr_expect_lt(run, m.cap / 16, "stride %lld: a run of %zu of %zu buckets",
                     (long long)strides[s], run, m.cap);
        for (int i = 0; i < 10000; i++)
            cr_assert_eq(idmap_get(&m, 0x5555000 + strides[s] * i), &v[i]);
        idmap_free(&m);
    }
}
