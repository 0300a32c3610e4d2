/* snpclient: blocking HTTP and WebSocket (snp.v1) client on libwebsockets'
 * client API.  See snpclient.h for the contract.
 *
 * Every connection, HTTP or WebSocket, starts with a `struct conn` which lws
 * gets as the connection's user data (i.userdata, externally allocated).
 * lws may call back about a connection until it destroys the wsi, which it
 * announces with LWS_CALLBACK_WSI_DESTROY to protocols[0] (our only
 * protocol); from then on `conn.wsi` is NULL.  The caller may give a
 * connection up earlier (a time-out, snpclient_ws_close); it is then marked
 * `released` and freed by conn_reap() once both are true, at a point where
 * no lws callback is running: objects are never freed inside a callback
 * that may still use them.
 *
 * lws_service(ctx, 0) waits until lws' next own timer or socket event and
 * ignores its time-out argument, so a deadline is honoured by scheduling a
 * timer (`wake`) on the context before each service call.
 */
#include "clients/lib/snpclient.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>

#define CLOSE_WAIT_MS  2000  /* snpclient_ws_close / snpclient_free */
#define SEND_WAIT_MS   10000 /* snpclient_ws_send: socket not writeable */
#define HTTP_CHUNK     4096  /* request body bytes per lws_write */
#define JSON_MAX_DEPTH 32    /* snp.v1 server messages nest at most 12 deep */

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

enum conn_kind { CONN_HTTP, CONN_WS };

struct conn {
    enum conn_kind kind;
    struct snpclient *client;
    struct lws *wsi;          /* NULL once lws destroyed the connection */
    bool released;            /* the owner gave it up: free once wsi is NULL */
    struct conn *prev, *next; /* in client->conns */
};

struct snpclient {
    struct lws_context *ctx;
    struct snpclient_options opts; /* strings point to the copies below */
    char *host_copy;
    char *local_address_copy;
    char host_header[300]; /* "host" or "host:port", for the Host header */
    int ssl_flags;         /* LCCSCF_* for lws_client_connect_info */
    lws_sorted_usec_list_t wake;
    struct conn *conns;
    unsigned long next_call_id;
};

/* ---- growable byte buffer ------------------------------------------------ */

struct bytes {
    char *data; /* always NUL-terminated when not NULL */
    size_t len;
    size_t cap;
};

static bool bytes_append(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

/* Hands the buffer's memory to the caller (an empty string when nothing was
 * appended) and resets it. */
static char *bytes_take(struct bytes *b)
{
    char *d = b->data;
    if (!d)
        d = calloc(1, 1);
    *b = (struct bytes){0};
    return d;
}

static void bytes_free(struct bytes *b)
{
    free(b->data);
    *b = (struct bytes){0};
}

/* ---- time ---------------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A deadline in CLOCK_MONOTONIC microseconds, or -1 for none. */
static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_us() + (int64_t)timeout_ms * 1000;
}

/* ---- HTTP request -------------------------------------------------------- */

enum http_state {
    HTTP_REQUESTING, /* connecting, then sending the request line, headers and body */
    HTTP_RECEIVING,  /* the status line arrived; reading the response body */
    HTTP_DONE,       /* the whole response was received */
    HTTP_FAILED      /* connecting failed, or the connection ended before the response did */
};

struct http_req {
    struct conn conn;
    enum http_state state;
    char *authorization; /* "Bearer <token>", or NULL */
    char *body;          /* request body (copied), or NULL */
    size_t body_len;
    size_t body_off; /* bytes of the body already written */
    int status;
    struct bytes resp;
    int error; /* the enum snpclient_error behind HTTP_FAILED */
};

/* ---- WebSocket connection ------------------------------------------------ */

enum ws_state {
    WS_CONNECTING, /* TCP (and TLS) connection and HTTP upgrade handshake in progress */
    WS_OPEN,       /* the handshake succeeded: frames flow both ways */
    WS_CLOSING,    /* we asked to close: queued frames, then our close frame, then the end */
    WS_CLOSED,     /* the connection ended after being open; received messages may remain */
    WS_FAILED      /* the connection never opened (connect, TLS or handshake failure) */
};

