/* snpctl request and slip: what a requester (pharmacy, emergency department,
 * SAS, city professional, CPTS desk) does for a patient.  See commands.h and
 * docs/snpctl.md.
 *
 * `request create` is the one long-running command: after creating the
 * request it may follow it over a WebSocket subscribed to the `requests`
 * topic, showing the held offer with its countdown and acting on the keys
 * the user presses, until the request is booked, the user quits, or the
 * connection is lost.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/validate.h"
#include "clients/cli/commands.h"
#include "clients/cli/confirmation.h"
#include "clients/cli/labels.h"
#include "clients/cli/prompt.h"
#include "clients/cli/table.h"
#include "clients/cli/timearg.h"
#include "protocol/codec.h"
#include "protocol/snp_decl.h"

static const char request_usage[] =
    "usage : snpctl request create [OPTIONS DU PATIENT] [--accept [--wait DURÉE] | --no-wait]\n"
    "        snpctl request show DEMANDE\n"
    "        snpctl request list [--status LISTE] [--from DATE] [--to DATE] [--limit N]\n"
    "        snpctl request accept DEMANDE --slot CRÉNEAU\n"
    "        snpctl request decline DEMANDE --slot CRÉNEAU [--reason MOTIF] [--note TEXTE]\n"
    "        snpctl request cancel DEMANDE --reason MOTIF [--note TEXTE]\n"
    "        snpctl request confirmation DEMANDE [--html FICHIER]\n"
    "        snpctl request send-confirmation DEMANDE (--sms NUMÉRO | --email ADRESSE)\n"
    "\n"
    "Options de request create :\n"
    "  --ref RÉF                 référence unique chez vous (idempotence ; par défaut générée)\n"
    "  --name NOM | --initials I nom du patient, ou ses initiales\n"
    "  --birth-year AAAA | --birth-date AAAA-MM-JJ\n"
    "  --sex female|male|unspecified (ou F, M)\n"
    "  --commune INSEE           commune où se trouve le patient\n"
    "  --phone TÉL               téléphone du patient\n"
    "  --mt RPPS | --has-mt | --no-mt   médecin traitant (RPPS connu, connu sans RPPS, aucun)\n"
    "  --ald, --c2s              affection de longue durée, complémentaire santé solidaire\n"
    "  --motif CODE [--motif-text TEXTE]   fever, ent, respiratory, urinary, digestive, skin,\n"
    "                            minor_trauma, musculoskeletal, headache, eye, psychological,\n"
    "                            other\n"
    "  --urgency same_day|24h|48h\n"
    "  --modes LISTE, --max-km N, --reduced-mobility   contraintes du patient\n"
    "  pharmacie : --protocol sore_throat|cystitis|other --test-result\n"
    "              positive|negative|not_done [--exclusions LISTE]\n"
    "  urgences :  --triage 1-5 --senior RPPS\n"
    "  SAS :       --regulator NOM [--regulator-id ID]\n"
    "  --interactive             poser toutes les questions (par défaut seulement celles\n"
    "                            qui manquent, sur un terminal)\n"
    "  --accept                  accepter aussitôt le créneau proposé (scripts) ; avec\n"
    "                            --wait 10m, attendre une proposition jusqu'à 10 minutes\n"
    "  --no-wait                 créer la demande et rendre la main sans attendre\n"
    "Sur un terminal, sans --accept ni --no-wait, la proposition s'affiche avec le temps\n"
    "restant, mis à jour en direct : A accepte, 1-9 choisit une autre proposition, R refuse,\n"
    "Q quitte (la demande continue sans vous).\n"
    "Motifs de refus (--reason de decline) : patient_unavailable, too_far, wrong_mode,\n"
    "patient_prefers_other, other.  Motifs d'annulation : patient_request,\n"
    "patient_seen_elsewhere, practitioner_unavailable, duplicate, entered_in_error, other.\n"
    "Statuts : waiting, offered, booked, cancelled, unserved.\n"
    "request confirmation affiche la confirmation à remettre au patient d'une demande\n"
    "réservée (date, lieu, ce qu'il faut apporter, qui prévenir), en texte prêt à imprimer\n"
    "(snpctl request confirmation 12 | lp) ; --html l'écrit aussi en page HTML imprimable.\n"
    "request send-confirmation envoie cette confirmation au patient, à sa demande, par SMS\n"
    "(--sms, un portable français : 06, 07, +33 6, +33 7) ou par e-mail (--email), sans le\n"
    "motif ; le numéro ou l'adresse ne sert qu'à cet envoi et n'est plus jamais affiché.\n"
    "Exemple : snpctl request send-confirmation 12 --sms \"06 12 34 56 78\"\n" CTL_COMMON_HELP;

static const char slip_usage[] =
    "usage : snpctl slip DEMANDE [--refuse [--note TEXTE]]\n"
    "\n"
    "Affiche le bon de réorientation d'une demande réservée (rôle emergency), en texte\n"
    "simple prêt à imprimer (snpctl slip 12 | lp).  --refuse enregistre que le patient\n"
    "refuse la réorientation : la réservation est annulée.\n" CTL_COMMON_HELP;

enum {
    OPT_REF = 1,
    OPT_NAME,
    OPT_INITIALS,
    OPT_BIRTH_YEAR,
    OPT_BIRTH_DATE,
    OPT_SEX,
    OPT_COMMUNE,
    OPT_PHONE,
    OPT_MT,
    OPT_HAS_MT,
    OPT_NO_MT,
    OPT_ALD,
    OPT_C2S,
    OPT_MOTIF,
    OPT_MOTIF_TEXT,
    OPT_URGENCY,
    OPT_MODES,
    OPT_MAX_KM,
    OPT_REDUCED_MOBILITY,
    OPT_PROTOCOL,
    OPT_TEST_RESULT,
    OPT_EXCLUSIONS,
    OPT_TRIAGE,
    OPT_SENIOR,
    OPT_REGULATOR,
    OPT_REGULATOR_ID,
    OPT_INTERACTIVE,
    OPT_ACCEPT,
    OPT_NO_WAIT,
    OPT_WAIT,
    OPT_SLOT,
    OPT_REASON,
    OPT_NOTE,
    OPT_STATUS,
    OPT_FROM,
    OPT_TO,
    OPT_LIMIT,
    OPT_REFUSE,
    OPT_HTML,
    OPT_SMS,
    OPT_EMAIL,
};

/* ---- display ------------------------------------------------------------- */

/* Writes "mar. 01/12 14:00–14:20, cabinet, Dr ..., Cabinet ..., Redon (0,8 km)". */
static void slot_line(const json_t *slot, char *buf, size_t n)
{
    char start[40], end[16], place[300], dist[32] = "";
    labels_when(ctl_str(slot, "start"), start, sizeof(start));
    labels_hhmm(ctl_str(slot, "end"), end, sizeof(end));
    cmd_slot_place(slot, true, place, sizeof(place));
    json_t *d = json_object_get(slot, "distance_km");
    if (json_is_number(d))
        snprintf(dist, sizeof(dist), " (%.1f km)", json_number_value(d));
    snprintf(buf, n, "%s–%s, %s, %s%s", start, end, labels_get(LABELS_MODE, ctl_str(slot, "mode")),
             place, dist);
}

/* Prints where and how to reach the site of `slot`.  The commune is added
 * to the address unless the address already names it. */
static void print_site(const json_t *slot, const char *indent)
{
    const json_t *site = json_object_get(slot, "site");
    const char *address = ctl_str(site, "address"), *commune = ctl_str(site, "commune_name");
    const char *pc = ctl_str(site, "postal_code");
    if (address && commune && !strstr(address, commune))
        printf("%s%s, %s%s%s\n", indent, address, pc ? pc : "", pc ? " " : "", commune);
    else
        printf("%s%s\n", indent, address ? address : "");
    if (ctl_str(site, "phone"))
        printf("%sTél. %s\n", indent, ctl_str(site, "phone"));
}

static void print_offer(const json_t *offer)
{
    char line[600], until[16];
    const json_t *slot = json_object_get(offer, "slot");
    slot_line(slot, line, sizeof(line));
    labels_hhmm(ctl_str(offer, "expires_at"), until, sizeof(until));
    printf("  Créneau proposé (n° %lld), bloqué jusqu'à %s :\n    %s\n",
           (long long)ctl_int(slot, "slot_id"), until, line);
    print_site(slot, "    ");
    const json_t *alts = json_object_get(offer, "alternatives");
    if (json_array_size(alts) > 0) {
        printf("  Autres créneaux possibles (non bloqués) :\n");
        size_t i;
        json_t *a;
        json_array_foreach (alts, i, a) {
            slot_line(a, line, sizeof(line));
            printf("    %zu. (n° %lld) %s\n", i + 1, (long long)ctl_int(a, "slot_id"), line);
        }
    }
}

/* Prints request `r`.  `shows_patient`: the answer is one that shows the
 * patient (request.get, a creation), so that a request without one has had
 * its identity erased; offer.decline's answer never shows the patient, and
 * then no patient line is printed. */
