/* The SAS call record, end to end on a real PostgreSQL through snpd's HTTP
 * API: call.record for each outcome, the link to a request the regulator
 * created (and booked), call.list, the refusals (wrong role, bad outcome,
 * a request missing or not the caller organisation's, answered alike, a
 * request linked twice, a reused client_ref), and the call indicators as
 * indicators.get answers them, recomputed here from the calls the test
 * made, with masking under 5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/codec.h"
#include "tests/support/fixture.h"

static struct fixture f;

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    snp_proto_shutdown();
}

TestSuite(calls, .init = setup, .fini = teardown, .timeout = 120);

/* --- helpers ---------------------------------------------------------------------- */

/* Calls snpd with a token and checks a successful answer against the
 * declaration of `type`. */
static json_t *api(const char *type, const char *method, const char *path, const char *token,
                   const char *body, int *status)
{
    return fix_api_checked(f.snpd.port, type, method, path, token, body, status);
}

static const char *error_code(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static const char *error_field(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "field"));
}

static const char *error_message(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "message"));
}

/* call.record with `body` as `token`; returns the answer, status in *st. */
static json_t *record(const char *token, const char *body, int *st)
{
    return api("call.record", "POST", "/api/v1/calls", token, body, st);
}

/* Records a call of `outcome` (and `request_id` when > 0) as the fixture's
 * SAS, expecting 201; returns its id. */
static json_int_t record_ok(const char *outcome, json_int_t request_id)
{
    char body[160];
    if (request_id > 0)
        snprintf(body, sizeof(body), "{\"outcome\": \"%s\", \"request_id\": %lld}", outcome,
                 (long long)request_id);
    else
        snprintf(body, sizeof(body), "{\"outcome\": \"%s\"}", outcome);
    int st;
    json_t *r = record(f.token[FIX_SAS], body, &st);
    cr_assert_eq(st, 201, "call.record %s answered %d: %s", body, st, error_message(r));
    cr_assert_str_eq(json_string_value(json_object_get(r, "outcome")), outcome);
    if (request_id > 0)
        cr_assert_eq(json_integer_value(json_object_get(r, "request_id")), request_id);
    else
        cr_assert_null(json_object_get(r, "request_id"));
    json_int_t id = json_integer_value(json_object_get(r, "call_id"));
    cr_assert_gt(id, 0);
    json_decref(r);
    return id;
}

/* A request created by `token` (its organisation's) with this client_ref;
 * returns its id, and the held slot in *slot when there is one. */
static json_int_t create_request(const char *token, const char *client_ref, json_int_t *slot)
{
    char *body = fix_request_body(client_ref, "48h");
    int st;
    json_t *r = fix_api_port(f.snpd.port, "POST", "/api/v1/requests", token, body, &st);
    free(body);
    cr_assert_eq(st, 201, "request.create answered %d", st);
    json_int_t id = json_integer_value(json_object_get(r, "request_id"));
    if (slot)
        *slot = json_integer_value(
            json_object_get(json_object_get(json_object_get(r, "offer"), "slot"), "slot_id"));
    json_decref(r);
    return id;
}

