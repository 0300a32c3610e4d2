/* snpctl territory, indicators and whoami: the coordinator's view of the
 * territory, and what a token is.  See commands.h and docs/snpctl.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"
#include "clients/cli/timearg.h"
#include "protocol/snp_decl.h"

/* What snpctl says of each setting; the declaration gives its name, kind,
 * bounds and default (protocol/snp_decl.h). */
static const struct {
    const char *unit;   /* after its value in show ("s"), integers only */
    const char *shown;  /* what it is, in show (integers only) */
    const char *help;   /* what it is, in set's help; '\n' goes on below it */
    const char *syntax; /* its value in set's help, when not the bounds */
} setting_words[SNP_SETTING_COUNT] = {
    [SNP_SETTING_HOLD_SECONDS] = {.unit = "s",
                                  .shown = "blocage d'un créneau proposé",
                                  .help = "durée de blocage d'un créneau proposé"},
    [SNP_SETTING_ALTERNATIVES] = {.unit = "",
                                  .shown = "autres créneaux proposés",
                                  .help = "autres créneaux listés avec une proposition"},
    [SNP_SETTING_OUTCOME_DELAY_HOURS] = {.unit = "h",
                                         .shown = "délai de déclaration de l'issue",
                                         .help = "délai pour déclarer l'issue d'un rendez-vous"},
    [SNP_SETTING_IDENTITY_RETENTION_DAYS] = {.unit = "j",
                                             .shown = "conservation de l'identité",
                                             .help = "conservation de l'identité des patients"},
    [SNP_SETTING_INDICATOR_MASK_THRESHOLD] = {.unit = "",
                                              .shown = "seuil de masquage des indicateurs",
                                              .help = "seuil de masquage des indicateurs"},
    [SNP_SETTING_INDICATOR_CONSOLIDATION_DAYS] = {.unit = "j",
                                                  .shown = "consolidation des indicateurs",
                                                  .help = "délai de consolidation des indicateurs"},
    [SNP_SETTING_CONTRACT_START_MONTH] = {.unit = "",
                                          .shown = "premier mois de l'année du contrat",
                                          .help = "premier mois de l'année du contrat"},
    [SNP_SETTING_AUDIT_RETENTION_MONTHS] = {.unit = " mois",
                                            .shown = "conservation du journal d'audit",
                                            .help = "conservation du journal d'audit"},
    [SNP_SETTING_MT_SUMMARY] = {.help = "compte rendu au médecin traitant après une\n"
                                        "consultation, par messagerie sécurisée",
                                .syntax = "on|off"},
    [SNP_SETTING_NEW_PATIENT_GPS] = {.help = "médecins qui prennent de nouveaux patients, à\n"
                                             "qui adresser un patient sans médecin traitant ;\n"
                                             "vide : aucun (la liste donnée remplace la\n"
                                             "précédente)",
                                     .syntax = "RPPS,RPPS..."},
    [SNP_SETTING_WEIGHTS_START_PER_HOUR] = {.help = "poids du classement : heure d'attente"},
    [SNP_SETTING_WEIGHTS_DISTANCE_PER_KM] = {.help = "poids du classement : kilomètre"},
    [SNP_SETTING_WEIGHTS_OWN_MT_BONUS] = {.help = "bonus du médecin traitant"},
    [SNP_SETTING_WEIGHTS_FAIRNESS] = {.help = "poids de l'équité entre médecins"},
    [SNP_SETTING_WEIGHTS_SCARCITY] = {.help = "poids des créneaux rares"},
};

/* Where the help of a setting starts on its line. */
#define HELP_COLUMN 38

/* The usage of snpctl territory, each setting with its bounds as declared;
 * built once, kept for the process's life. */
