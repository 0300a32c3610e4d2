#include "dispatcher/commands/admin.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/validate.h"
#include "dispatcher/db/db.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/db/migrate.h"
#include "dispatcher/core/token.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define CONNECT_GIVE_UP_MS              15000

/* --- snpd migrate ----------------------------------------------------------------- */

static void on_migrated(struct migrate *m, int result, const char *message)
{
    int *exit_code = m->data;
    if (result == MIGRATE_OK) {
        log_info("migrate", "%s", message);
        *exit_code = 0;
    } else {
        log_error("migrate", "%s", message);
        *exit_code = 1;
    }
}

int admin_migrate(const struct config *cfg)
{
    uv_loop_t loop;
    struct migrate m;
    int exit_code = 1;
    uv_loop_init(&loop);
    if (migrate_start(&m, &loop, cfg->database, snp_migrations, snp_migration_count, snp_functions,
                      snp_function_count, CONNECT_GIVE_UP_MS, on_migrated) != 0) {
        log_error("migrate", "cannot start");
        uv_loop_close(&loop);
        return 1;
    }
    m.data = &exit_code;
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warn("migrate", "loop closed with live handles");
    return exit_code;
}

/* --- one query, one answer -------------------------------------------------------- */

struct oneshot {
    struct db db;
    uv_timer_t deadline;
    enum sql_id query;
    int nparams;
    const char *const *params;
    void (*print)(const PGresult *res, void *arg);
    void *arg;
    bool sent;
    int exit_code;
};

static void oneshot_closed(struct db *db)
{
    (void)db;
}

static void oneshot_finish(struct oneshot *o, int exit_code)
{
    o->exit_code = exit_code;
    uv_timer_stop(&o->deadline);
    if (!uv_is_closing((uv_handle_t *)&o->deadline))
        uv_close((uv_handle_t *)&o->deadline, NULL);
    db_close(&o->db, oneshot_closed);
}

static void on_oneshot_result(void *arg, enum db_status st, const PGresult *res)
{
    struct oneshot *o = arg;
    if (st == DB_OK) {
        o->print(res, o->arg);
        oneshot_finish(o, o->exit_code);
        return;
    }
    char msg[512] = "the database became unavailable";
    if (st == DB_QUERY_ERROR && res) {
        snprintf(msg, sizeof(msg), "%s",
                 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                     ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                     : PQresultErrorMessage(res));
    }
    fprintf(stderr, "snpd: %s\n", msg);
    oneshot_finish(o, 1);
}

static void on_oneshot_ready(struct db *db, bool up)
{
    struct oneshot *o = container_of(db, struct oneshot, db);
    if (!up || o->sent)
        return;
    o->sent = true;
    db_query(db, sql_text[o->query], o->nparams, o->params, on_oneshot_result, o);
}

static void on_oneshot_deadline(uv_timer_t *t)
{
    struct oneshot *o = container_of(t, struct oneshot, deadline);
    fprintf(stderr, "snpd: cannot reach the database within %d s\n", CONNECT_GIVE_UP_MS / 1000);
    oneshot_finish(o, 1);
}

