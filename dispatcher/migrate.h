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
 * Migrations run on a connection of their own (all steps of a transaction
 * must go to the same session) under a transaction-scoped advisory lock, so
 * that two snpd processes starting together apply each file once.  A
 * migration file must not contain BEGIN/COMMIT itself.
 */
#ifndef SNP_MIGRATE_H
#define SNP_MIGRATE_H

#include <stdbool.h>

#include "dispatcher/db.h"

struct snp_embedded_sql {
    const char *name;
    const char *sql;
};

/* The migrations built into this binary, sorted by name. */
extern const struct snp_embedded_sql snp_migrations[];
extern const int snp_migration_count;

enum migrate_result {
    MIGRATE_OK = 0,
    MIGRATE_UNREACHABLE = -1, /* the database could not be reached in time */
    MIGRATE_CHECKSUM = -2,    /* an applied migration differs from this binary's */
    MIGRATE_UNKNOWN = -3,     /* the database has a migration this binary lacks */
    MIGRATE_FAILED = -4,      /* a migration raised an error and was rolled back */
};

struct migrate;
/* Called once, when the run is over and the migration connection is closed;
 * `message` describes the outcome in one sentence. */
typedef void (*migrate_done_cb)(struct migrate *m, int result, const char *message);

/* Lifecycle states of a migration run; steps advance in migrate.c only. */
enum migrate_step {
    MIGRATE_WAIT_DB,   /* waiting for the connection */
    MIGRATE_PREPARE,   /* creating schema_migration */
    MIGRATE_CHECK,     /* comparing recorded checksums */
    MIGRATE_APPLY,     /* applying pending files one transaction at a time */
    MIGRATE_FINISHING, /* closing the connection */
};

struct migrate {
    struct db db;
    const struct snp_embedded_sql *list;
    int count;
    int index; /* the migration being applied */
    int applied;
    enum migrate_step step;
    int substep;
    int result;
    char message[512];
    uv_timer_t deadline;
    migrate_done_cb cb;
    void *data; /* for the owner */
};

/* Connects to `conninfo` and applies `list`.  When `give_up_ms` is positive
 * and no connection succeeds within that time the run ends with
 * MIGRATE_UNREACHABLE; with 0 it waits for the database as long as needed.
 * Returns 0, or a negative code when nothing could be started (and `cb` will
 * not be called). */
int migrate_start(struct migrate *m, uv_loop_t *loop, const char *conninfo,
                  const struct snp_embedded_sql *list, int count, int give_up_ms,
                  migrate_done_cb cb) __attribute__((warn_unused_result));

/* Abandons a run (at shutdown): what is in flight is rolled back with the
 * connection, and `cb` is called with MIGRATE_UNREACHABLE. */
void migrate_cancel(struct migrate *m);

#endif
