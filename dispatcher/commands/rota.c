#include "dispatcher/commands/rota.h"

#include <stdio.h>
#include <string.h>

#include "dispatcher/commands/dbcall.h"
#include "dispatcher/core/token.h"
#include "sql_queries.h"

void rota_shift_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg)
{
    bool gp = c->role == ROLE_GP;
    json_t *site = json_object_get(data, "site_id");
    bool unfilled = json_is_true(json_object_get(data, "unfilled"));
    if (gp && unfilled) {
        /* A gp lists the shifts they are on duty for: none is unfilled. */
        cb(arg, SNP_PROTO_E_FORBIDDEN, "a GP lists the shifts they are on duty for", "unfilled",
           NULL);
        return;
    }
    struct db_call *call = db_call_new(d, sizeof(*call), "rota", cb, arg);
    if (!call)
        return;
    /* A reception sees its own site's shifts, whatever site_id says. */
    char site_id[24];
    if (c->role == ROLE_RECEPTION)
        snprintf(site_id, sizeof(site_id), "%lld", (long long)c->site_id);
    else if (site)
        snprintf(site_id, sizeof(site_id), "%lld", (long long)json_integer_value(site));
    const char *params[] = {c->territory,
                            json_string_value(json_object_get(data, "from")),
                            json_string_value(json_object_get(data, "to")),
                            site || c->role == ROLE_RECEPTION ? site_id : NULL,
                            unfilled ? "true" : "false",
                            gp ? c->rpps : NULL};
    db_query(d->db, sql_text[SQL_SHIFT_LIST], 6, params, db_call_on_json, call);
}

static void on_assigned(void *arg, enum db_status st, const PGresult *res)
{
    struct db_call *call = arg;
    json_t *j = db_call_result(call, st, res);
    if (!j)
        return;
    bool changed = json_is_true(json_object_get(j, "changed"));
    json_object_del(j, "changed");
    db_call_finish(call, SNP_PROTO_OK, changed ? NULL : ANSWER_REPEAT, NULL, j);
}

void rota_shift_assign(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    const char *rpps = json_string_value(json_object_get(data, "rpps"));
    const char *status = json_string_value(json_object_get(data, "duty_status"));
    if (!rpps != !status) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD,
           "rpps and duty_status go together: both to assign the shift, neither to free it",
           rpps ? "duty_status" : "rpps", NULL);
        return;
    }
    struct db_call *call = db_call_new(d, sizeof(*call), "rota", cb, arg);
    if (!call)
        return;
    char shift_id[24];
    snprintf(shift_id, sizeof(shift_id), "%lld",
             (long long)json_integer_value(json_object_get(data, "shift_id")));
    const char *params[] = {c->territory, c->actor, token_role_name(c->role),
                            shift_id,     rpps,     status};
    db_query(d->db, sql_text[SQL_SHIFT_ASSIGN], 6, params, on_assigned, call);
}
