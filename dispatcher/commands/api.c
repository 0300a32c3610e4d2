#include "dispatcher/commands/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/idlists.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/commands/calls.h"
#include "dispatcher/commands/views.h"
#include "dispatcher/commands/indicators.h"
#include "dispatcher/commands/manage.h"
#include "dispatcher/commands/message_ops.h"
#include "dispatcher/commands/participation.h"
#include "dispatcher/commands/reads.h"
#include "dispatcher/commands/rota.h"
#include "protocol/codec.h"
#include "protocol/jsonout.h"
#include "protocol/snp_decl.h"

/* What a WebSocket connection knows about its caller. */
struct api_session {
    bool authenticated;
    struct caller caller;
    int64_t expires_at; /* the token's expiry (epoch seconds), or 0 */
    unsigned topics;    /* the topics subscribed to, a topic_bit() each: set
                         * by session_set_topics only */
    struct api *api;
    struct ws_client *ws; /* its connection */
    /* Its place among each topic's subscribers (api.subscribers), under
     * subscriber_key, while subscribed. */
    struct idlist_link on[SNP_TOPIC_COUNT];
};

_Static_assert(SNP_TOPIC_COUNT <= sizeof(unsigned) * 8, "api_session.topics: a bit per topic");

/* The bit of `topic` in api_session.topics. */
static unsigned topic_bit(enum snp_topic topic)
{
    return 1u << topic;
}

/* --- subscribers, by the key a push names ------------------------------------------ *
 *
 * A push of the requests topic names the organisation it is for, one of the
 * bookings topic the practitioner booked and the slot's site; a capacity
 * push is for every watcher of the territory and its neighbours.  So a
 * topic's subscribers are kept in lists by that key (api.subscribers,
 * base/idlists.h), and a push reads the one or two lists it names, then
 * checks each session there (session_receives): its cost follows the
 * sessions that may receive it, not the connections open.  A list holds
 * every session that could receive a push under its key; one that could
 * receive none (a role the topic never pushes to) is under a key no push
 * names. */

/* Keys of the bookings topic: a practitioner's RPPS as idmap_code_key, a
 * positive number; a site's reception as the opposite of the site's id. */
static int64_t subscriber_key(enum snp_topic topic, const struct caller *c)
{
    switch (topic) {
    case SNP_TOPIC_REQUESTS:
        return c->organisation_id;
    case SNP_TOPIC_BOOKINGS:
        return c->role == ROLE_RECEPTION ? -c->site_id
               : c->role == ROLE_GP      ? idmap_code_key(c->rpps)
                                         : 0;
    default:
        return 0;
    }
}

/* The keys of the lists a push to `to` reads, into `keys`; how many. */
static size_t push_keys(const struct push_target *to, int64_t keys[2])
{
    size_t n = 0;
    switch (to->topic) {
    case SNP_TOPIC_REQUESTS:
        keys[n++] = to->organisation_id;
        break;
    case SNP_TOPIC_BOOKINGS:
        if (to->rpps && to->rpps[0])
            keys[n++] = idmap_code_key(to->rpps);
        if (to->site_id > 0)
            keys[n++] = -to->site_id;
        break;
    default:
        keys[n++] = 0;
        break;
    }
    return n;
}

/* Subscribes the session to exactly `topics` (topic_bit()s): joins the
 * lists of api.subscribers it is to be on, leaves those it is not.  Every
 * change of s->topics goes through here.  Returns false when memory is
 * short: the topics it would have added are then not added. */
static bool session_set_topics(struct api_session *s, unsigned topics)
{
    struct api *a = s->api;
    for (unsigned k = 0; k < SNP_TOPIC_COUNT; k++)
        if ((s->topics & ~topics) & topic_bit((enum snp_topic)k))
            idlists_leave(&a->subscribers[k], &s->on[k]);
    s->topics &= topics;
    unsigned joined = 0;
    for (unsigned k = 0; k < SNP_TOPIC_COUNT; k++) {
        unsigned bit = topic_bit((enum snp_topic)k);
        if (!(topics & ~s->topics & bit))
            continue;
        if (!idlists_join(&a->subscribers[k], subscriber_key((enum snp_topic)k, &s->caller),
                          &s->on[k], s)) {
            for (unsigned j = 0; j < k; j++)
                if (joined & topic_bit((enum snp_topic)j))
                    idlists_leave(&a->subscribers[j], &s->on[j]);
            s->topics &= ~joined;
            return false;
        }
        joined |= bit;
        s->topics |= bit;
    }
    return true;
}

