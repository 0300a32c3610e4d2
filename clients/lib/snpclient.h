/* snpclient: a blocking client for snpd's HTTP JSON API and its WebSocket
 * protocol snp.v1, on libwebsockets' client API.
 *
 * It serves the end-to-end tests and snpctl, which are written as straight
 * blocking code: every call services the client's own lws context (lws'
 * default poll loop, no libuv) until what it waits for has happened or its
 * deadline has passed, then returns.  Nothing runs in the background between
 * calls, so a connection only makes progress while some call on the same
 * `struct snpclient` is running.
 *
 * One `struct snpclient` holds one lws context for one server (host, port,
 * TLS or not) and any number of HTTP requests and WebSocket connections to
 * it.  It belongs to one thread; nothing here is thread-safe.
 *
 * Functions that can fail return 0 (or a pointer) on success and a negative
 * `enum snpclient_error` (or NULL) on failure; snpclient_strerror() names it.
 *
 * Time-outs are in milliseconds: a negative value waits without limit, 0
 * services the connection once without waiting and reports what is there.
 */
#ifndef SNP_CLIENT_H
#define SNP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#define SNPCLIENT_MUST_CHECK __attribute__((warn_unused_result))

/* The WebSocket subprotocol requested in every handshake. */
#define SNPCLIENT_SUBPROTOCOL "snp.v1"

/* Where snpd accepts WebSocket upgrades (protocol/snp.v1.md, Transport). */
#define SNPCLIENT_WS_PATH "/api/v1/ws"

/* The largest WebSocket message or HTTP response body accepted from the
 * server; a WebSocket message past it closes the connection with 1009. */
#define SNPCLIENT_MAX_MESSAGE (64u * 1024u * 1024u)

enum snpclient_error {
    SNPCLIENT_EINVAL = -1,    /* a bad argument (NULL, a path not starting with '/') */
    SNPCLIENT_ENOMEM = -2,    /* out of memory */
    SNPCLIENT_ECONNECT = -3,  /* connecting failed: refused, unresolved, TLS, or the
                                 WebSocket handshake was not accepted */
    SNPCLIENT_ETIMEDOUT = -4, /* the deadline passed first */
    SNPCLIENT_ECLOSED = -5,   /* the connection is closed (and, for a receive, nothing
                                 is left queued) */
    SNPCLIENT_EPROTO = -6,    /* the server sent something unusable: a truncated HTTP
                                 response, a binary message where text was expected, a
                                 response that is not a snp.v1 envelope */
    SNPCLIENT_ESERVER = -7,   /* a snp.v1 response arrived and carries "ok": false */
    SNPCLIENT_ELWS = -8       /* libwebsockets failed internally */
};

struct snpclient;
struct snpclient_ws;

/* How to reach the server.  Only `host` and `port` are required. */
struct snpclient_options {
    const char *host;             /* name or address, e.g. "127.0.0.1" */
    int port;                     /* TCP port */
    bool tls;                     /* https / wss */
    const char *ca_file;          /* PEM file of trusted CAs; NULL: the system store */
    bool tls_allow_self_signed;   /* accept a self-signed certificate (tests only) */
    bool tls_skip_hostname_check; /* do not match the certificate's name (tests only) */
    const char *local_address;    /* source address to connect from, e.g. "127.0.0.2" to
                                     test per-address limits; NULL: the system's choice */
};

/* Returns a static English description of `err` (an enum snpclient_error, or
 * 0 for "ok"). */
const char *snpclient_strerror(int err);

/* Creates a client for the server at `host`:`port`, over TLS when `tls` is
 * true (certificates checked against the system store).  The host string is
 * copied.  It sets lws' process-wide log level to errors only (lws warns
 * about every refused handshake, which is the caller's business to report),
 * or to the LLL_* bit mask in $SNPCLIENT_LWS_LOG when set.
 * Returns NULL when out of memory or when lws cannot create its context. */
struct snpclient *snpclient_new(const char *host, int port, bool tls) SNPCLIENT_MUST_CHECK;

/* Same as snpclient_new() with every option; `o` is copied. */
struct snpclient *snpclient_new_with(const struct snpclient_options *o) SNPCLIENT_MUST_CHECK;

/* Closes every WebSocket connection still open (a normal close, waiting up to
 * two seconds in all for the server's answers), abandons any request still
 * in flight, destroys the lws context and frees `c`.  Every snpclient_ws of
 * `c` is freed too: the caller must not use them afterwards.  NULL is a no-op. */
void snpclient_free(struct snpclient *c);

/* Sends one HTTP/1.1 request and waits for the whole response.
 *
 * `method` is "GET", "POST", "PUT", "PATCH", "DELETE"...; `path` starts with
 * '/' and is sent as is (already percent-encoded, query string included).
 * When `bearer` is not NULL, "Authorization: Bearer <bearer>" is sent.  When
 * `body` is not NULL it is sent with "Content-Type: application/json" and
 * its Content-Length (an empty string sends "Content-Length: 0").  Redirects
 * are not followed: a 3xx is a response like any other.
 *
 * Returns 0 once a complete response arrived, whatever its status; then
 * `*status` (if `status` is not NULL) holds the status code and
 * `*response_body` (if not NULL) a NUL-terminated malloc'ed copy of the body,
 * which the caller frees.  Returns SNPCLIENT_ECONNECT, SNPCLIENT_ETIMEDOUT,
 * SNPCLIENT_EPROTO (connection closed mid-response, body over
 * SNPCLIENT_MAX_MESSAGE), SNPCLIENT_EINVAL or SNPCLIENT_ENOMEM otherwise,
 * leaving `*status` at 0 and `*response_body` at NULL.  A request that timed
 * out is abandoned: its connection is closed before this returns. */
