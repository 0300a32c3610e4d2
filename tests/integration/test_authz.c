/* The authorisation matrix, generated from protocol/snp.v1.json: every
 * message the declaration routes over HTTP is sent by every role, of the
 * territory that owns the objects named (test-t, "A") and of another one
 * (test-other, "B"), and without a token, with an expired one and with a
 * revoked one, to a real snpd on a real PostgreSQL.  The request is the
 * message's declared example with its ids replaced by A's objects: a booked
 * request of A's pharmacy with GP1 (its patient and GP1's outcome note carry
 * marker strings), a free slot, a token, a site, an organisation.
 *
 * What each answer must be:
 *   - never a 5xx;
 *   - missing, expired, revoked token: 401 unauthenticated, token_expired,
 *     token_revoked, whatever the message;
 *   - a role the message does not declare: 403 forbidden (also with an
 *     unknown field in the body, since the role is checked first);
 *   - a declared role: not 401, and with an unknown field in the body,
 *     400 unknown_field (the role passed);
 *   - a success answer follows the message's declared response;
 *   - B's callers never see anything of A (names, patient, note, ids of A's
 *     sites and organisations in text), and A's objects are as they were
 *     after B's whole sweep;
 *   - patient fields reach only the organisation that made the request and
 *     the practitioner booked, and the note only that practitioner.
 * Over WebSocket, every role of both territories subscribes to every topic
 * (allowed exactly when the declaration says so), and auth refuses missing,
 * expired and revoked tokens with their codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "clients/lib/snpclient.h"
#include "protocol/codec.h"
#include "protocol/snp_decl.h"
#include "tests/support/fixture.h"

#define ANSWER_MS 5000
#define OTHER     "test-other"
#define GP_B      "10999900037"
#define PATIENT   "Jeanne Sentinelle"
#define PHONE     "06 55 44 33 22"
#define MOTIF     "Gorge, voir avec la fille"
#define NOTE      "Note du docteur Sentinelle"

/* Strings of territory A that no answer to territory B may hold. */
static const char *const a_markers[] = {
    "Sentinelle",
    PHONE,
    "voir avec la fille",
    "Pharmacie du Pont",
    "Cabinet du Port",
    "CSNP de Redon",
    "Le Guen",
    "Morvan",
    "\"test-t\"",
};

static const char *const roles[] = {"gp",           "pharmacy", "emergency",   "sas",
                                    "professional", "desk",     "coordinator", "admin"};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* One caller of the matrix. */
struct caller {
    const char *role;
    bool other;        /* of territory B */
    bool sees_patient; /* the requester of A's booking, or its practitioner */
    bool sees_note;    /* the practitioner booked */
    char token[48];
};

static struct fixture f;
static struct caller callers[2 * NROLES + 1];
static size_t ncallers;
static char expired[NROLES][48], revoked[NROLES][48];
static struct fix_booking booked;
static int64_t free_slot, victim_token;
static size_t checked; /* answers checked, for the summary */

static int64_t org_of(const char *territory, const char *kind)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM organisation WHERE territory_id = '%s' AND kind = '%s'", territory,
             kind);
    return pgtest_long(&f.pg, sql);
}

static void add_caller(const char *role, bool other, bool sees_patient, bool sees_note,
                       const char *token)
{
    struct caller *c = &callers[ncallers++];
    c->role = role;
    c->other = other;
    c->sees_patient = sees_patient;
    c->sees_note = sees_note;
    snprintf(c->token, sizeof(c->token), "%s", token);
}

