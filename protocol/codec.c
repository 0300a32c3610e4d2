/*
 * The snp.v1 codec: compiles protocol/snp.v1.json into tables once, then
 * parses, validates and builds messages from them.  See codec.h.
 *
 * Everything compiled from the schema is allocated through remember() and
 * freed in one go by snp_proto_shutdown(); strings point into the parsed
 * schema, which lives as long as the tables.
 */
#include "protocol/codec.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/validate.h"
#include "protocol/pattern.h"

#define LOG_MODULE "proto"

/* Bounds of the tables; the schema is refused past them. */
#define MAX_ROLES          32
#define MAX_TOPICS         32
#define MAX_ROUTE_SEGMENTS 16
#define MAX_PARAM_BYTES    64

/* The JSON types and formats a field may have. */
enum kind {
    K_STRING,
    K_INTEGER,
    K_NUMBER,
    K_BOOLEAN,
    K_OBJECT,
    K_ARRAY,
    K_ENUM,
    K_TIMESTAMP,
    K_DATE,
    K_RPPS,
    K_FINESS,
    K_INSEE,
    K_PHONE,
    K_COUNT
};

static const char *const kind_names[K_COUNT] = {
    [K_STRING] = "string",   [K_INTEGER] = "integer",     [K_NUMBER] = "number",
    [K_BOOLEAN] = "boolean", [K_OBJECT] = "object",       [K_ARRAY] = "array",
    [K_ENUM] = "enum",       [K_TIMESTAMP] = "timestamp", [K_DATE] = "date",
    [K_RPPS] = "rpps",       [K_FINESS] = "finess",       [K_INSEE] = "insee",
    [K_PHONE] = "phone",
};

static const char *const code_names[SNP_PROTO_CODE_COUNT] = {
    [SNP_PROTO_OK] = "ok",
    [SNP_PROTO_E_BAD_JSON] = "bad_json",
    [SNP_PROTO_E_TOO_LARGE] = "too_large",
    [SNP_PROTO_E_TOO_DEEP] = "too_deep",
    [SNP_PROTO_E_DUPLICATE_KEY] = "duplicate_key",
    [SNP_PROTO_E_INVALID_UTF8] = "invalid_utf8",
    [SNP_PROTO_E_UNKNOWN_TYPE] = "unknown_type",
    [SNP_PROTO_E_MISSING_FIELD] = "missing_field",
    [SNP_PROTO_E_INVALID_FIELD] = "invalid_field",
    [SNP_PROTO_E_UNKNOWN_FIELD] = "unknown_field",
    [SNP_PROTO_E_UNAUTHENTICATED] = "unauthenticated",
    [SNP_PROTO_E_TOKEN_EXPIRED] = "token_expired",
    [SNP_PROTO_E_TOKEN_REVOKED] = "token_revoked",
    [SNP_PROTO_E_FORBIDDEN] = "forbidden",
    [SNP_PROTO_E_OTHER_TERRITORY] = "other_territory",
    [SNP_PROTO_E_NOT_FOUND] = "not_found",
    [SNP_PROTO_E_METHOD_NOT_ALLOWED] = "method_not_allowed",
    [SNP_PROTO_E_CONFLICT] = "conflict",
    [SNP_PROTO_E_SLOT_TAKEN] = "slot_taken",
    [SNP_PROTO_E_HOLD_EXPIRED] = "hold_expired",
    [SNP_PROTO_E_TOO_LATE] = "too_late",
    [SNP_PROTO_E_RATE_LIMITED] = "rate_limited",
    [SNP_PROTO_E_UNAVAILABLE] = "unavailable",
    [SNP_PROTO_E_INTERNAL] = "internal",
};

/* A group of sibling fields of which exactly one, or at most one, is given. */
struct group {
    bool exactly;
    const char **names;
    size_t n;
};

struct field {
    const char *name;
    bool required;
    const struct snp_proto_type *type;
    const char **requires; /* sibling fields that must be present with this one */
    size_t nrequires;
};

struct snp_proto_type {
    enum kind kind;
    const char *name; /* for named types, else NULL */
    json_t *decl;
    bool has_min, has_max;
    json_int_t imin, imax; /* integers; characters, items or members for the others */
    double dmin, dmax;     /* numbers */
    const char **values;   /* enum */
    size_t nvalues;
    const char **labels_fr; /* enum: the French label of values[i], or NULL for none */
    const char *pattern; /* string */
    regex_t *re;
    struct pattern *fast; /* the pattern matched without regexec, when its shape allows */
    const struct snp_proto_type *items; /* array */
    bool unique;
    struct field *fields; /* object */
    size_t nfields;
    struct group *groups;
    size_t ngroups;
    int state; /* named types: 0 not compiled, 1 being compiled, 2 done */
};

/* An HTTP route: the message's path template split into segments. */
struct route {
    const struct snp_proto_message *msg;
    size_t nseg;
    const char *seg[MAX_ROUTE_SEGMENTS]; /* literal text, or the parameter's field name */
    size_t seglen[MAX_ROUTE_SEGMENTS];
    const struct field *param[MAX_ROUTE_SEGMENTS]; /* NULL for literal segments */
    size_t nliteral;
};

struct topic {
    const char *name;
    unsigned roles;
};

static struct {
    bool ready;
    json_t *schema;
    struct snp_proto_limits limits;
    const char *roles[MAX_ROLES];
    size_t nroles;
    struct topic topics[MAX_TOPICS];
    size_t ntopics;
    int http_status[SNP_PROTO_CODE_COUNT];
    int ws_close[SNP_PROTO_CODE_COUNT];
    const char *meaning[SNP_PROTO_CODE_COUNT];
    struct snp_proto_type **named;
    size_t nnamed;
    struct snp_proto_message *messages;
    size_t nmessages;
    struct snp_proto_push *pushes;
    size_t npushes;
    unsigned *push_topics;
    struct route *routes;
    size_t nroutes;
    /* Everything to free at shutdown. */
    void **allocs;
    size_t nallocs, capallocs;
    regex_t **regexes;
    size_t nregexes, capregexes;
} g;

/* ------------------------------------------------------------------ */
/* UTF-8 and text helpers                                              */

/* Returns the length of the longest prefix of `s` (`n` bytes) that does not
 * end inside a UTF-8 sequence.  `s` is assumed to be valid UTF-8 up to its
 * cut. */
static size_t utf8_boundary(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return 0;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return (n - (i - 1) >= need) ? n : i - 1;
}

/* Copies `src` into `dst` (`size` bytes), truncating on a character boundary. */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (size == 0)
        return;
    if (n >= size)
        n = utf8_boundary(src, size - 1);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* Counts the characters of the UTF-8 string `s` of `n` bytes. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    }
    return count;
}

/* Returns true when the `n` bytes at `s` are valid UTF-8 without NUL. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

void snp_proto_error_set(struct snp_proto_error *err, enum snp_proto_code code, const char *field,
                         const char *fmt, ...)
{
    if (err == NULL)
        return;
    if ((unsigned)code >= SNP_PROTO_CODE_COUNT)
        code = SNP_PROTO_E_INTERNAL;
    err->code = code;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        if (n < 0)
            err->message[0] = '\0';
        else if ((size_t)n >= sizeof(err->message))
            err->message[utf8_boundary(err->message, sizeof(err->message) - 1)] = '\0';
    } else {
        err->message[0] = '\0';
    }
    if (err->message[0] == '\0') {
        const char *m = g.meaning[code] ? g.meaning[code] : code_names[code];
        copy_utf8(err->message, sizeof(err->message), m);
    }
    copy_utf8(err->field, sizeof(err->field), field ? field : "");
}

/* ------------------------------------------------------------------ */
/* Schema compilation                                                  */

/* The state of one snp_proto_init_text() run: the first failure wins. */
struct cctx {
    bool failed;
    char why[512];
};

static bool fail(struct cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first failure of a compilation; always returns false. */
static bool fail(struct cctx *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->failed = true;
    }
    return false;
}

/* Allocates zeroed memory that snp_proto_shutdown() frees. */
static void *remember(struct cctx *c, size_t n, size_t size)
{
    if (g.nallocs == g.capallocs) {
        size_t cap = g.capallocs ? g.capallocs * 2 : 64;
        void **p = realloc(g.allocs, cap * sizeof(*p));
        if (p == NULL) {
            fail(c, "out of memory");
            return NULL;
        }
        g.allocs = p;
        g.capallocs = cap;
    }
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        fail(c, "out of memory");
        return NULL;
    }
    g.allocs[g.nallocs++] = p;
    return p;
}

/* Fails unless every key of `obj` is in the NULL-terminated `allowed`. */
static bool check_keys(struct cctx *c, json_t *obj, const char *where, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return fail(c, "%s: unknown key \"%s\"", where, key);
    }
    return true;
}

/* Reads a required or optional string member. */
static bool get_string(struct cctx *c, json_t *obj, const char *key, bool required,
                       const char *where, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return required ? fail(c, "%s: \"%s\" is required", where, key) : true;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(c, "%s: \"%s\" must be a non-empty string", where, key);
    *out = json_string_value(v);
    return true;
}

