/* The dispatch flow end to end, through snpd's HTTP API on a real
 * PostgreSQL: publish, offer, confirm, decline, cancel, the waiting queue,
 * release rules, hold expiry, outcomes, withdrawal, capacity, and the
 * authentication and role errors. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

static struct fixture f;

static void setup(void)
{
    fixture_setup(&f, "{}");
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
}

TestSuite(dispatch, .init = setup, .fini = teardown, .timeout = 120);

static json_t *create(const char *client_ref, const char *urgency, int *status)
{
    char *body = fix_request_body(client_ref, urgency);
    json_t *r = fix_api(&f, "POST", "/api/v1/requests", FIX_PHARMACY, body, status);
    free(body);
    return r;
}

static json_int_t held_slot(json_t *request)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(request, "offer"), "slot"), "slot_id"));
}

static json_t *post(const char *path, enum fix_role as, const char *body, int *status)
{
    return fix_api(&f, "POST", path, as, body, status);
}

static bool wait_for(const char *sql, long want, int timeout_ms)
{
    bool equal;
    WAIT_UNTIL(equal, pgtest_long(&f.pg, sql) == want, timeout_ms);
    return equal;
}

Test(dispatch, publish_offer_confirm)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 3, 60, 30, "[\"pharmacy\", \"sas\"]"), 3);
    int st;
    json_t *req = create("c-1", "24h", &st);
    cr_assert_eq(st, 201, "create answered %d", st);
    cr_assert_str_eq(json_string_value(json_object_get(req, "status")), "offered");
    json_int_t slot = held_slot(req);
    cr_assert_gt(slot, 0);
    /* The earliest slot is the one held; the others are listed. */
    cr_assert_eq(slot, pgtest_long(&f.pg, "SELECT min(id) FROM slot"));
    cr_assert_eq(json_array_size(json_object_get(json_object_get(req, "offer"), "alternatives")),
                 2);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held'"), 1);

    char path[64], body[64];
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)id);
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)slot);
    json_t *b = post(path, FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 200, "accept answered %d: %s", st, json_dumps(b, 0));
    json_int_t booking = json_integer_value(json_object_get(b, "booking_id"));
    cr_assert_gt(booking, 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "slot"), "status")),
                     "booked");

    /* Durable, exactly once, with its events. */
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'booked'"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'booked'"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE status = 'booked'"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind IN ('slot.published',"
                                    " 'request.created', 'offer.made', 'booking.created')"),
                 6);

    /* A retried confirmation gets the same booking; a retried creation the
     * same request. */
    json_t *again = post(path, FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_integer_value(json_object_get(again, "booking_id")), booking);
    json_t *req2 = create("c-1", "24h", &st);
    cr_assert(st == 200 || st == 201);
    cr_assert_eq(json_integer_value(json_object_get(req2, "request_id")), id);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request"), 1);
    json_decref(req);
    json_decref(req2);
    json_decref(b);
    json_decref(again);
}

Test(dispatch, decline_offers_the_next_slot_and_never_the_declined_one)
{
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    int st;
    json_t *req = create("c-2", "24h", &st);
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    json_int_t first = held_slot(req);
    char path[64], body[96];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/decline", (long long)id);
    snprintf(body, sizeof(body), "{\"slot_id\": %lld, \"reason\": \"too_far\"}", (long long)first);
    json_t *r = post(path, FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 200, "decline answered %d: %s", st, json_dumps(r, 0));
    json_int_t second = held_slot(r);
    cr_assert_gt(second, 0);
    cr_assert_neq(second, first);
    json_decref(r);
    /* Declining the second leaves it waiting: the first is not offered
     * again, though it is free. */
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)second);
    r = post(path, FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "waiting");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'free'"), 2);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT cardinality(declined_slots) FROM request"), 2);
    json_decref(r);
    json_decref(req);
}

