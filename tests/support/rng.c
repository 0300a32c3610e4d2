#include "tests/support/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/wait.h"

void rng_seed(struct rng *r, uint64_t seed)
{
    r->state = seed * 0x9E3779B97F4A7C15ULL + 1;
    if (r->state == 0) /* xorshift stays at 0 */
        r->state = 1;
}

uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int rng_below(struct rng *r, int n)
{
    return n > 0 ? (int)(rng_next(r) % (uint64_t)n) : 0;
}

size_t rng_weighted(struct rng *r, const int *weights, size_t n)
{
    int total = 0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    int x = rng_below(r, total);
    size_t i = 0;
    while (i + 1 < n && x >= weights[i])
        x -= weights[i++];
    return i;
}

PGresult *rng_pick_row(struct rng *r, struct pgtest *pg, const char *sql, int *row)
{
    PGresult *res = pgtest_exec(pg, sql);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return NULL;
    }
    *row = rng_below(r, PQntuples(res));
    return res;
}

/* Appends `seed` to the list in `out`, when it fits. */
static void seeds_add(char *out, size_t n, uint64_t seed)
{
    size_t len = strlen(out);
    if (len + 22 < n)
        snprintf(out + len, n - len, "%s%llu", len ? " " : "", (unsigned long long)seed);
}

int rng_run_seeds(const char *prefix, const char *defaults, double max_minutes,
                  void (*run)(uint64_t seed, void *arg), bool (*go_on)(void *arg), void *arg,
                  char *seeds_out, size_t n)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_MINUTES", prefix);
    const char *env_minutes = getenv(name);
    snprintf(name, sizeof(name), "%s_SEEDS", prefix);
    const char *env_seeds = getenv(name);
    double minutes = env_minutes ? atof(env_minutes) : 0;
    if (minutes > max_minutes)
        minutes = max_minutes;
    int nseeds = 0;
    seeds_out[0] = 0;
    if (minutes > 0) {
        int64_t end = test_now_ms() + (int64_t)(minutes * 60000);
        uint64_t seed = (uint64_t)time(NULL);
        do {
            run(seed, arg);
            seeds_add(seeds_out, n, seed);
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            nseeds++;
        } while (test_now_ms() < end && go_on(arg));
        return nseeds;
    }
    char list[256];
    snprintf(list, sizeof(list), "%s", env_seeds ? env_seeds : defaults);
    for (char *save = NULL, *s = strtok_r(list, " ,", &save); s; s = strtok_r(NULL, " ,", &save)) {
        uint64_t seed = strtoull(s, NULL, 10);
        run(seed, arg);
        seeds_add(seeds_out, n, seed);
        nseeds++;
    }
    return nseeds;
}
