#include <criterion/criterion.h>

#include <string.h>

#include "base/timeutil.h"

/*
 * Reference instants, computed independently (Python zoneinfo with the IANA
 * database):
 *   2026-03-29T01:00:00Z  1774746000  Paris goes from 02:00+01 to 03:00+02
 *   2026-10-25T01:00:00Z  1792890000  Paris goes from 03:00+02 to 02:00+01
 */
#define SPRING_2026 INT64_C(1774746000)
#define AUTUMN_2026 INT64_C(1792890000)
#define HOUR        3600
#define DAY         86400

static const struct timeutil_zone *paris(void)
{
    const struct timeutil_zone *z = timeutil_zone_find("Europe/Paris");
    cr_assert_not_null(z);
    return z;
}

static struct tm local_tm(int year, int mon, int mday, int hour, int min, int sec)
{
    struct tm t;
    memset(&t, 0, sizeof(t));
    t.tm_year = year - 1900;
    t.tm_mon = mon - 1;
    t.tm_mday = mday;
    t.tm_hour = hour;
    t.tm_min = min;
    t.tm_sec = sec;
    return t;
}

static void expect_local(const struct timeutil_zone *z, int64_t utc, const char *want)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    cr_assert(timeutil_format_rfc3339(z, utc, buf, sizeof(buf)));
    cr_expect_str_eq(buf, want, "instant %lld", (long long)utc);
}

Test(timeutil, zone_find)
{
    static const char *const names[] = {"Europe/Paris",
                                        "America/Guadeloupe",
                                        "America/Martinique",
                                        "America/Cayenne",
                                        "Indian/Reunion",
                                        "Indian/Mayotte",
                                        "UTC"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct timeutil_zone *z = timeutil_zone_find(names[i]);
        cr_assert_not_null(z, "%s", names[i]);
        cr_expect_str_eq(timeutil_zone_name(z), names[i]);
    }
    cr_expect_null(timeutil_zone_find(NULL));
    cr_expect_null(timeutil_zone_find(""));
    cr_expect_null(timeutil_zone_find("europe/paris"));
    cr_expect_null(timeutil_zone_find("Europe/London"));
    cr_expect_null(timeutil_zone_find("Europe/Paris "));
}

Test(timeutil, offsets_around_spring_2026)
{
    const struct timeutil_zone *z = paris();
    cr_expect_eq(timeutil_offset(z, SPRING_2026 - DAY), 3600);
    cr_expect_eq(timeutil_offset(z, SPRING_2026 - 1), 3600);
    cr_expect_eq(timeutil_offset(z, SPRING_2026), 7200);
    cr_expect_eq(timeutil_offset(z, SPRING_2026 + 1), 7200);
    expect_local(z, SPRING_2026 - 1, "2026-03-29T01:59:59+01:00");
    expect_local(z, SPRING_2026, "2026-03-29T03:00:00+02:00");
}

Test(timeutil, offsets_around_autumn_2026)
{
    const struct timeutil_zone *z = paris();
    cr_expect_eq(timeutil_offset(z, AUTUMN_2026 - 1), 7200);
    cr_expect_eq(timeutil_offset(z, AUTUMN_2026), 3600);
    cr_expect_eq(timeutil_offset(z, AUTUMN_2026 + DAY), 3600);
    expect_local(z, AUTUMN_2026 - 1, "2026-10-25T02:59:59+02:00");
    expect_local(z, AUTUMN_2026, "2026-10-25T02:00:00+01:00");
}