Test(dispatch, waiting_request_is_served_by_a_new_slot_before_it_counts_as_capacity)
{
    int st;
    json_t *req = create("c-3", "24h", &st);
    cr_assert_eq(st, 201);
    cr_assert_str_eq(json_string_value(json_object_get(req, "status")), "waiting");
    fix_publish(&f, FIX_GP_2, 1, 90, 30, "[\"pharmacy\"]");
    cr_assert(wait_for("SELECT count(*) FROM request WHERE status = 'offered'", 1, 5000));
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held'"), 1);
    /* So the new slot is not free capacity. */
    json_t *cap = fix_api(&f, "GET", "/api/v1/capacity?horizon=24h", FIX_SAS, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_integer_value(json_object_get(cap, "total")), 0);
    json_decref(cap);
    json_decref(req);
}

Test(dispatch, audience_and_release_rule)
{
    /* SAS-only slots are not offered to a pharmacy... */
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"sas\"]");
    int st;
    json_t *req = create("c-4", "24h", &st);
    cr_assert_str_eq(json_string_value(json_object_get(req, "status")), "waiting");
    json_decref(req);
    /* ...until their release rule opens them to every audience. */
    char body[512];
    time_t start = time(NULL) + 7200;
    struct tm tm;
    gmtime_r(&start, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:00Z", &tm);
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"sas\"],"
             " \"release_minutes\": 180, \"slots\": [{\"start\": \"%s\", \"duration_min\": 20}]}",
             (long long)f.site_gp1, when);
    json_t *r = post("/api/v1/slots", FIX_GP_1, body, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(r, 0));
    json_decref(r);
    cr_assert(wait_for("SELECT count(*) FROM request WHERE status = 'offered'", 1, 8000),
              "the released slot was not offered to the waiting pharmacy request");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'held' AND "
                                    "release_minutes = 180"),
                 1);
}

Test(dispatch, cancellations_free_the_slot)
{
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    int st;
    json_t *req = create("c-5", "24h", &st);
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/cancel", (long long)id);
    json_t *r = post(path, FIX_PHARMACY, "{\"reason\": \"patient_seen_elsewhere\"}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "cancelled");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'free'"), 2);
    json_decref(r);
    json_decref(req);

    /* A booking cancelled by the practitioner frees the slot and sends the
     * request back to the queue, where it is offered the other slot. */
    req = create("c-6", "24h", &st);
    id = json_integer_value(json_object_get(req, "request_id"));
    json_int_t slot = held_slot(req);
    char body[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)id);
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)slot);
    json_t *b = post(path, FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 200);
    json_int_t booking = json_integer_value(json_object_get(b, "booking_id"));
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)booking);
    r = post(path, FIX_GP_1, "{\"reason\": \"practitioner_unavailable\"}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert(wait_for("SELECT count(*) FROM request WHERE status = 'offered'", 1, 5000),
              "the request did not get a new offer");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'cancelled'"), 1);
    json_decref(r);
    /* The other practitioner cannot cancel a booking that is not theirs. */
    r = post(path, FIX_GP_2, "{\"reason\": \"other\"}", &st);
    cr_assert_eq(st, 404);
    json_decref(r);
    json_decref(b);
    json_decref(req);
}

Test(dispatch, hold_expiry_releases_the_slot)
{
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    int st;
    json_t *req = create("c-7", "24h", &st);
    cr_assert_str_eq(json_string_value(json_object_get(req, "status")), "offered");
    /* Make the hold run out as if three minutes had passed; snpd's
     * housekeeping and timers release it. */
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET hold_expires_at = now() - interval '1 second' "
                               "WHERE status = 'held'"));
    cr_assert(wait_for("SELECT count(*) FROM event WHERE kind = 'offer.expired'", 1, 10000),
              "the hold was never released");
    json_decref(req);
    /* Confirming now is refused cleanly, never a 500. */
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    (void)id;
}

