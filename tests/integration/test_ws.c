/* snpd over real WebSocket connections (subprotocol snp.v1), end to end: the
 * real binary on a throwaway PostgreSQL, driven through snpclient
 * (clients/lib/snpclient.h) as any other client would drive it.
 *
 * Covered: authentication by handshake header and by a first auth message,
 * with every refusal; operations answered with their id and data the codec
 * accepts; pushes to the right subscribers only, with their delay measured;
 * every kind of bad input answered with a structured error on a connection
 * that stays usable, and the size limit closing with 1009; the rate limit;
 * 200 simultaneous connections; a handshake without the subprotocol; and
 * shutdown with connections open.
 *
 * Every answer and push is validated against the protocol declaration
 * with the codec; delays are printed as "[ws] push".
 *
 * Every test gets a fresh database and a fresh snpd (Criterion runs the
 * suite's init before each test), so token caches and rate buckets never
 * carry over from one test to the next.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "clients/lib/snpclient.h"
#include "dispatcher/core/token.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/rng.h"
#include "tests/support/wait.h"

/* How long a push may take, asserted.  The specification promises 100 ms
 * from the commit; the bound is ten times that so that a loaded machine or a
 * sanitizer build stays green, and the measured figure is printed. */
#define PUSH_BOUND_MS 1000.0

/* How long a subscriber that must receive nothing is watched. */
#define SILENCE_MS 300

/* The time given to any one answer. */
#define ANSWER_MS 5000

static struct fixture f;
static struct snpclient *cl;

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    fixture_start(&f);
    cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl, "snpclient_new failed");
}

static void teardown(void)
{
    snpclient_free(cl);
    cl = NULL;
    fixture_teardown(&f);
}

TestSuite(ws, .init = setup, .fini = teardown, .timeout = 180);

/* --- helpers ---------------------------------------------------------------------- */

/* Opens a WebSocket on snpd with `bearer` in the handshake (NULL for none). */
static struct snpclient_ws *open_ws(const char *bearer)
{
    char err[200];
    struct snpclient_ws *w = snpclient_ws_open(cl, NULL, bearer, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(w, "WebSocket handshake failed: %s", err);
    return w;
}

static struct snpclient_ws *open_as(enum fix_role role)
{
    return open_ws(f.token[role]);
}

/* Parses a message from the server as a client must (server limits). */
static json_t *parse_server(const char *text)
{
    struct snp_proto_error err = {0};
    json_t *j = NULL;
    cr_assert_eq(snp_proto_parse_server(text, strlen(text), &j, &err), 0,
                 "the server sent something unparsable (%s): %s", err.message, text);
    return j;
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_int_t num(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* Validates the data of the response to `msg` or of the push `push` (one
 * of them NULL) against its declaration; `text` is the whole message, for
 * the failure report. */
static void check_declared(const struct snp_proto_message *msg, const struct snp_proto_push *push,
                           json_t *data, const char *text)
{
    const char *what = msg ? msg->name : push->name;
    struct snp_proto_error err = {0};
    int rc = msg ? snp_proto_validate_response(msg, data, &err)
                 : snp_proto_validate_push(push, data, &err);
    cr_assert_eq(rc, 0, "%s %s breaks its declaration: %s at \"%s\": %s\n%s",
                 msg ? "the answer to" : "the push", what, snp_proto_code_name(err.code), err.field,
                 err.message, text);
}

/* Sends `type` with `data` (a JSON object text, NULL for {}) and expects a
 * success.  Checks the envelope (the id matched by snpclient, the type
 * echoed, ok true) and validates the data against the message's declared
 * response.  Returns the data, a new reference. */
static json_t *call_ok(struct snpclient_ws *w, const char *type, const char *data)
{
    char *resp = NULL;
    int rc = snpclient_ws_call(w, type, data, ANSWER_MS, &resp);
    cr_assert_eq(rc, 0, "%s failed (%s): %s", type, snpclient_strerror(rc), resp ? resp : "");
    json_t *j = parse_server(resp);
    cr_assert_str_eq(str(j, "type"), type, "the type is not echoed: %s", resp);
    cr_assert(json_is_string(json_object_get(j, "id")));
    cr_assert(json_is_true(json_object_get(j, "ok")));
    json_t *d = json_incref(json_object_get(j, "data"));
    const struct snp_proto_message *m = snp_proto_message_find(type);
    cr_assert_not_null(m);
    check_declared(m, NULL, d, resp);
    json_decref(j);
    free(resp);
    return d;
}

/* Checks that `error` is a structured error with `code`, a message, and
 * `field` (NULL: no field member at all). */
static void check_error(json_t *error, const char *code, const char *field, const char *context)
{
    cr_assert(json_is_object(error), "%s: no error object", context);
    cr_assert_str_eq(str(error, "code"), code, "%s: code %s, expected %s", context,
                     str(error, "code"), code);
    const char *message = str(error, "message");
    cr_assert(message && message[0], "%s: the error has no message", context);
    cr_assert_null(strstr(message, "snp_"), "%s: the message echoes a token: %s", context, message);
    if (field)
        cr_assert_str_eq(str(error, "field") ? str(error, "field") : "(none)", field,
                         "%s: field %s, expected %s", context, str(error, "field"), field);
    else
        cr_assert_null(json_object_get(error, "field"), "%s: unexpected field %s", context,
                       str(error, "field"));
}

/* Sends `type` and expects an error answer with `code` (and `field`, or no
 * field when NULL), the id and type echoed.  Returns nothing: the checks are
 * the point. */
static void call_err(struct snpclient_ws *w, const char *type, const char *data, const char *code,
                     const char *field)
{
    char *resp = NULL;
    int rc = snpclient_ws_call(w, type, data, ANSWER_MS, &resp);
    cr_assert_eq(rc, SNPCLIENT_ESERVER, "%s: expected %s, got %s: %s", type, code,
                 snpclient_strerror(rc), resp ? resp : "");
    json_t *j = parse_server(resp);
    cr_assert_str_eq(str(j, "type"), type, "the type is not echoed: %s", resp);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    cr_assert_null(json_object_get(j, "data"));
    check_error(json_object_get(j, "error"), code, field, type);
    json_decref(j);
    free(resp);
}

/* Receives the next message, which must be a response (not a push), and
 * returns it parsed. */
static json_t *recv_response(struct snpclient_ws *w, const char *context)
{
    char *text = NULL;
    int rc = snpclient_ws_recv(w, ANSWER_MS, &text);
    cr_assert_eq(rc, 0, "%s: no answer (%s, close code %d)", context, snpclient_strerror(rc),
                 snpclient_ws_close_code(w));
    json_t *j = parse_server(text);
    cr_assert(json_is_boolean(json_object_get(j, "ok")), "%s: not a response: %s", context, text);
    free(text);
    return j;
}

/* Sends `len` bytes as one frame, text or binary, and expects an error
 * answer with `code` and `field` (NULL: none) echoing `id` (NULL: id null). */
static void raw_err(struct snpclient_ws *w, const char *buf, size_t len, bool binary,
                    const char *code, const char *field, const char *id)
{
    cr_assert_eq(snpclient_ws_send_raw(w, buf, len, binary, true, true), 0, "%s: send failed",
                 code);
    json_t *j = recv_response(w, code);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    if (id)
        cr_assert_str_eq(str(j, "id") ? str(j, "id") : "(null)", id, "%s: id not echoed", code);
    else
        cr_assert(json_is_null(json_object_get(j, "id")), "%s: the id should be null", code);
    cr_assert(json_object_get(j, "type"), "%s: the type member is missing", code);
    check_error(json_object_get(j, "error"), code, field, code);
    json_decref(j);
}

/* A valid call right after bad input must be answered as usual. */
static void still_usable(struct snpclient_ws *w)
{
    cr_assert_not(snpclient_ws_is_closed(w), "the connection was closed (code %d)",
                  snpclient_ws_close_code(w));
    json_t *d = call_ok(w, "territory.get", NULL);
    cr_assert_str_eq(str(d, "territory_id"), FIX_TERRITORY);
    json_decref(d);
}

/* Waits up to `timeout_ms` for the push `event`, validating it and every
 * other push met on the way (those are skipped and named on stderr; a
 * response on the way is a failure).  Returns its data (a new reference)
 * and stores its arrival in `*at`, or returns NULL when none came. */
static json_t *try_push(struct snpclient_ws *w, const char *event, int timeout_ms, double *at)
{
    double deadline = test_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - test_now_ms());
        char *text = NULL;
        int rc = snpclient_ws_recv(w, left > 0 ? left : 0, &text);
        if (rc == SNPCLIENT_ETIMEDOUT)
            return NULL;
        cr_assert_eq(rc, 0, "waiting for %s: %s", event, snpclient_strerror(rc));
        double t = test_now_ms();
        json_t *j = parse_server(text);
        cr_assert_str_eq(str(j, "type"), "push", "expected a push, got %s", text);
        cr_assert_null(json_object_get(j, "id"), "a push has no id: %s", text);
        const char *name = str(j, "event");
        const struct snp_proto_push *p = name ? snp_proto_push_find(name) : NULL;
        cr_assert_not_null(p, "an undeclared push: %s", text);
        cr_assert(snp_proto_push_on_topic(p, str(j, "topic")), "%s is not sent on %s", name,
                  str(j, "topic"));
        check_declared(NULL, p, json_object_get(j, "data"), text);
        if (strcmp(name, event) == 0) {
            json_t *data = json_incref(json_object_get(j, "data"));
            json_decref(j);
            free(text);
            if (at)
                *at = t;
            return data;
        }
        fprintf(stderr, "[ws] (waiting for %s, passed the push %s)\n", event, name);
        json_decref(j);
        free(text);
    }
}

/* Same as try_push(), failing the test when the push does not come. */
static json_t *wait_push(struct snpclient_ws *w, const char *event, int timeout_ms, double *at)
{
    json_t *data = try_push(w, event, timeout_ms, at);
    cr_assert_not_null(data, "no %s push within %d ms", event, timeout_ms);
    return data;
}

/* Asserts that nothing at all arrives on `w` for SILENCE_MS. */
static void expect_silence(struct snpclient_ws *w, const char *who)
{
    char *text = NULL;
    int rc = snpclient_ws_recv(w, SILENCE_MS, &text);
    cr_assert_eq(rc, SNPCLIENT_ETIMEDOUT, "%s received something it must not see: %s", who,
                 text ? text : snpclient_strerror(rc));
}

/* Drops whatever is queued on `w` (pushes of earlier steps). */
static void drain(struct snpclient_ws *w, int timeout_ms)
{
    char *text = NULL;
    while (snpclient_ws_recv(w, timeout_ms, &text) == 0)
        free(text);
}

/* Prints the delay of a push and asserts the generous bound.  The delay is
 * counted from the return of the call that caused it; a push already queued
 * when the call returned counts as (nearly) zero. */
static void report_latency(const char *what, double call_start, double call_end, double arrived)
{
    double after = arrived - call_end;
    fprintf(stderr, "[ws] push %-34s %7.2f ms after the call returned (%.2f ms after it started)\n",
            what, after, arrived - call_start);
    cr_assert_leq(after, PUSH_BOUND_MS, "push %s took %.1f ms", what, after);
}

static void subscribe(struct snpclient_ws *w, const char *topic)
{
    char data[64];
    snprintf(data, sizeof(data), "{\"topics\": [\"%s\"]}", topic);
    json_t *d = call_ok(w, "subscribe", data);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(d, "topics"), i, v)
        found |= strcmp(json_string_value(v), topic) == 0;
    cr_assert(found, "subscribe did not list %s", topic);
    json_decref(d);
}

