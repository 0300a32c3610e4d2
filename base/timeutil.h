/*
 * Time in the territories' zones, computed without the TZ environment
 * variable, localtime() or the system time zone database.
 *
 * An instant is an int64_t count of seconds since 1970-01-01T00:00:00Z
 * (UTC, leap seconds ignored as POSIX does).  Local times are exchanged as
 * struct tm in the proleptic Gregorian calendar: tm_year is years since 1900,
 * tm_mon 0-11, tm_mday 1-31.
 *
 * Supported zones and their rules:
 *   "Europe/Paris"        UTC+1, UTC+2 from the last Sunday of March 01:00 UTC
 *                         to the last Sunday of October 01:00 UTC (the EU
 *                         rule, applied to every year, also before 1996)
 *   "America/Guadeloupe"  UTC-4, no summer time
 *   "America/Martinique"  UTC-4, no summer time
 *   "America/Cayenne"     UTC-3, no summer time
 *   "Indian/Reunion"      UTC+4, no summer time
 *   "Indian/Mayotte"      UTC+3, no summer time
 *   "UTC"                 UTC+0
 *
 * Supported instants are those whose UTC and local dates fall between the
 * years 0000 and 9999; functions that can see other instants say what they do
 * with them.  Zones are static constants: nothing here allocates, and every
 * function may be called from any thread.
 */
#ifndef SNP_TIMEUTIL_H
#define SNP_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TIMEUTIL_MUST_CHECK __attribute__((warn_unused_result))

/* Size of the buffer timeutil_format_rfc3339() needs, terminating NUL included. */
#define TIMEUTIL_RFC3339_SIZE 26

/* An opaque, immutable time zone. */
struct timeutil_zone;

/* How soon a request must be served; see timeutil_deadline(). */
enum timeutil_urgency {
    TIMEUTIL_SAME_DAY, /* before the end of the current local day */
    TIMEUTIL_H24,      /* within 24 hours */
    TIMEUTIL_H48,      /* within 48 hours */
};

/*
 * Returns the zone with the IANA name `name` (exact, case-sensitive match),
 * or NULL when `name` is NULL or not one of the supported zones listed above.
 * The zone is a static constant and is never freed.
 */
TIMEUTIL_MUST_CHECK const struct timeutil_zone *timeutil_zone_find(const char *name);

/* Returns the IANA name of `zone`, a static string. */
const char *timeutil_zone_name(const struct timeutil_zone *zone);

/*
 * Returns the offset of `zone` from UTC at the instant `utc`, in seconds
 * (local time = UTC + offset): 3600 or 7200 for Europe/Paris; the standard
 * offset for an instant outside the years 0 to 9999.
 */
int timeutil_offset(const struct timeutil_zone *zone, int64_t utc);

/*
 * Converts the instant `utc` to the local time of `zone` and stores it in
 * `*out`, with tm_wday, tm_yday and tm_isdst (1 in summer time, else 0) set
 * and every other member zeroed.  Returns false, leaving `*out` unspecified,
 * when `zone` or `out` is NULL or the local year is outside 0000-9999.
 */
TIMEUTIL_MUST_CHECK bool timeutil_to_local(const struct timeutil_zone *zone, int64_t utc,
                                           struct tm *out);

/*
 * Converts the local time `*local` of `zone` to an instant stored in `*utc`.
 * Only tm_year, tm_mon, tm_mday, tm_hour, tm_min and tm_sec are read; like
 * timegm(), out-of-range values are carried over (tm_mday 32 of January is
 * the 1st of February, tm_hour 24 is midnight of the next day).
 *
 * A local time that does not exist, in the hour skipped when summer time
 * starts, is moved forward by the length of the gap: 02:30 on the last Sunday
 * of March in Paris gives 03:30 summer time (01:30 UTC), as mktime() does.
 * A local time that happens twice, in the hour repeated when summer time
 * ends, gives the first occurrence: 02:30 on the last Sunday of October in
 * Paris gives 02:30 summer time (00:30 UTC).
 *
 * Returns false, leaving `*utc` untouched, when an argument is NULL or the
 * normalised date is outside the years 0000-9999.
 */
