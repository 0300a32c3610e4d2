/* The SMART Scheduling Links feed (dispatcher/commands/fhir_smart.c, docs/fhir.md),
 * against a real snpd on a real PostgreSQL, read as a slot discovery client
 * would, without a token: the manifest parses, each file it lists is fetched
 * over HTTP and each line parses; every Slot's schedule is a Schedule of the
 * files and every Schedule's actor a Location of them; exactly the slots
 * open to everyone appear (public, or released by their rule), not those
 * open to one audience only, not yet released, held, booked or withdrawn;
 * the answers may be cached; other methods and unknown files are refused;
 * and, when deploy/test.sh installed it, every resource passes the FHIR R4
 * JSON schema (tests/fhir/validate.mjs). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "base/timeutil.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"

#define PUBLIC_URL  "https://snp.cpts-test.example"
#define SITE_PHONE  "02 99 71 00 00"
#define DEEP_LINK   "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
#define PHONE_EXT   "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"
#define MANIFEST    "/fhir/$bulk-publish"
#define PATIENT     "Nolwenn Feedtest" /* the patient of the booking: never in the feed */
#define NTERRITORY  2                  /* the fixture's: test-t and test-other */
#define MAX_OUTPUTS (3 * NTERRITORY)

static struct fixture f;

static void setup(void)
{
    setenv("SNPD_PUBLIC_URL", PUBLIC_URL, 1);
    /* Holds outlast the test: the held slot stays held without a clock. */
    fixture_setup(&f, "{\"hold_seconds\": 3600}");
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE site SET phone = '%s' WHERE id = %lld", SITE_PHONE,
             (long long)f.site_gp1);
    PQclear(pgtest_exec(&f.pg, sql));
    fixture_start(&f);
}

static void teardown(void)
{
    fixture_teardown(&f);
    unsetenv("SNPD_PUBLIC_URL");
}

TestSuite(fhir_smart, .init = setup, .fini = teardown, .timeout = 300);

/* --- helpers ------------------------------------------------------------------------ */

/* The pharmacy asks for a patient named `name`; returns the request's id and
 * writes the id of the slot it is offered (and so holds). */
static int64_t request_held(const char *client_ref, const char *name, int64_t *slot)
{
    json_t *b =
        json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:b}, s:{s:s}, s:s}", "client_ref", client_ref,
                  "patient", "display_name", name, "birth_year", 1962, "sex", "female",
                  "commune_insee", "35236", "has_mt", 0, "motif", "code", "ent", "urgency", "48h");
    int st;
    json_t *r = fix_api_json(&f, "POST", "/api/v1/requests", FIX_PHARMACY, b, &st);
    cr_assert_eq(st, 201, "request.create answered %d", st);
    int64_t id = json_integer_value(json_object_get(r, "request_id"));
    *slot = json_integer_value(
        json_object_get(json_object_get(json_object_get(r, "offer"), "slot"), "slot_id"));
    json_decref(r);
    return id;
}

struct answer {
    int status;
    char content_type[128];
    char cache_control[128];
    char *text;
};

/* Copies the value of header `name` ("\ncontent-type:") into `out`. */
static void header(const char *headers, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    const char *h = strcasestr(headers, name);
    if (!h)
        return;
    h += strlen(name);
    while (*h == ' ')
        h++;
    snprintf(out, size, "%.*s", (int)strcspn(h, "\r\n"), h);
}

/* GETs `path` (or sends `method`) without a token. */
static void feed_request(const char *method, const char *path, struct answer *a)
{
    struct http_response r;
    if (http_request(f.snpd.port, method, path, NULL, NULL, &r) != 0) {
        char *log = snpd_proc_log(&f.snpd);
        cr_log_error("%s %s: no answer; snpd's log:\n%s", method, path, log ? log : "(none)");
        free(log);
        cr_assert_fail("%s %s: no answer (snpd's log above)", method, path);
    }
    a->status = r.status;
    header(r.headers, "\ncontent-type:", a->content_type, sizeof(a->content_type));
    header(r.headers, "\ncache-control:", a->cache_control, sizeof(a->cache_control));
    a->text = strdup(r.body);
    http_response_free(&r);
}

