/* snpbench capacity: the latency of capacity.query, one query at a time.
 *
 *   ws         over WebSocket, through snpclient, spread over a pool of
 *              connections under the per-connection rate limit (20
 *              messages/s, bench/pool.h); a query that has to wait for a
 *              connection with room waits before its clock starts;
 *   http       over HTTP through snpclient, which opens a new TCP
 *              connection for every request (as curl does);
 *   keepalive  over HTTP/1.1 on kept-alive TCP connections, written by
 *              hand here because snpclient does not reuse connections;
 *   wsraw      over WebSocket on bare sockets (bench/wsraw.h), round as many
 *              connections as keepalive: snpd's answer without snpclient.
 *
 * Every query asks for the free slots of the next 24 hours within 20 km of
 * Redon, as a pharmacy (counts only, no slot list).  The first `--warmup`
 * queries are not counted.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench/bench.h"
#include "bench/pool.h"
#include "bench/wsraw.h"

#define QUERY_DATA "{\"horizon\":\"24h\",\"commune_insee\":\"" BENCH_COMMUNE "\",\"radius_km\":20}"
#define QUERY_PATH "/api/v1/capacity?horizon=24h&commune_insee=" BENCH_COMMUNE "&radius_km=20"

/* Kept-alive connections the keepalive transport goes round, by default. */
#define KA_CONNECTIONS 200

/* The largest answer read: FHIR Bundles of thousands of slots run to
 * megabytes. */
#define KA_MAX_ANSWER (64 << 20)

/* One kept-alive HTTP/1.1 connection. */
struct keepalive {
    int fd;
    char *buf;  /* grows up to KA_MAX_ANSWER */
    size_t cap; /* its size */
    size_t len; /* bytes of `buf` read and not yet consumed */
};

static bool ka_connect(struct keepalive *k, int port)
{
    k->len = 0;
    k->cap = 1 << 16;
    k->buf = malloc(k->cap);
    if (!k->buf)
        return false;
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (k->fd < 0)
        return false;
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return connect(k->fd, (struct sockaddr *)&a, sizeof(a)) == 0;
}