/* Adds a token for `role` in `territory` (no practitioner, no organisation)
 * and writes its secret. */
static void add_token(const char *role, const char *territory, char secret[TOKEN_SECRET_SIZE])
{
    uint8_t hash[DIGEST_SHA256_LEN];
    char hex[DIGEST_SHA256_HEX_LEN];
    cr_assert(token_generate(secret, hash));
    digest_hex(hash, sizeof(hash), hex);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO api_token (secret_sha256, role, territory_id)"
             " VALUES (decode('%s', 'hex'), '%s', '%s')",
             hex, role, territory);
    PQclear(pgtest_exec(&f.pg, sql));
}

/* An RFC 3339 UTC time `minutes` from now, on a whole minute. */
static void time_in(int minutes, char out[32])
{
    time_t t = time(NULL) + 60 * minutes;
    t -= t % 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:00Z", &tm);
}

/* The data of a slot.publish of `n` office slots of 20 minutes at GP1's
 * practice, the first `first_min` minutes from now, 30 minutes apart. */
static char *publish_data(int n, int first_min, const char *audiences)
{
    json_t *slots = json_array();
    for (int i = 0; i < n; i++) {
        char when[32];
        time_in(first_min + 30 * i, when);
        json_array_append_new(slots, json_pack("{s:s, s:i}", "start", when, "duration_min", 20));
    }
    json_t *d = json_pack("{s:I, s:s, s:o, s:o}", "site_id", (json_int_t)f.site_gp1, "mode",
                          "office", "audiences", json_loads(audiences, 0, NULL), "slots", slots);
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return text;
}

static json_int_t held_slot(json_t *request)
{
    return num(json_object_get(json_object_get(request, "offer"), "slot"), "slot_id");
}

/* Creates a request over WebSocket and returns its data. */
static json_t *create_request(struct snpclient_ws *w, const char *client_ref)
{
    char *body = fix_request_body(client_ref, "24h");
    json_t *r = call_ok(w, "request.create", body);
    free(body);
    cr_assert_str_eq(str(r, "client_ref"), client_ref);
    return r;
}

/* --- authentication --------------------------------------------------------------- */

Test(ws, header_authentication)
{
    struct snpclient_ws *w = open_as(FIX_SAS);
    json_t *d = call_ok(w, "capacity.query", "{\"horizon\": \"4h\"}");
    cr_assert_str_eq(str(d, "territory_id"), FIX_TERRITORY);
    json_decref(d);
    /* The header authenticated the connection: another auth is a conflict. */
    char data[128];
    snprintf(data, sizeof(data), "{\"token\": \"%s\"}", f.token[FIX_SAS]);
    call_err(w, "auth", data, "conflict", NULL);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, auth_message_and_session)
{
    struct snpclient_ws *w = open_ws(NULL);
    /* Before auth, anything else is refused and processed no further. */
    call_err(w, "capacity.query", "{\"horizon\": \"4h\"}", "unauthenticated", NULL);
    call_err(w, "subscribe", "{\"topics\": [\"requests\"]}", "unauthenticated", NULL);
    call_err(w, "territory.get", NULL, "unauthenticated", NULL);
    cr_assert_not(snpclient_ws_is_closed(w));

    char data[128];
    snprintf(data, sizeof(data), "{\"token\": \"%s\"}", f.token[FIX_PHARMACY]);
    json_t *s = call_ok(w, "auth", data);
    cr_assert_str_eq(str(s, "role"), "pharmacy");
    cr_assert_str_eq(str(s, "territory_id"), FIX_TERRITORY);
    cr_assert_eq(num(s, "organisation_id"), f.pharmacy_id);
    cr_assert_str_eq(str(s, "organisation_name"), "Pharmacie du Pont");
    cr_assert_null(json_object_get(s, "rpps"));
    cr_assert_null(json_object_get(s, "expires_at"));
    const char *server_time = str(s, "server_time");
    cr_assert(server_time && strlen(server_time) >= 20, "server_time: %s", server_time);
    json_decref(s);

    json_t *cap = call_ok(w, "capacity.query", "{\"horizon\": \"4h\"}");
    json_decref(cap);
    call_err(w, "auth", data, "conflict", NULL);
    snpclient_ws_close(w);

    /* A practitioner's session names the RPPS, not an organisation. */
    w = open_ws(NULL);
    snprintf(data, sizeof(data), "{\"token\": \"%s\"}", f.token[FIX_GP_1]);
    s = call_ok(w, "auth", data);
    cr_assert_str_eq(str(s, "role"), "gp");
    cr_assert_str_eq(str(s, "rpps"), FIX_GP1);
    cr_assert_null(json_object_get(s, "organisation_id"));
    json_decref(s);
    snpclient_ws_close(w);
}