/* Reads a list of distinct non-empty strings into a remembered array. */
static bool get_string_list(struct cctx *c, json_t *list, const char *where, const char ***out,
                            size_t *n)
{
    if (!json_is_array(list))
        return fail(c, "%s: must be an array of strings", where);
    *n = json_array_size(list);
    *out = remember(c, *n, sizeof(char *));
    if (*out == NULL)
        return false;
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return fail(c, "%s: item %zu must be a non-empty string", where, i);
        (*out)[i] = json_string_value(v);
        for (size_t k = 0; k < i; k++) {
            if (strcmp((*out)[k], (*out)[i]) == 0)
                return fail(c, "%s: \"%s\" appears twice", where, (*out)[i]);
        }
    }
    return true;
}

/* Returns the index of the declared role `name`, or -1. */
static int role_index(const char *name)
{
    for (size_t i = 0; name != NULL && i < g.nroles; i++) {
        if (strcmp(g.roles[i], name) == 0)
            return (int)i;
    }
    return -1;
}

/* Returns the index of the declared topic `name`, or -1. */
static int topic_index(const char *name)
{
    for (size_t i = 0; name != NULL && i < g.ntopics; i++) {
        if (strcmp(g.topics[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* Reads a list of declared roles as a bit set. */
static bool get_roles(struct cctx *c, json_t *list, const char *where, unsigned *out)
{
    const char **names;
    size_t n;
    if (!get_string_list(c, list, where, &names, &n))
        return false;
    if (n == 0)
        return fail(c, "%s: at least one role is needed", where);
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        int r = role_index(names[i]);
        if (r < 0)
            return fail(c, "%s: undeclared role \"%s\"", where, names[i]);
        *out |= 1u << r;
    }
    return true;
}

static const struct snp_proto_type *named_type(struct cctx *c, const char *name, const char *where);
static bool compile_type(struct cctx *c, json_t *decl, struct snp_proto_type *t, const char *where,
                         bool implied_object);
static int validate_value(struct snp_proto_error *err, const struct snp_proto_type *t, json_t *v,
                          char *path, size_t len);

static const char *const type_keys[] = {
    "type",           "doc",   "example", "min",    "max",     "values",
    "labels_fr",      "items", "unique",  "fields", "pattern", "exactly_one_of",
    "at_most_one_of", NULL};
static const char *const field_keys[] = {
    "type",           "doc",   "example",  "min",      "max",     "values",
    "labels_fr",      "items", "unique",   "fields",   "pattern", "exactly_one_of",
    "at_most_one_of", "ref",   "required", "requires", "default", NULL};
static const char *const ref_field_keys[] = {"ref", "doc", "example", "required", "requires", NULL};

/* Validates an "example" (or a "default": `what`) against `t`; `where` names
 * it in the failure. */
static bool check_value(struct cctx *c, const struct snp_proto_type *t, json_t *value,
                        const char *what, const char *where)
{
    struct snp_proto_error err;
    char path[SNP_PROTO_FIELD_SIZE] = "";
    if (value == NULL)
        return true;
    if (validate_value(&err, t, value, path, 0) != 0)
        return fail(c, "%s: %s is invalid: %s: %s%s%s", where, what, code_names[err.code],
                    err.message, err.field[0] ? " at " : "", err.field);
    return true;
}

/* Reads "min"/"max" of a type. */
static bool compile_bounds(struct cctx *c, json_t *decl, struct snp_proto_type *t,
                           const char *where)
{
    json_t *min = json_object_get(decl, "min"), *max = json_object_get(decl, "max");
    bool counted = t->kind == K_STRING || t->kind == K_ARRAY || t->kind == K_OBJECT;
    bool valued = t->kind == K_INTEGER || t->kind == K_NUMBER;

    if ((min || max) && !counted && !valued)
        return fail(c, "%s: min/max do not apply to %s", where, kind_names[t->kind]);
    for (int i = 0; i < 2; i++) {
        json_t *b = i == 0 ? min : max;
        if (b == NULL)
            continue;
        if (t->kind == K_NUMBER ? !json_is_number(b) : !json_is_integer(b))
            return fail(c, "%s: %s must be %s", where, i == 0 ? "min" : "max",
                        t->kind == K_NUMBER ? "a number" : "an integer");
        if (counted && json_integer_value(b) < 0)
            return fail(c, "%s: %s must not be negative", where, i == 0 ? "min" : "max");
        if (i == 0) {
            t->has_min = true;
            t->imin = json_is_integer(b) ? json_integer_value(b) : 0;
            t->dmin = json_number_value(b);
        } else {
            t->has_max = true;
            t->imax = json_is_integer(b) ? json_integer_value(b) : 0;
            t->dmax = json_number_value(b);
        }
    }
    if (t->has_min && t->has_max && t->dmin > t->dmax)
        return fail(c, "%s: min is above max", where);
    if (t->kind == K_ARRAY && t->has_max && (size_t)t->imax > g.limits.max_array_items)
        return fail(c, "%s: max is above max_array_items", where);
    if (t->kind == K_STRING && t->has_max && (size_t)t->imax > g.limits.max_string_bytes)
        return fail(c, "%s: max is above max_string_bytes", where);
    return true;
}

/* Reads "exactly_one_of"/"at_most_one_of" of an object type. */
static bool compile_groups(struct cctx *c, json_t *decl, struct snp_proto_type *t,
                           const char *where)
{
    json_t *lists[2] = {json_object_get(decl, "exactly_one_of"),
                        json_object_get(decl, "at_most_one_of")};
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        if (lists[k] != NULL && !json_is_array(lists[k]))
            return fail(c, "%s: groups must be arrays of arrays of field names", where);
        n += lists[k] ? json_array_size(lists[k]) : 0;
    }
    t->groups = remember(c, n, sizeof(struct group));
    if (t->groups == NULL)
        return false;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; lists[k] && i < json_array_size(lists[k]); i++) {
            struct group *gr = &t->groups[t->ngroups++];
            gr->exactly = k == 0;
            if (!get_string_list(c, json_array_get(lists[k], i), where, &gr->names, &gr->n))
                return false;
            if (gr->n < 2)
                return fail(c, "%s: a group needs at least two fields", where);
            for (size_t j = 0; j < gr->n; j++) {
                bool found = false;
                for (size_t f = 0; f < t->nfields; f++) {
                    if (strcmp(t->fields[f].name, gr->names[j]) == 0) {
                        found = true;
                        if (t->fields[f].required)
                            return fail(c, "%s: grouped field \"%s\" must not be required", where,
                                        gr->names[j]);
                    }
                }
                if (!found)
                    return fail(c, "%s: group names unknown field \"%s\"", where, gr->names[j]);
            }
        }
    }
    return true;
}

/* Compiles one field declaration. */
static bool compile_field(struct cctx *c, const char *name, json_t *decl, struct field *f,
                          const char *where)
{
    char here[256];
    snprintf(here, sizeof(here), "%s.%s", where, name);
    if (!json_is_object(decl))
        return fail(c, "%s: a field must be an object", here);
    f->name = name;
    json_t *req = json_object_get(decl, "required");
    if (req != NULL && !json_is_boolean(req))
        return fail(c, "%s: \"required\" must be a boolean", here);
    f->required = json_is_true(req);

    const char *ref;
    if (!get_string(c, decl, "ref", false, here, &ref))
        return false;
    if (ref != NULL) {
        if (!check_keys(c, decl, here, ref_field_keys))
            return false;
        f->type = named_type(c, ref, here);
        if (f->type == NULL)
            return false;
    } else {
        if (!check_keys(c, decl, here, field_keys))
            return false;
        struct snp_proto_type *t = remember(c, 1, sizeof(*t));
        if (t == NULL || !compile_type(c, decl, t, here, false))
            return false;
        f->type = t;
    }
    json_t *requires = json_object_get(decl, "requires");
    if (requires != NULL && !get_string_list(c, requires, here, &f->requires, &f->nrequires))
        return false;
    json_t *doc = json_object_get(decl, "doc");
    if (doc != NULL && !json_is_string(doc))
        return fail(c, "%s: \"doc\" must be a string", here);
    /* "default": what the server takes when the member is absent (the
     * territory's settings); the generated tables carry it. */
    return check_value(c, f->type, json_object_get(decl, "example"), "example", here) &&
           check_value(c, f->type, json_object_get(decl, "default"), "default", here);
}

/* Reads "labels_fr" of an enum: an object giving each declared value its
 * French label (what people read; the wire carries the value), no more, no
 * fewer, so that the clients that show them (clients/web/labels.js, snpctl)
 * never meet a value without one. */
static bool compile_labels(struct cctx *c, json_t *labels, struct snp_proto_type *t,
                           const char *where)
{
    if (labels == NULL)
        return true;
    if (t->kind != K_ENUM || !json_is_object(labels))
        return fail(c, "%s: \"labels_fr\" must be an object, on an enum", where);
    t->labels_fr = remember(c, t->nvalues, sizeof(char *));
    if (t->labels_fr == NULL)
        return false;
    const char *key;
    json_t *label;
    json_object_foreach (labels, key, label) {
        size_t i = 0;
        while (i < t->nvalues && strcmp(t->values[i], key) != 0)
            i++;
        if (i == t->nvalues)
            return fail(c, "%s: \"labels_fr\" names \"%s\", not one of its values", where, key);
        if (!json_is_string(label) || json_string_length(label) == 0)
            return fail(c, "%s: the label of \"%s\" must be a non-empty string", where, key);
        t->labels_fr[i] = json_string_value(label);
    }
    for (size_t i = 0; i < t->nvalues; i++) {
        if (t->labels_fr[i] == NULL)
            return fail(c, "%s: \"labels_fr\" has no label for \"%s\"", where, t->values[i]);
    }
    return true;
}

/* Compiles the type declaration `decl` into `t`.  With `implied_object`
 * (message requests, responses and push data) "type" may be omitted. */
static bool compile_type(struct cctx *c, json_t *decl, struct snp_proto_type *t, const char *where,
                         bool implied_object)
{
    const char *kind_name;
    t->decl = decl;
    if (!get_string(c, decl, "type", !implied_object, where, &kind_name))
        return false;
    if (kind_name == NULL) {
        t->kind = K_OBJECT;
    } else {
        for (t->kind = 0; t->kind < K_COUNT; t->kind++) {
            if (strcmp(kind_names[t->kind], kind_name) == 0)
                break;
        }
        if (t->kind == K_COUNT)
            return fail(c, "%s: unknown type \"%s\"", where, kind_name);
    }
    if (!compile_bounds(c, decl, t, where))
        return false;

    json_t *values = json_object_get(decl, "values");
    if ((values != NULL) != (t->kind == K_ENUM))
        return fail(c, "%s: \"values\" goes with type enum, and only there", where);
    if (values != NULL) {
        if (!get_string_list(c, values, where, &t->values, &t->nvalues))
            return false;
        if (t->nvalues == 0)
            return fail(c, "%s: an enum needs values", where);
    }
    if (!compile_labels(c, json_object_get(decl, "labels_fr"), t, where))
        return false;

    json_t *pattern = json_object_get(decl, "pattern");
    if (pattern != NULL) {
        if (t->kind != K_STRING || !json_is_string(pattern))
            return fail(c, "%s: \"pattern\" must be a string, on a string", where);
        t->pattern = json_string_value(pattern);
        t->re = remember(c, 1, sizeof(regex_t));
        if (t->re == NULL)
            return false;
        if (regcomp(t->re, t->pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return fail(c, "%s: pattern does not compile", where);
        struct pattern fast;
        if (pattern_compile(&fast, t->pattern)) {
            t->fast = remember(c, 1, sizeof(fast));
            if (t->fast == NULL)
                return false;
            *t->fast = fast;
        }
        if (g.nregexes == g.capregexes) {
            size_t cap = g.capregexes ? g.capregexes * 2 : 16;
            regex_t **p = realloc(g.regexes, cap * sizeof(*p));
            if (p == NULL) {
                regfree(t->re);
                return fail(c, "out of memory");
            }
            g.regexes = p;
            g.capregexes = cap;
        }
        g.regexes[g.nregexes++] = t->re;
    }

    json_t *items = json_object_get(decl, "items");
    json_t *unique = json_object_get(decl, "unique");
    if ((items != NULL) != (t->kind == K_ARRAY))
        return fail(c, "%s: \"items\" goes with type array, and only there", where);
    if (unique != NULL && (t->kind != K_ARRAY || !json_is_boolean(unique)))
        return fail(c, "%s: \"unique\" must be a boolean, on an array", where);
    if (items != NULL) {
        char here[256];
        snprintf(here, sizeof(here), "%s[]", where);
        if (!json_is_object(items))
            return fail(c, "%s: must be an object", here);
        const char *ref;
        if (!get_string(c, items, "ref", false, here, &ref))
            return false;
        if (ref != NULL) {
            static const char *const ref_keys[] = {"ref", NULL};
            if (!check_keys(c, items, here, ref_keys))
                return false;
            t->items = named_type(c, ref, here);
        } else {
            struct snp_proto_type *it = remember(c, 1, sizeof(*it));
            if (it == NULL || !check_keys(c, items, here, type_keys) ||
                !compile_type(c, items, it, here, false))
                return false;
            t->items = it;
        }
        if (t->items == NULL)
            return false;
        t->unique = json_is_true(unique);
        if (t->unique && (t->items->kind == K_OBJECT || t->items->kind == K_ARRAY))
            return fail(c, "%s: \"unique\" needs scalar items", where);
    }

    json_t *fields = json_object_get(decl, "fields");
    if ((fields != NULL) != (t->kind == K_OBJECT))
        return fail(c, "%s: \"fields\" goes with type object, and is required there", where);
    if (fields != NULL) {
        if (!json_is_object(fields))
            return fail(c, "%s: \"fields\" must be an object", where);
        t->nfields = json_object_size(fields);
        t->fields = remember(c, t->nfields, sizeof(struct field));
        if (t->fields == NULL)
            return false;
        size_t i = 0;
        const char *key;
        json_t *value;
        json_object_foreach(fields, key, value)
        {
            if (!compile_field(c, key, value, &t->fields[i++], where))
                return false;
        }
        for (i = 0; i < t->nfields; i++) {
            for (size_t r = 0; r < t->fields[i].nrequires; r++) {
                if (json_object_get(fields, t->fields[i].requires[r]) == NULL)
                    return fail(c, "%s.%s: requires unknown field \"%s\"", where, t->fields[i].name,
                                t->fields[i].requires[r]);
            }
        }
        if (!compile_groups(c, decl, t, where))
            return false;
    } else if (json_object_get(decl, "exactly_one_of") || json_object_get(decl, "at_most_one_of")) {
        return fail(c, "%s: groups go with type object", where);
    }
    json_t *doc = json_object_get(decl, "doc");
    if (doc != NULL && !json_is_string(doc))
        return fail(c, "%s: \"doc\" must be a string", where);
    return true;
}

/* Returns the named type `name`, compiling it on first use. */
static const struct snp_proto_type *named_type(struct cctx *c, const char *name, const char *where)
{
    for (size_t i = 0; i < g.nnamed; i++) {
        struct snp_proto_type *t = g.named[i];
        if (strcmp(t->name, name) != 0)
            continue;
        if (t->state == 1) {
            fail(c, "%s: type \"%s\" refers to itself", where, name);
            return NULL;
        }
        if (t->state == 0) {
            char here[256];
            snprintf(here, sizeof(here), "types.%s", name);
            t->state = 1;
            if (!check_keys(c, t->decl, here, type_keys) ||
                !compile_type(c, t->decl, t, here, false) ||
                !check_value(c, t, json_object_get(t->decl, "example"), "example", here))
                return NULL;
            t->state = 2;
        }
        return t;
    }
    fail(c, "%s: unknown type \"%s\"", where, name);
    return NULL;
}

/* Compiles a message's "request"/"response" or a push's "data": an object
 * declared inline or a reference to a named object type. */
static const struct snp_proto_type *compile_body(struct cctx *c, json_t *decl, const char *where)
{
    static const char *const body_keys[] = {"fields",         "ref", "doc", "exactly_one_of",
                                            "at_most_one_of", "min", "max", NULL};
    const char *ref;
    if (!json_is_object(decl)) {
        fail(c, "%s: must be an object", where);
        return NULL;
    }
    if (!check_keys(c, decl, where, body_keys) || !get_string(c, decl, "ref", false, where, &ref))
        return NULL;
    if (ref != NULL) {
        static const char *const ref_keys[] = {"ref", NULL};
        if (!check_keys(c, decl, where, ref_keys))
            return NULL;
        const struct snp_proto_type *t = named_type(c, ref, where);
        if (t != NULL && t->kind != K_OBJECT) {
            fail(c, "%s: \"%s\" is not an object type", where, ref);
            return NULL;
        }
        return t;
    }
    struct snp_proto_type *t = remember(c, 1, sizeof(*t));
    if (t == NULL || !compile_type(c, decl, t, where, true))
        return NULL;
    return t;
}

/* Returns the nesting depth of values of type `t` (scalars 0). */
static int type_depth(const struct snp_proto_type *t)
{
    int d = 0;
    if (t->kind == K_ARRAY)
        return 1 + type_depth(t->items);
    if (t->kind != K_OBJECT)
        return 0;
    for (size_t i = 0; i < t->nfields; i++) {
        int fd = type_depth(t->fields[i].type);
        if (fd > d)
            d = fd;
    }
    return 1 + d;
}

static bool compile_limits(struct cctx *c, json_t *limits)
{
    static const char *const keys[] = {"max_message_bytes",
                                       "max_server_message_bytes",
                                       "max_depth",
                                       "max_server_depth",
                                       "max_array_items",
                                       "max_string_bytes",
                                       "max_id_bytes",
                                       "messages_per_second",
                                       "message_burst",
                                       "handshake_timeout_s",
                                       "auth_timeout_s",
                                       "idle_timeout_s",
                                       "max_connections_per_address",
                                       "message_timeout_s",
                                       NULL};
    json_int_t v[14];
    if (!json_is_object(limits) || !check_keys(c, limits, "limits", keys))
        return fail(c, "limits: must be an object of known limits");
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *x = json_object_get(limits, keys[i]);
        if (!json_is_integer(x) || json_integer_value(x) <= 0 ||
            json_integer_value(x) > (json_int_t)1 << 30)
            return fail(c, "limits.%s: must be a positive integer", keys[i]);
        v[i] = json_integer_value(x);
    }
    struct snp_proto_limits *l = &g.limits;
    l->max_message_bytes = (size_t)v[0];
    l->max_server_message_bytes = (size_t)v[1];
    l->max_depth = (int)v[2];
    l->max_server_depth = (int)v[3];
    l->max_array_items = (size_t)v[4];
    l->max_string_bytes = (size_t)v[5];
    l->max_id_bytes = (size_t)v[6];
    l->messages_per_second = (int)v[7];
    l->message_burst = (int)v[8];
    l->handshake_timeout_s = (int)v[9];
    l->auth_timeout_s = (int)v[10];
    l->idle_timeout_s = (int)v[11];
    l->max_connections_per_address = (int)v[12];
    l->message_timeout_s = (int)v[13];
    if (l->max_depth > 64 || l->max_server_depth > 64)
        return fail(c, "limits: depths above 64 are not supported");
    return true;
}

static bool compile_errors(struct cctx *c, json_t *errors, json_t *common)
{
    static const char *const keys[] = {"http", "ws_close", "doc", NULL};
    const char *key;
    json_t *value;
    if (!json_is_object(errors))
        return fail(c, "errors: must be an object");
    json_object_foreach(errors, key, value)
    {
        enum snp_proto_code code;
        char here[128];
        snprintf(here, sizeof(here), "errors.%s", key);
        if (!snp_proto_code_parse(key, &code) || code == SNP_PROTO_OK)
            return fail(c, "%s: no such code in enum snp_proto_code", here);
        if (!json_is_object(value) || !check_keys(c, value, here, keys))
            return false;
        json_t *http = json_object_get(value, "http"), *ws = json_object_get(value, "ws_close");
        if (!json_is_integer(http) || json_integer_value(http) < 400 ||
            json_integer_value(http) > 599)
            return fail(c, "%s: \"http\" must be a 4xx or 5xx status", here);
        if (ws != NULL && (!json_is_integer(ws) || json_integer_value(ws) < 1000 ||
                           json_integer_value(ws) > 4999))
            return fail(c, "%s: \"ws_close\" must be a WebSocket close code", here);
        if (!get_string(c, value, "doc", true, here, &g.meaning[code]))
            return false;
        g.http_status[code] = (int)json_integer_value(http);
        g.ws_close[code] = ws ? (int)json_integer_value(ws) : 0;
    }
    for (int code = 1; code < SNP_PROTO_CODE_COUNT; code++) {
        if (g.http_status[code] == 0)
            return fail(c, "errors: code \"%s\" of enum snp_proto_code is not declared",
                        code_names[code]);
    }
    const char **names;
    size_t n;
    if (!get_string_list(c, common, "common_errors", &names, &n))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(errors, names[i]) == NULL)
            return fail(c, "common_errors: undeclared error \"%s\"", names[i]);
    }
    return true;
}

