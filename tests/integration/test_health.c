/* The real snpd binary: health endpoints, metrics, static files, bad
 * requests, an unreachable database, and shutdown with open connections. */
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "clients/lib/snpclient.h"
#include "tests/support/http.h"
#include "tests/support/pgtest.h"
#include "tests/support/proc.h"
#include "tests/support/wait.h"

static struct pgtest pg;
static struct snpd_proc snpd;

static void setup(void)
{
    pgtest_create(&pg);
}

static void teardown(void)
{
    if (snpd.pid > 0)
        snpd_proc_stop(&snpd, SIGKILL, 5000);
    pgtest_drop(&pg);
}

TestSuite(health, .init = setup, .fini = teardown, .timeout = 90);

static struct http_response get(const char *path)
{
    struct http_response r;
    cr_assert_eq(http_request(snpd.port, "GET", path, NULL, NULL, &r), 0, "GET %s failed", path);
    return r;
}

/* Stops snpd with SIGTERM and checks the clean exit; its log must show the
 * orderly teardown and nothing from the sanitizers. */
static void stop_cleanly(void)
{
    int rc = snpd_proc_stop(&snpd, SIGTERM, 15000);
    char *log = snpd_proc_log(&snpd);
    cr_assert_eq(rc, 0, "snpd exited with %d; log:\n%s", rc, log ? log : "");
    cr_assert(strstr(log, "database connections closed"), "%s", log);
    cr_assert(strstr(log, "stopped"), "%s", log);
    cr_assert_null(strstr(log, "ERROR: AddressSanitizer"), "%s", log);
    cr_assert_null(strstr(log, "runtime error"), "%s", log);
    cr_assert_null(strstr(log, "live handles"), "%s", log);
    free(log);
}

Test(health, alive_ready_metrics)
{
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    struct http_response r = get("/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"alive\"}");
    http_response_free(&r);

    r = get("/readyz");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"ready\""), "%s", r.body);
    http_response_free(&r);

    r = get("/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.headers, "text/plain"), "%s", r.headers);
    cr_assert(strstr(r.body, "\nsnpd_db_up 4\n"), "%s", r.body);
    cr_assert(strstr(r.body, "snpd_db_query_seconds_bucket{le=\"+Inf\"}"), "%s", r.body);
    cr_assert(strstr(r.body, "snpd_loop_lag_seconds "), "%s", r.body);
    /* The start-up's housekeeping, a query with a parameter, ran prepared. */
    const char *prepared = strstr(r.body, "\nsnpd_db_statements_prepared_total ");
    cr_assert(prepared, "%s", r.body);
    cr_assert_gt(strtol(prepared + strlen("\nsnpd_db_statements_prepared_total "), NULL, 10), 0,
                 "%s", r.body);
    cr_assert(strstr(r.body, "snpd_http_responses_total{class=\"2xx\"}"), "%s", r.body);
    http_response_free(&r);

    /* Migrations were applied at start-up. */
    cr_assert_gt(pgtest_long(&pg, "SELECT count(*) FROM schema_migration"), 0);
    stop_cleanly();
}

Test(health, not_found_and_bad_paths)
{
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    const char *paths[] = {"/nothing-here", "/../etc/passwd", "/%2e%2e/etc/passwd", "/.git/config",
                           "/api/no-such-operation"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct http_response r = get(paths[i]);
        cr_assert(r.status == 404 || r.status == 403 || r.status == 400, "%s answered %d", paths[i],
                  r.status);
        cr_assert_null(strstr(r.body, "root:"), "%s leaked a file", paths[i]);
        http_response_free(&r);
    }
    struct http_response r;
    cr_assert_eq(http_request(snpd.port, "POST", "/healthz", NULL, "{}", &r), 0);
    cr_assert_eq(r.status, 405);
    http_response_free(&r);
    stop_cleanly();
}

Test(health, oversized_body_is_refused)
{
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    size_t n = 70 * 1024;
    char *body = malloc(n + 1);
    memset(body, 'x', n);
    body[n] = '\0';
    struct http_response r;
    cr_assert_eq(http_request(snpd.port, "POST", "/api/anything", NULL, body, &r), 0);
    cr_assert_eq(r.status, 413, "got %d", r.status);
    cr_assert(strstr(r.body, "too_large"), "%s", r.body);
    http_response_free(&r);
    free(body);
    stop_cleanly();
}

