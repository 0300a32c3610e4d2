#include "base/timeutil.h"

#include <stdio.h>
#include <string.h>

struct timeutil_zone {
    const char *name;
    int std_offset; /* seconds east of UTC outside summer time */
    bool eu_summer; /* follows the EU summer-time rule */
};

static const struct timeutil_zone zones[] = {
    {"Europe/Paris", 3600, true},
    {"America/Guadeloupe", -4 * 3600, false},
    {"America/Martinique", -4 * 3600, false},
    {"America/Cayenne", -3 * 3600, false},
    {"Indian/Reunion", 4 * 3600, false},
    {"Indian/Mayotte", 3 * 3600, false},
    {"UTC", 0, false},
};

#define SECONDS_PER_DAY 86400
#define HOUR            3600

/* Days from 1970-01-01 to 0000-01-01 and to 10000-01-01 (proleptic Gregorian). */
#define DAYS_YEAR_0     (-719528)
#define DAYS_YEAR_10000 2932897

/* Local times of the supported years, and the instants whose local time may be one. */
#define LOCAL_MIN ((int64_t)DAYS_YEAR_0 * SECONDS_PER_DAY)
#define LOCAL_MAX ((int64_t)DAYS_YEAR_10000 * SECONDS_PER_DAY - 1)
#define UTC_MIN   (LOCAL_MIN - SECONDS_PER_DAY)
#define UTC_MAX   (LOCAL_MAX + SECONDS_PER_DAY)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/*
 * Days since 1970-01-01 of the date y-m-d, m in 1-12 and d in 1-31, after
 * Howard Hinnant's "days_from_civil" (public domain algorithm).
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil(). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Day number (since the epoch) of the last Sunday of month m of year y. */
static int64_t last_sunday(int64_t y, int m)
{
    int64_t last = m == 12 ? days_from_civil(y + 1, 1, 1) - 1 : days_from_civil(y, m + 1, 1) - 1;
    /* 1970-01-01 was a Thursday; 0 is Sunday. */
    return last - floor_mod(last + 4, 7);
}

const struct timeutil_zone *timeutil_zone_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        if (strcmp(zones[i].name, name) == 0)
            return &zones[i];
    }
    return NULL;
}

const char *timeutil_zone_name(const struct timeutil_zone *zone)
{
    return zone->name;
}

int timeutil_offset(const struct timeutil_zone *zone, int64_t utc)
{
    if (!zone->eu_summer || utc < UTC_MIN || utc > UTC_MAX)
        return zone->std_offset;

    /* The summer time of the UTC year of the last instant asked, kept
     * because instants come in runs (a FHIR answer formats thousands of
     * slots of the same days); per thread, so that no lock is needed. */
    static _Thread_local struct {
        int64_t from, to;   /* the UTC year: [from, to) */
        int64_t start, end; /* its summer time: [start, end) */
    } year = {1, 0, 0, 0};
    if (utc < year.from || utc >= year.to) {
        int64_t y;
        int m, d;
        civil_from_days(floor_div(utc, SECONDS_PER_DAY), &y, &m, &d);
        year.from = days_from_civil(y, 1, 1) * SECONDS_PER_DAY;
        year.to = days_from_civil(y + 1, 1, 1) * SECONDS_PER_DAY;
        /* Both changes happen at 01:00 UTC, whatever the zone's own offset. */
        year.start = last_sunday(y, 3) * SECONDS_PER_DAY + HOUR;
        year.end = last_sunday(y, 10) * SECONDS_PER_DAY + HOUR;
    }
    return utc >= year.start && utc < year.end ? zone->std_offset + HOUR : zone->std_offset;
}

bool timeutil_to_local(const struct timeutil_zone *zone, int64_t utc, struct tm *out)
{
    if (zone == NULL || out == NULL || utc < UTC_MIN || utc > UTC_MAX)
        return false;
    int offset = timeutil_offset(zone, utc);
    int64_t local = utc + offset;
    if (local < LOCAL_MIN || local > LOCAL_MAX)
        return false;

    int64_t days = floor_div(local, SECONDS_PER_DAY);
    int64_t secs = local - days * SECONDS_PER_DAY;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);

    memset(out, 0, sizeof(*out));
    out->tm_year = (int)(y - 1900);
    out->tm_mon = m - 1;
    out->tm_mday = d;
    out->tm_hour = (int)(secs / HOUR);
    out->tm_min = (int)(secs % HOUR / 60);
    out->tm_sec = (int)(secs % 60);
    out->tm_wday = (int)floor_mod(days + 4, 7);
    out->tm_yday = (int)(days - days_from_civil(y, 1, 1));
    out->tm_isdst = offset != zone->std_offset;
    return true;
}

/*
 * Converts broken-down local fields to seconds since the epoch as if the
 * local time were UTC, carrying out-of-range fields over.  Returns false
 * when the normalised date is outside the supported years.
 */
static bool local_seconds(const struct tm *t, int64_t *out)
{
    /* Keep the year far from overflow before any arithmetic on it. */
    if (t->tm_year < -1900 - 20000 || t->tm_year > 20000)
        return false;
    int64_t y = (int64_t)t->tm_year + 1900 + floor_div(t->tm_mon, 12);
    int m = (int)floor_mod(t->tm_mon, 12) + 1;
    int64_t local = (days_from_civil(y, m, 1) + (int64_t)t->tm_mday - 1) * SECONDS_PER_DAY +
                    (int64_t)t->tm_hour * HOUR + (int64_t)t->tm_min * 60 + (int64_t)t->tm_sec;
    if (local < LOCAL_MIN || local > LOCAL_MAX)
        return false;
    *out = local;
    return true;
}

