/* The server's frame: the libwebsockets context on the loop and its two
 * protocols, the connection limits, the budget of unfinished messages, the
 * built-in endpoints (/healthz, /readyz, /metrics) and the sweep.  The HTTP
 * exchanges live in server_http.c, the WebSocket connections in
 * server_ws.c; what the three share is in server_internal.h. */
#include "dispatcher/net/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "base/log.h"
#include "dispatcher/net/lws41.h"
#include "dispatcher/net/server_internal.h"
#include "dispatcher/net/wirecheck.h"
#include "protocol/codec.h"

/* The room left for unfinished messages: whether `bytes` more fit. */
bool server__unfinished_fits(const struct server *s, size_t bytes)
{
    size_t max = (size_t)s->cfg->max_unfinished_kb * 1024;
    return s->unfinished_bytes <= max && bytes <= max - s->unfinished_bytes;
}

/* --- request headers ------------------------------------------------------------ */

void server__read_bearer(struct lws *wsi, char *out, size_t size)
{
    char auth[256];
    out[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= (int)sizeof(auth))
        return;
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    if (n >= size)
        n = size - 1; /* too long for any of our tokens: it will not match */
    memcpy(out, t, n);
    out[n] = '\0';
}

/* --- built-in endpoints ----------------------------------------------------------- */

void server__handle_healthz(struct http_exchange *ex)
{
    static const char body[] = "{\"status\":\"alive\"}";
    server_http_respond(ex, 200, "application/json", body, sizeof(body) - 1);
}

void server__handle_readyz(struct server *s, struct http_exchange *ex)
{
    char why[256] = "";
    bool ready = s->hooks.is_ready && s->hooks.is_ready(s->hooks.ctx, why, sizeof(why));
    if (s->stopping) {
        ready = false;
        snprintf(why, sizeof(why), "shutting down");
    }
    json_t *j = ready ? json_pack("{s:s}", "status", "ready")
                      : json_pack("{s:s, s:s}", "status", "not_ready", "reason", why);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        server_http_error(ex, 500, "internal", "out of memory");
        return;
    }
    server_http_respond_owned(ex, ready ? 200 : 503, "application/json", text, strlen(text));
}

/* Compares two strings in a time that does not depend on where they differ. */
static bool same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na && i < nb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* /metrics tells how busy the service is and how it fails: only addresses
 * of metrics_allow (loopback by default) and holders of metrics_token may
 * read it. */
static bool metrics_allowed(const struct server *s, const struct http_exchange *ex)
{
    if (config_address_allowed(s->cfg->metrics_allow, ex->peer))
        return true;
    return s->cfg->metrics_token[0] && same_secret(ex->bearer, s->cfg->metrics_token);
}

void server__handle_metrics(struct server *s, struct http_exchange *ex)
{
    if (!metrics_allowed(s, ex)) {
        server_http_error(ex, 403, "forbidden", "metrics are not served to this address");
        return;
    }
    struct buf b = {0};
    buf_printf(&b,
               "# HELP snpd_connections Open client connections.\n"
               "# TYPE snpd_connections gauge\nsnpd_connections %d\n",
               s->accepted);
    buf_printf(&b,
               "# HELP snpd_connections_refused_total Connections refused by the limits.\n"
               "# TYPE snpd_connections_refused_total counter\n"
               "snpd_connections_refused_total %llu\n",
               (unsigned long long)s->stats.connections_refused);
    buf_printf(&b,
               "# HELP snpd_connections_total Client connections accepted.\n"
               "# TYPE snpd_connections_total counter\nsnpd_connections_total %llu\n",
               (unsigned long long)s->stats.connections_total);
    buf_printf(&b,
               "# HELP snpd_websockets Open WebSocket connections.\n"
               "# TYPE snpd_websockets gauge\nsnpd_websockets %d\n",
               s->stats.websockets);
    buf_printf(&b,
               "# HELP snpd_ws_messages_total WebSocket messages by direction.\n"
               "# TYPE snpd_ws_messages_total counter\n"
               "snpd_ws_messages_total{direction=\"in\"} %llu\n"
               "snpd_ws_messages_total{direction=\"out\"} %llu\n",
               (unsigned long long)s->stats.ws_messages_in,
               (unsigned long long)s->stats.ws_messages_out);
    buf_printf(&b,
               "# HELP snpd_unfinished_bytes Memory held by messages being received.\n"
               "# TYPE snpd_unfinished_bytes gauge\nsnpd_unfinished_bytes %zu\n"
               "# HELP snpd_unfinished_refused_total Messages refused for want of room "
               "(HTTP 503, WebSocket close 1013).\n"
               "# TYPE snpd_unfinished_refused_total counter\n"
               "snpd_unfinished_refused_total %llu\n"
               "# HELP snpd_body_timeouts_total HTTP bodies (408) and WebSocket messages "
               "(close 1008) not finished within body_timeout_s.\n"
               "# TYPE snpd_body_timeouts_total counter\nsnpd_body_timeouts_total %llu\n",
               s->unfinished_bytes, (unsigned long long)s->stats.unfinished_refused,
               (unsigned long long)s->stats.body_timeouts);
    buf_printf(&b, "# HELP snpd_http_responses_total HTTP responses by status class.\n"
                   "# TYPE snpd_http_responses_total counter\n");
    for (int i = 1; i <= 5; i++)
        buf_printf(&b, "snpd_http_responses_total{class=\"%dxx\"} %llu\n", i,
                   (unsigned long long)s->stats.http_by_class[i]);
    if (s->hooks.write_metrics)
        s->hooks.write_metrics(s->hooks.ctx, &b);
    if (b.failed) {
        buf_free(&b);
        server_http_error(ex, 500, "internal", "out of memory");
        return;
    }
    size_t len;
    char *text = buf_steal(&b, &len);
    server_http_respond_owned(ex, 200, "text/plain; version=0.0.4", text, len);
}

