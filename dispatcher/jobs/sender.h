/* The message sender (issue 15 §4, docs/messages.md): delivers the rows of
 * message_outbox — confirmations to patients, summaries to médecins
 * traitants, referrals of patients without one — through the configured
 * sender.
 *
 * The database writes one row per message in the transaction that decides
 * it (sql/migrations/0026).  This module claims the due rows
 * (sql/queries/message_claim.sql: a lease taken with FOR UPDATE SKIP LOCKED,
 * so that one process sends a given row when several share the database),
 * gets each one's text written from its booking, and hands it as one JSON
 * document to:
 *
 *   - file (cfg->message_file): appended as one line, for a territory
 *     without a gateway yet, for demonstrations and for tests; the file is
 *     created mode 0600, since it holds addresses and health data;
 *   - http (cfg->message_gateway_url): POSTed with libcurl (httpc.h), a 2xx
 *     meaning accepted, with the bearer token message_gateway_token and an
 *     Idempotency-Key naming the message;
 *   - none: nothing is sent; the rows wait.
 *
 * A failure (an error writing the file, no answer, a non-2xx) is tried again
 * after a capped, jittered wait until message_dead_after_s after the message
 * was queued, then given up ("dead").  Sent or dead, the row's address is
 * erased.  Delivery is at least once: a process killed between the sender's
 * acceptance and the recording leaves the row to be sent again when its
 * lease runs out; the gateway can drop the repeat by its Idempotency-Key.
 * Neither an address nor a text ever reaches the log.
 *
 * Nothing blocks the loop: the file is written with uv_fs (libuv's thread
 * pool), HTTP through httpc, the database through db.h.  Lifecycle as in
 * outbox.h: sender_init → sender_start → sender_close(cb).
 */
#ifndef SNP_SENDER_H
#define SNP_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "dispatcher/config.h"
#include "dispatcher/db/db.h"
#include "dispatcher/net/httpc.h"

/* The sender's phases; transitions happen in sender_set_state only. */
enum sender_state {
    SENDER_IDLE,    /* initialised, not started (message_sender none, or not ready) */
    SENDER_RUNNING, /* claiming and sending */
    SENDER_CLOSING, /* transfers dropped; waiting for writes, queries and handles to end */
    SENDER_CLOSED,  /* everything released: the struct may be freed */
};

struct sender_stats {
    uint64_t sent;     /* messages the sender accepted (this process) */
    uint64_t failures; /* attempts that failed */
    uint64_t given_up; /* messages this process moved to dead */
    /* The backlog of the whole database, refreshed every few seconds. */
    bool backlog_known;
    long long pending;
    double oldest_pending_s;
    long long dead;
};

struct sender;
struct outgoing;
typedef void (*sender_close_cb)(struct sender *s);

struct sender {
    uv_loop_t *loop;
    struct db *db;
    const struct config *cfg;
    enum sender_state state;
    struct httpc http;        /* message_sender http */
    uv_file file;             /* message_sender file: the open file, or -1 */
    bool opening;             /* the file's open is in flight */
    bool open_failed;         /* the last open failed (and was logged) */
    uv_timer_t poll_timer;    /* claims due rows; refreshes the backlog */
    int open_handles;         /* the poll timer and httpc, until closed */
    int queries;              /* database queries not answered yet */
    int io;                   /* file operations in flight */
    int transfers;            /* messages claimed and not yet recorded */
    struct outgoing *sending; /* HTTP exchanges in flight, dropped at close */
    bool claiming;
    bool again;
    uint64_t backlog_due_ms;
    uint64_t rng; /* jitter of the retry waits */
    struct sender_stats stats;
    sender_close_cb on_closed;
};

/* Prepares `s` on `loop`; nothing is sent before sender_start.  Returns 0,
 * or -1 when libcurl refuses (nothing is left to close). */
int sender_init(struct sender *s, uv_loop_t *loop, struct db *db, const struct config *cfg)
    __attribute__((warn_unused_result));

/* Starts claiming and sending (with message_sender none, logs that messages
 * wait and does nothing). */
void sender_start(struct sender *s);

/* Drops the HTTP exchanges in flight (their rows are sent again when their
 * leases run out), waits for the file writes and database answers still
 * due, closes the file and every handle, then calls `on_closed`. */
void sender_close(struct sender *s, sender_close_cb on_closed);

/* Appends the sender's Prometheus lines to `b`. */
void sender_write_metrics(const struct sender *s, struct buf *b);

#endif
