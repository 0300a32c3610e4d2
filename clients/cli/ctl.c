/* ctl: settings, calls and errors shared by the snpctl commands.  See ctl.h. */
#include "clients/cli/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients/cli/labels.h"
#include "protocol/codec.h"

#define CTL_TIMEOUT_MS 15000

void ctl_init(struct ctl *c)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = CTL_TIMEOUT_MS;
}

void ctl_close(struct ctl *c)
{
    snpclient_free(c->client);
    json_decref(c->territory);
    json_decref(c->last_error);
    free(c->server_opt);
    free(c->token_opt);
    free(c->config_opt);
    free(c->server);
    free(c->token);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

static void replace(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? strdup(value) : NULL;
}

bool ctl_common_option(struct ctl *c, int id, const char *arg)
{
    switch (id) {
    case CTL_OPT_SERVER:
        replace(&c->server_opt, arg);
        return true;
    case CTL_OPT_TOKEN:
        replace(&c->token_opt, arg);
        return true;
    case CTL_OPT_CONFIG:
        replace(&c->config_opt, arg);
        return true;
    case CTL_OPT_JSON:
        c->json = true;
        return true;
    default:
        return false;
    }
}

void ctl_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("snpctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ctl_usage_error(struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("snpctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (c->usage)
        fputs(c->usage, stderr);
    return CTL_USAGE;
}

/* ---- configuration ------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Returns the default configuration path in a malloc'ed string, or NULL when
 * neither XDG_CONFIG_HOME nor HOME is set. */
static char *default_config_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (xdg && *xdg)
        snprintf(buf, sizeof(buf), "%s/snpctl/config", xdg);
    else if (home && *home)
        snprintf(buf, sizeof(buf), "%s/.config/snpctl/config", home);
    else
        return NULL;
    return strdup(buf);
}

/* Reads the configuration file at `path` into `*server`, `*token` and
 * `*ca_file` (malloc'ed, NULL when absent).  A missing file is not an error
 * unless `explicit` (named by --config or SNPCTL_CONFIG).  Returns CTL_OK or
 * CTL_USAGE after printing why. */
static int read_config(const char *path, bool explicit, char **server, char **token, char **ca_file)
{
    *server = *token = *ca_file = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT && !explicit)
            return CTL_OK;
        ctl_error("impossible de lire le fichier de configuration %s : %s", path, strerror(errno));
        return CTL_USAGE;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        ctl_error("impossible de lire le fichier de configuration %s : %s", path, strerror(errno));
        fclose(f);
        return CTL_USAGE;
    }
    char line[4096];
    int lineno = 0;
    int rc = CTL_OK;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            ctl_error("%s:%d : ligne sans « = » (attendu : clé = valeur)", path, lineno);
            rc = CTL_USAGE;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t n = strlen(value);
        if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
            value[n - 1] = '\0';
            value++;
        }
        char **slot = strcmp(key, "server") == 0    ? server
                      : strcmp(key, "token") == 0   ? token
                      : strcmp(key, "ca_file") == 0 ? ca_file
                                                    : NULL;
        if (!slot) {
            ctl_error("%s:%d : clé inconnue « %s » (clés possibles : server, token, ca_file)", path,
                      lineno, key);
            rc = CTL_USAGE;
            break;
        }
        replace(slot, value);
    }
    fclose(f);
    /* A token readable (or a server replaceable) by every user of the
     * machine is a token anyone can use: refuse rather than send it. */
    if (rc == CTL_OK && *token && (st.st_mode & (S_IROTH | S_IWOTH))) {
        ctl_error("%s contient un jeton et est lisible par tous les utilisateurs (mode %04o) : "
                  "refusé.  Corrigez avec : chmod 600 %s",
                  path, (unsigned)(st.st_mode & 07777), path);
        rc = CTL_USAGE;
    }
    if (rc != CTL_OK) {
        replace(server, NULL);
        replace(token, NULL);
        replace(ca_file, NULL);
    }
    return rc;
}

/* Splits `url` (http[s]://host[:port][/prefix]) into `c`'s fields.  Returns
 * false when it is not such a URL. */
