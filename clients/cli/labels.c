/* labels: French labels of snp.v1 values, read from the declaration
 * (protocol/snp.v1.json, "labels_fr"), and short local date formats.  See
 * labels.h. */
#include "clients/cli/labels.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

struct pair {
    const char *value;
    const char *label;
};

/* The declared enumeration (a named type of protocol/snp.v1.json) whose
 * "labels_fr" each kind shows.  LABELS_INDICATOR_UNIT has none: the units are
 * not an enumeration of the protocol, and keep their table below. */
static const char *const type_names[LABELS_KIND_COUNT] = {
    [LABELS_SLOT_STATUS] = "slot_status",
    [LABELS_REQUEST_STATUS] = "request_status",
    [LABELS_BOOKING_STATUS] = "booking_status",
    [LABELS_MODE] = "slot_mode",
    [LABELS_AUDIENCE] = "audience",
    [LABELS_URGENCY] = "urgency",
    [LABELS_MOTIF] = "motif_code",
    [LABELS_SEX] = "sex",
    [LABELS_OUTCOME] = "outcome_kind",
    [LABELS_CANCEL_REASON] = "cancel_reason",
    [LABELS_DECLINE_REASON] = "decline_reason",
    [LABELS_HALF_DAY] = "half_day",
    [LABELS_SITE_KIND] = "site_kind",
    [LABELS_ROLE] = "role",
    [LABELS_PROTOCOL] = "pharmacy_protocol",
    [LABELS_TEST_RESULT] = "test_result",
    [LABELS_EXCLUSION] = "pharmacy_exclusion",
    [LABELS_PRIORITY_GROUP] = "priority_group",
    [LABELS_HORIZON] = "horizon",
    [LABELS_TOKEN_STATE] = "token_state",
    [LABELS_CALL_OUTCOME] = "call_outcome",
    [LABELS_PUSH_STATE] = "push_state",
    [LABELS_APPOINTMENT_STATUS] = "appointment_status",
    [LABELS_SUPPLEMENT_REASON] = "supplement_reason",
    [LABELS_PRECONDITION_KIND] = "precondition_kind",
    [LABELS_DUTY_STATUS] = "duty_status",
    [LABELS_MESSAGE_KIND] = "message_kind",
    [LABELS_MESSAGE_CHANNEL] = "message_channel",
    [LABELS_MESSAGE_STATE] = "message_state",
};

/* The units of indicators.get (docs/indicators.md), as written after a value. */
static const char *const unit_values[] = {"percent", "minutes", "hours"};
static const char *const unit_labels[] = {"%", "min", "h"};

/* One kind's values in declaration order and their labels as snpctl prints
 * them; copies, so that they outlive snp_proto_shutdown(). */
struct table {
    size_t n;
    const char **values;
    const char **labels;
};

static struct table tables[LABELS_KIND_COUNT];
static bool tables_read; /* the process is single-threaded */

/* Copies `label` with its first letter in lower case, as snpctl writes
 * labels inside its tables and sentences ("libre", "à domicile", "œil"),
 * unless the word is an acronym ("SAS", "C2S", "ORL (gorge...)").  The
 * letters that can start a label are ASCII, the Latin-1 capitals (two bytes
 * in UTF-8, the small letter 0x20 above) and Œ; the case changes no length. */
static char *lowered(const char *label)
{
    char *s = strdup(label);
    if (s == NULL)
        return NULL;
    unsigned char *u = (unsigned char *)s;
    if (u[0] >= 'A' && u[0] <= 'Z') {
        if (!(u[1] >= 'A' && u[1] <= 'Z') && !(u[1] >= '0' && u[1] <= '9'))
            u[0] = (unsigned char)(u[0] - 'A' + 'a');
    } else if (u[0] == 0xC3 && u[1] >= 0x80 && u[1] <= 0x9E && u[1] != 0x97) {
        u[1] = (unsigned char)(u[1] + 0x20);
    } else if (u[0] == 0xC5 && u[1] == 0x92) {
        u[1] = 0x93;
    }
    return s;
}

/* Reads every kind's table from the embedded declaration, once.  A kind it
 * cannot read (out of memory, a declaration that does not load: a build
 * mistake) stays empty, and labels_get() then returns the values as they
 * are. */
static void read_tables(void)
{
    if (tables_read)
        return;
    tables_read = true;
    tables[LABELS_INDICATOR_UNIT] = (struct table){
        sizeof(unit_values) / sizeof(unit_values[0]),
        (const char **)unit_values,
        (const char **)unit_labels,
    };
    if (snp_proto_init() != 0)
        return;
    for (size_t k = 0; k < LABELS_KIND_COUNT; k++) {
        const char *const *values;
        size_t n = type_names[k] ? snp_proto_enum_values(type_names[k], &values) : 0;
        if (n == 0)
            continue;
        const char **v = calloc(n, sizeof(*v));
        const char **l = calloc(n, sizeof(*l));
        bool ok = v != NULL && l != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            const char *fr = snp_proto_enum_label_fr(type_names[k], values[i]);
            v[i] = strdup(values[i]);
            l[i] = lowered(fr != NULL ? fr : values[i]);
            ok = v[i] != NULL && l[i] != NULL;
        }
        if (!ok) {
            for (size_t i = 0; v != NULL && l != NULL && i < n; i++) {
                free((char *)v[i]);
                free((char *)l[i]);
            }
            free(v);
            free(l);
            continue;
        }
        tables[k] = (struct table){n, v, l};
    }
}

const char *labels_get(enum labels_kind kind, const char *value)
{
    if (!value)
        return "—";
    if ((unsigned)kind >= LABELS_KIND_COUNT)
        return value;
    read_tables();
    for (size_t i = 0; i < tables[kind].n; i++)
        if (strcmp(tables[kind].values[i], value) == 0)
            return tables[kind].labels[i];
    return value;
}

size_t labels_values(enum labels_kind kind, const char *const **values)
{
    if ((unsigned)kind >= LABELS_KIND_COUNT) {
        *values = NULL;
        return 0;
    }
    read_tables();
    *values = tables[kind].values;
    return tables[kind].n;
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
