/* snpbench booking: the end-to-end booking benchmark.
 *
 * `--clients` worker processes run at once; each makes its share of
 * `--count` bookings one after the other: request.create for a pharmacy
 * patient (a fresh client_ref each time), then offer.accept of the slot
 * the answer holds.  Each worker has a pool of connections, each with its
 * own pharmacy token (bench/pool.h: the protocol allows 20 messages per
 * second per connection, so one connection alone caps a client at 10
 * bookings per second; `--pool 1` measures exactly that).
 *
 * `--transport` chooses the client.  `wsraw` (the default) is a bare
 * WebSocket, one blocking call at a time (bench/wsraw.h), so that the
 * client costs the machine about what pgbench's does and the figures show
 * snpd and PostgreSQL.  `snpclient` is the client library the CLI uses: it
 * services every connection of its pool from lws' poll() at each call, so
 * its CPU per booking grows with the pool, and on two cores that CPU is
 * taken from snpd and PostgreSQL.
 *
 * The workers open and authenticate their connections first, then all
 * start together when the parent closes the "go" pipe.  Each measures
 * request.create, offer.accept and the whole booking with CLOCK_MONOTONIC,
 * and hands its latencies to the parent through a pipe.  The parent reads
 * snpd's /metrics and the CPU time of snpd and of PostgreSQL around the
 * measured phase, and prints a human summary and one RESULT line.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench.h"
#include "bench/pool.h"

struct booking_opts {
    int port;
    long clients;
    long count;
    long pool; /* connections per client; 0: enough that none waits */
    const char *run;
    const char *tokens_path;
    pid_t snpd_pid;
    pid_t pg_pid;
    long timeout_s;
    const char *waiting_at; /* --waiting-at: requests no slot can serve, from this commune */
    bool snpclient;         /* --transport snpclient, not wsraw */
};

/* What a worker sends back before its latencies. */
struct worker_result {
    int64_t start_us;
    int64_t end_us;
    int64_t cpu_us; /* this worker's CPU time during the measured phase */
    int64_t throttled_us;
    uint64_t waits;
    uint64_t ok;
    uint64_t errors;
    uint64_t pool;
    char first_error[240];
};

static int64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static void note_error(struct worker_result *r, const char *what, const char *why)
{
    r->errors++;
    if (!r->first_error[0])
        snprintf(r->first_error, sizeof(r->first_error), "%s: %.200s", what, why);
}

/* One connection of a worker's pool, whichever the transport. */
struct conn {
    struct snpclient_ws *ws;
    struct wsraw *raw;
};

static struct conn take_conn(struct pool *p, int need)
{
    struct conn c = {0};
    if (p->bare)
        c.raw = pool_take_bare(p, need);
    else
        c.ws = pool_take(p, need);
    return c;
}

/* Sends one message and waits for its answer.  Returns 0 when it came with
 * "ok": true, -1 otherwise with a reason in `why`; `*answer` (`*len` bytes,
 * not NUL-terminated) is the answer whenever one came.  The caller frees
 * `*owned` once done with the answer. */
static int call(struct conn c, const char *id, const char *type, const char *data, char **owned,
                const char **answer, size_t *len, char *why, size_t whylen)
{
    *owned = NULL;
    if (c.raw)
        return wsraw_request(c.raw, id, type, data, answer, len, why, whylen);
    int rc = snpclient_ws_call(c.ws, type, data, 10000, owned);
    *answer = *owned;
    *len = *owned ? strlen(*owned) : 0;
    if (rc != 0)
        snprintf(why, whylen, "%s: %s%s%.160s", type, snpclient_strerror(rc), *owned ? ": " : "",
                 *owned ? *owned : "");
    return rc == 0 ? 0 : -1;
}

/* The benchmark patient: a sore throat with a positive test, at Redon,
 * who can be seen anywhere within 48 hours.  With `waiting_at`, the patient
 * is at that commune and can go no further than 1 km, at an office or at
 * home: with every site far from it, no slot can serve them and the
 * request waits. */
static void request_body(char *buf, size_t size, const char *run, long worker, long i,
                         const char *waiting_at)
{
    snprintf(
        buf, size,
        "{\"client_ref\":\"b%s-%ld-%ld\","
        "\"patient\":{\"initials\":\"J. D.\",\"birth_year\":1980,\"sex\":\"female\","
        "\"commune_insee\":\"%s\",\"has_mt\":false},"
        "\"motif\":{\"code\":\"ent\"},\"urgency\":\"48h\",%s"
        "\"source\":{\"pharmacy\":{\"protocol\":\"sore_throat\",\"test_result\":\"positive\"}}}",
        run, worker, i, waiting_at ? waiting_at : BENCH_COMMUNE,
        waiting_at ? "\"constraints\":{\"modes\":[\"office\",\"home\"],\"max_distance_km\":1},"
                   : "");
}

