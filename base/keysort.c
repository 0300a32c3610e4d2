#include "base/keysort.h"

#include <stdbool.h>
#include <string.h>

#define DIGIT_BITS 11
#define DIGITS     (1u << DIGIT_BITS)

/* A record's major or minor key, as its distance above `low` (the smallest
 * such key): unsigned, so that the order of any two int64_t keys, however
 * far apart, is the order of their distances. */
static uint64_t key_above(const struct keysort_rec *r, bool major, uint64_t low)
{
    return (uint64_t)(major ? r->major : r->minor) - low;
}

/* The smallest of the records' major or minor keys, and how far above it the
 * largest is. */
static uint64_t key_spread(const struct keysort_rec *r, size_t n, bool major, uint64_t *low)
{
    int64_t min = major ? r[0].major : r[0].minor, max = min;
    for (size_t i = 1; i < n; i++) {
        int64_t k = major ? r[i].major : r[i].minor;
        if (k < min)
            min = k;
        if (k > max)
            max = k;
    }
    *low = (uint64_t)min;
    return (uint64_t)max - (uint64_t)min;
}

/* One stable pass on the digit of the key at `shift`: counts, then moves the
 * records from `from` to `to` in the digit's order.  Returns false, having
 * moved nothing, when every record has the same digit (the pass would keep
 * their order). */
static bool sort_pass(const struct keysort_rec *from, struct keysort_rec *to, size_t n, bool major,
                      uint64_t low, unsigned shift)
{
    size_t at[DIGITS] = {0};
    for (size_t i = 0; i < n; i++)
        at[(key_above(&from[i], major, low) >> shift) & (DIGITS - 1)]++;
    size_t sum = 0;
    for (unsigned d = 0; d < DIGITS; d++) {
        if (at[d] == n)
            return false;
        size_t count = at[d];
        at[d] = sum;
        sum += count;
    }
    for (size_t i = 0; i < n; i++)
        to[at[(key_above(&from[i], major, low) >> shift) & (DIGITS - 1)]++] = from[i];
    return true;
}

void keysort(struct keysort_rec *recs, struct keysort_rec *scratch, size_t n)
{
    if (n < 2)
        return;
    struct keysort_rec *src = recs, *dst = scratch;
    /* Least significant first: the minor key's digits, then the major's; a
     * stable pass keeps the order the earlier ones made among equal digits. */
    for (int k = 0; k < 2; k++) {
        bool major = k == 1;
        uint64_t low;
        uint64_t spread = key_spread(src, n, major, &low);
        for (unsigned shift = 0; shift < 64 && spread >> shift != 0; shift += DIGIT_BITS) {
            if (sort_pass(src, dst, n, major, low, shift)) {
                struct keysort_rec *t = src;
                src = dst;
                dst = t;
            }
        }
    }
    if (src != recs)
        memcpy(recs, src, n * sizeof(*recs));
}