static void print_request_as(const json_t *r, bool shows_patient)
{
    char patient[200], deadline[40];
    cmd_patient(json_object_get(r, "patient"), patient, sizeof(patient));
    labels_when(ctl_str(r, "deadline"), deadline, sizeof(deadline));
    printf("Demande n° %lld (réf. %s) : %s\n", (long long)ctl_int(r, "request_id"),
           ctl_str(r, "client_ref"), labels_get(LABELS_REQUEST_STATUS, ctl_str(r, "status")));
    const json_t *p = json_object_get(r, "patient");
    if (p) {
        const char *mt = json_is_true(json_object_get(p, "has_mt")) ? "avec médecin traitant"
                                                                    : "sans médecin traitant";
        printf("  Patient : %s — commune %s — %s%s%s\n", patient, ctl_str(p, "commune_insee"), mt,
               ctl_str(p, "phone") ? " — tél. " : "",
               ctl_str(p, "phone") ? ctl_str(p, "phone") : "");
    } else if (shows_patient) {
        printf("  Patient : %s\n", patient);
    }
    const json_t *motif = json_object_get(r, "motif");
    printf("  Motif : %s%s%s%s — %s, au plus tard %s\n",
           labels_get(LABELS_MOTIF, ctl_str(motif, "code")), ctl_str(motif, "text") ? " (« " : "",
           ctl_str(motif, "text") ? ctl_str(motif, "text") : "",
           ctl_str(motif, "text") ? " »)" : "", labels_get(LABELS_URGENCY, ctl_str(r, "urgency")),
           deadline);
    const char *status = ctl_str(r, "status");
    if (status && strcmp(status, "offered") == 0 && json_object_get(r, "offer"))
        print_offer(json_object_get(r, "offer"));
    const json_t *booking = json_object_get(r, "booking");
    if (booking) {
        char line[600];
        slot_line(json_object_get(booking, "slot"), line, sizeof(line));
        printf("  Rendez-vous (réservation n° %lld, %s) : %s\n",
               (long long)ctl_int(booking, "booking_id"),
               labels_get(LABELS_BOOKING_STATUS, ctl_str(booking, "status")), line);
        print_site(json_object_get(booking, "slot"), "    ");
        const char *outcome = ctl_str(ctl_get(booking, "outcome"), "kind");
        if (outcome)
            printf("  Issue : %s\n", labels_get(LABELS_OUTCOME, outcome));
    }
    const json_t *cancel = json_object_get(r, "cancellation");
    if (cancel)
        printf("  Annulée par : %s — %s\n",
               labels_get(LABELS_ROLE, ctl_str(cancel, "cancelled_by")),
               labels_get(LABELS_CANCEL_REASON, ctl_str(cancel, "reason")));
    if (status && strcmp(status, "waiting") == 0)
        printf("  Aucun créneau ne convient pour l'instant : la demande attend, elle sera proposée "
               "dès qu'un créneau se libère.\n");
}

static void print_request(const json_t *r)
{
    print_request_as(r, true);
}

static void print_booking(const json_t *b, const char *role)
{
    char when[40], end[16];
    const json_t *slot = json_object_get(b, "slot");
    labels_when_year(ctl_str(slot, "start"), when, sizeof(when));
    labels_hhmm(ctl_str(slot, "end"), end, sizeof(end));
    printf("Rendez-vous confirmé (réservation n° %lld, demande n° %lld) :\n",
           (long long)ctl_int(b, "booking_id"), (long long)ctl_int(b, "request_id"));
    printf("  %s–%s, %s\n", when, end, labels_get(LABELS_MODE, ctl_str(slot, "mode")));
    const json_t *pr = json_object_get(slot, "practitioner");
    const json_t *site = json_object_get(slot, "site");
    if (pr)
        printf("  Dr %s %s — %s\n", ctl_str(pr, "given_name"), ctl_str(pr, "family_name"),
               ctl_str(site, "name"));
    else
        printf("  %s\n", ctl_str(site, "name"));
    print_site(slot, "  ");
    if (role && strcmp(role, "emergency") == 0)
        printf("Bon de réorientation à imprimer : snpctl slip %lld\n",
               (long long)ctl_int(b, "request_id"));
}

/* ---- request create: options ------------------------------------------- */

struct create {
    struct ctl *c;
    const char *ref, *name, *initials, *birth_year, *birth_date, *sex, *commune, *phone, *mt,
        *motif, *motif_text, *urgency, *modes, *max_km, *protocol, *test_result, *exclusions,
        *triage, *senior, *regulator, *regulator_id, *wait;
    bool has_mt, no_mt, ald, c2s, reduced_mobility, interactive, accept, no_wait;
    /* Answers typed in the form, which the pointers above may point to. */
    char answers[24][256];
    int nanswers;
};

static int on_create(void *state, int id, const char *arg)
{
    struct create *k = state;
    switch (id) {
    case OPT_REF:
        k->ref = arg;
        break;
    case OPT_NAME:
        k->name = arg;
        break;
    case OPT_INITIALS:
        k->initials = arg;
        break;
    case OPT_BIRTH_YEAR:
        k->birth_year = arg;
        break;
    case OPT_BIRTH_DATE:
        k->birth_date = arg;
        break;
    case OPT_SEX:
        k->sex = arg;
        break;
    case OPT_COMMUNE:
        k->commune = arg;
        break;
    case OPT_PHONE:
        k->phone = arg;
        break;
    case OPT_MT:
        k->mt = arg;
        break;
    case OPT_HAS_MT:
        k->has_mt = true;
        break;
    case OPT_NO_MT:
        k->no_mt = true;
        break;
    case OPT_ALD:
        k->ald = true;
        break;
    case OPT_C2S:
        k->c2s = true;
        break;
    case OPT_MOTIF:
        k->motif = arg;
        break;
    case OPT_MOTIF_TEXT:
        k->motif_text = arg;
        break;
    case OPT_URGENCY:
        k->urgency = arg;
        break;
    case OPT_MODES:
        k->modes = arg;
        break;
    case OPT_MAX_KM:
        k->max_km = arg;
        break;
    case OPT_REDUCED_MOBILITY:
        k->reduced_mobility = true;
        break;
    case OPT_PROTOCOL:
        k->protocol = arg;
        break;
    case OPT_TEST_RESULT:
        k->test_result = arg;
        break;
    case OPT_EXCLUSIONS:
        k->exclusions = arg;
        break;
    case OPT_TRIAGE:
        k->triage = arg;
        break;
    case OPT_SENIOR:
        k->senior = arg;
        break;
    case OPT_REGULATOR:
        k->regulator = arg;
        break;
    case OPT_REGULATOR_ID:
        k->regulator_id = arg;
        break;
    case OPT_INTERACTIVE:
        k->interactive = true;
        break;
    case OPT_ACCEPT:
        k->accept = true;
        break;
    case OPT_NO_WAIT:
        k->no_wait = true;
        break;
    case OPT_WAIT:
        k->wait = arg;
        break;
    default:
        return ctl_usage_error(k->c, "option inattendue");
    }
    return CTL_OK;
}

static const struct option create_options[] = {
    {"ref", required_argument, NULL, OPT_REF},
    {"name", required_argument, NULL, OPT_NAME},
    {"initials", required_argument, NULL, OPT_INITIALS},
    {"birth-year", required_argument, NULL, OPT_BIRTH_YEAR},
    {"birth-date", required_argument, NULL, OPT_BIRTH_DATE},
    {"sex", required_argument, NULL, OPT_SEX},
    {"commune", required_argument, NULL, OPT_COMMUNE},
    {"phone", required_argument, NULL, OPT_PHONE},
    {"mt", required_argument, NULL, OPT_MT},
    {"has-mt", no_argument, NULL, OPT_HAS_MT},
    {"no-mt", no_argument, NULL, OPT_NO_MT},
    {"ald", no_argument, NULL, OPT_ALD},
    {"c2s", no_argument, NULL, OPT_C2S},
    {"motif", required_argument, NULL, OPT_MOTIF},
    {"motif-text", required_argument, NULL, OPT_MOTIF_TEXT},
    {"urgency", required_argument, NULL, OPT_URGENCY},
    {"modes", required_argument, NULL, OPT_MODES},
    {"max-km", required_argument, NULL, OPT_MAX_KM},
    {"reduced-mobility", no_argument, NULL, OPT_REDUCED_MOBILITY},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"test-result", required_argument, NULL, OPT_TEST_RESULT},
    {"exclusions", required_argument, NULL, OPT_EXCLUSIONS},
    {"triage", required_argument, NULL, OPT_TRIAGE},
    {"senior", required_argument, NULL, OPT_SENIOR},
    {"regulator", required_argument, NULL, OPT_REGULATOR},
    {"regulator-id", required_argument, NULL, OPT_REGULATOR_ID},
    {"interactive", no_argument, NULL, OPT_INTERACTIVE},
    {"accept", no_argument, NULL, OPT_ACCEPT},
    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
    {"wait", required_argument, NULL, OPT_WAIT},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static const struct ctl_field_option create_fields[] = {
    {"client_ref", "--ref"},
    {"patient.display_name", "--name"},
    {"patient.initials", "--initials"},
    {"patient.birth_date", "--birth-date"},
    {"patient.birth_year", "--birth-year"},
    {"patient.sex", "--sex"},
    {"patient.phone", "--phone"},
    {"patient.commune_insee", "--commune"},
    {"patient.has_mt", "--mt/--no-mt"},
    {"patient.mt_rpps", "--mt"},
    {"motif.code", "--motif"},
    {"motif.text", "--motif-text"},
    {"urgency", "--urgency"},
    {"constraints.modes", "--modes"},
    {"constraints.max_distance_km", "--max-km"},
    {"source.pharmacy.protocol", "--protocol"},
    {"source.pharmacy.test_result", "--test-result"},
    {"source.pharmacy.exclusions", "--exclusions"},
    {"source.emergency.triage_level", "--triage"},
    {"source.emergency.senior_rpps", "--senior"},
    {"source.sas.regulator_name", "--regulator"},
    {"source.sas.regulator_id", "--regulator-id"},
    {"source", "--protocol/--triage/--regulator"},
    {"source.emergency", "--triage/--senior"},
    {NULL, NULL},
};