Test(dispatch, outcome_window)
{
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    int st;
    json_t *req = create("c-8", "24h", &st);
    char path[64], body[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept",
             (long long)json_integer_value(json_object_get(req, "request_id")));
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)held_slot(req));
    json_t *b = post(path, FIX_PHARMACY, body, &st);
    json_int_t booking = json_integer_value(json_object_get(b, "booking_id"));
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/outcome", (long long)booking);
    json_t *r = post(path, FIX_GP_1, "{\"outcome\": \"attended\"}", &st);
    cr_assert_eq(st, 409, "an outcome before the appointment: %d", st);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                     "too_late");
    json_decref(r);
    /* Once the appointment has started, it is accepted... */
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET starts_at = now() - interval '1 hour'"));
    r = post(path, FIX_GP_1, "{\"outcome\": \"no_show\", \"note\": \"absent\"}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE outcome = 'no_show'"), 1);
    json_decref(r);
    /* ...but only from the practitioner booked, and within the delay. */
    r = post(path, FIX_GP_2, "{\"outcome\": \"attended\"}", &st);
    cr_assert_eq(st, 404);
    json_decref(r);
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET starts_at = now() - interval '8 days'"));
    r = post(path, FIX_GP_1, "{\"outcome\": \"attended\"}", &st);
    cr_assert_eq(st, 409);
    json_decref(r);
    json_decref(b);
    json_decref(req);
}

Test(dispatch, withdraw_list_and_capacity)
{
    fix_publish(&f, FIX_GP_1, 3, 30, 30, "[\"sas\", \"pharmacy\"]");
    fix_publish(&f, FIX_GP_2, 2, 30, 60, "[\"sas\"]");
    int st;
    json_t *cap = fix_api(&f, "GET", "/api/v1/capacity?horizon=4h", FIX_SAS, NULL, &st);
    cr_assert_eq(st, 200, "%d", st);
    cr_assert_eq(json_integer_value(json_object_get(cap, "total")), 5);
    json_t *aud = json_object_get(cap, "by_audience");
    cr_assert_eq(json_integer_value(json_object_get(aud, "pharmacy")), 3);
    cr_assert_eq(json_integer_value(json_object_get(aud, "sas")), 5);
    cr_assert_eq(json_array_size(json_object_get(cap, "slots")), 5, "sas sees the slot list");
    json_decref(cap);
    /* Near Allaire within 2 km: only GP2's practice. */
    cap = fix_api(&f, "GET", "/api/v1/capacity?horizon=4h&commune_insee=56001&radius_km=2", FIX_SAS,
                  NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(cap, "total")), 2, "%s", json_dumps(cap, 0));
    json_decref(cap);
    /* A pharmacy gets counts, not the list. */
    cap = fix_api(&f, "GET", "/api/v1/capacity?horizon=4h", FIX_PHARMACY, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_null(json_object_get(cap, "slots"));
    json_decref(cap);

    json_t *list = fix_api(&f, "GET", "/api/v1/slots", FIX_GP_1, NULL, &st);
    cr_assert_eq(st, 200);
    json_t *slots = json_object_get(list, "slots");
    cr_assert_eq(json_array_size(slots), 3, "a GP lists only their own slots");
    json_int_t victim = json_integer_value(json_object_get(json_array_get(slots, 0), "slot_id"));
    char body[64];
    snprintf(body, sizeof(body), "{\"slot_ids\": [%lld]}", (long long)victim);
    json_t *r = post("/api/v1/slots/withdraw", FIX_GP_2, body, &st);
    cr_assert_eq(st, 404, "another GP's slot: %d", st);
    json_decref(r);
    r = post("/api/v1/slots/withdraw", FIX_GP_1, body, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_eq(json_integer_value(json_object_get(r, "count")), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'withdrawn'"), 1);
    json_decref(r);
    cap = fix_api(&f, "GET", "/api/v1/capacity?horizon=4h", FIX_SAS, NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(cap, "total")), 4);
    json_decref(cap);
    json_decref(list);
}

Test(dispatch, pattern_and_shift_publication)
{
    char body[512];
    time_t t = time(NULL) + 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[16];
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"sas\"],"
             " \"pattern\": {\"from_date\": \"%s\", \"to_date\": \"%s\","
             " \"days\": [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"],"
             " \"from_time\": \"14:00\", \"to_time\": \"18:00\", \"every_min\": 20}}",
             (long long)f.site_gp1, day, day);
    int st;
    json_t *r = post("/api/v1/slots", FIX_GP_1, body, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(r, 0));
    cr_assert_eq(json_integer_value(json_object_get(r, "count")), 12);
    json_decref(r);
    /* The same again collides with every slot: nothing new. */
    r = post("/api/v1/slots", FIX_GP_1, body, &st);
    cr_assert_eq(json_integer_value(json_object_get(r, "count")), 0);
    cr_assert_eq(json_integer_value(json_object_get(r, "skipped")), 12);
    json_decref(r);
    /* A CSNP afternoon shift every 15 minutes: 16 slots, at 14:00 local. */
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"sas\"],"
             " \"shift\": {\"date\": \"%s\", \"half_day\": \"afternoon\", \"every_min\": 15}}",
             (long long)f.site_csnp, day);
    r = post("/api/v1/slots", FIX_GP_2, body, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(r, 0));
    cr_assert_eq(json_integer_value(json_object_get(r, "count")), 16);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE site_id = (SELECT id FROM "
                                    "site WHERE kind = 'csnp') AND to_char(starts_at AT TIME ZONE "
                                    "'Europe/Paris', 'HH24:MI') = '14:00'"),
                 1);
    /* A shift is for a CSNP only. */
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"sas\"],"
             " \"shift\": {\"date\": \"%s\", \"half_day\": \"morning\", \"every_min\": 15}}",
             (long long)f.site_gp1, day);
    r = post("/api/v1/slots", FIX_GP_1, body, &st);
    cr_assert_eq(st, 400);
    json_decref(r);
}

