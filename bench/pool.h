/* A pool of authenticated WebSocket connections to snpd, each with its own
 * token, used in turn so that no connection goes over the protocol's rate
 * limit.
 *
 * snp.v1 allows each connection `messages_per_second` messages per second
 * in bursts of `message_burst` (protocol/snp.v1.md, Limits), and answers a
 * message over it `rate_limited` without processing it.  A benchmark that
 * wants to measure snpd rather than that limit spreads its messages over
 * enough connections: the pool keeps, for each connection, a copy of the
 * server's token bucket (a little more conservative than the server's) and
 * hands out a connection that can take the next messages, waiting when none
 * can.  The waiting is counted, so a benchmark can say whether the limit
 * shaped its figures.  With a pool of one connection the benchmark measures
 * exactly what one client on one connection gets.
 *
 * A pool holds either snpclient connections (pool_open) or bare ones
 * (pool_open_bare, bench/wsraw.h: no lws, blocking calls one at a time, for
 * a client whose own CPU must weigh as little as pgbench's does).  A pool
 * belongs to one thread or process.
 */
#ifndef SNP_BENCH_POOL_H
#define SNP_BENCH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/util.h"
#include "bench/wsraw.h"
#include "clients/lib/snpclient.h"

struct pool_conn {
    struct snpclient_ws *ws; /* NULL in a bare pool */
    struct wsraw raw;        /* a bare pool's connection */
    double tokens;     /* our estimate of the server's bucket */
    int64_t refill_us; /* when it was last brought up to date */
};

struct pool {
    struct pool_conn *conns;
    size_t n;
    size_t next;          /* round-robin position */
    double rate;          /* messages per second per connection we allow ourselves */
    double burst;         /* bucket size we allow ourselves */
    int64_t throttled_us; /* time spent waiting for a connection with tokens */
    uint64_t waits;       /* times we had to wait */
    bool bare;            /* connections are `raw`, not `ws` */
};

/* Opens `n` connections through `c`, connection i with the token
 * `tokens[i % ntokens]`, and sends each one `territory.get` so that it is
 * authenticated before any measured message (snpd checks the token of a
 * header-authenticated connection at its first message).  Returns 0, or -1
 * with a reason in `err` after closing what it opened. */
int pool_open(struct pool *p, struct snpclient *c, size_t n, char *const *tokens, size_t ntokens,
              char *err, size_t errlen) BENCH_MUST_CHECK;

/* The same with `n` bare connections to 127.0.0.1:`port`, each sent
 * `territory.get` before it is used. */
int pool_open_bare(struct pool *p, int port, size_t n, char *const *tokens, size_t ntokens,
                   char *err, size_t errlen) BENCH_MUST_CHECK;

/* Returns a connection whose bucket holds at least `need` messages, taking
 * them from it; waits for one when none has them yet.  pool_take() for a
 * pool of snpclient connections, pool_take_bare() for a bare one. */
struct snpclient_ws *pool_take(struct pool *p, int need);
struct wsraw *pool_take_bare(struct pool *p, int need);

/* Closes every connection (the caller frees the snpclient afterwards). */
void pool_close(struct pool *p);

/* The number of connections a run of `messages` messages needs so that no
 * connection has to wait: the burst of each covers its share. */
size_t pool_size_for(size_t messages);

#endif
