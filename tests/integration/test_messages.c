/* What snpd sends to patients and practitioners (issue 15 §4,
 * docs/messages.md), end to end: real snpd processes, a real PostgreSQL,
 * the file sender read back by the test, and a stand-in HTTP gateway.
 *
 * The promises checked:
 *   - a requester's confirmation reaches the sender once, with the
 *     normalised address and a text that says when, with whom and where,
 *     never the motif; the address is erased from the database once sent;
 *     bad addresses and other organisations' requests are refused;
 *   - after an outcome of a patient seen, the médecin traitant (known, not
 *     the GP seen, the territory's setting on) gets one summary, and no one
 *     else does;
 *   - a patient without an MT is referred once, with their agreement, to a
 *     GP of the territory's list other than the caller, the one with the
 *     fewest referrals;
 *   - the HTTP gateway is retried until it accepts, or until the message is
 *     given up (dead, address erased); every attempt names the message and
 *     carries the gateway's token;
 *   - two processes on one database send each message once;
 *   - neither an address nor a patient's name reaches snpd's log;
 *   - the indicators count the summaries, referrals and confirmations.
 *
 * Every wait is a poll with a generous bound: nothing here is timed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "protocol/codec.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/httpstub.h"
#include "tests/support/wait.h"

#define WAIT_MS      120000 /* the bound of every wait; reached only when broken */
#define PATIENT_NAME "Jeanne Testmessage"
#define PATIENT_TEL  "06 12 34 56 78"
#define MOTIF_TEXT   "Motiftexte-secret"
#define NOTE_TEXT    "Notetexte-secrete"

static struct fixture f;
static char message_file[256];

static void start_with(const char *sender, const char *gateway_url)
{
    snprintf(message_file, sizeof(message_file), "%s/snpd-messages-%ld-%ld.jsonl",
             proc_scratch_dir(), (long)getpid(), (long)time(NULL));
    unlink(message_file);
    setenv("SNPD_MESSAGE_SENDER", sender, 1);
    setenv("SNPD_MESSAGE_FILE", message_file, 1);
    setenv("SNPD_MESSAGE_POLL_MS", "100", 1);
    setenv("SNPD_MESSAGE_RETRY_MAX_S", "1", 1);
    setenv("SNPD_MESSAGE_TIMEOUT_MS", "2000", 1);
    setenv("SNPD_MESSAGE_GATEWAY_TOKEN", "gw-secret-token", 1);
    if (gateway_url)
        setenv("SNPD_MESSAGE_GATEWAY_URL", gateway_url, 1);
    else
        unsetenv("SNPD_MESSAGE_GATEWAY_URL");
    fixture_setup(&f, "{}");
    fix_install_test_clock(&f);
    fixture_start(&f);
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
}

static void setup(void)
{
    start_with("file", NULL);
}

static void teardown(void)
{
    fixture_teardown(&f);
    unlink(message_file);
    unsetenv("SNPD_MESSAGE_DEAD_AFTER_S");
}

/* --- helpers ------------------------------------------------------------------------ */

/* Every document the file sender wrote, as a JSON array. */
static json_t *file_messages(void)
{
    json_t *all = json_array();
    FILE *in = fopen(message_file, "r");
    if (!in)
        return all;
    char line[8192];
    while (fgets(line, sizeof(line), in)) {
        json_error_t e;
        json_t *doc = json_loads(line, 0, &e);
        cr_assert_not_null(doc, "a line of %s is not JSON: %s", message_file, e.text);
        json_array_append_new(all, doc);
    }
    fclose(in);
    return all;
}

/* Waits until the file holds `n` documents; returns them. */
struct file_wait {
    size_t n;
    json_t *all; /* the documents read last */
};

static bool file_holds(void *arg)
{
    struct file_wait *w = arg;
    json_decref(w->all);
    w->all = file_messages();
    return json_array_size(w->all) >= w->n;
}

static json_t *wait_file_messages(size_t n)
{
    struct file_wait w = {.n = n};
    bool complete = wait_until(file_holds, &w, WAIT_MS);
    (void)complete; /* the caller checks what came */
    return w.all;
}

/* The document of message `id` among `all`, or NULL. */
static json_t *doc_of(json_t *all, long long id)
{
    size_t i;
    json_t *d;
    json_array_foreach (all, i, d) {
        if (json_integer_value(json_object_get(d, "message_id")) == id)
            return d;
    }
    return NULL;
}

static long long row_ll(const char *sql, long long id)
{
    char p[24];
    snprintf(p, sizeof(p), "%lld", id);
    const char *params[] = {p};
    return fix_sql_ll(&f, sql, 1, params);
}

