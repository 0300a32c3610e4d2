#include "dispatcher/commands/fhir.h"
#include "dispatcher/commands/fhir_smart.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "dispatcher/core/match.h"
#include "dispatcher/core/token.h"
#include "protocol/codec.h"

/* --- Names of the SAS platform's specification (docs/fhir.md) ------------------- */

#define PROFILE_BUNDLE                                                                             \
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-cpts-bundle-aggregator"
#define PROFILE_SLOT                                                                               \
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-cpts-slot-aggregator"
#define PROFILE_SCHEDULE     "http://sas.fr/fhir/StructureDefinition/FrScheduleAgregateur"
#define PROFILE_PRACTITIONER "http://sas.fr/fhir/StructureDefinition/FrPractitionerAgregateur"
#define PROFILE_ROLE         "http://sas.fr/fhir/StructureDefinition/FrPractitionerRoleExerciceAgregateur"
#define PROFILE_LOCATION     "http://sas.fr/fhir/StructureDefinition/FrLocationAgregateur"
#define PROFILE_SERVICE                                                                            \
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"                              \
    "sas-cpts-healthcareservice-aggregator"
#define PROFILE_ORGANISATION                                                                       \
    "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"                              \
    "sas-cpts-organization-aggregator"

#define SYSTEM_SLOT_TYPE                                                                           \
    "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
#define SYSTEM_ACT_CODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define SYSTEM_CATEGORY                                                                            \
    "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"                          \
    "TRE-R66-CategorieEtablissement"
#define SYSTEM_SPECIALTY                                                                           \
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
#define SYSTEM_APPOINTMENT "http://terminology.hl7.org/CodeSystem/v2-0276"
#define SYSTEM_ID_TYPE     "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
#define EXT_SERVICE_TYPE   "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
#define OID_PERSON         "urn:oid:1.2.250.1.71.4.2.1" /* national id of professionals */
#define OID_STRUCTURE      "urn:oid:1.2.250.1.71.4.2.2" /* national id of structures */
#define CATEGORY_CPTS      "604"                        /* TRE-R66: CPTS */

#define PARAM_PRACTITIONER "schedule.actor:Practitioner.identifier"

/* The resource types a read serves. */
static const char *const read_types[] = {
    "Slot", "Schedule", "Practitioner", "PractitionerRole", "HealthcareService", "Organization"};

/* Appends a string literal to a struct buf. */
#define PUT(b, literal) buf_append((b), literal, sizeof(literal) - 1)

/* --- OperationOutcome -------------------------------------------------------------- */

json_t *fhir_outcome(const char *code, const char *diagnostics)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "resourceType", "OperationOutcome", "issue",
                     "severity", "error", "code", code, "diagnostics", diagnostics);
}

/* Answers `j` (stolen) with `status`; 500 when it is NULL. */
static void respond_json(struct http_exchange *ex, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        static const char oom[] = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":"
                                  "\"fatal\",\"code\":\"exception\",\"diagnostics\":\"out of "
                                  "memory\"}]}";
        server_http_respond(ex, 500, FHIR_MEDIA_TYPE, oom, sizeof(oom) - 1);
        return;
    }
    server_http_respond_owned(ex, status, FHIR_MEDIA_TYPE, text, strlen(text));
}

void fhir_respond_outcome(struct http_exchange *ex, int status, const char *code,
                          const char *diagnostics)
{
    respond_json(ex, status, fhir_outcome(code, diagnostics));
}

/* --- Query string -------------------------------------------------------------------- */

/* Percent-decodes `len` bytes of `p` into `out` of `size`; returns false
 * when it does not fit, is malformed or holds a NUL byte. */
static bool decode(const char *p, size_t len, char *out, size_t size)
{
    if (len >= size)
        return false;
    long n = snp_proto_url_decode(p, len, out);
    return n >= 0 && strlen(out) == (size_t)n;
}

/* Parses "geYYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM)" with the given prefix.  A
 * '+' of the offset sent unencoded reaches us as a space (libwebsockets
 * decodes '+' in query strings as a space, as forms do): it is put back. */
static bool parse_start(const char *value, int64_t *out)
{
    char text[64];
    size_t n = strlen(value);
    if (n < 3 || n >= sizeof(text))
        return false;
    memcpy(text, value + 2, n - 1);
    for (char *p = text; *p; p++)
        if (*p == ' ')
            *p = '+';
    return timeutil_parse_rfc3339(text, out);
}

