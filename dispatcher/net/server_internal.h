/* What server.c, server_http.c and server_ws.c share, and nobody else may
 * include: the per-connection data and callbacks of the two lws protocols,
 * the connection limits and the unfinished-message budget (server.c), and
 * each protocol's part of server_sweep.  Names carry the `server__` prefix
 * of internal functions. */
#ifndef SNP_DISPATCHER_SERVER_INTERNAL_H
#define SNP_DISPATCHER_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "dispatcher/net/server.h"

/* Per-connection data of the HTTP protocol: the exchange in progress. */
struct http_pss {
    struct http_exchange *ex;
};

/* Per-connection data of the snp.v1 protocol. */
struct ws_pss {
    struct ws_client *client;
};

/* The lws callbacks of the two protocols (server_http.c, server_ws.c). */
int server__callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len);
int server__callback_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);

/* --- server.c --- */

/* Whether `bytes` more fit in the budget of unfinished messages
 * (cfg->max_unfinished_kb); the caller adds them to s->unfinished_bytes. */
bool server__unfinished_fits(const struct server *s, size_t bytes);

/* Connection limits, from LWS_CALLBACK_FILTER_NETWORK_CONNECTION (returns
 * what the callback must return), LWS_CALLBACK_WSI_CREATE and
 * LWS_CALLBACK_WSI_DESTROY. */
int server__filter_connection(struct server *s, const struct lws_filter_network_conn_args *a);
void server__count_connection(struct server *s, struct lws *wsi);
void server__uncount_connection(struct server *s, struct lws *wsi);

/* Copies the token of an "Authorization: Bearer ..." header into `out`,
 * or "" (of an HTTP request or a WebSocket handshake). */
void server__read_bearer(struct lws *wsi, char *out, size_t size);

/* The IPv4 address (host order) of the client on `wsi`, or 0. */
uint32_t server__peer(const struct server *s, struct lws *wsi);

/* Stops wirecheck's watch of the socket of `wsi`. */
void server__unwatch_connection(struct server *s, struct lws *wsi);

/* The built-in endpoints, answered by the server itself. */
void server__handle_healthz(struct http_exchange *ex);
void server__handle_readyz(struct server *s, struct http_exchange *ex);
void server__handle_metrics(struct server *s, struct http_exchange *ex);

/* --- each protocol's part of server_sweep --- */

/* Answers 408 to the exchanges whose body is late (server_http.c). */
void server__http_sweep(struct server *s, uint64_t now);

/* Closes WebSocket connections whose message is late or that are silent
 * for idle_timeout_s, and pings those silent for half of it (server_ws.c). */
void server__ws_sweep(struct server *s, uint64_t now, int idle_timeout_s);

#endif