static bool compile_roles_topics(struct cctx *c, json_t *roles, json_t *topics)
{
    const char *key;
    json_t *value;
    if (!json_is_object(roles) || json_object_size(roles) == 0 ||
        json_object_size(roles) > MAX_ROLES)
        return fail(c, "roles: must be an object of 1 to %d roles", MAX_ROLES);
    json_object_foreach(roles, key, value)
    {
        if (!json_is_string(value))
            return fail(c, "roles.%s: must be a doc string", key);
        g.roles[g.nroles++] = key;
    }
    if (!json_is_object(topics) || json_object_size(topics) > MAX_TOPICS)
        return fail(c, "topics: must be an object of at most %d topics", MAX_TOPICS);
    json_object_foreach(topics, key, value)
    {
        static const char *const keys[] = {"roles", "doc", NULL};
        char here[128];
        const char *doc;
        snprintf(here, sizeof(here), "topics.%s", key);
        if (!json_is_object(value) || !check_keys(c, value, here, keys) ||
            !get_string(c, value, "doc", true, here, &doc))
            return fail(c, "%s: must be {roles, doc}", here);
        g.topics[g.ntopics].name = key;
        if (!get_roles(c, json_object_get(value, "roles"), here, &g.topics[g.ntopics].roles))
            return false;
        g.ntopics++;
    }
    return true;
}