/* Waits until message `id` is no longer pending; returns its state. */
static char *wait_message_done(long long id)
{
    bool done;
    WAIT_UNTIL(done,
               row_ll("SELECT count(*) FROM message_outbox WHERE id = $1::bigint AND state <> "
                      "'pending'",
                      id) == 1,
               WAIT_MS);
    (void)done; /* the caller checks the state returned */
    char p[24];
    snprintf(p, sizeof(p), "%lld", id);
    const char *params[] = {p};
    PGresult *r = fix_sql(&f, "SELECT state FROM message_outbox WHERE id = $1::bigint", 1, params);
    char *state = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return state;
}

struct booked {
    long long request_id, booking_id, slot_id;
    time_t start;
};

/* GP `gp` publishes one slot `first_min` minutes ahead; the pharmacy asks for
 * PATIENT_NAME (with an MT `mt_rpps` when not NULL) and accepts the offer. */
static void book(enum fix_role gp, const char *client_ref, const char *mt_rpps, int first_min,
                 struct booked *out)
{
    cr_assert_eq(fix_publish(&f, gp, 1, first_min, 20, "[\"pharmacy\"]"), 1);
    json_t *patient = json_pack("{s:s, s:i, s:s, s:s, s:s, s:b}", "display_name", PATIENT_NAME,
                                "birth_year", 1951, "sex", "female", "phone", PATIENT_TEL,
                                "commune_insee", "35236", "has_mt", mt_rpps != NULL);
    if (mt_rpps)
        json_object_set_new(patient, "mt_rpps", json_string(mt_rpps));
    json_t *b = json_pack("{s:s, s:o, s:{s:s, s:s}, s:s}", "client_ref", client_ref, "patient",
                          patient, "motif", "code", "fever", "text", MOTIF_TEXT, "urgency", "48h");
    int st;
    json_t *r = fix_api_json(&f, "POST", "/api/v1/requests", FIX_PHARMACY, b, &st);
    cr_assert_eq(st, 201, "request.create answered %d", st);
    out->request_id = json_integer_value(json_object_get(r, "request_id"));
    out->slot_id = json_integer_value(fix_json_at(r, "offer.slot.slot_id"));
    json_decref(r);
    cr_assert_gt(out->slot_id, 0, "no offer for %s", client_ref);
    char path[80], accept[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", out->request_id);
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", out->slot_id);
    r = fix_api(&f, "POST", path, FIX_PHARMACY, accept, &st);
    cr_assert_eq(st, 200, "offer.accept answered %d", st);
    out->booking_id = json_integer_value(json_object_get(r, "booking_id"));
    json_decref(r);
    out->start = (time_t)row_ll("SELECT extract(epoch FROM starts_at)::bigint FROM slot "
                                "WHERE id = $1::bigint",
                                out->slot_id);
}

/* The practitioner's outcome, through snp_outcome_report (the function
 * outcome.report calls) half an hour after the slot's start on the test
 * clock. */
static void report(const struct booked *b, const char *rpps, const char *outcome)
{
    fix_clock_at(&f, (int64_t)b->start + 1800);
    char id[24];
    snprintf(id, sizeof(id), "%lld", b->booking_id);
    const char *params[] = {id, FIX_TERRITORY, rpps, outcome, NOTE_TEXT};
    PQclear(fix_sql(&f,
                    "SELECT id FROM snp_outcome_report($1::bigint, $2, $3, $4, $5, 72, "
                    "'token:gp')",
                    5, params));
    PQclear(fix_sql(&f, "RESET snp.test_now", 0, NULL));
}

static json_t *send_confirmation(enum fix_role as, long long request, const char *channel,
                                 const char *to, int *status)
{
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/confirmation", request);
    json_t *body = json_pack("{s:s, s:s}", "channel", channel, "to", to);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *r = fix_api_checked(f.snpd.port, "request.confirmation.send", "POST", path, f.token[as],
                                text, status);
    free(text);
    return r;
}

static json_t *handover(enum fix_role as, long long booking, int *status)
{
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/mt-handover", booking);
    return fix_api_checked(f.snpd.port, "booking.mt_handover", "POST", path, f.token[as], "{}",
                           status);
}

static void set_settings(const char *patch)
{
    int st;
    json_t *r = fix_api(&f, "PATCH", "/api/v1/territory/settings", FIX_COORDINATOR, patch, &st);
    cr_assert_eq(st, 200, "territory.settings.update answered %d", st);
    json_decref(r);
}

/* The value of indicator `code` over the current month, unmasked. */
static long long indicator(const char *code)
{
    const char *params[] = {FIX_TERRITORY, code};
    return fix_sql_ll(&f,
                      "SELECT coalesce(sum(value), 0)::bigint FROM snp_ind_rows($1, "
                      "date_trunc('month', now()) - interval '1 month', "
                      "date_trunc('month', now()) + interval '2 month', now() + interval '40 days')"
                      " WHERE code = $2",
                      2, params);
}

/* Fails when snpd's log holds any of the patient's identity or addresses. */
static void log_is_clean(const struct snpd_proc *p)
{
    char *log = snpd_proc_log(p);
    cr_assert_not_null(log);
    static const char *const secrets[] = {PATIENT_NAME,  "Testmessage",        "612345678",
                                          "12 34 56 78", "patient@exemple.fr", MOTIF_TEXT,
                                          NOTE_TEXT};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        cr_expect_null(strstr(log, secrets[i]), "snpd's log holds \"%s\"", secrets[i]);
    free(log);
}

/* --- the confirmation --------------------------------------------------------------- */

Test(messages, confirmation_reaches_the_patient_once_and_the_address_is_erased, .init = setup,
     .fini = teardown)
{
    struct booked b;
    book(FIX_GP_1, "conf-1", NULL, 24 * 60, &b);
    int st;
    json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "sms", PATIENT_TEL, &st);
    cr_assert_eq(st, 200, "request.confirmation.send answered %d", st);
    long long sms = json_integer_value(fix_json_at(r, "message.message_id"));
    cr_expect_str_eq(fix_json_str(r, "message.kind"), "confirmation");
    cr_expect_str_eq(fix_json_str(r, "message.channel"), "sms");
    cr_expect_eq(json_integer_value(fix_json_at(r, "message.booking_id")), b.booking_id);
    char *answer = json_dumps(r, 0);
    cr_expect_null(strstr(answer, "612345678"), "the answer repeats the address");
    free(answer);
    json_decref(r);
    r = send_confirmation(FIX_PHARMACY, b.request_id, "email", " Patient@Exemple.FR", &st);
    cr_expect_eq(st, 400, "an address with a space: %d", st);
    json_decref(r);
    r = send_confirmation(FIX_PHARMACY, b.request_id, "email", "Patient@Exemple.FR", &st);
    cr_assert_eq(st, 200, "the e-mail: %d", st);
    long long mail = json_integer_value(fix_json_at(r, "message.message_id"));
    json_decref(r);

