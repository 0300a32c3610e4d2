/*
 * snp_gen_doc: renders the reference part of protocol/snp.v1.md, the web
 * client's labels clients/web/labels.js and settings' bounds
 * clients/web/bounds.js, and the C names protocol/snp_decl.h, from the
 * protocol schema compiled into the binary (protocol/snp.v1.json).
 *
 *   snp_gen_doc                 writes the reference (Markdown) to stdout
 *   snp_gen_doc --update FILE   replaces the text between the markers in FILE
 *   snp_gen_doc --check FILE    exits 1 when FILE's reference is not current
 *   snp_gen_doc --labels-js FILE        writes the enumerations' French labels
 *                                       as an ES module (clients/web/labels.js)
 *   snp_gen_doc --decl-h FILE           writes the topics, pushes and settings
 *                                       as C enumerations and tables
 *                                       (protocol/snp_decl.h)
 *   snp_gen_doc --bounds-js FILE        writes the settings' bounds and
 *                                       defaults as an ES module
 *                                       (clients/web/bounds.js)
 *   snp_gen_doc --check-labels-js FILE, --check-decl-h FILE,
 *               --check-bounds-js FILE  exit 1 when FILE is not current
 *
 * The markers are BEGIN_MARKER and END_MARKER below, each on a line of its
 * own.  tests/protocol/test_codec.c includes this file (with
 * SNP_GEN_DOC_NO_MAIN defined) to check that the committed document, labels,
 * header and bounds match the schema, so they cannot drift apart.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/codec.h"

#define BEGIN_MARKER "<!-- BEGIN GENERATED REFERENCE -->"
#define END_MARKER   "<!-- END GENERATED REFERENCE -->"

/* How example values are printed: short reals (47.6519, not 47.651899999999998). */
#define DUMP_COMPACT (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* What each limit means; a limit missing here stops the generator, so that
 * a new limit is always documented. */
static const char *const limit_docs[][2] = {
    {"max_message_bytes", "Largest client message in bytes, WebSocket fragments assembled, or "
                          "HTTP body."},
    {"max_server_message_bytes", "Largest message the server sends; clients must accept it."},
    {"max_depth", "Deepest nesting of objects and arrays in a client message; the top-level "
                  "object is level 1."},
    {"max_server_depth", "The same for server messages."},
    {"max_array_items", "Most items of any array (a field may declare fewer)."},
    {"max_string_bytes", "Longest string value in bytes (a field may declare fewer characters)."},
    {"max_id_bytes", "Longest envelope `id` in bytes."},
    {"messages_per_second", "Sustained rate of messages per connection (token bucket); over it "
                            "the message is answered `rate_limited`."},
    {"message_burst", "Size of that token bucket."},
    {"handshake_timeout_s", "Seconds from TCP connection to a complete HTTP request line and "
                            "headers, or WebSocket upgrade."},
    {"auth_timeout_s", "Seconds from WebSocket upgrade to a successful `auth`; the connection "
                       "is then closed with code 1008."},
    {"idle_timeout_s", "Seconds without any frame (pings included) before a connection is "
                       "closed."},
    {"max_connections_per_address", "Simultaneous connections from one IP address; more are "
                                    "refused."},
    {"message_timeout_s", "Seconds from the first byte of an HTTP request body to its last, or "
                          "from the first fragment of a WebSocket message to its last; an HTTP "
                          "request is then answered 408 and its connection closed, a WebSocket "
                          "closed with code 1008."},
};

/* The built-in formats of the codec (protocol/codec.c). */
static const char *const format_docs[][2] = {
    {"timestamp", "An RFC 3339 instant with its offset: `2026-12-01T14:00:00+01:00`, "
                  "`2026-12-01T13:00:00Z`. Upper-case `T` and `Z`; seconds may be omitted; a "
                  "fraction of 1 to 9 digits is accepted and dropped. The server writes local "
                  "time with the territory's offset."},
    {"date", "A calendar date `YYYY-MM-DD` that exists."},
    {"rpps", "An RPPS number: 11 digits whose Luhn sum is a multiple of 10."},
    {"finess", "A FINESS number: 9 characters (digits, `2A`/`2B` for Corsica) with a Luhn key."},
    {"insee", "An INSEE commune code: 5 digits, or `2A`/`2B` and 3 digits, of a current "
              "commune."},
    {"phone", "A French phone number, national (`02 99 71 00 00`, `0299710000`, "
              "`02.99.71.00.00`) or international (`+33 2 99 71 00 00`)."},
};

static json_t *schema_types;

