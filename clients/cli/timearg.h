/* timearg: the dates, times and durations people type on snpctl's command
 * line, turned into what snp.v1 wants.
 *
 * Accepted forms (local times are in the territory's time zone):
 *   dates       2026-12-01, 01/12/2026
 *   times       14:00, 14h00, 14h
 *   date-times  2026-12-01T14:00, "2026-12-01 14:00", "01/12/2026 14:00",
 *               with optional seconds; or an RFC 3339 instant with an offset
 *               or Z (2026-12-01T14:00:00+01:00), taken as it is
 *   durations   20 (minutes), 20m, 20min, 2h, 1h30, 1h30m
 *
 * Every function is pure (the zone functions of base/timeutil.h do the
 * arithmetic) and returns false on input it does not accept.
 */
#ifndef SNPCTL_TIMEARG_H
#define SNPCTL_TIMEARG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/timeutil.h"

#define TIMEARG_MUST_CHECK __attribute__((warn_unused_result))

/* What a date/time argument held. */
struct timearg {
    bool has_date;       /* year, mon, mday are set */
    bool has_time;       /* hour, min, sec are set */
    bool has_offset;     /* an RFC 3339 instant: `instant` is set, nothing else */
    int year, mon, mday; /* mon is 1-12 */
    int hour, min, sec;  /* local time of day */
    int64_t instant;     /* seconds since the epoch, with has_offset */
};

/* Parses `s` in one of the forms above into `*out`.  Dates must exist. */
TIMEARG_MUST_CHECK bool timearg_parse(const char *s, struct timearg *out);

/* Parses a duration into minutes, from 1 to `max_min`. */
TIMEARG_MUST_CHECK bool timearg_minutes(const char *s, int max_min, int *out);

/* Returns the instant of `a` in `zone`.  A time without a date takes the
 * date of `day` when it is not NULL (and has a date), else today's local
 * date at `now`; a date without a time is its local midnight.  Skipped and
 * repeated local times resolve as timeutil_from_local() does. */
TIMEARG_MUST_CHECK bool timearg_instant(const struct timeutil_zone *zone, const struct timearg *a,
                                        const struct timearg *day, int64_t now, int64_t *out);

/* Size of the buffer timearg_format_utc() needs, NUL included. */
#define TIMEARG_UTC_SIZE 21

/* Writes the instant `t` as an RFC 3339 UTC timestamp with a "Z",
 * "2026-12-01T13:00:00Z", into `buf` (TIMEARG_UTC_SIZE bytes).  Query
 * strings use this form: see ctl.c on the '+' of offsets. */
void timearg_format_utc(int64_t t, char *buf, size_t n);

/* Writes the local date of `a` (which must have one) as "YYYY-MM-DD". */
void timearg_format_date(const struct timearg *a, char *buf, size_t n);

/* Writes the local time of `a` as "HH:MM". */
void timearg_format_time(const struct timearg *a, char *buf, size_t n);

/* Moves the date of `a` (which must have one) by `days` days. */
void timearg_add_days(struct timearg *a, int days);

/* Returns the day of the week of the date of `a`, 0 for Monday to 6 for
 * Sunday. */
int timearg_weekday(const struct timearg *a);

#endif