/* Sends `req` and reads one whole response; returns its status, or -1. */
static int ka_exchange(struct keepalive *k, const char *req, size_t req_len)
{
    if (!bench_write_all(k->fd, req, req_len))
        return -1;
    for (;;) {
        char *eoh = k->len ? memmem(k->buf, k->len, "\r\n\r\n", 4) : NULL;
        if (eoh) {
            size_t head = (size_t)(eoh - k->buf) + 4;
            int status = 0;
            if (sscanf(k->buf, "HTTP/1.1 %d", &status) != 1)
                return -1;
            long body = -1;
            for (char *p = k->buf; p && p < eoh; p = memchr(p, '\n', (size_t)(eoh - p))) {
                if (*p == '\n')
                    p++;
                if (strncasecmp(p, "content-length:", 15) == 0)
                    body = strtol(p + 15, NULL, 10);
            }
            if (body < 0 || head + (size_t)body > KA_MAX_ANSWER)
                return -1;
            if (k->len >= head + (size_t)body) {
                memmove(k->buf, k->buf + head + body, k->len - head - (size_t)body);
                k->len -= head + (size_t)body;
                return status;
            }
        }
        if (k->len == k->cap) {
            char *more = k->cap < KA_MAX_ANSWER ? realloc(k->buf, k->cap * 2) : NULL;
            if (!more)
                return -1;
            k->buf = more;
            k->cap *= 2;
        }
        ssize_t n = read(k->fd, k->buf + k->len, k->cap - k->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        k->len += (size_t)n;
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: snpbench capacity --port N --tokens FILE --transport ws|http|keepalive|wsraw\n"
            "                         [--count N] [--warmup N] [--pool N]\n"
            "                         [--path PATH --bench NAME] [--connections N]\n"
            "  --path   GET this instead of the capacity query (http and keepalive), e.g.\n"
            "           the SAS platform's FHIR search; --bench names it in the RESULT line\n"
            "  --connections  kept-alive or bare connections (keepalive, wsraw) [200]\n");
    return 2;
}

int bench_capacity(int argc, char **argv)
{
    int port = 0;
    long count = 20000, warmup = 200, pool_n = 0, nka = KA_CONNECTIONS;
    pid_t snpd = 0;
    const char *tokens_path = NULL, *transport = NULL, *path = QUERY_PATH, *name = "capacity";
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--port") == 0)
            port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--tokens") == 0)
            tokens_path = v;
        else if (strcmp(a, "--transport") == 0)
            transport = v;
        else if (strcmp(a, "--count") == 0)
            count = bench_parse_long(a, v, 1, 10000000);
        else if (strcmp(a, "--warmup") == 0)
            warmup = bench_parse_long(a, v, 0, 1000000);
        else if (strcmp(a, "--pool") == 0)
            pool_n = bench_parse_long(a, v, 1, 10000);
        else if (strcmp(a, "--connections") == 0)
            nka = bench_parse_long(a, v, 1, 10000);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--bench") == 0)
            name = v;
        else if (strcmp(a, "--snpd-pid") == 0)
            snpd = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else
            return usage();
    }
    if (argc % 2 || !port || !tokens_path || !transport)
        return usage();
    bool ws = strcmp(transport, "ws") == 0, http = strcmp(transport, "http") == 0,
         ka = strcmp(transport, "keepalive") == 0, raw = strcmp(transport, "wsraw") == 0;
    if (!ws && !http && !ka && !raw)
        return usage();
    if (ws && path != (const char *)QUERY_PATH)
        return usage();
    alarm(600);

    struct tokens tokens;
    tokens_load(&tokens, tokens_path);
    struct snpclient *c = snpclient_new("127.0.0.1", port, false);
    if (!c) {
        fprintf(stderr, "snpbench capacity: cannot create the client\n");
        return 1;
    }
    struct pool pool = {0};
    struct keepalive *k = NULL;
    struct wsraw *r = NULL;
    char request[8192];
    int req_len = 0;
    if (ws) {
        size_t n = pool_n ? (size_t)pool_n : pool_size_for((size_t)(count + warmup));
        if (n > tokens.n)
            n = tokens.n; /* then some connections share a token */
        char err[300];
        if (pool_open(&pool, c, n, tokens.v, tokens.n, err, sizeof(err)) != 0) {
            fprintf(stderr, "snpbench capacity: %s\n", err);
            return 1;
        }
    } else if (raw) {
        /* Bare sockets (wsraw.h), round the same number of connections as
         * keepalive and for the same reason: what snpd answers, without
         * snpclient's lws loop in the measure. */
        r = calloc((size_t)nka, sizeof(*r));
        for (long i = 0; r && i < nka; i++) {
            char err[300];
            if (wsraw_open(&r[i], NULL, port, tokens.v[i % tokens.n], 10000, err, sizeof(err)) !=
                0) {
                fprintf(stderr, "snpbench capacity: %s\n", err);
                return 1;
            }
        }
        if (!r)
            return 1;
    } else if (ka) {
        /* snp.v1 limits each connection to 20 requests per second (burst
         * 40), HTTP included: the queries go round `nka` kept-alive
         * connections so that none of them reaches the limit. */
        k = calloc((size_t)nka, sizeof(*k));
        for (long i = 0; k && i < nka; i++) {
            if (!ka_connect(&k[i], port)) {
                fprintf(stderr, "snpbench capacity: cannot connect: %s\n", strerror(errno));
                return 1;
            }
        }
        if (!k)
            return 1;
        req_len = snprintf(request, sizeof(request),
                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Authorization: Bearer %s\r\n\r\n",
                           path, port, tokens.v[0]);
        if (req_len <= 0 || (size_t)req_len >= sizeof(request))
            return usage();
    }

    struct samples lat = {0};
    long errors = 0;
    char first_error[300] = "";
    int64_t start = 0, busy0 = 0, snpd0 = 0, self0 = 0;
    for (long i = 0; i < warmup + count && errors < 50; i++) {
        if (i == warmup) {
            start = bench_now_us();
            busy0 = sys_busy_us();
            snpd0 = snpd ? proc_cpu_us(snpd) : -1;
            self0 = proc_cpu_us(getpid());
        }
        struct snpclient_ws *w = ws ? pool_take(&pool, 1) : NULL;
        char *resp = NULL;
        int status = 0, rc;
        int64_t t0 = bench_now_us();
        if (ws) {
            rc = snpclient_ws_call(w, "capacity.query", QUERY_DATA, 10000, &resp);
        } else if (raw) {
            char id[24], err[300];
            snprintf(id, sizeof(id), "q%ld", i);
            rc = wsraw_call(&r[i % nka], id, "capacity.query", QUERY_DATA, err, sizeof(err)) == 0
                     ? 0
                     : SNPCLIENT_EPROTO;
        } else if (http) {
            rc = snpclient_http(c, "GET", path, tokens.v[0], NULL, 10000, &status, &resp);
            if (rc == 0 && status != 200)
                rc = SNPCLIENT_ESERVER;
        } else {
            status = ka_exchange(&k[i % nka], request, (size_t)req_len);
            rc = status == 200 ? 0 : SNPCLIENT_EPROTO;
        }
        int64_t t1 = bench_now_us();
        if (rc != 0) {
            errors++;
            if (!first_error[0])
                snprintf(first_error, sizeof(first_error), "%s (HTTP %d)%s%.200s",
                         snpclient_strerror(rc), status, resp ? ": " : "", resp ? resp : "");
        } else if (i >= warmup && !samples_add(&lat, t1 - t0)) {
            return 1;
        }
        free(resp);
    }
    double secs = (double)(bench_now_us() - start) / 1e6;
    /* What other processes took from the machine meanwhile (bench/booking.c). */
    int64_t busy1 = sys_busy_us(), snpd1 = snpd ? proc_cpu_us(snpd) : -1;
    int64_t self1 = proc_cpu_us(getpid());
    double others_pct = -1, snpd_us = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (snpd0 >= 0 && snpd1 >= 0 && busy0 >= 0 && busy1 >= 0 && secs > 0 && ncpu > 0) {
        double ours = (double)(snpd1 - snpd0 + self1 - self0);
        others_pct = ((double)(busy1 - busy0) - ours) / (secs * 1e6 * (double)ncpu) * 100;
        if (others_pct < 0)
            others_pct = 0;
        snpd_us = lat.n ? (double)(snpd1 - snpd0) / (double)lat.n : -1;
    }
    samples_sort(&lat);
    printf("%s over %s: %zu queries in %.2f s (%.0f/s)\n",
           path == (const char *)QUERY_PATH ? "capacity.query" : path,
           ws     ? "WebSocket"
           : raw  ? "WebSocket, bare sockets"
           : http ? "HTTP, a new connection each"
                  : "HTTP keep-alive",
           lat.n, secs, secs > 0 ? (double)lat.n / secs : 0);
    if (ws)
        printf("  %zu connections, rate-limit waits: %llu (%.2f s)\n", pool.n,
               (unsigned long long)pool.waits, pool.throttled_us / 1e6);
    printf("  p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   p99.9 %.3f ms   max %.3f ms\n",
           samples_pct(&lat, 50) / 1000.0, samples_pct(&lat, 90) / 1000.0,
           samples_pct(&lat, 99) / 1000.0, samples_pct(&lat, 99.9) / 1000.0,
           samples_pct(&lat, 100) / 1000.0);
    if (others_pct >= 0)
        printf("  snpd CPU per query %.0f us; other processes used %.0f%% of the machine's "
               "CPUs meanwhile\n",
               snpd_us, others_pct);
    if (errors)
        printf("  ERRORS: %ld; first: %s\n", errors, first_error);
    printf("RESULT bench=%s transport=%s queries=%zu errors=%ld p50=%u p90=%u p99=%u "
           "p999=%u max=%u snpd_cpu_us=%.0f others_pct=%.0f\n",
           name, transport, lat.n, errors, samples_pct(&lat, 50), samples_pct(&lat, 90),
           samples_pct(&lat, 99), samples_pct(&lat, 99.9), samples_pct(&lat, 100), snpd_us,
           others_pct);
    samples_free(&lat);
    if (k) {
        for (long i = 0; i < nka; i++) {
            close(k[i].fd);
            free(k[i].buf);
        }
        free(k);
    }
    if (ws)
        pool_close(&pool);
    snpclient_free(c);
    tokens_free(&tokens);
    return errors ? 1 : 0;
}