/* Is `c` an unreserved URL character (RFC 3986)? */
static bool url_unreserved(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Splits the path template of `m` into a route. */
static bool compile_route(struct cctx *c, const struct snp_proto_message *m, struct route *r)
{
    const char *p = m->http_path;
    char here[128];
    snprintf(here, sizeof(here), "messages.%s.http.path", m->name);
    if (strncmp(p, "/api/v1/", 8) != 0)
        return fail(c, "%s: must start with /api/v1/", here);
    r->msg = m;
    while (*p == '/') {
        const char *s = ++p;
        while (*p != '\0' && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (n == 0 || r->nseg == MAX_ROUTE_SEGMENTS)
            return fail(c, "%s: empty segment or too many segments", here);
        if (s[0] == '{') {
            if (n < 3 || s[n - 1] != '}')
                return fail(c, "%s: bad parameter segment", here);
            const struct field *f = NULL;
            for (size_t i = 0; i < m->request->nfields; i++) {
                const struct field *x = &m->request->fields[i];
                if (strlen(x->name) == n - 2 && memcmp(x->name, s + 1, n - 2) == 0)
                    f = x;
            }
            if (f == NULL || !f->required || f->type->kind == K_OBJECT || f->type->kind == K_ARRAY)
                return fail(c, "%s: parameter %.*s must be a required scalar request field", here,
                            (int)n, s);
            r->param[r->nseg] = f;
            r->seg[r->nseg] = f->name;
            r->seglen[r->nseg] = n - 2;
        } else {
            for (size_t i = 0; i < n; i++) {
                if (!url_unreserved(s[i]))
                    return fail(c, "%s: bad character in segment", here);
            }
            r->seg[r->nseg] = s;
            r->seglen[r->nseg] = n;
            r->nliteral++;
        }
        r->nseg++;
    }
    if (*p != '\0')
        return fail(c, "%s: trailing characters", here);
    /* Two routes with one method and the same shape would be ambiguous. */
    for (size_t i = 0; i < g.nroutes; i++) {
        const struct route *o = &g.routes[i];
        bool same = o->nseg == r->nseg && strcmp(o->msg->http_method, m->http_method) == 0;
        for (size_t k = 0; same && k < r->nseg; k++) {
            if ((o->param[k] == NULL) != (r->param[k] == NULL))
                same = false;
            else if (r->param[k] == NULL &&
                     (o->seglen[k] != r->seglen[k] || memcmp(o->seg[k], r->seg[k], r->seglen[k])))
                same = false;
        }
        if (same)
            return fail(c, "%s: same route as message %s", here, o->msg->name);
    }
    return true;
}

static bool compile_message(struct cctx *c, const char *name, json_t *decl,
                            struct snp_proto_message *m)
{
    static const char *const keys[] = {"summary", "doc",      "roles",  "before_auth", "http",
                                       "request", "response", "errors", "example",     NULL};
    char here[128], sub[160];
    snprintf(here, sizeof(here), "messages.%s", name);
    if (!json_is_object(decl) || !check_keys(c, decl, here, keys))
        return fail(c, "%s: must be an object", here);
    m->name = name;
    m->decl = decl;
    if (!get_string(c, decl, "summary", true, here, &m->summary))
        return false;
    snprintf(sub, sizeof(sub), "%s.roles", here);
    if (!get_roles(c, json_object_get(decl, "roles"), sub, &m->roles))
        return false;
    json_t *before = json_object_get(decl, "before_auth");
    if (before != NULL && !json_is_boolean(before))
        return fail(c, "%s: before_auth must be a boolean", here);
    m->before_auth = json_is_true(before);

    snprintf(sub, sizeof(sub), "%s.request", here);
    m->request = compile_body(c, json_object_get(decl, "request"), sub);
    snprintf(sub, sizeof(sub), "%s.response", here);
    m->response = m->request ? compile_body(c, json_object_get(decl, "response"), sub) : NULL;
    if (m->request == NULL || m->response == NULL)
        return false;
    if (type_depth(m->request) + 1 > g.limits.max_depth)
        return fail(c, "%s: requests nest deeper than max_depth", here);
    if (type_depth(m->response) + 1 > g.limits.max_server_depth)
        return fail(c, "%s: responses nest deeper than max_server_depth", here);

    json_t *http = json_object_get(decl, "http");
    m->http_status = 200;
    if (http != NULL) {
        static const char *const hkeys[] = {"method", "path", "status", NULL};
        static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
        snprintf(sub, sizeof(sub), "%s.http", here);
        if (!json_is_object(http) || !check_keys(c, http, sub, hkeys) ||
            !get_string(c, http, "method", true, sub, &m->http_method) ||
            !get_string(c, http, "path", true, sub, &m->http_path))
            return fail(c, "%s: must be {method, path[, status]}", sub);
        bool ok = false;
        for (size_t i = 0; methods[i] != NULL; i++)
            ok = ok || strcmp(methods[i], m->http_method) == 0;
        if (!ok)
            return fail(c, "%s: unsupported method %s", sub, m->http_method);
        json_t *status = json_object_get(http, "status");
        if (status != NULL) {
            if (!json_is_integer(status) || json_integer_value(status) < 200 ||
                json_integer_value(status) > 299)
                return fail(c, "%s: status must be a 2xx code", sub);
            m->http_status = (int)json_integer_value(status);
        }
    }

    const char **errs;
    size_t nerrs;
    snprintf(sub, sizeof(sub), "%s.errors", here);
    if (!get_string_list(c, json_object_get(decl, "errors"), sub, &errs, &nerrs))
        return false;
    for (size_t i = 0; i < nerrs; i++) {
        enum snp_proto_code code;
        if (!snp_proto_code_parse(errs[i], &code) || code == SNP_PROTO_OK)
            return fail(c, "%s: undeclared error \"%s\"", sub, errs[i]);
    }
    json_t *ex = json_object_get(decl, "example");
    if (!json_is_object(ex) || !json_is_object(json_object_get(ex, "request")) ||
        !json_is_object(json_object_get(ex, "response")) || json_object_size(ex) != 2)
        return fail(c, "%s: example must be {request: {...}, response: {...}}", here);
    return true;
}

static bool compile_push(struct cctx *c, const char *name, json_t *decl, struct snp_proto_push *p,
                         unsigned *topics)
{
    static const char *const keys[] = {"summary", "doc", "topics", "data", "example", NULL};
    char here[128], sub[160];
    const char **names;
    size_t n;
    snprintf(here, sizeof(here), "pushes.%s", name);
    if (!json_is_object(decl) || !check_keys(c, decl, here, keys))
        return fail(c, "%s: must be an object", here);
    p->name = name;
    p->decl = decl;
    if (!get_string(c, decl, "summary", true, here, &p->summary))
        return false;
    snprintf(sub, sizeof(sub), "%s.topics", here);
    if (!get_string_list(c, json_object_get(decl, "topics"), sub, &names, &n))
        return false;
    if (n == 0)
        return fail(c, "%s: at least one topic is needed", sub);
    *topics = 0;
    for (size_t i = 0; i < n; i++) {
        int t = topic_index(names[i]);
        if (t < 0)
            return fail(c, "%s: undeclared topic \"%s\"", sub, names[i]);
        *topics |= 1u << t;
    }
    snprintf(sub, sizeof(sub), "%s.data", here);
    p->data = compile_body(c, json_object_get(decl, "data"), sub);
    if (p->data == NULL)
        return false;
    if (type_depth(p->data) + 1 > g.limits.max_server_depth)
        return fail(c, "%s: data nests deeper than max_server_depth", here);
    if (!json_is_object(json_object_get(decl, "example")))
        return fail(c, "%s: example must be an object", here);
    return true;
}

static bool compile_schema(struct cctx *c, json_t *root)
{
    static const char *const keys[] = {
        "protocol",      "version", "title", "limits",   "unknown_fields", "roles", "errors",
        "common_errors", "topics",  "types", "messages", "pushes",         NULL};
    const char *protocol, *version, *title, *key;
    json_t *value;

    if (!json_is_object(root) || !check_keys(c, root, "schema", keys))
        return fail(c, "schema: the top level must be an object of known sections");
    if (!get_string(c, root, "protocol", true, "schema", &protocol) ||
        !get_string(c, root, "version", true, "schema", &version) ||
        !get_string(c, root, "title", true, "schema", &title))
        return false;
    if (strcmp(protocol, SNP_PROTO_NAME) != 0)
        return fail(c, "schema: protocol is \"%s\", this codec speaks %s", protocol,
                    SNP_PROTO_NAME);
    if (!compile_limits(c, json_object_get(root, "limits")))
        return false;

    /* The codec implements one rule for unknown fields; the schema states it. */
    json_t *uf = json_object_get(root, "unknown_fields");
    static const char *const ufkeys[] = {"rule", "error", "doc", NULL};
    const char *rule, *error, *doc;
    if (!json_is_object(uf) || !check_keys(c, uf, "unknown_fields", ufkeys) ||
        !get_string(c, uf, "rule", true, "unknown_fields", &rule) ||
        !get_string(c, uf, "error", true, "unknown_fields", &error) ||
        !get_string(c, uf, "doc", true, "unknown_fields", &doc))
        return fail(c, "unknown_fields: must be {rule, error, doc}");
    if (strcmp(rule, "reject") != 0 || strcmp(error, "unknown_field") != 0)
        return fail(c, "unknown_fields: this codec implements rule \"reject\" with error "
                       "\"unknown_field\" only");

    if (!compile_roles_topics(c, json_object_get(root, "roles"), json_object_get(root, "topics")) ||
        !compile_errors(c, json_object_get(root, "errors"), json_object_get(root, "common_errors")))
        return false;

    json_t *types = json_object_get(root, "types");
    if (!json_is_object(types))
        return fail(c, "types: must be an object");
    g.named = remember(c, json_object_size(types), sizeof(*g.named));
    if (g.named == NULL)
        return false;
    json_object_foreach(types, key, value)
    {
        struct snp_proto_type *t = remember(c, 1, sizeof(*t));
        if (t == NULL)
            return false;
        if (!json_is_object(value))
            return fail(c, "types.%s: must be an object", key);
        t->name = key;
        t->decl = value;
        g.named[g.nnamed++] = t;
    }
    for (size_t i = 0; i < g.nnamed; i++) {
        if (named_type(c, g.named[i]->name, "types") == NULL)
            return false;
    }

    json_t *messages = json_object_get(root, "messages");
    if (!json_is_object(messages) || json_object_size(messages) == 0)
        return fail(c, "messages: must be a non-empty object");
    g.messages = remember(c, json_object_size(messages), sizeof(*g.messages));
    g.routes = remember(c, json_object_size(messages), sizeof(*g.routes));
    if (g.messages == NULL || g.routes == NULL)
        return false;
    json_object_foreach(messages, key, value)
    {
        struct snp_proto_message *m = &g.messages[g.nmessages];
        if (strcmp(key, "push") == 0)
            return fail(c, "messages.push: the name is reserved for pushes");
        if (!compile_message(c, key, value, m))
            return false;
        g.nmessages++;
        if (m->http_method != NULL) {
            if (!compile_route(c, m, &g.routes[g.nroutes]))
                return false;
            g.nroutes++;
        }
    }

    json_t *pushes = json_object_get(root, "pushes");
    if (!json_is_object(pushes))
        return fail(c, "pushes: must be an object");
    g.pushes = remember(c, json_object_size(pushes), sizeof(*g.pushes));
    g.push_topics = remember(c, json_object_size(pushes), sizeof(*g.push_topics));
    if (g.pushes == NULL || g.push_topics == NULL)
        return false;
    json_object_foreach(pushes, key, value)
    {
        if (!compile_push(c, key, value, &g.pushes[g.npushes], &g.push_topics[g.npushes]))
            return false;
        g.npushes++;
    }
    return true;
}

int snp_proto_init_text(const char *text, size_t len, char *why, size_t why_size)
{
    struct cctx c = {0};
    json_error_t jerr;

    if (g.ready)
        return 0;
    memset(&g, 0, sizeof(g));
    g.schema = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (g.schema == NULL)
        fail(&c, "schema is not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    else
        compile_schema(&c, g.schema);
    if (c.failed) {
        log_error(LOG_MODULE, "protocol schema refused: %s", c.why);
        if (why != NULL && why_size > 0)
            copy_utf8(why, why_size, c.why);
        snp_proto_shutdown();
        return -1;
    }
    g.ready = true;
    return 0;
}

int snp_proto_init(void)
{
    return snp_proto_init_text(snp_proto_schema_json, snp_proto_schema_json_len, NULL, 0);
}

void snp_proto_shutdown(void)
{
    for (size_t i = 0; i < g.nregexes; i++)
        regfree(g.regexes[i]);
    free(g.regexes);
    for (size_t i = 0; i < g.nallocs; i++)
        free(g.allocs[i]);
    free(g.allocs);
    json_decref(g.schema);
    memset(&g, 0, sizeof(g));
}

json_t *snp_proto_schema(void)
{
    return g.schema;
}

/* Returns the named type `name` if it is an enum, else NULL. */
static const struct snp_proto_type *named_enum(const char *name)
{
    for (size_t i = 0; name != NULL && i < g.nnamed; i++) {
        if (strcmp(g.named[i]->name, name) == 0)
            return g.named[i]->kind == K_ENUM ? g.named[i] : NULL;
    }
    return NULL;
}

size_t snp_proto_enum_values(const char *type, const char *const **values)
{
    const struct snp_proto_type *t = named_enum(type);
    *values = t != NULL ? t->values : NULL;
    return t != NULL ? t->nvalues : 0;
}

const char *snp_proto_enum_label_fr(const char *type, const char *value)
{
    const struct snp_proto_type *t = named_enum(type);
    if (t == NULL || t->labels_fr == NULL || value == NULL)
        return NULL;
    for (size_t i = 0; i < t->nvalues; i++) {
        if (strcmp(t->values[i], value) == 0)
            return t->labels_fr[i];
    }
    return NULL;
}

const struct snp_proto_limits *snp_proto_limits(void)
{
    return &g.limits;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

/* Returns false when objects and arrays in the raw JSON text nest deeper
 * than `max_depth`.  Brackets inside strings do not count.  On text that is
 * not JSON the answer may be wrong, but jansson refuses such text anyway. */
static bool depth_within(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_string) {
            if (ch == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max_depth)
                return false;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return true;
}

static int parse_with(const char *buf, size_t len, size_t max_bytes, int max_depth, json_t **out,
                      struct snp_proto_error *err)
{
    json_error_t jerr;
    *out = NULL;
    if (len > max_bytes) {
        snp_proto_error_set(err, SNP_PROTO_E_TOO_LARGE, NULL,
                            "message of %zu bytes, the limit is %zu", len, max_bytes);
        return -1;
    }
    if (!depth_within(buf, len, max_depth)) {
        snp_proto_error_set(err, SNP_PROTO_E_TOO_DEEP, NULL,
                            "objects and arrays nest deeper than %d levels", max_depth);
        return -1;
    }
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        /* jansson's text may quote the offending bytes: keep it plain ASCII. */
        for (char *p = jerr.text; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
                *p = '?';
        }
        switch (json_error_code(&jerr)) {
        case json_error_duplicate_key:
            snp_proto_error_set(err, SNP_PROTO_E_DUPLICATE_KEY, NULL,
                                "duplicate object key at line %d column %d", jerr.line,
                                jerr.column);
            break;
        case json_error_invalid_utf8:
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_UTF8, NULL, "invalid UTF-8 at byte %d",
                                jerr.position);
            break;
        case json_error_stack_overflow:
            snp_proto_error_set(err, SNP_PROTO_E_TOO_DEEP, NULL, "nesting too deep");
            break;
        default:
            snp_proto_error_set(err, SNP_PROTO_E_BAD_JSON, NULL,
                                "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                                jerr.text);
            break;
        }
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snp_proto_error_set(err, SNP_PROTO_E_BAD_JSON, NULL, "the message must be a JSON object");
        return -1;
    }
    *out = root;
    return 0;
}

int snp_proto_parse(const char *buf, size_t len, json_t **out, struct snp_proto_error *err)
{
    return parse_with(buf, len, g.limits.max_message_bytes, g.limits.max_depth, out, err);
}

int snp_proto_parse_server(const char *buf, size_t len, json_t **out, struct snp_proto_error *err)
{
    return parse_with(buf, len, g.limits.max_server_message_bytes, g.limits.max_server_depth, out,
                      err);
}

int snp_proto_envelope_read(json_t *root, struct snp_proto_envelope *env,
                            struct snp_proto_error *err)
{
    const char *key;
    json_t *value;
    memset(env, 0, sizeof(*env));

    json_t *id = json_object_get(root, "id");
    json_t *type = json_object_get(root, "type");
    json_t *data = json_object_get(root, "data");
    if (json_is_string(id) && json_string_length(id) >= 1 &&
        json_string_length(id) <= g.limits.max_id_bytes)
        env->id = json_string_value(id);
    /* An over-long type is not echoed: it cannot be a declared name. */
    if (json_is_string(type) && json_string_length(type) <= 64)
        env->type = json_string_value(type);
    if (env->type != NULL)
        env->msg = snp_proto_message_find(env->type);

    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "id") != 0 && strcmp(key, "type") != 0 && strcmp(key, "data") != 0) {
            snp_proto_error_set(err, SNP_PROTO_E_UNKNOWN_FIELD, key,
                                "the envelope has only id, type and data");
            return -1;
        }
    }
    if (id == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_MISSING_FIELD, "id", "the envelope needs an id");
        return -1;
    }
    if (env->id == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, "id",
                            "id must be a string of 1 to %zu bytes", g.limits.max_id_bytes);
        return -1;
    }
    if (type == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_MISSING_FIELD, "type", "the envelope needs a type");
        return -1;
    }
    if (!json_is_string(type)) {
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, "type", "type must be a string");
        return -1;
    }
    if (env->msg == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_UNKNOWN_TYPE, "type", "no message has this type");
        return -1;
    }
    if (data == NULL) {
        data = json_object();
        if (data == NULL || json_object_set_new(root, "data", data) != 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
            return -1;
        }
    } else if (!json_is_object(data)) {
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, "data", "data must be an object");
        return -1;
    }
    env->data = data;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Look-ups                                                            */