Test(ws, refused_tokens_leave_the_connection_usable)
{
    /* Expired and revoked before first use, so that no cache knows them. */
    PQclear(pgtest_exec(&f.pg, "UPDATE api_token SET expires_at = now() - interval '1 day' "
                               "WHERE role = 'sas'"));
    PQclear(pgtest_exec(&f.pg, "UPDATE api_token SET revoked_at = now() WHERE role = 'desk'"));

    struct snpclient_ws *w = open_ws(NULL);
    struct {
        const char *token;
        const char *code;
    } cases[] = {
        {"snp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "unauthenticated"},
        {"not-a-token", "unauthenticated"},
        {f.token[FIX_SAS], "token_expired"},
        {f.token[FIX_DESK], "token_revoked"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char data[128];
        snprintf(data, sizeof(data), "{\"token\": \"%s\"}", cases[i].token);
        call_err(w, "auth", data, cases[i].code, NULL);
        /* Still unauthenticated, still open. */
        call_err(w, "territory.get", NULL, "unauthenticated", NULL);
    }
    /* A token that expires later says so in the session. */
    PQclear(pgtest_exec(&f.pg, "UPDATE api_token SET expires_at = now() + interval '1 day' "
                               "WHERE role = 'coordinator'"));
    char data[128];
    snprintf(data, sizeof(data), "{\"token\": \"%s\"}", f.token[FIX_COORDINATOR]);
    json_t *s = call_ok(w, "auth", data);
    cr_assert_str_eq(str(s, "role"), "coordinator");
    cr_assert_not_null(str(s, "expires_at"), "the session does not give the expiry");
    json_decref(s);
    still_usable(w);
    snpclient_ws_close(w);

    /* The same tokens in the handshake header: either the handshake is
     * refused, or every message is answered with the token's error. */
    const enum fix_role refused[] = {FIX_SAS, FIX_DESK};
    const char *codes[] = {"token_expired", "token_revoked"};
    for (size_t i = 0; i < 2; i++) {
        char err[200];
        w = snpclient_ws_open(cl, NULL, f.token[refused[i]], ANSWER_MS, err, sizeof(err));
        if (!w) {
            fprintf(stderr, "[ws] a %s header token is refused at the handshake: %s\n", codes[i],
                    err);
            continue;
        }
        call_err(w, "capacity.query", "{\"horizon\": \"4h\"}", codes[i], NULL);
        /* A later auth with a good token still works. */
        snprintf(data, sizeof(data), "{\"token\": \"%s\"}", f.token[FIX_COORDINATOR]);
        s = call_ok(w, "auth", data);
        json_decref(s);
        still_usable(w);
        snpclient_ws_close(w);
    }
}

Test(ws, roles_and_topics)
{
    struct snpclient_ws *gp = open_as(FIX_GP_1);
    char *body = fix_request_body("role-1", "24h");
    call_err(gp, "request.create", body, "forbidden", NULL);
    free(body);
    still_usable(gp);
    /* A practitioner may watch their bookings, not the requests. */
    call_err(gp, "subscribe", "{\"topics\": [\"requests\"]}", "forbidden", "topics");
    subscribe(gp, "bookings");

    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    char *publish = publish_data(1, 60, "[\"pharmacy\"]");
    call_err(ph, "slot.publish", publish, "forbidden", NULL);
    free(publish);
    call_err(ph, "subscribe", "{\"topics\": [\"capacity\"]}", "forbidden", "topics");
    /* A refused subscription adds nothing, not even its allowed topics. */
    call_err(ph, "subscribe", "{\"topics\": [\"requests\", \"capacity\"]}", "forbidden", "topics");
    json_t *d = call_ok(ph, "unsubscribe", "{\"topics\": [\"capacity\"]}");
    cr_assert_eq(json_array_size(json_object_get(d, "topics")), 0, "topics left: %s",
                 json_dumps(d, 0));
    json_decref(d);
    subscribe(ph, "requests");
    /* Unknown topics are field errors. */
    call_err(ph, "subscribe", "{\"topics\": [\"gossip\"]}", "invalid_field", "topics[0]");

    /* Another territory's pharmacy cannot touch this territory's request. */
    json_t *r = create_request(ph, "role-2");
    struct snpclient_ws *other = open_as(FIX_OTHER_PHARMACY);
    char data[96];
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"reason\": \"other\"}",
             (long long)num(r, "request_id"));
    call_err(other, "request.cancel", data, "not_found", "request_id");
    json_decref(r);
    snpclient_ws_close(other);
    snpclient_ws_close(ph);
    snpclient_ws_close(gp);
}

/* --- operations ------------------------------------------------------------------- */

Test(ws, operations_answer_with_their_id_and_declared_data)
{
    struct snpclient_ws *gp = open_as(FIX_GP_1);
    char *publish = publish_data(3, 60, "[\"pharmacy\", \"sas\"]");
    json_t *pub = call_ok(gp, "slot.publish", publish);
    free(publish);
    cr_assert_eq(num(pub, "count"), 3);
    json_decref(pub);
    json_t *list = call_ok(gp, "slot.list", NULL);
    cr_assert_eq(json_array_size(json_object_get(list, "slots")), 3);
    json_decref(list);

    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    json_t *cap = call_ok(ph, "capacity.query", "{\"horizon\": \"24h\"}");
    cr_assert_eq(num(cap, "total"), 3);
    json_decref(cap);

    json_t *r = create_request(ph, "ops-1");
    cr_assert_str_eq(str(r, "status"), "offered");
    json_int_t id = num(r, "request_id");
    /* The same client_ref again is the same request. */
    json_t *again = create_request(ph, "ops-1");
    cr_assert_eq(num(again, "request_id"), id);
    json_decref(again);

    char data[128];
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"slot_id\": %lld}", (long long)id,
             (long long)held_slot(r));
    json_t *b = call_ok(ph, "offer.accept", data);
    cr_assert_str_eq(str(b, "status"), "booked");
    cr_assert_eq(num(b, "request_id"), id);
    json_decref(b);
    json_decref(r);

    /* Decline, then cancel, another request. */
    r = create_request(ph, "ops-2");
    cr_assert_str_eq(str(r, "status"), "offered");
    id = num(r, "request_id");
    snprintf(data, sizeof(data),
             "{\"request_id\": %lld, \"slot_id\": %lld, \"reason\": \"too_far\", "
             "\"note\": \"Pas de voiture.\"}",
             (long long)id, (long long)held_slot(r));
    json_t *d = call_ok(ph, "offer.decline", data);
    json_decref(d);
    /* The reason is kept with the decline, to be counted; the note, free
     * text that may describe the patient, is not. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM event WHERE kind = 'offer.declined' AND request_id = %lld "
             "AND data ->> 'reason' = 'too_far' AND data::text NOT LIKE '%%voiture%%'",
             (long long)id);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1);
    /* patient_refused is slip.refuse's (an emergency department's), not a
     * pharmacy's, and never a booking's cancellation. */
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"reason\": \"patient_refused\"}",
             (long long)id);
    call_err(ph, "request.cancel", data, "invalid_field", "reason");
    call_err(ph, "booking.cancel", "{\"booking_id\": 1, \"reason\": \"patient_refused\"}",
             "invalid_field", "reason");
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"reason\": \"patient_request\"}",
             (long long)id);
    d = call_ok(ph, "request.cancel", data);
    cr_assert_str_eq(str(d, "status"), "cancelled");
    json_decref(d);
    json_decref(r);

    json_t *t = call_ok(ph, "territory.get", NULL);
    cr_assert_eq(json_array_size(json_object_get(t, "communes")), 2);
    json_decref(t);

    /* Ids the client chose come back as they were, matched when the
     * answers are awaited together. */
    static const char two[] = "{\"id\": \"premier é\", \"type\": \"territory.get\"}";
    static const char three[] = "{\"id\": \"x-2\", \"type\": \"capacity.query\","
                                " \"data\": {\"horizon\": \"2h\"}}";
    cr_assert_eq(snpclient_ws_send(ph, two), 0);
    cr_assert_eq(snpclient_ws_send(ph, three), 0);
    bool seen_first = false, seen_second = false;
    for (int i = 0; i < 2; i++) {
        json_t *j = recv_response(ph, "two calls at once");
        cr_assert(json_is_true(json_object_get(j, "ok")));
        if (strcmp(str(j, "id"), "premier é") == 0) {
            cr_assert_str_eq(str(j, "type"), "territory.get");
            seen_first = true;
        } else {
            cr_assert_str_eq(str(j, "id"), "x-2");
            cr_assert_str_eq(str(j, "type"), "capacity.query");
            seen_second = true;
        }
        json_decref(j);
    }
    cr_assert(seen_first && seen_second);
    snpclient_ws_close(ph);
    snpclient_ws_close(gp);
}

Test(ws, booking_cancel_answers_a_booking)
{
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    json_t *r = create_request(ph, "bc-1");
    char data[128];
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"slot_id\": %lld}",
             (long long)num(r, "request_id"), (long long)held_slot(r));
    json_t *b = call_ok(ph, "offer.accept", data);
    struct snpclient_ws *gp = open_as(FIX_GP_1);
    snprintf(data, sizeof(data), "{\"booking_id\": %lld, \"reason\": \"practitioner_unavailable\"}",
             (long long)num(b, "booking_id"));
    /* The declared answer is the booking, now cancelled. */
    json_t *c = call_ok(gp, "booking.cancel", data);
    cr_assert_str_eq(str(c, "status"), "cancelled");
    cr_assert_eq(num(c, "booking_id"), num(b, "booking_id"));
    json_decref(c);
    json_decref(b);
    json_decref(r);
    snpclient_ws_close(gp);
    snpclient_ws_close(ph);
}

/* --- pushes ----------------------------------------------------------------------- */

