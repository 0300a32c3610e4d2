/* snpclient against a tiny libwebsockets server started by the test itself,
 * on a free port, serviced by a thread of its own (its own lws context on
 * lws' default poll loop).
 *
 * The server's HTTP side answers every request with a JSON echo of the
 * method, path, Authorization header and body; "/slow" never answers,
 * "/big" answers 300 000 bytes, "/status/N" answers with status N.
 *
 * Its WebSocket side speaks subprotocol snp.v1 and echoes each whole message
 * (after assembling fragments), except:
 *   "CLOSE..."      closes with status 1009 and reason "too big";
 *   "WHOAMI"        answers {"authorization": <header or null>, "protocol": ...,
 *                   "peer": <client address>};
 *   "FRAG:<text>"   answers <text> split in three fragments;
 *   an envelope {"id","type","data"} gets a push, then a response to another
 *   id, then its own response (ok: true echoing data; ok: false for type
 *   "fail"; nothing for type "ignore").
 * A handshake with "Authorization: Bearer reject" is refused with a 401.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "clients/lib/snpclient.h"
#include "tests/support/proc.h"
#include "tests/support/wait.h"

/* ---- the echo server ----------------------------------------------------- */

struct chunk {
    struct chunk *next;
    int flags; /* lws_write protocol */
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct http_pss {
    char method[16];
    char path[256];
    char authorization[512];
    bool has_authorization;
    char *body;
    size_t body_len;
    bool has_body;
    char *out; /* LWS_PRE + out_len */
    size_t out_len;
};

struct ws_pss {
    char authorization[512];
    bool has_authorization;
    char *rx;
    size_t rx_len;
    bool rx_binary;
    bool rx_started;
    struct chunk *head, *tail;
    bool close_after_flush; /* close with 1009 once `head` is written */
};

static struct {
    struct lws_context *ctx;
    int port;
    pthread_t thread;
    atomic_bool stop;
    int silent_fd; /* a listening socket that never accepts */
    int silent_port;
} srv;

static void append(char **buf, size_t *len, const void *p, size_t n)
{
    char *b = realloc(*buf, *len + n + 1);
    cr_assert_not_null(b);
    memcpy(b + *len, p, n);
    *len += n;
    b[*len] = '\0';
    *buf = b;
}

static void queue_chunk(struct ws_pss *pss, const void *p, size_t n, int flags)
{
    struct chunk *c = malloc(sizeof(*c) + LWS_PRE + n);
    cr_assert_not_null(c);
    c->next = NULL;
    c->flags = flags;
    c->len = n;
    if (n)
        memcpy(c->buf + LWS_PRE, p, n);
    if (pss->tail)
        pss->tail->next = c;
    else
        pss->head = c;
    pss->tail = c;
}

static void queue_json(struct ws_pss *pss, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    queue_chunk(pss, s, strlen(s), LWS_WRITE_TEXT);
    free(s);
}

static const char *http_method(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
        return "GET";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
        return "POST";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI))
        return "PUT";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI))
        return "PATCH";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI))
        return "DELETE";
    return "OTHER";
}

