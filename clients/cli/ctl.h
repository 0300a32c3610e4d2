/* ctl: what every snpctl command shares: where the server is and which token
 * to show it, how to call an snp.v1 message over HTTP or WebSocket, how a
 * refusal becomes a French message and an exit code, and the common options.
 *
 * Settings come from, in order of precedence: the options --server, --token
 * and --config; the environment variables SNPCTL_SERVER, SNPCTL_TOKEN and
 * SNPCTL_CONFIG; the configuration file (default
 * $XDG_CONFIG_HOME/snpctl/config, else ~/.config/snpctl/config), which holds
 * `key = value` lines for `server`, `token` and `ca_file`.  A configuration
 * file that holds a token and that other users may read is refused.
 *
 * Every call validates the message's data with the shared codec
 * (protocol/codec.h) before sending it, so a mistyped option is reported
 * with its field before anything leaves the machine, and checks the
 * server's answer against the declaration too (a mismatch is a warning).
 *
 * Functions that report an outcome return an `enum ctl_exit` value, the
 * process's exit code: commands return it from main unchanged.
 */
#ifndef SNPCTL_CTL_H
#define SNPCTL_CTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/timeutil.h"
#include "clients/lib/snpclient.h"

#define CTL_MUST_CHECK __attribute__((warn_unused_result))

/* The exit codes, documented in docs/snpctl.md. */
enum ctl_exit {
    CTL_OK = 0,          /* done */
    CTL_REFUSED = 1,     /* the server refused (a 4xx other than 401 and 429), or
                            invalid import files */
    CTL_USAGE = 2,       /* bad command line, unreadable or unsafe configuration */
    CTL_UNAVAILABLE = 3, /* server unreachable, timed out, 5xx, 429, or an answer
                            that is not snp.v1: try again later */
    CTL_AUTH = 4,        /* no token, or the server does not accept it (401) */
    CTL_NOT_BOOKED = 5   /* request create --accept: the request was created but
                            nothing was booked (it waits for a slot) */
};

/* Ids of the common options in getopt_long tables; command-specific ids
 * must stay below 1000. */
enum ctl_option {
    CTL_OPT_SERVER = 1000,
    CTL_OPT_TOKEN,
    CTL_OPT_CONFIG,
    CTL_OPT_JSON,
};

/* The common options, to end every command's getopt_long table with, before
 * the terminating zero entry.  'h' is --help. */
#define CTL_COMMON_OPTIONS                                                                         \
    {"server", required_argument, NULL, CTL_OPT_SERVER},                                           \
        {"token", required_argument, NULL, CTL_OPT_TOKEN},                                         \
        {"config", required_argument, NULL, CTL_OPT_CONFIG},                                       \
        {"json", no_argument, NULL, CTL_OPT_JSON},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* The lines describing the common options, for help texts. */
#define CTL_COMMON_HELP                                                                            \
    "Options communes : --server URL, --token JETON, --config FICHIER, --json, --help\n"

/* Maps a field path of a message's data to the option that sets it, so that
 * errors name what the user typed. */
struct ctl_field_option {
    const char *field;  /* "patient.birth_year" */
    const char *option; /* "--birth-year" */
};

struct ctl {
    /* As given by options (owned copies), before the environment and the file. */
    char *server_opt, *token_opt, *config_opt;
    bool json; /* --json: the server's JSON on standard output */

    /* Resolved by ctl_connect(). */
    char *server;   /* URL */
    char *token;    /* NULL when none was found */
    char *ca_file;  /* from the configuration file, or NULL */
    char host[256]; /* from the URL */
    int port;
    bool tls;
    char prefix[256]; /* path before /api/v1, "" or "/snp" (no trailing '/') */
    struct snpclient *client;
    int timeout_ms; /* per HTTP request or WebSocket call */

    /* Caches. */
    json_t *territory;                /* territory.get answer */
    const struct timeutil_zone *zone; /* its time zone */

    /* Set by a command before its calls, or NULL. */
    const struct ctl_field_option *field_options;
    const char *usage;      /* the command's usage text, shown with usage errors */
    const char *quiet_code; /* an error code the command explains itself: ctl_call()
                               and ctl_ws_call() return it without printing */
    bool quiet_transport;   /* do not print connection failures (watch retries them) */