static int oneshot_run(const struct config *cfg, enum sql_id query, int nparams,
                       const char *const *params, void (*print)(const PGresult *, void *),
                       void *arg)
{
    uv_loop_t loop;
    struct oneshot o;
    memset(&o, 0, sizeof(o));
    o.query = query;
    o.nparams = nparams;
    o.params = params;
    o.print = print;
    o.arg = arg;
    char err[256];
    if (!config_check_database(cfg, err, sizeof(err))) {
        fprintf(stderr, "snpd: %s\n", err);
        return 2;
    }
    uv_loop_init(&loop);
    uv_timer_init(&loop, &o.deadline);
    if (db_init(&o.db, &loop, cfg->database, 1) != 0) {
        uv_close((uv_handle_t *)&o.deadline, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    o.db.on_ready_change = on_oneshot_ready;
    uv_timer_start(&o.deadline, on_oneshot_deadline, CONNECT_GIVE_UP_MS, 0);
    if (db_is_up(&o.db))
        on_oneshot_ready(&o.db, true);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return o.exit_code;
}

/* --- snpd token ------------------------------------------------------------------- */

void admin_operator_actor(char *out, size_t n)
{
    const char *name = getenv("SUDO_USER");
    if (!name || !*name) {
        struct passwd *pw = getpwuid(geteuid());
        name = pw && pw->pw_name ? pw->pw_name : NULL;
    }
    if (name)
        snprintf(out, n, "cli:%.40s", name);
    else
        snprintf(out, n, "cli:uid-%ld", (long)geteuid());
}

static const char token_usage[] =
    "usage: snpd token create --role ROLE --territory ID [--practitioner RPPS]\n"
    "                         [--organisation ID] [--site ID] [--label TEXT]\n"
    "                         [--expires-days N] [--client-cert-cn CN]\n"
    "       snpd token revoke ID | --label TEXT\n"
    "       snpd token list [--territory ID]\n"
    "\n"
    "Roles: gp (needs --practitioner), pharmacy, emergency, sas, professional, desk\n"
    "(need --organisation), coordinator, admin, platform (the national SAS\n"
    "platform's account: FHIR slot search of the territory, docs/fhir.md),\n"
    "reception (needs --site: a site's reception desk, docs/rota.md).\n"
    "`create` prints the secret alone on standard output; it is shown only this\n"
    "once.  With --client-cert-cn (role platform only) there is no secret: the\n"
    "account is the client certificate of that common name, issued by the CA of\n"
    "snpd's tls_client_ca (docs/fhir.md, \"Who may call it\").  Creations and\n"
    "revocations are audited as made by cli:<your login>.\n";

struct created {
    char secret[TOKEN_SECRET_SIZE];
    const char *territory;
    const char *client_cn; /* an account of a client certificate: no secret */
};

static void print_created(const PGresult *res, void *arg)
{
    struct created *c = arg;
    json_t *t = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (c->client_cn)
        printf("client certificate CN=%s\n", c->client_cn);
    else
        printf("%s\n", c->secret);
    fflush(stdout);
    const char *exp = json_string_value(json_object_get(t, "expires_at"));
    fprintf(stderr, "token %lld created: role %s, territory %s, expires %s\n",
            (long long)json_integer_value(json_object_get(t, "token_id")),
            json_string_value(json_object_get(t, "role")), c->territory, exp ? exp : "never");
    json_decref(t);
}

static void print_revoked(const PGresult *res, void *arg)
{
    int *exit_code = arg;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        printf("revoked %s\n", PQgetvalue(res, i, 0));
    if (n == 0)
        fprintf(stderr, "snpd: no active token matched\n");
    *exit_code = 0;
}

/* The columns of token_list.sql that are shown, in the order shown. */
enum list_col {
    LIST_ID,
    LIST_ROLE,
    LIST_TERRITORY,
    LIST_RPPS,
    LIST_ORGANISATION,
    LIST_STATE,
    LIST_EXPIRES_AT,
    LIST_LABEL,
    LIST_NCOLS
};
static const char *const list_names[LIST_NCOLS] = {
    [LIST_ID] = "id",
    [LIST_ROLE] = "role",
    [LIST_TERRITORY] = "territory_id",
    [LIST_RPPS] = "rpps",
    [LIST_ORGANISATION] = "organisation_id",
    [LIST_STATE] = "state",
    [LIST_EXPIRES_AT] = "expires_at",
    [LIST_LABEL] = "label",
};

static void print_list(const PGresult *res, void *arg)
{
    int *exit_code = arg;
    int c[LIST_NCOLS];
    if (!db_cols_resolve(res, list_names, LIST_NCOLS, c, sql_name[SQL_TOKEN_LIST]))
        return;
    printf("%-6s %-12s %-16s %-11s %-6s %-9s %-20s %s\n", "id", "role", "territory", "rpps", "org",
           "state", "expires", "label");
    for (int i = 0; i < PQntuples(res); i++) {
        const char *expires = PQgetvalue(res, i, c[LIST_EXPIRES_AT]);
        printf("%-6s %-12s %-16s %-11s %-6s %-9s %-20s %s\n", PQgetvalue(res, i, c[LIST_ID]),
               PQgetvalue(res, i, c[LIST_ROLE]), PQgetvalue(res, i, c[LIST_TERRITORY]),
               PQgetvalue(res, i, c[LIST_RPPS]), PQgetvalue(res, i, c[LIST_ORGANISATION]),
               PQgetvalue(res, i, c[LIST_STATE]), *expires ? expires : "never",
               PQgetvalue(res, i, c[LIST_LABEL]));
    }
    *exit_code = 0;
}

/* Whether `s` is a decimal id from 1 to `max`, into *out. */
static bool parse_count(const char *s, long max, long *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 12)
        return false;
    *out = atol(s);
    return *out >= 1 && *out <= max;
}

/* A certificate's common name as lws reads it: 1 to 64 printable bytes. */
static bool common_name_valid(const char *cn)
{
    size_t n = strlen(cn);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f)
            return false;
    return n >= 1 && n <= 64;
}