/* Writes the response headers now and asks for the body's turn. */
static int http_answer(struct lws *wsi, struct http_pss *pss)
{
    int status = 200;
    json_t *j = NULL;
    char *text;
    if (strcmp(pss->path, "/big") == 0) {
        text = malloc(300000 + 1);
        cr_assert_not_null(text);
        memset(text, 'b', 300000);
        text[300000] = '\0';
    } else {
        if (strncmp(pss->path, "/status/", 8) == 0)
            status = atoi(pss->path + 8);
        j = json_pack(
            "{s:s, s:s, s:o, s:o}", "method", pss->method, "path", pss->path, "authorization",
            pss->has_authorization ? json_string(pss->authorization) : json_null(), "body",
            pss->has_body ? json_stringn(pss->body ? pss->body : "", pss->body_len) : json_null());
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    pss->out_len = strlen(text);
    pss->out = malloc(LWS_PRE + pss->out_len);
    cr_assert_not_null(pss->out);
    memcpy(pss->out + LWS_PRE, text, pss->out_len);
    free(text);

    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
                                      *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)status, "application/json", pss->out_len, &p,
                                    end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static void http_pss_clear(struct http_pss *pss)
{
    free(pss->body);
    free(pss->out);
    memset(pss, 0, sizeof(*pss));
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct http_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        /* `in` is never read here: CVE-2025-11677 (lws 4.1.6). */
        char auth[128];
        if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
            strcmp(auth, "Bearer reject") == 0) {
            static const char body[] = "{\"error\":\"unauthorized\"}";
            unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
                                              *end = buf + sizeof(buf) - 1;
            if (lws_add_http_common_headers(wsi, 401, "application/json", strlen(body), &p, end) ||
                lws_finalize_write_http_header(wsi, start, &p, end))
                return -1;
            unsigned char b[LWS_PRE + sizeof(body)];
            memcpy(b + LWS_PRE, body, strlen(body));
            if (lws_write(wsi, b + LWS_PRE, strlen(body), LWS_WRITE_HTTP_FINAL) < 0)
                return -1;
            return 1;
        }
        return 0;
    }

    case LWS_CALLBACK_HTTP: {
        http_pss_clear(pss);
        snprintf(pss->method, sizeof(pss->method), "%s", http_method(wsi));
        snprintf(pss->path, sizeof(pss->path), "%s", (const char *)in);
        pss->has_authorization = lws_hdr_copy(wsi, pss->authorization, sizeof(pss->authorization),
                                              WSI_TOKEN_HTTP_AUTHORIZATION) > 0;
        if (strcmp(pss->path, "/slow") == 0)
            return 0; /* never answered */
        char cl[32];
        long length = -1;
        if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            length = atol(cl);
        /* lws calls BODY_COMPLETION for a POST even with Content-Length: 0. */
        if (length > 0 || (length == 0 && strcmp(pss->method, "POST") == 0))
            return 0;
        return http_answer(wsi, pss);
    }

    case LWS_CALLBACK_HTTP_BODY:
        pss->has_body = true;
        if (len)
            append(&pss->body, &pss->body_len, in, len);
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        pss->has_body = true;
        return http_answer(wsi, pss);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss || !pss->out)
            return 0;
        if (lws_write(wsi, (unsigned char *)pss->out + LWS_PRE, pss->out_len,
                      LWS_WRITE_HTTP_FINAL) != (int)pss->out_len)
            return 1;
        http_pss_clear(pss);
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss)
            http_pss_clear(pss);
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Handles one whole message; returns -1 to close the connection. */
static int ws_handle(struct lws *wsi, struct ws_pss *pss, const char *msg, size_t len, bool binary)
{
    if (!binary && len >= 5 && memcmp(msg, "CLOSE", 5) == 0) {
        /* Answers already queued go out before the close frame. */
        if (pss->head) {
            pss->close_after_flush = true;
            return 0;
        }
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"too big", 7);
        return -1;
    }
    if (!binary && strcmp(msg, "WHOAMI") == 0) {
        char peer[64];
        queue_json(pss,
                   json_pack("{s:o, s:s, s:s}", "authorization",
                             pss->has_authorization ? json_string(pss->authorization) : json_null(),
                             "protocol", lws_get_protocol(wsi)->name, "peer",
                             lws_get_peer_simple(wsi, peer, sizeof(peer))));
        return 0;
    }
    if (!binary && strncmp(msg, "FRAG:", 5) == 0) {
        const char *t = msg + 5;
        size_t n = len - 5, a = n / 3, b = n / 3;
        queue_chunk(pss, t, a, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
        queue_chunk(pss, t + a, b, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN);
        queue_chunk(pss, t + a + b, n - a - b, LWS_WRITE_CONTINUATION);
        return 0;
    }
    json_t *j = binary ? NULL : json_loadb(msg, len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *type = json_string_value(json_object_get(j, "type"));
    if (id && type) {
        if (strcmp(type, "ignore") != 0) {
            queue_json(pss, json_pack("{s:s, s:s, s:s, s:{s:i}}", "type", "push", "topic", "test",
                                      "event", "before", "data", "n", 1));
            queue_json(pss, json_pack("{s:s, s:s, s:b, s:{}}", "id", "unrelated", "type", "x", "ok",
                                      1, "data"));
            if (strcmp(type, "fail") == 0)
                queue_json(pss, json_pack("{s:s, s:s, s:b, s:{s:s, s:s, s:n}}", "id", id, "type",
                                          type, "ok", 0, "error", "code", "bad_request", "message",
                                          "failed on purpose", "field"));
            else
                queue_json(pss, json_pack("{s:s, s:s, s:b, s:O}", "id", id, "type", type, "ok", 1,
                                          "data", json_object_get(j, "data")));
        }
    } else {
        queue_chunk(pss, msg, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    }
    json_decref(j);
    return 0;
}

static int on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    struct ws_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        pss->has_authorization = lws_hdr_copy(wsi, pss->authorization, sizeof(pss->authorization),
                                              WSI_TOKEN_HTTP_AUTHORIZATION) > 0;
        return 0;

    case LWS_CALLBACK_RECEIVE:
        if (!pss->rx_started) {
            pss->rx_started = true;
            pss->rx_binary = lws_frame_is_binary(wsi);
        }
        append(&pss->rx, &pss->rx_len, in ? in : "", len);
        if (lws_is_final_fragment(wsi)) {
            int rc = ws_handle(wsi, pss, pss->rx, pss->rx_len, pss->rx_binary);
            free(pss->rx);
            pss->rx = NULL;
            pss->rx_len = 0;
            pss->rx_started = false;
            if (rc)
                return rc;
            if (pss->head)
                lws_callback_on_writable(wsi);
        }
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct chunk *c = pss->head;
        if (!c) {
            if (!pss->close_after_flush)
                return 0;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"too big",
                             7);
            return -1;
        }
        pss->head = c->next;
        if (!pss->head)
            pss->tail = NULL;
        int n = lws_write(wsi, c->buf + LWS_PRE, c->len, (enum lws_write_protocol)c->flags);
        size_t clen = c->len;
        free(c);
        if (n < (int)clen)
            return -1;
        if (pss->head || pss->close_after_flush)
            lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_CLOSED:
        free(pss->rx);
        pss->rx = NULL;
        while (pss->head) {
            struct chunk *c = pss->head;
            pss->head = c->next;
            free(c);
        }
        pss->tail = NULL;
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols server_protocols[] = {
    {"http", on_http, sizeof(struct http_pss), 0, 0, NULL, 0},
    {"snp.v1", on_ws, sizeof(struct ws_pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *server_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop))
        if (lws_service(srv.ctx, 0) < 0)
            break;
    return NULL;
}

static void server_start(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = 0; /* any free port; read back below */
    info.iface = "127.0.0.1";
    info.protocols = server_protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    srv.ctx = lws_create_context(&info);
    cr_assert_not_null(srv.ctx);
    srv.port = lws_get_vhost_listen_port(lws_get_vhost_by_name(srv.ctx, "default"));
    cr_assert_gt(srv.port, 0);
    atomic_store(&srv.stop, false);
    cr_assert_eq(pthread_create(&srv.thread, NULL, server_thread, NULL), 0);

    /* A port that accepts TCP connections (the kernel completes them into
     * the backlog) and never says a word: for handshake time-outs. */
    srv.silent_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(srv.silent_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(srv.silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(srv.silent_fd, 16), 0);
    socklen_t alen = sizeof(a);
    cr_assert_eq(getsockname(srv.silent_fd, (struct sockaddr *)&a, &alen), 0);
    srv.silent_port = ntohs(a.sin_port);
}

static void server_stop(void)
{
    atomic_store(&srv.stop, true);
    lws_cancel_service(srv.ctx);
    pthread_join(srv.thread, NULL);
    lws_context_destroy(srv.ctx);
    srv.ctx = NULL;
    close(srv.silent_fd);
}

TestSuite(snpclient, .init = server_start, .fini = server_stop, .timeout = 60);

/* ---- helpers ------------------------------------------------------------- */

static struct snpclient *client(void)
{
    struct snpclient *c = snpclient_new("127.0.0.1", srv.port, false);
    cr_assert_not_null(c);
    return c;
}

static struct snpclient_ws *ws_open(struct snpclient *c, const char *bearer)
{
    char err[256];
    struct snpclient_ws *w = snpclient_ws_open(c, "/", bearer, 5000, err, sizeof(err));
    cr_assert_not_null(w, "open failed: %s", err);
    return w;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, text);
    return j;
}

static const char *jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static char *recv_text(struct snpclient_ws *w)
{
    char *t = NULL;
    int rc = snpclient_ws_recv(w, 5000, &t);
    cr_assert_eq(rc, 0, "recv: %s", snpclient_strerror(rc));
    return t;
}

static void expect_text(struct snpclient_ws *w, const char *want)
{
    char *t = recv_text(w);
    cr_assert_str_eq(t, want);
    free(t);
}

/* ---- HTTP ---------------------------------------------------------------- */

Test(snpclient, http_get_without_bearer)
{
    struct snpclient *c = client();
    int status = 0;
    char *body = NULL;
    cr_assert_eq(snpclient_http(c, "GET", "/api/v1/ping?x=1", NULL, NULL, 5000, &status, &body), 0);
    cr_assert_eq(status, 200);
    json_t *j = parse(body);
    cr_assert_str_eq(jstr(j, "method"), "GET");
    cr_assert_str_eq(jstr(j, "path"), "/api/v1/ping");
    cr_assert(json_is_null(json_object_get(j, "authorization")), "%s", body);
    cr_assert(json_is_null(json_object_get(j, "body")), "%s", body);
    json_decref(j);
    free(body);
    snpclient_free(c);
}

Test(snpclient, http_post_with_body_and_bearer)
{
    struct snpclient *c = client();
    int status = 0;
    char *body = NULL;
    cr_assert_eq(snpclient_http(c, "POST", "/api/v1/requests", "tok-123", "{\"a\":1,\"b\":\"é\"}",
                                5000, &status, &body),
                 0);
    cr_assert_eq(status, 200);
    json_t *j = parse(body);
    cr_assert_str_eq(jstr(j, "method"), "POST");
    cr_assert_str_eq(jstr(j, "authorization"), "Bearer tok-123");
    cr_assert_str_eq(jstr(j, "body"), "{\"a\":1,\"b\":\"é\"}");
    json_decref(j);
    free(body);

    /* PUT and DELETE, and an empty POST body. */
    cr_assert_eq(snpclient_http(c, "PUT", "/x", "t", "{}", 5000, &status, &body), 0);
    j = parse(body);
    cr_assert_str_eq(jstr(j, "method"), "PUT");
    cr_assert_str_eq(jstr(j, "body"), "{}");
    json_decref(j);
    free(body);
    cr_assert_eq(snpclient_http(c, "DELETE", "/x/1", "t", NULL, 5000, &status, &body), 0);
    j = parse(body);
    cr_assert_str_eq(jstr(j, "method"), "DELETE");
    json_decref(j);
    free(body);
    cr_assert_eq(snpclient_http(c, "POST", "/empty", NULL, "", 5000, &status, &body), 0);
    j = parse(body);
    cr_assert_str_eq(jstr(j, "body"), "");
    json_decref(j);
    free(body);
    snpclient_free(c);
}

Test(snpclient, http_large_bodies_and_status)
{
    struct snpclient *c = client();
    size_t n = 100000;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    int status = 0;
    char *body = NULL;
    cr_assert_eq(snpclient_http(c, "POST", "/echo", NULL, big, 5000, &status, &body), 0);
    json_t *j = parse(body);
    cr_assert_str_eq(jstr(j, "body"), big);
    json_decref(j);
    free(body);
    free(big);

    cr_assert_eq(snpclient_http(c, "GET", "/big", NULL, NULL, 5000, &status, &body), 0);
    cr_assert_eq(status, 200);
    cr_assert_eq(strlen(body), 300000u);
    free(body);

    /* A status is a status: not an error.  Both out-parameters are optional. */
    cr_assert_eq(snpclient_http(c, "GET", "/status/404", NULL, NULL, 5000, &status, &body), 0);
    cr_assert_eq(status, 404);
    free(body);
    cr_assert_eq(snpclient_http(c, "GET", "/status/503", NULL, NULL, 5000, NULL, NULL), 0);

    cr_assert_eq(snpclient_http(c, "GET", "no-slash", NULL, NULL, 5000, &status, &body),
                 SNPCLIENT_EINVAL);
    cr_assert_null(body);
    snpclient_free(c);
}

Test(snpclient, http_timeout_then_usable)
{
    struct snpclient *c = client();
    int status = -1;
    char *body = (char *)"sentinel";
    int64_t t0 = test_now_ms();
    cr_assert_eq(snpclient_http(c, "GET", "/slow", NULL, NULL, 300, &status, &body),
                 SNPCLIENT_ETIMEDOUT);
    int64_t took = test_now_ms() - t0;
    cr_assert(took >= 290 && took < 2000, "took %lld ms", (long long)took);
    cr_assert_eq(status, 0);
    cr_assert_null(body);

    cr_assert_eq(snpclient_http(c, "GET", "/after", NULL, NULL, 5000, &status, &body), 0);
    cr_assert_eq(status, 200);
    free(body);
    snpclient_free(c);
}

Test(snpclient, http_connection_refused_is_quick)
{
    struct snpclient *c = snpclient_new("127.0.0.1", proc_free_port(), false);
    cr_assert_not_null(c);
    int status = -1;
    char *body = NULL;
    int64_t t0 = test_now_ms();
    cr_assert_eq(snpclient_http(c, "GET", "/", NULL, NULL, 10000, &status, &body),
                 SNPCLIENT_ECONNECT);
    cr_assert_lt(test_now_ms() - t0, 1000);
    cr_assert_null(body);
    snpclient_free(c);
}

/* ---- WebSocket ----------------------------------------------------------- */

Test(snpclient, ws_open_with_and_without_bearer)
{
    struct snpclient *c = client();
    struct snpclient_ws *anon = ws_open(c, NULL);
    struct snpclient_ws *auth = ws_open(c, "secret-token");

    cr_assert_eq(snpclient_ws_send(anon, "WHOAMI"), 0);
    cr_assert_eq(snpclient_ws_send(auth, "WHOAMI"), 0);
    char *t = recv_text(anon);
    json_t *j = parse(t);
    cr_assert(json_is_null(json_object_get(j, "authorization")), "%s", t);
    cr_assert_str_eq(jstr(j, "protocol"), "snp.v1");
    json_decref(j);
    free(t);
    t = recv_text(auth);
    j = parse(t);
    cr_assert_str_eq(jstr(j, "authorization"), "Bearer secret-token");
    /* lws listens dual-stack: IPv4 peers appear as ::ffff:a.b.c.d. */
    cr_assert(strstr(jstr(j, "peer"), "127.0.0.1"), "%s", t);
    json_decref(j);
    free(t);

    cr_assert_not(snpclient_ws_is_closed(anon));
    cr_assert_eq(snpclient_ws_close_code(anon), 0);
    snpclient_ws_close(anon);
    snpclient_ws_close(auth);
    snpclient_free(c);
}

Test(snpclient, ws_handshake_rejected)
{
    struct snpclient *c = client();
    char err[256];
    struct snpclient_ws *w = snpclient_ws_open(c, "/", "reject", 5000, err, sizeof(err));
    cr_assert_null(w);
    cr_assert(strstr(err, "401"), "%s", err);
    /* The client stays usable. */
    w = ws_open(c, "fine");
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_connection_refused_and_timeout)
{
    struct snpclient *c = snpclient_new("127.0.0.1", proc_free_port(), false);
    cr_assert_not_null(c);
    char err[256];
    int64_t t0 = test_now_ms();
    cr_assert_null(snpclient_ws_open(c, "/", NULL, 10000, err, sizeof(err)));
    cr_assert_lt(test_now_ms() - t0, 1000);
    cr_assert(strstr(err, "connection failed"), "%s", err);
    snpclient_free(c);

    /* Connected at the TCP level, but the upgrade is never answered. */
    c = snpclient_new("127.0.0.1", srv.silent_port, false);
    cr_assert_not_null(c);
    t0 = test_now_ms();
    cr_assert_null(snpclient_ws_open(c, "/", NULL, 300, err, sizeof(err)));
    int64_t took = test_now_ms() - t0;
    cr_assert(took >= 290 && took < 2000, "took %lld ms", (long long)took);
    cr_assert(strstr(err, "timed out"), "%s", err);
    snpclient_free(c);
}

Test(snpclient, ws_send_and_recv_in_order)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);
    cr_assert_eq(snpclient_ws_send(w, "one"), 0);
    cr_assert_eq(snpclient_ws_send(w, "two"), 0);
    cr_assert_eq(snpclient_ws_send(w, ""), 0);
    cr_assert_eq(snpclient_ws_send(w, "trois é"), 0);
    expect_text(w, "one");
    expect_text(w, "two");
    expect_text(w, "");
    expect_text(w, "trois é");

    /* A message far larger than lws' 4 KiB chunks, both ways. */
    size_t n = 200000;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 26);
    big[n] = '\0';
    cr_assert_eq(snpclient_ws_send(w, big), 0);
    char *t = recv_text(w);
    cr_assert_eq(strlen(t), n);
    cr_assert_str_eq(t, big);
    free(t);
    free(big);

    /* Binary: echoed as binary; snpclient_ws_recv refuses it. */
    static const unsigned char bin[] = {0, 1, 2, 0xff};
    cr_assert_eq(snpclient_ws_send_raw(w, bin, sizeof(bin), true, true, true), 0);
    char *data = NULL;
    size_t len = 0;
    bool binary = false;
    cr_assert_eq(snpclient_ws_recv_message(w, 5000, &data, &len, &binary), 0);
    cr_assert(binary);
    cr_assert_eq(len, sizeof(bin));
    cr_assert_eq(memcmp(data, bin, len), 0);
    free(data);
    cr_assert_eq(snpclient_ws_send_raw(w, bin, sizeof(bin), true, true, true), 0);
    cr_assert_eq(snpclient_ws_recv(w, 5000, &t), SNPCLIENT_EPROTO);
    cr_assert_null(t);

    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_recv_timeout)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);
    char *t = (char *)"sentinel";
    int64_t t0 = test_now_ms();
    cr_assert_eq(snpclient_ws_recv(w, 200, &t), SNPCLIENT_ETIMEDOUT);
    int64_t took = test_now_ms() - t0;
    cr_assert(took >= 190 && took < 1500, "took %lld ms", (long long)took);
    cr_assert_null(t);
    t0 = test_now_ms();
    cr_assert_eq(snpclient_ws_recv(w, 0, &t), SNPCLIENT_ETIMEDOUT);
    cr_assert_lt(test_now_ms() - t0, 100);
    /* Still usable afterwards. */
    cr_assert_eq(snpclient_ws_send(w, "ping"), 0);
    expect_text(w, "ping");
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_call_correlates_and_keeps_the_rest)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);

    /* A message already waiting before the call stays first in line. */
    cr_assert_eq(snpclient_ws_send(w, "early"), 0);

    char *resp = NULL;
    int rc = snpclient_ws_call(w, "slot.list", "{\"from\":\"2026-12-01\"}", 5000, &resp);
    cr_assert_eq(rc, 0, "%s", snpclient_strerror(rc));
    json_t *j = parse(resp);
    cr_assert_str_eq(jstr(j, "type"), "slot.list");
    cr_assert(json_is_true(json_object_get(j, "ok")));
    cr_assert_str_eq(jstr(json_object_get(j, "data"), "from"), "2026-12-01");
    const char *id = jstr(j, "id");
    cr_assert(id && strcmp(id, "unrelated") != 0);
    json_decref(j);
    free(resp);

    /* What came meanwhile is still there, in order of arrival. */
    expect_text(w, "early");
    char *t = recv_text(w);
    j = parse(t);
    cr_assert_str_eq(jstr(j, "type"), "push");
    cr_assert_str_eq(jstr(j, "event"), "before");
    json_decref(j);
    free(t);
    t = recv_text(w);
    j = parse(t);
    cr_assert_str_eq(jstr(j, "id"), "unrelated");
    json_decref(j);
    free(t);
    cr_assert_eq(snpclient_ws_recv(w, 100, &t), SNPCLIENT_ETIMEDOUT);

    /* An error response; no data at all; data that is not an object. */
    cr_assert_eq(snpclient_ws_call(w, "fail", NULL, 5000, &resp), SNPCLIENT_ESERVER);
    j = parse(resp);
    cr_assert_str_eq(jstr(json_object_get(j, "error"), "code"), "bad_request");
    json_decref(j);
    free(resp);
    cr_assert_eq(snpclient_ws_call(w, "x", "[1]", 5000, &resp), SNPCLIENT_EINVAL);
    cr_assert_null(resp);
    cr_assert_eq(snpclient_ws_call(w, "x", "{", 5000, NULL), SNPCLIENT_EINVAL);

    /* Two calls in a row each get their own response. */
    cr_assert_eq(snpclient_ws_call(w, "a", "{\"n\":1}", 5000, &resp), 0);
    cr_assert(strstr(resp, "\"n\":1"), "%s", resp);
    free(resp);
    cr_assert_eq(snpclient_ws_call(w, "b", "{\"n\":2}", 5000, &resp), 0);
    cr_assert(strstr(resp, "\"n\":2"), "%s", resp);
    free(resp);
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_call_timeout)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);
    char *resp = (char *)"sentinel";
    int64_t t0 = test_now_ms();
    cr_assert_eq(snpclient_ws_call(w, "ignore", "{}", 300, &resp), SNPCLIENT_ETIMEDOUT);
    int64_t took = test_now_ms() - t0;
    cr_assert(took >= 290 && took < 2000, "took %lld ms", (long long)took);
    cr_assert_null(resp);
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_fragments_both_ways)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);

    /* Sent in three frames, assembled by the server, echoed whole. */
    cr_assert_eq(snpclient_ws_send_raw(w, "hel", 3, false, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, "lo wo", 5, false, false, false), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, "rld", 3, false, true, false), 0);
    expect_text(w, "hello world");

    /* Sent whole, echoed in three frames, assembled by the client. */
    cr_assert_eq(snpclient_ws_send(w, "FRAG:abcdefghi"), 0);
    expect_text(w, "abcdefghi");
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, ws_close_code_from_server)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);
    cr_assert_eq(snpclient_ws_send(w, "before"), 0);
    cr_assert_eq(snpclient_ws_send(w, "CLOSE now"), 0);
    /* Messages received before the close come first. */
    expect_text(w, "before");
    char *t = NULL;
    cr_assert_eq(snpclient_ws_recv(w, 5000, &t), SNPCLIENT_ECLOSED);
    cr_assert_null(t);
    cr_assert(snpclient_ws_is_closed(w));
    cr_assert_eq(snpclient_ws_close_code(w), 1009);
    cr_assert_str_eq(snpclient_ws_close_reason(w), "too big");
    cr_assert_eq(snpclient_ws_send(w, "after"), SNPCLIENT_ECLOSED);
    cr_assert_eq(snpclient_ws_call(w, "x", NULL, 1000, NULL), SNPCLIENT_ECLOSED);
    snpclient_ws_close(w);
    snpclient_free(c);
}