/* Normalises the sex given as F/M/female/femme... to the protocol's value,
 * or NULL when unknown. */
static const char *sex_value(const char *s)
{
    if (!s)
        return NULL;
    if (strcasecmp(s, "f") == 0 || strcasecmp(s, "female") == 0 || strcasecmp(s, "femme") == 0)
        return "female";
    if (strcasecmp(s, "m") == 0 || strcasecmp(s, "h") == 0 || strcasecmp(s, "male") == 0 ||
        strcasecmp(s, "homme") == 0)
        return "male";
    if (strcmp(s, "-") == 0 || strcasecmp(s, "unspecified") == 0 || strcasecmp(s, "x") == 0)
        return "unspecified";
    return NULL;
}

/* Returns whether `value` is one of the values of `kind`. */
static bool known_value(enum labels_kind kind, const char *value)
{
    const char *const *values;
    size_t n = labels_values(kind, &values);
    for (size_t i = 0; value && i < n; i++)
        if (strcmp(values[i], value) == 0)
            return true;
    return false;
}

/* ---- request create: the interactive form ------------------------------ */

/* Stores `text` among the form's answers and returns the copy. */
static const char *keep(struct create *k, const char *text)
{
    if (k->nanswers >= (int)(sizeof(k->answers) / sizeof(k->answers[0])))
        return NULL;
    char *slot = k->answers[k->nanswers++];
    snprintf(slot, sizeof(k->answers[0]), "%s", text);
    return slot;
}

/* Asks for a value of the enumeration `kind` by number or by name; the
 * answer is stored in `*out`.  Returns false on end of input. */
static bool ask_choice(const char *question, enum labels_kind kind, const char **out, bool optional)
{
    const char *const *values;
    size_t n = labels_values(kind, &values);
    for (;;) {
        printf("%s :\n", question);
        for (size_t i = 0; i < n; i++)
            printf("  %zu. %s (%s)\n", i + 1, labels_get(kind, values[i]), values[i]);
        char buf[64], def[24] = "";
        if (*out)
            for (size_t i = 0; i < n; i++)
                if (strcmp(values[i], *out) == 0)
                    snprintf(def, sizeof(def), "%zu", i + 1);
        if (!prompt_line(optional ? "Choix (Entrée : aucun)" : "Choix", def, buf, sizeof(buf)))
            return false;
        if (!*buf && optional) {
            *out = NULL;
            return true;
        }
        char *end;
        long v = strtol(buf, &end, 10);
        if (*buf && !*end && v >= 1 && (size_t)v <= n) {
            *out = values[v - 1];
            return true;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(values[i], buf) == 0) {
                *out = values[i];
                return true;
            }
        printf("  Réponse non reconnue : tapez un numéro de la liste.\n");
    }
}

/* Finds the commune of the territory named or coded `text`; stores its
 * INSEE code in `*insee`.  Prints the candidates when several match. */
static bool find_commune(json_t *territory, const char *text, const char **insee)
{
    json_t *communes = json_object_get(territory, "communes");
    size_t i, matches = 0;
    json_t *cm, *found = NULL;
    json_array_foreach (communes, i, cm) {
        const char *name = ctl_str(cm, "name");
        if (strcmp(ctl_str(cm, "insee"), text) == 0 || (name && strcasecmp(name, text) == 0)) {
            *insee = ctl_str(cm, "insee");
            return true;
        }
        if (name && strncasecmp(name, text, strlen(text)) == 0) {
            matches++;
            found = cm;
        }
    }
    if (matches == 1) {
        *insee = ctl_str(found, "insee");
        return true;
    }
    if (matches > 1) {
        printf("  Plusieurs communes commencent ainsi :");
        json_array_foreach (communes, i, cm) {
            const char *name = ctl_str(cm, "name");
            if (name && strncasecmp(name, text, strlen(text)) == 0)
                printf(" %s (%s)", name, ctl_str(cm, "insee"));
        }
        printf("\n");
        return false;
    }
    /* A commune outside the territory: the server decides. */
    if (validate_insee_commune(text)) {
        *insee = text;
        return true;
    }
    printf("  Commune inconnue du territoire : tapez son nom ou son code INSEE.\n");
    return false;
}

/* Asks the questions the options left open (all of them with
 * --interactive).  `role` is the caller's role, for the questions that
 * depend on it.  Returns CTL_OK, or CTL_USAGE on end of input or Ctrl-C. */
