#include <criterion/criterion.h>

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pattern.h"
#include "tests/support/rng.h"

/* Collects every "pattern" string of the declaration under `v`. */
static void collect(json_t *v, const char **out, size_t *n, size_t max)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item)
        {
            if (strcmp(key, "pattern") == 0 && json_is_string(item)) {
                const char *p = json_string_value(item);
                bool seen = false;
                for (size_t i = 0; i < *n; i++)
                    seen = seen || strcmp(out[i], p) == 0;
                if (!seen && *n < max)
                    out[(*n)++] = p;
            } else {
                collect(item, out, n, max);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) collect(item, out, n, max);
    }
}

/* A string for pattern `p`: each atom's count drawn from around its bounds
 * and its bytes mostly from its set, then now and then a byte replaced,
 * inserted or removed, and a byte from outside every set (ASCII or not). */
static size_t draw(struct rng *g, const struct pattern *p, char *out, size_t cap)
{
    static const char others[] = "aZ09-_.:/ W#\x80\xc3\xa9";
    size_t n = 0;
    for (unsigned i = 0; i < p->natoms; i++) {
        const struct pattern_atom *a = &p->atoms[i];
        int count = (int)a->min + rng_below(g, (int)(a->max - a->min) + 1);
        if (rng_below(g, 8) == 0)
            count += rng_below(g, 3) - 1;
        char members[128];
        int nmembers = 0;
        for (unsigned c = 1; c < 128; c++)
            if (a->set[c >> 6] >> (c & 63) & 1)
                members[nmembers++] = (char)c;
        for (int k = 0; k < count && n + 1 < cap; k++)
            out[n++] = members[rng_below(g, nmembers)];
    }
    int change = rng_below(g, 4);
    if (change == 1 && n > 0) {
        out[rng_below(g, (int)n)] = others[rng_below(g, (int)sizeof(others) - 1)];
    } else if (change == 2 && n + 1 < cap) {
        size_t at = (size_t)rng_below(g, (int)n + 1);
        memmove(out + at + 1, out + at, n - at);
        out[at] = others[rng_below(g, (int)sizeof(others) - 1)];
        n++;
    } else if (change == 3 && n > 0) {
        size_t at = (size_t)rng_below(g, (int)n);
        memmove(out + at, out + at + 1, n - at - 1);
        n--;
    }
    out[n] = '\0';
    return n;
}

/* pattern_match must say what regexec says, on many strings near the
 * pattern's language and on some far from it. */
static void agree_with_regexec(const char *re, struct rng *g, int rounds)
{
    struct pattern p;
    cr_assert(pattern_compile(&p, re), "%s should compile", re);
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0, "%s", re);
    int matched = 0;
    for (int i = 0; i < rounds; i++) {
        char s[300];
        size_t n = draw(g, &p, s, sizeof(s));
        bool want = regexec(&rx, s, 0, NULL, 0) == 0;
        cr_assert_eq(pattern_match(&p, s, n), want, "%s on \"%s\": regexec says %s", re, s,
                     want ? "match" : "no match");
        matched += want;
    }
    regfree(&rx);
    /* The draws must reach both sides. */
    cr_assert(matched > rounds / 10 && matched < rounds, "%s: %d of %d matched", re, matched,
              rounds);
}

Test(pattern, the_declarations_patterns_agree_with_regexec)
{
    const char *dir = getenv("SNP_SOURCE_DIR");
    cr_assert(dir != NULL, "SNP_SOURCE_DIR is not set");
    char path[1024];
    snprintf(path, sizeof(path), "%s/protocol/snp.v1.json", dir);
    json_error_t jerr;
    json_t *decl = json_load_file(path, 0, &jerr);
    cr_assert(decl != NULL, "%s: %s", path, jerr.text);
    const char *patterns[64];
    size_t n = 0, fast = 0;
    collect(decl, patterns, &n, 64);
    cr_assert_gt(n, 5);
    struct rng g;
    rng_seed(&g, 7);
    for (size_t i = 0; i < n; i++) {
        struct pattern p;
        if (!pattern_compile(&p, patterns[i]))
            continue; /* regexec keeps it (alternations, groups) */
        fast++;
        agree_with_regexec(patterns[i], &g, 4000);
    }
    /* client_ref, territory ids, names, postal codes, files, ISO weeks. */
    cr_assert_geq(fast, 6, "only %zu of the %zu patterns take the fast path", fast, n);
    json_decref(decl);
}

Test(pattern, shapes_at_the_edges_agree_with_regexec)
{
    const char *res[] = {
        "^[-a]{2}$", "^[a-]{0,3}$", "^x[0-9]{3}$", "^ab$", "^[a-c][d-f]{2}[g-i]{0,4}$",
        "^[A-Za-z0-9._:-]{1,64}$", "^-{2,5}$", "^[a]{1}$", "^[ -~]{3,9}$",
    };
    struct rng g;
    rng_seed(&g, 11);
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++)
        agree_with_regexec(res[i], &g, 3000);
}

Test(pattern, other_shapes_are_left_to_regexec)
{
    const char *res[] = {
        "^(a|b)$", "^a*$",       "^a+$",     "^a?$",     "^[^a]$",    "^.$",
        "a$",      "^a",         "^a{1,2}b$", "^[]a]$",  "^[a\\]]$",  "^a{0}$",
        "^a{3,2}$", "^a{12345}$", "^$",      "^[a-]b{2,}$", "^\xc3\xa9$", "^[b-a]$",
        "^a|b$",   "^a$b",     "^[a-c-e]$",
    };
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        struct pattern p;
        cr_expect(!pattern_compile(&p, res[i]), "%s should be left to regexec", res[i]);
    }
}
