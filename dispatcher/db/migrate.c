#include "dispatcher/db/migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/log.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/net/handles.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Any constant works; it only has to be the same in every snpd. */
static const char *const lock_key = "5639201";

/* snpd reads the database's text as UTF-8 without checking it again (the
 * notifications' payloads, the rows it answers with), so the database must
 * hold UTF-8: PostgreSQL then checks every string it stores.  A SQL_ASCII
 * database checks nothing, and one in another encoding cannot store every
 * name a client may send; both are refused before anything is applied. */
static const char *const sql_encoding = "SELECT current_setting('server_encoding') AS encoding";
static const char *const sql_begin = "BEGIN";
static const char *const sql_commit = "COMMIT";
static const char *const sql_rollback = "ROLLBACK";
static const char *const sql_lock = "SELECT pg_advisory_xact_lock($1::bigint)";
static const char *const sql_create_table = "CREATE TABLE IF NOT EXISTS schema_migration ("
                                            " name text PRIMARY KEY,"
                                            " sha256 text NOT NULL,"
                                            " applied_at timestamptz NOT NULL DEFAULT now())";
static const char *const sql_create_function_table =
    "CREATE TABLE IF NOT EXISTS schema_function ("
    " name text PRIMARY KEY,"
    " sha256 text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
static const char *const sql_list = "SELECT name, sha256 FROM schema_migration ORDER BY name";
static const char *const sql_find = "SELECT sha256 FROM schema_migration WHERE name = $1";
static const char *const sql_record = "INSERT INTO schema_migration (name, sha256) VALUES ($1, $2)";
static const char *const sql_find_function = "SELECT sha256 FROM schema_function WHERE name = $1";
static const char *const sql_record_function =
    "INSERT INTO schema_function (name, sha256) VALUES ($1, $2)"
    " ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()";

/* What differs between applying a migration and applying a function file;
 * both go through the same steps (BEGIN, lock, look up, apply, record,
 * COMMIT). */
struct file_kind {
    const char *find;   /* the recorded checksum of one file, by name */
    const char *record; /* records a file's checksum once it is applied */
    const char *noun;   /* what a file is called in messages */
};

static const struct file_kind migration_kind = {sql_find, sql_record, "migration"};
static const struct file_kind function_kind = {sql_find_function, sql_record_function,
                                               "function file"};

static const struct file_kind *current_kind(const struct migrate *m)
{
    return m->step == MIGRATE_FUNCTIONS ? &function_kind : &migration_kind;
}

/* The file being applied in MIGRATE_APPLY or MIGRATE_FUNCTIONS, or NULL past
 * the end of its list. */
static const struct snp_embedded_sql *current_file(const struct migrate *m)
{
    if (m->step == MIGRATE_FUNCTIONS)
        return m->index < m->function_count ? &m->functions[m->index] : NULL;
    return m->index < m->count ? &m->list[m->index] : NULL;
}

/* Whether the look-up `res` of the current file shows it needs nothing: a
 * migration recorded at all (its checksum is compared in MIGRATE_CHECK), a
 * function file recorded with the checksum of this binary's text. */
static bool current_is_recorded(const struct migrate *m, const PGresult *res)
{
    if (PQntuples(res) != 1)
        return false;
    if (m->step != MIGRATE_FUNCTIONS)
        return true;
    char hex[DIGEST_SHA256_HEX_LEN];
    digest_sha256_hex(current_file(m)->sql, hex);
    return strcmp(PQgetvalue(res, 0, 0), hex) == 0;
}

static void migrate_next(struct migrate *m);
static void on_result(void *arg, enum db_status st, const PGresult *res);

static void query(struct migrate *m, const char *sql, int n, const char *const *params)
{
    db_query(&m->db, sql, n, params, on_result, m);
}

static void on_db_closed(struct db *db)
{
    struct migrate *m = container_of(db, struct migrate, db);
    m->cb(m, m->result, m->message);
}

static void on_deadline_closed(uv_handle_t *h)
{
    struct migrate *m = container_of((uv_timer_t *)h, struct migrate, deadline);
    db_close(&m->db, on_db_closed);
}

