/* Writing the files this service hands out (indicators' extractions, the
 * GPs' participation attestation): CSV fields (RFC 4180), HTML text and
 * French numbers, and the cutting of a file into the parts a protocol answer
 * carries.  Shared by dispatcher/commands/indicators.c and dispatcher/commands/participation.c
 * so that both quote, escape and cut the same way.
 */
#ifndef SNP_RENDER_H
#define SNP_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"

/* The UTF-8 byte order mark that opens every CSV file, so that spreadsheet
 * software in French reads the accents right (3 bytes, NUL-terminated). */
extern const char render_utf8_bom[];

/* Appends `s` as one CSV field (quoted when it holds a comma, a quote or a
 * line break; quotes doubled), then a comma, or CRLF when `last`. */
void render_csv_field(struct buf *b, const char *s, bool last);

/* Appends a CSV row of `n` fields (NULL written as empty). */
void render_csv_row(struct buf *b, const char *const *fields, size_t n);

/* Appends `s` escaped for HTML text and attribute values. */
void render_html_text(struct buf *b, const char *s);

/* Appends a number written by SQL ("1234.5", "<5", "") in French: decimal
 * comma, thousands separated by a narrow no-break space; anything that does
 * not start with digits is appended as text; escaped for HTML. */
void render_html_number(struct buf *b, const char *s);

/* The protocol's file answer for `len` bytes of `text`: an array of parts of
 * at most the protocol's max_string_bytes each, cut on UTF-8 character
 * boundaries.  Returns a new reference, or NULL when the file needs more
 * than max_array_items parts (or memory is lacking). */
json_t *render_parts(const char *text, size_t len);

#endif
