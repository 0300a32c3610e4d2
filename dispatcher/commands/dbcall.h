/* The context of a protocol operation of dispatcher/commands/ waiting for
 * the database: every module of this folder (manage.c, reads.c,
 * message_ops.c, participation.c, rota.c) shares it, its error mapping
 * (the one SQLSTATE map, dispatch_db_error of core/dispatch.c) and its
 * logging.  Most operations are one SQL statement returning one JSON text
 * (a function of sql/functions that checks, writes and audits), read at
 * column 0.
 *
 * A module's own context starts with a `struct db_call` member and is
 * allocated by db_call_new with its size.  `cb` is called exactly once, by
 * db_call_finish, which frees the context.
 */
#ifndef SNP_DBCALL_H
#define SNP_DBCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "dispatcher/db/db.h"
#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

struct db_call {
    struct dispatch *d;
    answer_cb cb;
    void *arg;
    const char *module; /* names the module in the log */
    size_t size;        /* of the whole context, zeroed before it is freed */
};

/* A zeroed context of `size` bytes (at least sizeof(struct db_call)),
 * counted in the dispatch's in-flight calls; NULL after answering
 * internal when memory is short. */
void *db_call_new(struct dispatch *d, size_t size, const char *module, answer_cb cb, void *arg);

/* Answers and frees the call; `result` (owned) is passed on success only.
 * The context is zeroed first: what it held (token.create's secret) does
 * not outlive the answer. */
void db_call_finish(struct db_call *c, enum snp_proto_code err, const char *message,
                    const char *field, json_t *result);

/* Ends and frees the call without answering: the caller hands its
 * callback to another operation, which answers. */
void db_call_release(struct db_call *c);

/* Answers a failed statement and returns true (the call is then freed):
 * the SN* codes of the SQL functions with their message, which names ids
 * and never patient data, and the field the detail names; anything else
 * as internal, PostgreSQL's own text (it may quote a value) to the log
 * only.  Returns false, answering nothing, when the statement succeeded. */
bool db_call_failed(struct db_call *c, enum db_status st, const PGresult *res);

/* The parsed JSON text of a successful statement, or NULL after answering
 * the error (PostgreSQL's own text of an internal error goes to the log
 * only: it may quote a value). */
json_t *db_call_result(struct db_call *c, enum db_status st, const PGresult *res);

/* A db_result_cb answering the statement's JSON as it is. */
void db_call_on_json(void *arg, enum db_status st, const PGresult *res);

#endif