/* One frame waiting to be written, with LWS_PRE bytes of headroom for lws. */
struct frame {
    struct frame *next;
    int write_flags; /* LWS_WRITE_TEXT / _BINARY / _CONTINUATION, maybe | _NO_FIN */
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

/* One whole message received. */
struct message {
    struct message *next;
    bool binary;
    bool checked; /* snpclient_ws_call already looked at it */
    size_t len;
    char *data; /* NUL-terminated */
};

struct snpclient_ws {
    struct conn conn;
    enum ws_state state;
    char *authorization; /* "Bearer <token>", or NULL */
    /* Frames to send, written one per CLIENT_WRITEABLE. */
    struct frame *tx_head, *tx_tail;
    uint64_t tx_queued;  /* frames ever queued */
    uint64_t tx_written; /* frames ever handed to lws_write */
    /* The message being assembled from fragments. */
    struct bytes rx;
    bool rx_binary;
    bool rx_started;
    /* Whole messages not yet taken. */
    struct message *rx_head, *rx_tail;
    int close_code;
    char close_reason[124];
    char error[192]; /* why WS_FAILED (or why the connection broke) */
};

static void ws_set_state(struct snpclient_ws *w, enum ws_state s)
{
    /* A closed or failed connection stays so; only these moves are real:
     * CONNECTING -> OPEN | FAILED, OPEN -> CLOSING | CLOSED, CLOSING -> CLOSED. */
    if (w->state == WS_CLOSED || w->state == WS_FAILED)
        return;
    if (s == WS_CLOSED && w->state == WS_CONNECTING)
        s = WS_FAILED;
    w->state = s;
}

/* ---- connections: list, release, reap ------------------------------------ */

static void conn_link(struct snpclient *c, struct conn *conn, enum conn_kind kind)
{
    conn->kind = kind;
    conn->client = c;
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
}

static void frames_free(struct frame *f)
{
    while (f) {
        struct frame *next = f->next;
        free(f);
        f = next;
    }
}

static void messages_free(struct message *m)
{
    while (m) {
        struct message *next = m->next;
        free(m->data);
        free(m);
        m = next;
    }
}

static void conn_free(struct conn *conn)
{
    struct snpclient *c = conn->client;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;

    if (conn->kind == CONN_HTTP) {
        struct http_req *r = container_of(conn, struct http_req, conn);
        free(r->authorization);
        free(r->body);
        bytes_free(&r->resp);
        free(r);
    } else {
        struct snpclient_ws *w = container_of(conn, struct snpclient_ws, conn);
        free(w->authorization);
        frames_free(w->tx_head);
        bytes_free(&w->rx);
        messages_free(w->rx_head);
        free(w);
    }
}

/* Frees the connections that are both released and gone from lws.  Called
 * only outside lws callbacks. */
static void conn_reap(struct snpclient *c)
{
    struct conn *conn = c->conns;
    while (conn) {
        struct conn *next = conn->next;
        if (conn->released && !conn->wsi)
            conn_free(conn);
        conn = next;
    }
}

/* Gives `conn` up: if lws still has it, it is closed at once (lws then calls
 * back synchronously, while `conn` is still allocated); it is freed by the
 * next reap. */
static void conn_release(struct conn *conn)
{
    conn->released = true;
    if (conn->wsi)
        lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* ---- servicing ----------------------------------------------------------- */

static void on_wake(lws_sorted_usec_list_t *sul)
{
    /* The timer exists to end lws' poll() wait.  If it fell due before that
     * wait was computed (lws runs ripe timers first, and a deadline can be
     * microseconds away), poll() would sleep until lws' own next timer,
     * seconds later: so it re-arms itself a millisecond on, and stays armed
     * until client_service() cancels it. */
    struct snpclient *c = container_of(sul, struct snpclient, wake);
    lws_sul_schedule(c->ctx, 0, &c->wake, on_wake, 1000);
}

/* Services the context once, waiting at most until `deadline` (-1: until
 * something happens; a past deadline: not at all), then frees what can be. */
static int client_service(struct snpclient *c, int64_t deadline)
{
    int wait = 0;
    if (deadline >= 0) {
        int64_t left = deadline - now_us();
        if (left <= 0)
            wait = -1; /* lws_service: poll without waiting */
        else
            lws_sul_schedule(c->ctx, 0, &c->wake, on_wake, left);
    }
    int n = lws_service(c->ctx, wait);
    lws_sul_cancel(&c->wake);
    conn_reap(c);
    return n < 0 ? SNPCLIENT_ELWS : 0;
}

/* Services until `done(arg)` holds (0) or `deadline` passes
 * (SNPCLIENT_ETIMEDOUT).  The context is serviced at least once, so even a
 * zero time-out picks up what is already waiting on the sockets. */
static int client_wait(struct snpclient *c, int64_t deadline, bool (*done)(void *), void *arg)
{
    bool serviced = false;
    for (;;) {
        if (done(arg))
            return 0;
        if (serviced && deadline >= 0 && now_us() >= deadline)
            return SNPCLIENT_ETIMEDOUT;
        int rc = client_service(c, deadline);
        if (rc < 0)
            return rc;
        serviced = true;
    }
}

/* ---- lws callbacks ------------------------------------------------------- */

/* Adds "Authorization: <value>" to a handshake being built. */
static int add_authorization(struct lws *wsi, const char *value, void *in, size_t len)
{
    unsigned char **p = in, *end = *p + len;
    return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                        (const unsigned char *)value, (int)strlen(value), p, end);
}

/* The only place where a request changes state: REQUESTING -> RECEIVING ->
 * DONE, or FAILED from any state but DONE.  `error` is kept for FAILED. */
static void http_set_state(struct http_req *r, enum http_state s, int error)
{
    if (r->state == HTTP_DONE || r->state == HTTP_FAILED)
        return;
    if (s == HTTP_DONE && r->state != HTTP_RECEIVING)
        return;
    r->state = s;
    if (s == HTTP_FAILED)
        r->error = error;
}

static void http_fail(struct http_req *r, int error)
{
    http_set_state(r, HTTP_FAILED, error);
}

static int on_http_event(struct http_req *r, struct lws *wsi, enum lws_callback_reasons reason,
                         void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        http_fail(r, SNPCLIENT_ECONNECT);
        return 0;

    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        if (r->authorization && add_authorization(wsi, r->authorization, in, len))
            return -1;
        if (r->body) {
            static const char type[] = "application/json";
            char length[24];
            int n = snprintf(length, sizeof(length), "%zu", r->body_len);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                             (const unsigned char *)type, (int)strlen(type), p,
                                             end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                             (const unsigned char *)length, n, p, end))
                return -1;
            if (r->body_len > 0) {
                lws_client_http_body_pending(wsi, 1);
                lws_callback_on_writable(wsi);
            }
        }
        return 0;
    }

    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r->body || r->body_off >= r->body_len)
            return 0; /* lws may call again after the last chunk */
        unsigned char buf[LWS_PRE + HTTP_CHUNK];
        size_t n = r->body_len - r->body_off;
        if (n > HTTP_CHUNK)
            n = HTTP_CHUNK;
        bool last = r->body_off + n == r->body_len;
        memcpy(buf + LWS_PRE, r->body + r->body_off, n);
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n) {
            http_fail(r, SNPCLIENT_ECONNECT);
            return -1;
        }
        r->body_off += n;
        if (last)
            lws_client_http_body_pending(wsi, 0);
        else
            lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        r->status = (int)lws_http_client_http_response(wsi);
        http_set_state(r, HTTP_RECEIVING, 0);
        return 0;

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        /* Data is waiting: lws_http_client_read() de-chunks it and hands it
         * to RECEIVE_CLIENT_HTTP_READ below. */
        char buf[LWS_PRE + 4096];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        if (lws_http_client_read(wsi, &p, &n) < 0) {
            http_fail(r, SNPCLIENT_EPROTO);
            return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (r->resp.len + len > SNPCLIENT_MAX_MESSAGE) {
            http_fail(r, SNPCLIENT_EPROTO);
            return -1;
        }
        if (!bytes_append(&r->resp, in, len)) {
            http_fail(r, SNPCLIENT_ENOMEM);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        http_set_state(r, HTTP_DONE, 0);
        return 0;

    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        http_fail(r, r->state == HTTP_REQUESTING ? SNPCLIENT_ECONNECT : SNPCLIENT_EPROTO);
        return 0;

    default:
        return 0;
    }
}