/* Writes `s` for a Markdown table cell: '|' escaped, line breaks as spaces. */
static void cell(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

/* Returns the named type `name`'s declaration, or NULL. */
static json_t *named(const char *name)
{
    return json_object_get(schema_types, name);
}

static const char *str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Writes a link to the named type `name`. */
static void type_link(FILE *f, const char *name)
{
    fprintf(f, "[`%s`](#type-%s)", name, name);
}

/* Writes the "type" cell of a field or item declaration. */
static void type_cell(FILE *f, json_t *decl)
{
    const char *ref = json_string_value(json_object_get(decl, "ref"));
    if (ref != NULL) {
        const char *kind = str(named(ref), "type");
        if (strcmp(kind, "enum") == 0)
            fputs("enum ", f);
        type_link(f, ref);
        return;
    }
    const char *kind = str(decl, "type");
    if (strcmp(kind, "array") == 0) {
        fputs("array of ", f);
        type_cell(f, json_object_get(decl, "items"));
    } else if (strcmp(kind, "timestamp") == 0 || strcmp(kind, "date") == 0 ||
               strcmp(kind, "rpps") == 0 || strcmp(kind, "finess") == 0 ||
               strcmp(kind, "insee") == 0 || strcmp(kind, "phone") == 0) {
        fprintf(f, "[%s](#format-%s)", kind, kind);
    } else {
        fputs(kind, f);
    }
}

/* Writes a JSON number bound. */
static void bound(FILE *f, json_t *v)
{
    if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else
        fprintf(f, "%g", json_number_value(v));
}

/* Writes the limits of a type declaration (not following references);
 * returns whether anything was written. */
static int limits_of(FILE *f, json_t *decl, int written)
{
    const char *kind = str(decl, "type");
    json_t *min = json_object_get(decl, "min"), *max = json_object_get(decl, "max");
    json_t *default_max = NULL;
    if (max == NULL && strcmp(kind, "array") == 0)
        max = default_max = json_integer((json_int_t)snp_proto_limits()->max_array_items);
    const char *unit = strcmp(kind, "string") == 0   ? " characters"
                       : strcmp(kind, "array") == 0  ? " items"
                       : strcmp(kind, "object") == 0 ? " members"
                                                     : "";
    if (min != NULL || max != NULL) {
        fputs(written++ ? "; " : "", f);
        if (min != NULL && max != NULL) {
            bound(f, min);
            fputs("–", f);
            bound(f, max);
        } else if (min != NULL) {
            fputs("≥ ", f);
            bound(f, min);
        } else {
            fputs("≤ ", f);
            bound(f, max);
        }
        fputs(unit, f);
    }
    json_decref(default_max);
    if (json_is_true(json_object_get(decl, "unique")))
        fprintf(f, "%sunique", written++ ? "; " : "");
    json_t *values = json_object_get(decl, "values");
    if (values != NULL) {
        size_t i;
        json_t *v;
        fputs(written++ ? "; " : "", f);
        json_array_foreach(values, i, v) fprintf(f, "%s`%s`", i ? ", " : "", json_string_value(v));
    }
    json_t *pattern = json_object_get(decl, "pattern");
    if (pattern != NULL) {
        fprintf(f, "%spattern `", written++ ? "; " : "");
        cell(f, json_string_value(pattern));
        fputs("`", f);
    }
    return written;
}

/* Writes the "limits" cell of a field declaration. */
static void limits_cell(FILE *f, json_t *decl)
{
    int written = 0;
    const char *ref = json_string_value(json_object_get(decl, "ref"));
    json_t *own = decl;
    if (ref != NULL) {
        own = named(ref);
        /* Limits of object types are in their own section. */
        if (strcmp(str(own, "type"), "object") == 0)
            own = NULL;
    }
    if (own != NULL)
        written = limits_of(f, own, written);
    json_t *dflt = json_object_get(decl, "default");
    if (dflt != NULL) {
        fputs(written++ ? "; default " : "default ", f);
        if (json_is_number(dflt)) {
            bound(f, dflt);
        } else {
            char *s = json_dumps(dflt, DUMP_COMPACT | JSON_ENCODE_ANY);
            fputs(s ? s : "", f);
            free(s);
        }
    }
    json_t *items = json_object_get(decl, "items");
    if (items != NULL) {
        const char *iref = json_string_value(json_object_get(items, "ref"));
        json_t *item = iref ? named(iref) : items;
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (m != NULL) {
            if (strcmp(str(item, "type"), "object") != 0)
                limits_of(m, item, 0);
            fclose(m);
        }
        if (len > 0)
            fprintf(f, "%seach item: %s", written++ ? "; " : "", text);
        free(text);
    }
    json_t *requires = json_object_get(decl, "requires");
    if (requires != NULL) {
        size_t i;
        json_t *v;
        fprintf(f, "%sneeds ", written++ ? "; " : "");
        json_array_foreach(requires, i, v)
            fprintf(f, "%s`%s`", i ? ", " : "", json_string_value(v));
    }
}

/* Writes one row per field of `fields`, and rows for the members of inline
 * objects below them, named `prefix.field`. */
static void field_rows(FILE *f, json_t *fields, const char *prefix)
{
    const char *name;
    json_t *decl;
    json_object_foreach(fields, name, decl)
    {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        fprintf(f, "| `%s` | ", path);
        type_cell(f, decl);
        fputs(json_is_true(json_object_get(decl, "required")) ? " | yes | " : " | no | ", f);
        limits_cell(f, decl);
        fputs(" | ", f);
        cell(f, str(decl, "doc"));
        fputs(" |\n", f);
        json_t *sub = json_object_get(decl, "fields");
        json_t *items = json_object_get(decl, "items");
        if (sub != NULL) {
            field_rows(f, sub, path);
        } else if (items != NULL && json_object_get(items, "fields") != NULL) {
            strncat(path, "[]", sizeof(path) - strlen(path) - 1);
            field_rows(f, json_object_get(items, "fields"), path);
        }
    }
}

/* Writes the notes on field groups of an object declaration. */
static void group_notes(FILE *f, json_t *decl)
{
    static const char *const kinds[][3] = {{"exactly_one_of", "Exactly one of", "must be given"},
                                           {"at_most_one_of", "At most one of", "may be given"}};
    for (size_t k = 0; k < 2; k++) {
        size_t i, j;
        json_t *group, *name;
        json_array_foreach(json_object_get(decl, kinds[k][0]), i, group)
        {
            fprintf(f, "- %s ", kinds[k][1]);
            json_array_foreach(group, j, name)
            {
                fprintf(f, "%s`%s`",
                        j == 0                            ? ""
                        : j + 1 == json_array_size(group) ? (k == 0 ? " and " : " or ")
                                                          : ", ",
                        json_string_value(name));
            }
            fprintf(f, " %s.\n", kinds[k][2]);
        }
    }
    json_t *min = json_object_get(decl, "min"), *max = json_object_get(decl, "max");
    if (min != NULL && max != NULL)
        fprintf(f, "- The object has %lld to %lld members.\n", (long long)json_integer_value(min),
                (long long)json_integer_value(max));
    else if (min != NULL)
        fprintf(f, "- The object has at least %lld member%s.\n", (long long)json_integer_value(min),
                json_integer_value(min) == 1 ? "" : "s");
    else if (max != NULL)
        fprintf(f, "- The object has at most %lld members.\n", (long long)json_integer_value(max));
}

/* Writes the table of an object declaration (fields and group notes). */
static void object_table(FILE *f, json_t *decl)
{
    json_t *fields = json_object_get(decl, "fields");
    if (json_object_size(fields) == 0) {
        fputs("No fields: send an empty object.\n", f);
        return;
    }
    fputs("| field | type | required | limits | description |\n", f);
    fputs("| --- | --- | --- | --- | --- |\n", f);
    field_rows(f, fields, "");
    if (json_object_get(decl, "exactly_one_of") || json_object_get(decl, "at_most_one_of") ||
        json_object_get(decl, "min") || json_object_get(decl, "max"))
        fputc('\n', f);
    group_notes(f, decl);
}

/* Writes a message body (request, response or push data) under `title`. */
static void body(FILE *f, const char *title, json_t *decl)
{
    const char *ref = json_string_value(json_object_get(decl, "ref"));
    if (ref != NULL) {
        fprintf(f, "**%s:** an object of type ", title);
        type_link(f, ref);
        fputs(".\n\n", f);
        return;
    }
    fprintf(f, "**%s:**\n\n", title);
    object_table(f, decl);
    fputc('\n', f);
}

/* Returns whether `v` is an array holding no object or array. */
static bool flat_array(json_t *v)
{
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (json_is_object(item) || json_is_array(item))
            return false;
    }
    return true;
}

