#include "dispatcher/app.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "dispatcher/commands/fhir.h"
#include "dispatcher/net/handles.h"
#include "dispatcher/jobs/protection.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define TICK_MS                         50
#define SWEEP_EVERY_MS                  1000 /* WebSocket pings, idle, auth and expiry */
#define LOAD_RETRY_MS                   500   /* first wait after a failed start-up load */
#define LOAD_RETRY_MAX_MS               10000
/* The identity erasure and audit purge run at start-up and then hourly. */
#define PROTECTION_EVERY_MS (3600 * 1000)

static void app_set_state(struct app *app, enum app_state next)
{
    static const char *const names[] = {"starting", "running", "draining", "closing"};
    log_debug("app", "%s -> %s", names[app->state], names[next]);
    app->state = next;
}

/* --- server hooks ----------------------------------------------------------------- */

static bool app_is_ready(void *ctx, char *why, size_t whylen)
{
    struct app *app = ctx;
    if (!app->migrated) {
        snprintf(why, whylen, "migrations not applied yet");
        return false;
    }
    if (!app->dispatch.ready) {
        snprintf(why, whylen, "loading the dispatch state");
        return false;
    }
    if (!db_is_up(&app->db)) {
        snprintf(why, whylen, "database unreachable");
        return false;
    }
    return true;
}

static void app_on_api(void *ctx, struct http_exchange *ex)
{
    struct app *app = ctx;
    api_on_http(&app->api, ex);
}

static void app_on_fhir(void *ctx, struct http_exchange *ex)
{
    struct app *app = ctx;
    fhir_on_http(&app->api, ex);
}

static void app_on_ws_open(void *ctx, struct ws_client *c)
{
    struct app *app = ctx;
    api_on_ws_open(&app->api, c);
}

static void app_on_ws_message(void *ctx, struct ws_client *c, const char *text, size_t len,
                              bool binary)
{
    struct app *app = ctx;
    api_on_ws_message(&app->api, c, text, len, binary);
}

static void app_on_ws_free(void *ctx, struct ws_client *c)
{
    struct app *app = ctx;
    api_on_ws_free(&app->api, c);
}