static bool ws_queue_message(struct snpclient_ws *w)
{
    struct message *m = calloc(1, sizeof(*m));
    if (!m)
        return false;
    m->binary = w->rx_binary;
    m->len = w->rx.len;
    m->data = bytes_take(&w->rx);
    if (!m->data) {
        free(m);
        return false;
    }
    if (w->rx_tail)
        w->rx_tail->next = m;
    else
        w->rx_head = m;
    w->rx_tail = m;
    w->rx_started = false;
    return true;
}

static int on_ws_event(struct snpclient_ws *w, struct lws *wsi, enum lws_callback_reasons reason,
                       void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (w->authorization && add_authorization(wsi, w->authorization, in, len))
            return -1;
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        /* A handshake answered with something else than 101 still has its
         * header table here, so the status can be told. */
        int status = (int)lws_http_client_http_response(wsi);
        if (status && status != 101)
            snprintf(w->error, sizeof(w->error), "handshake rejected: HTTP %d", status);
        else
            snprintf(w->error, sizeof(w->error), "connection failed: %s",
                     in ? (const char *)in : "unknown error");
        ws_set_state(w, WS_FAILED);
        return 0;
    }

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ws_set_state(w, WS_OPEN);
        if (w->tx_head)
            lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!w->rx_started) {
            w->rx_started = true;
            w->rx_binary = lws_frame_is_binary(wsi);
        }
        if (w->rx.len + len > SNPCLIENT_MAX_MESSAGE) {
            snprintf(w->error, sizeof(w->error), "message from the server over %u bytes",
                     SNPCLIENT_MAX_MESSAGE);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
            return -1;
        }
        if (!bytes_append(&w->rx, in, len) ||
            (lws_is_final_fragment(wsi) && !ws_queue_message(w))) {
            snprintf(w->error, sizeof(w->error), "out of memory");
            return -1;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        struct frame *f = w->tx_head;
        if (!f) {
            if (w->state == WS_CLOSING) {
                lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
                return -1;
            }
            return 0;
        }
        w->tx_head = f->next;
        if (!w->tx_head)
            w->tx_tail = NULL;
        int n = lws_write(wsi, f->buf + LWS_PRE, f->len, (enum lws_write_protocol)f->write_flags);
        size_t flen = f->len;
        free(f);
        w->tx_written++;
        if (n < (int)flen) {
            snprintf(w->error, sizeof(w->error), "write failed");
            return -1;
        }
        if (w->tx_head || w->state == WS_CLOSING)
            lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        const unsigned char *p = in;
        if (len >= 2) {
            w->close_code = (p[0] << 8) | p[1];
            size_t n = len - 2;
            if (n >= sizeof(w->close_reason))
                n = sizeof(w->close_reason) - 1;
            memcpy(w->close_reason, p + 2, n);
            w->close_reason[n] = '\0';
        } else {
            w->close_code = LWS_CLOSE_STATUS_NO_STATUS; /* 1005 */
        }
        return 0;
    }

    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!w->close_code && w->state != WS_CLOSING)
            w->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE; /* 1006 */
        ws_set_state(w, WS_CLOSED);
        return 0;

    default:
        return 0;
    }
}

