#include "base/digest.h"

#include <string.h>

#include <openssl/sha.h>

void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
    SHA256(data, len, out);
}

void digest_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void digest_sha256_hex(const char *text, char out[DIGEST_SHA256_HEX_LEN])
{
    uint8_t d[DIGEST_SHA256_LEN];
    digest_sha256(text, strlen(text), d);
    digest_hex(d, sizeof(d), out);
}