/* Reads the practitioner identifiers "system|value,system|value". */
static int parse_identifiers(char *value, struct fhir_search *q, const char **code, char *why,
                             size_t whylen)
{
    if (q->nidentifiers > 0) {
        *code = "invalid";
        snprintf(why, whylen, "%s is given more than once", PARAM_PRACTITIONER);
        return -1;
    }
    for (char *item = value, *next; item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        if (q->nidentifiers == FHIR_MAX_PRACTITIONERS) {
            *code = "too-costly";
            snprintf(why, whylen, "%s: at most %d practitioners per search", PARAM_PRACTITIONER,
                     FHIR_MAX_PRACTITIONERS);
            return -1;
        }
        char *bar = strchr(item, '|');
        if (!bar || (size_t)(bar - item) != strlen(OID_PERSON) ||
            strncmp(item, OID_PERSON, strlen(OID_PERSON)) != 0) {
            *code = "invalid";
            snprintf(why, whylen, "%s: expected %s|8<RPPS>, got \"%.60s\"", PARAM_PRACTITIONER,
                     OID_PERSON, item);
            return -1;
        }
        const char *id = bar + 1;
        size_t len = strlen(id);
        bool digits = len > 0 && strspn(id, "0123456789") == len;
        q->nidentifiers++;
        if (digits && len == 12 && id[0] == '8') {
            /* RPPS prefixed with 8: the only numbers snpd knows.  A repeated
             * one is kept once. */
            bool seen = false;
            for (size_t i = 0; i < q->nrpps; i++)
                seen = seen || strcmp(q->rpps[i], id + 1) == 0;
            if (!seen)
                snprintf(q->rpps[q->nrpps++], sizeof(q->rpps[0]), "%s", id + 1);
        } else if (!(digits && len == 10 && id[0] == '0')) {
            /* An ADELI number (prefix 0) is well-formed and matches nothing. */
            *code = "invalid";
            snprintf(why, whylen,
                     "%s: the value must be an RPPS prefixed with 8 (12 digits) or an ADELI "
                     "number prefixed with 0 (10 digits), got \"%.40s\"",
                     PARAM_PRACTITIONER, id);
            return -1;
        }
    }
    return 0;
}

int fhir_search_parse(const char *query, struct fhir_search *out, const char **code, char *why,
                      size_t whylen)
{
    memset(out, 0, sizeof(*out));
    bool have_ge = false, have_le = false, have_status = false;
    char name[128], value[2048];
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        *code = "invalid";
        if (!eq || !decode(p, (size_t)(eq - p), name, sizeof(name)) ||
            !decode(eq + 1, len - (size_t)(eq - p) - 1, value, sizeof(value))) {
            snprintf(why, whylen, "malformed or over-long query parameter \"%.60s\"", p);
            return -1;
        }
        p = amp ? amp + 1 : NULL;
        if (strcmp(name, "start") == 0) {
            bool ge = strncmp(value, "ge", 2) == 0, le = strncmp(value, "le", 2) == 0;
            if ((!ge && !le) || (ge && have_ge) || (le && have_le)) {
                snprintf(why, whylen,
                         "start must be given twice, once with the prefix ge and once with le");
                return -1;
            }
            if (!parse_start(value, ge ? &out->ge : &out->le)) {
                snprintf(why, whylen,
                         "start: expected ge or le and an instant with its offset such as "
                         "2024-06-12T16:20:00.000+02:00, got \"%.60s\"",
                         value);
                return -1;
            }
            have_ge = have_ge || ge;
            have_le = have_le || le;
        } else if (strcmp(name, PARAM_PRACTITIONER) == 0) {
            if (parse_identifiers(value, out, code, why, whylen) != 0)
                return -1;
        } else if (strcmp(name, "status") == 0) {
            if (have_status || strcmp(value, "free") != 0) {
                *code = "not-supported";
                snprintf(why, whylen, "status: only one value, free, is supported");
                return -1;
            }
            have_status = true;
        } else if (strcmp(name, "_include") == 0 &&
                   (strcmp(value, "Slot:schedule") == 0 ||
                    strcmp(value, "Slot:service-type-reference") == 0)) {
            bool *flag =
                value[5] == 's' && value[6] == 'c' ? &out->include_schedule : &out->include_service;
            if (*flag) {
                snprintf(why, whylen, "_include=%s is given twice", value);
                return -1;
            }
            *flag = true;
        } else if (strcmp(name, "_include:iterate") == 0 &&
                   (strcmp(value, "Schedule:actor") == 0 ||
                    strcmp(value, "HealthcareService:organization") == 0)) {
            bool *flag = value[0] == 'S' ? &out->include_actors : &out->include_organisation;
            if (*flag) {
                snprintf(why, whylen, "_include:iterate=%s is given twice", value);
                return -1;
            }
            *flag = true;
        } else if (strcmp(name, "_count") == 0) {
            size_t n = strlen(value);
            if (out->count || n == 0 || n > 4 || strspn(value, "0123456789") != n ||
                atoi(value) < 1 || atoi(value) > FHIR_MAX_COUNT) {
                snprintf(why, whylen, "_count: one number from 1 to %d", FHIR_MAX_COUNT);
                return -1;
            }
            out->count = (size_t)atoi(value);
        } else if (strcmp(name, "_cursor") == 0) {
            long long start, id;
            int used = 0;
            if (out->has_cursor || sscanf(value, "%lld.%lld%n", &start, &id, &used) != 2 ||
                (size_t)used != strlen(value) || id < 1) {
                snprintf(why, whylen, "_cursor: give it as the next link wrote it");
                return -1;
            }
            out->has_cursor = true;
            out->after_start = start;
            out->after_id = id;
        } else {
            *code = "not-supported";
            snprintf(why, whylen,
                     "unsupported search parameter \"%.60s=%.60s\" (see GET /fhir/metadata)", name,
                     value);
            return -1;
        }
    }
    *code = "invalid";
    if (!have_ge || !have_le) {
        snprintf(why, whylen, "start=ge... and start=le... are both required");
        return -1;
    }
    /* Without practitioners, a generic search: every exposed slot, in pages. */
    if (out->nidentifiers == 0 && out->count == 0)
        out->count = FHIR_DEFAULT_COUNT;
    if (!have_status) {
        snprintf(why, whylen, "status=free is required");
        return -1;
    }
    if (out->le < out->ge) {
        snprintf(why, whylen, "start: the le bound is before the ge bound");
        return -1;
    }
    return 0;
}

