/* The FHIR interface for the national SAS platform (dispatcher/commands/fhir.c,
 * docs/fhir.md), against a real snpd on a real PostgreSQL: the platform's
 * CPTS search as the implementation guide writes it, with the fixture's
 * RPPS numbers and dates around now, answered with a Bundle whose
 * profile-required elements are checked one by one; 0, 1 and 25
 * practitioners; malformed searches refused with an OperationOutcome; a
 * slot not open to the SAS absent; the slot types (TRE-R314) of each audience
 * and of the release rule; tokens of another role or of another territory;
 * and, when deploy/test.sh installed it, the FHIR R4 JSON-schema validation
 * of every resource of the answers (tests/fhir/validate.mjs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "base/timeutil.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"

#define PUBLIC_URL "https://snp.cpts-test.example"
#define FINESS     "350049871"
#define OID_PERSON "urn:oid:1.2.250.1.71.4.2.1"
#define R314       "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
#define NEXTRA     23 /* practitioners added to the fixture's two: 25 in all */

static struct fixture f;
static char platform[48];       /* a platform token of the fixture's territory */
static char other_platform[48]; /* one of test-other */
static char extra_rpps[NEXTRA][12];

/* An RPPS with a valid Luhn check digit, from 10 digits. */
static void luhn_rpps(const char *ten, char out[12])
{
    int sum = 0;
    for (int i = 9, dbl = 1; i >= 0; i--, dbl = !dbl) {
        int d = ten[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    snprintf(out, 12, "%s%d", ten, (10 - sum % 10) % 10);
}

static void setup(void)
{
    setenv("SNPD_PUBLIC_URL", PUBLIC_URL, 1);
    fixture_setup(&f, "{}");
    char sql[1024];
    snprintf(sql, sizeof(sql), "UPDATE territory SET finess = '%s' WHERE id = '%s'", FINESS,
             FIX_TERRITORY);
    PQclear(pgtest_exec(&f.pg, sql));
    for (int i = 0; i < NEXTRA; i++) {
        char ten[11];
        snprintf(ten, sizeof(ten), "10888800%02d", i);
        luhn_rpps(ten, extra_rpps[i]);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO practitioner (rpps, family_name, given_name) VALUES ('%s', "
                 "'Medecin%02d', 'Test');"
                 "INSERT INTO territory_practitioner VALUES ('%s', '%s');"
                 "INSERT INTO practitioner_site VALUES ('%s', %lld);",
                 extra_rpps[i], i, FIX_TERRITORY, extra_rpps[i], extra_rpps[i],
                 (long long)f.site_gp1);
        PQclear(pgtest_exec(&f.pg, sql));
    }
    fix_add_token(&f, "platform", FIX_TERRITORY, NULL, 0, 0, false, platform);
    fix_add_token(&f, "platform", "test-other", NULL, 0, 0, false, other_platform);
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    unsetenv("SNPD_PUBLIC_URL");
}

TestSuite(fhir, .init = setup, .fini = teardown, .timeout = 300);

/* --- helpers ------------------------------------------------------------------------ */

/* An instant `min` minutes from now as the guide writes them, in UTC with
 * milliseconds and an explicit offset: 2024-06-12T16:20:00.000+00:00. */
static void instant(int min, char *out, size_t size)
{
    time_t t = time(NULL) + 60 * min;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%S.000+00:00", &tm);
}

/* The platform's query for `n` RPPS numbers between -1 h and +3 days; the
 * '+' of the offsets is sent as the guide shows it, unencoded. */
static char *cpts_query(const char *const *rpps, size_t n)
{
    char ge[40], le[40];
    instant(-60, ge, sizeof(ge));
    instant(3 * 24 * 60, le, sizeof(le));
    size_t size = 1024 + n * 48;
    char *q = malloc(size);
    int len = snprintf(q, size,
                       "/fhir/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
                       "&_include=Slot:service-type-reference"
                       "&_include:iterate=HealthcareService:organization"
                       "&start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=",
                       ge, le);
    for (size_t i = 0; i < n; i++)
        len += snprintf(q + len, size - (size_t)len, "%s" OID_PERSON "|8%s", i ? "," : "", rpps[i]);
    snprintf(q + len, size - (size_t)len, "&status=free");
    return q;
}

struct answer {
    int status;
    char content_type[128];
    json_t *json;
    char *text;
};

static void fhir_get(const char *path, const char *token, const char *accept, struct answer *a)
{
    char headers[512] = "";
    int n = 0;
    if (token)
        n += snprintf(headers + n, sizeof(headers) - (size_t)n, "Authorization: Bearer %s\r\n",
                      token);
    if (accept)
        snprintf(headers + n, sizeof(headers) - (size_t)n, "Accept: %s\r\n", accept);
    struct http_response r;
    cr_assert_eq(http_request(f.snpd.port, "GET", path, headers, NULL, &r), 0, "no answer");
    a->status = r.status;
    a->content_type[0] = '\0';
    const char *ct = strcasestr(r.headers, "\ncontent-type:");
    if (ct) {
        ct += 14;
        while (*ct == ' ')
            ct++;
        size_t len = strcspn(ct, "\r\n");
        snprintf(a->content_type, sizeof(a->content_type), "%.*s", (int)len, ct);
    }
    a->json = json_loads(r.body, JSON_REJECT_DUPLICATES, NULL);
    a->text = strdup(r.body);
    http_response_free(&r);
}

static void answer_free(struct answer *a)
{
    json_decref(a->json);
    free(a->text);
}

static void expect_str(json_t *j, const char *path, const char *want, const char *what)
{
    const char *got = fix_json_str(j, path);
    cr_expect(got && strcmp(got, want) == 0, "%s: %s is \"%s\", expected \"%s\"", what, path,
              got ? got : "(absent)", want);
}

/* The entry whose resource `reference` ("Type/id") names, or NULL. */
static json_t *entry_of(json_t *bundle, const char *reference)
{
    char url[256];
    snprintf(url, sizeof(url), PUBLIC_URL "/fhir/%s", reference);
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(bundle, "entry"), i, e) {
        if (fix_json_str(e, "fullUrl") && strcmp(fix_json_str(e, "fullUrl"), url) == 0)
            return e;
    }
    return NULL;
}

/* The resource `reference` names in the bundle, or NULL. */
static json_t *resolve(json_t *bundle, const char *reference)
{
    return json_object_get(entry_of(bundle, reference), "resource");
}

/* Checks that the reference at `path` of `r` names a resource of `type`
 * that the bundle holds. */
static void expect_ref(json_t *b, json_t *r, const char *path, const char *type)
{
    const char *ref = fix_json_str(r, path);
    json_t *target = ref ? resolve(b, ref) : NULL;
    cr_expect(target != NULL, "%s: %s not in the bundle", path, ref ? ref : "(absent)");
    expect_str(target, "resourceType", type, path);
}

/* The security codes of a Slot as a "PUBLIC,PRO,SNP,CPTS" subset string. */
static void security_codes(json_t *slot, char *out, size_t size)
{
    out[0] = '\0';
    size_t i, n = 0;
    json_t *s;
    json_array_foreach (fix_json_at(slot, "meta.security"), i, s) {
        cr_expect_str_eq(fix_json_str(s, "system"), R314);
        n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "," : "", fix_json_str(s, "code"));
    }
}