Test(timeutil, transitions_of_other_years)
{
    const struct timeutil_zone *z = paris();
    static const int64_t changes[] = {
        INT64_C(1743296400), /* 2025-03-30 */
        INT64_C(1761440400), /* 2025-10-26 */
        INT64_C(1806195600), /* 2027-03-28 */
        INT64_C(1824944400), /* 2027-10-31 */
        INT64_C(1901149200), /* 2030-03-31 */
        INT64_C(1919293200), /* 2030-10-27 */
        INT64_C(922582800),  /* 1999-03-28 */
        INT64_C(941331600),  /* 1999-10-31 */
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        int before = i % 2 == 0 ? 3600 : 7200;
        int after = i % 2 == 0 ? 7200 : 3600;
        cr_expect_eq(timeutil_offset(z, changes[i] - 1), before, "change %zu", i);
        cr_expect_eq(timeutil_offset(z, changes[i]), after, "change %zu", i);
    }
}

Test(timeutil, fixed_overseas_zones)
{
    static const struct {
        const char *name;
        int offset;
        const char *local;
    } cases[] = {
        {"America/Guadeloupe", -4 * HOUR, "2026-07-14T06:00:00-04:00"},
        {"America/Martinique", -4 * HOUR, "2026-07-14T06:00:00-04:00"},
        {"America/Cayenne", -3 * HOUR, "2026-07-14T07:00:00-03:00"},
        {"Indian/Reunion", 4 * HOUR, "2026-07-14T14:00:00+04:00"},
        {"Indian/Mayotte", 3 * HOUR, "2026-07-14T13:00:00+03:00"},
        {"UTC", 0, "2026-07-14T10:00:00+00:00"},
    };
    int64_t t = INT64_C(1784023200); /* 2026-07-14T10:00:00Z */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct timeutil_zone *z = timeutil_zone_find(cases[i].name);
        cr_assert_not_null(z);
        cr_expect_eq(timeutil_offset(z, t), cases[i].offset, "%s", cases[i].name);
        cr_expect_eq(timeutil_offset(z, SPRING_2026), cases[i].offset, "%s", cases[i].name);
        cr_expect_eq(timeutil_offset(z, AUTUMN_2026), cases[i].offset, "%s", cases[i].name);
        expect_local(z, t, cases[i].local);
    }
}

Test(timeutil, to_local_fields)
{
    const struct timeutil_zone *z = paris();
    struct tm t;

    cr_assert(timeutil_to_local(z, INT64_C(1796130000), &t)); /* 2026-12-01T13:00Z */
    cr_expect_eq(t.tm_year, 126);
    cr_expect_eq(t.tm_mon, 11);
    cr_expect_eq(t.tm_mday, 1);
    cr_expect_eq(t.tm_hour, 14);
    cr_expect_eq(t.tm_min, 0);
    cr_expect_eq(t.tm_sec, 0);
    cr_expect_eq(t.tm_wday, 2); /* a Tuesday */
    cr_expect_eq(t.tm_yday, 334);
    cr_expect_eq(t.tm_isdst, 0);

    cr_assert(timeutil_to_local(z, INT64_C(1784023200), &t)); /* 14 July 2026 */
    cr_expect_eq(t.tm_isdst, 1);
    cr_expect_eq(t.tm_hour, 12);

    /* Before the epoch: 1969-12-31T23:59:59Z. */
    cr_assert(timeutil_to_local(z, -1, &t));
    cr_expect_eq(t.tm_year, 70);
    cr_expect_eq(t.tm_yday, 0);
    cr_expect_eq(t.tm_hour, 0);
    cr_expect_eq(t.tm_min, 59);
    cr_expect_eq(t.tm_sec, 59);
    cr_expect_eq(t.tm_wday, 4); /* a Thursday */

    const struct timeutil_zone *utc = timeutil_zone_find("UTC");
    cr_assert(timeutil_to_local(utc, -1, &t));
    cr_expect_eq(t.tm_year, 69);
    cr_expect_eq(t.tm_mon, 11);
    cr_expect_eq(t.tm_mday, 31);
    cr_expect_eq(t.tm_wday, 3);

    cr_expect_not(timeutil_to_local(NULL, 0, &t));
    cr_expect_not(timeutil_to_local(z, 0, NULL));
}

