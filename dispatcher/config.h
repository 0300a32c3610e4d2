/* snpd's configuration: defaults, then a `key = value` file, then SNPD_*
 * environment variables, then command-line options, each overriding the one
 * before.  The keys are listed in README.md and deploy/snpd.conf.example.
 */
#ifndef SNP_CONFIG_H
#define SNP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "protocol/snp_decl.h"

#define CONFIG_STR_MAX 1024

/* Retention of audit rows when neither the territory (setting
 * audit_retention_months) nor the caller says otherwise: the declared default
 * of the territories' setting (core/store.c), also the protection job's
 * (jobs/protection.c). */
#define CONFIG_AUDIT_RETENTION_MONTHS                                                              \
    ((int)snp_setting_bounds(SNP_SETTING_AUDIT_RETENTION_MONTHS)->default_value)

struct config {
    char database[CONFIG_STR_MAX]; /* libpq connection string */
    char listen[256];              /* address the HTTP/WebSocket port binds to */
    int port;
    enum log_format log_format;
    enum log_level log_level;
    char web_root[CONFIG_STR_MAX]; /* static web client files */
    char tls_cert[CONFIG_STR_MAX]; /* empty: plain HTTP */
    char tls_key[CONFIG_STR_MAX];
    char tls_client_ca[CONFIG_STR_MAX]; /* CA of the FHIR platform's client certificates, or "" */
    int db_connections;        /* size of the connection pool */
    int db_group_max;          /* bookings committed together at most (db.h) */
    int load_batch;            /* live slots read per query at start-up (store.h) */
    int max_connections;       /* client connections accepted in all */
    int max_per_address;       /* client connections accepted per peer address */
    int shutdown_grace_ms;     /* how long in-flight writes may take at shutdown */
    int ws_idle_timeout_s;     /* a WebSocket silent this long is closed; pinged at half */
    int body_timeout_s;        /* an HTTP body or WebSocket message begun must end within this */
    int max_unfinished_kb;     /* memory held by unfinished messages in all, in KiB */
    int auth_cache_entries;    /* tokens kept by the authentication cache */
    int auth_failures_burst;   /* failed authentications an address may make at once */
    int auth_failures_per_min; /* and then per minute */
    char metrics_allow[256];   /* addresses (a.b.c.d or a.b.c.d/n, comma-separated) for /metrics */
    char metrics_token[128];   /* a bearer token that opens /metrics from anywhere, or "" */
    char public_url[256];      /* how others reach snpd, "https://host[:port]", or "" */
    /* The appointment push to the SAS platform (dispatcher/jobs/outbox.h). */
    int sas_push_timeout_ms;    /* one HTTP exchange, connection included */
    int sas_push_retry_max_s;   /* the longest wait between two attempts */
    int sas_push_dead_after_s;  /* a push refused (4xx) this long is given up */
    int sas_push_poll_ms;       /* how often due pushes are looked for */
    int sas_push_max_in_flight; /* pushes sent at once by this process */
    /* The messages to patients and practitioners (dispatcher/jobs/sender.h). */
    enum message_sender {
        MESSAGE_SENDER_FILE, /* one JSON line per message appended to message_file */
        MESSAGE_SENDER_HTTP, /* POSTed to message_gateway_url */
        MESSAGE_SENDER_NONE, /* nothing sent: the messages wait in the database */
    } message_sender;
    char message_file[CONFIG_STR_MAX];
    char message_gateway_url[CONFIG_STR_MAX];
    char message_gateway_token[256]; /* sent as a bearer token, or "" */
    int message_timeout_ms;          /* one HTTP exchange, connection included */
    int message_retry_max_s;         /* the longest wait between two attempts */
    int message_dead_after_s;        /* a message not sent this long after queued is given up */
    int message_poll_ms;             /* how often due messages are looked for */
    int outbox_retention_days;       /* delivered outbox rows older than this are deleted */
};

/* Whether `addr` (an IPv4 address in host order) is in the comma-separated
 * list `list` of addresses and a.b.c.d/n networks.  A malformed list (which
 * config_set refuses) matches nothing. */
bool config_address_allowed(const char *list, uint32_t addr);

/* Fills `cfg` with the built-in defaults.  Those the protocol declares
 * (max_per_address, body_timeout_s) are read from protocol/snp.v1.json
 * through the codec, which this initialises when no one has yet. */
void config_defaults(struct config *cfg);

/* Applies one `key` = `value` pair.  On failure returns false and writes a
 * sentence naming the key and the accepted values into `err`. */
bool config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reads a configuration file.  Lines are `key = value`; `#` starts a comment;
 * values may be double-quoted.  On failure returns false with a message that
 * names the file and line in `err`. */
bool config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Applies the SNPD_* environment variables (SNPD_DATABASE_URL, SNPD_PORT, ...)
 * found in `envp`, a NULL-terminated "NAME=value" array such as `environ`. */
bool config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks that a database is configured and the combination of values (for
 * instance a TLS key without its certificate): config_check_database, then
 * config_check_values.  Returns false with a message in `err`. */
bool config_check(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks that a database is configured; returns false with a message in
 * `err` saying how to set one.  The administrative commands call it when
 * they connect, after parsing their arguments, so that their --help needs no
 * configuration. */
bool config_check_database(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks the combination of values other than the database; returns false
 * with a message in `err`. */
bool config_check_values(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
