/* base/keysort.c: the radix sort of the start-up's slots.  Checked against
 * qsort on (major, minor, original place) — which is what a stable sort by
 * (major, minor) gives — over random records of every spread: keys all
 * equal, in a narrow range, in a range needing every pass, at INT64_MIN and
 * INT64_MAX, negative, with many duplicates; and sizes from none to 200,000. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "base/keysort.h"
#include "tests/support/rng.h"

static struct rng rng;

static int compare_model(const void *a, const void *b)
{
    const struct keysort_rec *x = a, *y = b;
    if (x->major != y->major)
        return x->major < y->major ? -1 : 1;
    if (x->minor != y->minor)
        return x->minor < y->minor ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* How keys are drawn: each shape is a spread the sort must handle. */
enum shape { SAME, NARROW, SLOTS, WIDE, EXTREMES, NSHAPES };

static int64_t draw(enum shape shape)
{
    switch (shape) {
    case SAME:
        return 42;
    case NARROW: /* many duplicates, some negative */
        return (int64_t)(rng_next(&rng) % 7) - 3;
    case SLOTS: /* instants over a fortnight, ids over a few million */
        return 1796000000 + (int64_t)(rng_next(&rng) % (14 * 86400));
    case WIDE: /* every bit: every pass */
        return (int64_t)rng_next(&rng);
    case EXTREMES: {
        static const int64_t ends[] = {INT64_MIN, INT64_MIN + 1, -1,       0,
                                       1,         INT64_MAX - 1, INT64_MAX};
        return ends[rng_next(&rng) % (sizeof(ends) / sizeof(ends[0]))];
    }
    case NSHAPES:
        break;
    }
    return 0;
}

static void check(size_t n, enum shape major_shape, enum shape minor_shape)
{
    struct keysort_rec *recs = malloc((n + 1) * sizeof(*recs));
    struct keysort_rec *model = malloc((n + 1) * sizeof(*model));
    struct keysort_rec *scratch = malloc((n + 1) * sizeof(*scratch));
    cr_assert(recs && model && scratch);
    for (size_t i = 0; i < n; i++)
        recs[i] = (struct keysort_rec){
            .major = draw(major_shape), .minor = draw(minor_shape), .index = i};
    memcpy(model, recs, n * sizeof(*recs));
    qsort(model, n, sizeof(*model), compare_model);
    keysort(recs, scratch, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(recs[i].major == model[i].major && recs[i].minor == model[i].minor &&
                      recs[i].index == model[i].index,
                  "n %zu, shapes %d/%d: record %zu is (%lld, %lld, #%zu), expected (%lld, %lld, "
                  "#%zu)",
                  n, major_shape, minor_shape, i, (long long)recs[i].major,
                  (long long)recs[i].minor, recs[i].index, (long long)model[i].major,
                  (long long)model[i].minor, model[i].index);
    free(recs);
    free(model);
    free(scratch);
}

Test(keysort, agrees_with_a_stable_model_for_every_spread_and_size)
{
    rng_seed(&rng, 1);
    static const size_t sizes[] = {0, 1, 2, 3, 17, 1000, 5003};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (int a = 0; a < NSHAPES; a++)
            for (int b = 0; b < NSHAPES; b++)
                check(sizes[k], (enum shape)a, (enum shape)b);
}

Test(keysort, sorts_a_large_load_of_slots)
{
    rng_seed(&rng, 2);
    check(200000, SLOTS, WIDE);
    check(200000, SLOTS, NARROW);
}

/* A record's key far above the others must not wrap around: the distance
 * from INT64_MIN to INT64_MAX is the whole of uint64_t. */
Test(keysort, keeps_the_order_across_the_whole_range)
{
    struct keysort_rec recs[] = {{INT64_MAX, 0, 0},
                                 {INT64_MIN, INT64_MAX, 1},
                                 {0, 0, 2},
                                 {INT64_MIN, INT64_MIN, 3},
                                 {-1, 5, 4}};
    struct keysort_rec scratch[5];
    keysort(recs, scratch, 5);
    static const size_t want[] = {3, 1, 4, 2, 0};
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(recs[i].index, want[i], "place %zu holds #%zu", i, recs[i].index);
}