/* The current month of the territory, YYYY-MM, by the database's clock. */
static void this_month(char out[8])
{
    PGresult *r = pgtest_exec(&f.pg, "SELECT to_char(now() AT TIME ZONE snp_tz('" FIX_TERRITORY
                                     "'), 'YYYY-MM')");
    snprintf(out, 8, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* indicators.get for the current month, as the coordinator. */
static json_t *indicators(void)
{
    char month[8], path[64];
    this_month(month);
    snprintf(path, sizeof(path), "/api/v1/indicators?month=%s", month);
    int st;
    json_t *r = api("indicators.get", "GET", path, f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200, "indicators.get answered %d", st);
    return r;
}

/* The visible value of indicator `name` in an indicators.get answer, or NAN
 * when it is not among the visible ones. */
static double visible(json_t *ind, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(ind, "indicators"), i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_number_value(json_object_get(v, "value"));
    return NAN;
}

/* The masking reason of `name` in an indicators.get answer, or NULL when it
 * is not masked. */
static const char *masked(json_t *ind, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(ind, "masked"), i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_string_value(json_object_get(v, "reason"));
    return NULL;
}

/* Checks that `name` is shown with `expected` when it describes 5 calls or
 * more (`base`), and masked as a small count when it describes 1 to 4. */
static void check_cell(json_t *ind, const char *name, double expected, long base)
{
    if (base >= 1 && base < 5) {
        cr_assert(isnan(visible(ind, name)), "%s is shown though it describes %ld calls", name,
                  base);
        const char *why = masked(ind, name);
        cr_assert_not_null(why, "%s (%ld calls) is neither shown nor masked", name, base);
        cr_assert_str_eq(why, "small_count", "%s", name);
        return;
    }
    double v = visible(ind, name);
    if (base >= 5)
        cr_assert(!isnan(v) || masked(ind, name), "%s is missing", name);
    if (!isnan(v))
        cr_assert(fabs(v - expected) < 1e-9, "%s: %g, expected %g", name, v, expected);
}

/* --- the tests -------------------------------------------------------------------- */

Test(calls, each_outcome_linked_listed_and_counted)
{
    /* Two slots for the SAS: the first request is offered one and books
     * it, the second is offered the other and leaves it held. */
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 2, 120, 30, "[\"sas\"]"), 2);
    json_int_t slot = 0;
    json_int_t booked = create_request(f.token[FIX_SAS], "sas-booked", &slot);
    cr_assert_gt(slot, 0, "no offer for the SAS's request");
    char path[80], accept[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)booked);
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", (long long)slot);
    int st;
    json_t *r = fix_api_port(f.snpd.port, "POST", path, f.token[FIX_SAS], accept, &st);
    cr_assert_eq(st, 200, "offer.accept answered %d", st);
    json_decref(r);
    json_int_t waiting = create_request(f.token[FIX_SAS], "sas-offered", NULL);

    /* Three calls first: every call figure describes fewer than 5 calls. */
    record_ok("advice", 0);
    record_ok("slot_request", booked);
    record_ok("prescription", 0);
    json_t *ind = indicators();
    check_cell(ind, "sas_calls", 3, 3);
    check_cell(ind, "sas_calls_by_outcome__advice", 1, 1);
    check_cell(ind, "sas_calls_slot_booked", 1, 1);
    /* Zero describes nobody: shown. */
    check_cell(ind, "sas_calls_by_outcome__other", 0, 0);
    cr_assert_eq(visible(ind, "sas_calls_by_outcome__other"), 0);
    json_decref(ind);

    /* Then the other outcomes, up to 7 calls. */
    record_ok("advice", 0);
    record_ok("sent_to_15", 0);
    record_ok("other", 0);
    record_ok("slot_request", waiting);

    /* The model of what the test recorded. */
    struct {
        const char *outcome;
        long n;
    } by[] = {
        {"advice", 2}, {"prescription", 1}, {"slot_request", 2}, {"sent_to_15", 1}, {"other", 1}};
    long n = 7, to_slot = 2, slot_booked = 1;

    r = api("call.list", "GET", "/api/v1/calls", f.token[FIX_SAS], NULL, &st);
    cr_assert_eq(st, 200);
    json_t *calls = json_object_get(r, "calls");
    cr_assert_eq(json_array_size(calls), (size_t)n);
    cr_assert(json_is_false(json_object_get(r, "truncated")));
    /* Newest first. */
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(calls, 0), "outcome")),
                     "slot_request");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(calls, 0), "request_id")),
                 waiting);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(calls, 6), "outcome")),
                     "advice");
    json_decref(r);
    r = api("call.list", "GET", "/api/v1/calls?outcome=slot_request&limit=1", f.token[FIX_SAS],
            NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "calls")), 1);
    cr_assert(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);

    ind = indicators();
    check_cell(ind, "sas_calls", (double)n, n);
    for (size_t i = 0; i < sizeof(by) / sizeof(by[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "sas_calls_by_outcome__%s", by[i].outcome);
        check_cell(ind, name, (double)by[i].n, by[i].n);
    }
    check_cell(ind, "sas_calls_to_slot_rate", round(1000.0 * to_slot / n) / 10, to_slot);
    check_cell(ind, "sas_calls_slot_booked", (double)slot_booked, slot_booked);
    /* Indre's ratio (docs/indicators.md): 7 × 2615 / 17232 = 1.06. */
    check_cell(ind, "sas_ed_visits_avoided", round(n * 2615.0 / 17232), n);
    cr_assert_eq(visible(ind, "sas_calls"), 7);
    cr_assert_eq(visible(ind, "sas_ed_visits_avoided"), 1);
    json_decref(ind);

    /* The same figures unmasked, straight from the log, and the log holds
     * one call.recorded event per call, without patient fields. */
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'call.recorded'"), n);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'call.recorded'"
                                    " AND data ?| ARRAY['patient', 'display_name', 'phone']"),
                 0);
    cr_assert_eq(pgtest_long(&f.pg,
                             "SELECT value FROM snp_ind_rows('" FIX_TERRITORY
                             "', now() - interval '1 day', now() + interval '1 day',"
                             " now() + interval '1 day') WHERE code = 'sas_calls_slot_booked'"),
                 slot_booked);
}