/* --- Resources ------------------------------------------------------------------------ */

unsigned fhir_slot_types(const struct slot *s, int64_t now)
{
    /* Public from the start, or opened to every audience by its release
     * rule; kind 0 asks for exactly that (no requester kind's own bit). */
    bool everyone = match_slot_open_to(s, 0, now);
    unsigned types = FHIR_TYPE_SNP; /* every exposed slot is open to the SAS */
    if (everyone)
        types |= FHIR_TYPE_PUBLIC | FHIR_TYPE_PRO | FHIR_TYPE_CPTS;
    if (s->audience & (AUD_EMERGENCY | AUD_PHARMACY | AUD_PROFESSIONAL))
        types |= FHIR_TYPE_PRO;
    if (s->audience & AUD_DESK)
        types |= FHIR_TYPE_CPTS;
    return types;
}

/* Whether the platform may see slot `s` of the territory: free, not started,
 * and open to the SAS now (its audiences, or its release rule). */
static bool slot_exposed(const struct slot *s, int64_t now)
{
    return s->status == SLOT_FREE && s->start > now && s->practitioner &&
           match_slot_open_to(s, AUD_SAS, now);
}

static json_t *meta(const char *profile)
{
    return json_pack("{s:[s]}", "profile", profile);
}

static json_t *coding(const char *system, const char *code)
{
    return json_pack("{s:[{s:s, s:s}]}", "coding", "system", system, "code", code);
}

/* What every Slot of one answer shares, formatted once per search. */
struct slot_text {
    struct buf url;     /* "fullUrl" value up to the id: "\"<base>/fhir/Slot/" */
    struct buf service; /* the CPTS serviceType entry, or empty without FINESS */
    struct buf comment; /* ,"comment":"<booking link>", or empty */
};

static void slot_text_init(struct slot_text *x, const struct territory *t, const char *base,
                           const char *link_base)
{
    memset(x, 0, sizeof(*x));
    char url[512];
    snprintf(url, sizeof(url), "%s/fhir/Slot/", base);
    buf_json_string(&x->url, url);
    if (x->url.len > 0)
        x->url.len--; /* the id and the closing quote follow */
    if (t->finess[0])
        buf_printf(&x->service,
                   ",{\"coding\":[{\"system\":\"" SYSTEM_CATEGORY "\",\"code\":\"" CATEGORY_CPTS
                   "\"}],\"extension\":[{\"url\":\"" EXT_SERVICE_TYPE
                   "\",\"valueReference\":{\"reference\":\"HealthcareService/%s\"}}]}",
                   t->id); /* territory ids are [a-z0-9-] (migration 0001) */
    if (link_base[0]) {
        snprintf(url, sizeof(url), "%s/sas.html", link_base);
        PUT(&x->comment, ",\"comment\":");
        buf_json_string(&x->comment, url);
    }
}

static bool slot_text_failed(const struct slot_text *x)
{
    return x->url.failed || x->service.failed || x->comment.failed;
}

static void slot_text_free(struct slot_text *x)
{
    buf_free(&x->url);
    buf_free(&x->service);
    buf_free(&x->comment);
}

/* Appends the bundle entry of slot `s`, written directly rather than through
 * a jansson tree: the Slots are nearly all of an answer (thousands of them
 * for 25 busy practitioners), and building then dumping a tree for each
 * cost 50 µs a slot (bench/README.md, section 11).  Only constants, the
 * search's shared parts `x` and short values are appended: no printf. */
static void put_slot_resource(struct buf *b, const struct slot *s, int64_t now,
                              const struct slot_text *x);

static void put_slot(struct buf *b, const struct slot *s, int64_t now, const struct slot_text *x)
{
    PUT(b, "{\"fullUrl\":");
    buf_append(b, x->url.data, x->url.len);
    buf_append_i64(b, s->id);
    PUT(b, "\",\"resource\":");
    put_slot_resource(b, s, now, x);
    PUT(b, ",\"search\":{\"mode\":\"match\"}}");
}

/* Appends the Slot resource of `s` alone (a read's answer, or the resource
 * of put_slot's entry). */
