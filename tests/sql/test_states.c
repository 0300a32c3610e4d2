/* The slot, request and booking state machines of docs/dispatch.md, driven
 * directly through the snp_* SQL functions: every allowed transition, and
 * the refusal (with its SQLSTATE) of the ones the documentation forbids. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/fixture.h"

static struct fixture f;

static void setup(void)
{
    fixture_setup(&f, "{}");
}

static void teardown(void)
{
    fixture_teardown(&f);
}

TestSuite(states, .init = setup, .fini = teardown, .timeout = 60);

/* Runs `sql`; returns its SQLSTATE ("" on success) and the first value. */
static const char *run(const char *sql, char *value, size_t size)
{
    static char state[8];
    PGresult *r = PQexec(f.pg.conn, sql);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof(state), "%s", s ? s : "");
    if (value) {
        value[0] = '\0';
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(value, size, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return state;
}

static long publish_one(int minutes_ahead)
{
    char sql[512], v[32];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM snp_slots_publish('%s', %lld, '%s', 'test', "
             "jsonb_build_array(jsonb_build_object('start', now() + interval '%d minutes', "
             "'duration_min', 20, 'mode', 'office', 'audience', '{pharmacy}'::text[])))",
             FIX_TERRITORY, (long long)f.site_gp1, FIX_GP1, minutes_ahead);
    cr_assert_str_eq(run(sql, v, sizeof(v)), "");
    return atol(v);
}

/* Creates a request, holding `slot` for it when not 0. */
static long create(const char *ref, long slot)
{
    char sql[1024], v[32], slot_arg[24] = "NULL";
    if (slot)
        snprintf(slot_arg, sizeof(slot_arg), "%ld", slot);
    snprintf(sql, sizeof(sql),
             "SELECT request_id FROM snp_request_create('%s', %lld, 'test', jsonb_build_object("
             "'client_ref', '%s', 'motif', 'ent', 'urgency', '24h', 'deadline', now() + "
             "interval '1 day', 'modes', '{office}'::text[], 'patient_commune', '35236', "
             "'patient_birth_year', 1980, 'patient_age', 46, 'patient_sex', 'female', "
             "'has_mt', false), '{\"initials\": \"J\"}', %s, 180)",
             FIX_TERRITORY, (long long)f.pharmacy_id, ref, slot_arg);
    cr_assert_str_eq(run(sql, v, sizeof(v)), "", "%s", sql);
    return atol(v);
}

static const char *status_of(const char *table, long id)
{
    static char v[32];
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT status FROM %s WHERE id = %ld", table, id);
    run(sql, v, sizeof(v));
    return v;
}

/* Runs a formatted statement and returns its SQLSTATE ("" on success). */
static const char *call(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *call(const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return run(sql, NULL, 0);
}

Test(states, slot_free_held_booked_and_back)
{
    long s = publish_one(60);
    cr_assert_str_eq(status_of("slot", s), "free");
    long r = create("s-1", s);
    cr_assert_str_eq(status_of("slot", s), "held");
    cr_assert_str_eq(status_of("request", r), "offered");
    /* A held slot cannot be withdrawn, nor held for another request. */
    cr_assert_str_eq(call("SELECT snp_slot_withdraw(%ld, 'test-t', NULL, 'test')", s), "SN409");
    long r2 = create("s-2", s);
    cr_assert_str_eq(status_of("request", r2), "waiting");
    /* held -> booked; a second confirmation is the same booking. */
    char sql[256], v1[32], v2[32];
    snprintf(sql, sizeof(sql), "SELECT booking_id FROM snp_offer_accept(%ld, %lld, %ld, 'test')", r,
             (long long)f.pharmacy_id, s);
    cr_assert_str_eq(run(sql, v1, sizeof(v1)), "");
    cr_assert_str_eq(run(sql, v2, sizeof(v2)), "");
    cr_assert_str_eq(v1, v2);
    cr_assert_str_eq(status_of("slot", s), "booked");
    cr_assert_str_eq(status_of("request", r), "booked");
    /* Booking the same slot for the other request: slot_taken. */
    cr_assert_str_eq(call("UPDATE request SET status = 'offered' WHERE id = %ld", r2), "");
    snprintf(sql, sizeof(sql), "SELECT snp_offer_accept(%ld, %lld, %ld, 'test')", r2,
             (long long)f.pharmacy_id, s);
    cr_assert_str_eq(run(sql, NULL, 0), "SN410");
    /* booked -> free when the practitioner cancels ahead of the start; the
     * request goes back to waiting. */
    snprintf(sql, sizeof(sql),
             "SELECT request_status FROM snp_booking_cancel(%s, 'test-t', '%s', "
             "'practitioner_unavailable', 'test')",
             v1, FIX_GP1);
    char rs[32];
    cr_assert_str_eq(run(sql, rs, sizeof(rs)), "");
    cr_assert_str_eq(rs, "waiting");
    cr_assert_str_eq(status_of("slot", s), "free");
    /* free -> withdrawn, and withdrawn is final. */
    cr_assert_str_eq(call("SELECT snp_slot_withdraw(%ld, 'test-t', NULL, 'test')", s), "");
    cr_assert_str_eq(status_of("slot", s), "withdrawn");
    cr_assert_str_eq(call("SELECT snp_slot_withdraw(%ld, 'test-t', NULL, 'test')", s), "SN409");
}

/* booking.created says whether the patient sees their médecin traitant:
 * never for a CSNP slot without a named practitioner, nor for a patient
 * without one (0010). */
Test(states, booking_created_tells_whether_the_mt_is_seen)
{
    char sql[1024], v[32];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM snp_slots_publish('%s', %lld, NULL, 'test', "
             "jsonb_build_array(jsonb_build_object('start', now() + interval '90 minutes', "
             "'duration_min', 20, 'mode', 'office', 'audience', '{pharmacy}'::text[])))",
             FIX_TERRITORY, (long long)f.site_csnp);
    cr_assert_str_eq(run(sql, v, sizeof(v)), "");
    long csnp = atol(v);
    long gp = publish_one(60);
    long r1 = create("mt-1", csnp), r2 = create("mt-2", gp);
    cr_assert_str_eq(
        call("SELECT snp_offer_accept(%ld, %lld, %ld, 'test')", r1, (long long)f.pharmacy_id, csnp),
        "");
    /* The second patient's médecin traitant is the slot's practitioner. */
    cr_assert_str_eq(
        call("UPDATE request SET has_mt = true, mt_rpps = '%s' WHERE id = %ld", FIX_GP1, r2), "");
    cr_assert_str_eq(
        call("SELECT snp_offer_accept(%ld, %lld, %ld, 'test')", r2, (long long)f.pharmacy_id, gp),
        "");
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(data ->> 'seen_by_mt', ',' ORDER BY request_id) FROM event "
             "WHERE kind = 'booking.created' AND request_id IN (%ld, %ld)",
             r1, r2);
    cr_assert_str_eq(run(sql, v, sizeof(v)), "");
    cr_assert_str_eq(v, "false,true");
}

Test(states, hold_expiry_and_late_confirmation)
{
    long s = publish_one(60);
    long r = create("e-1", s);
    cr_assert_str_eq(call("UPDATE slot SET hold_expires_at = now() - interval '1 second' "
                          "WHERE id = %ld",
                          s),
                     "");
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT snp_offer_accept(%ld, %lld, %ld, 'test')", r,
             (long long)f.pharmacy_id, s);
    cr_assert_str_eq(run(sql, NULL, 0), "SN411", "a late confirmation is hold_expired");
    /* Housekeeping releases it: slot free, request waiting, event recorded. */
    cr_assert_str_eq(run("SELECT count(*) FROM snp_housekeeping('test')", NULL, 0), "");
    cr_assert_str_eq(status_of("slot", s), "free");
    cr_assert_str_eq(status_of("request", r), "waiting");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.expired'"), 1);
}