Test(health, bad_upgrade_header_does_not_crash)
{
    /* CVE-2025-11677: lws 4.1.6 hands a freed pointer to the confirm-upgrade
     * callback for an invalid Upgrade header.  Under ASan a read of it
     * would abort snpd. */
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    const char *bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocketX\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, \x01\x02\r\n\r\n",
    };
    char out[4096];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        http_raw(snpd.port, bad[i], strlen(bad[i]), out, sizeof(out));
    struct http_response r = get("/healthz");
    cr_assert_eq(r.status, 200);
    http_response_free(&r);
    stop_cleanly();
}

Test(health, unreachable_database_is_alive_but_not_ready)
{
    char bad[600];
    snprintf(bad, sizeof(bad), "host=/nonexistent-snpd-test port=1 dbname=x");
    snpd_proc_start(&snpd, bad, NULL, false);
    cr_assert(snpd_proc_wait_status(&snpd, "/healthz", 200, 10000), "never alive");
    struct http_response r = get("/readyz");
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "not_ready"), "%s", r.body);
    http_response_free(&r);
    stop_cleanly();
}

static bool log_says_trying_again(void *arg)
{
    (void)arg;
    char *log = snpd_proc_log(&snpd);
    bool said = log && strstr(log, "trying again");
    free(log);
    return said;
}

Test(health, a_failed_start_up_load_is_tried_again)
{
    /* Migrate first, then break what the load reads: snpd starts, cannot
     * load its memory, stays alive and not ready, and becomes ready by
     * itself once the table is back. */
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    cr_assert_eq(snpd_proc_stop(&snpd, SIGTERM, 15000), 0);
    PQclear(pgtest_exec(&pg, "ALTER TABLE organisation RENAME TO organisation_away"));
    snpd_proc_start(&snpd, pg.conninfo, NULL, false);
    cr_assert(snpd_proc_wait_status(&snpd, "/healthz", 200, 10000), "never alive");
    bool retried = wait_until(log_says_trying_again, NULL, 10000);
    cr_assert(retried, "no failed load was reported");
    struct http_response r = get("/readyz");
    cr_assert_eq(r.status, 503);
    http_response_free(&r);
    PQclear(pgtest_exec(&pg, "ALTER TABLE organisation_away RENAME TO organisation"));
    cr_assert(snpd_proc_wait_status(&snpd, "/readyz", 200, 20000),
              "snpd did not become ready once the table was back");
    stop_cleanly();
}

/* Whether /metrics counts at least *arg connections accepted in all. */
static bool metrics_count_connections(void *arg)
{
    struct http_response r = get("/metrics");
    const char *at = strstr(r.body, "\nsnpd_connections_total ");
    bool enough = at && atol(at + strlen("\nsnpd_connections_total ")) >= *(long *)arg;
    http_response_free(&r);
    return enough;
}

Test(health, shutdown_with_open_connections)
{
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    /* Idle keep-alive connections, a half-sent request and a connection
     * that sent nothing: none of them may hold the shutdown. */
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = http_connect(snpd.port);
        cr_assert(fds[i] >= 0);
    }
    const char *half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    cr_assert(send(fds[0], half, strlen(half), MSG_NOSIGNAL) > 0);
    const char *full = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert(send(fds[1], full, strlen(full), MSG_NOSIGNAL) > 0);
    /* snpd has accepted them all (and this metrics request) before it is
     * told to stop. */
    cr_assert(wait_until(metrics_count_connections, &(long){9}, 10000),
              "snpd did not accept the eight connections");
    stop_cleanly();
    for (int i = 0; i < 8; i++)
        close(fds[i]);
}

Test(health, json_logs)
{
    const char *extra[] = {"--log-format", "json", NULL};
    snpd_proc_start(&snpd, pg.conninfo, extra, true);
    stop_cleanly();
    char *log = snpd_proc_log(&snpd);
    cr_assert(strstr(log, "{\"ts\":\""), "%s", log);
    cr_assert(strstr(log, "\"module\":\"app\",\"msg\":\"ready\""), "%s", log);
    free(log);
}