static void put_slot_resource(struct buf *b, const struct slot *s, int64_t now,
                              const struct slot_text *x)
{
    static const struct {
        unsigned bit;
        const char *code;
    } types[] = {{FHIR_TYPE_PUBLIC, "PUBLIC"},
                 {FHIR_TYPE_PRO, "PRO"},
                 {FHIR_TYPE_SNP, "SNP"},
                 {FHIR_TYPE_CPTS, "CPTS"}};
    const struct territory *t = s->territory;
    char start[TIMEUTIL_RFC3339_SIZE], end[TIMEUTIL_RFC3339_SIZE];
    if (!timeutil_format_rfc3339(t->zone, s->start, start, sizeof(start)) ||
        !timeutil_format_rfc3339(t->zone, s->start + (int64_t)s->duration_min * 60, end,
                                 sizeof(end))) {
        b->failed = true;
        return;
    }
    PUT(b, "{\"resourceType\":\"Slot\",\"id\":\"");
    buf_append_i64(b, s->id);
    PUT(b, "\",\"meta\":{\"profile\":[\"" PROFILE_SLOT "\"],\"security\":[");
    unsigned bits = fhir_slot_types(s, now);
    bool first = true;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (!(bits & types[i].bit))
            continue;
        if (!first)
            PUT(b, ",");
        first = false;
        PUT(b, "{\"system\":\"" SYSTEM_SLOT_TYPE "\",\"code\":\"");
        buf_append(b, types[i].code, strlen(types[i].code));
        PUT(b, "\"}");
    }
    PUT(b, "]},\"serviceType\":[{\"coding\":[{\"system\":\"" SYSTEM_ACT_CODE "\",\"code\":\"");
    if (s->mode == MODE_HOME)
        PUT(b, "HH");
    else if (s->mode == MODE_TELECONSULTATION)
        PUT(b, "VR");
    else
        PUT(b, "AMB");
    PUT(b, "\"}]}");
    buf_append(b, x->service.data, x->service.len);
    PUT(b, "],\"specialty\":[{\"coding\":[{\"system\":\"" SYSTEM_SPECIALTY "\",\"code\":");
    buf_json_string(b, s->practitioner->specialty[0] ? s->practitioner->specialty : "SM54");
    PUT(b, "}]}],\"appointmentType\":{\"coding\":[{\"system\":\"" SYSTEM_APPOINTMENT
           "\",\"code\":\"ROUTINE\"}]},\"schedule\":{\"reference\":\"Schedule/");
    buf_append(b, s->practitioner->rpps, strlen(s->practitioner->rpps));
    PUT(b, "-");
    buf_append_i64(b, s->site->id);
    PUT(b, "\"},\"status\":\"free\",\"start\":\"");
    buf_append(b, start, TIMEUTIL_RFC3339_SIZE - 1);
    PUT(b, "\",\"end\":\"");
    buf_append(b, end, TIMEUTIL_RFC3339_SIZE - 1);
    PUT(b, "\"");
    buf_append(b, x->comment.data, x->comment.len);
    PUT(b, "}");
}

static json_t *schedule_resource(const struct slot *s)
{
    char id[40], pr[32], role[64];
    snprintf(id, sizeof(id), "%s-%lld", s->practitioner->rpps, (long long)s->site->id);
    snprintf(pr, sizeof(pr), "Practitioner/%s", s->practitioner->rpps);
    snprintf(role, sizeof(role), "PractitionerRole/%s", id);
    return json_pack("{s:s, s:s, s:o, s:[{s:s}, {s:s}]}", "resourceType", "Schedule", "id", id,
                     "meta", meta(PROFILE_SCHEDULE), "actor", "reference", pr, "reference", role);
}

static json_t *practitioner_resource(const struct practitioner *p)
{
    char value[16];
    snprintf(value, sizeof(value), "8%s", p->rpps);
    return json_pack("{s:s, s:s, s:o, s:[{s:o, s:s, s:s}], s:[{s:s, s:[s]}]}", "resourceType",
                     "Practitioner", "id", p->rpps, "meta", meta(PROFILE_PRACTITIONER),
                     "identifier", "type", coding(SYSTEM_ID_TYPE, "IDNPS"), "system", OID_PERSON,
                     "value", value, "name", "family", p->family_name, "given", p->given_name);
}

static json_t *location_resource(const struct store *st, const struct site *site)
{
    const struct commune *c = store_commune(st, site->commune);
    json_t *address = json_pack("{s:[s], s:s}", "line", site->address, "city", c ? c->name : "");
    if (c && c->postal_code[0])
        json_object_set_new(address, "postalCode", json_string(c->postal_code));
    return json_pack("{s:s, s:s, s:o, s:s, s:o}", "resourceType", "Location", "id", "location",
                     "meta", meta(PROFILE_LOCATION), "name", site->name, "address", address);
}

static json_t *role_resource(const struct store *st, const struct slot *s)
{
    char id[40], pr[32];
    snprintf(id, sizeof(id), "%s-%lld", s->practitioner->rpps, (long long)s->site->id);
    snprintf(pr, sizeof(pr), "Practitioner/%s", s->practitioner->rpps);
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:[o], s:{s:s}, s:[{s:s}]}", "resourceType", "PractitionerRole",
                  "id", id, "meta", meta(PROFILE_ROLE), "contained", location_resource(st, s->site),
                  "practitioner", "reference", pr, "location", "reference", "#location");
    if (j && s->site->phone && s->site->phone[0])
        json_object_set_new(j, "telecom",
                            json_pack("[{s:s, s:s}]", "system", "phone", "value", s->site->phone));
    return j;
}

static json_t *service_resource(const struct territory *t)
{
    char org[96];
    snprintf(org, sizeof(org), "Organization/%s", t->id);
    return json_pack("{s:s, s:s, s:o, s:{s:s}, s:s}", "resourceType", "HealthcareService", "id",
                     t->id, "meta", meta(PROFILE_SERVICE), "providedBy", "reference", org, "name",
                     t->name);
}

static json_t *organisation_resource(const struct territory *t)
{
    char value[16];
    snprintf(value, sizeof(value), "1%s", t->finess);
    return json_pack("{s:s, s:s, s:o, s:[{s:o, s:s, s:s}], s:s}", "resourceType", "Organization",
                     "id", t->id, "meta", meta(PROFILE_ORGANISATION), "identifier", "type",
                     coding(SYSTEM_ID_TYPE, "IDNST"), "system", OID_STRUCTURE, "value", value,
                     "name", t->name);
}

