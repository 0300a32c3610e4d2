#include "tests/support/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <criterion/criterion.h>

#include "dispatcher/core/token.h"
#include "protocol/codec.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

static const char *const roles[FIX_ROLE_COUNT] = {
    "gp", "gp", "pharmacy", "emergency", "sas", "desk", "coordinator", "pharmacy",
};

void fixture_setup(struct fixture *f, const char *settings)
{
    memset(f, 0, sizeof(*f));
    pgtest_create(&f->pg);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' migrate --database '%s' 2>/dev/null", getenv("SNPD_BINARY"),
             f->pg.conninfo);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "snpd migrate failed");
    fixture_load(f, settings);
}

void fixture_load(struct fixture *f, const char *settings)
{
    char sql[4096];
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO territory (id, name, kind, settings) VALUES "
        " ('%s', 'Territoire de test', 'cpts', '%s'),"
        " ('test-other', 'Autre territoire', 'cpts', '{}');"
        "INSERT INTO commune VALUES ('35236', 'Redon', '35600', 47.6514, -2.0840),"
        " ('56001', 'Allaire', '56350', 47.6380, -2.1630),"
        " ('35238', 'Rennes', '35000', 48.1173, -1.6778);"
        "INSERT INTO territory_commune VALUES ('%s', '35236'), ('%s', '56001'),"
        " ('test-other', '35238');"
        "INSERT INTO practitioner (rpps, family_name, given_name) VALUES"
        " ('%s', 'Le Guen', 'Anne'), ('%s', 'Morvan', 'Yann');"
        "INSERT INTO territory_practitioner VALUES ('%s', '%s'), ('%s', '%s');"
        "INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude,"
        " longitude) VALUES"
        " ('%s', 'practice', 'Cabinet du Port', '1 quai Surcouf', '35236', 47.6510, -2.0830),"
        " ('%s', 'practice', 'Cabinet d''Allaire', '2 rue de Redon', '56001', 47.6380, -2.1630),"
        " ('%s', 'csnp', 'CSNP de Redon', '8 avenue Gascon', '35236', 47.6561, -2.0791);"
        "INSERT INTO practitioner_site SELECT '%s', id FROM site WHERE name <> 'Cabinet "
        "d''Allaire';"
        "INSERT INTO practitioner_site SELECT '%s', id FROM site WHERE name <> 'Cabinet du Port';"
        "INSERT INTO organisation (territory_id, kind, name, finess, commune_insee) VALUES"
        " ('%s', 'pharmacy', 'Pharmacie du Pont', '350990016', '35236'),"
        " ('%s', 'emergency', 'Urgences de Redon', '350990024', '35236'),"
        " ('%s', 'sas', 'SAS 35', '350990032', '35236'),"
        " ('%s', 'desk', 'Coordination CPTS', '350990040', '35236'),"
        " ('test-other', 'pharmacy', 'Pharmacie de Rennes', '560990012', '35238');",
        FIX_TERRITORY, settings, FIX_TERRITORY, FIX_TERRITORY, FIX_GP1, FIX_GP2, FIX_TERRITORY,
        FIX_GP1, FIX_TERRITORY, FIX_GP2, FIX_TERRITORY, FIX_TERRITORY, FIX_TERRITORY, FIX_GP1,
        FIX_GP2, FIX_TERRITORY, FIX_TERRITORY, FIX_TERRITORY, FIX_TERRITORY);
    PQclear(pgtest_exec(&f->pg, sql));
    f->site_gp1 = pgtest_long(&f->pg, "SELECT id FROM site WHERE name = 'Cabinet du Port'");
    f->site_gp2 = pgtest_long(&f->pg, "SELECT id FROM site WHERE name = 'Cabinet d''Allaire'");
    f->site_csnp = pgtest_long(&f->pg, "SELECT id FROM site WHERE kind = 'csnp'");
    f->pharmacy_id =
        pgtest_long(&f->pg, "SELECT id FROM organisation WHERE name = 'Pharmacie du Pont'");

    for (int i = 0; i < FIX_ROLE_COUNT; i++) {
        uint8_t hash[DIGEST_SHA256_LEN];
        char hex[DIGEST_SHA256_HEX_LEN];
        cr_assert(token_generate(f->token[i], hash));
        digest_hex(hash, sizeof(hash), hex);
        const char *territory = i == FIX_OTHER_PHARMACY ? "test-other" : FIX_TERRITORY;
        char org[160] = "NULL";
        if (strcmp(roles[i], "gp") != 0 && strcmp(roles[i], "coordinator") != 0)
            snprintf(org, sizeof(org),
                     "(SELECT id FROM organisation WHERE territory_id = '%s' AND kind = '%s')",
                     territory, roles[i]);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO api_token (secret_sha256, role, territory_id, rpps, organisation_id)"
                 " VALUES (decode('%s', 'hex'), '%s', '%s', %s, %s)",
                 hex, roles[i], territory,
                 i == FIX_GP_1   ? "'" FIX_GP1 "'"
                 : i == FIX_GP_2 ? "'" FIX_GP2 "'"
                                 : "NULL",
                 org);
        PQclear(pgtest_exec(&f->pg, sql));
    }
}