int snpclient_http(struct snpclient *c, const char *method, const char *path, const char *bearer,
                   const char *body, int timeout_ms, int *status,
                   char **response_body) SNPCLIENT_MUST_CHECK;

/* Opens a WebSocket connection to `path` (NULL means SNPCLIENT_WS_PATH) asking for the
 * subprotocol snp.v1, with "Authorization: Bearer <bearer>" on the handshake
 * when `bearer` is not NULL, and services the context until the handshake
 * succeeded, failed or `timeout_ms` passed.
 *
 * Returns the connection, owned by the caller until snpclient_ws_close(), or
 * NULL with a one-line English reason in `err` (when `err` is not NULL and
 * `errlen` > 0), e.g. "handshake rejected: HTTP 401" or "timed out after
 * 5000 ms".  Many connections can be open at once on one client. */
struct snpclient_ws *snpclient_ws_open(struct snpclient *c, const char *path, const char *bearer,
                                       int timeout_ms, char *err,
                                       size_t errlen) SNPCLIENT_MUST_CHECK;

/* Queues `text` (NUL-terminated, copied) as one text message and services
 * the context until lws has taken it (one lws_write per writeable callback,
 * in queue order).  Returns 0 once written, SNPCLIENT_ECLOSED when the
 * connection closed first (or was already closed), SNPCLIENT_ETIMEDOUT after
 * ten seconds without the socket becoming writeable, SNPCLIENT_ENOMEM. */
int snpclient_ws_send(struct snpclient_ws *w, const char *text) SNPCLIENT_MUST_CHECK;

/* Like snpclient_ws_send() for one raw frame of `len` bytes of `buf`, so
 * tests can send what a correct client would not: binary frames, invalid
 * UTF-8 in a text frame, oversized messages, and messages split in
 * fragments.  `first_fragment` starts a message (a text or binary frame per
 * `binary`; otherwise a continuation frame and `binary` is ignored);
 * `final_fragment` ends it (FIN bit).  An unfragmented message is
 * first_fragment = final_fragment = true. */
int snpclient_ws_send_raw(struct snpclient_ws *w, const void *buf, size_t len, bool binary,
                          bool final_fragment, bool first_fragment) SNPCLIENT_MUST_CHECK;

/* Returns in `*text` the oldest whole message received and not yet taken,
 * waiting up to `timeout_ms` for one (fragments are assembled first).  The
 * string is NUL-terminated and malloc'ed; the caller frees it.
 *
 * Returns 0 with a text message; SNPCLIENT_EPROTO when the next message was
 * binary (it is dropped; see snpclient_ws_recv_message to keep it);
 * SNPCLIENT_ETIMEDOUT when nothing came; SNPCLIENT_ECLOSED when the
 * connection is closed and every message received before the close has
 * been taken.  `*text` is NULL on every error. */
int snpclient_ws_recv(struct snpclient_ws *w, int timeout_ms, char **text) SNPCLIENT_MUST_CHECK;

/* Like snpclient_ws_recv() for text and binary messages alike: `*data` gets
 * the payload (NUL-terminated as a convenience, malloc'ed), `*len` its length
 * and `*binary` whether it came in binary frames.  Same returns, without
 * SNPCLIENT_EPROTO. */
int snpclient_ws_recv_message(struct snpclient_ws *w, int timeout_ms, char **data, size_t *len,
                              bool *binary) SNPCLIENT_MUST_CHECK;

/* Sends the request envelope {"id": <generated>, "type": `type`, "data":
 * `data_json`} and waits up to `timeout_ms` for the response with the same
 * id.  `data_json` is a JSON object text, or NULL for {}.  Messages that
 * arrive in the meantime (pushes, other responses) stay queued, in order,
 * for snpclient_ws_recv().
 *
 * Returns 0 when the response has "ok": true, SNPCLIENT_ESERVER when it has
 * "ok": false, SNPCLIENT_EPROTO when the message with our id is not a valid
 * response envelope; in those three cases `*response` (when `response` is
 * not NULL) receives the whole response text, malloc'ed, which the caller
 * frees.  Returns SNPCLIENT_EINVAL when `data_json` does not parse as an
 * object, SNPCLIENT_ETIMEDOUT (a late response is then left in the queue),
 * SNPCLIENT_ECLOSED, SNPCLIENT_ENOMEM, with `*response` NULL. */
int snpclient_ws_call(struct snpclient_ws *w, const char *type, const char *data_json,
                      int timeout_ms, char **response) SNPCLIENT_MUST_CHECK;

/* Returns the status code of the server's close frame, 1005 when the close
 * frame carried none, 1006 when the connection ended without a close frame,
 * or 0 while the connection is open or when this side closed it first.
 * lws 4.1 reports codes that may not appear on the wire (below 1000, 1004-1006,
 * 1012-2999) as 1002. */
int snpclient_ws_close_code(const struct snpclient_ws *w);

/* Returns the reason text of the server's close frame ("" when none). */
const char *snpclient_ws_close_reason(const struct snpclient_ws *w);

/* Returns whether the connection has closed or is closing, as far as the
 * calls made so far have seen; it does not service the context.  Messages
 * received before the close can still be taken with snpclient_ws_recv(). */
bool snpclient_ws_is_closed(const struct snpclient_ws *w);

/* Closes `w` normally (status 1000) after the messages already queued for
 * sending, waits up to two seconds for the server's close frame, then frees
 * `w` and every message not taken.  `w` must not be used afterwards.  NULL is
 * a no-op. */
void snpclient_ws_close(struct snpclient_ws *w);

#endif