/* Writes `v` indented by `indent` levels: like JSON_INDENT(2), but arrays of
 * scalars on one line, which keeps the examples short. */
static void pretty(FILE *f, json_t *v, int indent)
{
    const char *key;
    json_t *member;
    size_t i, n = 0;
    char *s;

    if (json_is_object(v) && json_object_size(v) > 0) {
        fputs("{\n", f);
        json_object_foreach(v, key, member)
        {
            json_t *k = json_string(key);
            s = json_dumps(k, JSON_ENCODE_ANY);
            fprintf(f, "%*s%s: ", 2 * (indent + 1), "", s ? s : "\"\"");
            free(s);
            json_decref(k);
            pretty(f, member, indent + 1);
            fputs(++n < json_object_size(v) ? ",\n" : "\n", f);
        }
        fprintf(f, "%*s}", 2 * indent, "");
    } else if (json_is_array(v) && json_array_size(v) > 0 && !flat_array(v)) {
        fputs("[\n", f);
        json_array_foreach(v, i, member)
        {
            fprintf(f, "%*s", 2 * (indent + 1), "");
            pretty(f, member, indent + 1);
            fputs(i + 1 < json_array_size(v) ? ",\n" : "\n", f);
        }
        fprintf(f, "%*s]", 2 * indent, "");
    } else {
        s = json_dumps(v, DUMP_COMPACT | JSON_ENCODE_ANY);
        if (s != NULL && json_is_array(v)) {
            /* One space after each comma outside strings, as in the objects. */
            bool in_string = false, escaped = false;
            for (char *p = s; *p != '\0'; p++) {
                fputc(*p, f);
                if (escaped)
                    escaped = false;
                else if (in_string && *p == '\\')
                    escaped = true;
                else if (*p == '"')
                    in_string = !in_string;
                else if (*p == ',' && !in_string)
                    fputc(' ', f);
            }
        } else {
            fputs(s ? s : "null", f);
        }
        free(s);
    }
}

/* Writes `v` as a fenced JSON block. */
static void json_block(FILE *f, json_t *v)
{
    fputs("```json\n", f);
    pretty(f, v, 0);
    fputs("\n```\n\n", f);
}

/* Writes `s` single-quoted for a POSIX shell. */
static void shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Writes `s` for a URL query value: reserved bytes percent-encoded. */
static void query_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~:,", ch) != NULL)
            fputc(ch, f);
        else
            fprintf(f, "%%%02X", ch);
    }
}

/* Writes the text of a scalar example value for a URL. */
static void scalar_text(FILE *f, json_t *v)
{
    char *s;
    switch (json_typeof(v)) {
    case JSON_STRING:
        query_escape(f, json_string_value(v));
        break;
    default:
        s = json_dumps(v, DUMP_COMPACT | JSON_ENCODE_ANY);
        fputs(s ? s : "", f);
        free(s);
        break;
    }
}

/* Writes the curl command of a message's example. */
static void curl_example(FILE *f, const char *method, const char *path, json_t *request)
{
    json_t *body_data = json_deep_copy(request);
    fputs("```sh\ncurl", f);
    if (strcmp(method, "GET") != 0)
        fprintf(f, " -X %s", method);
    fputs(" -H 'Authorization: Bearer snp_...'", f);
    /* The path, its parameters taken from the example. */
    fputs(" 'http://localhost:8080", f);
    for (const char *p = path; *p != '\0'; p++) {
        if (*p != '{') {
            fputc(*p, f);
            continue;
        }
        const char *end = strchr(p, '}');
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(end - p - 1), p + 1);
        scalar_text(f, json_object_get(request, name));
        json_object_del(body_data, name);
        p = end;
    }
    if (strcmp(method, "GET") == 0) {
        const char *key;
        json_t *v;
        int n = 0;
        json_object_foreach(body_data, key, v)
        {
            fprintf(f, "%c%s=", n++ ? '&' : '?', key);
            if (json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item)
                {
                    if (i)
                        fputc(',', f);
                    scalar_text(f, item);
                }
            } else {
                scalar_text(f, v);
            }
        }
        fputs("'\n", f);
    } else {
        char *s = json_dumps(body_data, DUMP_COMPACT);
        fputs("' \\\n  -H 'Content-Type: application/json' --data ", f);
        shell_quote(f, s ? s : "{}");
        fputc('\n', f);
        free(s);
    }
    fputs("```\n\n", f);
    json_decref(body_data);
}

/* Writes the list of roles of a declaration. */
static void role_list(FILE *f, json_t *roles)
{
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r) fprintf(f, "%s`%s`", i ? ", " : "", json_string_value(r));
}

