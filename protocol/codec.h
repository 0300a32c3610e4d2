/*
 * The snp.v1 codec: reading, checking and writing the messages of the wire
 * protocol, shared by snpd, the C clients and the tests.
 *
 * Nothing about the messages is written here.  The protocol is declared once,
 * in protocol/snp.v1.json (limits, roles, error codes, named types, messages,
 * pushes and topics); that file is compiled into the binary and
 * snp_proto_init() turns it into in-memory tables.  The same declaration
 * renders the reference part of protocol/snp.v1.md (protocol/gen_doc.c), so
 * the codec and the documentation cannot disagree.
 *
 * Life cycle: call snp_proto_init() once at start-up, before any other
 * function and before starting threads; after that every function only reads
 * the tables and may be called from any thread.  snp_proto_shutdown() frees
 * the tables (for leak checkers); nothing may be used after it.
 *
 * Errors: a failing function fills a `struct snp_proto_error` with a code
 * from the declared list, an English message for integrators (clients map
 * the code to their own, French, user-facing text) and, when one field is at
 * fault, its path relative to the message's `data`: member names joined with
 * dots and array positions in brackets, e.g. "patient.birth_year" or
 * "slots[3].start".  Messages and paths are valid UTF-8 and safe to echo.
 */
#ifndef SNP_PROTO_CODEC_H
#define SNP_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SNP_PROTO_MUST_CHECK __attribute__((warn_unused_result))

/* The WebSocket subprotocol name, also the version of this protocol. */
#define SNP_PROTO_NAME "snp.v1"

/* Sizes of the text members of struct snp_proto_error, NUL included. */
#define SNP_PROTO_MESSAGE_SIZE 256
#define SNP_PROTO_FIELD_SIZE   192

/*
 * The error codes.  Each one is declared, with its HTTP status and meaning,
 * in the "errors" section of snp.v1.json; snp_proto_init() refuses a schema
 * that lacks one of these or declares one not listed here, so this list and
 * the documentation stay the same set.
 */
enum snp_proto_code {
    SNP_PROTO_OK = 0,
    SNP_PROTO_E_BAD_JSON,           /* not JSON, or not an object at the top */
    SNP_PROTO_E_TOO_LARGE,          /* over max_message_bytes (WebSocket: close 1009) */
    SNP_PROTO_E_TOO_DEEP,           /* nesting over max_depth */
    SNP_PROTO_E_DUPLICATE_KEY,      /* an object has the same key twice */
    SNP_PROTO_E_INVALID_UTF8,       /* bytes that are not UTF-8 */
    SNP_PROTO_E_UNKNOWN_TYPE,       /* the envelope names no declared message */
    SNP_PROTO_E_MISSING_FIELD,      /* a required field is absent */
    SNP_PROTO_E_INVALID_FIELD,      /* wrong type, out of range, bad format */
    SNP_PROTO_E_UNKNOWN_FIELD,      /* a field the declaration does not have */
    SNP_PROTO_E_UNAUTHENTICATED,    /* no token, or a token we do not know */
    SNP_PROTO_E_TOKEN_EXPIRED,      /* the token's expiry has passed */
    SNP_PROTO_E_TOKEN_REVOKED,      /* the token was revoked */
    SNP_PROTO_E_FORBIDDEN,          /* the role may not do this */
    SNP_PROTO_E_OTHER_TERRITORY,    /* the object belongs to another territory */
    SNP_PROTO_E_NOT_FOUND,          /* no such object (or not visible to the caller) */
    SNP_PROTO_E_METHOD_NOT_ALLOWED, /* HTTP: the path exists with another method */
    SNP_PROTO_E_CONFLICT,           /* the object's state does not allow it */
    SNP_PROTO_E_SLOT_TAKEN,         /* another request booked or holds the slot */
    SNP_PROTO_E_HOLD_EXPIRED,       /* the offer's hold ran out */
    SNP_PROTO_E_TOO_LATE,           /* a deadline or the appointment time has passed */
    SNP_PROTO_E_RATE_LIMITED,       /* too many messages on this connection */
    SNP_PROTO_E_UNAVAILABLE,        /* database unavailable, retry */
    SNP_PROTO_E_INTERNAL,           /* a bug on our side */
    SNP_PROTO_CODE_COUNT
};

/* A structured error, as sent in the "error" member of a response. */
struct snp_proto_error {
    enum snp_proto_code code;
    char message[SNP_PROTO_MESSAGE_SIZE]; /* never empty when code != SNP_PROTO_OK */
    char field[SNP_PROTO_FIELD_SIZE];     /* "" when no single field is at fault */
};