static bool parse_url(struct ctl *c, const char *url)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        c->tls = false;
        c->port = 80;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        c->tls = true;
        c->port = 443;
        p = url + 8;
    } else {
        return false;
    }
    const char *host_end;
    const char *host = p;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end)
            return false;
        host = p + 1;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof(c->host))
        return false;
    memcpy(c->host, host, hl);
    c->host[hl] = '\0';
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return false;
        c->port = (int)port;
        p = end;
    }
    if (*p && *p != '/')
        return false;
    size_t pl = strlen(p);
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(c->prefix))
        return false;
    memcpy(c->prefix, p, pl);
    c->prefix[pl] = '\0';
    return true;
}

int ctl_connect(struct ctl *c, bool need_token)
{
    if (c->client)
        return CTL_OK;
    const char *server = c->server_opt ? c->server_opt : getenv("SNPCTL_SERVER");
    const char *token = c->token_opt ? c->token_opt : getenv("SNPCTL_TOKEN");
    if (server && !*server)
        server = NULL;
    if (token && !*token)
        token = NULL;
    replace(&c->server, server);
    replace(&c->token, token);

    /* The file is read only for what the options and environment left out. */
    const char *config = c->config_opt ? c->config_opt : getenv("SNPCTL_CONFIG");
    bool explicit = config && *config;
    char *path = explicit ? strdup(config) : default_config_path();
    if (path && (!c->server || !c->token || explicit)) {
        char *fs, *ft, *fca;
        int rc = read_config(path, explicit, &fs, &ft, &fca);
        free(path);
        if (rc != CTL_OK)
            return rc;
        if (!c->server && fs)
            replace(&c->server, fs);
        if (!c->token && ft)
            replace(&c->token, ft);
        c->ca_file = fca;
        free(fs);
        free(ft);
    } else {
        free(path);
    }
    if (!c->server)
        replace(&c->server, "http://127.0.0.1:8080");
    if (!parse_url(c, c->server)) {
        ctl_error("adresse du serveur invalide : « %s » (attendu : http://hôte:port ou "
                  "https://hôte)",
                  c->server);
        return CTL_USAGE;
    }
    if (need_token && !c->token) {
        ctl_error("aucun jeton d'accès : donnez --token JETON, ou définissez SNPCTL_TOKEN, "
                  "ou écrivez « token = snp_… » dans ~/.config/snpctl/config (mode 600).  Les "
                  "jetons sont créés par la coordination (snpctl token create) ou sur le "
                  "serveur (snpd token create).");
        return CTL_AUTH;
    }
    struct snpclient_options o = {
        .host = c->host, .port = c->port, .tls = c->tls, .ca_file = c->ca_file};
    c->client = snpclient_new_with(&o);
    if (!c->client) {
        ctl_error("impossible de préparer la connexion à %s", c->server);
        return CTL_UNAVAILABLE;
    }
    return CTL_OK;
}

/* ---- JSON helpers -------------------------------------------------------- */

const char *ctl_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_int_t ctl_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

json_t *ctl_get(const json_t *o, const char *path)
{
    char key[128];
    const json_t *cur = o;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        path += n;
        if (*path == '.')
            path++;
    }
    return (json_t *)cur;
}

void ctl_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

bool ctl_parse_id(const char *s, json_int_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < 1)
        return false;
    *out = (json_int_t)v;
    return true;
}

json_t *ctl_list_arg(struct ctl *c, const char *option, const char *s, const char *const *allowed,
                     size_t n)
{
    json_t *a = json_array();
    char *copy = strdup(s ? s : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *v = trim(tok);
        if (!*v)
            continue;
        bool ok = !allowed;
        for (size_t i = 0; allowed && i < n; i++)
            ok = ok || strcmp(allowed[i], v) == 0;
        if (!ok) {
            char list[512] = "";
            for (size_t i = 0; i < n; i++) {
                strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
                if (i + 1 < n)
                    strncat(list, ", ", sizeof(list) - strlen(list) - 1);
            }
            ctl_usage_error(c, "%s : valeur inconnue « %s » (valeurs possibles : %s)", option, v,
                            list);
            free(copy);
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_string(v));
    }
    free(copy);
    if (json_array_size(a) == 0) {
        ctl_usage_error(c, "%s : liste vide", option);
        json_decref(a);
        return NULL;
    }
    return a;
}

