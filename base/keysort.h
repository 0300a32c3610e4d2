/* Sorting records by two 64-bit keys, in time linear in their number: a
 * least-significant-digit radix sort, 11 bits a pass, stable, with only the
 * passes the keys' spread needs.  snpd's start-up sorts a million live slots
 * by start, then id, with it (dispatcher/core/store.c): qsort over pointers
 * to the slots, which compares by reading both slots, cost about 90 ms there
 * and this about a third (bench/README.md, "Latest figures"). */
#ifndef SNP_KEYSORT_H
#define SNP_KEYSORT_H

#include <stddef.h>
#include <stdint.h>

struct keysort_rec {
    int64_t major; /* compared first */
    int64_t minor; /* then this */
    size_t index;  /* what the record stands for; carried along */
};

/* Sorts `n` records into ascending (major, minor) order; records with equal
 * keys keep their order.  `scratch` has room for `n` records; what it holds
 * afterwards is unspecified.  Any int64_t values, negative ones included. */
void keysort(struct keysort_rec *recs, struct keysort_rec *scratch, size_t n);

#endif
