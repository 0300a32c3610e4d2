/* How the protocol's operations answer (dispatcher/commands/): the
 * response's data as the protocol's JSON on success (the callback may keep
 * it with json_incref), or NULL with an error, a sentence, and the dotted
 * path of the field at fault (or NULL).  On success `message` is NULL, or
 * ANSWER_REPEAT when the call repeated an earlier one (a creation whose
 * client_ref was used already, for the same object): HTTP then answers 200
 * instead of the route's creation status.  The callback is always called
 * once.
 *
 * The dispatch core answers in its own types (dispatch.h); calls.c writes
 * those as this JSON (views.h). */
#ifndef SNP_ANSWER_H
#define SNP_ANSWER_H

#include <jansson.h>

#include "protocol/codec.h"

extern const char ANSWER_REPEAT[];

typedef void (*answer_cb)(void *arg, enum snp_proto_code err, const char *message,
                          const char *field, json_t *data);

#endif
