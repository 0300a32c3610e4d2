/* WebSocket connections of the snp.v1 subprotocol (enum ws_state,
 * server.h): messages assembled within the unfinished budget and handed to
 * the owner, answers and pushes written at once or queued, keepalive pings
 * and the close. */
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

int server__callback_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
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
        c->peer = server__peer(s, wsi);
        server__read_bearer(wsi, c->bearer, sizeof(c->bearer));
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
            if (!server__unfinished_fits(s, len)) {
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
                server__unwatch_connection(s, wsi);
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

void server__ws_sweep(struct server *s, uint64_t now, int idle_timeout_s)
{
    uint64_t idle_ms = (uint64_t)idle_timeout_s * 1000;
    uint64_t body_ms = (uint64_t)s->cfg->body_timeout_s * 1000;
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