Test(ws, capacity_changed_reaches_capacity_watchers_of_the_territory_only)
{
    struct snpclient_ws *sas = open_as(FIX_SAS);
    subscribe(sas, "capacity");
    char other_secret[TOKEN_SECRET_SIZE];
    add_token("coordinator", "test-other", other_secret);
    struct snpclient_ws *other = open_ws(other_secret);
    subscribe(other, "capacity");
    /* Subscribed to something else: no capacity pushes. */
    struct snpclient_ws *desk = open_as(FIX_DESK);
    subscribe(desk, "requests");

    /* A practitioner publishes over HTTP... */
    double t0 = test_now_ms();
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"sas\"]"), 1);
    double t1 = test_now_ms(), at;
    json_t *d = wait_push(sas, "capacity.changed", 5000, &at);
    report_latency("capacity.changed (HTTP publish)", t0, t1, at);
    cr_assert_str_eq(str(d, "territory_id"), FIX_TERRITORY);
    json_t *change = json_array_get(json_object_get(d, "changes"), 0);
    cr_assert_str_eq(str(change, "status"), "free");
    cr_assert_eq(num(change, "site_id"), f.site_gp1);
    json_int_t slot = num(change, "slot_id");
    json_decref(d);

    /* ...and over WebSocket. */
    struct snpclient_ws *gp = open_as(FIX_GP_1);
    char *publish = publish_data(1, 120, "[\"sas\"]");
    t0 = test_now_ms();
    json_t *pub = call_ok(gp, "slot.publish", publish);
    t1 = test_now_ms();
    free(publish);
    d = wait_push(sas, "capacity.changed", 5000, &at);
    report_latency("capacity.changed (WS publish)", t0, t1, at);
    change = json_array_get(json_object_get(d, "changes"), 0);
    cr_assert_eq(num(change, "slot_id"),
                 json_integer_value(json_array_get(json_object_get(pub, "slot_ids"), 0)));
    json_decref(d);
    json_decref(pub);

    /* A withdrawal is a change too. */
    char data[64];
    snprintf(data, sizeof(data), "{\"slot_ids\": [%lld]}", (long long)slot);
    t0 = test_now_ms();
    json_t *w = call_ok(gp, "slot.withdraw", data);
    t1 = test_now_ms();
    json_decref(w);
    d = wait_push(sas, "capacity.changed", 5000, &at);
    report_latency("capacity.changed (WS withdraw)", t0, t1, at);
    change = json_array_get(json_object_get(d, "changes"), 0);
    cr_assert_eq(num(change, "slot_id"), slot);
    cr_assert_str_eq(str(change, "status"), "withdrawn");
    json_decref(d);

    expect_silence(other, "a coordinator of another territory");
    expect_silence(desk, "a desk subscribed to requests only");
    expect_silence(gp, "the publishing practitioner, not subscribed");
    /* After unsubscribing, nothing more comes. */
    json_t *u = call_ok(sas, "unsubscribe", "{\"topics\": [\"capacity\"]}");
    json_decref(u);
    cr_assert_eq(fix_publish(&f, FIX_GP_2, 1, 60, 30, "[\"sas\"]"), 1);
    expect_silence(sas, "an unsubscribed SAS");
    snpclient_ws_close(gp);
    snpclient_ws_close(desk);
    snpclient_ws_close(other);
    snpclient_ws_close(sas);
}

/* A push goes to the connections subscribed to its topic at that moment,
 * whatever came before: subscriptions taken, dropped and taken again,
 * connections closed and opened in between (snpd keeps a list of
 * subscribers per topic, api.c session_set_topics).  A model of who is
 * subscribed, random steps, and after each round one change: every
 * connection subscribed gets its push, every other gets none.  Connection 0
 * stays subscribed, so that once it has the push, snpd has written it to
 * every subscriber: an unsubscribe's answer on another connection then
 * comes after any push written to it. */
Test(ws, pushes_follow_subscriptions_through_random_churn)
{
    enum { CONNS = 8, ROUNDS = 6, STEPS = 5 };
    struct rng rng;
    unsigned seed = (unsigned)time(NULL);
    rng_seed(&rng, seed);
    cr_log_info("seed %u", seed);
    struct snpclient_ws *ws[CONNS];
    bool subscribed[CONNS] = {0};
    for (int i = 0; i < CONNS; i++) {
        ws[i] = open_as(i % 2 ? FIX_DESK : FIX_SAS);
        if (i == 0 || rng_next(&rng) % 2) {
            subscribe(ws[i], "capacity");
            subscribed[i] = true;
        }
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int step = 0; step < STEPS; step++) {
            int i = 1 + (int)(rng_next(&rng) % (CONNS - 1));
            switch (rng_next(&rng) % 3) {
            case 0:
                subscribe(ws[i], "capacity"); /* again, if it was: changes nothing */
                subscribed[i] = true;
                break;
            case 1:
                json_decref(call_ok(ws[i], "unsubscribe", "{\"topics\": [\"capacity\"]}"));
                subscribed[i] = false;
                break;
            default:
                snpclient_ws_close(ws[i]);
                ws[i] = open_as(i % 2 ? FIX_DESK : FIX_SAS);
                subscribed[i] = false;
                break;
            }
        }
        cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 60 + round, 30, "[\"sas\"]"), 1);
        for (int i = 0; i < CONNS; i++) {
            if (!subscribed[i])
                continue;
            json_t *d = wait_push(ws[i], "capacity.changed", 5000, NULL);
            cr_assert_str_eq(str(d, "territory_id"), FIX_TERRITORY);
            json_decref(d);
            char *text = NULL;
            int rc = snpclient_ws_recv(ws[i], 0, &text);
            cr_assert_eq(rc, SNPCLIENT_ETIMEDOUT, "seed %u, round %d: connection %d got more: %s",
                         seed, round, i, text ? text : "");
        }
        for (int i = 0; i < CONNS; i++) {
            if (subscribed[i])
                continue;
            json_decref(call_ok(ws[i], "unsubscribe", "{\"topics\": [\"capacity\"]}"));
            char *text = NULL;
            int rc = snpclient_ws_recv(ws[i], 0, &text);
            cr_assert_eq(rc, SNPCLIENT_ETIMEDOUT,
                         "seed %u, round %d: connection %d, not subscribed, got: %s", seed, round,
                         i, text ? text : "");
        }
    }
    for (int i = 0; i < CONNS; i++)
        snpclient_ws_close(ws[i]);
}

/* snp_change carries snpd's announcements, but anything with the rights
 * to NOTIFY can write on it.  What is not a flat JSON object with the
 * fields of an announcement (not JSON, nested values, an id as a string, a
 * status as a number, a kilobyte and more of text) is passed over: no
 * push, no crash, and the announcements that follow are applied. */
Test(ws, announcements_snpd_cannot_read_are_passed_over)
{
    struct snpclient_ws *sas = open_as(FIX_SAS);
    subscribe(sas, "capacity");
    struct snpclient_ws *pharmacy = open_as(FIX_PHARMACY);
    subscribe(pharmacy, "requests");
    char sql[8192];
    snprintf(sql, sizeof(sql),
             "SELECT pg_notify('snp_change', x) FROM unnest(ARRAY["
             "'not json', '[1]', '{\"k\":\"s\"', '{\"k\":\"r\",\"id\":\"5\",\"st\":\"cancelled\","
             "\"p\":\"waiting\",\"t\":\"%s\",\"o\":%lld}', "
             "'{\"k\":\"r\",\"id\":5,\"st\":7,\"p\":\"waiting\",\"t\":\"%s\",\"o\":%lld}', "
             "'{\"k\":\"s\",\"id\":{\"n\":1},\"st\":\"free\"}', "
             "'{\"k\":\"b\",\"id\":1,\"e\":\"assigned\",\"t\":[\"%s\"]}', "
             "'{\"k\":\"s\",\"id\":1,\"st\":\"free\",\"f\":\"' || repeat('x', 5000) || '\"}', "
             "'{\"k\":\"tok\",\"id\":99999999999999999999}', '{}', '{\"k\":\"\\u0000\"}', "
             /* Well formed, but not what snpd's triggers write: no
              * client_ref, a status or an outcome the declaration does
              * not know, an instant of another shape. */
             "'{\"k\":\"r\",\"id\":5,\"st\":\"cancelled\",\"p\":\"waiting\",\"t\":\"%s\","
             "\"o\":%lld}', "
             "'{\"k\":\"r\",\"id\":5,\"st\":\"cancelled\",\"p\":\"waiting\",\"t\":\"%s\","
             "\"o\":%lld,\"f\":\"has space\"}', "
             "'{\"k\":\"r\",\"id\":5,\"st\":\"gone\",\"p\":\"waiting\",\"t\":\"%s\","
             "\"o\":%lld,\"f\":\"ref-5\"}', "
             "'{\"k\":\"s\",\"id\":1,\"st\":\"free\",\"os\":\"held\",\"c\":\"expired\","
             "\"t\":\"%s\",\"o\":%lld,\"q\":5,\"ox\":1}', "
             "'{\"k\":\"b\",\"id\":1,\"e\":\"outcome\",\"t\":\"%s\",\"o\":%lld,\"q\":5,"
             "\"f\":\"ref-5\",\"oc\":\"cured\",\"oa\":\"2026-12-01T10:00:00Z\"}', "
             "'{\"k\":\"b\",\"id\":1,\"e\":\"outcome\",\"t\":\"%s\",\"o\":%lld,\"q\":5,"
             "\"f\":\"ref-5\",\"oc\":\"attended\",\"oa\":\"yesterday\"}']) AS n(x)",
             FIX_TERRITORY, (long long)f.pharmacy_id, FIX_TERRITORY, (long long)f.pharmacy_id,
             FIX_TERRITORY, FIX_TERRITORY, (long long)f.pharmacy_id, FIX_TERRITORY,
             (long long)f.pharmacy_id, FIX_TERRITORY, (long long)f.pharmacy_id, FIX_TERRITORY,
             (long long)f.pharmacy_id, FIX_TERRITORY, (long long)f.pharmacy_id, FIX_TERRITORY,
             (long long)f.pharmacy_id);
    PQclear(pgtest_exec(&f.pg, sql));
    expect_silence(pharmacy, "a requester, on announcements that are not snpd's");
    /* The process still applies what follows. */
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"sas\"]"), 1);
    double at;
    json_t *d = wait_push(sas, "capacity.changed", 5000, &at);
    cr_assert_str_eq(str(d, "territory_id"), FIX_TERRITORY);
    json_decref(d);
    snpclient_ws_close(pharmacy);
    snpclient_ws_close(sas);
}

