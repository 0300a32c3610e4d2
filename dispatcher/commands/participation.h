/* A GP's proof of participation (issue 15, section 2): the protocol's
 * participation.get, participation.attestation,
 * participation.precondition.set and participation.precondition.list.
 *
 * Every figure comes from the SQL functions of
 * sql/migrations/0021_gp_participation.sql, in one round trip per call,
 * which also check who may read whose participation (a gp their own, a
 * coordinator or an admin a practitioner of their territory) and write the
 * audit rows.  This module passes the arguments, maps the errors and renders
 * the yearly attestation (printable HTML in French, or CSV).  The rules and
 * their sources are in docs/participation.md.  Same calling convention as
 * dispatch.h: `cb` is always called exactly once.
 */
#ifndef SNP_PARTICIPATION_H
#define SNP_PARTICIPATION_H

#include <stdbool.h>

#include <jansson.h>

#include "base/buf.h"
#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

/* participation.get: the weeks, totals, preconditions and bookings of one
 * practitioner over a year or a period of days (the caller's own RPPS by
 * default for a gp; rpps is required of a coordinator or an admin). */
void participation_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);

/* participation.attestation: the yearly attestation as a file in parts
 * (render_parts), audited as participation.attestation. */
void participation_attestation(struct dispatch *d, const struct caller *c, json_t *data,
                               answer_cb cb, void *arg);

/* participation.precondition.set: records or sets again a precondition of a
 * practitioner of the caller's territory; ANSWER_REPEAT when it set an
 * existing one again. */
void participation_precondition_set(struct dispatch *d, const struct caller *c, json_t *data,
                                    answer_cb cb, void *arg);

/* participation.precondition.list: a gp's own, or the caller's territory's. */
void participation_precondition_list(struct dispatch *d, const struct caller *c, json_t *data,
                                     answer_cb cb, void *arg);

/* Renders the attestation document of snp_participation_attestation() as
 * HTML (`html`) or CSV, appending to `out`.  Returns false when the
 * document lacks a member it needs; `out->failed` reports a lack of memory. */
bool participation_render(json_t *doc, bool html, struct buf *out)
    __attribute__((warn_unused_result));

#endif
