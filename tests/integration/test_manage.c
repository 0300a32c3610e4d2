/* Managing a territory through the protocol, end to end on a real
 * PostgreSQL: territory.import (upserts, errors naming the field, one
 * transaction), token.create/list/revoke (roles, confinement, audit, the
 * secret shown once), revocation reaching open WebSockets and a second snpd
 * process, expired sessions, and HTTP POSTs without a body. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "base/digest.h"
#include "clients/lib/snpclient.h"
#include "dispatcher/core/token.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#define ANSWER_MS 5000

static struct fixture f;
static char admin[TOKEN_SECRET_SIZE];

/* Adds a token of `role` to `territory` by SQL, with an expiry `expires_in`
 * seconds from now (0: none), and returns its id. */
static long add_token(const char *role, const char *territory, int expires_in,
                      char secret[TOKEN_SECRET_SIZE])
{
    return (long)fix_add_token(&f, role, territory, NULL, 0, expires_in, false, secret);
}

static void setup(void)
{
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
    fixture_setup(&f, "{}");
    add_token("admin", FIX_TERRITORY, 0, admin);
}

static void teardown(void)
{
    fixture_teardown(&f);
    snp_proto_shutdown();
}

TestSuite(manage, .init = setup, .fini = teardown, .timeout = 180);

/* --- helpers ---------------------------------------------------------------------- */

/* Calls snpd (port) with a token and checks the answer against the
 * declaration of `type` when it succeeds.  Returns the parsed body. */
static json_t *api(int port, const char *type, const char *method, const char *path,
                   const char *token, const char *body, int *status)
{
    return fix_api_checked(port, type, method, path, token, body, status);
}

static json_t *import_as(const char *token, const char *body, int *status)
{
    return api(f.snpd.port, "territory.import", "POST", "/api/v1/territory/import", token, body,
               status);
}

static const char *error_code(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static const char *error_field(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"), "field"));
}

static long count(json_t *r, const char *which, const char *kind)
{
    return (long)json_integer_value(json_object_get(json_object_get(r, which), kind));
}

/* The import of the tests: a new commune, a new CSNP there, a new
 * practitioner at it and at the fixture's practice, a new pharmacy. */
static const char import_body[] =
    "{\"communes\": [{\"insee\": \"35177\", \"name\": \"Guipry-Messac\", \"postal_code\": "
    "\"35480\", \"latitude\": 47.8253, \"longitude\": -1.8228}],"
    " \"sites\": [{\"name\": \"CSNP de Messac\", \"kind\": \"csnp\", \"address\": \"2 rue de la "
    "Gare\", \"commune_insee\": \"35177\", \"latitude\": 47.8241, \"longitude\": -1.8213,"
    " \"phone\": \"02 99 34 00 00\"}],"
    " \"practitioners\": [{\"rpps\": \"10999900045\", \"family_name\": \"Le Goff\","
    " \"given_name\": \"Anne\", \"sites\": [\"CSNP de Messac\", \"Cabinet du Port\"]}],"
    " \"organisations\": [{\"kind\": \"pharmacy\", \"name\": \"Pharmacie de Messac\","
    " \"finess\": \"350990057\", \"commune_insee\": \"35177\"}]}";

/* Creates a token through the protocol as `as`; returns the answer. */
static json_t *token_create(const char *as, const char *body, int *status)
{
    return api(f.snpd.port, "token.create", "POST", "/api/v1/tokens", as, body, status);
}

static const char *secret_of(json_t *created)
{
    return json_string_value(json_object_get(created, "secret"));
}

static json_int_t id_of(json_t *created)
{
    return json_integer_value(json_object_get(json_object_get(created, "token"), "token_id"));
}

static json_t *revoke_token(int port, const char *as, json_int_t id, int *status)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/tokens/%lld/revoke", (long long)id);
    return api(port, "token.revoke", "POST", path, as, "{}", status);
}

/* A publication of one slot an hour ahead at `site`. */
static char *publish_body(json_int_t site)
{
    time_t t = time(NULL) + 3600;
    t -= t % 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    char start[32];
    strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:00Z", &tm);
    char *body = NULL;
    cr_assert(asprintf(&body,
                       "{\"site_id\": %lld, \"mode\": \"office\", \"audiences\": [\"pharmacy\"],"
                       " \"slots\": [{\"start\": \"%s\", \"duration_min\": 20}]}",
                       (long long)site, start) > 0);
    return body;
}

