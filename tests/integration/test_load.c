/* The start-up load of the live slots (dispatcher/core/store.c), read in pages:
 * with load_batch set to 13, a restart reads some seventy slots of two
 * territories in several pages of one range of ids, with load_batch 2 in
 * several ranges read side by side, and memory then holds exactly the live ones
 * (free, held, booked, not ended), in the states they had, as slot.list and
 * request.get show them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/support/fixture.h"

static struct fixture f;
static char other_coordinator[48]; /* a coordinator's token of test-other */

enum { BATCH = 13 };

static void setup(void)
{
    fixture_setup(&f, "{\"hold_seconds\": 3600}");
    char batch[16];
    snprintf(batch, sizeof(batch), "%d", BATCH);
    setenv("SNPD_LOAD_BATCH", batch, 1);
}

static void teardown(void)
{
    unsetenv("SNPD_LOAD_BATCH");
    fixture_teardown(&f);
}

TestSuite(load, .init = setup, .fini = teardown, .timeout = 120);

/* Publishes by SQL `n` slots of 20 minutes in `territory` at the site named
 * `site` for `rpps`, the first `first_min` minutes from now (negative: in
 * the past), one every 30 minutes, in `status`. */
static void insert_slots(const char *territory, const char *site, const char *rpps, int n,
                         int first_min, const char *status)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode,"
             " audience, status, published_by)"
             " SELECT '%s', (SELECT id FROM site WHERE name = '%s'), '%s',"
             " date_trunc('minute', now()) + make_interval(mins => %d + 30 * k), 20, 'office',"
             " '{pharmacy,sas}', '%s', 'test' FROM generate_series(0, %d) k",
             territory, site, rpps, first_min, status, n - 1);
    PQclear(pgtest_exec(&f.pg, sql));
}

/* The live slots of `territory` in memory, as "id status;" in start order,
 * from slot.list over the last day and the next week. */
static char *memory_slots(const char *token)
{
    char from[32], path[128];
    fix_slot_start(-24 * 60, from);
    snprintf(path, sizeof(path), "/api/v1/slots?from=%s&limit=1000", from);
    int st;
    json_t *r = fix_api_port(f.snpd.port, "GET", path, token, NULL, &st);
    cr_assert_eq(st, 200, "slot.list: %d", st);
    cr_assert(!json_is_true(json_object_get(r, "truncated")));
    size_t cap = 16 * 1024, len = 0;
    char *out = calloc(1, cap);
    size_t i;
    json_t *s;
    json_array_foreach (json_object_get(r, "slots"), i, s) {
        len += (size_t)snprintf(out + len, cap - len, "%lld %s;",
                                (long long)json_integer_value(json_object_get(s, "slot_id")),
                                json_string_value(json_object_get(s, "status")));
        cr_assert_lt(len, cap);
    }
    json_decref(r);
    return out;
}

/* The same list as the database has it: live and not ended. */
static char *database_slots(const char *territory)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(string_agg(id || ' ' || status || ';', '' ORDER BY starts_at, id),"
             " '') FROM slot WHERE territory_id = '%s' AND status IN ('free', 'held', 'booked')"
             " AND starts_at + make_interval(mins => duration_min) > now()",
             territory);
    PGresult *res = pgtest_exec(&f.pg, sql);
    char *out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* Creates a request of `as` for a patient of commune `insee` and returns
 * it; it holds a slot (an offer) at once. */
static json_t *request_offered(enum fix_role as, const char *client_ref, const char *insee)
{
    char *body = fix_request_body(client_ref, "24h");
    char *p = strstr(body, "35236");
    cr_assert(p);
    memcpy(p, insee, 5);
    int st;
    json_t *r = fix_api(&f, "POST", "/api/v1/requests", as, body, &st);
    free(body);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(r, 0));
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "offered");
    return r;
}

static json_int_t offered_slot(json_t *request)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(request, "offer"), "slot"), "slot_id"));
}

