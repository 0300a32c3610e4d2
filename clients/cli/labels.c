/* labels: French labels of snp.v1 values and short local date formats.  See
 * labels.h. */
#include "clients/cli/labels.h"

#include <stdio.h>
#include <string.h>

struct pair {
    const char *value;
    const char *label;
};

/* Each table lists the protocol's values in the order of protocol/snp.v1.json,
 * so that menus built from them follow the documentation. */
static const struct pair slot_status[] = {
    {"free", "libre"},       {"held", "bloqué"},    {"booked", "réservé"},
    {"withdrawn", "retiré"}, {"expired", "expiré"}, {NULL, NULL},
};
static const struct pair request_status[] = {
    {"waiting", "en attente"}, {"offered", "proposée"},    {"booked", "réservée"},
    {"cancelled", "annulée"},  {"unserved", "non servie"}, {NULL, NULL},
};
static const struct pair booking_status[] = {
    {"booked", "confirmée"},
    {"cancelled", "annulée"},
    {NULL, NULL},
};
static const struct pair mode[] = {
    {"office", "cabinet"},
    {"home", "domicile"},
    {"teleconsultation", "téléconsultation"},
    {NULL, NULL},
};
static const struct pair audience[] = {
    {"sas", "SAS"},
    {"emergency", "urgences"},
    {"pharmacy", "pharmacies"},
    {"professional", "professionnels"},
    {"desk", "guichet CPTS"},
    {"public", "tous"},
    {NULL, NULL},
};
static const struct pair urgency[] = {
    {"same_day", "dans la journée"},
    {"24h", "sous 24 h"},
    {"48h", "sous 48 h"},
    {NULL, NULL},
};
static const struct pair motif[] = {
    {"fever", "fièvre"},
    {"ent", "ORL (gorge, oreilles, nez)"},
    {"respiratory", "respiratoire"},
    {"urinary", "urinaire"},
    {"digestive", "digestif"},
    {"skin", "peau"},
    {"minor_trauma", "petite traumatologie"},
    {"musculoskeletal", "douleur ostéo-articulaire"},
    {"headache", "maux de tête"},
    {"eye", "œil"},
    {"psychological", "détresse psychologique"},
    {"other", "autre motif"},
    {NULL, NULL},
};
static const struct pair sex[] = {
    {"female", "F"},
    {"male", "M"},
    {"unspecified", "—"},
    {NULL, NULL},
};
static const struct pair outcome[] = {
    {"attended", "venu"},
    {"no_show", "absent"},
    {"redirected_emergency", "réorienté aux urgences"},
    {"hospitalised", "hospitalisé"},
    {"cancelled_by_patient", "annulé par le patient"},
    {NULL, NULL},
};
static const struct pair cancel_reason[] = {
    {"patient_request", "à la demande du patient"},
    {"patient_seen_elsewhere", "patient vu ailleurs"},
    {"practitioner_unavailable", "praticien indisponible"},
    {"patient_refused", "réorientation refusée"},
    {"duplicate", "doublon"},
    {"entered_in_error", "saisie erronée"},
    {"other", "autre"},
    {NULL, NULL},
};
static const struct pair decline_reason[] = {
    {"patient_unavailable", "patient indisponible"},
    {"too_far", "trop loin"},
    {"wrong_mode", "mode inadapté"},
    {"patient_prefers_other", "le patient préfère un autre créneau"},
    {"other", "autre"},
    {NULL, NULL},
};
static const struct pair half_day[] = {
    {"morning", "matin (08:00–12:00)"},
    {"afternoon", "après-midi (14:00–18:00)"},
    {"evening", "soir (18:00–22:00)"},
    {NULL, NULL},
};
static const struct pair site_kind[] = {
    {"practice", "cabinet"},
    {"csnp", "centre de soins non programmés"},
    {"teleconsultation", "téléconsultation"},
    {NULL, NULL},
};
static const struct pair role[] = {
    {"gp", "médecin généraliste"},
    {"pharmacy", "pharmacie"},
    {"emergency", "service d'urgences"},
    {"sas", "SAS"},
    {"professional", "professionnel de ville"},
    {"desk", "guichet CPTS"},
    {"coordinator", "coordination CPTS"},
    {"admin", "administration"},
    {"platform", "plateforme numérique SAS"},
    {"reception", "accueil d'un lieu"},
    {NULL, NULL},
};
static const struct pair protocol[] = {
    {"sore_throat", "angine (TROD)"},
    {"cystitis", "cystite (bandelette)"},
    {"other", "autre"},
    {NULL, NULL},
};
static const struct pair test_result[] = {
    {"positive", "positif"},
    {"negative", "négatif"},
    {"not_done", "non fait"},
    {NULL, NULL},
};
static const struct pair exclusion[] = {
    {"fever", "fièvre"},
    {"pregnancy", "grossesse"},
    {"recurrence", "récidive"},
    {"age", "âge"},
    {"male_patient", "patient homme"},
    {"immunosuppression", "immunodépression"},
    {"severe_symptoms", "signes de gravité"},
    {"other", "autre"},
    {NULL, NULL},
};
static const struct pair priority_group[] = {
    {"ald", "ALD"},
    {"c2s", "C2S"},
    {"aged_70_plus", "70 ans et plus"},
    {NULL, NULL},
};
static const struct pair horizon[] = {
    {"2h", "2 heures"},   {"4h", "4 heures"},   {"today", "aujourd'hui"},
    {"24h", "24 heures"}, {"48h", "48 heures"}, {NULL, NULL},
};