/* --- territory.import ------------------------------------------------------------- */

Test(manage, import_creates_then_finds_everything_unchanged_then_updates)
{
    fixture_start(&f);
    int st;
    json_t *r = import_as(admin, import_body, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    const char *kinds[] = {"communes", "sites", "practitioners", "organisations"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(count(r, "created", kinds[i]), 1, "created %s", kinds[i]);
        cr_assert_eq(count(r, "updated", kinds[i]) + count(r, "unchanged", kinds[i]), 0);
    }
    json_t *site = json_array_get(json_object_get(r, "sites"), 0);
    json_int_t site_id = json_integer_value(json_object_get(site, "site_id"));
    cr_assert_eq(site_id, pgtest_long(&f.pg, "SELECT id FROM site WHERE name = 'CSNP de Messac'"));
    json_t *org = json_array_get(json_object_get(r, "organisations"), 0);
    json_int_t org_id = json_integer_value(json_object_get(org, "organisation_id"));
    cr_assert_eq(org_id, pgtest_long(&f.pg, "SELECT id FROM organisation WHERE finess = "
                                            "'350990057' AND kind = 'pharmacy'"));
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner_site WHERE rpps = "
                                    "'10999900045'"),
                 2);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = "
                                    "'territory.import'"),
                 1);

    /* The same import again changes nothing. */
    r = import_as(admin, import_body, &st);
    cr_assert_eq(st, 200);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(count(r, "unchanged", kinds[i]), 1, "unchanged %s", kinds[i]);
    json_decref(r);

    /* A changed address updates the site in place; a left-out phone keeps
     * its value. */
    r = import_as(admin,
                  "{\"sites\": [{\"name\": \"CSNP de Messac\", \"kind\": \"csnp\", \"address\": "
                  "\"4 rue de la Gare\", \"commune_insee\": \"35177\", \"latitude\": 47.8241, "
                  "\"longitude\": -1.8213}]}",
                  &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(count(r, "updated", "sites"), 1);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg,
                             "SELECT count(*) FROM site WHERE name = 'CSNP de Messac' "
                             "AND address = '4 rue de la Gare' AND phone = '02 99 34 00 00'"),
                 1);

    /* The territory and the store know the new commune and site at once:
     * a gp token made through the protocol publishes at the new site. */
    r = api(f.snpd.port, "territory.get", "GET", "/api/v1/territory", admin, NULL, &st);
    bool found = false;
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(r, "communes"), i, c)
        found = found || strcmp(json_string_value(json_object_get(c, "insee")), "35177") == 0;
    cr_assert(found, "territory.get does not list the imported commune");
    json_decref(r);
    json_t *gp = token_create(admin, "{\"role\": \"gp\", \"rpps\": \"10999900045\"}", &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(gp, 0));
    char *body = publish_body(site_id);
    r = fix_api_port(f.snpd.port, "POST", "/api/v1/slots", secret_of(gp), body, &st);
    cr_assert_eq(st, 201, "publishing at the imported site: %d %s", st, json_dumps(r, 0));
    json_decref(r);
    free(body);
    json_decref(gp);

    /* ...and a pharmacy token for the new organisation is accepted. */
    char create[128];
    snprintf(create, sizeof(create), "{\"role\": \"pharmacy\", \"organisation_id\": %lld}",
             (long long)org_id);
    json_t *ph = token_create(admin, create, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(ph, 0));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ph, "token"), "organisation_name")),
        "Pharmacie de Messac");
    r = fix_api_port(f.snpd.port, "GET", "/api/v1/territory", secret_of(ph), NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    json_decref(ph);
}

