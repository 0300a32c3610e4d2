/* snpctl shift: the rota of the CSNP half-day shifts (protocol 1.5.0,
 * shift.list and shift.assign): the coordinator lists the territory's shifts
 * (the unfilled ones with the patients nobody will see yet) and names the
 * practitioner on duty with their status, or frees a shift; a GP lists the
 * shifts they are on duty for.  See commands.h and docs/snpctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "base/validate.h"
#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"
#include "clients/cli/timearg.h"

/* The default period: today and the next 13 days. */
#define DEFAULT_DAYS 14

/* shift.list answers at most this many shifts (protocol/snp.v1.json). */
#define MAX_SHIFTS 1000

static const char shift_usage[] =
    "usage : snpctl shift list [--from DATE] [--to DATE] [--site ID] [--unfilled]\n"
    "        snpctl shift assign GARDE --rpps RPPS --status independent|locum|retired|resident\n"
    "        snpctl shift assign GARDE --free\n"
    "\n"
    "Les gardes des centres de soins non programmés (CSNP) : chaque demi-journée\n"
    "(matin 08:00–12:00, après-midi 14:00–18:00, soir 18:00–22:00, heure locale) où un\n"
    "CSNP publie des créneaux est une garde, à confier à un médecin de garde.\n"
    "list : coordinator et admin, les gardes du territoire (--unfilled : seulement celles\n"
    "  sans médecin de garde) ; gp, celles où vous êtes de garde.  Du --from au --to\n"
    "  inclus (92 jours au plus), par défaut d'aujourd'hui à dans 13 jours ; --site : un\n"
    "  seul CSNP.  Les patients sans médecin sont ceux d'une garde non pourvue.\n"
    "assign (coordinator, admin) : nomme le médecin de garde, un médecin du territoire,\n"
    "  et son statut : independent (libéral), locum (remplaçant), retired (retraité),\n"
    "  resident (interne).  Les créneaux de la garde et leurs rendez-vous lui sont\n"
    "  confiés : il reçoit les patients et déclare les issues.  --free : libère la garde\n"
    "  (ses créneaux et rendez-vous n'ont plus de médecin).\n"
    "Exemples : snpctl shift list --unfilled\n"
    "           snpctl shift assign 31 --rpps 10999900029 --status retired\n" CTL_COMMON_HELP;

enum { OPT_FROM = 1, OPT_TO, OPT_SITE, OPT_UNFILLED, OPT_RPPS, OPT_STATUS, OPT_FREE };

struct shift_args {
    const char *from, *to, *site, *rpps, *status;
    bool unfilled, free;
};

static int on_shift_option(void *state, int id, const char *arg)
{
    struct shift_args *a = state;
    switch (id) {
    case OPT_FROM:
        a->from = arg;
        break;
    case OPT_TO:
        a->to = arg;
        break;
    case OPT_SITE:
        a->site = arg;
        break;
    case OPT_UNFILLED:
        a->unfilled = true;
        break;
    case OPT_RPPS:
        a->rpps = arg;
        break;
    case OPT_STATUS:
        a->status = arg;
        break;
    case OPT_FREE:
        a->free = true;
        break;
    default:
        return CTL_USAGE;
    }
    return CTL_OK;
}

static const struct ctl_field_option shift_fields[] = {
    {"from", "--from"},    {"to", "--to"},     {"site_id", "--site"},
    {"shift_id", "GARDE"}, {"rpps", "--rpps"}, {"duty_status", "--status"},
    {NULL, NULL},
};

/* "1 patient sans médecin", "2 patients sans médecin". */
static void unattended_text(json_int_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%lld patient%s sans médecin", (long long)n, n > 1 ? "s" : "");
}

/* "Dr Anne Le Guen (libéral)", or "non pourvue" for a shift nobody is on
 * duty for. */
static void on_duty(const json_t *shift, char *buf, size_t n)
{
    const json_t *pr = json_object_get(shift, "practitioner");
    if (!pr) {
        snprintf(buf, n, "non pourvue");
        return;
    }
    const char *status = ctl_str(shift, "duty_status");
    snprintf(buf, n, "Dr %s %s (%s)", ctl_str(pr, "given_name"), ctl_str(pr, "family_name"),
             status ? labels_get(LABELS_DUTY_STATUS, status) : "statut non renseigné");
}