Test(timeutil, supported_range)
{
    const struct timeutil_zone *utc = timeutil_zone_find("UTC");
    struct tm t;
    char buf[TIMEUTIL_RFC3339_SIZE];
    int64_t first = INT64_C(-62167219200); /* 0000-01-01T00:00:00Z */
    int64_t last = INT64_C(253402300799);  /* 9999-12-31T23:59:59Z */

    cr_expect(timeutil_to_local(utc, first, &t));
    cr_expect_not(timeutil_to_local(utc, first - 1, &t));
    cr_expect(timeutil_to_local(utc, last, &t));
    cr_expect_not(timeutil_to_local(utc, last + 1, &t));
    cr_expect_not(timeutil_to_local(paris(), last, &t)); /* already year 10000 in Paris */
    cr_expect_not(timeutil_to_local(utc, INT64_MAX, &t));
    cr_expect_not(timeutil_to_local(utc, INT64_MIN, &t));
    cr_expect(timeutil_format_rfc3339(utc, first, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "0000-01-01T00:00:00+00:00");
    cr_expect(timeutil_format_rfc3339(utc, last, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "9999-12-31T23:59:59+00:00");
    cr_expect_not(timeutil_format_rfc3339(utc, INT64_MAX, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "");
    cr_expect_eq(timeutil_local_day_start(utc, INT64_MAX), INT64_MAX);
    cr_expect_eq(timeutil_local_day_end(utc, INT64_MIN), INT64_MIN);

    int64_t out = 42;
    struct tm far = local_tm(10000, 1, 1, 0, 0, 0);
    cr_expect_not(timeutil_from_local(utc, &far, &out));
    far.tm_year = 2000000000;
    cr_expect_not(timeutil_from_local(utc, &far, &out));
    cr_expect_eq(out, 42);
}

Test(timeutil, from_local_plain)
{
    const struct timeutil_zone *z = paris();
    int64_t out;
    struct tm t = local_tm(2026, 12, 1, 14, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, INT64_C(1796130000));

    t = local_tm(2026, 7, 14, 12, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, INT64_C(1784023200));

    cr_expect_not(timeutil_from_local(NULL, &t, &out));
    cr_expect_not(timeutil_from_local(z, NULL, &out));
    cr_expect_not(timeutil_from_local(z, &t, NULL));
}

Test(timeutil, from_local_normalises_like_timegm)
{
    const struct timeutil_zone *z = paris();
    int64_t a, b;
    struct tm t = local_tm(2026, 1, 32, 0, 0, 0);
    struct tm u = local_tm(2026, 2, 1, 0, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &a));
    cr_assert(timeutil_from_local(z, &u, &b));
    cr_expect_eq(a, b);

    t = local_tm(2026, 13, 1, 0, 0, 0); /* month 12 (0-based) is next January */
    u = local_tm(2027, 1, 1, 0, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &a));
    cr_assert(timeutil_from_local(z, &u, &b));
    cr_expect_eq(a, b);

    t = local_tm(2026, 3, 1, -1, 0, 0); /* an hour before 1 March is 28 Feb 23:00 */
    u = local_tm(2026, 2, 28, 23, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &a));
    cr_assert(timeutil_from_local(z, &u, &b));
    cr_expect_eq(a, b);

    t = local_tm(2026, 1, 1, 0, 0, 0);
    t.tm_mon = -1; /* December of the year before */
    u = local_tm(2025, 12, 1, 0, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &a));
    cr_assert(timeutil_from_local(z, &u, &b));
    cr_expect_eq(a, b);
}

Test(timeutil, from_local_spring_gap_moves_forward)
{
    const struct timeutil_zone *z = paris();
    int64_t out;
    struct tm t = local_tm(2026, 3, 29, 1, 59, 59);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, SPRING_2026 - 1);

    t = local_tm(2026, 3, 29, 2, 0, 0); /* does not exist: 03:00+02 */
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, SPRING_2026);

    t = local_tm(2026, 3, 29, 2, 30, 0); /* does not exist: 03:30+02 */
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, SPRING_2026 + 30 * 60);
    expect_local(z, out, "2026-03-29T03:30:00+02:00");

    t = local_tm(2026, 3, 29, 3, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, SPRING_2026);
}

