/* snpbench ready: how long snpd takes from its start to being ready, and
 * its memory then.
 *
 * snpd listens at once, but answers /readyz with 200 only once its
 * migrations are checked and its dispatch state is loaded from the
 * database (dispatcher/app.c, app_is_ready: the housekeeping pass, the
 * reference data, every live slot and open request).  bench/run.sh notes
 * the wall-clock time just before it starts snpd and passes it as
 * `--t0-us`; this polls /readyz on a fresh connection every `--every-ms`
 * until it answers 200, and reports the time since t0, when the port first
 * accepted a connection, the CPU snpd used until then, and snpd's VmRSS (at
 * once, and `--settle-s` later)
 * and VmHWM (the peak of the load), with the live slots and waiting
 * requests snpd's /metrics counts.  With `--log`, snpd's log (human format),
 * it also reports when snpd logged "app: ready": /readyz can answer later
 * than that when work that follows the load holds the event loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* GET /readyz on a new connection: the status, 0 when nothing accepted the
 * connection, -1 when the exchange failed after it. */
static int readyz(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    char req[128], resp[64] = "";
    int n =
        snprintf(req, sizeof(req),
                 "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    int status = -1;
    if (bench_write_all(fd, req, (size_t)n)) {
        ssize_t got = read(fd, resp, sizeof(resp) - 1);
        if (got > 0) {
            resp[got] = '\0';
            if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
                status = -1;
        }
    }
    close(fd);
    return status;
}

/* The wall-clock time, in microseconds, of the last "app: ready" line of
 * the log at `path` (lines start with 2026-12-05T05:25:50.040Z); -1 when
 * there is none. */
static int64_t logged_ready_us(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int64_t at = -1;
    while (fgets(line, sizeof(line), f)) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        int ms = 0;
        if (!strstr(line, " app: ready") ||
            sscanf(line, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &ms) != 7)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        at = (int64_t)timegm(&tm) * 1000000 + ms * 1000;
    }
    fclose(f);
    return at;
}

static int usage(void)
{
    fprintf(stderr, "usage: snpbench ready --port N --pid PID --t0-us WALL_CLOCK_US\n"
                    "                      [--every-ms N] [--timeout-s N] [--settle-s N] [--name "
                    "NAME]\n"
                    "                      [--log FILE] [--pg-pid POSTMASTER]\n");
    return 2;
}

int bench_ready(int argc, char **argv)
{
    int port = 0;
    pid_t pid = 0, pg = 0;
    int64_t t0 = 0;
    long every_ms = 2, timeout_s = 120, settle_s = 2;
    const char *name = "ready", *log = NULL;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--port") == 0)
            port = (int)bench_parse_long(a, v, 1, 65535);
        else if (strcmp(a, "--pid") == 0)
            pid = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else if (strcmp(a, "--t0-us") == 0)
            t0 = strtoll(v, NULL, 10);
        else if (strcmp(a, "--every-ms") == 0)
            every_ms = bench_parse_long(a, v, 1, 1000);
        else if (strcmp(a, "--timeout-s") == 0)
            timeout_s = bench_parse_long(a, v, 1, 600);
        else if (strcmp(a, "--settle-s") == 0)
            settle_s = bench_parse_long(a, v, 0, 60);
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--log") == 0)
            log = v;
        else if (strcmp(a, "--pg-pid") == 0)
            pg = (pid_t)bench_parse_long(a, v, 1, 1 << 30);
        else
            return usage();
    }
    if (argc % 2 || !port || !pid || t0 <= 0)
        return usage();

    /* PostgreSQL's CPU from here (snpd was just started: it has not asked
     * for anything yet) until ready: its part of the start-up, on the same
     * cores. */
    int64_t pg_cpu0 = pg ? proc_tree_cpu_us(pg) : -1;
    int64_t listening = -1, ready = -1, deadline = t0 + timeout_s * 1000000;
    while (wall_us() < deadline) {
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            fprintf(stderr, "snpbench ready: snpd (pid %d) exited before it was ready\n", (int)pid);
            return 1;
        }
        int status = readyz(port);
        int64_t now = wall_us();
        if (status != 0 && listening < 0)
            listening = now;
        if (status == 200) {
            ready = now;
            break;
        }
        bench_sleep_us(every_ms * 1000);
    }
    if (ready < 0) {
        fprintf(stderr, "snpbench ready: snpd not ready after %ld s\n", timeout_s);
        return 1;
    }
    long rss = proc_status_kb(pid, "VmRSS");
    int64_t cpu_us = proc_cpu_us(pid); /* a fresh process: its start-up's CPU */
    int64_t faults = proc_minor_faults(pid);
    int64_t pg_cpu1 = pg ? proc_tree_cpu_us(pg) : -1;
    double pg_cpu_ms = pg_cpu0 >= 0 && pg_cpu1 >= 0 ? (double)(pg_cpu1 - pg_cpu0) / 1000 : -1;
    bench_sleep_us(settle_s * 1000000);
    long settled = proc_status_kb(pid, "VmRSS"), hwm = proc_status_kb(pid, "VmHWM");
    struct snpd_metrics m = {.live_slots = -1, .waiting_requests = -1};
    if (!snpd_metrics_read(port, &m))
        fprintf(stderr, "snpbench ready: cannot read /metrics\n");
    double ready_ms = (double)(ready - t0) / 1000, listen_ms = (double)(listening - t0) / 1000;
    int64_t logged = log ? logged_ready_us(log) : -1;
    double logged_ms = logged >= t0 ? (double)(logged - t0) / 1000 : -1;
    printf("%s: snpd ready %.0f ms after its start (port open after %.0f ms, /readyz polled "
           "every %ld ms), with %.0f live slots and %.0f waiting requests in memory\n",
           name, ready_ms, listen_ms, every_ms, m.live_slots, m.waiting_requests);
    if (logged_ms >= 0)
        printf("  snpd logged \"ready\" %.0f ms after its start; /readyz answered %.0f ms "
               "later\n",
               logged_ms, ready_ms - logged_ms);
    printf("  snpd used %.0f ms of CPU until ready, and took %lld minor page faults\n",
           (double)cpu_us / 1000, (long long)faults);
    if (pg_cpu_ms >= 0)
        printf("  PostgreSQL used %.0f ms of CPU meanwhile\n", pg_cpu_ms);
    printf("  VmRSS %.1f MB when ready, %.1f MB %ld s later; peak VmHWM %.1f MB\n", rss / 1024.0,
           settled / 1024.0, settle_s, hwm / 1024.0);
    printf("RESULT bench=ready name=%s ready_ms=%.0f listen_ms=%.0f logged_ready_ms=%.0f "
           "cpu_ms=%.0f pg_cpu_ms=%.0f minflt=%lld rss_mb=%.1f rss_settled_mb=%.1f hwm_mb=%.1f "
           "live_slots=%.0f waiting=%.0f\n",
           name, ready_ms, listen_ms, logged_ms, (double)cpu_us / 1000, pg_cpu_ms,
           (long long)faults, rss / 1024.0, settled / 1024.0, hwm / 1024.0, m.live_slots,
           m.waiting_requests);
    return 0;
}