/* Makes the connection authenticated as `caller`.  A session subscribed
 * already (a second auth answered late) moves to the lists of its new
 * caller. */
static void session_start(struct ws_client *ws, const struct caller *caller, int64_t expires_at)
{
    struct api_session *s = ws->session;
    unsigned topics = s->topics;
    (void)session_set_topics(s, 0);
    s->authenticated = true;
    s->caller = *caller;
    s->expires_at = expires_at;
    if (!session_set_topics(s, topics))
        log_error("api", "a session lost its subscriptions: out of memory");
}

/* Whether the session's token has expired since it authenticated. */
static bool session_expired(const struct api_session *s)
{
    return s->expires_at > 0 && s->expires_at <= timeutil_now();
}

/* One message being answered, over HTTP or WebSocket. */
struct call {
    struct api *api;
    const struct snp_proto_message *msg;
    json_t *root; /* what we parsed (owned) */
    json_t *data; /* the request's data (borrowed from root) */
    struct http_exchange *ex;
    json_t *params; /* HTTP: the path parameters, merged after authentication (owned) */
    struct ws_client *ws;
    char id[80];
    struct caller caller;
};

typedef void (*op_fn)(struct dispatch *, const struct caller *, json_t *, answer_cb, void *);

/* The operations, by message name. */
static const struct {
    const char *name;
    op_fn fn;
} operations[] = {
    {"slot.publish", calls_slot_publish},
    {"slot.withdraw", calls_slot_withdraw},
    {"slot.list", calls_slot_list},
    {"request.create", calls_request_create},
    {"offer.accept", calls_offer_accept},
    {"offer.decline", calls_offer_decline},
    {"request.cancel", calls_request_cancel},
    {"booking.cancel", calls_booking_cancel},
    {"outcome.report", calls_outcome_report},
    {"capacity.query", calls_capacity_query},
    {"territory.get", reads_territory_get},
    {"territory.settings.update", manage_settings_update},
    {"request.get", reads_request_get},
    {"request.list", reads_request_list},
    {"booking.list", reads_booking_list},
    {"slip.get", reads_slip_get},
    {"slip.refuse", calls_slip_refuse},
    {"indicators.get", indicators_get},
    {"indicators.export", indicators_export},
    {"territory.import", manage_territory_import},
    {"token.create", manage_token_create},
    {"token.list", manage_token_list},
    {"token.revoke", manage_token_revoke},
    {"call.record", manage_call_record},
    {"call.list", reads_call_list},
    {"push.list", manage_push_list},
    {"push.resend", manage_push_resend},
    {"participation.get", participation_get},
    {"participation.attestation", participation_attestation},
    {"participation.precondition.set", participation_precondition_set},
    {"participation.precondition.list", participation_precondition_list},
    {"shift.list", rota_shift_list},
    {"shift.assign", rota_shift_assign},
    {"request.confirmation.send", message_confirmation_send},
    {"booking.mt_handover", message_mt_handover},
    {"message.list", message_list},
};

/* The messages the connection itself answers (authentication and
 * subscriptions), not an operation of the dispatch. */
static const char *const connection_messages[] = {"auth", "subscribe", "unsubscribe"};

bool api_check_operations(char *why, size_t n)
{
    size_t nops = sizeof(operations) / sizeof(operations[0]);
    size_t nconn = sizeof(connection_messages) / sizeof(connection_messages[0]);
    for (size_t i = 0; i < nops; i++) {
        if (!snp_proto_message_find(operations[i].name)) {
            snprintf(why, n, "operation %s is not declared in protocol/snp.v1.json",
                     operations[i].name);
            return false;
        }
    }
    for (size_t i = 0; i < snp_proto_message_count(); i++) {
        const char *name = snp_proto_message_at(i)->name;
        bool served = false;
        for (size_t k = 0; k < nops && !served; k++)
            served = strcmp(operations[k].name, name) == 0;
        for (size_t k = 0; k < nconn && !served; k++)
            served = strcmp(connection_messages[k], name) == 0;
        if (!served) {
            snprintf(why, n, "message %s is declared but has no handler", name);
            return false;
        }
    }
    return true;
}