    json_t *all = wait_file_messages(2);
    cr_assert_eq(json_array_size(all), 2, "the file holds %zu messages", json_array_size(all));
    json_t *d = doc_of(all, sms);
    cr_assert_not_null(d);
    cr_expect_str_eq(fix_json_str(d, "to"), "+33612345678");
    cr_expect_str_eq(fix_json_str(d, "to_type"), "phone");
    cr_expect_str_eq(fix_json_str(d, "territory_id"), FIX_TERRITORY);
    const char *text = fix_json_str(d, "text");
    cr_assert_not_null(text);
    char number[48];
    snprintf(number, sizeof(number), "Demande n° %lld", b.request_id);
    cr_expect_not_null(strstr(text, number), "%s", text);
    cr_expect_not_null(strstr(text, "Rendez-vous confirmé le "), "%s", text);
    cr_expect_null(strstr(text, MOTIF_TEXT), "the motif went to the patient: %s", text);
    cr_expect_null(strstr(text, "Fièvre"), "the motif went to the patient: %s", text);
    /* The practitioner and the place, as the database knows them. */
    char slot[24];
    snprintf(slot, sizeof(slot), "%lld", b.slot_id);
    const char *params[] = {slot};
    PGresult *who = fix_sql(&f,
                            "SELECT 'le Dr ' || p.given_name || ' ' || p.family_name, si.name "
                            "FROM slot s JOIN practitioner p ON p.rpps = s.rpps "
                            "JOIN site si ON si.id = s.site_id WHERE s.id = $1::bigint",
                            1, params);
    cr_expect_not_null(strstr(text, PQgetvalue(who, 0, 0)), "%s", text);
    cr_expect_not_null(strstr(text, PQgetvalue(who, 0, 1)), "%s", text);
    PQclear(who);
    d = doc_of(all, mail);
    cr_assert_not_null(d);
    cr_expect_str_eq(fix_json_str(d, "to"), "Patient@exemple.fr");
    cr_expect_str_eq(fix_json_str(d, "channel"), "email");
    cr_expect_not_null(strstr(fix_json_str(d, "subject"), "Votre rendez-vous du "));
    json_decref(all);