static int on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct conn *conn = user;

    /* Every wsi of this context carries a conn as its user data; protocol-
     * wide callbacks (init, thread id, poll fd changes...) carry NULL. */
    if (!conn)
        return 0;

    if (reason == LWS_CALLBACK_WSI_DESTROY) {
        /* The last callback about this wsi, on every path. */
        conn->wsi = NULL;
        if (conn->kind == CONN_HTTP) {
            struct http_req *r = container_of(conn, struct http_req, conn);
            http_fail(r, r->state == HTTP_REQUESTING ? SNPCLIENT_ECONNECT : SNPCLIENT_EPROTO);
        } else {
            struct snpclient_ws *w = container_of(conn, struct snpclient_ws, conn);
            if (w->state == WS_CONNECTING && !w->error[0])
                snprintf(w->error, sizeof(w->error), "connection failed");
            if (!w->close_code && w->state == WS_OPEN)
                w->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
            ws_set_state(w, WS_CLOSED);
        }
        return 0;
    }

    if (conn->kind == CONN_HTTP)
        return on_http_event(container_of(conn, struct http_req, conn), wsi, reason, in, len);
    return on_ws_event(container_of(conn, struct snpclient_ws, conn), wsi, reason, in, len);
}

static const struct lws_protocols protocols[] = {
    {"snpclient", on_lws_event, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- client -------------------------------------------------------------- */

const char *snpclient_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case SNPCLIENT_EINVAL:
        return "invalid argument";
    case SNPCLIENT_ENOMEM:
        return "out of memory";
    case SNPCLIENT_ECONNECT:
        return "connection failed";
    case SNPCLIENT_ETIMEDOUT:
        return "timed out";
    case SNPCLIENT_ECLOSED:
        return "connection closed";
    case SNPCLIENT_EPROTO:
        return "unexpected data from the server";
    case SNPCLIENT_ESERVER:
        return "the server answered with an error";
    case SNPCLIENT_ELWS:
        return "libwebsockets failure";
    default:
        return "unknown error";
    }
}

