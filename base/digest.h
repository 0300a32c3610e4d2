/* SHA-256 and hexadecimal helpers (libcrypto underneath). */
#ifndef SNP_DIGEST_H
#define SNP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN     32
#define DIGEST_SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

/* Writes the SHA-256 of `len` bytes at `data` into `out`. */
void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);

/* Writes `len` bytes as lowercase hexadecimal and a NUL into `out`, which
 * must hold 2 * len + 1 bytes. */
void digest_hex(const uint8_t *bytes, size_t len, char *out);

/* SHA-256 of a NUL-terminated string, as 64 lowercase hex digits. */
void digest_sha256_hex(const char *text, char out[DIGEST_SHA256_HEX_LEN]);

#endif