/* A token of `role` in `territory`, for its practitioner or organisation. */
static void make_token(const char *role, const char *territory, const char *rpps, int expires_in,
                       bool is_revoked, char secret[48])
{
    bool requester =
        strcmp(role, "gp") != 0 && strcmp(role, "coordinator") != 0 && strcmp(role, "admin") != 0;
    fix_add_token(&f, role, territory, strcmp(role, "gp") == 0 ? rpps : NULL,
                  requester ? org_of(territory, role) : 0, expires_in, is_revoked, secret);
}

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    /* Territory A lacks a professional organisation; B has only a
     * pharmacy: both get one organisation of every requester kind, and B a
     * practitioner of its own. */
    PQclear(pgtest_exec(
        &f.pg, "INSERT INTO organisation (territory_id, kind, name, rpps, commune_insee) VALUES"
               " ('test-t', 'professional', 'Cabinet infirmier', '10999900003', '35236'),"
               " ('" OTHER "', 'emergency', 'Urgences de Rennes', '10999900052', '35238'),"
               " ('" OTHER "', 'sas', 'SAS de Rennes', '10999900060', '35238'),"
               " ('" OTHER "', 'professional', 'Infirmiers de Rennes', '10999900078', '35238'),"
               " ('" OTHER "', 'desk', 'Accueil de Rennes', '10999900052', '35238');"
               "INSERT INTO practitioner (rpps, family_name, given_name) VALUES"
               " ('" GP_B "', 'Rennais', 'Paul');"
               "INSERT INTO territory_practitioner VALUES ('" OTHER "', '" GP_B "');"));

    /* A's callers: the fixture's tokens, plus professional and admin. */
    char secret[48];
    add_caller("gp", false, true, true, f.token[FIX_GP_1]);
    add_caller("gp", false, false, false, f.token[FIX_GP_2]);
    add_caller("pharmacy", false, true, false, f.token[FIX_PHARMACY]);
    add_caller("emergency", false, false, false, f.token[FIX_EMERGENCY]);
    add_caller("sas", false, false, false, f.token[FIX_SAS]);
    add_caller("desk", false, false, false, f.token[FIX_DESK]);
    add_caller("coordinator", false, false, false, f.token[FIX_COORDINATOR]);
    make_token("professional", "test-t", NULL, 0, false, secret);
    add_caller("professional", false, false, false, secret);
    make_token("admin", "test-t", NULL, 0, false, secret);
    add_caller("admin", false, false, false, secret);
    /* B's callers, one per role, and A's expired and revoked tokens. */
    for (size_t i = 0; i < NROLES; i++) {
        make_token(roles[i], OTHER, GP_B, 0, false, secret);
        add_caller(roles[i], true, false, false, secret);
        make_token(roles[i], "test-t", FIX_GP1, -60, false, expired[i]);
        make_token(roles[i], "test-t", FIX_GP1, 0, true, revoked[i]);
    }
    victim_token = fix_add_token(&f, "coordinator", "test-t", NULL, 0, 0, false, secret);

    /* The matrix sends hundreds of refused tokens from one address on
     * purpose: lift the throttle of failed authentications (an snpd without
     * one ignores these variables) so that every answer is the one under
     * test, not rate_limited. */
    setenv("SNPD_AUTH_FAILURES_BURST", "100000", 1);
    setenv("SNPD_AUTH_FAILURES_PER_MIN", "1000000", 1);
    fixture_start(&f);
    fix_book(&f, "authz-1", PATIENT, PHONE, 90, &booked);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/outcome", (long long)booked.booking_id);
    int st;
    json_t *r = fix_api(&f, "POST", path, FIX_GP_1,
                        "{\"outcome\": \"cancelled_by_patient\", \"note\": \"" NOTE "\"}", &st);
    cr_assert_eq(st, 200, "outcome.report answered %d", st);
    json_decref(r);
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 240, 20, "[\"sas\"]"), 1);
    free_slot = pgtest_long(&f.pg, "SELECT max(id) FROM slot WHERE status = 'free'");
}

static void teardown(void)
{
    fixture_teardown(&f);
    snp_proto_shutdown();
}

TestSuite(authz, .init = setup, .fini = teardown, .timeout = 300);

/* --- building the requests from the declaration ----------------------------------- */

/* Replaces the ids of the declared example with A's objects. */
static void use_a_objects(json_t *data)
{
    static const struct {
        const char *field;
        int which; /* 0 request, 1 booking, 2 booked slot, 3 token, 4 site, 5 organisation */
    } ids[] = {{"request_id", 0}, {"booking_id", 1}, {"slot_id", 2},
               {"token_id", 3},   {"site_id", 4},    {"organisation_id", 5}};
    int64_t values[] = {booked.request_id, booked.booking_id, booked.slot_id,
                        victim_token,      f.site_gp1,        f.pharmacy_id};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (json_object_get(data, ids[i].field))
            json_object_set_new(data, ids[i].field, json_integer(values[ids[i].which]));
    if (json_object_get(data, "slot_ids"))
        json_object_set_new(data, "slot_ids", json_pack("[I]", (json_int_t)free_slot));
}

/* Appends `s` percent-encoded (all but unreserved characters) to `out`. */
static void encode(char *out, size_t size, const char *s)
{
    size_t n = strlen(out);
    for (; *s && n + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, size - n, "%%%02X", ch);
    }
    out[n] = '\0';
}

