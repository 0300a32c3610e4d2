#include "dispatcher/commands/reads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/commands/dbcall.h"
#include "dispatcher/commands/views.h"
#include "sql_queries.h"

/* One read waiting for the database. */
struct read {
    struct db_call call; /* first: the shared context (dbcall.h) */
    struct caller caller;
    const char *list_key; /* for lists: the array's name in the answer */
    int limit;
};

static struct read *read_new(struct dispatch *d, const struct caller *c, answer_cb cb, void *arg)
{
    struct read *r = db_call_new(d, sizeof(*r), "reads", cb, arg);
    if (r)
        r->caller = *c;
    return r;
}

static void read_finish_field(struct read *r, enum snp_proto_code err, const char *message,
                              const char *field, json_t *result)
{
    db_call_finish(&r->call, err, message, field, result);
}

static void read_finish(struct read *r, enum snp_proto_code err, const char *message,
                        json_t *result)
{
    read_finish_field(r, err, message, NULL, result);
}

/* Answers a failed read (the one error mapping, dbcall.h) and returns true. */
static bool read_failed(struct read *r, enum db_status st, const PGresult *res)
{
    return db_call_failed(&r->call, st, res);
}

static json_t *parse_row(const PGresult *res, int row)
{
    if (PQgetisnull(res, row, 0))
        return NULL;
    return json_loads(PQgetvalue(res, row, 0), 0, NULL);
}

/* --- request.get ------------------------------------------------------------------ */

/* Adds the live offer (kept in memory) to a request view. */
static void add_offer(struct dispatch *d, json_t *view)
{
    json_int_t id = json_integer_value(json_object_get(view, "request_id"));
    struct request *req = idmap_get(&d->store.requests, id);
    struct dispatch_offer offer;
    if (req && dispatch_offer(d, req, &offer))
        json_object_set_new(view, "offer", views_offer(&d->store, req->territory, &offer));
}

static void on_request_read(void *arg, enum db_status st, const PGresult *res)
{
    struct read *r = arg;
    if (read_failed(r, st, res))
        return;
    json_t *view = parse_row(res, 0);
    if (!view) {
        read_finish(r, SNP_PROTO_E_NOT_FOUND, "no request with this id for your organisation",
                    NULL);
        return;
    }
    add_offer(r->call.d, view);
    read_finish(r, SNP_PROTO_OK, NULL, view);
}

void reads_request_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    struct read *r = read_new(d, c, cb, arg);
    if (!r)
        return;
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld",
             (long long)json_integer_value(json_object_get(data, "request_id")));
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    const char *params[] = {id, org, c->actor, token_role_name(c->role)};
    db_query(d->db, sql_text[SQL_REQUEST_READ], 4, params, on_request_read, r);
}

/* --- lists ------------------------------------------------------------------------ */

static void on_list(void *arg, enum db_status st, const PGresult *res)
{
    struct read *r = arg;
    if (read_failed(r, st, res))
        return;
    json_t *items = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n && i < r->limit; i++) {
        json_t *v = parse_row(res, i);
        if (!v)
            continue;
        if (strcmp(r->list_key, "requests") == 0)
            add_offer(r->call.d, v);
        json_array_append_new(items, v);
    }
    json_t *result = json_pack("{s:o, s:b}", r->list_key, items, "truncated", n > r->limit);
    read_finish(r, SNP_PROTO_OK, NULL, result);
}

/* The instants a list window may name: 1900-01-01T00:00:00Z up to, not
 * including, 3000-01-01T00:00:00Z.  Nothing this service stores lies
 * outside, and PostgreSQL refuses some instants the RFC 3339 grammar allows
 * (year 0000), which must be the caller's invalid_field, not our error. */
#define WINDOW_MIN (-2208988800LL)
#define WINDOW_END 32503680000LL

/* Reads instant `name` of `data` into *out (left as it is when absent).
 * Returns false after answering invalid_field naming it. */
static bool window_instant(struct read *r, json_t *data, const char *name, int64_t *out)
{
    const char *v = json_string_value(json_object_get(data, name));
    int64_t t = *out;
    if (v && (!timeutil_parse_rfc3339(v, &t) || t < WINDOW_MIN || t >= WINDOW_END)) {
        read_finish_field(r, SNP_PROTO_E_INVALID_FIELD,
                          "instants from 1900-01-01 to 2999-12-31 only", name, NULL);
        return false;
    }
    *out = t;
    return true;
}

/* Reads the common list arguments: the values of the array `filter`
 * (statuses, outcomes) as an SQL array literal, the window (RFC 3339
 * texts) and the limit.  Returns false after answering. */
