/* The appointment push to the national SAS platform (issue 12, docs/fhir.md
 * "Appointment push").
 *
 * The database writes one row of appointment_outbox per change to announce,
 * in the transaction of the change (sql/migrations/0018).  This module sends
 * them: it claims the due rows (sql/queries/outbox_claim.sql: a lease, taken
 * with FOR UPDATE SKIP LOCKED, so that one process sends a given row when
 * several share the database; one booking's rows one after the other), sends
 * each as a FHIR Appointment with libcurl, and records the answer:
 *
 *   - the first attempt of a booking's first row is `POST {base}/Appointment`;
 *     every other attempt is the conditional update
 *     `PUT {base}/Appointment?identifier=<system>|<booking id>`, and a 404 to
 *     it is sent again at once as the POST (the platform does not know the
 *     appointment yet);
 *   - 2xx: sent;
 *   - a transport error, a timeout, 408, 429 or 5xx: tried again after a
 *     capped, jittered exponential wait, for ever;
 *   - another 4xx: tried again the same way until sas_push_dead_after_s have
 *     passed since the first refusal, then given up ("dead", in /metrics).
 *
 * Delivery is at least once: a process killed after the platform answered
 * and before the answer was recorded leaves the row to be sent again when its
 * lease runs out (by itself after a restart, or by another process).  A
 * lease lasts twice the HTTP timeout plus 5 s, so that a row is never sent
 * by two processes at once while both are alive and responsive.
 *
 * Nothing blocks the loop: the HTTP exchanges go through httpc.h (libcurl
 * on the libuv loop), the database only through db.h.  Rows are claimed every
 * cfg->sas_push_poll_ms, and within 50 ms when outbox_kick() is called (app.c
 * calls it when a booking change is announced on snp_change).
 *
 * Lifecycle, as in libuv: outbox_init → outbox_start → outbox_close(cb);
 * the struct must stay valid until cb runs.  curl_global_init must have run.
 */
#ifndef SNP_OUTBOX_H
#define SNP_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/buf.h"
#include "dispatcher/config.h"
#include "dispatcher/db/db.h"
#include "dispatcher/net/httpc.h"

/* The sender's phases; transitions happen in outbox_set_state only. */
enum outbox_state {
    OUTBOX_IDLE,    /* initialised, not started (no public_url, or not ready yet) */
    OUTBOX_RUNNING, /* claiming and sending */
    OUTBOX_CLOSING, /* transfers aborted; waiting for handles and queries to end */
    OUTBOX_CLOSED,  /* everything released: the struct may be freed */
};

struct outbox_stats {
    uint64_t sent;     /* pushes acknowledged by the platform (2xx) */
    uint64_t failures; /* attempts that failed, whatever the reason */
    uint64_t given_up; /* rows this process moved to dead */
    /* The backlog of the whole database, refreshed every few seconds. */
    bool backlog_known;
    long long pending;
    double oldest_pending_s;
    long long dead;
};

struct outbox;
struct push;
typedef void (*outbox_close_cb)(struct outbox *ob);

struct outbox {
    uv_loop_t *loop;
    struct db *db;
    const struct config *cfg;
    enum outbox_state state;
    struct httpc http;       /* the HTTP exchanges */
    uv_timer_t poll_timer;   /* claims due rows; refreshes the backlog */
    int open_handles;        /* the poll timer and httpc, until closed */
    int queries;             /* database queries not answered yet */
    int transfers;           /* pushes claimed and not yet recorded */
    struct push *sending;    /* pushes whose HTTP exchange is in flight */
    bool claiming;           /* a claim query is in flight */
    bool again;              /* claim again as soon as the claim ends */
    bool kicked;             /* outbox_kick has brought the next claim forward */
    uint64_t backlog_due_ms; /* next refresh of the backlog figures */
    char id_system[300];     /* <public_url>/fhir/sid/appointment */
    uint64_t rng;            /* jitter of the retry waits */
    struct outbox_stats stats;
    outbox_close_cb on_closed;
};

/* Prepares `ob` on `loop` (its timer, httpc); nothing is sent
 * before outbox_start.  Returns 0, or a negative error code when libcurl or
 * libuv refuse (then nothing is left to close). */
int outbox_init(struct outbox *ob, uv_loop_t *loop, struct db *db, const struct config *cfg)
    __attribute__((warn_unused_result));

/* Starts claiming and sending.  Without cfg->public_url (the identifier
 * system of the pushed appointments is built from it) it logs a warning and
 * sends nothing: the rows wait in the database. */
void outbox_start(struct outbox *ob);

/* Claims due rows within 50 ms rather than at the next poll (a change was
 * announced); kicks in that time share one claim. */
void outbox_kick(struct outbox *ob);

/* Aborts the transfers in flight (their rows are sent again when their
 * leases run out), waits for the database answers still due, closes every
 * handle and then calls `on_closed`. */
void outbox_close(struct outbox *ob, outbox_close_cb on_closed);

/* Appends the outbox's Prometheus lines to `b`. */
void outbox_write_metrics(const struct outbox *ob, struct buf *b);

#endif
