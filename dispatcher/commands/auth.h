/* Authentication of bearer tokens, with a small bounded in-memory cache and
 * a throttle on failures.
 *
 * A presented secret is hashed (SHA-256) and looked up in api_token.  A
 * token found there (valid, expired or revoked) is cached for
 * AUTH_CACHE_SECONDS so that a busy client does not cost a database round
 * trip per request; the cache holds at most `capacity` tokens and evicts
 * with the clock algorithm (a token used since the hand last passed gets a
 * second chance).  Unknown tokens are never cached: each costs a look-up,
 * and the look-ups are throttled instead.  Every address has a bucket of
 * `burst` failed authentications, refilled at `per_min` a minute; while it
 * is empty, a token that is not in the cache is answered `rate_limited`
 * without a database query (cached tokens are still answered).  The
 * buckets are bounded too (AUTH_MAX_ADDRESSES).  A token presented again
 * while its look-up is under way waits for that look-up.
 *
 * A revocation is announced by the database to every snpd process
 * (auth_forget); an expiry is checked on every use against the cached
 * instant.
 */
#ifndef SNP_AUTH_H
#define SNP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/idmap.h"
#include "dispatcher/db/db.h"
#include "dispatcher/core/dispatch.h"
#include "protocol/codec.h"

#define AUTH_CACHE_SECONDS 30
#define AUTH_MAX_ADDRESSES 4096

struct auth_entry;

struct auth_stats {
    uint64_t lookups;   /* database queries */
    uint64_t failures;  /* tokens refused (unknown, expired, revoked) */
    uint64_t throttled; /* answered rate_limited without a query */
    uint64_t evictions; /* cached tokens dropped to make room */
};

struct auth {
    struct db *db;
    struct auth_entry *entries; /* `capacity` slots, allocated at the first use */
    size_t capacity;
    size_t used;           /* slots filled so far, from the start */
    size_t hand;           /* the clock's hand */
    struct idmap cache;    /* first 8 bytes of the hash -> its slot in `entries` */
    struct idmap inflight; /* first 8 bytes of the hash -> its look-up under way */
    struct idmap failures; /* peer address -> struct token_bucket (ratelimit.h) */
    double burst;
    double per_ms;
    struct auth_stats stats;
};

/* Called once with the caller (err->code == SNP_PROTO_OK) or the reason the
 * token is refused (unauthenticated, token_expired, token_revoked,
 * rate_limited, unavailable). */
typedef void (*auth_cb)(void *arg, const struct caller *caller, const char *organisation_name,
                        int64_t expires_at, const struct snp_proto_error *err);

/* Prepares `a`: at most `capacity` tokens cached, `burst` failures at once
 * from one address, refilled at `per_min` a minute. */
void auth_init(struct auth *a, struct db *db, int capacity, int burst, int per_min);
void auth_free(struct auth *a);

/* Authenticates `secret` (may be NULL or empty) presented from `peer` (an
 * IPv4 address in host order); calls `cb`, possibly before returning.
 * `now_ms` is the loop's clock, for the failure buckets. */
void auth_check(struct auth *a, const char *secret, uint32_t peer, uint64_t now_ms, auth_cb cb,
                void *arg);

/* Like auth_check, for an account known by its stored hash rather than a
 * presented secret (a verified client certificate's, token_client_cert_hash). */
void auth_check_hash(struct auth *a, const uint8_t hash[DIGEST_SHA256_LEN], uint32_t peer,
                     uint64_t now_ms, auth_cb cb, void *arg);

/* Token `id` was revoked: refused from now on, without waiting for the
 * cache to expire. */
void auth_forget(struct auth *a, int64_t id);

#endif
