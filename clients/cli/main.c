/* snpctl: the command-line client of snpd, for every role of a territory.
 *
 *   snpctl [OPTIONS] COMMAND [ARGUMENTS]
 *
 * The common options (--server, --token, --config, --json) may come before
 * the command or among its arguments.  docs/snpctl.md is the reference.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/ctl.h"
#include "protocol/codec.h"

static const char usage[] =
    "usage : snpctl [--server URL] [--token JETON] [--json] COMMANDE [ARGUMENTS]\n"
    "\n"
    "Médecins (gp) et coordination :\n"
    "  slots publish|shift|list|withdraw   publier, lister, retirer des créneaux\n"
    "  bookings list|cancel                les réservations sur mes créneaux\n"
    "  bookings mt-handover RÉSERVATION    adresser un patient sans médecin traitant\n"
    "  outcome RÉSERVATION ISSUE           l'issue d'un rendez-vous (attended, no_show...)\n"
    "Demandeurs (pharmacie, urgences, SAS, professionnels, guichet) :\n"
    "  request create|show|list|accept|decline|cancel\n"
    "  request confirmation|send-confirmation\n"
    "                                      la confirmation du patient, imprimée ou\n"
    "                                      envoyée par SMS ou e-mail\n"
    "  slip DEMANDE [--refuse]             le bon de réorientation (urgences)\n"
    "SAS et guichet :\n"
    "  capacity                            créneaux libres par commune\n"
    "  watch                               le même tableau, mis à jour en direct\n"
    "SAS :\n"
    "  call record|list                    l'issue des appels régulés (conseil, créneau...)\n"
    "Coordination :\n"
    "  territory show|set                  le territoire et ses réglages\n"
    "  indicators [--month AAAA-MM]        les indicateurs du mois\n"
    "  import --communes F --practitioners F --organisations F [--dry-run]\n"
    "                                      importer (ou seulement vérifier) des fichiers\n"
    "                                      CSV du territoire\n"
    "  token create|list|revoke            les jetons d'accès du territoire\n"
    "  push list [--state pending|dead]    les rendez-vous non reçus par la plateforme SAS\n"
    "  push resend N°                      renvoyer un envoi abandonné à la plateforme SAS\n"
    "  message list [--state S]            les SMS, e-mails et messages sécurisés envoyés\n"
    "  participation precondition set|list l'inscription au SAS ou l'adhésion à la CPTS\n"
    "Médecins et coordination :\n"
    "  participation [--year AAAA] [--rpps N] [--format html|csv --output F]\n"
    "                                      heures ouvertes, suppléments SNP sur 20,\n"
    "                                      attestation annuelle pour la CPAM\n"
    "  shift list|assign                   les gardes des CSNP et leur médecin de garde\n"
    "Tous :\n"
    "  whoami                              ce que le jeton permet (rôle, territoire)\n"
    "  help [COMMANDE]                     cette aide, ou celle d'une commande\n"
    "\n"
    "Serveur et jeton : --server/--token, sinon SNPCTL_SERVER/SNPCTL_TOKEN, sinon\n"
    "~/.config/snpctl/config (server = ..., token = ...; mode 600).\n"
    "Codes de sortie : 0 fait, 1 refusé par le serveur, 2 usage, 3 serveur injoignable ou\n"
    "indisponible, 4 authentification, 5 demande créée mais non réservée (--accept).\n"
    "Chaque commande a son --help ; référence complète : docs/snpctl.md.\n";

struct command {
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {
    {"slots", cmd_slots},
    {"bookings", cmd_bookings},
    {"outcome", cmd_outcome},
    {"request", cmd_request},
    {"slip", cmd_slip},
    {"capacity", cmd_capacity},
    {"watch", cmd_watch},
    {"territory", cmd_territory},
    {"indicators", cmd_indicators},
    {"import", cmd_import},
    {"token", cmd_token},
    {"call", cmd_call},
    {"push", cmd_push},
    {"participation", cmd_participation},
    {"shift", cmd_shift},
    {"message", cmd_message},
    {"whoami", cmd_whoami},
    {NULL, NULL},
};

static const struct command *find(const char *name)
{
    for (const struct command *k = commands; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

int main(int argc, char **argv)
{
    /* A server that closes while we write must give an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (snp_proto_init() != 0) {
        fputs("snpctl: la description du protocole intégrée est illisible\n", stderr);
        return CTL_UNAVAILABLE;
    }
    struct ctl c;
    ctl_init(&c);
    c.usage = usage;

    static const struct option options[] = {
        CTL_COMMON_OPTIONS,
        {"version", no_argument, NULL, 'V'},
        {0, 0, 0, 0},
    };
    int rc = CTL_OK, ch;
    opterr = 0;
    /* '+': stop at the command name; its own options are parsed later. */
    while ((ch = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            goto out;
        } else if (ch == 'V') {
            printf("snpctl %s (protocole %s)\n", SNP_VERSION, SNP_PROTO_NAME);
            goto out;
        } else if (ch == ':') {
            rc = ctl_usage_error(&c, "l'option %s attend une valeur", argv[optind - 1]);
            goto out;
        } else if (!ctl_common_option(&c, ch, optarg)) {
            rc = ctl_usage_error(&c, "option inconnue : %s", argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = ctl_usage_error(&c, "commande manquante");
        goto out;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        if (optind + 1 >= argc) {
            fputs(usage, stdout);
            goto out;
        }
        /* "help slots publish" is "slots publish --help". */
        const struct command *k = find(argv[optind + 1]);
        if (!k) {
            rc = ctl_usage_error(&c, "commande inconnue : %s", argv[optind + 1]);
            goto out;
        }
        int n = argc - optind - 1;
        char **args = calloc((size_t)n + 2, sizeof(*args));
        if (!args) {
            rc = CTL_UNAVAILABLE;
            goto out;
        }
        for (int i = 0; i < n; i++)
            args[i] = argv[optind + 1 + i];
        args[n] = "--help";
        rc = k->run(&c, n + 1, args);
        free(args);
        goto out;
    }
    const struct command *k = find(name);
    if (!k) {
        rc = ctl_usage_error(&c, "commande inconnue : %s", name);
        goto out;
    }
    rc = k->run(&c, argc - optind, argv + optind);
out:
    ctl_close(&c);
    snp_proto_shutdown();
    return rc;
}