static const struct pair token_state[] = {
    {"active", "actif"},
    {"expired", "expiré"},
    {"revoked", "révoqué"},
    {NULL, NULL},
};

/* The outcomes of SAS calls, as the indicator catalogue names them
 * (indicator_key_label, breakdown call_outcome; migration 0019). */
static const struct pair call_outcome[] = {
    {"advice", "conseil médical"},
    {"prescription", "prescription"},
    {"slot_request", "créneau de soins non programmés"},
    {"sent_to_15", "renvoi vers le 15"},
    {"other", "autre issue"},
    {NULL, NULL},
};

static const struct pair push_state[] = {
    {"pending", "en attente"},
    {"dead", "abandonné"},
    {NULL, NULL},
};

static const struct pair appointment_status[] = {
    {"booked", "réservé"},
    {"fulfilled", "honoré"},
    {"noshow", "patient absent"},
    {"cancelled", "annulé"},
    {NULL, NULL},
};

/* Why a booking does not qualify for the SNP fee supplement
 * (participation.get; docs/participation.md).  The same words as
 * clients/web/app.js. */
static const struct pair supplement_reason[] = {
    {"not_sas", "pas adressé par la régulation du SAS"},
    {"after_48h", "consultation plus de 48 h après la demande"},
    {"is_mt", "vous êtes le médecin traitant du patient"},
    {"not_fulfilled", "patient absent ou rendez-vous annulé par le patient"},
    {"no_precondition", "pas d'inscription au SAS ni d'adhésion à la CPTS ce jour-là"},
    {"over_weekly_cap", "au-delà des 20 suppléments de la semaine"},
    {NULL, NULL},
};

static const struct pair precondition_kind[] = {
    {"sas_registered", "inscription au SAS"},
    {"cpts_member", "adhésion à la CPTS"},
    {NULL, NULL},
};

/* Under which status a practitioner staffs a CSNP shift (shift.assign).  The
 * same words as clients/web/app.js. */
static const struct pair duty_status[] = {
    {"independent", "libéral"},
    {"locum", "remplaçant"},
    {"retired", "retraité"},
    {"resident", "interne"},
    {NULL, NULL},
};

/* The messages snpd sends (message.list, protocol 1.6.0).  The same words
 * as clients/web/app.js. */
static const struct pair message_kind[] = {
    {"confirmation", "confirmation de rendez-vous"},
    {"mt_summary", "compte rendu au médecin traitant"},
    {"mt_handover", "adressage à un médecin traitant"},
    {NULL, NULL},
};

static const struct pair message_channel[] = {
    {"sms", "SMS"},
    {"email", "e-mail"},
    {"mssante", "MSSanté"},
    {NULL, NULL},
};

static const struct pair message_state[] = {
    {"pending", "en attente"},
    {"sent", "envoyé"},
    {"dead", "abandonné"},
    {NULL, NULL},
};

