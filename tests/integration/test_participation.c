/* A GP's proof of participation, end to end on a real PostgreSQL through
 * snpd's HTTP API: participation.get, participation.attestation and the
 * preconditions.
 *
 * GP1 works in two territories (the fixture's test-t and test-other).  The
 * test generates, through the real event-producing SQL functions under a
 * test clock (as test_indicators.c does), bookings on GP1's slots in both:
 * in ISO week 2026-W45, 23 bookings that meet every condition of the
 * supplement, interleaved between the territories (neither reaches 20 on
 * its own), an MT patient, a booking seen after 72 h, a pharmacy's, and a
 * no-show; in week 2026-W04 one SAS booking before the precondition starts.
 * It keeps its own model of each booking and recomputes from it every
 * booking's reasons, the weeks' hours, eligible bookings and supplements
 * (the cap of 20 across both territories in the order of the
 * consultations), and compares them with the answers; it also checks that
 * the per-booking rule agrees with the sas_48h of snp_ind_participation_v1
 * (0004) in each territory.  Then who may read whose participation, the
 * preconditions, the yearly attestation in HTML and CSV, and a CSNP shift
 * whose hours and booking count for the practitioner on duty (0023).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "base/timeutil.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"

static struct fixture f;
static int64_t other_site, other_sas, sas_org, other_pharmacy;
static char coordinator_other[48];

/* --- database helpers --------------------------------------------------------------- */

static PGresult *sqlp(const char *sql, int n, const char *const *params)
{
    return fix_sql(&f, sql, n, params);
}

static long long sql_ll(const char *sql, int n, const char *const *params)
{
    return fix_sql_ll(&f, sql, n, params);
}

static int64_t utc(const char *s)
{
    int64_t t;
    cr_assert(timeutil_parse_rfc3339(s, &t), "bad time %s", s);
    return t;
}

static void clock_at(int64_t t)
{
    fix_clock_at(&f, t);
}

/* --- the model ---------------------------------------------------------------------- */

enum { MAX_BOOKINGS = 40, CAP = 20 };

struct mbooking {
    bool other;          /* in test-other, else test-t */
    bool sas;            /* asked by the territory's SAS, else its pharmacy */
    int delay_h;         /* request to consultation, in hours */
    bool mt;             /* GP1 is the patient's médecin traitant */
    const char *outcome; /* reported, or NULL */
    int64_t start;
    const char *week;
    int64_t booking_id;
    /* Recomputed by the test. */
    const char *reasons[6];
    int nreasons;
};

static struct mbooking model[MAX_BOOKINGS];
static int nmodel;
static const char precondition_from[] = "2026-02-01";

static struct mbooking *add(bool other, bool sas, int delay_h, bool mt, const char *outcome,
                            int64_t start, const char *week)
{
    cr_assert_lt(nmodel, MAX_BOOKINGS);
    struct mbooking *b = &model[nmodel++];
    *b = (struct mbooking){.other = other,
                           .sas = sas,
                           .delay_h = delay_h,
                           .mt = mt,
                           .outcome = outcome,
                           .start = start,
                           .week = week};
    return b;
}

static void id_text(int64_t v, char out[24])
{
    snprintf(out, 24, "%lld", (long long)v);
}

/* Publishes the booking's slot (20 minutes, every audience), creates the
 * request holding it, books it, and reports its outcome, each at its
 * instant on the test clock. */