static void render_message(FILE *f, const char *name, json_t *m)
{
    json_t *http = json_object_get(m, "http");
    json_t *example = json_object_get(m, "example");

    fprintf(f, "<a id=\"message-%s\"></a>\n\n#### `%s`\n\n", name, name);
    fprintf(f, "%s\n\n", str(m, "summary"));
    if (json_object_get(m, "doc"))
        fprintf(f, "%s\n\n", str(m, "doc"));
    fputs("- Roles: ", f);
    role_list(f, json_object_get(m, "roles"));
    fputs(json_is_true(json_object_get(m, "before_auth")) ? " (sent before authentication)\n"
                                                          : "\n",
          f);
    if (http != NULL) {
        json_t *status = json_object_get(http, "status");
        fprintf(f, "- HTTP: `%s %s`, success status %lld\n", str(http, "method"), str(http, "path"),
                status ? (long long)json_integer_value(status) : 200LL);
    } else {
        fputs("- HTTP: none (WebSocket only)\n", f);
    }
    fputs("- Errors: ", f);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "errors"), i, e)
        fprintf(f, "`%s`, ", json_string_value(e));
    fputs("and the [common errors](#common-errors)\n\n", f);

    body(f, "Request data", json_object_get(m, "request"));
    body(f, "Response data", json_object_get(m, "response"));

    fputs("**Example** (WebSocket request, then response):\n\n", f);
    json_t *req = json_pack("{s:s, s:s, s:O}", "id", "7", "type", name, "data",
                            json_object_get(example, "request"));
    json_t *resp = json_pack("{s:s, s:s, s:b, s:O}", "id", "7", "type", name, "ok", 1, "data",
                             json_object_get(example, "response"));
    json_block(f, req);
    json_block(f, resp);
    json_decref(req);
    json_decref(resp);
    if (http != NULL) {
        fputs("The same over HTTP; the response body is the response `data` above:\n\n", f);
        curl_example(f, str(http, "method"), str(http, "path"),
                     json_object_get(example, "request"));
    }
}

static void render_push(FILE *f, const char *name, json_t *p)
{
    json_t *topics = json_object_get(p, "topics");
    fprintf(f, "<a id=\"push-%s\"></a>\n\n#### `%s`\n\n", name, name);
    fprintf(f, "%s\n\n", str(p, "summary"));
    if (json_object_get(p, "doc"))
        fprintf(f, "%s\n\n", str(p, "doc"));
    fputs("- Topics: ", f);
    role_list(f, topics);
    fputs("\n\n", f);
    body(f, "Data", json_object_get(p, "data"));
    fputs("**Example:**\n\n", f);
    json_t *push =
        json_pack("{s:s, s:O, s:s, s:O}", "type", "push", "topic", json_array_get(topics, 0),
                  "event", name, "data", json_object_get(p, "example"));
    json_block(f, push);
    json_decref(push);
}

static void render_type(FILE *f, const char *name, json_t *t)
{
    const char *kind = str(t, "type");
    fprintf(f, "<a id=\"type-%s\"></a>\n\n#### `%s`\n\n", name, name);
    fprintf(f, "%s\n\n", str(t, "doc"));
    if (strcmp(kind, "object") == 0) {
        object_table(f, t);
        fputc('\n', f);
    } else if (strcmp(kind, "enum") == 0) {
        fputs("Values: ", f);
        limits_of(f, t, 0);
        fputs(".\n\n", f);
    } else {
        fprintf(f, "A %s: ", kind);
        if (!limits_of(f, t, 0))
            fputs("no further limit", f);
        fputs(".\n\n", f);
    }
}

/* Writes the whole generated reference, markers excluded.  Returns 0, or -1
 * when the schema holds something this generator does not know. */
static int render_reference(FILE *f)
{
    json_t *schema = snp_proto_schema();
    const char *key;
    json_t *v;
    size_t i;

    if (schema == NULL)
        return -1;
    schema_types = json_object_get(schema, "types");

    fputs("<!-- Generated by snp_gen_doc from protocol/snp.v1.json: edit the schema, then run "
          "`cmake --build <build> --target protocol_doc`. -->\n\n",
          f);
    fprintf(f, "## Reference\n\nProtocol `%s`, schema version %s.\n\n", str(schema, "protocol"),
            str(schema, "version"));

    fputs("<a id=\"limits\"></a>\n\n### Limits\n\n| limit | value | meaning |\n| --- | --- | --- "
          "|\n",
          f);
    json_object_foreach(json_object_get(schema, "limits"), key, v)
    {
        const char *doc = NULL;
        for (size_t k = 0; k < sizeof(limit_docs) / sizeof(limit_docs[0]); k++) {
            if (strcmp(limit_docs[k][0], key) == 0)
                doc = limit_docs[k][1];
        }
        if (doc == NULL) {
            fprintf(stderr, "snp_gen_doc: limit %s has no description\n", key);
            return -1;
        }
        fprintf(f, "| `%s` | %lld | %s |\n", key, (long long)json_integer_value(v), doc);
    }

    json_t *uf = json_object_get(schema, "unknown_fields");
    fprintf(f,
            "\n<a id=\"unknown-fields\"></a>\n\n### Unknown fields\n\nRule: %s (error `%s`). "
            "%s\n\n",
            str(uf, "rule"), str(uf, "error"), str(uf, "doc"));

    fputs("<a id=\"formats\"></a>\n\n### Formats\n\n", f);
    for (size_t k = 0; k < sizeof(format_docs) / sizeof(format_docs[0]); k++)
        fprintf(f, "- <a id=\"format-%s\"></a>**%s**: %s\n", format_docs[k][0], format_docs[k][0],
                format_docs[k][1]);

    fputs("\n<a id=\"roles\"></a>\n\n### Roles\n\n| role | who |\n| --- | --- |\n", f);
    json_object_foreach(json_object_get(schema, "roles"), key, v)
        fprintf(f, "| `%s` | %s |\n", key, json_string_value(v));

    fputs("\n<a id=\"errors\"></a>\n\n### Errors\n\n| code | HTTP status | WebSocket close | "
          "meaning |\n| --- | --- | --- | --- |\n",
          f);
    json_object_foreach(json_object_get(schema, "errors"), key, v)
    {
        json_t *ws = json_object_get(v, "ws_close");
        fprintf(f, "| `%s` | %lld | ", key,
                (long long)json_integer_value(json_object_get(v, "http")));
        if (ws != NULL)
            fprintf(f, "%lld", (long long)json_integer_value(ws));
        fputs(" | ", f);
        cell(f, str(v, "doc"));
        fputs(" |\n", f);
    }
    fputs("\n<a id=\"common-errors\"></a>\nCommon errors, which any message may return: ", f);
    json_array_foreach(json_object_get(schema, "common_errors"), i, v)
        fprintf(f, "%s`%s`", i ? ", " : "", json_string_value(v));
    fputs(".\n\n", f);

    fputs("<a id=\"topics\"></a>\n\n### Topics\n\n| topic | roles | pushes | meaning |\n| --- | "
          "--- | --- | --- |\n",
          f);
    json_object_foreach(json_object_get(schema, "topics"), key, v)
    {
        const char *pname;
        json_t *p;
        int n = 0;
        fprintf(f, "| `%s` | ", key);
        role_list(f, json_object_get(v, "roles"));
        fputs(" | ", f);
        json_object_foreach(json_object_get(schema, "pushes"), pname, p)
        {
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(p, "topics"), k, t)
            {
                if (strcmp(json_string_value(t), key) == 0)
                    fprintf(f, "%s[`%s`](#push-%s)", n++ ? ", " : "", pname, pname);
            }
        }
        fputs(" | ", f);
        cell(f, str(v, "doc"));
        fputs(" |\n", f);
    }

    fputs("\n<a id=\"messages\"></a>\n\n### Messages\n\n| message | HTTP | roles |\n| --- | --- | "
          "--- |\n",
          f);
    json_object_foreach(json_object_get(schema, "messages"), key, v)
    {
        json_t *http = json_object_get(v, "http");
        fprintf(f, "| [`%s`](#message-%s) | ", key, key);
        if (http != NULL)
            fprintf(f, "`%s %s`", str(http, "method"), str(http, "path"));
        else
            fputs("WebSocket only", f);
        fputs(" | ", f);
        role_list(f, json_object_get(v, "roles"));
        fputs(" |\n", f);
    }
    fputc('\n', f);
    json_object_foreach(json_object_get(schema, "messages"), key, v) render_message(f, key, v);

    fputs("<a id=\"pushes\"></a>\n\n### Pushes\n\n", f);
    json_object_foreach(json_object_get(schema, "pushes"), key, v) render_push(f, key, v);

    fputs("<a id=\"types\"></a>\n\n### Types\n\n", f);
    json_object_foreach(schema_types, key, v) render_type(f, key, v);
    return ferror(f) ? -1 : 0;
}

