/* Schema migrations.
 *
 * The numbered files of sql/migrations/ are compiled into snpd (see
 * cmake/embed_sql.cmake) and applied in name order, each once, each in its
 * own transaction, and recorded in `schema_migration` with the SHA-256 of its
 * text.  Before anything is applied every recorded checksum is compared with
 * the embedded text: a migration changed after it was applied, or one the
 * database has and this binary does not know, stops everything with the
 * database untouched.  A failing migration is rolled back and stops the run.
 *
 * Then, in the same run, the files of sql/functions/ (the current definition
 * of every SQL function, as CREATE OR REPLACE FUNCTION) are applied in name
 * order: each file whose SHA-256 differs from the one recorded for it in
 * `schema_function` (or that has none) is applied and recorded in one
 * transaction; an unchanged file is skipped.  A failing file is rolled back,
 * leaving the functions it would have replaced as they were, and stops the
 * run.  Function files run after every migration, so a migration never sees
 * a body changed in the same release.
 *
 * First of all the database's encoding must be UTF8 (MIGRATE_ENCODING
 * otherwise, the database untouched): snpd trusts the text it reads from
 * PostgreSQL to be UTF-8.
 *
 * Migrations and function files run on a connection of their own (all steps
 * of a transaction must go to the same session), each transaction under the
 * same transaction-scoped advisory lock, so that two snpd processes starting
 * together apply each file once.  A file must not contain BEGIN/COMMIT
 * itself.
 */
#ifndef SNP_MIGRATE_H
#define SNP_MIGRATE_H

#include <stdbool.h>

#include "dispatcher/db/db.h"

struct snp_embedded_sql {
    const char *name;
    const char *sql;
};

/* The migrations built into this binary, sorted by name. */
extern const struct snp_embedded_sql snp_migrations[];
extern const int snp_migration_count;

/* The function files (sql/functions/) built into this binary, sorted by name. */
extern const struct snp_embedded_sql snp_functions[];
extern const int snp_function_count;

enum migrate_result {
    MIGRATE_OK = 0,
    MIGRATE_UNREACHABLE = -1, /* the database could not be reached in time */
    MIGRATE_CHECKSUM = -2,    /* an applied migration differs from this binary's */
    MIGRATE_UNKNOWN = -3,     /* the database has a migration this binary lacks */
    MIGRATE_FAILED = -4,      /* a migration or function file raised an error and was
                                 rolled back */
    MIGRATE_ENCODING = -5,    /* the database's encoding is not UTF8: nothing applied */
};

struct migrate;
/* Called once, when the run is over and the migration connection is closed;
 * `message` describes the outcome in one sentence. */
typedef void (*migrate_done_cb)(struct migrate *m, int result, const char *message);

/* Lifecycle states of a migration run; steps advance in migrate.c only. */
enum migrate_step {
    MIGRATE_WAIT_DB,   /* waiting for the connection */
    MIGRATE_PREPARE,   /* checking the encoding, creating schema_migration and
                          schema_function */
    MIGRATE_CHECK,     /* comparing recorded checksums */
    MIGRATE_APPLY,     /* applying pending migrations one transaction at a time */
    MIGRATE_FUNCTIONS, /* applying changed function files one transaction at a time */
    MIGRATE_FINISHING, /* closing the connection */
};

struct migrate {
    struct db db;
    const struct snp_embedded_sql *list;
    int count;
    const struct snp_embedded_sql *functions;
    int function_count;
    int index; /* the migration, then the function file, being applied */
    int applied;
    int functions_applied;
    enum migrate_step step;
    int substep;
    int result;
    char message[512];
    uv_timer_t deadline;
    migrate_done_cb cb;
    void *data; /* for the owner */
};

/* Connects to `conninfo`, applies the migrations of `list`, then the function
 * files of `functions` that changed.  The lists are borrowed for the whole
 * run.  When `give_up_ms` is positive
 * and no connection succeeds within that time the run ends with
 * MIGRATE_UNREACHABLE; with 0 it waits for the database as long as needed.
 * Returns 0, or a negative code when nothing could be started (and `cb` will
 * not be called). */
int migrate_start(struct migrate *m, uv_loop_t *loop, const char *conninfo,
                  const struct snp_embedded_sql *list, int count,
                  const struct snp_embedded_sql *functions, int function_count, int give_up_ms,
                  migrate_done_cb cb) __attribute__((warn_unused_result));

/* Abandons a run (at shutdown): what is in flight is rolled back with the
 * connection, and `cb` is called with MIGRATE_UNREACHABLE. */
void migrate_cancel(struct migrate *m);

#endif
