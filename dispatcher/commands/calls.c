/* Decoding of the dispatch core's messages (calls.h).  The data has passed
 * the declaration's validation (protocol/codec.c): required fields are
 * there, with their types, enum values and bounds; what is read here as
 * absent is an optional field. */
#include "dispatcher/commands/calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "dispatcher/commands/views.h"
#include "dispatcher/core/model.h"

/* --- the way back: the core's typed answer, written as the protocol's JSON --------- */

/* A call on its way through the core: whom to answer. */
struct pending {
    const struct store *store;
    answer_cb cb;
    void *arg;
    /* request.create: the message, whose patient, motif, constraints and
     * source a new request's answer gives back as the requester gave them. */
    json_t *echo;
};

/* A call to send through the core, or NULL (answered) when out of memory. */
static struct pending *pending_new(struct dispatch *d, answer_cb cb, void *arg, json_t *echo)
{
    struct pending *p = malloc(sizeof(*p));
    if (!p) {
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return NULL;
    }
    *p = (struct pending){.store = &d->store, .cb = cb, .arg = arg, .echo = json_incref(echo)};
    return p;
}

static void on_answer(void *arg, enum snp_proto_code err, const char *message, const char *field,
                      const struct dispatch_answer *a)
{
    struct pending *p = arg;
    json_t *data = err == SNP_PROTO_OK && a ? views_answer(p->store, a) : NULL;
    if (err != SNP_PROTO_OK) {
        p->cb(p->arg, err, message, field, NULL);
    } else if (!data) {
        /* Out of memory, or a view the database wrote that cannot be read:
         * the change, if any, is committed. */
        p->cb(p->arg, SNP_PROTO_E_INTERNAL, "the answer could not be written", NULL, NULL);
    } else {
        if (p->echo && !a->repeat) {
            static const char *const echoed[] = {"patient", "motif", "constraints", "source"};
            for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++) {
                json_t *v = json_object_get(p->echo, echoed[i]);
                if (v)
                    json_object_set(data, echoed[i], v);
            }
        }
        p->cb(p->arg, SNP_PROTO_OK, a->repeat ? ANSWER_REPEAT : NULL, NULL, data);
    }
    json_decref(data);
    json_decref(p->echo);
    free(p);
}

/* Copies string field `key` of `data` into `out` ("" when absent). */
static void copy_string(json_t *data, const char *key, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(data, key));
    snprintf(out, size, "%s", v ? v : "");
}

static int64_t id_field(json_t *data, const char *key)
{
    return json_integer_value(json_object_get(data, key));
}

/* The modes of array `arr` (the declaration's slot_mode) as a set of
 * MODE_* bits; 0 when absent. */
static uint8_t modes_field(json_t *arr)
{
    uint8_t modes = 0;
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        uint8_t bit;
        if (model_mode_parse(json_string_value(v), &bit))
            modes |= bit;
    }
    return modes;
}

/* "HH:MM" (the declaration's time_of_day) in minutes after midnight. */
static bool parse_hhmm(const char *s, int *minutes)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return false;
    *minutes = h * 60 + m;
    return true;
}

/* "YYYY-MM-DD" (the declaration's date) as a local midnight. */
static bool parse_date(const char *s, struct tm *tm)
{
    memset(tm, 0, sizeof(*tm));
    int y, mo, da;
    if (!s || sscanf(s, "%4d-%2d-%2d", &y, &mo, &da) != 3)
        return false;
    tm->tm_year = y - 1900;
    tm->tm_mon = mo - 1;
    tm->tm_mday = da;
    return true;
}

/* "sun" ... "sat" (the declaration's weekday) as tm_wday, or -1. */
static int weekday_index(const char *name)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int i = 0; name && i < 7; i++)
        if (strcmp(name, days[i]) == 0)
            return i;
    return -1;
}

/* Copies the strings of array `arr` into `out` (at most `max`); false
 * when there are more. */
static bool string_list(json_t *arr, const char **out, size_t max, size_t *n)
{
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach (arr, i, v) {
        if (*n == max)
            return false;
        out[(*n)++] = json_string_value(v);
    }
    return true;
}

/* Decodes the pattern or the shift of slot.publish; answers and returns
 * false when a date or a time is impossible. */