void fixture_start(struct fixture *f)
{
    snpd_proc_start(&f->snpd, f->pg.conninfo, NULL, true);
}

void fixture_teardown(struct fixture *f)
{
    if (f->snpd.pid > 0)
        snpd_proc_stop(&f->snpd, SIGTERM, 15000);
    pgtest_drop(&f->pg);
}

json_t *fix_api_port(int port, const char *method, const char *path, const char *token,
                     const char *body, int *status)
{
    char auth[128] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    struct http_response r;
    cr_assert_eq(http_request(port, method, path, auth, body, &r), 0, "%s %s: no answer", method,
                 path);
    *status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    http_response_free(&r);
    return j;
}

json_t *fix_api_checked(int port, const char *type, const char *method, const char *path,
                        const char *token, const char *body, int *status)
{
    json_t *r = fix_api_port(port, method, path, token, body, status);
    cr_assert_not_null(r, "%s %s: no JSON answer (HTTP %d)", method, path, *status);
    if (*status < 300) {
        struct snp_proto_error err = {0};
        const struct snp_proto_message *m = snp_proto_message_find(type);
        cr_assert_not_null(m);
        cr_assert_eq(snp_proto_validate_response(m, r, &err), 0,
                     "the answer to %s breaks its declaration: %s at %s: %s", type,
                     snp_proto_code_name(err.code), err.field, err.message);
    }
    return r;
}

json_t *fix_api(struct fixture *f, const char *method, const char *path, enum fix_role as,
                const char *body, int *status)
{
    return fix_api_port(f->snpd.port, method, path, f->token[as], body, status);
}

struct capacity_wait {
    struct fixture *f;
    int port;
    json_int_t total;
};

static bool capacity_is(void *arg)
{
    struct capacity_wait *w = arg;
    int st;
    json_t *cap = fix_api_port(w->port, "GET", "/api/v1/capacity?horizon=48h", w->f->token[FIX_SAS],
                               NULL, &st);
    json_int_t n = json_integer_value(json_object_get(cap, "total"));
    json_decref(cap);
    return st == 200 && n == w->total;
}

bool fix_wait_capacity(struct fixture *f, int port, json_int_t total, int timeout_ms)
{
    struct capacity_wait w = {.f = f, .port = port, .total = total};
    return wait_until(capacity_is, &w, timeout_ms);
}

