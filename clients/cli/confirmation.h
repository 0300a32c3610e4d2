/* confirmation: the confirmation handed to a patient whose request is booked
 * (issue 15 §4), for every requester: when, with whom, where (or how, at
 * home or by teleconsultation), what to bring, whom to tell when the patient
 * cannot come, the request's number and who sent the patient.
 *
 * The document is built once, as a list of parts, from request.get's
 * answer, then written as plain text (72 columns, for a terminal or `lp`) or
 * as a printable HTML page (one A5 or A4 sheet), so that the two cannot say
 * different things.  The web pages build the same document in
 * clients/web/confirmation.js: change the two together.
 *
 * The motif is deliberately left out, like every other health detail: the
 * sheet leaves with the patient and may be read by others (family, a
 * neighbour, a pharmacy counter); the practice already has it.  The
 * patient's name is printed only while the request still carries it (until
 * the identity is erased).
 *
 * The caller owns the struct (usually on its stack): confirmation_build(),
 * the writers, then confirmation_free().
 */
#ifndef SNPCTL_CONFIRMATION_H
#define SNPCTL_CONFIRMATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define CONFIRMATION_MAX_PARTS 32

/* What a part of the document is, which decides how each writer lays it
 * out. */
enum confirmation_kind {
    CONFIRMATION_HEADER,  /* the territory's name, above the title */
    CONFIRMATION_TITLE,   /* "Confirmation de rendez-vous" */
    CONFIRMATION_FIELD,   /* "label : text" */
    CONFIRMATION_NOTE,    /* a paragraph of advice */
    CONFIRMATION_HEADING, /* the title of the list that follows */
    CONFIRMATION_ITEM,    /* one item of that list */
    CONFIRMATION_CANCEL,  /* what to do when the patient cannot come */
    CONFIRMATION_FOOTER,  /* small print: the request's number */
};

struct confirmation_part {
    enum confirmation_kind kind;
    const char *label; /* CONFIRMATION_FIELD only: a string literal */
    char *text;        /* owned */
};

struct confirmation {
    struct confirmation_part parts[CONFIRMATION_MAX_PARTS];
    size_t nparts;
    bool failed; /* an allocation failed: the document is incomplete */
};

/* Builds into `c` the confirmation of `request` (request.get's answer,
 * borrowed) for the patient.  `territory` (territory.get's answer, may be
 * NULL) names the sheet when the booked site is one of its own;
 * `requester` (the caller's organisation, from the `auth` session, may be
 * NULL) is who sent the patient.  Returns false when the request has no
 * standing booking (nothing to confirm: `c` is left empty) or memory ran
 * out; confirmation_free() must be called either way. */
bool confirmation_build(struct confirmation *c, const json_t *request, const json_t *territory,
                        const char *requester) __attribute__((warn_unused_result));

/* Writes the confirmation to `out` as plain text, 72 columns. */
void confirmation_write_text(const struct confirmation *c, FILE *out);

/* Writes the confirmation to `out` as a complete HTML page (UTF-8, no
 * script, its print style inline) that a browser prints on one sheet. */
void confirmation_write_html(const struct confirmation *c, FILE *out);

/* Frees what `c` holds; `c` may be built again afterwards. */
void confirmation_free(struct confirmation *c);

#endif