/* A scalar as the query string writes it (JSON text, strings bare). */
static void query_value(char *out, size_t size, json_t *v)
{
    if (json_is_string(v)) {
        encode(out, size, json_string_value(v));
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY);
    encode(out, size, text);
    free(text);
}

/* Fills `path` from the message's route, taking path parameters out of
 * `data`; for GET, the rest of `data` becomes the query string. */
static void route(const struct snp_proto_message *m, json_t *data, char *path, size_t size)
{
    path[0] = '\0';
    for (const char *p = m->http_path; *p;) {
        if (*p != '{') {
            size_t n = strlen(path);
            path[n] = *p++;
            path[n + 1] = '\0';
            continue;
        }
        const char *end = strchr(p, '}');
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(end - p - 1), p + 1);
        json_t *v = json_object_get(data, name);
        cr_assert_not_null(v, "%s: no example value for {%s}", m->name, name);
        query_value(path, size, v);
        json_object_del(data, name);
        p = end + 1;
    }
    if (strcmp(m->http_method, "GET") != 0)
        return;
    const char *key;
    json_t *v;
    char sep = '?';
    json_object_foreach (data, key, v) {
        size_t n = strlen(path);
        snprintf(path + n, size - n, "%c%s=", sep, key);
        sep = '&';
        if (json_is_array(v)) {
            size_t i;
            json_t *item;
            json_array_foreach (v, i, item) {
                if (i)
                    strncat(path, ",", size - strlen(path) - 1);
                query_value(path, size, item);
            }
        } else {
            query_value(path, size, v);
        }
    }
}

/* The message's example request aimed at A's objects: its path and body. */
static char *build(const struct snp_proto_message *m, char *path, size_t size)
{
    json_t *example = json_object_get(json_object_get(m->decl, "example"), "request");
    json_t *data = example ? json_deep_copy(example) : json_object();
    use_a_objects(data);
    route(m, data, path, size);
    char *body = strcmp(m->http_method, "GET") == 0 ? NULL : json_dumps(data, JSON_COMPACT);
    json_decref(data);
    return body;
}

/* --- checking the answers --------------------------------------------------------- */

struct answer {
    int status;
    json_t *json;
    char *text;
};

static void send_as(const struct snp_proto_message *m, const char *token, const char *path,
                    const char *body, struct answer *a)
{
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    int rc = snpclient_http(cl, m->http_method, path, token, body, ANSWER_MS, &a->status, &a->text);
    snpclient_free(cl);
    cr_assert_eq(rc, 0, "%s %s: %s", m->http_method, path, snpclient_strerror(rc));
    a->json = json_loads(a->text, 0, NULL);
    cr_assert_not_null(a->json, "%s %s answered %d, not JSON: %s", m->http_method, path, a->status,
                       a->text);
    cr_assert_lt(a->status, 500, "%s %s answered %d: %s", m->http_method, path, a->status, a->text);
    checked++;
}

static void answer_free(struct answer *a)
{
    json_decref(a->json);
    free(a->text);
}

static const char *code_of(const struct answer *a)
{
    return json_string_value(json_object_get(json_object_get(a->json, "error"), "code"));
}

static void expect_code(const struct answer *a, int status, const char *code, const char *what)
{
    cr_assert_eq(a->status, status, "%s: answered %d, not %d: %s", what, a->status, status,
                 a->text);
    cr_assert(code_of(a) && strcmp(code_of(a), code) == 0, "%s: answered %s, not %s", what, a->text,
              code);
}