/* The entry of slot `id`, or NULL. */
static json_t *slot_entry(json_t *bundle, int64_t id)
{
    char ref[64];
    snprintf(ref, sizeof(ref), "Slot/%lld", (long long)id);
    return entry_of(bundle, ref);
}

/* Checks, element by element, what the guide's profiles require of a CPTS
 * answer, and that every reference resolves inside the Bundle.  Returns the
 * number of Slots. */
static size_t check_bundle(json_t *b)
{
    expect_str(b, "resourceType", "Bundle", "bundle");
    expect_str(b, "meta.profile.0",
               "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
               "sas-cpts-bundle-aggregator",
               "bundle");
    expect_str(b, "type", "searchset", "bundle");
    expect_str(b, "link.0.relation", "self", "bundle");
    cr_expect(fix_json_str(b, "link.0.url") &&
                  strncmp(fix_json_str(b, "link.0.url"), PUBLIC_URL "/fhir/Slot?", 31) == 0,
              "self link %s", fix_json_str(b, "link.0.url"));
    cr_expect_eq(json_array_size(json_object_get(b, "link")), 1);
    size_t slots = 0, i;
    json_t *e;
    json_array_foreach (json_object_get(b, "entry"), i, e) {
        json_t *r = json_object_get(e, "resource");
        const char *type = fix_json_str(r, "resourceType"), *id = fix_json_str(r, "id");
        cr_assert(type && id, "entry %zu has no resourceType or id", i);
        char url[256];
        snprintf(url, sizeof(url), PUBLIC_URL "/fhir/%s/%s", type, id);
        expect_str(e, "fullUrl", url, type);
        expect_str(e, "search.mode", strcmp(type, "Slot") == 0 ? "match" : "include", type);
        char ref[128];
        if (strcmp(type, "Slot") == 0) {
            slots++;
            expect_str(r, "meta.profile.0",
                       "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                       "sas-cpts-slot-aggregator",
                       "Slot");
            cr_expect_geq(json_array_size(fix_json_at(r, "meta.security")), 1);
            expect_str(r, "serviceType.0.coding.0.system",
                       "http://terminology.hl7.org/CodeSystem/v3-ActCode", "Slot");
            const char *mode = fix_json_str(r, "serviceType.0.coding.0.code");
            cr_expect(mode && (!strcmp(mode, "AMB") || !strcmp(mode, "HH") || !strcmp(mode, "VR")),
                      "mode %s", mode);
            expect_str(r, "serviceType.1.coding.0.system",
                       "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
                       "TRE-R66-CategorieEtablissement",
                       "Slot");
            expect_str(r, "serviceType.1.coding.0.code", "604", "Slot");
            expect_str(r, "serviceType.1.extension.0.url",
                       "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType",
                       "Slot");
            expect_str(r, "serviceType.1.extension.0.valueReference.reference",
                       "HealthcareService/" FIX_TERRITORY, "Slot");
            expect_str(r, "specialty.0.coding.0.system",
                       "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/"
                       "TRE-R38-SpecialiteOrdinale",
                       "Slot");
            expect_str(r, "specialty.0.coding.0.code", "SM54", "Slot");
            expect_str(r, "appointmentType.coding.0.system",
                       "http://terminology.hl7.org/CodeSystem/v2-0276", "Slot");
            expect_str(r, "appointmentType.coding.0.code", "ROUTINE", "Slot");
            expect_str(r, "status", "free", "Slot");
            expect_str(r, "comment", PUBLIC_URL "/sas.html", "Slot");
            int64_t start, end;
            cr_expect(fix_json_str(r, "start") &&
                          timeutil_parse_rfc3339(fix_json_str(r, "start"), &start) &&
                          fix_json_str(r, "end") &&
                          timeutil_parse_rfc3339(fix_json_str(r, "end"), &end) &&
                          end - start == 20 * 60,
                      "start %s end %s", fix_json_str(r, "start"), fix_json_str(r, "end"));
            expect_ref(b, r, "schedule.reference", "Schedule");
            cr_expect_eq(slots, i + 1, "Slot entry %zu after an included resource", i);
        } else if (strcmp(type, "Schedule") == 0) {
            expect_str(r, "meta.profile.0",
                       "http://sas.fr/fhir/StructureDefinition/FrScheduleAgregateur", "Schedule");
            cr_expect_eq(json_array_size(fix_json_at(r, "actor")), 2);
            expect_ref(b, r, "actor.0.reference", "Practitioner");
            expect_ref(b, r, "actor.1.reference", "PractitionerRole");
        } else if (strcmp(type, "Practitioner") == 0) {
            expect_str(r, "meta.profile.0",
                       "http://sas.fr/fhir/StructureDefinition/FrPractitionerAgregateur",
                       "Practitioner");
            expect_str(r, "identifier.0.system", OID_PERSON, "Practitioner");
            expect_str(r, "identifier.0.type.coding.0.system",
                       "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "Practitioner");
            expect_str(r, "identifier.0.type.coding.0.code", "IDNPS", "Practitioner");
            snprintf(ref, sizeof(ref), "8%s", id);
            expect_str(r, "identifier.0.value", ref, "Practitioner");
            cr_expect_eq(strlen(ref), 12);
            cr_expect(fix_json_str(r, "name.0.family") && fix_json_str(r, "name.0.given.0"),
                      "Practitioner name");
        } else if (strcmp(type, "PractitionerRole") == 0) {
            expect_str(
                r, "meta.profile.0",
                "http://sas.fr/fhir/StructureDefinition/FrPractitionerRoleExerciceAgregateur",
                "PractitionerRole");
            json_t *loc = fix_json_at(r, "contained.0");
            expect_str(loc, "resourceType", "Location", "PractitionerRole.contained");
            expect_str(loc, "meta.profile.0",
                       "http://sas.fr/fhir/StructureDefinition/FrLocationAgregateur", "Location");
            snprintf(ref, sizeof(ref), "#%s",
                     fix_json_str(loc, "id") ? fix_json_str(loc, "id") : "?");
            expect_str(r, "location.0.reference", ref, "PractitionerRole");
            cr_expect_eq(json_array_size(fix_json_at(loc, "address.line")), 1);
            cr_expect(fix_json_str(loc, "address.line.0") && fix_json_str(loc, "address.line.0")[0],
                      "line");
            cr_expect(fix_json_str(loc, "address.city") && fix_json_str(loc, "address.city")[0],
                      "city");
            const char *pc = fix_json_str(loc, "address.postalCode");
            cr_expect(pc && strlen(pc) == 5, "postalCode %s", pc);
            expect_ref(b, r, "practitioner.reference", "Practitioner");
        } else if (strcmp(type, "HealthcareService") == 0) {
            expect_str(r, "meta.profile.0",
                       "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                       "sas-cpts-healthcareservice-aggregator",
                       "HealthcareService");
            expect_ref(b, r, "providedBy.reference", "Organization");
        } else if (strcmp(type, "Organization") == 0) {
            expect_str(r, "meta.profile.0",
                       "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                       "sas-cpts-organization-aggregator",
                       "Organization");
            cr_expect_eq(json_array_size(fix_json_at(r, "identifier")), 1);
            expect_str(r, "identifier.0.system", "urn:oid:1.2.250.1.71.4.2.2", "Organization");
            expect_str(r, "identifier.0.type.coding.0.code", "IDNST", "Organization");
            expect_str(r, "identifier.0.value", "1" FINESS, "Organization");
        } else {
            cr_expect_fail("unexpected resource %s", type);
        }
    }
    cr_expect_eq(json_integer_value(json_object_get(b, "total")), (json_int_t)slots);
    if (slots > 0)
        cr_expect_gt(json_array_size(fix_json_at(b, "entry")), slots, "no included resources");
    return slots;
}

/* --- tests ---------------------------------------------------------------------------- */

Test(fhir, the_guides_query_answers_a_complete_cpts_bundle)
{
    int64_t sas_only = fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"sas\"]", 0);
    int64_t pub = fix_publish_one(&f, FIX_GP2, f.site_gp2, 120, "home", "[\"public\"]", 0);
    int64_t tele =
        fix_publish_one(&f, FIX_GP2, f.site_gp2, 150, "teleconsultation", "[\"sas\", \"desk\"]", 0);
    int64_t pros =
        fix_publish_one(&f, FIX_GP1, f.site_gp1, 180, "office", "[\"sas\", \"pharmacy\"]", 0);
    /* Open to pharmacies only, but released to all 120 minutes before a
     * start 60 minutes away: the release rule has applied. */
    int64_t released =
        fix_publish_one(&f, FIX_GP2, f.site_gp2, 60, "office", "[\"pharmacy\"]", 120);
    /* Open to the SAS and pharmacies, with a release rule that applies only
     * 60 minutes before a start 240 minutes away: not open to everyone yet. */
    int64_t not_yet =
        fix_publish_one(&f, FIX_GP1, f.site_gp1, 240, "office", "[\"sas\", \"pharmacy\"]", 60);
    /* Not open to the SAS, and no release rule: never shown. */
    int64_t hidden =
        fix_publish_one(&f, FIX_GP1, f.site_gp1, 200, "office", "[\"pharmacy\", \"desk\"]", 0);
    /* Open to the SAS but after the le bound (4 days ahead). */
    int64_t late = fix_publish_one(&f, FIX_GP1, f.site_gp1, 4 * 24 * 60, "office", "[\"sas\"]", 0);

    const char *rpps[] = {FIX_GP1, FIX_GP2};
    char *q = cpts_query(rpps, 2);
    struct answer a;
    fhir_get(q, platform, "application/json+fhir", &a);
    free(q);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_expect_str_eq(a.content_type, "application/fhir+json");
    cr_assert(a.json, "not JSON");
    cr_expect_eq(check_bundle(a.json), 6);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 6);

    struct {
        int64_t id;
        const char *codes, *mode;
    } want[] = {
        {sas_only, "SNP", "AMB"},
        {pub, "PUBLIC,PRO,SNP,CPTS", "HH"},
        {tele, "SNP,CPTS", "VR"},
        {pros, "PRO,SNP", "AMB"},
        {released, "PUBLIC,PRO,SNP,CPTS", "AMB"},
        {not_yet, "PRO,SNP", "AMB"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *e = slot_entry(a.json, want[i].id);
        cr_assert(e, "slot %lld missing", (long long)want[i].id);
        char codes[64];
        security_codes(json_object_get(e, "resource"), codes, sizeof(codes));
        cr_expect_str_eq(codes, want[i].codes, "slot %lld", (long long)want[i].id);
        expect_str(e, "resource.serviceType.0.coding.0.code", want[i].mode, "mode");
    }
    cr_expect_null(slot_entry(a.json, hidden), "a slot not open to the SAS is exposed");
    cr_expect_null(slot_entry(a.json, late), "a slot after le is exposed");
    /* One Practitioner, Schedule and PractitionerRole per practitioner and
     * site, one HealthcareService and Organization. */
    size_t counts[6] = {0}, i;
    static const char *const types[] = {
        "Slot",        "Schedule", "Practitioner", "PractitionerRole", "HealthcareService",
        "Organization"};
    json_t *e;
    json_array_foreach (json_object_get(a.json, "entry"), i, e) {
        for (size_t k = 0; k < 6; k++)
            if (strcmp(fix_json_str(e, "resource.resourceType"), types[k]) == 0)
                counts[k]++;
    }
    cr_expect_eq(counts[0], 6);
    cr_expect_eq(counts[1], 2);
    cr_expect_eq(counts[2], 2);
    cr_expect_eq(counts[3], 2);
    cr_expect_eq(counts[4], 1);
    cr_expect_eq(counts[5], 1);
    answer_free(&a);
}