static int create_form(struct create *k, const char *role, json_t *territory)
{
    char buf[256];
    bool all = k->interactive;
    printf("Nouvelle demande de soins non programmés (Ctrl-C pour abandonner)\n");
    if (all || (!k->name && !k->initials)) {
        if (!prompt_line("Nom du patient (Entrée pour donner ses initiales)",
                         k->name ? k->name : NULL, buf, sizeof(buf)))
            return CTL_USAGE;
        if (*buf) {
            k->name = keep(k, buf);
            k->initials = NULL;
        } else {
            do {
                if (!prompt_line("Initiales (ex. J. D.)", k->initials, buf, sizeof(buf)))
                    return CTL_USAGE;
            } while (!*buf);
            k->initials = keep(k, buf);
            k->name = NULL;
        }
    }
    if (all || (!k->birth_year && !k->birth_date)) {
        for (;;) {
            if (!prompt_line("Année ou date de naissance (AAAA ou AAAA-MM-JJ)",
                             k->birth_date ? k->birth_date : k->birth_year, buf, sizeof(buf)))
                return CTL_USAGE;
            struct timearg d;
            if (strlen(buf) == 4 && isdigit((unsigned char)buf[0])) {
                k->birth_year = keep(k, buf);
                k->birth_date = NULL;
                break;
            }
            if (timearg_parse(buf, &d) && d.has_date && !d.has_time) {
                char iso[16];
                timearg_format_date(&d, iso, sizeof(iso));
                k->birth_date = keep(k, iso);
                k->birth_year = NULL;
                break;
            }
            printf("  Tapez une année (1951) ou une date (1951-03-14 ou 14/03/1951).\n");
        }
    }
    if (all || !sex_value(k->sex)) {
        for (;;) {
            if (!prompt_line("Sexe (F, M, ou - si non précisé)", k->sex, buf, sizeof(buf)))
                return CTL_USAGE;
            if (sex_value(buf)) {
                k->sex = sex_value(buf);
                break;
            }
        }
    }
    if (all || !k->commune) {
        for (;;) {
            if (!prompt_line("Commune du patient (nom ou code INSEE)", k->commune, buf,
                             sizeof(buf)))
                return CTL_USAGE;
            const char *insee;
            if (*buf && find_commune(territory, buf, &insee)) {
                k->commune = keep(k, insee);
                break;
            }
        }
    }
    if (all) {
        for (;;) {
            if (!prompt_line("Téléphone du patient (Entrée si aucun)", k->phone, buf, sizeof(buf)))
                return CTL_USAGE;
            if (!*buf || validate_phone_fr(buf)) {
                k->phone = *buf ? keep(k, buf) : NULL;
                break;
            }
            printf("  Numéro français attendu (06 12 34 56 78 ou +33 6 12 34 56 78).\n");
        }
    }
    if (all || (!k->mt && !k->has_mt && !k->no_mt)) {
        for (;;) {
            if (!prompt_line("Médecin traitant : son RPPS, « oui » si inconnu, « non » s'il "
                             "n'en a pas",
                             k->mt ? k->mt : (k->has_mt ? "oui" : "non"), buf, sizeof(buf)))
                return CTL_USAGE;
            if (strcasecmp(buf, "non") == 0 || strcasecmp(buf, "n") == 0) {
                k->no_mt = true, k->has_mt = false, k->mt = NULL;
                break;
            }
            if (strcasecmp(buf, "oui") == 0 || strcasecmp(buf, "o") == 0) {
                k->has_mt = true, k->no_mt = false, k->mt = NULL;
                break;
            }
            if (validate_rpps(buf)) {
                k->mt = keep(k, buf), k->has_mt = true, k->no_mt = false;
                break;
            }
            printf("  RPPS invalide (11 chiffres, clé de Luhn).\n");
        }
    }
    if (all) {
        if (!prompt_line("ALD (o/n)", k->ald ? "o" : "n", buf, sizeof(buf)))
            return CTL_USAGE;
        k->ald = tolower((unsigned char)buf[0]) == 'o';
        if (!prompt_line("C2S (o/n)", k->c2s ? "o" : "n", buf, sizeof(buf)))
            return CTL_USAGE;
        k->c2s = tolower((unsigned char)buf[0]) == 'o';
    }
    if (all || !known_value(LABELS_MOTIF, k->motif)) {
        if (!ask_choice("Motif", LABELS_MOTIF, &k->motif, false))
            return CTL_USAGE;
        if (!prompt_line("Précisions pour le médecin (Entrée si aucune)", k->motif_text, buf,
                         sizeof(buf)))
            return CTL_USAGE;
        k->motif_text = *buf ? keep(k, buf) : NULL;
    }
    if (all || !known_value(LABELS_URGENCY, k->urgency)) {
        if (!k->urgency)
            k->urgency = "same_day";
        if (!ask_choice("Délai", LABELS_URGENCY, &k->urgency, false))
            return CTL_USAGE;
    }
    if (all) {
        if (!prompt_line("Modes acceptés (office,home,teleconsultation ; Entrée : tous)", k->modes,
                         buf, sizeof(buf)))
            return CTL_USAGE;
        k->modes = *buf ? keep(k, buf) : NULL;
        if (!prompt_line("Distance maximale en km (Entrée : sans limite)", k->max_km, buf,
                         sizeof(buf)))
            return CTL_USAGE;
        k->max_km = *buf ? keep(k, buf) : NULL;
    }
    if (role && strcmp(role, "pharmacy") == 0 && (all || !k->protocol)) {
        if (!ask_choice("Protocole suivi à la pharmacie", LABELS_PROTOCOL, &k->protocol, true))
            return CTL_USAGE;
        if (k->protocol) {
            if (!ask_choice("Résultat du test rapide", LABELS_TEST_RESULT, &k->test_result, false))
                return CTL_USAGE;
            if (!prompt_line("Critères d'exclusion (fever,pregnancy,recurrence,age,male_patient,"
                             "immunosuppression,severe_symptoms,other ; Entrée : aucun)",
                             k->exclusions, buf, sizeof(buf)))
                return CTL_USAGE;
            k->exclusions = *buf ? keep(k, buf) : NULL;
        }
    }
    if (role && strcmp(role, "emergency") == 0) {
        while (all || !k->triage) {
            if (!prompt_line("Niveau de tri (1 à 5)", k->triage, buf, sizeof(buf)))
                return CTL_USAGE;
            if (strlen(buf) == 1 && buf[0] >= '1' && buf[0] <= '5') {
                k->triage = keep(k, buf);
                break;
            }
        }
        while (all || !k->senior || !validate_rpps(k->senior)) {
            if (!prompt_line("RPPS du médecin senior qui décide la réorientation", k->senior, buf,
                             sizeof(buf)))
                return CTL_USAGE;
            if (validate_rpps(buf)) {
                k->senior = keep(k, buf);
                break;
            }
            printf("  RPPS invalide (11 chiffres, clé de Luhn).\n");
        }
    }
    if (role && strcmp(role, "sas") == 0 && (all || !k->regulator)) {
        if (!prompt_line("Régulateur (nom ; Entrée si non précisé)", k->regulator, buf,
                         sizeof(buf)))
            return CTL_USAGE;
        k->regulator = *buf ? keep(k, buf) : NULL;
    }
    return CTL_OK;
}

/* Returns the missing required options, "" when nothing is missing. */
static void missing_options(const struct create *k, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!k->name && !k->initials)
        strncat(buf, " --name ou --initials", n - strlen(buf) - 1);
    if (!k->birth_year && !k->birth_date)
        strncat(buf, " --birth-year ou --birth-date", n - strlen(buf) - 1);
    if (!k->sex)
        strncat(buf, " --sex", n - strlen(buf) - 1);
    if (!k->commune)
        strncat(buf, " --commune", n - strlen(buf) - 1);
    if (!k->motif)
        strncat(buf, " --motif", n - strlen(buf) - 1);
    if (!k->urgency)
        strncat(buf, " --urgency", n - strlen(buf) - 1);
}

/* Builds the request.create data from the options and answers. */
static int create_data(struct create *k, json_t **out)
{
    struct ctl *c = k->c;
    *out = NULL;
    if (k->name && k->initials)
        return ctl_usage_error(c, "--name et --initials s'excluent : donnez l'un ou l'autre");
    if (k->birth_year && k->birth_date)
        return ctl_usage_error(c, "--birth-year et --birth-date s'excluent");
    if ((k->mt || k->has_mt) && k->no_mt)
        return ctl_usage_error(c, "--no-mt contredit --mt/--has-mt");
    const char *sex = sex_value(k->sex);
    if (!sex)
        return ctl_usage_error(c, "--sex : female, male ou unspecified (ou F, M)");
    int sources = (k->protocol || k->test_result || k->exclusions) + (k->triage || k->senior) +
                  (k->regulator || k->regulator_id);
    if (sources > 1)
        return ctl_usage_error(c, "les options de pharmacie (--protocol...), d'urgences "
                                  "(--triage...) et de SAS (--regulator...) s'excluent");
    json_t *d = json_object();
    char ref[64];
    if (k->ref) {
        json_object_set_new(d, "client_ref", json_string(k->ref));
    } else {
        /* A generated reference: safe for a person, who sees the answer;
         * scripts should give --ref so that a retry is recognised. */
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        snprintf(ref, sizeof(ref), "snpctl-%s-%ld", stamp, (long)getpid());
        json_object_set_new(d, "client_ref", json_string(ref));
    }
    json_t *p = json_object();
    json_object_set_new(d, "patient", p);
    if (k->name)
        json_object_set_new(p, "display_name", json_string(k->name));
    if (k->initials)
        json_object_set_new(p, "initials", json_string(k->initials));
    if (k->birth_date) {
        struct timearg a;
        char iso[16];
        if (!timearg_parse(k->birth_date, &a) || !a.has_date || a.has_time) {
            json_decref(d);
            return ctl_usage_error(c, "--birth-date : date illisible « %s » (AAAA-MM-JJ)",
                                   k->birth_date);
        }
        timearg_format_date(&a, iso, sizeof(iso));
        json_object_set_new(p, "birth_date", json_string(iso));
    }
    if (k->birth_year) {
        json_int_t y;
        if (!ctl_parse_id(k->birth_year, &y)) {
            json_decref(d);
            return ctl_usage_error(c, "--birth-year : année attendue (ex. 1951)");
        }
        json_object_set_new(p, "birth_year", json_integer(y));
    }
    json_object_set_new(p, "sex", json_string(sex));
    if (k->phone)
        json_object_set_new(p, "phone", json_string(k->phone));
    json_object_set_new(p, "commune_insee", json_string(k->commune));
    json_object_set_new(p, "has_mt", json_boolean(k->mt || k->has_mt));
    if (k->mt)
        json_object_set_new(p, "mt_rpps", json_string(k->mt));
    if (k->ald)
        json_object_set_new(p, "ald", json_true());
    if (k->c2s)
        json_object_set_new(p, "c2s", json_true());
    json_t *m = json_pack("{s:s}", "code", k->motif);
    if (k->motif_text)
        json_object_set_new(m, "text", json_string(k->motif_text));
    json_object_set_new(d, "motif", m);
    json_object_set_new(d, "urgency", json_string(k->urgency));
    if (k->modes || k->max_km || k->reduced_mobility) {
        json_t *cons = json_object();
        json_object_set_new(d, "constraints", cons);
        if (k->modes) {
            const char *const *values;
            size_t n = labels_values(LABELS_MODE, &values);
            json_t *modes = ctl_list_arg(c, "--modes", k->modes, values, n);
            if (!modes) {
                json_decref(d);
                return CTL_USAGE;
            }
            json_object_set_new(cons, "modes", modes);
        }
        if (k->max_km) {
            char *end;
            double km = strtod(k->max_km, &end);
            if (*end || end == k->max_km) {
                json_decref(d);
                return ctl_usage_error(c, "--max-km : nombre de kilomètres attendu");
            }
            json_object_set_new(cons, "max_distance_km", json_real(km));
        }
        if (k->reduced_mobility)
            json_object_set_new(cons, "reduced_mobility", json_true());
    }
    if (sources) {
        json_t *src = json_object();
        json_object_set_new(d, "source", src);
        if (k->protocol || k->test_result || k->exclusions) {
            json_t *ph = json_object();
            json_object_set_new(src, "pharmacy", ph);
            if (k->protocol)
                json_object_set_new(ph, "protocol", json_string(k->protocol));
            if (k->test_result)
                json_object_set_new(ph, "test_result", json_string(k->test_result));
            if (k->exclusions) {
                const char *const *values;
                size_t n = labels_values(LABELS_EXCLUSION, &values);
                json_t *ex = ctl_list_arg(c, "--exclusions", k->exclusions, values, n);
                if (!ex) {
                    json_decref(d);
                    return CTL_USAGE;
                }
                json_object_set_new(ph, "exclusions", ex);
            }
        } else if (k->triage || k->senior) {
            json_t *em = json_object();
            json_object_set_new(src, "emergency", em);
            if (k->triage) {
                json_int_t t;
                if (!ctl_parse_id(k->triage, &t)) {
                    json_decref(d);
                    return ctl_usage_error(c, "--triage : niveau de 1 à 5");
                }
                json_object_set_new(em, "triage_level", json_integer(t));
            }
            if (k->senior)
                json_object_set_new(em, "senior_rpps", json_string(k->senior));
        } else {
            json_t *sas = json_object();
            json_object_set_new(src, "sas", sas);
            if (k->regulator)
                json_object_set_new(sas, "regulator_name", json_string(k->regulator));
            if (k->regulator_id)
                json_object_set_new(sas, "regulator_id", json_string(k->regulator_id));
        }
    }
    *out = d;
    return CTL_OK;
}