/* The checks that hold for every answer to a caller with a valid token. */
static void check_answer(const struct snp_proto_message *m, const struct caller *c,
                         const struct answer *a)
{
    char what[160];
    snprintf(what, sizeof(what), "%s as %s of %s", m->name, c->role, c->other ? "B" : "A");
    if (!snp_proto_message_allows(m, c->role)) {
        expect_code(a, 403, "forbidden", what);
        return;
    }
    /* Whether a declared role passes the role check is the business of
     * the_role_check_comes_before_the_fields; here the object may still be
     * refused (forbidden, other_territory, not_found). */
    cr_assert_neq(a->status, 401, "%s: %s", what, a->text);
    if (a->status < 300) {
        struct snp_proto_error err = {0};
        cr_assert_eq(snp_proto_validate_response(m, a->json, &err), 0,
                     "%s: the answer breaks its declaration: %s at %s: %s", what,
                     snp_proto_code_name(err.code), err.field, err.message);
    }
    if (c->other) {
        for (size_t i = 0; i < sizeof(a_markers) / sizeof(a_markers[0]); i++)
            cr_assert_null(strstr(a->text, a_markers[i]), "%s: B sees %s of A: %s", what,
                           a_markers[i], a->text);
        return;
    }
    if (!c->sees_patient) {
        cr_assert_null(strstr(a->text, PATIENT), "%s: the patient's name leaks: %s", what, a->text);
        cr_assert_null(strstr(a->text, PHONE), "%s: the patient's phone leaks: %s", what, a->text);
        cr_assert_null(strstr(a->text, MOTIF), "%s: the motif's text leaks: %s", what, a->text);
    }
    if (!c->sees_note)
        cr_assert_null(strstr(a->text, NOTE), "%s: the practitioner's note leaks: %s", what,
                       a->text);
}

/* Answers of a sweep by HTTP status class, for the log: 2xx, 400, 403,
 * 404, 409, other. */
static size_t tally[6];

static void count_status(int status)
{
    int k = status < 300    ? 0
            : status == 400 ? 1
            : status == 403 ? 2
            : status == 404 ? 3
            : status == 409 ? 4
                            : 5;
    tally[k]++;
}

/* Sends every routed message as every caller of one territory. */
static size_t sweep(bool other)
{
    size_t cases = 0;
    memset(tally, 0, sizeof(tally));
    for (size_t i = 0; i < snp_proto_message_count(); i++) {
        const struct snp_proto_message *m = snp_proto_message_at(i);
        if (!m->http_method)
            continue;
        for (size_t k = 0; k < ncallers; k++) {
            if (callers[k].other != other)
                continue;
            char path[1024];
            char *body = build(m, path, sizeof(path));
            struct answer a;
            send_as(m, callers[k].token, path, body, &a);
            check_answer(m, &callers[k], &a);
            count_status(a.status);
            answer_free(&a);
            free(body);
            cases++;
        }
    }
    cr_log_info("%s's callers: %zu answers: %zu 2xx, %zu 400, %zu 403, %zu 404, %zu 409, %zu "
                "other",
                other ? "B" : "A", cases, tally[0], tally[1], tally[2], tally[3], tally[4],
                tally[5]);
    return cases;
}

/* A's objects as they were before B's sweep. */
static void check_a_untouched(void)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM booking b JOIN request r ON r.id = b.request_id"
             " WHERE b.id = %lld AND b.status = 'booked' AND r.status = 'booked'"
             " AND b.outcome_note = '" NOTE "'",
             (long long)booked.booking_id);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1, "B changed A's booking");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM slot WHERE id = %lld AND status = 'free'",
             (long long)free_slot);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1, "B changed A's free slot");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM api_token WHERE id = %lld AND revoked_at IS "
             "NULL",
             (long long)victim_token);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1, "B revoked A's token");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM commune WHERE insee = '35236'"
                                    " AND latitude = 47.6514 AND longitude = -2.0840"),
                 1, "B moved A's commune");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory WHERE id = 'test-t'"
                                    " AND settings = '{}'"),
                 1, "B changed A's settings");
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM site WHERE territory_id = 'test-t'"), 3,
                 "B added a site to A");
}

Test(authz, every_message_every_role_both_territories)
{
    size_t b_cases = sweep(true);
    check_a_untouched();
    size_t a_cases = sweep(false);
    cr_assert_gt(b_cases, 0);
    cr_log_info("authorisation matrix: %zu answers from B's callers, %zu from A's (%zu checked)",
                b_cases, a_cases, checked);
}

Test(authz, missing_expired_and_revoked_tokens_are_refused_everywhere)
{
    size_t cases = 0;
    for (size_t i = 0; i < snp_proto_message_count(); i++) {
        const struct snp_proto_message *m = snp_proto_message_at(i);
        if (!m->http_method)
            continue;
        char path[1024], what[96];
        char *body = build(m, path, sizeof(path));
        struct answer a;
        send_as(m, NULL, path, body, &a);
        snprintf(what, sizeof(what), "%s without a token", m->name);
        expect_code(&a, 401, "unauthenticated", what);
        answer_free(&a);
        cases++;
        for (size_t r = 0; r < NROLES; r++) {
            send_as(m, expired[r], path, body, &a);
            snprintf(what, sizeof(what), "%s with an expired %s token", m->name, roles[r]);
            expect_code(&a, 401, "token_expired", what);
            answer_free(&a);
            send_as(m, revoked[r], path, body, &a);
            snprintf(what, sizeof(what), "%s with a revoked %s token", m->name, roles[r]);
            expect_code(&a, 401, "token_revoked", what);
            answer_free(&a);
            cases += 2;
        }
        free(body);
    }
    cr_assert_gt(cases, 0);
    cr_log_info("authentication matrix: %zu answers", cases);
}

