/* snpctl participation: a GP's proof of participation (participation.get,
 * participation.attestation; docs/participation.md): per ISO week the hours
 * open to patients not their own and the supplements used out of 20, per
 * booking whether it qualifies and why not, and the yearly attestation as a
 * file; and, for coordinators, the preconditions (participation.precondition.
 * set and .list).  See commands.h and docs/snpctl.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

static const char participation_usage[] =
    "usage : snpctl participation [--year AAAA | --from AAAA-MM-JJ --to AAAA-MM-JJ]\n"
    "                             [--rpps N] [--format html|csv --output FICHIER]\n"
    "        snpctl participation precondition set --rpps N --kind sas_registered|cpts_member\n"
    "                             --from AAAA-MM-JJ [--to AAAA-MM-JJ]\n"
    "        snpctl participation precondition list [--rpps N]\n"
    "\n"
    "La participation d'un médecin (rôle gp : la sienne ; coordinator et admin : un\n"
    "médecin du territoire, --rpps) : par semaine ISO, les heures ouvertes aux patients\n"
    "qui ne sont pas les siens et les suppléments SNP retenus sur 20 (plafond compté\n"
    "sur tous les territoires) ; par rendez-vous, s'il ouvre droit au supplément et\n"
    "sinon pourquoi.  Par défaut l'année en cours.  Avec --format, l'attestation\n"
    "annuelle (HTML imprimable ou CSV) à envoyer à la CPAM, écrite dans FICHIER (ou\n"
    "sur la sortie standard).\n"
    "precondition set (coordinator, admin) : inscription au SAS ou adhésion à la CPTS\n"
    "d'un médecin du territoire, du --from au --to inclus (sans --to : en cours) ;\n"
    "la même clé (médecin, type, --from) redéfinit la date de fin.\n" CTL_COMMON_HELP;

enum { OPT_YEAR = 1, OPT_FROM, OPT_TO, OPT_RPPS, OPT_FORMAT, OPT_OUTPUT, OPT_KIND };

struct participation_args {
    const char *year, *from, *to, *rpps, *format, *output, *kind;
};

static int on_option(void *state, int id, const char *arg)
{
    struct participation_args *a = state;
    const char **slot[] = {
        [OPT_YEAR] = &a->year, [OPT_FROM] = &a->from,     [OPT_TO] = &a->to,
        [OPT_RPPS] = &a->rpps, [OPT_FORMAT] = &a->format, [OPT_OUTPUT] = &a->output,
        [OPT_KIND] = &a->kind};
    if (id < OPT_YEAR || id > OPT_KIND)
        return CTL_USAGE;
    *slot[id] = arg;
    return CTL_OK;
}

static const struct option options[] = {
    {"year", required_argument, NULL, OPT_YEAR},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"rpps", required_argument, NULL, OPT_RPPS},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"kind", required_argument, NULL, OPT_KIND},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

/* The weeks and their totals. */
static void print_weeks(const json_t *r)
{
    static const char *const heads[] = {"Semaine", "Lundi",     "Créneaux",   "Heures",
                                        "2 h",     "Éligibles", "Suppléments"};
    struct table t;
    table_init(&t, 7, heads);
    for (int col = 2; col < 7; col++)
        table_align_right(&t, col);
    char cap[16];
    snprintf(cap, sizeof(cap), "/%lld", (long long)ctl_int(r, "weekly_cap"));
    size_t i;
    json_t *w;
    json_array_foreach (json_object_get(r, "weeks"), i, w) {
        char slots[24], hours[32], eligible[24], used[40];
        snprintf(slots, sizeof(slots), "%lld", (long long)ctl_int(w, "slots"));
        snprintf(hours, sizeof(hours), "%.2f", json_number_value(json_object_get(w, "hours")));
        snprintf(eligible, sizeof(eligible), "%lld", (long long)ctl_int(w, "eligible"));
        snprintf(used, sizeof(used), "%lld%s", (long long)ctl_int(w, "supplements"), cap);
        const char *row[] = {ctl_str(w, "iso_week"),
                             ctl_str(w, "monday"),
                             slots,
                             hours,
                             json_is_true(json_object_get(w, "open_2h")) ? "oui" : "non",
                             eligible,
                             used};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
    const json_t *tot = json_object_get(r, "totals");
    printf("Total : %.2f h ouvertes, %lld semaine(s) sur %lld avec au moins 2 h, %lld "
           "supplément(s) retenu(s) (%lld éligible(s)).\n",
           json_number_value(json_object_get(tot, "hours")),
           (long long)ctl_int(tot, "weeks_open_2h"), (long long)ctl_int(tot, "weeks"),
           (long long)ctl_int(tot, "supplements"), (long long)ctl_int(tot, "eligible"));
}

/* The bookings and why each does not qualify, in French. */
static void print_bookings(const json_t *r)
{
    const json_t *rows = json_object_get(r, "bookings");
    if (json_array_size(rows) == 0) {
        printf("Aucun rendez-vous sur la période.\n");
        return;
    }
    static const char *const heads[] = {"Réservation", "Date",       "Territoire",
                                        "Demandeur",   "Supplément", "Pourquoi pas"};
    struct table t;
    table_init(&t, 6, heads);
    table_align_right(&t, 0);
    table_max_width(&t, 5, 70);
    size_t i;
    json_t *b;
    json_array_foreach (json_object_get(r, "bookings"), i, b) {
        char id[24], when[48], why[512] = "";
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(b, "booking_id"));
        labels_when_year(ctl_str(b, "start"), when, sizeof(when));
        size_t k;
        json_t *reason;
        json_array_foreach (json_object_get(b, "reasons"), k, reason) {
            size_t len = strlen(why);
            snprintf(why + len, sizeof(why) - len, "%s%s", k ? " ; " : "",
                     labels_get(LABELS_SUPPLEMENT_REASON, json_string_value(reason)));
        }
        const char *row[] = {id,
                             when,
                             ctl_str(b, "territory"),
                             labels_get(LABELS_AUDIENCE, ctl_str(b, "requester_kind")),
                             json_is_true(json_object_get(b, "qualifies")) ? "oui" : "non",
                             why[0] ? why : NULL};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
    if (json_is_true(json_object_get(r, "truncated")))
        printf("(liste tronquée : raccourcissez la période)\n");
}

static void print_preconditions(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("Aucune inscription au SAS ni adhésion à une CPTS enregistrée.\n");
        return;
    }
    static const char *const heads[] = {"RPPS", "Condition", "Territoire", "Du", "Au"};
    struct table t;
    table_init(&t, 5, heads);
    size_t i;
    json_t *p;
    json_array_foreach (list, i, p) {
        const char *row[] = {ctl_str(p, "rpps"),
                             labels_get(LABELS_PRECONDITION_KIND, ctl_str(p, "kind")),
                             ctl_str(p, "territory"), ctl_str(p, "valid_from"),
                             ctl_str(p, "valid_to") ? ctl_str(p, "valid_to") : "en cours"};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

/* Adds `value` as `key` to `q` when given. */
static void set_text(json_t *q, const char *key, const char *value)
{
    if (value)
        json_object_set_new(q, key, json_string(value));
}

static int precondition(struct ctl *c, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error(c, "participation precondition : set ou list ?");
    const char *sub = argv[1];
    struct participation_args a = {0};
    int first;
    int rc = cmd_parse(c, argc - 1, argv + 1, options, on_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first + 1 < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first + 1]);
    json_t *q = json_object(), *r;
    set_text(q, "rpps", a.rpps);
    const char *message;
    if (strcmp(sub, "set") == 0) {
        if (!a.rpps || !a.kind || !a.from) {
            json_decref(q);
            return ctl_usage_error(c, "precondition set : --rpps, --kind et --from sont requis");
        }
        json_t *kind = cmd_one_value(c, "--kind", a.kind, LABELS_PRECONDITION_KIND);
        if (!kind) {
            json_decref(q);
            return CTL_USAGE;
        }
        json_object_set_new(q, "kind", kind);
        set_text(q, "valid_from", a.from);
        set_text(q, "valid_to", a.to);
        static const struct ctl_field_option fields[] = {
            {"valid_from", "--from"}, {"valid_to", "--to"}, {NULL, NULL}};
        c->field_options = fields;
        message = "participation.precondition.set";
    } else if (strcmp(sub, "list") == 0) {
        message = "participation.precondition.list";
    } else {
        json_decref(q);
        return ctl_usage_error(c, "participation precondition : sous-commande inconnue « %s »",
                               sub);
    }
    rc = ctl_call(c, message, q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else if (strcmp(sub, "set") == 0) {
        json_t *one = json_pack("[O]", r);
        print_preconditions(one);
        json_decref(one);
    } else {
        print_preconditions(json_object_get(r, "preconditions"));
    }
    json_decref(r);
    return CTL_OK;
}

/* --format: the attestation of --year (the current year by default). */
static int attestation(struct ctl *c, const struct participation_args *a, json_t *q)
{
    if (a->from || a->to) {
        json_decref(q);
        return ctl_usage_error(c, "l'attestation est annuelle : --year, pas --from/--to");
    }
    if (strcmp(a->format, "html") != 0 && strcmp(a->format, "csv") != 0) {
        json_decref(q);
        return ctl_usage_error(c, "--format : html ou csv");
    }
    if (!json_object_get(q, "year")) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        json_object_set_new(q, "year", json_integer(tm.tm_year + 1900));
    }
    json_object_set_new(q, "format", json_string(a->format));
    json_t *r;
    int rc = ctl_call(c, "participation.attestation", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    size_t len = 0;
    bool ok = cmd_write_parts(r, a->output, &len);
    if (ok && a->output)
        fprintf(stderr, "%s écrit (%zu octets ; nom proposé par le serveur : %s).\n", a->output,
                len, ctl_str(r, "filename"));
    json_decref(r);
    return ok ? CTL_OK : CTL_UNAVAILABLE;
}

int cmd_participation(struct ctl *c, int argc, char **argv)
{
    c->usage = participation_usage;
    if (argc > 1 && strcmp(argv[1], "precondition") == 0)
        return precondition(c, argc - 1, argv + 1);
    struct participation_args a = {0};
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    if (a.kind)
        return ctl_usage_error(c, "--kind va avec « participation precondition set »");
    if (a.output && !a.format)
        return ctl_usage_error(c, "--output va avec --format html|csv");
    json_t *q = json_object(), *r;
    set_text(q, "rpps", a.rpps);
    if (a.year) {
        char *end;
        long y = strtol(a.year, &end, 10);
        if (*end || y < 2000 || y > 2100) {
            json_decref(q);
            return ctl_usage_error(c, "--year : une année, par exemple 2026");
        }
        json_object_set_new(q, "year", json_integer(y));
    }
    if (a.format)
        return attestation(c, &a, q);
    set_text(q, "from", a.from);
    set_text(q, "to", a.to);
    static const struct ctl_field_option fields[] = {
        {"year", "--year"}, {"from", "--from"}, {"to", "--to"}, {"rpps", "--rpps"}, {NULL, NULL}};
    c->field_options = fields;
    rc = ctl_call(c, "participation.get", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        const json_t *who = json_object_get(r, "practitioner");
        printf("Participation de Dr %s %s (RPPS %s), du %s au %s\n\n", ctl_str(who, "given_name"),
               ctl_str(who, "family_name"), ctl_str(r, "rpps"), ctl_str(r, "from"),
               ctl_str(r, "to"));
        print_weeks(r);
        printf("\n");
        print_bookings(r);
    }
    json_decref(r);
    return CTL_OK;
}