/*
 * The declared limits (section "limits" of snp.v1.json).  The codec enforces
 * the message, depth, string and array limits itself; the others are for the
 * server, which must read them from here rather than hard-code them.
 */
struct snp_proto_limits {
    size_t max_message_bytes;        /* one client message, assembled */
    size_t max_server_message_bytes; /* one server message; clients accept this much */
    int max_depth;                   /* nesting of objects and arrays; the top level is 1 */
    int max_server_depth;            /* the same for server messages */
    size_t max_array_items;          /* default maximum of every array */
    size_t max_string_bytes;         /* hard maximum of every string, in bytes */
    size_t max_id_bytes;             /* the envelope's "id" */
    int messages_per_second;         /* sustained rate per connection */
    int message_burst;               /* bucket size of that rate */
    int handshake_timeout_s;         /* TCP accept to WebSocket upgrade or HTTP request */
    int auth_timeout_s;              /* WebSocket upgrade to successful "auth" */
    int idle_timeout_s;              /* no frame at all (pings count) */
    int max_connections_per_address; /* simultaneous connections from one IP address */
    int message_timeout_s;           /* first byte to last of an HTTP body or WebSocket message */
};

/* A type declaration compiled from the schema; opaque. */
struct snp_proto_type;

/*
 * A declared client-to-server message (WebSocket "type", HTTP route).  The
 * tables own it; it lives until snp_proto_shutdown().  Members are read-only.
 */
struct snp_proto_message {
    const char *name;        /* "slot.publish" */
    const char *summary;     /* one English sentence */
    const char *http_method; /* "GET", "POST", "PATCH"...; NULL for WebSocket-only messages */
    const char *http_path;   /* "/api/v1/requests/{request_id}/accept", or NULL */
    int http_status;         /* HTTP status of a success (200, or 201 for creations) */
    bool before_auth;        /* may be sent on a WebSocket before "auth" succeeded */
    unsigned roles;          /* bit (1u << i) for the i-th declared role */
    const struct snp_proto_type *request;
    const struct snp_proto_type *response;
    json_t *decl; /* the message's declaration in the schema (borrowed) */
};

/* A declared server-to-client event, sent on the topics it names. */
struct snp_proto_push {
    const char *name;    /* "booking.created" */
    const char *summary; /* one English sentence */
    const struct snp_proto_type *data;
    json_t *decl; /* the push's declaration in the schema (borrowed) */
};

/* What snp_proto_envelope_read() finds in a WebSocket request. */
struct snp_proto_envelope {
    const char *id;                      /* the client's id, borrowed from the message */
    const char *type;                    /* the message name as sent, borrowed */
    const struct snp_proto_message *msg; /* the declared message */
    json_t *data;                        /* the "data" object, borrowed from the message */
};

/* The schema text compiled into the binary (generated by cmake/embed_file.cmake). */
extern const char snp_proto_schema_json[];
extern const size_t snp_proto_schema_json_len;

/*
 * Parses the embedded schema and builds the tables.  Every declaration is
 * checked (known keys only, types and references resolved, error codes equal
 * to enum snp_proto_code, roles and topics declared, field examples valid,
 * declared nesting within max_depth for requests and max_server_depth for
 * responses and pushes, envelope included); a malformed schema is a build mistake,
 * so the reason is logged as an error and -1 is returned, and the caller
 * should exit.  Returns 0 on success, also when already initialised.
 */
int snp_proto_init(void) SNP_PROTO_MUST_CHECK;

/*
 * Same as snp_proto_init() with the schema text `text` of `len` bytes
 * instead of the embedded one.  On failure, the reason is also copied into
 * `why` (`why_size` bytes, may be 0) and the tables stay uninitialised.
 * Used by tests to check that malformed schemas are refused.
 */
int snp_proto_init_text(const char *text, size_t len, char *why,
                        size_t why_size) SNP_PROTO_MUST_CHECK;

/* Frees the tables.  Safe to call when not initialised. */
void snp_proto_shutdown(void);

/* Returns the parsed schema (borrowed; valid until snp_proto_shutdown()). */
json_t *snp_proto_schema(void);

/*
 * Returns the number of values of the enumeration declared as the named type
 * `type` ("slot_status") and, through `*values`, the values in declaration
 * order; 0 and NULL when no named type `type` is an enum.  The strings are
 * the schema's: valid until snp_proto_shutdown().
 */
size_t snp_proto_enum_values(const char *type, const char *const **values);

