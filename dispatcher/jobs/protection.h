/* Data protection jobs run inside snpd: erasing patient identities whose
 * time has come, purging audit rows past their retention, and deleting the
 * outbox rows delivered long ago.
 *
 * Each is one SQL function (sql/migrations/0004_indicators.sql,
 * 0028_outbox_purge.sql), one round trip each, safe to run from several snpd processes at once;
 * each records what it did (counts only) in the audit table, the erasure also as an identity.erased
 * event per territory.  The events and the requests stay, so every indicator keeps counting the
 * erased patients.  docs/data-protection.md describes what is kept, for how long and why.
 */
#ifndef SNP_PROTECTION_H
#define SNP_PROTECTION_H

#include <stdbool.h>

#include "dispatcher/config.h"
#include "dispatcher/db/db.h"

/* How long delivered outbox rows are kept when snpd's configuration does not
 * say (outbox_retention_days). */
#define PROTECTION_OUTBOX_DAYS 30

/* Rows handled per job and run, so that one run stays a short transaction;
 * a backlog is worked off over the following runs. */
#define PROTECTION_BATCH 5000

/* What one run did. */
struct protection_result {
    bool erase_ok;               /* the erasure job ran */
    bool purge_ok;               /* the audit purge ran */
    bool outbox_ok;              /* the outbox purge ran */
    long long identities_erased; /* patient_identity rows deleted */
    long long audit_purged;      /* audit rows deleted */
    long long outbox_purged;     /* appointment_outbox and message_outbox rows deleted */
};

typedef void (*protection_cb)(void *arg, const struct protection_result *result);

/* Runs the three jobs once on `db` (which must outlive the run): the erasure
 * of identities whose erase_after has passed, the deletion of audit rows
 * older than their territory's retention, `audit_months` (within the bounds
 * of the setting audit_retention_months, else CONFIG_AUDIT_RETENTION_MONTHS)
 * for rows of territories without the setting, and
 * the deletion of outbox rows delivered more than `outbox_days` ago (1 to
 * 3650, else PROTECTION_OUTBOX_DAYS; what is kept is said in 0028), after
 * giving up the messages still pending `message_dead_s` after they were
 * queued (their address erased, whether or not a sender tried them).  Logs
 * the counts when something was done, failures always.  `done`, if not
 * NULL, is called once when all have answered; it is not called when memory
 * is short (which is logged). */
void protection_run(struct db *db, int audit_months, int outbox_days, int message_dead_s,
                    protection_cb done, void *arg);

#endif