static void generate(struct mbooking *b)
{
    int64_t created = b->start - (int64_t)b->delay_h * 3600;
    const char *territory = b->other ? "test-other" : FIX_TERRITORY;
    char site[24], org[24], start[32], deadline[32], slots[256];
    id_text(b->other ? other_site : f.site_gp1, site);
    id_text(b->sas ? (b->other ? other_sas : sas_org) : (b->other ? other_pharmacy : f.pharmacy_id),
            org);
    fix_iso_utc(b->start, start);
    fix_iso_utc(b->start + 3600, deadline);
    snprintf(slots, sizeof(slots),
             "[{\"start\": \"%s\", \"duration_min\": 20, \"mode\": \"office\", \"audience\":"
             " [\"pharmacy\", \"emergency\", \"sas\", \"professional\", \"desk\"]}]",
             start);
    clock_at(created - 600);
    const char *pub[] = {territory, site, slots};
    long long slot = sql_ll("SELECT id FROM snp_slots_publish($1, $2::bigint, '" FIX_GP1
                            "', 'token:gp', $3::jsonb)",
                            3, pub);
    char body[600], sid[24], rid[24];
    snprintf(body, sizeof(body),
             "{\"client_ref\": \"p-%d\", \"motif\": \"fever\", \"urgency\": \"48h\","
             " \"deadline\": \"%s\", \"modes\": [\"office\"], \"patient_commune\": \"%s\","
             " \"patient_birth_year\": 1980, \"patient_age\": 46, \"patient_sex\": \"female\","
             " \"has_mt\": %s%s}",
             (int)(b - model), deadline, b->other ? "35238" : "35236", b->mt ? "true" : "false",
             b->mt ? ", \"mt_rpps\": \"" FIX_GP1 "\"" : "");
    id_text(slot, sid);
    clock_at(created);
    const char *rq[] = {territory, org, body, sid};
    long long request =
        sql_ll("SELECT request_id FROM snp_request_create($1, $2::bigint, 'token:r', $3::jsonb,"
               " '{\"initials\": \"A. B.\"}', $4::bigint, 180)",
               4, rq);
    id_text(request, rid);
    clock_at(created + 60);
    const char *acc[] = {rid, org, sid};
    b->booking_id = sql_ll("SELECT booking_id FROM snp_offer_accept($1::bigint, $2::bigint,"
                           " $3::bigint, 'token:r')",
                           3, acc);
    if (b->outcome) {
        char bid[24];
        id_text(b->booking_id, bid);
        clock_at(b->start + 1800);
        const char *out[] = {bid, territory, b->outcome};
        PQclear(sqlp("SELECT id FROM snp_outcome_report($1::bigint, $2, NULL, $3, NULL, 72,"
                     " 'token:gp')",
                     3, out));
    }
}

/* An extra free slot of `minutes` at `start` in test-other (hours only). */
static void free_slot(const char *start, int minutes)
{
    char site[24], slots[256];
    id_text(other_site, site);
    snprintf(slots, sizeof(slots),
             "[{\"start\": \"%s\", \"duration_min\": %d, \"mode\": \"office\", \"audience\":"
             " [\"sas\"]}]",
             start, minutes);
    clock_at(utc("2026-10-30T08:00:00Z"));
    const char *pub[] = {site, slots};
    PQclear(sqlp("SELECT id FROM snp_slots_publish('test-other', $1::bigint, '" FIX_GP1
                 "', 'token:gp', $2::jsonb)",
                 2, pub));
}

/* The reasons of every model booking: the conditions, the precondition,
 * then the cap, counted per ISO week across both territories in the order
 * of the consultations among the bookings meeting everything else. */
static void recompute(void)
{
    int64_t pre = utc("2026-02-01T00:00:00+01:00");
    for (int i = 0; i < nmodel; i++) {
        struct mbooking *b = &model[i];
        b->nreasons = 0;
        if (!b->sas)
            b->reasons[b->nreasons++] = "not_sas";
        if (b->delay_h > 48)
            b->reasons[b->nreasons++] = "after_48h";
        if (b->mt)
            b->reasons[b->nreasons++] = "is_mt";
        if (b->outcome && strcmp(b->outcome, "no_show") == 0)
            b->reasons[b->nreasons++] = "not_fulfilled";
        if (b->start < pre)
            b->reasons[b->nreasons++] = "no_precondition";
    }
    for (int i = 0; i < nmodel; i++) {
        struct mbooking *b = &model[i];
        if (b->nreasons > 0)
            continue;
        int before = 0;
        for (int j = 0; j < nmodel; j++) {
            const struct mbooking *o = &model[j];
            if (j != i && strcmp(o->week, b->week) == 0 && o->start < b->start &&
                (o->nreasons == 0 ||
                 (o->nreasons == 1 && strcmp(o->reasons[0], "over_weekly_cap") == 0)))
                before++;
        }
        if (before >= CAP)
            b->reasons[b->nreasons++] = "over_weekly_cap";
    }
}