Test(states, past_slots_expire_and_deadlines_make_requests_unserved)
{
    long s = publish_one(60);
    long r = create("u-1", 0);
    cr_assert_str_eq(status_of("request", r), "waiting");
    cr_assert_str_eq(
        call("UPDATE slot SET starts_at = now() - interval '1 minute' WHERE id = %ld", s), "");
    cr_assert_str_eq(call("UPDATE request SET deadline = now() - interval '1 minute' WHERE id = "
                          "%ld",
                          r),
                     "");
    cr_assert_str_eq(run("SELECT count(*) FROM snp_housekeeping('test')", NULL, 0), "");
    cr_assert_str_eq(status_of("slot", s), "expired");
    cr_assert_str_eq(status_of("request", r), "unserved");
    /* Final states accept nothing more. */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT snp_request_cancel(%ld, %lld, 'other', 'test')", r,
             (long long)f.pharmacy_id);
    cr_assert_str_eq(run(sql, NULL, 0), "SN409");
    snprintf(sql, sizeof(sql), "SELECT snp_offer_move(%ld, NULL, 'none', %ld, 180, 'test')", r, s);
    cr_assert_str_eq(run(sql, NULL, 0), "SN409");
}

Test(states, release_rule_and_events)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM snp_slots_publish('%s', %lld, '%s', 'test', jsonb_build_array("
             "jsonb_build_object('start', now() + interval '60 minutes', 'duration_min', 20, "
             "'mode', 'office', 'audience', '{sas}'::text[], 'release_minutes', 120), "
             /* The longest rule (0002: 10,080 minutes), due ten minutes ago:
              * the housekeeping's look-up by index (0030) reaches it. */
             "jsonb_build_object('start', now() + interval '10070 minutes', 'duration_min', 20, "
             "'mode', 'office', 'audience', '{sas}'::text[], 'release_minutes', 10080), "
             /* Not due for another eighty minutes. */
             "jsonb_build_object('start', now() + interval '200 minutes', 'duration_min', 20, "
             "'mode', 'office', 'audience', '{sas}'::text[], 'release_minutes', 120)))",
             FIX_TERRITORY, (long long)f.site_gp1, FIX_GP1);
    char v[32];
    cr_assert_str_eq(run(sql, v, sizeof(v)), "");
    cr_assert_str_eq(run("SELECT count(*) FROM snp_housekeeping('test')", NULL, 0), "");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE released_at IS NOT NULL"), 2);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE released_at IS NOT NULL "
                                    "AND release_minutes = 10080"),
                 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'slot.released'"), 2);
    /* The event log is append-only. */
    cr_assert_str_eq(run("UPDATE event SET actor = 'x'", NULL, 0), "42501");
    cr_assert_str_eq(run("DELETE FROM event", NULL, 0), "42501");
    cr_assert_str_eq(run("DELETE FROM audit", NULL, 0), "");
    cr_assert_str_eq(
        run("INSERT INTO audit (actor, role, action) VALUES ('a', 'admin', 'x')", NULL, 0), "");
    cr_assert_str_eq(run("DELETE FROM audit", NULL, 0), "42501");
}

