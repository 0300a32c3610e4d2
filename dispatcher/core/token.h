/* Bearer tokens: drawing a secret and hashing it.
 *
 * A secret looks like "snp_" followed by 43 base64url characters (32 random
 * bytes).  The database keeps only its SHA-256 (api_token.secret_sha256); the
 * secret itself is printed once, when the token is created.
 */
#ifndef SNP_TOKEN_H
#define SNP_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/digest.h"

#define TOKEN_PREFIX      "snp_"
#define TOKEN_SECRET_LEN  47 /* "snp_" + 43 characters */
#define TOKEN_SECRET_SIZE 48 /* with the NUL */

/* The roles a token may carry, in the order of the api_token CHECK constraint. */
enum token_role {
    ROLE_GP = 0,
    ROLE_PHARMACY,
    ROLE_EMERGENCY,
    ROLE_SAS,
    ROLE_PROFESSIONAL,
    ROLE_DESK,
    ROLE_COORDINATOR,
    ROLE_ADMIN,
    ROLE_PLATFORM,  /* the national SAS platform: FHIR slot search only (docs/fhir.md) */
    ROLE_RECEPTION, /* a site's reception desk: its bookings and shifts (docs/rota.md) */
    ROLE_COUNT
};

/* The role's name as used in SQL, the protocol and the CLI ("gp", "sas"...). */
const char *token_role_name(enum token_role role);

/* Parses a role name; returns false for anything unknown. */
bool token_role_parse(const char *name, enum token_role *out) __attribute__((warn_unused_result));

/* True for the roles that create requests on behalf of an organisation. */
bool token_role_is_requester(enum token_role role);

/* Draws a new secret from the system's random source into `secret` and
 * writes its SHA-256 into `hash`.  Returns false if no randomness was
 * available (nothing is written then). */
bool token_generate(char secret[TOKEN_SECRET_SIZE], uint8_t hash[DIGEST_SHA256_LEN])
    __attribute__((warn_unused_result));

/* The hash under which an account authenticated by a client certificate
 * (the FHIR platform's, docs/fhir.md "Who may call it") is stored: SHA-256
 * of "snpd-client-cert-cn:" and the certificate's common name `cn`.  No
 * presented secret can have it: token_hash accepts only "snp_" secrets. */
void token_client_cert_hash(const char *cn, uint8_t hash[DIGEST_SHA256_LEN]);

/* Hashes a presented secret.  Returns false when it is not shaped like one
 * of ours (wrong prefix, length or alphabet), without touching `hash`. */
bool token_hash(const char *secret, size_t len, uint8_t hash[DIGEST_SHA256_LEN])
    __attribute__((warn_unused_result));

#endif