Test(fhir, zero_one_and_twenty_five_practitioners)
{
    fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"sas\"]", 0);
    fix_publish_one(&f, FIX_GP1, f.site_gp1, 120, "office", "[\"sas\"]", 0);
    fix_publish_one(&f, FIX_GP2, f.site_gp2, 90, "office", "[\"sas\"]", 0);
    for (int i = 0; i < NEXTRA; i++)
        fix_publish_one(&f, extra_rpps[i], f.site_gp1, 60 + 5 * i, "office", "[\"sas\"]", 0);

    /* One practitioner: only their slots. */
    const char *one[] = {FIX_GP1};
    char *q = cpts_query(one, 1);
    struct answer a;
    fhir_get(q, platform, "application/fhir+json", &a);
    free(q);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(check_bundle(a.json), 2);
    cr_expect_null(strstr(a.text, FIX_GP2), "another practitioner's data in the answer");
    answer_free(&a);

    /* Twenty-five: every practitioner of the territory, 25 + 2 slots. */
    const char *all[25];
    all[0] = FIX_GP1;
    all[1] = FIX_GP2;
    for (int i = 0; i < NEXTRA; i++)
        all[2 + i] = extra_rpps[i];
    q = cpts_query(all, 25);
    fhir_get(q, platform, "*/*", &a);
    free(q);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(check_bundle(a.json), 26);
    answer_free(&a);

    /* Zero matches (a practitioner unknown here, an ADELI number): an empty
     * searchset, total 0, not a failure. */
    const char *none[] = {"10999900037"};
    q = cpts_query(none, 1);
    fhir_get(q, platform, NULL, &a);
    free(q);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(check_bundle(a.json), 0);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 0);
    cr_expect_eq(json_array_size(json_object_get(a.json, "entry")), 0);
    answer_free(&a);
}