const struct snp_proto_message *snp_proto_message_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < g.nmessages; i++) {
        if (strcmp(g.messages[i].name, name) == 0)
            return &g.messages[i];
    }
    return NULL;
}

size_t snp_proto_message_count(void)
{
    return g.nmessages;
}

const struct snp_proto_message *snp_proto_message_at(size_t i)
{
    return i < g.nmessages ? &g.messages[i] : NULL;
}

const struct snp_proto_push *snp_proto_push_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < g.npushes; i++) {
        if (strcmp(g.pushes[i].name, name) == 0)
            return &g.pushes[i];
    }
    return NULL;
}

size_t snp_proto_push_count(void)
{
    return g.npushes;
}

const struct snp_proto_push *snp_proto_push_at(size_t i)
{
    return i < g.npushes ? &g.pushes[i] : NULL;
}

bool snp_proto_push_on_topic(const struct snp_proto_push *push, const char *topic)
{
    int t = topic_index(topic);
    if (push == NULL || t < 0)
        return false;
    return (g.push_topics[push - g.pushes] & (1u << t)) != 0;
}

bool snp_proto_message_allows(const struct snp_proto_message *msg, const char *role)
{
    int r = role_index(role);
    return msg != NULL && r >= 0 && (msg->roles & (1u << r)) != 0;
}

