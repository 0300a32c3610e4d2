/* Territory isolation and data protection, end to end on a real PostgreSQL
 * (issue 11, items 1, 5 and 6):
 *   - territory B (test-other), with an admin token of its own, cannot
 *     rename or relocate territory A's (test-t) practitioners and communes
 *     through territory.import, and gets nothing of A by joining them: its
 *     gp token for A's practitioner lists no booking of A and hears no push
 *     of A, while A's own session of the same practitioner does;
 *   - list windows outside what PostgreSQL stores are invalid_field, and an
 *     internal error answers a fixed sentence (PostgreSQL's text, which may
 *     quote patient data, stays in the log);
 *   - the practitioner's outcome note reaches nobody else, and a cancelled
 *     booking no longer shows its patient. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "clients/lib/snpclient.h"
#include "tests/support/fixture.h"

#define ANSWER_MS 5000
#define OTHER     "test-other"
#define PATIENT   "Jeanne Sentinelle"
#define PHONE     "06 55 44 33 22"
#define NOTE      "Rappeler sa fille Mme Sentinelle au 06 99 88 77 66"

static struct fixture f;
static char admin_b[48];

static void setup(void)
{
    fixture_setup(&f, "{}");
    fix_add_token(&f, "admin", OTHER, NULL, 0, 0, false, admin_b);
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
}

TestSuite(isolation, .init = setup, .fini = teardown, .timeout = 180);

static const char *error_code(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static const char *error_field(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "field"));
}

static json_t *call(const char *method, const char *path, const char *token, const char *body,
                    int *status)
{
    json_t *r = fix_api_port(f.snpd.port, method, path, token, body, status);
    cr_assert_not_null(r, "%s %s: no JSON answer (HTTP %d)", method, path, *status);
    return r;
}

/* Whether `needle` occurs in the JSON text of `r`. */
static bool mentions(json_t *r, const char *needle)
{
    char *text = json_dumps(r, 0);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

/* Imports `body` as `token`, expects other_territory on `field`. */
static void import_refused(const char *token, const char *body, const char *field)
{
    int st;
    json_t *r = call("POST", "/api/v1/territory/import", token, body, &st);
    cr_assert_eq(st, 403, "an import changing %s answered %d", field, st);
    cr_assert_str_eq(error_code(r), "other_territory");
    cr_assert_str_eq(error_field(r), field);
    json_decref(r);
}

/* Counts the free slots territory A's pharmacy sees around Redon. */
static long capacity_around_redon(void)
{
    int st;
    json_t *r = call("GET", "/api/v1/capacity?horizon=24h&commune_insee=35236&radius_km=20",
                     f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 200, "capacity.query answered %d", st);
    long n = (long)json_integer_value(json_object_get(r, "total"));
    json_decref(r);
    return n;
}

/* --- item 1: B can neither rename nor relocate A ----------------------------------- */

Test(isolation, b_cannot_rename_or_relocate_a)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]"), 2);
    long before = capacity_around_redon();
    cr_assert_eq(before, 2, "the capacity around Redon is %ld before the attack", before);

    /* Redon moved to (0, 0): refused, naming the field, nothing imported. */
    import_refused(admin_b,
                   "{\"communes\": [{\"insee\": \"35236\", \"name\": \"Redon\", \"postal_code\":"
                   " \"35600\", \"latitude\": 0, \"longitude\": 0}]}",
                   "communes[0].latitude");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM commune WHERE insee = '35236'"
                                    " AND latitude = 47.6514 AND longitude = -2.0840"),
                 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory_commune WHERE territory_id ="
                                    " '" OTHER "' AND insee = '35236'"),
                 0);
    /* Renamed, or another postal code: refused too. */
    import_refused(admin_b,
                   "{\"communes\": [{\"insee\": \"35236\", \"name\": \"Redon-sur-Mer\","
                   " \"latitude\": 47.6514, \"longitude\": -2.0840}]}",
                   "communes[0].name");
    import_refused(admin_b,
                   "{\"communes\": [{\"insee\": \"35236\", \"name\": \"Redon\", \"postal_code\":"
                   " \"35601\", \"latitude\": 47.6514, \"longitude\": -2.0840}]}",
                   "communes[0].postal_code");

    /* A's practitioner renamed by B: refused; his record is unchanged, and
     * the site of the same import is not created either. */
    import_refused(admin_b,
                   "{\"sites\": [{\"name\": \"Cabinet de Rennes\", \"kind\": \"practice\","
                   " \"address\": \"1 rue de Rennes\", \"commune_insee\": \"35238\","
                   " \"latitude\": 48.11, \"longitude\": -1.67}],"
                   " \"practitioners\": [{\"rpps\": \"" FIX_GP1
                   "\", \"family_name\": \"Usurpateur\","
                   " \"given_name\": \"Anne\", \"sites\": [\"Cabinet de Rennes\"]}]}",
                   "practitioners[0].family_name");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner WHERE rpps = '" FIX_GP1
                                    "' AND family_name = 'Le Guen'"),
                 1);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM site WHERE territory_id = '" OTHER "'"),
                 0, "the refused import left a site behind");

    /* Joining Redon with the values recorded is allowed (territories
     * overlap), and changes nothing for A. */
    int st;
    json_t *r = call("POST", "/api/v1/territory/import", admin_b,
                     "{\"communes\": [{\"insee\": \"35236\", \"name\": \"Redon\","
                     " \"latitude\": 47.6514, \"longitude\": -2.0840}]}",
                     &st);
    cr_assert_eq(st, 200, "joining A's commune unchanged answered %d", st);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "created"), "communes")), 1);
    json_decref(r);
    /* From now on A itself may not move Redon either: B uses it. */
    import_refused(f.token[FIX_COORDINATOR],
                   "{\"communes\": [{\"insee\": \"35236\", \"name\": \"Redon\","
                   " \"latitude\": 47.7, \"longitude\": -2.0840}]}",
                   "communes[0].latitude");
    /* A commune only A uses stays A's to correct. */
    r = call("POST", "/api/v1/territory/import", f.token[FIX_COORDINATOR],
             "{\"communes\": [{\"insee\": \"56001\", \"name\": \"Allaire\", \"postal_code\":"
             " \"56350\", \"latitude\": 47.6381, \"longitude\": -2.1630}]}",
             &st);
    cr_assert_eq(st, 200, "A correcting its own commune answered %d", st);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "updated"), "communes")), 1);
    json_decref(r);

    cr_assert_eq(capacity_around_redon(), before, "A's capacity changed");
}

