/* HTTP exchanges (enum http_state, server.h): a request read, its body
 * received within the unfinished budget, routed to a built-in endpoint, a
 * static file or the owner's handlers, then its answer written. */
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
    if (!server__unfinished_fits(s, want))
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
        server__handle_healthz(ex);
        return 0;
    }
    if (strcmp(ex->path, "/readyz") == 0 && get) {
        server__handle_readyz(s, ex);
        return 0;
    }
    if (strcmp(ex->path, "/metrics") == 0 && get) {
        server__handle_metrics(s, ex);
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

int server__callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
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
        return s ? server__filter_connection(s, user) : 0;

    case LWS_CALLBACK_WSI_CREATE:
        if (s)
            server__count_connection(s, wsi);
        return 0;

    case LWS_CALLBACK_WSI_DESTROY:
        /* Sent to this protocol for every wsi, whatever its protocol: `user`
         * may be another protocol's data, so it is not touched. */
        if (s)
            server__uncount_connection(s, wsi);
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
        ex->peer = server__peer(s, wsi);
        ex->method = method_of(wsi);
        snprintf(ex->path, sizeof(ex->path), "%s", in ? (const char *)in : "/");
        read_query(wsi, ex->query, sizeof(ex->query));
        server__read_bearer(wsi, ex->bearer, sizeof(ex->bearer));
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
        long announced = content_length(wsi);
        bool body = lws41_body_expected(wsi, ex->method == HTTP_POST,
                                        ex->method == HTTP_PUT || ex->method == HTTP_PATCH,
                                        ex->chunked, announced);
        if (body && exchange_body_start(ex, announced))
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

void server__http_sweep(struct server *s, uint64_t now)
{
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
}
