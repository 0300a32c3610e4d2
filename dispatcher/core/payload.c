#include "dispatcher/core/payload.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static bool hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Reads the string whose opening quote is just before `s` into `*out`,
 * NUL-terminated, and moves `*out` past it.  Returns what follows the
 * closing quote, or NULL when json_loads would refuse it.  What it writes is
 * never longer than what it reads, the quotes included. */
static const char *read_string(const char *s, char **out)
{
    char *o = *out;
    for (;;) {
        unsigned char c = (unsigned char)*s++;
        if (c == '"')
            break;
        if (c < 0x20) /* a control character, or the end of the text */
            return NULL;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        char e = *s++;
        uint32_t cp, low;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *o++ = e;
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            if (!hex4(s, &cp))
                return NULL;
            s += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &low) || low < 0xdc00 ||
                    low > 0xdfff)
                    return NULL;
                s += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                return NULL; /* a lone low surrogate; a NUL */
            }
            o = put_utf8(o, cp);
            break;
        default:
            return NULL;
        }
    }
    *o++ = '\0';
    *out = o;
    return s;
}

/* Reads a number as JSON writes it: an integer into `f`, or a real. */
static const char *read_number(const char *s, struct payload_field *f)
{
    const char *start = s;
    bool real = false;
    if (*s == '-')
        s++;
    if (*s == '0') {
        s++; /* a digit after it is refused by the caller, as no ',' or '}' */
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9')
            s++;
    } else {
        return NULL;
    }
    if (*s == '.') {
        real = true;
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        real = true;
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    errno = 0;
    if (real) {
        double v = strtod(start, NULL);
        if (errno == ERANGE && isinf(v))
            return NULL; /* jansson: real number overflow */
        f->type = PAYLOAD_REAL;
    } else {
        long long v = strtoll(start, NULL, 10);
        if (errno == ERANGE)
            return NULL; /* jansson: too big integer */
        f->type = PAYLOAD_INTEGER;
        f->integer = v;
    }
    return s;
}

static const char *read_value(const char *s, struct payload_field *f, char **out)
{
    if (*s == '"') {
        f->type = PAYLOAD_STRING;
        f->str = *out;
        return read_string(s + 1, out);
    }
    if (strncmp(s, "true", 4) == 0) {
        f->type = PAYLOAD_TRUE;
        return s + 4;
    }
    if (strncmp(s, "false", 5) == 0) {
        f->type = PAYLOAD_FALSE;
        return s + 5;
    }
    if (strncmp(s, "null", 4) == 0) {
        f->type = PAYLOAD_NULL;
        return s + 4;
    }
    return read_number(s, f); /* NULL for '{', '[' and anything else */
}

/* Adds `f`, or puts it in the place of an earlier member of the same name:
 * json_loads keeps the last of repeated keys, and counts each name once.
 * False past PAYLOAD_MAX_FIELDS names. */
static bool keep_field(struct payload *p, const struct payload_field *f)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->fields[i].key[0] == f->key[0] && strcmp(p->fields[i].key, f->key) == 0) {
            p->fields[i] = *f;
            return true;
        }
    if (p->n == PAYLOAD_MAX_FIELDS)
        return false;
    p->fields[p->n++] = *f;
    return true;
}

static bool read_object(struct payload *p, const char *s)
{
    char *out = p->text;
    s = skip_blanks(s);
    if (*s++ != '{')
        return false;
    s = skip_blanks(s);
    if (*s == '}')
        return *skip_blanks(s + 1) == '\0';
    for (;;) {
        if (*s != '"')
            return false;
        struct payload_field f = {.key = out};
        s = read_string(s + 1, &out);
        if (!s)
            return false;
        s = skip_blanks(s);
        if (*s++ != ':')
            return false;
        s = read_value(skip_blanks(s), &f, &out);
        if (!s || !keep_field(p, &f))
            return false;
        s = skip_blanks(s);
        if (*s == '}')
            return *skip_blanks(s + 1) == '\0';
        if (*s++ != ',')
            return false;
        s = skip_blanks(s);
    }
}

bool payload_read(struct payload *p, const char *text)
{
    p->n = 0;
    size_t len = strlen(text);
    p->text = len < sizeof(p->local) ? p->local : malloc(len + 1);
    if (!p->text)
        return false;
    if (!read_object(p, text)) {
        p->n = 0;
        return false;
    }
    return true;
}

/* The field named `key` (one per name: keep_field). */
static const struct payload_field *field(const struct payload *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->fields[i].key, key) == 0)
            return &p->fields[i];
    return NULL;
}

const char *payload_str(const struct payload *p, const char *key)
{
    const struct payload_field *f = field(p, key);
    return f && f->type == PAYLOAD_STRING ? f->str : NULL;
}

int64_t payload_int(const struct payload *p, const char *key)
{
    const struct payload_field *f = field(p, key);
    return f && f->type == PAYLOAD_INTEGER ? f->integer : 0;
}

bool payload_true(const struct payload *p, const char *key)
{
    const struct payload_field *f = field(p, key);
    return f && f->type == PAYLOAD_TRUE;
}

void payload_free(struct payload *p)
{
    if (p->text && p->text != p->local)
        free(p->text);
    p->text = NULL;
    p->n = 0;
}