static bool list_args(struct read *r, json_t *data, const char *filter, int64_t from_default,
                      int64_t to_span, int limit_default, char *statuses, size_t ssize, char *from,
                      char *to, char *limit)
{
    int64_t f = from_default, t;
    if (!window_instant(r, data, "from", &f))
        return false;
    t = f + to_span;
    if (!window_instant(r, data, "to", &t))
        return false;
    const struct timeutil_zone *utc = timeutil_zone_find("UTC");
    if (!timeutil_format_rfc3339(utc, f, from, TIMEUTIL_RFC3339_SIZE) ||
        !timeutil_format_rfc3339(utc, t, to, TIMEUTIL_RFC3339_SIZE)) {
        read_finish(r, SNP_PROTO_E_INTERNAL, "internal error; it was logged", NULL);
        log_error("reads", "window %lld..%lld cannot be written", (long long)f, (long long)t);
        return false;
    }
    json_t *lim = json_object_get(data, "limit");
    r->limit = lim ? (int)json_integer_value(lim) : limit_default;
    snprintf(limit, 16, "%d", r->limit + 1);
    json_t *sts = json_object_get(data, filter);
    statuses[0] = '\0';
    if (sts) {
        /* The codec has checked every value against its enum. */
        size_t n = 0, i;
        json_t *s;
        n += (size_t)snprintf(statuses + n, ssize - n, "{");
        json_array_foreach (sts, i, s)
            n += (size_t)snprintf(statuses + n, ssize - n, "%s%s", i ? "," : "",
                                  json_string_value(s));
        snprintf(statuses + n, ssize - n, "}");
    }
    return true;
}

/* Lists what the caller's organisation made in its territory over the last
 * 7 days by default (requests, calls): `key` names the answer's array and
 * `filter` the request's array of values (statuses, outcomes); query `q`
 * takes territory, organisation, values, from, to, limit + 1, then, when
 * `audited` (it shows patient fields), the actor and role of the audit. */
static void organisation_list(struct dispatch *d, const struct caller *c, json_t *data,
                              const char *key, const char *filter, enum sql_id q, bool audited,
                              answer_cb cb, void *arg)
{
    struct read *r = read_new(d, c, cb, arg);
    if (!r)
        return;
    r->list_key = key;
    char values[128], from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE], limit[16];
    int64_t now = timeutil_now();
    if (!list_args(r, data, filter, now - 7 * 86400, 7 * 86400 + 60, 100, values, sizeof(values),
                   from, to, limit))
        return;
    char org[24];
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    const char *params[] = {c->territory, org,      values[0] ? values : NULL, from, to,
                            limit,        c->actor, token_role_name(c->role)};
    db_query(d->db, sql_text[q], audited ? 8 : 6, params, on_list, r);
}

void reads_request_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    organisation_list(d, c, data, "requests", "status", SQL_REQUEST_LIST, true, cb, arg);
}

void reads_call_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg)
{
    organisation_list(d, c, data, "calls", "outcome", SQL_CALL_LIST, false, cb, arg);
}

void reads_booking_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    struct read *r = read_new(d, c, cb, arg);
    if (!r)
        return;
    r->list_key = "bookings";
    struct territory *t = store_territory(&d->store, c->territory);
    int64_t now = timeutil_now();
    int64_t day = t ? timeutil_local_day_start(t->zone, now) : now - 86400;
    char statuses[128], from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE], limit[16];
    if (!list_args(r, data, "status", day, 7 * 86400, 500, statuses, sizeof(statuses), from, to,
                   limit))
        return;
    /* A gp's own bookings; a reception's, its site's. */
    bool reception = c->role == ROLE_RECEPTION;
    char site[24];
    snprintf(site, sizeof(site), "%lld", (long long)c->site_id);
    const char *params[] = {
        c->territory, reception ? site : c->rpps, statuses[0] ? statuses : NULL, from, to, limit,
        c->actor};
    db_query(d->db, sql_text[reception ? SQL_BOOKING_LIST_SITE : SQL_BOOKING_LIST], 7, params,
             on_list, r);
}

/* --- slips ------------------------------------------------------------------------ */

static void on_slip(void *arg, enum db_status st, const PGresult *res)
{
    struct read *r = arg;
    if (read_failed(r, st, res))
        return;
    json_t *v = parse_row(res, 0);
    read_finish(r, v ? SNP_PROTO_OK : SNP_PROTO_E_NOT_FOUND, v ? NULL : "no slip", v);
}

