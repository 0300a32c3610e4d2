/* indicators.export (issue 15 §5), end to end on a real PostgreSQL through
 * snpd's HTTP API: a month, a quarter and a contract year in every format,
 * each byte-identical to what `snpd indicators` writes for the same period
 * (indicators_command, run here against the same database), masked cells
 * present as masked, every part within the protocol's string limit, the
 * audit row with the caller's role; refusals (role, a period that does not
 * match its kind). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dispatcher/config.h"
#include "dispatcher/commands/indicators.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"

static struct fixture f;

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    snp_proto_shutdown();
}

TestSuite(exports, .init = setup, .fini = teardown, .timeout = 120);

/* The file `snpd indicators` writes for these arguments, read back whole. */
static char *command_output(const char *kind_option, const char *period, const char *format,
                            bool statement)
{
    char path[] = "/tmp/snp-export-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.database, sizeof(cfg.database), "%s", f.pg.conninfo);
    char *argv[12] = {"indicators",   "--territory", FIX_TERRITORY, (char *)kind_option,
                      (char *)period, "--output",    path};
    int argc = 7;
    if (statement)
        argv[argc++] = "--statement";
    else {
        argv[argc++] = "--format";
        argv[argc++] = (char *)format;
    }
    cr_assert_eq(indicators_command(&cfg, argc, argv), 0, "snpd indicators %s %s", kind_option,
                 period);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    unlink(path);
    return text;
}

/* indicators.export as `role`; returns the parsed answer, status in *st. */
static json_t *export_as(enum fix_role role, const char *kind, const char *period,
                         const char *format, int *st)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/indicators/export?period_kind=%s&period=%s&format=%s",
             kind, period, format);
    return fix_api_checked(f.snpd.port, "indicators.export", "GET", path, f.token[role], NULL, st);
}

/* The parts of an answer joined. */
static char *joined(json_t *answer)
{
    size_t len = 0, i;
    json_t *p;
    json_array_foreach (json_object_get(answer, "parts"), i, p)
        len += json_string_length(p);
    char *text = calloc(1, len + 1);
    cr_assert_not_null(text);
    len = 0;
    json_array_foreach (json_object_get(answer, "parts"), i, p) {
        cr_assert_leq(json_string_length(p), snp_proto_limits()->max_string_bytes);
        memcpy(text + len, json_string_value(p), json_string_length(p));
        len += json_string_length(p);
    }
    return text;
}

Test(exports, every_period_and_format_is_the_command_s_file)
{
    /* Some activity this month: three bookings (a count under 5, masked)
     * and a waiting request. */
    struct fix_booking b;
    fix_book(&f, "exp-1", "Jeanne Dupont", "0600000001", 120, &b);
    fix_book(&f, "exp-2", "Paul Martin", "0600000002", 180, &b);
    fix_book(&f, "exp-3", "Anne Morvan", "0600000003", 240, &b);
    PGresult *r = pgtest_exec(&f.pg, "SELECT to_char(now() AT TIME ZONE 'Europe/Paris', 'YYYY-MM'),"
                                     " to_char(now() AT TIME ZONE 'Europe/Paris', 'YYYY-\"Q\"Q'),"
                                     " to_char(now() AT TIME ZONE 'Europe/Paris', 'YYYY')");
    char month[8], quarter[8], year[8];
    snprintf(month, sizeof(month), "%s", PQgetvalue(r, 0, 0));
    snprintf(quarter, sizeof(quarter), "%s", PQgetvalue(r, 0, 1));
    snprintf(year, sizeof(year), "%s", PQgetvalue(r, 0, 2));
    PQclear(r);

    static const struct {
        const char *kind, *option;
    } kinds[] = {{"month", "--month"}, {"quarter", "--quarter"}, {"year", "--year"}};
    static const char *const formats[] = {"csv", "html", "json", "statement"};
    const char *periods[] = {month, quarter, year};
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < 4; i++) {
            bool statement = strcmp(formats[i], "statement") == 0;
            int st;
            json_t *a = export_as(FIX_COORDINATOR, kinds[k].kind, periods[k], formats[i], &st);
            cr_assert_eq(st, 200, "%s %s %s: HTTP %d", kinds[k].kind, periods[k], formats[i], st);
            char want_name[128];
            snprintf(want_name, sizeof(want_name), "%s-%s-%s.%s",
                     statement ? "releve-participation" : "indicateurs", FIX_TERRITORY, periods[k],
                     statement ? "csv" : formats[i]);
            cr_expect_str_eq(json_string_value(json_object_get(a, "filename")), want_name);
            char *got = joined(a);
            char *want = command_output(kinds[k].option, periods[k], formats[i], statement);
            cr_expect(strcmp(got, want) == 0,
                      "%s %s %s: the answer differs from snpd indicators' file", kinds[k].kind,
                      periods[k], formats[i]);
            if (strcmp(formats[i], "csv") == 0) {
                /* Three requests: masked, never dropped, never valued. */
                cr_expect(strstr(got, ",requests,1,") && strstr(got, "<5"), "%s", got);
                cr_expect_null(strstr(got, "Jeanne"), "a patient's name in the export");
                /* Per requester organisation, labelled with its name (0020). */
                cr_expect(strstr(got, ",requests_by_organisation,1,demandes,") &&
                              strstr(got, ",Pharmacie du Pont,<5,"),
                          "%s", got);
                cr_expect_str_eq(json_string_value(json_object_get(a, "content_type")),
                                 "text/csv; charset=utf-8");
            }
            if (strcmp(formats[i], "html") == 0)
                cr_expect(strstr(got, "<html lang=\"fr\">") != NULL);
            free(got);
            free(want);
            json_decref(a);
        }
    }
    /* Each answer was audited with the coordinator's role (the command's
     * extractions as the operator's). */
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = "
                                    "'indicators.export' AND role = 'coordinator'"),
                 12);
}

Test(exports, refusals)
{
    int st;
    json_t *a = export_as(FIX_SAS, "month", "2026-10", "csv", &st);
    cr_expect_eq(st, 403);
    json_decref(a);
    a = export_as(FIX_COORDINATOR, "quarter", "2026-10", "csv", &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(a, "error"), "field")),
                     "period");
    json_decref(a);
    a = export_as(FIX_COORDINATOR, "month", "2026-10", "pdf", &st);
    cr_expect_eq(st, 400);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(a, "error"), "field")),
                     "format");
    json_decref(a);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = "
                                    "'indicators.export'"),
                 0);
}
