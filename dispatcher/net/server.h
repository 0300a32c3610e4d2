/* The one listening port: HTTP/1.1 (health, metrics, JSON API, static web
 * client) and, later, WebSocket, all served by libwebsockets on snpd's libuv
 * loop (LWS_SERVER_OPTION_LIBUV with a foreign loop).
 *
 * An HTTP transaction is a `struct http_exchange`.  Handlers may answer it at
 * once or later, from a database callback, with server_http_respond().  If
 * the client goes away first the exchange is detached (wsi = NULL) and the
 * late answer only frees it: callbacks never touch a closed connection.
 */
#ifndef SNP_SERVER_H
#define SNP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "base/idmap.h"
#include "dispatcher/config.h"
#include "dispatcher/net/ratelimit.h"

struct lws;
struct lws_context;
struct server;

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_OTHER
};

#define HTTP_MAX_BODY (64 * 1024)

/* An HTTP exchange's phase.  It only moves down this list, in
 * exchange_set_state (server.c); the exchange is freed once its answer is
 * written, or when it is orphaned and its handler answers. */
enum http_state {
    HTTP_STARTED,    /* the headers are read; routed at once when there is no
                      * body (or no room for it), else received first */
    HTTP_RECEIVING,  /* the body is on its way: the exchange is in the server's
                      * list of receiving ones, holds `reserved` bytes of the
                      * unfinished-message budget, and must be complete by
                      * body_started_ms + body_timeout_s */
    HTTP_ROUTING,    /* the request is complete (or its body given up): it is
                      * being routed, within the callback that completed it */
    HTTP_HANDLING,   /* a handler owns it until server_http_respond*() */
    HTTP_RESPONDING, /* the answer is stored and being written */
    HTTP_ORPHANED,   /* the client went away while a handler owned it: `wsi` is
                      * NULL, and the handler's answer frees it unread */
};

struct http_exchange {
    struct server *server;
    struct lws *wsi; /* NULL once HTTP_ORPHANED */
    enum http_state state;
    enum http_method method;
    char path[512];
    /* The query string, re-encoded (read_query in server.c); long enough for
     * the SAS platform's FHIR search of 25 practitioners (docs/fhir.md). */
    char query[4096];
    char bearer[128]; /* the token from "Authorization: Bearer ...", or "" */
    /* The common name of the client certificate the connection presented and
     * the CA of tls_client_ca vouched for, or "" (no certificate, or no
     * tls_client_ca configured). */
    char client_cn[65];
    char accept[256]; /* the Accept header, or "" (absent or longer than this) */
    char host[256];   /* the Host header, or "" (absent or longer than this) */
    struct buf body;
    bool body_too_large;
    bool chunked;         /* a chunked body, which lws 4.1 cannot read: 411, then close */
    bool close_after;     /* close the connection once the answer is written */
    bool no_room;         /* no room for its body in the unfinished budget: 503 */
    uint32_t peer;        /* the client's IPv4 address, host order (0 when unknown) */
    size_t reserved;      /* while HTTP_RECEIVING */
    size_t body_received; /* bytes of body read, kept or not */
    uint64_t body_started_ms;
    struct http_exchange *rx_prev;
    struct http_exchange *rx_next;
    /* The answer. */
    int status;
    const char *content_type;
    /* The Cache-Control header of the answer: NULL for "no-store" (every
     * answer but those a handler declares cacheable), or a string that
     * outlives the exchange (a literal), set before server_http_respond(). */
    const char *cache_control;
    char *out;
    size_t out_len;
    size_t out_off;
    bool headers_sent;
    uint64_t started_ns;
};

/* One outgoing WebSocket message, with LWS_PRE bytes of headroom. */
struct ws_out;

/* A WebSocket connection's phase.  It only moves down this list, in
 * ws_set_state (server.c). */