/* Whether a request.create answer says the request waits. */
static bool read_waiting(const char *resp, size_t len)
{
    json_t *root = json_loadb(resp, len, 0, NULL);
    const char *status =
        json_string_value(json_object_get(json_object_get(root, "data"), "status"));
    bool ok = status && strcmp(status, "waiting") == 0;
    json_decref(root);
    return ok;
}

/* Reads request_id, status and the held slot out of a request.create answer. */
static bool read_offer(const char *resp, size_t len, json_int_t *request_id, json_int_t *slot_id)
{
    json_t *root = json_loadb(resp, len, 0, NULL);
    json_t *data = json_object_get(root, "data");
    const char *status = json_string_value(json_object_get(data, "status"));
    *request_id = json_integer_value(json_object_get(data, "request_id"));
    *slot_id = json_integer_value(
        json_object_get(json_object_get(json_object_get(data, "offer"), "slot"), "slot_id"));
    bool ok = status && strcmp(status, "offered") == 0 && *request_id > 0 && *slot_id > 0;
    json_decref(root);
    return ok;
}

static int worker(const struct booking_opts *o, long w, long count, char *const *tokens,
                  size_t ntokens, size_t pool_size, int ready_fd, int go_fd, int out_fd)
{
    struct worker_result r;
    memset(&r, 0, sizeof(r));
    struct samples create = {0}, accept = {0}, total = {0};
    struct snpclient *c = o->snpclient ? snpclient_new("127.0.0.1", o->port, false) : NULL;
    struct pool pool;
    char err[300] = "cannot create the client";
    char ready = 1;
    int opened = !o->snpclient
                     ? pool_open_bare(&pool, o->port, pool_size, tokens, ntokens, err, sizeof(err))
                 : c ? pool_open(&pool, c, pool_size, tokens, ntokens, err, sizeof(err))
                     : -1;
    if (opened != 0) {
        fprintf(stderr, "snpbench booking: client %ld: %s\n", w, err);
        ready = 0;
        if (!bench_write_all(ready_fd, &ready, 1))
            return 1;
        snpclient_free(c);
        return 1;
    }
    r.pool = pool.n;
    if (!bench_write_all(ready_fd, &ready, 1))
        return 1;
    char go;
    if (read(go_fd, &go, 1) != 0) /* the parent closes the pipe to start us all */
        return 1;

    r.start_us = bench_now_us();
    int64_t cpu0 = self_cpu_us();
    char body[600], accept_body[100], id[32], why[300];
    for (long i = 0; i < count; i++) {
        struct conn conn = take_conn(&pool, 2);
        request_body(body, sizeof(body), o->run, w, i, o->waiting_at);
        char *owned;
        const char *resp;
        size_t len;
        snprintf(id, sizeof(id), "c%ld", i);
        int64_t t0 = bench_now_us();
        int rc = call(conn, id, "request.create", body, &owned, &resp, &len, why, sizeof(why));
        int64_t t1 = bench_now_us();
        if (o->waiting_at) {
            bool waiting = rc == 0 && read_waiting(resp, len);
            if (!waiting)
                note_error(&r, "request.create (to wait)", rc == 0 ? "not waiting" : why);
            free(owned);
            if (!waiting && r.errors >= 50)
                break;
            if (waiting && (r.ok++, !samples_add(&create, t1 - t0)))
                return 1;
            continue;
        }
        json_int_t request_id, slot_id;
        if (rc != 0 || !read_offer(resp, len, &request_id, &slot_id)) {
            if (rc == 0)
                snprintf(why, sizeof(why), "no offer: %.*s", (int)(len < 160 ? len : 160), resp);
            note_error(&r, "request.create", why);
            free(owned);
            if (r.errors >= 50)
                break;
            continue;
        }
        free(owned);
        snprintf(accept_body, sizeof(accept_body), "{\"request_id\":%lld,\"slot_id\":%lld}",
                 (long long)request_id, (long long)slot_id);
        snprintf(id, sizeof(id), "a%ld", i);
        int64_t t2 = bench_now_us();
        rc = call(conn, id, "offer.accept", accept_body, &owned, &resp, &len, why, sizeof(why));
        int64_t t3 = bench_now_us();
        free(owned);
        if (rc != 0) {
            note_error(&r, "offer.accept", why);
            if (r.errors >= 50)
                break;
            continue;
        }
        r.ok++;
        if (!samples_add(&create, t1 - t0) || !samples_add(&accept, t3 - t2) ||
            !samples_add(&total, t3 - t0))
            return 1;
    }
    r.end_us = bench_now_us();
    r.cpu_us = self_cpu_us() - cpu0;
    r.throttled_us = pool.throttled_us;
    r.waits = pool.waits;
    bool sent = bench_write_all(out_fd, &r, sizeof(r)) && samples_write(out_fd, &create) &&
                samples_write(out_fd, &accept) && samples_write(out_fd, &total);
    close(out_fd);
    samples_free(&create);
    samples_free(&accept);
    samples_free(&total);
    pool_close(&pool);
    snpclient_free(c);
    return sent ? 0 : 1;
}

