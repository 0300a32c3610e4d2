#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/core/payload.h"
#include "tests/support/rng.h"

/* The keys the tests ask about: snp_change's, and some odd ones. */
static const char *const keys[] = {"k", "id", "st", "h",  "x",       "r",  "c", "os",
                                   "q", "ox", "o",  "t",  "f",       "rp", "e", "",
                                   "é", "a\"b", "\xf0\x9f\x98\x80", "x y"};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Whether jansson's tree is an object of at most PAYLOAD_MAX_FIELDS scalar
 * members: what payload_read must read. */
static bool flat(const json_t *j)
{
    if (!json_is_object(j) || json_object_size(j) > PAYLOAD_MAX_FIELDS)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        if (json_is_object(v) || json_is_array(v))
            return false;
    }
    return true;
}

/* payload_read on `text` must say what json_loads says: the same fields,
 * read the same way, whenever it reads it; and read every flat object
 * jansson reads. */
static void agree(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    struct payload p;
    bool ok = payload_read(&p, text);
    if (j && flat(j))
        cr_assert(ok, "jansson reads a flat object that payload_read refuses: %s", text);
    if (ok) {
        cr_assert_not_null(j, "payload_read reads what jansson refuses: %s", text);
        for (size_t i = 0; i < NKEYS; i++) {
            json_t *v = json_object_get(j, keys[i]);
            const char *want = json_string_value(v), *got = payload_str(&p, keys[i]);
            cr_assert((want == NULL) == (got == NULL), "%s: key \"%s\": string %s, jansson's %s",
                      text, keys[i], got ? got : "NULL", want ? want : "NULL");
            if (want)
                cr_assert(json_string_length(v) == strlen(got) && strcmp(want, got) == 0,
                          "%s: key \"%s\": \"%s\", jansson's \"%s\"", text, keys[i], got, want);
            cr_assert_eq(payload_int(&p, keys[i]), json_integer_value(v), "%s: key \"%s\"", text,
                         keys[i]);
            cr_assert_eq(payload_true(&p, keys[i]), json_is_true(v), "%s: key \"%s\"", text,
                         keys[i]);
        }
    }
    payload_free(&p);
    json_decref(j);
}

static json_t *random_scalar(struct rng *g)
{
    static const char *const strings[] = {"s",     "held",      "booked", "bench-t", "",
                                          "b1-0-7", "a\"b\\c/d", "tab\there\n", "\x01\x1f",
                                          "é€😀",    "2026-12-07T18:00:00+01:00"};
    static const json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007};
    switch (rng_below(g, 6)) {
    case 0:
    case 1:
        return json_string(strings[rng_below(g, (int)(sizeof(strings) / sizeof(strings[0])))]);
    case 2:
        return json_integer(rng_below(g, 2) ? ints[rng_below(g, 7)] : (json_int_t)rng_next(g));
    case 3:
        return json_real((double)(int64_t)(rng_next(g) % 100000) / 7.0);
    case 4:
        return rng_below(g, 2) ? json_true() : json_false();
    default:
        return json_null();
    }
}

/* A flat object written as jansson writes it (compact, indented, escaped
 * to ASCII or not), or as PostgreSQL's json_build_object does ("k" : "s",
 * "id" : 5), keys repeated now and then. */
static char *random_text(struct rng *g)
{
    int n = rng_below(g, 12);
    int style = rng_below(g, 4);
    size_t flags = JSON_ENCODE_ANY | (style == 1 ? JSON_INDENT(1) : JSON_COMPACT) |
                   (style == 2 ? JSON_ENSURE_ASCII : 0);
    if (style == 3) {
        size_t cap = 4096, len = 0;
        char *out = malloc(cap);
        len += (size_t)snprintf(out, cap, "{");
        for (int i = 0; i < n; i++) {
            json_t *k = json_string(keys[rng_below(g, (int)NKEYS)]);
            json_t *v = random_scalar(g);
            char *ks = json_dumps(k, JSON_ENCODE_ANY), *vs = json_dumps(v, JSON_ENCODE_ANY);
            len += (size_t)snprintf(out + len, cap - len, "%s%s : %s", i ? ", " : "", ks, vs);
            free(ks);
            free(vs);
            json_decref(k);
            json_decref(v);
        }
        snprintf(out + len, cap - len, "}");
        return out;
    }
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, keys[rng_below(g, (int)NKEYS)], random_scalar(g));
    char *text = json_dumps(o, flags);
    json_decref(o);
    return text;
}

Test(payload, reads_what_jansson_reads_on_random_payloads)
{
    struct rng g;
    rng_seed(&g, 5);
    for (int round = 0; round < 5000; round++) {
        char *text = random_text(&g);
        agree(text);
        free(text);
    }
}

/* Whether `s` is valid UTF-8 (PostgreSQL's text always is: a payload that
 * is not cannot arrive, and payload_read does not check it). */
