/* snpctl call: the SAS regulator's call record (role sas, protocol 1.3.0):
 * record what a call became in one step, list the calls recorded.  A call
 * holds no patient field; a request for a slot names the request created
 * for the patient (snpctl request create).  See commands.h and
 * docs/snpctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

static const char call_usage[] =
    "usage : snpctl call record ISSUE [--request N°] [--ref RÉFÉRENCE] [--regulator-id ID]\n"
    "        snpctl call list [--outcome LISTE] [--limit N]\n"
    "\n"
    "L'issue des appels régulés par le SAS (rôle sas).\n"
    "record : enregistre en une fois ce qu'est devenu un appel.  Issues : advice (conseil\n"
    "  médical), prescription, slot_request (créneau de soins non programmés : --request,\n"
    "  le n° de la demande créée pour le patient avec snpctl request create), sent_to_15\n"
    "  (renvoi vers le 15), other (autre issue : patient injoignable...).  --ref : une\n"
    "  référence de l'appel (64 caractères au plus : lettres, chiffres, . _ : -) ; un\n"
    "  nouvel envoi avec la même référence n'enregistre pas l'appel deux fois.  Aucune\n"
    "  donnée du patient n'est enregistrée avec l'appel.  --regulator-id : le médecin ou\n"
    "  l'assistant régulateur (RPPS ou identifiant de la plateforme SAS).\n"
    "list : les appels de votre SAS des 7 derniers jours, du plus récent au plus ancien ;\n"
    "  --outcome : seulement ces issues (séparées par des virgules) ; --limit : 1 à 1000\n"
    "  (100 par défaut).\n"
    "Exemples : snpctl call record advice\n"
    "           snpctl call record slot_request --request 503\n" CTL_COMMON_HELP;

struct call_args {
    const char *request, *ref, *regulator, *outcome, *limit;
};

enum { OPT_REQUEST = 1, OPT_REF, OPT_REGULATOR, OPT_OUTCOME, OPT_LIMIT };

static int on_call_option(void *state, int id, const char *arg)
{
    struct call_args *a = state;
    const char **slot = id == OPT_REQUEST     ? &a->request
                        : id == OPT_REF       ? &a->ref
                        : id == OPT_REGULATOR ? &a->regulator
                        : id == OPT_OUTCOME   ? &a->outcome
                        : id == OPT_LIMIT     ? &a->limit
                                              : NULL;
    if (!slot)
        return CTL_USAGE;
    *slot = arg;
    return CTL_OK;
}

static const struct ctl_field_option call_fields[] = {
    {"outcome", "ISSUE"},    {"request_id", "--request"},
    {"client_ref", "--ref"}, {"regulator_id", "--regulator-id"},
    {"limit", "--limit"},    {NULL, NULL},
};

/* Prints the calls of the array `calls` as a table. */
static void print_calls(const json_t *calls)
{
    static const char *const heads[] = {"N°", "Enregistré le", "Issue", "Demande", "Référence"};
    struct table t;
    table_init(&t, 5, heads);
    table_align_right(&t, 0);
    table_align_right(&t, 3);
    size_t i;
    json_t *call;
    json_array_foreach (calls, i, call) {
        char id[24], when[48], request[24];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(call, "call_id"));
        labels_when(ctl_str(call, "recorded_at"), when, sizeof(when));
        snprintf(request, sizeof(request), "%lld", (long long)ctl_int(call, "request_id"));
        const char *row[] = {id, when, labels_get(LABELS_CALL_OUTCOME, ctl_str(call, "outcome")),
                             json_object_get(call, "request_id") ? request : NULL,
                             ctl_str(call, "client_ref")};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

/* Returns the outcomes named by `s` (comma-separated protocol values) as a
 * JSON array, or NULL after a usage error naming `option`. */
static json_t *outcomes(struct ctl *c, const char *option, const char *s)
{
    const char *const *values;
    size_t n = labels_values(LABELS_CALL_OUTCOME, &values);
    return ctl_list_arg(c, option, s, values, n);
}

static int call_record(struct ctl *c, const struct call_args *a, int argc, char **argv, int first)
{
    if (first >= argc)
        return ctl_usage_error(c, "issue de l'appel manquante (advice, prescription, "
                                  "slot_request, sent_to_15, other)");
    if (first + 1 < argc)
        return ctl_usage_error(c, "argument inattendu : %s (une issue par appel)", argv[first + 1]);
    json_t *list = outcomes(c, "ISSUE", argv[first]);
    if (!list)
        return CTL_USAGE;
    if (json_array_size(list) != 1) {
        json_decref(list);
        return ctl_usage_error(c, "une seule issue par appel");
    }
    json_t *q = json_pack("{s:O}", "outcome", json_array_get(list, 0));
    bool slot = strcmp(json_string_value(json_array_get(list, 0)), "slot_request") == 0;
    json_decref(list);
    json_int_t request = 0;
    const char *why = NULL;
    if (a->request && !ctl_parse_id(a->request, &request))
        why = "--request : numéro de demande attendu (voir snpctl request list)";
    else if (slot && !a->request)
        why = "slot_request : donnez --request, le n° de la demande créée pour le patient";
    else if (!slot && a->request)
        why = "--request ne va qu'avec l'issue slot_request";
    if (why) {
        json_decref(q);
        return ctl_usage_error(c, "%s", why);
    }
    if (a->request)
        json_object_set_new(q, "request_id", json_integer(request));
    if (a->ref)
        json_object_set_new(q, "client_ref", json_string(a->ref));
    if (a->regulator)
        json_object_set_new(q, "regulator_id", json_string(a->regulator));
    json_t *r;
    int rc = ctl_call(c, "call.record", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        printf("Appel n° %lld enregistré : %s", (long long)ctl_int(r, "call_id"),
               labels_get(LABELS_CALL_OUTCOME, ctl_str(r, "outcome")));
        if (json_object_get(r, "request_id"))
            printf(" (demande n° %lld)", (long long)ctl_int(r, "request_id"));
        printf(".\n");
    }
    json_decref(r);
    return CTL_OK;
}

static int call_list(struct ctl *c, const struct call_args *a)
{
    json_t *q = json_object(), *r;
    if (a->outcome) {
        json_t *list = outcomes(c, "--outcome", a->outcome);
        if (!list) {
            json_decref(q);
            return CTL_USAGE;
        }
        json_object_set_new(q, "outcome", list);
    }
    json_int_t limit;
    if (a->limit) {
        if (!ctl_parse_id(a->limit, &limit) || limit > 1000) {
            json_decref(q);
            return ctl_usage_error(c, "--limit : nombre de 1 à 1000 attendu");
        }
        json_object_set_new(q, "limit", json_integer(limit));
    }
    int rc = ctl_call(c, "call.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    const json_t *calls = json_object_get(r, "calls");
    if (c->json)
        ctl_print_json(r);
    else if (json_array_size(calls) == 0)
        printf("Aucun appel enregistré ces 7 derniers jours.\n");
    else {
        print_calls(calls);
        if (json_is_true(json_object_get(r, "truncated")))
            printf("(d'autres appels existent : augmentez --limit)\n");
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_call(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, call_usage, "record ou list", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    static const struct option record_options[] = {
        {"request", required_argument, NULL, OPT_REQUEST},
        {"ref", required_argument, NULL, OPT_REF},
        {"regulator-id", required_argument, NULL, OPT_REGULATOR},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    static const struct option list_options[] = {
        {"outcome", required_argument, NULL, OPT_OUTCOME},
        {"limit", required_argument, NULL, OPT_LIMIT},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    const struct option *options = strcmp(sub, "record") == 0 ? record_options
                                   : strcmp(sub, "list") == 0 ? list_options
                                                              : NULL;
    if (!options)
        return ctl_usage_error(c, "call : sous-commande inconnue « %s »", sub);
    struct call_args a = {0};
    int first;
    rc = cmd_parse(c, argc - 1, argv + 1, options, on_call_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    first += 1;
    c->field_options = call_fields;
    if (options == record_options)
        return call_record(c, &a, argc, argv, first);
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    return call_list(c, &a);
}