Test(ws, offer_made_reaches_the_requesting_organisation_only)
{
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    subscribe(ph, "requests");
    struct snpclient_ws *desk = open_as(FIX_DESK);
    subscribe(desk, "requests");
    struct snpclient_ws *other = open_as(FIX_OTHER_PHARMACY);
    subscribe(other, "requests");

    /* No slot yet: the request waits. */
    json_t *r = create_request(ph, "offer-1");
    cr_assert_str_eq(str(r, "status"), "waiting");
    json_int_t id = num(r, "request_id");
    json_decref(r);
    drain(ph, 100);

    double t0 = test_now_ms();
    cr_assert_eq(fix_publish(&f, FIX_GP_2, 1, 60, 30, "[\"pharmacy\"]"), 1);
    double t1 = test_now_ms(), at;
    json_t *d = wait_push(ph, "offer.made", 5000, &at);
    report_latency("offer.made (HTTP publish)", t0, t1, at);
    cr_assert_eq(num(d, "request_id"), id);
    cr_assert_str_eq(str(d, "client_ref"), "offer-1");
    json_t *slot = json_object_get(json_object_get(d, "offer"), "slot");
    cr_assert_str_eq(str(slot, "status"), "held");
    json_decref(d);
    d = wait_push(ph, "request.updated", 5000, &at);
    report_latency("request.updated (offered)", t0, t1, at);
    cr_assert_eq(num(d, "request_id"), id);
    cr_assert_str_eq(str(d, "status"), "offered");
    cr_assert_str_eq(str(d, "previous_status"), "waiting");
    json_decref(d);

    expect_silence(desk, "another organisation of the territory");
    expect_silence(other, "a pharmacy of another territory");
    snpclient_ws_close(other);
    snpclient_ws_close(desk);
    snpclient_ws_close(ph);
}

Test(ws, booking_created_reaches_the_practitioner_booked_only)
{
    struct snpclient_ws *gp1 = open_as(FIX_GP_1);
    subscribe(gp1, "bookings");
    struct snpclient_ws *gp2 = open_as(FIX_GP_2);
    subscribe(gp2, "bookings");
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    subscribe(ph, "requests");

    cr_assert_eq(fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]"), 2);
    json_t *r = create_request(ph, "book-1");
    cr_assert_str_eq(str(r, "status"), "offered");
    json_int_t id = num(r, "request_id");
    char data[128];
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"slot_id\": %lld}", (long long)id,
             (long long)held_slot(r));
    double t0 = test_now_ms();
    json_t *b = call_ok(ph, "offer.accept", data);
    double t1 = test_now_ms(), at;
    json_int_t booking = num(b, "booking_id");

    json_t *d = wait_push(gp1, "booking.created", 5000, &at);
    report_latency("booking.created (WS accept)", t0, t1, at);
    cr_assert_eq(num(d, "booking_id"), booking);
    cr_assert_eq(num(d, "request_id"), id);
    cr_assert_eq(num(json_object_get(d, "slot"), "slot_id"), held_slot(r));
    cr_assert_str_eq(str(json_object_get(d, "requester"), "kind"), "pharmacy");
    json_decref(d);
    d = wait_push(ph, "request.updated", 5000, &at);
    report_latency("request.updated (booked)", t0, t1, at);
    cr_assert_str_eq(str(d, "status"), "booked");
    cr_assert_eq(num(d, "booking_id"), booking);
    json_decref(d);
    expect_silence(gp2, "another practitioner");
    json_decref(b);
    json_decref(r);
    snpclient_ws_close(ph);
    snpclient_ws_close(gp2);
    snpclient_ws_close(gp1);
}

/* Books GP1's only slot for the pharmacy over WebSocket; returns the
 * booking id and the request id in `*request`. */
static json_int_t book_one(struct snpclient_ws *ph, const char *client_ref, json_int_t *request)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]"), 1);
    json_t *r = create_request(ph, client_ref);
    cr_assert_str_eq(str(r, "status"), "offered");
    char data[128];
    snprintf(data, sizeof(data), "{\"request_id\": %lld, \"slot_id\": %lld}",
             (long long)num(r, "request_id"), (long long)held_slot(r));
    json_t *b = call_ok(ph, "offer.accept", data);
    json_int_t booking = num(b, "booking_id");
    *request = num(r, "request_id");
    json_decref(b);
    json_decref(r);
    return booking;
}

Test(ws, booking_cancelled_by_the_practitioner_reaches_both_sides_only)
{
    struct snpclient_ws *gp1 = open_as(FIX_GP_1);
    subscribe(gp1, "bookings");
    struct snpclient_ws *gp2 = open_as(FIX_GP_2);
    subscribe(gp2, "bookings");
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    subscribe(ph, "requests");
    struct snpclient_ws *desk = open_as(FIX_DESK);
    subscribe(desk, "requests");
    json_int_t request;
    json_int_t booking = book_one(ph, "gp-cancel-1", &request);
    drain(gp1, 200);
    drain(ph, 200);

    char data[128];
    snprintf(data, sizeof(data), "{\"booking_id\": %lld, \"reason\": \"practitioner_unavailable\"}",
             (long long)booking);
    double t0 = test_now_ms();
    json_t *c = call_ok(gp1, "booking.cancel", data);
    double t1 = test_now_ms(), at;
    json_decref(c);
    json_t *d = wait_push(gp1, "booking.cancelled", 5000, &at);
    report_latency("booking.cancelled (to the GP)", t0, t1, at);
    cr_assert_eq(num(d, "booking_id"), booking);
    cr_assert_str_eq(str(d, "status"), "cancelled");
    json_decref(d);
    d = wait_push(ph, "booking.cancelled", 5000, &at);
    if (d) {
        report_latency("booking.cancelled (to the requester)", t0, t1, at);
        cr_assert_eq(num(d, "booking_id"), booking);
        cr_assert_eq(num(d, "request_id"), request);
        json_decref(d);
    }
    drain(ph, 200);
    expect_silence(gp2, "another practitioner");
    expect_silence(desk, "another organisation");
    snpclient_ws_close(desk);
    snpclient_ws_close(ph);
    snpclient_ws_close(gp2);
    snpclient_ws_close(gp1);
}