Test(manage, import_errors_name_the_field_and_import_nothing)
{
    fixture_start(&f);
    int st;
    /* A practitioner at a site that does not exist: the commune of the same
     * request is not imported either. */
    json_t *r = import_as(admin,
                          "{\"communes\": [{\"insee\": \"35177\", \"name\": \"Guipry-Messac\", "
                          "\"latitude\": 47.8253, \"longitude\": -1.8228}],"
                          " \"practitioners\": [{\"rpps\": \"10999900045\", \"family_name\": "
                          "\"Le Goff\", \"given_name\": \"Anne\", \"sites\": [\"Cabinet du Port\", "
                          "\"Nulle part\"]}]}",
                          &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_code(r), "invalid_field");
    cr_assert_str_eq(error_field(r), "practitioners[0].sites[1]");
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM commune WHERE insee = '35177'"), 0);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner WHERE rpps = '10999900045'"),
                 0);

    /* A site in a commune outside the territory (Rennes is test-other's). */
    r = import_as(admin,
                  "{\"sites\": [{\"name\": \"X\", \"kind\": \"practice\", \"address\": \"1 rue\", "
                  "\"commune_insee\": \"35238\", \"latitude\": 48.11, \"longitude\": -1.67}]}",
                  &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "sites[0].commune_insee");
    json_decref(r);

    /* An organisation without FINESS nor RPPS; another changing kind. */
    r = import_as(admin,
                  "{\"organisations\": [{\"kind\": \"desk\", \"name\": \"Sans numéro\", "
                  "\"commune_insee\": \"35236\"}]}",
                  &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "organisations[0]");
    json_decref(r);
    r = import_as(admin,
                  "{\"organisations\": [{\"kind\": \"professional\", \"name\": \"Pharmacie du "
                  "Pont\", \"rpps\": \"10999900011\", \"commune_insee\": \"35236\"}]}",
                  &st);
    cr_assert_eq(st, 409);
    cr_assert_str_eq(error_code(r), "conflict");
    cr_assert_str_eq(error_field(r), "organisations[0].kind");
    json_decref(r);

    /* What the codec checks: an RPPS with a wrong key, an empty import. */
    r = import_as(admin,
                  "{\"practitioners\": [{\"rpps\": \"10999900012\", \"family_name\": \"A\", "
                  "\"given_name\": \"B\", \"sites\": [\"Cabinet du Port\"]}]}",
                  &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "practitioners[0].rpps");
    json_decref(r);
    r = import_as(admin, "{}", &st);
    cr_assert_eq(st, 400);
    json_decref(r);

    /* Roles: a coordinator may import, a gp may not. */
    r = import_as(f.token[FIX_GP_1], import_body, &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    r = import_as(f.token[FIX_COORDINATOR], import_body, &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = "
                                    "'territory.import' AND role = 'coordinator'"),
                 1);
}

/* --- tokens ----------------------------------------------------------------------- */

