/* A protocol call answered by one SQL statement returning one JSON text
 * (a function of sql/migrations that checks, writes and audits): the
 * modules whose operations are a single database round trip
 * (participation.c, rota.c) share this context, its error mapping (the
 * SQLSTATE map of dispatch.c) and its logging.
 *
 * A module's own context starts with a `struct db_call` member and is
 * allocated by db_call_new with its size.  `cb` is called exactly once, by
 * db_call_finish, which frees the context.
 */
#ifndef SNP_DBCALL_H
#define SNP_DBCALL_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "dispatcher/db/db.h"
#include "dispatcher/core/dispatch.h"

struct db_call {
    struct dispatch *d;
    dispatch_cb cb;
    void *arg;
    const char *module; /* names the module in the log */
};

/* A zeroed context of `size` bytes (at least sizeof(struct db_call)),
 * counted in the dispatch's in-flight calls; NULL after answering
 * internal when memory is short. */
void *db_call_new(struct dispatch *d, size_t size, const char *module, dispatch_cb cb, void *arg);

/* Answers and frees the call; `result` (owned) is passed on success only. */
void db_call_finish(struct db_call *c, enum dispatch_error err, const char *message,
                    const char *field, json_t *result);

/* The parsed JSON text of a successful statement, or NULL after answering
 * the error (PostgreSQL's own text of an internal error goes to the log
 * only: it may quote a value). */
json_t *db_call_result(struct db_call *c, enum db_status st, const PGresult *res);

/* A db_result_cb answering the statement's JSON as it is. */
void db_call_on_json(void *arg, enum db_status st, const PGresult *res);

#endif