/* --- set-up ------------------------------------------------------------------------- */

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    PQclear(pgtest_exec(
        &f.pg, "INSERT INTO territory_practitioner VALUES ('test-other', '" FIX_GP1 "');"
               "INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude,"
               " longitude) VALUES ('test-other', 'practice', 'Cabinet de Rennes', '3 rue Le"
               " Bastard', '35238', 48.1117, -1.6794);"
               "INSERT INTO practitioner_site SELECT '" FIX_GP1 "', id FROM site"
               " WHERE name = 'Cabinet de Rennes';"
               "INSERT INTO organisation (territory_id, kind, name, finess, commune_insee) VALUES"
               " ('test-other', 'sas', 'SAS 35 Rennes', '350990073', '35238');"));
    other_site = pgtest_long(&f.pg, "SELECT id FROM site WHERE name = 'Cabinet de Rennes'");
    other_sas = pgtest_long(&f.pg, "SELECT id FROM organisation WHERE name = 'SAS 35 Rennes'");
    other_pharmacy =
        pgtest_long(&f.pg, "SELECT id FROM organisation WHERE name = 'Pharmacie de Rennes'");
    sas_org = pgtest_long(&f.pg, "SELECT id FROM organisation WHERE territory_id = 'test-t'"
                                 " AND kind = 'sas'");
    fix_add_token(&f, "coordinator", "test-other", NULL, 0, 0, false, coordinator_other);
    fix_install_test_clock(&f);

    /* Week 2026-W45, from Monday 2 November: first the bookings that fail
     * a condition (they must not use the cap), then 23 that meet them all,
     * alternating between the territories, every 30 minutes. */
    int64_t t = utc("2026-11-02T07:00:00Z");
    add(false, true, 2, true, "attended", t, "2026-W45");
    add(true, true, 72, false, NULL, t + 1800, "2026-W45");
    add(false, false, 2, false, "attended", t + 3600, "2026-W45");
    add(true, true, 3, false, "no_show", t + 5400, "2026-W45");
    for (int k = 0; k < 23; k++)
        add(k % 3 == 1, true, 1 + k % 40, false, k % 2 ? "attended" : NULL,
            t + 7200 + (int64_t)k * 1800, "2026-W45");
    /* A SAS booking before the precondition. */
    add(false, true, 5, false, "attended", utc("2026-01-20T09:00:00Z"), "2026-W04");
    /* The bookings are generated in the order of their requests. */
    for (int i = 0; i < nmodel; i++)
        generate(&model[i]);
    free_slot("2026-11-04T13:00:00Z", 60);
    PQclear(sqlp("SELECT set_config('snp.test_now', '', false)", 0, NULL));
    recompute();
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    snp_proto_shutdown();
}

TestSuite(participation, .init = setup, .fini = teardown, .timeout = 180);

/* --- helpers ------------------------------------------------------------------------ */

static json_t *api(const char *type, const char *method, const char *path, const char *token,
                   const char *body, int *status)
{
    return fix_api_checked(f.snpd.port, type, method, path, token, body, status);
}