/* Appends an included entry for `resource` (stolen) of `type` and `id`
 * unless the bundle has it already (`seen` holds the fullUrls written). */
static void put_include(struct buf *b, json_t *seen, const char *base, const char *type,
                        const char *id, json_t *(*make)(const struct store *, const struct slot *),
                        const struct store *st, const struct slot *s)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/fhir/%s/%s", base, type, id);
    if (json_object_get(seen, url))
        return;
    json_t *resource = make(st, s);
    char *text = resource ? json_dumps(resource, JSON_COMPACT) : NULL;
    json_decref(resource);
    if (!text || json_object_set_new(seen, url, json_true()) != 0) {
        free(text);
        b->failed = true;
        return;
    }
    PUT(b, ",{\"fullUrl\":");
    buf_json_string(b, url);
    PUT(b, ",\"resource\":");
    buf_append(b, text, strlen(text));
    PUT(b, ",\"search\":{\"mode\":\"include\"}}");
    free(text);
}

static json_t *make_schedule(const struct store *st, const struct slot *s)
{
    (void)st;
    return schedule_resource(s);
}

static json_t *make_practitioner(const struct store *st, const struct slot *s)
{
    (void)st;
    return practitioner_resource(s->practitioner);
}

static json_t *make_service(const struct store *st, const struct slot *s)
{
    (void)st;
    return service_resource(s->territory);
}

static json_t *make_organisation(const struct store *st, const struct slot *s)
{
    (void)st;
    return organisation_resource(s->territory);
}

/* Whether slot `s` answers the search at `now`: exposed, and of one of the
 * `n` practitioners asked (compared by address: the store has one record
 * per RPPS), or of any when `all`. */
static bool slot_matches(const struct slot *s, struct practitioner *const *asked, size_t n,
                         bool all, int64_t now)
{
    if (all)
        return slot_exposed(s, now);
    for (size_t k = 0; k < n; k++)
        if (s->practitioner == asked[k])
            return slot_exposed(s, now);
    return false;
}

/* Whether slot `s` comes after the cursor of `q` (slots are ordered by
 * start, then id, in memory as in the pages). */
static bool after_cursor(const struct slot *s, const struct fhir_search *q)
{
    return !q->has_cursor || s->start > q->after_start ||
           (s->start == q->after_start && s->id > q->after_id);
}

/* Writes into `out` the query string `query` without its _cursor
 * parameters, followed by "_cursor=<start>.<id>" of slot `s`. */
static void next_query(const char *query, const struct slot *s, struct buf *out)
{
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (!(len >= 8 && strncmp(p, "_cursor=", 8) == 0)) {
            buf_append(out, p, len);
            PUT(out, "&");
        }
        p = amp ? amp + 1 : NULL;
    }
    buf_printf(out, "_cursor=%lld.%lld", (long long)s->start, (long long)s->id);
}