int api_init(struct api *a, struct dispatch *d, struct db *db, const struct config *cfg)
{
    char why[160];
    if (!api_check_operations(why, sizeof(why))) {
        log_error("api", "%s", why);
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->dispatch = d;
    auth_init(&a->auth, db, cfg->auth_cache_entries, cfg->auth_failures_burst,
              cfg->auth_failures_per_min);
    a->nmessages = snp_proto_message_count();
    a->results = calloc(a->nmessages + 1, sizeof(*a->results));
    return a->results ? 0 : -1;
}

void api_free(struct api *a)
{
    for (unsigned k = 0; k < SNP_TOPIC_COUNT; k++)
        idlists_free(&a->subscribers[k]);
    auth_free(&a->auth);
    free(a->results);
    a->results = NULL;
}

static void count_result(struct api *a, const struct snp_proto_message *msg, bool ok)
{
    for (size_t i = 0; msg && i < a->nmessages; i++) {
        if (snp_proto_message_at(i) == msg) {
            a->results[i][ok ? 0 : 1]++;
            return;
        }
    }
}

void api_write_metrics(const struct api *a, struct buf *b)
{
    buf_printf(b, "# HELP snpd_messages_total Protocol messages answered, by type and result.\n"
                  "# TYPE snpd_messages_total counter\n");
    for (size_t i = 0; i < a->nmessages; i++) {
        const char *name = snp_proto_message_at(i)->name;
        buf_printf(b, "snpd_messages_total{type=\"%s\",result=\"ok\"} %llu\n", name,
                   (unsigned long long)a->results[i][0]);
        buf_printf(b, "snpd_messages_total{type=\"%s\",result=\"error\"} %llu\n", name,
                   (unsigned long long)a->results[i][1]);
    }
    buf_printf(
        b,
        "# HELP snpd_auth_lookups_total Token look-ups in the database.\n"
        "# TYPE snpd_auth_lookups_total counter\nsnpd_auth_lookups_total %llu\n"
        "# HELP snpd_auth_failures_total Tokens refused (unknown, expired, revoked).\n"
        "# TYPE snpd_auth_failures_total counter\nsnpd_auth_failures_total %llu\n"
        "# HELP snpd_auth_throttled_total Authentications refused without a look-up, "
        "the address having failed too often.\n"
        "# TYPE snpd_auth_throttled_total counter\nsnpd_auth_throttled_total %llu\n"
        "# HELP snpd_auth_cache_evictions_total Cached tokens dropped to make room.\n"
        "# TYPE snpd_auth_cache_evictions_total counter\n"
        "snpd_auth_cache_evictions_total %llu\n",
        (unsigned long long)a->auth.stats.lookups, (unsigned long long)a->auth.stats.failures,
        (unsigned long long)a->auth.stats.throttled, (unsigned long long)a->auth.stats.evictions);
    buf_printf(b,
               "# HELP snpd_pushes_total Pushes delivered to WebSocket subscribers.\n"
               "# TYPE snpd_pushes_total counter\nsnpd_pushes_total %llu\n",
               (unsigned long long)a->pushes);
}

/* --- the declaration as a check (test builds) ------------------------------------ */

/* Built with SNP_CHECK_DECLARATION (deploy/test.sh builds so), snpd checks
 * every success answer and every push against protocol/snp.v1.json before
 * sending it, and stops at the first breach: what a client written from the
 * declaration alone would trip on is a bug the suite must not pass over.
 * The log line names the message, the code and the field, never the data,
 * which may be a patient's.  Other builds check nothing. */
#ifdef SNP_CHECK_DECLARATION
static void declaration_breach(const char *what, const char *name,
                               const struct snp_proto_error *err)
{
    log_error("api", "%s %s breaks its declaration (snp.v1.json): %s at \"%s\"", what, name,
              snp_proto_code_name(err->code), err->field);
    abort();
}
#endif

static void check_answer(const struct snp_proto_message *msg, json_t *data)
{
#ifdef SNP_CHECK_DECLARATION
    struct snp_proto_error err = {0};
    if (snp_proto_validate_response(msg, data, &err) != 0)
        declaration_breach("the answer to", msg->name, &err);
#else
    (void)msg;
    (void)data;
#endif
}

#ifdef SNP_CHECK_DECLARATION
static void check_push(const char *event, json_t *data)
{
    struct snp_proto_error err = {0};
    const struct snp_proto_push *p = snp_proto_push_find(event);
    if (!p) {
        snp_proto_error_set(&err, SNP_PROTO_E_UNKNOWN_TYPE, NULL, NULL);
        declaration_breach("the push", event, &err);
    }
    if (snp_proto_validate_push(p, data, &err) != 0)
        declaration_breach("the push", event, &err);
}
#endif

/* --- answering -------------------------------------------------------------------- */

static void call_free(struct call *c)
{
    if (c->ws)
        server_ws_unref(c->ws);
    json_decref(c->params);
    json_decref(c->root);
    free(c);
}

static void ws_send_json(struct ws_client *ws, json_t *j)
{
    size_t len = 0;
    char *text = j ? jsonout_dumps(j, 10, &len) : NULL;
    if (text)
        server_ws_send(ws, text, len);
    free(text);
    json_decref(j);
}

/* Answers a call with an error and frees it. */
static void call_error(struct call *c, const struct snp_proto_error *err)
{
    count_result(c->api, c->msg, false);
    if (c->ex) {
        json_t *body = snp_proto_http_error_body(err);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (text)
            server_http_respond_owned(c->ex, snp_proto_error_http_status(err->code),
                                      "application/json", text, strlen(text));
        else
            server_http_respond(c->ex, 500, "application/json", "{}", 2);
    } else if (c->ws) {
        ws_send_json(c->ws, snp_proto_response_error(c->id[0] ? c->id : NULL,
                                                     c->msg ? c->msg->name : NULL, err));
    }
    call_free(c);
}

static void call_error_code(struct call *c, enum snp_proto_code code, const char *field,
                            const char *message)
{
    struct snp_proto_error err = {0};
    snp_proto_error_set(&err, code, field, "%s", message);
    call_error(c, &err);
}

/* Answers a call with `data`; over HTTP with the route's status, or 200
 * for a repeated call (`repeat`). */
static void call_ok_as(struct call *c, json_t *data, bool repeat)
{
    check_answer(c->msg, data);
    count_result(c->api, c->msg, true);
    if (c->ex) {
        size_t len = 0;
        char *text = jsonout_dumps(data, 10, &len);
        int status = c->msg->http_status && !repeat ? c->msg->http_status : 200;
        if (text)
            server_http_respond_owned(c->ex, status, "application/json", text, len);
        else
            server_http_respond(c->ex, 500, "application/json", "{}", 2);
    } else if (c->ws) {
        ws_send_json(c->ws, snp_proto_response_ok(c->id, c->msg->name, json_incref(data)));
    }
    call_free(c);
}

static void call_ok(struct call *c, json_t *data)
{
    call_ok_as(c, data, false);
}

const char ANSWER_REPEAT[] = "repeat";

static void on_dispatch_done(void *arg, enum snp_proto_code err, const char *message,
                             const char *field, json_t *data)
{
    struct call *c = arg;
    if (err == SNP_PROTO_OK) {
        call_ok_as(c, data, message == ANSWER_REPEAT);
        return;
    }
    call_error_code(c, err, field, message ? message : snp_proto_code_name(err));
}

/* --- operations answered here ----------------------------------------------------- */

/* Runs an authenticated, validated call. */
static void call_execute(struct call *c)
{
    struct snp_proto_error err = {0};
    const char *role = token_role_name(c->caller.role);
    if (!snp_proto_message_allows(c->msg, role)) {
        call_error_code(c, SNP_PROTO_E_FORBIDDEN, NULL, "your role may not do this");
        return;
    }
    if (snp_proto_validate_request(c->msg, c->data, &err) != 0) {
        call_error(c, &err);
        return;
    }
    if (!c->api->dispatch->ready) {
        call_error_code(c, SNP_PROTO_E_UNAVAILABLE, NULL, "snpd is starting; retry");
        return;
    }
    for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
        if (strcmp(operations[i].name, c->msg->name) == 0) {
            operations[i].fn(c->api->dispatch, &c->caller, c->data, on_dispatch_done, c);
            return;
        }
    }
    call_error_code(c, SNP_PROTO_E_NOT_FOUND, NULL,
                    "this operation is declared but not served by this version of snpd");
}