static const char *error_code(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static const struct mbooking *find(json_int_t booking_id)
{
    for (int i = 0; i < nmodel; i++)
        if (model[i].booking_id == booking_id)
            return &model[i];
    return NULL;
}

static json_t *week(json_t *answer, const char *iso_week)
{
    size_t i;
    json_t *w;
    json_array_foreach (json_object_get(answer, "weeks"), i, w) {
        if (strcmp(json_string_value(json_object_get(w, "iso_week")), iso_week) == 0)
            return w;
    }
    return NULL;
}

/* What the model expects of week `iso_week`: eligible (everything but the
 * cap), supplements, and minutes of GP1's slots there. */
static void expected_week(const char *iso_week, int *eligible, int *supplements, int *minutes)
{
    *eligible = *supplements = *minutes = 0;
    for (int i = 0; i < nmodel; i++) {
        const struct mbooking *b = &model[i];
        if (strcmp(b->week, iso_week) != 0)
            continue;
        *minutes += 20;
        if (b->nreasons == 0)
            (*supplements)++;
        if (b->nreasons == 0 || (b->nreasons == 1 && strcmp(b->reasons[0], "over_weekly_cap") == 0))
            (*eligible)++;
    }
    if (strcmp(iso_week, "2026-W45") == 0)
        *minutes += 60; /* the free slot */
}

/* Checks the rows of `answer` against the model; `territory` limits the
 * bookings expected (NULL: both). */
static void check_bookings(json_t *answer, const char *territory)
{
    json_t *rows = json_object_get(answer, "bookings");
    int expected = 0;
    for (int i = 0; i < nmodel; i++)
        if (!territory || strcmp(territory, model[i].other ? "test-other" : FIX_TERRITORY) == 0)
            expected++;
    cr_assert_eq((int)json_array_size(rows), expected);
    size_t i;
    json_t *row;
    int64_t last = 0;
    json_array_foreach (rows, i, row) {
        const struct mbooking *b = find(json_integer_value(json_object_get(row, "booking_id")));
        cr_assert_not_null(b, "a booking the test did not make");
        cr_expect_str_eq(json_string_value(json_object_get(row, "territory")),
                         b->other ? "test-other" : FIX_TERRITORY);
        cr_expect_str_eq(json_string_value(json_object_get(row, "iso_week")), b->week);
        int64_t start = utc(json_string_value(json_object_get(row, "start")));
        cr_expect_eq(start, b->start);
        cr_expect_geq(start, last, "bookings in the order of the consultations");
        last = start;
        json_t *reasons = json_object_get(row, "reasons");
        cr_expect_eq((int)json_array_size(reasons), b->nreasons, "booking %lld",
                     (long long)b->booking_id);
        for (int k = 0; k < b->nreasons && k < (int)json_array_size(reasons); k++)
            cr_expect_str_eq(json_string_value(json_array_get(reasons, k)), b->reasons[k],
                             "booking %lld", (long long)b->booking_id);
        cr_expect_eq(json_is_true(json_object_get(row, "qualifies")), b->nreasons == 0);
        cr_expect_eq(json_is_true(json_object_get(row, "sas")), b->sas);
        cr_expect_eq(json_is_true(json_object_get(row, "is_mt")), b->mt);
        cr_expect_eq(json_is_true(json_object_get(row, "within_48h")), b->delay_h <= 48);
        cr_expect_eq(json_is_true(json_object_get(row, "fulfilled")),
                     !b->outcome || strcmp(b->outcome, "no_show") != 0);
        /* No patient field of any kind. */
        cr_expect_null(json_object_get(row, "patient"));
        cr_expect_null(json_object_get(row, "request_id"));
    }
}

/* Checks the weeks of `answer` against the model. */
static void check_weeks(json_t *answer)
{
    cr_assert_eq(json_integer_value(json_object_get(answer, "weekly_cap")), CAP);
    cr_assert_eq(json_array_size(json_object_get(answer, "weeks")), 53, "2026 has 53 ISO weeks");
    static const char *const weeks[] = {"2026-W04", "2026-W45", "2026-W30"};
    int total_sup = 0;
    for (size_t i = 0; i < sizeof(weeks) / sizeof(weeks[0]); i++) {
        int eligible, supplements, minutes;
        expected_week(weeks[i], &eligible, &supplements, &minutes);
        total_sup += supplements;
        json_t *w = week(answer, weeks[i]);
        cr_assert_not_null(w, "no week %s", weeks[i]);
        cr_expect_eq(json_integer_value(json_object_get(w, "eligible")), eligible, "%s", weeks[i]);
        cr_expect_eq(json_integer_value(json_object_get(w, "supplements")), supplements, "%s",
                     weeks[i]);
        double hours = json_number_value(json_object_get(w, "hours"));
        cr_expect_float_eq(hours, minutes / 60.0, 0.005, "%s: %g h", weeks[i], hours);
        cr_expect_eq(json_is_true(json_object_get(w, "open_2h")), minutes >= 120, "%s", weeks[i]);
    }
    cr_expect_eq(
        json_integer_value(json_object_get(json_object_get(answer, "totals"), "supplements")),
        total_sup);
}

static void set_precondition(void)
{
    int st;
    char body[160];
    snprintf(body, sizeof(body),
             "{\"rpps\": \"" FIX_GP1 "\", \"kind\": \"sas_registered\", \"valid_from\": \"%s\"}",
             precondition_from);
    json_t *r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
                    f.token[FIX_COORDINATOR], body, &st);
    cr_assert_eq(st, 201, "%s", json_dumps(r, 0));
    cr_expect_str_eq(json_string_value(json_object_get(r, "valid_from")), precondition_from);
    cr_expect_null(json_object_get(r, "valid_to"));
    json_decref(r);
}

/* --- tests -------------------------------------------------------------------------- */