/* The units of indicators.get (docs/indicators.md), as written after a value. */
static const struct pair indicator_unit[] = {
    {"percent", "%"},
    {"minutes", "min"},
    {"hours", "h"},
    {NULL, NULL},
};

static const struct pair *const tables[LABELS_KIND_COUNT] = {
    [LABELS_SLOT_STATUS] = slot_status,
    [LABELS_REQUEST_STATUS] = request_status,
    [LABELS_BOOKING_STATUS] = booking_status,
    [LABELS_MODE] = mode,
    [LABELS_AUDIENCE] = audience,
    [LABELS_URGENCY] = urgency,
    [LABELS_MOTIF] = motif,
    [LABELS_SEX] = sex,
    [LABELS_OUTCOME] = outcome,
    [LABELS_CANCEL_REASON] = cancel_reason,
    [LABELS_DECLINE_REASON] = decline_reason,
    [LABELS_HALF_DAY] = half_day,
    [LABELS_SITE_KIND] = site_kind,
    [LABELS_ROLE] = role,
    [LABELS_PROTOCOL] = protocol,
    [LABELS_TEST_RESULT] = test_result,
    [LABELS_EXCLUSION] = exclusion,
    [LABELS_PRIORITY_GROUP] = priority_group,
    [LABELS_HORIZON] = horizon,
    [LABELS_TOKEN_STATE] = token_state,
    [LABELS_CALL_OUTCOME] = call_outcome,
    [LABELS_PUSH_STATE] = push_state,
    [LABELS_APPOINTMENT_STATUS] = appointment_status,
    [LABELS_INDICATOR_UNIT] = indicator_unit,
    [LABELS_SUPPLEMENT_REASON] = supplement_reason,
    [LABELS_PRECONDITION_KIND] = precondition_kind,
    [LABELS_DUTY_STATUS] = duty_status,
    [LABELS_MESSAGE_KIND] = message_kind,
    [LABELS_MESSAGE_CHANNEL] = message_channel,
    [LABELS_MESSAGE_STATE] = message_state,
};

/* The values of each table as a plain array, for labels_values(); filled on
 * first use (the process is single-threaded). */
static const char *value_lists[LABELS_KIND_COUNT][16];
static size_t value_counts[LABELS_KIND_COUNT];

const char *labels_get(enum labels_kind kind, const char *value)
{
    if (!value)
        return "—";
    if ((unsigned)kind >= LABELS_KIND_COUNT)
        return value;
    for (const struct pair *p = tables[kind]; p->value; p++)
        if (strcmp(p->value, value) == 0)
            return p->label;
    return value;
}

size_t labels_values(enum labels_kind kind, const char *const **values)
{
    if ((unsigned)kind >= LABELS_KIND_COUNT) {
        *values = NULL;
        return 0;
    }
    if (value_counts[kind] == 0)
        for (const struct pair *p = tables[kind]; p->value && value_counts[kind] < 16; p++)
            value_lists[kind][value_counts[kind]++] = p->value;
    *values = value_lists[kind];
    return value_counts[kind];
}

static const struct pair errors[] = {
    {"bad_json", "requête mal formée"},
    {"too_large", "requête trop volumineuse"},
    {"too_deep", "requête trop imbriquée"},
    {"duplicate_key", "paramètre donné deux fois"},
    {"invalid_utf8", "texte qui n'est pas de l'UTF-8"},
    {"unknown_type", "opération inconnue du serveur"},
    {"missing_field", "information manquante"},
    {"invalid_field", "valeur refusée"},
    {"unknown_field", "information inconnue du serveur"},
    {"unauthenticated", "jeton absent ou inconnu"},
    {"token_expired", "jeton expiré : demandez-en un nouveau au coordinateur"},
    {"token_revoked", "jeton révoqué : demandez-en un nouveau au coordinateur"},
    {"forbidden", "action non autorisée pour votre rôle"},
    {"other_territory", "cet objet appartient à un autre territoire"},
    {"not_found", "introuvable"},
    {"method_not_allowed", "opération non prévue à cette adresse"},
    {"conflict", "l'état actuel ne permet pas cette action"},
    {"slot_taken", "ce créneau vient d'être pris ou bloqué pour une autre demande"},
    {"hold_expired", "la proposition a expiré avant la confirmation"},
    {"too_late", "trop tard (ou trop tôt) pour cette action"},
    {"rate_limited", "trop de requêtes : patientez un instant"},
    {"unavailable", "service momentanément indisponible : réessayez dans un instant"},
    {"internal", "erreur interne du serveur"},
    {NULL, NULL},
};

