/* Configuration: defaults, file syntax, environment overrides, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dispatcher/config.h"
#include "protocol/codec.h"
#include "tests/support/proc.h"

static char err[1024];

static const char *write_file(const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/snpd-config-test-XXXXXX", proc_scratch_dir());
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(config, defaults)
{
    struct config c;
    config_defaults(&c);
    cr_assert_str_eq(c.listen, "127.0.0.1");
    cr_assert_eq(c.port, 8080);
    cr_assert_eq(c.log_format, LOG_FORMAT_HUMAN);
    cr_assert_eq(c.log_level, LOG_INFO);
    cr_assert_eq(c.db_connections, 4);
    cr_assert_str_eq(c.database, "");
    /* The protocol's figures come from its declaration. */
    cr_assert_eq(c.max_per_address, snp_proto_limits()->max_connections_per_address);
    cr_assert_eq(c.max_per_address, 32);
    cr_assert_eq(c.body_timeout_s, snp_proto_limits()->message_timeout_s);
    cr_assert_eq(c.max_unfinished_kb, 32 * 1024);
    cr_assert_str_eq(c.metrics_allow, "127.0.0.0/8");
    cr_assert_str_eq(c.metrics_token, "");
    /* No database configured is an error, with a message saying how to set it. */
    cr_assert_not(config_check(&c, err, sizeof(err)));
    cr_assert(strstr(err, "SNPD_DATABASE_URL"), "%s", err);
}