    /* Sent, the address is gone from the database; the list never shows it. */
    char *state = wait_message_done(sms);
    cr_expect_str_eq(state, "sent");
    free(state);
    state = wait_message_done(mail);
    cr_expect_str_eq(state, "sent");
    free(state);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE booking_id = $1::bigint AND "
                        "recipient IS NULL AND done_at IS NOT NULL",
                        b.booking_id),
                 2);
    r = fix_api_checked(f.snpd.port, "message.list", "GET", "/api/v1/messages",
                        f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 2);
    cr_expect_str_eq(fix_json_str(r, "messages.0.state"), "sent");
    char *dump = json_dumps(r, 0);
    cr_expect_null(strstr(dump, "33612345678"));
    cr_expect_null(strstr(dump, "exemple.fr"));
    free(dump);
    json_decref(r);
    /* Audited, without the address. */
    cr_expect_eq(row_ll("SELECT count(*) FROM audit WHERE action = 'message.queued' AND "
                        "request_id = $1::bigint AND detail::text NOT LIKE '%%612345678%%' AND "
                        "detail::text NOT LIKE '%%exemple%%'",
                        b.request_id),
                 2);
    cr_expect_eq(indicator("confirmations_sent_to_patients"), 2);
    log_is_clean(&f.snpd);
}

Test(messages, a_confirmation_is_refused_what_it_cannot_do, .init = setup, .fini = teardown)
{
    struct booked b;
    book(FIX_GP_1, "conf-2", NULL, 24 * 60, &b);
    static const char *const not_mobiles[] = {"02 99 71 00 00",   "0612345",      "+44 7700 900123",
                                              "06 12 34 56 78 9", "06--12345678", "un numéro"};
    int st;
    for (size_t i = 0; i < sizeof(not_mobiles) / sizeof(not_mobiles[0]); i++) {
        json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "sms", not_mobiles[i], &st);
        cr_expect_eq(st, 400, "\"%s\" answered %d", not_mobiles[i], st);
        cr_expect_str_eq(fix_json_str(r, "error.field"), "to");
        json_decref(r);
    }
    static const char *const mobiles[] = {"07.00.00.00.01", "+33 7 00 00 00 02", "+33600000003"};
    for (size_t i = 0; i < sizeof(mobiles) / sizeof(mobiles[0]); i++) {
        json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "sms", mobiles[i], &st);
        cr_expect_eq(st, 200, "\"%s\" answered %d", mobiles[i], st);
        json_decref(r);
    }
    static const char *const not_emails[] = {"patient", "@exemple.fr", "patient@exemple",
                                             "a@b@exemple.fr", "patient@exemple..fr"};
    for (size_t i = 0; i < sizeof(not_emails) / sizeof(not_emails[0]); i++) {
        json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "email", not_emails[i], &st);
        cr_expect_eq(st, 400, "\"%s\" answered %d", not_emails[i], st);
        json_decref(r);
    }
    /* Another pharmacy's request does not exist for this one. */
    json_t *r = send_confirmation(FIX_OTHER_PHARMACY, b.request_id, "sms", PATIENT_TEL, &st);
    cr_expect_eq(st, 404, "another organisation: %d", st);
    json_decref(r);
    r = send_confirmation(FIX_GP_1, b.request_id, "sms", PATIENT_TEL, &st);
    cr_expect_eq(st, 403, "a GP: %d", st);
    json_decref(r);
    /* A request without a booking has nothing to confirm. */
    char *body = fix_request_body("conf-2-waiting", "48h");
    r = fix_api(&f, "POST", "/api/v1/requests", FIX_PHARMACY, body, &st);
    free(body);
    cr_assert_eq(st, 201);
    long long waiting = json_integer_value(json_object_get(r, "request_id"));
    json_decref(r);
    r = send_confirmation(FIX_PHARMACY, waiting, "sms", PATIENT_TEL, &st);
    cr_expect_eq(st, 409, "a request without a booking: %d", st);
    json_decref(r);
    /* Nothing refused was queued: the three mobiles only. */
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE $1::bigint > 0", 1), 3);
}

/* --- the médecin traitant ------------------------------------------------------------ */