static void app_write_metrics(void *ctx, struct buf *b)
{
    struct app *app = ctx;
    const struct db_stats *st = &app->db.stats;
    const struct dispatch_stats *ds = &app->dispatch.stats;
    size_t slots = 0, waiting = 0, held = 0;
    for (size_t i = 0; i < app->dispatch.store.nterritories; i++) {
        const struct territory *t = app->dispatch.store.territories[i];
        slots += t->nslots;
        for (size_t k = 0; k < t->nopen; k++) {
            waiting += t->open[k]->status == REQ_WAITING;
            held += t->open[k]->status == REQ_OFFERED;
        }
    }
    buf_printf(b,
               "# HELP snpd_bookings_total Bookings confirmed by this process.\n"
               "# TYPE snpd_bookings_total counter\nsnpd_bookings_total %llu\n"
               "# HELP snpd_offers_total Slots held for a request (offers made).\n"
               "# TYPE snpd_offers_total counter\nsnpd_offers_total %llu\n"
               "# HELP snpd_holds_expired_total Holds that ran out.\n"
               "# TYPE snpd_holds_expired_total counter\nsnpd_holds_expired_total %llu\n"
               "# HELP snpd_conflicts_total Holds or bookings the database refused.\n"
               "# TYPE snpd_conflicts_total counter\nsnpd_conflicts_total %llu\n"
               "# HELP snpd_match_slices_total Matching passes cut short to let the loop "
               "answer (their work went on at the next turn).\n"
               "# TYPE snpd_match_slices_total counter\nsnpd_match_slices_total %llu\n"
               "# HELP snpd_holds Slots held right now.\n# TYPE snpd_holds gauge\n"
               "snpd_holds %zu\n"
               "# HELP snpd_waiting_requests Requests waiting for a slot.\n"
               "# TYPE snpd_waiting_requests gauge\nsnpd_waiting_requests %zu\n"
               "# HELP snpd_live_slots Live slots in memory.\n"
               "# TYPE snpd_live_slots gauge\nsnpd_live_slots %zu\n",
               (unsigned long long)ds->bookings, (unsigned long long)ds->offers,
               (unsigned long long)ds->holds_expired, (unsigned long long)ds->conflicts,
               (unsigned long long)ds->match_slices, held, waiting, slots);
    api_write_metrics(&app->api, b);
    outbox_write_metrics(&app->outbox, b);
    sender_write_metrics(&app->sender, b);
    buf_printf(b,
               "# HELP snpd_db_up Database connections ready.\n# TYPE snpd_db_up gauge\n"
               "snpd_db_up %d\n",
               app->db.up);
    buf_printf(b,
               "# HELP snpd_db_queries_total Queries completed.\n"
               "# TYPE snpd_db_queries_total counter\nsnpd_db_queries_total %llu\n",
               (unsigned long long)st->queries);
    buf_printf(b,
               "# HELP snpd_db_errors_total Queries refused by the server.\n"
               "# TYPE snpd_db_errors_total counter\nsnpd_db_errors_total %llu\n",
               (unsigned long long)st->errors);
    buf_printf(b,
               "# HELP snpd_db_unavailable_total Queries failed for lack of a connection.\n"
               "# TYPE snpd_db_unavailable_total counter\nsnpd_db_unavailable_total %llu\n",
               (unsigned long long)st->unavailable);
    buf_printf(b,
               "# HELP snpd_db_groups_total Groups of queries committed in one transaction.\n"
               "# TYPE snpd_db_groups_total counter\nsnpd_db_groups_total %llu\n"
               "# HELP snpd_db_grouped_queries_total Queries answered from those groups.\n"
               "# TYPE snpd_db_grouped_queries_total counter\nsnpd_db_grouped_queries_total %llu\n"
               "# HELP snpd_db_group_retries_total Groups rolled back and run query by query.\n"
               "# TYPE snpd_db_group_retries_total counter\nsnpd_db_group_retries_total %llu\n",
               (unsigned long long)st->groups, (unsigned long long)st->grouped,
               (unsigned long long)st->group_retries);
    buf_printf(b,
               "# HELP snpd_db_statements_prepared_total Statements prepared on the pool's "
               "sessions (once per session and query).\n"
               "# TYPE snpd_db_statements_prepared_total counter\n"
               "snpd_db_statements_prepared_total %llu\n",
               (unsigned long long)st->prepared);
    buf_printf(b, "# HELP snpd_db_query_seconds Database round-trip latency.\n"
                  "# TYPE snpd_db_query_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int i = 0; i < DB_LATENCY_BUCKETS; i++) {
        cumulative += st->latency_count[i];
        buf_printf(b, "snpd_db_query_seconds_bucket{le=\"%g\"} %llu\n",
                   db_latency_bounds_us[i] / 1e6, (unsigned long long)cumulative);
    }
    cumulative += st->latency_count[DB_LATENCY_BUCKETS];
    buf_printf(b, "snpd_db_query_seconds_bucket{le=\"+Inf\"} %llu\n",
               (unsigned long long)cumulative);
    buf_printf(b, "snpd_db_query_seconds_sum %.6f\nsnpd_db_query_seconds_count %llu\n",
               st->latency_sum_s, (unsigned long long)cumulative);
    buf_printf(b,
               "# HELP snpd_loop_lag_seconds Event-loop lag measured by a %d ms timer.\n"
               "# TYPE snpd_loop_lag_seconds gauge\nsnpd_loop_lag_seconds %.6f\n"
               "# HELP snpd_loop_lag_max_seconds Largest loop lag seen since start.\n"
               "# TYPE snpd_loop_lag_max_seconds gauge\nsnpd_loop_lag_max_seconds %.6f\n",
               TICK_MS, app->lag_last_ms / 1000.0, app->lag_max_ms / 1000.0);
}

/* --- shutdown --------------------------------------------------------------------- */

static void on_db_closed(struct db *db)
{
    struct app *app = container_of(db, struct app, db);
    log_info("app", "database connections closed");
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->tick, NULL);
}

/* Called every tick while draining or closing: advances the shutdown. */
static void app_shutdown_step(struct app *app)
{
    uint64_t now = uv_now(app->loop);
    if (app->state == APP_DRAINING) {
        bool busy =
            app->server.pending > 0 || app->dispatch.inflight > 0 || db_in_flight(&app->db) > 0;
        if (busy && now < app->drain_deadline_ms)
            return;
        if (busy)
            log_warn("app", "%d requests still in flight after the grace period",
                     app->server.pending);
        app_set_state(app, APP_CLOSING);
        if (app->migrating)
            migrate_cancel(&app->migrate);
        server_destroy(&app->server);
        return;
    }
    if (app->state != APP_CLOSING)
        return;
    if (app->server.context) {
        /* lws has closed its handles: finish its teardown (see handles.h). */
        if (handle_count_foreign(app->loop) == 0)
            server_destroy(&app->server);
        return;
    }
    bool outbox_open = app->outbox_ready && app->outbox.state != OUTBOX_CLOSED;
    bool sender_open = app->sender_ready && app->sender.state != SENDER_CLOSED;
    if (!app->migrating && !app->loading && !app->db.closing && !outbox_open && !sender_open) {
        dispatch_close(&app->dispatch);
        api_free(&app->api);
        server_free(&app->server);
        db_close(&app->db, on_db_closed);
    }
}