Test(dispatch, authentication_and_roles)
{
    int st;
    char *body = fix_request_body("c-9", "24h");
    json_t *r = fix_api_port(f.snpd.port, "POST", "/api/v1/requests", NULL, body, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                     "unauthenticated");
    json_decref(r);
    r = fix_api_port(f.snpd.port, "POST", "/api/v1/requests",
                     "snp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", body, &st);
    cr_assert_eq(st, 401);
    json_decref(r);
    /* A GP may not create requests; a pharmacy may not publish. */
    r = fix_api(&f, "POST", "/api/v1/requests", FIX_GP_1, body, &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    r = post("/api/v1/slots", FIX_PHARMACY,
             "{\"site_id\": 1, \"mode\": \"office\", \"audiences\": [\"sas\"],"
             " \"slots\": [{\"start\": \"2030-01-01T10:00:00Z\", \"duration_min\": 20}]}",
             &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    /* Revoked and expired tokens, never used before (so not cached). */
    PQclear(pgtest_exec(&f.pg, "UPDATE api_token SET revoked_at = now() WHERE role = 'desk'"));
    r = fix_api(&f, "GET", "/api/v1/capacity?horizon=2h", FIX_DESK, NULL, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                     "token_revoked");
    json_decref(r);
    PQclear(pgtest_exec(&f.pg, "UPDATE api_token SET expires_at = now() - interval '1 day' "
                               "WHERE role = 'sas'"));
    r = fix_api(&f, "GET", "/api/v1/capacity?horizon=2h", FIX_SAS, NULL, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                     "token_expired");
    json_decref(r);
    /* Another territory's requester sees nothing of this one. */
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    json_t *mine = create("c-10", "24h", &st);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/cancel",
             (long long)json_integer_value(json_object_get(mine, "request_id")));
    r = post(path, FIX_OTHER_PHARMACY, "{\"reason\": \"other\"}", &st);
    cr_assert_eq(st, 404, "%d", st);
    json_decref(r);
    r = fix_api(&f, "GET", "/api/v1/capacity?horizon=24h", FIX_OTHER_PHARMACY, NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(r, "total")), 0);
    json_decref(r);
    json_decref(mine);
    free(body);
}