/* --- connection limits ------------------------------------------------------------ */

/* Counts are kept in idmaps as pointers; the high bit keeps them non-NULL. */
#define TAG ((uintptr_t)1 << 40)

static int address_count(const struct server *s, uint32_t addr)
{
    uintptr_t v = (uintptr_t)idmap_get(&s->per_address, addr);
    return v ? (int)(v & (TAG - 1)) : 0;
}

static void address_add(struct server *s, uint32_t addr, int delta)
{
    int n = address_count(s, addr) + delta;
    if (n <= 0)
        idmap_del(&s->per_address, addr);
    else if (!idmap_put(&s->per_address, addr, (void *)(TAG | (uintptr_t)n)))
        log_warn("server", "out of memory counting connections");
}

/* Refuses a new socket beyond max_connections, or beyond max_per_address
 * from its peer.  Returns what the lws callback must return. */
int server__filter_connection(struct server *s, const struct lws_filter_network_conn_args *a)
{
    uint32_t addr = 0;
    if (a && a->cli_addr.ss_family == AF_INET)
        addr = ntohl(((const struct sockaddr_in *)&a->cli_addr)->sin_addr.s_addr);
    if (s->accepted >= s->cfg->max_connections ||
        address_count(s, addr) >= s->cfg->max_per_address) {
        s->stats.connections_refused++;
        return 1;
    }
    s->filtered = true;
    s->filtered_address = addr;
    s->filtered_fd = a ? a->accept_fd : -1;
    return 0;
}

/* The wsi of the socket just accepted: count it against its address. */
void server__count_connection(struct server *s, struct lws *wsi)
{
    if (!s->filtered)
        return;
    s->filtered = false;
    if (!idmap_put(&s->wsi_address, (int64_t)(intptr_t)wsi,
                   (void *)(TAG | (uintptr_t)s->filtered_address)))
        return;
    s->accepted++;
    s->stats.connections_total++;
    address_add(s, s->filtered_address, 1);
    /* Plain sockets only: OpenSSL reads TLS ones, not through recv(). */
    if (!s->cfg->tls_cert[0] && s->filtered_fd >= 0 &&
        idmap_put(&s->wsi_fd, (int64_t)(intptr_t)wsi, (void *)(TAG | (uintptr_t)s->filtered_fd)))
        wirecheck_watch(s->filtered_fd);
}

/* Stops following the socket of `wsi` (wirecheck.h), if it was. */
void server__unwatch_connection(struct server *s, struct lws *wsi)
{
    uintptr_t v = (uintptr_t)idmap_del(&s->wsi_fd, (int64_t)(intptr_t)wsi);
    if (v)
        wirecheck_unwatch((int)(v & (TAG - 1)));
}

/* The IPv4 address (host order) of the client on `wsi`, or 0. */
uint32_t server__peer(const struct server *s, struct lws *wsi)
{
    uintptr_t v = (uintptr_t)idmap_get(&s->wsi_address, (int64_t)(intptr_t)wsi);
    return v ? (uint32_t)(v & (TAG - 1)) : 0;
}

void server__uncount_connection(struct server *s, struct lws *wsi)
{
    server__unwatch_connection(s, wsi);
    free(idmap_del(&s->http_buckets, (int64_t)(intptr_t)wsi));
    uintptr_t v = (uintptr_t)idmap_del(&s->wsi_address, (int64_t)(intptr_t)wsi);
    if (!v)
        return;
    s->accepted--;
    address_add(s, (uint32_t)(v & (TAG - 1)), -1);
}