bool snp_proto_topic_allows(const char *topic, const char *role)
{
    int t = topic_index(topic), r = role_index(role);
    return t >= 0 && r >= 0 && (g.topics[t].roles & (1u << r)) != 0;
}

bool snp_proto_topic_exists(const char *topic)
{
    return topic_index(topic) >= 0;
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */

/* Appends ".name" (or "name" at the start) to the path of `len` bytes in
 * `path`; returns the new length.  What does not fit is cut on a character
 * boundary. */
static size_t path_name(char *path, size_t len, const char *name)
{
    size_t room = SNP_PROTO_FIELD_SIZE - 1 - len;
    size_t n = strlen(name) + (len > 0);
    if (n > room)
        n = room;
    char *p = path + len;
    if (len > 0 && n > 0) {
        *p++ = '.';
        n--;
    }
    if (n < strlen(name))
        n = utf8_boundary(name, n);
    memcpy(p, name, n);
    p[n] = '\0';
    return (size_t)(p + n - path);
}

/* Appends "[i]" to the path; returns the new length. */
static size_t path_index(char *path, size_t len, size_t i)
{
    int n = snprintf(path + len, SNP_PROTO_FIELD_SIZE - len, "[%zu]", i);
    if (n < 0 || (size_t)n >= SNP_PROTO_FIELD_SIZE - len) {
        path[len] = '\0';
        return len;
    }
    return len + (size_t)n;
}

static int verr(struct snp_proto_error *err, enum snp_proto_code code, const char *path,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fills `err` for the field at `path`; always returns -1. */
static int verr(struct snp_proto_error *err, enum snp_proto_code code, const char *path,
                const char *fmt, ...)
{
    char msg[SNP_PROTO_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg))
        msg[utf8_boundary(msg, sizeof(msg) - 1)] = '\0';
    snp_proto_error_set(err, code, path, "%s", msg);
    return -1;
}

/* Returns the field of object type `t` named `name`, or NULL. */
static const struct field *find_field(const struct snp_proto_type *t, const char *name)
{
    for (size_t i = 0; i < t->nfields; i++) {
        if (strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    }
    return NULL;
}

/* Checks a string of kind date: YYYY-MM-DD, a day that exists. */
static bool valid_date(const char *s, size_t n)
{
    char ts[32];
    int64_t ignored;
    if (n != 10)
        return false;
    /* The timestamp parser knows the calendar; reuse it at midnight UTC. */
    snprintf(ts, sizeof(ts), "%.10sT00:00:00Z", s);
    return timeutil_parse_rfc3339(ts, &ignored);
}

static int validate_string(struct snp_proto_error *err, const struct snp_proto_type *t, json_t *v,
                           const char *path)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (n > g.limits.max_string_bytes)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "longer than %zu bytes",
                    g.limits.max_string_bytes);
    /* Strings with NUL are refused by the parser; check again for values built in C. */
    if (strlen(s) != n)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must not contain NUL");
    switch (t->kind) {
    case K_STRING: {
        size_t chars = utf8_chars(s, n);
        if (t->has_min && chars < (size_t)t->imin)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at least %lld characters",
                        (long long)t->imin);
        if (t->has_max && chars > (size_t)t->imax)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at most %lld characters",
                        (long long)t->imax);
        if (t->re != NULL &&
            (t->fast ? !pattern_match(t->fast, s, n) : regexec(t->re, s, 0, NULL, 0) != 0))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must match %s", t->pattern);
        return 0;
    }
    case K_ENUM: {
        char list[SNP_PROTO_MESSAGE_SIZE];
        size_t used = 0;
        for (size_t i = 0; i < t->nvalues; i++) {
            if (strcmp(t->values[i], s) == 0)
                return 0;
        }
        list[0] = '\0';
        for (size_t i = 0; i < t->nvalues && used < sizeof(list); i++) {
            int k = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", t->values[i]);
            if (k < 0)
                break;
            used += (size_t)k;
        }
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be one of %s", list);
    }
    case K_TIMESTAMP: {
        int64_t ignored;
        if (!timeutil_parse_rfc3339(s, &ignored))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path,
                        "must be an RFC 3339 timestamp with an offset, "
                        "e.g. 2026-12-01T14:00:00+01:00");
        return 0;
    }
    case K_DATE:
        if (!valid_date(s, n))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be a date YYYY-MM-DD");
        return 0;
    case K_RPPS:
        if (!validate_rpps(s))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path,
                        "must be an RPPS number: 11 digits with a valid Luhn key");
        return 0;
    case K_FINESS:
        if (!validate_finess(s))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path,
                        "must be a FINESS number: 9 characters with a valid key");
        return 0;
    case K_INSEE:
        if (!validate_insee_commune(s))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path,
                        "must be an INSEE commune code: 5 digits, or 2A/2B and 3 digits");
        return 0;
    case K_PHONE:
        if (!validate_phone_fr(s))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path,
                        "must be a French phone number, e.g. 02 99 71 00 00 or +33299710000");
        return 0;
    default:
        return verr(err, SNP_PROTO_E_INTERNAL, path, "not a string kind");
    }
}

