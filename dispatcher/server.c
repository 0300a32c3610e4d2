#include "dispatcher/server.h"

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
#include "dispatcher/lws41.h"
#include "dispatcher/wirecheck.h"
#include "protocol/codec.h"

/* Per-connection data of the HTTP protocol: the transaction in progress. */
struct http_pss {
    struct http_exchange *ex;
};

/* --- exchanges -------------------------------------------------------------------- */

/* The one place an exchange changes phase (enum http_state, server.h). */
static void exchange_set_state(struct http_exchange *ex, enum http_state next)
{
    static const char *const names[] = {"started",  "receiving",  "routing",
                                        "handling", "responding", "orphaned"};
    log_debug("server", "http %s -> %s", names[ex->state], names[next]);
    ex->state = next;
}

/* The request is complete, or its body will not be read: an exchange
 * receiving its body leaves the list of receiving ones and gives its
 * reservation back, and one not yet routed is to be routed (or answered).
 * Does nothing from HTTP_ROUTING on. */
static void exchange_body_done(struct http_exchange *ex)
{
    if (ex->state >= HTTP_ROUTING)
        return;
    if (ex->state == HTTP_STARTED) {
        exchange_set_state(ex, HTTP_ROUTING);
        return;
    }
    struct server *s = ex->server;
    if (ex->rx_prev)
        ex->rx_prev->rx_next = ex->rx_next;
    else
        s->receiving = ex->rx_next;
    if (ex->rx_next)
        ex->rx_next->rx_prev = ex->rx_prev;
    ex->rx_prev = ex->rx_next = NULL;
    s->unfinished_bytes -= ex->reserved;
    ex->reserved = 0;
    exchange_set_state(ex, HTTP_ROUTING);
}

/* The room left for unfinished messages: whether `bytes` more fit. */
static bool unfinished_fits(const struct server *s, size_t bytes)
{
    size_t max = (size_t)s->cfg->max_unfinished_kb * 1024;
    return s->unfinished_bytes <= max && bytes <= max - s->unfinished_bytes;
}

/* Reserves the body announced by Content-Length (capped at what would be
 * read at all) and starts its deadline.  Returns false when the budget of
 * unfinished messages has no room for it (the exchange is then routed at
 * once, and answered 503). */
static bool exchange_body_start(struct http_exchange *ex, long announced)
{
    struct server *s = ex->server;
    size_t want = announced < 0 ? 0 : (size_t)announced;
    if (want > HTTP_MAX_BODY)
        want = HTTP_MAX_BODY; /* the rest is read and dropped, then 413 */
    if (!unfinished_fits(s, want))
        return false;
    ex->reserved = want;
    s->unfinished_bytes += want;
    ex->body_started_ms = uv_now(s->loop);
    exchange_set_state(ex, HTTP_RECEIVING);
    ex->rx_next = s->receiving;
    if (s->receiving)
        s->receiving->rx_prev = ex;
    s->receiving = ex;
    return true;
}

static void exchange_free(struct http_exchange *ex)
{
    exchange_body_done(ex);
    buf_free(&ex->body);
    free(ex->out);
    free(ex);
}

static enum http_method method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes token;
        enum http_method method;
    } map[] = {
        {WSI_TOKEN_GET_URI, HTTP_GET},       {WSI_TOKEN_POST_URI, HTTP_POST},
        {WSI_TOKEN_PUT_URI, HTTP_PUT},       {WSI_TOKEN_PATCH_URI, HTTP_PATCH},
        {WSI_TOKEN_DELETE_URI, HTTP_DELETE}, {WSI_TOKEN_OPTIONS_URI, HTTP_OPTIONS},
        {WSI_TOKEN_HEAD_URI, HTTP_HEAD},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (lws_hdr_total_length(wsi, map[i].token) > 0)
            return map[i].method;
    return HTTP_OTHER;
}

/* The common name of the client certificate, when the connection presented
 * one that was verified against tls_client_ca; "" otherwise. */
