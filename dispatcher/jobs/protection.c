#include "dispatcher/jobs/protection.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "protocol/snp_decl.h"
#include "sql_queries.h"

/* The actor recorded in the audit rows and events of the jobs. */
#define PROTECTION_ACTOR "system:protection"

/* One run: three queries in flight, answered in any order. */
struct protection_run {
    protection_cb done;
    void *arg;
    int pending;
    struct protection_result result;
};

static void run_answered(struct protection_run *run)
{
    if (--run->pending > 0)
        return;
    const struct protection_result *r = &run->result;
    if (r->identities_erased > 0 || r->audit_purged > 0 || r->outbox_purged > 0)
        log_info("protection",
                 "%lld patient identities erased, %lld audit rows purged, %lld outbox rows purged "
                 "or given up",
                 r->identities_erased, r->audit_purged, r->outbox_purged);
    if (run->done)
        run->done(run->arg, r);
    free(run);
}

/* Reads the single count a job returns; logs a failure. */
static bool job_count(const char *job, enum db_status st, const PGresult *res, long long *out)
{
    if (st == DB_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        *out = atoll(PQgetvalue(res, 0, 0));
        return true;
    }
    const char *msg = st == DB_QUERY_ERROR && res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                                  : "the database is unavailable";
    log_error("protection", "%s failed: %s", job, msg ? msg : "unknown error");
    return false;
}

static void on_erased(void *arg, enum db_status st, const PGresult *res)
{
    struct protection_run *run = arg;
    run->result.erase_ok = job_count("identity erasure", st, res, &run->result.identities_erased);
    run_answered(run);
}

static void on_purged(void *arg, enum db_status st, const PGresult *res)
{
    struct protection_run *run = arg;
    run->result.purge_ok = job_count("audit purge", st, res, &run->result.audit_purged);
    run_answered(run);
}

static void on_outbox_purged(void *arg, enum db_status st, const PGresult *res)
{
    struct protection_run *run = arg;
    run->result.outbox_ok = job_count("outbox purge", st, res, &run->result.outbox_purged);
    run_answered(run);
}

void protection_run(struct db *db, int audit_months, int outbox_days, int message_dead_s,
                    protection_cb done, void *arg)
{
    struct protection_run *run = calloc(1, sizeof(*run));
    if (!run) {
        log_error("protection", "out of memory: jobs skipped");
        return;
    }
    run->done = done;
    run->arg = arg;
    run->pending = 3;
    if (!snp_setting_allows(SNP_SETTING_AUDIT_RETENTION_MONTHS, audit_months))
        audit_months = CONFIG_AUDIT_RETENTION_MONTHS;
    if (outbox_days < 1 || outbox_days > 3650)
        outbox_days = PROTECTION_OUTBOX_DAYS;
    char months[16], batch[16], days[16], dead[16];
    snprintf(months, sizeof(months), "%d", audit_months);
    snprintf(days, sizeof(days), "%d", outbox_days);
    snprintf(dead, sizeof(dead), "%d", message_dead_s > 0 ? message_dead_s : 0);
    snprintf(batch, sizeof(batch), "%d", PROTECTION_BATCH);
    const char *erase_params[] = {PROTECTION_ACTOR, batch};
    const char *purge_params[] = {PROTECTION_ACTOR, months, batch};
    const char *outbox_params[] = {PROTECTION_ACTOR, days, dead, batch};
    /* Any callback may run before db_query returns (pool unavailable);
     * `pending` counts all three before the first is sent. */
    db_query(db, sql_text[SQL_IDENTITY_ERASE], 2, erase_params, on_erased, run);
    db_query(db, sql_text[SQL_AUDIT_PURGE], 3, purge_params, on_purged, run);
    db_query(db, sql_text[SQL_OUTBOX_PURGE], 4, outbox_params, on_outbox_purged, run);
}