void reads_slip_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                    void *arg)
{
    struct read *r = read_new(d, c, cb, arg);
    if (!r)
        return;
    char id[24], org[24];
    snprintf(id, sizeof(id), "%lld",
             (long long)json_integer_value(json_object_get(data, "request_id")));
    snprintf(org, sizeof(org), "%lld", (long long)c->organisation_id);
    const char *params[] = {c->territory, id, org, c->actor};
    db_query(d->db, sql_text[SQL_SLIP_GET], 4, params, on_slip, r);
}

/* --- territory -------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    const struct practitioner *x = *(const struct practitioner *const *)a;
    const struct practitioner *y = *(const struct practitioner *const *)b;
    int c = strcmp(x->family_name, y->family_name);
    return c ? c : strcmp(x->given_name, y->given_name);
}

/* The practitioners of territory `t` (those who practise at one of its
 * sites) by name, as the protocol's `practitioner` type: for the
 * coordinator's choices (the practitioner on duty of a shift). */
static json_t *territory_practitioners(const struct store *st, const struct territory *t)
{
    enum { MAX = 1000 };
    const struct practitioner **list = calloc(MAX, sizeof(*list));
    json_t *out = json_array();
    if (!list || !out) {
        free(list);
        return out;
    }
    size_t n = store_territory_practitioners(st, t, list, MAX);
    if (n > MAX)
        n = MAX;
    qsort(list, n, sizeof(*list), by_name);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:s}", "rpps", list[i]->rpps, "family_name",
                                        list[i]->family_name, "given_name", list[i]->given_name));
    free(list);
    return out;
}

void reads_territory_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    (void)data;
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_NOT_FOUND, "unknown territory", NULL, NULL);
        return;
    }
    json_t *communes = json_array();
    for (size_t i = 0; i < t->ncommunes; i++) {
        const struct commune *cm = t->communes[i];
        json_t *j = json_pack("{s:s, s:s, s:f, s:f}", "insee", cm->insee, "name", cm->name,
                              "latitude", cm->lat, "longitude", cm->lon);
        /* Optional fields are omitted, never null (protocol/snp.v1.md). */
        if (cm->postal_code[0])
            json_object_set_new(j, "postal_code", json_string(cm->postal_code));
        json_array_append_new(communes, j);
    }
    json_t *neighbours = json_array();
    for (size_t i = 0; i < t->nneighbours; i++)
        json_array_append_new(neighbours, json_string(t->neighbours[i]->id));
    json_t *sites = json_array();
    for (size_t i = 0; i < t->nsites; i++) {
        const struct site *s = t->sites[i];
        json_array_append_new(sites, json_pack("{s:I, s:s, s:s, s:s}", "site_id", (json_int_t)s->id,
                                               "kind", model_site_kind_name(s->kind), "name",
                                               s->name, "commune_insee", s->commune));
    }
    const struct territory_settings *s = &t->settings;
    json_t *practitioners = c->role == ROLE_COORDINATOR || c->role == ROLE_ADMIN
                                ? territory_practitioners(&d->store, t)
                                : NULL;
    json_t *result = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o,"
        " s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:{s:f, s:f, s:f, s:f, s:f}}}",
        "territory_id", t->id, "name", t->name, "kind", t->is_sas ? "sas" : "cpts", "time_zone",
        timeutil_zone_name(t->zone), "communes", communes, "neighbours", neighbours, "sites", sites,
        "settings", "hold_seconds", s->hold_seconds, "alternatives", s->alternatives,
        "outcome_delay_hours", s->outcome_delay_hours, "identity_retention_days",
        s->identity_retention_days, "indicator_mask_threshold", s->indicator_mask_threshold,
        "indicator_consolidation_days", s->indicator_consolidation_days, "contract_start_month",
        s->contract_start_month, "audit_retention_months", s->audit_retention_months, "weights",
        "start_per_hour", s->weights.start_per_hour, "distance_per_km", s->weights.distance_per_km,
        "own_mt_bonus", s->weights.own_mt_bonus, "fairness", s->weights.fairness, "scarcity",
        s->weights.scarcity);
    if (practitioners)
        json_object_set_new(result, "practitioners", practitioners);
    json_t *settings = json_object_get(result, "settings");
    json_t *gps = json_array();
    for (int i = 0; i < s->n_new_patient_gps; i++)
        json_array_append_new(gps, json_string(s->new_patient_gps[i]));
    json_object_set_new(settings, "mt_summary", json_boolean(s->mt_summary));
    json_object_set_new(settings, "new_patient_gps", gps);
    cb(arg, SNP_PROTO_OK, NULL, NULL, result);
    json_decref(result);
}