/* Renders with `render` into a new malloc'd string stored in `*out`. */
static int render_into(int (*render)(FILE *f), char **out, size_t *len)
{
    FILE *f = open_memstream(out, len);
    if (f == NULL)
        return -1;
    int rc = render(f);
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Renders the reference into a new malloc'd string stored in `*out`. */
static int render_to_string(char **out, size_t *len)
{
    return render_into(render_reference, out, len);
}

/* Writes `s` as a JavaScript string literal in single quotes. */
static void js_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Writes `key` as a JavaScript property name: bare when it is an identifier
 * (`free`), quoted otherwise (`'24h'`). */
static void js_key(FILE *f, const char *key)
{
    bool ident = *key != '\0' && !(*key >= '0' && *key <= '9');
    for (const char *k = key; *k && ident; k++)
        ident = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
                *k == '_';
    if (ident)
        fputs(key, f);
    else
        js_string(f, key);
}

/* Writes clients/web/labels.js: the "labels_fr" of every enumeration that
 * has them, by type name, values in declaration order.  Returns 0, or -1 on
 * a write error. */
static int render_labels_js(FILE *f)
{
    json_t *schema = snp_proto_schema();
    const char *name;
    json_t *t;

    if (schema == NULL)
        return -1;
    fputs("// Generated by snp_gen_doc from protocol/snp.v1.json (the \"labels_fr\" of each\n"
          "// enumeration): edit the declaration, then run\n"
          "// `cmake --build <build> --target protocol_doc`.  Do not edit.\n\n"
          "/** The French label of each value of snp.v1's enumerations, by type name. */\n"
          "export const LABELS_FR = {\n",
          f);
    json_object_foreach (json_object_get(schema, "types"), name, t) {
        json_t *labels = json_object_get(t, "labels_fr");
        json_t *value;
        size_t i;
        if (labels == NULL)
            continue;
        fputs("  ", f);
        js_key(f, name);
        fputs(": {\n", f);
        json_array_foreach (json_object_get(t, "values"), i, value) {
            fputs("    ", f);
            js_key(f, json_string_value(value));
            fputs(": ", f);
            js_string(f, json_string_value(json_object_get(labels, json_string_value(value))));
            fputs(",\n", f);
        }
        fputs("  },\n", f);
    }
    fputs("};\n", f);
    return ferror(f) ? -1 : 0;
}

/* Renders clients/web/labels.js into a new malloc'd string stored in `*out`. */
static int render_labels_js_to_string(char **out, size_t *len)
{
    return render_into(render_labels_js, out, len);
}

/* --- protocol/snp_decl.h and clients/web/bounds.js -------------------------------- */

/* The object type whose members are the territory's settings. */
#define SETTINGS_TYPE "territory_settings"
#define MAX_SETTINGS  64

/* One territory setting as the generated tables carry it. */
struct setting {
    char key[128];      /* its path: "hold_seconds", "weights.fairness" */
    const char *member; /* its name in its object: "hold_seconds", "fairness" */
    const char *kind;   /* "integer", "number", "boolean" or "array" */
    json_t *min, *max;  /* borrowed from the schema; NULL when not declared */
    json_t *dflt;       /* the declared "default", or NULL */
};

/* Appends the members of object type `type` to `out` (`*n` of them so far),
 * and under their path those of the object types they refer to.  Returns 0,
 * or -1 naming a member the tables cannot carry: a kind other than integer,
 * number, boolean and array, or a number without both bounds. */
static int collect_settings(json_t *type, const char *prefix, struct setting *out, size_t *n)
{
    const char *name;
    json_t *decl;
    json_object_foreach (json_object_get(type, "fields"), name, decl) {
        const char *ref = json_string_value(json_object_get(decl, "ref"));
        json_t *t = ref ? named(ref) : decl;
        const char *kind = str(t, "type");
        char key[128];
        snprintf(key, sizeof(key), "%s%s", prefix, name);
        if (strcmp(kind, "object") == 0) {
            char sub[sizeof(key) + 1];
            snprintf(sub, sizeof(sub), "%s.", key);
            if (collect_settings(t, sub, out, n) != 0)
                return -1;
            continue;
        }
        bool valued = strcmp(kind, "integer") == 0 || strcmp(kind, "number") == 0;
        if (!valued && strcmp(kind, "boolean") != 0 && strcmp(kind, "array") != 0) {
            fprintf(stderr, "snp_gen_doc: setting %s is a %s, which snp_decl.h cannot carry\n", key,
                    kind);
            return -1;
        }
        if (valued && (!json_object_get(t, "min") || !json_object_get(t, "max"))) {
            fprintf(stderr, "snp_gen_doc: setting %s needs both min and max\n", key);
            return -1;
        }
        if (*n == MAX_SETTINGS) {
            fprintf(stderr, "snp_gen_doc: more than %d settings\n", MAX_SETTINGS);
            return -1;
        }
        struct setting *s = &out[(*n)++];
        snprintf(s->key, sizeof(s->key), "%s", key);
        s->member = name;
        s->kind = kind;
        s->min = json_object_get(t, "min");
        s->max = json_object_get(t, "max");
        s->dflt = json_object_get(decl, "default");
        if (s->dflt && !json_is_number(s->dflt) && !json_is_boolean(s->dflt)) {
            fprintf(stderr,
                    "snp_gen_doc: setting %s: snp_decl.h carries numbers and booleans "
                    "as defaults, no other\n",
                    key);
            return -1;
        }
    }
    return 0;
}

/* Fills `out` with the territory's settings in declaration order.  Returns
 * their number, or -1 (said on stderr). */
static int settings_of(struct setting *out)
{
    size_t n = 0;
    json_t *schema = snp_proto_schema();
    if (schema == NULL)
        return -1;
    schema_types = json_object_get(schema, "types");
    json_t *type = named(SETTINGS_TYPE);
    if (type == NULL) {
        fprintf(stderr, "snp_gen_doc: the schema declares no type %s\n", SETTINGS_TYPE);
        return -1;
    }
    return collect_settings(type, "", out, &n) == 0 ? (int)n : -1;
}

/* The bounds a setting's table row carries: an array's are its number of
 * items (0 and max_array_items unless declared), a boolean's 0 and 1. */
static void setting_bounds(const struct setting *s, double *min, double *max)
{
    if (strcmp(s->kind, "boolean") == 0) {
        *min = 0;
        *max = 1;
        return;
    }
    *min = s->min ? json_number_value(s->min) : 0;
    *max = s->max ? json_number_value(s->max) : (double)snp_proto_limits()->max_array_items;
}

/* Writes `d` as a C or JavaScript number literal: the shortest text that
 * reads back as the same double (0.1, not 0.10000000000000001; 3600, not
 * 3.6e+03). */
static void literal(FILE *f, double d)
{
    char text[32];
    if (d == (double)(long long)d && d > -1e15 && d < 1e15) {
        fprintf(f, "%lld", (long long)d);
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof(text), "%.*g", digits, d);
        if (strtod(text, NULL) == d)
            break;
    }
    fputs(text, f);
}