Test(ws, booking_cancelled_by_the_requester_reaches_both_sides_only)
{
    struct snpclient_ws *gp1 = open_as(FIX_GP_1);
    subscribe(gp1, "bookings");
    struct snpclient_ws *gp2 = open_as(FIX_GP_2);
    subscribe(gp2, "bookings");
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    subscribe(ph, "requests");
    struct snpclient_ws *desk = open_as(FIX_DESK);
    subscribe(desk, "requests");
    json_int_t request;
    json_int_t booking = book_one(ph, "ph-cancel-1", &request);
    drain(gp1, 200);
    drain(ph, 200);

    char data[128];
    snprintf(data, sizeof(data), "{\"booking_id\": %lld, \"reason\": \"patient_request\"}",
             (long long)booking);
    double t0 = test_now_ms();
    json_t *c = call_ok(ph, "booking.cancel", data);
    double t1 = test_now_ms(), at;
    json_decref(c);
    json_t *d = wait_push(gp1, "booking.cancelled", 5000, &at);
    if (d) {
        report_latency("booking.cancelled (to the GP)", t0, t1, at);
        cr_assert_eq(num(d, "booking_id"), booking);
        json_decref(d);
    }
    d = wait_push(ph, "booking.cancelled", 5000, &at);
    if (d) {
        report_latency("booking.cancelled (to the requester)", t0, t1, at);
        cr_assert_eq(num(d, "booking_id"), booking);
        json_decref(d);
    }
    drain(ph, 200);
    expect_silence(gp2, "another practitioner");
    expect_silence(desk, "another organisation");
    snpclient_ws_close(desk);
    snpclient_ws_close(ph);
    snpclient_ws_close(gp2);
    snpclient_ws_close(gp1);
}

/* --- bad input -------------------------------------------------------------------- */

Test(ws, malformed_messages_get_structured_errors)
{
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    still_usable(w);
    static const struct {
        const char *text;
        const char *code;
        const char *field;
        const char *id;
    } cases[] = {
        {"this is not JSON", "bad_json", NULL, NULL},
        {"[{\"id\": \"a\", \"type\": \"territory.get\"}]", "bad_json", NULL, NULL},
        {"\"territory.get\"", "bad_json", NULL, NULL},
        {"{\"id\": \"t\", \"type\": \"territory.get\"} {}", "bad_json", NULL, NULL},
        {"{\"id\": \"a\", \"type\": \"territory.get\", \"id\": \"b\"}", "duplicate_key", NULL,
         NULL},
        {"{\"id\": \"n\", \"type\": \"territory.get\", \"data\": {\"x\": \"a\\u0000b\"}}",
         "bad_json", NULL, NULL},
        /* Nine levels: the message, data, and seven arrays. */
        {"{\"id\": \"d\", \"type\": \"territory.get\", \"data\": {\"a\": [[[[[[[1]]]]]]]}}",
         "too_deep", NULL, NULL},
        /* Eight levels are allowed, so the next check speaks. */
        {"{\"id\": \"d8\", \"type\": \"territory.get\", \"data\": {\"a\": [[[[[[1]]]]]]}}",
         "unknown_field", "a", "d8"},
        /* Brackets inside strings do not count. */
        {"{\"id\": \"s\", \"type\": \"territory.get\", \"data\": {\"a\": \"[[[[[[[[[[\"}}",
         "unknown_field", "a", "s"},
        {"{\"id\": \"u\", \"type\": \"slot.teleport\", \"data\": {}}", "unknown_type", "type", "u"},
        {"{\"type\": \"territory.get\", \"data\": {}}", "missing_field", "id", NULL},
        {"{\"id\": \"m\", \"data\": {}}", "missing_field", "type", "m"},
        {"{\"id\": \"e\", \"type\": \"territory.get\", \"data\": {}, \"extra\": 1}",
         "unknown_field", "extra", "e"},
        {"{\"id\": 7, \"type\": \"territory.get\"}", "invalid_field", "id", NULL},
        {"{\"id\": \"\", \"type\": \"territory.get\"}", "invalid_field", "id", NULL},
        {"{\"id\": \"l\", \"type\": \"territory.get\", \"data\": []}", "invalid_field", "data",
         "l"},
        {"{\"id\": \"c\", \"type\": \"capacity.query\", \"data\": {}}", "missing_field", "horizon",
         "c"},
        {"{\"id\": \"h\", \"type\": \"capacity.query\", \"data\": {\"horizon\": \"1y\"}}",
         "invalid_field", "horizon", "h"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_err(w, cases[i].text, strlen(cases[i].text), false, cases[i].code, cases[i].field,
                cases[i].id);
        still_usable(w);
    }
    /* An id of 65 bytes is one too many. */
    char text[256];
    snprintf(text, sizeof(text), "{\"id\": \"%065d\", \"type\": \"territory.get\"}", 0);
    raw_err(w, text, strlen(text), false, "invalid_field", "id", NULL);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, unknown_fields_in_data_are_named)
{
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    /* A member the patient object does not declare, with its path. */
    char *body = fix_request_body("uf-1", "24h");
    json_t *b = json_loads(body, 0, NULL);
    free(body);
    json_object_set_new(json_object_get(b, "patient"), "shoe_size", json_integer(42));
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    call_err(w, "request.create", body, "unknown_field", "patient.shoe_size");
    free(body);
    still_usable(w);
    call_err(w, "capacity.query", "{\"horizon\": \"4h\", \"bogus\": true}", "unknown_field",
             "bogus");
    still_usable(w);
    /* A missing required field of the data, by name. */
    body = fix_request_body("uf-2", "24h");
    b = json_loads(body, 0, NULL);
    free(body);
    json_object_del(b, "urgency");
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    call_err(w, "request.create", body, "missing_field", "urgency");
    free(body);
    still_usable(w);
    /* Nothing was created by any of them. */
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request"), 0);
    snpclient_ws_close(w);
}

Test(ws, invalid_utf8_is_answered_and_the_connection_stays_open)
{
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    static const char bad[] = "{\"id\": \"u8\", \"type\": \"territory.get\", \"data\": {\"x\": "
                              "\"caf\xc3\"}}";
    raw_err(w, bad, sizeof(bad) - 1, false, "invalid_utf8", NULL, NULL);
    still_usable(w);
    static const char bad2[] = "{\"id\": \"\xff\xfe\", \"type\": \"territory.get\"}";
    raw_err(w, bad2, sizeof(bad2) - 1, false, "invalid_utf8", NULL, NULL);
    still_usable(w);
    /* An overlong encoding of '/' is not UTF-8 either. */
    static const char bad3[] = "{\"id\": \"o\", \"type\": \"territory.get\", \"data\": {\"x\": "
                               "\"\xc0\xaf\"}}";
    raw_err(w, bad3, sizeof(bad3) - 1, false, "invalid_utf8", NULL, NULL);
    still_usable(w);
    /* Invalid bytes in the second fragment of a message. */
    static const char p1[] = "{\"id\": \"u9\", \"type\": \"territory.get\",";
    static const char p2[] = " \"data\": {\"x\": \"\xed\xa0\x80\"}}"; /* a lone surrogate */
    cr_assert_eq(snpclient_ws_send_raw(w, p1, sizeof(p1) - 1, false, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, p2, sizeof(p2) - 1, false, true, false), 0);
    json_t *j = recv_response(w, "invalid UTF-8 in a fragment");
    check_error(json_object_get(j, "error"), "invalid_utf8", NULL, "fragmented invalid UTF-8");
    json_decref(j);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, binary_frames_are_refused)
{
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    static const char msg[] = "{\"id\": \"b\", \"type\": \"territory.get\"}";
    raw_err(w, msg, sizeof(msg) - 1, true, "bad_json", NULL, NULL);
    still_usable(w);
    raw_err(w, "", 0, true, "bad_json", NULL, NULL);
    still_usable(w);
    /* A binary message in fragments too. */
    cr_assert_eq(snpclient_ws_send_raw(w, msg, 10, true, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, msg + 10, sizeof(msg) - 11, true, true, false), 0);
    json_t *j = recv_response(w, "fragmented binary");
    check_error(json_object_get(j, "error"), "bad_json", NULL, "fragmented binary");
    json_decref(j);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, fragmented_messages_are_assembled)
{
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    /* The id holds a two-byte character split between two fragments. */
    static const char msg[] = "{\"id\": \"frag-\xc3\xa9\", \"type\": \"capacity.query\","
                              " \"data\": {\"horizon\": \"24h\"}}";
    const char *split = strchr(msg, '\xc3') + 1;
    size_t a = 5, b = (size_t)(split - msg), n = sizeof(msg) - 1;
    cr_assert_eq(snpclient_ws_send_raw(w, msg, a, false, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, msg + a, b - a, false, false, false), 0);
    /* An empty continuation is legal. */
    cr_assert_eq(snpclient_ws_send_raw(w, msg + b, 0, false, false, false), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, msg + b, n - b, false, true, false), 0);
    json_t *j = recv_response(w, "a fragmented message");
    cr_assert(json_is_true(json_object_get(j, "ok")), "%s", json_dumps(j, 0));
    cr_assert_str_eq(str(j, "id"), "frag-\xc3\xa9");
    cr_assert_str_eq(str(j, "type"), "capacity.query");
    check_declared(snp_proto_message_find("capacity.query"), NULL, json_object_get(j, "data"),
                   "the answer to a fragmented message");
    json_decref(j);

    /* One fragment per byte. */
    static const char small[] = "{\"id\":\"f1\",\"type\":\"territory.get\"}";
    for (size_t i = 0; i < sizeof(small) - 1; i++)
        cr_assert_eq(snpclient_ws_send_raw(w, small + i, 1, false, i == sizeof(small) - 2, i == 0),
                     0);
    j = recv_response(w, "a message in one-byte fragments");
    cr_assert(json_is_true(json_object_get(j, "ok")));
    cr_assert_str_eq(str(j, "id"), "f1");
    json_decref(j);
    snpclient_ws_close(w);
}