/* --- HTTP ------------------------------------------------------------------------- */

static void on_http_authenticated(void *arg, const struct caller *caller,
                                  const char *organisation_name, int64_t expires_at,
                                  const struct snp_proto_error *err)
{
    (void)organisation_name;
    (void)expires_at;
    struct call *c = arg;
    if (!caller) {
        call_error(c, err);
        return;
    }
    c->caller = *caller;
    /* The query string and the path parameters are fields: they are read
     * after authentication and the role check (protocol/snp.v1.md §6), so
     * that a caller without a valid token learns nothing from them. */
    if (!snp_proto_message_allows(c->msg, token_role_name(c->caller.role))) {
        call_error_code(c, SNP_PROTO_E_FORBIDDEN, NULL, "your role may not do this");
        return;
    }
    struct snp_proto_error qerr = {0};
    if (snp_proto_query_merge(c->msg, c->ex->query, c->root, &qerr) != 0 ||
        snp_proto_params_merge(c->root, c->params, &qerr) != 0) {
        call_error(c, &qerr);
        return;
    }
    call_execute(c);
}

static const char *method_name(enum http_method m)
{
    static const char *const names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                        "PATCH", "DELETE", "OPTIONS", "OTHER"};
    return names[m];
}

void api_on_http(void *ctx, struct http_exchange *ex)
{
    struct api *a = ctx;
    struct call *c = calloc(1, sizeof(*c));
    if (!c) {
        server_http_error(ex, 500, "internal", "out of memory");
        return;
    }
    c->api = a;
    c->ex = ex;
    struct snp_proto_error err = {0};
    c->params = json_object();
    int rc = snp_proto_route(method_name(ex->method), ex->path, &c->msg, c->params, &err);
    if (rc == 0) {
        if (ex->body.len > 0)
            rc = snp_proto_parse(ex->body.data, ex->body.len, &c->root, &err);
        else
            c->root = json_object();
    }
    if (rc != 0) {
        call_error(c, &err);
        return;
    }
    c->data = c->root;
    auth_check(&a->auth, ex->bearer, ex->peer, uv_now(a->server->loop), on_http_authenticated, c);
}