/* --- the sweep -------------------------------------------------------------------- */

void server_sweep(struct server *s, int idle_timeout_s)
{
    uint64_t now = uv_now(s->loop);
    server__http_sweep(s, now);
    server__ws_sweep(s, now, idle_timeout_s);
}

static const struct lws_protocols protocols[] = {
    {"http", server__callback_http, sizeof(struct http_pss), 0, 0, NULL, 0},
    {"snp.v1", server__callback_ws, sizeof(struct ws_pss), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Routes lws' own log lines into ours, at a level that keeps them quiet. */
static void lws_log_emit(int level, const char *line)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", line);
    size_t n = strlen(copy);
    while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == '\r'))
        copy[--n] = '\0';
    if (level & LLL_ERR)
        log_error("lws", "%s", copy);
    else if (level & LLL_WARN)
        log_warn("lws", "%s", copy);
    else
        log_debug("lws", "%s", copy);
}

/* lws 4.1 gives each WebSocket connection a "validity" timer, kept in one
 * list per thread sorted by due time, and moves it at every pong it receives
 * (_lws_validity_confirmed_role): an insertion that walks the timers of the
 * other connections.  snpd pings every quiet connection (server_sweep), so
 * with 10,000 connections open each pong walked 10,000 timers: a fifth of
 * snpd's CPU during the booking benchmark with BENCH_IDLE=10000
 * (bench/README.md).  snpd keeps its connections alive and closes the silent
 * ones itself, so the server's connections get a retry policy without
 * validity times, which leaves that timer unset.  (The context's own
 * default, for client connections, stays as it is: lws 4.1 takes a
 * policy's validity times there only when they are not zero.) */
static const lws_retry_bo_t no_validity_timer = {.secs_since_valid_ping = 0,
                                                 .secs_since_valid_hangup = 0};

int server_start(struct server *s, uv_loop_t *loop, const struct config *cfg,
                 const struct server_hooks *hooks)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->hooks = *hooks;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *foreign_loops[1] = {loop};
    info.foreign_loops = foreign_loops;
    info.pcontext = &s->context;
    /* No LWS_SERVER_OPTION_VALIDATE_UTF8: with it lws fails the connection
     * (close 1007) on invalid UTF-8, where snp.v1 answers invalid_utf8 and
     * keeps the connection open; the codec checks every message instead. */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.port = cfg->port;
    info.iface = cfg->listen;
    info.protocols = protocols;
    info.user = s;
    info.vhost_name = "snpd";
    info.timeout_secs = 10;
    info.keepalive_timeout = 30;
    info.retry_and_idle_policy = &no_validity_timer;
    info.max_http_header_data = 4096;
    info.server_string = "snpd";
    if (cfg->tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
        if (cfg->tls_client_ca[0]) {
            /* Client certificates are asked for and checked against this
             * CA, but not required: browsers and token holders connect
             * without one (docs/fhir.md "Who may call it"). */
            info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                            LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
            info.ssl_ca_filepath = cfg->tls_client_ca;
        }
    }

    /* The port is tried before lws makes its context (lws41.h). */
    int rc = lws41_port_available(cfg->listen, cfg->port);
    if (rc != 0) {
        log_error("server", "cannot listen on %s:%d: %s", cfg->listen, cfg->port, strerror(-rc));
        return rc;
    }
    s->context = lws_create_context(&info);
    if (!s->context) {
        log_error("server",
                  "cannot start libwebsockets on %s:%d (port in use? libuv plugin "
                  "libwebsockets-evlib_uv missing?)",
                  cfg->listen, cfg->port);
        return -EADDRINUSE;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->context, "snpd");
    s->port = vh ? lws_get_vhost_listen_port(vh) : cfg->port;
    log_info("server", "listening on %s://%s:%d", cfg->tls_cert[0] ? "https" : "http", cfg->listen,
             s->port);
    return 0;
}

void server_free(struct server *s)
{
    for (size_t i = 0; i < s->http_buckets.cap; i++)
        free(s->http_buckets.buckets[i].value);
    idmap_free(&s->http_buckets);
    idmap_free(&s->per_address);
    idmap_free(&s->wsi_address);
    idmap_free(&s->wsi_fd);
    free(s->frame);
    s->frame = NULL;
    s->frame_cap = 0;
    wirecheck_free();
}

void server_drain(struct server *s)
{
    s->stopping = true;
}

void server_destroy(struct server *s)
{
    if (s->context)
        lws_context_destroy(s->context);
}