static const char *territory_usage(void)
{
    static struct buf b;
    if (b.len > 0 && !b.failed)
        return b.data;
    buf_free(&b);
    buf_printf(&b, "usage : snpctl territory show\n"
                   "        snpctl territory set CLÉ=VALEUR...\n"
                   "\n"
                   "show : le territoire, ses communes, ses voisins et ses réglages (tous les "
                   "rôles).\n"
                   "set : change des réglages (rôles coordinator et admin) ; clés :\n");
    for (unsigned k = 0; k < SNP_SETTING_COUNT; k++) {
        const struct snp_setting_decl *d = snp_setting_bounds((enum snp_setting)k);
        char key[96];
        if (setting_words[k].syntax)
            snprintf(key, sizeof(key), "%s (%s)", d->key, setting_words[k].syntax);
        else
            snprintf(key, sizeof(key), "%s (%g-%g)", d->key, d->min, d->max);
        buf_printf(&b, "  %-*s ", HELP_COLUMN - 3, key);
        for (const char *h = setting_words[k].help ? setting_words[k].help : ""; *h; h++) {
            if (*h == '\n')
                buf_printf(&b, "\n%*s", HELP_COLUMN, "");
            else
                buf_append(&b, h, 1);
        }
        buf_printf(&b, "\n");
    }
    buf_printf(&b,
               "Exemples : snpctl territory set hold_seconds=120 weights.distance_per_km=0.2\n"
               "           snpctl territory set mt_summary=off new_patient_gps=10999900011\n"
               "%s",
               CTL_COMMON_HELP);
    return b.failed ? "usage : snpctl territory show|set CLÉ=VALEUR...\n" : b.data;
}

static const char indicators_usage[] =
    "usage : snpctl indicators [--month AAAA-MM]\n"
    "        snpctl indicators --export csv|html|json|statement\n"
    "                          [--month AAAA-MM | --quarter AAAA-Tn | --year AAAA]\n"
    "                          [--output FICHIER]\n"
    "\n"
    "Les indicateurs du mois (le mois en cours par défaut), agrégés, sans identité de\n"
    "patient (rôles coordinator et admin).\n"
    "--export : le fichier de la période, le même que snpd indicators : csv (une ligne\n"
    "  par cellule, pour un tableur), html (le rapport imprimable), json, statement (le\n"
    "  relevé de participation des médecins, CSV).  Période : un mois, un trimestre\n"
    "  (2026-Q4 ou 2026-T4) ou une année de contrat (2026 : douze mois à partir du mois\n"
    "  de début du contrat du territoire).  --output : le fichier à écrire (remplacé\n"
    "  d'un coup), sinon la sortie standard.  Les cellules masquées (secret\n"
    "  statistique) y sont écrites masquées.\n"
    "Exemple : snpctl indicators --export html --quarter 2026-T4 --output "
    "t4.html\n" CTL_COMMON_HELP;

static const char whoami_usage[] =
    "usage : snpctl whoami\n"
    "\n"
    "Ce que le jeton permet : rôle, territoire, organisation ou RPPS, expiration, et\n"
    "l'écart entre l'horloge du serveur et celle de cette machine.\n" CTL_COMMON_HELP;

