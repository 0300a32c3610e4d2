/* csv: a reader of the CSV files a coordinator exports from a spreadsheet.
 *
 * RFC 4180 with the habits of French spreadsheets: the separator is ',' or
 * ';' (whichever occurs more often outside quotes in the first record), a
 * UTF-8 byte order mark at the start is skipped, lines end in LF or CRLF,
 * fields may be quoted with '"' (a doubled quote inside stands for one) and
 * a quoted field may span lines.
 *
 * Usage: csv_open(), then csv_next() until it returns 0, then csv_close().
 * Each record's fields stay valid until the next call.
 */
#ifndef SNPCTL_CSV_H
#define SNPCTL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CSV_MUST_CHECK __attribute__((warn_unused_result))

struct csv {
    FILE *f;
    char sep;       /* ',' or ';', decided on the first record */
    long next_line; /* physical line number where the next record starts */
    long line;      /* physical line number where the current record started */
    char *buf;      /* the current record's field bytes, each NUL-terminated */
    size_t len, cap;
    size_t *starts; /* offsets of the fields in buf */
    size_t nfields, fcap;
    char **fields; /* nfields pointers into buf, rebuilt per record */
    bool first;    /* the next record is the first one */
};

/* Opens `path` for reading.  Returns 0, or -1 with errno set. */
CSV_MUST_CHECK int csv_open(struct csv *c, const char *path);

/* Reads the next record.  Returns 1 with the fields in `c->fields`
 * (`c->nfields` of them) and the line number of its start in `c->line`; 0 at
 * the end of the file; -1 with `*why` (a static French sentence) on a
 * record that cannot be read (a quote never closed, invalid UTF-8, a record
 * over 64 KiB); reading may go on after -1, from the next line.  Lines that
 * are entirely empty are skipped. */
CSV_MUST_CHECK int csv_next(struct csv *c, const char **why);

/* Closes the file and frees the buffers. */
void csv_close(struct csv *c);

/* Returns whether `s` is valid UTF-8 (no overlong forms or surrogates). */
bool csv_utf8_valid(const char *s);

#endif
