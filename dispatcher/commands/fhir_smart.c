#include "dispatcher/commands/fhir_smart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/timeutil.h"
#include "dispatcher/commands/fhir.h"
#include "dispatcher/core/match.h"

/* --- Names of the SMART Scheduling Links specification (docs/fhir.md) ------------- */

#define MANIFEST_PATH     "/fhir/$bulk-publish"
#define FILES_PREFIX      "/fhir/bulk/"
#define EXT_DEEP_LINK     "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
#define EXT_PHONE         "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"
#define SYSTEM_SERVICE    "http://terminology.hl7.org/CodeSystem/service-type"
#define SERVICE_GP        "124" /* HL7 service-type: General Practice */
#define SERVICE_GP_NAME   "General Practice"
#define REQUEST_PAGE      "/request.html" /* the requesters' page of the web client */
#define STRINGIFY(x)      #x
#define STRING_OF(x)      STRINGIFY(x)
#define CACHE_CONTROL     "public, max-age=" STRING_OF(FHIR_SMART_MAX_AGE)
#define MANIFEST_TYPE     "application/json"
#define TERRITORY_ID_SIZE sizeof(((struct territory *)0)->id)

static const char *const file_type[FHIR_SMART_NFILES] = {"Location", "Schedule", "Slot"};

/* Appends a string literal to a struct buf. */
#define PUT(b, literal) buf_append((b), literal, sizeof(literal) - 1)

bool fhir_smart_slot_published(const struct slot *s, int64_t now)
{
    return s->status == SLOT_FREE && s->start > now && s->practitioner && s->site &&
           match_slot_open_to(s, 0, now);
}

bool fhir_smart_path(const char *path)
{
    return strcmp(path, MANIFEST_PATH) == 0 ||
           strncmp(path, FILES_PREFIX, sizeof(FILES_PREFIX) - 1) == 0;
}

/* Writes the department of commune `insee` into `out`: the first two
 * characters of its INSEE code ("35", "2A"), three overseas ("974"). */
static void department_of(const char *insee, char out[4])
{
    size_t n = strncmp(insee, "97", 2) == 0 || strncmp(insee, "98", 2) == 0 ? 3 : 2;
    snprintf(out, 4, "%.*s", (int)n, insee);
}

/* --- Manifest ------------------------------------------------------------------------- */

/* The departments of territory `t`'s communes, each once (a new reference):
 * the specification's "state" hint, telling clients which files to fetch. */