/* Writes `name` as the tail of a C identifier: upper case, anything but a
 * letter or digit as '_' ("booking.created" -> "BOOKING_CREATED"). */
static void c_ident(FILE *f, const char *prefix, const char *name)
{
    fputs(prefix, f);
    for (; *name; name++)
        fputc((*name >= 'a' && *name <= 'z')                                     ? *name - 'a' + 'A'
              : (*name >= 'A' && *name <= 'Z') || (*name >= '0' && *name <= '9') ? *name
                                                                                 : '_',
              f);
}

/* Writes the enumeration of the members of `names` (the topics, the pushes),
 * with its name and find functions.  `what` is its tag ("topic"), `WHAT` the
 * prefix of its values ("SNP_TOPIC_"), `doc` the enumeration's comment. */
static void c_names(FILE *f, const char *what, const char *WHAT, const char *doc, json_t *names)
{
    const char *name;
    json_t *v;
    fprintf(f, "/* %s */\nenum snp_%s {\n", doc, what);
    json_object_foreach (names, name, v) {
        fputs("    ", f);
        c_ident(f, WHAT, name);
        fputs(",\n", f);
    }
    fprintf(f, "};\n\n#define %sCOUNT %zu\n\n", WHAT, json_object_size(names));
    fprintf(f,
            "/* The wire name of `v` (\"%s\"), or NULL when `v` is not one. */\n"
            "static inline const char *snp_%s_name(enum snp_%s v)\n{\n"
            "    static const char *const names[%sCOUNT] = {\n",
            json_object_iter_key(json_object_iter(names)), what, what, WHAT);
    json_object_foreach (names, name, v)
        fprintf(f, "        \"%s\",\n", name);
    fprintf(f,
            "    };\n"
            "    return (unsigned)v < %sCOUNT ? names[v] : NULL;\n"
            "}\n\n",
            WHAT);
    fprintf(f,
            "/* Finds the %s named `name`: stores it in `*out` and returns true, or\n"
            " * returns false. */\n"
            "__attribute__((warn_unused_result))\n"
            "static inline bool snp_%s_find(const char *name, enum snp_%s *out)\n{\n"
            "    for (unsigned i = 0; name != NULL && i < %sCOUNT; i++) {\n"
            "        if (strcmp(name, snp_%s_name((enum snp_%s)i)) == 0) {\n"
            "            *out = (enum snp_%s)i;\n"
            "            return true;\n"
            "        }\n"
            "    }\n"
            "    return false;\n"
            "}\n\n",
            what, what, what, WHAT, what, what, what);
}

/* Writes protocol/snp_decl.h: the topics, the pushes and the territory's
 * settings, for C.  Returns 0, or -1 on a write error or a setting the
 * tables cannot carry. */