Test(participation, the_gp_reads_their_own_across_territories)
{
    set_precondition();
    int st;
    json_t *r = api("participation.get", "GET", "/api/v1/participation?year=2026",
                    f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    cr_expect_str_eq(json_string_value(json_object_get(r, "from")), "2026-01-01");
    cr_expect_str_eq(json_string_value(json_object_get(r, "to")), "2026-12-31");
    check_weeks(r);
    check_bookings(r, NULL);
    /* Neither territory reaches the cap alone: only the count across both
     * puts the last bookings over it. */
    int over = 0, per[2] = {0, 0};
    for (int i = 0; i < nmodel; i++) {
        if (model[i].nreasons == 0)
            per[model[i].other]++;
        over += model[i].nreasons == 1 && strcmp(model[i].reasons[0], "over_weekly_cap") == 0;
    }
    cr_assert_eq(over, 3);
    cr_assert_lt(per[0], CAP);
    cr_assert_lt(per[1], CAP);
    json_t *pre = json_object_get(r, "preconditions");
    cr_assert_eq(json_array_size(pre), 1);
    json_decref(r);

    /* A period of days: November only; the week of 2 November is in it. */
    r = api("participation.get", "GET", "/api/v1/participation?from=2026-11-01&to=2026-11-30",
            f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "weeks")), 4);
    cr_expect_eq(json_integer_value(json_object_get(week(r, "2026-W45"), "supplements")), CAP);
    json_decref(r);

    /* The limit truncates the bookings, never the weeks. */
    r = api("participation.get", "GET", "/api/v1/participation?year=2026&limit=5",
            f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "bookings")), 5);
    cr_expect(json_is_true(json_object_get(r, "truncated")));
    cr_expect_eq(json_integer_value(json_object_get(week(r, "2026-W45"), "supplements")), CAP);
    json_decref(r);
}

Test(participation, the_rule_agrees_with_the_indicator_of_0004)
{
    /* sas_48h of snp_ind_participation_v1 counts, per territory and week,
     * the bookings that meet the supplement's conditions before the
     * precondition and the cap. */
    static const char *const territories[] = {FIX_TERRITORY, "test-other"};
    for (int t = 0; t < 2; t++) {
        int expected = 0;
        for (int i = 0; i < nmodel; i++)
            if (model[i].other == (t == 1) && strcmp(model[i].week, "2026-W45") == 0 &&
                model[i].sas && model[i].delay_h <= 48 && !model[i].mt &&
                !(model[i].outcome && strcmp(model[i].outcome, "no_show") == 0))
                expected++;
        const char *p[] = {territories[t]};
        long long got =
            sql_ll("SELECT sas_48h FROM snp_ind_participation_v1($1, '2026-11-01T00:00:00+01:00',"
                   " '2026-12-01T00:00:00+01:00', '2027-01-01T00:00:00+01:00')"
                   " WHERE rpps = '" FIX_GP1 "' AND iso_week = '2026-W45'",
                   1, p);
        cr_expect_eq(got, expected, "%s", territories[t]);
        long long rows =
            sql_ll("SELECT count(*) FROM snp_participation_bookings('" FIX_GP1 "', '2026-11-01',"
                   " '2026-11-30') WHERE territory_id = $1 AND iso_week = '2026-W45'"
                   " AND refusals <@ ARRAY['no_precondition', 'over_weekly_cap']",
                   1, p);
        cr_expect_eq(rows, expected, "%s", territories[t]);
    }
}

Test(participation, without_precondition_nothing_qualifies)
{
    int st;
    json_t *r = api("participation.get", "GET", "/api/v1/participation?year=2026",
                    f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get(r, "bookings"), i, row) {
        cr_expect(!json_is_true(json_object_get(row, "qualifies")));
        cr_expect(!json_is_true(json_object_get(row, "precondition")));
    }
    cr_expect_eq(json_integer_value(json_object_get(week(r, "2026-W45"), "supplements")), 0);
    json_decref(r);
}