/* The request notifications (sql/functions/notify.sql) left by `sql`, run
 * on a connection listening on snp_change: their count, and the last one's
 * status ("st") in `last`. */
static int request_notifications(const char *sql, char *last, size_t size)
{
    cr_assert_str_eq(run("LISTEN snp_change", NULL, 0), "");
    cr_assert_str_eq(run(sql, NULL, 0), "", "%s", sql);
    int n = 0;
    last[0] = '\0';
    PQconsumeInput(f.pg.conn);
    for (PGnotify *m; (m = PQnotifies(f.pg.conn)) != NULL; PQfreemem(m)) {
        if (strncmp(m->extra, "{\"k\" : \"r\"", 10) != 0)
            continue;
        const char *st = strstr(m->extra, "\"st\" : \"");
        cr_assert(st, "%s", m->extra);
        st += strlen("\"st\" : \"");
        snprintf(last, size, "%.*s", (int)strcspn(st, "\""), st);
        n++;
    }
    cr_assert_str_eq(run("UNLISTEN snp_change", NULL, 0), "");
    return n;
}

/* A request created with a slot that can be held is written 'offered' at
 * once: one row version, one notification (not 'waiting', then 'offered').
 * One whose slot is taken meanwhile waits, and its last word says so. */
Test(states, a_creation_with_a_hold_is_announced_once)
{
    long s = publish_one(60);
    char sql[1024], last[32];
    snprintf(sql, sizeof(sql),
             "SELECT snp_request_create('%s', %lld, 'test', jsonb_build_object("
             "'client_ref', 'n-1', 'motif', 'ent', 'urgency', '24h', 'deadline', now() + "
             "interval '1 day', 'modes', '{office}'::text[], 'patient_commune', '35236', "
             "'patient_birth_year', 1980, 'patient_age', 46, 'patient_sex', 'female', "
             "'has_mt', false), '{\"initials\": \"J\"}', %ld, 180)",
             FIX_TERRITORY, (long long)f.pharmacy_id, s);
    cr_assert_eq(request_notifications(sql, last, sizeof(last)), 1);
    cr_assert_str_eq(last, "offered");
    long r = pgtest_long(&f.pg, "SELECT id FROM request WHERE client_ref = 'n-1'");
    cr_assert_str_eq(status_of("request", r), "offered");
    cr_assert_str_eq(status_of("slot", s), "held");

    /* The same slot for another request: not free any more. */
    char *again = strstr(sql, "'n-1'");
    memcpy(again, "'n-2'", 5);
    cr_assert_eq(request_notifications(sql, last, sizeof(last)), 2);
    cr_assert_str_eq(last, "waiting");
    r = pgtest_long(&f.pg, "SELECT id FROM request WHERE client_ref = 'n-2'");
    cr_assert_str_eq(status_of("request", r), "waiting");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'request.created'"),
                 2);
}