bool ctl_interactive(void)
{
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

/* ---- errors -------------------------------------------------------------- */

static const char *option_of(const struct ctl *c, const char *field)
{
    if (!field || !c->field_options)
        return NULL;
    for (const struct ctl_field_option *f = c->field_options; f->field; f++)
        if (strcmp(f->field, field) == 0)
            return f->option;
    return NULL;
}

/* Returns the exit code for an error answered with HTTP status `status`. */
static int exit_for_status(int status)
{
    if (status == 401)
        return CTL_AUTH;
    if (status == 429)
        return CTL_UNAVAILABLE;
    if (status >= 400 && status < 500)
        return CTL_REFUSED;
    return CTL_UNAVAILABLE;
}

/* Prints the server's error object `error` ({code, message, field}),
 * answered with HTTP status `status`, and returns the exit code. */
static int report(struct ctl *c, int status, const json_t *error, const char **code_out)
{
    const char *code = ctl_str(error, "code");
    const char *message = ctl_str(error, "message");
    const char *field = ctl_str(error, "field");
    json_decref(c->last_error);
    c->last_error = json_deep_copy(error);
    enum snp_proto_code pc;
    if (code_out)
        *code_out = code && snp_proto_code_parse(code, &pc) ? snp_proto_code_name(pc) : NULL;
    int rc = exit_for_status(status);
    if (code && c->quiet_code && strcmp(code, c->quiet_code) == 0)
        return rc;
    const char *what = rc == CTL_AUTH          ? "authentification refusée"
                       : rc == CTL_UNAVAILABLE ? "serveur indisponible"
                                               : "refusé par le serveur";
    const char *option = option_of(c, field);
    fprintf(stderr, "snpctl: %s : %s", what, labels_error(code));
    if (field && option)
        fprintf(stderr, " (%s, champ %s)", option, field);
    else if (field)
        fprintf(stderr, " (champ %s)", field);
    fprintf(stderr, "\n        [%s] %s\n", code ? code : "?", message ? message : "");
    return rc;
}

/* Reports a failure to reach the server or to read its answer. */
static int report_transport(struct ctl *c, int err, const char *detail)
{
    if (c->quiet_transport)
        return CTL_UNAVAILABLE;
    ctl_error("serveur injoignable (%s) : %s%s%s", c->server, snpclient_strerror(err),
              detail ? " — " : "", detail ? detail : "");
    return CTL_UNAVAILABLE;
}

/* Validates `data` as the request of `msg`; on failure prints why and
 * returns CTL_USAGE. */
static int check_request(struct ctl *c, const struct snp_proto_message *msg, json_t *data)
{
    struct snp_proto_error err;
    if (snp_proto_validate_request(msg, data, &err) == 0)
        return CTL_OK;
    const char *option = option_of(c, err.field);
    if (option)
        ctl_error("%s : %s (champ %s) — %s", option, labels_error(snp_proto_code_name(err.code)),
                  err.field, err.message);
    else if (err.field[0])
        ctl_error("champ %s : %s — %s", err.field, labels_error(snp_proto_code_name(err.code)),
                  err.message);
    else
        ctl_error("%s — %s", labels_error(snp_proto_code_name(err.code)), err.message);
    return CTL_USAGE;
}

/* Checks a success answer against the declaration; a mismatch is reported
 * as a warning (the server is then not following snp.v1), not a failure. */
static void check_response(const struct snp_proto_message *msg, json_t *data)
{
    struct snp_proto_error err;
    if (snp_proto_validate_response(msg, data, &err) != 0)
        fprintf(stderr,
                "snpctl: avertissement : réponse de %s non conforme au protocole snp.v1 "
                "(%s%s%s : %s)\n",
                msg->name, snp_proto_code_name(err.code), err.field[0] ? ", champ " : "", err.field,
                err.message);
}

/* ---- HTTP ---------------------------------------------------------------- */

struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void sb_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Appends `s` percent-encoded: everything but the unreserved characters. */
static void sb_encode(struct strbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_add(b, (const char *)&ch, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_add(b, e, 3);
        }
    }
}