/* Prints the shifts of the array `shifts` as a table (with a column for the
 * patients nobody will see when there are some), then what needs doing. */
static void print_shifts(const json_t *shifts)
{
    static const char *const heads[] = {"N°",       "Jour",   "Demi-journée", "Centre",
                                        "Créneaux", "Libres", "Réservés",     "Médecin de garde",
                                        "Alerte"};
    long long unfilled = 0, unattended = 0;
    size_t i;
    json_t *s;
    json_array_foreach (shifts, i, s) {
        unfilled += !json_object_get(s, "practitioner");
        unattended += ctl_int(s, "unattended");
    }
    struct table t;
    table_init(&t, unattended > 0 ? 9 : 8, heads);
    for (size_t col = 4; col <= 6; col++)
        table_align_right(&t, col);
    table_align_right(&t, 0);
    table_max_width(&t, 3, 40);
    json_array_foreach (shifts, i, s) {
        char id[24], day[32], slots[24], nfree[24], booked[24], who[256], alert[64];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(s, "shift_id"));
        labels_day(ctl_str(s, "date"), day, sizeof(day));
        snprintf(slots, sizeof(slots), "%lld", (long long)ctl_int(s, "slots"));
        snprintf(nfree, sizeof(nfree), "%lld", (long long)ctl_int(s, "free"));
        snprintf(booked, sizeof(booked), "%lld", (long long)ctl_int(s, "booked"));
        on_duty(s, who, sizeof(who));
        json_int_t waiting = ctl_int(s, "unattended");
        unattended_text(waiting, alert, sizeof(alert));
        const char *row[] = {id,
                             day,
                             labels_get(LABELS_HALF_DAY, ctl_str(s, "half_day")),
                             ctl_str(s, "site_name"),
                             slots,
                             nfree,
                             booked,
                             who,
                             waiting > 0 ? alert : NULL};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
    size_t count = json_array_size(shifts);
    printf("%zu garde%s", count, count > 1 ? "s" : "");
    if (unfilled > 0)
        printf(", dont %lld non pourvue%s", unfilled, unfilled > 1 ? "s" : "");
    if (unattended > 0) {
        char alert[64];
        unattended_text(unattended, alert, sizeof(alert));
        printf(" ; %s : nommez un médecin de garde (snpctl shift assign GARDE --rpps RPPS "
               "--status STATUT)",
               alert);
    }
    printf(".\n");
    if (count >= MAX_SHIFTS)
        printf("(liste limitée à %d gardes : raccourcissez la période)\n", MAX_SHIFTS);
}

/* Reads the date option `s` into `*out`; returns CTL_OK or a usage error. */
static int date_arg(struct ctl *c, const char *option, const char *s, struct timearg *out)
{
    if (!timearg_parse(s, out) || !out->has_date || out->has_time || out->has_offset)
        return ctl_usage_error(c, "%s : date attendue « %s » (ex. 2026-12-01)", option, s);
    return CTL_OK;
}