/* --- item 1: B cannot take over or listen to A ------------------------------------- */

/* Waits up to `ms` for a push on `w`; returns it (malloc'ed) or NULL. */
static char *next_push(struct snpclient_ws *w, int ms)
{
    char *text = NULL;
    int rc = snpclient_ws_recv(w, ms, &text);
    return rc == 0 ? text : NULL;
}

static struct snpclient_ws *bookings_listener(struct snpclient *cl, const char *token)
{
    char err[128];
    struct snpclient_ws *w = snpclient_ws_open(cl, NULL, token, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(w, "WebSocket: %s", err);
    char *resp = NULL;
    int rc = snpclient_ws_call(w, "subscribe", "{\"topics\": [\"bookings\"]}", ANSWER_MS, &resp);
    cr_assert_eq(rc, 0, "subscribe: %s", resp ? resp : snpclient_strerror(rc));
    free(resp);
    return w;
}

Test(isolation, b_cannot_take_over_or_listen_to_a)
{
    int st;
    /* B puts A's practitioner, under his recorded name, at a site of its
     * own: the practitioner now works in both territories. */
    json_t *r =
        call("POST", "/api/v1/territory/import", admin_b,
             "{\"sites\": [{\"name\": \"Cabinet de Rennes\", \"kind\": \"practice\","
             " \"address\": \"1 rue de Rennes\", \"commune_insee\": \"35238\","
             " \"latitude\": 48.11, \"longitude\": -1.67}],"
             " \"practitioners\": [{\"rpps\": \"" FIX_GP1 "\", \"family_name\": \"Le Guen\","
             " \"given_name\": \"Anne\", \"sites\": [\"Cabinet de Rennes\"]}]}",
             &st);
    cr_assert_eq(st, 200, "joining A's practitioner unchanged answered %d", st);
    json_decref(r);
    /* He is joined to B's site only. */
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner_site ps JOIN site s ON"
                                    " s.id = ps.site_id WHERE ps.rpps = '" FIX_GP1
                                    "' AND s.territory_id = '" OTHER "'"),
                 1);

    /* A gp token of B for him is made (he practises in B), none for a
     * practitioner of A only, neither through the protocol nor on the
     * server. */
    r = call("POST", "/api/v1/tokens", admin_b, "{\"role\": \"gp\", \"rpps\": \"" FIX_GP1 "\"}",
             &st);
    cr_assert_eq(st, 201, "gp token in B answered %d", st);
    char gp_b[48];
    snprintf(gp_b, sizeof(gp_b), "%s", json_string_value(json_object_get(r, "secret")));
    json_decref(r);
    r = call("POST", "/api/v1/tokens", admin_b, "{\"role\": \"gp\", \"rpps\": \"" FIX_GP2 "\"}",
             &st);
    cr_assert_eq(st, 400, "gp token in B for A's GP2 answered %d", st);
    cr_assert_str_eq(error_field(r), "rpps");
    json_decref(r);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "'%s' --database '%s' token create --role gp --territory " OTHER
             " --practitioner " FIX_GP2 " >/dev/null 2>&1",
             getenv("SNPD_BINARY"), f.pg.conninfo);
    int rc = system(cmd);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) != 0, "snpd token create made a gp token of B "
                                                     "for a practitioner of A only");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM api_token WHERE rpps = '" FIX_GP2
                                    "' AND territory_id = '" OTHER "'"),
                 0);

    /* Both sessions of the practitioner listen to their bookings. */
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    struct snpclient_ws *in_a = bookings_listener(cl, f.token[FIX_GP_1]);
    struct snpclient_ws *in_b = bookings_listener(cl, gp_b);

    /* A books a patient with GP1, then cancels. */
    struct fix_booking bk;
    fix_book(&f, "iso-1", PATIENT, PHONE, 90, &bk);
    char *push = next_push(in_a, ANSWER_MS);
    cr_assert_not_null(push, "A's session got no booking.created");
    cr_assert_not_null(strstr(push, "booking.created"), "%s", push);
    free(push);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)bk.booking_id);
    r = call("POST", path, f.token[FIX_PHARMACY], "{\"reason\": \"patient_request\"}", &st);
    cr_assert_eq(st, 200, "booking.cancel answered %d", st);
    json_decref(r);
    push = next_push(in_a, ANSWER_MS);
    cr_assert_not_null(push, "A's session got no booking.cancelled");
    cr_assert_not_null(strstr(push, "booking.cancelled"), "%s", push);
    free(push);
    /* B's session heard nothing (A's session got both pushes first, so
     * B's would be queued by now; a short wait more covers ordering). */
    push = next_push(in_b, 1000);
    cr_assert_null(push, "B's session got a push of A: %s", push);

    /* B's token reads and touches nothing of A. */
    fix_book(&f, "iso-2", PATIENT, PHONE, 150, &bk);
    free(next_push(in_a, ANSWER_MS));
    push = next_push(in_b, 1000);
    cr_assert_null(push, "B's session got a push of A: %s", push);
    r = call("GET", "/api/v1/bookings", gp_b, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "bookings")), 0, "B lists A's bookings");
    cr_assert(!mentions(r, PATIENT));
    json_decref(r);
    r = call("GET", "/api/v1/slots", gp_b, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "slots")), 0, "B lists A's slots");
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/outcome", (long long)bk.booking_id);
    r = call("POST", path, gp_b, "{\"outcome\": \"cancelled_by_patient\", \"note\": \"x\"}", &st);
    cr_assert_eq(st, 404, "B reporting A's outcome answered %d", st);
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)bk.booking_id);
    r = call("POST", path, gp_b, "{\"reason\": \"practitioner_unavailable\"}", &st);
    cr_assert_eq(st, 404, "B cancelling A's booking answered %d", st);
    json_decref(r);
    char body[96];
    fix_publish(&f, FIX_GP_1, 1, 300, 20, "[\"pharmacy\"]");
    long free_slot = pgtest_long(&f.pg, "SELECT max(id) FROM slot WHERE status = 'free'");
    snprintf(body, sizeof(body), "{\"slot_ids\": [%ld]}", free_slot);
    r = call("POST", "/api/v1/slots/withdraw", gp_b, body, &st);
    cr_assert(st == 404 || st == 403, "B withdrawing A's slot answered %d", st);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'booked'"), 1);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM slot WHERE id = %ld AND status = 'free'",
             free_slot);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1);

    snpclient_ws_close(in_a);
    snpclient_ws_close(in_b);
    snpclient_free(cl);
}

