#include "dispatcher/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1");
    cfg->port = 8080;
    cfg->log_format = LOG_FORMAT_HUMAN;
    cfg->log_level = LOG_INFO;
    snprintf(cfg->web_root, sizeof(cfg->web_root), "clients/web");
    cfg->db_connections = 4;
    cfg->max_connections = 20000;
    cfg->max_per_address = 12000;
    cfg->shutdown_grace_ms = 5000;
    cfg->ws_idle_timeout_s = 120; /* the protocol's idle_timeout_s */
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
    if (strcmp(key, "db_connections") == 0)
        return set_int(&cfg->db_connections, key, value, 1, 64, err, errlen);
    if (strcmp(key, "max_connections") == 0)
        return set_int(&cfg->max_connections, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "max_per_address") == 0)
        return set_int(&cfg->max_per_address, key, value, 1, 1000000, err, errlen);
    if (strcmp(key, "shutdown_grace_ms") == 0)
        return set_int(&cfg->shutdown_grace_ms, key, value, 0, 600000, err, errlen);
    if (strcmp(key, "ws_idle_timeout_s") == 0)
        return set_int(&cfg->ws_idle_timeout_s, key, value, 4, 120, err, errlen);
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
    {"SNPD_MAX_CONNECTIONS", "max_connections"},
    {"SNPD_MAX_PER_ADDRESS", "max_per_address"},
    {"SNPD_WS_IDLE_TIMEOUT_S", "ws_idle_timeout_s"},
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

bool config_check(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->database[0] == '\0') {
        snprintf(err, errlen,
                 "no database configured: set \"database\" in the config file, "
                 "SNPD_DATABASE_URL or --database");
        return false;
    }
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        snprintf(err, errlen, "tls_cert and tls_key go together: set both or neither");
        return false;
    }
    if (cfg->max_per_address > cfg->max_connections) {
        snprintf(err, errlen, "max_per_address (%d) exceeds max_connections (%d)",
                 cfg->max_per_address, cfg->max_connections);
        return false;
    }
    return true;
}