Test(timeutil, from_local_autumn_repeat_takes_first)
{
    const struct timeutil_zone *z = paris();
    int64_t out;
    struct tm t = local_tm(2026, 10, 25, 1, 59, 59);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, AUTUMN_2026 - HOUR - 1);

    t = local_tm(2026, 10, 25, 2, 0, 0); /* first 02:00 is 00:00Z */
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, AUTUMN_2026 - HOUR);

    t = local_tm(2026, 10, 25, 2, 30, 0);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, AUTUMN_2026 - HOUR + 30 * 60);
    expect_local(z, out, "2026-10-25T02:30:00+02:00");

    t = local_tm(2026, 10, 25, 2, 59, 59);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, AUTUMN_2026 - 1);

    t = local_tm(2026, 10, 25, 3, 0, 0);
    cr_assert(timeutil_from_local(z, &t, &out));
    cr_expect_eq(out, AUTUMN_2026 + HOUR);
}

Test(timeutil, local_round_trip_over_2026)
{
    /* Every quarter hour of 2026 and a bit: local -> instant gives the instant
     * back, except the second pass of the repeated autumn hour. */
    const struct timeutil_zone *z = paris();
    int64_t start = INT64_C(1767222000) - DAY; /* 2025-12-31T23:00Z */
    for (int64_t t = start; t < start + 368 * DAY; t += 900 + 7) {
        struct tm local;
        int64_t back;
        cr_assert(timeutil_to_local(z, t, &local));
        cr_assert(timeutil_from_local(z, &local, &back));
        if (t >= AUTUMN_2026 && t < AUTUMN_2026 + HOUR)
            cr_assert_eq(back, t - HOUR, "instant %lld", (long long)t);
        else
            cr_assert_eq(back, t, "instant %lld", (long long)t);
    }
}

Test(timeutil, day_lengths_on_change_days)
{
    const struct timeutil_zone *z = paris();

    /* 29 March 2026: 00:00+01 (23:00Z the day before) to 00:00+02 (22:00Z). */
    int64_t noon = INT64_C(1774778400); /* 2026-03-29T12:00+02:00 */
    int64_t start = timeutil_local_day_start(z, noon);
    int64_t end = timeutil_local_day_end(z, noon);
    cr_expect_eq(start, INT64_C(1774738800));
    cr_expect_eq(end, INT64_C(1774821600));
    cr_expect_eq(end - start, 23 * HOUR);
    /* Any instant of the day, before or after the change, gives the same day. */
    cr_expect_eq(timeutil_local_day_start(z, SPRING_2026 - 1), start);
    cr_expect_eq(timeutil_local_day_end(z, SPRING_2026), end);
    cr_expect_eq(timeutil_local_day_start(z, end - 1), start);

    /* 25 October 2026: 00:00+02 (22:00Z the day before) to 00:00+01 (23:00Z). */
    noon = INT64_C(1792926000); /* 2026-10-25T12:00+01:00 */
    start = timeutil_local_day_start(z, noon);
    end = timeutil_local_day_end(z, noon);
    cr_expect_eq(start, INT64_C(1792879200));
    cr_expect_eq(end, INT64_C(1792969200));
    cr_expect_eq(end - start, 25 * HOUR);
    cr_expect_eq(timeutil_local_day_start(z, AUTUMN_2026 - 1), start);
    cr_expect_eq(timeutil_local_day_start(z, AUTUMN_2026), start);
    cr_expect_eq(timeutil_local_day_end(z, start), end);

    /* The days around them have 24 hours. */
    cr_expect_eq(timeutil_local_day_end(z, start - 1) - timeutil_local_day_start(z, start - 1),
                 24 * HOUR);
    cr_expect_eq(timeutil_local_day_end(z, end) - timeutil_local_day_start(z, end), 24 * HOUR);
}