Test(manage, tokens_are_created_listed_and_revoked_within_the_territory)
{
    fixture_start(&f);
    int st;
    char body[160];
    snprintf(body, sizeof(body),
             "{\"role\": \"pharmacy\", \"organisation_id\": %lld, \"label\": \"comptoir 2\","
             " \"expires_days\": 30}",
             (long long)f.pharmacy_id);
    json_t *created = token_create(f.token[FIX_COORDINATOR], body, &st);
    cr_assert_eq(st, 201, "%d %s", st, json_dumps(created, 0));
    char secret[TOKEN_SECRET_SIZE];
    snprintf(secret, sizeof(secret), "%s", secret_of(created));
    json_int_t id = id_of(created);
    json_t *token = json_object_get(created, "token");
    cr_assert_str_eq(json_string_value(json_object_get(token, "state")), "active");
    cr_assert_str_eq(json_string_value(json_object_get(token, "label")), "comptoir 2");
    cr_assert(json_is_string(json_object_get(token, "expires_at")));
    json_decref(created);

    /* The secret works, is stored only as its hash, and is never logged. */
    json_t *r = fix_api_port(f.snpd.port, "GET", "/api/v1/territory", secret, NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM api_token WHERE id = %lld AND secret_sha256 = "
             "sha256(convert_to('%s', 'UTF8'))",
             (long long)id, secret);
    cr_assert_eq(pgtest_long(&f.pg, sql), 1);

    /* token.list: newest first, never a secret; a state filter. */
    r = api(f.snpd.port, "token.list", "GET", "/api/v1/tokens?state=active", admin, NULL, &st);
    cr_assert_eq(st, 200);
    json_t *first = json_array_get(json_object_get(r, "tokens"), 0);
    cr_assert_eq(json_integer_value(json_object_get(first, "token_id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(first, "organisation_name")),
                     "Pharmacie du Pont");
    char *text = json_dumps(r, 0);
    cr_assert_null(strstr(text, secret));
    free(text);
    json_decref(r);

    /* A coordinator may not create nor revoke admin tokens. */
    r = token_create(f.token[FIX_COORDINATOR], "{\"role\": \"admin\"}", &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    char other[TOKEN_SECRET_SIZE];
    long other_admin = add_token("admin", FIX_TERRITORY, 0, other);
    r = revoke_token(f.snpd.port, f.token[FIX_COORDINATOR], other_admin, &st);
    cr_assert_eq(st, 403);
    json_decref(r);
    /* Requester and gp tokens need their organisation or practitioner, of
     * the territory and of the right kind. */
    r = token_create(admin, "{\"role\": \"gp\"}", &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "rpps");
    json_decref(r);
    r = token_create(admin, "{\"role\": \"gp\", \"rpps\": \"10999900045\"}", &st);
    cr_assert_eq(st, 400, "a practitioner outside the territory");
    json_decref(r);
    snprintf(body, sizeof(body), "{\"role\": \"emergency\", \"organisation_id\": %lld}",
             (long long)f.pharmacy_id);
    r = token_create(admin, body, &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_field(r), "organisation_id");
    json_decref(r);
    long rennes = pgtest_long(&f.pg, "SELECT id FROM organisation WHERE territory_id = "
                                     "'test-other'");
    snprintf(body, sizeof(body), "{\"role\": \"pharmacy\", \"organisation_id\": %ld}", rennes);
    r = token_create(admin, body, &st);
    cr_assert_eq(st, 400, "an organisation of another territory");
    json_decref(r);
    /* Roles other than coordinator and admin manage no tokens. */
    r = fix_api_port(f.snpd.port, "GET", "/api/v1/tokens", f.token[FIX_PHARMACY], NULL, &st);
    cr_assert_eq(st, 403);
    json_decref(r);

    /* Revocation takes effect at once, not when the cache expires. */
    r = revoke_token(f.snpd.port, f.token[FIX_COORDINATOR], id, &st);
    cr_assert_eq(st, 200, "%d %s", st, json_dumps(r, 0));
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "revoked");
    json_decref(r);
    r = fix_api_port(f.snpd.port, "GET", "/api/v1/territory", secret, NULL, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(error_code(r), "token_revoked");
    json_decref(r);
    r = revoke_token(f.snpd.port, admin, id, &st);
    cr_assert_eq(st, 409);
    json_decref(r);
    /* Another territory's token is not found. */
    char foreign[TOKEN_SECRET_SIZE];
    long foreign_id = add_token("coordinator", "test-other", 0, foreign);
    r = revoke_token(f.snpd.port, admin, foreign_id, &st);
    cr_assert_eq(st, 404);
    json_decref(r);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action IN "
                                    "('token.create', 'token.revoke')"),
                 2);

    /* Nothing of the secret reached snpd's log. */
    FILE *log = fopen(f.snpd.log_path, "r");
    cr_assert_not_null(log);
    char line[4096];
    while (fgets(line, sizeof(line), log))
        cr_assert_null(strstr(line, secret + 4), "the secret is in the log: %s", line);
    fclose(log);
}

/* Runs `snpd --database <fixture> ARGS` with `args` (shell words),
 * standard output into `out`; returns the exit status. */
static int snpd_run(const char *args, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --database '%s' %s 2>/dev/null", getenv("SNPD_BINARY"),
             f.pg.conninfo, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    if (len && out[len - 1] == '\n')
        out[len - 1] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int snpd_token(const char *args, char *out, size_t n)
{
    char full[512];
    snprintf(full, sizeof(full), "token %s", args);
    return snpd_run(full, out, n);
}

/* --- waits --------------------------------------------------------------------- */

/* A request made again until it is answered `status`. */
struct token_use {
    int port;
    const char *method; /* NULL: GET */
    const char *path;
    const char *secret;
    const char *body;
    int status;
    int last; /* the status of the last answer */
};

static bool answers_status(void *arg)
{
    struct token_use *u = arg;
    json_decref(fix_api_port(u->port, u->method ? u->method : "GET", u->path, u->secret, u->body,
                             &u->last));
    return u->last == u->status;
}

/* Whether the CPTS's Organization shows the FINESS set by the test. */
static bool shows_the_finess(void *arg)
{
    struct token_use *u = arg;
    json_t *r = fix_api_port(u->port, "GET", "/fhir/Organization/" FIX_TERRITORY, u->secret, NULL,
                             &u->last);
    const char *value = u->last == 200 ? fix_json_str(r, "identifier.0.value") : NULL;
    bool shown = value && strcmp(value, "1350049871") == 0;
    json_decref(r);
    return shown;
}

/* Whether the territory shows the commune renamed by the test. */
static bool knows_the_new_name(void *arg)
{
    struct token_use *u = arg;
    json_t *r = fix_api_port(u->port, "GET", "/api/v1/territory", u->secret, NULL, &u->last);
    char *text = json_dumps(r, 0);
    bool renamed = text && strstr(text, "Redon (35)");
    free(text);
    json_decref(r);
    return renamed;
}

/* A session that keeps calling until a call fails. */
struct busy_session {
    struct snpclient_ws *ws;
    int rc;     /* of the last call */
    char *resp; /* its answer, or NULL */
};

static bool call_fails(void *arg)
{
    struct busy_session *b = arg;
    free(b->resp);
    b->resp = NULL;
    b->rc = snpclient_ws_call(b->ws, "territory.get", NULL, ANSWER_MS, &b->resp);
    return b->rc != 0;
}

/* What a raw connection received, read until it holds `until`. */
struct reply {
    int fd;
    char *out; /* NUL-terminated */
    size_t size;
    size_t got;
    const char *until;
};

static bool reply_holds(void *arg)
{
    struct reply *r = arg;
    ssize_t n;
    while (r->got < r->size - 1 &&
           (n = recv(r->fd, r->out + r->got, r->size - 1 - r->got, MSG_DONTWAIT)) > 0) {
        r->got += (size_t)n;
        r->out[r->got] = '\0';
    }
    return strstr(r->out, r->until) != NULL;
}

/* The operator's command goes through the same audited functions as
 * token.create and token.revoke, and is checked as they are. */
Test(manage, snpd_token_commands_are_checked_and_audited)
{
    fixture_start(&f);
    char secret[128], args[256];
    /* A practitioner of no practice here, an organisation of another kind. */
    cr_expect_neq(snpd_token("create --role gp --territory " FIX_TERRITORY
                             " --practitioner 10999900045", secret, sizeof(secret)),
                  0);
    cr_expect_neq(snpd_token("create --role pharmacy --territory " FIX_TERRITORY
                             " --organisation 999999", secret, sizeof(secret)),
                  0);
    cr_expect_neq(snpd_token("create --role coordinator --territory " FIX_TERRITORY
                             " --site 1", secret, sizeof(secret)),
                  0, "only reception tokens name a site");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'token.create'"
                                    " AND actor LIKE 'cli:%'"),
                 0);
    snprintf(args, sizeof(args),
             "create --role reception --territory " FIX_TERRITORY
             " --site %lld --label cli-accueil --expires-days 30",
             (long long)f.site_csnp);
    cr_assert_eq(snpd_token(args, secret, sizeof(secret)), 0);
    cr_assert(strncmp(secret, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0, "%s", secret);
    int st;
    json_t *r = fix_api_port(f.snpd.port, "GET", "/api/v1/shifts?from=2026-01-01&to=2026-01-02",
                             secret, NULL, &st);
    cr_expect_eq(st, 200, "the new reception token is refused: %d", st);
    json_decref(r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'token.create'"
                                    " AND actor LIKE 'cli:%' AND role = 'admin'"),
                 1);
    /* Listed with its role, territory, state and expiry (token_list.sql's
     * columns, read by name). */
    char list[8192];
    cr_assert_eq(snpd_token("list --territory " FIX_TERRITORY, list, sizeof(list)), 0);
    cr_expect(strncmp(list, "id ", 3) == 0, "%s", list);
    char *label = strstr(list, " cli-accueil");
    cr_assert_not_null(label, "%s", list);
    *label = '\0';
    const char *line = strrchr(list, '\n');
    line = line ? line + 1 : list;
    /* The label was cut off: the line ends with the expiry. */
    cr_expect(strstr(line, " reception ") && strstr(line, " " FIX_TERRITORY " ") &&
                  strstr(line, " active ") && line[strlen(line) - 1] == 'Z',
              "%s", line);
    char revoked[64];
    cr_assert_eq(snpd_token("revoke --label cli-accueil", revoked, sizeof(revoked)), 0);
    cr_expect(strncmp(revoked, "revoked ", 8) == 0, "%s", revoked);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'token.revoke'"
                                    " AND actor LIKE 'cli:%'"),
                 1);
    cr_expect_eq(snpd_token("revoke --label cli-accueil", revoked, sizeof(revoked)), 0);
    cr_expect_str_empty(revoked, "nothing was left to revoke");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'token.revoke'"),
                 1);
    /* Refused from now on (the cache learns it through the notification). */
    struct token_use use = {.port = f.snpd.port,
                            .path = "/api/v1/shifts?from=2026-01-01&to=2026-01-02",
                            .secret = secret,
                            .status = 401};
    cr_expect(wait_until(answers_status, &use, 10000), "the revoked token is still accepted");
}

