#include "bench/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

/* Our copy of the bucket trails the server's: 90 % of its rate (the server
 * refills from its loop's cached clock, which lags ours), and a burst two
 * messages short of the server's (one went to territory.get, one spare). */
#define RATE_SHARE   0.9
#define BURST_MARGIN 2.0

static double allowed_rate(void)
{
    return snp_proto_limits()->messages_per_second * RATE_SHARE;
}

static double allowed_burst(void)
{
    return snp_proto_limits()->message_burst - BURST_MARGIN;
}

size_t pool_size_for(size_t messages)
{
    size_t per = (size_t)allowed_burst();
    return per ? (messages + per - 1) / per : messages;
}

/* Sets `p` up for `n` connections, none open yet. */
static int pool_init(struct pool *p, size_t n, size_t ntokens, bool bare, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->bare = bare;
    if (n == 0 || ntokens == 0) {
        snprintf(err, errlen, "a pool needs at least one connection and one token");
        return -1;
    }
    p->conns = calloc(n, sizeof(*p->conns));
    if (!p->conns) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->rate = allowed_rate();
    p->burst = allowed_burst();
    return 0;
}

/* Opens connection `pc` with `token`, through `c` or bare to `port`, and
 * sends it territory.get.  Returns 0, or -1 with a reason in `why`;
 * `*opened` tells whether there is a connection to close. */
static int open_conn(struct pool *p, struct pool_conn *pc, struct snpclient *c, int port,
                     const char *token, bool *opened, char *why, size_t whylen)
{
    if (p->bare) {
        *opened = wsraw_open(&pc->raw, NULL, port, token, 10000, why, whylen) == 0;
        return *opened ? wsraw_call(&pc->raw, "t", "territory.get", NULL, why, whylen) : -1;
    }
    pc->ws = snpclient_ws_open(c, NULL, token, 10000, why, whylen);
    *opened = pc->ws != NULL;
    if (!pc->ws)
        return -1;
    char *resp = NULL;
    int rc = snpclient_ws_call(pc->ws, "territory.get", NULL, 10000, &resp);
    if (rc != 0)
        snprintf(why, whylen, "territory.get: %s%s%.200s", snpclient_strerror(rc), resp ? ": " : "",
                 resp ? resp : "");
    free(resp);
    return rc == 0 ? 0 : -1;
}

/* Opens the `n` connections of a pool set up by pool_init(). */
static int pool_connect(struct pool *p, struct snpclient *c, int port, size_t n,
                        char *const *tokens, size_t ntokens, char *err, size_t errlen)
{
    char why[256];
    for (size_t i = 0; i < n; i++) {
        struct pool_conn *pc = &p->conns[i];
        bool opened;
        int rc = open_conn(p, pc, c, port, tokens[i % ntokens], &opened, why, sizeof(why));
        if (opened)
            p->n = i + 1;
        if (rc != 0) {
            snprintf(err, errlen, "connection %zu of %zu: %s", i + 1, n, why);
            pool_close(p);
            return -1;
        }
        pc->tokens = p->burst;
        pc->refill_us = bench_now_us();
    }
    return 0;
}

int pool_open(struct pool *p, struct snpclient *c, size_t n, char *const *tokens, size_t ntokens,
              char *err, size_t errlen)
{
    if (pool_init(p, n, ntokens, false, err, errlen) != 0)
        return -1;
    return pool_connect(p, c, 0, n, tokens, ntokens, err, errlen);
}

int pool_open_bare(struct pool *p, int port, size_t n, char *const *tokens, size_t ntokens,
                   char *err, size_t errlen)
{
    if (pool_init(p, n, ntokens, true, err, errlen) != 0)
        return -1;
    return pool_connect(p, NULL, port, n, tokens, ntokens, err, errlen);
}

static void refill(struct pool *p, struct pool_conn *pc, int64_t now)
{
    pc->tokens += (double)(now - pc->refill_us) * p->rate / 1e6;
    if (pc->tokens > p->burst)
        pc->tokens = p->burst;
    pc->refill_us = now;
}

static struct pool_conn *take(struct pool *p, int need)
{
    for (;;) {
        int64_t now = bench_now_us();
        double best = -1e9;
        for (size_t k = 0; k < p->n; k++) {
            size_t i = (p->next + k) % p->n;
            struct pool_conn *pc = &p->conns[i];
            refill(p, pc, now);
            if (pc->tokens >= need) {
                pc->tokens -= need;
                p->next = (i + 1) % p->n;
                return pc;
            }
            if (pc->tokens > best)
                best = pc->tokens;
        }
        /* None can take it yet: wait until the fullest one can. */
        int64_t wait = (int64_t)((need - best) / p->rate * 1e6) + 100;
        p->waits++;
        p->throttled_us += wait;
        bench_sleep_us(wait);
    }
}

struct snpclient_ws *pool_take(struct pool *p, int need)
{
    return take(p, need)->ws;
}

struct wsraw *pool_take_bare(struct pool *p, int need)
{
    return &take(p, need)->raw;
}

void pool_close(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->bare)
            wsraw_close(&p->conns[i].raw);
        else
            snpclient_ws_close(p->conns[i].ws);
    }
    free(p->conns);
    memset(p, 0, sizeof(*p));
}