static int token_create(const struct config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},
        {"territory", required_argument, NULL, 't'},
        {"practitioner", required_argument, NULL, 'p'},
        {"organisation", required_argument, NULL, 'o'},
        {"site", required_argument, NULL, 's'},
        {"label", required_argument, NULL, 'l'},
        {"expires-days", required_argument, NULL, 'e'},
        {"client-cert-cn", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *role = NULL, *territory = NULL, *rpps = NULL, *org = NULL, *site = NULL;
    const char *label = "", *expires = NULL, *client_cn = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char **slot = c == 'r'   ? &role
                            : c == 't' ? &territory
                            : c == 'p' ? &rpps
                            : c == 'o' ? &org
                            : c == 's' ? &site
                            : c == 'l' ? &label
                            : c == 'e' ? &expires
                            : c == 'c' ? &client_cn
                                       : NULL;
        if (slot) {
            *slot = optarg;
            continue;
        }
        fputs(token_usage, c == 'h' ? stdout : stderr);
        return c == 'h' ? 0 : 2;
    }
    enum token_role r;
    long org_id = 0, site_id = 0, days = 0;
    const char *why = NULL;
    if (!role || !token_role_parse(role, &r))
        why = "--role must be one of gp, pharmacy, emergency, sas, professional, desk, "
              "coordinator, admin, platform, reception";
    else if (!territory || !validate_territory_id(territory))
        why = "--territory must be a territory id such as demo-redon";
    else if (rpps && !validate_rpps(rpps))
        why = "--practitioner takes a valid 11-digit RPPS";
    else if (org && !parse_count(org, 999999999999L, &org_id))
        why = "--organisation takes a numeric id";
    else if (site && !parse_count(site, 999999999999L, &site_id))
        why = "--site takes a numeric id";
    else if (expires && !parse_count(expires, 3650, &days))
        why = "--expires-days takes a number of days from 1 to 3650";
    else if (client_cn && r != ROLE_PLATFORM)
        why = "--client-cert-cn is for role platform only";
    else if (client_cn && !common_name_valid(client_cn))
        why = "--client-cert-cn takes the certificate's common name, 1 to 64 characters";
    if (why) {
        fprintf(stderr, "snpd: %s\n", why);
        return 2;
    }
    /* The rest (which role names what, and that it is of the territory) is
     * checked by snp_token_create, with the option at fault. */
    json_t *data = json_pack("{s:s, s:s}", "role", role, "label", label);
    if (rpps)
        json_object_set_new(data, "rpps", json_string(rpps));
    if (org)
        json_object_set_new(data, "organisation_id", json_integer(org_id));
    if (site)
        json_object_set_new(data, "site_id", json_integer(site_id));
    if (expires)
        json_object_set_new(data, "expires_days", json_integer(days));
    char *request = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    struct created cr = {.territory = territory, .client_cn = client_cn};
    uint8_t hash[DIGEST_SHA256_LEN];
    char hex[DIGEST_SHA256_HEX_LEN], actor[64];
    if (client_cn && request)
        token_client_cert_hash(client_cn, hash);
    else if (!request || !token_generate(cr.secret, hash)) {
        fprintf(stderr, "snpd: %s\n", request ? "no randomness available" : "out of memory");
        free(request);
        return 1;
    }
    digest_hex(hash, sizeof(hash), hex);
    admin_operator_actor(actor, sizeof(actor));
    const char *params[] = {territory, actor, "admin", hex, request};
    int rc = oneshot_run(cfg, SQL_TOKEN_ISSUE, 5, params, print_created, &cr);
    free(request);
    return rc;
}

