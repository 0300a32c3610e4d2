#include "dispatcher/config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1");
    cfg->port = 8080;
    cfg->log_format = LOG_FORMAT_HUMAN;
    cfg->log_level = LOG_INFO;
    snprintf(cfg->web_root, sizeof(cfg->web_root), "clients/web");
    cfg->db_connections = 4;
    cfg->db_group_max = 16;
    cfg->load_batch = 50000; /* STORE_LOAD_BATCH of dispatcher/core/store.h */
    cfg->max_connections = 20000;
    /* The protocol's figures come from its declaration; if the embedded
     * declaration cannot be read they stay 0 and config_check says so. */
    if (snp_proto_init() == 0) {
        cfg->max_per_address = snp_proto_limits()->max_connections_per_address;
        cfg->body_timeout_s = snp_proto_limits()->message_timeout_s;
    }
    cfg->shutdown_grace_ms = 5000;
    cfg->ws_idle_timeout_s = 120; /* the protocol's idle_timeout_s */
    cfg->max_unfinished_kb = 32 * 1024;
    cfg->auth_cache_entries = 10000;
    cfg->auth_failures_burst = 20;
    cfg->auth_failures_per_min = 60;
    snprintf(cfg->metrics_allow, sizeof(cfg->metrics_allow), "127.0.0.0/8");
    cfg->sas_push_timeout_ms = 10000;
    cfg->sas_push_retry_max_s = 300;
    cfg->sas_push_dead_after_s = 86400;
    cfg->sas_push_poll_ms = 1000;
    cfg->sas_push_max_in_flight = 8;
    cfg->message_sender = MESSAGE_SENDER_FILE;
    snprintf(cfg->message_file, sizeof(cfg->message_file), "/var/lib/snpd/messages.jsonl");
    cfg->message_timeout_ms = 10000;
    cfg->message_retry_max_s = 300;
    cfg->message_dead_after_s = 6 * 3600;
    cfg->message_poll_ms = 1000;
    cfg->outbox_retention_days = 30;
}

/* Parses one "a.b.c.d" or "a.b.c.d/n" of `n` bytes into a network and a
 * mask, in host order. */
static bool parse_network(const char *s, size_t n, uint32_t *net, uint32_t *mask)
{
    char text[32];
    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    int bits = 32;
    char *slash = strchr(text, '/');
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || b < 0 || b > 32)
            return false;
        bits = (int)b;
        *slash = '\0';
    }
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1)
        return false;
    *mask = bits == 0 ? 0 : ~(uint32_t)0 << (32 - bits);
    *net = ntohl(a.s_addr) & *mask;
    return true;
}

/* Whether every item of the comma-separated list is an address or a network.
 * An empty list is valid and holds nothing. */
static bool address_list_valid(const char *list)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        uint32_t net, mask;
        if (n > 0 && !parse_network(p, n, &net, &mask))
            return false;
        p += n;
    }
    return true;
}

bool config_address_allowed(const char *list, uint32_t addr)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        uint32_t net, mask;
        if (n > 0 && parse_network(p, n, &net, &mask) && (addr & mask) == net)
            return true;
        p += n;
    }
    return false;
}

static bool set_string(char *dst, size_t size, const char *key, const char *value, char *err,
                       size_t errlen)
{
    size_t n = strlen(value);
    if (n >= size) {
        snprintf(err, errlen, "%s: value too long (%zu bytes, at most %zu)", key, n, size - 1);
        return false;
    }
    memcpy(dst, value, n + 1);
    return true;
}

static bool set_int(int *dst, const char *key, const char *value, long min, long max, char *err,
                    size_t errlen)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
        snprintf(err, errlen, "%s: expected a whole number from %ld to %ld, got \"%s\"", key, min,
                 max, value);
        return false;
    }
    *dst = (int)v;
    return true;
}