static bool decode_pattern(json_t *pattern, struct dispatch_publish_args *a, answer_cb cb,
                           void *arg)
{
    a->how = PUBLISH_PATTERN;
    a->pattern.every_min = (int)json_integer_value(json_object_get(pattern, "every_min"));
    a->pattern.duration_min = (int)json_integer_value(json_object_get(pattern, "duration_min"));
    if (!parse_date(json_string_value(json_object_get(pattern, "from_date")),
                    &a->pattern.from_date) ||
        !parse_date(json_string_value(json_object_get(pattern, "to_date")), &a->pattern.to_date) ||
        !parse_hhmm(json_string_value(json_object_get(pattern, "from_time")),
                    &a->pattern.from_min) ||
        !parse_hhmm(json_string_value(json_object_get(pattern, "to_time")), &a->pattern.to_min)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid date or time", "pattern", NULL);
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(pattern, "days"), i, v) {
        int w = weekday_index(json_string_value(v));
        if (w >= 0)
            a->pattern.days[w] = true;
    }
    return true;
}

static bool decode_shift(json_t *shift, struct dispatch_publish_args *a, answer_cb cb, void *arg)
{
    a->how = PUBLISH_SHIFT;
    a->shift.every_min = (int)json_integer_value(json_object_get(shift, "every_min"));
    const char *half = json_string_value(json_object_get(shift, "half_day"));
    a->shift.from_min = 8 * 60;
    a->shift.to_min = 12 * 60;
    if (half && strcmp(half, "afternoon") == 0) {
        a->shift.from_min = 14 * 60;
        a->shift.to_min = 18 * 60;
    } else if (half && strcmp(half, "evening") == 0) {
        a->shift.from_min = 18 * 60;
        a->shift.to_min = 22 * 60;
    }
    if (!parse_date(json_string_value(json_object_get(shift, "date")), &a->shift.date)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid date", "shift", NULL);
        return false;
    }
    return true;
}

void calls_slot_publish(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    struct dispatch_publish_args a = {
        .site_id = id_field(data, "site_id"),
        .rpps = json_string_value(json_object_get(data, "practitioner_rpps")),
        .mode = json_string_value(json_object_get(data, "mode")),
        .min_age = -1,
        .max_age = -1,
        .how = PUBLISH_SLOTS};
    json_t *restr = json_object_get(data, "restrictions");
    json_t *v;
    if ((v = json_object_get(data, "release_minutes")))
        a.release_minutes = (int)json_integer_value(v);
    if ((v = json_object_get(restr, "min_age_years")))
        a.min_age = (int)json_integer_value(v);
    if ((v = json_object_get(restr, "max_age_years")))
        a.max_age = (int)json_integer_value(v);
    if (!string_list(json_object_get(data, "audiences"), a.audiences,
                     sizeof(a.audiences) / sizeof(a.audiences[0]), &a.naudiences) ||
        !string_list(json_object_get(restr, "motifs"), a.motifs,
                     sizeof(a.motifs) / sizeof(a.motifs[0]), &a.nmotifs)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "too many audiences or motifs", NULL, NULL);
        return;
    }
    json_t *slots = json_object_get(data, "slots");
    json_t *pattern = json_object_get(data, "pattern");
    json_t *shift = json_object_get(data, "shift");
    struct dispatch_publish_slot *list = NULL;
    if (slots) {
        size_t n = json_array_size(slots);
        list = malloc((n ? n : 1) * sizeof(*list));
        if (!list) {
            cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
            return;
        }
        size_t i;
        json_t *one;
        json_array_foreach (slots, i, one) {
            if (!timeutil_parse_rfc3339(json_string_value(json_object_get(one, "start")),
                                        &list[i].start)) {
                free(list);
                cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid start", "slots.start", NULL);
                return;
            }
            list[i].duration_min = (int)json_integer_value(json_object_get(one, "duration_min"));
        }
        a.slots = list;
        a.nslots = n;
    } else if (pattern) {
        if (!decode_pattern(pattern, &a, cb, arg))
            return;
    } else if (shift) {
        if (!decode_shift(shift, &a, cb, arg))
            return;
    }
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_slot_publish(d, c, &a, on_answer, p);
    free(list);
}

