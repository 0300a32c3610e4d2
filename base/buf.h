/* A growable byte buffer with a sticky failure flag (as PgBouncer's
 * PktBuf): appends after an allocation failure do nothing, and the owner
 * checks `failed` once before using the contents. */
#ifndef SNP_BUF_H
#define SNP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    bool failed;
};

/* Makes room for `extra` more bytes, so that the appends that follow do
 * not reallocate (and copy) the buffer as it grows.  Returns false, and sets
 * `failed`, when memory is short. */
bool buf_reserve(struct buf *b, size_t extra);

/* Appends `n` bytes. */
void buf_append(struct buf *b, const void *p, size_t n);

/* Appends `v` in decimal, without going through printf (hot loops). */
void buf_append_i64(struct buf *b, int64_t v);

/* Appends a formatted string. */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the `n` bytes of `s` (UTF-8, NULs allowed) as a JSON string
 * literal, quoted, escaped as jansson's json_dumps escapes (protocol/jsonout.c
 * writes the same bytes as it): '"' and '\\' with a backslash, \b \f \n \r
 * \t, the other control characters as \u00XX in capitals, nothing else. */
void buf_json_stringn(struct buf *b, const char *s, size_t n);

/* The same for a NUL-terminated `s`. */
void buf_json_string(struct buf *b, const char *s);

/* Frees the contents and resets the buffer to empty. */
void buf_free(struct buf *b);

/* Hands the contents over to the caller (to free()) and resets the buffer. */
char *buf_steal(struct buf *b, size_t *len);

#endif