/* Books the slot offered to `request` for `as`. */
static void accept(enum fix_role as, json_t *request)
{
    char path[80], body[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept",
             (long long)json_integer_value(json_object_get(request, "request_id")));
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)offered_slot(request));
    int st;
    json_t *r = fix_api(&f, "POST", path, as, body, &st);
    cr_assert_eq(st, 200, "accept: %d %s", st, json_dumps(r, 0));
    json_decref(r);
}

/* The slot offered to request `id` as `as` sees it now, or 0. */
static json_int_t offer_now(enum fix_role as, json_t *request)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld",
             (long long)json_integer_value(json_object_get(request, "request_id")));
    int st;
    json_t *r = fix_api(&f, "GET", path, as, NULL, &st);
    cr_assert_eq(st, 200, "request.get: %d", st);
    json_int_t slot = offered_slot(r);
    json_decref(r);
    return slot;
}

Test(load, the_live_slots_come_back_in_pages_with_their_states)
{
    /* A second territory with a practice of GP2 in Rennes. */
    PQclear(pgtest_exec(&f.pg,
                        "INSERT INTO territory_practitioner VALUES ('test-other', '" FIX_GP2 "');"
                        "INSERT INTO site (territory_id, kind, name, address, commune_insee,"
                        " latitude, longitude) VALUES ('test-other', 'practice',"
                        " 'Cabinet de Rennes', '3 rue de Brest', '35238', 48.1170, -1.6770);"
                        "INSERT INTO practitioner_site SELECT '" FIX_GP2
                        "', id FROM site WHERE name = 'Cabinet de Rennes';"
                        "UPDATE territory SET settings = '{\"hold_seconds\": 3600}'"
                        " WHERE id = 'test-other'"));
    fix_add_token(&f, "coordinator", "test-other", NULL, 0, 0, false, other_coordinator);
    /* Live ones, and others the load must leave out: ended (still "free" in
     * the database: housekeeping has not run), withdrawn, expired.  A booked
     * one started ten minutes ago and ends in ten (still live: the
     * consultation runs), one ended five minutes ago. */
    insert_slots(FIX_TERRITORY, "Cabinet du Port", FIX_GP1, 17, 120, "free");
    insert_slots(FIX_TERRITORY, "Cabinet du Port", FIX_GP1, 3, -600, "free");
    insert_slots(FIX_TERRITORY, "Cabinet du Port", FIX_GP1, 1, -10, "booked");
    insert_slots(FIX_TERRITORY, "Cabinet du Port", FIX_GP1, 1, -25, "booked");
    insert_slots(FIX_TERRITORY, "Cabinet du Port", FIX_GP1, 3, 130, "withdrawn");
    insert_slots("test-other", "Cabinet de Rennes", FIX_GP2, 12, 125, "free");
    insert_slots("test-other", "Cabinet de Rennes", FIX_GP2, 2, -300, "free");
    insert_slots("test-other", "Cabinet de Rennes", FIX_GP2, 2, 135, "withdrawn");
    insert_slots("test-other", "Cabinet de Rennes", FIX_GP2, 2, 140, "expired");
    /* Forty in one minute ten hours ahead, in pairs at the same instant
     * (GP1's and the practice's own), written latest first: the load's
     * sort (by minute, then by start and id within one) must put them back
     * in the database's order. */
    PQclear(pgtest_exec(
        &f.pg, "INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode,"
               " audience, status, published_by)"
               " SELECT '" FIX_TERRITORY "', (SELECT id FROM site WHERE name = 'Cabinet du Port'),"
               " rpps, date_trunc('minute', now()) + interval '605 minutes'"
               " + make_interval(secs => 19 - k), 20, 'office', '{pharmacy,sas}', 'free', 'test'"
               " FROM generate_series(0, 19) k, (VALUES ('" FIX_GP1 "'), (NULL)) AS p (rpps)"
               " ORDER BY k, rpps"));
    fixture_start(&f);
    /* In each territory one slot booked and one held by an offer. */
    json_t *booked_t = request_offered(FIX_PHARMACY, "load-1", "35236");
    accept(FIX_PHARMACY, booked_t);
    json_t *held_t = request_offered(FIX_PHARMACY, "load-2", "35236");
    json_t *booked_o = request_offered(FIX_OTHER_PHARMACY, "load-3", "35238");
    accept(FIX_OTHER_PHARMACY, booked_o);
    json_t *held_o = request_offered(FIX_OTHER_PHARMACY, "load-4", "35238");
    json_int_t hold_t = offered_slot(held_t), hold_o = offered_slot(held_o);
    cr_assert(hold_t > 0 && hold_o > 0);

    const char *coordinator = f.token[FIX_COORDINATOR];
    char *before_t = memory_slots(coordinator), *before_o = memory_slots(other_coordinator);
    char *db_t = database_slots(FIX_TERRITORY), *db_o = database_slots("test-other");
    cr_assert_str_eq(before_t, db_t);
    cr_assert_str_eq(before_o, db_o);
    long live = pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status IN ('free', 'held',"
                                   " 'booked') AND starts_at + interval '20 minutes' > now()");
    cr_assert_eq(live, 17 + 1 + 12 + 40, "live slots: %ld", live);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held'"), 2);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'booked'"), 2 + 2);

    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 15000), 0);
    fixture_start(&f);

    /* Read in pages of 13: full pages, then a short (or empty) last one. */
    char *log = snpd_proc_log(&f.snpd);
    char want[128];
    snprintf(want, sizeof(want), "%ld live slots in %ld pages", live, live / BATCH + 1);
    cr_assert(strstr(log, want), "\"%s\" not logged:\n%s", want, log);
    free(log);
    char *after_t = memory_slots(coordinator), *after_o = memory_slots(other_coordinator);
    cr_assert_str_eq(after_t, before_t);
    cr_assert_str_eq(after_o, before_o);
    free(after_t);
    free(after_o);

    /* In pages of 2 the ids are cut into several ranges read side by side:
     * more pages, the same slots. */
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 15000), 0);
    setenv("SNPD_LOAD_BATCH", "2", 1);
    fixture_start(&f);
    log = snpd_proc_log(&f.snpd);
    snprintf(want, sizeof(want), "%ld live slots in ", live);
    const char *loaded = strstr(log, want);
    cr_assert(loaded, "\"%s\" not logged:\n%s", want, log);
    char *end;
    long pages = strtol(loaded + strlen(want), &end, 10);
    long ranges = strncmp(end, " pages over ", 12) == 0 ? strtol(end + 12, NULL, 10) : 0;
    cr_assert_gt(pages, live / 2, "%ld pages of 2 for %ld slots", pages, live);
    cr_assert_gt(ranges, 1, "the ids read in %ld ranges:\n%s", ranges, loaded);
    free(log);
    after_t = memory_slots(coordinator);
    after_o = memory_slots(other_coordinator);
    cr_assert_str_eq(after_t, before_t);
    cr_assert_str_eq(after_o, before_o);
    /* The holds are the requests' offers still. */
    cr_assert_eq(offer_now(FIX_PHARMACY, held_t), hold_t);
    cr_assert_eq(offer_now(FIX_OTHER_PHARMACY, held_o), hold_o);
    /* And capacity counts the free ones of test-t (15 of 17, and the 40,
     * within 48 h). */
    cr_assert(fix_wait_capacity(&f, f.snpd.port, 15 + 40, 5000), "capacity after the restart");

    free(before_t);
    free(before_o);
    free(after_t);
    free(after_o);
    free(db_t);
    free(db_o);
    json_decref(booked_t);
    json_decref(held_t);
    json_decref(booked_o);
    json_decref(held_o);
}