/* Local seconds (as if UTC) to an instant; see timeutil_from_local() for the rules. */
static int64_t instant_from_local(const struct timeutil_zone *zone, int64_t local)
{
    if (!zone->eu_summer)
        return local - zone->std_offset;

    int64_t summer = local - (zone->std_offset + HOUR);
    int64_t winter = local - zone->std_offset;
    /* Both valid in the repeated hour: the summer reading is the earlier one. */
    if (timeutil_offset(zone, summer) == zone->std_offset + HOUR)
        return summer;
    /*
     * Either a plain winter time, or a time skipped by the spring change:
     * read with the winter offset that applied just before the gap, it lands
     * one gap length later in summer time, which is the promised move forward.
     */
    return winter;
}

bool timeutil_from_local(const struct timeutil_zone *zone, const struct tm *local, int64_t *utc)
{
    int64_t secs;

    if (zone == NULL || local == NULL || utc == NULL)
        return false;
    if (!local_seconds(local, &secs))
        return false;
    *utc = instant_from_local(zone, secs);
    return true;
}

int64_t timeutil_local_day_start(const struct timeutil_zone *zone, int64_t utc)
{
    struct tm t;
    int64_t start;

    if (!timeutil_to_local(zone, utc, &t))
        return utc;
    t.tm_hour = t.tm_min = t.tm_sec = 0;
    if (!timeutil_from_local(zone, &t, &start))
        return utc;
    return start;
}

int64_t timeutil_local_day_end(const struct timeutil_zone *zone, int64_t utc)
{
    struct tm t;
    int64_t end;

    if (!timeutil_to_local(zone, utc, &t))
        return utc;
    t.tm_mday += 1;
    t.tm_hour = t.tm_min = t.tm_sec = 0;
    if (!timeutil_from_local(zone, &t, &end))
        return utc;
    return end;
}

/* Reads exactly `n` ASCII digits at *p into *out and advances *p past them. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/*
 * Parses YYYY-MM-DDTHH:MM[:SS[.f...]] at *p into local seconds (as if UTC),
 * the fraction only when `fraction` is true, and advances *p past it.
 */
static bool parse_date_time(const char **p, bool fraction, int64_t *local)
{
    int year, mon, mday, hour, min, sec = 0;

    if (!read_digits(p, 4, &year) || !expect(p, '-') || !read_digits(p, 2, &mon) ||
        !expect(p, '-') || !read_digits(p, 2, &mday) || !expect(p, 'T') ||
        !read_digits(p, 2, &hour) || !expect(p, ':') || !read_digits(p, 2, &min))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!read_digits(p, 2, &sec))
            return false;
        if (fraction && **p == '.') {
            int ndigits = 0;
            (*p)++;
            while (**p >= '0' && **p <= '9') {
                (*p)++;
                ndigits++;
            }
            if (ndigits < 1 || ndigits > 9)
                return false;
        }
    }
    if (mon < 1 || mon > 12 || mday < 1 || mday > days_in_month(year, mon) || hour > 23 ||
        min > 59 || sec > 59)
        return false;
    *local = days_from_civil(year, mon, mday) * SECONDS_PER_DAY + (int64_t)hour * HOUR +
             (int64_t)min * 60 + sec;
    return true;
}

bool timeutil_parse_rfc3339(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t local;
    int offset;

    if (s == NULL || out == NULL || !parse_date_time(&p, true, &local))
        return false;
    if (*p == 'Z') {
        p++;
        offset = 0;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!read_digits(&p, 2, &oh) || !expect(&p, ':') || !read_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset = sign * (oh * HOUR + om * 60);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    *out = local - offset;
    return true;
}

bool timeutil_parse_local(const struct timeutil_zone *zone, const char *s, int64_t *out)
{
    const char *p = s;
    int64_t local;

    if (zone == NULL || s == NULL || out == NULL || !parse_date_time(&p, false, &local) ||
        *p != '\0')
        return false;
    *out = instant_from_local(zone, local);
    return true;
}

bool timeutil_format_rfc3339(const struct timeutil_zone *zone, int64_t utc, char *buf, size_t n)
{
    struct tm t;

    if (buf == NULL)
        return false;
    if (n > 0)
        buf[0] = '\0';
    if (n < TIMEUTIL_RFC3339_SIZE || !timeutil_to_local(zone, utc, &t))
        return false;
    int offset = timeutil_offset(zone, utc);
    char sign = offset < 0 ? '-' : '+';
    if (offset < 0)
        offset = -offset;
    int year = t.tm_year + 1900;
    if (year < 0 || year > 9999)
        return false;
    /* Written digit by digit rather than by snprintf: the FHIR answers
     * format two instants per slot, thousands of slots per answer. */
    const int fields[] = {year / 100, year % 100, t.tm_mon + 1,  t.tm_mday,         t.tm_hour,
                          t.tm_min,   t.tm_sec,   offset / HOUR, offset % HOUR / 60};
    static const char after[] = {0, '-', '-', 'T', ':', ':', 0, ':', 0};
    char *p = buf;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        *p++ = (char)('0' + fields[i] / 10);
        *p++ = (char)('0' + fields[i] % 10);
        if (i == 6)
            *p++ = sign;
        else if (after[i])
            *p++ = after[i];
    }
    *p = '\0';
    return p - buf == TIMEUTIL_RFC3339_SIZE - 1;
}

int64_t timeutil_deadline(const struct timeutil_zone *zone, int64_t now, enum timeutil_urgency u)
{
    switch (u) {
    case TIMEUTIL_SAME_DAY:
        return timeutil_local_day_end(zone, now);
    case TIMEUTIL_H24:
        return now + 24 * HOUR;
    case TIMEUTIL_H48:
        return now + 48 * HOUR;
    }
    return now;
}

int64_t timeutil_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t timeutil_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
