/* The rota of the CSNP shifts (issue 15, section 1), end to end on a real
 * PostgreSQL through two snpd processes sharing it:
 *
 *   - a shift published before anyone is named is booked by a pharmacy;
 *     the coordinator sees it unfilled with one patient nobody will see;
 *   - the coordinator names a practitioner on duty through process A; the
 *     practitioner, connected to process B, receives the booking as
 *     booking.created, lists it with the patient and reports the outcome;
 *     B's memory shows the practitioner on the shift's slots (capacity of
 *     the SAS), and a slot published later in the shift is theirs at once;
 *   - every slot handed over, or published in a shift already assigned,
 *     is an event slot.assigned with the duty status, and the assignment
 *     is audited;
 *   - what may not be done: unknown or foreign shifts and practitioners,
 *     half an assignment, a practitioner already busy at that time, a gp
 *     assigning or asking for unfilled shifts, a period of more than 92
 *     days; assigning again changes nothing; freeing the shift gives the
 *     free slots back to nobody.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "clients/lib/snpclient.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"
#include "tests/support/wait.h"

#define ANSWER_MS 10000

static struct fixture f;
static char tomorrow[16]; /* the territory's next local day, YYYY-MM-DD */

static void setup(void)
{
    fixture_setup(&f, "{}");
    fixture_start(&f);
    cr_assert_eq(snp_proto_init(), 0);
    PGresult *r = fix_sql(&f,
                          "SELECT to_char((now() AT TIME ZONE 'Europe/Paris')::date + 1, "
                          "'YYYY-MM-DD')",
                          0, NULL);
    snprintf(tomorrow, sizeof(tomorrow), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void teardown(void)
{
    fixture_teardown(&f);
}

TestSuite(rota, .init = setup, .fini = teardown, .timeout = 120);

static json_t *call(int port, const char *type, const char *method, const char *path,
                    enum fix_role as, const char *body, int *st)
{
    return fix_api_checked(port, type, method, path, f.token[as], body, st);
}

static json_int_t num(json_t *o, const char *path)
{
    return json_integer_value(fix_json_at(o, path));
}

/* Publishes tomorrow's morning shift at the CSNP, nobody named, 30-minute
 * slots open to pharmacies and the SAS; returns the number of slots. */
static json_int_t publish_shift(void)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"pharmacy\", \"sas\"],"
             " \"shift\": {\"date\": \"%s\", \"half_day\": \"morning\", \"every_min\": 30}}",
             (long long)f.site_csnp, tomorrow);
    int st;
    json_t *r =
        call(f.snpd.port, "slot.publish", "POST", "/api/v1/slots", FIX_COORDINATOR, body, &st);
    cr_assert_eq(st, 201, "%d", st);
    json_int_t n = num(r, "count");
    json_decref(r);
    cr_assert_eq(n, 8, "08:00-12:00 in 30-minute slots");
    return n;
}

/* The shifts from tomorrow to tomorrow as `as` sees them (`extra` is
 * appended to the query). */
static json_t *shifts(int port, enum fix_role as, const char *extra)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/shifts?from=%s&to=%s%s", tomorrow, tomorrow, extra);
    int st;
    json_t *r = call(port, "shift.list", "GET", path, as, NULL, &st);
    cr_assert_eq(st, 200, "%d", st);
    json_t *list = json_incref(json_object_get(r, "shifts"));
    json_decref(r);
    return list;
}

static json_t *assign(json_int_t shift, const char *body, enum fix_role as, int *st)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/shifts/%lld/assign", (long long)shift);
    return fix_api(&f, "POST", path, as, body, st);
}

static const char *error_code(json_t *r)
{
    return fix_json_str(r, "error.code");
}

/* Waits up to `ms` for a push of `event` on `w`; returns it or NULL. */
static json_t *wait_push(struct snpclient_ws *w, const char *event, int ms)
{
    int64_t end = test_now_ms() + ms;
    for (int64_t left; (left = end - test_now_ms()) > 0;) {
        char *text = NULL;
        int rc = snpclient_ws_recv(w, (int)left, &text);
        if (rc == SNPCLIENT_ECLOSED)
            break;
        if (rc != 0)
            continue;
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        const char *e = j ? fix_json_str(j, "event") : NULL;
        if (e && strcmp(e, event) == 0)
            return j;
        json_decref(j);
    }
    return NULL;
}