static const struct option plain_options[] = {
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

/* Prints one integer setting, "—" when the server left it out. */
static void print_setting(const json_t *s, const char *key, const char *unit, const char *what)
{
    json_t *v = json_object_get(s, key);
    if (json_is_integer(v))
        printf("  %-24s %lld%s%s (%s)\n", key, (long long)json_integer_value(v), *unit ? " " : "",
               unit, what);
    else
        printf("  %-24s — (%s ; non donné par le serveur)\n", key, what);
}

/* Prints the practitioners of `t` (a territory) whose RPPS are listed in
 * its setting `new_patient_gps`, by name where territory.get names them. */
static void print_new_patient_gps(const json_t *t)
{
    const json_t *list = json_object_get(json_object_get(t, "settings"), "new_patient_gps");
    if (!json_is_array(list)) {
        printf("  %-24s — (non donné par le serveur)\n", "new_patient_gps");
        return;
    }
    if (json_array_size(list) == 0) {
        printf("  %-24s aucun (médecins qui prennent de nouveaux patients)\n", "new_patient_gps");
        return;
    }
    printf("  %-24s médecins qui prennent de nouveaux patients :\n", "new_patient_gps");
    size_t i, k;
    json_t *v, *p;
    json_array_foreach (list, i, v) {
        const char *rpps = json_string_value(v);
        const json_t *named = NULL;
        json_array_foreach (json_object_get(t, "practitioners"), k, p)
            if (rpps && ctl_str(p, "rpps") && strcmp(ctl_str(p, "rpps"), rpps) == 0)
                named = p;
        if (named)
            printf("    %s  Dr %s %s\n", rpps, ctl_str(named, "given_name"),
                   ctl_str(named, "family_name"));
        else
            printf("    %s\n", rpps ? rpps : "?");
    }
}

/* Prints the settings of the territory `t`. */
static void print_settings(const json_t *t)
{
    const json_t *s = json_object_get(t, "settings");
    printf("Réglages :\n");
    for (unsigned k = 0; k < SNP_SETTING_COUNT; k++) {
        const struct snp_setting_decl *d = snp_setting_bounds((enum snp_setting)k);
        if (d->kind == SNP_SETTING_KIND_INTEGER)
            print_setting(s, d->key, setting_words[k].unit ? setting_words[k].unit : "",
                          setting_words[k].shown ? setting_words[k].shown : d->key);
    }
    json_t *summary = json_object_get(s, "mt_summary");
    printf("  %-24s %s (compte rendu au médecin traitant après une consultation)\n", "mt_summary",
           json_is_boolean(summary) ? (json_is_true(summary) ? "on" : "off")
                                    : "— (non donné par le serveur)");
    print_new_patient_gps(t);
    const json_t *w = json_object_get(s, "weights");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)w, key, v) {
        printf("  weights.%-16s %g\n", key, json_number_value(v));
    }
}

/* The name of the commune INSEE among the territory's communes, or NULL. */
static const char *commune_name(const json_t *t, const char *insee)
{
    size_t i;
    json_t *cm;
    json_array_foreach (json_object_get(t, "communes"), i, cm) {
        const char *code = ctl_str(cm, "insee");
        if (insee && code && strcmp(code, insee) == 0)
            return ctl_str(cm, "name");
    }
    return NULL;
}

/* The territory's sites with their numbers (what slots publish --site
 * takes); servers before protocol 1.2.0 do not list them. */
static void print_sites(const json_t *t)
{
    const json_t *sites = json_object_get(t, "sites");
    if (!json_is_array(sites))
        return;
    static const char *const heads[] = {"N°", "Lieu", "Type", "Commune"};
    struct table tb;
    table_init(&tb, 4, heads);
    table_align_right(&tb, 0);
    size_t i;
    json_t *s;
    json_array_foreach (sites, i, s) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(s, "site_id"));
        const char *insee = ctl_str(s, "commune_insee");
        const char *commune = commune_name(t, insee);
        const char *row[] = {id, ctl_str(s, "name") ? ctl_str(s, "name") : "?",
                             labels_get(LABELS_SITE_KIND, ctl_str(s, "kind")),
                             commune ? commune : (insee ? insee : "")};
        table_add(&tb, row);
    }
    printf("%zu lieu%s de consultation :\n", json_array_size(sites),
           json_array_size(sites) > 1 ? "x" : "");
    table_print(&tb, stdout, 2);
    table_free(&tb);
}