static bool utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        int more = *u < 0x80 ? 0 : (*u & 0xe0) == 0xc0 ? 1 : (*u & 0xf0) == 0xe0 ? 2
                                   : (*u & 0xf8) == 0xf0 ? 3 : -1;
        if (more < 0)
            return false;
        u++;
        for (; more > 0; more--, u++)
            if ((*u & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* Broken and odd payloads: read exactly when jansson reads them. */
Test(payload, refuses_what_jansson_refuses_on_mutated_payloads)
{
    static const char noise[] = "{}[]\",:\\u0123456789abcdefABCDEFxtnrl -.eE+/";
    struct rng g;
    rng_seed(&g, 6);
    for (int round = 0; round < 20000; round++) {
        char *text = random_text(&g);
        size_t len = strlen(text);
        char *m = malloc(len + 8);
        memcpy(m, text, len + 1);
        for (int k = 1 + rng_below(&g, 3); k > 0; k--) {
            size_t at = (size_t)rng_below(&g, (int)len + 1);
            int how = rng_below(&g, 3);
            if (how == 0 && at < len) {
                m[at] = noise[rng_below(&g, (int)sizeof(noise) - 1)];
            } else if (how == 1) {
                memmove(m + at + 1, m + at, len - at + 1);
                m[at] = noise[rng_below(&g, (int)sizeof(noise) - 1)];
                len++;
            } else if (at < len) {
                memmove(m + at, m + at + 1, len - at);
                len--;
            }
        }
        if (utf8_valid(m))
            agree(m);
        free(m);
        free(text);
    }
}

Test(payload, edges)
{
    /* Nested values jansson reads, payload_read does not (no payload has
     * them), also when a repeated name hides them from jansson's tree. */
    const char *nested[] = {"{\"a\":{}}", "{\"a\":[1]}", "[1]", "{\"a\":{},\"a\":1}"};
    for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
        struct payload p;
        cr_expect(!payload_read(&p, nested[i]), "%s should be refused", nested[i]);
        payload_free(&p);
    }
    const char *refused[] = {
        "\"s\"",
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00x\"}",
        "{\"a\":01}",          "{\"a\":1}x",        "{\"a\":\"x\ny\"}",
        "{\"a\":99999999999999999999}", "{\"a\":1e999}", "{\"a\":1.}", "{\"a\":-}",
        "{\"a\":tru}",         "{,}",               "{\"a\":1,}",   "",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct payload p;
        cr_expect(!payload_read(&p, refused[i]), "%s should be refused", refused[i]);
        cr_expect_eq(p.n, 0);
        payload_free(&p);
        cr_expect_null(json_loads(refused[i], 0, NULL), "jansson reads %s", refused[i]);
    }
    /* More members than PAYLOAD_MAX_FIELDS, and a payload past the local
     * buffer's kilobyte. */
    char big[8192];
    size_t len = (size_t)snprintf(big, sizeof(big), "{");
    for (int i = 0; i <= PAYLOAD_MAX_FIELDS; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "%s\"k%d\":\"%0100d\"", i ? "," : "",
                                i, i);
    snprintf(big + len, sizeof(big) - len, "}");
    struct payload p;
    cr_expect(!payload_read(&p, big));
    payload_free(&p);
    char *cut = strstr(big, ",\"k32\"");
    cut[0] = '}';
    cut[1] = '\0';
    cr_assert(payload_read(&p, big));
    cr_expect_eq(p.n, PAYLOAD_MAX_FIELDS);
    char want[128];
    snprintf(want, sizeof(want), "%0100d", 31);
    cr_expect_str_eq(payload_str(&p, "k31"), want);
    payload_free(&p);
    /* The last of repeated keys counts; a surrogate pair is one character. */
    cr_assert(payload_read(&p, " {\"id\" : 1, \"id\" : 2, \"s\" : \"\\ud83d\\ude00\\u00e9\"}\n"));
    cr_expect_eq(payload_int(&p, "id"), 2);
    cr_expect_str_eq(payload_str(&p, "s"), "\xf0\x9f\x98\x80\xc3\xa9");
    cr_expect_eq(payload_int(&p, "s"), 0);
    cr_expect_null(payload_str(&p, "id"));
    cr_expect(!payload_true(&p, "id"));
    payload_free(&p);
}

/* A name repeated counts once, as jansson counts it: PAYLOAD_MAX_FIELDS
 * names said twice each are read (found by fuzz/fuzz_payload.c). */
Test(payload, repeated_names_count_once)
{
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof(text), "{");
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < PAYLOAD_MAX_FIELDS; i++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\"k%d\":%d",
                                    len > 1 ? "," : "", i, round * 100 + i);
    snprintf(text + len, sizeof(text) - len, "}");
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_eq(json_object_size(j), PAYLOAD_MAX_FIELDS);
    json_decref(j);
    agree(text);
    struct payload p;
    cr_assert(payload_read(&p, text));
    cr_expect_eq(p.n, PAYLOAD_MAX_FIELDS);
    cr_expect_eq(payload_int(&p, "k0"), 100);
    cr_expect_eq(payload_int(&p, "k31"), 131);
    payload_free(&p);
}
