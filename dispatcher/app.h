/* The running service: one libuv loop owning the database pool, the
 * migration run, the HTTP/WebSocket server and the signal handlers.
 *
 * Start-up: listen at once (so /healthz answers), connect, apply migrations
 * (waiting for the database as long as needed), load the in-memory store,
 * then report ready.
 *
 * Shutdown on SIGINT or SIGTERM, in this order: refuse new API work; let
 * in-flight requests and their database writes finish (at most
 * cfg->shutdown_grace_ms); destroy the lws context and keep the loop running
 * until lws says it is gone; close the database pool; close our own handles;
 * the loop then ends with no live handle.
 */
#ifndef SNP_APP_H
#define SNP_APP_H

#include <stdbool.h>

#include <uv.h>

#include "dispatcher/commands/api.h"
#include "dispatcher/config.h"
#include "dispatcher/db/db.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/db/migrate.h"
#include "dispatcher/jobs/outbox.h"
#include "dispatcher/jobs/sender.h"
#include "dispatcher/net/server.h"

/* The service's phases; transitions happen in app.c only. */
enum app_state {
    APP_STARTING, /* listening; migrations not applied yet */
    APP_RUNNING,  /* ready */
    APP_DRAINING, /* signal received: finishing in-flight work */
    APP_CLOSING,  /* tearing down lws, then the database, then our handles */
};

struct app {
    uv_loop_t *loop;
    const struct config *cfg;
    enum app_state state;
    struct db db;
    struct migrate migrate;
    bool migrating;
    bool migrated;
    struct server server;
    struct dispatch dispatch;
    struct api api;
    struct outbox outbox; /* the appointment push to the SAS platform */
    bool outbox_ready;    /* outbox_init succeeded: it must be closed */
    struct sender sender; /* the messages to patients and practitioners */
    bool sender_ready;    /* sender_init succeeded: it must be closed */
    bool loading;
    uint64_t load_retry_ms;   /* a failed load is tried again then (0: none due) */
    uint64_t load_backoff_ms; /* the wait before the next attempt */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_timer_t tick; /* loop-lag probe and shutdown progress */
    uint64_t tick_expected_ms;
    double lag_last_ms;
    double lag_max_ms;
    uint64_t drain_deadline_ms;
    uint64_t protection_due_ms; /* next run of the data-protection jobs */
    uint64_t sweep_due_ms;      /* next api_sweep: WebSocket pings and timeouts */
    int exit_code;
};

/* Runs the service on `loop` until it is stopped; returns the process exit
 * code (0 after a clean shutdown, 1 when start-up failed). */
int app_run(struct app *app, uv_loop_t *loop, const struct config *cfg);

/* Starts the shutdown sequence, as a signal does. */
void app_stop(struct app *app);

#endif
