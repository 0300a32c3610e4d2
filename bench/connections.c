/* snpbench connections: snpd's memory with many idle authenticated
 * WebSocket connections.
 *
 * `--procs` client processes each open their share of `--count`
 * connections, one after the other, from their own source address
 * (127.0.0.2, 127.0.0.3, ...: loopback answers on all of 127/8, and each
 * address has its own ephemeral ports and its own per-address count in
 * snpd), each connection with its own pharmacy token.  Each connection then
 * sends one territory.get, which authenticates it (snpd checks the token of
 * the upgrade's Authorization header at the first message).  Once all are
 * open, the parent reads snpd's VmRSS and compares it with the value read
 * before the first connection; then the clients close everything and the
 * parent reads VmRSS once more.  While they wait, the clients keep servicing
 * their connections, so that pings would be answered.
 *
 * `--subscribe TOPIC` has each connection subscribe to TOPIC once
 * authenticated.  `--hold 1` keeps them open instead of closing them: the
 * parent prints a line beginning "holding" once they are, then waits to be
 * killed (run.sh's BENCH_IDLE: bookings made while thousands of pharmacies
 * are connected and subscribed).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "clients/lib/snpclient.h"

#define HOLD_MAX_S 300  /* a client never holds its connections longer, */
#define HELD_MAX_S 3600 /* nor, with --hold, longer than this */

static const char *subscribe_topic; /* --subscribe, or NULL */
static bool hold;                   /* --hold 1 */

/* What a client process reports once its connections are open. */
struct holder_report {
    uint64_t opened;
    int64_t open_us; /* time it took */
    char first_error[400];
};

static int holder(int port, const char *address, char *const *tokens, size_t n, int ready_fd,
                  int release_fd)
{
    struct holder_report rep;
    memset(&rep, 0, sizeof(rep));
    struct snpclient_options opt = {.host = "127.0.0.1", .port = port, .local_address = address};
    struct snpclient *c = snpclient_new_with(&opt);
    struct snpclient_ws **ws = calloc(n, sizeof(*ws));
    if (!c || !ws)
        return 1;
    int64_t t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) {
        char err[200];
        ws[i] = snpclient_ws_open(c, NULL, tokens[i], 10000, err, sizeof(err));
        char *resp = NULL;
        int rc = ws[i] ? snpclient_ws_call(ws[i], "territory.get", NULL, 10000, &resp)
                       : SNPCLIENT_ECONNECT;
        if (rc == 0 && subscribe_topic) {
            char data[96];
            snprintf(data, sizeof(data), "{\"topics\": [\"%s\"]}", subscribe_topic);
            free(resp);
            resp = NULL;
            rc = snpclient_ws_call(ws[i], "subscribe", data, 10000, &resp);
        }
        if (rc != 0) {
            snprintf(rep.first_error, sizeof(rep.first_error), "%s: connection %zu: %.200s%s%.120s",
                     address, i + 1, ws[i] ? snpclient_strerror(rc) : err, resp ? ": " : "",
                     resp ? resp : "");
            free(resp);
            snpclient_ws_close(ws[i]);
            ws[i] = NULL;
            break;
        }
        free(resp);
        rep.opened++;
    }
    rep.open_us = bench_now_us() - t0;
    if (!bench_write_all(ready_fd, &rep, sizeof(rep)))
        return 1;
    close(ready_fd);

    /* Hold until the parent closes the release pipe, servicing the
     * connections (a receive on one services them all) meanwhile. */
    int64_t until = bench_now_us() + (int64_t)(hold ? HELD_MAX_S : HOLD_MAX_S) * 1000000;
    while (bench_now_us() < until) {
        struct pollfd p = {.fd = release_fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 0)
            break;
        char *msg = NULL;
        if (rep.opened && snpclient_ws_recv(ws[0], 200, &msg) == 0)
            free(msg);
        else if (!rep.opened)
            bench_sleep_us(200000);
    }
    snpclient_free(c); /* closes them all at once */
    free(ws);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: snpbench connections --port N --tokens FILE --snpd-pid PID\n"
                    "                            [--count N] [--procs N] [--rounds N] "
                    "[--settle-s N]\n"
                    "                            [--subscribe TOPIC] [--hold 1]\n");
    return 2;
}

/* What one round measured. */
struct round {
    uint64_t opened;
    double open_s;
    long rss_open_kb;  /* snpd's VmRSS with the connections open */
    long rss_after_kb; /* and once they closed */
    double websockets; /* open WebSockets as snpd's /metrics counts them */
    char first_error[400];
};

/* Opens `count` connections from `procs` processes, reads snpd's memory,
 * closes them all and reads it again.  Returns false when a client process
 * could not be started. */