static int validate_array(struct snp_proto_error *err, const struct snp_proto_type *t, json_t *v,
                          char *path, size_t len)
{
    size_t n = json_array_size(v);
    size_t max = t->has_max ? (size_t)t->imax : g.limits.max_array_items;
    if (t->has_min && n < (size_t)t->imin)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at least %lld items",
                    (long long)t->imin);
    if (n > max)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at most %zu items", max);
    for (size_t i = 0; i < n; i++) {
        size_t sub = path_index(path, len, i);
        json_t *item = json_array_get(v, i);
        if (validate_value(err, t->items, item, path, sub) != 0)
            return -1;
        if (t->unique) {
            for (size_t k = 0; k < i; k++) {
                if (json_equal(json_array_get(v, k), item))
                    return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "repeats an earlier item");
            }
        }
        path[len] = '\0';
    }
    return 0;
}

static int validate_object(struct snp_proto_error *err, const struct snp_proto_type *t, json_t *v,
                           char *path, size_t len)
{
    const char *key;
    json_t *value;
    size_t n = json_object_size(v);

    if (t->has_min && n < (size_t)t->imin)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at least %lld members",
                    (long long)t->imin);
    if (t->has_max && n > (size_t)t->imax)
        return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must have at most %lld members",
                    (long long)t->imax);
    json_object_foreach(v, key, value)
    {
        const struct field *f = find_field(t, key);
        size_t sub = path_name(path, len, key);
        if (f == NULL)
            return verr(err, SNP_PROTO_E_UNKNOWN_FIELD, path, "unknown field");
        if (validate_value(err, f->type, value, path, sub) != 0)
            return -1;
        path[len] = '\0';
    }
    for (size_t i = 0; i < t->nfields; i++) {
        const struct field *f = &t->fields[i];
        bool present = json_object_get(v, f->name) != NULL;
        if (f->required && !present) {
            path_name(path, len, f->name);
            return verr(err, SNP_PROTO_E_MISSING_FIELD, path, "required field");
        }
        for (size_t r = 0; present && r < f->nrequires; r++) {
            if (json_object_get(v, f->requires[r]) == NULL) {
                path_name(path, len, f->requires[r]);
                return verr(err, SNP_PROTO_E_MISSING_FIELD, path, "required with %s", f->name);
            }
        }
    }
    for (size_t i = 0; i < t->ngroups; i++) {
        const struct group *gr = &t->groups[i];
        const char *first = NULL;
        for (size_t k = 0; k < gr->n; k++) {
            if (json_object_get(v, gr->names[k]) == NULL)
                continue;
            if (first != NULL) {
                path_name(path, len, gr->names[k]);
                return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "give only one of %s and %s",
                            first, gr->names[k]);
            }
            first = gr->names[k];
        }
        if (first == NULL && gr->exactly) {
            char list[SNP_PROTO_MESSAGE_SIZE] = "";
            size_t used = 0;
            for (size_t k = 0; k < gr->n && used < sizeof(list); k++) {
                int w =
                    snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "", gr->names[k]);
                if (w < 0)
                    break;
                used += (size_t)w;
            }
            path_name(path, len, gr->names[0]);
            return verr(err, SNP_PROTO_E_MISSING_FIELD, path, "one of %s is required", list);
        }
    }
    return 0;
}

/* Validates `v` against `t`.  `path` (SNP_PROTO_FIELD_SIZE bytes) holds the
 * path of `v`, `len` bytes long; it is extended and restored on the way. */
static int validate_value(struct snp_proto_error *err, const struct snp_proto_type *t, json_t *v,
                          char *path, size_t len)
{
    switch (t->kind) {
    case K_STRING:
    case K_ENUM:
    case K_TIMESTAMP:
    case K_DATE:
    case K_RPPS:
    case K_FINESS:
    case K_INSEE:
    case K_PHONE:
        if (!json_is_string(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be a string");
        return validate_string(err, t, v, path);
    case K_INTEGER: {
        if (!json_is_integer(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be an integer");
        json_int_t x = json_integer_value(v);
        if (t->has_min && x < t->imin)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be at least %lld",
                        (long long)t->imin);
        if (t->has_max && x > t->imax)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be at most %lld",
                        (long long)t->imax);
        return 0;
    }
    case K_NUMBER: {
        if (!json_is_number(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be a number");
        double x = json_number_value(v);
        if (!isfinite(x))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be finite");
        if (t->has_min && x < t->dmin)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be at least %g", t->dmin);
        if (t->has_max && x > t->dmax)
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be at most %g", t->dmax);
        return 0;
    }
    case K_BOOLEAN:
        if (!json_is_boolean(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be true or false");
        return 0;
    case K_ARRAY:
        if (!json_is_array(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be an array");
        return validate_array(err, t, v, path, len);
    case K_OBJECT:
        if (!json_is_object(v))
            return verr(err, SNP_PROTO_E_INVALID_FIELD, path, "must be an object");
        return validate_object(err, t, v, path, len);
    default:
        return verr(err, SNP_PROTO_E_INTERNAL, path, "unknown kind");
    }
}

/* Validates a message body of type `t`. */
static int validate_body(const struct snp_proto_type *t, json_t *data, struct snp_proto_error *err)
{
    char path[SNP_PROTO_FIELD_SIZE] = "";
    if (t == NULL || data == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "nothing to validate");
        return -1;
    }
    if (!json_is_object(data)) {
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, NULL, "data must be an object");
        return -1;
    }
    return validate_value(err, t, data, path, 0);
}

int snp_proto_validate_request(const struct snp_proto_message *msg, json_t *data,
                               struct snp_proto_error *err)
{
    return validate_body(msg ? msg->request : NULL, data, err);
}

int snp_proto_validate_response(const struct snp_proto_message *msg, json_t *data,
                                struct snp_proto_error *err)
{
    return validate_body(msg ? msg->response : NULL, data, err);
}

int snp_proto_validate_push(const struct snp_proto_push *push, json_t *data,
                            struct snp_proto_error *err)
{
    return validate_body(push ? push->data : NULL, data, err);
}

/* ------------------------------------------------------------------ */
/* HTTP binding                                                        */

/* Parses `n` bytes of decimal digits into a positive json integer; NULL when
 * they are not all digits or too many. */
static json_t *decimal_integer(const char *s, size_t n, bool allow_sign)
{
    char buf[24];
    size_t i = 0;
    if (n == 0 || n >= sizeof(buf))
        return NULL;
    if (allow_sign && s[0] == '-')
        i = 1;
    if (i == n || n - i > 18)
        return NULL;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return json_integer((json_int_t)strtoll(buf, NULL, 10));
}

int snp_proto_route(const char *method, const char *path, const struct snp_proto_message **msg,
                    json_t *path_params, struct snp_proto_error *err)
{
    const char *seg[MAX_ROUTE_SEGMENTS];
    size_t seglen[MAX_ROUTE_SEGMENTS], nseg = 0;
    const struct route *best = NULL;
    char allowed[64] = "";
    size_t used = 0;

    *msg = NULL;
    if (method == NULL || path == NULL || path[0] != '/')
        goto not_found;
    for (const char *p = path; *p == '/';) {
        const char *s = ++p;
        while (*p != '\0' && *p != '/' && *p != '?')
            p++;
        if (nseg == MAX_ROUTE_SEGMENTS || p == s)
            goto not_found;
        seg[nseg] = s;
        seglen[nseg++] = (size_t)(p - s);
        if (*p == '?')
            break;
    }
    for (size_t i = 0; i < g.nroutes; i++) {
        const struct route *r = &g.routes[i];
        bool match = r->nseg == nseg;
        for (size_t k = 0; match && k < nseg; k++) {
            if (r->param[k] == NULL) {
                match = r->seglen[k] == seglen[k] && memcmp(r->seg[k], seg[k], seglen[k]) == 0;
            } else {
                match = seglen[k] <= MAX_PARAM_BYTES;
                for (size_t b = 0; match && b < seglen[k]; b++)
                    match = url_unreserved(seg[k][b]);
            }
        }
        if (!match)
            continue;
        if (strcmp(r->msg->http_method, method) != 0) {
            int w = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", used ? ", " : "",
                             r->msg->http_method);
            if (w > 0 && (size_t)w < sizeof(allowed) - used)
                used += (size_t)w;
            continue;
        }
        if (best == NULL || r->nliteral > best->nliteral)
            best = r;
    }
    if (best == NULL && used > 0) {
        snp_proto_error_set(err, SNP_PROTO_E_METHOD_NOT_ALLOWED, NULL, "allowed: %s", allowed);
        return -1;
    }
    if (best == NULL)
        goto not_found;
    for (size_t k = 0; k < nseg; k++) {
        const struct field *f = best->param[k];
        if (f == NULL)
            continue;
        json_t *v = NULL;
        if (f->type->kind == K_INTEGER)
            v = decimal_integer(seg[k], seglen[k], false);
        if (v == NULL)
            v = json_stringn(seg[k], seglen[k]);
        if (v == NULL || json_object_set_new(path_params, f->name, v) != 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
            return -1;
        }
    }
    *msg = best->msg;
    return 0;

not_found:
    snp_proto_error_set(err, SNP_PROTO_E_NOT_FOUND, NULL, "no such route");
    return -1;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

long snp_proto_url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

/* Whether `s` (`n` bytes) is a number as JSON writes it: an optional minus,
 * decimal digits without a leading zero, an optional fraction and exponent.
 * strtod() alone would also take "0x10", "1e", " 5", "+5", "inf" or "nan",
 * which the specification's formats do not allow. */
static bool json_number_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && (s[i] >= '0' && s[i] <= '9'))
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && (s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == start)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < n && (s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == start)
            return false;
    }
    return i == n;
}

/* Converts the decoded query value `s` (`n` bytes) to a JSON value of type
 * `t`; returns NULL (with `err` filled) when it cannot. */
static json_t *query_value(const struct snp_proto_type *t, const char *s, size_t n,
                           const char *name, struct snp_proto_error *err)
{
    json_t *v = NULL;
    switch (t->kind) {
    case K_INTEGER:
        v = decimal_integer(s, n, true);
        if (v == NULL)
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name, "must be an integer");
        return v;
    case K_NUMBER: {
        char buf[64], *end;
        if (n == 0 || n >= sizeof(buf) || !json_number_text(s, n)) {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name, "must be a decimal number");
            return NULL;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        errno = 0;
        double d = strtod(buf, &end);
        if (*end != '\0' || errno != 0 || !isfinite(d) || buf[0] == ' ') {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name, "must be a number");
            return NULL;
        }
        return json_real(d);
    }
    case K_BOOLEAN:
        if (n == 4 && memcmp(s, "true", 4) == 0)
            return json_true();
        if (n == 5 && memcmp(s, "false", 5) == 0)
            return json_false();
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name, "must be true or false");
        return NULL;
    case K_OBJECT:
    case K_ARRAY:
        snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name,
                            "cannot be given in a query string");
        return NULL;
    default:
        v = json_stringn(s, n);
        if (v == NULL)
            snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, name, "out of memory");
        return v;
    }
}