const char *labels_error(const char *code)
{
    if (code)
        for (const struct pair *p = errors; p->value; p++)
            if (strcmp(p->value, code) == 0)
                return p->label;
    return "erreur inconnue";
}

/* Reads "YYYY-MM-DDTHH:MM" at the start of `ts`; returns whether it is there. */
static int read_ts(const char *ts, int *y, int *mo, int *d, int *h, int *mi)
{
    if (!ts || strlen(ts) < 16 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':')
        return 0;
    return sscanf(ts, "%4d-%2d-%2dT%2d:%2d", y, mo, d, h, mi) == 5;
}

/* Day of the week of a Gregorian date, 0 for Sunday (Sakamoto's method). */
static int weekday(int y, int m, int d)
{
    static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3)
        y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[(m - 1) % 12] + d) % 7;
}

static const char *const day_names[] = {"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."};

void labels_when(const char *ts, char *buf, size_t n)
{
    int y, mo, d, h, mi;
    if (!ts)
        snprintf(buf, n, "—");
    else if (read_ts(ts, &y, &mo, &d, &h, &mi) && mo >= 1 && mo <= 12)
        snprintf(buf, n, "%s %02d/%02d %02d:%02d", day_names[weekday(y, mo, d)], d, mo, h, mi);
    else
        snprintf(buf, n, "%s", ts);
}

void labels_day(const char *date, char *buf, size_t n)
{
    int y, mo, d;
    if (!date)
        snprintf(buf, n, "—");
    else if (strlen(date) == 10 && date[4] == '-' && date[7] == '-' &&
             sscanf(date, "%4d-%2d-%2d", &y, &mo, &d) == 3 && mo >= 1 && mo <= 12)
        snprintf(buf, n, "%s %02d/%02d", day_names[weekday(y, mo, d)], d, mo);
    else
        snprintf(buf, n, "%s", date);
}

void labels_when_year(const char *ts, char *buf, size_t n)
{
    int y, mo, d, h, mi;
    if (!ts)
        snprintf(buf, n, "—");
    else if (read_ts(ts, &y, &mo, &d, &h, &mi) && mo >= 1 && mo <= 12)
        snprintf(buf, n, "%s %02d/%02d/%04d %02d:%02d", day_names[weekday(y, mo, d)], d, mo, y, h,
                 mi);
    else
        snprintf(buf, n, "%s", ts);
}

static const char *const long_day_names[] = {"dimanche", "lundi",    "mardi", "mercredi",
                                             "jeudi",    "vendredi", "samedi"};
static const char *const month_names[] = {"janvier",   "février", "mars",     "avril",
                                          "mai",       "juin",    "juillet",  "août",
                                          "septembre", "octobre", "novembre", "décembre"};

void labels_when_long(const char *ts, char *buf, size_t n)
{
    int y, mo, d, h, mi;
    if (!ts)
        snprintf(buf, n, "—");
    else if (read_ts(ts, &y, &mo, &d, &h, &mi) && mo >= 1 && mo <= 12)
        snprintf(buf, n, "%s %d%s %s %04d à %d h %02d", long_day_names[weekday(y, mo, d)], d,
                 d == 1 ? "er" : "", month_names[mo - 1], y, h, mi);
    else
        snprintf(buf, n, "%s", ts);
}

void labels_hhmm(const char *ts, char *buf, size_t n)
{
    int y, mo, d, h, mi;
    if (ts && read_ts(ts, &y, &mo, &d, &h, &mi))
        snprintf(buf, n, "%02d:%02d", h, mi);
    else
        snprintf(buf, n, "%s", ts ? ts : "—");
}

void labels_seconds(long seconds, char *buf, size_t n)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 60)
        snprintf(buf, n, "%ld s", seconds);
    else
        snprintf(buf, n, "%ld min %02ld s", seconds / 60, seconds % 60);
}