/* A message of exactly `len` bytes: a valid call padded with spaces. */
static char *padded_message(size_t len)
{
    static const char head[] = "{\"id\": \"big\", \"type\": \"territory.get\"}";
    char *m = malloc(len);
    cr_assert_not_null(m);
    memset(m, ' ', len);
    memcpy(m, head, sizeof(head) - 1);
    return m;
}

/* Waits for the server to close `w` and returns its close code. */
static int wait_closed(struct snpclient_ws *w)
{
    char *text = NULL;
    int rc;
    while ((rc = snpclient_ws_recv(w, ANSWER_MS, &text)) == 0) {
        fprintf(stderr, "[ws] before the close: %s\n", text);
        free(text);
    }
    cr_assert_eq(rc, SNPCLIENT_ECLOSED, "the connection was not closed (%s)",
                 snpclient_strerror(rc));
    return snpclient_ws_close_code(w);
}

Test(ws, the_size_limit_closes_with_1009)
{
    size_t max = snp_proto_limits()->max_message_bytes;
    cr_assert_eq(max, 65536);
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    /* Exactly the limit is fine, in one frame and in fragments. */
    char *m = padded_message(max);
    cr_assert_eq(snpclient_ws_send_raw(w, m, max, false, true, true), 0);
    json_t *j = recv_response(w, "a message of exactly the limit");
    cr_assert(json_is_true(json_object_get(j, "ok")), "%s", json_dumps(j, 0));
    json_decref(j);
    cr_assert_eq(snpclient_ws_send_raw(w, m, 40000, false, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, m + 40000, max - 40000, false, true, false), 0);
    j = recv_response(w, "fragments adding up to the limit");
    cr_assert(json_is_true(json_object_get(j, "ok")), "%s", json_dumps(j, 0));
    json_decref(j);
    free(m);

    /* One byte more, in one frame. */
    m = padded_message(max + 1);
    cr_assert_eq(snpclient_ws_send_raw(w, m, max + 1, false, true, true), 0);
    int code = wait_closed(w);
    cr_assert_eq(code, 1009, "close code %d (%s)", code, snpclient_ws_close_reason(w));
    snpclient_ws_close(w);

    /* In fragments: the close comes as soon as the limit is crossed, while
     * the message is still unfinished. */
    free(m);
    m = padded_message(90000);
    w = open_as(FIX_PHARMACY);
    still_usable(w);
    cr_assert_eq(snpclient_ws_send_raw(w, m, 30000, false, false, true), 0);
    cr_assert_eq(snpclient_ws_send_raw(w, m + 30000, 30000, false, false, false), 0);
    int rc = snpclient_ws_send_raw(w, m + 60000, 30000, false, false, false);
    cr_assert(rc == 0 || rc == SNPCLIENT_ECLOSED, "%s", snpclient_strerror(rc));
    code = wait_closed(w);
    cr_assert_eq(code, 1009, "close code %d (%s)", code, snpclient_ws_close_reason(w));
    snpclient_ws_close(w);
    free(m);

    /* A huge frame is refused from its announced length. */
    w = open_as(FIX_PHARMACY);
    size_t huge = 1u << 20;
    m = padded_message(huge);
    rc = snpclient_ws_send_raw(w, m, huge, false, true, true);
    cr_assert(rc == 0 || rc == SNPCLIENT_ECLOSED, "%s", snpclient_strerror(rc));
    code = wait_closed(w);
    cr_assert_eq(code, 1009, "close code %d (%s)", code, snpclient_ws_close_reason(w));
    snpclient_ws_close(w);
    free(m);

    /* The server is none the worse. */
    w = open_as(FIX_PHARMACY);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, rate_limit)
{
    const struct snp_proto_limits *lim = snp_proto_limits();
    struct snpclient_ws *w = open_as(FIX_PHARMACY);
    still_usable(w);
    /* Refill the bucket that the first call used: a time, the bucket
     * refills at messages_per_second. */
    test_sleep_ms(1000 * 2 / lim->messages_per_second + 100);
    int burst = lim->message_burst + 30;
    double t0 = test_now_ms();
    for (int i = 0; i < burst; i++) {
        char text[96];
        snprintf(text, sizeof(text), "{\"id\": \"r%d\", \"type\": \"territory.get\"}", i);
        cr_assert_eq(snpclient_ws_send(w, text), 0);
    }
    double sent = test_now_ms() - t0;
    int ok = 0, limited = 0;
    for (int i = 0; i < burst; i++) {
        json_t *j = recv_response(w, "a burst");
        if (json_is_true(json_object_get(j, "ok"))) {
            ok++;
        } else {
            check_error(json_object_get(j, "error"), "rate_limited", NULL, "over the rate");
            cr_assert(str(j, "id") && str(j, "id")[0] == 'r', "the id is not echoed");
            limited++;
        }
        json_decref(j);
    }
    fprintf(stderr, "[ws] a burst of %d messages in %.1f ms: %d answered, %d rate_limited\n", burst,
            sent, ok, limited);
    cr_assert_gt(limited, 0, "no message was rate limited");
    /* The bucket holds message_burst; a few more refill while sending. */
    cr_assert_geq(ok, lim->message_burst - 1);
    cr_assert_eq(ok + limited, burst);
    cr_assert_not(snpclient_ws_is_closed(w));
    /* After a pause the connection is served again (a time: the bucket
     * refills with it). */
    test_sleep_ms(1000);
    for (int i = 0; i < 5; i++)
        still_usable(w);
    snpclient_ws_close(w);
}

/* --- many connections, the subprotocol, shutdown ---------------------------------- */

#define MANY       200
#define ADDRESSES  10 /* source addresses 127.0.0.10 to 127.0.0.19 */
#define PER_CLIENT (MANY / ADDRESSES)

Test(ws, two_hundred_connections)
{
    /* From ten loopback addresses, twenty each, so that a limit of
     * connections per address (max_connections_per_address) is not what
     * this test measures. */
    struct snpclient *clients[ADDRESSES];
    struct snpclient_ws *ws[MANY];
    char addr[ADDRESSES][16];
    double t0 = test_now_ms();
    for (int a = 0; a < ADDRESSES; a++) {
        snprintf(addr[a], sizeof(addr[a]), "127.0.0.%d", 10 + a);
        struct snpclient_options o = {
            .host = "127.0.0.1", .port = f.snpd.port, .local_address = addr[a]};
        clients[a] = snpclient_new_with(&o);
        cr_assert_not_null(clients[a]);
        for (int i = 0; i < PER_CLIENT; i++) {
            char err[200];
            int k = a * PER_CLIENT + i;
            ws[k] = snpclient_ws_open(clients[a], NULL, f.token[FIX_SAS], 10000, err, sizeof(err));
            cr_assert_not_null(ws[k], "connection %d from %s: %s", k, addr[a], err);
        }
    }
    double opened = test_now_ms();
    /* Every connection sends before any answer is read: the server has all
     * of them in flight at once. */
    for (int k = 0; k < MANY; k++) {
        char text[128];
        snprintf(text, sizeof(text),
                 "{\"id\": \"q%d\", \"type\": \"capacity.query\", \"data\": {\"horizon\": "
                 "\"4h\"}}",
                 k);
        cr_assert_eq(snpclient_ws_send(ws[k], text), 0, "send on %d", k);
    }
    int answered = 0;
    for (int k = 0; k < MANY; k++) {
        char *text = NULL;
        int rc = snpclient_ws_recv(ws[k], 10000, &text);
        cr_assert_eq(rc, 0, "connection %d: %s", k, snpclient_strerror(rc));
        json_t *j = parse_server(text);
        char want[16];
        snprintf(want, sizeof(want), "q%d", k);
        cr_assert_str_eq(str(j, "id"), want);
        cr_assert(json_is_true(json_object_get(j, "ok")), "connection %d: %s", k, text);
        check_declared(snp_proto_message_find("capacity.query"), NULL, json_object_get(j, "data"),
                       text);
        answered++;
        json_decref(j);
        free(text);
    }
    double done = test_now_ms();
    cr_assert_eq(answered, MANY);

    /* snpd counts them all as open. */
    struct http_response r;
    cr_assert_eq(http_request(f.snpd.port, "GET", "/metrics", NULL, NULL, &r), 0);
    const char *g = strstr(r.body, "\nsnpd_websockets ");
    cr_assert_not_null(g, "no snpd_websockets gauge");
    int open = atoi(g + strlen("\nsnpd_websockets "));
    http_response_free(&r);
    cr_assert_geq(open, MANY, "snpd_websockets is %d", open);
    fprintf(stderr,
            "[ws] %d connections opened in %.0f ms, %d capacity.query answered in %.0f ms, "
            "snpd_websockets %d\n",
            MANY, opened - t0, answered, done - opened, open);
    for (int a = 0; a < ADDRESSES; a++)
        snpclient_free(clients[a]); /* closes its connections */
}