/* The operator sets what the SAS platform needs: the FINESS (the running
 * snpd shows it as the CPTS's Organization at once) and the platform's URL;
 * checked first, audited. */
Test(manage, snpd_territory_set_gives_the_platform_its_finess_and_url)
{
    fixture_start(&f);
    char platform[48], out[256];
    fix_add_token(&f, "platform", FIX_TERRITORY, NULL, 0, 0, false, platform);
    int st;
    json_t *r =
        fix_api_port(f.snpd.port, "GET", "/fhir/Organization/" FIX_TERRITORY, platform, NULL, &st);
    cr_expect_eq(st, 404, "an Organization without FINESS");
    json_decref(r);
    cr_expect_eq(snpd_run("territory set --id " FIX_TERRITORY " --finess 12345", out, sizeof(out)),
                 2);
    cr_expect_eq(snpd_run("territory set --id " FIX_TERRITORY
                          " --sas-platform-url https://p.example/fhir/",
                          out, sizeof(out)),
                 2, "a trailing slash");
    cr_expect_eq(snpd_run("territory set --id nowhere --finess 350049871", out, sizeof(out)), 1);
    cr_assert_eq(snpd_run("territory set --id " FIX_TERRITORY " --finess 350049871"
                          " --sas-platform-url https://p.example/fhir",
                          out, sizeof(out)),
                 0);
    cr_expect(strstr(out, "FINESS 350049871") && strstr(out, "https://p.example/fhir"), "%s", out);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory WHERE id = '" FIX_TERRITORY
                                    "' AND finess = '350049871'"
                                    " AND sas_platform_url = 'https://p.example/fhir'"),
                 1);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'territory.set'"
                                    " AND actor LIKE 'cli:%'"),
                 1);
    struct token_use use = {.port = f.snpd.port, .secret = platform};
    cr_expect(wait_until(shows_the_finess, &use, 10000),
              "the running snpd did not learn the FINESS");
    /* none removes the URL, the FINESS stays. */
    cr_assert_eq(
        snpd_run("territory set --id " FIX_TERRITORY " --sas-platform-url none", out, sizeof(out)),
        0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory WHERE id = '" FIX_TERRITORY
                                    "' AND finess = '350049871' AND sas_platform_url IS NULL"),
                 1);
}

