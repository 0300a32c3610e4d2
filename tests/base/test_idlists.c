/* base/idlists.c: lists of members by key (a topic's subscribers by
 * organisation, practitioner or site).  Checked against a model, an array
 * of each member's key, through random joins and leaves: each key's list
 * holds exactly the members of that key, each once, linked both ways, and a
 * key whose list empties is forgotten. */
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "base/idlists.h"
#include "tests/support/rng.h"

#define MEMBERS 400
#define KEYS    12

/* A key of a few shapes: small, negative (a site), large (an RPPS's code). */
static int64_t key_of(int k)
{
    return k % 3 == 0 ? -(int64_t)k : k % 3 == 1 ? (int64_t)k : 900000000000LL + k;
}

Test(idlists, agrees_with_a_model_through_random_joins_and_leaves)
{
    struct rng rng;
    rng_seed(&rng, 7);
    static struct idlist_link link[MEMBERS];
    static int member[MEMBERS];
    int model[MEMBERS]; /* each member's key index, or -1 */
    for (int i = 0; i < MEMBERS; i++)
        model[i] = -1;
    struct idlists l = {0};
    for (int step = 0; step < 50000; step++) {
        int i = (int)(rng_next(&rng) % MEMBERS);
        if (model[i] >= 0) {
            idlists_leave(&l, &link[i]);
            model[i] = -1;
            cr_assert_null(link[i].head);
        } else {
            int k = (int)(rng_next(&rng) % KEYS);
            cr_assert(idlists_join(&l, key_of(k), &link[i], &member[i]));
            model[i] = k;
        }
        /* Leaving twice changes nothing. */
        if (model[i] < 0)
            idlists_leave(&l, &link[i]);
        if (step % 101 != 0)
            continue;
        size_t keys = 0;
        for (int k = 0; k < KEYS; k++) {
            int want = 0;
            for (int j = 0; j < MEMBERS; j++)
                want += model[j] == k;
            keys += want > 0;
            int got = 0;
            struct idlist_link *prev = NULL;
            for (struct idlist_link *x = idlists_first(&l, key_of(k)); x; x = x->next) {
                int j = (int)(x - link);
                cr_assert(j >= 0 && j < MEMBERS);
                cr_assert_eq(model[j], k, "step %d: member %d on the list of key %d", step, j, k);
                cr_assert_eq(x->owner, &member[j]);
                cr_assert_eq(x->prev, prev, "step %d: a broken back link", step);
                prev = x;
                cr_assert_leq(++got, want, "step %d: key %d lists more than its members", step, k);
            }
            cr_assert_eq(got, want, "step %d: key %d lists %d of its %d members", step, k, got,
                         want);
        }
        cr_assert_eq(idlists_keys(&l), keys, "step %d: a list left empty is kept", step);
    }
    for (int i = 0; i < MEMBERS; i++)
        idlists_leave(&l, &link[i]);
    cr_assert_eq(idlists_keys(&l), 0);
    idlists_free(&l);
}
