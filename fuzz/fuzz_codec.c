/*
 * fuzz_codec: the protocol's message decoder (protocol/codec.c), for every
 * declared message, push and response.
 *
 * One input is one WebSocket text frame, read twice:
 *
 * - as a client's message, the way api_on_ws_message() in dispatcher/commands/api.c
 *   reads it: snp_proto_parse(), snp_proto_envelope_read(), then
 *   snp_proto_validate_request() for the message the envelope names;
 * - as a server's message, the way the C clients read answers and pushes
 *   (clients/cli/ctl.c, cmd_request.c): snp_proto_parse_server(), then
 *   snp_proto_validate_response() or snp_proto_validate_push().
 *
 * Beyond what the sanitizers catch, the target checks two promises of
 * codec.h: every refusal can be sent back (a declared code, a message, and
 * text that is valid UTF-8, so that snp_proto_response_error() builds it),
 * and a client message that is accepted is accepted again once jansson has
 * written it out and read it back (the codec judges values, not how they
 * were spelt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz/fuzz_util.h"
#include "protocol/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_protocol_init();
    return 0;
}

/* Checks that the refusal `err` can be answered to the client. */
static void check_refusal(const struct snp_proto_error *err, const char *id, const char *type)
{
    fuzz_check_refusal(err);
    json_t *answer = snp_proto_response_error(id, type, err);
    FUZZ_CHECK(answer != NULL, "refusal %s cannot be sent (message or field not UTF-8?)",
               snp_proto_code_name(err->code));
    json_decref(answer);
}

/* Reads `len` bytes at `text` as a client's message; returns the accepted
 * root (the caller owns it), or NULL after checking the refusal. */
static json_t *client_read(const char *text, size_t len, struct snp_proto_error *err)
{
    json_t *root = NULL;
    struct snp_proto_envelope env;
    memset(&env, 0, sizeof(env));
    memset(err, 0, sizeof(*err));
    int rc = snp_proto_parse(text, len, &root, err);
    if (rc == 0)
        rc = snp_proto_envelope_read(root, &env, err);
    if (rc == 0)
        rc = snp_proto_validate_request(env.msg, env.data, err);
    if (rc == 0)
        return root;
    check_refusal(err, env.id, env.type);
    json_decref(root);
    return NULL;
}

static void client_message(const char *text, size_t len)
{
    struct snp_proto_error err;
    json_t *root = client_read(text, len, &err);
    if (root == NULL)
        return;
    char *again = json_dumps(root, JSON_COMPACT);
    FUZZ_CHECK(again != NULL, "an accepted message cannot be written out");
    /* Written out compactly it may still be longer (escapes): only what
     * fits the limit must be accepted again. */
    size_t again_len = strlen(again);
    if (again_len <= snp_proto_limits()->max_message_bytes) {
        json_t *root2 = client_read(again, again_len, &err);
        FUZZ_CHECK(root2 != NULL, "accepted, then refused once written out: %s %s (field %s)",
                   snp_proto_code_name(err.code), err.message, err.field);
        FUZZ_CHECK(json_equal(root, root2), "read back as another value");
        json_decref(root2);
    }
    free(again);
    json_decref(root);
}

static void server_message(const char *text, size_t len)
{
    struct snp_proto_error err = {0};
    json_t *root = NULL;
    if (snp_proto_parse_server(text, len, &root, &err) != 0) {
        check_refusal(&err, NULL, NULL);
        return;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *data = json_object_get(root, "data");
    int rc = 0;
    if (type != NULL && data != NULL && strcmp(type, "push") == 0) {
        const char *event = json_string_value(json_object_get(root, "event"));
        const struct snp_proto_push *push = snp_proto_push_find(event);
        if (push != NULL)
            rc = snp_proto_validate_push(push, data, &err);
    } else if (type != NULL && data != NULL && json_is_true(json_object_get(root, "ok"))) {
        const struct snp_proto_message *msg = snp_proto_message_find(type);
        if (msg != NULL)
            rc = snp_proto_validate_response(msg, data, &err);
    }
    if (rc != 0) {
        check_refusal(&err, NULL, type);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    client_message((const char *)data, size);
    server_message((const char *)data, size);
    return 0;
}
