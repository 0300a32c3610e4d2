/*
 * The SQL functions read some territory settings themselves (the indicators,
 * the retention, the patient's identity, the messages): their bounds and
 * defaults there must be the declaration's (protocol/snp_decl.h, from
 * protocol/snp.v1.json), which snpd and the clients read.  The function
 * files compiled into snpd (sql/functions/, the current definition of every
 * function; migrations hold only superseded copies) are read as text:
 *
 *   snp_setting_int(territory, 'key', default, min, max)
 *   coalesce(... settings ->> 'key' ..., default)
 *
 * No database is needed.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/db/migrate.h"
#include "protocol/snp_decl.h"

#define MAX_ARGS 8

/* The arguments of the call whose '(' is at `open`: each trimmed, copied
 * into `args` (up to MAX_ARGS of `size` bytes).  Returns their number, or -1
 * when the call does not close. */
static int call_args(const char *open, char args[][64], size_t size)
{
    int depth = 0, n = 0;
    const char *start = open + 1;
    bool quoted = false;
    for (const char *p = open + 1; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (quoted)
            continue;
        if (*p == '(') {
            depth++;
        } else if ((*p == ',' && depth == 0) || (*p == ')' && depth-- == 0)) {
            while (isspace((unsigned char)*start))
                start++;
            size_t len = (size_t)(p - start);
            while (len > 0 && isspace((unsigned char)start[len - 1]))
                len--;
            if (n == MAX_ARGS)
                return -1;
            snprintf(args[n++], size, "%.*s", (int)len, start);
            if (*p == ')')
                return n;
            start = p + 1;
        }
    }
    return -1;
}

/* The setting named by the SQL literal `quoted` ('hold_seconds'), which must
 * be declared. */
static const struct snp_setting_decl *setting_of(const char *file, const char *quoted)
{
    char key[64];
    size_t len = strlen(quoted);
    cr_assert(len >= 2 && quoted[0] == '\'' && quoted[len - 1] == '\'', "%s: key %s", file, quoted);
    snprintf(key, sizeof(key), "%.*s", (int)len - 2, quoted + 1);
    enum snp_setting k;
    cr_assert(snp_setting_find(key, &k), "%s reads setting %s, which is not declared", file, key);
    return snp_setting_bounds(k);
}

/* Checks that the SQL literal `text` is the declared default of `d`; a
 * parameter (p_default_months: the caller's, CONFIG_AUDIT_RETENTION_MONTHS,
 * itself the declared default) is let through. */
static void expect_default(const char *file, const struct snp_setting_decl *d, const char *text)
{
    if (strncmp(text, "p_", 2) == 0)
        return;
    cr_assert(d->has_default, "%s gives %s a default, the declaration none", file, d->key);
    double v;
    if (d->kind == SNP_SETTING_KIND_BOOLEAN) {
        cr_assert(strcmp(text, "true") == 0 || strcmp(text, "false") == 0, "%s: %s", file, text);
        v = strcmp(text, "true") == 0;
    } else {
        char *end;
        v = strtod(text, &end);
        cr_assert(end != text && *end == '\0', "%s: default of %s: %s", file, d->key, text);
    }
    cr_expect_eq(v, d->default_value, "%s: %s defaults to %s, declared %g", file, d->key, text,
                 d->default_value);
}

/* Checks every snp_setting_int() call of `sql`; returns how many. */
static int check_setting_int_calls(const char *file, const char *sql)
{
    static const char call[] = "snp_setting_int(";
    int n = 0;
    for (const char *p = strstr(sql, call); p; p = strstr(p + 1, call)) {
        if (p - sql >= 9 && strncmp(p - 9, "FUNCTION ", 9) == 0)
            continue; /* its definition, in common.sql */
        char args[MAX_ARGS][64];
        cr_assert_eq(call_args(p + strlen(call) - 1, args, sizeof(args[0])), 5,
                     "%s: snp_setting_int takes five arguments", file);
        const struct snp_setting_decl *d = setting_of(file, args[1]);
        cr_expect_eq(d->kind, SNP_SETTING_KIND_INTEGER, "%s: %s is not an integer", file, d->key);
        expect_default(file, d, args[2]);
        cr_expect_eq(strtod(args[3], NULL), d->min, "%s: %s from %s, declared %g", file, d->key,
                     args[3], d->min);
        cr_expect_eq(strtod(args[4], NULL), d->max, "%s: %s to %s, declared %g", file, d->key,
                     args[4], d->max);
        n++;
    }
    return n;
}

/* Checks the default of every `settings ->> 'key'` of `sql` read inside a
 * coalesce(); returns how many. */
static int check_coalesced_reads(const char *file, const char *sql)
{
    static const char read[] = "settings ->> '";
    int n = 0;
    for (const char *p = strstr(sql, read); p; p = strstr(p + 1, read)) {
        const char *quote = p + strlen(read) - 1, *close = strchr(quote + 1, '\'');
        cr_assert_not_null(close);
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(close - quote + 1), quote);
        const struct snp_setting_decl *d = setting_of(file, key);
        /* Outwards, paren by paren, to the coalesce( around the read. */
        int depth = 0;
        const char *open = NULL;
        for (const char *q = p; q > sql && !open; q--) {
            if (*q == ')')
                depth++;
            else if (*q == '(' && depth > 0)
                depth--;
            else if (*q == '(' && q - sql >= 8 && strncasecmp(q - 8, "coalesce", 8) == 0)
                open = q;
        }
        if (!open)
            continue;
        char args[MAX_ARGS][64];
        int nargs = call_args(open, args, sizeof(args[0]));
        cr_assert_geq(nargs, 2, "%s: coalesce around %s", file, d->key);
        expect_default(file, d, args[nargs - 1]);
        n++;
    }
    return n;
}

Test(setting_bounds, sql_functions_use_the_declared_bounds_and_defaults)
{
    int calls = 0, reads = 0;
    for (int i = 0; i < snp_function_count; i++) {
        calls += check_setting_int_calls(snp_functions[i].name, snp_functions[i].sql);
        reads += check_coalesced_reads(snp_functions[i].name, snp_functions[i].sql);
    }
    /* The indicators' three settings and the audit retention, twice; the
     * identity's retention (requests and offers) and mt_summary. */
    cr_expect_geq(calls, 5, "%d snp_setting_int calls found", calls);
    cr_expect_geq(reads, 3, "%d coalesced reads found", reads);
}

/* The reader of the checks above finds both idioms and their arguments. */
Test(setting_bounds, both_idioms_are_read)
{
    char args[MAX_ARGS][64];
    const char *sql = "snp_setting_int(snp_audit_territory(a), 'audit_retention_months', 12, "
                      "1, 120)";
    cr_assert_eq(call_args(strchr(sql, '('), args, sizeof(args[0])), 5);
    cr_expect_str_eq(args[0], "snp_audit_territory(a)");
    cr_expect_str_eq(args[1], "'audit_retention_months'");
    cr_expect_str_eq(args[4], "120");
    cr_expect_eq(check_setting_int_calls("ok.sql", sql), 1);
    cr_expect_eq(check_coalesced_reads("ok.sql", "coalesce((SELECT (settings ->> "
                                                 "'identity_retention_days')::int FROM territory "
                                                 "WHERE id = p_territory), 90)"),
                 1);
}
