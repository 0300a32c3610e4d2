/* snpbench: the benchmark programs of snpd, one subcommand each.  bench/run.sh
 * runs them all against a private PostgreSQL cluster; bench/README.md says
 * what each measures. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench/bench.h"
#include "protocol/codec.h"

/* cpu --pid PID [--tree] | --system: prints, in microseconds, the CPU time
 * of a process, of a postmaster and its children, or the machine's busy
 * time; bench/run.sh reads them around pgbench. */
static int bench_cpu(int argc, char **argv)
{
    int64_t us;
    if (argc == 1 && strcmp(argv[0], "--system") == 0) {
        us = sys_busy_us();
    } else if ((argc == 2 || (argc == 3 && strcmp(argv[2], "--tree") == 0)) &&
               strcmp(argv[0], "--pid") == 0) {
        pid_t pid = (pid_t)bench_parse_long("--pid", argv[1], 1, 1 << 30);
        us = argc == 3 ? proc_tree_cpu_us(pid) : proc_cpu_us(pid);
    } else {
        fputs("usage: snpbench cpu --pid PID [--tree] | --system\n", stderr);
        return 2;
    }
    if (us < 0) {
        fputs("snpbench cpu: cannot read /proc\n", stderr);
        return 1;
    }
    printf("%lld\n", (long long)us);
    return 0;
}

/* quiet [--below-pct N] [--max-wait-s N]: waits until the machine's CPUs
 * were less than N % busy over one second (other sessions' builds and tests
 * share this machine), at most --max-wait-s seconds, and says what it saw. */
static int bench_quiet(int argc, char **argv)
{
    long below = 15, max_wait = 30;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--below-pct") == 0)
            below = bench_parse_long(argv[i], argv[i + 1], 1, 100);
        else if (strcmp(argv[i], "--max-wait-s") == 0)
            max_wait = bench_parse_long(argv[i], argv[i + 1], 0, 600);
        else
            argc = -1;
    }
    if (argc < 0 || argc % 2) {
        fputs("usage: snpbench quiet [--below-pct N] [--max-wait-s N]\n", stderr);
        return 2;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double pct = 0;
    for (long waited = 0; waited <= max_wait; waited++) {
        int64_t b0 = sys_busy_us(), t0 = bench_now_us();
        bench_sleep_us(1000000);
        int64_t b1 = sys_busy_us(), t1 = bench_now_us();
        pct = (double)(b1 - b0) / ((double)(t1 - t0) * (double)(ncpu > 0 ? ncpu : 1)) * 100;
        if (pct < below) {
            if (waited)
                printf("  (waited %ld s for the machine to quieten: %.0f%% busy)\n", waited, pct);
            return 0;
        }
    }
    printf("  (machine still %.0f%% busy with other work after %ld s; measuring anyway)\n", pct,
           max_wait);
    return 0;
}

static volatile sig_atomic_t listen_stop;

static void on_listen_stop(int sig)
{
    (void)sig;
    listen_stop = 1;
}

/* listen --conninfo S: a session that listens on snp_change and reads
 * every notification, as each snpd's does, until SIGTERM or SIGINT; then
 * prints how many it heard.  bench/run.sh runs it beside pgbench with
 * BENCH_PGLISTEN=1, so that PostgreSQL wakes a listener at each commit as
 * it does for snpd. */
static int bench_listen(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "--conninfo") != 0) {
        fputs("usage: snpbench listen --conninfo CONNINFO\n", stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_listen_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    PGconn *c = PQconnectdb(argv[1]);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "LISTEN snp_change") : NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "snpbench listen: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return 1;
    }
    PQclear(r);
    long heard = 0;
    while (!listen_stop) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            break;
        if (listen_stop)
            break;
        if (!PQconsumeInput(c)) {
            fprintf(stderr, "snpbench listen: %s", PQerrorMessage(c));
            break;
        }
        for (PGnotify *n; (n = PQnotifies(c)) != NULL; heard++)
            PQfreemem(n);
    }
    PQfinish(c);
    printf("  (a session listening on snp_change heard %ld notifications)\n", heard);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"setup", bench_setup, "write the benchmark territory as SQL, and its tokens"},
    {"booking", bench_booking, "request.create + offer.accept by N concurrent clients"},
    {"capacity", bench_capacity, "capacity.query latency over WebSocket or HTTP"},
    {"connections", bench_connections, "snpd's memory with many idle WebSocket connections"},
    {"push", bench_push, "latency of capacity pushes to many subscribers, on one or two snpd"},
    {"ready", bench_ready, "time from snpd's start to /readyz, and its memory then"},
    {"cpu", bench_cpu, "CPU time of a process, a postmaster and its children, or the machine"},
    {"quiet", bench_quiet, "wait (a bounded time) until the machine is nearly idle"},
    {"listen", bench_listen, "listen on snp_change beside pgbench, as snpd does"},
};

int main(int argc, char **argv)
{
    /* The pool reads the protocol's rate limits from the declaration snpd
     * itself is built with. */
    if (snp_proto_init() != 0) {
        fputs("snpbench: the embedded protocol description is invalid\n", stderr);
        return 1;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    fputs("usage: snpbench COMMAND [options]   (each command prints its options)\n", stderr);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(stderr, "  %-12s %s\n", commands[i].name, commands[i].what);
    return 2;
}
