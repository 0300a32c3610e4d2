/*
 * fuzz_fhir: the query string of the SAS platform's FHIR slot search
 * (dispatcher/commands/fhir.c), as the server keeps it (percent-encoded pairs joined
 * by '&'): fhir_search_parse(), then, for a search it accepts, the Bundle
 * written over an empty territory with that query in its self link.
 *
 * Beyond the sanitizers, the target checks that a refusal explains itself
 * with one of the three issue types, that an accepted search is within its
 * limits (a generic one, without practitioners, always paged), and that the Bundle is JSON whatever
 * bytes the query held.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dispatcher/commands/fhir.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char query[sizeof(((struct http_exchange *)0)->query)];
    if (size >= sizeof(query))
        size = sizeof(query) - 1;
    memcpy(query, data, size);
    query[size] = '\0';

    struct fhir_search q;
    const char *code = NULL;
    char why[256] = "";
    if (fhir_search_parse(query, &q, &code, why, sizeof(why)) != 0) {
        FUZZ_CHECK(why[0] != '\0', "a refused search says nothing");
        FUZZ_CHECK(code && (strcmp(code, "invalid") == 0 || strcmp(code, "not-supported") == 0 ||
                            strcmp(code, "too-costly") == 0),
                   "issue type %s", code ? code : "(none)");
        return 0;
    }
    FUZZ_CHECK(q.nidentifiers <= FHIR_MAX_PRACTITIONERS, "%zu identifiers accepted",
               q.nidentifiers);
    /* Without identifiers, a generic search: always in pages. */
    FUZZ_CHECK(q.count <= FHIR_MAX_COUNT && (q.nidentifiers > 0 || q.count >= 1),
               "a page of %zu slots accepted", q.count);
    FUZZ_CHECK(!q.has_cursor || q.after_id >= 1, "cursor after slot %lld accepted",
               (long long)q.after_id);
    FUZZ_CHECK(q.nrpps <= q.nidentifiers && q.ge <= q.le, "an inconsistent search accepted");
    for (size_t i = 0; i < q.nrpps; i++)
        FUZZ_CHECK(strlen(q.rpps[i]) == 11 && strspn(q.rpps[i], "0123456789") == 11,
                   "RPPS \"%s\" accepted", q.rpps[i]);

    struct store st = {0};
    struct territory t = {.id = "fuzz-t", .name = "Territoire", .finess = "350049871"};
    t.zone = timeutil_zone_find("Europe/Paris");
    size_t len = 0;
    char *text =
        fhir_search_bundle(&st, &t, &q, 1764000000, "https://snp.example", "", query, &len);
    FUZZ_CHECK(text != NULL, "no bundle");
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    FUZZ_CHECK(j != NULL, "the bundle is not JSON: %s", err.text);
    json_decref(j);
    free(text);
    return 0;
}