/* Stops snpd and expects a clean exit: under --sanitize a leak or an error
 * that did not stop it makes its exit status non-zero. */
static void expect_clean_exit(void)
{
    int st = snpd_proc_stop(&f.snpd, SIGTERM, 15000);
    if (st != 0) {
        char *log = snpd_proc_log(&f.snpd);
        cr_log_error("snpd's log:\n%s", log ? log : "(none)");
        free(log);
    }
    cr_expect_eq(st, 0, "snpd exited with %d (its log above)", st);
}

/* What a client gathers from the feed: every resource by "Type/id", the
 * files' text (for the schema and for what must not be in them) and their
 * scratch copies. */
struct feed {
    json_t *manifest;
    json_t *resources; /* "Type/id" -> resource */
    json_t *slots;     /* "Slot/id" of test-t -> true */
    char *all_text;
    char files[MAX_OUTPUTS][512];
    size_t nfiles;
};

/* Reads the manifest at `path`, then every file it lists, line by line. */
static void read_feed(const char *path, struct feed *fd)
{
    memset(fd, 0, sizeof(*fd));
    struct answer a;
    feed_request("GET", path, &a);
    cr_assert_eq(a.status, 200, "%s: %d %s", path, a.status, a.text);
    cr_expect_str_eq(a.content_type, "application/json");
    cr_expect_str_eq(a.cache_control, "public, max-age=60");
    json_error_t err;
    fd->manifest = json_loads(a.text, JSON_REJECT_DUPLICATES, &err);
    cr_assert(fd->manifest, "manifest: %s in %s", err.text, a.text);
    free(a.text);
    int64_t when;
    const char *tt = fix_json_str(fd->manifest, "transactionTime");
    cr_expect(tt && timeutil_parse_rfc3339(tt, &when), "transactionTime %s", tt);
    cr_expect_str_eq(fix_json_str(fd->manifest, "request"), PUBLIC_URL MANIFEST);
    cr_expect(json_is_array(fix_json_at(fd->manifest, "error")) &&
                  json_array_size(fix_json_at(fd->manifest, "error")) == 0,
              "manifest error is not an empty array");
    json_t *output = fix_json_at(fd->manifest, "output");
    cr_assert_eq(json_array_size(output), MAX_OUTPUTS, "three files per territory");
    fd->resources = json_object();
    fd->slots = json_object();
    size_t all = 0;
    size_t i;
    json_t *o;
    json_array_foreach (output, i, o) {
        const char *type = fix_json_str(o, "type"), *url = fix_json_str(o, "url");
        cr_assert(type && url, "output %zu lacks type or url", i);
        cr_assert(strncmp(url, PUBLIC_URL "/fhir/bulk/", strlen(PUBLIC_URL "/fhir/bulk/")) == 0,
                  "url %s", url);
        cr_expect(json_array_size(fix_json_at(o, "extension.state")) > 0, "no state hint for %s",
                  url);
        bool ours = strstr(url, "/fhir/bulk/" FIX_TERRITORY "/") != NULL;
        feed_request("GET", url + strlen(PUBLIC_URL), &a);
        cr_assert_eq(a.status, 200, "%s: %d %s", url, a.status, a.text);
        cr_expect_str_eq(a.content_type, "application/fhir+ndjson", "%s", url);
        cr_expect_str_eq(a.cache_control, "public, max-age=60", "%s", url);
        size_t len = strlen(a.text);
        cr_expect(len == 0 || a.text[len - 1] == '\n', "%s: last line unterminated", url);
        fd->all_text = realloc(fd->all_text, all + len + 1);
        memcpy(fd->all_text + all, a.text, len + 1);
        all += len;
        snprintf(fd->files[fd->nfiles], sizeof(fd->files[0]), "%s/smart-%d-%zu.ndjson",
                 proc_scratch_dir(), (int)getpid(), fd->nfiles);
        FILE *fp = fopen(fd->files[fd->nfiles++], "w");
        cr_assert(fp);
        fputs(a.text, fp);
        fclose(fp);
        for (char *line = a.text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            json_t *r = json_loads(line, JSON_REJECT_DUPLICATES, &err);
            cr_assert(r, "%s: %s in \"%s\"", url, err.text, line);
            cr_expect_str_eq(fix_json_str(r, "resourceType"), type, "%s", url);
            const char *id = fix_json_str(r, "id");
            cr_assert(id && id[0], "%s: a resource without id", url);
            char key[128];
            snprintf(key, sizeof(key), "%s/%s", type, id);
            cr_expect_null(json_object_get(fd->resources, key), "%s twice", key);
            if (ours && strcmp(type, "Slot") == 0)
                json_object_set_new(fd->slots, key, json_true());
            json_object_set_new(fd->resources, key, r);
        }
        free(a.text);
    }
    if (!fd->all_text)
        fd->all_text = strdup("");
}