/* Appends the scalar `v` as query text (percent-encoded). */
static void sb_scalar(struct strbuf *b, const json_t *v)
{
    char num[64];
    if (json_is_string(v)) {
        sb_encode(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sb_puts(b, num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        sb_puts(b, num);
    } else if (json_is_true(v)) {
        sb_puts(b, "true");
    } else if (json_is_false(v)) {
        sb_puts(b, "false");
    }
}

/* Builds the HTTP path of `msg` for `data`: path parameters are substituted
 * (and removed from `rest`, a copy of data), then, for GET, the other
 * fields are appended as a query string.  Returns a malloc'ed string or
 * NULL when out of memory. */
static char *build_path(const struct ctl *c, const struct snp_proto_message *msg, json_t *rest)
{
    struct strbuf b = {0};
    sb_puts(&b, c->prefix);
    for (const char *p = msg->http_path; *p;) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end)
                break;
            char name[64];
            size_t n = (size_t)(end - p - 1);
            if (n >= sizeof(name))
                n = sizeof(name) - 1;
            memcpy(name, p + 1, n);
            name[n] = '\0';
            sb_scalar(&b, json_object_get(rest, name));
            json_object_del(rest, name);
            p = end + 1;
        } else {
            sb_add(&b, p, 1);
            p++;
        }
    }
    if (strcmp(msg->http_method, "GET") == 0 && json_object_size(rest) > 0) {
        const char *key;
        json_t *v;
        char sep = '?';
        json_object_foreach (rest, key, v) {
            sb_add(&b, &sep, 1);
            sep = '&';
            sb_encode(&b, key);
            sb_puts(&b, "=");
            if (json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach (v, i, item) {
                    if (i > 0)
                        sb_puts(&b, ",");
                    sb_scalar(&b, item);
                }
            } else {
                sb_scalar(&b, v);
            }
        }
        json_object_clear(rest);
    }
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* Parses a server message of `len` bytes; NULL when it is not JSON within
 * the protocol's limits. */
static json_t *parse_server(const char *body, size_t len)
{
    json_t *j = NULL;
    struct snp_proto_error err;
    if (snp_proto_parse_server(body, len, &j, &err) != 0)
        return NULL;
    return j;
}

int ctl_call(struct ctl *c, const char *message, json_t *data, json_t **out, int *http_status,
             const char **code)
{
    if (out)
        *out = NULL;
    if (code)
        *code = NULL;
    const struct snp_proto_message *msg = snp_proto_message_find(message);
    if (!msg || !msg->http_method) {
        ctl_error("message %s sans route HTTP", message);
        return CTL_USAGE;
    }
    json_t *copy = data ? json_deep_copy(data) : json_object();
    int rc = check_request(c, msg, copy);
    if (rc != CTL_OK) {
        json_decref(copy);
        return rc;
    }
    rc = ctl_connect(c, true);
    if (rc != CTL_OK) {
        json_decref(copy);
        return rc;
    }
    char *path = build_path(c, msg, copy);
    char *body = NULL;
    if (strcmp(msg->http_method, "GET") != 0)
        body = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    if (!path || (strcmp(msg->http_method, "GET") != 0 && !body)) {
        free(path);
        free(body);
        ctl_error("mémoire insuffisante");
        return CTL_UNAVAILABLE;
    }
    int status = 0;
    char *answer = NULL;
    int err = snpclient_http(c->client, msg->http_method, path, c->token, body, c->timeout_ms,
                             &status, &answer);
    free(path);
    free(body);
    if (err < 0)
        return report_transport(c, err, NULL);
    if (http_status)
        *http_status = status;
    json_t *j = parse_server(answer, strlen(answer));
    if (status >= 200 && status < 300) {
        free(answer);
        if (!json_is_object(j)) {
            json_decref(j);
            ctl_error("réponse illisible du serveur (HTTP %d) : ce n'est pas un objet JSON",
                      status);
            return CTL_UNAVAILABLE;
        }
        check_response(msg, j);
        if (out)
            *out = j;
        else
            json_decref(j);
        return CTL_OK;
    }
    json_t *error = json_object_get(j, "error");
    if (!json_is_object(error)) {
        ctl_error("le serveur a répondu HTTP %d sans erreur snp.v1 : %.200s", status, answer);
        free(answer);
        json_decref(j);
        return exit_for_status(status);
    }
    free(answer);
    if (c->json)
        ctl_print_json(j);
    rc = report(c, status, error, code);
    json_decref(j);
    return rc;
}

/* ---- WebSocket ----------------------------------------------------------- */

/* Turns the text of a WebSocket answer to `msg` into the exit code,
 * storing the data of a success in `*out`. */
