/* snpctl token: the access tokens of the caller's territory, for
 * coordinators and admins: create one and print its secret (shown this
 * once), list them, revoke one.  The arguments are checked here first (role,
 * RPPS key, ids, which role names a practitioner or an organisation), so
 * that a mistake is explained before anything is sent; the server checks
 * again and alone knows the territory.  See commands.h and docs/snpctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "base/validate.h"
#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

static const char token_usage[] =
    "usage : snpctl token create --role RÔLE [--rpps RPPS] [--organisation N°]\n"
    "                            [--site N°] [--label TEXTE] [--expires-days N]\n"
    "        snpctl token list [--state active|expired|revoked]\n"
    "        snpctl token revoke N°\n"
    "\n"
    "Les jetons d'accès du territoire (rôles coordinator et admin).\n"
    "create : crée un jeton et écrit son secret, seul, sur la sortie standard\n"
    "  (T=$(snpctl token create ...)) ; il ne pourra plus être affiché.  Le résumé va\n"
    "  sur la sortie d'erreur.  Rôles : gp (avec --rpps, un praticien du territoire),\n"
    "  pharmacy, emergency, sas, professional, desk (avec --organisation, le n° d'une\n"
    "  organisation de ce type, affiché par snpctl import), coordinator, admin (un\n"
    "  jeton admin est créé par un admin seulement), platform (le compte de la\n"
    "  plateforme numérique SAS, docs/fhir.md), reception (avec --site, le n° d'un\n"
    "  lieu : l'accueil d'un CSNP ou un secrétariat voit les rendez-vous de ce lieu et\n"
    "  ses gardes, docs/rota.md).  --label : qui le détient, quel\n"
    "  poste (100 caractères au plus).  --expires-days : validité, 1 à 3650 jours\n"
    "  (sans : pas d'expiration).\n"
    "list : les jetons, du plus récent au plus ancien, sans leurs secrets.\n"
    "revoke : révoque le jeton à l'instant ; il est refusé dès maintenant.\n"
    "Exemple : snpctl token create --role pharmacy --organisation 7 --label \"comptoir 1\"\n"
    "          --expires-days 365\n" CTL_COMMON_HELP;

/* The options of the three subcommands. */
struct token_args {
    const char *role, *rpps, *organisation, *site, *label, *expires_days, *state;
};

enum { OPT_ROLE = 1, OPT_RPPS, OPT_ORGANISATION, OPT_SITE, OPT_LABEL, OPT_EXPIRES_DAYS, OPT_STATE };

static int on_token_option(void *state, int id, const char *arg)
{
    struct token_args *a = state;
    const char **slot = id == OPT_ROLE           ? &a->role
                        : id == OPT_RPPS         ? &a->rpps
                        : id == OPT_ORGANISATION ? &a->organisation
                        : id == OPT_SITE         ? &a->site
                        : id == OPT_LABEL        ? &a->label
                        : id == OPT_EXPIRES_DAYS ? &a->expires_days
                        : id == OPT_STATE        ? &a->state
                                                 : NULL;
    if (!slot)
        return CTL_USAGE;
    *slot = arg;
    return CTL_OK;
}

/* Writes whom token `t` names, "RPPS 10999900011", "Pharmacie de la Gare
 * (n° 7)" or "CSNP de Redon (lieu n° 4)", into `buf`; NULL for none. */
static const char *holder(const json_t *t, char *buf, size_t n)
{
    if (ctl_str(t, "rpps"))
        snprintf(buf, n, "RPPS %s", ctl_str(t, "rpps"));
    else if (json_object_get(t, "organisation_id"))
        snprintf(buf, n, "%s (n° %lld)",
                 ctl_str(t, "organisation_name") ? ctl_str(t, "organisation_name") : "?",
                 (long long)ctl_int(t, "organisation_id"));
    else if (json_object_get(t, "site_id"))
        snprintf(buf, n, "%s (lieu n° %lld)",
                 ctl_str(t, "site_name") ? ctl_str(t, "site_name") : "?",
                 (long long)ctl_int(t, "site_id"));
    else
        return NULL;
    return buf;
}