static void feed_free(struct feed *fd)
{
    json_decref(fd->manifest);
    json_decref(fd->resources);
    json_decref(fd->slots);
    free(fd->all_text);
}

/* Checks that every Slot names a Schedule of the files and every Schedule a
 * Location, and that nothing is published that no Slot uses. */
static void check_references(const struct feed *fd)
{
    json_t *used = json_object();
    const char *key;
    json_t *r;
    json_object_foreach (fd->resources, key, r) {
        const char *type = fix_json_str(r, "resourceType");
        const char *ref = strcmp(type, "Slot") == 0       ? fix_json_str(r, "schedule.reference")
                          : strcmp(type, "Schedule") == 0 ? fix_json_str(r, "actor.0.reference")
                                                          : NULL;
        if (strcmp(type, "Schedule") == 0)
            cr_expect_eq(json_array_size(fix_json_at(r, "actor")), 1, "%s: one actor", key);
        if (!ref)
            continue;
        json_t *target = json_object_get(fd->resources, ref);
        cr_expect(target != NULL, "%s refers to %s, which the files lack", key, ref);
        const char *want = strcmp(type, "Slot") == 0 ? "Schedule" : "Location";
        cr_expect(target && strcmp(fix_json_str(target, "resourceType"), want) == 0,
                  "%s: %s is no %s", key, ref, want);
        json_object_set_new(used, ref, json_true());
    }
    json_object_foreach (fd->resources, key, r) {
        if (strcmp(fix_json_str(r, "resourceType"), "Slot") != 0)
            cr_expect(json_object_get(used, key) != NULL, "%s is published but unused", key);
    }
    json_decref(used);
}

static json_t *slot_of(const struct feed *fd, int64_t id)
{
    char key[64];
    snprintf(key, sizeof(key), "Slot/%lld", (long long)id);
    return json_object_get(fd->resources, key);
}

/* The value of the extension `url` of `r`, or NULL. */
static const char *extension(json_t *r, const char *url, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(r, "extension"), i, e) {
        if (fix_json_str(e, "url") && strcmp(fix_json_str(e, "url"), url) == 0)
            return fix_json_str(e, value);
    }
    return NULL;
}

/* --- tests ---------------------------------------------------------------------------- */