static int token_revoke(const struct config *cfg, int argc, char **argv)
{
    const char *id = NULL, *label = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(token_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
            label = argv[++i];
        else if (strspn(argv[i], "0123456789") == strlen(argv[i]) && *argv[i] && !id)
            id = argv[i];
        else {
            fputs(token_usage, stderr);
            return 2;
        }
    }
    if (!id && !label) {
        fputs(token_usage, stderr);
        return 2;
    }
    int exit_code = 1;
    char actor[64];
    admin_operator_actor(actor, sizeof(actor));
    const char *params[] = {id, label, actor};
    int rc = oneshot_run(cfg, SQL_TOKEN_REVOKE, 3, params, print_revoked, &exit_code);
    return rc != 0 ? rc : exit_code;
}

static int token_list(const struct config *cfg, int argc, char **argv)
{
    const char *territory = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(token_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--territory") == 0 && i + 1 < argc) {
            territory = argv[++i];
        } else {
            fputs(token_usage, stderr);
            return 2;
        }
    }
    const char *params[] = {territory};
    int exit_code = 1;
    int rc = oneshot_run(cfg, SQL_TOKEN_LIST, 1, params, print_list, &exit_code);
    return rc != 0 ? rc : exit_code;
}

int admin_token(const struct config *cfg, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
        fputs(token_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "create") == 0)
        return token_create(cfg, argc, argv);
    if (strcmp(argv[0], "revoke") == 0)
        return token_revoke(cfg, argc, argv);
    if (strcmp(argv[0], "list") == 0)
        return token_list(cfg, argc, argv);
    fprintf(stderr, "snpd: unknown token command \"%s\"\n%s", argv[0], token_usage);
    return 2;
}

/* --- snpd territory ---------------------------------------------------------------- */

static const char territory_usage[] =
    "usage: snpd territory create --id ID --name NAME --kind cpts|sas [--time-zone TZ]\n"
    "       snpd territory set --id ID [--finess N|none] [--sas-platform-url URL|none]\n"
    "\n"
    "create: a territory: ID is lower-case letters, digits and dashes (cpts-pays-de-redon),\n"
    "NAME its full name, TZ its IANA time zone (default Europe/Paris).  Then give it an\n"
    "admin token (snpd token create --role admin --territory ID) and import its communes,\n"
    "practitioners and organisations (snpctl import).  A running snpd learns of it at once.\n"
    "set: what the national SAS platform needs (docs/fhir.md): the CPTS's FINESS (9\n"
    "digits), shown as its Organization, and the platform's FHIR base URL, where the\n"
    "appointments made on the territory's slots are pushed; none removes one.  Audited\n"
    "as made by cli:<your login>.\n";

struct territory_created {
    const char *id;
    int exit_code;
};

static void print_territory(const PGresult *res, void *arg)
{
    struct territory_created *t = arg;
    if (PQntuples(res) == 1) {
        printf("territory %s created\n", PQgetvalue(res, 0, 0));
        t->exit_code = 0;
    } else {
        fprintf(stderr, "snpd: territory %s already exists\n", t->id);
    }
}

/* The columns of territory_set.sql. */
enum set_col { SET_ID, SET_FINESS, SET_URL, SET_NCOLS };
static const char *const set_names[SET_NCOLS] = {
    [SET_ID] = "id",
    [SET_FINESS] = "finess",
    [SET_URL] = "url",
};