void fix_slot_start(int minutes, char out[32])
{
    time_t start = time(NULL) + 60 * minutes;
    start -= start % 60;
    struct tm tm;
    gmtime_r(&start, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:00Z", &tm);
}

int fix_publish(struct fixture *f, enum fix_role gp, int n, int first_min, int every_min,
                const char *audiences)
{
    json_t *slots = json_array();
    for (int i = 0; i < n; i++) {
        char buf[32];
        fix_slot_start(first_min + i * every_min, buf);
        json_array_append_new(slots, json_pack("{s:s, s:i}", "start", buf, "duration_min", 20));
    }
    json_t *body = json_pack("{s:I, s:s, s:o, s:o}", "site_id",
                             (json_int_t)(gp == FIX_GP_1 ? f->site_gp1 : f->site_gp2), "mode",
                             "office", "audiences", json_loads(audiences, 0, NULL), "slots", slots);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int status;
    json_t *r = fix_api(f, "POST", "/api/v1/slots", gp, text, &status);
    free(text);
    cr_assert_eq(status, 201, "publish answered %d: %s", status,
                 r ? json_dumps(r, 0) : "(not JSON)");
    int count = (int)json_integer_value(json_object_get(r, "count"));
    json_decref(r);
    return count;
}

json_t *fix_api_json(struct fixture *f, const char *method, const char *path, enum fix_role as,
                     json_t *body, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    cr_assert(text || !body, "out of memory");
    json_t *r = fix_api(f, method, path, as, text, status);
    free(text);
    return r;
}

int64_t fix_publish_one(struct fixture *f, const char *rpps, int64_t site, int at_min,
                        const char *mode, const char *audiences, int release_minutes)
{
    char when[32];
    fix_slot_start(at_min, when);
    json_t *body =
        json_pack("{s:I, s:s, s:s, s:o, s:[{s:s, s:i}]}", "site_id", (json_int_t)site,
                  "practitioner_rpps", rpps, "mode", mode, "audiences",
                  json_loads(audiences, 0, NULL), "slots", "start", when, "duration_min", 20);
    if (release_minutes)
        json_object_set_new(body, "release_minutes", json_integer(release_minutes));
    int status;
    json_t *r = fix_api_json(f, "POST", "/api/v1/slots", FIX_COORDINATOR, body, &status);
    cr_assert_eq(status, 201, "publish answered %d", status);
    int64_t id = json_integer_value(json_array_get(json_object_get(r, "slot_ids"), 0));
    json_decref(r);
    cr_assert_gt(id, 0);
    return id;
}

void fix_skip(struct fixture *f, const char *why)
{
    /* Criterion does not run the suite's .fini after a skip: the snpd
     * started by .init would outlive the test. */
    fixture_teardown(f);
    cr_skip_test("%s", why);
}

const char *fix_fhir_validator(struct fixture *f)
{
    const char *validator = getenv("SNP_FHIR_VALIDATOR");
    if (!validator || !validator[0])
        fix_skip(f, "SNP_FHIR_VALIDATOR is not set: deploy/test.sh sets it, without --sanitize, "
                    "once npm ci has installed tests/fhir");
    return validator;
}

json_t *fix_json_at(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save))
        j = json_is_array(j) ? json_array_get(j, strtoul(tok, NULL, 10)) : json_object_get(j, tok);
    return j;
}

const char *fix_json_str(json_t *j, const char *path)
{
    return json_string_value(fix_json_at(j, path));
}

char *fix_request_body(const char *client_ref, const char *urgency)
{
    json_t *b = json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:b}, s:{s:s}, s:s}", "client_ref",
                          client_ref, "patient", "initials", "J. D.", "birth_year", 1980, "sex",
                          "female", "commune_insee", "35236", "has_mt", 0, "motif", "code", "ent",
                          "urgency", urgency);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return text;
}

int64_t fix_add_token(struct fixture *f, const char *role, const char *territory, const char *rpps,
                      int64_t organisation_id, int expires_in, bool revoked, char secret[48])
{
    uint8_t hash[DIGEST_SHA256_LEN];
    char hex[DIGEST_SHA256_HEX_LEN];
    cr_assert(token_generate(secret, hash));
    digest_hex(hash, sizeof(hash), hex);
    char who[64] = "NULL, NULL";
    if (rpps)
        snprintf(who, sizeof(who), "'%s', NULL", rpps);
    else if (organisation_id > 0)
        snprintf(who, sizeof(who), "NULL, %lld", (long long)organisation_id);
    char expiry[64] = "NULL";
    if (expires_in)
        snprintf(expiry, sizeof(expiry), "now() + make_interval(secs => %d)", expires_in);
    char sql[768];
    snprintf(sql, sizeof(sql),
             "INSERT INTO api_token (secret_sha256, role, territory_id, rpps, organisation_id,"
             " expires_at, revoked_at)"
             " VALUES (decode('%s', 'hex'), '%s', '%s', %s, %s, %s) RETURNING id",
             hex, role, territory, who, expiry, revoked ? "now()" : "NULL");
    return pgtest_long(&f->pg, sql);
}

