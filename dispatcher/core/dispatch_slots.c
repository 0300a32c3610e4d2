/* The slot operations: slot.publish (slots given one by one, as a weekly
 * pattern or as a CSNP shift, expanded in the territory's local time) and
 * slot.withdraw (slot by slot, stopping at the first refusal).
 *
 * Each is one call per change (slots_publish.sql, slot_withdraw.sql); the
 * store takes the published slots, which the matching pass offers to the
 * waiting, and lets the withdrawn ones go. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/core/dispatch.h"
#include "dispatcher/core/dispatch_internal.h"
#include "dispatcher/core/values.h"
#include "sql_queries.h"

/* --- slot.publish ----------------------------------------------------------------- */

/* Appends one slot to the JSON array sent to snp_slots_publish. */
static void publish_add(json_t *arr, json_t *common, int64_t start, int duration,
                        const struct territory *t)
{
    json_t *one = json_deep_copy(common);
    json_object_set_new(one, "start", value_time_json(t, start));
    json_object_set_new(one, "duration_min", json_integer(duration));
    json_array_append_new(arr, one);
}

/* Expands a local-time pattern or shift into slots.  Returns false (with
 * `err`) on impossible dates or times. */
static bool expand_range(json_t *arr, json_t *common, const struct territory *t, struct tm day,
                         int from_min, int to_min, int every, int duration, const char **err)
{
    for (int m = from_min; m + duration <= to_min; m += every) {
        struct tm local = day;
        local.tm_hour = m / 60;
        local.tm_min = m % 60;
        int64_t start;
        if (!timeutil_from_local(t->zone, &local, &start)) {
            *err = "impossible local time";
            return false;
        }
        publish_add(arr, common, start, duration, t);
        if (json_array_size(arr) > 1000) {
            *err = "more than 1000 slots in one call";
            return false;
        }
    }
    return true;
}

static void on_published(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct store_slot_cols cols;
    if (op_settled_early(o, st, res))
        return;
    if (!store_slot_cols(res, sql_name[SQL_SLOTS_PUBLISH], &cols)) {
        op_fail_cols(o);
        return;
    }
    struct dispatch *d = o->d;
    int n = PQntuples(res);
    struct slot **added = calloc((size_t)n + 1, sizeof(*added));
    int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));
    if (!added || !ids) {
        free(added);
        free(ids);
        /* Committed: the slots come in through the notifications, and the
         * caller learns that the answer was lost. */
        op_fail(o, SNP_PROTO_E_INTERNAL, "out of memory", NULL);
        return;
    }
    int nadded = 0;
    for (int i = 0; i < n; i++) {
        struct slot *s = store_slot_from_cols(&d->store, res, i, &cols);
        if (!s)
            continue;
        int64_t id = s->id;
        if (store_slot(&d->store, id)) {
            /* Known already: another process's notification came first. */
            store_slot_unref(s);
            s = store_slot(&d->store, id);
            ids[nadded] = id;
            added[nadded++] = s;
            continue;
        }
        if (!store_add_slot(&d->store, s)) {
            log_error("dispatch", "out of memory adding slot %lld", (long long)id);
            continue;
        }
        ids[nadded] = id;
        added[nadded++] = s;
    }
    /* The matching pass gives waiting requests the new slots first. */
    for (int i = 0; i < nadded; i++) {
        push_capacity(d, added[i]);
        want_slot(d, added[i]);
    }
    free(added);
    struct dispatch_answer a = {
        .kind = ANSWER_PUBLISHED,
        .published = {
            .count = n, .skipped = o->count - n, .slot_ids = ids, .nslot_ids = (size_t)nadded}};
    op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
    free(ids);
}

/* The JSON array of one name per entry of `names` (the SQL function's text
 * arrays). */
static json_t *names_json(const char *const *names, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    return arr;
}