static bool run_round(int port, pid_t snpd, const struct tokens *tokens, long count, long procs,
                      long settle_s, struct round *r)
{
    memset(r, 0, sizeof(*r));
    r->websockets = -1;
    int ready[2], release[2];
    if (pipe(ready) != 0 || pipe(release) != 0) {
        perror("pipe");
        return false;
    }
    pid_t *pids = calloc((size_t)procs, sizeof(*pids));
    if (!pids)
        return false;
    fflush(stdout);
    int64_t t0 = bench_now_us();
    long given = 0, started = 0;
    for (long p = 0; p < procs; p++) {
        long n = count / procs + (p < count % procs ? 1 : 0);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(ready[0]);
            close(release[1]);
            char address[32];
            bench_client_address(p, address, sizeof(address));
            _exit(holder(port, address, tokens->v + given, (size_t)n, ready[1], release[0]));
        }
        pids[started++] = pid;
        given += n;
    }
    close(ready[1]);
    close(release[0]);

    for (long p = 0; p < started; p++) {
        struct holder_report rep;
        if (!bench_read_all(ready[0], &rep, sizeof(rep))) {
            snprintf(r->first_error, sizeof(r->first_error), "a client process died");
            break;
        }
        r->opened += rep.opened;
        if (!r->first_error[0] && rep.first_error[0])
            memcpy(r->first_error, rep.first_error, sizeof(r->first_error));
    }
    close(ready[0]);
    r->open_s = (double)(bench_now_us() - t0) / 1e6;
    if (hold) {
        printf("holding %llu of %ld idle authenticated WebSocket connections%s%s, opened in "
               "%.1f s%s%s\n",
               (unsigned long long)r->opened, count, subscribe_topic ? " subscribed to " : "",
               subscribe_topic ? subscribe_topic : "", r->open_s, r->first_error[0] ? ": " : "",
               r->first_error);
        fflush(stdout);
        for (;;)
            pause(); /* until killed; the clients die with this process */
    }
    bench_sleep_us(settle_s * 1000000);
    r->rss_open_kb = proc_status_kb(snpd, "VmRSS");
    struct snpd_metrics m = {0};
    if (snpd_metrics_read(port, &m))
        r->websockets = m.websockets;

    close(release[1]); /* let go */
    for (long p = 0; p < started; p++) {
        int st;
        while (waitpid(pids[p], &st, 0) < 0 && errno == EINTR)
            ;
    }
    free(pids);
    bench_sleep_us(settle_s * 1000000);
    r->rss_after_kb = proc_status_kb(snpd, "VmRSS");
    return started == procs;
}

int bench_connections(int argc, char **argv)
{
    int port = 0;
    long count = 10000, procs = 10, rounds = 1, settle_s = 2;
    pid_t snpd = 0;
    const char *tokens_path = NULL;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--port") == 0)
            port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--tokens") == 0)
            tokens_path = v;
        else if (strcmp(a, "--count") == 0)
            count = bench_parse_long(a, v, 1, 1000000);
        else if (strcmp(a, "--procs") == 0)
            procs = bench_parse_long(a, v, 1, 200);
        else if (strcmp(a, "--rounds") == 0)
            rounds = bench_parse_long(a, v, 1, 5);
        else if (strcmp(a, "--snpd-pid") == 0)
            snpd = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--settle-s") == 0)
            settle_s = bench_parse_long(a, v, 0, 60);
        else if (strcmp(a, "--subscribe") == 0)
            subscribe_topic = v;
        else if (strcmp(a, "--hold") == 0)
            hold = bench_parse_long(a, v, 0, 1) == 1;
        else
            return usage();
    }
    if (argc % 2 || !port || !tokens_path || !snpd)
        return usage();
    struct tokens tokens;
    tokens_load(&tokens, tokens_path);
    if ((size_t)count > tokens.n) {
        fprintf(stderr, "snpbench connections: %ld connections need as many tokens; %s has %zu\n",
                count, tokens_path, tokens.n);
        return 2;
    }
    alarm((unsigned)(hold ? HELD_MAX_S + 60 : rounds * (HOLD_MAX_S + 60)));

    long rss0 = proc_status_kb(snpd, "VmRSS");
    double mb0 = rss0 / 1024.0;
    struct round first = {0}, r = {0};
    bool ok = true;
    for (long k = 0; k < rounds && ok; k++) {
        ok = run_round(port, snpd, &tokens, count, procs, settle_s, &r) &&
             r.opened == (uint64_t)count;
        if (k == 0)
            first = r;
        printf("connections, round %ld: %llu of %ld idle authenticated WebSocket connections "
               "open from %ld client processes in %.1f s (snpd counts %.0f)\n",
               k + 1, (unsigned long long)r.opened, count, procs, r.open_s, r.websockets);
        printf("  snpd VmRSS: %.1f MB before the first round, %.1f MB with them open, "
               "%.1f MB after they closed\n",
               mb0, r.rss_open_kb / 1024.0, r.rss_after_kb / 1024.0);
        if (r.first_error[0])
            printf("  ERROR: %s\n", r.first_error);
    }
    double mb1 = first.rss_open_kb / 1024.0;
    double per10k = first.opened ? (mb1 - mb0) * 10000.0 / (double)first.opened : 0;
    printf("  => %.1f MB in all with %llu connections; %.1f MB per 10,000 above the idle "
           "baseline (%.2f kB each)\n",
           mb1, (unsigned long long)first.opened, per10k,
           first.opened ? (mb1 - mb0) * 1024.0 / (double)first.opened : 0);
    if (rounds > 1)
        printf("  after %ld rounds: %.1f MB with them open (first round %.1f MB): %s\n", rounds,
               r.rss_open_kb / 1024.0, mb1,
               r.rss_open_kb - first.rss_open_kb > first.rss_open_kb / 20
                   ? "memory grows from round to round"
                   : "memory is reused from round to round");
    printf("RESULT bench=connections opened=%llu wanted=%ld rss_before_mb=%.1f rss_open_mb=%.1f "
           "rss_after_mb=%.1f rss_last_open_mb=%.1f rounds=%ld mb_per_10k=%.1f open_s=%.1f "
           "server_websockets=%.0f\n",
           (unsigned long long)first.opened, count, mb0, mb1, first.rss_after_kb / 1024.0,
           r.rss_open_kb / 1024.0, rounds, per10k, first.open_s, first.websockets);
    tokens_free(&tokens);
    return ok ? 0 : 1;
}