/* ---- request create: following the request ----------------------------- */

/* What the follow loop knows of the request. */
struct follow {
    struct ctl *c;
    struct snpclient_ws *w;
    json_int_t request_id;
    json_t *request;  /* the latest request object (owned) */
    const char *role; /* from the session */
    int64_t skew;     /* server clock minus ours, in seconds */
    json_t *booking;  /* set once booked (owned) */
};

/* Returns the status of the followed request ("" when unknown). */
static const char *follow_status(const struct follow *f)
{
    const char *s = ctl_str(f->request, "status");
    return s ? s : "";
}

/* Returns the seconds left on the current offer's hold, or -1 when none. */
static long seconds_left(const struct follow *f)
{
    const char *exp = ctl_str(ctl_get(f->request, "offer"), "expires_at");
    int64_t t;
    if (!exp || !timeutil_parse_rfc3339(exp, &t))
        return -1;
    long left = (long)(t - (timeutil_now() + f->skew));
    return left < 0 ? 0 : left;
}

/* Copies into `to` the patient and the motif's text of `from` when `to`
 * lacks them: the answer to offer.decline carries no patient (docs/snpctl.md,
 * Known server behaviour), and the person at the
 * counter should still see whom the offer is for.  Display only: --json
 * prints the server's answers untouched. */
static void keep_identity(json_t *to, const json_t *from)
{
    if (!to || !from)
        return;
    json_t *patient = json_object_get(from, "patient");
    if (!json_object_get(to, "patient") && patient)
        json_object_set(to, "patient", patient);
    json_t *tm = json_object_get(to, "motif"), *fm = json_object_get(from, "motif");
    const char *text = ctl_str(fm, "text");
    if (json_is_object(tm) && text && !ctl_str(tm, "text") &&
        strcmp(ctl_str(tm, "code") ? ctl_str(tm, "code") : "",
               ctl_str(fm, "code") ? ctl_str(fm, "code") : "") == 0)
        json_object_set_new(tm, "text", json_string(text));
}

static void replace_request(struct follow *f, json_t *r)
{
    keep_identity(r, f->request);
    json_decref(f->request);
    f->request = r;
}

/* Fetches the request again over the WebSocket. */
static int refresh(struct follow *f)
{
    json_t *q = json_pack("{s:I}", "request_id", f->request_id), *r;
    int rc = ctl_ws_call(f->c, f->w, "request.get", q, &r, NULL);
    json_decref(q);
    if (rc == CTL_OK)
        replace_request(f, r);
    return rc;
}

/* Accepts `slot_id`; on success stores the booking.  Returns the exit code
 * and the error code in `*code`. */
static int accept_slot(struct follow *f, json_int_t slot_id, const char **code)
{
    json_t *q = json_pack("{s:I, s:I}", "request_id", f->request_id, "slot_id", slot_id), *b;
    int rc = f->w ? ctl_ws_call(f->c, f->w, "offer.accept", q, &b, code)
                  : ctl_call(f->c, "offer.accept", q, &b, NULL, code);
    json_decref(q);
    if (rc == CTL_OK)
        f->booking = b;
    return rc;
}

/* Handles one WebSocket message while following: returns true when it
 * concerned our request (the request may have been refreshed). */
static bool on_push(struct follow *f, const char *text, bool *changed)
{
    json_t *j = NULL;
    struct snp_proto_error err;
    *changed = false;
    if (snp_proto_parse_server(text, strlen(text), &j, &err) != 0)
        return false;
    const char *event = ctl_str(j, "event");
    json_t *data = json_object_get(j, "data");
    if (!event || ctl_int(data, "request_id") != f->request_id) {
        json_decref(j);
        return false;
    }
    const struct snp_proto_push *push = snp_proto_push_find(event);
    if (push && snp_proto_validate_push(push, data, &err) != 0)
        fprintf(stderr, "snpctl: avertissement : notification %s non conforme (%s : %s)\n", event,
                err.field, err.message);
    enum snp_push p;
    if (!snp_push_find(event, &p)) {
        json_decref(j);
        return true;
    }
    if (p == SNP_PUSH_OFFER_MADE) {
        /* The push carries the offer; an offer already shown (the answer to
         * a decline announces it too) is not drawn twice. */
        json_t *offer = json_object_get(data, "offer");
        json_int_t shown = ctl_int(ctl_get(f->request, "offer.slot"), "slot_id");
        if (json_is_object(offer) && ctl_int(json_object_get(offer, "slot"), "slot_id") != shown) {
            json_object_set(f->request, "offer", offer);
            json_object_set_new(f->request, "status", json_string("offered"));
            *changed = true;
        }
    } else if (p == SNP_PUSH_REQUEST_UPDATED &&
               strcmp(ctl_str(data, "status") ? ctl_str(data, "status") : "", follow_status(f)) ==
                   0) {
        /* Nothing new for us: the status shown is already this one. */
    } else if (p == SNP_PUSH_OFFER_EXPIRED || p == SNP_PUSH_REQUEST_UPDATED ||
               p == SNP_PUSH_BOOKING_CANCELLED) {
        if (p == SNP_PUSH_OFFER_EXPIRED && !f->c->json)
            printf("\r\033[KLa proposition a expiré.\n");
        (void)refresh(f);
        *changed = true;
    }
    json_decref(j);
    return true;
}

static const char keys_help[] =
    "[A] accepter  [1-9] une autre proposition  [R] refuser  [Q] quitter";

/* Asks why the offer is declined, with single keys. */
static const char *ask_decline_reason(void)
{
    const char *const *values;
    size_t n = labels_values(LABELS_DECLINE_REASON, &values);
    printf("\r\033[KMotif du refus :");
    for (size_t i = 0; i < n; i++)
        printf("  [%zu] %s", i + 1, labels_get(LABELS_DECLINE_REASON, values[i]));
    printf("  [Entrée] sans motif\n");
    fflush(stdout);
    for (;;) {
        int key = prompt_key(500);
        if (prompt_interrupted() || key == -2)
            return NULL;
        if (key == '\n' || key == '\r')
            return "";
        if (key >= '1' && key < '1' + (int)n)
            return values[key - '1'];
    }
}

/* Redraws the countdown line. */
static void draw_countdown(const struct follow *f)
{
    long left = seconds_left(f);
    char t[32];
    if (left < 0)
        return;
    labels_seconds(left, t, sizeof(t));
    printf("\r\033[K%s %s   %s", left > 0 ? "Créneau bloqué encore" : "Blocage terminé,",
           left > 0 ? t : "en attente du serveur…", keys_help);
    fflush(stdout);
}

/* The interactive decision loop: shows the request, redraws the countdown,
 * follows the pushes and acts on keys.  Returns the exit code. */