enum ws_state {
    WS_OPEN,     /* messages flow both ways */
    WS_DRAINING, /* a close was asked (server_ws_close_after_flush): what is
                  * queued goes out, then the close frame; nothing more is
                  * queued and what arrives is dropped */
    WS_CLOSING,  /* the close frame was handed to lws: it ends the connection */
    WS_BROKEN,   /* a write failed: the socket is unusable, and the next
                  * writeable callback tells lws to close it */
    WS_GONE,     /* the socket is closed: `wsi` is NULL, sends are dropped;
                  * the struct lives while references are held */
};

/* Whether a quiet connection is being checked (server_sweep). */
enum ws_keepalive {
    WS_HEARD,     /* a frame arrived since the last ping, or none was needed */
    WS_PING_DUE,  /* quiet for half the idle timeout: a ping is to be written */
    WS_PING_SENT, /* the ping is out; any frame from the peer makes it WS_HEARD */
};

/* A WebSocket connection (subprotocol snp.v1).  It outlives its socket
 * while references are held (operations waiting for the database). */
struct ws_client {
    struct server *server;
    struct lws *wsi; /* NULL once WS_GONE */
    enum ws_state state;
    enum ws_keepalive keepalive;
    int refs;
    struct ws_client *prev;
    struct ws_client *next;
    struct buf rx;          /* the message being assembled */
    size_t rx_charged;      /* bytes of it counted in the server's unfinished budget */
    uint64_t rx_started_ms; /* uv_now() at its first fragment, when rx_charged > 0 */
    uint32_t peer;          /* the client's IPv4 address, host order (0 when unknown) */
    bool rx_overflow;       /* it grew past the limit: close 1009 */
    struct ws_out *out_head;
    struct ws_out *out_tail;
    size_t out_bytes;
    struct token_bucket rate; /* the protocol's message limit (ratelimit.h) */
    char bearer[128];         /* from the handshake's Authorization header, or "" */
    void *session;            /* the owner's per-connection state */
    int close_status;         /* the close frame's status, from WS_DRAINING on */
    uint64_t opened_ms;       /* uv_now() at the upgrade */
    uint64_t last_rx_ms;      /* uv_now() at the last frame received (pongs included) */
    char close_reason[64];    /* the close frame's reason, from WS_DRAINING on */
};

/* What the server asks of its owner.  All are called on the loop thread. */
struct server_hooks {
    void *ctx;
    /* Readiness for /readyz: returns true, or false with a reason. */
    bool (*is_ready)(void *ctx, char *why, size_t whylen);
    /* Appends Prometheus text of the owner's own metrics. */
    void (*write_metrics)(void *ctx, struct buf *out);
    /* Handles a request under /api/; must end with server_http_respond(). */
    void (*on_api)(void *ctx, struct http_exchange *ex);
    /* Handles a request under /fhir/ (may be NULL: 404); must end with
     * server_http_respond(). */
    void (*on_fhir)(void *ctx, struct http_exchange *ex);
    /* A WebSocket connection was established, sent a whole text message,
     * or is being freed (free `session` there). */
    void (*on_ws_open)(void *ctx, struct ws_client *c);
    void (*on_ws_message)(void *ctx, struct ws_client *c, const char *text, size_t len,
                          bool binary);
    void (*on_ws_free)(void *ctx, struct ws_client *c);
};

struct server_stats {
    uint64_t http_requests;
    uint64_t http_by_class[6]; /* 1xx .. 5xx, index 0 unused */
    int websockets;            /* of which WebSocket */
    uint64_t ws_messages_in;
    uint64_t ws_messages_out;
    uint64_t ws_closed_too_large;
    uint64_t connections_total;
    uint64_t connections_refused;
    uint64_t body_timeouts;      /* HTTP bodies and WebSocket messages not finished in time */
    uint64_t unfinished_refused; /* messages refused for want of room (503, close 1013) */
};