Test(participation, coordinators_see_their_territory)
{
    set_precondition();
    int st;
    json_t *r = api("participation.get", "GET", "/api/v1/participation?year=2026&rpps=" FIX_GP1,
                    f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    check_bookings(r, FIX_TERRITORY);
    /* The weeks still count both territories. */
    check_weeks(r);
    json_decref(r);

    r = api("participation.get", "GET", "/api/v1/participation?year=2026&rpps=" FIX_GP1,
            coordinator_other, NULL, &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    check_bookings(r, "test-other");
    check_weeks(r);
    json_decref(r);

    /* GP2 does not practise in test-other: answered as a missing one. */
    r = api("participation.get", "GET", "/api/v1/participation?year=2026&rpps=" FIX_GP2,
            coordinator_other, NULL, &st);
    cr_expect_eq(st, 404);
    cr_expect_str_eq(error_code(r), "not_found");
    json_decref(r);

    /* A coordinator must name the practitioner. */
    r = api("participation.get", "GET", "/api/v1/participation?year=2026", f.token[FIX_COORDINATOR],
            NULL, &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(error_code(r), "invalid_field");
    json_decref(r);
}

Test(participation, refusals)
{
    int st;
    /* A GP cannot read another GP's. */
    json_t *r = api("participation.get", "GET", "/api/v1/participation?rpps=" FIX_GP1,
                    f.token[FIX_GP_2], NULL, &st);
    cr_expect_eq(st, 403);
    cr_expect_str_eq(error_code(r), "forbidden");
    json_decref(r);
    r = api("participation.attestation", "GET",
            "/api/v1/participation/attestation?year=2026&format=csv&rpps=" FIX_GP1,
            f.token[FIX_GP_2], NULL, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    /* Their own, without bookings, is 53 empty weeks. */
    r = api("participation.get", "GET", "/api/v1/participation", f.token[FIX_GP_2], NULL, &st);
    cr_expect_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "bookings")), 0);
    json_decref(r);
    /* Requesters have no access. */
    r = api("participation.get", "GET", "/api/v1/participation?rpps=" FIX_GP1,
            f.token[FIX_PHARMACY], NULL, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    /* Periods. */
    static const char *const bad[][2] = {
        {"/api/v1/participation?year=2026&from=2026-01-01&to=2026-01-31", "year"},
        {"/api/v1/participation?from=2026-01-01", "to"},
        {"/api/v1/participation?from=2026-01-01&to=2027-06-01", "to"},
        {"/api/v1/participation?from=2026-02-01&to=2026-01-01", "to"},
        {"/api/v1/participation?year=1999", "year"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = api("participation.get", "GET", bad[i][0], f.token[FIX_GP_1], NULL, &st);
        cr_expect_eq(st, 400, "%s", bad[i][0]);
        cr_expect_str_eq(error_code(r), "invalid_field", "%s", bad[i][0]);
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "field")),
                         bad[i][1], "%s", bad[i][0]);
        json_decref(r);
    }
    /* Preconditions: GPs may not set them; a practitioner of another
     * territory is not found; valid_to before valid_from is refused. */
    const char *body = "{\"rpps\": \"" FIX_GP1 "\", \"kind\": \"cpts_member\","
                       " \"valid_from\": \"2026-01-01\"}";
    r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
            f.token[FIX_GP_1], body, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
    r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
            coordinator_other,
            "{\"rpps\": \"" FIX_GP2
            "\", \"kind\": \"cpts_member\", \"valid_from\": \"2026-01-01\"}",
            &st);
    cr_expect_eq(st, 404);
    json_decref(r);
    r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
            f.token[FIX_COORDINATOR],
            "{\"rpps\": \"" FIX_GP1 "\", \"kind\": \"cpts_member\", \"valid_from\": \"2026-03-01\","
            " \"valid_to\": \"2026-02-01\"}",
            &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "field")),
                     "valid_to");
    json_decref(r);
    r = api("participation.precondition.list", "GET",
            "/api/v1/participation/preconditions?rpps=" FIX_GP1, f.token[FIX_GP_2], NULL, &st);
    cr_expect_eq(st, 403);
    json_decref(r);
}

Test(participation, preconditions_set_again_listed_and_audited)
{
    set_precondition();
    int st;
    /* Closing the period: the same key, HTTP 200. */
    json_t *r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
                    f.token[FIX_COORDINATOR],
                    "{\"rpps\": \"" FIX_GP1 "\", \"kind\": \"sas_registered\","
                    " \"valid_from\": \"2026-02-01\", \"valid_to\": \"2026-11-03\"}",
                    &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    cr_expect_str_eq(json_string_value(json_object_get(r, "valid_to")), "2026-11-03");
    json_decref(r);
    r = api("participation.precondition.set", "POST", "/api/v1/participation/preconditions",
            coordinator_other,
            "{\"rpps\": \"" FIX_GP1
            "\", \"kind\": \"cpts_member\", \"valid_from\": \"2026-06-01\"}",
            &st);
    cr_assert_eq(st, 201);
    json_decref(r);
    /* The GP sees both; each coordinator their territory's. */
    r = api("participation.precondition.list", "GET", "/api/v1/participation/preconditions",
            f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "preconditions")), 2);
    json_decref(r);
    r = api("participation.precondition.list", "GET", "/api/v1/participation/preconditions",
            f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "preconditions")), 1);
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit"
                                    " WHERE action = 'participation.precondition.set'"),
                 3);
    /* Both preconditions count: every booking from 1 February meets one. */
    r = api("participation.get", "GET", "/api/v1/participation?year=2026", f.token[FIX_GP_1], NULL,
            &st);
    cr_assert_eq(st, 200);
    check_weeks(r);
    json_decref(r);
}