/* --- item 5: windows out of range, internal errors ---------------------------------- */

Test(isolation, out_of_range_windows_are_invalid_fields)
{
    static const struct {
        const char *path;
        enum fix_role as;
        const char *field;
    } cases[] = {
        {"/api/v1/requests?from=0000-01-01T00:00:00Z", FIX_PHARMACY, "from"},
        {"/api/v1/bookings?from=0000-01-01T00:00:00Z", FIX_GP_1, "from"},
        {"/api/v1/requests?to=9999-12-31T23:59:59Z", FIX_PHARMACY, "to"},
        {"/api/v1/bookings?from=1899-12-31T23:59:59Z", FIX_GP_1, "from"},
        {"/api/v1/bookings?from=2999-12-31T00:00:00Z&to=3000-01-01T00:00:00Z", FIX_GP_1, "to"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st;
        json_t *r = call("GET", cases[i].path, f.token[cases[i].as], NULL, &st);
        cr_assert_eq(st, 400, "%s answered %d", cases[i].path, st);
        cr_assert_str_eq(error_code(r), "invalid_field", "%s", cases[i].path);
        cr_assert_str_eq(error_field(r), cases[i].field, "%s", cases[i].path);
        json_decref(r);
    }
    /* The edges themselves are accepted. */
    int st;
    json_t *r = call("GET", "/api/v1/requests?from=1900-01-01T00:00:00Z&to=2999-12-31T23:59:59Z",
                     f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 200, "the widest window answered %d", st);
    json_decref(r);
}

Test(isolation, internal_errors_say_nothing_of_the_database)
{
    struct fix_booking bk;
    fix_book(&f, "iso-int", PATIENT, PHONE, 90, &bk);
    /* A broken read, as a bug would make it, whose PostgreSQL message
     * quotes the patient. */
    PQclear(pgtest_exec(&f.pg, "CREATE OR REPLACE FUNCTION snp_request_view(r request)"
                               " RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
                               " 'cannot show " PATIENT "' USING ERRCODE = 'XX001'; END $$"));
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld", (long long)bk.request_id);
    int st;
    json_t *r = call("GET", path, f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 500, "the broken read answered %d", st);
    cr_assert_str_eq(error_code(r), "internal");
    cr_assert(!mentions(r, "Sentinelle"), "the answer quotes the database");
    cr_assert(!mentions(r, "XX001"), "the answer names the SQLSTATE");
    json_decref(r);
    r = call("GET", "/api/v1/requests", f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 500);
    cr_assert(!mentions(r, "Sentinelle"));
    json_decref(r);

    /* The SQLSTATE is in snpd's log, for whoever runs it. */
    FILE *log = fopen(f.snpd.log_path, "r");
    cr_assert_not_null(log);
    char line[4096];
    bool logged = false;
    while (fgets(line, sizeof(line), log))
        logged = logged || strstr(line, "XX001");
    fclose(log);
    cr_assert(logged, "the SQLSTATE is not in the log");
}

/* --- item 6: the outcome note, cancelled bookings ---------------------------------- */

Test(isolation, the_note_is_the_practitioners_and_cancelled_bookings_show_no_patient)
{
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    char err[128];
    struct snpclient_ws *requester =
        snpclient_ws_open(cl, NULL, f.token[FIX_PHARMACY], ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(requester, "%s", err);
    char *resp = NULL;
    cr_assert_eq(
        snpclient_ws_call(requester, "subscribe", "{\"topics\": [\"requests\"]}", ANSWER_MS, &resp),
        0);
    free(resp);

    struct fix_booking bk;
    fix_book(&f, "iso-note", PATIENT, PHONE, 90, &bk);
    int st;
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/outcome", (long long)bk.booking_id);
    json_t *r = call("POST", path, f.token[FIX_GP_1],
                     "{\"outcome\": \"cancelled_by_patient\", \"note\": \"" NOTE "\"}", &st);
    cr_assert_eq(st, 200, "outcome.report answered %d", st);
    json_decref(r);

    /* The practitioner sees the note, with the patient. */
    r = call("GET", "/api/v1/bookings", f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert(mentions(r, NOTE), "the practitioner does not see their note");
    cr_assert(mentions(r, PATIENT));
    json_decref(r);
    /* The requester does not, nor the other practitioner. */
    snprintf(path, sizeof(path), "/api/v1/requests/%lld", (long long)bk.request_id);
    r = call("GET", path, f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert(mentions(r, PATIENT), "the requester lost its patient");
    cr_assert(!mentions(r, "Rappeler"), "the requester reads the practitioner's note");
    json_decref(r);
    r = call("GET", "/api/v1/bookings", f.token[FIX_GP_2], NULL, &st);
    cr_assert(!mentions(r, "Rappeler") && !mentions(r, PATIENT));
    json_decref(r);

    /* The coordinator cancels: neither its answer nor the pushes carry the
     * note or the patient. */
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)bk.booking_id);
    r = call("POST", path, f.token[FIX_COORDINATOR], "{\"reason\": \"entered_in_error\"}", &st);
    cr_assert_eq(st, 200, "booking.cancel answered %d", st);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "outcome"), "kind")),
                     "cancelled_by_patient");
    cr_assert(!mentions(r, "Rappeler"), "the coordinator reads the practitioner's note");
    cr_assert(!mentions(r, PATIENT) && !mentions(r, PHONE));
    json_decref(r);
    char *text = NULL;
    bool cancelled_push = false;
    while (snpclient_ws_recv(requester, 1500, &text) == 0) {
        cr_assert_null(strstr(text, "Rappeler"), "a push carries the note: %s", text);
        cancelled_push = cancelled_push || strstr(text, "booking.cancelled");
        free(text);
    }
    cr_assert(cancelled_push, "the requester got no booking.cancelled");

    /* The cancelled booking, listed by its practitioner: no patient, no
     * free text, and no audited read of an identity not shown. */
    long audited = pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'"
                                      " AND role = 'gp'");
    r = call("GET", "/api/v1/bookings?status=cancelled", f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(json_object_get(r, "bookings")), 1);
    json_t *b = json_array_get(json_object_get(r, "bookings"), 0);
    cr_assert_null(json_object_get(b, "patient"), "a cancelled booking shows its patient");
    cr_assert_null(json_object_get(json_object_get(b, "motif"), "text"));
    cr_assert(!mentions(r, "Rappeler") && !mentions(r, PHONE) && !mentions(r, "Sentinelle"));
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'patient.read'"
                                    " AND role = 'gp'"),
                 audited);

    snpclient_ws_close(requester);
    snpclient_free(cl);
}