/* Tomorrow at local time `hhmm` ("09:00") in the territory, as UTC RFC 3339. */
static void tomorrow_at(const char *hhmm, char out[32])
{
    const char *params[] = {hhmm};
    PGresult *q = fix_sql(&f,
                          "SELECT to_char(((now() AT TIME ZONE 'Europe/Paris')::date + 1 "
                          "+ $1::time) AT TIME ZONE 'Europe/Paris' AT TIME ZONE 'UTC', "
                          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                          1, params);
    snprintf(out, 32, "%s", PQgetvalue(q, 0, 0));
    PQclear(q);
}

/* Publishes, as `as`, one slot of `duration` minutes at the CSNP tomorrow at
 * local time `hhmm`, open to pharmacies; returns the answer, *st its status. */
static json_t *publish_at_csnp(enum fix_role as, const char *hhmm, int duration, int *st)
{
    char start[32], body[256];
    tomorrow_at(hhmm, start);
    snprintf(body, sizeof(body),
             "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"pharmacy\"],"
             " \"slots\": [{\"start\": \"%s\", \"duration_min\": %d}]}",
             (long long)f.site_csnp, start, duration);
    return fix_api(&f, "POST", "/api/v1/slots", as, body, st);
}

/* The free slots as one process shows them (capacity.query as the SAS). */
struct shift_view {
    int port;
    json_int_t nslots;
};

/* Whether GP2 is named on the shift's free slots (all of them but one). */
static bool names_gp2(void *arg)
{
    struct shift_view *v = arg;
    int st;
    json_t *r =
        fix_api_port(v->port, "GET", "/api/v1/capacity?horizon=48h", f.token[FIX_SAS], NULL, &st);
    json_t *slots = json_object_get(r, "slots");
    size_t k;
    json_t *s;
    int named = 0;
    json_array_foreach (slots, k, s) {
        const char *rp = fix_json_str(s, "practitioner.rpps");
        named += rp && strcmp(rp, FIX_GP2) == 0;
    }
    json_decref(r);
    return named >= (int)v->nslots - 1;
}

