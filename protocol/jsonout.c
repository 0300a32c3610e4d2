#include "protocol/jsonout.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

#define MAX_DEPTH 2048

/* Appends to `o` straight when there is room (the usual case: the buffer
 * starts at 1 kB and doubles), through buf_append otherwise.  The final NUL
 * is written once, at the end. */
static inline void put(struct buf *o, const char *s, size_t n)
{
    if (o->len + n < o->cap) {
        memcpy(o->data + o->len, s, n);
        o->len += n;
    } else {
        buf_append(o, s, n);
    }
}

static inline void put_char(struct buf *o, char c)
{
    if (o->len + 1 < o->cap)
        o->data[o->len++] = c;
    else
        buf_append(o, &c, 1);
}

/* "%.*g", then ".0" when neither '.' nor an exponent shows it is a real,
 * and the exponent stripped of its '+' and leading zeros. */
static void put_real(struct buf *o, double v, int precision)
{
    char b[64];
    int n = snprintf(b, sizeof(b), "%.*g", precision, v);
    if (n <= 0 || (size_t)n >= sizeof(b) - 3) {
        o->failed = true;
        return;
    }
    char *e = memchr(b, 'e', (size_t)n);
    if (!e && !memchr(b, '.', (size_t)n)) {
        b[n++] = '.';
        b[n++] = '0';
    } else if (e) {
        char *digits = e + 1 + (e[1] == '-' || e[1] == '+');
        char *keep = e + 1 + (e[1] == '-'); /* where the exponent's digits go */
        while (*digits == '0' && digits[1] != '\0')
            digits++;
        size_t tail = (size_t)(b + n - digits);
        memmove(keep, digits, tail);
        n = (int)(keep + tail - b);
    }
    put(o, b, (size_t)n);
}

static void put_value(struct buf *o, const json_t *j, int precision, int depth)
{
    if (depth > MAX_DEPTH) {
        o->failed = true;
        return;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        put_char(o, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it && !o->failed;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                put_char(o, ',');
            first = false;
            buf_json_stringn(o, json_object_iter_key(it), json_object_iter_key_len(it));
            put_char(o, ':');
            put_value(o, json_object_iter_value(it), precision, depth + 1);
        }
        put_char(o, '}');
        return;
    }
    case JSON_ARRAY: {
        put_char(o, '[');
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n && !o->failed; i++) {
            if (i)
                put_char(o, ',');
            put_value(o, json_array_get(j, i), precision, depth + 1);
        }
        put_char(o, ']');
        return;
    }
    case JSON_STRING:
        buf_json_stringn(o, json_string_value(j), json_string_length(j));
        return;
    case JSON_INTEGER:
        buf_append_i64(o, json_integer_value(j));
        return;
    case JSON_REAL:
        put_real(o, json_real_value(j), precision);
        return;
    case JSON_TRUE:
        put(o, "true", 4);
        return;
    case JSON_FALSE:
        put(o, "false", 5);
        return;
    case JSON_NULL:
        put(o, "null", 4);
        return;
    }
    o->failed = true;
}

char *jsonout_dumps(const json_t *j, int precision, size_t *len)
{
    if (!j || precision < 0 || precision > 31)
        return NULL;
    struct buf o = {0};
    buf_reserve(&o, 1024);
    put_value(&o, j, precision ? precision : 17, 0);
    buf_append(&o, "", 0); /* the NUL */
    if (o.failed) {
        buf_free(&o);
        return NULL;
    }
    return buf_steal(&o, len);
}