struct snpclient *snpclient_new(const char *host, int port, bool tls)
{
    struct snpclient_options o = {.host = host, .port = port, .tls = tls};
    return snpclient_new_with(&o);
}

struct snpclient *snpclient_new_with(const struct snpclient_options *o)
{
    if (!o || !o->host || !o->host[0] || o->port <= 0 || o->port > 65535)
        return NULL;

    struct snpclient *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->opts = *o;
    c->host_copy = strdup(o->host);
    if (!c->host_copy)
        goto fail;
    c->opts.host = c->host_copy;
    c->opts.ca_file = NULL; /* only needed while creating the context */
    if (o->local_address && !(c->local_address_copy = strdup(o->local_address)))
        goto fail;
    c->opts.local_address = c->local_address_copy;
    if ((o->tls && o->port == 443) || (!o->tls && o->port == 80))
        snprintf(c->host_header, sizeof(c->host_header), "%s", o->host);
    else if (strchr(o->host, ':')) /* an IPv6 literal */
        snprintf(c->host_header, sizeof(c->host_header), "[%s]:%d", o->host, o->port);
    else
        snprintf(c->host_header, sizeof(c->host_header), "%s:%d", o->host, o->port);
    c->ssl_flags = 0;
    if (o->tls) {
        c->ssl_flags |= LCCSCF_USE_SSL;
        if (o->tls_allow_self_signed)
            c->ssl_flags |= LCCSCF_ALLOW_SELFSIGNED;
        if (o->tls_skip_hostname_check)
            c->ssl_flags |= LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    }