static int follow_interactive(struct follow *f)
{
    struct ctl *c = f->c;
    int rc = CTL_OK;
    bool redraw = true;
    prompt_catch_interrupt();
    prompt_keys_begin();
    for (;;) {
        const char *status = follow_status(f);
        if (redraw) {
            printf("\r\033[K\n");
            print_request(f->request);
            if (strcmp(status, "waiting") == 0)
                printf("En attente d'une proposition…  [Q] quitter (la demande reste en "
                       "attente)\n");
            redraw = false;
        }
        if (strcmp(status, "offered") != 0 && strcmp(status, "waiting") != 0)
            break; /* booked, cancelled or unserved elsewhere */
        if (strcmp(status, "offered") == 0)
            draw_countdown(f);
        if (prompt_interrupted())
            goto quit;
        char *text = NULL;
        int err = snpclient_ws_recv(f->w, 250, &text);
        if (err == 0) {
            bool changed;
            on_push(f, text, &changed);
            free(text);
            redraw = changed;
            continue;
        }
        if (err == SNPCLIENT_ECLOSED) {
            printf("\r\033[K");
            ctl_error("connexion au serveur perdue : suivez la demande avec « snpctl request "
                      "show %lld »",
                      (long long)f->request_id);
            rc = CTL_UNAVAILABLE;
            break;
        }
        int key = prompt_key(0);
        if (key == -2)
            goto quit;
        if (key < 0)
            continue;
        key = tolower(key);
        if (key == 'q' || key == 27)
            goto quit;
        if (strcmp(status, "offered") != 0)
            continue;
        json_t *offer = json_object_get(f->request, "offer");
        json_int_t slot = 0;
        if (key == 'a' || key == 'o' || key == '\n')
            slot = ctl_int(ctl_get(offer, "slot"), "slot_id");
        else if (key >= '1' && key <= '9') {
            json_t *alt =
                json_array_get(json_object_get(offer, "alternatives"), (size_t)(key - '1'));
            if (!alt)
                continue;
            slot = ctl_int(alt, "slot_id");
        }
        if (slot) {
            printf("\r\033[K");
            const char *code = NULL;
            int arc = accept_slot(f, slot, &code);
            if (arc == CTL_OK)
                break;
            if (code && (strcmp(code, "slot_taken") == 0 || strcmp(code, "hold_expired") == 0 ||
                         strcmp(code, "conflict") == 0)) {
                /* Someone was faster, or the hold ran out: show what the
                 * request has now. */
                if (refresh(f) != CTL_OK) {
                    rc = CTL_UNAVAILABLE;
                    break;
                }
                redraw = true;
                continue;
            }
            rc = arc;
            break;
        }
        if (key == 'r') {
            const char *reason = ask_decline_reason();
            if (!reason)
                goto quit;
            json_t *q = json_pack("{s:I, s:I}", "request_id", f->request_id, "slot_id",
                                  ctl_int(ctl_get(offer, "slot"), "slot_id")),
                   *r;
            if (*reason)
                json_object_set_new(q, "reason", json_string(reason));
            int drc = ctl_ws_call(c, f->w, "offer.decline", q, &r, NULL);
            json_decref(q);
            if (drc == CTL_OK)
                replace_request(f, r);
            else if (refresh(f) != CTL_OK) {
                rc = drc;
                break;
            }
            printf("Proposition refusée.\n");
            redraw = true;
        }
    }
    prompt_keys_end();
    printf("\r\033[K");
    if (f->booking) {
        print_booking(f->booking, f->role);
        return CTL_OK;
    }
    if (rc == CTL_OK)
        print_request(f->request);
    return rc;
quit:
    prompt_keys_end();
    printf("\r\033[K\nVous quittez : la demande n° %lld reste %s", (long long)f->request_id,
           labels_get(LABELS_REQUEST_STATUS, ctl_str(f->request, "status")));
    if (strcmp(ctl_str(f->request, "status") ? ctl_str(f->request, "status") : "", "offered") == 0)
        printf(" (sans confirmation, le créneau sera libéré à la fin du blocage)");
    printf(".\nSuivi : snpctl request show %lld ; annulation : snpctl request cancel %lld "
           "--reason patient_request\n",
           (long long)f->request_id, (long long)f->request_id);
    return CTL_OK;
}

/* Waits up to the monotonic `deadline` (ms) for a push that changes the
 * request out of "waiting". */
static void wait_for_offer(struct follow *f, int64_t deadline)
{
    while (strcmp(follow_status(f), "waiting") == 0 && !prompt_interrupted()) {
        int64_t left = deadline - timeutil_monotonic_ms();
        if (left <= 0)
            return;
        char *text = NULL;
        int err = snpclient_ws_recv(f->w, left > 1000 ? 1000 : (int)left, &text);
        if (err == SNPCLIENT_ECLOSED)
            return;
        if (err != 0)
            continue;
        bool changed;
        on_push(f, text, &changed);
        free(text);
    }
}

/* The --accept path: accepts the held slot, waiting up to `wait_s` seconds
 * for an offer when the request waits.  Returns the exit code. */
static int follow_accept(struct follow *f, int wait_s)
{
    int64_t deadline = timeutil_monotonic_ms() + (int64_t)wait_s * 1000;
    for (int attempts = 0; attempts < 5;) {
        const char *status = follow_status(f);
        if (strcmp(status, "booked") == 0) {
            /* A retried creation whose request is already booked: accepting
             * the booked slot again returns the same booking.  When the
             * answer does not name the booked slot, fetch the request. */
            json_int_t slot = ctl_int(ctl_get(f->request, "booking.slot"), "slot_id");
            if (!slot) {
                json_t *q = json_pack("{s:I}", "request_id", f->request_id), *r;
                int rc = f->w ? ctl_ws_call(f->c, f->w, "request.get", q, &r, NULL)
                              : ctl_call(f->c, "request.get", q, &r, NULL, NULL);
                json_decref(q);
                if (rc != CTL_OK)
                    return rc;
                replace_request(f, r);
                slot = ctl_int(ctl_get(f->request, "booking.slot"), "slot_id");
            }
            return slot ? accept_slot(f, slot, NULL) : CTL_OK;
        }
        if (strcmp(status, "offered") == 0) {
            attempts++;
            const char *code = NULL;
            json_int_t slot = ctl_int(ctl_get(f->request, "offer.slot"), "slot_id");
            int rc = accept_slot(f, slot, &code);
            if (rc == CTL_OK)
                return CTL_OK;
            if (!code || (strcmp(code, "hold_expired") != 0 && strcmp(code, "slot_taken") != 0))
                return rc;
            /* The hold ran out between the offer and the acceptance: look
             * again, the request may have a new offer. */
            json_t *q = json_pack("{s:I}", "request_id", f->request_id), *r;
            rc = f->w ? ctl_ws_call(f->c, f->w, "request.get", q, &r, NULL)
                      : ctl_call(f->c, "request.get", q, &r, NULL, NULL);
            json_decref(q);
            if (rc != CTL_OK)
                return rc;
            replace_request(f, r);
            continue;
        }
        if (strcmp(status, "waiting") != 0 || !f->w)
            break;
        /* Waiting: an offer.made push comes when a slot fits. */
        wait_for_offer(f, deadline);
        if (strcmp(follow_status(f), "waiting") == 0)
            break;
    }
    if (!f->c->json) {
        print_request(f->request);
        printf("Rien n'a été réservé.\n");
    }
    return CTL_NOT_BOOKED;
}

