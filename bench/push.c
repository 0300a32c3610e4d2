/* snpbench push: how long a change takes to reach the connections
 * subscribed to it.
 *
 * `--watchers` WebSocket connections, each with its own token of a role
 * that may watch the territory's capacity (the `capacity` topic: sas, desk,
 * coordinator, admin), subscribe to `capacity` on the snpd at
 * `--watch-port`.  They are held by `--procs` receiver processes, each from
 * its own loopback address, on bare sockets (bench/wsraw.h) in an epoll
 * set, so that every push is timestamped when read() returns it.  The
 * parent then makes `--changes` changes one at a time, `--gap-ms` apart,
 * through the snpd at `--port` with a practitioner's token: it publishes a
 * slot, then withdraws it, and so on; each is one capacity.changed push
 * (status free, then withdrawn) to every subscriber.  With --watch-port
 * another process than --port, the push travels through PostgreSQL's
 * notification to the other process (docs/dispatch.md, "Pushes").
 *
 * Reported, over every (change, subscriber) pair: the latency from the
 * change's sending to the subscriber's receipt (p50 ... max), the same from
 * the change's acknowledgement (pushes may arrive before it), how many
 * pushes were missing or came twice, and the change's own round trip.  The
 * first `--warmup` changes are not counted.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench.h"
#include "bench/pool.h"
#include "bench/wsraw.h"

#define RUN_MAX_S    900  /* the whole benchmark never runs longer */
#define LATE_MS      2000 /* pushes still awaited after the last change */
#define PUBLISHERS   4    /* the publisher's connections, under the rate limit */
#define START_LEAD_H 49   /* the slots published start after the territory's */

/* Status of a slot in a push, as far as this benchmark cares. */
enum push_status {
    PUSH_FREE,      /* published */
    PUSH_WITHDRAWN, /* withdrawn */
    PUSH_OTHER      /* anything else (held, booked...): not one of ours */
};

/* One change seen by one subscriber. */
struct receipt {
    int64_t slot_id;
    int64_t at_us; /* CLOCK_MONOTONIC when read() returned it */
    uint32_t conn; /* which subscriber, 0 .. watchers - 1 */
    uint32_t status;
};

/* One change made by the publisher. */
struct change {
    int64_t slot_id;
    int64_t sent_us;
    int64_t acked_us;
    uint32_t status;
    uint32_t seen; /* subscribers that received it */
};

/* What a receiver process reports once its connections are subscribed. */
struct receiver_ready {
    uint64_t opened;
    char first_error[300];
};

struct push_opts {
    int port;
    int watch_port;
    const char *watchers_path;
    const char *gp_token;
    long watchers;
    long procs;
    long site;
    long changes;
    long warmup;
    long gap_ms;
    const char *name;
    pid_t snpd_pid;
    pid_t watch_snpd_pid;
    pid_t pg_pid;
};

static int64_t self_cpu_us(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* Appends to `out` one receipt per change of a capacity.changed push.  A
 * change is an object without nested objects, so its status is found
 * between the braces around its slot_id. */
static bool note_push(const char *msg, size_t len, uint32_t conn, int64_t at, struct receipt **out,
                      size_t *n, size_t *cap)
{
    if (!memmem(msg, len, "\"capacity.changed\"", 18))
        return true;
    const char *end = msg + len;
    for (const char *p = msg; (p = memmem(p, (size_t)(end - p), "\"slot_id\":", 10));) {
        const char *open = p, *close = memchr(p, '}', (size_t)(end - p));
        while (open > msg && *open != '{')
            open--;
        if (!close)
            break;
        int64_t id = strtoll(p + 10, NULL, 10);
        const char *st = memmem(open, (size_t)(close - open), "\"status\":\"", 10);
        uint32_t status = PUSH_OTHER;
        if (st && strncmp(st + 10, "free\"", 5) == 0)
            status = PUSH_FREE;
        else if (st && strncmp(st + 10, "withdrawn\"", 10) == 0)
            status = PUSH_WITHDRAWN;
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 65536;
            struct receipt *r = realloc(*out, c * sizeof(*r));
            if (!r)
                return false;
            *out = r;
            *cap = c;
        }
        (*out)[(*n)++] =
            (struct receipt){.slot_id = id, .at_us = at, .conn = conn, .status = status};
        p = close;
    }
    return true;
}

/* A receiver process: opens `n` subscribed connections from `address`,
 * says so on `ready_fd`, then records every push until `stop_fd` closes,
 * and writes its CPU time, receipt count and receipts to `out_fd`. */