/* --- WebSocket -------------------------------------------------------------------- */

/* The handshake's Authorization header, checked as soon as the connection
 * opens; a refusal is answered to the first message instead. */
static void on_ws_open_authenticated(void *arg, const struct caller *caller,
                                     const char *organisation_name, int64_t expires_at,
                                     const struct snp_proto_error *err)
{
    (void)organisation_name;
    (void)err;
    struct ws_client *ws = arg;
    struct api_session *s = ws->session;
    if (caller && s && !s->authenticated)
        session_start(ws, caller, expires_at);
    server_ws_unref(ws);
}

void api_on_ws_open(void *ctx, struct ws_client *ws)
{
    struct api_session *s = calloc(1, sizeof(*s));
    ws->session = s;
    if (!s) {
        server_ws_close(ws, 1011, "out of memory");
        return;
    }
    s->api = ctx;
    s->ws = ws;
    /* A connection must authenticate soon (handshake header or auth
     * message): api_sweep closes it otherwise. */
    if (ws->bearer[0]) {
        struct api *a = ctx;
        server_ws_ref(ws);
        auth_check(&a->auth, ws->bearer, ws->peer, uv_now(a->server->loop),
                   on_ws_open_authenticated, ws);
    }
}

void api_on_ws_free(void *ctx, struct ws_client *ws)
{
    (void)ctx;
    if (ws->session)
        (void)session_set_topics(ws->session, 0);
    free(ws->session);
    ws->session = NULL;
}

/* The auth answer (protocol type "session"): who the token identifies,
 * with what the store knows of it: a gp's sites in the caller's territory,
 * a requester organisation's commune. */