static json_t *departments(const struct territory *t)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < t->ncommunes; i++) {
        char dept[4];
        department_of(t->communes[i]->insee, dept);
        bool seen = false;
        for (size_t k = 0; k < json_array_size(list) && !seen; k++)
            seen = strcmp(json_string_value(json_array_get(list, k)), dept) == 0;
        if (!seen && json_array_append_new(list, json_string(dept)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

char *fhir_smart_manifest(const struct store *st, int64_t now, const char *base, size_t *len)
{
    char when[TIMEUTIL_RFC3339_SIZE], request[512];
    const struct timeutil_zone *utc = timeutil_zone_find("UTC");
    if (!utc || !timeutil_format_rfc3339(utc, now, when, sizeof(when)))
        return NULL;
    snprintf(request, sizeof(request), "%s" MANIFEST_PATH, base);
    json_t *output = json_array();
    json_t *manifest = json_pack("{s:s, s:s, s:o, s:[]}", "transactionTime", when, "request",
                                 request, "output", output, "error");
    bool ok = manifest != NULL;
    for (size_t i = 0; ok && i < st->nterritories; i++) {
        const struct territory *t = st->territories[i];
        for (int f = 0; ok && f < FHIR_SMART_NFILES; f++) {
            char url[512];
            snprintf(url, sizeof(url), "%s" FILES_PREFIX "%s/%s.ndjson", base, t->id, file_type[f]);
            json_t *states = departments(t);
            ok = states && json_array_append_new(
                               output, json_pack("{s:s, s:s, s:{s:o}}", "type", file_type[f], "url",
                                                 url, "extension", "state", states)) == 0;
        }
    }
    char *text = ok ? json_dumps(manifest, JSON_COMPACT) : NULL;
    json_decref(manifest);
    if (text)
        *len = strlen(text);
    return text;
}

/* --- Files ---------------------------------------------------------------------------- */

/* Appends `resource` (stolen) as one NDJSON line. */
static void put_line(struct buf *b, json_t *resource)
{
    char *text = resource ? json_dumps(resource, JSON_COMPACT) : NULL;
    json_decref(resource);
    if (!text) {
        b->failed = true;
        return;
    }
    buf_append(b, text, strlen(text));
    PUT(b, "\n");
    free(text);
}

/* A site as a Location: its name, address, position and phone when known. */
static json_t *location_resource(const struct store *st, const struct site *site, const char *base)
{
    char id[32], value[24], system[512], dept[4];
    snprintf(id, sizeof(id), "site-%lld", (long long)site->id);
    snprintf(value, sizeof(value), "%lld", (long long)site->id);
    snprintf(system, sizeof(system), "%s/fhir/sid/site", base);
    department_of(site->commune, dept);
    const struct commune *c = store_commune(st, site->commune);
    json_t *address = json_pack("{s:s, s:s}", "state", dept, "country", "FR");
    /* FHIR strings may not be empty: absent parts are left out. */
    if (address && site->address && site->address[0])
        json_object_set_new(address, "line", json_pack("[s]", site->address));
    if (address && c && c->name && c->name[0])
        json_object_set_new(address, "city", json_string(c->name));
    if (address && c && c->postal_code[0])
        json_object_set_new(address, "postalCode", json_string(c->postal_code));
    json_t *j = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s, s:o}", "resourceType", "Location", "id",
                          id, "identifier", "system", system, "value", value, "name", site->name,
                          "address", address);
    if (j && site->phone && site->phone[0])
        json_object_set_new(j, "telecom",
                            json_pack("[{s:s, s:s}]", "system", "phone", "value", site->phone));
    if (j && (site->lat != 0 || site->lon != 0))
        json_object_set_new(j, "position",
                            json_pack("{s:f, s:f}", "longitude", site->lon, "latitude", site->lat));
    return j;
}

/* Writes the id of slot `s`'s Schedule, "<rpps>-<site id>" as in the SAS
 * search (fhir.c). */
static void schedule_id(const struct slot *s, char out[40])
{
    snprintf(out, 40, "%s-%lld", s->practitioner->rpps, (long long)s->site->id);
}

/* A practitioner's general practice at a site as a Schedule. */
static json_t *schedule_resource(const struct slot *s)
{
    char id[40], location[40];
    schedule_id(s, id);
    snprintf(location, sizeof(location), "Location/site-%lld", (long long)s->site->id);
    return json_pack("{s:s, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:[{s:s}]}", "resourceType", "Schedule",
                     "id", id, "serviceType", "coding", "system", SYSTEM_SERVICE, "code",
                     SERVICE_GP, "display", SERVICE_GP_NAME, "actor", "reference", location);
}

/* Appends the line of slot `s`, written directly rather than through a
 * jansson tree: the Slots are nearly all of the feed (fhir.c's put_slot
 * says what a tree costs per slot). */
static void put_slot(struct buf *b, const struct slot *s, const char *link_base)
{
    char start[TIMEUTIL_RFC3339_SIZE], end[TIMEUTIL_RFC3339_SIZE], id[40];
    const struct timeutil_zone *zone = s->territory->zone;
    if (!timeutil_format_rfc3339(zone, s->start, start, sizeof(start)) ||
        !timeutil_format_rfc3339(zone, s->start + (int64_t)s->duration_min * 60, end,
                                 sizeof(end))) {
        b->failed = true;
        return;
    }
    schedule_id(s, id);
    buf_printf(b,
               "{\"resourceType\":\"Slot\",\"id\":\"%lld\",\"schedule\":{\"reference\":"
               "\"Schedule/%s\"},\"status\":\"free\",\"start\":\"%s\",\"end\":\"%s\"",
               (long long)s->id, id, start, end);
    bool deep_link = link_base[0], phone = s->site->phone && s->site->phone[0];
    if (deep_link || phone)
        PUT(b, ",\"extension\":[");
    if (deep_link) {
        char url[512];
        snprintf(url, sizeof(url), "%s" REQUEST_PAGE, link_base);
        PUT(b, "{\"url\":\"" EXT_DEEP_LINK "\",\"valueUrl\":");
        buf_json_string(b, url);
        PUT(b, "}");
    }
    if (phone) {
        buf_append(b, ",", deep_link ? 1 : 0);
        PUT(b, "{\"url\":\"" EXT_PHONE "\",\"valueString\":");
        buf_json_string(b, s->site->phone);
        PUT(b, "}");
    }
    if (deep_link || phone)
        PUT(b, "]");
    PUT(b, "}\n");
}

char *fhir_smart_ndjson(const struct store *st, const struct territory *t,
                        enum fhir_smart_file what, int64_t now, const char *base,
                        const char *link_base, size_t *len)
{
    struct buf b = {0};
    json_t *schedules = json_object();           /* Schedule ids written */
    bool *sites = calloc(st->site_count + 1, 1); /* by site index: Location written */
    if (!schedules || !sites)
        b.failed = true;
    for (size_t i = model_slots_after(t->slots, t->nslots, now); i < t->nslots && !b.failed; i++) {
        const struct slot *s = t->slots[i];
        if (!fhir_smart_slot_published(s, now))
            continue;
        if (what == FHIR_SMART_SLOT) {
            put_slot(&b, s, link_base);
            continue;
        }
        char id[40];
        schedule_id(s, id);
        if (json_object_get(schedules, id))
            continue;
        if (json_object_set_new(schedules, id, json_true()) != 0) {
            b.failed = true;
        } else if (what == FHIR_SMART_SCHEDULE) {
            put_line(&b, schedule_resource(s));
        } else if (s->site->index < st->site_count && !sites[s->site->index]) {
            sites[s->site->index] = true;
            put_line(&b, location_resource(st, s->site, base));
        }
    }
    json_decref(schedules);
    free(sites);
    if (b.failed) {
        buf_free(&b);
        return NULL;
    }
    if (b.len == 0) {
        *len = 0;
        return calloc(1, 1); /* an empty file, not a failure */
    }
    return buf_steal(&b, len);
}

/* --- HTTP ----------------------------------------------------------------------------- */

/* Reads "<territory id>/<Type>.ndjson" after FILES_PREFIX; returns false
 * when `rest` is not shaped so. */
static bool parse_file(const char *rest, char territory[TERRITORY_ID_SIZE],
                       enum fhir_smart_file *what)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) >= TERRITORY_ID_SIZE)
        return false;
    snprintf(territory, TERRITORY_ID_SIZE, "%.*s", (int)(slash - rest), rest);
    for (int f = 0; f < FHIR_SMART_NFILES; f++) {
        size_t n = strlen(file_type[f]);
        if (strncmp(slash + 1, file_type[f], n) == 0 && strcmp(slash + 1 + n, ".ndjson") == 0) {
            *what = (enum fhir_smart_file)f;
            return true;
        }
    }
    return false;
}