/* Ends the run: closes the timer, then the connection, then calls back. */
static void finish(struct migrate *m, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct migrate *m, int result, const char *fmt, ...)
{
    if (m->step == MIGRATE_FINISHING)
        return;
    m->step = MIGRATE_FINISHING;
    m->result = result;
    char text[sizeof(m->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    memcpy(m->message, text, sizeof(text));
    uv_timer_stop(&m->deadline);
    uv_close((uv_handle_t *)&m->deadline, on_deadline_closed);
}

static void on_deadline(uv_timer_t *t)
{
    struct migrate *m = container_of(t, struct migrate, deadline);
    if (m->step == MIGRATE_WAIT_DB)
        finish(m, MIGRATE_UNREACHABLE, "cannot reach the database");
}

static void on_ready_change(struct db *db, bool up)
{
    struct migrate *m = container_of(db, struct migrate, db);
    if (up && m->step == MIGRATE_WAIT_DB) {
        m->step = MIGRATE_PREPARE;
        m->substep = 0;
        migrate_next(m);
    }
}

static const struct snp_embedded_sql *find_embedded(const struct migrate *m, const char *name)
{
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->list[i].name, name) == 0)
            return &m->list[i];
    return NULL;
}

/* The columns of sql_list. */
enum recorded_col { RECORDED_NAME, RECORDED_SHA256, RECORDED_NCOLS };
static const char *const recorded_names[RECORDED_NCOLS] = {
    [RECORDED_NAME] = "name",
    [RECORDED_SHA256] = "sha256",
};

/* Compares what the database recorded with the embedded files.  Returns
 * false (after finishing the run) on the first disagreement. */
static bool check_recorded(struct migrate *m, const PGresult *res)
{
    int c[RECORDED_NCOLS];
    if (!db_cols_resolve(res, recorded_names, RECORDED_NCOLS, c, "schema_migration list")) {
        finish(m, MIGRATE_FAILED, "cannot read the recorded migrations; nothing was applied");
        return false;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *name = PQgetvalue(res, r, c[RECORDED_NAME]);
        const char *sum = PQgetvalue(res, r, c[RECORDED_SHA256]);
        const struct snp_embedded_sql *e = find_embedded(m, name);
        if (!e) {
            finish(m, MIGRATE_UNKNOWN,
                   "the database has migration %s, which this snpd does not know "
                   "(is it older than the database?); nothing was applied",
                   name);
            return false;
        }
        char hex[DIGEST_SHA256_HEX_LEN];
        digest_sha256_hex(e->sql, hex);
        if (strcmp(hex, sum) != 0) {
            finish(m, MIGRATE_CHECKSUM,
                   "migration %s was changed after it was applied (recorded checksum %s "
                   "differs); nothing was applied",
                   name, sum);
            return false;
        }
    }
    return true;
}

/* Issues the query for the current (step, substep). */
static void migrate_next(struct migrate *m)
{
    const char *lock_params[] = {lock_key};
    switch (m->step) {
    case MIGRATE_PREPARE:
        switch (m->substep) {
        case 0:
            query(m, sql_encoding, 0, NULL);
            return;
        case 1:
            query(m, sql_begin, 0, NULL);
            return;
        case 2:
            query(m, sql_lock, 1, lock_params);
            return;
        case 3:
            query(m, sql_create_table, 0, NULL);
            return;
        case 4:
            query(m, sql_create_function_table, 0, NULL);
            return;
        case 5:
            query(m, sql_commit, 0, NULL);
            return;
        }
        m->step = MIGRATE_CHECK;
        m->substep = 0;
        migrate_next(m);
        return;
    case MIGRATE_CHECK:
        query(m, sql_list, 0, NULL);
        return;
    case MIGRATE_APPLY:
    case MIGRATE_FUNCTIONS: {
        const struct snp_embedded_sql *e = current_file(m);
        if (!e && m->step == MIGRATE_APPLY) {
            /* The function files come after every migration, so that their
             * bodies may use what this release's migrations create. */
            m->step = MIGRATE_FUNCTIONS;
            m->index = 0;
            m->substep = 0;
            migrate_next(m);
            return;
        }
        if (!e) {
            finish(m, MIGRATE_OK,
                   "schema up to date (%d applied now; %d function files applied now)", m->applied,
                   m->functions_applied);
            return;
        }
        const struct file_kind *kind = current_kind(m);
        char hex[DIGEST_SHA256_HEX_LEN];
        const char *params[] = {e->name, hex};
        switch (m->substep) {
        case 0:
            query(m, sql_begin, 0, NULL);
            return;
        case 1:
            query(m, sql_lock, 1, lock_params);
            return;
        case 2:
            query(m, kind->find, 1, params);
            return;
        case 3:
            db_exec_script(&m->db, e->sql, on_result, m);
            return;
        case 4:
            digest_sha256_hex(e->sql, hex);
            query(m, kind->record, 2, params);
            return;
        case 5:
            query(m, sql_commit, 0, NULL);
            return;
        }
        return;
    }
    case MIGRATE_WAIT_DB:
    case MIGRATE_FINISHING:
        return;
    }
}