Test(timeutil, day_bounds_at_midnight)
{
    const struct timeutil_zone *z = paris();
    int64_t midnight = INT64_C(1781128800); /* 2026-06-11T00:00+02:00 */
    cr_expect_eq(timeutil_local_day_start(z, midnight), midnight);
    cr_expect_eq(timeutil_local_day_end(z, midnight), midnight + DAY);
    cr_expect_eq(timeutil_local_day_start(z, midnight - 1), midnight - DAY);
    cr_expect_eq(timeutil_local_day_end(z, midnight - 1), midnight);

    /* Overseas zones: midnight of their own day. */
    const struct timeutil_zone *gp = timeutil_zone_find("America/Guadeloupe");
    cr_assert_not_null(gp);
    int64_t t = INT64_C(1784023200); /* 2026-07-14T06:00-04:00 */
    cr_expect_eq(timeutil_local_day_start(gp, t), t - 6 * HOUR);
    cr_expect_eq(timeutil_local_day_end(gp, t), t + 18 * HOUR);
}

Test(timeutil, parse_rfc3339_accepts)
{
    static const struct {
        const char *text;
        int64_t utc;
    } cases[] = {
        {"2026-12-01T14:00:00+01:00", INT64_C(1796130000)},
        {"2026-12-01T13:00:00Z", INT64_C(1796130000)},
        {"2026-12-01T13:00Z", INT64_C(1796130000)},
        {"2026-12-01T14:00+01:00", INT64_C(1796130000)},
        {"2026-12-01T09:00:00-04:00", INT64_C(1796130000)},
        {"2026-12-01T13:00:00-00:00", INT64_C(1796130000)},
        {"2026-12-01T13:00:00.000Z", INT64_C(1796130000)},
        {"2026-12-01T13:00:00.999999999Z", INT64_C(1796130000)},
        {"2026-12-01T14:00:00.5+01:00", INT64_C(1796130000)},
        {"2026-12-01T18:30:00+05:30", INT64_C(1796130000)},
        {"2024-02-29T12:00:00Z", INT64_C(1709208000)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400)},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"1970-01-01T00:59:59+01:00", -1},
        {"2026-03-29T03:00:00+02:00", SPRING_2026},
        {"2026-10-25T02:00:00+01:00", AUTUMN_2026},
        {"2026-10-25T02:00:00+02:00", AUTUMN_2026 - HOUR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = 0;
        cr_expect(timeutil_parse_rfc3339(cases[i].text, &out), "%s", cases[i].text);
        cr_expect_eq(out, cases[i].utc, "%s", cases[i].text);
    }
}