#define MANY 64

Test(snpclient, ws_many_connections_at_once)
{
    struct snpclient *c = client();
    struct snpclient_ws *w[MANY];
    for (int i = 0; i < MANY; i++)
        w[i] = ws_open(c, NULL);
    char msg[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(msg, sizeof(msg), "conn %d", i);
        cr_assert_eq(snpclient_ws_send(w[i], msg), 0);
    }
    /* Read back in reverse order: each waited-for message services all. */
    for (int i = MANY - 1; i >= 0; i--) {
        snprintf(msg, sizeof(msg), "conn %d", i);
        expect_text(w[i], msg);
    }
    for (int i = 0; i < MANY; i++) {
        char *resp = NULL;
        cr_assert_eq(snpclient_ws_call(w[i], "n", NULL, 5000, &resp), 0);
        free(resp);
    }
    for (int i = 0; i < MANY; i += 2)
        snpclient_ws_close(w[i]);
    /* The odd ones are closed by snpclient_free. */
    snpclient_free(c);
}

Test(snpclient, free_with_everything_open)
{
    struct snpclient *c = client();
    struct snpclient_ws *a = ws_open(c, NULL);
    struct snpclient_ws *b = ws_open(c, NULL);
    cr_assert_eq(snpclient_ws_send(a, "unread"), 0);
    cr_assert_eq(snpclient_ws_send(b, "unread"), 0);
    char *t = NULL;
    cr_assert_eq(snpclient_ws_recv(a, 5000, &t), 0);
    free(t);
    snpclient_free(c);
    snpclient_free(NULL);
    snpclient_ws_close(NULL);
}

