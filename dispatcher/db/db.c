#include "dispatcher/db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/idmap.h"
#include "base/log.h"
#include "dispatcher/net/handles.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

const uint32_t db_latency_bounds_us[DB_LATENCY_BUCKETS] = {
    250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

#define BACKOFF_FIRST_MS  100
#define GROUP_MAX_DEFAULT 16
#define BACKOFF_CAP_MS    5000

/* A connection's life.  Transitions happen only in conn_set_state(). */
enum db_conn_state {
    CONN_DOWN,       /* no PGconn; the retry timer will start a connection attempt */
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_IDLE,       /* connected, nothing in flight; watching for a broken socket */
    CONN_BUSY,       /* one query, or one group of grouped queries, in flight
                        (sending, flushing or reading) */
    CONN_CLOSED,     /* db_close finished with it; its handles are closing */
};

static const char *const conn_state_names[] = {"down", "connecting", "idle", "busy", "closed"};

/* The poll handle lives in its own allocation because libpq may hand us a new
 * socket during PQconnectPoll: the old handle is closed (and freed in its
 * close callback) while a new one watches the new descriptor. */
struct db_poll {
    uv_poll_t handle;
    struct db_conn *conn;
};

struct db_conn {
    struct db *db;
    int index;
    enum db_conn_state state;
    PGconn *pg;
    struct db_poll *poll;
    int poll_fd;
    int poll_events;
    uv_timer_t retry_timer;
    unsigned failures;        /* consecutive failed attempts, for the backoff */
    struct db_query *current; /* in flight: one query, or a group linked by next */
    PGresult *kept;           /* a lone query's result, handed to its callback */
    int group;                /* queries in the group in flight; 0 for a lone query */
    struct db_query *reading; /* the query of the group whose results arrive next */
    bool group_failed;        /* an error in the group: it is rolled back */
    bool flushing;
    int backend_pid; /* the server process serving this connection */
    /* The statements prepared on this session ("Prepared statements" below):
     * the address of a query's text → its number, named "snp<number>".
     * Emptied when the session is lost. */
    struct idmap prepared;
    uintptr_t statements; /* the last number given */
    bool preparing;       /* the lone query in flight waits for its Prepare */
};

static struct db_query *query_new(const char *sql, int nparams, const char *const *params,
                                  db_result_cb cb, void *arg);
static void conn_listen(struct db_conn *c);

struct db_query {
    struct db_query *next;
    const char *sql;
    bool script;
    bool grouped;  /* may share its transaction (db_query_grouped) */
    bool binary;   /* results in binary format (db_query_binary) */
    bool prepare_first; /* in a pipeline: its statement's Prepare comes first */
    bool by_name;       /* last sent by its prepared statement's name */
    bool sent_again;    /* sent again after its statement went stale (once) */
    PGresult *res; /* its result while the rest of its group arrives */
    int nparams;
    char **params;
    db_result_cb cb;
    void *arg;
    uint64_t started_ns;
};

static void conn_start_connect(struct db_conn *c);
static void conn_lost(struct db_conn *c, const char *why);
static void conn_dispatch(struct db_conn *c);
static void conn_flush_sent(struct db_conn *c);
static void conn_send_group(struct db_conn *c, struct db_query *first);
static void conn_deliver_notifies(struct db_conn *c);
static void db_maybe_finish_close(struct db *db);

/* --- small helpers ---------------------------------------------------------------- */

const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* --- prepared statements ----------------------------------------------------------- *
 *
 * A query with parameters runs as a statement prepared on its session: the
 * first time a connection sends its text, a Prepare (named "snp<n>") goes
 * first, and afterwards only its name and parameters, so PostgreSQL neither
 * parses nor analyses it again (and may keep its plan).  Query texts are
 * static (db_query), so their address names them.  A lone query's Prepare is
 * one more round trip, once per session; in a group's pipeline it goes just
 * before the query, and the queries behind it in the same pipeline use it.
 * A statement is counted as prepared from the moment its Prepare is sent,
 * and forgotten if that Prepare fails (an error in its text, or a pipeline
 * aborted before it, in which case the queries using it are aborted too).
 * A Prepare is not undone when its transaction rolls back.  A statement
 * that went stale — a migration replaced a function or table it reads so
 * that its result changed (0A000, "cached plan must not change result
 * type"), or it no longer exists (26000) — refuses before running anything:
 * the query is then sent again, once, prepared afresh (a rolling upgrade,
 * where the old process runs on beside the new schema for a while, keeps
 * working as it did with unnamed statements).  Scripts and parameterless
 * queries (the start-up's loads, LISTEN, BEGIN) are sent as they are. */

static bool query_prepares(const struct db_query *q)
{
    return !q->script && q->nparams > 0;
}

static int64_t statement_key(const char *sql)
{
    return (int64_t)(intptr_t)sql;
}

static void statement_name(char *out, size_t size, uintptr_t number)
{
    snprintf(out, size, "snp%lu", (unsigned long)number);
}

/* The number of `sql`'s statement on the session, 0 when not prepared. */
static uintptr_t statement_number(const struct db_conn *c, const char *sql)
{
    return (uintptr_t)idmap_get(&c->prepared, statement_key(sql));
}

static void statement_forget(struct db_conn *c, const char *sql)
{
    idmap_del(&c->prepared, statement_key(sql));
}

/* Sends the Prepare of `q`'s statement, counted as prepared from now on.
 * Returns its number; 0 when memory is short (`q` is then sent unprepared)
 * or libpq refused to send (*failed). */
static uintptr_t conn_send_prepare(struct db_conn *c, const struct db_query *q, bool *failed)
{
    uintptr_t number = c->statements + 1;
    *failed = false;
    if (!idmap_put(&c->prepared, statement_key(q->sql), (void *)number))
        return 0;
    c->statements = number;
    char name[32];
    statement_name(name, sizeof(name), number);
    if (!PQsendPrepare(c->pg, name, q->sql, q->nparams, NULL)) {
        *failed = true;
        return 0;
    }
    c->db->stats.prepared++;
    return number;
}

/* Sends `q`: by its statement's name when it is prepared (number not 0),
 * else as it is. */
static int conn_send_query(struct db_conn *c, struct db_query *q, uintptr_t number)
{
    int format = q->binary ? 1 : 0;
    q->by_name = number != 0;
    if (number == 0)
        return PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, (const char *const *)q->params,
                                 NULL, NULL, format);
    char name[32];
    statement_name(name, sizeof(name), number);
    return PQsendQueryPrepared(c->pg, name, q->nparams, (const char *const *)q->params, NULL, NULL,
                               format);
}

void db_listen(struct db *db, const char *listen_sql, db_notify_cb on_notify)
{
    db->listen_sql = listen_sql;
    db->on_notify = on_notify;
    struct db_conn *c = &db->conns[0];
    if (c->state == CONN_IDLE || c->state == CONN_BUSY) {
        conn_listen(c);
        conn_dispatch(c);
    }
}

bool db_own_backend(const struct db *db, int pid)
{
    for (int i = 0; db->conns && i < db->nconns; i++)
        if (db->conns[i].backend_pid == pid && db->conns[i].state != CONN_DOWN)
            return true;
    return false;
}

bool db_is_up(const struct db *db)
{
    return db->up > 0;
}

int db_in_flight(const struct db *db)
{
    int n = db->queue_len;
    for (int i = 0; db->conns && i < db->nconns; i++)
        for (const struct db_query *q = db->conns[i].current; q; q = q->next)
            n++;
    return n;
}

static void query_free(struct db_query *q)
{
    PQclear(q->res);
    free(q->params);
    free(q);
}

static void stats_record(struct db *db, struct db_query *q, enum db_status st)
{
    db->stats.queries++;
    if (st == DB_QUERY_ERROR)
        db->stats.errors++;
    if (st == DB_UNAVAILABLE)
        db->stats.unavailable++;
    if (st != DB_OK && st != DB_QUERY_ERROR)
        return;
    uint64_t us = (uv_hrtime() - q->started_ns) / 1000;
    int i = 0;
    while (i < DB_LATENCY_BUCKETS && us > db_latency_bounds_us[i])
        i++;
    db->stats.latency_count[i]++;
    db->stats.latency_sum_s += (double)us / 1e6;
}

static void query_complete(struct db *db, struct db_query *q, enum db_status st, const PGresult *r)
{
    stats_record(db, q, st);
    q->cb(q->arg, st, r);
    query_free(q);
}

/* Completes every query of the list linked by `next`, without a result. */
static void complete_list(struct db *db, struct db_query *q, enum db_status st)
{
    while (q) {
        struct db_query *next = q->next;
        query_complete(db, q, st, NULL);
        q = next;
    }
}

static void conn_set_state(struct db_conn *c, enum db_conn_state next)
{
    struct db *db = c->db;
    bool was_up = c->state == CONN_IDLE || c->state == CONN_BUSY;
    bool is_up = next == CONN_IDLE || next == CONN_BUSY;
    log_debug("db", "connection %d: %s -> %s", c->index, conn_state_names[c->state],
              conn_state_names[next]);
    c->state = next;
    if (was_up == is_up)
        return;
    int before = db->up;
    db->up += is_up ? 1 : -1;
    if (db->on_ready_change && (before == 0) != (db->up == 0))
        db->on_ready_change(db, db->up > 0);
}

/* --- poll handle management ------------------------------------------------------- */

static void on_poll_closed(uv_handle_t *h)
{
    struct db_poll *p = container_of((uv_poll_t *)h, struct db_poll, handle);
    struct db *db = p->conn->db;
    free(p);
    db->open_handles--;
    db_maybe_finish_close(db);
}

static void conn_unwatch(struct db_conn *c)
{
    if (!c->poll)
        return;
    uv_poll_stop(&c->poll->handle);
    uv_close((uv_handle_t *)&c->poll->handle, on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
    c->poll_events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches the connection's current socket for `events`, replacing the poll
 * handle when libpq has switched sockets. */
static int conn_watch(struct db_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -EBADF;
    if (c->poll && c->poll_fd != fd)
        conn_unwatch(c);
    if (!c->poll) {
        struct db_poll *p = calloc(1, sizeof(*p));
        if (!p)
            return -ENOMEM;
        int rc = uv_poll_init(c->db->loop, &p->handle, fd);
        if (rc != 0) {
            free(p);
            return rc;
        }
        p->conn = c;
        handle_mark_own((uv_handle_t *)&p->handle);
        c->db->open_handles++;
        c->poll = p;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (c->poll_events != events) {
        int rc = uv_poll_start(&c->poll->handle, events, on_poll);
        if (rc != 0)
            return rc;
        c->poll_events = events;
    }
    return 0;
}

/* --- connecting ------------------------------------------------------------------- */

static void on_retry_timer(uv_timer_t *t)
{
    struct db_conn *c = container_of(t, struct db_conn, retry_timer);
    conn_start_connect(c);
}

static void conn_schedule_retry(struct db_conn *c)
{
    if (c->db->closing) {
        conn_set_state(c, CONN_CLOSED);
        db_maybe_finish_close(c->db);
        return;
    }
    /* Full jitter: a random delay up to the capped exponential bound, so that
     * several snpd processes do not hammer a recovering server in step. */
    unsigned shift = c->failures < 6 ? c->failures : 6;
    uint64_t bound = (uint64_t)BACKOFF_FIRST_MS << shift;
    if (bound > BACKOFF_CAP_MS)
        bound = BACKOFF_CAP_MS;
    uint64_t delay = bound / 2 + (uint64_t)rand() % (bound / 2 + 1);
    c->failures++;
    uv_timer_start(&c->retry_timer, on_retry_timer, delay, 0);
}

static void on_listening(void *arg, enum db_status st, const PGresult *res)
{
    struct db_conn *c = arg;
    (void)res;
    if (st != DB_OK) {
        log_warn("db", "connection %d: cannot listen for changes", c->index);
        return;
    }
    log_debug("db", "connection %d: listening for changes", c->index);
    if (c->db->on_listening)
        c->db->on_listening(c->db);
}

/* Puts the LISTEN statement at the head of the queue, so that the first
 * connection subscribes before it serves anything else (again after every
 * reconnection). */
static void conn_listen(struct db_conn *c)
{
    struct db *db = c->db;
    struct db_query *q = query_new(db->listen_sql, 0, NULL, on_listening, c);
    if (!q)
        return;
    q->script = true;
    q->next = db->queue_head;
    db->queue_head = q;
    if (!db->queue_tail)
        db->queue_tail = q;
    db->queue_len++;
}

static void conn_connect_step(struct db_conn *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    int events = 0;
    switch (st) {
    case PGRES_POLLING_READING:
        events = UV_READABLE;
        break;
    case PGRES_POLLING_WRITING:
        events = UV_WRITABLE;
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->pg, 1) != 0) {
            conn_lost(c, "cannot switch to non-blocking mode");
            return;
        }
        if (c->failures > 0 || c->db->stats.reconnects > 0)
            log_info("db", "connection %d: connected", c->index);
        else
            log_debug("db", "connection %d: connected", c->index);
        c->failures = 0;
        if (conn_watch(c, UV_READABLE) != 0) {
            conn_lost(c, "cannot watch socket");
            return;
        }
        c->backend_pid = PQbackendPID(c->pg);
        conn_set_state(c, CONN_IDLE);
        if (c->index == 0 && c->db->listen_sql)
            conn_listen(c);
        conn_dispatch(c);
        return;
    case PGRES_POLLING_FAILED:
    default:
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    /* PQsocket may have changed during this poll step: re-read it. */
    if (conn_watch(c, events) != 0)
        conn_lost(c, "cannot watch socket");
}

/* Server notices ("relation already exists, skipping") are debug chatter. */
static void on_notice(void *arg, const char *message)
{
    struct db_conn *c = arg;
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", message);
    size_t n = strlen(copy);
    while (n > 0 && copy[n - 1] == '\n')
        copy[--n] = '\0';
    log_debug("db", "connection %d: %s", c->index, copy);
}

static void conn_start_connect(struct db_conn *c)
{
    /* Our defaults come first so that anything in the configured connection
     * string overrides them (expand_dbname expands it in place).
     * client_encoding: snpd reads and writes UTF-8 whatever PGCLIENTENCODING
     * says (the database itself is UTF8: migrate.c checks it). */
    const char *keys[] = {"application_name", "connect_timeout", "client_encoding",
                          "options",          "dbname",          NULL};
    const char *vals[] = {"snpd", "5", "UTF8", "-c statement_timeout=15000", c->db->conninfo, NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg) {
        log_error("db", "connection %d: out of memory", c->index);
        conn_schedule_retry(c);
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    conn_set_state(c, CONN_CONNECTING);
    conn_connect_step(c);
}

/* The one place where a connection is torn down after a failure: whatever was
 * in flight fails with DB_UNAVAILABLE, and a reconnection is scheduled. */
static void conn_lost(struct db_conn *c, const char *why)
{
    struct db *db = c->db;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "connection lost");
    size_t n = strlen(reason);
    while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
        reason[--n] = '\0';
    bool was_up = c->state == CONN_IDLE || c->state == CONN_BUSY;
    if (was_up || c->failures == 0)
        log_warn("db", "connection %d: %s", c->index, reason);
    else
        log_debug("db", "connection %d: still failing: %s", c->index, reason);
    if (was_up)
        db->stats.reconnects++;

    conn_unwatch(c);
    if (c->kept) {
        PQclear(c->kept);
        c->kept = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    struct db_query *q = c->current;
    c->current = NULL;
    c->reading = NULL;
    c->group = 0;
    c->group_failed = false;
    c->flushing = false;
    c->preparing = false;
    idmap_free(&c->prepared); /* the session and its statements are gone */
    conn_set_state(c, CONN_DOWN);
    complete_list(db, q, DB_UNAVAILABLE);

    /* With the whole pool down, queued queries would only wait for a server
     * that may be gone for long: fail them now so callers can say "retry". */
    if (db->up == 0) {
        while (db->queue_head) {
            struct db_query *w = db->queue_head;
            db->queue_head = w->next;
            db->queue_len--;
            query_complete(db, w, DB_UNAVAILABLE, NULL);
        }
        db->queue_tail = NULL;
    }
    conn_schedule_retry(c);
}

/* --- queries ---------------------------------------------------------------------- */

static void conn_close_now(struct db_conn *c)
{
    conn_unwatch(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    idmap_free(&c->prepared);
    conn_set_state(c, CONN_CLOSED);
}

/* Sends the next queued query if the connection is idle. */
static void conn_dispatch(struct db_conn *c)
{
    struct db *db = c->db;
    if (c->state != CONN_IDLE)
        return;
    struct db_query *q = db->queue_head;
    if (!q) {
        if (db->closing) {
            conn_close_now(c);
            db_maybe_finish_close(db);
        }
        return;
    }
    db->queue_head = q->next;
    if (!db->queue_head)
        db->queue_tail = NULL;
    db->queue_len--;
    q->next = NULL;
    if (q->grouped && db->queue_head && db->queue_head->grouped && db->group_max > 1) {
        conn_send_group(c, q);
        return;
    }

    int ok;
    uintptr_t number = query_prepares(q) ? statement_number(c, q->sql) : 0;
    if (q->script) {
        ok = PQsendQuery(c->pg, q->sql);
    } else if (query_prepares(q) && number == 0) {
        /* Its Prepare first; conn_read sends the query once it has run. */
        bool failed;
        c->preparing = conn_send_prepare(c, q, &failed) != 0;
        ok = !failed && (c->preparing || conn_send_query(c, q, 0));
    } else {
        ok = conn_send_query(c, q, number);
    }
    c->current = q;
    if (!ok) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_set_state(c, CONN_BUSY);
    conn_flush_sent(c);
}

/* Flushes what was just sent and watches for the answer (and for the
 * socket to drain, when libpq could not send everything yet). */
static void conn_flush_sent(struct db_conn *c)
{
    int f = PQflush(c->pg);
    if (f < 0) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = f == 1;
    if (conn_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0)) != 0)
        conn_lost(c, "cannot watch socket");
}

/* Sends `first` and the grouped queries queued right behind it (up to
 * group_max in all) in one pipeline ending with one Sync: one transaction,
 * one commit. */
static void conn_send_group(struct db_conn *c, struct db_query *first)
{
    struct db *db = c->db;
    struct db_query *last = first;
    int n = 1;
    while (n < db->group_max && db->queue_head && db->queue_head->grouped) {
        struct db_query *q = db->queue_head;
        db->queue_head = q->next;
        db->queue_len--;
        q->next = NULL;
        last->next = q;
        last = q;
        n++;
    }
    if (!db->queue_head)
        db->queue_tail = NULL;
    c->current = first;
    c->reading = first;
    c->group = n;
    c->group_failed = false;
    if (!PQenterPipelineMode(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    for (struct db_query *q = first; q; q = q->next) {
        uintptr_t number = query_prepares(q) ? statement_number(c, q->sql) : 0;
        bool failed = false;
        if (query_prepares(q) && number == 0) {
            number = conn_send_prepare(c, q, &failed);
            q->prepare_first = number != 0;
        }
        if (failed || !conn_send_query(c, q, number)) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (!PQpipelineSync(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_set_state(c, CONN_BUSY);
    conn_flush_sent(c);
}

/* Puts a rolled-back group back at the head of the queue, in its order,
 * each query to be sent alone. */
static void requeue_alone(struct db *db, struct db_query *list)
{
    struct db_query *last = NULL;
    int n = 0;
    for (struct db_query *q = list; q; q = q->next) {
        PQclear(q->res);
        q->res = NULL;
        q->grouped = false;
        q->prepare_first = false;
        last = q;
        n++;
    }
    if (!last)
        return;
    last->next = db->queue_head;
    db->queue_head = list;
    if (!db->queue_tail)
        db->queue_tail = last;
    db->queue_len += n;
}

/* The group's Sync has been answered: its transaction committed unless
 * something in it failed.  Answers every query of a committed group, in
 * order; sends a failed one's queries again, one by one. */
static void conn_finish_group(struct db_conn *c)
{
    struct db *db = c->db;
    struct db_query *list = c->current;
    bool failed = c->group_failed;
    int n = c->group;
    c->current = NULL;
    c->reading = NULL;
    c->group = 0;
    c->group_failed = false;
    conn_set_state(c, CONN_IDLE);
    /* A connection that cannot leave pipeline mode is dropped before any
     * callback could send on it; the group's answers stand. */
    if (PQexitPipelineMode(c->pg) != 1 || conn_watch(c, UV_READABLE) != 0)
        conn_lost(c, "cannot leave pipeline mode");
    if (failed && db->up == 0) {
        /* Nothing committed, and no connection left to run them again. */
        complete_list(db, list, DB_UNAVAILABLE);
    } else if (failed) {
        db->stats.group_retries++;
        log_debug("db", "connection %d: a group of %d was rolled back; each runs alone", c->index,
                  n);
        requeue_alone(db, list);
    } else {
        db->stats.groups++;
        db->stats.grouped += (uint64_t)n;
        while (list) {
            struct db_query *next = list->next;
            PGresult *res = list->res;
            list->res = NULL;
            query_complete(db, list, DB_OK, res);
            PQclear(res);
            list = next;
        }
    }
    conn_dispatch(c); /* the next query, or the close db_close waits for */
    for (int i = 0; i < db->nconns && db->queue_head; i++)
        conn_dispatch(&db->conns[i]);
}

/* One step of reading a group's answers: a result of the query being read,
 * the end of its results (NULL), or the Sync.  Returns true when the group
 * is over. */
static bool conn_read_group(struct db_conn *c, PGresult *r)
{
    struct db_query *q = c->reading;
    if (!r) {
        if (q && q->prepare_first)
            q->prepare_first = false; /* its Prepare is done: its own results come next */
        else if (q)
            c->reading = q->next;
        return false;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        conn_deliver_notifies(c); /* those of the commit, before its answers */
        conn_finish_group(c);
        return true;
    }
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        c->group_failed = true; /* an error, the queries it aborted, a failed commit */
    if (q && q->prepare_first) {
        if (st != PGRES_COMMAND_OK)
            statement_forget(c, q->sql);
        PQclear(r);
        return false;
    }
    if (q && !q->res)
        q->res = r;
    else
        PQclear(r);
    return false;
}

/* Hands the notifications libpq has parsed to the owner (or drops them) so
 * that they never pile up.  They arrive on the listening connection only. */
static void conn_deliver_notifies(struct db_conn *c)
{
    struct db *db = c->db;
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (db->on_notify)
            db->on_notify(db, n->relname, n->extra, n->be_pid);
        PQfreemem(n);
    }
}

/* When the lone query `q`, sent by a statement's name, failed because that
 * statement went stale ("Prepared statements" above), forgets the statement,
 * puts `q` back at the head of the queue to be prepared afresh, and returns
 * true; only once per query. */
static bool conn_statement_stale(struct db_conn *c, struct db_query *q, const PGresult *res)
{
    const char *state = db_sqlstate(res);
    if (!q->by_name || q->sent_again ||
        (strcmp(state, "0A000") != 0 && strcmp(state, "26000") != 0))
        return false;
    log_info("db", "connection %d: a prepared statement went stale (%s); preparing it again",
             c->index, state);
    statement_forget(c, q->sql);
    q->sent_again = true;
    q->next = NULL;
    requeue_alone(c->db, q);
    return true;
}

/* The Prepare of the lone query in flight has answered (its result in
 * c->kept): sends the query by the statement's name and returns true, or,
 * when the Prepare failed, forgets it and returns false, leaving its error
 * for the query's answer. */
static bool conn_prepared(struct db_conn *c)
{
    struct db_query *q = c->current;
    c->preparing = false;
    if (!c->kept || PQresultStatus(c->kept) != PGRES_COMMAND_OK) {
        statement_forget(c, q->sql);
        return false;
    }
    PQclear(c->kept);
    c->kept = NULL;
    if (!conn_send_query(c, q, statement_number(c, q->sql))) {
        conn_lost(c, PQerrorMessage(c->pg));
        return true;
    }
    conn_flush_sent(c);
    return true;
}

/* Reads what the server sent; completes the current query when its last
 * result has arrived. */
static void conn_read(struct db_conn *c)
{
    struct db *db = c->db;
    if (!PQconsumeInput(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_deliver_notifies(c);

    if (c->state != CONN_BUSY) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_lost(c, "server closed the connection");
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (c->group) {
            if (conn_read_group(c, r))
                return;
            continue;
        }
        if (!r) {
            /* libpq parses messages in PQisBusy and PQgetResult, not in
             * PQconsumeInput: a notification that came with this query's
             * results (the listening connection also runs queries, and hears
             * its own transactions) is only queued now.  Left there, it would
             * wait for the next bytes on this socket. */
            conn_deliver_notifies(c);
            if (c->preparing && conn_prepared(c))
                return;
            struct db_query *q = c->current;
            PGresult *kept = c->kept;
            c->current = NULL;
            c->kept = NULL;
            conn_set_state(c, CONN_IDLE);
            ExecStatusType st = kept ? PQresultStatus(kept) : PGRES_FATAL_ERROR;
            bool failed = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
            if (failed && conn_statement_stale(c, q, kept))
                q = NULL; /* queued again */
            if (conn_watch(c, UV_READABLE) != 0) {
                if (q)
                    query_complete(db, q, failed ? DB_QUERY_ERROR : DB_OK, kept);
                PQclear(kept);
                conn_lost(c, "cannot watch socket");
                return;
            }
            if (q)
                query_complete(db, q, failed ? DB_QUERY_ERROR : DB_OK, kept);
            PQclear(kept);
            conn_dispatch(c);
            return;
        }
        /* Keep the first error, otherwise the last result: for a script
         * that is the statement that failed or the final one. */
        if (c->kept && (PQresultStatus(c->kept) == PGRES_FATAL_ERROR ||
                        PQresultStatus(c->kept) == PGRES_BAD_RESPONSE)) {
            PQclear(r);
            continue;
        }
        PQclear(c->kept);
        c->kept = r;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct db_poll *p = container_of(h, struct db_poll, handle);
    struct db_conn *c = p->conn;
    if (c->poll != p)
        return; /* a stale handle being closed */
    if (status < 0) {
        conn_lost(c, uv_strerror(status));
        return;
    }
    switch (c->state) {
    case CONN_CONNECTING:
        conn_connect_step(c);
        return;
    case CONN_BUSY:
        if ((events & UV_WRITABLE) && c->flushing) {
            int f = PQflush(c->pg);
            if (f < 0) {
                conn_lost(c, PQerrorMessage(c->pg));
                return;
            }
            c->flushing = f == 1;
            if (!c->flushing && conn_watch(c, UV_READABLE) != 0) {
                conn_lost(c, "cannot watch socket");
                return;
            }
        }
        if (events & UV_READABLE)
            conn_read(c);
        return;
    case CONN_IDLE:
        conn_read(c);
        return;
    case CONN_DOWN:
    case CONN_CLOSED:
        return;
    }
}

static struct db_query *query_new(const char *sql, int nparams, const char *const *params,
                                  db_result_cb cb, void *arg)
{
    size_t bytes = 0;
    for (int i = 0; i < nparams; i++)
        bytes += params[i] ? strlen(params[i]) + 1 : 0;
    struct db_query *q = calloc(1, sizeof(*q));
    char **copy = nparams ? malloc(sizeof(char *) * (size_t)nparams + bytes) : NULL;
    if (!q || (nparams && !copy)) {
        free(q);
        free(copy);
        return NULL;
    }
    char *pool = (char *)(copy + nparams);
    for (int i = 0; i < nparams; i++) {
        if (!params[i]) {
            copy[i] = NULL;
            continue;
        }
        size_t n = strlen(params[i]) + 1;
        memcpy(pool, params[i], n);
        copy[i] = pool;
        pool += n;
    }
    q->sql = sql;
    q->nparams = nparams;
    q->params = copy;
    q->cb = cb;
    q->arg = arg;
    q->started_ns = uv_hrtime();
    return q;
}

static void db_enqueue(struct db *db, struct db_query *q)
{
    if (db->closing) {
        query_complete(db, q, DB_SHUTTING_DOWN, NULL);
        return;
    }
    if (db->up == 0 || db->queue_len >= db->max_queue) {
        query_complete(db, q, DB_UNAVAILABLE, NULL);
        return;
    }
    if (db->queue_tail)
        db->queue_tail->next = q;
    else
        db->queue_head = q;
    db->queue_tail = q;
    db->queue_len++;
    for (int i = 0; i < db->nconns && db->queue_head; i++)
        conn_dispatch(&db->conns[i]);
}

/* Queues one statement with its parameters: grouped (db_query_grouped),
 * with binary results (db_query_binary), or neither (db_query). */
static void query_enqueue(struct db *db, const char *sql, int nparams, const char *const *params,
                          db_result_cb cb, void *arg, bool grouped, bool binary)
{
    struct db_query *q = query_new(sql, nparams, params, cb, arg);
    if (!q) {
        cb(arg, DB_UNAVAILABLE, NULL);
        return;
    }
    q->grouped = grouped;
    q->binary = binary;
    db_enqueue(db, q);
}

void db_query(struct db *db, const char *sql, int nparams, const char *const *params,
              db_result_cb cb, void *arg)
{
    query_enqueue(db, sql, nparams, params, cb, arg, false, false);
}

void db_query_grouped(struct db *db, const char *sql, int nparams, const char *const *params,
                      db_result_cb cb, void *arg)
{
    query_enqueue(db, sql, nparams, params, cb, arg, true, false);
}

void db_query_binary(struct db *db, const char *sql, int nparams, const char *const *params,
                     db_result_cb cb, void *arg)
{
    query_enqueue(db, sql, nparams, params, cb, arg, false, true);
}

void db_exec_script(struct db *db, const char *sql, db_result_cb cb, void *arg)
{
    struct db_query *q = query_new(sql, 0, NULL, cb, arg);
    if (!q) {
        cb(arg, DB_UNAVAILABLE, NULL);
        return;
    }
    q->script = true;
    db_enqueue(db, q);
}

/* --- lifecycle -------------------------------------------------------------------- */

int db_init(struct db *db, uv_loop_t *loop, const char *conninfo, int nconns)
{
    if (nconns < 1 || !conninfo)
        return -EINVAL;
    memset(db, 0, sizeof(*db));
    db->loop = loop;
    db->nconns = nconns;
    db->max_queue = 100000;
    db->group_max = GROUP_MAX_DEFAULT;
    db->conninfo = strdup(conninfo);
    db->conns = calloc((size_t)nconns, sizeof(*db->conns));
    if (!db->conninfo || !db->conns) {
        free(db->conninfo);
        free(db->conns);
        return -ENOMEM;
    }
    for (int i = 0; i < nconns; i++) {
        struct db_conn *c = &db->conns[i];
        c->db = db;
        c->index = i;
        c->poll_fd = -1;
        c->state = CONN_DOWN;
        uv_timer_init(loop, &c->retry_timer);
        handle_mark_own((uv_handle_t *)&c->retry_timer);
        db->open_handles++;
    }
    for (int i = 0; i < nconns; i++)
        conn_start_connect(&db->conns[i]);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct db_conn *c = container_of((uv_timer_t *)h, struct db_conn, retry_timer);
    struct db *db = c->db;
    db->open_handles--;
    db_maybe_finish_close(db);
}

/* Once every connection is closed, closes the timers; once every handle is
 * closed, frees the pool and tells the owner. */
static void db_maybe_finish_close(struct db *db)
{
    if (!db->closing)
        return;
    for (int i = 0; i < db->nconns; i++)
        if (db->conns[i].state != CONN_CLOSED)
            return;
    for (int i = 0; i < db->nconns; i++) {
        uv_handle_t *t = (uv_handle_t *)&db->conns[i].retry_timer;
        if (!uv_is_closing(t))
            uv_close(t, on_timer_closed);
    }
    if (db->open_handles > 0 || !db->conns)
        return;
    free(db->conns);
    db->conns = NULL;
    free(db->conninfo);
    db->conninfo = NULL;
    if (db->on_closed)
        db->on_closed(db);
}

void db_close(struct db *db, db_close_cb on_closed)
{
    if (db->closing)
        return;
    db->closing = true;
    db->on_closed = on_closed;
    for (int i = 0; i < db->nconns; i++) {
        struct db_conn *c = &db->conns[i];
        switch (c->state) {
        case CONN_DOWN:
            uv_timer_stop(&c->retry_timer);
            conn_set_state(c, CONN_CLOSED);
            break;
        case CONN_CONNECTING:
            conn_close_now(c);
            break;
        case CONN_IDLE:
            conn_dispatch(c); /* drains the queue, then closes */
            break;
        case CONN_BUSY: /* closes after its query and the queue */
        case CONN_CLOSED:
            break;
        }
    }
    /* Queued queries that no live connection will ever take. */
    if (db->up == 0) {
        while (db->queue_head) {
            struct db_query *w = db->queue_head;
            db->queue_head = w->next;
            db->queue_len--;
            query_complete(db, w, DB_SHUTTING_DOWN, NULL);
        }
        db->queue_tail = NULL;
    }
    db_maybe_finish_close(db);
}