static void read_client_cn(struct lws *wsi, char *out, size_t size)
{
    out[0] = '\0';
    union lws_tls_cert_info_results ir;
    if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_VERIFIED, &ir, 0) != 0 || !ir.verified)
        return;
    char big[sizeof(ir) + 128];
    union lws_tls_cert_info_results *name = (union lws_tls_cert_info_results *)big;
    size_t room = sizeof(big) - sizeof(*name) + sizeof(name->ns.name);
    if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_COMMON_NAME, name, room) != 0 ||
        name->ns.len <= 0 || (size_t)name->ns.len >= size)
        return;
    memcpy(out, name->ns.name, (size_t)name->ns.len);
    out[name->ns.len] = '\0';
}

static void read_bearer(struct lws *wsi, char *out, size_t size)
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

static long content_length(struct lws *wsi)
{
    char v[32];
    if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return 0;
    return strtol(v, NULL, 10);
}

/* Appends `len` bytes percent-encoded (all but unreserved characters) at
 * out[*n]; returns false when `size` is too small. */
static bool append_encoded(char *out, size_t size, size_t *n, const char *p, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~' || c == ',';
        if (*n + (plain ? 1 : 3) + 1 > size)
            return false;
        if (plain) {
            out[(*n)++] = (char)c;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
        }
    }
    out[*n] = '\0';
    return true;
}

/* lws keeps each name=value of the query string as a separate fragment,
 * already percent-decoded.  The codec expects the query as sent, so each
 * name and value is encoded again and the pairs joined with '&' (a value
 * holding '&', '=' or '+' survives).  An over-long query is dropped: the
 * request then fails validation on its missing fields. */
static void read_query(struct lws *wsi, char *out, size_t size)
{
    size_t n = 0;
    char frag[2048];
    out[0] = '\0';
    for (int i = 0;; i++) {
        int len = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (len <= 0)
            break;
        const char *eq = memchr(frag, '=', (size_t)len);
        size_t name_len = eq ? (size_t)(eq - frag) : (size_t)len;
        bool ok = (n == 0 || n + 2 <= size) && (n == 0 || (out[n++] = '&')) &&
                  append_encoded(out, size, &n, frag, name_len);
        if (ok && eq) {
            ok = n + 2 <= size;
            if (ok) {
                out[n++] = '=';
                ok = append_encoded(out, size, &n, eq + 1, (size_t)len - name_len - 1);
            }
        }
        if (!ok) {
            out[0] = '\0';
            return;
        }
    }
}

void server_http_respond_owned(struct http_exchange *ex, int status, const char *content_type,
                               char *body, size_t len)
{
    struct server *s = ex->server;
    if (ex->state == HTTP_HANDLING || ex->state == HTTP_ORPHANED)
        s->pending--;
    if (ex->state == HTTP_ORPHANED) {
        free(body);
        exchange_free(ex);
        return;
    }
    ex->status = status;
    ex->content_type = content_type;
    ex->out = body;
    ex->out_len = len;
    ex->out_off = 0;
    exchange_set_state(ex, HTTP_RESPONDING);
    if (status >= 100 && status < 600)
        s->stats.http_by_class[status / 100]++;
    lws_callback_on_writable(ex->wsi);
}

void server_http_respond(struct http_exchange *ex, int status, const char *content_type,
                         const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, body, len);
        copy[len] = '\0';
    } else {
        len = 0;
        status = 500;
    }
    server_http_respond_owned(ex, status, content_type, copy, len);
}

void server_http_error(struct http_exchange *ex, int status, const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        server_http_respond(ex, 500, "application/json", "", 0);
        return;
    }
    server_http_respond_owned(ex, status, "application/json", text, strlen(text));
}

/* Writes the stored answer: headers first, then the body in pieces. Returns
 * what the lws callback must return. */