static void print_latency(const char *name, struct samples *s)
{
    samples_sort(s);
    printf("  %-22s p50 %7.3f ms   p90 %7.3f ms   p99 %7.3f ms   max %7.3f ms\n", name,
           samples_pct(s, 50) / 1000.0, samples_pct(s, 90) / 1000.0, samples_pct(s, 99) / 1000.0,
           samples_pct(s, 100) / 1000.0);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: snpbench booking --port N --tokens FILE --clients N --count N\n"
            "                        [--pool N] [--run TAG] [--snpd-pid PID] [--pg-pid PID]\n"
            "                        [--timeout-s N] [--waiting-at INSEE]\n"
            "                        [--transport wsraw|snpclient]\n"
            "  --count    bookings in all, shared evenly between the clients\n"
            "  --pool     connections (and tokens) per client; default: enough that the\n"
            "             protocol's per-connection rate limit never makes a client wait\n"
            "  --run      a tag that makes this run's client_refs unique\n"
            "  --pg-pid   the postmaster, to count PostgreSQL's CPU time\n"
            "  --waiting-at  create requests that no slot can serve instead (a patient at\n"
            "             INSEE who goes no further than 1 km), accept nothing, and report\n"
            "             snpd's memory (--snpd-pid) before and after\n"
            "  --transport  wsraw (default): a bare WebSocket client, as light as pgbench;\n"
            "             snpclient: the client library, whose poll() over its pool costs\n"
            "             CPU that the machine's two cores then lack\n");
    return 2;
}