Test(fhir_smart, the_feed_publishes_exactly_the_slots_open_to_everyone)
{
    /* A public slot held by an offer, then one booked: out.  Each is made
     * while it is the only slot the pharmacy may be offered. */
    int64_t held = fix_publish_one(&f, FIX_GP1, f.site_gp1, 100, "office", "[\"public\"]", 0);
    int64_t offered;
    request_held("smart-held", "Someone Else", &offered);
    cr_assert_eq(offered, held, "the request holds another slot");
    int64_t booked = fix_publish_one(&f, FIX_GP1, f.site_gp1, 110, "office", "[\"public\"]", 0);
    int64_t request = request_held("smart-booked", PATIENT, &offered);
    cr_assert_eq(offered, booked, "the request holds another slot");
    char path[80], body[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)request);
    snprintf(body, sizeof(body), "{\"slot_id\": %lld}", (long long)booked);
    int st;
    json_decref(fix_api(&f, "POST", path, FIX_PHARMACY, body, &st));
    cr_assert_eq(st, 200, "offer.accept answered %d", st);

    /* In: public at each practice; released to all (open to emergency
     * departments, released 120 minutes before a start 60 minutes away). */
    int64_t pub1 = fix_publish_one(&f, FIX_GP1, f.site_gp1, 150, "office", "[\"public\"]", 0);
    int64_t pub2 =
        fix_publish_one(&f, FIX_GP2, f.site_gp2, 120, "office", "[\"public\", \"sas\"]", 0);
    int64_t released =
        fix_publish_one(&f, FIX_GP2, f.site_gp2, 60, "office", "[\"emergency\"]", 120);
    /* Out: open to the SAS only; its release rule not applied yet (60
     * minutes before a start 10 hours away); withdrawn. */
    int64_t sas_only = fix_publish_one(&f, FIX_GP1, f.site_gp1, 130, "office", "[\"sas\"]", 0);
    int64_t not_yet =
        fix_publish_one(&f, FIX_GP1, f.site_gp1, 600, "office", "[\"emergency\"]", 60);
    int64_t withdrawn = fix_publish_one(&f, FIX_GP2, f.site_gp2, 140, "office", "[\"public\"]", 0);
    snprintf(body, sizeof(body), "{\"slot_ids\": [%lld]}", (long long)withdrawn);
    json_decref(fix_api(&f, "POST", "/api/v1/slots/withdraw", FIX_GP_2, body, &st));
    cr_assert_eq(st, 200, "slot.withdraw answered %d", st);

    struct feed fd;
    read_feed(MANIFEST, &fd);
    check_references(&fd);
    int64_t in[] = {pub1, pub2, released};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        cr_expect(slot_of(&fd, in[i]) != NULL, "slot %lld is missing", (long long)in[i]);
    int64_t out[] = {held, booked, sas_only, not_yet, withdrawn};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        cr_expect_null(slot_of(&fd, out[i]), "slot %lld is published", (long long)out[i]);
    cr_expect_eq(json_object_size(fd.slots), 3, "slots of test-t: exactly the three");

    /* Each Slot: free, 20 minutes with offsets, the requesters' page as its
     * deep link, and the practice's phone where it is known. */
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        json_t *s = slot_of(&fd, in[i]);
        if (!s)
            continue;
        cr_expect_str_eq(fix_json_str(s, "status"), "free");
        int64_t start, end;
        cr_expect(
            fix_json_str(s, "start") && timeutil_parse_rfc3339(fix_json_str(s, "start"), &start) &&
                fix_json_str(s, "end") && timeutil_parse_rfc3339(fix_json_str(s, "end"), &end) &&
                end - start == 20 * 60,
            "start %s end %s", fix_json_str(s, "start"), fix_json_str(s, "end"));
        const char *link = extension(s, DEEP_LINK, "valueUrl");
        cr_expect(link && strcmp(link, PUBLIC_URL "/request.html") == 0, "deep link %s", link);
        const char *phone = extension(s, PHONE_EXT, "valueString");
        if (in[i] == pub1)
            cr_expect(phone && strcmp(phone, SITE_PHONE) == 0, "booking phone %s", phone);
        else
            cr_expect_null(phone, "a booking phone for a practice without one");
    }
    /* Two Schedules (one per practitioner and practice) and two Locations. */
    size_t schedules = 0, locations = 0;
    const char *key;
    json_t *r;
    json_object_foreach (fd.resources, key, r) {
        if (strcmp(fix_json_str(r, "resourceType"), "Schedule") == 0) {
            schedules++;
            cr_expect_str_eq(fix_json_str(r, "serviceType.0.coding.0.system"),
                             "http://terminology.hl7.org/CodeSystem/service-type");
            cr_expect_str_eq(fix_json_str(r, "serviceType.0.coding.0.code"), "124");
        } else if (strcmp(fix_json_str(r, "resourceType"), "Location") == 0) {
            locations++;
            cr_expect(fix_json_str(r, "name") && fix_json_str(r, "address.line.0") &&
                          fix_json_str(r, "address.city"),
                      "%s lacks a name or an address", key);
            cr_expect_eq(strlen(fix_json_str(r, "address.postalCode")), 5);
            cr_expect_str_eq(fix_json_str(r, "identifier.0.system"), PUBLIC_URL "/fhir/sid/site");
        }
    }
    cr_expect_eq(schedules, 2);
    cr_expect_eq(locations, 2);
    char loc[64];
    snprintf(loc, sizeof(loc), "Location/site-%lld", (long long)f.site_gp1);
    json_t *port = json_object_get(fd.resources, loc);
    cr_expect_str_eq(fix_json_str(port, "telecom.0.value"), SITE_PHONE);
    cr_expect_str_eq(fix_json_str(port, "address.postalCode"), "35600");
    cr_expect_str_eq(fix_json_str(port, "address.state"), "35");

    /* No patient, no practitioner's name. */
    cr_expect_null(strstr(fd.all_text, "Feedtest"), "patient data in the feed");
    cr_expect_null(strstr(fd.all_text, "Le Guen"), "a practitioner's name in the feed");
    cr_expect_null(strstr(fd.all_text, "Morvan"), "a practitioner's name in the feed");
    feed_free(&fd);

    /* The manifest percent-encoded, as a client may send it, is the same. */
    read_feed("/fhir/%24bulk-publish", &fd);
    cr_expect_eq(json_object_size(fd.slots), 3);
    feed_free(&fd);
    expect_clean_exit();
}

