/* Authentication of bearer tokens, with a small in-memory cache.
 *
 * A presented secret is hashed (SHA-256) and looked up in api_token; the
 * answer (the caller, or why the token is refused) is cached for
 * AUTH_CACHE_SECONDS so that a busy HTTP client does not cost a database
 * round trip per request.  A revocation is announced by the database to
 * every snpd process (auth_forget); an expiry is checked on every use
 * against the cached instant.
 */
#ifndef SNP_AUTH_H
#define SNP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "dispatcher/db.h"
#include "dispatcher/dispatch.h"
#include "dispatcher/idmap.h"
#include "protocol/codec.h"

#define AUTH_CACHE_SECONDS 30

struct auth {
    struct db *db;
    struct idmap cache; /* first 8 bytes of the hash -> struct auth_entry */
};

/* Called once with the caller (err->code == SNP_PROTO_OK) or the reason the
 * token is refused (unauthenticated, token_expired, token_revoked,
 * unavailable). */
typedef void (*auth_cb)(void *arg, const struct caller *caller, const char *organisation_name,
                        int64_t expires_at, const struct snp_proto_error *err);

void auth_init(struct auth *a, struct db *db);
void auth_free(struct auth *a);

/* Authenticates `secret` (may be NULL or empty); calls `cb`, possibly
 * before returning. */
void auth_check(struct auth *a, const char *secret, auth_cb cb, void *arg);

/* Token `id` was revoked: refused from now on, without waiting for the
 * cache to expire. */
void auth_forget(struct auth *a, int64_t id);

#endif