static void print_territory(const json_t *t)
{
    printf("Territoire %s — %s (%s), fuseau %s\n", ctl_str(t, "territory_id"), ctl_str(t, "name"),
           strcmp(ctl_str(t, "kind") ? ctl_str(t, "kind") : "", "sas") == 0 ? "SAS" : "CPTS",
           ctl_str(t, "time_zone"));
    const json_t *nb = json_object_get(t, "neighbours");
    if (json_array_size(nb) > 0) {
        printf("Voisins : ");
        size_t i;
        json_t *v;
        json_array_foreach (nb, i, v)
            printf("%s%s", i ? ", " : "", json_string_value(v));
        printf("\n");
    }
    static const char *const heads[] = {"Commune", "INSEE", "Code postal", "Latitude", "Longitude"};
    struct table tb;
    table_init(&tb, 5, heads);
    table_align_right(&tb, 3);
    table_align_right(&tb, 4);
    size_t i;
    json_t *cm;
    json_array_foreach (json_object_get(t, "communes"), i, cm) {
        char lat[32], lon[32];
        snprintf(lat, sizeof(lat), "%.4f", json_number_value(json_object_get(cm, "latitude")));
        snprintf(lon, sizeof(lon), "%.4f", json_number_value(json_object_get(cm, "longitude")));
        const char *pc = ctl_str(cm, "postal_code");
        const char *row[] = {ctl_str(cm, "name"), ctl_str(cm, "insee"), pc ? pc : "", lat, lon};
        table_add(&tb, row);
    }
    printf("%zu commune%s :\n", json_array_size(json_object_get(t, "communes")),
           json_array_size(json_object_get(t, "communes")) > 1 ? "s" : "");
    table_print(&tb, stdout, 2);
    table_free(&tb);
    print_sites(t);
    print_settings(t);
}

/* The JSON value of `text`, typed after the key of setting `d`, or NULL
 * when it is not one (the caller says so).  The values of a list are
 * checked by the codec, which names the setting. */
static json_t *setting_value(const struct snp_setting_decl *d, const char *text)
{
    char *end;
    switch (d->kind) {
    case SNP_SETTING_KIND_INTEGER: {
        long long n = strtoll(text, &end, 10);
        return end != text && !*end ? json_integer(n) : NULL;
    }
    case SNP_SETTING_KIND_NUMBER: {
        double v = strtod(text, &end);
        return end != text && !*end ? json_real(v) : NULL;
    }
    case SNP_SETTING_KIND_BOOLEAN:
        if (strcmp(text, "on") == 0 || strcmp(text, "true") == 0)
            return json_true();
        if (strcmp(text, "off") == 0 || strcmp(text, "false") == 0)
            return json_false();
        return NULL;
    case SNP_SETTING_KIND_ARRAY: {
        json_t *list = json_array();
        char *copy = strdup(text), *save = NULL;
        for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
            json_array_append_new(list, json_string(tok));
        free(copy);
        return list;
    }
    }
    return NULL;
}

static const char *const setting_expected[] = {
    [SNP_SETTING_KIND_INTEGER] = "nombre entier attendu",
    [SNP_SETTING_KIND_NUMBER] = "nombre attendu",
    [SNP_SETTING_KIND_BOOLEAN] = "on ou off attendu",
    [SNP_SETTING_KIND_ARRAY] = "liste attendue",
};