int snp_proto_query_merge(const struct snp_proto_message *msg, const char *query, json_t *data,
                          struct snp_proto_error *err)
{
    if (msg == NULL || !json_is_object(data)) {
        snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "bad arguments");
        return -1;
    }
    if (query == NULL || *query == '\0')
        return 0;
    size_t qlen = strlen(query);
    if (qlen > g.limits.max_message_bytes) {
        snp_proto_error_set(err, SNP_PROTO_E_TOO_LARGE, NULL, "query string too long");
        return -1;
    }
    char *buf = malloc(qlen + 1);
    if (buf == NULL) {
        snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    int rc = -1;
    for (const char *p = query; *p != '\0';) {
        const char *part = p;
        while (*p != '\0' && *p != '&')
            p++;
        size_t plen = (size_t)(p - part);
        if (*p == '&')
            p++;
        if (plen == 0)
            continue;
        const char *eq = memchr(part, '=', plen);
        size_t nlen = eq ? (size_t)(eq - part) : plen;
        long dn = snp_proto_url_decode(part, nlen, buf);
        if (dn < 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, NULL, "bad percent escape");
            goto out;
        }
        if (!utf8_valid((const unsigned char *)buf, (size_t)dn)) {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_UTF8, NULL,
                                "query parameter name is not UTF-8 or contains NUL");
            goto out;
        }
        char name[SNP_PROTO_FIELD_SIZE];
        copy_utf8(name, sizeof(name), buf);
        const struct field *f = find_field(msg->request, buf);
        if (f == NULL) {
            snp_proto_error_set(err, SNP_PROTO_E_UNKNOWN_FIELD, name, "unknown field");
            goto out;
        }
        if (json_object_get(data, f->name) != NULL) {
            snp_proto_error_set(err, SNP_PROTO_E_DUPLICATE_KEY, name, "given twice");
            goto out;
        }
        const char *val = eq ? eq + 1 : part + plen;
        dn = snp_proto_url_decode(val, (size_t)(part + plen - val), buf);
        if (dn < 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, name, "bad percent escape");
            goto out;
        }
        if (!utf8_valid((const unsigned char *)buf, (size_t)dn)) {
            snp_proto_error_set(err, SNP_PROTO_E_INVALID_UTF8, name,
                                "value is not UTF-8 or contains NUL");
            goto out;
        }
        json_t *v;
        if (f->type->kind == K_ARRAY) {
            v = json_array();
            if (v == NULL) {
                snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
                goto out;
            }
            for (size_t s = 0; dn > 0 && s <= (size_t)dn;) {
                size_t e = s;
                while (e < (size_t)dn && buf[e] != ',')
                    e++;
                json_t *item = query_value(f->type->items, buf + s, e - s, name, err);
                if (item == NULL) {
                    json_decref(v);
                    goto out;
                }
                if (json_array_append_new(v, item) != 0) {
                    json_decref(v);
                    snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
                    goto out;
                }
                s = e + 1;
            }
        } else {
            v = query_value(f->type, buf, (size_t)dn, name, err);
            if (v == NULL)
                goto out; /* query_value() filled err */
        }
        if (json_object_set_new(data, f->name, v) != 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int snp_proto_params_merge(json_t *data, json_t *params, struct snp_proto_error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value)
    {
        json_t *old = json_object_get(data, key);
        if (old != NULL) {
            if (!json_equal(old, value)) {
                snp_proto_error_set(err, SNP_PROTO_E_INVALID_FIELD, key,
                                    "differs from the value in the URL");
                return -1;
            }
            continue;
        }
        if (json_object_set(data, key, value) != 0) {
            snp_proto_error_set(err, SNP_PROTO_E_INTERNAL, NULL, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors and envelopes                                                */

const char *snp_proto_code_name(enum snp_proto_code code)
{
    if ((unsigned)code >= SNP_PROTO_CODE_COUNT)
        return code_names[SNP_PROTO_E_INTERNAL];
    return code_names[code];
}

bool snp_proto_code_parse(const char *name, enum snp_proto_code *out)
{
    for (int i = 0; name != NULL && i < SNP_PROTO_CODE_COUNT; i++) {
        if (strcmp(code_names[i], name) == 0) {
            *out = (enum snp_proto_code)i;
            return true;
        }
    }
    return false;
}

int snp_proto_error_http_status(enum snp_proto_code code)
{
    if ((unsigned)code >= SNP_PROTO_CODE_COUNT || g.http_status[code] == 0)
        return 500;
    return g.http_status[code];
}

int snp_proto_error_ws_close(enum snp_proto_code code)
{
    if ((unsigned)code >= SNP_PROTO_CODE_COUNT)
        return 0;
    return g.ws_close[code];
}

json_t *snp_proto_error_json(const struct snp_proto_error *err)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "code", json_string(snp_proto_code_name(err->code))) != 0 ||
        json_object_set_new(o, "message", json_string(err->message)) != 0 ||
        (err->field[0] != '\0' && json_object_set_new(o, "field", json_string(err->field)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Returns a new string, or null for NULL. */
static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *snp_proto_response_ok(const char *id, const char *type, json_t *data)
{
    json_t *o = json_object();
    if (data == NULL)
        data = json_object();
    if (o == NULL || data == NULL || json_object_set_new(o, "id", string_or_null(id)) != 0 ||
        json_object_set_new(o, "type", string_or_null(type)) != 0 ||
        json_object_set_new(o, "ok", json_true()) != 0) {
        json_decref(o);
        json_decref(data);
        return NULL;
    }
    if (json_object_set_new(o, "data", data) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *snp_proto_response_error(const char *id, const char *type,
                                 const struct snp_proto_error *err)
{
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "id", string_or_null(id)) != 0 ||
        json_object_set_new(o, "type", string_or_null(type)) != 0 ||
        json_object_set_new(o, "ok", json_false()) != 0 ||
        json_object_set_new(o, "error", snp_proto_error_json(err)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *snp_proto_http_error_body(const struct snp_proto_error *err)
{
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "error", snp_proto_error_json(err)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *snp_proto_push(const char *topic, const char *event, json_t *data)
{
    json_t *o = json_object();
    if (data == NULL)
        data = json_object();
    if (o == NULL || data == NULL || json_object_set_new(o, "type", json_string("push")) != 0 ||
        json_object_set_new(o, "topic", string_or_null(topic)) != 0 ||
        json_object_set_new(o, "event", string_or_null(event)) != 0) {
        json_decref(o);
        json_decref(data);
        return NULL;
    }
    if (json_object_set_new(o, "data", data) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