Test(rota, the_booking_of_an_unfilled_shift_reaches_the_practitioner_named_on_duty)
{
    json_int_t nslots = publish_shift();
    /* A second process on the same database; GP2 listens there. */
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    struct snpclient *cl = snpclient_new("127.0.0.1", second.port, false);
    char err[128];
    struct snpclient_ws *gp =
        snpclient_ws_open(cl, NULL, f.token[FIX_GP_2], ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(gp, "WebSocket: %s", err);
    char *resp = NULL;
    cr_assert_eq(
        snpclient_ws_call(gp, "subscribe", "{\"topics\": [\"bookings\"]}", ANSWER_MS, &resp), 0);
    free(resp);

    /* A pharmacy books: the shift's slots are the only ones. */
    char *body = fix_request_body("rota-1", "48h");
    int st;
    json_t *r = fix_api(&f, "POST", "/api/v1/requests", FIX_PHARMACY, body, &st);
    free(body);
    cr_assert_eq(st, 201, "%d", st);
    json_int_t request = num(r, "request_id");
    json_int_t slot = num(r, "offer.slot.slot_id");
    cr_assert_gt(slot, 0, "the shift's slot is offered");
    cr_assert_null(fix_json_at(r, "offer.slot.practitioner"), "nobody is on duty yet");
    json_decref(r);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)request);
    char accept[64];
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", (long long)slot);
    r = fix_api(&f, "POST", path, FIX_PHARMACY, accept, &st);
    cr_assert_eq(st, 200, "%d", st);
    json_int_t booking = num(r, "booking_id");
    json_decref(r);

    /* The coordinator sees the shift unfilled, with a patient nobody will
     * see yet; GP2 has no booking. */
    json_t *list = shifts(f.snpd.port, FIX_COORDINATOR, "&unfilled=true");
    cr_assert_eq(json_array_size(list), 1);
    json_t *sh = json_array_get(list, 0);
    json_int_t shift = num(sh, "shift_id");
    cr_expect_eq(num(sh, "slots"), nslots);
    cr_expect_eq(num(sh, "booked"), 1);
    cr_expect_eq(num(sh, "unattended"), 1);
    cr_expect_str_eq(fix_json_str(sh, "half_day"), "morning");
    cr_expect_str_eq(fix_json_str(sh, "date"), tomorrow);
    cr_expect_null(json_object_get(sh, "practitioner"));
    json_decref(list);
    r = call(second.port, "booking.list", "GET", "/api/v1/bookings", FIX_GP_2, NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "bookings")), 0);
    json_decref(r);

    /* GP2 is named on duty, as a retired GP, through the first process. */
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"retired\"}", FIX_COORDINATOR,
               &st);
    cr_assert_eq(st, 200, "%d %s", st, r ? json_dumps(r, 0) : "");
    cr_expect_eq(num(r, "slots"), nslots);
    cr_expect_eq(num(r, "bookings"), 1);
    cr_expect_str_eq(fix_json_str(r, "shift.practitioner.rpps"), FIX_GP2);
    cr_expect_str_eq(fix_json_str(r, "shift.duty_status"), "retired");
    cr_expect_eq(num(r, "shift.unattended"), 0);
    json_decref(r);

    /* GP2, on the second process, receives the booking... */
    json_t *push = wait_push(gp, "booking.created", ANSWER_MS);
    cr_assert_not_null(push, "no booking.created on the second process");
    cr_expect_eq(num(push, "data.booking_id"), booking);
    cr_expect_str_eq(fix_json_str(push, "data.slot.practitioner.rpps"), FIX_GP2);
    json_decref(push);
    /* ...sees the patient... */
    r = call(second.port, "booking.list", "GET", "/api/v1/bookings", FIX_GP_2, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "bookings")), 1);
    cr_expect_not_null(fix_json_at(r, "bookings.0.patient"), "the patient is shown to the GP");
    json_decref(r);
    /* ...and reports the outcome (before the appointment, only the
     * patient's cancellation can be). */
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/outcome", (long long)booking);
    r = fix_api_port(second.port, "POST", path, f.token[FIX_GP_2],
                     "{\"outcome\": \"cancelled_by_patient\"}", &st);
    cr_expect_eq(st, 200, "outcome.report answered %d %s", st, r ? json_dumps(r, 0) : "");
    json_decref(r);

    /* The second process's memory shows GP2 on the shift's free slots. */
    struct shift_view view = {.port = second.port, .nslots = nslots};
    bool seen = wait_until(names_gp2, &view, 10000);
    cr_expect(seen, "the second process did not learn the practitioner on duty");

    /* Unfilled shifts: none; GP2's own: this one. */
    list = shifts(f.snpd.port, FIX_COORDINATOR, "&unfilled=true");
    cr_expect_eq(json_array_size(list), 0);
    json_decref(list);
    list = shifts(second.port, FIX_GP_2, "");
    cr_assert_eq(json_array_size(list), 1);
    cr_expect_eq(num(json_array_get(list, 0), "shift_id"), shift);
    json_decref(list);
    list = shifts(second.port, FIX_GP_1, "");
    cr_expect_eq(json_array_size(list), 0, "GP1 is not on duty");
    json_decref(list);

    /* A slot published later in the shift is GP2's at once. */
    r = publish_at_csnp(FIX_COORDINATOR, "11:45", 15, &st);
    cr_assert_eq(st, 201, "%d", st);
    cr_assert_eq(num(r, "count"), 1);
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)num(r, "slot_ids.0"));
    json_decref(r);
    const char *p1[] = {sid};
    PGresult *q = fix_sql(&f, "SELECT coalesce(rpps, '') FROM slot WHERE id = $1::bigint", 1, p1);
    cr_expect_str_eq(PQgetvalue(q, 0, 0), FIX_GP2);
    PQclear(q);

    /* Each slot handed over is an event with the duty status, and so is
     * the slot published later in the assigned shift (0023: the indicators
     * read the status from it); audited. */
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'slot.assigned'"
                                    " AND data ->> 'duty_status' = 'retired'"
                                    " AND data ->> 'rpps' = '" FIX_GP2 "'"),
                 nslots + 1);
    const char *p2[] = {sid};
    cr_expect_eq(fix_sql_ll(&f,
                            "SELECT count(*) FROM event WHERE kind = 'slot.assigned'"
                            " AND slot_id = $1::bigint AND data ->> 'duty_status' = 'retired'",
                            1, p2),
                 1, "the slot published in the assigned shift has its slot.assigned event");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'shift.assign'"), 1);

    /* Another patient booked on GP2's shift; then GP1 is named on duty
     * instead: GP1 gets that booking, and GP2, on the second process, is
     * told it is not theirs any more (the first booking, whose outcome GP2
     * reported, stays GP2's). */
    body = fix_request_body("rota-2", "48h");
    r = fix_api(&f, "POST", "/api/v1/requests", FIX_PHARMACY, body, &st);
    free(body);
    cr_assert_eq(st, 201, "%d", st);
    request = num(r, "request_id");
    slot = num(r, "offer.slot.slot_id");
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)request);
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", (long long)slot);
    r = fix_api(&f, "POST", path, FIX_PHARMACY, accept, &st);
    cr_assert_eq(st, 200, "%d", st);
    booking = num(r, "booking_id");
    json_decref(r);
    push = wait_push(gp, "booking.created", ANSWER_MS);
    cr_expect_not_null(push, "GP2 on duty did not get the second booking");
    json_decref(push);
    struct snpclient_ws *gp1 =
        snpclient_ws_open(cl, NULL, f.token[FIX_GP_1], ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(gp1, "WebSocket: %s", err);
    cr_assert_eq(
        snpclient_ws_call(gp1, "subscribe", "{\"topics\": [\"bookings\"]}", ANSWER_MS, &resp), 0);
    free(resp);
    r = assign(shift, "{\"rpps\": \"" FIX_GP1 "\", \"duty_status\": \"locum\"}", FIX_COORDINATOR,
               &st);
    cr_assert_eq(st, 200, "%d", st);
    json_decref(r);
    push = wait_push(gp, "booking.handed_over", ANSWER_MS);
    cr_assert_not_null(push, "GP2 was not told the booking left them");
    cr_expect_eq(num(push, "data.booking_id"), booking);
    cr_expect_str_eq(fix_json_str(push, "data.slot.practitioner.rpps"), FIX_GP1);
    json_decref(push);
    push = wait_push(gp1, "booking.created", ANSWER_MS);
    cr_expect_not_null(push, "GP1 did not get the booking handed to them");
    json_decref(push);
    snpclient_ws_close(gp1);

    snpclient_ws_close(gp);
    snpclient_free(cl);
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
}