    const char *level = getenv("SNPCLIENT_LWS_LOG");
    lws_set_log_level(level ? atoi(level) : LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    /* Text from the server must be valid UTF-8: a server bug then shows as
     * a 1007 close rather than as garbage in a test. */
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (o->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = o->ca_file;
    }
    c->ctx = lws_create_context(&info);
    if (!c->ctx)
        goto fail;
    return c;

fail:
    free(c->local_address_copy);
    free(c->host_copy);
    free(c);
    return NULL;
}

static bool no_ws_closing(void *arg)
{
    const struct snpclient *c = arg;
    for (const struct conn *conn = c->conns; conn; conn = conn->next)
        if (conn->kind == CONN_WS && conn->wsi &&
            container_of(conn, const struct snpclient_ws, conn)->state == WS_CLOSING)
            return false;
    return true;
}

void snpclient_free(struct snpclient *c)
{
    if (!c)
        return;
    /* Close open WebSockets properly, all at once, then abandon the rest. */
    for (struct conn *conn = c->conns; conn; conn = conn->next) {
        if (conn->kind != CONN_WS || !conn->wsi)
            continue;
        struct snpclient_ws *w = container_of(conn, struct snpclient_ws, conn);
        if (w->state == WS_OPEN) {
            ws_set_state(w, WS_CLOSING);
            lws_callback_on_writable(conn->wsi);
        }
    }
    int rc = client_wait(c, deadline_after(CLOSE_WAIT_MS), no_ws_closing, c);
    (void)rc; /* past the deadline, the context's destruction closes them */
    for (struct conn *conn = c->conns; conn; conn = conn->next)
        conn->released = true;
    lws_context_destroy(c->ctx);
    while (c->conns)
        conn_free(c->conns);
    free(c->local_address_copy);
    free(c->host_copy);
    free(c);
}

/* ---- HTTP ---------------------------------------------------------------- */

static bool http_settled(void *arg)
{
    const struct http_req *r = arg;
    return r->state == HTTP_DONE || r->state == HTTP_FAILED;
}

int snpclient_http(struct snpclient *c, const char *method, const char *path, const char *bearer,
                   const char *body, int timeout_ms, int *status, char **response_body)
{
    if (status)
        *status = 0;
    if (response_body)
        *response_body = NULL;
    if (!c || !method || !method[0] || !path || path[0] != '/')
        return SNPCLIENT_EINVAL;

    struct http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return SNPCLIENT_ENOMEM;
    conn_link(c, &r->conn, CONN_HTTP);
    r->state = HTTP_REQUESTING; /* the initial state, before any callback */
    int rc = SNPCLIENT_ENOMEM;
    if (bearer && !(r->authorization = malloc(strlen(bearer) + sizeof("Bearer "))))
        goto out;
    if (bearer)
        sprintf(r->authorization, "Bearer %s", bearer);
    if (body) {
        r->body_len = strlen(body);
        r->body = strdup(body);
        if (!r->body)
            goto out;
    }

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = c->ctx;
    i.address = c->opts.host;
    i.port = c->opts.port;
    i.ssl_connection = c->ssl_flags | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    i.path = path;
    i.host = c->host_header;
    i.iface = c->opts.local_address;
    i.method = method;
    i.alpn = "http/1.1";
    i.local_protocol_name = protocols[0].name;
    i.userdata = &r->conn;
    i.pwsi = &r->conn.wsi;
    if (!lws_client_connect_via_info(&i)) {
        r->conn.wsi = NULL;
        rc = SNPCLIENT_ECONNECT;
        goto out;
    }

    rc = client_wait(c, deadline_after(timeout_ms), http_settled, r);
    if (rc == 0) {
        if (r->state == HTTP_FAILED) {
            rc = r->error;
        } else {
            if (status)
                *status = r->status;
            if (response_body && !(*response_body = bytes_take(&r->resp)))
                rc = SNPCLIENT_ENOMEM;
        }
    }

out:
    conn_release(&r->conn);
    conn_reap(c);
    return rc;
}

/* ---- WebSocket ----------------------------------------------------------- */

static bool ws_settled(void *arg)
{
    const struct snpclient_ws *w = arg;
    return w->state != WS_CONNECTING;
}

struct snpclient_ws *snpclient_ws_open(struct snpclient *c, const char *path, const char *bearer,
                                       int timeout_ms, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!path)
        path = SNPCLIENT_WS_PATH;
    if (!c || path[0] != '/') {
        snprintf(err, errlen, "invalid argument");
        return NULL;
    }

    struct snpclient_ws *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    conn_link(c, &w->conn, CONN_WS);
    w->state = WS_CONNECTING; /* the initial state, before any callback */
    if (bearer) {
        w->authorization = malloc(strlen(bearer) + sizeof("Bearer "));
        if (!w->authorization) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        sprintf(w->authorization, "Bearer %s", bearer);
    }

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = c->ctx;
    i.address = c->opts.host;
    i.port = c->opts.port;
    /* A redirected handshake fails ("HTTP 302") rather than being followed. */
    i.ssl_connection = c->ssl_flags | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    i.path = path;
    i.host = c->host_header;
    i.iface = c->opts.local_address;
    i.protocol = SNPCLIENT_SUBPROTOCOL;
    /* lws 4.1 has no client WebSocket over HTTP/2: keep TLS on HTTP/1.1. */
    i.alpn = "http/1.1";
    i.local_protocol_name = protocols[0].name;
    i.userdata = &w->conn;
    i.pwsi = &w->conn.wsi;
    if (!lws_client_connect_via_info(&i)) {
        w->conn.wsi = NULL;
        snprintf(err, errlen, "%s",
                 w->error[0] ? w->error : "connection failed: could not start connecting");
        goto fail;
    }