char *fhir_search_bundle(const struct store *st, const struct territory *t,
                         const struct fhir_search *q, int64_t now, const char *base,
                         const char *link_base, const char *query, size_t *len)
{
    struct buf b = {0}, inc = {0};
    json_t *seen = json_object();
    char updated[TIMEUTIL_RFC3339_SIZE], self[sizeof(((struct http_exchange *)0)->query) + 512];
    if (!seen || !timeutil_format_rfc3339(t->zone, now, updated, sizeof(updated)))
        b.failed = true;
    snprintf(self, sizeof(self), "%s/fhir/Slot%s%s", base, query[0] ? "?" : "", query);
    struct practitioner *asked[FHIR_MAX_PRACTITIONERS];
    size_t nasked = 0;
    for (size_t k = 0; k < q->nrpps; k++) {
        struct practitioner *p = store_practitioner(st, q->rpps[k]);
        if (p)
            asked[nasked++] = p;
    }
    bool all = q->nidentifiers == 0;
    size_t total = 0, page = 0;
    const struct slot *last = NULL; /* the page's last Slot, when more follow */
    size_t first = model_slots_after(t->slots, t->nslots, q->ge - 1);
    for (size_t i = first; i < t->nslots && t->slots[i]->start <= q->le; i++) {
        const struct slot *s = t->slots[i];
        if (!slot_matches(s, asked, nasked, all, now))
            continue;
        total++;
        if (!after_cursor(s, q) || (q->count && page == q->count))
            continue;
        page++;
        last = s;
    }
    /* A next page when the page is full and a match follows its last Slot. */
    bool more = false;
    if (q->count && page == q->count) {
        for (size_t i = first; i < t->nslots && t->slots[i]->start <= q->le && !more; i++) {
            const struct slot *s = t->slots[i];
            more = slot_matches(s, asked, nasked, all, now) &&
                   (s->start > last->start || (s->start == last->start && s->id > last->id));
        }
    }
    /* About 1.3 kB a Slot: one allocation instead of a dozen copies. */
    (void)buf_reserve(&b, 4096 + page * 1400);
    buf_printf(&b,
               "{\"resourceType\":\"Bundle\",\"meta\":{\"profile\":[\"" PROFILE_BUNDLE
               "\"],\"lastUpdated\":\"%s\"},\"type\":\"searchset\",\"total\":%zu,"
               "\"link\":[{\"relation\":\"self\",\"url\":",
               updated, total);
    buf_json_string(&b, self);
    if (more) {
        struct buf next = {0};
        buf_printf(&next, "%s/fhir/Slot?", base);
        next_query(query, last, &next);
        PUT(&b, "},{\"relation\":\"next\",\"url\":");
        if (next.failed || !buf_reserve(&next, 1))
            b.failed = true;
        else {
            next.data[next.len] = '\0';
            buf_json_string(&b, next.data);
        }
        buf_free(&next);
    }
    PUT(&b, "}],\"entry\":[");
    struct slot_text x;
    slot_text_init(&x, t, base, link_base);
    if (slot_text_failed(&x))
        b.failed = true;
    /* The (practitioner, site) pairs whose included resources are written:
     * a few dozen at most for 25 practitioners, each met by many slots. */
    struct pair {
        const struct practitioner *practitioner;
        const struct site *site;
    } *pairs = NULL;
    size_t npairs = 0, pairs_cap = 0;
    bool any = false;
    size_t written = 0;
    for (size_t i = first;
         i < t->nslots && t->slots[i]->start <= q->le && !b.failed && written < page; i++) {
        const struct slot *s = t->slots[i];
        if (!slot_matches(s, asked, nasked, all, now) || !after_cursor(s, q))
            continue;
        written++;
        if (any)
            PUT(&b, ",");
        any = true;
        put_slot(&b, s, now, &x);
        size_t k = 0;
        while (k < npairs && (pairs[k].practitioner != s->practitioner || pairs[k].site != s->site))
            k++;
        if (k < npairs)
            continue;
        if (npairs == pairs_cap) {
            size_t cap = pairs_cap ? 2 * pairs_cap : 16;
            struct pair *grown = realloc(pairs, cap * sizeof(*pairs));
            if (!grown) {
                b.failed = true;
                break;
            }
            pairs = grown;
            pairs_cap = cap;
        }
        pairs[npairs++] = (struct pair){s->practitioner, s->site};
        char pair[40];
        snprintf(pair, sizeof(pair), "%s-%lld", s->practitioner->rpps, (long long)s->site->id);
        if (q->include_schedule)
            put_include(&inc, seen, base, "Schedule", pair, make_schedule, st, s);
        if (q->include_schedule && q->include_actors) {
            put_include(&inc, seen, base, "Practitioner", s->practitioner->rpps, make_practitioner,
                        st, s);
            put_include(&inc, seen, base, "PractitionerRole", pair, role_resource, st, s);
        }
        if (t->finess[0] && q->include_service) {
            put_include(&inc, seen, base, "HealthcareService", t->id, make_service, st, s);
            if (q->include_organisation)
                put_include(&inc, seen, base, "Organization", t->id, make_organisation, st, s);
        }
    }
    free(pairs);
    slot_text_free(&x);
    json_decref(seen);
    /* The includes follow the matches; each was written with a leading
     * comma, which the first drops when there is no Slot before it. */
    if (inc.len > 0)
        buf_append(&b, inc.data + (page ? 0 : 1), inc.len - (page ? 0 : 1));
    PUT(&b, "]}");
    bool failed = b.failed || inc.failed;
    buf_free(&inc);
    if (failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}

/* --- Reads ------------------------------------------------------------------------------ */

/* A live slot of territory `t` of practitioner `rpps` at site `site`: the
 * Schedule and PractitionerRole of that pair are built from it. */
static const struct slot *pair_slot(const struct territory *t, const char *rpps, int64_t site)
{
    for (size_t i = 0; i < t->nslots; i++) {
        const struct slot *s = t->slots[i];
        if (s->practitioner && s->site->id == site && strcmp(s->practitioner->rpps, rpps) == 0)
            return s;
    }
    return NULL;
}

/* Reads "<rpps>-<site id>" into `rpps` and *site. */
static bool parse_pair(const char *id, char rpps[12], int64_t *site)
{
    long long n;
    int used = 0;
    if (strlen(id) < 13 || id[11] != '-' || strspn(id, "0123456789") != 11 ||
        sscanf(id + 12, "%lld%n", &n, &used) != 1 || (size_t)used != strlen(id + 12) || n < 1)
        return false;
    memcpy(rpps, id, 11);
    rpps[11] = '\0';
    *site = n;
    return true;
}

json_t *fhir_read(const struct store *st, const struct territory *t, const char *type,
                  const char *id, int64_t now, const char *base, const char *link_base)
{
    char rpps[12];
    int64_t site;
    if (strcmp(type, "Slot") == 0) {
        long long n;
        int used = 0;
        if (sscanf(id, "%lld%n", &n, &used) != 1 || (size_t)used != strlen(id) || n < 1)
            return NULL;
        const struct slot *s = store_slot(st, n);
        if (!s || s->territory != t || !slot_exposed(s, now))
            return NULL;
        struct slot_text x;
        slot_text_init(&x, t, base, link_base);
        struct buf b = {0};
        put_slot_resource(&b, s, now, &x);
        bool failed = slot_text_failed(&x) || b.failed || !buf_reserve(&b, 1);
        slot_text_free(&x);
        json_t *j = NULL;
        if (!failed) {
            b.data[b.len] = '\0';
            j = json_loads(b.data, 0, NULL);
        }
        buf_free(&b);
        return j;
    }
    if (strcmp(type, "Schedule") == 0 || strcmp(type, "PractitionerRole") == 0) {
        const struct slot *s = parse_pair(id, rpps, &site) ? pair_slot(t, rpps, site) : NULL;
        if (!s)
            return NULL;
        return type[0] == 'S' ? schedule_resource(s) : role_resource(st, s);
    }
    if (strcmp(type, "Practitioner") == 0) {
        for (size_t i = 0; i < t->nslots; i++)
            if (t->slots[i]->practitioner && strcmp(t->slots[i]->practitioner->rpps, id) == 0)
                return practitioner_resource(t->slots[i]->practitioner);
        return NULL;
    }
    if (!t->finess[0] || strcmp(id, t->id) != 0)
        return NULL;
    if (strcmp(type, "HealthcareService") == 0)
        return service_resource(t);
    if (strcmp(type, "Organization") == 0)
        return organisation_resource(t);
    return NULL;
}

/* --- CapabilityStatement ---------------------------------------------------------------- */

json_t *fhir_capability(const char *base, int64_t now)
{
    char date[TIMEUTIL_RFC3339_SIZE];
    const struct timeutil_zone *utc = timeutil_zone_find("UTC");
    if (!utc || !timeutil_format_rfc3339(utc, now, date, sizeof(date)))
        snprintf(date, sizeof(date), "2026-12-05T00:00:00+00:00");
    char url[512];
    snprintf(url, sizeof(url), "%s/fhir", base);
    json_t *search = json_pack(
        "[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]",
        "name", "start", "type", "date", "documentation",
        "Required twice: ge<instant> and le<instant>, instants with an offset.", "name",
        PARAM_PRACTITIONER, "type", "token", "documentation",
        "1 to 25 identifiers " OID_PERSON "|8<RPPS>, comma-separated (the platform's search); "
        "without it, every free slot open to the SAS, in pages.",
        "name", "status", "type", "token", "documentation", "Required: free (the only value).",
        "name", "_count", "type", "number", "documentation",
        "Slots per page, 1 to 1000; by default every one with practitioners, 200 without.", "name",
        "_cursor", "type", "string", "documentation",
        "Written by the next link: the page after the one it follows.");
    json_t *slot =
        json_pack("{s:s, s:[s], s:[{s:s}, {s:s}], s:[s, s, s, s], s:o}", "type", "Slot",
                  "supportedProfile", PROFILE_SLOT, "interaction", "code", "search-type", "code",
                  "read", "searchInclude", "Slot:schedule", "Slot:service-type-reference",
                  "Schedule:actor", "HealthcareService:organization", "searchParam", search);
    json_t *resources = json_array();
    json_array_append_new(resources, slot);
    for (size_t i = 1; i < sizeof(read_types) / sizeof(read_types[0]); i++)
        json_array_append_new(resources, json_pack("{s:s, s:[{s:s}]}", "type", read_types[i],
                                                   "interaction", "code", "read"));
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:[s], s:[{s:s, "
        "s:{s:b, s:s}, s:o}]}",
        "resourceType", "CapabilityStatement", "status", "active", "date", date, "publisher",
        "snpd", "kind", "instance", "fhirVersion", "4.0.1", "description",
        "Free slots of a CPTS territory for the national SAS platform (use case CPTS); tokens "
        "of role platform, confined to their territory.",
        "url", url, "software", "name", "snpd", "implementation", "description",
        "snpd FHIR interface", "url", url, "format", FHIR_MEDIA_TYPE, "rest", "mode", "server",
        "security", "cors", 0, "description",
        "Authorization: Bearer <token of role platform>, or a client certificate whose common "
        "name names a platform account (mutual TLS, when configured); each account sees only "
        "its territory.",
        "resource", resources);
}

/* --- HTTP ---------------------------------------------------------------------------------- */

/* Whether the Accept header allows a FHIR JSON answer: absent, or one of
 * its media ranges (parameters ignored) is a JSON FHIR type, application/json
 * or a wildcard. */
static bool accept_ok(const char *accept)
{
    if (!accept[0])
        return true;
    static const char *const ok[] = {"application/fhir+json", "application/json+fhir",
                                     "application/json", "application/*", "*/*"};
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",;");
        while (n > 0 && p[n - 1] == ' ')
            n--;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
            if (n == strlen(ok[i]) && strncasecmp(p, ok[i], n) == 0)
                return true;
        p += strcspn(p, ",");
    }
    return false;
}

