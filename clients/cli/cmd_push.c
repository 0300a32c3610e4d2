/* snpctl push: the appointment pushes of the caller's territory that the SAS
 * platform has not acknowledged (push.list, docs/fhir.md "Appointment push"),
 * for coordinators and admins: those waiting and those given up.  See
 * commands.h and docs/snpctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

static const char push_usage[] =
    "usage : snpctl push list [--state pending|dead]\n"
    "        snpctl push resend N°\n"
    "\n"
    "Les rendez-vous que la plateforme numérique SAS n'a pas encore reçus (rôles\n"
    "coordinator et admin), du plus ancien au plus récent : en attente d'envoi\n"
    "(pending) ou abandonnés après des refus répétés de la plateforme (dead).\n"
    "resend : renvoie un envoi abandonné, une fois la cause de ses refus réglée,\n"
    "  avec les changements suivants du même rendez-vous, dans l'ordre.\n" CTL_COMMON_HELP;

enum { OPT_STATE = 1 };

static int on_push_option(void *state, int id, const char *arg)
{
    if (id != OPT_STATE)
        return CTL_USAGE;
    *(const char **)state = arg;
    return CTL_OK;
}

/* Prints the pushes of the array `pushes` as a table. */
static void print_pushes(const json_t *pushes)
{
    static const char *const heads[] = {"N°",     "Réservation", "Ordre",          "Statut", "État",
                                        "Essais", "Créé le",     "Prochain essai", "Erreur"};
    struct table t;
    table_init(&t, 9, heads);
    table_align_right(&t, 0);
    table_align_right(&t, 1);
    table_align_right(&t, 2);
    table_align_right(&t, 5);
    table_max_width(&t, 8, 60);
    size_t i;
    json_t *p;
    json_array_foreach (pushes, i, p) {
        char id[24], booking[24], seq[16], attempts[16], created[48], next[48];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(p, "push_id"));
        snprintf(booking, sizeof(booking), "%lld", (long long)ctl_int(p, "booking_id"));
        snprintf(seq, sizeof(seq), "%lld", (long long)ctl_int(p, "seq"));
        snprintf(attempts, sizeof(attempts), "%lld", (long long)ctl_int(p, "attempts"));
        labels_when_year(ctl_str(p, "created_at"), created, sizeof(created));
        labels_when_year(ctl_str(p, "next_attempt_at"), next, sizeof(next));
        const char *row[] = {id,
                             booking,
                             seq,
                             labels_get(LABELS_APPOINTMENT_STATUS, ctl_str(p, "status")),
                             labels_get(LABELS_PUSH_STATE, ctl_str(p, "state")),
                             attempts,
                             created,
                             ctl_str(p, "next_attempt_at") ? next : NULL,
                             ctl_str(p, "last_error")};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

/* snpctl push resend N°: push.resend. */
static int push_resend(struct ctl *c, int argc, char **argv)
{
    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int first;
    int rc = cmd_parse(c, argc, argv, options, NULL, NULL, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_int_t id;
    if (argc - first != 1)
        return ctl_usage_error(c, "donnez le numéro de l'envoi (affiché par snpctl push list)");
    if (!ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "numéro d'envoi invalide : %s", argv[first]);
    json_t *q = json_pack("{s:I}", "push_id", id), *r;
    rc = ctl_call(c, "push.resend", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(r);
    else
        printf("Envoi n° %lld remis en file avec les changements suivants du rendez-vous : %lld "
               "envoi(s) à refaire.\n",
               (long long)id, (long long)ctl_int(r, "requeued"));
    json_decref(r);
    return CTL_OK;
}

int cmd_push(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, push_usage, "list ou resend", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (strcmp(sub, "resend") == 0)
        return push_resend(c, argc - 1, argv + 1);
    if (strcmp(sub, "list") != 0)
        return ctl_usage_error(c, "push : sous-commande inconnue « %s »", sub);
    static const struct option options[] = {
        {"state", required_argument, NULL, OPT_STATE},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    const char *state = NULL;
    int first;
    rc = cmd_parse(c, argc - 1, argv + 1, options, on_push_option, &state, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first + 1 < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first + 1]);
    json_t *q = json_object(), *r;
    if (!cmd_put_value(c, q, "state", "--state", state, LABELS_PUSH_STATE)) {
        json_decref(q);
        return CTL_USAGE;
    }
    rc = ctl_call(c, "push.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    const json_t *pushes = json_object_get(r, "pushes");
    if (c->json)
        ctl_print_json(r);
    else if (json_array_size(pushes) == 0)
        printf("Aucun rendez-vous en attente d'envoi à la plateforme SAS.\n");
    else
        print_pushes(pushes);
    json_decref(r);
    return CTL_OK;
}