static int receiver(const struct push_opts *o, const char *address, char *const *tokens, size_t n,
                    uint32_t first_conn, int ready_fd, int stop_fd, int out_fd)
{
    struct receiver_ready rep;
    memset(&rep, 0, sizeof(rep));
    struct wsraw *ws = calloc(n, sizeof(*ws));
    int ep = epoll_create1(0);
    if (!ws || ep < 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char err[300];
        ws[i].fd = -1;
        if (wsraw_open(&ws[i], address, o->watch_port, tokens[i], 10000, err, sizeof(err)) != 0 ||
            wsraw_call(&ws[i], "s", "subscribe", "{\"topics\":[\"capacity\"]}", err, sizeof(err)) !=
                0 ||
            !wsraw_set_nonblocking(&ws[i])) {
            snprintf(rep.first_error, sizeof(rep.first_error), "%s: connection %zu: %.200s",
                     address, i + 1, err);
            wsraw_close(&ws[i]);
            break;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ws[i].fd, &ev) != 0)
            return 1;
        rep.opened++;
    }
    struct epoll_event stop = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &stop) != 0)
        return 1;
    if (!bench_write_all(ready_fd, &rep, sizeof(rep)))
        return 1;
    close(ready_fd);

    struct receipt *got = NULL;
    size_t ngot = 0, cap = 0;
    int64_t cpu0 = self_cpu_us(RUSAGE_SELF);
    bool running = true;
    while (running) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            break;
        for (int e = 0; e < k; e++) {
            if (evs[e].data.u64 == UINT64_MAX) {
                running = false;
                continue;
            }
            struct wsraw *w = &ws[evs[e].data.u64];
            ssize_t r;
            while ((r = wsraw_fill(w)) > 0) {
                int64_t at = bench_now_us();
                const char *msg;
                size_t len;
                while (wsraw_next(w, &msg, &len))
                    if (!note_push(msg, len, first_conn + (uint32_t)evs[e].data.u64, at, &got,
                                   &ngot, &cap))
                        return 1;
            }
            if (r < 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
        }
    }
    int64_t cpu = self_cpu_us(RUSAGE_SELF) - cpu0;
    uint64_t count = ngot;
    bool sent = bench_write_all(out_fd, &cpu, sizeof(cpu)) &&
                bench_write_all(out_fd, &count, sizeof(count)) &&
                bench_write_all(out_fd, got, ngot * sizeof(*got));
    for (size_t i = 0; i < n; i++)
        wsraw_close(&ws[i]);
    free(ws);
    free(got);
    close(ep);
    return sent ? 0 : 1;
}

/* "2026-12-07T09:41:00Z": `minutes` from now, on a whole minute. */
static void start_text(char *buf, size_t size, long minutes)
{
    time_t t = time(NULL) / 60 * 60 + (time_t)minutes * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Makes change `i`: even ones publish a slot starting `i / 2` minutes after
 * the lead, odd ones withdraw the slot the change before published. */
static bool make_change(const struct push_opts *o, struct pool *pool, long i, struct change *ch,
                        int64_t previous_slot, char *err, size_t errlen)
{
    char body[512];
    bool publish = i % 2 == 0;
    if (publish) {
        char start[40];
        start_text(start, sizeof(start), START_LEAD_H * 60 + i / 2);
        snprintf(body, sizeof(body),
                 "{\"site_id\":%ld,\"mode\":\"office\",\"audiences\":[\"sas\"],"
                 "\"slots\":[{\"start\":\"%s\",\"duration_min\":20}]}",
                 o->site, start);
    } else {
        snprintf(body, sizeof(body), "{\"slot_ids\":[%lld]}", (long long)previous_slot);
    }
    struct snpclient_ws *ws = pool_take(pool, 1);
    char *resp = NULL;
    ch->sent_us = bench_now_us();
    int rc = snpclient_ws_call(ws, publish ? "slot.publish" : "slot.withdraw", body, 10000, &resp);
    ch->acked_us = bench_now_us();
    ch->status = publish ? PUSH_FREE : PUSH_WITHDRAWN;
    json_t *root = rc == 0 ? json_loads(resp, 0, NULL) : NULL;
    json_t *ids = json_object_get(json_object_get(root, "data"), "slot_ids");
    ch->slot_id = json_integer_value(json_array_get(ids, 0));
    json_decref(root);
    bool ok = ch->slot_id > 0;
    if (!ok)
        snprintf(err, errlen, "change %ld (%s): %s%s%.200s", i,
                 publish ? "slot.publish" : "slot.withdraw", snpclient_strerror(rc),
                 resp ? ": " : "", resp ? resp : "");
    free(resp);
    return ok;
}

static int cmp_change(const void *a, const void *b)
{
    const struct change *x = *(struct change *const *)a, *y = *(struct change *const *)b;
    if (x->slot_id != y->slot_id)
        return x->slot_id < y->slot_id ? -1 : 1;
    return x->status < y->status ? -1 : x->status > y->status;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: snpbench push --port N --watchers-file FILE --gp-token TOKEN --site ID\n"
            "                     [--watch-port N] [--watchers N] [--procs N] [--changes N]\n"
            "                     [--warmup N] [--gap-ms N] [--name NAME] [--snpd-pid PID]\n"
            "                     [--watch-snpd-pid PID] [--pg-pid PID]\n"
            "  --port        the snpd the changes are made on (slot.publish, slot.withdraw)\n"
            "  --watch-port  the snpd the subscribers are connected to (default: --port)\n"
            "  --gp-token    a practitioner's token; --site one of their sites\n"
            "  --watchers    subscribers, one token each from the file (capacity watchers)\n");
    return 2;
}

