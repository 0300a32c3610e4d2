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

int pool_open(struct pool *p, struct snpclient *c, size_t n, char *const *tokens, size_t ntokens,
              char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
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
    char why[256];
    for (size_t i = 0; i < n; i++) {
        struct pool_conn *pc = &p->conns[i];
        pc->ws = snpclient_ws_open(c, NULL, tokens[i % ntokens], 10000, why, sizeof(why));
        if (!pc->ws) {
            snprintf(err, errlen, "connection %zu of %zu: %s", i + 1, n, why);
            goto fail;
        }
        p->n = i + 1;
        char *resp = NULL;
        int rc = snpclient_ws_call(pc->ws, "territory.get", NULL, 10000, &resp);
        if (rc != 0) {
            snprintf(err, errlen, "connection %zu of %zu: territory.get: %s%s%.200s", i + 1, n,
                     snpclient_strerror(rc), resp ? ": " : "", resp ? resp : "");
            free(resp);
            goto fail;
        }
        free(resp);
        pc->tokens = p->burst;
        pc->refill_us = bench_now_us();
    }
    return 0;

fail:
    pool_close(p);
    return -1;
}

static void refill(struct pool *p, struct pool_conn *pc, int64_t now)
{
    pc->tokens += (double)(now - pc->refill_us) * p->rate / 1e6;
    if (pc->tokens > p->burst)
        pc->tokens = p->burst;
    pc->refill_us = now;
}

struct snpclient_ws *pool_take(struct pool *p, int need)
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
                return pc->ws;
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

void pool_close(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        snpclient_ws_close(p->conns[i].ws);
    free(p->conns);
    memset(p, 0, sizeof(*p));
}
