#include "dispatcher/commands/manage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/log.h"
#include "dispatcher/commands/dbcall.h"
#include "dispatcher/commands/reads.h"
#include "dispatcher/core/token.h"
#include "sql_queries.h"

/* One management operation waiting for the database (or the store). */
struct manage_call {
    struct db_call call; /* first: the shared context (dbcall.h) */
    struct caller caller;
    json_t *result;                 /* the answer, once the database gave it */
    char secret[TOKEN_SECRET_SIZE]; /* token.create: shown once, in the answer */
};

static struct manage_call *call_new(struct dispatch *d, const struct caller *c, answer_cb cb,
                                    void *arg)
{
    struct manage_call *m = db_call_new(d, sizeof(*m), "manage", cb, arg);
    if (m)
        m->caller = *c;
    return m;
}

/* Answers with m->result on success; db_call_finish zeroes the context,
 * so the secret does not outlive the answer. */
static void call_finish(struct manage_call *m, enum snp_proto_code err, const char *message,
                        const char *field)
{
    json_t *result = m->result;
    m->result = NULL;
    if (err != SNP_PROTO_OK) {
        json_decref(result);
        result = NULL;
    }
    db_call_finish(&m->call, err, message, field, result);
}

/* Answers a failed database call and returns true; parses the JSON text of
 * a successful one into m->result and returns false. */
static bool call_failed(struct manage_call *m, enum db_status st, const PGresult *res)
{
    json_t *j = db_call_result(&m->call, st, res);
    if (!j)
        return true; /* answered, and m freed */
    m->result = j;
    return false;
}

/* --- territory.import ------------------------------------------------------------- */

static void on_import_reloaded(struct store *st, bool ok, void *arg)
{
    (void)st;
    struct manage_call *m = arg;
    /* Committed either way: a failed reload is retried by housekeeping. */
    if (!ok)
        log_warn("manage", "territory %s: import committed, reference reload failed",
                 m->caller.territory);
    call_finish(m, SNP_PROTO_OK, NULL, NULL);
}

static void on_import(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (call_failed(m, st, res))
        return;
    json_t *n = json_object_get(m->result, "created");
    log_info("manage",
             "territory %s: import by %s (created %lld communes, %lld sites, %lld "
             "practitioners, %lld organisations)",
             m->caller.territory, m->caller.actor,
             (long long)json_integer_value(json_object_get(n, "communes")),
             (long long)json_integer_value(json_object_get(n, "sites")),
             (long long)json_integer_value(json_object_get(n, "practitioners")),
             (long long)json_integer_value(json_object_get(n, "organisations")));
    if (m->call.d->closed) {
        call_finish(m, SNP_PROTO_OK, NULL, NULL);
        return;
    }
    store_reload_reference(&m->call.d->store, m->call.d->db, on_import_reloaded, m);
}

void manage_territory_import(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                             void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    char *request = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!request) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    const char *params[] = {c->territory, c->actor, token_role_name(c->role), request};
    db_query(d->db, sql_text[SQL_TERRITORY_IMPORT], 4, params, on_import, m);
    free(request);
}

/* --- tokens ----------------------------------------------------------------------- */

static void on_token_created(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (call_failed(m, st, res))
        return;
    json_t *token = m->result;
    m->result = json_pack("{s:s, s:o}", "secret", m->secret, "token", token);
    if (!m->result) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    log_info("manage", "territory %s: token %lld (%s) created by %s", m->caller.territory,
             (long long)json_integer_value(json_object_get(token, "token_id")),
             json_string_value(json_object_get(token, "role")), m->caller.actor);
    call_finish(m, SNP_PROTO_OK, NULL, NULL);
}

void manage_token_create(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    uint8_t hash[DIGEST_SHA256_LEN];
    char hex[DIGEST_SHA256_HEX_LEN];
    if (!token_generate(m->secret, hash)) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "no randomness available", NULL);
        return;
    }
    char *request = json_dumps(data, JSON_COMPACT);
    if (!request) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    digest_hex(hash, sizeof(hash), hex);
    const char *params[] = {c->territory, c->actor, token_role_name(c->role), hex, request};
    db_query(d->db, sql_text[SQL_TOKEN_ISSUE], 5, params, on_token_created, m);
    free(request);
}

/* A read whose answer is the JSON text the database built (token.list,
 * push.list). */
static void on_json_answer(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (!call_failed(m, st, res))
        call_finish(m, SNP_PROTO_OK, NULL, NULL);
}