    int rc = client_wait(c, deadline_after(timeout_ms), ws_settled, w);
    if (rc == 0 && w->state == WS_OPEN)
        return w;
    if (rc == SNPCLIENT_ETIMEDOUT)
        snprintf(err, errlen, "timed out after %d ms", timeout_ms);
    else if (rc < 0)
        snprintf(err, errlen, "%s", snpclient_strerror(rc));
    else
        snprintf(err, errlen, "%s", w->error[0] ? w->error : "connection failed");

fail:
    conn_release(&w->conn);
    conn_reap(c);
    return NULL;
}

struct send_wait {
    const struct snpclient_ws *w;
    uint64_t seq;
};

static bool ws_frame_written(void *arg)
{
    const struct send_wait *s = arg;
    return s->w->tx_written >= s->seq || s->w->state != WS_OPEN || !s->w->conn.wsi;
}

int snpclient_ws_send_raw(struct snpclient_ws *w, const void *buf, size_t len, bool binary,
                          bool final_fragment, bool first_fragment)
{
    if (!w || (!buf && len))
        return SNPCLIENT_EINVAL;
    if (w->state != WS_OPEN || !w->conn.wsi)
        return SNPCLIENT_ECLOSED;

    struct frame *f = malloc(sizeof(*f) + LWS_PRE + len);
    if (!f)
        return SNPCLIENT_ENOMEM;
    f->next = NULL;
    f->len = len;
    f->write_flags = lws_write_ws_flags(binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT, first_fragment,
                                        final_fragment);
    if (len)
        memcpy(f->buf + LWS_PRE, buf, len);
    if (w->tx_tail)
        w->tx_tail->next = f;
    else
        w->tx_head = f;
    w->tx_tail = f;
    struct send_wait s = {.w = w, .seq = ++w->tx_queued};
    lws_callback_on_writable(w->conn.wsi);

    int rc = client_wait(w->conn.client, deadline_after(SEND_WAIT_MS), ws_frame_written, &s);
    if (rc < 0)
        return rc;
    return w->tx_written >= s.seq ? 0 : SNPCLIENT_ECLOSED;
}

int snpclient_ws_send(struct snpclient_ws *w, const char *text)
{
    if (!text)
        return SNPCLIENT_EINVAL;
    return snpclient_ws_send_raw(w, text, strlen(text), false, true, true);
}

static bool ws_has_message_or_ended(void *arg)
{
    const struct snpclient_ws *w = arg;
    return w->rx_head || w->state == WS_CLOSED || w->state == WS_FAILED;
}

int snpclient_ws_recv_message(struct snpclient_ws *w, int timeout_ms, char **data, size_t *len,
                              bool *binary)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (binary)
        *binary = false;
    if (!w || !data)
        return SNPCLIENT_EINVAL;

    int rc = client_wait(w->conn.client, deadline_after(timeout_ms), ws_has_message_or_ended, w);
    if (rc < 0)
        return rc;
    struct message *m = w->rx_head;
    if (!m)
        return SNPCLIENT_ECLOSED;
    w->rx_head = m->next;
    if (!w->rx_head)
        w->rx_tail = NULL;
    *data = m->data;
    if (len)
        *len = m->len;
    if (binary)
        *binary = m->binary;
    free(m);
    return 0;
}

int snpclient_ws_recv(struct snpclient_ws *w, int timeout_ms, char **text)
{
    size_t len;
    bool binary;
    int rc = snpclient_ws_recv_message(w, timeout_ms, text, &len, &binary);
    if (rc == 0 && binary) {
        free(*text);
        *text = NULL;
        return SNPCLIENT_EPROTO;
    }
    return rc;
}

/* Whether the JSON text `s` nests objects and arrays at most `max` deep,
 * brackets inside strings excluded.  jansson's own limit is 2048 levels of
 * recursion; this keeps a misbehaving server far below it. */
static bool json_depth_ok(const char *s, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max)
                return false;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return true;
}

/* Whether `m` is the response to the call `id`: a JSON object whose "id"
 * is `id`.  Pushes carry no id. */
static bool message_answers(const struct message *m, const char *id)
{
    if (m->binary || !json_depth_ok(m->data, m->len, JSON_MAX_DEPTH))
        return false;
    json_error_t jerr;
    json_t *j = json_loadb(m->data, m->len, JSON_REJECT_DUPLICATES, &jerr);
    bool match = json_is_object(j) && json_is_string(json_object_get(j, "id")) &&
                 strcmp(json_string_value(json_object_get(j, "id")), id) == 0;
    json_decref(j);
    return match;
}

