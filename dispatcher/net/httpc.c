#include "dispatcher/net/httpc.h"

#include <stddef.h>
#include <stdlib.h>

#include "dispatcher/net/handles.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define RETRY_MIN_MS 1000 /* the first wait after a failure, before jitter */

/* A socket libcurl asked us to watch. */
struct httpc_socket {
    uv_poll_t poll;
    struct httpc *h;
    curl_socket_t fd;
};

static void httpc_maybe_closed(struct httpc *h)
{
    if (h->closing && h->open_handles == 0 && h->on_closed)
        h->on_closed(h);
}

/* Hands libcurl's finished transfers to the owner. */
static void httpc_check_done(struct httpc *h)
{
    CURLMsg *m;
    int left;
    while (h->multi && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE)
            h->on_done(h, m->easy_handle, m->data.result);
    }
}

static void on_socket_closed(uv_handle_t *handle)
{
    struct httpc_socket *s = container_of((uv_poll_t *)handle, struct httpc_socket, poll);
    struct httpc *h = s->h;
    free(s);
    h->open_handles--;
    httpc_maybe_closed(h);
}

static void on_socket_ready(uv_poll_t *poll, int status, int events)
{
    struct httpc_socket *s = container_of(poll, struct httpc_socket, poll);
    struct httpc *h = s->h;
    if (!h->multi)
        return;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    httpc_check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget one socket. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct httpc *h = userp;
    struct httpc_socket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_socket_closed);
            if (h->multi)
                curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        handle_mark_own((uv_handle_t *)&s->poll);
        s->h = h;
        s->fd = fd;
        h->open_handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_socket_ready);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct httpc *h = container_of(t, struct httpc, timer);
    if (!h->multi)
        return;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    httpc_check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: libcurl wants to be called back in `ms` (-1: never).
 * It must not be called from here, hence the timer even for 0. */
static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    struct httpc *h = userp;
    if (ms < 0)
        uv_timer_stop(&h->timer);
    else if (!h->closing)
        uv_timer_start(&h->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

int httpc_init(struct httpc *h, uv_loop_t *loop, httpc_done_cb on_done, void *data)
{
    *h = (struct httpc){.loop = loop, .on_done = on_done, .data = data};
    h->multi = curl_multi_init();
    if (!h->multi)
        return -1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(loop, &h->timer);
    handle_mark_own((uv_handle_t *)&h->timer);
    h->open_handles = 1;
    return 0;
}

bool httpc_add(struct httpc *h, CURL *easy)
{
    return h->multi && curl_multi_add_handle(h->multi, easy) == CURLM_OK;
}

void httpc_remove(struct httpc *h, CURL *easy)
{
    if (h->multi)
        curl_multi_remove_handle(h->multi, easy);
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct httpc *h = container_of((uv_timer_t *)handle, struct httpc, timer);
    h->open_handles--;
    httpc_maybe_closed(h);
}

void httpc_close(struct httpc *h, httpc_closed_cb cb)
{
    if (h->closing)
        return;
    h->closing = true;
    h->on_closed = cb;
    /* Closing the cached connections now lets libcurl tell us to forget
     * their sockets, whose poll handles then close like the timer. */
    CURLM *multi = h->multi;
    curl_multi_cleanup(multi);
    h->multi = NULL;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

long httpc_retry_ms(uint64_t *rng, int attempts, int cap_s)
{
    /* xorshift64*: the jitter needs no cryptographic quality. */
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    uint64_t draw = *rng * 2685821657736338717ull;
    uint64_t cap = (uint64_t)cap_s * 1000;
    uint64_t wait = RETRY_MIN_MS;
    for (int i = 1; i < attempts && wait < cap; i++)
        wait *= 2;
    if (wait > cap)
        wait = cap;
    return (long)(wait / 2 + draw % (wait / 2 + 1));
}