Test(dispatch, bad_input_gets_a_structured_error)
{
    int st;
    struct {
        const char *body;
        int status;
        const char *code;
    } cases[] = {
        {"{", 400, "bad_json"},
        {"{\"client_ref\": \"x\", \"client_ref\": \"y\"}", 400, "duplicate_key"},
        {"{\"client_ref\": \"x\"}", 400, "missing_field"},
        {"{\"client_ref\": \"x\", \"bogus\": 1}", 400, "unknown_field"},
        {"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", 400, "too_deep"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *r = post("/api/v1/requests", FIX_PHARMACY, cases[i].body, &st);
        cr_assert_eq(st, cases[i].status, "case %zu: %d", i, st);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
                         cases[i].code, "case %zu", i);
        json_decref(r);
    }
    /* A bad commune names the field. */
    char *body = fix_request_body("c-11", "24h");
    char *p = strstr(body, "35236");
    memcpy(p, "99999", 5);
    json_t *r = post("/api/v1/requests", FIX_PHARMACY, body, &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "field")),
                     "patient.commune_insee");
    json_decref(r);
    free(body);
}

Test(dispatch, reads_show_patients_only_to_those_concerned_and_are_audited)
{
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    int st;
    json_t *req = create("c-12", "24h", &st);
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    char path[80], body[64];
    long audits = pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'");

    /* The requester reads its request with the patient; the read is audited. */
    snprintf(path, sizeof(path), "/api/v1/requests/%lld", (long long)id);
    json_t *r = fix_api(&f, "GET", path, FIX_PHARMACY, NULL, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "patient"), "initials")),
                     "J. D.");
    cr_assert_not_null(json_object_get(r, "offer"), "an offered request shows its offer");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'"),
                 audits + 1);
    json_decref(r);
    /* Another organisation gets nothing, and nothing is audited. */
    r = fix_api(&f, "GET", path, FIX_OTHER_PHARMACY, NULL, &st);
    cr_assert_eq(st, 404);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'"),
                 audits + 1);

    /* Booked: the GP booked sees the patient in their bookings (audited);
     * the other GP sees no booking. */
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)id);
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)held_slot(req));
    json_decref(post(path, FIX_PHARMACY, body, &st));
    cr_assert_eq(st, 200);
    r = fix_api(&f, "GET", "/api/v1/bookings", FIX_GP_1, NULL, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    json_t *bookings = json_object_get(r, "bookings");
    cr_assert_eq(json_array_size(bookings), 1);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(bookings, 0), "patient"), "initials")),
                     "J. D.");
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read' "
                                    "AND role = 'gp'"),
                 1);
    r = fix_api(&f, "GET", "/api/v1/bookings", FIX_GP_2, NULL, &st);
    cr_assert_eq(json_array_size(json_object_get(r, "bookings")), 0);
    json_decref(r);
    /* The requester's list shows it booked. */
    r = fix_api(&f, "GET", "/api/v1/requests?status=booked", FIX_PHARMACY, NULL, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_eq(json_array_size(json_object_get(r, "requests")), 1);
    json_decref(r);
    json_decref(req);
}

