#include "dispatcher/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/log.h"
#include "dispatcher/timeutil.h"
#include "sql_queries.h"

struct auth_entry {
    uint8_t hash[DIGEST_SHA256_LEN];
    int64_t cached_at;
    bool known;
    bool revoked;
    int64_t expires_at; /* 0: never */
    struct caller caller;
    char organisation_name[128];
};

struct auth_lookup {
    struct auth *a;
    uint8_t hash[DIGEST_SHA256_LEN];
    auth_cb cb;
    void *arg;
};

void auth_init(struct auth *a, struct db *db)
{
    memset(a, 0, sizeof(*a));
    a->db = db;
}

void auth_free(struct auth *a)
{
    for (size_t i = 0; i < a->cache.cap; i++)
        free(a->cache.buckets[i].value);
    idmap_free(&a->cache);
}

static int64_t cache_key(const uint8_t *hash)
{
    int64_t k;
    memcpy(&k, hash, sizeof(k));
    return k;
}

static void answer(const struct auth_entry *e, auth_cb cb, void *arg)
{
    struct snp_proto_error err = {0};
    if (!e->known) {
        snp_proto_error_set(&err, SNP_PROTO_E_UNAUTHENTICATED, NULL, "unknown token");
    } else if (e->revoked) {
        snp_proto_error_set(&err, SNP_PROTO_E_TOKEN_REVOKED, NULL, "this token was revoked");
    } else if (e->expires_at && e->expires_at <= timeutil_now()) {
        snp_proto_error_set(&err, SNP_PROTO_E_TOKEN_EXPIRED, NULL, "this token has expired");
    } else {
        cb(arg, &e->caller, e->organisation_name, e->expires_at, &err);
        return;
    }
    cb(arg, NULL, NULL, 0, &err);
}

static void on_lookup(void *arg, enum db_status st, const PGresult *res)
{
    struct auth_lookup *l = arg;
    if (st != DB_OK) {
        struct snp_proto_error err = {0};
        snp_proto_error_set(&err, SNP_PROTO_E_UNAVAILABLE, NULL,
                            "the database is unavailable; retry");
        l->cb(l->arg, NULL, NULL, 0, &err);
        free(l);
        return;
    }
    struct auth_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        struct snp_proto_error err = {0};
        snp_proto_error_set(&err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
        l->cb(l->arg, NULL, NULL, 0, &err);
        free(l);
        return;
    }
    memcpy(e->hash, l->hash, sizeof(e->hash));
    e->cached_at = timeutil_now();
    e->known = PQntuples(res) == 1;
    if (e->known) {
        struct caller *c = &e->caller;
        c->token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!token_role_parse(PQgetvalue(res, 0, 1), &c->role))
            e->known = false;
        snprintf(c->territory, sizeof(c->territory), "%s", PQgetvalue(res, 0, 2));
        snprintf(c->rpps, sizeof(c->rpps), "%s", PQgetvalue(res, 0, 3));
        c->organisation_id = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        snprintf(e->organisation_name, sizeof(e->organisation_name), "%s", PQgetvalue(res, 0, 5));
        e->revoked = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
        e->expires_at = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
        snprintf(c->actor, sizeof(c->actor), "token:%lld", (long long)c->token_id);
    }
    struct auth_entry *old = idmap_get(&l->a->cache, cache_key(e->hash));
    if (!idmap_put(&l->a->cache, cache_key(e->hash), e)) {
        answer(e, l->cb, l->arg);
        free(e);
    } else {
        free(old != e ? old : NULL);
        answer(e, l->cb, l->arg);
    }
    free(l);
}

void auth_check(struct auth *a, const char *secret, auth_cb cb, void *arg)
{
    struct snp_proto_error err = {0};
    uint8_t hash[DIGEST_SHA256_LEN];
    if (!secret || !*secret) {
        snp_proto_error_set(&err, SNP_PROTO_E_UNAUTHENTICATED, NULL, "a bearer token is required");
        cb(arg, NULL, NULL, 0, &err);
        return;
    }
    if (!token_hash(secret, strlen(secret), hash)) {
        snp_proto_error_set(&err, SNP_PROTO_E_UNAUTHENTICATED, NULL, "unknown token");
        cb(arg, NULL, NULL, 0, &err);
        return;
    }
    struct auth_entry *e = idmap_get(&a->cache, cache_key(hash));
    if (e && memcmp(e->hash, hash, sizeof(hash)) == 0 &&
        timeutil_now() - e->cached_at < AUTH_CACHE_SECONDS) {
        answer(e, cb, arg);
        return;
    }
    struct auth_lookup *l = calloc(1, sizeof(*l));
    if (!l) {
        snp_proto_error_set(&err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
        cb(arg, NULL, NULL, 0, &err);
        return;
    }
    l->a = a;
    memcpy(l->hash, hash, sizeof(hash));
    l->cb = cb;
    l->arg = arg;
    char hex[DIGEST_SHA256_HEX_LEN];
    digest_hex(hash, sizeof(hash), hex);
    const char *params[] = {hex};
    db_query(a->db, sql_text[SQL_TOKEN_LOOKUP], 1, params, on_lookup, l);
}

void auth_forget(struct auth *a, int64_t id)
{
    for (size_t i = 0; i < a->cache.cap; i++) {
        struct auth_entry *e = a->cache.buckets[i].value;
        if (e && e->known && e->caller.token_id == id)
            e->revoked = true;
    }
}
