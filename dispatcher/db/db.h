/* Asynchronous PostgreSQL access on the libuv loop.
 *
 * A `struct db` is a small pool of non-blocking libpq connections sharing one
 * FIFO of queries.  Parameters are always bound, never interpolated.  A
 * query with parameters runs as a statement prepared once per session
 * (PQsendPrepare, then PQsendQueryPrepared: "Prepared statements" in db.c);
 * one without is sent with PQsendQueryParams, and migrations' scripts as
 * simple multi-statement queries.  Nothing here blocks: connecting, sending, flushing
 * and reading are all driven by uv_poll_t readiness.
 *
 * Grouped commits: queries queued with db_query_grouped() that wait behind
 * one another when a connection becomes free are sent together in one
 * pipeline (libpq's pipeline mode, one Sync), so that PostgreSQL runs them
 * in one transaction and flushes one commit for all of them.  Nothing waits
 * to form a group: a query that finds a free connection goes alone, so
 * groups form only when the pool is saturated, where one commit per query
 * is the bottleneck.  Every callback of a group runs after its commit.  If
 * any query of a group fails (an error, a deadlock between groups, a failed
 * commit), the whole transaction is rolled back and each query is run
 * again alone, in its original order, so that its answer is the one it
 * would have had without grouping.
 *
 * When every connection is down, new queries fail at once with
 * DB_UNAVAILABLE (callers answer "unavailable, retry"), and each connection
 * reconnects on its own with capped, jittered exponential backoff.
 *
 * Lifecycle, as in libuv: db_init → db_query* → db_close(on_closed).  The
 * struct is caller-allocated and must stay valid until on_closed runs.
 */
#ifndef SNP_DB_H
#define SNP_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

enum db_status {
    DB_OK = 0,        /* the query ran; `res` holds its (last) result */
    DB_QUERY_ERROR,   /* the server refused the query; `res` holds the error */
    DB_UNAVAILABLE,   /* no connection, or it broke while the query was in flight */
    DB_SHUTTING_DOWN, /* db_close was called before the query could be sent */
};

/* Called once per query on the loop thread.  `res` is owned by the db module
 * and valid only during the call; it is NULL unless status is DB_OK or
 * DB_QUERY_ERROR.  A query that broke with its connection (DB_UNAVAILABLE
 * after sending) may or may not have been committed.
 *
 * Its columns are read by name, each found once per result with
 * db_cols_resolve() (db_cols.h), never by counting the columns of the SQL.
 * A result of a single column (a JSON document, a count, a state) is read at
 * column 0: there is nothing to count. */
typedef void (*db_result_cb)(void *arg, enum db_status status, const PGresult *res);

struct db;
typedef void (*db_close_cb)(struct db *db);
typedef void (*db_ready_cb)(struct db *db, bool up);
/* A NOTIFY received on `channel` from the server process `be_pid`. */
typedef void (*db_notify_cb)(struct db *db, const char *channel, const char *payload, int be_pid);
/* The LISTEN of db_listen() has run: notifications arrive from now on. */
typedef void (*db_listening_cb)(struct db *db);

/* Latency of completed queries, in buckets of upper bounds DB_LATENCY_BOUNDS_US. */
#define DB_LATENCY_BUCKETS 12
extern const uint32_t db_latency_bounds_us[DB_LATENCY_BUCKETS];

struct db_stats {
    uint64_t queries;
    uint64_t errors;
    uint64_t unavailable;
    uint64_t latency_count[DB_LATENCY_BUCKETS + 1]; /* the last one is +Inf */
    double latency_sum_s;
    uint64_t reconnects;
    uint64_t groups;        /* pipelines of grouped queries committed together */
    uint64_t grouped;       /* queries answered from those pipelines */
    uint64_t group_retries; /* groups rolled back and run again query by query */
    uint64_t prepared;      /* statements prepared, on every session ("Prepared
                               statements" in db.c) */
};

struct db_conn;
struct db_query;

struct db {
    uv_loop_t *loop;
    char *conninfo;
    int nconns;
    struct db_conn *conns;
    struct db_query *queue_head;
    struct db_query *queue_tail;
    int queue_len;
    int max_queue;
    int group_max;    /* the most grouped queries sent in one pipeline;
                         1 turns grouping off (see db_query_grouped) */
    int up;           /* connections ready for queries */
    int open_handles; /* libuv handles not yet closed */
    bool closing;
    db_close_cb on_closed;
    db_ready_cb on_ready_change; /* optional: told when the first connection
                                    comes up and when the last one goes down */
    const char *listen_sql;      /* see db_listen() */
    db_notify_cb on_notify;
    db_listening_cb on_listening; /* optional: told each time the LISTEN has
                                     run, again after every reconnection;
                                     what was announced while no connection
                                     listened is lost, and the owner catches
                                     up from here */
    void *data;                   /* for the owner */
    struct db_stats stats;
};

/* Starts `nconns` connections to `conninfo` (a libpq connection string or
 * URI) on `loop`.  Returns 0, or a negative errno-style code (and starts
 * nothing) when memory is short or the arguments are wrong.  Connections that
 * fail keep retrying in the background. */
int db_init(struct db *db, uv_loop_t *loop, const char *conninfo, int nconns)
    __attribute__((warn_unused_result));

/* Queues `sql` with `nparams` text parameters (NULL entries are SQL NULL).
 * `sql` must have static storage (the named queries in sql/ and the embedded
 * migrations do); parameters are copied.  `cb` is always called exactly once,
 * possibly before db_query returns when the pool is unavailable. */
void db_query(struct db *db, const char *sql, int nparams, const char *const *params,
              db_result_cb cb, void *arg);

/* Like db_query, for a statement that may share its transaction with other
 * grouped statements (see "Grouped commits" above).  It must be a single
 * statement that either does all its work or fails, that does not depend on
 * its own transaction's start time being its own (now() is the group's), and
 * that sets every transaction-local setting it reads before reading it or
 * does not mind one left by an earlier statement of its group. */
void db_query_grouped(struct db *db, const char *sql, int nparams, const char *const *params,
                      db_result_cb cb, void *arg);

/* Like db_query, with every column of the result in PostgreSQL's binary
 * format (PQfformat 1): read with db_cols.h's typed readers, which also
 * read text results.  Cheaper on both sides for large reads of integers,
 * instants and arrays (the start-up's pages of slots). */
void db_query_binary(struct db *db, const char *sql, int nparams, const char *const *params,
                     db_result_cb cb, void *arg);

/* Queues a parameterless, possibly multi-statement script (migrations). */
void db_exec_script(struct db *db, const char *sql, db_result_cb cb, void *arg);

/* The number of queries queued or in flight. */
int db_in_flight(const struct db *db);

/* Makes the first connection run `listen_sql` (static text such as
 * "LISTEN snp_change") now and after every reconnection, and hands the
 * notifications it receives to `on_notify`.  Call it right after db_init. */
void db_listen(struct db *db, const char *listen_sql, db_notify_cb on_notify);

/* True when `pid` is the server process of one of this pool's connections
 * (to recognise the notifications our own changes caused). */
bool db_own_backend(const struct db *db, int pid);

/* True when at least one connection is ready. */
bool db_is_up(const struct db *db);

/* Lets queued and in-flight queries finish, then closes every connection and
 * handle; `on_closed` runs when the struct may be freed. */
void db_close(struct db *db, db_close_cb on_closed);

/* The SQLSTATE of an error result ("23505"), or "" when there is none. */
const char *db_sqlstate(const PGresult *res);

#endif
