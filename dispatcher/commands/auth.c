#include "dispatcher/commands/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/net/ratelimit.h"
#include "sql_queries.h"

/* A token known to the database, as cached. */
struct auth_entry {
    uint8_t hash[DIGEST_SHA256_LEN];
    bool filled;     /* the slot holds a token */
    bool referenced; /* used since the clock's hand last passed */
    bool revoked;
    int64_t cached_at;
    int64_t expires_at; /* 0: never */
    struct caller caller;
    char organisation_name[128];
};

/* A caller waiting for a look-up. */
struct auth_waiter {
    struct auth_waiter *next;
    uint32_t peer;
    auth_cb cb;
    void *arg;
};

/* One token's look-up in the database, and everyone waiting for it: the
 * same token presented again before the answer (many requests of a client
 * that just started) costs no second query. */
struct auth_lookup {
    struct auth *a;
    uint8_t hash[DIGEST_SHA256_LEN];
    bool registered; /* in a->inflight (not when another hash holds its key) */
    struct auth_waiter *waiters;
};

void auth_init(struct auth *a, struct db *db, int capacity, int burst, int per_min)
{
    memset(a, 0, sizeof(*a));
    a->db = db;
    a->capacity = capacity > 0 ? (size_t)capacity : 1;
    a->burst = burst > 0 ? burst : 1;
    a->per_ms = (per_min > 0 ? per_min : 1) / 60000.0;
}

void auth_free(struct auth *a)
{
    free(a->entries);
    a->entries = NULL;
    idmap_free(&a->cache);
    idmap_free(&a->inflight); /* the look-ups themselves end with their queries */
    for (size_t i = 0; i < a->failures.cap; i++)
        free(a->failures.buckets[i].value);
    idmap_free(&a->failures);
}

static int64_t cache_key(const uint8_t *hash)
{
    int64_t k;
    memcpy(&k, hash, sizeof(k));
    return k;
}

/* --- the failure buckets ---------------------------------------------------------- */

/* Makes room for one more address: drops the buckets that have refilled
 * (their addresses have not failed for a while, and a fresh bucket is the
 * same as theirs), and if none has, any one. */
static void buckets_make_room(struct auth *a, uint64_t now_ms)
{
    int64_t drop[64];
    size_t ndrop = 0;
    for (size_t i = 0; i < a->failures.cap && ndrop < 64; i++) {
        struct token_bucket *b = a->failures.buckets[i].value;
        if (!b)
            continue;
        bucket_refill(b, a->burst, a->per_ms, now_ms);
        if (b->tokens >= a->burst)
            drop[ndrop++] = a->failures.buckets[i].key;
    }
    for (size_t i = 0; ndrop == 0 && i < a->failures.cap; i++)
        if (a->failures.buckets[i].value)
            drop[ndrop++] = a->failures.buckets[i].key;
    for (size_t i = 0; i < ndrop; i++)
        free(idmap_del(&a->failures, drop[i]));
}

/* The bucket of `peer`, refilled up to now; NULL when memory is short. */
static struct token_bucket *bucket_of(struct auth *a, uint32_t peer, uint64_t now_ms)
{
    struct token_bucket *b = idmap_get(&a->failures, peer);
    if (!b) {
        if (a->failures.len >= AUTH_MAX_ADDRESSES)
            buckets_make_room(a, now_ms);
        b = malloc(sizeof(*b));
        if (!b || !idmap_put(&a->failures, peer, b)) {
            free(b);
            return NULL;
        }
        bucket_fill(b, a->burst, now_ms);
    }
    bucket_refill(b, a->burst, a->per_ms, now_ms);
    return b;
}

/* --- the cache -------------------------------------------------------------------- */

static struct auth_entry *cache_find(struct auth *a, const uint8_t *hash)
{
    struct auth_entry *e = idmap_get(&a->cache, cache_key(hash));
    return e && memcmp(e->hash, hash, DIGEST_SHA256_LEN) == 0 ? e : NULL;
}

/* A slot for `hash`: its own, a free one, or the one the clock's hand
 * evicts.  Returns NULL when memory is short. */
