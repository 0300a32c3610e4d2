/*
 * fuzz_payload: the text of an snp_change notification, read by
 * payload_read() (dispatcher/core/payload.c), as PostgreSQL delivers it:
 * UTF-8 without NUL, at most 8000 bytes (NOTIFY's limit).  Other inputs
 * cannot arrive and are skipped.  Any session that may connect to the
 * database can post such a text.
 *
 * Beyond the sanitizers, the target checks payload.h's promise against
 * jansson: payload_read reads a text exactly when json_loads reads it into
 * an object of at most PAYLOAD_MAX_FIELDS scalar members (but for an array
 * or object that a repeated name hides from jansson's tree: refused), and
 * then answers for every member as jansson's accessors do on that tree.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dispatcher/core/payload.h"
#include "fuzz/fuzz_util.h"

#define NOTIFY_MAX_BYTES 8000

/* What payload_read must read: an object of scalars, not too many. */
static bool flat(json_t *j)
{
    if (!json_is_object(j) || json_object_size(j) > PAYLOAD_MAX_FIELDS)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        if (json_is_object(v) || json_is_array(v))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > NOTIFY_MAX_BYTES || memchr(data, '\0', size))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *whole = json_string(text); /* NULL when the text is not UTF-8 */
    if (!whole) {
        free(text);
        return 0;
    }
    json_decref(whole);

    json_t *j = json_loads(text, 0, NULL);
    struct payload p;
    bool ok = payload_read(&p, text);
    if (ok || !j || !flat(j)) {
        FUZZ_CHECK(ok == (j != NULL && flat(j)), "payload_read %s what json_loads %s",
                   ok ? "reads" : "refuses", j ? "reads, not flat" : "refuses");
    } else {
        /* Refused, where jansson's tree is flat: allowed only when a
         * repeated name hid an array or object from that tree (payload.h:
         * one inside is refused whole). */
        json_t *once = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(!once && strpbrk(text + 1, "[{"), "payload_read refuses what json_loads reads");
        json_decref(once);
    }
    if (ok) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            const char *want = json_string_value(v), *got = payload_str(&p, key);
            FUZZ_CHECK((want == NULL) == (got == NULL), "member \"%s\": string or not", key);
            FUZZ_CHECK(!want || (strlen(got) == json_string_length(v) && strcmp(got, want) == 0),
                       "member \"%s\": \"%s\", jansson's \"%s\"", key, got, want);
            FUZZ_CHECK(payload_int(&p, key) == json_integer_value(v), "member \"%s\": integer",
                       key);
            FUZZ_CHECK(payload_true(&p, key) == json_is_true(v), "member \"%s\": true", key);
        }
        for (size_t i = 0; i < p.n; i++)
            FUZZ_CHECK(json_object_get(j, p.fields[i].key) != NULL,
                       "member \"%s\" read that jansson does not have", p.fields[i].key);
    }
    payload_free(&p);
    json_decref(j);
    free(text);
    return 0;
}