static int exchange_write(struct lws *wsi, struct http_pss *pss)
{
    struct http_exchange *ex = pss->ex;
    if (!ex || ex->state != HTTP_RESPONDING)
        return 0;
    if (!ex->headers_sent) {
        uint8_t buf[LWS_PRE + 1024];
        uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
        if (lws_add_http_common_headers(wsi, (unsigned int)ex->status, ex->content_type,
                                        ex->out_len, &p, end))
            return -1;
        static const char nosniff[] = "nosniff";
        const char *cache = ex->cache_control ? ex->cache_control : "no-store";
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                        (const unsigned char *)nosniff, sizeof(nosniff) - 1, &p,
                                        end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)cache, (int)strlen(cache), &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        ex->headers_sent = true;
        if (ex->out_len > 0 && ex->method != HTTP_HEAD) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        /* lws_write needs LWS_PRE bytes of headroom before the payload.
         * Pieces of 64 KiB: a FHIR answer of several megabytes costs one
         * writable round (an epoll_ctl and a send) per piece.  Static: the
         * loop is single-threaded and the piece is written before return. */
        static uint8_t chunk[LWS_PRE + 65536];
        size_t n = ex->out_len - ex->out_off;
        if (n > sizeof(chunk) - LWS_PRE)
            n = sizeof(chunk) - LWS_PRE;
        memcpy(chunk + LWS_PRE, ex->out + ex->out_off, n);
        bool last = ex->out_off + n == ex->out_len;
        if (lws_write(wsi, chunk + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n)
            return -1;
        ex->out_off += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    /* Done: free the exchange; keep-alive connections wait for the next,
     * unless an unread body is still on its way. */
    bool close = ex->chunked || ex->close_after;
    if (!close)
        wirecheck_request_done(lws_get_socket_fd(wsi), ex->body_received);
    pss->ex = NULL;
    exchange_free(ex);
    if (close || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* --- built-in endpoints ----------------------------------------------------------- */

static void handle_healthz(struct http_exchange *ex)
{
    static const char body[] = "{\"status\":\"alive\"}";
    server_http_respond(ex, 200, "application/json", body, sizeof(body) - 1);
}

static void handle_readyz(struct server *s, struct http_exchange *ex)
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

static void handle_metrics(struct server *s, struct http_exchange *ex)
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

/* --- static files ----------------------------------------------------------------- */

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].mime;
    return "application/octet-stream";
}

/* Accepts only plain relative names: letters, digits, '-', '_', '.', '/',
 * no "..", no hidden files.  Anything else is simply not found. */
static bool static_path_ok(const char *path)
{
    if (path[0] != '/' || strstr(path, "..") || strstr(path, "/.") || strstr(path, "//"))
        return false;
    for (const char *p = path; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

/* Whether a component of `rel` below the web root is a symbolic link: those
 * are not followed, so that a link (to /etc, to a private folder) placed in
 * the web root serves nothing.  The web root itself may be a link. */
static bool static_path_has_link(const char *root, const char *rel)
{
    char path[2048];
    size_t rootlen = strlen(root);
    if (rootlen + strlen(rel) >= sizeof(path))
        return true;
    memcpy(path, root, rootlen);
    for (const char *p = rel; *p;) {
        const char *slash = strchr(p + 1, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(path + rootlen + (size_t)(p - rel), p, n);
        path[rootlen + (size_t)(p - rel) + n] = '\0';
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            return true;
        p += n;
    }
    return false;
}

/* Returns what the lws callback must return. */
static int serve_static(struct server *s, struct lws *wsi, struct http_pss *pss)
{
    struct http_exchange *ex = pss->ex;
    char file[2048];
    const char *rel = strcmp(ex->path, "/") == 0 ? "/index.html" : ex->path;
    struct stat st;
    int n = snprintf(file, sizeof(file), "%s%s", s->cfg->web_root, rel);
    if (n > 0 && (size_t)n < sizeof(file) && static_path_ok(rel) && stat(file, &st) == 0 &&
        S_ISDIR(st.st_mode)) {
        n = snprintf(file, sizeof(file), "%s%s/index.html", s->cfg->web_root, rel);
    }
    if (n < 0 || (size_t)n >= sizeof(file) || !static_path_ok(rel) || stat(file, &st) != 0 ||
        !S_ISREG(st.st_mode) ||
        static_path_has_link(s->cfg->web_root, file + strlen(s->cfg->web_root))) {
        server_http_error(ex, 404, "not_found", "no such page");
        return 0;
    }
    static const char headers[] = "x-content-type-options: nosniff\r\n"
                                  "content-security-policy: default-src 'self'; "
                                  "connect-src 'self' ws: wss:; img-src 'self' data:\r\n";
    s->stats.http_by_class[2]++;
    pss->ex = NULL;
    exchange_free(ex);
    int r = lws_serve_http_file(wsi, file, mime_of(file), headers, sizeof(headers) - 1);
    if (r > 0)
        wirecheck_request_done(lws_get_socket_fd(wsi), 0);
    if (r < 0 || (r > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

/* The same limit as a WebSocket connection's (protocol/snp.v1.md §5), for
 * the API requests of one HTTP connection.  Its bucket is keyed by wsi,
 * which lives as long as the connection: lws gives a keep-alive connection
 * fresh per-session data at every transaction. */
static bool http_rate_ok(struct server *s, struct lws *wsi)
{
    uint64_t now = uv_now(s->loop);
    struct token_bucket *b = idmap_get(&s->http_buckets, (int64_t)(intptr_t)wsi);
    if (!b) {
        b = malloc(sizeof(*b));
        if (!b || !idmap_put(&s->http_buckets, (int64_t)(intptr_t)wsi, b)) {
            free(b);
            return true; /* short of memory: do not refuse service for that */
        }
        ratelimit_message_fill(b, now);
    }
    return ratelimit_message(b, now);
}

/* --- routing ---------------------------------------------------------------------- */

/* Gives an API or FHIR request to the owner's `hook`, which must answer it,
 * unless snpd is stopping (503) or the connection sends too fast (429). */
static void hand_over(struct server *s, struct lws *wsi, struct http_exchange *ex,
                      void (*hook)(void *ctx, struct http_exchange *ex))
{
    if (s->stopping) {
        server_http_error(ex, 503, "unavailable", "snpd is shutting down; retry");
        return;
    }
    if (!http_rate_ok(s, wsi)) {
        server_http_error(ex, 429, "rate_limited", "too many requests; slow down");
        return;
    }
    if (!hook) {
        server_http_error(ex, 404, "not_found", "no such operation");
        return;
    }
    exchange_set_state(ex, HTTP_HANDLING);
    s->pending++;
    hook(s->hooks.ctx, ex);
}

/* Returns what the lws callback must return. */
static int route(struct server *s, struct lws *wsi, struct http_pss *pss)
{
    struct http_exchange *ex = pss->ex;
    s->stats.http_requests++;
    exchange_body_done(ex);
    if (ex->no_room) {
        /* Refused before its body was read (no room for it): the unread
         * body makes the connection unusable for another request. */
        s->stats.unfinished_refused++;
        server_http_error(ex, 503, "unavailable",
                          "the server is receiving too many requests at once; retry");
        return 0;
    }
    if (ex->body_too_large) {
        server_http_error(ex, 413, "too_large", "request body exceeds 65536 bytes");
        return 0;
    }
    if (ex->chunked) {
        server_http_error(ex, 411, "bad_json",
                          "send the body with a Content-Length: chunked request bodies are not "
                          "supported");
        return 0;
    }
    bool get = ex->method == HTTP_GET || ex->method == HTTP_HEAD;
    if (strcmp(ex->path, "/healthz") == 0 && get) {
        handle_healthz(ex);
        return 0;
    }
    if (strcmp(ex->path, "/readyz") == 0 && get) {
        handle_readyz(s, ex);
        return 0;
    }
    if (strcmp(ex->path, "/metrics") == 0 && get) {
        handle_metrics(s, ex);
        return 0;
    }
    if (strncmp(ex->path, "/api/", 5) == 0) {
        hand_over(s, wsi, ex, s->hooks.on_api);
        return 0;
    }
    if (strncmp(ex->path, "/fhir/", 6) == 0 && s->hooks.on_fhir) {
        hand_over(s, wsi, ex, s->hooks.on_fhir);
        return 0;
    }
    if (get)
        return serve_static(s, wsi, pss);
    server_http_error(ex, 405, "method_not_allowed", "only GET is served outside /api/");
    return 0;
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
static int filter_connection(struct server *s, const struct lws_filter_network_conn_args *a)
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
static void count_connection(struct server *s, struct lws *wsi)
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
static void unwatch_connection(struct server *s, struct lws *wsi)
{
    uintptr_t v = (uintptr_t)idmap_del(&s->wsi_fd, (int64_t)(intptr_t)wsi);
    if (v)
        wirecheck_unwatch((int)(v & (TAG - 1)));
}

/* The IPv4 address (host order) of the client on `wsi`, or 0. */
static uint32_t server_peer(const struct server *s, struct lws *wsi)
{
    uintptr_t v = (uintptr_t)idmap_get(&s->wsi_address, (int64_t)(intptr_t)wsi);
    return v ? (uint32_t)(v & (TAG - 1)) : 0;
}

static void uncount_connection(struct server *s, struct lws *wsi)
{
    unwatch_connection(s, wsi);
    free(idmap_del(&s->http_buckets, (int64_t)(intptr_t)wsi));
    uintptr_t v = (uintptr_t)idmap_del(&s->wsi_address, (int64_t)(intptr_t)wsi);
    if (!v)
        return;
    s->accepted--;
    address_add(s, (uint32_t)(v & (TAG - 1)), -1);
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct http_pss *pss = user;
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct server *s = vh ? lws_vhost_user(vh) : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return lws41_confirm_upgrade(); /* never read `in` here */

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* An upgrade that offers no subprotocol is bound to the first
         * protocol, this one, and so is one offering "http": refuse it
         * here, before lws answers 101, as the specification requires. */
        return -1;

    case LWS_CALLBACK_ESTABLISHED:
        /* Not reached since the filter above; kept as a second guard. */
        return -1;

    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* With tls_client_ca, OpenSSL asks about each certificate of the
         * chain a client presents; `len` is its own verdict against the CA.
         * A client without a certificate is not asked: it is let in, and
         * only the FHIR platform's routes look for one (read_client_cn). */
        return lws41_client_cert_verdict(len);

    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* `user` is lws' description of the peer; wsi is the listener. */
        return s ? filter_connection(s, user) : 0;

    case LWS_CALLBACK_WSI_CREATE:
        if (s)
            count_connection(s, wsi);
        return 0;

    case LWS_CALLBACK_WSI_DESTROY:
        /* Sent to this protocol for every wsi, whatever its protocol: `user`
         * may be another protocol's data, so it is not touched. */
        if (s)
            uncount_connection(s, wsi);
        return 0;

    case LWS_CALLBACK_HTTP: {
        if (!s || !pss)
            return -1;
        if (pss->ex) {
            /* A pipelined request while the previous one is unanswered. */
            return -1;
        }
        struct http_exchange *ex = calloc(1, sizeof(*ex));
        if (!ex)
            return -1;
        ex->server = s;
        ex->wsi = wsi;
        ex->state = HTTP_STARTED;
        ex->started_ns = uv_hrtime();
        ex->peer = server_peer(s, wsi);
        ex->method = method_of(wsi);
        snprintf(ex->path, sizeof(ex->path), "%s", in ? (const char *)in : "/");
        read_query(wsi, ex->query, sizeof(ex->query));
        read_bearer(wsi, ex->bearer, sizeof(ex->bearer));
        if (s->cfg->tls_client_ca[0])
            read_client_cn(wsi, ex->client_cn, sizeof(ex->client_cn));
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_ACCEPT) < (int)sizeof(ex->accept) &&
            lws_hdr_copy(wsi, ex->accept, sizeof(ex->accept), WSI_TOKEN_HTTP_ACCEPT) <= 0)
            ex->accept[0] = '\0';
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) < (int)sizeof(ex->host) &&
            lws_hdr_copy(wsi, ex->host, sizeof(ex->host), WSI_TOKEN_HOST) <= 0)
            ex->host[0] = '\0';
        pss->ex = ex;
        /* Routed once the body is complete, or at once without one. */
        ex->chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
        bool body =
            lws41_body_expected(wsi, ex->method == HTTP_POST,
                                ex->method == HTTP_PUT || ex->method == HTTP_PATCH, ex->chunked);
        if (body && exchange_body_start(ex, content_length(wsi)))
            return 0; /* routed at LWS_CALLBACK_HTTP_BODY_COMPLETION */
        if (body)
            ex->no_room = ex->close_after = true; /* route() answers 503 */
        return route(s, wsi, pss);
    }

    case LWS_CALLBACK_HTTP_BODY:
        /* After a 408 the rest of the body may still come: it is dropped. */
        if (pss && pss->ex && pss->ex->state == HTTP_RECEIVING) {
            struct http_exchange *ex = pss->ex;
            ex->body_received += len;
            if (ex->body.len + len > HTTP_MAX_BODY)
                ex->body_too_large = true;
            else if (len > 0) /* lws passes in = NULL for "Content-Length: 0" */
                buf_append(&ex->body, in, len);
        }
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!s || !pss || !pss->ex)
            return -1;
        if (pss->ex->state != HTTP_RECEIVING)
            return 0; /* answered 408 already */
        return route(s, wsi, pss);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss)
            return 0;
        return exchange_write(wsi, pss);

    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        wirecheck_request_done(lws_get_socket_fd(wsi), 0);
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss && pss->ex) {
            struct http_exchange *ex = pss->ex;
            pss->ex = NULL;
            if (ex->state == HTTP_HANDLING) {
                ex->wsi = NULL;
                exchange_set_state(ex, HTTP_ORPHANED); /* its handler's answer frees it */
            } else {
                exchange_free(ex);
            }
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* --- WebSocket (snp.v1) ----------------------------------------------------------- */

#define WS_MAX_OUT_BYTES (4u << 20)

/* The message being assembled is finished or dropped: its bytes leave the
 * unfinished budget. */
static void ws_rx_release(struct ws_client *c)
{
    c->server->unfinished_bytes -= c->rx_charged;
    c->rx_charged = 0;
}

struct ws_out {
    struct ws_out *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the text */
};

/* Per-connection data of the snp.v1 protocol. */
struct ws_pss {
    struct ws_client *client;
};

void server_ws_ref(struct ws_client *c)
{
    c->refs++;
}

/* Frees the messages queued for `c` and not yet written. */
static void ws_drop_queue(struct ws_client *c)
{
    while (c->out_head) {
        struct ws_out *o = c->out_head;
        c->out_head = o->next;
        free(o);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
}

void server_ws_unref(struct ws_client *c)
{
    if (--c->refs > 0)
        return;
    struct server *s = c->server;
    if (s->hooks.on_ws_free)
        s->hooks.on_ws_free(s->hooks.ctx, c);
    ws_drop_queue(c);
    ws_rx_release(c);
    buf_free(&c->rx);
    free(c);
}

/* The one place a connection changes phase (enum ws_state, server.h). */
static void ws_set_state(struct ws_client *c, enum ws_state next)
{
    static const char *const names[] = {"open", "draining", "closing", "broken", "gone"};
    log_debug("server", "websocket %s -> %s", names[c->state], names[next]);
    c->state = next;
}

/* Writes `text` as one frame at once, when nothing waits before it in our
 * queue (lws41_write_text_now: nor in lws' buffer).  A push to a thousand
 * subscribers then costs a send() each, where going through the writeable
 * callback cost an epoll_ctl to arm POLLOUT, another to disarm it, and a
 * loop turn (bench/README.md, section 5).  Returns false when the frame is
 * to be queued instead. */
static bool ws_write_now(struct ws_client *c, const char *text, size_t len)
{
    struct server *s = c->server;
    if (c->out_head)
        return false;
    if (s->frame_cap < LWS_PRE + len) {
        size_t cap = LWS_PRE + len < 4096 ? 4096 : LWS_PRE + len;
        unsigned char *f = realloc(s->frame, cap);
        if (!f)
            return false;
        s->frame = f;
        s->frame_cap = cap;
    }
    memcpy(s->frame + LWS_PRE, text, len);
    switch (lws41_write_text_now(c->wsi, s->frame + LWS_PRE, len)) {
    case LWS41_LATER:
        return false;
    case LWS41_FAILED:
        /* The writeable callback closes it (returning -1 there is how lws
         * is told). */
        ws_set_state(c, WS_BROKEN);
        lws_callback_on_writable(c->wsi);
        return true;
    case LWS41_WRITTEN:
        break;
    }
    s->stats.ws_messages_out++;
    return true;
}

void server_ws_send(struct ws_client *c, const char *text, size_t len)
{
    if (c->state != WS_OPEN)
        return; /* closing or gone: nothing more is queued */
    if (ws_write_now(c, text, len))
        return;
    if (c->out_bytes + len > WS_MAX_OUT_BYTES) {
        log_warn("server", "a WebSocket client reads too slowly; disconnecting it");
        server_ws_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too slow");
        return;
    }
    struct ws_out *o = malloc(sizeof(*o) + LWS_PRE + len);
    if (!o)
        return;
    o->next = NULL;
    o->len = len;
    memcpy(o->buf + LWS_PRE, text, len);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += len;
    lws_callback_on_writable(c->wsi);
}

void server_sweep(struct server *s, int idle_timeout_s)
{
    uint64_t now = uv_now(s->loop), idle_ms = (uint64_t)idle_timeout_s * 1000;
    uint64_t body_ms = (uint64_t)s->cfg->body_timeout_s * 1000;
    for (struct http_exchange *ex = s->receiving, *next; ex; ex = next) {
        next = ex->rx_next;
        if (now - ex->body_started_ms < body_ms)
            continue;
        /* The rest of the body is not waited for: the connection closes
         * after the answer, and what still comes is dropped. */
        exchange_body_done(ex);
        ex->close_after = true;
        s->stats.body_timeouts++;
        server_http_error(ex, 408, "bad_json", "the request body did not arrive in time");
    }
    for (struct ws_client *c = s->clients; c; c = c->next) {
        if (c->state != WS_OPEN)
            continue;
        if (c->rx_charged > 0 && now - c->rx_started_ms >= body_ms) {
            ws_rx_release(c);
            s->stats.body_timeouts++;
            server_ws_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "message timeout");
            continue;
        }
        uint64_t silent = now - c->last_rx_ms;
        if (silent >= idle_ms) {
            server_ws_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "idle timeout");
        } else if (silent >= idle_ms / 2 && c->keepalive == WS_HEARD) {
            c->keepalive = WS_PING_DUE;
            lws_callback_on_writable(c->wsi);
        }
    }
}

/* Starts the polite close (close frame, then wait for the peer's), from
 * the writeable callback (lws41_close_politely). */
static void ws_close_now(struct ws_client *c)
{
    ws_set_state(c, WS_CLOSING);
    lws41_close_politely(c->wsi, c->close_status, c->close_reason);
}

void server_ws_close(struct ws_client *c, int status, const char *reason)
{
    if (c->state == WS_CLOSING || c->state == WS_BROKEN || c->state == WS_GONE)
        return;
    ws_drop_queue(c); /* what is still queued is not sent */
    server_ws_close_after_flush(c, status, reason);
}

void server_ws_close_after_flush(struct ws_client *c, int status, const char *reason)
{
    if (c->state == WS_CLOSING || c->state == WS_BROKEN || c->state == WS_GONE)
        return;
    if (c->state == WS_OPEN) {
        /* The first reason given is the one sent. */
        c->close_status = status;
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
        ws_set_state(c, WS_DRAINING);
    }
    /* The close frame is sent from the writeable callback, after the queue. */
    lws_callback_on_writable(c->wsi);
}

/* wirecheck saw an unmasked frame from `owner`'s client, before lws parses
 * it (RFC 6455 §5.1: the server fails the connection).  It is closed with
 * 1002 from the writeable callback; the RECEIVE case drops what comes
 * meanwhile, so that frame is never answered.  (Failing the connection
 * from a callback with lws_close_reason() and -1, as for 1009, lost the
 * close frame here in our tests with lws 4.1.6; this path keeps it.) */
static void ws_on_unmasked(void *owner)
{
    server_ws_close(owner, LWS_CLOSE_STATUS_PROTOCOL_ERR, "frame not masked");
}

static int callback_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct ws_pss *pss = user;
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct server *s = vh ? lws_vhost_user(vh) : NULL;
    struct ws_client *c = pss ? pss->client : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return lws41_confirm_upgrade(); /* never read `in` here */

    case LWS_CALLBACK_ESTABLISHED: {
        if (!s || !pss)
            return -1;
        if (s->stopping)
            return -1;
        c = calloc(1, sizeof(*c));
        if (!c)
            return -1;
        c->server = s;
        c->wsi = wsi;
        c->refs = 1;
        c->opened_ms = c->last_rx_ms = uv_now(s->loop);
        ratelimit_message_fill(&c->rate, c->opened_ms);
        c->peer = server_peer(s, wsi);
        read_bearer(wsi, c->bearer, sizeof(c->bearer));
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        pss->client = c;
        s->stats.websockets++;
        wirecheck_websocket(lws_get_socket_fd(wsi), ws_on_unmasked, c);
        if (s->hooks.on_ws_open)
            s->hooks.on_ws_open(s->hooks.ctx, c);
        return 0;
    }

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* lws answers the peer's close frame itself; nothing more is sent,
         * and what waits in the queue is dropped by the close. */
        if (c && c->state == WS_OPEN) {
            ws_drop_queue(c);
            ws_set_state(c, WS_CLOSING);
        }
        return 0;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (c) {
            c->last_rx_ms = uv_now(s->loop);
            c->keepalive = WS_HEARD;
        }
        return 0;

    case LWS_CALLBACK_RECEIVE: {
        if (!c)
            return -1;
        c->last_rx_ms = uv_now(s->loop);
        c->keepalive = WS_HEARD;
        if (c->state != WS_OPEN) {
            /* Closing (a message timeout, for one): what still comes is dropped. */
            ws_rx_release(c);
            buf_free(&c->rx);
            return 0;
        }
        size_t max = snp_proto_limits()->max_message_bytes;
        /* lws has no message size limit of its own: count what the
         * fragments add up to, and what is announced still to come. */
        if (c->rx.len + len + lws_remaining_packet_payload(wsi) > max || c->rx_overflow) {
            c->rx_overflow = true;
            s->stats.ws_closed_too_large++;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                             (unsigned char *)"message too large", 17);
            return -1;
        }
        bool final = lws_is_final_fragment(wsi);
        if (!final) {
            /* A message held across callbacks counts in the unfinished
             * budget, and its deadline runs from its first piece. */
            if (!unfinished_fits(s, len)) {
                s->stats.unfinished_refused++;
                ws_rx_release(c);
                lws_close_reason(wsi, (enum lws_close_status)LWS41_CLOSE_TRY_AGAIN_LATER,
                                 (unsigned char *)"try again later", 15);
                return -1;
            }
            if (c->rx_charged == 0)
                c->rx_started_ms = c->last_rx_ms;
            s->unfinished_bytes += len;
            c->rx_charged += len;
        }
        buf_append(&c->rx, in, len);
        if (c->rx.failed)
            return -1;
        if (!final)
            return 0;
        ws_rx_release(c);
        s->stats.ws_messages_in++;
        size_t n;
        char *text = buf_steal(&c->rx, &n);
        server_ws_ref(c);
        if (s->hooks.on_ws_message)
            s->hooks.on_ws_message(s->hooks.ctx, c, text ? text : "", text ? n : 0,
                                   lws_frame_is_binary(wsi));
        free(text);
        server_ws_unref(c);
        return 0;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (c && c->state == WS_BROKEN)
            return -1;
        if (c && c->keepalive == WS_PING_DUE) {
            c->keepalive = WS_PING_SENT;
            if (lws41_ping(wsi) < 0)
                return -1;
            if (c->out_head || c->state != WS_OPEN)
                lws_callback_on_writable(wsi);
            return 0;
        }
        if (c && !c->out_head && c->state != WS_OPEN) {
            /* Draining (server_ws_close*): everything queued is sent. */
            if (c->state == WS_DRAINING)
                ws_close_now(c);
            return 0;
        }
        if (!c || !c->out_head)
            return 0;
        struct ws_out *o = c->out_head;
        int w = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
        if (w < (int)o->len)
            return -1;
        c->out_head = o->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= o->len;
        free(o);
        s->stats.ws_messages_out++;
        if (c->out_head || c->state != WS_OPEN)
            lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_CLOSED:
        if (c) {
            if (c->prev)
                c->prev->next = c->next;
            else if (s && s->clients == c)
                s->clients = c->next;
            if (c->next)
                c->next->prev = c->prev;
            c->prev = c->next = NULL;
            c->wsi = NULL;
            ws_set_state(c, WS_GONE);
            pss->client = NULL;
            ws_rx_release(c);
            /* The client may outlive the connection: wirecheck forgets it. */
            if (s)
                unwatch_connection(s, wsi);
            if (s)
                s->stats.websockets--;
            server_ws_unref(c);
        }
        return 0;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(struct http_pss), 0, 0, NULL, 0},
    {"snp.v1", callback_ws, sizeof(struct ws_pss), 4096, 0, NULL, 0},
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