/* How many of the `n` connections `fds` (-1: none) the peer has closed. */
static int closed_by_peer(const int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char c;
        if (fds[i] >= 0 && poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            closed++;
    }
    return closed;
}

Test(health, connections_per_address_are_limited)
{
    /* Debian's libwebsockets has no peer limits of its own: snpd counts
     * accepted sockets per address and refuses those beyond the limit. */
    setenv("SNPD_MAX_PER_ADDRESS", "3", 1);
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    unsetenv("SNPD_MAX_PER_ADDRESS");
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = http_connect(snpd.port);
    /* snpd has seen all five before the requests are sent: it closed the
     * two beyond the limit.  (Asking /metrics would take a place.) */
    bool refused;
    WAIT_UNTIL(refused, closed_by_peer(fds, 5) == 2, 10000);
    cr_assert(refused, "snpd did not close the connections beyond the limit");
    int answered = 0;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 5; i++) {
        char buf[64] = "";
        if (fds[i] < 0 || send(fds[i], req, strlen(req), MSG_NOSIGNAL) < 0)
            continue;
        struct timeval tv = {1, 0};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (read(fds[i], buf, sizeof(buf) - 1) > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0)
            answered++;
    }
    cr_assert_eq(answered, 3, "%d of 5 connections answered with a limit of 3", answered);
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Closed connections free their places (once snpd has seen them go). */
    struct http_response r = {0};
    bool freed;
    WAIT_UNTIL(freed, http_request(snpd.port, "GET", "/metrics", NULL, NULL, &r) == 0, 10000);
    cr_assert(freed, "no place was freed by the closed connections");
    cr_assert(strstr(r.body, "snpd_connections_refused_total 2"), "%s", r.body);
    http_response_free(&r);
    stop_cleanly();
}

struct tls_ready {
    struct snpclient *c;
    int status; /* of the last answer, 0 for none */
};

static bool ready_over_tls(void *arg)
{
    struct tls_ready *w = arg;
    char *body = NULL;
    w->status = 0;
    if (snpclient_http(w->c, "GET", "/readyz", NULL, NULL, 2000, &w->status, &body) != 0)
        w->status = 0;
    free(body);
    return w->status == 200;
}

Test(health, tls_when_configured)
{
    /* A throwaway self-signed certificate, made with Debian's openssl. */
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/snpd-tls-XXXXXX", proc_scratch_dir());
    cr_assert(mkdtemp(dir));
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
    setenv("SNPD_TLS_CERT", cert, 1);
    setenv("SNPD_TLS_KEY", key, 1);
    snpd_proc_start(&snpd, pg.conninfo, NULL, false);
    unsetenv("SNPD_TLS_CERT");
    unsetenv("SNPD_TLS_KEY");

    struct snpclient_options o = {.host = "127.0.0.1",
                                  .port = snpd.port,
                                  .tls = true,
                                  .tls_allow_self_signed = true,
                                  .tls_skip_hostname_check = true};
    struct snpclient *c = snpclient_new_with(&o);
    cr_assert(c);
    /* Not listening yet, or still migrating (503): wait. */
    struct tls_ready ready = {.c = c};
    cr_assert(wait_until(ready_over_tls, &ready, 30000), "no ready answer over TLS (HTTP %d)",
              ready.status);
    snpclient_free(c);
    /* Plain HTTP on the TLS port gets no HTTP answer. */
    struct http_response r;
    int rc = http_request(snpd.port, "GET", "/healthz", NULL, NULL, &r);
    cr_assert(rc != 0 || r.status != 200, "plain HTTP was served on the TLS port");
    if (rc == 0)
        http_response_free(&r);
    stop_cleanly();
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

Test(health, port_in_use_stops_start_up)
{
    snpd_proc_start(&snpd, pg.conninfo, NULL, true);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --database '%s' --port %d 2>&1 | grep -q 'cannot listen'",
             getenv("SNPD_BINARY"), pg.conninfo, snpd.port);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no clear message for a port in use");
    snprintf(cmd, sizeof(cmd), "'%s' --database '%s' --port %d >/dev/null 2>&1",
             getenv("SNPD_BINARY"), pg.conninfo, snpd.port);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a second snpd on a taken port must exit 1");
    stop_cleanly();
}