/* Prints the tokens of the array `tokens` as a table. */
static void print_tokens(const json_t *tokens)
{
    static const char *const heads[] = {
        "N°", "Rôle", "RPPS/organisation/lieu", "Libellé", "Créé le", "Expire le", "État"};
    struct table t;
    table_init(&t, 7, heads);
    table_align_right(&t, 0);
    table_max_width(&t, 2, 40);
    table_max_width(&t, 3, 40);
    size_t i;
    json_t *tok;
    json_array_foreach (tokens, i, tok) {
        char id[24], who[256], created[48], expires[48];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(tok, "token_id"));
        labels_when_year(ctl_str(tok, "created_at"), created, sizeof(created));
        labels_when_year(ctl_str(tok, "expires_at"), expires, sizeof(expires));
        const char *label = ctl_str(tok, "label");
        const char *row[] = {id,
                             labels_get(LABELS_ROLE, ctl_str(tok, "role")),
                             holder(tok, who, sizeof(who)),
                             label && *label ? label : NULL,
                             created,
                             ctl_str(tok, "expires_at") ? expires : "jamais",
                             labels_get(LABELS_TOKEN_STATE, ctl_str(tok, "state"))};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

static const struct ctl_field_option token_fields[] = {
    {"role", "--role"},
    {"rpps", "--rpps"},
    {"organisation_id", "--organisation"},
    {"site_id", "--site"},
    {"label", "--label"},
    {"expires_days", "--expires-days"},
    {"state", "--state"},
    {"token_id", "N°"},
    {NULL, NULL},
};

/* Checks the arguments of token create and builds its data; returns NULL
 * after a usage error. */
static json_t *create_data(struct ctl *c, const struct token_args *a)
{
    if (!a->role) {
        ctl_usage_error(c, "--role manquant (gp, pharmacy, emergency, sas, professional, desk, "
                           "coordinator, admin, platform, reception)");
        return NULL;
    }
    json_t *role = cmd_one_value(c, "--role", a->role, LABELS_ROLE);
    if (!role)
        return NULL;
    const char *r = json_string_value(role);
    bool gp = strcmp(r, "gp") == 0;
    bool reception = strcmp(r, "reception") == 0;
    bool requester = !gp && !reception && strcmp(r, "coordinator") != 0 &&
                     strcmp(r, "admin") != 0 && strcmp(r, "platform") != 0;
    json_int_t organisation = 0, site = 0, days = 0;
    const char *why = NULL;
    if (a->rpps && !validate_rpps(a->rpps))
        why = "--rpps : numéro RPPS invalide (11 chiffres, le dernier étant la clé de Luhn)";
    else if (a->organisation && !ctl_parse_id(a->organisation, &organisation))
        why = "--organisation : numéro d'organisation attendu (affiché par snpctl import)";
    else if (a->site && !ctl_parse_id(a->site, &site))
        why = "--site : numéro de lieu attendu (affiché par snpctl territory)";
    else if (a->expires_days && !ctl_parse_id(a->expires_days, &days))
        why = "--expires-days : nombre de jours attendu (1 à 3650)";
    else if (gp && !a->rpps)
        why = "un jeton gp désigne un praticien : donnez --rpps";
    else if (!gp && a->rpps)
        why = "--rpps ne va qu'avec --role gp";
    else if (requester && !a->organisation)
        why = "un jeton de demandeur désigne une organisation de son type : donnez "
              "--organisation N°";
    else if (!requester && a->organisation)
        why = "--organisation ne va qu'avec les rôles pharmacy, emergency, sas, professional "
              "et desk";
    else if (reception && !a->site)
        why = "un jeton reception désigne un lieu : donnez --site N°";
    else if (!reception && a->site)
        why = "--site ne va qu'avec --role reception";
    if (why) {
        json_decref(role);
        ctl_usage_error(c, "%s", why);
        return NULL;
    }
    json_t *q = json_pack("{s:o}", "role", role);
    if (a->rpps)
        json_object_set_new(q, "rpps", json_string(a->rpps));
    if (a->organisation)
        json_object_set_new(q, "organisation_id", json_integer(organisation));
    if (a->site)
        json_object_set_new(q, "site_id", json_integer(site));
    if (a->label)
        json_object_set_new(q, "label", json_string(a->label));
    if (a->expires_days)
        json_object_set_new(q, "expires_days", json_integer(days));
    return q;
}

static int token_create(struct ctl *c, const struct token_args *a)
{
    json_t *q = create_data(c, a), *r;
    if (!q)
        return CTL_USAGE;
    int rc = ctl_call(c, "token.create", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
        return CTL_OK;
    }
    /* The secret alone on standard output, so that $(snpctl token create)
     * is the secret; the rest is for the person who typed it. */
    printf("%s\n", ctl_str(r, "secret"));
    fflush(stdout);
    const json_t *t = json_object_get(r, "token");
    char who[256], expires[48];
    const char *label = ctl_str(t, "label");
    fprintf(stderr, "Jeton n° %lld créé : %s", (long long)ctl_int(t, "token_id"),
            labels_get(LABELS_ROLE, ctl_str(t, "role")));
    if (holder(t, who, sizeof(who)))
        fprintf(stderr, ", %s", who);
    if (label && *label)
        fprintf(stderr, ", « %s »", label);
    labels_when_year(ctl_str(t, "expires_at"), expires, sizeof(expires));
    fprintf(stderr,
            ", %s%s.  Son secret (sortie standard) ne sera plus affiché : remettez-le à "
            "son titulaire.\n",
            ctl_str(t, "expires_at") ? "expire le " : "sans expiration",
            ctl_str(t, "expires_at") ? expires : "");
    json_decref(r);
    return CTL_OK;
}

static int token_list(struct ctl *c, const struct token_args *a)
{
    json_t *q = json_object(), *r;
    if (a->state) {
        json_t *state = cmd_one_value(c, "--state", a->state, LABELS_TOKEN_STATE);
        if (!state) {
            json_decref(q);
            return CTL_USAGE;
        }
        json_object_set_new(q, "state", state);
    }
    int rc = ctl_call(c, "token.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    size_t n = json_array_size(json_object_get(r, "tokens"));
    if (c->json)
        ctl_print_json(r);
    else if (n == 0)
        printf("Aucun jeton.\n");
    else
        print_tokens(json_object_get(r, "tokens"));
    json_decref(r);
    return CTL_OK;
}

static int token_revoke(struct ctl *c, int argc, char **argv, int first)
{
    if (first >= argc)
        return ctl_usage_error(c, "numéro du jeton à révoquer manquant (voir snpctl token list)");
    if (first + 1 < argc)
        return ctl_usage_error(c, "argument inattendu : %s (un jeton à la fois)", argv[first + 1]);
    json_int_t id;
    if (!ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "« %s » n'est pas un numéro de jeton (voir snpctl token list)",
                               argv[first]);
    json_t *q = json_pack("{s:I}", "token_id", id), *r;
    int rc = ctl_call(c, "token.revoke", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        printf("Jeton n° %lld révoqué : il est refusé dès maintenant.\n", (long long)id);
        json_t *one = json_pack("[O]", r);
        print_tokens(one);
        json_decref(one);
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_token(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, token_usage, "create, list ou revoke", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    static const struct option create_options[] = {
        {"role", required_argument, NULL, OPT_ROLE},
        {"rpps", required_argument, NULL, OPT_RPPS},
        {"organisation", required_argument, NULL, OPT_ORGANISATION},
        {"organization", required_argument, NULL, OPT_ORGANISATION},
        {"site", required_argument, NULL, OPT_SITE},
        {"label", required_argument, NULL, OPT_LABEL},
        {"expires-days", required_argument, NULL, OPT_EXPIRES_DAYS},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    static const struct option list_options[] = {
        {"state", required_argument, NULL, OPT_STATE},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    static const struct option revoke_options[] = {
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    const struct option *options = strcmp(sub, "create") == 0   ? create_options
                                   : strcmp(sub, "list") == 0   ? list_options
                                   : strcmp(sub, "revoke") == 0 ? revoke_options
                                                                : NULL;
    if (!options)
        return ctl_usage_error(c, "token : sous-commande inconnue « %s »", sub);
    struct token_args a = {0};
    int first;
    rc = cmd_parse(c, argc - 1, argv + 1, options, on_token_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    first += 1;
    c->field_options = token_fields;
    if (options == revoke_options)
        return token_revoke(c, argc, argv, first);
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    return options == create_options ? token_create(c, &a) : token_list(c, &a);
}