/* Runs `query` ($1 the caller's territory, $2 the request's optional
 * "state") and answers with the JSON it returns. */
static void list_by_state(struct dispatch *d, const struct caller *c, json_t *data,
                          enum sql_id query, answer_cb cb, void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    const char *params[] = {c->territory, json_string_value(json_object_get(data, "state"))};
    db_query(d->db, sql_text[query], 2, params, on_json_answer, m);
}

void manage_token_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    list_by_state(d, c, data, SQL_TOKEN_LIST_TERRITORY, cb, arg);
}

static void on_token_revoked(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (call_failed(m, st, res))
        return;
    struct dispatch *d = m->call.d;
    json_int_t id = json_integer_value(json_object_get(m->result, "token_id"));
    log_info("manage", "territory %s: token %lld revoked by %s", m->caller.territory, (long long)id,
             m->caller.actor);
    /* Answer first: a caller revoking its own token gets the answer before
     * its connection is closed. */
    call_finish(m, SNP_PROTO_OK, NULL, NULL);
    if (!d->closed && d->hooks.token_revoked)
        d->hooks.token_revoked(d->hooks.ctx, id);
}

/* Runs `query` on the object whose id is member `key` of the request: $1
 * the caller's territory, $2 its actor, $3 its role, $4 the id; `done`
 * answers. */
static void act_on_id(struct dispatch *d, const struct caller *c, json_t *data, const char *key,
                      enum sql_id query, db_result_cb done, answer_cb cb, void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(data, key)));
    const char *params[] = {c->territory, c->actor, token_role_name(c->role), id};
    db_query(d->db, sql_text[query], 4, params, done, m);
}

void manage_token_revoke(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    act_on_id(d, c, data, "token_id", SQL_TOKEN_REVOKE_ONE, on_token_revoked, cb, arg);
}

/* --- call.record ------------------------------------------------------------------ */

static void on_call_recorded(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (call_failed(m, st, res))
        return;
    bool created = json_is_true(json_object_get(m->result, "created"));
    json_t *call = json_incref(json_object_get(m->result, "call"));
    json_decref(m->result);
    m->result = call;
    if (!call) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "unreadable answer from the database", NULL);
        return;
    }
    call_finish(m, SNP_PROTO_OK, created ? NULL : ANSWER_REPEAT, NULL);
}

void manage_call_record(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    char org[24], request[24];
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    json_t *rq = json_object_get(data, "request_id");
    snprintf(request, sizeof(request), "%lld", (long long)json_integer_value(rq));
    const char *params[] = {c->territory,
                            org,
                            c->actor,
                            json_string_value(json_object_get(data, "outcome")),
                            rq ? request : NULL,
                            json_string_value(json_object_get(data, "client_ref")),
                            json_string_value(json_object_get(data, "regulator_id"))};
    db_query(d->db, sql_text[SQL_CALL_RECORD], 7, params, on_call_recorded, m);
}

/* --- push.list -------------------------------------------------------------------- */

void manage_push_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                      void *arg)
{
    list_by_state(d, c, data, SQL_PUSH_LIST, cb, arg);
}

void manage_push_resend(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    act_on_id(d, c, data, "push_id", SQL_PUSH_RESEND, on_json_answer, cb, arg);
}

/* --- territory.settings.update ------------------------------------------------------ */

static void on_settings(void *arg, enum db_status st, const PGresult *res)
{
    struct manage_call *m = arg;
    if (db_call_failed(&m->call, st, res))
        return;
    struct dispatch *d = m->call.d;
    struct territory *t = store_territory(&d->store, m->caller.territory);
    if (t && !store_parse_settings(PQgetvalue(res, 0, 0), &t->settings))
        log_warn("manage", "territory %s: settings saved but not understood", t->id);
    /* The answer is the territory as territory.get shows it. */
    struct caller c = m->caller;
    answer_cb cb = m->call.cb;
    void *cb_arg = m->call.arg;
    db_call_release(&m->call);
    reads_territory_get(d, &c, NULL, cb, cb_arg);
}

void manage_settings_update(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                            void *arg)
{
    struct manage_call *m = call_new(d, c, cb, arg);
    if (!m)
        return;
    char *patch = json_dumps(data, JSON_COMPACT);
    if (!patch) {
        call_finish(m, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    const char *params[] = {c->territory, patch, c->actor};
    db_query(d->db, sql_text[SQL_SETTINGS_UPDATE], 3, params, on_settings, m);
    free(patch);
}