Test(rota, what_an_assignment_refuses_and_what_freeing_gives_back)
{
    publish_shift();
    json_t *list = shifts(f.snpd.port, FIX_COORDINATOR, "");
    cr_assert_eq(json_array_size(list), 1);
    json_int_t shift = num(json_array_get(list, 0), "shift_id");
    json_decref(list);
    int st;
    json_t *r;
    /* Half an assignment. */
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\"}", FIX_COORDINATOR, &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(error_code(r), "invalid_field");
    cr_expect_str_eq(fix_json_str(r, "error.field"), "duty_status");
    json_decref(r);
    r = assign(shift, "{\"duty_status\": \"locum\"}", FIX_COORDINATOR, &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(fix_json_str(r, "error.field"), "rpps");
    json_decref(r);
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"intern\"}", FIX_COORDINATOR,
               &st);
    cr_expect_eq(st, 400, "a status outside the list");
    json_decref(r);
    /* Unknown shift, practitioner of no territory of ours. */
    r = assign(999999, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"locum\"}", FIX_COORDINATOR,
               &st);
    cr_expect_eq(st, 404);
    json_decref(r);
    r = assign(shift, "{\"rpps\": \"10999900045\", \"duty_status\": \"locum\"}", FIX_COORDINATOR,
               &st);
    cr_expect_eq(st, 404, "a practitioner who does not practise here");
    json_decref(r);
    /* A gp names nobody and sees no unfilled shift. */
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"locum\"}", FIX_GP_2, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/shifts?from=%s&to=%s&unfilled=true", tomorrow, tomorrow);
    r = fix_api(&f, "GET", path, FIX_GP_2, NULL, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    /* More than 92 days, or backwards. */
    r = fix_api(&f, "GET", "/api/v1/shifts?from=2026-01-01&to=2026-06-01", FIX_COORDINATOR, NULL,
                &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(fix_json_str(r, "error.field"), "to");
    json_decref(r);
    r = fix_api(&f, "GET", "/api/v1/shifts?from=2026-02-01&to=2026-01-01", FIX_COORDINATOR, NULL,
                &st);
    cr_expect_eq(st, 400);
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM shift WHERE rpps IS NOT NULL"), 0,
                 "nothing refused was written");

    /* GP1 already sees patients at the CSNP at 09:00 tomorrow: assigning
     * them the shift would give them two slots at once. */
    int64_t own = 0;
    {
        r = publish_at_csnp(FIX_GP_1, "09:00", 20, &st);
        cr_assert_eq(st, 201, "%d", st);
        own = num(r, "slot_ids.0");
        json_decref(r);
    }
    cr_assert_gt(own, 0);
    r = assign(shift, "{\"rpps\": \"" FIX_GP1 "\", \"duty_status\": \"independent\"}",
               FIX_COORDINATOR, &st);
    cr_expect_eq(st, 409, "%d", st);
    cr_expect_str_eq(error_code(r), "conflict");
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE rpps = '" FIX_GP1 "'"), 1,
                 "the refused assignment handed nothing over");

    /* GP2 then: assigning again the same changes nothing. */
    const char *gp2 = "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"locum\"}";
    r = assign(shift, gp2, FIX_COORDINATOR, &st);
    cr_assert_eq(st, 200, "%d", st);
    cr_expect_eq(num(r, "slots"), 8);
    json_decref(r);
    r = assign(shift, gp2, FIX_COORDINATOR, &st);
    cr_expect_eq(st, 200);
    cr_expect_eq(num(r, "slots"), 0, "a repeat hands nothing over");
    json_decref(r);
    /* A new status only: the slots stay, the events say it. */
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"resident\"}", FIX_COORDINATOR,
               &st);
    cr_expect_eq(st, 200);
    cr_expect_str_eq(fix_json_str(r, "shift.duty_status"), "resident");
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'slot.assigned'"
                                    " AND data ->> 'duty_status' = 'resident'"),
                 8);
    /* Freeing the shift gives its free slots back to nobody. */
    r = assign(shift, "{}", FIX_COORDINATOR, &st);
    cr_expect_eq(st, 200);
    cr_expect_null(fix_json_at(r, "shift.practitioner"));
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE rpps = '" FIX_GP2 "'"), 0);
    list = shifts(f.snpd.port, FIX_COORDINATOR, "&unfilled=true");
    cr_expect_eq(json_array_size(list), 1);
    json_decref(list);
    /* Three changes; the repeat changed nothing and is not audited. */
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'shift.assign'"), 3);
}