static int shift_list(struct ctl *c, const struct shift_args *a)
{
    if (a->rpps || a->status || a->free)
        return ctl_usage_error(c, "--rpps, --status et --free vont avec « shift assign »");
    struct timearg from = {0}, to;
    int rc = a->from ? date_arg(c, "--from", a->from, &from) : cmd_today(c, &from);
    if (rc != CTL_OK)
        return rc;
    if (a->to) {
        rc = date_arg(c, "--to", a->to, &to);
        if (rc != CTL_OK)
            return rc;
    } else {
        to = from;
        timearg_add_days(&to, DEFAULT_DAYS - 1);
    }
    char fd[16], td[16];
    timearg_format_date(&from, fd, sizeof(fd));
    timearg_format_date(&to, td, sizeof(td));
    json_t *q = json_pack("{s:s, s:s}", "from", fd, "to", td), *r;
    if (a->site) {
        json_int_t site;
        if (!ctl_parse_id(a->site, &site)) {
            json_decref(q);
            return ctl_usage_error(c, "--site : numéro de CSNP invalide « %s »", a->site);
        }
        json_object_set_new(q, "site_id", json_integer(site));
    }
    if (a->unfilled)
        json_object_set_new(q, "unfilled", json_true());
    rc = ctl_call(c, "shift.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    const json_t *shifts = json_object_get(r, "shifts");
    if (c->json)
        ctl_print_json(r);
    else if (json_array_size(shifts) == 0)
        printf("Aucune garde%s du %s au %s.\n", a->unfilled ? " non pourvue" : "", fd, td);
    else
        print_shifts(shifts);
    json_decref(r);
    return CTL_OK;
}

static int shift_assign(struct ctl *c, const struct shift_args *a, int argc, char **argv, int first)
{
    if (a->from || a->to || a->site || a->unfilled)
        return ctl_usage_error(c, "--from, --to, --site et --unfilled vont avec « shift list »");
    if (first >= argc)
        return ctl_usage_error(c, "numéro de la garde manquant (voir snpctl shift list)");
    if (first + 1 < argc)
        return ctl_usage_error(c, "argument inattendu : %s (une garde à la fois)", argv[first + 1]);
    json_int_t id;
    if (!ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "GARDE : numéro de garde attendu « %s » (voir snpctl shift list)",
                               argv[first]);
    if (a->free && (a->rpps || a->status))
        return ctl_usage_error(c, "--free libère la garde : sans --rpps ni --status");
    if (!a->free && a->rpps && !a->status)
        return ctl_usage_error(c, "--status est obligatoire avec --rpps : independent (libéral), "
                                  "locum (remplaçant), retired (retraité) ou resident (interne)");
    if (!a->free && !a->rpps)
        return ctl_usage_error(c, "donnez --rpps et --status pour nommer le médecin de garde, "
                                  "ou --free pour libérer la garde");
    json_t *q = json_pack("{s:I}", "shift_id", id), *r;
    if (!a->free) {
        if (!validate_rpps(a->rpps)) {
            json_decref(q);
            return ctl_usage_error(c, "--rpps : RPPS invalide « %s » (11 chiffres, clé de Luhn)",
                                   a->rpps);
        }
        json_t *status = cmd_one_value(c, "--status", a->status, LABELS_DUTY_STATUS);
        if (!status) {
            json_decref(q);
            return CTL_USAGE;
        }
        json_object_set_new(q, "rpps", json_string(a->rpps));
        json_object_set_new(q, "duty_status", status);
    }
    int rc = ctl_call(c, "shift.assign", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
        return CTL_OK;
    }
    const json_t *shift = json_object_get(r, "shift");
    char day[32], who[256];
    labels_day(ctl_str(shift, "date"), day, sizeof(day));
    on_duty(shift, who, sizeof(who));
    printf("Garde n° %lld : %s, %s, %s.\n", (long long)ctl_int(shift, "shift_id"), day,
           labels_get(LABELS_HALF_DAY, ctl_str(shift, "half_day")), ctl_str(shift, "site_name"));
    long long slots = (long long)ctl_int(r, "slots"), bookings = (long long)ctl_int(r, "bookings");
    if (a->free)
        printf("Libérée : %lld créneau%s et %lld rendez-vous n'ont plus de médecin.\n", slots,
               slots > 1 ? "x" : "", bookings);
    else if (slots == 0 && bookings == 0)
        printf("Médecin de garde : %s ; aucun créneau ni rendez-vous à transmettre.\n", who);
    else
        printf("Médecin de garde : %s ; %lld créneau%s et %lld rendez-vous transmis.\n", who, slots,
               slots > 1 ? "x" : "", bookings);
    json_int_t waiting = ctl_int(shift, "unattended");
    if (waiting > 0) {
        char alert[64];
        unattended_text(waiting, alert, sizeof(alert));
        printf("Attention : %s sur cette garde.\n", alert);
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_shift(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, shift_usage, "list ou assign", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    bool list = strcmp(sub, "list") == 0;
    if (!list && strcmp(sub, "assign") != 0)
        return ctl_usage_error(c, "shift : sous-commande inconnue « %s »", sub);
    static const struct option options[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"site", required_argument, NULL, OPT_SITE},
        {"unfilled", no_argument, NULL, OPT_UNFILLED},
        {"rpps", required_argument, NULL, OPT_RPPS},
        {"status", required_argument, NULL, OPT_STATUS},
        {"free", no_argument, NULL, OPT_FREE},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    struct shift_args a = {0};
    int first;
    rc = cmd_parse(c, argc - 1, argv + 1, options, on_shift_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    first += 1;
    c->field_options = shift_fields;
    if (!list)
        return shift_assign(c, &a, argc, argv, first);
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    return shift_list(c, &a);
}