static int ws_answer(struct ctl *c, const struct snp_proto_message *msg, int err, char *text,
                     json_t **out, const char **code)
{
    if (err == SNPCLIENT_ESERVER || err == 0 || err == SNPCLIENT_EPROTO) {
        json_t *j = text ? parse_server(text, strlen(text)) : NULL;
        free(text);
        if (!j || err == SNPCLIENT_EPROTO) {
            json_decref(j);
            ctl_error("réponse illisible du serveur à %s", msg->name);
            return CTL_UNAVAILABLE;
        }
        if (err == 0) {
            json_t *data = json_object_get(j, "data");
            if (!json_is_object(data)) {
                json_decref(j);
                ctl_error("réponse de %s sans données", msg->name);
                return CTL_UNAVAILABLE;
            }
            check_response(msg, data);
            if (out)
                *out = json_incref(data);
            json_decref(j);
            return CTL_OK;
        }
        json_t *error = json_object_get(j, "error");
        enum snp_proto_code pc = SNP_PROTO_E_INTERNAL;
        if (!snp_proto_code_parse(ctl_str(error, "code") ? ctl_str(error, "code") : "", &pc))
            pc = SNP_PROTO_E_INTERNAL;
        if (c->json) {
            json_t *body = json_pack("{s:O}", "error", error);
            ctl_print_json(body);
            json_decref(body);
        }
        int rc = report(c, snp_proto_error_http_status(pc), error, code);
        json_decref(j);
        return rc;
    }
    free(text);
    return report_transport(c, err, NULL);
}

int ctl_ws_call(struct ctl *c, struct snpclient_ws *w, const char *message, json_t *data,
                json_t **out, const char **code)
{
    if (out)
        *out = NULL;
    if (code)
        *code = NULL;
    const struct snp_proto_message *msg = snp_proto_message_find(message);
    if (!msg) {
        ctl_error("message inconnu %s", message);
        return CTL_USAGE;
    }
    json_t *copy = data ? json_deep_copy(data) : json_object();
    int rc = check_request(c, msg, copy);
    char *text = rc == CTL_OK ? json_dumps(copy, JSON_COMPACT) : NULL;
    json_decref(copy);
    if (rc != CTL_OK)
        return rc;
    char *answer = NULL;
    int err = snpclient_ws_call(w, message, text, c->timeout_ms, &answer);
    free(text);
    return ws_answer(c, msg, err, answer, out, code);
}

int ctl_ws_open(struct ctl *c, struct snpclient_ws **out, json_t **session)
{
    *out = NULL;
    *session = NULL;
    int rc = ctl_connect(c, true);
    if (rc != CTL_OK)
        return rc;
    char path[512], why[256] = "";
    snprintf(path, sizeof(path), "%s%s", c->prefix, SNPCLIENT_WS_PATH);
    struct snpclient_ws *w =
        snpclient_ws_open(c->client, path, NULL, c->timeout_ms, why, sizeof(why));
    if (!w) {
        if (!c->quiet_transport)
            ctl_error("connexion WebSocket impossible à %s : %s", c->server, why);
        return CTL_UNAVAILABLE;
    }
    /* The token travels in an `auth` message rather than a header so that
     * the answer tells who we are (role, organisation, server clock). */
    json_t *data = json_pack("{s:s}", "token", c->token);
    rc = ctl_ws_call(c, w, "auth", data, session, NULL);
    json_decref(data);
    if (rc != CTL_OK) {
        snpclient_ws_close(w);
        return rc;
    }
    *out = w;
    return CTL_OK;
}

int ctl_territory(struct ctl *c, json_t **territory)
{
    *territory = NULL;
    if (!c->territory) {
        json_t *t = NULL;
        int rc = ctl_call(c, "territory.get", NULL, &t, NULL, NULL);
        if (rc != CTL_OK)
            return rc;
        c->territory = t;
        const char *tz = ctl_str(t, "time_zone");
        c->zone = tz ? timeutil_zone_find(tz) : NULL;
        if (!c->zone) {
            fprintf(stderr,
                    "snpctl: avertissement : fuseau « %s » inconnu de snpctl, heures lues en "
                    "Europe/Paris\n",
                    tz ? tz : "?");
            c->zone = timeutil_zone_find("Europe/Paris");
        }
    }
    *territory = c->territory;
    return CTL_OK;
}