Test(messages, the_mt_gets_one_summary_after_an_outcome_of_a_patient_seen, .init = setup,
     .fini = teardown)
{
    /* GP2 is the MT of the patient seen by GP1: a summary to GP2. */
    struct booked seen, own, noshow, nomt;
    book(FIX_GP_1, "mt-1", FIX_GP2, 24 * 60, &seen);
    /* GP1 is the MT and sees the patient: no summary. */
    book(FIX_GP_1, "mt-2", FIX_GP1, 25 * 60, &own);
    /* A no-show: no summary. */
    book(FIX_GP_1, "mt-3", FIX_GP2, 26 * 60, &noshow);
    /* No MT: no summary. */
    book(FIX_GP_1, "mt-4", NULL, 27 * 60, &nomt);
    report(&seen, FIX_GP1, "attended");
    report(&own, FIX_GP1, "attended");
    report(&noshow, FIX_GP1, "no_show");
    report(&nomt, FIX_GP1, "attended");
    cr_assert_eq(row_ll("SELECT count(*) FROM message_outbox WHERE $1::bigint > 0", 1), 1,
                 "one summary is queued");
    long long id = row_ll("SELECT id FROM message_outbox WHERE booking_id = $1::bigint AND kind = "
                          "'mt_summary'",
                          seen.booking_id);
    json_t *all = wait_file_messages(1);
    json_t *d = doc_of(all, id);
    cr_assert_not_null(d, "the summary did not reach the sender");
    cr_expect_str_eq(fix_json_str(d, "channel"), "mssante");
    cr_expect_str_eq(fix_json_str(d, "to_type"), "rpps");
    cr_expect_str_eq(fix_json_str(d, "to"), FIX_GP2);
    const char *text = fix_json_str(d, "text");
    cr_expect_not_null(strstr(text, PATIENT_NAME), "%s", text);
    cr_expect_not_null(strstr(text, "né(e) en 1951"), "%s", text);
    cr_expect_not_null(strstr(text, "RPPS " FIX_GP1), "%s", text);
    cr_expect_not_null(strstr(text, "Motif : Fièvre"), "%s", text);
    cr_expect_not_null(strstr(text, "Issue : vu(e) en consultation"), "%s", text);
    cr_expect_null(strstr(text, NOTE_TEXT), "the outcome's note went out: %s", text);
    cr_expect_null(strstr(text, MOTIF_TEXT), "the motif's text went out: %s", text);
    json_decref(all);
    char *state = wait_message_done(id);
    cr_expect_str_eq(state, "sent");
    free(state);

    /* GP1's list says the MT was told, and only for that booking. */
    int st;
    json_t *list = fix_api_checked(f.snpd.port, "booking.list", "GET", "/api/v1/bookings",
                                   f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200, "booking.list answered %d", st);
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get(list, "bookings"), i, item) {
        bool this_one = json_integer_value(json_object_get(item, "booking_id")) == seen.booking_id;
        json_t *summary = json_object_get(item, "mt_summary");
        cr_expect_eq(summary != NULL, this_one, "booking %lld",
                     (long long)json_integer_value(json_object_get(item, "booking_id")));
        if (this_one) {
            cr_expect_str_eq(fix_json_str(item, "mt_summary.practitioner.rpps"), FIX_GP2);
            cr_expect_str_eq(fix_json_str(item, "mt_summary.state"), "sent");
        }
    }
    json_decref(list);

    /* A no-show corrected to attended: its summary goes then; a seen
     * patient's outcome corrected again: no second one. */
    report(&noshow, FIX_GP1, "attended");
    report(&seen, FIX_GP1, "hospitalised");
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE kind = 'mt_summary' AND "
                        "booking_id = $1::bigint",
                        noshow.booking_id),
                 1);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE kind = 'mt_summary' AND "
                        "booking_id = $1::bigint",
                        seen.booking_id),
                 1);

    /* The territory turns the summaries off: none for the next one. */
    set_settings("{\"mt_summary\": false}");
    json_t *t = fix_api(&f, "GET", "/api/v1/territory", FIX_COORDINATOR, NULL, &st);
    cr_expect(json_is_false(fix_json_at(t, "settings.mt_summary")));
    json_decref(t);
    struct booked off;
    book(FIX_GP_1, "mt-5", FIX_GP2, 28 * 60, &off);
    report(&off, FIX_GP1, "attended");
    cr_expect_eq(
        row_ll("SELECT count(*) FROM message_outbox WHERE booking_id = $1::bigint", off.booking_id),
        0);
    cr_expect_eq(indicator("mt_summaries_sent"), 2);
    log_is_clean(&f.snpd);
}

/* --- the referral ------------------------------------------------------------------- */

