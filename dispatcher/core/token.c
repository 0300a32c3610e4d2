#include "dispatcher/core/token.h"

#include <string.h>

#include <openssl/rand.h>

static const char *const role_names[ROLE_COUNT] = {
    "gp",   "pharmacy",    "emergency", "sas",      "professional",
    "desk", "coordinator", "admin",     "platform", "reception",
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *token_role_name(enum token_role role)
{
    return role >= 0 && role < ROLE_COUNT ? role_names[role] : "?";
}

bool token_role_parse(const char *name, enum token_role *out)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (enum token_role)i;
            return true;
        }
    }
    return false;
}

bool token_role_is_requester(enum token_role role)
{
    return role >= ROLE_PHARMACY && role <= ROLE_DESK;
}

bool token_generate(char secret[TOKEN_SECRET_SIZE], uint8_t hash[DIGEST_SHA256_LEN])
{
    uint8_t raw[33];
    if (RAND_bytes(raw, 32) != 1)
        return false;
    raw[32] = 0;
    memcpy(secret, TOKEN_PREFIX, 4);
    /* 32 bytes make 43 base64url characters; the last group has 2 bytes. */
    size_t o = 4;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v =
            (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | (i + 2 < 33 ? raw[i + 2] : 0);
        secret[o++] = b64url[(v >> 18) & 63];
        secret[o++] = b64url[(v >> 12) & 63];
        secret[o++] = b64url[(v >> 6) & 63];
        if (o < TOKEN_SECRET_LEN)
            secret[o++] = b64url[v & 63];
    }
    secret[TOKEN_SECRET_LEN] = '\0';
    return token_hash(secret, TOKEN_SECRET_LEN, hash);
}

bool token_hash(const char *secret, size_t len, uint8_t hash[DIGEST_SHA256_LEN])
{
    if (len != TOKEN_SECRET_LEN || memcmp(secret, TOKEN_PREFIX, 4) != 0)
        return false;
    for (size_t i = 4; i < len; i++)
        if (!memchr(b64url, secret[i], sizeof(b64url) - 1))
            return false;
    digest_sha256(secret, len, hash);
    return true;
}

void token_client_cert_hash(const char *cn, uint8_t hash[DIGEST_SHA256_LEN])
{
    char text[128];
    int n = snprintf(text, sizeof(text), "snpd-client-cert-cn:%s", cn);
    digest_sha256(text, (size_t)(n < (int)sizeof(text) ? n : (int)sizeof(text) - 1), hash);
}