/* Joins the parts of an attestation answer (owned by the caller). */
static char *joined(json_t *r)
{
    size_t n = 1, i;
    json_t *part;
    json_array_foreach (json_object_get(r, "parts"), i, part)
        n += json_string_length(part);
    char *s = calloc(1, n);
    cr_assert_not_null(s);
    json_array_foreach (json_object_get(r, "parts"), i, part)
        strcat(s, json_string_value(part));
    return s;
}

Test(participation, attestation_html_and_csv)
{
    set_precondition();
    int st;
    json_t *r = api("participation.attestation", "GET",
                    "/api/v1/participation/attestation?year=2026&format=html", f.token[FIX_GP_1],
                    NULL, &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    cr_expect_str_eq(json_string_value(json_object_get(r, "filename")),
                     "attestation-participation-" FIX_GP1 "-2026.html");
    char *html = joined(r);
    json_decref(r);
    cr_expect(strstr(html, "<!DOCTYPE html>") == html);
    cr_expect_not_null(strstr(html, "@page{size:A4"));
    cr_expect_not_null(strstr(html, "RPPS <strong>" FIX_GP1 "</strong>"));
    cr_expect_not_null(strstr(html, "Le Guen"));
    cr_expect_not_null(strstr(html, "NGAP, article 14.1.3"));
    cr_expect_not_null(strstr(html, "Inscription auprès du SAS"));
    cr_expect_not_null(strstr(html, "<td>2026-W45</td><td>02/11/2026</td>"));
    cr_expect_not_null(strstr(html, "Document généré le "));
    cr_expect_null(strstr(html, "A. B."), "no patient identity");
    free(html);

    r = api("participation.attestation", "GET",
            "/api/v1/participation/attestation?year=2026&format=csv&rpps=" FIX_GP1,
            f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200);
    char *csv = joined(r);
    json_decref(r);
    cr_expect(strncmp(csv, "\xef\xbb\xbfrpps,nom,prenom,annee,semaine_iso", 34) == 0);
    int eligible, supplements, minutes;
    expected_week("2026-W45", &eligible, &supplements, &minutes);
    char line[200];
    snprintf(line, sizeof(line),
             "\r\n" FIX_GP1 ",Le Guen,Anne,2026,2026-W45,2026-11-02,%d,%.2f,%s,%d,%d,20\r\n",
             nmodel, minutes / 60.0, minutes >= 120 ? "oui" : "non", eligible, supplements);
    cr_expect_not_null(strstr(csv, line), "no line %s in\n%s", line, csv);
    cr_expect_eq(
        pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'participation.attestation'"),
        2);
    free(csv);
}

/* --- a CSNP shift (0023) ------------------------------------------------------------ */

/* At instant `at`, the coordinator assigns CSNP shift `shift` to `rpps`
 * with `status`, or frees it (both NULL), through snp_shift_assign under
 * the test clock. */
static void assign_at(const char *at, long long shift, const char *rpps, const char *status)
{
    char sid[24];
    id_text(shift, sid);
    clock_at(utc(at));
    const char *p[] = {sid, rpps, status};
    PGresult *r = sqlp("SELECT snp_shift_assign('" FIX_TERRITORY "', 'token:c', 'coordinator',"
                       " $1::bigint, $2, $3) ->> 'changed'",
                       3, p);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "true");
    PQclear(r);
}

/* participation.get of `rpps` for the week of 23 November 2026, read by the
 * coordinator; checks the week's hours, eligible bookings and supplements
 * and the number of its bookings. */
static void expect_week48(const char *rpps, double hours, int eligible, int supplements,
                          size_t bookings)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/participation?from=2026-11-23&to=2026-11-29&rpps=%s",
             rpps);
    int st;
    json_t *r = api("participation.get", "GET", path, f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200, "%s", json_dumps(r, 0));
    json_t *w = week(r, "2026-W48");
    cr_assert_not_null(w);
    cr_expect_float_eq(json_number_value(json_object_get(w, "hours")), hours, 0.005, "%s: %g h",
                       rpps, json_number_value(json_object_get(w, "hours")));
    cr_expect_eq(json_integer_value(json_object_get(w, "eligible")), eligible, "%s", rpps);
    cr_expect_eq(json_integer_value(json_object_get(w, "supplements")), supplements, "%s", rpps);
    cr_expect_eq(json_array_size(json_object_get(r, "bookings")), bookings, "%s", rpps);
    json_decref(r);
}