Test(fhir_smart, other_methods_and_unknown_files_are_refused)
{
    static const struct {
        const char *method, *path;
        int status;
    } bad[] = {
        {"POST", MANIFEST, 405},
        {"DELETE", "/fhir/bulk/" FIX_TERRITORY "/Slot.ndjson", 405},
        {"GET", "/fhir/bulk/no-such-territory/Slot.ndjson", 404},
        {"GET", "/fhir/bulk/" FIX_TERRITORY "/Patient.ndjson", 404},
        {"GET", "/fhir/bulk/" FIX_TERRITORY "/Slot.json", 404},
        {"GET", "/fhir/bulk/" FIX_TERRITORY, 404},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct answer a;
        feed_request(bad[i].method, bad[i].path, &a);
        cr_expect_eq(a.status, bad[i].status, "%s %s: %d %s", bad[i].method, bad[i].path, a.status,
                     a.text);
        json_t *j = json_loads(a.text, 0, NULL);
        cr_expect_str_eq(fix_json_str(j, "resourceType"), "OperationOutcome", "%s %s",
                         bad[i].method, bad[i].path);
        cr_expect_str_eq(a.cache_control, "no-store", "an error is cacheable");
        json_decref(j);
        free(a.text);
    }
    /* HEAD: the headers of GET, no body (the connection closes after it). */
    static const char head[] = "HEAD /fhir/bulk/" FIX_TERRITORY "/Location.ndjson HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char raw[4096];
    int n = http_raw(f.snpd.port, head, sizeof(head) - 1, raw, sizeof(raw));
    cr_assert_gt(n, 0, "no answer to HEAD");
    cr_expect(strncmp(raw, "HTTP/1.1 200", 12) == 0, "HEAD: %s", raw);
    cr_expect(strcasestr(raw, "\ncontent-type: application/fhir+ndjson") != NULL, "HEAD: %s", raw);
    const char *end = strstr(raw, "\r\n\r\n");
    cr_expect(end && end[4] == '\0', "HEAD answered with a body: %s", raw);

    /* A territory without a public slot: empty files, not an error. */
    struct answer a;
    feed_request("GET", "/fhir/bulk/test-other/Slot.ndjson", &a);
    cr_expect_eq(a.status, 200);
    cr_expect_str_eq(a.text, "");
    free(a.text);
    expect_clean_exit();
}

Test(fhir_smart, every_resource_passes_the_fhir_r4_json_schema)
{
    const char *validator = fix_fhir_validator(&f);
    fix_publish_one(&f, FIX_GP1, f.site_gp1, 90, "office", "[\"public\"]", 0);
    fix_publish_one(&f, FIX_GP2, f.site_gp2, 60, "office", "[\"pharmacy\"]", 120);
    struct feed fd;
    read_feed(MANIFEST, &fd);
    cr_assert_eq(json_object_size(fd.slots), 2);
    char cmd[8192];
    int n = snprintf(cmd, sizeof(cmd), "node '%s'", validator);
    for (size_t i = 0; i < fd.nfiles; i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", fd.files[i]);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >&2");
    feed_free(&fd);
    int st = system(cmd);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "FHIR R4 JSON-schema validation failed (tests/fhir/validate.mjs, output above)");
}