Test(messages, a_patient_without_an_mt_is_referred_once_by_turn, .init = setup, .fini = teardown)
{
    struct booked a, b, c, with_mt;
    book(FIX_GP_1, "ref-1", NULL, 24 * 60, &a);
    book(FIX_GP_1, "ref-2", NULL, 25 * 60, &b);
    book(FIX_GP_1, "ref-3", NULL, 26 * 60, &c);
    book(FIX_GP_1, "ref-4", FIX_GP2, 27 * 60, &with_mt);
    int st;
    /* No list yet, and before any outcome: refused. */
    json_t *r = handover(FIX_GP_1, a.booking_id, &st);
    cr_expect_eq(st, 409, "before the outcome: %d", st);
    json_decref(r);
    report(&a, FIX_GP1, "attended");
    report(&b, FIX_GP1, "redirected_emergency");
    report(&c, FIX_GP1, "no_show");
    report(&with_mt, FIX_GP1, "attended");
    r = handover(FIX_GP_1, a.booking_id, &st);
    cr_expect_eq(st, 409, "without a list: %d", st);
    json_decref(r);
    /* A list of GP1 (the caller: never chosen) and GP2. */
    set_settings("{\"new_patient_gps\": [\"" FIX_GP1 "\", \"" FIX_GP2 "\"]}");
    r = handover(FIX_GP_2, a.booking_id, &st);
    cr_expect_eq(st, 404, "another practitioner's booking: %d", st);
    json_decref(r);
    r = handover(FIX_GP_1, c.booking_id, &st);
    cr_expect_eq(st, 409, "a no-show: %d", st);
    json_decref(r);
    r = handover(FIX_GP_1, with_mt.booking_id, &st);
    cr_expect_eq(st, 409, "a patient with an MT: %d", st);
    json_decref(r);
    r = handover(FIX_GP_1, a.booking_id, &st);
    cr_assert_eq(st, 200, "the referral answered %d", st);
    cr_expect_str_eq(fix_json_str(r, "practitioner.rpps"), FIX_GP2);
    cr_expect_str_eq(fix_json_str(r, "message.kind"), "mt_handover");
    long long id = json_integer_value(fix_json_at(r, "message.message_id"));
    json_decref(r);
    r = handover(FIX_GP_1, a.booking_id, &st);
    cr_expect_eq(st, 409, "twice: %d", st);
    cr_expect_not_null(strstr(fix_json_str(r, "error.message"), "already referred"));
    json_decref(r);
    r = handover(FIX_GP_1, b.booking_id, &st);
    cr_expect_eq(st, 200, "sent to the emergency department: %d", st);
    cr_expect_str_eq(fix_json_str(r, "practitioner.rpps"), FIX_GP2);
    json_decref(r);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE kind = 'mt_handover' AND "
                        "practitioner_rpps = '" FIX_GP2 "' AND $1::bigint > 0",
                        1),
                 2);
    /* GP1's list says to whom each was referred, and only for those. */
    r = fix_api_checked(f.snpd.port, "booking.list", "GET", "/api/v1/bookings?status=booked",
                        f.token[FIX_GP_1], NULL, &st);
    cr_assert_eq(st, 200, "booking.list answered %d", st);
    size_t i;
    json_t *item;
    int referred = 0;
    json_array_foreach(json_object_get(r, "bookings"), i, item)
    {
        long long id_i = json_integer_value(json_object_get(item, "booking_id"));
        json_t *to = json_object_get(item, "referred_to");
        if (id_i == a.booking_id || id_i == b.booking_id) {
            cr_expect_str_eq(fix_json_str(item, "referred_to.rpps"), FIX_GP2);
            cr_expect_not_null(fix_json_str(item, "referred_to.family_name"));
            referred++;
        } else {
            cr_expect_null(to, "booking %lld shows a referral", id_i);
        }
    }
    cr_expect_eq(referred, 2);
    json_decref(r);

    json_t *all = wait_file_messages(2);
    json_t *d = doc_of(all, id);
    cr_assert_not_null(d);
    cr_expect_str_eq(fix_json_str(d, "to"), FIX_GP2);
    const char *text = fix_json_str(d, "text");
    cr_expect_not_null(strstr(text, PATIENT_NAME), "%s", text);
    cr_expect_not_null(strstr(text, "Téléphone du patient : " PATIENT_TEL), "%s", text);
    cr_expect_null(strstr(text, MOTIF_TEXT), "%s", text);
    cr_expect_null(strstr(text, "Fièvre"), "the motif went to a GP who did not see them: %s", text);
    json_decref(all);
    cr_expect_eq(indicator("patients_referred_to_new_mt"), 2);
    log_is_clean(&f.snpd);
}