Test(fhir, bad_searches_are_refused_with_an_operation_outcome)
{
    char ge[40], le[40];
    instant(-60, ge, sizeof(ge));
    instant(3 * 24 * 60, le, sizeof(le));
    char ids[26 * 48] = "";
    for (int i = 0; i < 26; i++)
        snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s" OID_PERSON "|8%s", i ? "," : "",
                 i < NEXTRA ? extra_rpps[i] : FIX_GP1);
    char id1[64];
    snprintf(id1, sizeof(id1), OID_PERSON "|8%s", FIX_GP1);
    struct {
        const char *what;
        char query[2048];
        int status;
        const char *code;
    } bad[20];
    size_t n = 0;
#define BAD(w, st, c, ...)                                                                         \
    do {                                                                                           \
        bad[n].what = w;                                                                           \
        bad[n].status = st;                                                                        \
        bad[n].code = c;                                                                           \
        snprintf(bad[n].query, sizeof(bad[n].query), __VA_ARGS__);                                 \
        n++;                                                                                       \
    } while (0)
    BAD("no start", 400, "invalid", "schedule.actor:Practitioner.identifier=%s&status=free", id1);
    BAD("one start only", 400, "invalid",
        "start=ge%s&schedule.actor:Practitioner.identifier=%s&status=free", ge, id1);
    BAD("start ge twice", 400, "invalid",
        "start=ge%s&start=ge%s&schedule.actor:Practitioner.identifier=%s&status=free", ge, le, id1);
    BAD("a bad date", 400, "invalid",
        "start=ge2024-02-30T10:00:00.000+01:00&start=le%s"
        "&schedule.actor:Practitioner.identifier=%s&status=free",
        le, id1);
    BAD("no prefix", 400, "invalid",
        "start=%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=free", ge, le, id1);
    BAD("le before ge", 400, "invalid",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=free", le, ge, id1);
    BAD("_count 0", 400, "invalid", "start=ge%s&start=le%s&status=free&_count=0", ge, le);
    BAD("_count over 1000", 400, "invalid", "start=ge%s&start=le%s&status=free&_count=1001", ge,
        le);
    BAD("a cursor not written by a next link", 400, "invalid",
        "start=ge%s&start=le%s&status=free&_cursor=abc", ge, le);
    BAD("26 practitioners", 400, "too-costly",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=free", ge, le, ids);
    BAD("identifier given twice", 400, "invalid",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s"
        "&schedule.actor:Practitioner.identifier=%s&status=free",
        ge, le, id1, id1);
    BAD("wrong identifier system", 400, "invalid",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=urn:oid:1.2.3|8%s"
        "&status=free",
        ge, le, FIX_GP1);
    BAD("RPPS without its prefix", 400, "invalid",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=" OID_PERSON
        "|%s&status=free",
        ge, le, FIX_GP1);
    BAD("status busy", 400, "not-supported",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=busy", ge, le, id1);
    BAD("no status", 400, "invalid",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s", ge, le, id1);
    BAD("unsupported parameter", 400, "not-supported",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=free&_sort=start",
        ge, le, id1);
    BAD("unsupported include", 400, "not-supported",
        "start=ge%s&start=le%s&schedule.actor:Practitioner.identifier=%s&status=free"
        "&_include=Slot:*",
        ge, le, id1);
#undef BAD
    for (size_t i = 0; i < n; i++) {
        char path[2200];
        snprintf(path, sizeof(path), "/fhir/Slot?%s", bad[i].query);
        struct answer a;
        fhir_get(path, platform, "application/fhir+json", &a);
        cr_expect_eq(a.status, bad[i].status, "%s: status %d %s", bad[i].what, a.status, a.text);
        cr_expect_str_eq(a.content_type, "application/fhir+json", "%s", bad[i].what);
        expect_str(a.json, "resourceType", "OperationOutcome", bad[i].what);
        expect_str(a.json, "issue.0.severity", "error", bad[i].what);
        expect_str(a.json, "issue.0.code", bad[i].code, bad[i].what);
        cr_expect(fix_json_str(a.json, "issue.0.diagnostics") != NULL, "%s: no diagnostics",
                  bad[i].what);
        answer_free(&a);
    }

    /* An Accept the service cannot honour, another method, another path. */
    const char *rp[] = {FIX_GP1};
    char *q = cpts_query(rp, 1);
    struct answer a;
    fhir_get(q, platform, "application/xml", &a);
    cr_expect_eq(a.status, 406, "%s", a.text);
    expect_str(a.json, "resourceType", "OperationOutcome", "406");
    answer_free(&a);
    fhir_get(q, platform, "application/fhir+json; fhirVersion=4.0", &a);
    cr_expect_eq(a.status, 200, "%s", a.text);
    answer_free(&a);
    free(q);
    fhir_get("/fhir/Appointment", platform, NULL, &a);
    cr_expect_eq(a.status, 404);
    expect_str(a.json, "resourceType", "OperationOutcome", "404");
    answer_free(&a);
    struct http_response r;
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", platform);
    cr_assert_eq(http_request(f.snpd.port, "POST", "/fhir/Slot", auth, "{}", &r), 0);
    cr_expect_eq(r.status, 405);
    cr_expect(strstr(r.body, "OperationOutcome") != NULL, "%s", r.body);
    http_response_free(&r);
}

Test(fhir, only_platform_tokens_of_the_territory_see_its_slots)
{
    fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"sas\"]", 0);
    const char *rp[] = {FIX_GP1};
    char *q = cpts_query(rp, 1);
    struct answer a;

    fhir_get(q, NULL, NULL, &a);
    cr_expect_eq(a.status, 401, "%s", a.text);
    expect_str(a.json, "resourceType", "OperationOutcome", "no token");
    expect_str(a.json, "issue.0.code", "login", "no token");
    answer_free(&a);

    fhir_get(q, "snp_notatokenatallnotatokenatallnotatokenatall1", NULL, &a);
    cr_expect_eq(a.status, 401, "%s", a.text);
    answer_free(&a);

    /* Every other role, the SAS regulator's included, is refused. */
    for (int role = 0; role < FIX_ROLE_COUNT; role++) {
        fhir_get(q, f.token[role], NULL, &a);
        cr_expect_eq(a.status, 403, "role %d: %d %s", role, a.status, a.text);
        expect_str(a.json, "issue.0.code", "forbidden", "other role");
        answer_free(&a);
    }

    /* The platform account of another territory sees nothing of this one. */
    fhir_get(q, other_platform, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 0);
    cr_expect_eq(json_array_size(json_object_get(a.json, "entry")), 0);
    /* (The self link repeats the query, RPPS included: look at the entries.) */
    char *entries = json_dumps(json_object_get(a.json, "entry"), JSON_COMPACT);
    cr_assert(entries);
    cr_expect_null(strstr(entries, FIX_GP1), "another territory's platform sees the practitioner");
    cr_expect_null(strstr(a.text, "Cabinet du Port"), "another territory's platform sees a site");
    cr_expect_null(strstr(a.text, "Territoire de test"), "another territory's platform sees it");
    free(entries);
    answer_free(&a);

    /* And this territory's does. */
    fhir_get(q, platform, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 1);
    answer_free(&a);

    /* The coordinator makes one for the territory through the API; it
     * searches like the one made by SQL. */
    int created;
    json_t *t = fix_api(&f, "POST", "/api/v1/tokens", FIX_COORDINATOR,
                        "{\"role\": \"platform\", \"label\": \"plateforme SAS\"}", &created);
    cr_assert_eq(created, 201, "token.create answered %d", created);
    const char *secret = json_string_value(json_object_get(t, "secret"));
    cr_assert(secret);
    expect_str(t, "token.role", "platform", "token.create");
    fhir_get(q, secret, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.text);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 1);
    answer_free(&a);
    json_decref(t);

    /* A platform token cannot use the snp.v1 API. */
    int status;
    json_t *r =
        fix_api_port(f.snpd.port, "GET", "/api/v1/capacity?horizon=24h", platform, NULL, &status);
    cr_expect_eq(status, 403);
    json_decref(r);
    free(q);
}

Test(fhir, metadata_states_what_is_supported)
{
    struct answer a;
    fhir_get("/fhir/metadata", NULL, "application/fhir+json", &a);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_expect_str_eq(a.content_type, "application/fhir+json");
    expect_str(a.json, "resourceType", "CapabilityStatement", "metadata");
    expect_str(a.json, "fhirVersion", "4.0.1", "metadata");
    expect_str(a.json, "kind", "instance", "metadata");
    expect_str(a.json, "format.0", "application/fhir+json", "metadata");
    json_t *res = fix_json_at(a.json, "rest.0.resource");
    cr_expect_eq(json_array_size(res), 6, "Slot searched and read, five types read");
    expect_str(res, "0.type", "Slot", "metadata");
    expect_str(res, "0.interaction.0.code", "search-type", "metadata");
    expect_str(res, "0.interaction.1.code", "read", "metadata");
    cr_expect_eq(json_array_size(fix_json_at(res, "0.searchInclude")), 4);
    cr_expect_eq(json_array_size(fix_json_at(res, "0.searchParam")), 5);
    expect_str(res, "3.type", "PractitionerRole", "metadata");
    expect_str(res, "3.interaction.0.code", "read", "metadata");
    cr_expect(json_is_string(fix_json_at(a.json, "rest.0.security.description")),
              "security.description is a string");
    answer_free(&a);
}

Test(fhir, every_resource_passes_the_fhir_r4_json_schema)
{
    const char *validator = fix_fhir_validator(&f);
    int64_t first = fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"sas\"]", 0);
    fix_publish_one(&f, FIX_GP2, f.site_gp2, 120, "home", "[\"public\"]", 0);
    fix_publish_one(&f, FIX_GP2, f.site_gp2, 150, "teleconsultation", "[\"sas\", \"desk\"]", 0);
    fix_publish_one(&f, FIX_GP2, f.site_gp2, 60, "office", "[\"pharmacy\"]", 120);
    const char *rpps[] = {FIX_GP1, FIX_GP2};
    const char *none[] = {"10999900037"};
    char *full = cpts_query(rpps, 2), *empty = cpts_query(none, 1);
    /* Not /fhir/metadata: the package's schema is that of R4 4.0.0, whose
     * fhirVersion values stop at 4.0.0, while the CapabilityStatement rightly
     * says 4.0.1 (R4's technical correction, the version of the guide). */
    /* And a page of a generic search, with its next link, and the reads. */
    char ge[40], le[40], page[256], slot[64], schedule[64], role[64];
    instant(-60, ge, sizeof(ge));
    instant(3 * 24 * 60, le, sizeof(le));
    snprintf(page, sizeof(page), "/fhir/Slot?start=ge%s&start=le%s&status=free&_count=1", ge, le);
    snprintf(slot, sizeof(slot), "/fhir/Slot/%lld", (long long)first);
    snprintf(schedule, sizeof(schedule), "/fhir/Schedule/%s-%lld", FIX_GP1, (long long)f.site_gp1);
    snprintf(role, sizeof(role), "/fhir/PractitionerRole/%s-%lld", FIX_GP1, (long long)f.site_gp1);
    const char *paths[] = {full,
                           empty,
                           "/fhir/Slot?status=free",
                           page,
                           slot,
                           schedule,
                           role,
                           "/fhir/Practitioner/" FIX_GP1,
                           "/fhir/HealthcareService/" FIX_TERRITORY,
                           "/fhir/Organization/" FIX_TERRITORY};
    const int statuses[] = {200, 200, 400, 200, 200, 200, 200, 200, 200, 200};
    char cmd[8192];
    int n = snprintf(cmd, sizeof(cmd), "node '%s'", validator);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct answer a;
        fhir_get(paths[i], platform, NULL, &a);
        cr_assert_eq(a.status, statuses[i], "%s: %s", paths[i], a.text);
        if (i == 0)
            cr_assert_eq(check_bundle(a.json), 4);
        char file[512];
        snprintf(file, sizeof(file), "%s/fhir-%d-%zu.json", proc_scratch_dir(), (int)getpid(), i);
        FILE *fp = fopen(file, "w");
        cr_assert(fp);
        fputs(a.text, fp);
        fclose(fp);
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", file);
        answer_free(&a);
    }
    free(full);
    free(empty);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >&2");
    int st = system(cmd);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "FHIR R4 JSON-schema validation failed (tests/fhir/validate.mjs, output above)");
}