int bench_booking(int argc, char **argv)
{
    struct booking_opts o = {.clients = 1, .count = 1000, .timeout_s = 600};
    char run_default[32];
    snprintf(run_default, sizeof(run_default), "%d", (int)getpid());
    o.run = run_default;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--port") == 0)
            o.port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--tokens") == 0)
            o.tokens_path = v;
        else if (strcmp(a, "--clients") == 0)
            o.clients = bench_parse_long(a, v, 1, 256);
        else if (strcmp(a, "--count") == 0)
            o.count = bench_parse_long(a, v, 1, 1000000);
        else if (strcmp(a, "--pool") == 0)
            o.pool = bench_parse_long(a, v, 1, 10000);
        else if (strcmp(a, "--run") == 0)
            o.run = v;
        else if (strcmp(a, "--snpd-pid") == 0)
            o.snpd_pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--pg-pid") == 0)
            o.pg_pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--timeout-s") == 0)
            o.timeout_s = bench_parse_long(a, v, 1, 3600);
        else if (strcmp(a, "--waiting-at") == 0)
            o.waiting_at = v;
        else if (strcmp(a, "--transport") == 0 && strcmp(v, "wsraw") == 0)
            o.snpclient = false;
        else if (strcmp(a, "--transport") == 0 && strcmp(v, "snpclient") == 0)
            o.snpclient = true;
        else
            return usage();
    }
    if (argc % 2 || !o.port || !o.tokens_path)
        return usage();

    struct tokens tokens;
    tokens_load(&tokens, o.tokens_path);
    long per_client = o.count / o.clients;
    long extra = o.count % o.clients;
    size_t per_booking = o.waiting_at ? 1 : 2; /* messages */
    size_t pool_size =
        o.pool ? (size_t)o.pool : pool_size_for(per_booking * (size_t)(per_client + 1));
    if (pool_size * (size_t)o.clients > tokens.n) {
        fprintf(stderr, "snpbench booking: %zu connections need as many tokens; %s has %zu\n",
                pool_size * (size_t)o.clients, o.tokens_path, tokens.n);
        return 2;
    }
    /* A run is bounded in time as in count: past the limit, everything stops. */
    alarm((unsigned)o.timeout_s);

    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t *pids = calloc((size_t)o.clients, sizeof(*pids));
    int *outs = calloc((size_t)o.clients, sizeof(*outs));
    if (!pids || !outs)
        return 1;
    fflush(stdout);
    for (long w = 0; w < o.clients; w++) {
        int out[2];
        if (pipe(out) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            /* A worker dies with the parent, whatever stops the parent. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(ready[0]);
            close(go[1]);
            close(out[0]);
            long count = per_client + (w < extra ? 1 : 0);
            _exit(worker(&o, w, count, tokens.v + (size_t)w * pool_size, pool_size, pool_size,
                         ready[1], go[0], out[1]));
        }
        close(out[1]);
        pids[w] = pid;
        outs[w] = out[0];
    }
    close(ready[1]);
    close(go[0]);

    /* Wait until every worker has its connections open. */
    long n_ready = 0, n_failed = 0;
    while (n_ready + n_failed < o.clients) {
        char b;
        ssize_t n = read(ready[0], &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (b)
            n_ready++;
        else
            n_failed++;
    }
    close(ready[0]);
    if (n_ready < o.clients) {
        fprintf(stderr, "snpbench booking: %ld of %ld clients could not connect\n",
                o.clients - n_ready, o.clients);
        for (long w = 0; w < o.clients; w++)
            kill(pids[w], SIGKILL);
        return 1;
    }

    struct snpd_metrics m0 = {0}, m1 = {0};
    bool have_metrics = snpd_metrics_read(o.port, &m0);
    int64_t snpd_cpu0 = o.snpd_pid ? proc_cpu_us(o.snpd_pid) : -1;
    int64_t pg_cpu0 = o.pg_pid ? proc_tree_cpu_us(o.pg_pid) : -1;
    int64_t busy0 = sys_busy_us();
    long rss0 = o.snpd_pid ? proc_status_kb(o.snpd_pid, "VmRSS") : -1;
    close(go[1]); /* go */

    struct samples create = {0}, accept = {0}, total = {0};
    struct worker_result sum;
    memset(&sum, 0, sizeof(sum));
    int64_t first = INT64_MAX, last = 0;
    bool complete = true;
    for (long w = 0; w < o.clients; w++) {
        struct worker_result r;
        struct samples a = {0}, b = {0}, t = {0};
        if (!bench_read_all(outs[w], &r, sizeof(r)) || !samples_read(outs[w], &a) ||
            !samples_read(outs[w], &b) || !samples_read(outs[w], &t)) {
            fprintf(stderr, "snpbench booking: client %ld gave no result\n", w);
            complete = false;
            continue;
        }
        close(outs[w]);
        if (r.start_us < first)
            first = r.start_us;
        if (r.end_us > last)
            last = r.end_us;
        sum.ok += r.ok;
        sum.errors += r.errors;
        sum.cpu_us += r.cpu_us;
        sum.throttled_us += r.throttled_us;
        sum.waits += r.waits;
        sum.pool += r.pool;
        if (!sum.first_error[0] && r.first_error[0])
            memcpy(sum.first_error, r.first_error, sizeof(sum.first_error));
        if (!samples_merge(&create, &a) || !samples_merge(&accept, &b) ||
            !samples_merge(&total, &t))
            return 1;
        samples_free(&a);
        samples_free(&b);
        samples_free(&t);
    }
    int64_t snpd_cpu1 = o.snpd_pid ? proc_cpu_us(o.snpd_pid) : -1;
    int64_t pg_cpu1 = o.pg_pid ? proc_tree_cpu_us(o.pg_pid) : -1;
    int64_t busy1 = sys_busy_us();
    have_metrics = snpd_metrics_read(o.port, &m1) && have_metrics;
    long rss1 = o.snpd_pid ? proc_status_kb(o.snpd_pid, "VmRSS") : -1;
    for (long w = 0; w < o.clients; w++) {
        int st;
        while (waitpid(pids[w], &st, 0) < 0 && errno == EINTR)
            ;
    }
    alarm(0);

    double secs = last > first ? (double)(last - first) / 1e6 : 0;
    double per_s = secs > 0 ? (double)sum.ok / secs : 0;
    double n = sum.ok ? (double)sum.ok : 1;
    double dq = m1.db_queries - m0.db_queries;
    double db_ms = dq > 0 ? (m1.db_seconds - m0.db_seconds) / dq * 1000 : 0;
    double snpd_us = snpd_cpu0 >= 0 && snpd_cpu1 >= 0 ? (double)(snpd_cpu1 - snpd_cpu0) / n : -1;
    double pg_us = pg_cpu0 >= 0 && pg_cpu1 >= 0 ? (double)(pg_cpu1 - pg_cpu0) / n : -1;
    /* What the rest of the machine took: busy time not ours, as a share of
     * every CPU over the run. */
    double others_pct = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (busy0 >= 0 && busy1 >= 0 && snpd_us >= 0 && pg_us >= 0 && secs > 0 && ncpu > 0) {
        double ours = (snpd_us + pg_us) * n + (double)sum.cpu_us;
        others_pct = ((double)(busy1 - busy0) - ours) / (secs * 1e6 * (double)ncpu) * 100;
        if (others_pct < 0)
            others_pct = 0;
    }

    const char *transport = o.snpclient ? "snpclient" : "wsraw";
    if (o.waiting_at) {
        samples_sort(&create);
        printf("waiting: %ld client(s), %llu connection(s), %llu requests created that no slot "
               "can serve, in %.2f s (%.1f/s)\n",
               o.clients, (unsigned long long)sum.pool, (unsigned long long)sum.ok, secs, per_s);
        print_latency("request.create", &create);
        printf("  snpd: %.0f requests waiting, %.0f live slots in memory; VmRSS %.1f MB before, "
               "%.1f MB after; CPU %.0f us per request\n",
               m1.waiting_requests, m1.live_slots, rss0 / 1024.0, rss1 / 1024.0, snpd_us);
        if (sum.errors)
            printf("  ERRORS: %llu; first: %s\n", (unsigned long long)sum.errors, sum.first_error);
        printf("RESULT bench=waiting clients=%ld requests=%llu errors=%llu seconds=%.3f "
               "create_p50=%u create_p99=%u waiting=%.0f live_slots=%.0f rss_before_mb=%.1f "
               "rss_after_mb=%.1f snpd_cpu_us=%.0f others_pct=%.0f\n",
               o.clients, (unsigned long long)sum.ok, (unsigned long long)sum.errors, secs,
               samples_pct(&create, 50), samples_pct(&create, 99), m1.waiting_requests,
               m1.live_slots, rss0 / 1024.0, rss1 / 1024.0, snpd_us, others_pct);
    } else {
        printf("booking: %ld client(s) (%s), %llu connection(s) in all, %llu bookings in %.2f s: "
               "%.1f bookings/s\n",
               o.clients, transport, (unsigned long long)sum.pool, (unsigned long long)sum.ok, secs,
               per_s);
        print_latency("request.create", &create);
        print_latency("offer.accept", &accept);
        print_latency("create + accept", &total);
        if (have_metrics)
            printf("  snpd: %.2f database queries per booking, %.3f ms each on average "
                   "(queue wait included)\n",
                   dq / n, db_ms);
        printf("  CPU per booking: snpd %.0f us, PostgreSQL %.0f us, clients %.0f us\n", snpd_us,
               pg_us, (double)sum.cpu_us / n);
        if (others_pct >= 0)
            printf("  other processes on this machine used %.0f%% of its CPUs meanwhile\n",
                   others_pct);
        if (sum.waits)
            printf("  rate limit: clients waited %.2f s in all (%llu times) for a connection "
                   "under 20 messages/s\n",
                   sum.throttled_us / 1e6, (unsigned long long)sum.waits);
        if (sum.errors)
            printf("  ERRORS: %llu; first: %s\n", (unsigned long long)sum.errors, sum.first_error);
        printf(
            "RESULT bench=booking transport=%s clients=%ld pool=%llu bookings=%llu errors=%llu "
            "seconds=%.3f "
            "per_s=%.1f create_p50=%u create_p99=%u accept_p50=%u accept_p90=%u accept_p99=%u "
            "total_p50=%u total_p90=%u total_p99=%u db_queries_per_booking=%.2f db_ms=%.3f "
            "snpd_cpu_us=%.0f pg_cpu_us=%.0f client_cpu_us=%.0f throttled_s=%.2f others_pct=%.0f\n",
            transport, o.clients, (unsigned long long)sum.pool, (unsigned long long)sum.ok,
            (unsigned long long)sum.errors, secs, per_s, samples_pct(&create, 50),
            samples_pct(&create, 99), samples_pct(&accept, 50), samples_pct(&accept, 90),
            samples_pct(&accept, 99), samples_pct(&total, 50), samples_pct(&total, 90),
            samples_pct(&total, 99), dq / n, db_ms, snpd_us, pg_us, (double)sum.cpu_us / n,
            sum.throttled_us / 1e6, others_pct);
    }
    samples_free(&create);
    samples_free(&accept);
    samples_free(&total);
    free(pids);
    free(outs);
    tokens_free(&tokens);
    return complete && sum.errors == 0 ? 0 : 1;
}