Test(messages, the_referral_goes_to_the_gp_with_the_fewest, .init = setup, .fini = teardown)
{
    /* GP2 refers its patients; the list names GP1 then GP2: GP1 each time
     * (the caller is skipped), and, once GP1 has had referrals from
     * elsewhere, still GP1 as the only other one. */
    set_settings("{\"new_patient_gps\": [\"" FIX_GP2 "\", \"" FIX_GP1 "\"]}");
    struct booked a;
    book(FIX_GP_2, "turn-1", NULL, 24 * 60, &a);
    report(&a, FIX_GP2, "hospitalised");
    int st;
    json_t *r = handover(FIX_GP_2, a.booking_id, &st);
    cr_assert_eq(st, 200, "%d", st);
    cr_expect_str_eq(fix_json_str(r, "practitioner.rpps"), FIX_GP1);
    json_decref(r);
    /* GP1 now refers one of its own: GP2 is the only other. */
    struct booked b;
    book(FIX_GP_1, "turn-2", NULL, 25 * 60, &b);
    report(&b, FIX_GP1, "attended");
    r = handover(FIX_GP_1, b.booking_id, &st);
    cr_assert_eq(st, 200, "%d", st);
    cr_expect_str_eq(fix_json_str(r, "practitioner.rpps"), FIX_GP2);
    json_decref(r);
}

/* --- the HTTP gateway --------------------------------------------------------------- */

static struct httpstub gw;

static void setup_http(void)
{
    httpstub_start(&gw, 503);
    char url[80];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/messages", gw.port);
    setenv("SNPD_MESSAGE_DEAD_AFTER_S", "3", 1);
    start_with("http", url);
}

static void teardown_http(void)
{
    teardown();
    httpstub_stop(&gw);
}

static bool metrics_show_one_dead(void *arg)
{
    (void)arg;
    struct http_response resp;
    if (http_request(f.snpd.port, "GET", "/metrics", NULL, NULL, &resp) != 0)
        return false;
    bool shown = resp.status == 200 && strstr(resp.body, "\nsnpd_messages_dead 1\n");
    http_response_free(&resp);
    return shown;
}

Test(messages, the_gateway_is_tried_again_until_it_accepts_or_the_message_is_given_up,
     .init = setup_http, .fini = teardown_http)
{
    struct booked b;
    book(FIX_GP_1, "gw-1", NULL, 24 * 60, &b);
    int st;
    json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "sms", PATIENT_TEL, &st);
    cr_assert_eq(st, 200);
    long long first = json_integer_value(fix_json_at(r, "message.message_id"));
    json_decref(r);
    /* Refused twice (503), then accepted. */
    bool refused_twice;
    WAIT_UNTIL(refused_twice, httpstub_count(&gw, 503) >= 2, WAIT_MS);
    cr_assert(refused_twice, "refused %d times", httpstub_count(&gw, 503));
    httpstub_answer(&gw, 202);
    char *state = wait_message_done(first);
    cr_expect_str_eq(state, "sent");
    free(state);
    cr_expect_eq(httpstub_count(&gw, 202), 1, "accepted %d times", httpstub_count(&gw, 202));
    pthread_mutex_lock(&gw.lock);
    for (int i = 0; i < gw.ngot; i++) {
        const char *head = gw.got[i].head;
        cr_expect(strncmp(head, "POST /messages ", 15) == 0, "%s", head);
        cr_expect_not_null(strcasestr(head, "Authorization: Bearer gw-secret-token"), "%s", head);
        char key[64];
        snprintf(key, sizeof(key), "Idempotency-Key: snpd-message-%lld", first);
        cr_expect_not_null(strcasestr(head, key), "%s", head);
        json_t *doc = json_loads(gw.got[i].body, 0, NULL);
        cr_expect_str_eq(fix_json_str(doc, "to"), "+33612345678");
        cr_expect_eq(json_integer_value(json_object_get(doc, "message_id")), first);
        json_decref(doc);
    }
    pthread_mutex_unlock(&gw.lock);

    /* A gateway that refuses for longer than message_dead_after_s: given
     * up, its address erased, counted in /metrics. */
    httpstub_answer(&gw, 500);
    r = send_confirmation(FIX_PHARMACY, b.request_id, "email", "patient@exemple.fr", &st);
    cr_assert_eq(st, 200);
    long long second = json_integer_value(fix_json_at(r, "message.message_id"));
    json_decref(r);
    state = wait_message_done(second);
    cr_expect_str_eq(state, "dead");
    free(state);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE id = $1::bigint AND "
                        "recipient IS NULL AND last_error LIKE 'HTTP 500%%'",
                        second),
                 1);
    r = fix_api_checked(f.snpd.port, "message.list", "GET", "/api/v1/messages?state=dead",
                        f.token[FIX_COORDINATOR], NULL, &st);
    cr_assert_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 1);
    cr_expect_not_null(strstr(fix_json_str(r, "messages.0.last_error"), "HTTP 500"));
    json_decref(r);
    bool dead_shown = wait_until(metrics_show_one_dead, NULL, WAIT_MS);
    cr_expect(dead_shown, "/metrics does not show the message given up");
    log_is_clean(&f.snpd);
}