/*
 * Returns the French label the declaration gives to `value` of the
 * enumeration `type` (its "labels_fr": "Libre" for slot_status "free"), or
 * NULL when `type` is not an enum, has no labels, or has no value `value`.
 * Valid until snp_proto_shutdown().
 */
const char *snp_proto_enum_label_fr(const char *type, const char *value);

/* Returns the declared limits. */
const struct snp_proto_limits *snp_proto_limits(void);

/*
 * Parses one client message of `len` bytes at `buf` (not NUL-terminated) and
 * stores the new top-level object in `*out`; the caller owns it.  In order:
 * more than max_message_bytes gives too_large; nesting deeper than max_depth,
 * measured by a scan of the raw bytes that ignores brackets inside strings
 * and runs before any parsing, gives too_deep; then jansson parses with
 * duplicate keys rejected (duplicate_key), bytes that are not UTF-8 give
 * invalid_utf8, any other syntax error bad_json, and a top level that is not
 * an object bad_json.  Returns 0, or -1 with `*out` NULL and `err` filled.
 */
int snp_proto_parse(const char *buf, size_t len, json_t **out,
                    struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Same as snp_proto_parse() for a message sent by the server, with the
 * limits max_server_message_bytes and max_server_depth: what clients use to
 * read responses and pushes.
 */
int snp_proto_parse_server(const char *buf, size_t len, json_t **out,
                           struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Reads the envelope of a parsed WebSocket request `root`:
 * {"id": string of 1 to max_id_bytes bytes, "type": message name,
 *  "data": object}.  "data" may be omitted; an empty object is then added to
 * `root` so that `env->data` is never NULL.  Other members give
 * unknown_field, a missing or bad "id" or "type" missing_field or
 * invalid_field (field "id" or "type"), an undeclared type unknown_type.
 * Fills `*env` with pointers borrowed from `root` (and env->msg from the
 * tables) as far as it could read, even on failure, so that the error can
 * echo the id and type.  Returns 0, or -1 with `err` filled.  The data is not
 * validated here: call snp_proto_validate_request() next.
 */
int snp_proto_envelope_read(json_t *root, struct snp_proto_envelope *env,
                            struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/* Returns the message named `name`, or NULL when none is declared. */
const struct snp_proto_message *snp_proto_message_find(const char *name);

/* Returns the number of declared messages. */
size_t snp_proto_message_count(void);

/* Returns the `i`-th declared message, in schema order, or NULL past the end. */
const struct snp_proto_message *snp_proto_message_at(size_t i);

/* Returns the push named `name`, or NULL when none is declared. */
const struct snp_proto_push *snp_proto_push_find(const char *name);

/* Returns the number of declared pushes. */
size_t snp_proto_push_count(void);

/* Returns the `i`-th declared push, in schema order, or NULL past the end. */
const struct snp_proto_push *snp_proto_push_at(size_t i);

/*
 * Returns true when the push `push` is sent on the topic `topic`.
 */
bool snp_proto_push_on_topic(const struct snp_proto_push *push, const char *topic);

/*
 * Returns true when a caller with the role named `role` ("gp", "sas"...) may
 * send `msg`.  Unknown roles and NULL arguments give false.  Territory and
 * ownership checks are the server's; this is only the declared role list.
 */
bool snp_proto_message_allows(const struct snp_proto_message *msg, const char *role);

/* Returns true when the role named `role` may subscribe to the topic `topic`. */
bool snp_proto_topic_allows(const char *topic, const char *role);

/* Returns true when `topic` is a declared topic. */
bool snp_proto_topic_exists(const char *topic);

/*
 * Validates `data`, the "data" object of a request for `msg` (for HTTP: the
 * body merged with the path and query parameters), against its declaration:
 * JSON types, required fields, minimum and maximum (length in characters for
 * strings, item count for arrays, member count for objects, value for
 * numbers), enumerated values, patterns, formats (timestamp, date, rpps,
 * finess, insee, phone), byte and item limits, field groups ("exactly one
 * of", "at most one of", "requires") and the unknown-fields rule.  The first
 * problem found is reported.  Returns 0, or -1 with `err` filled.
 */
int snp_proto_validate_request(const struct snp_proto_message *msg, json_t *data,
                               struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Same as snp_proto_validate_request() for the "data" of a success response
 * to `msg`.  The server may run it on what it sends (tests always do).
 */
int snp_proto_validate_response(const struct snp_proto_message *msg, json_t *data,
                                struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/* Same as snp_proto_validate_request() for the "data" of the push `push`. */
int snp_proto_validate_push(const struct snp_proto_push *push, json_t *data,
                            struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Finds the message bound to the HTTP request `method` ("GET"...) on `path`
 * (anything from a '?' on is ignored).  On success stores it in `*msg` and
 * adds each path parameter to the object `path_params`: converted to an
 * integer when the field is declared as an integer and the segment is
 * decimal digits, otherwise as a string, so that validation reports a bad
 * value on the right field.  A segment that is not 1 to 64 unreserved URL
 * characters matches no route.  Returns 0; or -1 with `err` not_found when
 * no route has this path, method_not_allowed when one has it with another
 * method (err->message then lists the allowed methods).
 */
int snp_proto_route(const char *method, const char *path, const struct snp_proto_message **msg,
                    json_t *path_params, struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Adds the URL query string `query` ("a=1&b=x,y", without the '?'; may be
 * NULL or empty) to the object `data`, for the top-level request fields of
 * `msg`.  Names and values are percent-decoded ('+' is a space); values are
 * converted by the declared type: integers and numbers from decimal text,
 * booleans from "true"/"false", arrays of scalars from comma-separated
 * lists, everything else kept as a string.  An undeclared name gives
 * unknown_field, a name given twice or already in `data` duplicate_key, an
 * object field or an unconvertible value invalid_field, bytes that are not
 * UTF-8 invalid_utf8.  Returns 0, or -1 with `err` filled (then `data` may
 * hold some of the parameters).  Validate `data` afterwards as usual.
 */
int snp_proto_query_merge(const struct snp_proto_message *msg, const char *query, json_t *data,
                          struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/*
 * Percent-decodes the `n` bytes at `s` as query strings are ('+' is a
 * space) into `out`, which must hold at least n + 1 bytes; the result is
 * NUL-terminated.  Returns the decoded length, or -1 on a malformed escape.
 * A decoded NUL byte is kept: compare the length with strlen() to refuse it.
 */
long snp_proto_url_decode(const char *s, size_t n, char *out) SNP_PROTO_MUST_CHECK;

/*
 * Copies every member of `params` (path parameters from snp_proto_route())
 * into `data`.  A member already in `data` with a different value gives
 * invalid_field on that field: the body must not contradict the URL.
 * Returns 0, or -1 with `err` filled.
 */
int snp_proto_params_merge(json_t *data, json_t *params,
                           struct snp_proto_error *err) SNP_PROTO_MUST_CHECK;

/* Returns the name of `code` ("slot_taken"), or "internal" for an unknown value. */
const char *snp_proto_code_name(enum snp_proto_code code);

/* Parses an error code name; returns false (leaving `*out` alone) when unknown. */
bool snp_proto_code_parse(const char *name, enum snp_proto_code *out) SNP_PROTO_MUST_CHECK;

/* Returns the declared HTTP status of `code` (500 for an unknown value). */
int snp_proto_error_http_status(enum snp_proto_code code);

/*
 * Returns the WebSocket close code that must follow an error `code` (1009
 * for too_large), or 0 when the connection stays open.
 */
int snp_proto_error_ws_close(enum snp_proto_code code);

/*
 * Fills `err`: `code`, the printf-style message (truncated to fit, on a
 * character boundary), and `field` (NULL or "" for none).  The message
 * defaults to the code's declared meaning when `fmt` is NULL.
 */
void snp_proto_error_set(struct snp_proto_error *err, enum snp_proto_code code, const char *field,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Returns a new object {"code": ..., "message": ..., "field": ...} for
 * `err`, "field" only when not empty; NULL when out of memory.
 */
json_t *snp_proto_error_json(const struct snp_proto_error *err);

/*
 * Returns a new WebSocket success response {"id", "type", "ok": true,
 * "data"}.  Takes the caller's reference to `data` in every case (an empty
 * object is used when it is NULL).  `id` and `type` may be NULL (sent as
 * null).  Returns NULL when out of memory.
 */
json_t *snp_proto_response_ok(const char *id, const char *type, json_t *data);

/*
 * Returns a new WebSocket error response {"id", "type", "ok": false,
 * "error": {...}}; `id` and `type` may be NULL (sent as null, e.g. when the
 * message had no readable id).  Returns NULL when out of memory.
 */
json_t *snp_proto_response_error(const char *id, const char *type,
                                 const struct snp_proto_error *err);

/* Returns a new HTTP error body {"error": {...}}, or NULL when out of memory. */
json_t *snp_proto_http_error_body(const struct snp_proto_error *err);

/*
 * Returns a new push {"type": "push", "topic", "event", "data"}.  Takes the
 * caller's reference to `data` in every case.  Returns NULL when out of
 * memory.
 */
json_t *snp_proto_push(const char *topic, const char *event, json_t *data);

#endif
