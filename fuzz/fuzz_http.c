/*
 * fuzz_http: the HTTP binding of the protocol (protocol/codec.c): the
 * routing of a method and path such as POST /api/v1/requests/{id}/accept to
 * a declared message with its path parameters, the URL query string
 * (?from=...&status=a,b), and the JSON body, in the order of api_on_http()
 * in dispatcher/commands/api.c: snp_proto_route(), snp_proto_parse() of the body
 * when there is one, snp_proto_query_merge(), snp_proto_params_merge(),
 * then snp_proto_validate_request().
 *
 * An input is the request line without the version, then the body:
 *
 *     POST /api/v1/requests/501/accept?x=1\n{"slot_id":1201}
 *
 * The path and the query are cut at the sizes of struct http_exchange
 * (dispatcher/net/server.h), as the server cuts them; it reads them from
 * libwebsockets, which has already split off the query and turned each
 * name=value back into percent-encoded text (read_query() in server.c, not
 * reached here: it needs a live connection).
 *
 * Beyond the sanitizers, the target checks that every refusal can be sent
 * (a declared code with a 4xx status and a body that snp_proto_http_error_body()
 * builds) and that an accepted request holds the path's parameters.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dispatcher/net/server.h"
#include "fuzz/fuzz_util.h"
#include "protocol/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_protocol_init();
    return 0;
}

/* Copies at most `n` bytes at `s` into `out` (`size` bytes), stopping at a
 * NUL as the C strings of the server do, and truncating to fit. */
static void copy_text(char *out, size_t size, const uint8_t *s, size_t n)
{
    size_t k = 0;
    while (k < n && k + 1 < size && s[k] != '\0') {
        out[k] = (char)s[k];
        k++;
    }
    out[k] = '\0';
}

static void check_refusal(const struct snp_proto_error *err)
{
    fuzz_check_refusal(err);
    int status = snp_proto_error_http_status(err->code);
    FUZZ_CHECK(status >= 400 && status < 500, "refusal %s answered %d",
               snp_proto_code_name(err->code), status);
    json_t *body = snp_proto_http_error_body(err);
    FUZZ_CHECK(body != NULL, "refusal %s cannot be sent (message or field not UTF-8?)",
               snp_proto_code_name(err->code));
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_exchange ex;
    const uint8_t *line_end = memchr(data, '\n', size);
    size_t line_len = line_end ? (size_t)(line_end - data) : size;
    const uint8_t *body = line_end ? line_end + 1 : data + size;
    size_t body_len = (size_t)(data + size - body);

    /* "METHOD TARGET": the method up to the first space. */
    const uint8_t *space = memchr(data, ' ', line_len);
    if (space == NULL)
        return 0;
    char method[16];
    copy_text(method, sizeof(method), data, (size_t)(space - data));
    const uint8_t *target = space + 1;
    size_t target_len = line_len - (size_t)(target - data);
    const uint8_t *qmark = memchr(target, '?', target_len);
    size_t path_len = qmark ? (size_t)(qmark - target) : target_len;
    copy_text(ex.path, sizeof(ex.path), target, path_len);
    ex.query[0] = '\0';
    if (qmark != NULL) {
        size_t query_len = target_len - path_len - 1;
        /* The server drops a query that does not fit rather than cut it. */
        if (query_len < sizeof(ex.query))
            copy_text(ex.query, sizeof(ex.query), qmark + 1, query_len);
    }

    struct snp_proto_error err = {0};
    const struct snp_proto_message *msg = NULL;
    json_t *params = json_object();
    json_t *root = NULL;
    int rc = snp_proto_route(method, ex.path, &msg, params, &err);
    if (rc == 0) {
        FUZZ_CHECK(msg != NULL && strcmp(msg->http_method, method) == 0,
                   "%s %s routed to a message of another method", method, ex.path);
        if (body_len > 0)
            rc = snp_proto_parse((const char *)body, body_len, &root, &err);
        else
            root = json_object();
    }
    if (rc == 0)
        rc = snp_proto_query_merge(msg, ex.query, root, &err);
    if (rc == 0)
        rc = snp_proto_params_merge(root, params, &err);
    if (rc == 0)
        rc = snp_proto_validate_request(msg, root, &err);
    if (rc != 0) {
        check_refusal(&err);
    } else {
        const char *key;
        json_t *value;
        json_object_foreach (params, key, value) {
            FUZZ_CHECK(json_equal(json_object_get(root, key), value),
                       "path parameter %s lost on the way", key);
        }
    }
    json_decref(params);
    json_decref(root);
    return 0;
}