Test(dispatch, emergency_redirection_slip_and_refusal)
{
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"emergency\"]");
    int st;
    const char *body = "{\"client_ref\": \"urg-1\", \"patient\": {\"display_name\": \"Paul Le "
                       "Bihan\", \"birth_year\": 1990, \"sex\": \"male\", \"commune_insee\": "
                       "\"35236\", \"has_mt\": true}, \"motif\": {\"code\": \"minor_trauma\"}, "
                       "\"urgency\": \"same_day\", \"source\": {\"emergency\": {\"triage_level\": "
                       "5, \"senior_rpps\": \"10999900037\"}}}";
    /* An emergency redirection needs its triage details. */
    json_t *bad = post("/api/v1/requests", FIX_EMERGENCY,
                       "{\"client_ref\": \"urg-0\", \"patient\": {\"initials\": \"P\", "
                       "\"birth_year\": 1990, \"sex\": \"male\", \"commune_insee\": \"35236\", "
                       "\"has_mt\": false}, \"motif\": {\"code\": \"other\"}, \"urgency\": "
                       "\"same_day\"}",
                       &st);
    cr_assert_eq(st, 400, "%d", st);
    json_decref(bad);
    json_t *req = post("/api/v1/requests", FIX_EMERGENCY, body, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(req, 0));
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    json_int_t slot = held_slot(req);
    if (slot == 0) {
        /* Same-day: a slot after local midnight is not eligible; the test
         * then has nothing to book (late-evening run). */
        json_decref(req);
        fix_skip(&f, "no same-day slot left at this hour");
        return;
    }
    char path[80], b[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)id);
    snprintf(b, sizeof(b), "{\"slot_id\": %lld}", (long long)slot);
    json_decref(post(path, FIX_EMERGENCY, b, &st));
    cr_assert_eq(st, 200);
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/slip", (long long)id);
    json_t *slip = fix_api(&f, "GET", path, FIX_EMERGENCY, NULL, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(slip, 0));
    cr_assert_str_eq(json_string_value(json_object_get(slip, "display_name")), "Paul Le Bihan");
    cr_assert_str_eq(json_string_value(json_object_get(slip, "senior_rpps")), "10999900037");
    cr_assert(strstr(json_string_value(json_object_get(slip, "text")), "Rendez-vous le"));
    cr_assert(json_is_false(json_object_get(slip, "refused")));
    json_decref(slip);
    /* The patient refuses: the request ends, the slot is free again. */
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/slip/refuse", (long long)id);
    json_t *r = post(path, FIX_EMERGENCY, "{}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE slip_refused"), 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'free'"), 1);
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/slip", (long long)id);
    slip = fix_api(&f, "GET", path, FIX_EMERGENCY, NULL, &st);
    cr_assert(json_is_true(json_object_get(slip, "refused")));
    json_decref(slip);
    json_decref(req);
}

Test(dispatch, coordinator_changes_settings)
{
    int st;
    json_t *r = fix_api(&f, "PATCH", "/api/v1/territory/settings", FIX_COORDINATOR,
                        "{\"hold_seconds\": 120, \"weights\": {\"distance_per_km\": 0.5}}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    json_t *s = json_object_get(r, "settings");
    cr_assert_eq(json_integer_value(json_object_get(s, "hold_seconds")), 120);
    cr_assert_float_eq(
        json_number_value(json_object_get(json_object_get(s, "weights"), "distance_per_km")), 0.5,
        1e-9);
    json_decref(r);
    r = fix_api(&f, "PATCH", "/api/v1/territory/settings", FIX_GP_1, "{\"hold_seconds\": 60}", &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'settings.update'"),
                 1);
    /* The indicator and retention settings: shown with their defaults, and
     * once set, read by the SQL that uses them. */
    r = fix_api(&f, "GET", "/api/v1/territory", FIX_COORDINATOR, NULL, &st);
    s = json_object_get(r, "settings");
    cr_assert_eq(json_integer_value(json_object_get(s, "indicator_mask_threshold")), 5);
    cr_assert_eq(json_integer_value(json_object_get(s, "audit_retention_months")), 12);
    json_decref(r);
    r = fix_api(&f, "PATCH", "/api/v1/territory/settings", FIX_COORDINATOR,
                "{\"indicator_mask_threshold\": 10, \"contract_start_month\": 4}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    s = json_object_get(r, "settings");
    cr_assert_eq(json_integer_value(json_object_get(s, "indicator_mask_threshold")), 10);
    cr_assert_eq(json_integer_value(json_object_get(s, "contract_start_month")), 4);
    cr_assert_eq(json_integer_value(json_object_get(s, "hold_seconds")), 120);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT snp_setting_int('test-t', "
                                    "'indicator_mask_threshold', 5, 2, 100)"),
                 10);
    r = fix_api(&f, "PATCH", "/api/v1/territory/settings", FIX_COORDINATOR,
                "{\"indicator_mask_threshold\": 1}", &st);
    cr_assert_eq(st, 400, "below the declared minimum");
    json_decref(r);
    /* The new hold applies to the next offer. */
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    json_t *req = create("c-13", "24h", &st);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT (round(extract(epoch FROM hold_expires_at - now())) "
                                    "BETWEEN 100 AND 121)::int FROM slot WHERE status = 'held'"),
                 1);
    json_decref(req);
}