static struct auth_entry *cache_slot(struct auth *a, const uint8_t *hash)
{
    /* The same token again, or one whose hash begins alike, which it
     * replaces. */
    struct auth_entry *e = idmap_get(&a->cache, cache_key(hash));
    if (e)
        goto fill;
    if (!a->entries) {
        a->entries = calloc(a->capacity, sizeof(*a->entries));
        if (!a->entries)
            return NULL;
    }
    if (a->used < a->capacity) {
        e = &a->entries[a->used++];
    } else {
        /* Two turns at most: the first clears every referenced bit. */
        int64_t now = timeutil_now();
        for (size_t turns = 0; turns < 2 * a->capacity; turns++) {
            e = &a->entries[a->hand];
            a->hand = (a->hand + 1) % a->capacity;
            if (!e->referenced || now - e->cached_at >= AUTH_CACHE_SECONDS)
                break;
            e->referenced = false;
        }
        if (e->filled) {
            idmap_del(&a->cache, cache_key(e->hash));
            a->stats.evictions++;
        }
    }
fill:
    memset(e, 0, sizeof(*e));
    if (!idmap_put(&a->cache, cache_key(hash), e))
        return NULL; /* the slot stays empty */
    memcpy(e->hash, hash, DIGEST_SHA256_LEN);
    e->filled = true;
    return e;
}

static void answer(const struct auth_entry *e, auth_cb cb, void *arg)
{
    struct snp_proto_error err = {0};
    if (e->revoked) {
        snp_proto_error_set(&err, SNP_PROTO_E_TOKEN_REVOKED, NULL, "this token was revoked");
    } else if (e->expires_at && e->expires_at <= timeutil_now()) {
        snp_proto_error_set(&err, SNP_PROTO_E_TOKEN_EXPIRED, NULL, "this token has expired");
    } else {
        cb(arg, &e->caller, e->organisation_name, e->expires_at, &err);
        return;
    }
    cb(arg, NULL, NULL, 0, &err);
}

static void refuse(auth_cb cb, void *arg, enum snp_proto_code code, const char *message)
{
    struct snp_proto_error err = {0};
    snp_proto_error_set(&err, code, NULL, "%s", message);
    cb(arg, NULL, NULL, 0, &err);
}

/* The columns of token_lookup.sql that are read. */
enum lookup_col {
    LOOKUP_ID,
    LOOKUP_ROLE,
    LOOKUP_TERRITORY,
    LOOKUP_RPPS,
    LOOKUP_ORGANISATION,
    LOOKUP_ORGANISATION_NAME,
    LOOKUP_REVOKED,
    LOOKUP_EXPIRES_AT,
    LOOKUP_SITE,
    LOOKUP_NCOLS
};
static const char *const lookup_names[LOOKUP_NCOLS] = {
    [LOOKUP_ID] = "id",
    [LOOKUP_ROLE] = "role",
    [LOOKUP_TERRITORY] = "territory_id",
    [LOOKUP_RPPS] = "rpps",
    [LOOKUP_ORGANISATION] = "organisation_id",
    [LOOKUP_ORGANISATION_NAME] = "organisation_name",
    [LOOKUP_REVOKED] = "revoked",
    [LOOKUP_EXPIRES_AT] = "expires_at_epoch",
    [LOOKUP_SITE] = "site_id",
};

/* Reads the row of a known token (but its role), of columns `col`, into `e`. */
static void read_row(const PGresult *res, const int *col, struct auth_entry *e)
{
    struct caller *c = &e->caller;
    c->token_id = strtoll(PQgetvalue(res, 0, col[LOOKUP_ID]), NULL, 10);
    snprintf(c->territory, sizeof(c->territory), "%s", PQgetvalue(res, 0, col[LOOKUP_TERRITORY]));
    snprintf(c->rpps, sizeof(c->rpps), "%s", PQgetvalue(res, 0, col[LOOKUP_RPPS]));
    c->organisation_id = strtoll(PQgetvalue(res, 0, col[LOOKUP_ORGANISATION]), NULL, 10);
    snprintf(e->organisation_name, sizeof(e->organisation_name), "%s",
             PQgetvalue(res, 0, col[LOOKUP_ORGANISATION_NAME]));
    e->revoked = strcmp(PQgetvalue(res, 0, col[LOOKUP_REVOKED]), "t") == 0;
    e->expires_at = strtoll(PQgetvalue(res, 0, col[LOOKUP_EXPIRES_AT]), NULL, 10);
    c->site_id = strtoll(PQgetvalue(res, 0, col[LOOKUP_SITE]), NULL, 10);
    snprintf(c->actor, sizeof(c->actor), "token:%lld", (long long)c->token_id);
    e->cached_at = timeutil_now();
    e->referenced = true;
}

/* An unknown token was presented from `peer`: one attempt of its bucket is
 * spent. */
static void spend_attempt(struct auth *a, uint32_t peer)
{
    a->stats.failures++;
    struct token_bucket *b = idmap_get(&a->failures, peer);
    if (b)
        bucket_spend(b);
}

