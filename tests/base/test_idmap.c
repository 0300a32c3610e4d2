/* base/idmap.c: the id → pointer map every index of snpd uses (slots,
 * requests, sites, connections).  Checked against a plain array as the
 * model, through random puts, replacements and deletions (which shift the
 * entries of a probe run back), and idmap_reserve. */
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "base/idmap.h"

#define KEYS 5000

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

Test(idmap, agrees_with_a_model_through_random_puts_and_deletions)
{
    static void *model[KEYS];
    static int values[KEYS];
    struct idmap m = {0};
    size_t len = 0;
    for (int step = 0; step < 200000; step++) {
        /* Keys in a narrow range collide and make long probe runs; some are
         * negative. */
        int k = (int)(next() % KEYS);
        int64_t key = (int64_t)k * (k % 3 == 0 ? 1024 : 1) - KEYS / 2;
        if (next() % 3 == 0) {
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