void app_stop(struct app *app)
{
    if (app->state == APP_DRAINING || app->state == APP_CLOSING)
        return;
    log_info("app", "shutting down");
    app_set_state(app, APP_DRAINING);
    server_drain(&app->server);
    dispatch_stop(&app->dispatch);
    if (app->outbox_ready)
        outbox_close(&app->outbox, NULL);
    if (app->sender_ready)
        sender_close(&app->sender, NULL);
    app->drain_deadline_ms = uv_now(app->loop) + (uint64_t)app->cfg->shutdown_grace_ms;
    app_shutdown_step(app);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = signum == SIGINT ? container_of(h, struct app, sigint)
                                       : container_of(h, struct app, sigterm);
    log_info("app", "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    app_stop(app);
}

static void on_loaded(struct dispatch *d, bool ok);

static void on_tick(uv_timer_t *t)
{
    struct app *app = container_of(t, struct app, tick);
    uint64_t now = uv_now(app->loop);
    double lag = now > app->tick_expected_ms ? (double)(now - app->tick_expected_ms) : 0.0;
    app->lag_last_ms = lag;
    if (lag > app->lag_max_ms)
        app->lag_max_ms = lag;
    app->tick_expected_ms = now + TICK_MS;
    if (app->state == APP_DRAINING || app->state == APP_CLOSING)
        app_shutdown_step(app);
    if (app->state == APP_STARTING && app->load_retry_ms && now >= app->load_retry_ms &&
        !app->loading) {
        app->load_retry_ms = 0;
        app->loading = true;
        dispatch_load(&app->dispatch, on_loaded);
    }
    if (app->state != APP_DRAINING && app->state != APP_CLOSING && now >= app->sweep_due_ms) {
        app->sweep_due_ms = now + SWEEP_EVERY_MS;
        api_sweep(&app->api, app->cfg->ws_idle_timeout_s);
    }
    if (app->state == APP_RUNNING && now >= app->protection_due_ms && db_is_up(&app->db)) {
        app->protection_due_ms = now + PROTECTION_EVERY_MS;
        protection_run(&app->db, CONFIG_AUDIT_RETENTION_MONTHS, app->cfg->outbox_retention_days,
                       app->cfg->message_dead_after_s, NULL, NULL);
    }
}

/* --- start-up --------------------------------------------------------------------- */

/* Changes announced on snp_change go to the dispatcher; a booking's (made,
 * cancelled or its outcome reported, "k":"b") may also have written an
 * appointment push, which is sent at once rather than at the next poll.
 * (Messages wait for the sender's poll: a second late is nothing to a
 * summary, and a claim per booking change would load the hot path.) */
static void app_on_db_notify(struct db *db, const char *channel, const char *payload, int be_pid)
{
    static const char booking[] = "{\"k\" : \"b\"";
    struct app *app = container_of(db, struct app, db);
    dispatch_on_db_notify(db, channel, payload, be_pid);
    if (app->outbox_ready && strncmp(payload, booking, sizeof(booking) - 1) == 0)
        outbox_kick(&app->outbox);
}

static void on_loaded(struct dispatch *d, bool ok)
{
    struct app *app = container_of(d, struct app, dispatch);
    app->loading = false;
    if (app->state == APP_CLOSING || app->state == APP_DRAINING) {
        app_shutdown_step(app);
        return;
    }
    if (!ok) {
        /* The database went away after the migrations (or refused one more
         * connection): not ready, and tried again with a growing wait,
         * rather than an exit that loses the port and the clients. */
        app->load_backoff_ms = app->load_backoff_ms ? app->load_backoff_ms * 2 : LOAD_RETRY_MS;
        if (app->load_backoff_ms > LOAD_RETRY_MAX_MS)
            app->load_backoff_ms = LOAD_RETRY_MAX_MS;
        log_error("app", "cannot load the dispatch state; trying again in %llu ms",
                  (unsigned long long)app->load_backoff_ms);
        app->load_retry_ms = uv_now(app->loop) + app->load_backoff_ms;
        return;
    }
    app->load_retry_ms = 0;
    app_set_state(app, APP_RUNNING);
    app->protection_due_ms = uv_now(app->loop); /* at once, then hourly */
    if (app->outbox_ready)
        outbox_start(&app->outbox);
    if (app->sender_ready)
        sender_start(&app->sender);
    log_info("app", "ready");
}

static void on_migrated(struct migrate *m, int result, const char *message)
{
    struct app *app = container_of(m, struct app, migrate);
    app->migrating = false;
    if (app->state == APP_CLOSING || app->state == APP_DRAINING) {
        app_shutdown_step(app);
        return;
    }
    if (result != MIGRATE_OK) {
        log_error("app", "cannot start: %s", message);
        app->exit_code = 1;
        app_stop(app);
        return;
    }
    log_info("migrate", "%s", message);
    app->migrated = true;
    app->loading = true;
    dispatch_load(&app->dispatch, on_loaded);
}

int app_run(struct app *app, uv_loop_t *loop, const struct config *cfg)
{
    memset(app, 0, sizeof(*app));
    /* libcurl's global state (the appointment push), before any thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("app", "cannot initialise libcurl");
        return 1;
    }
    app->loop = loop;
    app->cfg = cfg;
    app->state = APP_STARTING;

    uv_signal_init(loop, &app->sigint);
    uv_signal_init(loop, &app->sigterm);
    handle_mark_own((uv_handle_t *)&app->sigint);
    handle_mark_own((uv_handle_t *)&app->sigterm);
    uv_signal_start(&app->sigint, on_signal, SIGINT);
    uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    uv_timer_init(loop, &app->tick);
    handle_mark_own((uv_handle_t *)&app->tick);
    app->tick_expected_ms = uv_now(loop) + TICK_MS;
    uv_timer_start(&app->tick, on_tick, TICK_MS, TICK_MS);

    struct server_hooks hooks = {
        .ctx = app,
        .is_ready = app_is_ready,
        .write_metrics = app_write_metrics,
        .on_api = app_on_api,
        .on_fhir = app_on_fhir,
        .on_ws_open = app_on_ws_open,
        .on_ws_message = app_on_ws_message,
        .on_ws_free = app_on_ws_free,
    };
    if (db_init(&app->db, loop, cfg->database, cfg->db_connections) != 0) {
        log_error("app", "cannot create the database pool");
        uv_close((uv_handle_t *)&app->sigint, NULL);
        uv_close((uv_handle_t *)&app->sigterm, NULL);
        uv_close((uv_handle_t *)&app->tick, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        curl_global_cleanup();
        return 1;
    }
    app->db.group_max = cfg->db_group_max;
    app->outbox_ready = outbox_init(&app->outbox, loop, &app->db, cfg) == 0;
    if (!app->outbox_ready)
        log_error("app", "cannot prepare the appointment push: nothing will be pushed");
    app->sender_ready = sender_init(&app->sender, loop, &app->db, cfg) == 0;
    if (!app->sender_ready)
        log_error("app", "cannot prepare the message sender: no message will be sent");
    struct dispatch_hooks dhooks = {
        .ctx = &app->api, .push = api_push, .wants = api_wants, .token_revoked = api_token_revoked};
    dispatch_init(&app->dispatch, loop, &app->db, &dhooks);
    app->dispatch.load_batch = (size_t)cfg->load_batch;
    /* Other snpd processes on the same database announce their changes. */
    app->db.data = &app->dispatch;
    db_listen(&app->db, "LISTEN snp_change", app_on_db_notify);
    app->db.on_listening = dispatch_on_db_listening;
    bool ok = api_init(&app->api, &app->dispatch, &app->db, cfg) == 0;
    app->api.server = &app->server;
    if (!ok || server_start(&app->server, loop, cfg, &hooks) != 0) {
        /* Everything made so far is torn down in the usual order. */
        app->exit_code = 1;
        app_stop(app);
        uv_run(loop, UV_RUN_DEFAULT);
        curl_global_cleanup();
        return 1;
    }
    if (migrate_start(&app->migrate, loop, cfg->database, snp_migrations, snp_migration_count,
                      snp_functions, snp_function_count, 0, on_migrated) == 0) {
        app->migrating = true;
    } else {
        log_error("app", "cannot start migrations");
        app->exit_code = 1;
        app_stop(app);
    }

    uv_run(loop, UV_RUN_DEFAULT);
    curl_global_cleanup();
    log_info("app", "stopped");
    return app->exit_code;
}