void fix_book(struct fixture *f, const char *client_ref, const char *display_name,
              const char *phone, int first_min, struct fix_booking *out)
{
    cr_assert_eq(fix_publish(f, FIX_GP_1, 1, first_min, 20, "[\"pharmacy\"]"), 1);
    json_t *b =
        json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:s, s:b}, s:{s:s, s:s}, s:s}", "client_ref",
                  client_ref, "patient", "display_name", display_name, "birth_year", 1951, "sex",
                  "female", "phone", phone, "commune_insee", "35236", "has_mt", 0, "motif", "code",
                  "ent", "text", "Gorge, voir avec la fille", "urgency", "48h");
    int st;
    json_t *r = fix_api_json(f, "POST", "/api/v1/requests", FIX_PHARMACY, b, &st);
    cr_assert_eq(st, 201, "request.create answered %d", st);
    out->request_id = json_integer_value(json_object_get(r, "request_id"));
    out->slot_id = json_integer_value(
        json_object_get(json_object_get(json_object_get(r, "offer"), "slot"), "slot_id"));
    json_decref(r);
    cr_assert_gt(out->slot_id, 0, "no offer for %s", client_ref);
    char path[80], accept[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept", (long long)out->request_id);
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}", (long long)out->slot_id);
    r = fix_api(f, "POST", path, FIX_PHARMACY, accept, &st);
    cr_assert_eq(st, 200, "offer.accept answered %d", st);
    out->booking_id = json_integer_value(json_object_get(r, "booking_id"));
    json_decref(r);
}

PGresult *fix_sql(struct fixture *f, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(f->pg.conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s\n-> %s", sql,
              PQresultErrorMessage(r));
    return r;
}

long long fix_sql_ll(struct fixture *f, const char *sql, int n, const char *const *params)
{
    PGresult *r = fix_sql(f, sql, n, params);
    cr_assert_eq(PQntuples(r), 1, "%s: %d rows", sql, PQntuples(r));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

void fix_iso_utc(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void fix_install_test_clock(struct fixture *f)
{
    PQclear(pgtest_exec(
        &f->pg, "CREATE SCHEMA snp_testclock;"
                "CREATE FUNCTION snp_testclock.now() RETURNS timestamptz LANGUAGE sql STABLE AS"
                " $$ SELECT coalesce(nullif(current_setting('snp.test_now', true),"
                " '')::timestamptz, pg_catalog.now()) $$;"
                "CREATE FUNCTION snp_testclock.clock_timestamp() RETURNS timestamptz LANGUAGE sql"
                " VOLATILE AS $$ SELECT coalesce(nullif(current_setting('snp.test_now', true),"
                " '')::timestamptz, pg_catalog.clock_timestamp()) $$;"
                "ALTER TABLE event ALTER COLUMN at SET DEFAULT snp_testclock.clock_timestamp();"
                "ALTER TABLE audit ALTER COLUMN at SET DEFAULT snp_testclock.clock_timestamp();"
                "ALTER TABLE request ALTER COLUMN created_at SET DEFAULT snp_testclock.now();"
                "ALTER TABLE slot ALTER COLUMN published_at SET DEFAULT snp_testclock.now();"
                "ALTER TABLE booking ALTER COLUMN booked_at SET DEFAULT snp_testclock.now();"
                "SET search_path = snp_testclock, pg_catalog, public;"));
}

void fix_clock_at(struct fixture *f, int64_t t)
{
    char ts[32];
    fix_iso_utc(t, ts);
    const char *p[] = {ts};
    PQclear(fix_sql(f, "SELECT set_config('snp.test_now', $1, false)", 1, p));
}