    /* Set by ctl_call() and ctl_ws_call(): the server's error object ({code,
     * message, field}) of the last refusal, or NULL; owned by `c`. */
    json_t *last_error;
};

/* Prepares `c` with nothing set. */
void ctl_init(struct ctl *c);

/* Frees everything `c` holds (closing the client). */
void ctl_close(struct ctl *c);

/* Handles one of the common options (`id` from CTL_COMMON_OPTIONS, argument
 * `arg`).  Returns true when `id` was one of them. */
bool ctl_common_option(struct ctl *c, int id, const char *arg);

/* Resolves the server and token from options, environment and
 * configuration file, and creates the HTTP/WebSocket client.  When
 * `need_token` is true and no token was found, says how to give one and
 * returns CTL_AUTH.  Returns CTL_OK, CTL_USAGE (bad URL, unsafe or malformed
 * configuration file), CTL_AUTH or CTL_UNAVAILABLE (the client could not be
 * created).  Calling it again does nothing. */
int ctl_connect(struct ctl *c, bool need_token) CTL_MUST_CHECK;

/* Sends the snp.v1 message `message` with `data` (an object, borrowed; NULL
 * for {}) over HTTP: path parameters are taken from `data`, the other fields
 * go to the query string (GET) or the JSON body.  `data` is first validated
 * with the codec: an invalid field is a usage error (CTL_USAGE), named by
 * its option when `c->field_options` maps it.
 *
 * On success stores the answer in `*out` (a new reference, when `out` is
 * not NULL), also setting `*http_status` (when not NULL), and returns
 * CTL_OK.  On a refusal prints the French explanation and the server's
 * message on standard error (and, with --json, the server's error body on
 * standard output), stores the error code name in `*code` (when not NULL,
 * a static string or NULL) and returns the exit code of the refusal. */
int ctl_call(struct ctl *c, const char *message, json_t *data, json_t **out, int *http_status,
             const char **code) CTL_MUST_CHECK;

/* Opens a WebSocket to the server and authenticates with the `auth`
 * message, storing the session (role, territory, organisation, server time)
 * in `*session` (a new reference) and the connection in `*out`.  Returns
 * CTL_OK, or an exit code after printing why. */
int ctl_ws_open(struct ctl *c, struct snpclient_ws **out, json_t **session) CTL_MUST_CHECK;

/* Like ctl_call() over the WebSocket `w`. */
int ctl_ws_call(struct ctl *c, struct snpclient_ws *w, const char *message, json_t *data,
                json_t **out, const char **code) CTL_MUST_CHECK;

/* Returns in `*territory` the caller's territory (territory.get, fetched
 * once and cached; borrowed) and sets `c->zone`.  Returns CTL_OK or the exit
 * code of the failed call. */
int ctl_territory(struct ctl *c, json_t **territory) CTL_MUST_CHECK;

/* Writes `j` on standard output as one line of compact JSON. */
void ctl_print_json(const json_t *j);

/* Prints "snpctl: <message>" and the command's usage on standard error and
 * returns CTL_USAGE. */
int ctl_usage_error(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "snpctl: <message>" on standard error. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses `s` as a positive decimal id; returns false on anything else. */
bool ctl_parse_id(const char *s, json_int_t *out) CTL_MUST_CHECK;

/* Splits the comma-separated list `s` into a new JSON array of strings,
 * each checked against the values `allowed` (`n` of them; no check when
 * `allowed` is NULL).  Returns NULL, after a usage error naming `option`,
 * when a value is not allowed or the list is empty. */
json_t *ctl_list_arg(struct ctl *c, const char *option, const char *s, const char *const *allowed,
                     size_t n);

/* Returns the string member `key` of `o`, or NULL. */
const char *ctl_str(const json_t *o, const char *key);

/* Returns the integer member `key` of `o`, or 0. */
json_int_t ctl_int(const json_t *o, const char *key);

/* Returns the member at the dotted path `path` ("offer.slot.slot_id") of
 * `o`, or NULL. */
json_t *ctl_get(const json_t *o, const char *path);

/* Returns whether standard input and output are both terminals. */
bool ctl_interactive(void);

#endif