static void on_lookup(void *arg, enum db_status st, const PGresult *res)
{
    struct auth_lookup *l = arg;
    struct auth *a = l->a;
    if (l->registered)
        idmap_del(&a->inflight, cache_key(l->hash));
    /* The waiters' callbacks may authenticate again: the look-up is out of
     * the in-flight map before any is called. */
    struct auth_waiter *w = l->waiters;
    enum token_role role;
    int col[LOOKUP_NCOLS];
    if (st != DB_OK ||
        !db_cols_resolve(res, lookup_names, LOOKUP_NCOLS, col, sql_name[SQL_TOKEN_LOOKUP])) {
        for (; w; w = l->waiters) {
            l->waiters = w->next;
            refuse(w->cb, w->arg, SNP_PROTO_E_UNAVAILABLE, "the database is unavailable; retry");
            free(w);
        }
    } else if (PQntuples(res) != 1 ||
               !token_role_parse(PQgetvalue(res, 0, col[LOOKUP_ROLE]), &role)) {
        /* Unknown: not cached, and each waiter's address pays. */
        for (; w; w = l->waiters) {
            l->waiters = w->next;
            spend_attempt(a, w->peer);
            refuse(w->cb, w->arg, SNP_PROTO_E_UNAUTHENTICATED, "unknown token");
            free(w);
        }
    } else {
        struct auth_entry tmp = {0}, *e = cache_slot(a, l->hash);
        if (!e)
            e = &tmp; /* short of memory: answered, not cached */
        read_row(res, col, e);
        e->caller.role = role;
        /* The entry is copied: a callback may evict it from the cache. */
        struct auth_entry copy = *e;
        for (; w; w = l->waiters) {
            l->waiters = w->next;
            if (copy.revoked || (copy.expires_at && copy.expires_at <= timeutil_now()))
                a->stats.failures++;
            answer(&copy, w->cb, w->arg);
            free(w);
        }
    }
    free(l);
}

void auth_check(struct auth *a, const char *secret, uint32_t peer, uint64_t now_ms, auth_cb cb,
                void *arg)
{
    uint8_t hash[DIGEST_SHA256_LEN];
    if (!secret || !*secret) {
        refuse(cb, arg, SNP_PROTO_E_UNAUTHENTICATED, "a bearer token is required");
        return;
    }
    if (!token_hash(secret, strlen(secret), hash)) {
        a->stats.failures++;
        refuse(cb, arg, SNP_PROTO_E_UNAUTHENTICATED, "unknown token");
        return;
    }
    auth_check_hash(a, hash, peer, now_ms, cb, arg);
}

void auth_check_hash(struct auth *a, const uint8_t hash[DIGEST_SHA256_LEN], uint32_t peer,
                     uint64_t now_ms, auth_cb cb, void *arg)
{
    struct auth_entry *e = cache_find(a, hash);
    if (e && timeutil_now() - e->cached_at < AUTH_CACHE_SECONDS) {
        e->referenced = true;
        answer(e, cb, arg);
        return;
    }
    /* An address that presented too many unknown tokens lately waits
     * before another is looked up.  The attempt is spent when the answer
     * says unknown, so an address may go past its burst by the look-ups it
     * has in flight at once, which its connection limit bounds. */
    struct token_bucket *b = bucket_of(a, peer, now_ms);
    if (b && b->tokens < 1.0) {
        a->stats.throttled++;
        refuse(cb, arg, SNP_PROTO_E_RATE_LIMITED,
               "too many failed authentications from your address; slow down");
        return;
    }
    struct auth_waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        refuse(cb, arg, SNP_PROTO_E_INTERNAL, "out of memory");
        return;
    }
    w->peer = peer;
    w->cb = cb;
    w->arg = arg;
    struct auth_lookup *l = idmap_get(&a->inflight, cache_key(hash));
    if (l && memcmp(l->hash, hash, sizeof(l->hash)) == 0) {
        w->next = l->waiters;
        l->waiters = w;
        return;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        free(w);
        refuse(cb, arg, SNP_PROTO_E_INTERNAL, "out of memory");
        return;
    }
    l->a = a;
    memcpy(l->hash, hash, sizeof(l->hash));
    l->waiters = w;
    /* A look-up of another token whose hash begins alike keeps the key. */
    l->registered =
        !idmap_get(&a->inflight, cache_key(hash)) && idmap_put(&a->inflight, cache_key(hash), l);
    a->stats.lookups++;
    char hex[DIGEST_SHA256_HEX_LEN];
    digest_hex(hash, DIGEST_SHA256_LEN, hex);
    const char *params[] = {hex};
    db_query(a->db, sql_text[SQL_TOKEN_LOOKUP], 1, params, on_lookup, l);
}

void auth_forget(struct auth *a, int64_t id)
{
    for (size_t i = 0; i < a->used; i++) {
        struct auth_entry *e = &a->entries[i];
        if (e->filled && e->caller.token_id == id)
            e->revoked = true;
    }
}
