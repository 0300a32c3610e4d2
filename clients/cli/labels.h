/* labels: the French words snpctl shows to its users for the protocol's
 * enumerated values (modes, statuses, motifs...), and the short local date
 * formats of its tables.
 *
 * The words are those the protocol declares ("labels_fr" of each enum in
 * protocol/snp.v1.json, embedded in the codec), the web pages' words, with
 * their first letter in lower case as they stand inside snpctl's tables and
 * sentences ("libre", "à domicile"; acronyms such as "SAS" unchanged).
 *
 * The command line itself takes the protocol's English values (`--mode
 * office`), which are stable and scriptable; only what is printed for people
 * is French.  The labels are read from the declaration on first use (the
 * process is single-threaded; snp_proto_init() is called if nobody has);
 * every function returns strings that live until the process ends, or
 * writes into the caller's buffer.
 */
#ifndef SNPCTL_LABELS_H
#define SNPCTL_LABELS_H

#include <stddef.h>

/* The enumerations of snp.v1 that have a French label (all declared with
 * their labels but LABELS_INDICATOR_UNIT, whose table is snpctl's own). */
enum labels_kind {
    LABELS_SLOT_STATUS,
    LABELS_REQUEST_STATUS,
    LABELS_BOOKING_STATUS,
    LABELS_MODE,
    LABELS_AUDIENCE,
    LABELS_URGENCY,
    LABELS_MOTIF,
    LABELS_SEX,
    LABELS_OUTCOME,
    LABELS_CANCEL_REASON,
    LABELS_DECLINE_REASON,
    LABELS_HALF_DAY,
    LABELS_SITE_KIND,
    LABELS_ROLE,
    LABELS_PROTOCOL,
    LABELS_TEST_RESULT,
    LABELS_EXCLUSION,
    LABELS_PRIORITY_GROUP,
    LABELS_HORIZON,
    LABELS_TOKEN_STATE,
    LABELS_CALL_OUTCOME,
    LABELS_PUSH_STATE,         /* push.list: pending, dead */
    LABELS_APPOINTMENT_STATUS, /* what the SAS platform is told */
    LABELS_INDICATOR_UNIT,     /* not an enumeration: the units indicators.get writes */
    LABELS_SUPPLEMENT_REASON,  /* participation.get: why no supplement */
    LABELS_PRECONDITION_KIND,  /* sas_registered, cpts_member */
    LABELS_DUTY_STATUS,        /* shift.assign: independent, locum, retired, resident */
    LABELS_MESSAGE_KIND,       /* message.list: confirmation, mt_summary, mt_handover */
    LABELS_MESSAGE_CHANNEL,    /* sms, email, mssante */
    LABELS_MESSAGE_STATE,      /* pending, sent, dead */
    LABELS_KIND_COUNT
};

/* Returns the French label of `value` in the enumeration `kind`.  A value the
 * table does not know (a newer server may add values within snp.v1) is
 * returned as it is, and NULL gives "—". */
const char *labels_get(enum labels_kind kind, const char *value);

/* Returns the number of values of `kind` and, through `*values`, their
 * protocol names in declaration order (for menus and help texts). */
size_t labels_values(enum labels_kind kind, const char *const **values);

/* Returns the French sentence for the snp.v1 error `code` ("slot_taken"...),
 * or a generic sentence for a code it does not know. */
const char *labels_error(const char *code);

/* Writes the local date and time of the RFC 3339 timestamp `ts` as the
 * server wrote it (the territory's local time), e.g. "mar. 01/12 14:00",
 * into `buf` of `n` bytes.  A string that is not a timestamp is copied as it
 * is; NULL gives "—". */
void labels_when(const char *ts, char *buf, size_t n);

/* Writes the calendar date `date` ("2026-12-01") as "mar. 01/12" into `buf`
 * of `n` bytes.  A string that is not a date is copied as it is; NULL gives
 * "—". */
void labels_day(const char *date, char *buf, size_t n);

/* Same as labels_when() with the year: "mar. 01/12/2026 14:00". */
void labels_when_year(const char *ts, char *buf, size_t n);

/* Writes `ts` in full, as said to a patient: "jeudi 10 décembre 2026 à
 * 14 h 30" ("1er" for the first of the month), into `buf` of `n` bytes. */
void labels_when_long(const char *ts, char *buf, size_t n);

/* Writes the time of day of `ts`, "14:00", into `buf` of `n` bytes. */
void labels_hhmm(const char *ts, char *buf, size_t n);

/* Writes a number of seconds as "2 min 05 s" (or "45 s"). */
void labels_seconds(long seconds, char *buf, size_t n);

#endif