static json_t *session_json(const struct caller *caller, const char *organisation_name,
                            int64_t expires_at, const struct store *st)
{
    const struct territory *t = store_territory(st, caller->territory);
    json_t *j = json_pack("{s:I, s:s, s:s}", "token_id", (json_int_t)caller->token_id, "role",
                          token_role_name(caller->role), "territory_id", caller->territory);
    char buf[TIMEUTIL_RFC3339_SIZE];
    const struct timeutil_zone *zone = t ? t->zone : timeutil_zone_find("Europe/Paris");
    if (caller->rpps[0]) {
        json_object_set_new(j, "rpps", json_string(caller->rpps));
        const struct practitioner *p = store_practitioner(st, caller->rpps);
        json_t *sites = json_array();
        for (size_t i = 0; p && i < p->nsites; i++)
            if (p->sites[i]->territory == t)
                json_array_append_new(sites, json_pack("{s:I, s:s}", "site_id",
                                                       (json_int_t)p->sites[i]->id, "name",
                                                       p->sites[i]->name));
        json_object_set_new(j, "sites", sites);
    }
    if (caller->organisation_id > 0) {
        json_object_set_new(j, "organisation_id", json_integer(caller->organisation_id));
        const struct organisation *o = idmap_get(&st->organisations, caller->organisation_id);
        if (o && o->commune[0])
            json_object_set_new(j, "organisation_commune_insee", json_string(o->commune));
    }
    if (caller->site_id > 0) {
        json_object_set_new(j, "site_id", json_integer(caller->site_id));
        const struct site *s = idmap_get(&st->sites, caller->site_id);
        if (s && s->name[0])
            json_object_set_new(j, "site_name", json_string(s->name));
    }
    if (organisation_name && *organisation_name)
        json_object_set_new(j, "organisation_name", json_string(organisation_name));
    if (expires_at > 0 && timeutil_format_rfc3339(zone, expires_at, buf, sizeof(buf)))
        json_object_set_new(j, "expires_at", json_string(buf));
    if (timeutil_format_rfc3339(zone, timeutil_now(), buf, sizeof(buf)))
        json_object_set_new(j, "server_time", json_string(buf));
    return j;
}

static void on_ws_auth_message(void *arg, const struct caller *caller,
                               const char *organisation_name, int64_t expires_at,
                               const struct snp_proto_error *err)
{
    struct call *c = arg;
    if (!caller) {
        call_error(c, err);
        return;
    }
    if (c->ws->session)
        session_start(c->ws, caller, expires_at);
    json_t *data = session_json(caller, organisation_name, expires_at, &c->api->dispatch->store);
    call_ok(c, data);
    json_decref(data);
}

static void handle_subscription(struct call *c, bool add)
{
    struct api_session *s = c->ws->session;
    json_t *topics = json_object_get(c->data, "topics");
    const char *role = token_role_name(c->caller.role);
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach (topics, i, v) {
        const char *name = json_string_value(v);
        enum snp_topic topic;
        if (!snp_topic_find(name, &topic))
            continue;
        if (add && !snp_proto_topic_allows(name, role)) {
            call_error_code(c, SNP_PROTO_E_FORBIDDEN, "topics",
                            "your role may not subscribe to this topic");
            return;
        }
        bits |= topic_bit(topic);
    }
    if (!session_set_topics(s, add ? (s->topics | bits) : (s->topics & ~bits))) {
        call_error_code(c, SNP_PROTO_E_INTERNAL, NULL, "out of memory; nothing was added");
        return;
    }
    json_t *now = json_array();
    for (unsigned k = 0; k < SNP_TOPIC_COUNT; k++)
        if (s->topics & topic_bit((enum snp_topic)k))
            json_array_append_new(now, json_string(snp_topic_name((enum snp_topic)k)));
    json_t *data = json_pack("{s:o}", "topics", now);
    call_ok(c, data);
    json_decref(data);
}

/* Runs a call on an authenticated connection. */
static void ws_run(struct call *c)
{
    struct api_session *s = c->ws->session;
    if (session_expired(s)) {
        struct ws_client *ws = c->ws;
        s->authenticated = false;
        (void)session_set_topics(s, 0);
        server_ws_ref(ws);
        call_error_code(c, SNP_PROTO_E_TOKEN_EXPIRED, NULL,
                        "this token has expired; ask the coordinator for a new one");
        server_ws_close_after_flush(ws, 1008, "token expired");
        server_ws_unref(ws);
        return;
    }
    c->caller = s->caller;
    const char *name = c->msg->name;
    if (strcmp(name, "subscribe") == 0 || strcmp(name, "unsubscribe") == 0) {
        struct snp_proto_error err = {0};
        if (snp_proto_validate_request(c->msg, c->data, &err) != 0) {
            call_error(c, &err);
            return;
        }
        handle_subscription(c, name[0] == 's');
        return;
    }
    call_execute(c);
}

static void on_ws_header_auth(void *arg, const struct caller *caller, const char *organisation_name,
                              int64_t expires_at, const struct snp_proto_error *err)
{
    (void)organisation_name;
    struct call *c = arg;
    if (!caller || !c->ws->session) {
        call_error(c, err);
        return;
    }
    session_start(c->ws, caller, expires_at);
    ws_run(c);
}