static int request_create(struct ctl *c, int argc, char **argv)
{
    struct create k;
    memset(&k, 0, sizeof(k));
    k.c = c;
    int first;
    int rc = cmd_parse(c, argc, argv, create_options, on_create, &k, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    if (k.accept && k.no_wait)
        return ctl_usage_error(c, "--accept et --no-wait s'excluent");
    int wait_s = 0;
    if (k.wait) {
        int min;
        if (!k.accept)
            return ctl_usage_error(c, "--wait va avec --accept");
        if (!timearg_minutes(k.wait, 48 * 60, &min))
            return ctl_usage_error(c, "--wait : durée illisible « %s » (ex. 10m)", k.wait);
        wait_s = min * 60;
    }
    c->field_options = create_fields;
    char missing[256];
    missing_options(&k, missing, sizeof(missing));
    bool terminal = ctl_interactive();
    bool form = k.interactive || (missing[0] && terminal);
    if (form && !terminal)
        return ctl_usage_error(c, "--interactive demande un terminal");
    if (missing[0] && !form)
        return ctl_usage_error(c, "options manquantes :%s", missing);
    /* Follow the request live on a terminal unless told otherwise. */
    bool live = terminal && !k.accept && !k.no_wait && !c->json;
    bool need_ws = form || live || (k.accept && wait_s > 0);

    struct follow f = {.c = c};
    json_t *session = NULL, *data = NULL;
    if (need_ws) {
        rc = ctl_ws_open(c, &f.w, &session);
        if (rc != CTL_OK)
            return rc;
        f.role = ctl_str(session, "role");
        int64_t server_now;
        if (timeutil_parse_rfc3339(ctl_str(session, "server_time"), &server_now))
            f.skew = server_now - timeutil_now();
        /* Subscribe before creating, so that no offer.made can slip
         * between the answer and the subscription. */
        json_t *q = json_pack("{s:[s]}", "topics", snp_topic_name(SNP_TOPIC_REQUESTS));
        rc = ctl_ws_call(c, f.w, "subscribe", q, NULL, NULL);
        json_decref(q);
        if (rc != CTL_OK)
            goto out;
    }
    if (form) {
        json_t *territory;
        rc = ctl_territory(c, &territory);
        if (rc != CTL_OK)
            goto out;
        prompt_catch_interrupt();
        rc = create_form(&k, f.role, territory);
        if (rc != CTL_OK) {
            ctl_error("demande abandonnée : rien n'a été envoyé");
            goto out;
        }
    }
    rc = create_data(&k, &data);
    if (rc != CTL_OK)
        goto out;
    int status = 0;
    rc = ctl_call(c, "request.create", data, &f.request, &status, NULL);
    if (rc != CTL_OK)
        goto out;
    f.request_id = ctl_int(f.request, "request_id");
    if (c->json)
        ctl_print_json(f.request);
    else if (status == 200)
        printf("Cette référence existait déjà : voici la demande créée la première fois.\n");
    keep_identity(f.request, data);
    if (k.accept) {
        rc = follow_accept(&f, wait_s);
        if (rc == CTL_OK && f.booking) {
            if (c->json)
                ctl_print_json(f.booking);
            else
                print_booking(f.booking, ctl_str(ctl_get(f.booking, "requester"), "kind"));
        }
    } else if (live) {
        rc = follow_interactive(&f);
    } else if (!c->json) {
        print_request(f.request);
        if (strcmp(ctl_str(f.request, "status"), "offered") == 0)
            printf("Pour confirmer : snpctl request accept %lld --slot %lld\n",
                   (long long)f.request_id,
                   (long long)ctl_int(ctl_get(f.request, "offer.slot"), "slot_id"));
    }
out:
    json_decref(data);
    json_decref(session);
    json_decref(f.request);
    json_decref(f.booking);
    snpclient_ws_close(f.w);
    return rc;
}

/* ---- request show / list / accept / decline / cancel ------------------ */

struct simple {
    struct ctl *c;
    const char *slot, *reason, *note, *status, *from, *to, *limit, *html, *sms, *email;
    bool refuse;
};

static int on_simple(void *state, int id, const char *arg)
{
    struct simple *s = state;
    switch (id) {
    case OPT_SLOT:
        s->slot = arg;
        break;
    case OPT_REASON:
        s->reason = arg;
        break;
    case OPT_NOTE:
        s->note = arg;
        break;
    case OPT_STATUS:
        s->status = arg;
        break;
    case OPT_FROM:
        s->from = arg;
        break;
    case OPT_TO:
        s->to = arg;
        break;
    case OPT_LIMIT:
        s->limit = arg;
        break;
    case OPT_REFUSE:
        s->refuse = true;
        break;
    case OPT_HTML:
        s->html = arg;
        break;
    case OPT_SMS:
        s->sms = arg;
        break;
    case OPT_EMAIL:
        s->email = arg;
        break;
    default:
        return ctl_usage_error(s->c, "option inattendue");
    }
    return CTL_OK;
}

static const struct option simple_options[] = {
    {"slot", required_argument, NULL, OPT_SLOT},
    {"reason", required_argument, NULL, OPT_REASON},
    {"note", required_argument, NULL, OPT_NOTE},
    {"status", required_argument, NULL, OPT_STATUS},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"limit", required_argument, NULL, OPT_LIMIT},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static const struct ctl_field_option simple_fields[] = {
    {"slot_id", "--slot"}, {"reason", "--reason"}, {"note", "--note"},   {"status", "--status"},
    {"from", "--from"},    {"to", "--to"},         {"limit", "--limit"}, {NULL, NULL},
};

/* Parses `options` (NULL: simple_options) and the one request id operand
 * (when `want_id`). */
static int simple_parse(struct ctl *c, int argc, char **argv, const struct option *options,
                        struct simple *s, bool want_id, json_int_t *id)
{
    int first;
    int rc = cmd_parse(c, argc, argv, options ? options : simple_options, on_simple, s, &first);
    if (rc != CTL_OK)
        return rc;
    c->field_options = simple_fields;
    if (!want_id)
        return first < argc ? ctl_usage_error(c, "argument inattendu : %s", argv[first]) : CTL_OK;
    if (first + 1 != argc)
        return ctl_usage_error(c, "donnez un numéro de demande");
    if (!ctl_parse_id(argv[first], id))
        return ctl_usage_error(c, "numéro de demande invalide : %s", argv[first]);
    return CTL_OK;
}

static int request_show(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    json_int_t id;
    int rc = simple_parse(c, argc, argv, NULL, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_t *q = json_pack("{s:I}", "request_id", id), *r;
    rc = ctl_call(c, "request.get", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(r);
    else
        print_request(r);
    json_decref(r);
    return CTL_OK;
}

/* Converts a --from/--to value to an RFC 3339 instant of the territory. */
static int when_arg(struct ctl *c, const char *option, const char *s, bool end_of_day, json_t *q,
                    const char *key)
{
    struct timearg a;
    if (!timearg_parse(s, &a))
        return ctl_usage_error(c, "%s : date illisible « %s »", option, s);
    json_t *t;
    int rc = ctl_territory(c, &t);
    if (rc != CTL_OK)
        return rc;
    if (end_of_day && a.has_date && !a.has_time)
        timearg_add_days(&a, 1);
    int64_t instant;
    char ts[TIMEARG_UTC_SIZE];
    /* UTC with "Z", as in cmd_slots.c: a '+' does not survive snpd's query
     * decoding. */
    if (!timearg_instant(c->zone, &a, NULL, timeutil_now(), &instant))
        return ctl_usage_error(c, "%s : date hors limites", option);
    timearg_format_utc(instant, ts, sizeof(ts));
    json_object_set_new(q, key, json_string(ts));
    return CTL_OK;
}

static int request_list(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    int rc = simple_parse(c, argc, argv, NULL, &s, false, NULL);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_t *q = json_object(), *r = NULL;
    if (s.status) {
        const char *const *values;
        size_t n = labels_values(LABELS_REQUEST_STATUS, &values);
        json_t *st = ctl_list_arg(c, "--status", s.status, values, n);
        if (!st)
            rc = CTL_USAGE;
        else
            json_object_set_new(q, "status", st);
    }
    if (rc == CTL_OK && s.from)
        rc = when_arg(c, "--from", s.from, false, q, "from");
    if (rc == CTL_OK && s.to)
        rc = when_arg(c, "--to", s.to, true, q, "to");
    if (rc == CTL_OK && s.limit) {
        json_int_t n;
        if (!ctl_parse_id(s.limit, &n))
            rc = ctl_usage_error(c, "--limit : nombre attendu");
        else
            json_object_set_new(q, "limit", json_integer(n));
    }
    if (rc == CTL_OK)
        rc = ctl_call(c, "request.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
        return CTL_OK;
    }
    json_t *list = json_object_get(r, "requests");
    if (json_array_size(list) == 0) {
        printf("Aucune demande sur la période.\n");
        json_decref(r);
        return CTL_OK;
    }
    static const char *const heads[] = {"N°",    "Référence", "Créée",  "Patient",
                                        "Motif", "Urgence",   "Statut", "Rendez-vous"};
    struct table t;
    table_init(&t, 8, heads);
    table_align_right(&t, 0);
    table_max_width(&t, 1, 28);
    size_t i;
    json_t *req;
    json_array_foreach (list, i, req) {
        char id[24], created[40], patient[200], rdv[300] = "";
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(req, "request_id"));
        labels_when(ctl_str(req, "created_at"), created, sizeof(created));
        cmd_patient(json_object_get(req, "patient"), patient, sizeof(patient));
        const json_t *slot = ctl_get(req, "booking.slot");
        if (!slot)
            slot = ctl_get(req, "offer.slot");
        if (slot) {
            char when[40];
            labels_when(ctl_str(slot, "start"), when, sizeof(when));
            const json_t *pr = json_object_get(slot, "practitioner");
            snprintf(rdv, sizeof(rdv), "%s%s%s%s", when,
                     ctl_get(req, "offer.slot") == slot ? " (proposé)" : "", pr ? ", Dr " : "",
                     pr ? ctl_str(pr, "family_name") : "");
        }
        const char *row[] = {id,
                             ctl_str(req, "client_ref"),
                             created,
                             patient,
                             labels_get(LABELS_MOTIF, ctl_str(ctl_get(req, "motif"), "code")),
                             labels_get(LABELS_URGENCY, ctl_str(req, "urgency")),
                             labels_get(LABELS_REQUEST_STATUS, ctl_str(req, "status")),
                             rdv};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
    printf("%zu demande%s%s\n", json_array_size(list), json_array_size(list) > 1 ? "s" : "",
           json_is_true(json_object_get(r, "truncated")) ? " (liste tronquée)" : "");
    json_decref(r);
    return CTL_OK;
}

static int request_accept(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    json_int_t id, slot;
    int rc = simple_parse(c, argc, argv, NULL, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (!s.slot || !ctl_parse_id(s.slot, &slot))
        return ctl_usage_error(c, "--slot CRÉNEAU est obligatoire (le créneau proposé ou une "
                                  "alternative)");
    json_t *q = json_pack("{s:I, s:I}", "request_id", id, "slot_id", slot), *b;
    rc = ctl_call(c, "offer.accept", q, &b, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(b);
    else
        print_booking(b, ctl_str(ctl_get(b, "requester"), "kind"));
    json_decref(b);
    return CTL_OK;
}

static int request_decline(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    json_int_t id, slot;
    int rc = simple_parse(c, argc, argv, NULL, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (!s.slot || !ctl_parse_id(s.slot, &slot))
        return ctl_usage_error(c, "--slot CRÉNEAU est obligatoire (le créneau refusé)");
    json_t *q = json_pack("{s:I, s:I}", "request_id", id, "slot_id", slot), *r;
    if (s.reason)
        json_object_set_new(q, "reason", json_string(s.reason));
    if (s.note)
        json_object_set_new(q, "note", json_string(s.note));
    rc = ctl_call(c, "offer.decline", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        printf("Proposition refusée.\n");
        print_request_as(r, false);
    }
    json_decref(r);
    return CTL_OK;
}

static int request_cancel(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    json_int_t id;
    int rc = simple_parse(c, argc, argv, NULL, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (!s.reason)
        return ctl_usage_error(c, "--reason MOTIF est obligatoire (ex. patient_request)");
    json_t *q = json_pack("{s:I, s:s}", "request_id", id, "reason", s.reason), *r;
    if (s.note)
        json_object_set_new(q, "note", json_string(s.note));
    rc = ctl_call(c, "request.cancel", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(r);
    else
        printf("Demande n° %lld annulée (%s).\n", (long long)id,
               labels_get(LABELS_CANCEL_REASON, s.reason));
    json_decref(r);
    return CTL_OK;
}

/* ---- request confirmation ---------------------------------------------- */

/* Writes the confirmation `k` as an HTML page to the file `path`, created
 * readable by its owner only: it may name the patient. */
static int write_html(const struct confirmation *k, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        ctl_error("--html : impossible d'écrire %s : %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CTL_USAGE;
    }
    confirmation_write_html(k, out);
    bool failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        ctl_error("--html : écriture de %s incomplète : %s", path, strerror(errno));
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* Reads the request, the caller's organisation (who sent the patient: the
 * `auth` session) and territory over one WebSocket, and prints the
 * patient's confirmation. */
static int request_confirmation(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    static const struct option options[] = {
        {"html", required_argument, NULL, OPT_HTML},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    json_int_t id;
    int rc = simple_parse(c, argc, argv, options, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    struct snpclient_ws *w;
    json_t *session, *r = NULL, *territory = NULL;
    rc = ctl_ws_open(c, &w, &session);
    if (rc != CTL_OK)
        return rc;
    json_t *q = json_pack("{s:I}", "request_id", id);
    rc = ctl_ws_call(c, w, "request.get", q, &r, NULL);
    json_decref(q);
    /* The territory only names the sheet: without it, the sheet goes
     * without its heading. */
    if (rc == CTL_OK && ctl_ws_call(c, w, "territory.get", NULL, &territory, NULL) != CTL_OK)
        territory = NULL;
    snpclient_ws_close(w);
    struct confirmation k;
    if (rc != CTL_OK)
        goto out;
    if (!confirmation_build(&k, r, territory, ctl_str(session, "organisation_name"))) {
        confirmation_free(&k);
        ctl_error("la demande n° %lld n'a pas de rendez-vous confirmé (%s) : pas de "
                  "confirmation à remettre",
                  (long long)id, labels_get(LABELS_REQUEST_STATUS, ctl_str(r, "status")));
        rc = CTL_REFUSED;
        goto out;
    }
    if (c->json)
        ctl_print_json(r);
    else
        confirmation_write_text(&k, stdout);
    if (s.html)
        rc = write_html(&k, s.html);
    confirmation_free(&k);
out:
    json_decref(territory);
    json_decref(r);
    json_decref(session);
    return rc;
}

/* ---- request send-confirmation ----------------------------------------- */

/* Sends the confirmation of a booked request to the patient by SMS or
 * e-mail (request.confirmation.send).  The number or address goes to the
 * server for this one message and is never printed back. */
static int request_send_confirmation(struct ctl *c, int argc, char **argv)
{
    struct simple s = {.c = c};
    static const struct option options[] = {
        {"sms", required_argument, NULL, OPT_SMS},
        {"email", required_argument, NULL, OPT_EMAIL},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    json_int_t id;
    int rc = simple_parse(c, argc, argv, options, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (!s.sms == !s.email)
        return ctl_usage_error(c, "donnez --sms NUMÉRO ou --email ADRESSE, l'un des deux");
    const char *option = s.sms ? "--sms" : "--email";
    const struct ctl_field_option fields[] = {{"to", option}, {NULL, NULL}};
    c->field_options = fields;
    json_t *r;
    rc = cmd_send(c, "request.confirmation.send",
                  json_pack("{s:I, s:s, s:s}", "request_id", id, "channel", s.sms ? "sms" : "email",
                            "to", s.sms ? s.sms : s.email),
                  &r);
    c->field_options = NULL;
    if (rc != CTL_OK || !r)
        return rc;
    const json_t *m = json_object_get(r, "message");
    char progress[128];
    cmd_message_progress(m, progress, sizeof(progress));
    printf("Confirmation n° %lld%s (demande n° %lld, réservation n° %lld).\n",
           (long long)ctl_int(m, "message_id"), progress, (long long)id,
           (long long)ctl_int(m, "booking_id"));
    printf("%s ne sert qu'à cet envoi : snpd l'efface une fois le message parti ou abandonné, "
           "et ne l'affiche jamais.\n",
           s.sms ? "Le numéro" : "L'adresse");
    json_decref(r);
    return CTL_OK;
}

int cmd_request(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, request_usage, NULL, &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (strcmp(sub, "create") == 0)
        return request_create(c, argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return request_show(c, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return request_list(c, argc - 1, argv + 1);
    if (strcmp(sub, "accept") == 0)
        return request_accept(c, argc - 1, argv + 1);
    if (strcmp(sub, "decline") == 0)
        return request_decline(c, argc - 1, argv + 1);
    if (strcmp(sub, "cancel") == 0)
        return request_cancel(c, argc - 1, argv + 1);
    if (strcmp(sub, "confirmation") == 0)
        return request_confirmation(c, argc - 1, argv + 1);
    if (strcmp(sub, "send-confirmation") == 0)
        return request_send_confirmation(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "request : sous-commande inconnue « %s »", sub);
}

/* ---- slip ---------------------------------------------------------------- */

/* Prints the slip for a printer: the server's text (the slip itself), and
 * around it what the patient needs and the text may not repeat. */
static void print_slip(const json_t *r)
{
    const char *text = ctl_str(r, "text");
    if (!text || strncmp(text, "BON DE R", 8) != 0)
        printf("BON DE RÉORIENTATION\n");
    printf("%s\n\n", ctl_str(r, "department") ? ctl_str(r, "department") : "");
    const char *name = ctl_str(r, "display_name");
    printf("Patient : %s\n\n", name ? name : ctl_str(r, "initials") ? ctl_str(r, "initials") : "?");
    table_wrap(stdout, text ? text : "", 72, "", "");
    printf("\n");
    const char *phone = ctl_str(ctl_get(r, "site"), "phone");
    if (phone && (!text || !strstr(text, phone)))
        printf("Téléphone du lieu de consultation : %s\n", phone);
    if (ctl_str(r, "how_to_cancel"))
        table_wrap(stdout, ctl_str(r, "how_to_cancel"), 72, "", "");
    char issued[48];
    labels_when_year(ctl_str(r, "issued_at"), issued, sizeof(issued));
    printf("\nRéorientation décidée par le médecin senior (RPPS %s).\n", ctl_str(r, "senior_rpps"));
    printf("Demande n° %lld — réservation n° %lld — émis le %s\n",
           (long long)ctl_int(r, "request_id"), (long long)ctl_int(r, "booking_id"), issued);
    if (json_is_true(json_object_get(r, "refused")))
        printf("\n*** LE PATIENT A REFUSÉ CETTE RÉORIENTATION ***\n");
}

int cmd_slip(struct ctl *c, int argc, char **argv)
{
    c->usage = slip_usage;
    struct simple s = {.c = c};
    static const struct option options[] = {
        {"refuse", no_argument, NULL, OPT_REFUSE},
        {"note", required_argument, NULL, OPT_NOTE},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    json_int_t id;
    int rc = simple_parse(c, argc, argv, options, &s, true, &id);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (s.note && !s.refuse)
        return ctl_usage_error(c, "--note va avec --refuse");
    static const struct ctl_field_option fields[] = {{"note", "--note"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_pack("{s:I}", "request_id", id), *r;
    if (s.refuse) {
        if (s.note)
            json_object_set_new(q, "note", json_string(s.note));
        rc = ctl_call(c, "slip.refuse", q, &r, NULL, NULL);
        json_decref(q);
        if (rc != CTL_OK)
            return rc;
        if (c->json)
            ctl_print_json(r);
        else
            printf("Refus de la réorientation enregistré : demande n° %lld annulée, créneau "
                   "libéré.\n",
                   (long long)id);
        json_decref(r);
        return CTL_OK;
    }
    rc = ctl_call(c, "slip.get", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(r);
    else
        print_slip(r);
    json_decref(r);
    return CTL_OK;
}