bool config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    if (strcmp(key, "database") == 0)
        return set_string(cfg->database, sizeof(cfg->database), key, value, err, errlen);
    if (strcmp(key, "listen") == 0)
        return set_string(cfg->listen, sizeof(cfg->listen), key, value, err, errlen);
    if (strcmp(key, "port") == 0)
        return set_int(&cfg->port, key, value, 0, 65535, err, errlen);
    if (strcmp(key, "web_root") == 0)
        return set_string(cfg->web_root, sizeof(cfg->web_root), key, value, err, errlen);
    if (strcmp(key, "tls_cert") == 0)
        return set_string(cfg->tls_cert, sizeof(cfg->tls_cert), key, value, err, errlen);
    if (strcmp(key, "tls_key") == 0)
        return set_string(cfg->tls_key, sizeof(cfg->tls_key), key, value, err, errlen);
    if (strcmp(key, "tls_client_ca") == 0)
        return set_string(cfg->tls_client_ca, sizeof(cfg->tls_client_ca), key, value, err, errlen);
    if (strcmp(key, "db_connections") == 0)
        return set_int(&cfg->db_connections, key, value, 1, 64, err, errlen);
    if (strcmp(key, "db_group_max") == 0)
        return set_int(&cfg->db_group_max, key, value, 1, 256, err, errlen);
    if (strcmp(key, "load_batch") == 0)
        return set_int(&cfg->load_batch, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "max_connections") == 0)
        return set_int(&cfg->max_connections, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "max_per_address") == 0)
        return set_int(&cfg->max_per_address, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "shutdown_grace_ms") == 0)
        return set_int(&cfg->shutdown_grace_ms, key, value, 0, 600000, err, errlen);
    if (strcmp(key, "ws_idle_timeout_s") == 0)
        return set_int(&cfg->ws_idle_timeout_s, key, value, 4, 120, err, errlen);
    if (strcmp(key, "body_timeout_s") == 0)
        return set_int(&cfg->body_timeout_s, key, value, 1, 600, err, errlen);
    if (strcmp(key, "max_unfinished_kb") == 0)
        return set_int(&cfg->max_unfinished_kb, key, value, 64, 4 * 1024 * 1024, err, errlen);
    if (strcmp(key, "auth_cache_entries") == 0)
        return set_int(&cfg->auth_cache_entries, key, value, 16, 1000000, err, errlen);
    if (strcmp(key, "auth_failures_burst") == 0)
        return set_int(&cfg->auth_failures_burst, key, value, 1, 100000, err, errlen);
    if (strcmp(key, "auth_failures_per_min") == 0)
        return set_int(&cfg->auth_failures_per_min, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "metrics_allow") == 0) {
        if (!address_list_valid(value)) {
            snprintf(err, errlen,
                     "metrics_allow: expected addresses or networks such as "
                     "\"127.0.0.0/8, 10.1.2.3\", got \"%s\"",
                     value);
            return false;
        }
        return set_string(cfg->metrics_allow, sizeof(cfg->metrics_allow), key, value, err, errlen);
    }
    if (strcmp(key, "message_sender") == 0) {
        static const char *const names[] = {"file", "http", "none"};
        for (int i = 0; i < 3; i++) {
            if (strcmp(value, names[i]) == 0) {
                cfg->message_sender = (enum message_sender)i;
                return true;
            }
        }
        snprintf(err, errlen, "message_sender: expected file, http or none, got \"%s\"", value);
        return false;
    }
    if (strcmp(key, "message_file") == 0)
        return set_string(cfg->message_file, sizeof(cfg->message_file), key, value, err, errlen);
    if (strcmp(key, "message_gateway_url") == 0) {
        if (value[0] != '\0' && strncmp(value, "http://", 7) != 0 &&
            strncmp(value, "https://", 8) != 0) {
            snprintf(err, errlen, "message_gateway_url: expected an http:// or https:// URL");
            return false;
        }
        return set_string(cfg->message_gateway_url, sizeof(cfg->message_gateway_url), key, value,
                          err, errlen);
    }
    if (strcmp(key, "message_gateway_token") == 0)
        return set_string(cfg->message_gateway_token, sizeof(cfg->message_gateway_token), key,
                          value, err, errlen);
    if (strcmp(key, "message_timeout_ms") == 0)
        return set_int(&cfg->message_timeout_ms, key, value, 100, 120000, err, errlen);
    if (strcmp(key, "message_retry_max_s") == 0)
        return set_int(&cfg->message_retry_max_s, key, value, 1, 86400, err, errlen);
    if (strcmp(key, "message_dead_after_s") == 0)
        return set_int(&cfg->message_dead_after_s, key, value, 0, 30 * 86400, err, errlen);
    if (strcmp(key, "outbox_retention_days") == 0)
        return set_int(&cfg->outbox_retention_days, key, value, 1, 3650, err, errlen);
    if (strcmp(key, "message_poll_ms") == 0)
        return set_int(&cfg->message_poll_ms, key, value, 50, 60000, err, errlen);
    if (strcmp(key, "sas_push_timeout_ms") == 0)
        return set_int(&cfg->sas_push_timeout_ms, key, value, 100, 120000, err, errlen);
    if (strcmp(key, "sas_push_retry_max_s") == 0)
        return set_int(&cfg->sas_push_retry_max_s, key, value, 1, 86400, err, errlen);
    if (strcmp(key, "sas_push_dead_after_s") == 0)
        return set_int(&cfg->sas_push_dead_after_s, key, value, 0, 30 * 86400, err, errlen);
    if (strcmp(key, "sas_push_poll_ms") == 0)
        return set_int(&cfg->sas_push_poll_ms, key, value, 50, 60000, err, errlen);
    if (strcmp(key, "sas_push_max_in_flight") == 0)
        return set_int(&cfg->sas_push_max_in_flight, key, value, 1, 256, err, errlen);
    if (strcmp(key, "metrics_token") == 0)
        return set_string(cfg->metrics_token, sizeof(cfg->metrics_token), key, value, err, errlen);
    if (strcmp(key, "public_url") == 0) {
        /* Used in the FHIR answers' addresses (docs/fhir.md): a scheme and a
         * host, without a trailing slash or a query. */
        size_t n = strlen(value);
        bool ok = (strncmp(value, "https://", 8) == 0 || strncmp(value, "http://", 7) == 0) &&
                  n > 8 && value[n - 1] != '/' && !strpbrk(value, "?#\"<> ");
        if (n > 0 && !ok) {
            snprintf(err, errlen,
                     "public_url: expected an address such as \"https://snp.example.fr\" "
                     "(no trailing slash), got \"%s\"",
                     value);
            return false;
        }
        return set_string(cfg->public_url, sizeof(cfg->public_url), key, value, err, errlen);
    }
    if (strcmp(key, "log_format") == 0) {
        if (log_format_parse(value, &cfg->log_format))
            return true;
        snprintf(err, errlen, "log_format: expected \"human\" or \"json\", got \"%s\"", value);
        return false;
    }
    if (strcmp(key, "log_level") == 0) {
        if (log_level_parse(value, &cfg->log_level))
            return true;
        snprintf(err, errlen, "log_level: expected debug, info, warn or error, got \"%s\"", value);
        return false;
    }
    snprintf(err, errlen, "unknown setting \"%s\"", key);
    return false;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