Test(manage, a_revoked_token_closes_its_websockets)
{
    fixture_start(&f);
    int st;
    char body[96];
    snprintf(body, sizeof(body), "{\"role\": \"pharmacy\", \"organisation_id\": %lld}",
             (long long)f.pharmacy_id);
    json_t *created = token_create(admin, body, &st);
    cr_assert_eq(st, 201);
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    char err[200];
    struct snpclient_ws *w =
        snpclient_ws_open(cl, NULL, secret_of(created), ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    char *resp = NULL;
    cr_assert_eq(
        snpclient_ws_call(w, "subscribe", "{\"topics\": [\"requests\"]}", ANSWER_MS, &resp), 0,
        "%s", resp ? resp : "");
    free(resp);
    /* An admin on another connection revoking its own token gets its
     * answer before that connection closes too. */
    struct snpclient_ws *mine = snpclient_ws_open(cl, NULL, admin, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(mine, "%s", err);
    json_t *r = revoke_token(f.snpd.port, admin, id_of(created), &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    /* Whatever was queued may still arrive; then the close, 1008. */
    char *text = NULL;
    int rc;
    while ((rc = snpclient_ws_recv(w, ANSWER_MS, &text)) == 0)
        free(text);
    cr_assert_eq(rc, SNPCLIENT_ECLOSED, "still open after the revocation (%s)",
                 snpclient_strerror(rc));
    cr_assert_eq(snpclient_ws_close_code(w), 1008, "closed with %d (%s)",
                 snpclient_ws_close_code(w), snpclient_ws_close_reason(w));
    cr_assert_str_eq(snpclient_ws_close_reason(w), "token revoked");
    snpclient_ws_close(w);

    long admin_id = pgtest_long(&f.pg, "SELECT min(id) FROM api_token WHERE role = 'admin'");
    char data[64];
    snprintf(data, sizeof(data), "{\"token_id\": %ld}", admin_id);
    rc = snpclient_ws_call(mine, "token.revoke", data, ANSWER_MS, &resp);
    cr_assert_eq(rc, 0, "revoking one's own token: %s", resp ? resp : snpclient_strerror(rc));
    free(resp);
    while ((rc = snpclient_ws_recv(mine, ANSWER_MS, &text)) == 0)
        free(text);
    cr_assert_eq(rc, SNPCLIENT_ECLOSED);
    cr_assert_eq(snpclient_ws_close_code(mine), 1008);
    snpclient_ws_close(mine);
    snpclient_free(cl);
    json_decref(created);
}

Test(manage, a_session_ends_when_its_token_expires)
{
    fixture_start(&f);
    char secret[TOKEN_SECRET_SIZE];
    add_token("coordinator", FIX_TERRITORY, 2, secret);
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    char err[200];
    /* Two sessions of the token: one keeps calling, one stays silent. */
    struct snpclient_ws *busy = snpclient_ws_open(cl, NULL, secret, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(busy, "%s", err);
    struct snpclient_ws *quiet = snpclient_ws_open(cl, NULL, secret, ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(quiet, "%s", err);
    struct busy_session b = {.ws = busy};
    bool ended = wait_until(call_fails, &b, 10000);
    (void)ended; /* the error is checked */
    char *resp = b.resp;
    int rc = b.rc;
    /* The call after the expiry is answered token_expired, then the
     * connection is closed with 1008; or, when the periodic check (every
     * second) comes first, the connection is closed before the call. */
    cr_assert(rc == SNPCLIENT_ESERVER || rc == SNPCLIENT_ECLOSED,
              "the session outlived its token (%s)", snpclient_strerror(rc));
    if (rc == SNPCLIENT_ESERVER)
        cr_assert_not_null(strstr(resp, "\"token_expired\""), "%s", resp);
    free(resp);
    char *text = NULL;
    while ((rc = snpclient_ws_recv(busy, ANSWER_MS, &text)) == 0)
        free(text);
    cr_assert_eq(rc, SNPCLIENT_ECLOSED);
    cr_assert_eq(snpclient_ws_close_code(busy), 1008);
    cr_assert_str_eq(snpclient_ws_close_reason(busy), "token expired");
    /* The silent one is closed by the periodic check. */
    while ((rc = snpclient_ws_recv(quiet, 10000, &text)) == 0)
        free(text);
    cr_assert_eq(rc, SNPCLIENT_ECLOSED, "the silent session was not closed (%s)",
                 snpclient_strerror(rc));
    cr_assert_eq(snpclient_ws_close_code(quiet), 1008);
    cr_assert_str_eq(snpclient_ws_close_reason(quiet), "token expired");
    snpclient_ws_close(busy);
    snpclient_ws_close(quiet);
    snpclient_free(cl);
}

/* A connection that only receives pushes is pinged and stays open past the
 * idle timeout (4 s here instead of 120): its client's pongs count. */
Test(manage, a_silent_websocket_is_pinged_and_kept)
{
    setenv("SNPD_WS_IDLE_TIMEOUT_S", "4", 1);
    fixture_start(&f);
    unsetenv("SNPD_WS_IDLE_TIMEOUT_S");
    struct snpclient *cl = snpclient_new("127.0.0.1", f.snpd.port, false);
    cr_assert_not_null(cl);
    char err[200];
    struct snpclient_ws *w =
        snpclient_ws_open(cl, NULL, f.token[FIX_SAS], ANSWER_MS, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    char *resp = NULL;
    cr_assert_eq(
        snpclient_ws_call(w, "subscribe", "{\"topics\": [\"capacity\"]}", ANSWER_MS, &resp), 0,
        "%s", resp ? resp : "");
    free(resp);
    /* Eight seconds of silence from the client: twice the idle timeout. */
    char *text = NULL;
    int rc = snpclient_ws_recv(w, 8000, &text);
    free(text);
    cr_assert_eq(rc, SNPCLIENT_ETIMEDOUT, "the connection ended (%s, close %d %s)",
                 snpclient_strerror(rc), snpclient_ws_close_code(w), snpclient_ws_close_reason(w));
    resp = NULL;
    rc = snpclient_ws_call(w, "territory.get", NULL, ANSWER_MS, &resp);
    cr_assert_eq(rc, 0, "%s (%s, close %d %s)", resp ? resp : "", snpclient_strerror(rc),
                 snpclient_ws_close_code(w), snpclient_ws_close_reason(w));
    free(resp);
    snpclient_ws_close(w);
    snpclient_free(cl);
}

/* --- several processes ------------------------------------------------------------ */

Test(manage, another_process_learns_imports_and_revocations)
{
    fixture_start(&f);
    struct snpd_proc second;
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    int st;
    json_t *r = import_as(admin, import_body, &st);
    cr_assert_eq(st, 200);
    json_int_t site = json_integer_value(
        json_object_get(json_array_get(json_object_get(r, "sites"), 0), "site_id"));
    json_decref(r);
    json_t *gp = token_create(admin, "{\"role\": \"gp\", \"rpps\": \"10999900045\"}", &st);
    cr_assert_eq(st, 201);

    /* The second process hears of the new site (NOTIFY) and publishes there. */
    char *body = publish_body(site);
    struct token_use use = {.port = second.port,
                            .method = "POST",
                            .path = "/api/v1/slots",
                            .secret = secret_of(gp),
                            .body = body,
                            .status = 201};
    bool published = wait_until(answers_status, &use, 10000);
    st = use.last;
    free(body);
    cr_assert(published, "the second process does not know the imported site (HTTP %d)", st);

    /* A change made with SQL reaches it too. */
    PQclear(pgtest_exec(&f.pg, "UPDATE commune SET name = 'Redon (35)' WHERE insee = '35236'"));
    use = (struct token_use){.port = second.port, .secret = admin};
    cr_assert(wait_until(knows_the_new_name, &use, 10000),
              "the second process kept the old commune name");

    /* The second process has the gp token in its cache; a revocation
     * through the first refuses it there long before the cache expires. */
    r = fix_api_port(second.port, "GET", "/api/v1/territory", secret_of(gp), NULL, &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    r = revoke_token(f.snpd.port, admin, id_of(gp), &st);
    cr_assert_eq(st, 200);
    json_decref(r);
    use = (struct token_use){
        .port = second.port, .path = "/api/v1/territory", .secret = secret_of(gp), .status = 401};
    cr_assert(wait_until(answers_status, &use, 10000),
              "the second process still accepts the revoked token");
    json_decref(gp);
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0);
}

/* --- HTTP details ----------------------------------------------------------------- */

Test(manage, a_post_without_a_body_is_served_and_a_chunked_one_refused)
{
    fixture_start(&f);
    char secret[TOKEN_SECRET_SIZE];
    long id = add_token("coordinator", FIX_TERRITORY, 0, secret);
    /* No Content-Length, no body: as `curl -X POST` sends it. */
    char raw[512], out[4096] = "";
    int n = snprintf(raw, sizeof(raw),
                     "POST /api/v1/tokens/%ld/revoke HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                     id, admin);
    /* (lws keeps the connection open despite "Connection: close": read
     * until the body is complete rather than until the close.) */
    int fd = http_connect(f.snpd.port);
    cr_assert_geq(fd, 0);
    cr_assert_eq(send(fd, raw, (size_t)n, MSG_NOSIGNAL), n);
    struct reply reply = {.fd = fd, .out = out, .size = sizeof(out), .until = "\"revoked\""};
    bool whole = wait_until(reply_holds, &reply, 5000);
    (void)whole; /* the reply is checked */
    close(fd);
    cr_assert(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
    cr_assert_not_null(strstr(out, "\"revoked\""), "%s", out);
    /* A chunked body cannot be read by lws 4.1: a clear 411, then close. */
    n = snprintf(raw, sizeof(raw),
                 "PATCH /api/v1/territory/settings HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "14\r\n{\"hold_seconds\": 60}\r\n0\r\n\r\n",
                 admin);
    cr_assert_gt(http_raw(f.snpd.port, raw, (size_t)n, out, sizeof(out)), 0);
    cr_assert(strncmp(out, "HTTP/1.1 411", 12) == 0, "%s", out);
    cr_assert_not_null(strstr(out, "Content-Length"), "%s", out);
    cr_assert_eq(pgtest_long(&f.pg, "SELECT (settings ? 'hold_seconds')::int FROM territory "
                                    "WHERE id = 'test-t'"),
                 0);
}