TIMEUTIL_MUST_CHECK bool timeutil_from_local(const struct timeutil_zone *zone,
                                             const struct tm *local, int64_t *utc);

/*
 * Returns the instant of the local midnight that starts the local day of
 * `zone` containing `utc`.  On the days summer time starts or ends the day
 * that follows is 23 or 25 hours long; the result is still the midnight.
 * `zone` must not be NULL; an unsupported `utc` returns `utc` itself.
 */
int64_t timeutil_local_day_start(const struct timeutil_zone *zone, int64_t utc);

/*
 * Returns the instant of the next local midnight after `utc` in `zone`, the
 * exclusive end of the local day containing `utc`.  It is 23, 24 or 25 hours
 * after timeutil_local_day_start().  `zone` must not be NULL; an unsupported
 * `utc` returns `utc` itself.
 */
int64_t timeutil_local_day_end(const struct timeutil_zone *zone, int64_t utc);

/*
 * Parses an RFC 3339 timestamp of the form YYYY-MM-DDTHH:MM[:SS[.f...]] then
 * "Z" or an offset "+HH:MM"/"-HH:MM", and stores the instant in `*out`.
 * Parsing is strict: upper-case "T" and "Z" only, every field with exactly
 * its number of digits, dates that exist (no February 30, February 29 only in
 * leap years), hours 00-23, minutes and seconds 00-59 (no leap second),
 * offsets up to 23:59, a fraction of 1 to 9 digits, and nothing after the
 * offset.  The fraction is accepted and dropped (the instant is truncated to
 * the second).  Seconds may be omitted, in which case they are zero.
 * Returns false, leaving `*out` untouched, when `s` is not such a timestamp
 * or an argument is NULL.
 */
TIMEUTIL_MUST_CHECK bool timeutil_parse_rfc3339(const char *s, int64_t *out);

/*
 * Parses a local time without offset, YYYY-MM-DDTHH:MM[:SS], with the same
 * strictness as timeutil_parse_rfc3339() (no fraction, nothing after the
 * seconds), interprets it in `zone` as timeutil_from_local() does (skipped
 * times move forward, repeated times give the first occurrence) and stores
 * the instant in `*out`.  Returns false, leaving `*out` untouched, on any
 * error.
 */
TIMEUTIL_MUST_CHECK bool timeutil_parse_local(const struct timeutil_zone *zone, const char *s,
                                              int64_t *out);

/*
 * Writes `utc` as an RFC 3339 local time of `zone` with its numeric offset,
 * e.g. "2026-12-01T14:00:00+01:00" ("+00:00" in UTC), NUL-terminated, into
 * `buf` of `n` bytes; TIMEUTIL_RFC3339_SIZE bytes are always enough.
 * Returns false, writing an empty string when `n` > 0, when `buf` is too
 * small, `zone` is NULL or the local year is outside 0000-9999.
 */
TIMEUTIL_MUST_CHECK bool timeutil_format_rfc3339(const struct timeutil_zone *zone, int64_t utc,
                                                 char *buf, size_t n);

/*
 * Returns the deadline of a request made at `now` with urgency `u`:
 *   TIMEUTIL_SAME_DAY  the end of the local day of `zone` (the next local
 *                      midnight, timeutil_local_day_end()).  This holds even
 *                      late in the evening: a request made at 23:30 has 30
 *                      minutes.  The deadline is not pushed to the next day
 *                      when less than 2 hours remain, because "same day" is a
 *                      promise made to the patient and to the ACI indicators;
 *                      a requester who can accept tomorrow asks for H24.
 *   TIMEUTIL_H24       now + 24 hours (86,400 s, whatever the clock change).
 *   TIMEUTIL_H48       now + 48 hours.
 * An unknown urgency returns `now`, a deadline already reached.  `zone` must
 * not be NULL.
 */
int64_t timeutil_deadline(const struct timeutil_zone *zone, int64_t now, enum timeutil_urgency u);

/* Returns the current instant from CLOCK_REALTIME, in seconds since the epoch. */
int64_t timeutil_now(void);

/*
 * Returns milliseconds from CLOCK_MONOTONIC: an arbitrary origin, never going
 * back, for measuring durations and arming timers, never for dates.
 */
int64_t timeutil_monotonic_ms(void);

#endif