void api_on_ws_message(void *ctx, struct ws_client *ws, const char *text, size_t len, bool binary)
{
    struct api *a = ctx;
    struct api_session *s = ws->session;
    struct call *c = calloc(1, sizeof(*c));
    if (!c || !s) {
        free(c);
        return;
    }
    c->api = a;
    c->ws = ws;
    server_ws_ref(ws);
    struct snp_proto_error err = {0};
    /* Every message is charged to the bucket, but one over the rate is
     * still read far enough to echo its id and type (the specification
     * sends null only when they cannot be read): a client matches answers
     * by id and would otherwise wait for an answer that never comes. */
    bool over_rate = !ratelimit_message(&ws->rate, uv_now(ws->server->loop));
    struct snp_proto_envelope env;
    memset(&env, 0, sizeof(env));
    int rc = -1;
    if (binary)
        snp_proto_error_set(&err, SNP_PROTO_E_BAD_JSON, NULL,
                            "messages are JSON text frames, not binary ones");
    else
        rc = snp_proto_parse(text, len, &c->root, &err);
    if (rc == 0) {
        rc = snp_proto_envelope_read(c->root, &env, &err);
        if (env.id)
            snprintf(c->id, sizeof(c->id), "%s", env.id);
        c->msg = env.msg;
        c->data = env.data;
    }
    if (over_rate) {
        call_error_code(c, SNP_PROTO_E_RATE_LIMITED, NULL, "too many messages; slow down");
        return;
    }
    if (rc != 0) {
        call_error(c, &err);
        return;
    }
    if (strcmp(c->msg->name, "auth") == 0) {
        if (snp_proto_validate_request(c->msg, c->data, &err) != 0) {
            call_error(c, &err);
            return;
        }
        if (s->authenticated) {
            call_error_code(c, SNP_PROTO_E_CONFLICT, NULL,
                            "this connection is already authenticated");
            return;
        }
        auth_check(&a->auth, json_string_value(json_object_get(c->data, "token")), ws->peer,
                   uv_now(a->server->loop), on_ws_auth_message, c);
        return;
    }
    if (!s->authenticated) {
        if (ws->bearer[0]) {
            auth_check(&a->auth, ws->bearer, ws->peer, uv_now(a->server->loop), on_ws_header_auth,
                       c);
            return;
        }
        call_error_code(c, SNP_PROTO_E_UNAUTHENTICATED, NULL,
                        "authenticate first: send an auth message or an Authorization header");
        return;
    }
    ws_run(c);
}

/* --- pushes ----------------------------------------------------------------------- */

/* Whether territory `watcher` sees the capacity of territory `of`. */
static bool sees_territory(struct api *a, const char *watcher, const char *of)
{
    if (strcmp(watcher, of) == 0)
        return true;
    struct territory *t = store_territory(&a->dispatch->store, watcher);
    for (size_t i = 0; t && i < t->nneighbours; i++)
        if (strcmp(t->neighbours[i]->id, of) == 0)
            return true;
    return false;
}

/* The territory a push of the bookings topic belongs to: its slot's.  A
 * practitioner who works in two territories holds a session (a token) per
 * territory, and each session gets the bookings of its own territory only.
 * The slot's site says it even when the push was sent for another territory:
 * the target of booking.cancelled and of another process's bookings is the
 * booking's or the canceller's territory, which for a neighbour's SAS is not
 * the practitioner's.  Without the booking (`data` NULL, api_wants asking
 * before it is read), any territory of the practitioner's. */
static const char *booking_territory(struct api *a, const struct push_target *to,
                                     const struct dispatch_push *p)
{
    int64_t id = p->site_id;
    const struct site *s = id > 0 ? idmap_get(&a->dispatch->store.sites, id) : NULL;
    return s && s->territory ? s->territory->id : to->territory;
}

/* Whether the session of `ws` is to receive a push to `to`; `gp_territory`
 * is the territory of a push of the bookings topic (NULL: not known yet, see
 * booking_territory). */