/* --- two processes ------------------------------------------------------------------ */

Test(messages, two_processes_send_each_message_once, .init = setup, .fini = teardown)
{
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    enum { N = 24 };
    long long ids[N];
    struct booked b;
    book(FIX_GP_1, "two-1", NULL, 24 * 60, &b);
    for (int i = 0; i < N; i++) {
        char path[80], body[96];
        snprintf(path, sizeof(path), "/api/v1/requests/%lld/confirmation", b.request_id);
        snprintf(body, sizeof(body), "{\"channel\": \"sms\", \"to\": \"06 00 00 00 %02d\"}", i);
        int st;
        json_t *r = fix_api_port(i % 2 ? second.port : f.snpd.port, "POST", path,
                                 f.token[FIX_PHARMACY], body, &st);
        cr_assert_eq(st, 200, "%d", st);
        ids[i] = json_integer_value(fix_json_at(r, "message.message_id"));
        json_decref(r);
    }
    for (int i = 0; i < N; i++) {
        char *state = wait_message_done(ids[i]);
        cr_expect_str_eq(state, "sent", "message %lld", ids[i]);
        free(state);
    }
    json_t *all = file_messages();
    cr_expect_eq(json_array_size(all), N, "%zu documents for %d messages", json_array_size(all), N);
    for (int i = 0; i < N; i++) {
        int seen = 0;
        size_t k;
        json_t *d;
        json_array_foreach (all, k, d)
            seen += json_integer_value(json_object_get(d, "message_id")) == ids[i];
        cr_expect_eq(seen, 1, "message %lld written %d times", ids[i], seen);
    }
    json_decref(all);
    log_is_clean(&second);
    cr_expect_eq(snpd_proc_stop(&second, SIGTERM, 20000), 0);
}

/* --- without a sender ---------------------------------------------------------------- */

static void setup_none(void)
{
    setenv("SNPD_MESSAGE_DEAD_AFTER_S", "1", 1);
    start_with("none", NULL);
}

Test(messages, an_address_nobody_sends_to_is_erased_all_the_same, .init = setup_none,
     .fini = teardown)
{
    struct booked b;
    book(FIX_GP_1, "none-1", NULL, 24 * 60, &b);
    int st;
    json_t *r = send_confirmation(FIX_PHARMACY, b.request_id, "sms", PATIENT_TEL, &st);
    cr_assert_eq(st, 200, "queued even without a sender: %d", st);
    long long id = json_integer_value(fix_json_at(r, "message.message_id"));
    json_decref(r);
    /* Nothing takes it; past message_dead_after_s, the hourly job (it also
     * runs at start-up) gives it up and erases the address. */
    /* A time, not a condition: message_dead_after_s (1 s) must pass, and
     * in the meantime no sender may take the message. */
    test_sleep_ms(2000);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE id = $1::bigint AND "
                        "state = 'pending' AND recipient IS NOT NULL",
                        id),
                 1, "a sender took it");
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 20000), 0);
    snpd_proc_start(&f.snpd, f.pg.conninfo, NULL, true);
    char *state = wait_message_done(id);
    cr_expect_str_eq(state, "dead");
    free(state);
    cr_expect_eq(row_ll("SELECT count(*) FROM message_outbox WHERE id = $1::bigint AND "
                        "recipient IS NULL AND last_error LIKE 'not sent in time%%'",
                        id),
                 1);
    cr_expect_eq(row_ll("SELECT count(*) FROM audit WHERE action = 'outbox.purge' AND "
                        "detail ->> 'messages_given_up' = '1' AND $1::bigint > 0",
                        1),
                 1);
    FILE *in = fopen(message_file, "r");
    cr_expect_null(in, "sender none wrote %s", message_file);
    if (in)
        fclose(in);
}