void calls_slot_withdraw(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    json_t *ids = json_object_get(data, "slot_ids");
    size_t n = json_array_size(ids);
    int64_t *list = malloc((n ? n : 1) * sizeof(*list));
    if (!list) {
        cb(arg, SNP_PROTO_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++)
        list[i] = json_integer_value(json_array_get(ids, i));
    struct dispatch_withdraw_args a = {.slot_ids = list, .nslot_ids = n};
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_slot_withdraw(d, c, &a, on_answer, p);
    free(list);
}

/* Reads instant field `key` into `*out`; false (answered) when the
 * calendar refuses it. */
static bool instant_field(json_t *data, const char *key, bool *present, int64_t *out, answer_cb cb,
                          void *arg)
{
    const char *v = json_string_value(json_object_get(data, key));
    *present = v != NULL;
    if (v && !timeutil_parse_rfc3339(v, out)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid instant", key, NULL);
        return false;
    }
    return true;
}

void calls_slot_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg)
{
    struct dispatch_slot_list_args a = {.limit = 500};
    if (!instant_field(data, "from", &a.has_from, &a.from, cb, arg) ||
        !instant_field(data, "to", &a.has_to, &a.to, cb, arg))
        return;
    copy_string(data, "practitioner_rpps", a.rpps, sizeof(a.rpps));
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(data, "status"), i, v) {
        enum slot_status st;
        if (model_slot_status_parse(json_string_value(v), &st))
            a.statuses |= 1u << st;
    }
    json_t *limit = json_object_get(data, "limit");
    if (limit)
        a.limit = (size_t)json_integer_value(limit);
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_slot_list(d, c, &a, on_answer, p);
}

void calls_request_create(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg)
{
    json_t *patient = json_object_get(data, "patient");
    json_t *motif = json_object_get(data, "motif");
    json_t *cons = json_object_get(data, "constraints");
    json_t *source = json_object_get(data, "source");
    struct dispatch_request_args a = {
        .client_ref = json_string_value(json_object_get(data, "client_ref")),
        .motif_text = json_string_value(json_object_get(motif, "text")),
        .max_distance_km = json_number_value(json_object_get(cons, "max_distance_km")),
        .reduced_mobility = json_is_true(json_object_get(cons, "reduced_mobility"))};
    a.patient.commune_insee = json_string_value(json_object_get(patient, "commune_insee"));
    a.patient.birth_date = json_string_value(json_object_get(patient, "birth_date"));
    a.patient.sex = json_string_value(json_object_get(patient, "sex"));
    a.patient.has_mt = json_is_true(json_object_get(patient, "has_mt"));
    a.patient.mt_rpps = json_string_value(json_object_get(patient, "mt_rpps"));
    a.patient.ald = json_is_true(json_object_get(patient, "ald"));
    a.patient.c2s = json_is_true(json_object_get(patient, "c2s"));
    a.patient.display_name = json_string_value(json_object_get(patient, "display_name"));
    a.patient.initials = json_string_value(json_object_get(patient, "initials"));
    a.patient.phone = json_string_value(json_object_get(patient, "phone"));
    bool ok = model_motif_parse(json_string_value(json_object_get(motif, "code")), &a.motif) &&
              model_urgency_parse(json_string_value(json_object_get(data, "urgency")), &a.urgency);
    struct tm born = {0};
    if (a.patient.birth_date) {
        ok = ok && parse_date(a.patient.birth_date, &born);
        a.patient.birth_year = born.tm_year + 1900;
        a.patient.birth_month = born.tm_mon + 1;
        a.patient.birth_day = born.tm_mday;
    } else
        a.patient.birth_year = (int)json_integer_value(json_object_get(patient, "birth_year"));
    if (!ok || a.patient.birth_year < 1890) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "invalid motif, urgency or birth date", NULL, NULL);
        return;
    }
    a.modes = modes_field(json_object_get(cons, "modes"));
    size_t i;
    json_t *v;
    json_t *em = json_object_get(source, "emergency");
    if (em) {
        a.sources |= SOURCE_EMERGENCY;
        a.emergency.triage_level = (int)json_integer_value(json_object_get(em, "triage_level"));
        a.emergency.senior_rpps = json_string_value(json_object_get(em, "senior_rpps"));
    }
    json_t *ph = json_object_get(source, "pharmacy");
    if (ph) {
        a.sources |= SOURCE_PHARMACY;
        a.pharmacy.protocol = json_string_value(json_object_get(ph, "protocol"));
        a.pharmacy.test_result = json_string_value(json_object_get(ph, "test_result"));
        json_array_foreach (json_object_get(ph, "exclusions"), i, v) {
            if (a.pharmacy.nexclusions < sizeof(a.pharmacy.exclusions) / sizeof(char *))
                a.pharmacy.exclusions[a.pharmacy.nexclusions++] = json_string_value(v);
        }
    }
    json_t *sas = json_object_get(source, "sas");
    if (sas) {
        a.sources |= SOURCE_SAS;
        a.sas.regulator_name = json_string_value(json_object_get(sas, "regulator_name"));
        a.sas.regulator_id = json_string_value(json_object_get(sas, "regulator_id"));
    }
    struct pending *p = pending_new(d, cb, arg, data);
    if (p)
        dispatch_request_create(d, c, &a, on_answer, p);
}