bool config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    char inner[512];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            ok = false;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected \"key = value\"", path, lineno);
            ok = false;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        } else {
            /* An unquoted value ends at a comment. */
            char *hash = strchr(value, '#');
            if (hash) {
                *hash = '\0';
                value = trim(value);
            }
        }
        if (!config_set(cfg, key, value, inner, sizeof(inner))) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, inner);
            ok = false;
        }
    }
    fclose(f);
    return ok;
}

/* Environment variable name → configuration key. */
static const struct {
    const char *env;
    const char *key;
} env_keys[] = {
    {"SNPD_DATABASE_URL", "database"},
    {"SNPD_LISTEN", "listen"},
    {"SNPD_PORT", "port"},
    {"SNPD_LOG_FORMAT", "log_format"},
    {"SNPD_LOG_LEVEL", "log_level"},
    {"SNPD_WEB_ROOT", "web_root"},
    {"SNPD_TLS_CERT", "tls_cert"},
    {"SNPD_TLS_KEY", "tls_key"},
    {"SNPD_DB_CONNECTIONS", "db_connections"},
    {"SNPD_DB_GROUP_MAX", "db_group_max"},
    {"SNPD_LOAD_BATCH", "load_batch"},
    {"SNPD_MAX_CONNECTIONS", "max_connections"},
    {"SNPD_MAX_PER_ADDRESS", "max_per_address"},
    {"SNPD_WS_IDLE_TIMEOUT_S", "ws_idle_timeout_s"},
    {"SNPD_BODY_TIMEOUT_S", "body_timeout_s"},
    {"SNPD_MAX_UNFINISHED_KB", "max_unfinished_kb"},
    {"SNPD_AUTH_CACHE_ENTRIES", "auth_cache_entries"},
    {"SNPD_AUTH_FAILURES_BURST", "auth_failures_burst"},
    {"SNPD_AUTH_FAILURES_PER_MIN", "auth_failures_per_min"},
    {"SNPD_METRICS_ALLOW", "metrics_allow"},
    {"SNPD_METRICS_TOKEN", "metrics_token"},
    {"SNPD_PUBLIC_URL", "public_url"},
    {"SNPD_SAS_PUSH_TIMEOUT_MS", "sas_push_timeout_ms"},
    {"SNPD_SAS_PUSH_RETRY_MAX_S", "sas_push_retry_max_s"},
    {"SNPD_SAS_PUSH_DEAD_AFTER_S", "sas_push_dead_after_s"},
    {"SNPD_SAS_PUSH_POLL_MS", "sas_push_poll_ms"},
    {"SNPD_SAS_PUSH_MAX_IN_FLIGHT", "sas_push_max_in_flight"},
    {"SNPD_TLS_CLIENT_CA", "tls_client_ca"},
    {"SNPD_MESSAGE_SENDER", "message_sender"},
    {"SNPD_MESSAGE_FILE", "message_file"},
    {"SNPD_MESSAGE_GATEWAY_URL", "message_gateway_url"},
    {"SNPD_MESSAGE_GATEWAY_TOKEN", "message_gateway_token"},
    {"SNPD_MESSAGE_TIMEOUT_MS", "message_timeout_ms"},
    {"SNPD_MESSAGE_RETRY_MAX_S", "message_retry_max_s"},
    {"SNPD_MESSAGE_DEAD_AFTER_S", "message_dead_after_s"},
    {"SNPD_MESSAGE_POLL_MS", "message_poll_ms"},
    {"SNPD_OUTBOX_RETENTION_DAYS", "outbox_retention_days"},
};