Test(timeutil, parse_rfc3339_rejects)
{
    static const char *const bad[] = {
        "",
        "2026-12-01",
        "2026-12-01T14:00:00",             /* no offset */
        "2026-12-01t14:00:00Z",            /* lower-case t */
        "2026-12-01T14:00:00z",            /* lower-case z */
        "2026-12-01 14:00:00Z",            /* space instead of T */
        "2026-02-30T10:00:00Z",            /* 30 February */
        "2026-02-29T10:00:00Z",            /* not a leap year */
        "1900-02-29T10:00:00Z",            /* not a leap year either */
        "2026-04-31T10:00:00Z",            /* 31 April */
        "2026-13-01T10:00:00Z",            /* month 13 */
        "2026-00-01T10:00:00Z",            /* month 0 */
        "2026-01-00T10:00:00Z",            /* day 0 */
        "2026-01-32T10:00:00Z",            /* day 32 */
        "2026-12-01T24:00:00Z",            /* hour 24 */
        "2026-12-01T23:60:00Z",            /* minute 60 */
        "2026-12-01T23:59:60Z",            /* leap second */
        "2026-12-01T14:00:00+24:00",       /* offset hour 24 */
        "2026-12-01T14:00:00+01:60",       /* offset minute 60 */
        "2026-12-01T14:00:00+0100",        /* offset without colon */
        "2026-12-01T14:00:00+01",          /* offset without minutes */
        "2026-12-01T14:00:00Z ",           /* trailing blank */
        "2026-12-01T14:00:00Zx",           /* trailing garbage */
        "2026-12-01T14:00:00+01:00Z",      /* two offsets */
        " 2026-12-01T14:00:00Z",           /* leading blank */
        "2026-1-01T14:00:00Z",             /* one-digit month */
        "2026-12-1T14:00:00Z",             /* one-digit day */
        "26-12-01T14:00:00Z",              /* two-digit year */
        "+2026-12-01T14:00:00Z",           /* signed year */
        "2026-12-01T4:00:00Z",             /* one-digit hour */
        "2026-12-01T14:0:00Z",             /* one-digit minute */
        "2026-12-01T14:00:0Z",             /* one-digit second */
        "2026-12-01T14Z",                  /* no minutes */
        "2026-12-01T14:00:00.Z",           /* empty fraction */
        "2026-12-01T14:00:00.1234567890Z", /* fraction of 10 digits */
        "2026-12-01T14:00.5Z",             /* fraction without seconds */
        "2026-12-01T14:00:00,5Z",          /* comma fraction */
        "2026/12/01T14:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t out = 42;
        cr_expect_not(timeutil_parse_rfc3339(bad[i], &out), "%s should be refused", bad[i]);
        cr_expect_eq(out, 42, "%s changed the output", bad[i]);
    }
    int64_t out;
    cr_expect_not(timeutil_parse_rfc3339(NULL, &out));
    cr_expect_not(timeutil_parse_rfc3339("2026-12-01T13:00:00Z", NULL));
}

Test(timeutil, parse_local)
{
    const struct timeutil_zone *z = paris();
    int64_t out;

    cr_assert(timeutil_parse_local(z, "2026-12-01T14:00:00", &out));
    cr_expect_eq(out, INT64_C(1796130000));
    cr_assert(timeutil_parse_local(z, "2026-12-01T14:00", &out));
    cr_expect_eq(out, INT64_C(1796130000));
    cr_assert(timeutil_parse_local(z, "2026-03-29T02:30", &out)); /* skipped */
    cr_expect_eq(out, SPRING_2026 + 30 * 60);
    cr_assert(timeutil_parse_local(z, "2026-10-25T02:30:00", &out)); /* repeated */
    cr_expect_eq(out, AUTUMN_2026 - HOUR + 30 * 60);

    const struct timeutil_zone *re = timeutil_zone_find("Indian/Reunion");
    cr_assert_not_null(re);
    cr_assert(timeutil_parse_local(re, "2026-12-01T17:00:00", &out));
    cr_expect_eq(out, INT64_C(1796130000));

    out = 42;
    cr_expect_not(timeutil_parse_local(z, "2026-12-01T14:00:00Z", &out));
    cr_expect_not(timeutil_parse_local(z, "2026-12-01T14:00:00+01:00", &out));
    cr_expect_not(timeutil_parse_local(z, "2026-12-01T14:00:00.000", &out));
    cr_expect_not(timeutil_parse_local(z, "2026-02-30T14:00:00", &out));
    cr_expect_not(timeutil_parse_local(z, "2026-12-01T14:00:00 ", &out));
    cr_expect_not(timeutil_parse_local(z, "2026-12-01", &out));
    cr_expect_not(timeutil_parse_local(NULL, "2026-12-01T14:00:00", &out));
    cr_expect_not(timeutil_parse_local(z, NULL, &out));
    cr_expect_eq(out, 42);
}