static void decode_offer(json_t *data, struct dispatch_offer_args *a)
{
    a->request_id = id_field(data, "request_id");
    a->slot_id = id_field(data, "slot_id");
    copy_string(data, "reason", a->reason, sizeof(a->reason));
}

void calls_offer_accept(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg)
{
    struct dispatch_offer_args a;
    decode_offer(data, &a);
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_offer_accept(d, c, &a, on_answer, p);
}

void calls_offer_decline(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    struct dispatch_offer_args a;
    decode_offer(data, &a);
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_offer_decline(d, c, &a, on_answer, p);
}

/* Decodes a cancellation; false (answered) when its reason is
 * patient_refused, which only slip.refuse records (an emergency department
 * may also give it to request.cancel, `refused_allowed`). */
static bool decode_cancel(json_t *data, const char *id_key, bool refused_allowed,
                          struct dispatch_cancel_args *a, answer_cb cb, void *arg)
{
    a->id = id_field(data, id_key);
    copy_string(data, "reason", a->reason, sizeof(a->reason));
    if (!refused_allowed && strcmp(a->reason, "patient_refused") == 0) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "patient_refused is recorded with slip.refuse", "reason",
           NULL);
        return false;
    }
    return true;
}

void calls_request_cancel(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg)
{
    struct dispatch_cancel_args a;
    if (!decode_cancel(data, "request_id", c->role == ROLE_EMERGENCY, &a, cb, arg))
        return;
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_request_cancel(d, c, &a, on_answer, p);
}

void calls_slip_refuse(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    struct dispatch_cancel_args a = {.id = id_field(data, "request_id")};
    snprintf(a.reason, sizeof(a.reason), "patient_refused");
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_request_cancel(d, c, &a, on_answer, p);
}

void calls_booking_cancel(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg)
{
    struct dispatch_cancel_args a;
    if (!decode_cancel(data, "booking_id", false, &a, cb, arg))
        return;
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_booking_cancel(d, c, &a, on_answer, p);
}

void calls_outcome_report(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg)
{
    struct dispatch_outcome_args a = {.booking_id = id_field(data, "booking_id"),
                                      .note = json_string_value(json_object_get(data, "note"))};
    copy_string(data, "outcome", a.outcome, sizeof(a.outcome));
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_outcome_report(d, c, &a, on_answer, p);
}

void calls_capacity_query(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg)
{
    struct dispatch_capacity_args a = {.horizon = HORIZON_48H};
    if (!dispatch_horizon_parse(json_string_value(json_object_get(data, "horizon")), &a.horizon)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "unknown horizon", "horizon", NULL);
        return;
    }
    copy_string(data, "commune_insee", a.commune_insee, sizeof(a.commune_insee));
    a.radius_km = json_number_value(json_object_get(data, "radius_km"));
    a.modes = modes_field(json_object_get(data, "modes"));
    struct pending *p = pending_new(d, cb, arg, NULL);
    if (p)
        dispatch_capacity_query(d, c, &a, on_answer, p);
}