void fhir_base_url(const struct http_exchange *ex, char *out, size_t size)
{
    const char *pub = ex->server->cfg->public_url;
    bool host_ok = ex->host[0] && strspn(ex->host, "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
                                      strlen(ex->host);
    if (pub[0])
        snprintf(out, size, "%s", pub);
    else
        snprintf(out, size, "%s://%s", ex->server->cfg->tls_cert[0] ? "https" : "http",
                 host_ok ? ex->host : "localhost");
}

struct fhir_call {
    struct api *api;
    struct http_exchange *ex;
    char type[24]; /* a read: the resource type, else "" */
    char id[64];   /* and its id */
};

/* Whether `path` is "/fhir/<Type>/<id>" of a type read_types lists; the
 * type and the id are written into `call`. */
static bool read_path(const char *path, struct fhir_call *call)
{
    if (strncmp(path, "/fhir/", 6) != 0)
        return false;
    const char *type = path + 6, *slash = strchr(type, '/');
    if (!slash || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - type) >= sizeof(call->type) || strlen(slash + 1) >= sizeof(call->id))
        return false;
    for (size_t i = 0; i < sizeof(read_types) / sizeof(read_types[0]); i++) {
        if (strlen(read_types[i]) == (size_t)(slash - type) &&
            strncmp(read_types[i], type, (size_t)(slash - type)) == 0) {
            snprintf(call->type, sizeof(call->type), "%s", read_types[i]);
            snprintf(call->id, sizeof(call->id), "%s", slash + 1);
            return true;
        }
    }
    return false;
}

