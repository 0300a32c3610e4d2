/* timearg: dates, times and durations typed on the command line.  See
 * timearg.h. */
#include "clients/cli/timearg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Reads exactly `n` digits at `*p` into `*out` and advances `*p`. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Reads a date "YYYY-MM-DD" or "DD/MM/YYYY" at `*p`. */
static bool read_date(const char **p, struct timearg *a)
{
    const char *s = *p;
    int y, m, d;
    if (isdigit((unsigned char)s[0]) && s[4] == '-') {
        if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &m) || *s++ != '-' ||
            !digits(&s, 2, &d))
            return false;
    } else {
        if (!digits(&s, 2, &d) || *s++ != '/' || !digits(&s, 2, &m) || *s++ != '/' ||
            !digits(&s, 4, &y))
            return false;
    }
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return false;
    a->has_date = true;
    a->year = y;
    a->mon = m;
    a->mday = d;
    *p = s;
    return true;
}

/* Reads a time "HH:MM[:SS]", "HHhMM" or "HHh" at `*p`; the hour may have one
 * digit ("9:30", "9h"). */
static bool read_time(const char **p, struct timearg *a)
{
    const char *s = *p;
    int h, m = 0, sec = 0;
    if (!digits(&s, isdigit((unsigned char)s[1]) ? 2 : 1, &h))
        return false;
    if (*s == ':') {
        s++;
        if (!digits(&s, 2, &m))
            return false;
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &sec))
                return false;
        }
    } else if (*s == 'h' || *s == 'H') {
        s++;
        if (isdigit((unsigned char)*s) && !digits(&s, 2, &m))
            return false;
    } else {
        return false;
    }
    if (h > 23 || m > 59 || sec > 59)
        return false;
    a->has_time = true;
    a->hour = h;
    a->min = m;
    a->sec = sec;
    *p = s;
    return true;
}

bool timearg_parse(const char *s, struct timearg *out)
{
    struct timearg a = {0};
    if (!s || !*s)
        return false;
    /* An instant with its offset is taken as the server would take it. */
    int64_t instant;
    if (timeutil_parse_rfc3339(s, &instant)) {
        a.has_offset = true;
        a.instant = instant;
        *out = a;
        return true;
    }
    const char *p = s;
    if (read_date(&p, &a)) {
        if (*p == 'T' || *p == ' ') {
            p++;
            if (!read_time(&p, &a))
                return false;
        }
    } else if (!read_time(&p, &a)) {
        return false;
    }
    if (*p != '\0')
        return false;
    *out = a;
    return true;
}

bool timearg_minutes(const char *s, int max_min, int *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    long total = 0, v = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p) && v < 100000)
        v = v * 10 + (*p++ - '0');
    if (*p == 'h' || *p == 'H') {
        total = v * 60;
        p++;
        if (isdigit((unsigned char)*p)) {
            long m = 0;
            while (isdigit((unsigned char)*p) && m < 1000)
                m = m * 10 + (*p++ - '0');
            if (m > 59)
                return false;
            total += m;
            if (*p == 'm')
                p++;
            if (strcmp(p, "in") == 0)
                p += 2;
        }
    } else {
        total = v;
        if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
            p += strlen(p);
    }
    if (*p != '\0' || total < 1 || total > max_min)
        return false;
    *out = (int)total;
    return true;
}

bool timearg_instant(const struct timeutil_zone *zone, const struct timearg *a,
                     const struct timearg *day, int64_t now, int64_t *out)
{
    if (a->has_offset) {
        *out = a->instant;
        return true;
    }
    struct tm tm = {0};
    if (a->has_date) {
        tm.tm_year = a->year - 1900;
        tm.tm_mon = a->mon - 1;
        tm.tm_mday = a->mday;
    } else if (day && day->has_date) {
        tm.tm_year = day->year - 1900;
        tm.tm_mon = day->mon - 1;
        tm.tm_mday = day->mday;
    } else {
        struct tm today;
        if (!timeutil_to_local(zone, now, &today))
            return false;
        tm.tm_year = today.tm_year;
        tm.tm_mon = today.tm_mon;
        tm.tm_mday = today.tm_mday;
    }
    if (a->has_time) {
        tm.tm_hour = a->hour;
        tm.tm_min = a->min;
        tm.tm_sec = a->sec;
    }
    return timeutil_from_local(zone, &tm, out);
}

void timearg_format_utc(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%s", "");
}

void timearg_format_date(const struct timearg *a, char *buf, size_t n)
{
    snprintf(buf, n, "%04d-%02d-%02d", a->year, a->mon, a->mday);
}

void timearg_format_time(const struct timearg *a, char *buf, size_t n)
{
    snprintf(buf, n, "%02d:%02d", a->hour, a->min);
}

void timearg_add_days(struct timearg *a, int days)
{
    struct tm tm = {
        .tm_year = a->year - 1900, .tm_mon = a->mon - 1, .tm_mday = a->mday + days, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm r;
    gmtime_r(&t, &r);
    a->year = r.tm_year + 1900;
    a->mon = r.tm_mon + 1;
    a->mday = r.tm_mday;
}

int timearg_weekday(const struct timearg *a)
{
    struct tm tm = {
        .tm_year = a->year - 1900, .tm_mon = a->mon - 1, .tm_mday = a->mday, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm r;
    gmtime_r(&t, &r);
    return (r.tm_wday + 6) % 7;
}