int bench_push(int argc, char **argv)
{
    struct push_opts o = {
        .watchers = 1000, .procs = 2, .changes = 200, .warmup = 10, .gap_ms = 100, .name = "push"};
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--port") == 0)
            o.port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--watch-port") == 0)
            o.watch_port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--watchers-file") == 0)
            o.watchers_path = v;
        else if (strcmp(a, "--gp-token") == 0)
            o.gp_token = v;
        else if (strcmp(a, "--site") == 0)
            o.site = bench_parse_long(a, v, 1, 1L << 40);
        else if (strcmp(a, "--watchers") == 0)
            o.watchers = bench_parse_long(a, v, 1, 100000);
        else if (strcmp(a, "--procs") == 0)
            o.procs = bench_parse_long(a, v, 1, 64);
        else if (strcmp(a, "--changes") == 0)
            o.changes = bench_parse_long(a, v, 2, 10000);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = bench_parse_long(a, v, 0, 1000);
        else if (strcmp(a, "--gap-ms") == 0)
            o.gap_ms = bench_parse_long(a, v, 1, 10000);
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--snpd-pid") == 0)
            o.snpd_pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--watch-snpd-pid") == 0)
            o.watch_snpd_pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--pg-pid") == 0)
            o.pg_pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else
            return usage();
    }
    if (argc % 2 || !o.port || !o.watchers_path || !o.gp_token || !o.site)
        return usage();
    if (!o.watch_port)
        o.watch_port = o.port;
    if (o.procs > o.watchers)
        o.procs = o.watchers;
    struct tokens tokens;
    tokens_load(&tokens, o.watchers_path);
    if ((size_t)o.watchers > tokens.n) {
        fprintf(stderr, "snpbench push: %ld subscribers need as many tokens; %s has %zu\n",
                o.watchers, o.watchers_path, tokens.n);
        return 2;
    }
    alarm(RUN_MAX_S);

    /* The receivers first: every subscriber is in place before the first change. */
    int ready[2], stop[2];
    if (pipe(ready) != 0 || pipe(stop) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t *pids = calloc((size_t)o.procs, sizeof(*pids));
    int *outs = calloc((size_t)o.procs, sizeof(*outs));
    if (!pids || !outs)
        return 1;
    fflush(stdout);
    long given = 0, started = 0;
    for (long p = 0; p < o.procs; p++) {
        long n = o.watchers / o.procs + (p < o.watchers % o.procs ? 1 : 0);
        int out[2];
        if (pipe(out) != 0) {
            perror("pipe");
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(ready[0]);
            close(stop[1]);
            close(out[0]);
            char address[32];
            bench_client_address(p, address, sizeof(address));
            _exit(receiver(&o, address, tokens.v + given, (size_t)n, (uint32_t)given, ready[1],
                           stop[0], out[1]));
        }
        close(out[1]);
        outs[started] = out[0];
        pids[started++] = pid;
        given += n;
    }
    close(ready[1]);
    close(stop[0]);
    uint64_t opened = 0;
    char first_error[300] = "";
    int64_t t_open = bench_now_us();
    for (long p = 0; p < started; p++) {
        struct receiver_ready rep;
        if (!bench_read_all(ready[0], &rep, sizeof(rep))) {
            snprintf(first_error, sizeof(first_error), "a receiver process died");
            break;
        }
        opened += rep.opened;
        if (!first_error[0] && rep.first_error[0])
            memcpy(first_error, rep.first_error, sizeof(first_error));
    }
    close(ready[0]);
    double open_s = (double)(bench_now_us() - t_open) / 1e6;

    /* Then the changes, one at a time. */
    struct change *changes = calloc((size_t)o.changes, sizeof(*changes));
    struct snpclient *c = snpclient_new("127.0.0.1", o.port, false);
    struct pool pool;
    char err[300] = "cannot create the client";
    long made = 0, errors = 0;
    int64_t busy0 = sys_busy_us(), self0 = self_cpu_us(RUSAGE_SELF);
    int64_t snpd0 = o.snpd_pid ? proc_cpu_us(o.snpd_pid) : 0;
    int64_t watch0 = o.watch_snpd_pid ? proc_cpu_us(o.watch_snpd_pid) : 0;
    int64_t pg0 = o.pg_pid ? proc_tree_cpu_us(o.pg_pid) : 0;
    int64_t t0 = bench_now_us();
    if (!changes || !c ||
        pool_open(&pool, c, PUBLISHERS, (char *const *)&o.gp_token, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "snpbench push: %s\n", err);
        errors++;
    } else if (opened == (uint64_t)o.watchers) {
        int64_t previous = 0;
        for (long i = 0; i < o.changes && errors < 10; i++) {
            int64_t due = t0 + i * o.gap_ms * 1000;
            int64_t now = bench_now_us();
            if (due > now)
                bench_sleep_us(due - now);
            if (!make_change(&o, &pool, i, &changes[made], previous, err, sizeof(err))) {
                if (!errors++)
                    snprintf(first_error, sizeof(first_error), "%s", err);
                previous = 0;
                continue;
            }
            previous = changes[made++].slot_id;
        }
        bench_sleep_us(LATE_MS * 1000);
        pool_close(&pool);
    }
    double secs = (double)(bench_now_us() - t0) / 1e6;
    int64_t busy1 = sys_busy_us(), self1 = self_cpu_us(RUSAGE_SELF);
    int64_t snpd1 = o.snpd_pid ? proc_cpu_us(o.snpd_pid) : 0;
    int64_t watch1 = o.watch_snpd_pid ? proc_cpu_us(o.watch_snpd_pid) : 0;
    int64_t pg1 = o.pg_pid ? proc_tree_cpu_us(o.pg_pid) : 0;
    snpclient_free(c);

    /* Collect the receipts. */
    close(stop[1]);
    struct receipt *got = NULL;
    size_t ngot = 0;
    int64_t receivers_cpu = 0;
    for (long p = 0; p < started; p++) {
        int64_t cpu;
        uint64_t count;
        if (!bench_read_all(outs[p], &cpu, sizeof(cpu)) ||
            !bench_read_all(outs[p], &count, sizeof(count)) || count > 100000000) {
            fprintf(stderr, "snpbench push: a receiver process died\n");
            return 1;
        }
        struct receipt *g = realloc(got, (ngot + count) * sizeof(*got) + 1);
        if (!g || !bench_read_all(outs[p], g + ngot, count * sizeof(*g)))
            return 1;
        got = g;
        ngot += count;
        receivers_cpu += cpu;
        close(outs[p]);
        int st;
        while (waitpid(pids[p], &st, 0) < 0 && errno == EINTR)
            ;
    }

    /* Match each receipt to its change: by slot and status. */
    struct change **index = calloc((size_t)made + 1, sizeof(*index));
    if (!index)
        return 1;
    for (long i = 0; i < made; i++)
        index[i] = &changes[i];
    qsort(index, (size_t)made, sizeof(*index), cmp_change);
    struct samples from_send = {0}, from_ack = {0}, rtt = {0};
    uint64_t early = 0, strays = 0, counted_changes = 0;
    for (size_t r = 0; r < ngot; r++) {
        struct change key = {.slot_id = got[r].slot_id, .status = got[r].status}, *kp = &key;
        struct change **hit = bsearch(&kp, index, (size_t)made, sizeof(*index), cmp_change);
        if (!hit) {
            strays++; /* another slot's change, or a status we did not make */
            continue;
        }
        struct change *ch = *hit;
        ch->seen++;
        if (ch - changes < o.warmup)
            continue;
        if (got[r].at_us < ch->acked_us)
            early++;
        if (!samples_add(&from_send, got[r].at_us - ch->sent_us) ||
            !samples_add(&from_ack, got[r].at_us - ch->acked_us))
            return 1;
    }
    uint64_t missing = 0, twice = 0;
    char missed[300] = "";
    for (long i = 0; i < made; i++) {
        if (changes[i].seen < opened && strlen(missed) < sizeof(missed) - 60)
            snprintf(missed + strlen(missed), sizeof(missed) - strlen(missed),
                     "%s#%ld (%s slot %lld: %u of %llu)", missed[0] ? ", " : "", i,
                     changes[i].status == PUSH_FREE ? "publish" : "withdraw",
                     (long long)changes[i].slot_id, changes[i].seen, (unsigned long long)opened);
        if (changes[i].seen < opened)
            missing += opened - changes[i].seen;
        else
            twice += changes[i].seen - opened;
        if (i >= o.warmup) {
            counted_changes++;
            if (!samples_add(&rtt, changes[i].acked_us - changes[i].sent_us))
                return 1;
        }
    }
    samples_sort(&from_send);
    samples_sort(&from_ack);
    samples_sort(&rtt);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double ours = (double)(self1 - self0 + receivers_cpu + (snpd1 - snpd0) +
                           (o.watch_snpd_pid ? watch1 - watch0 : 0) + (pg1 - pg0));
    double others_pct = -1;
    if (busy0 >= 0 && busy1 >= 0 && secs > 0 && ncpu > 0) {
        others_pct = ((double)(busy1 - busy0) - ours) / (secs * 1e6 * (double)ncpu) * 100;
        if (others_pct < 0)
            others_pct = 0;
    }
    double per_change = counted_changes ? 1.0 / (double)made : 0;
    printf("%s: %llu of %ld subscribers on port %d (opened in %.1f s by %ld processes); "
           "%ld changes on port %d, %ld ms apart (%ld of warm-up not counted)\n",
           o.name, (unsigned long long)opened, o.watchers, o.watch_port, open_s, started, made,
           o.port, o.gap_ms, o.warmup < made ? o.warmup : made);
    printf("  receipts %zu for %llu (change, subscriber) pairs counted; missing %llu, "
           "twice %llu, other %llu\n",
           from_send.n, (unsigned long long)(counted_changes * opened), (unsigned long long)missing,
           (unsigned long long)twice, (unsigned long long)strays);
    printf("  change sent -> subscriber: p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   "
           "p99.9 %.3f ms   max %.3f ms\n",
           samples_pct(&from_send, 50) / 1000.0, samples_pct(&from_send, 90) / 1000.0,
           samples_pct(&from_send, 99) / 1000.0, samples_pct(&from_send, 99.9) / 1000.0,
           samples_pct(&from_send, 100) / 1000.0);
    printf("  change acknowledged -> subscriber: p50 %.3f ms   p99 %.3f ms "
           "(%llu receipts came before the acknowledgement, counted as 0)\n",
           samples_pct(&from_ack, 50) / 1000.0, samples_pct(&from_ack, 99) / 1000.0,
           (unsigned long long)early);
    printf("  the change's own round trip (slot.publish / slot.withdraw): p50 %.3f ms   "
           "p99 %.3f ms\n",
           samples_pct(&rtt, 50) / 1000.0, samples_pct(&rtt, 99) / 1000.0);
    char watch_cpu[64] = "";
    if (o.watch_snpd_pid)
        snprintf(watch_cpu, sizeof(watch_cpu), ", the subscribers' snpd %.0f us",
                 (double)(watch1 - watch0) * per_change);
    printf("  CPU per change: snpd %.0f us%s, PostgreSQL %.0f us, subscribers %.0f us; "
           "other processes used %.0f%% of the machine meanwhile\n",
           (double)(snpd1 - snpd0) * per_change, watch_cpu, (double)(pg1 - pg0) * per_change,
           (double)receivers_cpu * per_change, others_pct);
    if (missed[0])
        printf("  MISSING: %s\n", missed);
    if (first_error[0])
        printf("  ERROR: %s\n", first_error);
    printf("RESULT bench=push name=%s watchers=%llu changes=%llu receipts=%zu missing=%llu "
           "twice=%llu p50=%u p90=%u p99=%u p999=%u max=%u ack_p50=%u ack_p99=%u early=%llu "
           "rtt_p50=%u rtt_p99=%u others_pct=%.0f\n",
           o.name, (unsigned long long)opened, (unsigned long long)counted_changes, from_send.n,
           (unsigned long long)missing, (unsigned long long)twice, samples_pct(&from_send, 50),
           samples_pct(&from_send, 90), samples_pct(&from_send, 99), samples_pct(&from_send, 99.9),
           samples_pct(&from_send, 100), samples_pct(&from_ack, 50), samples_pct(&from_ack, 99),
           (unsigned long long)early, samples_pct(&rtt, 50), samples_pct(&rtt, 99), others_pct);
    samples_free(&from_send);
    samples_free(&from_ack);
    samples_free(&rtt);
    free(index);
    free(changes);
    free(got);
    free(pids);
    free(outs);
    tokens_free(&tokens);
    return errors || missing || opened != (uint64_t)o.watchers ? 1 : 0;
}