void dispatch_slot_publish(struct dispatch *d, const struct caller *c,
                           const struct dispatch_publish_args *a, dispatch_cb cb, void *arg)
{
    struct territory *t = store_territory(&d->store, c->territory);
    if (!t) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "unknown territory", NULL, NULL);
        return;
    }
    struct site *site = idmap_get(&d->store.sites, a->site_id);
    if (!site) {
        cb(arg, SNP_PROTO_E_NOT_FOUND, "no such site", "site_id", NULL);
        return;
    }
    if (site->territory != t) {
        cb(arg, SNP_PROTO_E_OTHER_TERRITORY, "this site belongs to another territory", "site_id",
           NULL);
        return;
    }
    const char *rpps = a->rpps;
    if (c->role == ROLE_GP) {
        if (rpps && strcmp(rpps, c->rpps) != 0) {
            cb(arg, SNP_PROTO_E_FORBIDDEN, "a practitioner publishes only their own slots",
               "practitioner_rpps", NULL);
            return;
        }
        rpps = c->rpps;
    }
    if (a->how == PUBLISH_SHIFT && site->kind != SITE_CSNP) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "shifts are published at a csnp site", "shift", NULL);
        return;
    }

    /* What every slot shares, as snp_slots_publish reads it. */
    json_t *common = json_pack("{s:s, s:o}", "mode", a->mode, "audience",
                               names_json(a->audiences, a->naudiences));
    if (a->release_minutes > 0)
        json_object_set_new(common, "release_minutes", json_integer(a->release_minutes));
    if (a->min_age >= 0)
        json_object_set_new(common, "min_age", json_integer(a->min_age));
    if (a->max_age >= 0)
        json_object_set_new(common, "max_age", json_integer(a->max_age));
    if (a->nmotifs > 0)
        json_object_set_new(common, "motifs", names_json(a->motifs, a->nmotifs));

    json_t *arr = json_array();
    const char *err = NULL;
    const char *field = NULL;
    if (a->how == PUBLISH_SLOTS) {
        for (size_t i = 0; i < a->nslots; i++)
            publish_add(arr, common, a->slots[i].start, a->slots[i].duration_min, t);
    } else if (a->how == PUBLISH_PATTERN) {
        int from_min = a->pattern.from_min, to_min = a->pattern.to_min;
        int every = a->pattern.every_min;
        int duration = a->pattern.duration_min > 0 ? a->pattern.duration_min : every;
        struct tm from = a->pattern.from_date, to = a->pattern.to_date;
        field = "pattern";
        if (to_min <= from_min) {
            err = "to_time must be after from_time";
        } else {
            /* Walk the calendar day by day, on day numbers since the epoch. */
            from.tm_hour = to.tm_hour = 12;
            int64_t first = (int64_t)timegm(&from) / 86400;
            int64_t last = (int64_t)timegm(&to) / 86400;
            for (int64_t dn = first; dn <= last && last - first <= 62 && !err; dn++) {
                time_t noon = (time_t)(dn * 86400 + 43200);
                struct tm day;
                gmtime_r(&noon, &day);
                if (!a->pattern.days[day.tm_wday])
                    continue;
                day.tm_hour = 0;
                expand_range(arr, common, t, day, from_min, to_min, every, duration, &err);
            }
            if (!err && timegm(&to) - timegm(&from) > 62 * 86400)
                err = "a pattern covers at most 62 days";
            if (!err && timegm(&to) < timegm(&from))
                err = "to_date is before from_date";
        }
    } else {
        int every = a->shift.every_min;
        field = "shift";
        expand_range(arr, common, t, a->shift.date, a->shift.from_min, a->shift.to_min, every,
                     every, &err);
    }
    json_decref(common);
    if (!err && json_array_size(arr) == 0) {
        err = "no slot to publish";
    }
    if (err) {
        json_decref(arr);
        cb(arg, SNP_PROTO_E_INVALID_FIELD, err, field, NULL);
        return;
    }

    struct op *o = op_new(d, c, cb, arg);
    if (!o) {
        json_decref(arr);
        return;
    }
    o->count = (int)json_array_size(arr);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char site_s[24];
    snprintf(site_s, sizeof(site_s), "%lld", (long long)site->id);
    const char *params[] = {t->id, site_s, rpps, c->actor, text};
    db_query(d->db, sql_text[SQL_SLOTS_PUBLISH], 5, params, on_published, o);
    free(text);
}

/* --- slot.withdraw ---------------------------------------------------------------- */

static void withdraw_next(struct op *o);

static void on_withdrawn(void *arg, enum db_status st, const PGresult *res)
{
    struct op *o = arg;
    struct slot *s = o->slot;
    if (s)
        s->pending = false;
    if (op_settled_early(o, st, res))
        return;
    struct dispatch *d = o->d;
    int64_t id = o->slot_ids[o->count];
    if (s && !s->gone) {
        store_slot_set_status(s, SLOT_WITHDRAWN);
        push_capacity(d, s);
        store_remove_slot(&d->store, s);
    }
    /* A read of it in flight may return it free. */
    unknown_changed(&d->slot_reads, id);
    op_set_slot(o, NULL);
    o->count++; /* o->slot_ids[0 .. count) are withdrawn */
    withdraw_next(o);
}

/* Withdraws the listed slots one by one; stops at the first refusal (the
 * ones before it stay withdrawn, and are named in the error's message). */
static void withdraw_next(struct op *o)
{
    struct dispatch *d = o->d;
    if ((size_t)o->count >= o->nslot_ids) {
        struct dispatch_answer a = {
            .kind = ANSWER_WITHDRAWN,
            .withdrawn = {.slot_ids = o->slot_ids, .nslot_ids = (size_t)o->count}};
        op_finish(o, SNP_PROTO_OK, NULL, NULL, &a);
        return;
    }
    int64_t id = o->slot_ids[o->count];
    struct slot *s = store_slot(&d->store, id);
    /* A slot busy with an offer is the database's to refuse (it is held);
     * one that is free is kept from the matching pass meanwhile. */
    if (s && !s->pending) {
        op_set_slot(o, s);
        s->pending = true;
    }
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *params[] = {sid, o->caller.territory,
                            o->caller.role == ROLE_GP ? o->caller.rpps : NULL, o->caller.actor};
    db_query(d->db, sql_text[SQL_SLOT_WITHDRAW], 4, params, on_withdrawn, o);
}

void dispatch_slot_withdraw(struct dispatch *d, const struct caller *c,
                            const struct dispatch_withdraw_args *a, dispatch_cb cb, void *arg)
{
    struct op *o = op_new(d, c, cb, arg);
    if (!o)
        return;
    o->slot_ids = malloc((a->nslot_ids ? a->nslot_ids : 1) * sizeof(*o->slot_ids));
    if (!o->slot_ids) {
        op_finish(o, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    if (a->nslot_ids)
        memcpy(o->slot_ids, a->slot_ids, a->nslot_ids * sizeof(*o->slot_ids));
    o->nslot_ids = a->nslot_ids;
    withdraw_next(o);
}