/* With an unknown member in the body, a role the message declares gets
 * unknown_field (it passed the role check, which comes first) and any other
 * role forbidden: the role matrix without changing anything. */
Test(authz, the_role_check_comes_before_the_fields)
{
    for (size_t i = 0; i < snp_proto_message_count(); i++) {
        const struct snp_proto_message *m = snp_proto_message_at(i);
        if (!m->http_method || strcmp(m->http_method, "GET") == 0)
            continue;
        for (size_t k = 0; k < ncallers; k++) {
            if (callers[k].other)
                continue;
            char path[1024];
            free(build(m, path, sizeof(path)));
            struct answer a;
            send_as(m, callers[k].token, path, "{\"zz_probe\": 1}", &a);
            char what[128];
            snprintf(what, sizeof(what), "%s with an unknown field as %s", m->name,
                     callers[k].role);
            if (snp_proto_message_allows(m, callers[k].role))
                expect_code(&a, 400, "unknown_field", what);
            else
                expect_code(&a, 403, "forbidden", what);
            answer_free(&a);
        }
    }
    check_a_untouched();
}

/* --- WebSocket: topics and auth --------------------------------------------------- */

Test(authz, topics_follow_the_declaration_and_auth_refuses_bad_tokens)
{
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    char err[128];
    for (size_t k = 0; k < ncallers; k++) {
        struct snpclient_ws *w =
            snpclient_ws_open(cl, NULL, callers[k].token, ANSWER_MS, err, sizeof(err));
        cr_assert_not_null(w, "%s: %s", callers[k].role, err);
        for (unsigned t = 0; t < SNP_TOPIC_COUNT; t++) {
            const char *topic = snp_topic_name((enum snp_topic)t);
            char data[64], *resp = NULL;
            snprintf(data, sizeof(data), "{\"topics\": [\"%s\"]}", topic);
            int rc = snpclient_ws_call(w, "subscribe", data, ANSWER_MS, &resp);
            bool allowed = snp_proto_topic_allows(topic, callers[k].role);
            cr_assert_eq(rc, allowed ? 0 : SNPCLIENT_ESERVER, "%s subscribing to %s: %s",
                         callers[k].role, topic, resp ? resp : snpclient_strerror(rc));
            if (!allowed)
                cr_assert_not_null(strstr(resp, "\"forbidden\""), "%s", resp);
            free(resp);
            checked++;
        }
        snpclient_ws_close(w);
    }

    /* auth: unknown, expired, revoked; and nothing before it. */
    struct {
        const char *token;
        const char *code;
    } cases[] = {
        {"snp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "unauthenticated"},
        {expired[0], "token_expired"},
        {revoked[0], "token_revoked"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct snpclient_ws *w = snpclient_ws_open(cl, NULL, NULL, ANSWER_MS, err, sizeof(err));
        cr_assert_not_null(w, "%s", err);
        char *resp = NULL;
        int rc = snpclient_ws_call(w, "territory.get", NULL, ANSWER_MS, &resp);
        cr_assert_eq(rc, SNPCLIENT_ESERVER);
        cr_assert_not_null(strstr(resp, "\"unauthenticated\""), "%s", resp);
        free(resp);
        char data[96];
        snprintf(data, sizeof(data), "{\"token\": \"%s\"}", cases[i].token);
        rc = snpclient_ws_call(w, "auth", data, ANSWER_MS, &resp);
        cr_assert_eq(rc, SNPCLIENT_ESERVER, "auth with a %s token succeeded", cases[i].code);
        char want[48];
        snprintf(want, sizeof(want), "\"%s\"", cases[i].code);
        cr_assert_not_null(strstr(resp, want), "auth answered %s, not %s", resp, cases[i].code);
        free(resp);
        snpclient_ws_close(w);
    }
    snpclient_free(cl);
}