/* Another integrator's search: no practitioner, pages of _count Slots
 * linked by next; the pages together are the whole answer, each Slot once,
 * in start order, with the same total on every page. */
Test(fhir, a_generic_search_comes_in_pages_that_add_up)
{
    const char *validator = getenv("SNP_FHIR_VALIDATOR");
    json_int_t ids[7];
    for (int i = 0; i < 7; i++)
        ids[i] = fix_publish_one(&f, i % 2 ? FIX_GP2 : FIX_GP1, i % 2 ? f.site_gp2 : f.site_gp1,
                                 60 + 20 * i, "office", "[\"sas\"]", 0);
    /* Not open to the SAS: never in the answer. */
    fix_publish_one(&f, FIX_GP1, f.site_gp1, 75, "office", "[\"pharmacy\"]", 0);
    char ge[40], le[40], path[1024];
    instant(-60, ge, sizeof(ge));
    instant(3 * 24 * 60, le, sizeof(le));
    snprintf(path, sizeof(path), "/fhir/Slot?start=ge%s&start=le%s&status=free&_count=3", ge, le);
    json_int_t seen[16];
    size_t nseen = 0;
    int pages = 0;
    while (path[0]) {
        struct answer a;
        fhir_get(path, platform, NULL, &a);
        cr_assert_eq(a.status, 200, "%s: %s", path, a.text);
        pages++;
        cr_expect_eq(json_integer_value(json_object_get(a.json, "total")), 7, "page %d", pages);
        size_t k;
        json_t *e;
        json_array_foreach (json_object_get(a.json, "entry"), k, e) {
            const char *id = fix_json_str(e, "resource.id");
            cr_assert(id && nseen < 16);
            seen[nseen++] = atoll(id);
        }
        path[0] = '\0';
        json_t *links = json_object_get(a.json, "link");
        json_array_foreach (links, k, e) {
            const char *rel = json_string_value(json_object_get(e, "relation"));
            const char *url = json_string_value(json_object_get(e, "url"));
            if (rel && strcmp(rel, "next") == 0) {
                cr_assert(url && strncmp(url, PUBLIC_URL, strlen(PUBLIC_URL)) == 0, "%s", url);
                snprintf(path, sizeof(path), "%s", url + strlen(PUBLIC_URL));
            }
        }
        answer_free(&a);
        cr_assert_leq(pages, 5, "the pages do not end");
    }
    cr_expect_eq(pages, 3, "7 slots in pages of 3");
    cr_assert_eq(nseen, 7);
    for (size_t i = 0; i < 7; i++)
        cr_expect_eq(seen[i], ids[i], "slot %zu of the pages is %lld, %lld expected", i,
                     (long long)seen[i], (long long)ids[i]);
    /* Without _count, a generic search answers a page of 200. */
    snprintf(path, sizeof(path), "/fhir/Slot?start=ge%s&start=le%s&status=free", ge, le);
    struct answer a;
    fhir_get(path, platform, NULL, &a);
    cr_expect_eq(a.status, 200);
    cr_expect_eq(json_array_size(json_object_get(a.json, "entry")), 7);
    answer_free(&a);
    (void)validator;
}

