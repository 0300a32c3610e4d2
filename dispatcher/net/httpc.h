/* httpc: outbound HTTP on the one libuv loop, through libcurl's multi
 * interface, for the modules that send to other services (the appointment
 * push, dispatcher/jobs/outbox.h; the message sender, dispatcher/jobs/sender.h).
 *
 * The owner prepares each transfer as a libcurl easy handle (URL, headers,
 * body, timeouts, CURLOPT_PRIVATE to find its own record again), hands it
 * over with httpc_add, and is called back once per transfer with libcurl's
 * result; it then removes and frees the easy handle itself (httpc_remove).
 * Nothing blocks: curl_multi_socket_action is driven by one uv_poll_t per
 * socket libcurl asks to watch and one uv_timer_t for its timeouts.
 *
 * Lifecycle, as in libuv: httpc_init → httpc_add/httpc_remove → httpc_close(cb);
 * the struct must stay valid until cb runs.  The owner removes its transfers
 * before closing (httpc_close drops the connections libcurl keeps).
 * curl_global_init must have run.
 */
#ifndef SNP_HTTPC_H
#define SNP_HTTPC_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

struct httpc;
typedef void (*httpc_done_cb)(struct httpc *h, CURL *easy, CURLcode result);
typedef void (*httpc_closed_cb)(struct httpc *h);

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;     /* NULL once closing */
    uv_timer_t timer; /* libcurl's own timeouts */
    int open_handles; /* the timer and the socket watchers not closed yet */
    bool closing;
    httpc_done_cb on_done;
    httpc_closed_cb on_closed;
    void *data; /* the owner's */
};

/* Prepares `h` on `loop`; `on_done` is called for each finished transfer.
 * Returns 0, or -1 when libcurl refuses (nothing is left to close). */
int httpc_init(struct httpc *h, uv_loop_t *loop, httpc_done_cb on_done, void *data)
    __attribute__((warn_unused_result));

/* Starts a transfer; false when libcurl refuses it (or `h` is closing). */
bool httpc_add(struct httpc *h, CURL *easy) __attribute__((warn_unused_result));

/* Takes a transfer back, finished or not (no callback follows).  Harmless
 * for a handle that is not in `h`, or once closing. */
void httpc_remove(struct httpc *h, CURL *easy);

/* Drops libcurl's connections, closes every handle and then calls `cb`. */
void httpc_close(struct httpc *h, httpc_closed_cb cb);

/* The wait before attempt `attempts` + 1 of something that failed: doubling
 * from 1 s up to `cap_s`, then drawn between half of it and all of it, so
 * that what failed in one outage does not all come back at the same moment.
 * `rng` is the caller's xorshift state (any non-zero seed). */
long httpc_retry_ms(uint64_t *rng, int attempts, int cap_s);

#endif