/* Sends an upgrade request offering the subprotocol header `offer` ("" for
 * none) on a fresh TCP connection, and reads what the server sends until
 * it closes or `ms` pass.  Returns whether it closed; `out` gets the bytes
 * read, NUL-terminated. */
static bool raw_upgrade(const char *offer, char *out, size_t size, int ms)
{
    int fd = http_connect(f.snpd.port);
    cr_assert(fd >= 0);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n%s\r\n",
                     f.token[FIX_SAS], offer);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t got = 0;
    bool closed = false;
    double deadline = test_now_ms() + ms;
    while (got + 1 < size) {
        int left = (int)(deadline - test_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t k = read(fd, out + got, size - 1 - got);
        if (k <= 0) {
            closed = true;
            break;
        }
        got += (size_t)k;
    }
    out[got] = '\0';
    close(fd);
    return closed;
}

Test(ws, an_upgrade_without_the_subprotocol_is_refused)
{
    /* snpclient always asks for snp.v1, so these handshakes are written by
     * hand: none offered, another version, and the name of snpd's own HTTP
     * protocol (which lws would otherwise bind the upgrade to). */
    static const char *const offers[] = {"", "Sec-WebSocket-Protocol: snp.v2\r\n",
                                         "Sec-WebSocket-Protocol: http\r\n"};
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        char out[4096];
        bool closed = raw_upgrade(offers[i], out, sizeof(out), 3000);
        fprintf(stderr, "[ws] an upgrade offering \"%.*s\" gets \"%.*s\" and %s\n",
                (int)(strlen(offers[i]) > 2 ? strlen(offers[i]) - 2 : 0), offers[i],
                (int)strcspn(out, "\r\n"), out, closed ? "a close" : "no close");
        cr_assert_neq(strncmp(out, "HTTP/1.1 101", 12), 0,
                      "offer %zu: the server agreed to a WebSocket without snp.v1:\n%s", i, out);
        /* Refused: an HTTP error, or the connection closed. */
        cr_assert(closed || strncmp(out, "HTTP/1.1 4", 10) == 0,
                  "offer %zu: neither refused nor closed: %s", i, out);
    }
    /* The proper handshake still works. */
    struct snpclient_ws *w = open_as(FIX_SAS);
    still_usable(w);
    snpclient_ws_close(w);
}

Test(ws, sigterm_with_open_connections)
{
    struct snpclient_ws *sas = open_as(FIX_SAS);
    subscribe(sas, "capacity");
    struct snpclient_ws *gp = open_as(FIX_GP_1);
    subscribe(gp, "bookings");
    struct snpclient_ws *anon = open_ws(NULL);
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    /* One message left half sent. */
    cr_assert_eq(snpclient_ws_send_raw(ph, "{\"id\":", 6, false, false, true), 0);

    double t0 = test_now_ms();
    int st = snpd_proc_stop(&f.snpd, SIGTERM, 10000);
    double took = test_now_ms() - t0;
    fprintf(stderr, "[ws] SIGTERM with 4 WebSocket connections open: exit %d after %.0f ms\n", st,
            took);
    cr_assert_eq(st, 0, "snpd exited with %d", st);
    cr_assert_lt(took, 5000.0);
    struct snpclient_ws *all[] = {sas, gp, anon, ph};
    for (size_t i = 0; i < 4; i++) {
        char *text = NULL;
        int rc;
        while ((rc = snpclient_ws_recv(all[i], 2000, &text)) == 0)
            free(text);
        cr_assert_eq(rc, SNPCLIENT_ECLOSED, "connection %zu still open (%s)", i,
                     snpclient_strerror(rc));
        fprintf(stderr, "[ws] connection %zu closed with code %d\n", i,
                snpclient_ws_close_code(all[i]));
        snpclient_ws_close(all[i]);
    }
}

Test(ws, a_connection_that_never_authenticates_is_closed)
{
    /* Past auth_timeout_s (10 s) without a token, snpd closes the
     * connection; an authenticated one stays open over the same time. */
    struct snpclient_ws *anon = open_ws(NULL);
    struct snpclient_ws *known = open_as(FIX_SAS);
    char *text = NULL;
    int rc = snpclient_ws_recv(anon, 13000, &text);
    free(text);
    cr_assert(rc == SNPCLIENT_ECLOSED || snpclient_ws_is_closed(anon),
              "an unauthenticated connection was still open after 13 s (%s)",
              snpclient_strerror(rc));
    cr_assert_eq(snpclient_ws_close_code(anon), 1008, "closed with %d (%s)",
                 snpclient_ws_close_code(anon), snpclient_ws_close_reason(anon));
    cr_assert_str_eq(snpclient_ws_close_reason(anon), "authentication timeout");
    cr_assert_not(snpclient_ws_is_closed(known));
    json_decref(call_ok(known, "territory.get", NULL));
    snpclient_ws_close(anon);
    snpclient_ws_close(known);
}

/* The WebSocket messages snpd has received, from /metrics. */
static long long ws_messages_in(void)
{
    struct http_response m;
    cr_assert_eq(http_request(f.snpd.port, "GET", "/metrics", NULL, NULL, &m), 0);
    const char *key = "\nsnpd_ws_messages_total{direction=\"in\"} ";
    const char *at = strstr(m.body, key);
    long long n = at ? atoll(at + strlen(key)) : -1;
    http_response_free(&m);
    return n;
}

/* A call that finds its request with an update on its way to the database
 * waits for that update, then runs, instead of being refused with
 * `conflict` (which used to answer a confirmation sent at once on an
 * offer.made push).  The update here, a decline moving the offer, is held
 * up by a lock the test takes on the request's row; a cancellation sent
 * meanwhile is answered, as done, once the lock goes. */
Test(ws, a_call_waits_for_its_requests_update)
{
    fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]");
    struct snpclient_ws *ph = open_as(FIX_PHARMACY);
    json_t *r = create_request(ph, "wait-1");
    long long id = (long long)num(r, "request_id"), held = (long long)held_slot(r);
    json_decref(r);

    PGconn *lock = PQconnectdb(f.pg.conninfo);
    cr_assert_eq(PQstatus(lock), CONNECTION_OK, "%s", PQerrorMessage(lock));
    char text[256];
    snprintf(text, sizeof(text), "BEGIN; SELECT 1 FROM request WHERE id = %lld FOR UPDATE", id);
    PGresult *res = PQexec(lock, text);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(lock));
    PQclear(res);

    snprintf(text, sizeof(text),
             "{\"id\": \"d\", \"type\": \"offer.decline\", \"data\": {\"request_id\": %lld,"
             " \"slot_id\": %lld}}",
             id, held);
    long long before = ws_messages_in();
    cr_assert_eq(snpclient_ws_send(ph, text), 0);
    snprintf(text, sizeof(text),
             "{\"id\": \"c\", \"type\": \"request.cancel\", \"data\": {\"request_id\": %lld,"
             " \"reason\": \"patient_request\"}}",
             id);
    cr_assert_eq(snpclient_ws_send(ph, text), 0);
    /* Both arrived; the decline waits for the lock. */
    bool arrived, waiting;
    WAIT_UNTIL(arrived, ws_messages_in() >= before + 2, 20000);
    cr_assert(arrived, "snpd did not receive the decline and the cancellation");
    WAIT_UNTIL(waiting,
               pgtest_long(&f.pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                  "'Lock' AND datname = current_database()") >= 1,
               20000);
    cr_assert(waiting, "the decline did not wait for the lock");
    res = PQexec(lock, "COMMIT");
    PQclear(res);
    PQfinish(lock);

    for (int i = 0; i < 2; i++) {
        json_t *j = recv_response(ph, "decline and cancel");
        cr_assert(json_is_true(json_object_get(j, "ok")), "%s: %s", str(j, "id"),
                  json_dumps(j, 0));
        if (strcmp(str(j, "id"), "c") == 0)
            cr_assert_str_eq(str(json_object_get(j, "data"), "status"), "cancelled");
        json_decref(j);
    }
    snprintf(text, sizeof(text), "SELECT count(*) FROM request WHERE id = %lld AND status = "
                                 "'cancelled'", id);
    cr_assert_eq(pgtest_long(&f.pg, text), 1);
    snpclient_ws_close(ph);
}
