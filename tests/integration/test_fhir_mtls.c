/* The national SAS platform authenticated by its client certificate
 * (docs/fhir.md "Who may call it"): snpd over TLS with tls_client_ca, an
 * account made with `snpd token create --role platform --client-cert-cn`,
 * and real TLS clients (libcurl) presenting certificates made here with
 * Debian's openssl:
 *   - the platform's certificate (its CA, its common name) reads the FHIR
 *     search without any token;
 *   - no certificate, a certificate of the CA with another common name, or
 *     one with the right common name from another CA, reads nothing;
 *   - clients without certificates are still served (health, web);
 *   - revoking the account refuses the certificate at once.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/support/fixture.h"
#include "tests/support/wait.h"

#define PLATFORM_CN "plateforme-sas-test"

static struct fixture f;
static char dir[256];

/* Runs a shell command built like printf; fails the test unless it exits 0. */
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* A key and a certificate of common name `cn` signed by the CA `ca`. */
static void issue(const char *ca, const char *name, const char *cn)
{
    sh("cd '%s' && openssl req -newkey rsa:2048 -nodes -subj '/CN=%s' -keyout %s.key "
       "-out %s.csr >/dev/null 2>&1 && openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
       "-CAcreateserial -days 1 -out %s.pem >/dev/null 2>&1",
       dir, cn, name, name, name, ca, ca, name);
}

static size_t keep_body(char *data, size_t size, size_t n, void *arg)
{
    char **body = arg;
    size_t old = *body ? strlen(*body) : 0;
    char *grown = realloc(*body, old + size * n + 1);
    cr_assert_not_null(grown);
    memcpy(grown + old, data, size * n);
    grown[old + size * n] = '\0';
    *body = grown;
    return size * n;
}

/* GET `path` over TLS presenting the certificate `name` (NULL: none);
 * returns the status, 0 when the exchange failed (a refused handshake). */
static long get(const char *path, const char *name, char **body)
{
    char url[256], cert[300], key[300];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", f.snpd.port, path);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    *body = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); /* snpd's own certificate is self-signed */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    if (name) {
        snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", dir, name);
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static long get_status(const char *path, const char *name)
{
    char *body = NULL;
    long st = get(path, name, &body);
    free(body);
    return st;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/snpd-mtls-XXXXXX", proc_scratch_dir());
    cr_assert(mkdtemp(dir));
    /* snpd's certificate, the platform's CA and another CA. */
    sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
       "-keyout server.key -out server.pem >/dev/null 2>&1",
       dir);
    sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=CA plateforme' "
       "-keyout ca.key -out ca.pem >/dev/null 2>&1",
       dir);
    sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=CA autre' "
       "-keyout rogue-ca.key -out rogue-ca.pem >/dev/null 2>&1",
       dir);
    issue("ca", "platform", PLATFORM_CN);
    issue("ca", "stranger", "un-autre-client");
    issue("rogue-ca", "impostor", PLATFORM_CN);

    char path[300];
    snprintf(path, sizeof(path), "%s/server.pem", dir);
    setenv("SNPD_TLS_CERT", path, 1);
    snprintf(path, sizeof(path), "%s/server.key", dir);
    setenv("SNPD_TLS_KEY", path, 1);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    setenv("SNPD_TLS_CLIENT_CA", path, 1);
    fixture_setup(&f, "{}");
    snpd_proc_start(&f.snpd, f.pg.conninfo, NULL, false);
    unsetenv("SNPD_TLS_CERT");
    unsetenv("SNPD_TLS_KEY");
    unsetenv("SNPD_TLS_CLIENT_CA");
    long st = 0;
    bool ready;
    WAIT_UNTIL(ready, (st = get_status("/readyz", NULL)) == 200, 30000);
    cr_assert(ready, "snpd never became ready over TLS");
}

static void teardown(void)
{
    fixture_teardown(&f);
    sh("rm -rf '%s'", dir);
}

/* Runs `snpd token ...` on the fixture's database; returns its exit status. */
static int snpd_token(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --database '%s' token %s >/dev/null 2>&1",
             getenv("SNPD_BINARY"), f.pg.conninfo, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(fhir_mtls, the_platform_reads_with_its_certificate_and_nobody_else_does, .init = setup,
     .fini = teardown)
{
    char from[32], to[32], search[128];
    fix_iso_utc((int64_t)time(NULL), from);
    fix_iso_utc((int64_t)time(NULL) + 3 * 86400, to);
    snprintf(search, sizeof(search), "/fhir/Slot?start=ge%s&start=le%s&status=free", from, to);
    /* No account yet: the certificate alone opens nothing. */
    cr_expect_eq(get_status(search, "platform"), 401);
    cr_expect_eq(snpd_token("create --role gp --territory " FIX_TERRITORY " --practitioner " FIX_GP1
                            " --client-cert-cn " PLATFORM_CN),
                 2, "a certificate account for a role other than platform");
    cr_assert_eq(snpd_token("create --role platform --territory " FIX_TERRITORY
                            " --client-cert-cn " PLATFORM_CN " --label 'plateforme (certificat)'"),
                 0);
    cr_expect_neq(snpd_token("create --role platform --territory " FIX_TERRITORY
                             " --client-cert-cn " PLATFORM_CN),
                  0, "two accounts for one certificate");

    char *body = NULL;
    long st = get(search, "platform", &body);
    cr_expect_eq(st, 200, "the platform's certificate: %ld %s", st, body ? body : "");
    json_t *bundle = body ? json_loads(body, 0, NULL) : NULL;
    cr_expect_str_eq(fix_json_str(bundle, "resourceType"), "Bundle");
    json_decref(bundle);
    free(body);

    /* Anyone else reads nothing. */
    cr_expect_eq(get_status(search, NULL), 401, "no certificate, no token");
    cr_expect_eq(get_status(search, "stranger"), 401, "a certificate of the CA for someone else");
    long impostor = get_status(search, "impostor");
    cr_expect(impostor == 0 || impostor == 401,
              "the platform's name on another CA's certificate: %ld", impostor);
    /* Clients without a certificate are still served. */
    cr_expect_eq(get_status("/healthz", NULL), 200);
    cr_expect_eq(get_status("/fhir/metadata", NULL), 200);

    /* Revoked: refused at once (within the notification's way). */
    cr_assert_eq(snpd_token("revoke --label 'plateforme (certificat)'"), 0);
    bool refused;
    WAIT_UNTIL(refused, (st = get_status(search, "platform")) != 200, 10000);
    (void)refused; /* what answered is checked */
    cr_expect_eq(st, 401, "a revoked certificate account still reads");
}
