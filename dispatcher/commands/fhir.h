/* The FHIR R4 interface for the national SAS platform (docs/fhir.md): the
 * slot search of the platform's "CPTS" use case and the capability statement.
 *
 *   GET /fhir/metadata   the CapabilityStatement (no token needed)
 *   GET /fhir/Slot       the platform's search, for tokens of role platform:
 *                        free slots of the caller's territory open to the
 *                        SAS, with their Schedule, Practitioner,
 *                        PractitionerRole (Location contained),
 *                        HealthcareService and Organization (the CPTS);
 *                        without practitioners, every such slot, in pages
 *                        (_count, and the next link's _cursor)
 *   GET /fhir/<Type>/<id> a read of one of those resources
 *   GET /fhir/$bulk-publish and /fhir/bulk/...
 *                        the SMART Scheduling Links feed (fhir_smart.h)
 *
 * Answers are built from the in-memory store only: no database query
 * except the token look-up, which the authentication cache usually spares.
 * Every failure is answered with an OperationOutcome.
 */
#ifndef SNP_FHIR_H
#define SNP_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "dispatcher/commands/api.h"
#include "dispatcher/net/server.h"
#include "dispatcher/core/store.h"

/* At most this many practitioner identifiers in one search, as the
 * platform's specification says. */
#define FHIR_MAX_PRACTITIONERS 25

/* The answer's media type. */
#define FHIR_MEDIA_TYPE "application/fhir+json"

/* The server hook for requests under /fhir/ (ctx = the api).  Always ends
 * with server_http_respond(), possibly after the token look-up. */
void fhir_on_http(void *ctx, struct http_exchange *ex);

/* A parsed slot search. */
struct fhir_search {
    int64_t ge; /* start=ge...: slots starting at or after this instant */
    int64_t le; /* start=le...: and at or before this one */
    char rpps[FHIR_MAX_PRACTITIONERS][12]; /* the RPPS numbers asked for */
    size_t nrpps;
    size_t nidentifiers;       /* identifiers given (ADELI numbers match nothing here) */
    bool include_schedule;     /* _include=Slot:schedule */
    bool include_actors;       /* _include:iterate=Schedule:actor */
    bool include_service;      /* _include=Slot:service-type-reference */
    bool include_organisation; /* _include:iterate=HealthcareService:organization */
    size_t count;              /* _count: at most this many Slots (0: every one) */
    bool has_cursor;           /* _cursor: only the slots after (after_start, after_id) */
    int64_t after_start;
    int64_t after_id;
};

/* A generic search (no practitioner identifier) answers pages of this many
 * Slots unless _count says otherwise; _count is at most FHIR_MAX_COUNT. */
#define FHIR_DEFAULT_COUNT 200
#define FHIR_MAX_COUNT     1000

/* Parses the query string of GET /fhir/Slot as the server keeps it
 * (percent-encoded name=value pairs joined by '&').  Returns 0, or -1 with
 * a sentence in `why` and, in `code`, the FHIR issue type of the refusal
 * ("invalid", "not-supported", "too-costly"). */
int fhir_search_parse(const char *query, struct fhir_search *out, const char **code, char *why,
                      size_t whylen) __attribute__((warn_unused_result));

/* Writes the searchset Bundle answering `q` over the slots of territory `t`
 * at instant `now`, as JSON text; `base` is the server's address
 * ("https://host") that fullUrls start with, `link_base` the one of the
 * booking link put in each slot's comment ("" for none), `query` the query
 * string for the self link.  Returns the text (the caller frees it) and its
 * length in *len, or NULL when memory is short. */
char *fhir_search_bundle(const struct store *st, const struct territory *t,
                         const struct fhir_search *q, int64_t now, const char *base,
                         const char *link_base, const char *query, size_t *len);

/* The resource `type`/`id` of territory `t` as a read answers it at `now`
 * (a new reference), or NULL when there is none: a Slot exposed to the SAS;
 * the Schedule and PractitionerRole "<rpps>-<site>" and the Practitioner of
 * a practitioner with a live slot of the territory at that site; the
 * territory's HealthcareService and Organization when it has a FINESS. */
json_t *fhir_read(const struct store *st, const struct territory *t, const char *type,
                  const char *id, int64_t now, const char *base, const char *link_base);

/* The TRE-R314 slot types of a slot exposed to the SAS at instant `now`
 * (docs/fhir.md, "Slot types"): FHIR_TYPE_* bits. */
enum {
    FHIR_TYPE_PUBLIC = 1 << 0,
    FHIR_TYPE_PRO = 1 << 1,
    FHIR_TYPE_SNP = 1 << 2,
    FHIR_TYPE_CPTS = 1 << 3,
};
unsigned fhir_slot_types(const struct slot *s, int64_t now);

/* Writes the address fullUrls and feed URLs start with into `out` of
 * `size`: public_url when configured, else "http(s)://" and the request's Host
 * header ("localhost" when absent or holding characters a host cannot). */
void fhir_base_url(const struct http_exchange *ex, char *out, size_t size);

/* An OperationOutcome with one issue of `severity` error (a new reference). */
json_t *fhir_outcome(const char *code, const char *diagnostics);

/* Answers `status` with fhir_outcome(code, diagnostics) as
 * application/fhir+json (500 when memory is short). */
void fhir_respond_outcome(struct http_exchange *ex, int status, const char *code,
                          const char *diagnostics);

/* The CapabilityStatement of GET /fhir/metadata (a new reference). */
json_t *fhir_capability(const char *base, int64_t now);

#endif
