/* snpctl message: the messages snpd sends for the caller's territory
 * (message.list, protocol 1.6.0), for coordinators and admins: the
 * confirmations sent to patients by SMS or e-mail, the summaries and the
 * referrals sent to GPs by secure messaging; which wait, which went, which
 * were given up and why.  Never an address nor a text: the server keeps them
 * only until the message goes.  See commands.h and docs/snpctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

static const char message_usage[] =
    "usage : snpctl message list [--state pending|sent|dead] [--limit N]\n"
    "\n"
    "Les messages envoyés par le service pour le territoire (rôles coordinator et admin),\n"
    "du plus récent au plus ancien (100 par défaut) : confirmations de rendez-vous aux\n"
    "patients (SMS, e-mail), comptes rendus aux médecins traitants et adressages à un\n"
    "médecin qui prend de nouveaux patients (messagerie sécurisée MSSanté).  États : en\n"
    "attente (pending), envoyé (sent), abandonné après des échecs répétés (dead), avec\n"
    "la dernière erreur.  Ni adresse ni texte : ils ne sont gardés que jusqu'à l'envoi.\n"
    "Exemple : snpctl message list --state dead\n" CTL_COMMON_HELP;

enum { OPT_STATE = 1, OPT_LIMIT };

struct message_args {
    const char *state, *limit;
};

static int on_message_option(void *state, int id, const char *arg)
{
    struct message_args *a = state;
    if (id == OPT_STATE)
        a->state = arg;
    else if (id == OPT_LIMIT)
        a->limit = arg;
    else
        return CTL_USAGE;
    return CTL_OK;
}

/* Prints the messages of the array `messages` as a table. */
static void print_messages(const json_t *messages)
{
    static const char *const heads[] = {
        "N°",     "Type",  "Canal", "État", "Réservation", "Créé", "Envoyé/abandonné",
        "Essais", "Erreur"};
    struct table t;
    table_init(&t, 9, heads);
    table_align_right(&t, 0);
    table_align_right(&t, 4);
    table_align_right(&t, 7);
    table_max_width(&t, 8, 60);
    size_t i;
    json_t *m;
    json_array_foreach (messages, i, m) {
        char id[24], booking[24], attempts[16], created[48], done[48];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(m, "message_id"));
        snprintf(booking, sizeof(booking), "%lld", (long long)ctl_int(m, "booking_id"));
        snprintf(attempts, sizeof(attempts), "%lld", (long long)ctl_int(m, "attempts"));
        labels_when_year(ctl_str(m, "created_at"), created, sizeof(created));
        labels_when_year(ctl_str(m, "done_at"), done, sizeof(done));
        const char *row[] = {id,
                             labels_get(LABELS_MESSAGE_KIND, ctl_str(m, "kind")),
                             labels_get(LABELS_MESSAGE_CHANNEL, ctl_str(m, "channel")),
                             labels_get(LABELS_MESSAGE_STATE, ctl_str(m, "state")),
                             booking,
                             created,
                             done,
                             attempts,
                             ctl_str(m, "last_error")};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

/* snpctl message list: message.list. */
static int message_list(struct ctl *c, int argc, char **argv)
{
    static const struct option options[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    struct message_args a = {0};
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_message_option, &a, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    static const struct ctl_field_option fields[] = {
        {"state", "--state"}, {"limit", "--limit"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_object(), *r;
    if (!cmd_put_value(c, q, "state", "--state", a.state, LABELS_MESSAGE_STATE)) {
        json_decref(q);
        return CTL_USAGE;
    }
    json_int_t limit;
    if (a.limit && !ctl_parse_id(a.limit, &limit)) {
        json_decref(q);
        return ctl_usage_error(c, "--limit : nombre attendu");
    }
    if (a.limit)
        json_object_set_new(q, "limit", json_integer(limit));
    rc = cmd_send(c, "message.list", q, &r);
    if (rc != CTL_OK || !r)
        return rc;
    const json_t *messages = json_object_get(r, "messages");
    size_t n = json_array_size(messages);
    if (n == 0) {
        printf("Aucun message%s%s.\n", a.state ? " " : "",
               a.state ? labels_get(LABELS_MESSAGE_STATE, a.state) : "");
    } else {
        print_messages(messages);
        printf("%zu message%s, du plus récent au plus ancien.\n", n, n > 1 ? "s" : "");
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_message(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, message_usage, "list", &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (strcmp(sub, "list") != 0)
        return ctl_usage_error(c, "message : sous-commande inconnue « %s »", sub);
    return message_list(c, argc - 1, argv + 1);
}