Test(dispatch, a_neighbour_territory_books_and_the_practitioner_sees_it)
{
    /* test-other may borrow test-t's capacity (as a SAS of the département
     * borrows a CPTS's). */
    PQclear(pgtest_exec(&f.pg, "INSERT INTO territory_neighbour VALUES ('test-other', 'test-t')"));
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 15000), 0);
    fixture_start(&f);
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    int st;
    char *body = fix_request_body("far-1", "24h");
    char *p = strstr(body, "35236");
    memcpy(p, "35238", 5); /* a patient in Rennes, a commune of test-other */
    json_t *req = post("/api/v1/requests", FIX_OTHER_PHARMACY, body, &st);
    free(body);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(req, 0));
    json_int_t slot = held_slot(req);
    cr_assert_gt(slot, 0, "the neighbour's slot was not offered");
    char path[80], b[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept",
             (long long)json_integer_value(json_object_get(req, "request_id")));
    snprintf(b, sizeof(b), "{\"slot_id\": %lld}", (long long)slot);
    json_t *bk = post(path, FIX_OTHER_PHARMACY, b, &st);
    cr_assert_eq(st, 200);
    json_int_t booking = json_integer_value(json_object_get(bk, "booking_id"));
    json_decref(bk);
    json_decref(req);
    /* The practitioner, of test-t, sees the booking and may cancel it. */
    json_t *list = fix_api(&f, "GET", "/api/v1/bookings", FIX_GP_1, NULL, &st);
    cr_assert_eq(json_array_size(json_object_get(list, "bookings")), 1);
    json_decref(list);
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)booking);
    json_t *r = post(path, FIX_GP_1, "{\"reason\": \"practitioner_unavailable\"}", &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    json_decref(r);
}

/* Reads one HTTP/1.1 response with a Content-Length from `fd`; returns its
 * status or -1.  `buf` keeps what was read beyond it. */
static int read_response(int fd, char *buf, size_t size, size_t *len)
{
    for (;;) {
        char *eoh = *len ? memmem(buf, *len, "\r\n\r\n", 4) : NULL;
        if (eoh) {
            int status = 0;
            long body = 0;
            sscanf(buf, "HTTP/1.1 %d", &status);
            char *cl = strcasestr(buf, "content-length:");
            if (cl && cl < eoh)
                body = strtol(cl + 15, NULL, 10);
            size_t whole = (size_t)(eoh - buf) + 4 + (size_t)body;
            if (*len >= whole) {
                memmove(buf, buf + whole, *len - whole);
                *len -= whole;
                return status;
            }
        }
        if (*len == size)
            return -1;
        ssize_t n = read(fd, buf + *len, size - *len);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
    }
}

Test(dispatch, http_requests_are_rate_limited_per_connection)
{
    int fd = http_connect(f.snpd.port);
    cr_assert(fd >= 0);
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET /api/v1/territory HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     f.token[FIX_SAS]);
    static char buf[1 << 16];
    size_t len = 0;
    int ok = 0, limited = 0;
    for (int i = 0; i < 60; i++) {
        cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
        int status = read_response(fd, buf, sizeof(buf), &len);
        ok += status == 200;
        limited += status == 429;
    }
    close(fd);
    /* A burst of 40, then 20 per second: most of the rest is refused. */
    cr_assert_geq(ok, 40, "%d answered", ok);
    cr_assert_gt(limited, 0, "no request was rate limited (%d answered)", ok);
    /* Another connection has its own bucket. */
    int st;
    json_t *r = fix_api(&f, "GET", "/api/v1/territory", FIX_SAS, NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(r);
}