static void print_territory_set(const PGresult *res, void *arg)
{
    int *exit_code = arg;
    int c[SET_NCOLS];
    if (!db_cols_resolve(res, set_names, SET_NCOLS, c, sql_name[SQL_TERRITORY_SET]))
        return;
    if (PQntuples(res) != 1) {
        fprintf(stderr, "snpd: no such territory\n");
        return;
    }
    const char *finess = PQgetvalue(res, 0, c[SET_FINESS]);
    const char *url = PQgetvalue(res, 0, c[SET_URL]);
    printf("territory %s: FINESS %s, SAS platform %s\n", PQgetvalue(res, 0, c[SET_ID]),
           *finess ? finess : "none", *url ? url : "none");
    *exit_code = 0;
}

/* snpd territory set: the FINESS and the SAS platform URL of a territory. */
static int territory_set(const struct config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"finess", required_argument, NULL, 'f'},
        {"sas-platform-url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *id = NULL, *finess = NULL, *url = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char **slot = c == 'i' ? &id : c == 'f' ? &finess : c == 'u' ? &url : NULL;
        if (slot) {
            *slot = optarg;
            continue;
        }
        fputs(territory_usage, c == 'h' ? stdout : stderr);
        return c == 'h' ? 0 : 2;
    }
    const char *why = NULL;
    if (optind < argc)
        why = "unexpected argument";
    else if (!id || !validate_territory_id(id))
        why = "--id must be a territory id such as demo-redon";
    else if (!finess && !url)
        why = "give --finess, --sas-platform-url or both";
    else if (finess && strcmp(finess, "none") != 0 &&
             (strlen(finess) != 9 || strspn(finess, "0123456789") != 9))
        why = "--finess takes 9 digits (a Corsican FINESS cannot be prefixed by the platform), "
              "or none";
    else if (url && strcmp(url, "none") != 0 &&
             ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
              url[strlen(url) - 1] == '/' || strcspn(url, " ?#\"<>") != strlen(url)))
        why = "--sas-platform-url takes the platform's FHIR base (http(s)://host/path, no "
              "trailing slash, no query), or none";
    if (why) {
        fprintf(stderr, "snpd: %s\n", why);
        return 2;
    }
    char actor[64];
    admin_operator_actor(actor, sizeof(actor));
    const char *params[] = {id, actor, finess ? (strcmp(finess, "none") == 0 ? "" : finess) : NULL,
                            url ? (strcmp(url, "none") == 0 ? "" : url) : NULL};
    int exit_code = 1;
    int rc = oneshot_run(cfg, SQL_TERRITORY_SET, 4, params, print_territory_set, &exit_code);
    return rc != 0 ? rc : exit_code;
}

int admin_territory(const struct config *cfg, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "set") == 0)
        return territory_set(cfg, argc, argv);
    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        bool help = argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0);
        fputs(territory_usage, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},   {"name", required_argument, NULL, 'n'},
        {"kind", required_argument, NULL, 'k'}, {"time-zone", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *id = NULL, *name = NULL, *kind = NULL, *zone = "Europe/Paris";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            id = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'z':
            zone = optarg;
            break;
        case 'h':
            fputs(territory_usage, stdout);
            return 0;
        default:
            fputs(territory_usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "snpd: unexpected argument \"%s\"\n%s", argv[optind], territory_usage);
        return 2;
    }
    if (!id || !validate_territory_id(id)) {
        fprintf(stderr, "snpd: --id must be 2 to 63 lower-case letters, digits or dashes, "
                        "such as cpts-pays-de-redon\n");
        return 2;
    }
    if (!name || !*name || strlen(name) > 200) {
        fprintf(stderr, "snpd: --name must be the territory's name, 1 to 200 characters\n");
        return 2;
    }
    if (!kind || (strcmp(kind, "cpts") != 0 && strcmp(kind, "sas") != 0)) {
        fprintf(stderr, "snpd: --kind must be cpts or sas\n");
        return 2;
    }
    if (!timeutil_zone_find(zone)) {
        fprintf(stderr, "snpd: unknown time zone \"%s\" (an IANA name such as Europe/Paris)\n",
                zone);
        return 2;
    }
    struct territory_created created = {id, 1};
    const char *params[] = {id, name, kind, zone};
    int rc = oneshot_run(cfg, SQL_TERRITORY_CREATE, 4, params, print_territory, &created);
    return rc != 0 ? rc : created.exit_code;
}
