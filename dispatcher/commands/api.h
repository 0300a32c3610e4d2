/* The protocol snp.v1 on top of the server: turns HTTP requests under /api/
 * and WebSocket messages into dispatch operations, after parsing, routing,
 * authentication, role checks and validation by the protocol codec, and
 * delivers dispatch's pushes to the subscribed WebSocket connections.
 */
#ifndef SNP_API_H
#define SNP_API_H

#include <stdint.h>

#include "base/buf.h"
#include "base/idlists.h"
#include "dispatcher/commands/auth.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/net/server.h"

struct api {
    struct dispatch *dispatch;
    struct server *server;
    struct auth auth;
    uint64_t (*results)[2]; /* per declared message: [ok, error] answers */
    size_t nmessages;
    uint64_t pushes;
    /* Per topic, the sessions subscribed to it, by the key a push names
     * (api.c, "subscribers"): a push reads these, not every connection. */
    struct idlists subscribers[SNP_TOPIC_COUNT];
};

/* Whether every message declared in protocol/snp.v1.json has a handler and
 * every handler is declared (snp_proto_init first); otherwise writes which
 * one into `why`.  api_init refuses to start without it. */
bool api_check_operations(char *why, size_t n);

/* Prepares the API for `d`; `db` serves token look-ups, bounded as `cfg`
 * says (auth_cache_entries, auth_failures_*).  Returns 0 or a negative code
 * when memory is short. */
int api_init(struct api *a, struct dispatch *d, struct db *db, const struct config *cfg)
    __attribute__((warn_unused_result));
void api_free(struct api *a);

/* The server hooks (set them in struct server_hooks with ctx = the api). */
void api_on_http(void *ctx, struct http_exchange *ex);
void api_on_ws_open(void *ctx, struct ws_client *c);
void api_on_ws_message(void *ctx, struct ws_client *c, const char *text, size_t len, bool binary);
void api_on_ws_free(void *ctx, struct ws_client *c);

/* The dispatch push hook (ctx = the api). */
void api_push(void *ctx, const struct push_target *to, const struct dispatch_push *p);

/* The dispatch wants hook: whether a push to `to` would reach a session of
 * this process (so that pushes nobody here receives are not built). */
bool api_wants(void *ctx, const struct push_target *to);

/* The dispatch hook for revoked tokens (ctx = the api): the token is
 * refused from now on and the connections it opened are closed (1008). */
void api_token_revoked(void *ctx, int64_t id);

/* Bounds the WebSocket connections, called every second: pings silent ones
 * and closes those silent for `idle_timeout_s` (1001), those that did not
 * authenticate within the protocol's auth_timeout_s and those whose token
 * has expired (1008). */
void api_sweep(struct api *a, int idle_timeout_s);

/* Appends the API's Prometheus metrics. */
void api_write_metrics(const struct api *a, struct buf *out);

#endif