/* The coordinator chooses the practitioner on duty among the territory's
 * (territory.get lists them for coordinators and admins, by name); other
 * roles do not get the list. */
Test(rota, the_coordinator_sees_the_territorys_practitioners)
{
    int st;
    json_t *r =
        call(f.snpd.port, "territory.get", "GET", "/api/v1/territory", FIX_COORDINATOR, NULL, &st);
    cr_assert_eq(st, 200, "%d", st);
    json_t *list = json_object_get(r, "practitioners");
    cr_assert_eq(json_array_size(list), 2, "the fixture's two GPs");
    bool gp1 = false, gp2 = false;
    size_t i;
    json_t *p;
    json_array_foreach (list, i, p) {
        const char *rpps = fix_json_str(p, "rpps");
        gp1 = gp1 || (rpps && strcmp(rpps, FIX_GP1) == 0);
        gp2 = gp2 || (rpps && strcmp(rpps, FIX_GP2) == 0);
        cr_expect(fix_json_str(p, "family_name") && fix_json_str(p, "given_name"));
    }
    cr_expect(gp1 && gp2);
    cr_expect_leq(strcmp(fix_json_str(list, "0.family_name"), fix_json_str(list, "1.family_name")),
                  0, "by family name");
    json_decref(r);
    r = call(f.snpd.port, "territory.get", "GET", "/api/v1/territory", FIX_PHARMACY, NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_null(json_object_get(r, "practitioners"), "a pharmacy gets the list");
    json_decref(r);
}

/* A GP who publishes their own slots at the CSNP on a half-day nobody
 * holds is on duty for it. */
Test(rota, publishing_under_ones_own_name_takes_an_empty_shift)
{
    int st;
    json_t *r = publish_at_csnp(FIX_GP_1, "14:00", 20, &st);
    cr_assert_eq(st, 201, "%d", st);
    json_decref(r);
    json_t *list = shifts(f.snpd.port, FIX_COORDINATOR, "");
    cr_assert_eq(json_array_size(list), 1);
    json_t *sh = json_array_get(list, 0);
    cr_expect_str_eq(fix_json_str(sh, "half_day"), "afternoon");
    cr_expect_str_eq(fix_json_str(sh, "practitioner.rpps"), FIX_GP1);
    cr_expect_null(fix_json_at(sh, "duty_status"), "a status nobody gave");
    json_decref(list);
    /* The coordinator's morning shift, published for nobody, stays unfilled. */
    publish_shift();
    list = shifts(f.snpd.port, FIX_COORDINATOR, "&unfilled=true");
    cr_expect_eq(json_array_size(list), 1);
    cr_expect_str_eq(fix_json_str(json_array_get(list, 0), "half_day"), "morning");
    json_decref(list);
}

/* A reception token of the CSNP: created by the coordinator, it sees the
 * bookings on its site's slots, live and listed, even while nobody is on
 * duty, and its site's shifts; not another site's bookings, and it asks for
 * nothing. */
Test(rota, the_reception_of_the_csnp_sees_its_bookings_before_anyone_is_on_duty)
{
    publish_shift();
    /* GP1's practice has a slot too, later: not the reception's. */
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 36 * 60, 30, "[\"pharmacy\"]"), 1);
    int st;
    char body[160];
    /* Half a reception token, and a site of nowhere. */
    json_t *r = fix_api(&f, "POST", "/api/v1/tokens", FIX_COORDINATOR,
                        "{\"role\": \"reception\", \"label\": \"accueil\"}", &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(fix_json_str(r, "error.field"), "site_id");
    json_decref(r);
    r = fix_api(&f, "POST", "/api/v1/tokens", FIX_COORDINATOR,
                "{\"role\": \"pharmacy\", \"organisation_id\": 1, \"site_id\": 1}", &st);
    cr_expect_eq(st, 400, "only reception tokens name a site");
    json_decref(r);
    r = fix_api(&f, "POST", "/api/v1/tokens", FIX_COORDINATOR,
                "{\"role\": \"reception\", \"site_id\": 999999}", &st);
    cr_expect_eq(st, 400);
    json_decref(r);
    snprintf(body, sizeof(body),
             "{\"role\": \"reception\", \"site_id\": %lld, \"label\": \"accueil\"}",
             (long long)f.site_csnp);
    r = call(f.snpd.port, "token.create", "POST", "/api/v1/tokens", FIX_COORDINATOR, body, &st);
    cr_assert_eq(st, 201, "%d", st);
    char secret[64];
    snprintf(secret, sizeof(secret), "%s", fix_json_str(r, "secret"));
    cr_expect_eq(num(r, "token.site_id"), f.site_csnp);
    cr_expect_str_eq(fix_json_str(r, "token.site_name"), "CSNP de Redon");
    json_decref(r);

    /* It listens. */
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    char err[128];
    struct snpclient_ws *desk = snpclient_ws_open(cl, NULL, secret, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(desk, "WebSocket: %s", err);
    char *resp = NULL;
    cr_assert_eq(
        snpclient_ws_call(desk, "subscribe", "{\"topics\": [\"bookings\"]}", ANSWER_MS, &resp), 0);
    free(resp);
    resp = NULL;
    cr_expect_neq(
        snpclient_ws_call(desk, "subscribe", "{\"topics\": [\"requests\"]}", ANSWER_MS, &resp), 0,
        "a reception asks for nothing");
    free(resp);

    /* Two patients: one on the shift (nobody on duty), one at GP1's. */
    json_int_t booked[2];
    for (int i = 0; i < 2; i++) {
        char ref[16];
        snprintf(ref, sizeof(ref), "desk-%d", i);
        char *text = fix_request_body(ref, "48h");
        json_t *req = json_loads(text, 0, NULL);
        free(text);
        json_object_set_new(json_object_get(req, "motif"), "text",
                            json_string("Angine, test positif"));
        r = fix_api_json(&f, "POST", "/api/v1/requests", FIX_PHARMACY, req, &st);
        cr_assert_eq(st, 201, "%d", st);
        json_int_t request = num(r, "request_id");
        /* The first takes the shift's first slot, the second GP1's. */
        json_int_t slot = i == 0 ? num(r, "offer.slot.slot_id")
                                 : pgtest_long(&f.pg, "SELECT id FROM slot WHERE rpps = '" FIX_GP1
                                                      "' AND status <> 'withdrawn'");
        json_decref(r);
        char path[64], accept[48];
        snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)request);
        snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", (long long)slot);
        r = fix_api(&f, "POST", path, FIX_PHARMACY, accept, &st);
        cr_assert_eq(st, 200, "%d %s", st, r ? json_dumps(r, 0) : "");
        booked[i] = num(r, "booking_id");
        json_decref(r);
    }
    json_t *push = wait_push(desk, "booking.created", ANSWER_MS);
    cr_assert_not_null(push, "the reception got no booking.created");
    cr_expect_eq(num(push, "data.booking_id"), booked[0]);
    json_decref(push);
    push = wait_push(desk, "booking.created", 1500);
    cr_expect_null(push, "the reception got another site's booking");
    json_decref(push);

    /* Listed, with the patient (audited as the reception's read). */
    r = fix_api_checked(f.snpd.port, "booking.list", "GET", "/api/v1/bookings", secret, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "bookings")), 1);
    cr_expect_eq(num(r, "bookings.0.booking_id"), booked[0]);
    cr_expect_not_null(fix_json_at(r, "bookings.0.patient"));
    cr_expect_null(fix_json_at(r, "bookings.0.motif.text"),
                   "the reception reads the requester's free text");
    cr_expect_str_eq(fix_json_str(r, "bookings.0.motif.code"), "ent");
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'"
                                    " AND role = 'reception' AND NOT 'motif_text' = ANY (fields)"),
                 1);
    /* Its site's shifts; it cannot name anyone. */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/shifts?from=%s&to=%s", tomorrow, tomorrow);
    r = fix_api_checked(f.snpd.port, "shift.list", "GET", path, secret, NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "shifts")), 1);
    json_int_t shift = num(r, "shifts.0.shift_id");
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/shifts/%lld/assign", (long long)shift);
    r = fix_api_port(f.snpd.port, "POST", path, secret,
                     "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"locum\"}", &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    r = fix_api_port(f.snpd.port, "POST", "/api/v1/requests", secret, "{}", &st);
    cr_expect_eq(st, 403);
    json_decref(r);

    /* Naming GP2 on duty is not a new booking for the reception. */
    r = assign(shift, "{\"rpps\": \"" FIX_GP2 "\", \"duty_status\": \"locum\"}", FIX_COORDINATOR,
               &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    push = wait_push(desk, "booking.created", 1500);
    cr_expect_null(push, "the hand-over reached the reception as a new booking");
    json_decref(push);
    /* The practitioner on duty reads the motif in full. */
    r = fix_api(&f, "GET", "/api/v1/bookings", FIX_GP_2, NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_str_eq(fix_json_str(r, "bookings.0.motif.text"), "Angine, test positif");
    json_decref(r);
    snpclient_ws_close(desk);
    snpclient_free(cl);
}