static int render_decl_h(FILE *f)
{
    struct setting settings[MAX_SETTINGS];
    int n = settings_of(settings);
    if (n < 0)
        return -1;
    json_t *schema = snp_proto_schema();

    fputs("/* clang-format off */\n"
          "/*\n"
          " * protocol/snp_decl.h: generated by snp_gen_doc from protocol/snp.v1.json;\n"
          " * edit the declaration, then run `cmake --build <build> --target\n"
          " * protocol_doc`.  Do not edit: test_codec fails while this file is not what\n"
          " * the declaration gives.\n"
          " *\n"
          " * What the declaration lists, under C names: its topics and its pushes, so\n"
          " * that a misspelt name does not compile, and the territory's settings with\n"
          " * their bounds and defaults, so that no number is copied.  Everything is\n"
          " * static inline with its table inside the function: one header, nothing\n"
          " * to build or link, usable wherever protocol/ may be included (the\n"
          " * server's layers, snpctl, the tests); a table is a few hundred bytes, in\n"
          " * each file that calls its function.\n"
          " */\n"
          "#ifndef SNP_PROTOCOL_SNP_DECL_H\n"
          "#define SNP_PROTOCOL_SNP_DECL_H\n\n"
          "#include <stdbool.h>\n"
          "#include <stddef.h>\n"
          "#include <string.h>\n\n",
          f);
    c_names(f, "topic", "SNP_TOPIC_",
            "The topics a WebSocket connection subscribes to (snp.v1.md, \"Topics\").",
            json_object_get(schema, "topics"));
    c_names(f, "push", "SNP_PUSH_",
            "The pushes, by event name (snp.v1.md, \"Pushes\"); each goes out on one\n"
            " * or more topics.",
            json_object_get(schema, "pushes"));

    fputs("/* The territory's settings (type " SETTINGS_TYPE "), in the declaration's order;\n"
          " * the members of an object setting (weights) by their path. */\n"
          "enum snp_setting {\n",
          f);
    for (int i = 0; i < n; i++) {
        fputs("    ", f);
        c_ident(f, "SNP_SETTING_", settings[i].key);
        fputs(",\n", f);
    }
    fprintf(f,
            "};\n\n#define SNP_SETTING_COUNT %d\n\n"
            "/* What a setting's value is: its declared type. */\n"
            "enum snp_setting_kind {\n"
            "    SNP_SETTING_KIND_INTEGER, /* a whole number from min to max */\n"
            "    SNP_SETTING_KIND_NUMBER,  /* a number from min to max */\n"
            "    SNP_SETTING_KIND_BOOLEAN, /* true or false */\n"
            "    SNP_SETTING_KIND_ARRAY,   /* a list of min to max items */\n"
            "};\n\n"
            "/* A setting as declared. */\n"
            "struct snp_setting_decl {\n"
            "    const char *key;      /* its path: \"hold_seconds\", \"weights.fairness\" */\n"
            "    const char *member;   /* its name in its object: \"fairness\" */\n"
            "    enum snp_setting_kind kind;\n"
            "    double min, max;      /* an array's number of items; a boolean's 0, 1 */\n"
            "    bool has_default;     /* whether the declaration gives a default */\n"
            "    double default_value; /* a boolean's is 1 for true, 0 for false */\n"
            "};\n\n"
            "/* What the declaration says of setting `s`, or NULL when `s` is not one. */\n"
            "static inline const struct snp_setting_decl *snp_setting_bounds(enum snp_setting "
            "s)\n{\n"
            "    static const struct snp_setting_decl table[SNP_SETTING_COUNT] = {\n",
            n);
    for (int i = 0; i < n; i++) {
        const struct setting *s = &settings[i];
        double min, max;
        setting_bounds(s, &min, &max);
        fprintf(f, "        {\"%s\", \"%s\", ", s->key, s->member);
        c_ident(f, "SNP_SETTING_KIND_", s->kind);
        fputs(", ", f);
        literal(f, min);
        fputs(", ", f);
        literal(f, max);
        if (s->dflt == NULL) {
            fputs(", false, 0},\n", f);
        } else {
            fputs(", true, ", f);
            literal(f,
                    json_is_boolean(s->dflt) ? json_is_true(s->dflt) : json_number_value(s->dflt));
            fputs("},\n", f);
        }
    }
    fputs("    };\n"
          "    return (unsigned)s < SNP_SETTING_COUNT ? &table[s] : NULL;\n"
          "}\n\n"
          "/* Finds the setting whose path is `key` (\"weights.fairness\"): stores it in\n"
          " * `*out` and returns true, or returns false. */\n"
          "__attribute__((warn_unused_result))\n"
          "static inline bool snp_setting_find(const char *key, enum snp_setting *out)\n{\n"
          "    for (unsigned i = 0; key != NULL && i < SNP_SETTING_COUNT; i++) {\n"
          "        if (strcmp(key, snp_setting_bounds((enum snp_setting)i)->key) == 0) {\n"
          "            *out = (enum snp_setting)i;\n"
          "            return true;\n"
          "        }\n"
          "    }\n"
          "    return false;\n"
          "}\n\n"
          "/* Whether `v` is a value of the integer or number setting `s`: from its min\n"
          " * to its max, and whole for an integer.  False for the other kinds. */\n"
          "static inline bool snp_setting_allows(enum snp_setting s, double v)\n{\n"
          "    const struct snp_setting_decl *d = snp_setting_bounds(s);\n"
          "    if (d == NULL || (d->kind != SNP_SETTING_KIND_INTEGER &&\n"
          "                      d->kind != SNP_SETTING_KIND_NUMBER))\n"
          "        return false;\n"
          "    if (!(v >= d->min && v <= d->max))\n"
          "        return false;\n"
          "    return d->kind == SNP_SETTING_KIND_NUMBER || v == (double)(long long)v;\n"
          "}\n\n"
          "#endif\n"
          "/* clang-format on */\n",
          f);
    return ferror(f) ? -1 : 0;
}

/* Renders protocol/snp_decl.h into a new malloc'd string stored in `*out`. */
static int render_decl_h_to_string(char **out, size_t *len)
{
    return render_into(render_decl_h, out, len);
}

/* Writes clients/web/bounds.js: the territory's settings as declared, for
 * the web pages.  Returns 0, or -1 as render_decl_h. */
static int render_bounds_js(FILE *f)
{
    struct setting settings[MAX_SETTINGS];
    int n = settings_of(settings);
    if (n < 0)
        return -1;
    fputs("// Generated by snp_gen_doc from protocol/snp.v1.json (the members of\n"
          "// " SETTINGS_TYPE "): edit the declaration, then run\n"
          "// `cmake --build <build> --target protocol_doc`.  Do not edit.\n\n"
          "/**\n"
          " * The territory's settings as declared, by path ('hold_seconds',\n"
          " * 'weights.fairness'): kind ('integer', 'number', 'boolean' or 'array'),\n"
          " * min and max (an array's number of items), and default when declared.\n"
          " */\n"
          "export const SETTING_BOUNDS = {\n",
          f);
    for (int i = 0; i < n; i++) {
        const struct setting *s = &settings[i];
        fputs("  ", f);
        js_key(f, s->key);
        fprintf(f, ": { kind: '%s'", s->kind);
        if (strcmp(s->kind, "boolean") != 0) {
            double min, max;
            setting_bounds(s, &min, &max);
            fputs(", min: ", f);
            literal(f, min);
            fputs(", max: ", f);
            literal(f, max);
        }
        if (s->dflt != NULL) {
            fputs(", default: ", f);
            if (json_is_boolean(s->dflt))
                fputs(json_is_true(s->dflt) ? "true" : "false", f);
            else
                literal(f, json_number_value(s->dflt));
        }
        fputs(" },\n", f);
    }
    fputs("};\n", f);
    return ferror(f) ? -1 : 0;
}

