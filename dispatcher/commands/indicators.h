/* The declared indicators: extraction by an operator (`snpd indicators`)
 * and the protocol's read (indicators.get).
 *
 * Both ask PostgreSQL for one document in one round trip: the SQL functions
 * of sql/migrations/0004_indicators.sql compute every figure from the event
 * log, mask the cells that count too few patients, and audit the read.  This
 * module only renders that document, as CSV, JSON or a self-contained HTML
 * report in French, or as the practitioners' participation statement (CSV).
 * Nothing here reads the clock: two extractions of a closed period give the
 * same bytes.  The definitions are documented in docs/indicators.md.
 */
#ifndef SNP_INDICATORS_H
#define SNP_INDICATORS_H

#include <stdbool.h>

#include <jansson.h>

#include "base/buf.h"
#include "dispatcher/config.h"
#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

/* The outputs of an extraction. */
enum indicators_format {
    INDICATORS_CSV,       /* one row per indicator and breakdown value */
    INDICATORS_JSON,      /* the whole document, indented */
    INDICATORS_HTML,      /* the report for a meeting, with inline SVG charts */
    INDICATORS_STATEMENT, /* the participation statement per practitioner and week (CSV) */
};

/* `snpd indicators --territory ID (--month YYYY-MM | --quarter YYYY-Qn |
 * --year YYYY) [--format csv|json|html] [--statement] [--output FILE]`.
 * `argv[0]` is the command's name ("indicators"), its options follow, as
 * getopt expects.  Runs a libuv loop of its own with one database
 * connection (cfg->database), writes the extraction to FILE (replaced
 * atomically) or to standard output, and records the export in the audit
 * table with the operator's login name.  Returns the process exit code: 0
 * done, 1 failure (database, territory, file), 2 usage. */
int indicators_command(const struct config *cfg, int argc, char **argv);

/* Renders the document returned by snp_indicators_export() (or
 * snp_indicators_document()) in `format`, appending to `out`.  Returns false
 * when the document lacks a member the format needs; `out->failed` reports a
 * lack of memory. */
bool indicators_render(json_t *doc, enum indicators_format format, struct buf *out)
    __attribute__((warn_unused_result));

/* The protocol message indicators.get (roles coordinator and admin, checked
 * by the API from the protocol description): the indicators of one month of
 * the caller's territory, masked cells left out, in one audited round trip.
 * Same calling convention as dispatch.h; `cb` is always called once. */
void indicators_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                    void *arg);

/* The protocol message indicators.export (coordinator, admin): the
 * extraction of a month, a quarter or a contract year of the caller's
 * territory in a format of indicators_render (the same bytes as
 * `snpd indicators`), audited as indicators.export with the caller's role,
 * in one round trip; the text is answered in parts of at most the
 * protocol's max_string_bytes.  Same calling convention as dispatch.h. */
void indicators_export(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);

#endif