Test(config, file_syntax)
{
    const char *path = write_file("# a comment\n"
                                  "\n"
                                  "database = \"host=/tmp port=5 dbname=x # not a comment\"\n"
                                  "  port=9090   # trailing comment\n"
                                  "log_format = json\n"
                                  "log_level = debug\n"
                                  "listen = 0.0.0.0\n");
    struct config c;
    config_defaults(&c);
    cr_assert(config_load_file(&c, path, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(c.database, "host=/tmp port=5 dbname=x # not a comment");
    cr_assert_eq(c.port, 9090);
    cr_assert_eq(c.log_format, LOG_FORMAT_JSON);
    cr_assert_eq(c.log_level, LOG_DEBUG);
    cr_assert_str_eq(c.listen, "0.0.0.0");
    cr_assert(config_check(&c, err, sizeof(err)), "%s", err);
    unlink(path);
}

Test(config, file_errors_name_the_line)
{
    struct config c;
    config_defaults(&c);
    const char *path = write_file("port = 80\nbogus = 1\n");
    cr_assert_not(config_load_file(&c, path, err, sizeof(err)));
    cr_assert(strstr(err, ":2: unknown setting \"bogus\""), "%s", err);
    unlink(path);

    path = write_file("port = 70000\n");
    cr_assert_not(config_load_file(&c, path, err, sizeof(err)));
    cr_assert(strstr(err, ":1: port: expected a whole number from 0 to 65535"), "%s", err);
    unlink(path);

    path = write_file("port 80\n");
    cr_assert_not(config_load_file(&c, path, err, sizeof(err)));
    cr_assert(strstr(err, "expected \"key = value\""), "%s", err);
    unlink(path);

    path = write_file("log_format = xml\n");
    cr_assert_not(config_load_file(&c, path, err, sizeof(err)));
    cr_assert(strstr(err, "log_format"), "%s", err);
    unlink(path);

    cr_assert_not(config_load_file(&c, "/nonexistent/snpd.conf", err, sizeof(err)));
    cr_assert(strstr(err, "cannot open"), "%s", err);
}

Test(config, environment_overrides_file)
{
    struct config c;
    config_defaults(&c);
    const char *path = write_file("port = 9090\ndatabase = dbname=fromfile\n");
    cr_assert(config_load_file(&c, path, err, sizeof(err)));
    char *env[] = {"PATH=/bin",    "SNPD_PORT=9191",       "SNPD_DATABASE_URL=dbname=fromenv",
                   "SNPD_PORTX=1", "SNPD_LOG_FORMAT=json", NULL};
    cr_assert(config_load_env(&c, env, err, sizeof(err)), "%s", err);
    cr_assert_eq(c.port, 9191);
    cr_assert_str_eq(c.database, "dbname=fromenv");
    cr_assert_eq(c.log_format, LOG_FORMAT_JSON);
    unlink(path);

    char *bad[] = {"SNPD_DB_CONNECTIONS=0", NULL};
    cr_assert_not(config_load_env(&c, bad, err, sizeof(err)));
    cr_assert(strstr(err, "SNPD_DB_CONNECTIONS: db_connections"), "%s", err);
}

Test(config, combination_checks)
{
    struct config c;
    config_defaults(&c);
    cr_assert(config_set(&c, "database", "dbname=x", err, sizeof(err)));
    cr_assert(config_set(&c, "tls_cert", "/etc/cert.pem", err, sizeof(err)));
    cr_assert_not(config_check(&c, err, sizeof(err)));
    cr_assert(strstr(err, "tls_cert and tls_key"), "%s", err);
    cr_assert(config_set(&c, "tls_key", "/etc/key.pem", err, sizeof(err)));
    cr_assert(config_check(&c, err, sizeof(err)), "%s", err);
    /* Client certificates come only over TLS; an HTTP gateway needs its URL. */
    struct config plain;
    config_defaults(&plain);
    cr_assert(config_set(&plain, "database", "dbname=x", err, sizeof(err)));
    cr_assert(config_set(&plain, "tls_client_ca", "/etc/ca.pem", err, sizeof(err)));
    cr_assert_not(config_check(&plain, err, sizeof(err)));
    cr_assert(strstr(err, "tls_client_ca needs tls_cert"), "%s", err);
    cr_assert(config_set(&c, "tls_client_ca", "/etc/ca.pem", err, sizeof(err)));
    cr_assert(config_check(&c, err, sizeof(err)), "%s", err);
    cr_assert(config_set(&c, "message_sender", "http", err, sizeof(err)));
    cr_assert_not(config_check(&c, err, sizeof(err)));
    cr_assert(strstr(err, "message_gateway_url"), "%s", err);
    cr_assert_not(config_set(&c, "message_gateway_url", "ftp://x", err, sizeof(err)));
    cr_assert(config_set(&c, "message_gateway_url", "https://gw.example/v1", err, sizeof(err)));
    cr_assert(config_check(&c, err, sizeof(err)), "%s", err);
    cr_assert_not(config_set(&c, "message_sender", "pigeon", err, sizeof(err)));

    char longval[CONFIG_STR_MAX + 10];
    memset(longval, 'a', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    cr_assert_not(config_set(&c, "database", longval, err, sizeof(err)));
    cr_assert(strstr(err, "too long"), "%s", err);
}

Test(config, address_lists)
{
    struct config c;
    config_defaults(&c);
    cr_assert(config_address_allowed(c.metrics_allow, 0x7f000001)); /* 127.0.0.1 */
    cr_assert(config_address_allowed(c.metrics_allow, 0x7f0a0b0c)); /* 127.10.11.12 */
    cr_assert_not(config_address_allowed(c.metrics_allow, 0x0a000001));
    cr_assert(config_set(&c, "metrics_allow", "10.1.2.3, 192.168.0.0/16", err, sizeof(err)), "%s",
              err);
    cr_assert(config_address_allowed(c.metrics_allow, 0x0a010203));
    cr_assert_not(config_address_allowed(c.metrics_allow, 0x0a010204));
    cr_assert(config_address_allowed(c.metrics_allow, 0xc0a8fe01));
    cr_assert_not(config_address_allowed(c.metrics_allow, 0x7f000001));
    cr_assert(config_set(&c, "metrics_allow", "", err, sizeof(err)), "%s", err);
    cr_assert_not(config_address_allowed(c.metrics_allow, 0x7f000001));
    cr_assert(config_set(&c, "metrics_allow", "0.0.0.0/0", err, sizeof(err)), "%s", err);
    cr_assert(config_address_allowed(c.metrics_allow, 0x01020304));
    static const char *const bad[] = {"localhost", "10.0.0.0/33", "10.0.0/8", "1.2.3.4/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(config_set(&c, "metrics_allow", bad[i], err, sizeof(err)), "%s", bad[i]);
        cr_assert(strstr(err, "metrics_allow"), "%s", err);
    }
    cr_assert_not(config_set(&c, "body_timeout_s", "0", err, sizeof(err)));
    cr_assert_not(config_set(&c, "max_unfinished_kb", "1", err, sizeof(err)));
}

/* Runs `snpd ARGS` with an empty environment (no SNPD_CONFIG, no
 * SNPD_DATABASE_URL) and returns its exit status; its standard output and
 * error, together, in `out`. */
static int run_unconfigured(const char *args, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "env -i '%s' %s 2>&1", getenv("SNPD_BINARY"), args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "%s did not exit", cmd);
    return WEXITSTATUS(st);
}

/* A newcomer asks for help before anything is configured: the
 * administrative commands print their usage, and only what would connect
 * asks for a database. */
Test(config, subcommand_help_needs_no_configuration)
{
    static const struct {
        const char *args, *says;
    } help[] = {
        {"--help", "usage: snpd"},
        {"migrate --help", "usage: snpd"},
        {"token --help", "usage: snpd token create"},
        {"token create --help", "usage: snpd token create"},
        {"token list --help", "usage: snpd token create"},
        {"token revoke --help", "usage: snpd token create"},
        {"territory --help", "usage: snpd territory create"},
        {"territory create --help", "usage: snpd territory create"},
        {"indicators --help", "usage: snpd indicators"},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) {
        int st = run_unconfigured(help[i].args, out, sizeof(out));
        cr_expect_eq(st, 0, "snpd %s exited %d: %s", help[i].args, st, out);
        cr_expect(strstr(out, help[i].says), "snpd %s: \"%s\" not in %s", help[i].args,
                  help[i].says, out);
        cr_expect_null(strstr(out, "no database"), "snpd %s: %s", help[i].args, out);
    }
    static const char *const connect[] = {
        "migrate",
        "token list",
        "territory create --id t-x --name X --kind cpts",
        "indicators --territory t-x --month 2026-11",
    };
    for (size_t i = 0; i < sizeof(connect) / sizeof(connect[0]); i++) {
        int st = run_unconfigured(connect[i], out, sizeof(out));
        cr_expect_eq(st, 2, "snpd %s exited %d: %s", connect[i], st, out);
        cr_expect(strstr(out, "no database configured") && strstr(out, "SNPD_DATABASE_URL"),
                  "snpd %s: %s", connect[i], out);
    }
    /* The other checks need no database. */
    struct config c;
    config_defaults(&c);
    cr_assert(config_check_values(&c, err, sizeof(err)), "%s", err);
    cr_assert_not(config_check_database(&c, err, sizeof(err)));
}
