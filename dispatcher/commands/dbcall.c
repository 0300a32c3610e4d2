#include "dispatcher/commands/dbcall.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void *db_call_new(struct dispatch *d, size_t size, const char *module, answer_cb cb, void *arg)
{
    struct db_call *c = calloc(1, size < sizeof(*c) ? sizeof(*c) : size);
    if (!c) {
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return NULL;
    }
    c->d = d;
    c->cb = cb;
    c->arg = arg;
    c->module = module;
    c->size = size < sizeof(*c) ? sizeof(*c) : size;
    d->inflight++;
    return c;
}

void db_call_finish(struct db_call *c, enum snp_proto_code err, const char *message,
                    const char *field, json_t *result)
{
    answer_cb cb = c->cb;
    void *arg = c->arg;
    db_call_release(c);
    cb(arg, err, message, field, err == SNP_PROTO_OK ? result : NULL);
    json_decref(result);
}

void db_call_release(struct db_call *c)
{
    c->d->inflight--;
    memset(c, 0, c->size);
    free(c);
}

bool db_call_failed(struct db_call *c, enum db_status st, const PGresult *res)
{
    if (st == DB_OK)
        return false;
    enum snp_proto_code e = dispatch_db_error(st, res);
    if (e == SNP_PROTO_E_INTERNAL) {
        log_error(c->module, "database error %s: %s", db_sqlstate(res),
                  dispatch_db_message(st, res));
        db_call_finish(c, e, "internal error; it was logged", NULL, NULL);
        return true;
    }
    db_call_finish(c, e, dispatch_db_message(st, res), dispatch_db_field(res), NULL);
    return true;
}

json_t *db_call_result(struct db_call *c, enum db_status st, const PGresult *res)
{
    if (db_call_failed(c, st, res))
        return NULL;
    json_t *j = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
                    ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                    : NULL;
    if (!j)
        db_call_finish(c, SNP_PROTO_E_INTERNAL, "unreadable answer from the database", NULL, NULL);
    return j;
}

void db_call_on_json(void *arg, enum db_status st, const PGresult *res)
{
    struct db_call *c = arg;
    json_t *j = db_call_result(c, st, res);
    if (j)
        db_call_finish(c, SNP_PROTO_OK, NULL, NULL, j);
}