Test(participation, a_csnp_shift_counts_for_the_practitioner_on_duty)
{
    set_precondition();
    /* Tuesday 24 November, 08:00 to 11:00 in Redon: six slots of 30
     * minutes at the CSNP, nobody named; the SAS books the first the day
     * before, for a patient who is not GP1's. */
    char csnp[24];
    id_text(f.site_csnp, csnp);
    clock_at(utc("2026-11-20T08:00:00Z"));
    const char *pub[] = {csnp};
    PQclear(sqlp("SELECT id FROM snp_slots_publish('" FIX_TERRITORY "', $1::bigint, NULL,"
                 " 'token:c', (SELECT jsonb_agg(jsonb_build_object('start', t, 'duration_min', 30,"
                 " 'mode', 'office', 'audience', ARRAY['sas', 'pharmacy'])) FROM generate_series("
                 "'2026-11-24T07:00:00Z'::timestamptz, '2026-11-24T09:30:00Z', '30 minutes') t))",
                 1, pub));
    long long slot = sql_ll("SELECT min(id) FROM slot WHERE site_id = $1::bigint", 1, pub);
    long long shift =
        sql_ll("SELECT shift_id FROM slot WHERE site_id = $1::bigint GROUP BY 1", 1, pub);
    char sid[24], org[24], rid[24];
    id_text(slot, sid);
    id_text(sas_org, org);
    clock_at(utc("2026-11-23T10:00:00Z"));
    const char *rq[] = {org, sid};
    long long request = sql_ll(
        "SELECT request_id FROM snp_request_create('" FIX_TERRITORY "', $1::bigint, 'token:r',"
        " '{\"client_ref\": \"csnp-1\", \"motif\": \"fever\", \"urgency\": \"48h\","
        " \"deadline\": \"2026-11-24T08:00:00Z\", \"modes\": [\"office\"],"
        " \"patient_commune\": \"35236\", \"patient_birth_year\": 1980, \"patient_age\": 46,"
        " \"patient_sex\": \"female\", \"has_mt\": false}', '{\"initials\": \"A. B.\"}',"
        " $2::bigint, 180)",
        2, rq);
    id_text(request, rid);
    clock_at(utc("2026-11-23T10:01:00Z"));
    const char *acc[] = {rid, org, sid};
    cr_assert_gt(sql_ll("SELECT booking_id FROM snp_offer_accept($1::bigint, $2::bigint,"
                        " $3::bigint, 'token:r')",
                        3, acc),
                 0);
    /* Unfilled, the shift counts for nobody. */
    expect_week48(FIX_GP1, 0, 0, 0, 0);

    /* GP1 on duty as a locum: the three hours and the supplement are
     * theirs, in participation.get and in the indicator of 0004. */
    assign_at("2026-11-23T12:00:00Z", shift, FIX_GP1, "locum");
    expect_week48(FIX_GP1, 3.0, 1, 1, 1);
    expect_week48(FIX_GP2, 0, 0, 0, 0);
    cr_expect_eq(sql_ll("SELECT minutes FROM snp_ind_participation_v1('" FIX_TERRITORY "',"
                        " '2026-11-01T00:00:00+01:00', '2026-12-01T00:00:00+01:00',"
                        " '2026-12-08T00:00:00+01:00')"
                        " WHERE rpps = '" FIX_GP1 "' AND iso_week = '2026-W48'",
                        0, NULL),
                 180);
    /* Reassigned to GP2: the hours and the booking move to them (with no
     * precondition recorded, it is neither eligible nor a supplement). */
    assign_at("2026-11-23T13:00:00Z", shift, FIX_GP2, "retired");
    expect_week48(FIX_GP1, 0, 0, 0, 0);
    expect_week48(FIX_GP2, 3.0, 0, 0, 1);
    /* Freed: nobody again. */
    assign_at("2026-11-23T14:00:00Z", shift, NULL, NULL);
    expect_week48(FIX_GP2, 0, 0, 0, 0);
    cr_expect_eq(sql_ll("SELECT count(*) FROM snp_ind_participation_v1('" FIX_TERRITORY "',"
                        " '2026-11-01T00:00:00+01:00', '2026-12-01T00:00:00+01:00',"
                        " '2026-12-08T00:00:00+01:00') WHERE iso_week = '2026-W48'",
                        0, NULL),
                 0);
}