struct server {
    uv_loop_t *loop;
    const struct config *cfg;
    struct server_hooks hooks;
    struct lws_context *context; /* NULL once lws has finished tearing down */
    bool stopping;               /* new API requests are refused with 503 */
    int pending;                 /* exchanges waiting for a handler's answer */
    int port;                    /* the bound port (useful when cfg->port is 0) */
    struct ws_client *clients;   /* open WebSocket connections */
    /* Connection limits (Debian's lws is built without LWS_WITH_PEER_LIMITS):
     * accepted sockets in all and per peer IPv4 address, and each accepted
     * wsi's address until it is destroyed. */
    int accepted;
    struct idmap per_address;  /* address -> count (as a tagged pointer) */
    struct idmap wsi_address;  /* wsi -> address (as a tagged pointer) */
    struct idmap http_buckets; /* wsi -> rate-limit bucket of its API requests */
    uint32_t filtered_address; /* set by the filter callback for the wsi being made */
    int filtered_fd;           /* and its socket */
    struct idmap wsi_fd;       /* wsi -> socket followed by wirecheck (as a tagged pointer) */
    bool filtered;
    /* Memory held by messages being received (HTTP bodies reserved at their
     * Content-Length, WebSocket fragments as they arrive), bounded by
     * cfg->max_unfinished_kb. */
    size_t unfinished_bytes;
    struct http_exchange *receiving; /* exchanges whose body is on its way */
    struct server_stats stats;
    unsigned char *frame; /* LWS_PRE + a message, written at once (ws_write_now) */
    size_t frame_cap;
};

/* Creates the lws context on `loop` and starts listening on cfg->listen and
 * cfg->port.  Returns 0, or a negative code with a log line saying why (the
 * port is taken, for instance). */
int server_start(struct server *s, uv_loop_t *loop, const struct config *cfg,
                 const struct server_hooks *hooks) __attribute__((warn_unused_result));

/* Frees the connection-limit maps, once s->context is NULL. */
void server_free(struct server *s);

/* Stops taking new API work: requests arriving from now on get 503. */
void server_drain(struct server *s);

/* Starts lws' teardown.  The caller keeps running the loop until s->context
 * becomes NULL (lws' documented order for a foreign loop). */
void server_destroy(struct server *s);

/* Stores the answer (`body` is copied) and schedules its writing; frees the
 * exchange instead when its client is gone. */
void server_http_respond(struct http_exchange *ex, int status, const char *content_type,
                         const char *body, size_t len);

/* Same, taking ownership of a malloc'ed `body`. */
void server_http_respond_owned(struct http_exchange *ex, int status, const char *content_type,
                               char *body, size_t len);

/* Answers {"error":{"code":...,"message":...}} with `status`. */
void server_http_error(struct http_exchange *ex, int status, const char *code, const char *message);

/* Queues `len` bytes of text for `c` (copied); dropped when `c` is closed
 * or closing.  A client that lets more than 4 MiB pile up is disconnected. */
void server_ws_send(struct ws_client *c, const char *text, size_t len);

/* Closes the connection with a close frame (status and reason) once what
 * was queued for it is sent: an answer queued just before is not lost.
 * Nothing queued afterwards is sent; the first reason given wins. */
void server_ws_close_after_flush(struct ws_client *c, int status, const char *reason);

/* Closes `c` with a close frame, dropping what is still queued. */
void server_ws_close(struct ws_client *c, int status, const char *reason);

/* Keeps connections alive and bounded: pings a WebSocket silent for half
 * of `idle_timeout_s` (browsers and lws answer with a pong, which counts as
 * activity), closes one silent for `idle_timeout_s` (1001, "idle timeout");
 * closes a WebSocket whose message began more than body_timeout_s ago
 * (1008, "message timeout") and answers an HTTP request whose body began
 * more than body_timeout_s ago 408, closing its connection.  Call it every
 * second or so. */
void server_sweep(struct server *s, int idle_timeout_s);

/* References keep a client's memory alive across asynchronous work. */
void server_ws_ref(struct ws_client *c);
void server_ws_unref(struct ws_client *c);

#endif