void fhir_smart_on_http(const struct dispatch *d, struct http_exchange *ex)
{
    if (ex->method != HTTP_GET && ex->method != HTTP_HEAD) {
        fhir_respond_outcome(ex, 405, "not-supported", "only GET and HEAD are supported");
        return;
    }
    const struct store *st = &d->store;
    bool manifest = strcmp(ex->path, MANIFEST_PATH) == 0;
    char territory[TERRITORY_ID_SIZE];
    enum fhir_smart_file what = FHIR_SMART_SLOT;
    if (!manifest && !parse_file(ex->path + sizeof(FILES_PREFIX) - 1, territory, &what)) {
        fhir_respond_outcome(ex, 404, "not-found",
                             "no such file: the manifest GET /fhir/$bulk-publish lists them");
        return;
    }
    if (!d->ready) {
        fhir_respond_outcome(ex, 503, "transient", "snpd is loading its state; retry");
        return;
    }
    const struct territory *t = manifest ? NULL : store_territory(st, territory);
    if (!manifest && !t) {
        fhir_respond_outcome(ex, 404, "not-found", "no such territory");
        return;
    }
    char base[300];
    fhir_base_url(ex, base, sizeof(base));
    int64_t now = timeutil_now();
    size_t len = 0;
    char *text = manifest
                     ? fhir_smart_manifest(st, now, base, &len)
                     : fhir_smart_ndjson(st, t, what, now, base, ex->server->cfg->public_url, &len);
    if (!text) {
        fhir_respond_outcome(ex, 500, "exception", "out of memory");
        return;
    }
    ex->cache_control = CACHE_CONTROL;
    server_http_respond_owned(ex, 200, manifest ? MANIFEST_TYPE : FHIR_SMART_NDJSON, text, len);
}
