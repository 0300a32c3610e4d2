#include <criterion/criterion.h>

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jsonout.h"
#include "tests/support/rng.h"

/* jsonout_dumps must write exactly what json_dumps writes. */
static void same_as_jansson(const json_t *j, int precision)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | (precision ? JSON_REAL_PRECISION(precision) : 0);
    char *want = json_dumps(j, flags);
    size_t len = 0;
    char *got = jsonout_dumps(j, precision, &len);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_assert_eq(len, strlen(want), "length %zu, jansson's %zu: %s", len, strlen(want), want);
    cr_assert(memcmp(got, want, len + 1) == 0, "precision %d:\n got  %s\n want %s", precision, got,
              want);
    free(want);
    free(got);
}

/* A string of `n` bytes: ASCII of every kind (controls, quotes, slashes),
 * a NUL now and then, and whole UTF-8 sequences of two, three and four
 * bytes. */
static json_t *random_string(struct rng *g)
{
    static const char *const multi[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\xe2\x80\xa8", "\xc2\x80", "\xef\xbf\xbf"};
    char b[200];
    size_t n = 0, want = (size_t)rng_below(g, 40);
    while (n < want && n + 4 < sizeof(b)) {
        int pick = rng_below(g, 10);
        if (pick == 0) {
            const char *m = multi[rng_below(g, 6)];
            memcpy(b + n, m, strlen(m));
            n += strlen(m);
        } else if (pick == 1) {
            b[n++] = (char)rng_below(g, 0x20); /* a control, NUL included */
        } else if (pick == 2) {
            b[n++] = "\"\\/\x7f"[rng_below(g, 4)];
        } else {
            b[n++] = (char)(0x20 + rng_below(g, 0x5f));
        }
    }
    return json_stringn(b, n);
}

static json_t *random_real(struct rng *g)
{
    static const double edges[] = {0.0,     -0.0,    1.0,     -1.0,   0.1,     123.0,
                                   1e21,    1e-7,    1e15,    1e16,   1e17,    47.6514,
                                   -2.084,  DBL_MAX, DBL_MIN, 5e-324, 1e300,   -1e-300,
                                   0.5,     100.0,   1e100,   2.5e-5, 9007199254740993.0};
    double v;
    switch (rng_below(g, 4)) {
    case 0:
        v = edges[rng_below(g, (int)(sizeof(edges) / sizeof(edges[0])))];
        break;
    case 1: { /* any finite bit pattern */
        uint64_t bits = rng_next(g);
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            v = 1.5;
        break;
    }
    case 2: /* coordinates and distances, as snpd sends them */
        v = (double)(int64_t)(rng_next(g) % 2000000) / 10000.0 - 100.0;
        break;
    default: /* integral values, which need ".0" */
        v = (double)(int64_t)(rng_next(g) % 100000000) - 50000000.0;
        break;
    }
    return json_real(v);
}

static json_t *random_value(struct rng *g, int depth)
{
    int kind = rng_below(g, depth > 4 ? 6 : 8);
    switch (kind) {
    case 0:
        return random_string(g);
    case 1: {
        static const json_int_t edges[] = {0, -1, 1, INT64_MAX, INT64_MIN, 10, -10, 999999999};
        return json_integer(rng_below(g, 2) ? edges[rng_below(g, 8)] : (json_int_t)rng_next(g));
    }
    case 2:
        return random_real(g);
    case 3:
        return json_true();
    case 4:
        return json_false();
    case 5:
        return json_null();
    case 6: {
        json_t *a = json_array();
        int n = rng_below(g, 6);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_value(g, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = rng_below(g, 6);
        for (int i = 0; i < n; i++) {
            json_t *key = random_string(g);
            json_object_setn_new(o, json_string_value(key), json_string_length(key),
                                 random_value(g, depth + 1));
            json_decref(key);
        }
        return o;
    }
    }
}

Test(jsonout, random_trees_are_written_as_jansson_writes_them)
{
    struct rng g;
    rng_seed(&g, 20261207);
    static const int precisions[] = {0, 10, 15, 17, 1, 3};
    for (int round = 0; round < 4000; round++) {
        json_t *j = random_value(&g, 0);
        same_as_jansson(j, precisions[round % 6]);
        json_decref(j);
    }
}

Test(jsonout, a_request_create_answer_is_written_as_jansson_writes_it)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:b, s:{s:I, s:s, s:{s:{s:I, s:f, s:f, s:s}, s:[]}}}", "id", "c12", "type",
        "request.create", "ok", 1, "data", "request_id", (json_int_t)7, "status", "offered",
        "offer", "slot", "slot_id", (json_int_t)1009, "latitude", 47.6514123, "longitude",
        -2.0840456, "address", "12 rue de l'\xc3\x89glise \"B\"\n", "alternatives");
    cr_assert_not_null(j);
    same_as_jansson(j, 10);
    json_decref(j);
}

Test(jsonout, refuses_what_it_cannot_write)
{
    cr_expect_null(jsonout_dumps(NULL, 10, NULL));
    json_t *one = json_integer(1);
    cr_expect_null(jsonout_dumps(one, 32, NULL));
    cr_expect_null(jsonout_dumps(one, -1, NULL));
    char *text = jsonout_dumps(one, 10, NULL); /* the length is optional */
    cr_expect_str_eq(text, "1");
    free(text);
    json_decref(one);
    /* Deeper than 2,048 levels. */
    json_t *deep = json_array();
    for (int i = 0; i < 3000; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    cr_expect_null(jsonout_dumps(deep, 10, NULL));
    json_decref(deep);
}