Test(timeutil, format_and_round_trips)
{
    const struct timeutil_zone *z = paris();
    static const char *const texts[] = {
        "2026-12-01T14:00:00+01:00", "2026-07-14T12:00:00+02:00", "2026-03-29T01:59:59+01:00",
        "2026-03-29T03:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
        "2024-02-29T00:00:00+01:00", "1970-01-01T01:00:00+01:00", "2099-12-31T23:59:59+01:00",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int64_t t;
        cr_assert(timeutil_parse_rfc3339(texts[i], &t), "%s", texts[i]);
        expect_local(z, t, texts[i]);
    }

    /* Instant -> text -> instant around both changes, every 5 minutes. */
    const int64_t centres[] = {SPRING_2026, AUTUMN_2026};
    for (size_t c = 0; c < 2; c++) {
        for (int64_t t = centres[c] - 3 * HOUR; t <= centres[c] + 3 * HOUR; t += 300) {
            char buf[TIMEUTIL_RFC3339_SIZE];
            int64_t back;
            cr_assert(timeutil_format_rfc3339(z, t, buf, sizeof(buf)));
            cr_assert(timeutil_parse_rfc3339(buf, &back), "%s", buf);
            cr_assert_eq(back, t, "%s", buf);
        }
    }
}

Test(timeutil, format_buffer_too_small)
{
    const struct timeutil_zone *z = paris();
    char buf[TIMEUTIL_RFC3339_SIZE];
    memset(buf, 'x', sizeof(buf));
    cr_expect_not(timeutil_format_rfc3339(z, 0, buf, sizeof(buf) - 1));
    cr_expect_eq(buf[0], '\0');
    cr_expect_not(timeutil_format_rfc3339(z, 0, buf, 0));
    cr_expect_not(timeutil_format_rfc3339(z, 0, NULL, 64));
    cr_expect_not(timeutil_format_rfc3339(NULL, 0, buf, sizeof(buf)));
}

Test(timeutil, deadline_same_day)
{
    const struct timeutil_zone *z = paris();
    /* 10 June 2026, 23:30+02: still the end of that day, 30 minutes ahead. */
    int64_t late = INT64_C(1781127000);
    cr_expect_eq(timeutil_deadline(z, late, TIMEUTIL_SAME_DAY), INT64_C(1781128800));
    /* 08:00 on the short day of March ends at its midnight, 15 h later. */
    int64_t morning = INT64_C(1774764000); /* 2026-03-29T08:00+02:00 */
    cr_expect_eq(timeutil_deadline(z, morning, TIMEUTIL_SAME_DAY), INT64_C(1774821600));
    /* One second before midnight. */
    cr_expect_eq(timeutil_deadline(z, INT64_C(1781128799), TIMEUTIL_SAME_DAY), INT64_C(1781128800));
    /* At midnight exactly, a new day has begun. */
    cr_expect_eq(timeutil_deadline(z, INT64_C(1781128800), TIMEUTIL_SAME_DAY),
                 INT64_C(1781128800) + DAY);
}

Test(timeutil, deadline_hours)
{
    const struct timeutil_zone *z = paris();
    /* Noon before the spring change: 24 h later the wall clock says 13:00. */
    int64_t now = INT64_C(1774695600); /* 2026-03-28T12:00+01:00 */
    int64_t d24 = timeutil_deadline(z, now, TIMEUTIL_H24);
    cr_expect_eq(d24, now + DAY);
    expect_local(z, d24, "2026-03-29T13:00:00+02:00");
    cr_expect_eq(timeutil_deadline(z, now, TIMEUTIL_H48), now + 2 * DAY);
    cr_expect_eq(timeutil_deadline(z, now, (enum timeutil_urgency)99), now);
}

Test(timeutil, clocks)
{
    int64_t now = timeutil_now();
    cr_expect_gt(now, INT64_C(1735689600)); /* after 2025-01-01 */
    int64_t a = timeutil_monotonic_ms();
    int64_t b = timeutil_monotonic_ms();
    cr_expect_geq(b, a);
}