Test(snpclient, strerror_names_every_code)
{
    for (int e = SNPCLIENT_ELWS; e <= 0; e++)
        cr_assert_str_neq(snpclient_strerror(e), "unknown error", "%d", e);
    cr_assert_str_eq(snpclient_strerror(-1000), "unknown error");
}

Test(snpclient, ws_raw_invalid_utf8_reaches_the_server)
{
    struct snpclient *c = client();
    struct snpclient_ws *w = ws_open(c, NULL);
    /* The server validates UTF-8 (LWS_SERVER_OPTION_VALIDATE_UTF8): 1007. */
    static const char bad[] = {'o', 'k', (char)0xc3, (char)0x28};
    cr_assert_eq(snpclient_ws_send_raw(w, bad, sizeof(bad), false, true, true), 0);
    char *t = NULL;
    cr_assert_eq(snpclient_ws_recv(w, 5000, &t), SNPCLIENT_ECLOSED);
    cr_assert_eq(snpclient_ws_close_code(w), 1007);
    snpclient_ws_close(w);
    snpclient_free(c);
}

Test(snpclient, local_address_chooses_the_source)
{
    struct snpclient_options o = {
        .host = "127.0.0.1", .port = srv.port, .local_address = "127.0.0.2"};
    struct snpclient *c = snpclient_new_with(&o);
    cr_assert_not_null(c);
    /* The default path is snpd's; this server answers upgrades anywhere. */
    char err[256];
    struct snpclient_ws *w = snpclient_ws_open(c, NULL, NULL, 5000, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(snpclient_ws_send(w, "WHOAMI"), 0);
    char *t = recv_text(w);
    json_t *j = parse(t);
    cr_assert(strstr(jstr(j, "peer"), "127.0.0.2"), "%s", t);
    json_decref(j);
    free(t);
    snpclient_ws_close(w);
    int status = 0;
    cr_assert_eq(snpclient_http(c, "GET", "/", NULL, NULL, 5000, &status, NULL), 0);
    cr_assert_eq(status, 200);
    snpclient_free(c);
}