/* Renders clients/web/bounds.js into a new malloc'd string stored in `*out`. */
static int render_bounds_js_to_string(char **out, size_t *len)
{
    return render_into(render_bounds_js, out, len);
}

/* Reads the whole file `path` into a new malloc'd, NUL-terminated string. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *p = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Finds the generated part of `doc`: the text after the line holding
 * BEGIN_MARKER up to the start of the line holding END_MARKER.  Returns 0,
 * or -1 when the markers are missing or out of order. */
static int find_generated(const char *doc, size_t *start, size_t *end)
{
    const char *b = strstr(doc, BEGIN_MARKER "\n");
    const char *e = b ? strstr(b, "\n" END_MARKER) : NULL;
    if (b == NULL || e == NULL)
        return -1;
    *start = (size_t)(b - doc) + strlen(BEGIN_MARKER "\n");
    *end = (size_t)(e - doc) + 1;
    return 0;
}

#ifndef SNP_GEN_DOC_NO_MAIN

/* Replaces `path` by the `n` parts of `parts` (`lens` bytes each): writes a
 * sibling file and renames it over, so a failure leaves the old one.
 * Returns 0, or -1 with the reason printed. */
static int replace_file(const char *path, const char *const *parts, const size_t *lens, size_t n)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "snp_gen_doc: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        fwrite(parts[i], 1, lens[i], f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "snp_gen_doc: cannot replace %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* The generated files other than the document: FILE, or with --check-…
 * FILE a check that FILE is what the schema gives. */
static const struct {
    const char *option; /* "--labels-js"; its check is "--check-labels-js" */
    const char *what;   /* said when rendering fails */
    int (*render)(char **out, size_t *len);
} generated[] = {
    {"--labels-js", "the labels", render_labels_js_to_string},
    {"--decl-h", "snp_decl.h", render_decl_h_to_string},
    {"--bounds-js", "the settings' bounds", render_bounds_js_to_string},
};

/* Writes generated file `k` to `path` (only when it changes), or with
 * `check` fails when `path` is not what the schema gives.  Returns the exit
 * status. */
static int generated_main(size_t k, bool check, const char *path)
{
    char *text = NULL, *old = NULL;
    size_t len, oldlen = 0;
    int rc = 1;

    if (generated[k].render(&text, &len) != 0) {
        fprintf(stderr, "snp_gen_doc: rendering %s failed\n", generated[k].what);
        goto out;
    }
    old = read_file(path, &oldlen);
    bool same = old != NULL && oldlen == len && memcmp(old, text, len) == 0;
    if (check) {
        if (!same)
            fprintf(stderr, "snp_gen_doc: %s is out of date; build the protocol_doc target\n",
                    path);
        rc = same ? 0 : 1;
        goto out;
    }
    if (same) {
        rc = 0;
        goto out;
    }
    const char *parts[] = {text};
    rc = replace_file(path, parts, &len, 1) == 0 ? 0 : 1;
out:
    free(text);
    free(old);
    return rc;
}

int main(int argc, char **argv)
{
    char *ref = NULL, *doc = NULL;
    size_t reflen, doclen, start, end;
    int rc = 1;

    if (snp_proto_init() != 0)
        return 1;
    /* "--labels-js" and "--check-labels-js" name the same file: compared
     * without their "--" and "--check-". */
    bool check = argc == 3 && strncmp(argv[1], "--check-", 8) == 0;
    const char *name = argc == 3 && strncmp(argv[1], "--", 2) == 0 ? argv[1] + (check ? 8 : 2) : "";
    for (size_t k = 0; k < sizeof(generated) / sizeof(generated[0]); k++) {
        if (strcmp(name, generated[k].option + 2) == 0) {
            rc = generated_main(k, check, argv[2]);
            goto out;
        }
    }
    if (render_to_string(&ref, &reflen) != 0) {
        fprintf(stderr, "snp_gen_doc: rendering failed\n");
        goto out;
    }
    if (argc == 1) {
        rc = fwrite(ref, 1, reflen, stdout) == reflen ? 0 : 1;
        goto out;
    }
    if (argc != 3 || (strcmp(argv[1], "--update") != 0 && strcmp(argv[1], "--check") != 0)) {
        fprintf(stderr, "usage: snp_gen_doc [--update FILE | --check FILE | --labels-js FILE | "
                        "--check-labels-js FILE | --decl-h FILE | --check-decl-h FILE | "
                        "--bounds-js FILE | --check-bounds-js FILE]\n");
        goto out;
    }
    doc = read_file(argv[2], &doclen);
    if (doc == NULL) {
        fprintf(stderr, "snp_gen_doc: cannot read %s: %s\n", argv[2], strerror(errno));
        goto out;
    }
    if (find_generated(doc, &start, &end) != 0) {
        fprintf(stderr, "snp_gen_doc: %s lacks the lines %s and %s\n", argv[2], BEGIN_MARKER,
                END_MARKER);
        goto out;
    }
    bool same = end - start == reflen && memcmp(doc + start, ref, reflen) == 0;
    if (strcmp(argv[1], "--check") == 0) {
        if (!same)
            fprintf(stderr, "snp_gen_doc: %s is out of date; build the protocol_doc target\n",
                    argv[2]);
        rc = same ? 0 : 1;
        goto out;
    }
    if (same) {
        rc = 0;
        goto out;
    }
    const char *parts[] = {doc, ref, doc + end};
    const size_t lens[] = {start, reflen, doclen - end};
    rc = replace_file(argv[2], parts, lens, 3) == 0 ? 0 : 1;
out:
    free(ref);
    free(doc);
    snp_proto_shutdown();
    return rc;
}

#endif