Test(calls, refusals)
{
    int st;
    json_int_t mine = create_request(f.token[FIX_SAS], "sas-mine", NULL);
    json_int_t pharmacy = create_request(f.token[FIX_PHARMACY], "pharma-1", NULL);

    /* A requester of another kind may not record calls, nor list them. */
    json_t *r = record(f.token[FIX_PHARMACY], "{\"outcome\": \"advice\"}", &st);
    cr_assert_eq(st, 403);
    cr_assert_str_eq(error_code(r), "forbidden");
    json_decref(r);
    r = api("call.list", "GET", "/api/v1/calls", f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 403);
    json_decref(r);

    /* An outcome out of the enum. */
    r = record(f.token[FIX_SAS], "{\"outcome\": \"hospitalised\"}", &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_code(r), "invalid_field");
    cr_assert_str_eq(error_field(r), "outcome");
    json_decref(r);

    /* request_id goes with slot_request, and only with it. */
    r = record(f.token[FIX_SAS], "{\"outcome\": \"slot_request\"}", &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_code(r), "invalid_field");
    cr_assert_str_eq(error_field(r), "request_id");
    json_decref(r);
    char body[128];
    snprintf(body, sizeof(body), "{\"outcome\": \"advice\", \"request_id\": %lld}",
             (long long)mine);
    r = record(f.token[FIX_SAS], body, &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "request_id");
    json_decref(r);

    /* Another organisation's request is answered as a missing one. */
    json_int_t missing = pharmacy + 1000;
    snprintf(body, sizeof(body), "{\"outcome\": \"slot_request\", \"request_id\": %lld}",
             (long long)pharmacy);
    r = record(f.token[FIX_SAS], body, &st);
    cr_assert_eq(st, 404);
    cr_assert_str_eq(error_code(r), "not_found");
    char expected[64];
    snprintf(expected, sizeof(expected), "no request %lld of yours", (long long)pharmacy);
    cr_assert_str_eq(error_message(r), expected);
    json_decref(r);
    snprintf(body, sizeof(body), "{\"outcome\": \"slot_request\", \"request_id\": %lld}",
             (long long)missing);
    r = record(f.token[FIX_SAS], body, &st);
    cr_assert_eq(st, 404);
    snprintf(expected, sizeof(expected), "no request %lld of yours", (long long)missing);
    cr_assert_str_eq(error_message(r), expected);
    json_decref(r);

    /* Another SAS of the same territory, and a SAS of another territory,
     * cannot link the fixture SAS's request either. */
    PQclear(pgtest_exec(&f.pg, "INSERT INTO organisation (territory_id, kind, name, finess,"
                               " commune_insee) VALUES ('" FIX_TERRITORY
                               "', 'sas', 'SAS 56', '560990020', '56001'),"
                               " ('test-other', 'sas', 'SAS de Rennes', '350990057', '35238')"));
    char other_sas[48], far_sas[48];
    fix_add_token(&f, "sas", FIX_TERRITORY, NULL,
                  pgtest_long(&f.pg, "SELECT id FROM organisation WHERE name = 'SAS 56'"), 0, false,
                  other_sas);
    fix_add_token(&f, "sas", "test-other", NULL,
                  pgtest_long(&f.pg, "SELECT id FROM organisation WHERE name = 'SAS de Rennes'"), 0,
                  false, far_sas);
    snprintf(body, sizeof(body), "{\"outcome\": \"slot_request\", \"request_id\": %lld}",
             (long long)mine);
    r = record(other_sas, body, &st);
    cr_assert_eq(st, 404, "another SAS linked the request (HTTP %d)", st);
    json_decref(r);
    r = record(far_sas, body, &st);
    cr_assert_eq(st, 404, "another territory's SAS linked the request (HTTP %d)", st);
    json_decref(r);
    /* Neither sees the fixture SAS's calls. */
    record_ok("advice", 0);
    r = api("call.list", "GET", "/api/v1/calls", other_sas, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "calls")), 0);
    json_decref(r);

    /* A request is the issue of one call. */
    record_ok("slot_request", mine);
    r = record(f.token[FIX_SAS], body, &st);
    cr_assert_eq(st, 409);
    cr_assert_str_eq(error_code(r), "conflict");
    json_decref(r);

    /* A retry with the same client_ref records nothing twice; the same
     * client_ref for another call is a conflict. */
    const char *first = "{\"outcome\": \"prescription\", \"client_ref\": \"sas-call-1\","
                        " \"regulator_id\": \"10999900045\"}";
    r = record(f.token[FIX_SAS], first, &st);
    cr_assert_eq(st, 201);
    json_int_t id = json_integer_value(json_object_get(r, "call_id"));
    cr_assert_str_eq(json_string_value(json_object_get(r, "client_ref")), "sas-call-1");
    cr_assert_str_eq(json_string_value(json_object_get(r, "regulator_id")), "10999900045");
    json_decref(r);
    r = record(f.token[FIX_SAS], first, &st);
    cr_assert_eq(st, 200, "a retry answered %d", st);
    cr_assert_eq(json_integer_value(json_object_get(r, "call_id")), id);
    json_decref(r);
    r = record(f.token[FIX_SAS], "{\"outcome\": \"advice\", \"client_ref\": \"sas-call-1\"}", &st);
    cr_assert_eq(st, 409);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM sas_call"), 3);
}