static void on_auth(void *arg, const struct caller *caller, const char *organisation_name,
                    int64_t expires_at, const struct snp_proto_error *err)
{
    (void)organisation_name;
    (void)expires_at;
    struct fhir_call *call = arg;
    struct http_exchange *ex = call->ex;
    struct api *a = call->api;
    char type[sizeof(call->type)], id[sizeof(call->id)];
    memcpy(type, call->type, sizeof(type));
    memcpy(id, call->id, sizeof(id));
    free(call);
    if (err->code != SNP_PROTO_OK) {
        int status = snp_proto_error_http_status(err->code);
        const char *code = status == 401 ? "login" : status == 429 ? "throttled" : "transient";
        fhir_respond_outcome(ex, status, code, err->message);
        return;
    }
    if (caller->role != ROLE_PLATFORM) {
        fhir_respond_outcome(ex, 403, "forbidden",
                             "the FHIR slot search is for tokens of role platform only");
        return;
    }
    const struct store *st = &a->dispatch->store;
    const struct territory *t = store_territory(st, caller->territory);
    if (!a->dispatch->ready || !t) {
        fhir_respond_outcome(ex, 503, "transient", "snpd is loading its state; retry");
        return;
    }
    if (type[0]) {
        char base[300], link_base[300] = "";
        fhir_base_url(ex, base, sizeof(base));
        if (ex->server->cfg->public_url[0])
            snprintf(link_base, sizeof(link_base), "%s", ex->server->cfg->public_url);
        json_t *resource = fhir_read(st, t, type, id, timeutil_now(), base, link_base);
        if (!resource) {
            char why[160];
            snprintf(why, sizeof(why), "no %s/%s in this territory now", type, id);
            fhir_respond_outcome(ex, 404, "not-found", why);
            return;
        }
        respond_json(ex, 200, resource);
        return;
    }
    struct fhir_search q;
    const char *code = "invalid";
    char why[256];
    if (fhir_search_parse(ex->query, &q, &code, why, sizeof(why)) != 0) {
        fhir_respond_outcome(ex, 400, code, why);
        return;
    }
    char base[300], link_base[300] = "";
    fhir_base_url(ex, base, sizeof(base));
    if (ex->server->cfg->public_url[0])
        snprintf(link_base, sizeof(link_base), "%s", ex->server->cfg->public_url);
    size_t len = 0;
    char *text = fhir_search_bundle(st, t, &q, timeutil_now(), base, link_base, ex->query, &len);
    if (!text) {
        fhir_respond_outcome(ex, 500, "exception", "out of memory");
        return;
    }
    server_http_respond_owned(ex, 200, FHIR_MEDIA_TYPE, text, len);
}

void fhir_on_http(void *ctx, struct http_exchange *ex)
{
    struct api *a = ctx;
    if (fhir_smart_path(ex->path)) {
        fhir_smart_on_http(a->dispatch, ex);
        return;
    }
    struct fhir_call *call = calloc(1, sizeof(*call));
    if (!call) {
        fhir_respond_outcome(ex, 500, "exception", "out of memory");
        return;
    }
    bool slot = strcmp(ex->path, "/fhir/Slot") == 0;
    bool metadata = strcmp(ex->path, "/fhir/metadata") == 0;
    if (!slot && !metadata && !read_path(ex->path, call)) {
        free(call);
        fhir_respond_outcome(ex, 404, "not-supported",
                             "no such FHIR endpoint: GET /fhir/Slot, GET /fhir/<Type>/<id> (Slot, "
                             "Schedule, Practitioner, PractitionerRole, HealthcareService, "
                             "Organization), GET /fhir/metadata and GET /fhir/$bulk-publish are "
                             "served");
        return;
    }
    if (ex->method != HTTP_GET) {
        free(call);
        fhir_respond_outcome(ex, 405, "not-supported", "only GET is supported");
        return;
    }
    if (!accept_ok(ex->accept)) {
        free(call);
        fhir_respond_outcome(
            ex, 406, "not-supported",
            "answers are application/fhir+json (also accepted: application/json+fhir, "
            "application/json, */*)");
        return;
    }
    if (metadata) {
        free(call);
        char base[300];
        fhir_base_url(ex, base, sizeof(base));
        respond_json(ex, 200, fhir_capability(base, timeutil_now()));
        return;
    }
    call->api = a;
    call->ex = ex;
    /* A bearer token, else a client certificate the CA of tls_client_ca
     * vouched for, whose common name names a platform account. */
    if (!ex->bearer[0] && ex->client_cn[0]) {
        uint8_t hash[DIGEST_SHA256_LEN];
        token_client_cert_hash(ex->client_cn, hash);
        auth_check_hash(&a->auth, hash, ex->peer, uv_now(ex->server->loop), on_auth, call);
        return;
    }
    auth_check(&a->auth, ex->bearer, ex->peer, uv_now(ex->server->loop), on_auth, call);
}