static bool session_receives(struct api *a, const struct ws_client *ws,
                             const struct push_target *to, const char *gp_territory)
{
    struct api_session *s = ws->session;
    if (!s || !s->authenticated || !(s->topics & topic_bit(to->topic)) || session_expired(s))
        return false;
    const struct caller *c = &s->caller;
    if (to->topic == SNP_TOPIC_CAPACITY)
        return sees_territory(a, c->territory, to->territory);
    if (to->topic == SNP_TOPIC_BOOKINGS && c->role == ROLE_RECEPTION)
        /* A site is of one territory: its id says both. */
        return to->site_id > 0 && to->site_id == c->site_id;
    if (to->topic == SNP_TOPIC_BOOKINGS)
        return c->role == ROLE_GP && to->rpps && strcmp(c->rpps, to->rpps) == 0 &&
               (!gp_territory || strcmp(c->territory, gp_territory) == 0);
    return token_role_is_requester(c->role) && c->organisation_id == to->organisation_id &&
           strcmp(c->territory, to->territory) == 0;
}

bool api_wants(void *ctx, const struct push_target *to)
{
    struct api *a = ctx;
    if (!a->server)
        return false;
    int64_t keys[2];
    size_t nkeys = push_keys(to, keys);
    for (size_t i = 0; i < nkeys; i++)
        for (struct idlist_link *x = idlists_first(&a->subscribers[to->topic], keys[i]); x;
             x = x->next)
            if (session_receives(a, ((struct api_session *)x->owner)->ws, to, NULL))
                return true;
    return false;
}

void api_push(void *ctx, const struct push_target *to, const struct dispatch_push *p)
{
    struct api *a = ctx;
    const char *event = snp_push_name(p->event);
#ifdef SNP_CHECK_DECLARATION
    /* Test builds check every push against the declaration, received or
     * not. */
    json_t *checked = views_push(&a->dispatch->store, to, p);
    check_push(event, checked);
    json_decref(checked);
#endif
    if (!a->server)
        return;
    const char *gp_territory = to->topic == SNP_TOPIC_BOOKINGS ? booking_territory(a, to, p) : NULL;
    char *text = NULL;
    size_t len = 0;
    int64_t keys[2];
    size_t nkeys = push_keys(to, keys);
    for (size_t i = 0; i < nkeys; i++) {
        struct idlist_link *next;
        for (struct idlist_link *x = idlists_first(&a->subscribers[to->topic], keys[i]); x;
             x = next) {
            next = x->next;
            struct ws_client *ws = ((struct api_session *)x->owner)->ws;
            if (!session_receives(a, ws, to, gp_territory))
                continue;
            if (!text) {
                /* Written once, for the first subscriber that receives it. */
                json_t *data = views_push(&a->dispatch->store, to, p);
                json_t *msg = data ? snp_proto_push(snp_topic_name(to->topic), event, data) : NULL;
                text = msg ? jsonout_dumps(msg, 10, &len) : NULL;
                json_decref(msg);
                if (!text)
                    return;
            }
            server_ws_send(ws, text, len);
            a->pushes++;
        }
    }
    free(text);
}

/* --- revocations and expiry ------------------------------------------------------- */

void api_sweep(struct api *a, int idle_timeout_s)
{
    if (!a->server)
        return;
    server_sweep(a->server, idle_timeout_s);
    uint64_t now = uv_now(a->server->loop);
    uint64_t auth_ms = (uint64_t)snp_proto_limits()->auth_timeout_s * 1000;
    for (struct ws_client *ws = a->server->clients; ws; ws = ws->next) {
        struct api_session *s = ws->session;
        if (!s || ws->state != WS_OPEN)
            continue;
        if (!s->authenticated) {
            if (now - ws->opened_ms >= auth_ms)
                server_ws_close(ws, 1008, "authentication timeout");
            continue;
        }
        if (session_expired(s)) {
            s->authenticated = false;
            (void)session_set_topics(s, 0);
            server_ws_close_after_flush(ws, 1008, "token expired");
        }
    }
}

void api_token_revoked(void *ctx, int64_t id)
{
    struct api *a = ctx;
    auth_forget(&a->auth, id);
    if (!a->server)
        return;
    for (struct ws_client *ws = a->server->clients; ws; ws = ws->next) {
        struct api_session *s = ws->session;
        if (!s || !s->authenticated || s->caller.token_id != id)
            continue;
        s->authenticated = false;
        (void)session_set_topics(s, 0);
        server_ws_close_after_flush(ws, 1008, "token revoked");
    }
}