static void on_rollback_done(void *arg, enum db_status st, const PGresult *res)
{
    (void)st;
    (void)res;
    struct migrate *m = arg;
    const struct snp_embedded_sql *e = current_file(m);
    char why[sizeof(m->message)];
    memcpy(why, m->message, sizeof(why));
    finish(m, MIGRATE_FAILED, "%s %s failed and was rolled back: %.400s", current_kind(m)->noun,
           e->name, why);
}

/* Whether the answer to sql_encoding is UTF8; finishes the run if not. */
static bool encoding_is_utf8(struct migrate *m, const PGresult *res)
{
    const char *enc = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "unknown";
    if (strcmp(enc, "UTF8") == 0)
        return true;
    finish(m, MIGRATE_ENCODING,
           "the database's encoding is %.40s; snpd needs a UTF8 database (CREATE DATABASE ... "
           "ENCODING 'UTF8' TEMPLATE template0); nothing was applied",
           enc);
    return false;
}

static void on_result(void *arg, enum db_status st, const PGresult *res)
{
    struct migrate *m = arg;
    if (m->step == MIGRATE_FINISHING)
        return;
    if (st == DB_UNAVAILABLE) {
        /* The server rolled back whatever was open; start over once the
         * connection is back. */
        log_warn("migrate", "connection lost during migrations; waiting for the database");
        m->step = MIGRATE_WAIT_DB;
        return;
    }
    if (st != DB_OK) {
        const char *why = res ? PQresultErrorMessage(res) : "shutting down";
        snprintf(m->message, sizeof(m->message), "%s", why);
        size_t n = strlen(m->message);
        while (n > 0 && m->message[n - 1] == '\n')
            m->message[--n] = '\0';
        if ((m->step == MIGRATE_APPLY || m->step == MIGRATE_FUNCTIONS) && st == DB_QUERY_ERROR) {
            db_query(&m->db, sql_rollback, 0, NULL, on_rollback_done, m);
            return;
        }
        char copy[512];
        snprintf(copy, sizeof(copy), "%s", m->message);
        finish(m, MIGRATE_FAILED, "cannot prepare migrations: %.400s", copy);
        return;
    }

    switch (m->step) {
    case MIGRATE_PREPARE:
        if (m->substep == 0 && !encoding_is_utf8(m, res))
            return;
        m->substep++;
        break;
    case MIGRATE_CHECK:
        if (!check_recorded(m, res))
            return;
        m->step = MIGRATE_APPLY;
        m->substep = 0;
        m->index = 0;
        break;
    case MIGRATE_APPLY:
    case MIGRATE_FUNCTIONS:
        if (m->substep == 2 && current_is_recorded(m, res)) {
            /* Applied already (possibly by another snpd while we waited for
             * the lock): a migration's checksum was verified in
             * MIGRATE_CHECK or will be at the next start; a function file's
             * is this binary's. */
            m->substep = 5;
            break;
        }
        if (m->substep == 3 && m->step == MIGRATE_APPLY)
            log_info("migrate", "applied %s", current_file(m)->name);
        if (m->substep == 3 && m->step == MIGRATE_FUNCTIONS)
            log_info("migrate", "applied functions %s", current_file(m)->name);
        if (m->substep == 4 && m->step == MIGRATE_APPLY)
            m->applied++;
        if (m->substep == 4 && m->step == MIGRATE_FUNCTIONS)
            m->functions_applied++;
        if (m->substep == 5) {
            m->index++;
            m->substep = 0;
        } else {
            m->substep++;
        }
        break;
    case MIGRATE_WAIT_DB:
    case MIGRATE_FINISHING:
        return;
    }
    migrate_next(m);
}

int migrate_start(struct migrate *m, uv_loop_t *loop, const char *conninfo,
                  const struct snp_embedded_sql *list, int count,
                  const struct snp_embedded_sql *functions, int function_count, int give_up_ms,
                  migrate_done_cb cb)
{
    memset(m, 0, sizeof(*m));
    m->list = list;
    m->count = count;
    m->functions = functions;
    m->function_count = function_count;
    m->cb = cb;
    m->step = MIGRATE_WAIT_DB;
    int rc = uv_timer_init(loop, &m->deadline);
    if (rc != 0)
        return rc;
    handle_mark_own((uv_handle_t *)&m->deadline);
    rc = db_init(&m->db, loop, conninfo, 1);
    if (rc != 0) {
        uv_close((uv_handle_t *)&m->deadline, NULL);
        return rc;
    }
    m->db.on_ready_change = on_ready_change;
    if (give_up_ms > 0)
        uv_timer_start(&m->deadline, on_deadline, (uint64_t)give_up_ms, 0);
    if (db_is_up(&m->db))
        on_ready_change(&m->db, true);
    return 0;
}

void migrate_cancel(struct migrate *m)
{
    finish(m, MIGRATE_UNREACHABLE, "migrations cancelled");
}
