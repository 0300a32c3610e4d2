/* Seeded randomness for the randomized, model-based tests (test_model,
 * test_capacity): one generator whose seed replays a run's choices, a
 * weighted choice, a random row of a query, and the seeds a run goes
 * through (a fixed list in the suite, more from the environment).
 */
#ifndef SNP_TEST_RNG_H
#define SNP_TEST_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/support/pgtest.h"

/* A xorshift64* generator; `state` is never 0 once seeded. */
struct rng {
    uint64_t state;
};

/* Starts the sequence of `seed` (any value, 0 included). */
void rng_seed(struct rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* A number in [0, n), or 0 when n <= 0. */
int rng_below(struct rng *r, int n);

/* An index in [0, n) drawn with the weights given (positive, n >= 1). */
size_t rng_weighted(struct rng *r, const int *weights, size_t n);

/* Runs `sql` on `pg` and chooses one of its rows at random: returns the
 * result, to PQclear, with the row in *row; NULL when it has no row.  Fails
 * the test when the query fails. */
PGresult *rng_pick_row(struct rng *r, struct pgtest *pg, const char *sql, int *row);

/* Runs `run(seed, arg)` for the seeds of a run: those listed in the
 * environment variable `<prefix>_SEEDS` (separated by spaces or commas;
 * `defaults` when it is unset) or, when `<prefix>_MINUTES` is set, random
 * seeds (the first from the clock) until that many minutes (at most
 * `max_minutes`) have passed or `go_on(arg)` returns false.  Writes the
 * seeds run into `seeds_out` (separated by spaces, as much as fits) and
 * returns how many. */
int rng_run_seeds(const char *prefix, const char *defaults, double max_minutes,
                  void (*run)(uint64_t seed, void *arg), bool (*go_on)(void *arg), void *arg,
                  char *seeds_out, size_t n);

#endif