struct call_wait {
    struct snpclient_ws *w;
    const char *id;
    struct message *found;
    struct message *prev; /* the message before `found` in the queue, or NULL */
};

static bool call_answered(void *arg)
{
    struct call_wait *cw = arg;
    struct message *prev = NULL;
    for (struct message *m = cw->w->rx_head; m; prev = m, m = m->next) {
        if (m->checked)
            continue;
        m->checked = true;
        if (message_answers(m, cw->id)) {
            cw->found = m;
            cw->prev = prev;
            return true;
        }
    }
    return cw->w->state == WS_CLOSED || cw->w->state == WS_FAILED;
}

/* Whether `text` is a well-formed response envelope; sets `*ok`. */
static bool response_envelope(const char *text, bool *ok)
{
    if (!json_depth_ok(text, strlen(text), JSON_MAX_DEPTH))
        return false;
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_t *okj = json_object_get(j, "ok");
    json_t *type = json_object_get(j, "type");
    bool valid = json_is_object(j) && json_is_boolean(okj);
    if (valid) {
        /* "type" is null in an error answering an unreadable type. */
        *ok = json_is_true(okj);
        valid = *ok ? json_is_string(type) && json_is_object(json_object_get(j, "data"))
                    : (json_is_string(type) || json_is_null(type)) &&
                          json_is_object(json_object_get(j, "error"));
    }
    json_decref(j);
    return valid;
}

int snpclient_ws_call(struct snpclient_ws *w, const char *type, const char *data_json,
                      int timeout_ms, char **response)
{
    if (response)
        *response = NULL;
    if (!w || !type)
        return SNPCLIENT_EINVAL;

    json_t *data;
    if (data_json) {
        json_error_t jerr;
        data = json_loads(data_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(data)) {
            json_decref(data);
            return SNPCLIENT_EINVAL;
        }
    } else {
        data = json_object();
    }
    char id[32];
    snprintf(id, sizeof(id), "c%lu", ++w->conn.client->next_call_id);
    json_t *env = json_pack("{s:s, s:s, s:o}", "id", id, "type", type, "data", data);
    char *text = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    if (!text)
        return SNPCLIENT_ENOMEM;
    int64_t deadline = deadline_after(timeout_ms);
    int rc = snpclient_ws_send(w, text);
    free(text);
    if (rc < 0)
        return rc;

    struct call_wait cw = {.w = w, .id = id};
    rc = client_wait(w->conn.client, deadline, call_answered, &cw);
    if (rc < 0)
        return rc;
    struct message *m = cw.found;
    if (!m)
        return SNPCLIENT_ECLOSED;
    if (cw.prev)
        cw.prev->next = m->next;
    else
        w->rx_head = m->next;
    if (w->rx_tail == m)
        w->rx_tail = cw.prev;

    bool ok = false;
    rc = response_envelope(m->data, &ok) ? (ok ? 0 : SNPCLIENT_ESERVER) : SNPCLIENT_EPROTO;
    if (response)
        *response = m->data;
    else
        free(m->data);
    free(m);
    return rc;
}

int snpclient_ws_close_code(const struct snpclient_ws *w)
{
    return w ? w->close_code : 0;
}

const char *snpclient_ws_close_reason(const struct snpclient_ws *w)
{
    return w ? w->close_reason : "";
}

bool snpclient_ws_is_closed(const struct snpclient_ws *w)
{
    return !w || w->state != WS_OPEN;
}

static bool ws_gone(void *arg)
{
    const struct snpclient_ws *w = arg;
    return !w->conn.wsi;
}

void snpclient_ws_close(struct snpclient_ws *w)
{
    if (!w)
        return;
    struct snpclient *c = w->conn.client;
    if (w->conn.wsi && w->state == WS_OPEN) {
        ws_set_state(w, WS_CLOSING);
        lws_callback_on_writable(w->conn.wsi);
        int rc = client_wait(c, deadline_after(CLOSE_WAIT_MS), ws_gone, w);
        (void)rc; /* past the deadline, conn_release() cuts the connection */
    }
    conn_release(&w->conn);
    conn_reap(c);
}
