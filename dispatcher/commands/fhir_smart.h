/* The SMART Scheduling Links feed (docs/fhir.md, "SMART Scheduling Links
 * feed"): the slots open to the public audience, for slot discovery clients,
 * as a bulk-publication manifest and one set of NDJSON files per territory.
 *
 *   GET /fhir/$bulk-publish                     the manifest (application/json)
 *   GET /fhir/bulk/<territory>/Location.ndjson  the sites of the published schedules
 *   GET /fhir/bulk/<territory>/Schedule.ndjson  one per practitioner and site
 *   GET /fhir/bulk/<territory>/Slot.ndjson      the published slots
 *
 * The files are application/fhir+ndjson, one resource a line.  No token is
 * needed: the slots are those anyone, patients included, may have.  Every
 * answer is built from the in-memory store on the loop, without a database
 * query, and may be cached for FHIR_SMART_MAX_AGE seconds.  No patient data
 * and no practitioner name is ever written.
 */
#ifndef SNP_FHIR_SMART_H
#define SNP_FHIR_SMART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatcher/core/dispatch.h"
#include "dispatcher/net/server.h"
#include "dispatcher/core/store.h"

/* The files' media type. */
#define FHIR_SMART_NDJSON "application/fhir+ndjson"

/* How long a client or a proxy may keep an answer (Cache-Control), which
 * the specification reads as the polling interval it asks of clients. */
#define FHIR_SMART_MAX_AGE 60

/* The files of a territory, in the manifest's order. */
enum fhir_smart_file {
    FHIR_SMART_LOCATION,
    FHIR_SMART_SCHEDULE,
    FHIR_SMART_SLOT,
    FHIR_SMART_NFILES
};

/* Whether `path` (as the server keeps it, percent-decoded) belongs to the
 * feed: the manifest or anything under /fhir/bulk/.  fhir_on_http() hands
 * those to fhir_smart_on_http(). */
bool fhir_smart_path(const char *path);

/* Answers a request whose path fhir_smart_path() accepted, from the store of
 * `d`: 200 with the manifest or a file for GET and HEAD, 405 for another
 * method, 404 for an unknown territory or file, 503 while the store is
 * loading; the errors are OperationOutcomes.  The Accept header and the
 * query string (`_since`, which the specification lets servers ignore) are
 * not looked at.  Always ends with server_http_respond(). */
void fhir_smart_on_http(const struct dispatch *d, struct http_exchange *ex);

/* Whether slot `s` is in the feed at instant `now`: free, not started, with a
 * practitioner and a site, and open to everyone (audience public, or its
 * release rule applied: match_slot_open_to() for no requester kind). */
bool fhir_smart_slot_published(const struct slot *s, int64_t now);

/* The manifest of every territory of `st` at `now`, as JSON text: its
 * `request` is <base>/fhir/$bulk-publish and each territory's three files
 * are <base>/fhir/bulk/<territory id>/<Type>.ndjson.  Returns the text (the
 * caller frees it) and its length in *len, or NULL when memory is short. */
char *fhir_smart_manifest(const struct store *st, int64_t now, const char *base, size_t *len);

/* File `what` of territory `t` at `now`, as NDJSON text (empty when nothing
 * is published): the published slots; their Schedules, one per practitioner
 * and site; the sites of those Schedules as Locations.  `base` starts the
 * Locations' identifier system; `link_base` is public_url, the start of the
 * booking deep link of each Slot ("" for none).  Returns the text (the
 * caller frees it) and its length in *len, or NULL when memory is short. */
char *fhir_smart_ndjson(const struct store *st, const struct territory *t,
                        enum fhir_smart_file what, int64_t now, const char *base,
                        const char *link_base, size_t *len);

#endif