static int territory_set(struct ctl *c, int argc, char **argv, int first)
{
    if (first >= argc)
        return ctl_usage_error(c, "donnez au moins un réglage CLÉ=VALEUR");
    json_t *s = json_object();
    static struct ctl_field_option fields[SNP_SETTING_COUNT + 1];
    for (unsigned k = 0; k < SNP_SETTING_COUNT; k++) {
        const char *key = snp_setting_bounds((enum snp_setting)k)->key;
        fields[k] = (struct ctl_field_option){key, key};
    }
    c->field_options = fields;
    for (int i = first; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        char key[128] = "";
        if (eq && (size_t)(eq - argv[i]) < sizeof(key))
            snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
        enum snp_setting k;
        if (!snp_setting_find(key, &k)) {
            json_decref(s);
            return ctl_usage_error(c, "réglage inconnu « %s » (CLÉ=VALEUR, clés dans --help)",
                                   argv[i]);
        }
        const struct snp_setting_decl *d = snp_setting_bounds(k);
        json_t *v = setting_value(d, eq + 1);
        if (!v) {
            json_decref(s);
            return ctl_usage_error(c, "%s : %s", d->key, setting_expected[d->kind]);
        }
        if (json_is_number(v) && !snp_setting_allows(k, json_number_value(v))) {
            json_decref(v);
            json_decref(s);
            return ctl_usage_error(c, "%s : de %g à %g", d->key, d->min, d->max);
        }
        /* A member of an object setting (weights.fairness) goes in it. */
        json_t *parent = s;
        size_t path = strlen(d->key) - strlen(d->member);
        if (path > 0) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)path - 1, d->key);
            parent = json_object_get(s, name);
            if (!parent) {
                parent = json_object();
                json_object_set_new(s, name, parent);
            }
        }
        json_object_set_new(parent, d->member, v);
    }
    json_t *r;
    int rc = ctl_call(c, "territory.settings.update", s, &r, NULL, NULL);
    json_decref(s);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        printf("Réglages enregistrés.\n");
        print_settings(r);
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_territory(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, territory_usage(), "show ou set", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    int first;
    rc = cmd_parse(c, argc - 1, argv + 1, plain_options, NULL, NULL, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    first += 1;
    if (strcmp(sub, "set") == 0)
        return territory_set(c, argc, argv, first);
    if (strcmp(sub, "show") != 0)
        return ctl_usage_error(c, "territory : sous-commande inconnue « %s »", sub);
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    json_t *t;
    rc = ctl_territory(c, &t);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(t);
    else
        print_territory(t);
    return CTL_OK;
}

/* ---- indicators ---------------------------------------------------------- */

/* The options of snpctl indicators. */
struct indicators_args {
    const char *kind, *period, *format, *output;
    int periods;
};

enum { OPT_MONTH = 1, OPT_QUARTER, OPT_YEAR, OPT_EXPORT, OPT_OUTPUT };

static int on_indicators_option(void *state, int id, const char *arg)
{
    struct indicators_args *a = state;
    switch (id) {
    case OPT_MONTH:
    case OPT_QUARTER:
    case OPT_YEAR:
        a->kind = id == OPT_MONTH ? "month" : id == OPT_QUARTER ? "quarter" : "year";
        a->period = arg;
        a->periods++;
        return CTL_OK;
    case OPT_EXPORT:
        a->format = arg;
        return CTL_OK;
    case OPT_OUTPUT:
        a->output = arg;
        return CTL_OK;
    }
    return CTL_USAGE;
}

/* snpctl indicators --export: indicators.export, the parts joined into the
 * file. */
static int indicators_export(struct ctl *c, const struct indicators_args *a)
{
    /* "2026-T4", as a French user writes a quarter, is the protocol's 2026-Q4. */
    char period[16];
    snprintf(period, sizeof(period), "%s", a->period);
    if (strcmp(a->kind, "quarter") == 0 && strlen(period) == 7 && period[5] == 'T')
        period[5] = 'Q';
    static const struct ctl_field_option fields[] = {
        {"period", "--month/--quarter/--year"}, {"format", "--export"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_pack("{s:s, s:s, s:s}", "period_kind", a->kind, "period", period, "format",
                          a->format),
           *r;
    int rc = ctl_call(c, "indicators.export", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    size_t len = 0;
    bool ok = cmd_write_parts(r, a->output, &len);
    int64_t consolidated;
    if (ok && timeutil_parse_rfc3339(ctl_str(r, "consolidated_at"), &consolidated) &&
        consolidated > timeutil_now())
        fprintf(stderr,
                "snpctl : période consolidée le %s seulement ; jusque-là ses chiffres peuvent "
                "encore changer.\n",
                ctl_str(r, "consolidated_at"));
    if (ok && a->output)
        fprintf(stderr, "%s écrit (%zu octets ; nom proposé par le serveur : %s).\n", a->output,
                len, ctl_str(r, "filename"));
    json_decref(r);
    return ok ? CTL_OK : CTL_UNAVAILABLE;
}

/* Whether the indicator `name` is of the indicator `code` (`code` or
 * `code__key`, the breakdown's cells). */
static bool same_indicator(const char *name, const char *code, size_t len)
{
    return name && strncmp(name, code, len) == 0 &&
           (name[len] == '\0' || strncmp(name + len, "__", 2) == 0);
}

/* The indicators with the masked cells (protocol 1.2.0, `masked`) put back
 * among them, each after the last figure of its indicator, or at the end:
 * shown as masked, never dropped.  Returns a new array. */
static json_t *with_masked(json_t *indicators, json_t *masked)
{
    json_t *rows = json_copy(indicators);
    size_t i;
    json_t *m;
    json_array_foreach (masked, i, m) {
        const char *name = ctl_str(m, "name");
        if (!name)
            continue;
        const char *sep = strstr(name, "__");
        size_t len = sep ? (size_t)(sep - name) : strlen(name);
        size_t at = json_array_size(rows);
        for (size_t k = 0; k < json_array_size(rows); k++)
            if (same_indicator(ctl_str(json_array_get(rows, k), "name"), name, len))
                at = k + 1;
        json_array_insert(rows, at, m);
    }
    return rows;
}

int cmd_indicators(struct ctl *c, int argc, char **argv)
{
    c->usage = indicators_usage;
    static const struct option options[] = {
        {"month", required_argument, NULL, OPT_MONTH},
        {"quarter", required_argument, NULL, OPT_QUARTER},
        {"year", required_argument, NULL, OPT_YEAR},
        {"export", required_argument, NULL, OPT_EXPORT},
        {"output", required_argument, NULL, OPT_OUTPUT},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    struct indicators_args a = {0};
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_indicators_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    if (a.periods > 1)
        return ctl_usage_error(c, "une seule période : --month, --quarter ou --year");
    if (a.format) {
        if (!a.period)
            return ctl_usage_error(c, "--export : donnez la période (--month AAAA-MM, --quarter "
                                      "AAAA-Tn ou --year AAAA)");
        return indicators_export(c, &a);
    }
    if (a.output || (a.kind && strcmp(a.kind, "month") != 0))
        return ctl_usage_error(c, "--quarter, --year et --output vont avec --export (le tableau "
                                  "à l'écran est celui d'un mois)");
    const char *month = a.period;
    char current[32];
    if (!month) {
        /* The current month of the territory's local time. */
        json_t *t;
        rc = ctl_territory(c, &t);
        if (rc != CTL_OK)
            return rc;
        struct tm tm;
        if (!timeutil_to_local(c->zone, timeutil_now(), &tm))
            return CTL_UNAVAILABLE;
        snprintf(current, sizeof(current), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        month = current;
    }
    static const struct ctl_field_option fields[] = {{"month", "--month"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_pack("{s:s}", "month", month), *r;
    const char *code = NULL;
    c->quiet_code = "not_found";
    rc = ctl_call(c, "indicators.get", q, &r, NULL, &code);
    json_decref(q);
    if (rc != CTL_OK) {
        if (code && strcmp(code, "not_found") == 0)
            fprintf(stderr,
                    "snpctl: les indicateurs de %s ne sont pas disponibles : ce serveur "
                    "ne les calcule pas encore (not_found).\n",
                    month);
        return rc;
    }
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
        return CTL_OK;
    }
    printf("Indicateurs de %s — territoire %s\n", ctl_str(r, "month"), ctl_str(r, "territory_id"));
    static const char *const heads[] = {"Indicateur", "Valeur", "Unité", "Version"};
    struct table t;
    table_init(&t, 4, heads);
    table_align_right(&t, 1);
    table_align_right(&t, 3);
    size_t i;
    json_t *ind;
    json_t *rows = with_masked(json_object_get(r, "indicators"), json_object_get(r, "masked"));
    json_array_foreach (rows, i, ind) {
        char value[32], version[16];
        const char *reason = ctl_str(ind, "reason");
        if (!reason)
            snprintf(value, sizeof(value), "%g", json_number_value(json_object_get(ind, "value")));
        else if (strcmp(reason, "small_count") == 0 && ctl_int(ind, "below") > 0)
            snprintf(value, sizeof(value), "< %lld", (long long)ctl_int(ind, "below"));
        else
            snprintf(value, sizeof(value), "masqué");
        snprintf(version, sizeof(version), "%lld", (long long)ctl_int(ind, "definition_version"));
        const char *unit = ctl_str(ind, "unit");
        /* The catalogue's French label; the code name from older servers. */
        const char *name = ctl_str(ind, "label") ? ctl_str(ind, "label") : ctl_str(ind, "name");
        const char *row[] = {name, value,
                             reason ? "secret statistique"
                             : unit ? labels_get(LABELS_INDICATOR_UNIT, unit)
                                    : "",
                             version};
        table_add(&t, row);
    }
    json_decref(rows);
    if (t.nrows == 0)
        printf("Aucun indicateur pour ce mois.\n");
    else
        table_print(&t, stdout, 0);
    table_free(&t);
    json_decref(r);
    return CTL_OK;
}

/* ---- whoami -------------------------------------------------------------- */

int cmd_whoami(struct ctl *c, int argc, char **argv)
{
    c->usage = whoami_usage;
    int first;
    int rc = cmd_parse(c, argc, argv, plain_options, NULL, NULL, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    struct snpclient_ws *w;
    json_t *s;
    rc = ctl_ws_open(c, &w, &s);
    if (rc != CTL_OK)
        return rc;
    snpclient_ws_close(w);
    if (c->json) {
        ctl_print_json(s);
        json_decref(s);
        return CTL_OK;
    }
    printf("Serveur      %s\n", c->server);
    printf("Rôle         %s (%s)\n", ctl_str(s, "role"),
           labels_get(LABELS_ROLE, ctl_str(s, "role")));
    printf("Territoire   %s\n", ctl_str(s, "territory_id"));
    if (ctl_str(s, "rpps"))
        printf("RPPS         %s\n", ctl_str(s, "rpps"));
    /* A gp's sites, with the number slots publish --site takes. */
    size_t i;
    json_t *site;
    json_array_foreach (json_object_get(s, "sites"), i, site)
        printf("%-12s n° %lld — %s\n", i ? "" : "Lieux", (long long)ctl_int(site, "site_id"),
               ctl_str(site, "name") ? ctl_str(site, "name") : "?");
    if (ctl_str(s, "rpps") && json_is_array(json_object_get(s, "sites")) &&
        json_array_size(json_object_get(s, "sites")) == 0)
        printf("Lieux        aucun : demandez à la coordination de vous rattacher à un lieu\n");
    if (json_object_get(s, "organisation_id"))
        printf("Organisation %s (n° %lld)\n",
               ctl_str(s, "organisation_name") ? ctl_str(s, "organisation_name") : "?",
               (long long)ctl_int(s, "organisation_id"));
    if (json_object_get(s, "site_id"))
        printf("Lieu         %s (n° %lld)\n",
               ctl_str(s, "site_name") ? ctl_str(s, "site_name") : "?",
               (long long)ctl_int(s, "site_id"));
    if (ctl_str(s, "organisation_commune_insee"))
        printf("Commune      %s (INSEE)\n", ctl_str(s, "organisation_commune_insee"));
    char when[48];
    labels_when_year(ctl_str(s, "expires_at"), when, sizeof(when));
    printf("Expiration   %s\n", ctl_str(s, "expires_at") ? when : "aucune");
    int64_t server;
    if (timeutil_parse_rfc3339(ctl_str(s, "server_time"), &server)) {
        long skew = (long)(server - timeutil_now());
        printf("Horloge      écart de %ld s avec le serveur%s\n", skew,
               skew > 30 || skew < -30 ? " : réglez l'heure de cette machine" : "");
    }
    json_decref(s);
    return CTL_OK;
}