bool config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
{
    char inner[512];
    for (char *const *e = envp; e && *e; e++) {
        for (size_t i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++) {
            size_t n = strlen(env_keys[i].env);
            if (strncmp(*e, env_keys[i].env, n) != 0 || (*e)[n] != '=')
                continue;
            if (!config_set(cfg, env_keys[i].key, *e + n + 1, inner, sizeof(inner))) {
                snprintf(err, errlen, "%s: %s", env_keys[i].env, inner);
                return false;
            }
        }
    }
    return true;
}

bool config_check_database(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->database[0] == '\0') {
        snprintf(err, errlen,
                 "no database configured: set \"database\" in the config file, "
                 "SNPD_DATABASE_URL or --database");
        return false;
    }
    return true;
}

bool config_check(const struct config *cfg, char *err, size_t errlen)
{
    return config_check_database(cfg, err, errlen) && config_check_values(cfg, err, errlen);
}

bool config_check_values(const struct config *cfg, char *err, size_t errlen)
{
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        snprintf(err, errlen, "tls_cert and tls_key go together: set both or neither");
        return false;
    }
    if (cfg->max_per_address == 0 || cfg->body_timeout_s == 0) {
        snprintf(err, errlen, "the embedded protocol description cannot be read");
        return false;
    }
    if (cfg->tls_client_ca[0] && !cfg->tls_cert[0]) {
        snprintf(err, errlen,
                 "tls_client_ca needs tls_cert and tls_key: client certificates "
                 "come only over TLS");
        return false;
    }
    if (cfg->message_sender == MESSAGE_SENDER_HTTP && cfg->message_gateway_url[0] == '\0') {
        snprintf(err, errlen, "message_sender = http needs message_gateway_url");
        return false;
    }
    if (cfg->message_sender == MESSAGE_SENDER_FILE && cfg->message_file[0] == '\0') {
        snprintf(err, errlen, "message_sender = file needs message_file");
        return false;
    }
    if (cfg->max_per_address > cfg->max_connections) {
        snprintf(err, errlen, "max_per_address (%d) exceeds max_connections (%d)",
                 cfg->max_per_address, cfg->max_connections);
        return false;
    }
    return true;
}