/* Reads of each resource an answer references, for the platform of the
 * territory only; what is not exposed is not found. */
Test(fhir, each_referenced_resource_can_be_read)
{
    json_int_t sas = fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"sas\"]", 0);
    json_int_t hidden = fix_publish_one(&f, FIX_GP2, f.site_gp2, 90, "office", "[\"pharmacy\"]", 0);
    char path[256], pair[48];
    snprintf(pair, sizeof(pair), "%s-%lld", FIX_GP1, (long long)f.site_gp1);
    struct {
        char path[128];
        const char *type;
        int status;
    } reads[] = {
        {"", "Slot", 200},
        {"", "Schedule", 200},
        {"", "PractitionerRole", 200},
        {"/fhir/Practitioner/" FIX_GP1, "Practitioner", 200},
        {"/fhir/HealthcareService/" FIX_TERRITORY, "HealthcareService", 200},
        {"/fhir/Organization/" FIX_TERRITORY, "Organization", 200},
        {"", "OperationOutcome", 404},
        {"/fhir/Slot/999999", "OperationOutcome", 404},
        {"/fhir/Schedule/" FIX_GP1 "-999999", "OperationOutcome", 404},
        {"/fhir/Organization/test-other", "OperationOutcome", 404},
        {"/fhir/Slot/12/x", "OperationOutcome", 404},
    };
    snprintf(reads[0].path, sizeof(reads[0].path), "/fhir/Slot/%lld", (long long)sas);
    snprintf(reads[1].path, sizeof(reads[1].path), "/fhir/Schedule/%s", pair);
    snprintf(reads[2].path, sizeof(reads[2].path), "/fhir/PractitionerRole/%s", pair);
    snprintf(reads[6].path, sizeof(reads[6].path), "/fhir/Slot/%lld", (long long)hidden);
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        struct answer a;
        fhir_get(reads[i].path, platform, NULL, &a);
        cr_expect_eq(a.status, reads[i].status, "%s: %d %s", reads[i].path, a.status, a.text);
        expect_str(a.json, "resourceType", reads[i].type, reads[i].path);
        answer_free(&a);
    }
    /* The Slot read is the Slot of the search, member for member. */
    const char *rp[] = {FIX_GP1};
    char *q = cpts_query(rp, 1);
    struct answer s, r;
    fhir_get(q, platform, NULL, &s);
    snprintf(path, sizeof(path), "/fhir/Slot/%lld", (long long)sas);
    fhir_get(path, platform, NULL, &r);
    cr_assert_eq(s.status, 200);
    cr_expect(json_equal(fix_json_at(s.json, "entry.0.resource"), r.json),
              "the read and the search differ: %s", r.text);
    answer_free(&s);
    answer_free(&r);
    free(q);
    /* Another territory's platform, and another role, read nothing here. */
    struct answer a;
    fhir_get(path, other_platform, NULL, &a);
    cr_expect_eq(a.status, 404, "%s", a.text);
    answer_free(&a);
    fhir_get(path, f.token[FIX_SAS], NULL, &a);
    cr_expect_eq(a.status, 403, "%s", a.text);
    answer_free(&a);
}
