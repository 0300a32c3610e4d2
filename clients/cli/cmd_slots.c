/* snpctl slots, bookings and outcome: what a GP (or the coordinator on a
 * practitioner's behalf) does with slots.  See commands.h and
 * docs/snpctl.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/validate.h"
#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"
#include "clients/cli/timearg.h"

#define MAX_SLOTS 1000

static const char slots_usage[] =
    "usage : snpctl slots publish --site ID --from DÉBUT --to FIN --every DURÉE\n"
    "                             --audience LISTE [--duration DURÉE] [--mode MODE]\n"
    "                             [--release DURÉE] [--weekly JOURS --until DATE]\n"
    "                             [--practitioner RPPS] [--min-age N] [--max-age N]\n"
    "                             [--motifs LISTE] [--dry-run]\n"
    "        snpctl slots shift --site ID --date DATE --half-day morning|afternoon|evening\n"
    "                           --every DURÉE --audience LISTE [--mode MODE] [--release DURÉE]\n"
    "                           [--practitioner RPPS] [--dry-run]\n"
    "        snpctl slots list [--from DATE] [--to DATE] [--status LISTE]\n"
    "                          [--practitioner RPPS] [--limit N]\n"
    "        snpctl slots withdraw ID...\n"
    "\n"
    "Heures locales du territoire (Europe/Paris) : --from 2026-12-01T14:00 --to 18:00.\n"
    "Durées : 20m, 20min, 1h, 1h30.  --weekly mon,tue,... publie chaque semaine\n"
    "jusqu'à --until (motif récurrent, 62 jours au plus).\n"
    "Modes : office, home, teleconsultation.  Publics (--audience) : sas, emergency,\n"
    "pharmacy, professional, desk, public.  --release 2h : ouvert à tous 2 h avant\n"
    "le début s'il est encore libre.  Statuts : free, held, booked, withdrawn, "
    "expired.\n" CTL_COMMON_HELP;

static const char bookings_usage[] =
    "usage : snpctl bookings list [--from DATE] [--to DATE] [--status booked,cancelled]\n"
    "                             [--limit N]\n"
    "        snpctl bookings cancel RÉSERVATION --reason MOTIF [--note TEXTE]\n"
    "        snpctl bookings mt-handover RÉSERVATION\n"
    "\n"
    "Les réservations sur vos créneaux (rôle gp), ou sur ceux de votre lieu (rôle\n"
    "reception, list seulement), par heure de rendez-vous.\n"
    "Motifs d'annulation : patient_request, patient_seen_elsewhere,\n"
    "practitioner_unavailable, duplicate, entered_in_error, other.\n"
    "mt-handover (gp) : adresse un patient sans médecin traitant, vu en consultation\n"
    "  (issue attended, redirected_emergency ou hospitalised), à un médecin du territoire\n"
    "  qui prend de nouveaux patients : ce médecin reçoit son identité, son téléphone et\n"
    "  la consultation par messagerie sécurisée.  À faire avec l'accord du patient, une\n"
    "  fois par rendez-vous ; la commande affiche le médecin à lui indiquer.\n" CTL_COMMON_HELP;

static const char outcome_usage[] =
    "usage : snpctl outcome RÉSERVATION ISSUE [--note TEXTE]\n"
    "\n"
    "Issues : attended (venu), no_show (absent), redirected_emergency (réorienté aux\n"
    "urgences), hospitalised (hospitalisé), cancelled_by_patient (annulé par le patient).\n"
    "Possible à partir du début du rendez-vous (à tout moment pour "
    "cancelled_by_patient).\n" CTL_COMMON_HELP;

/* ---- shared: local times ------------------------------------------------- */

/* Converts the option value `s` (a date, a local date-time of the
 * territory's zone, or an instant) into an RFC 3339 UTC string for a query
 * string.  A date alone is its
 * midnight, or the next midnight when `end_of_day` (so that "--to
 * 2026-12-01" includes that day).  Returns CTL_OK or an exit code. */
static int instant_arg(struct ctl *c, const char *option, const char *s, bool end_of_day, char *out,
                       size_t n)
{
    struct timearg a;
    if (!timearg_parse(s, &a))
        return ctl_usage_error(c, "%s : date ou heure illisible « %s » (ex. 2026-12-01T14:00)",
                               option, s);
    json_t *t;
    int rc = ctl_territory(c, &t);
    if (rc != CTL_OK)
        return rc;
    if (end_of_day && a.has_date && !a.has_time)
        timearg_add_days(&a, 1);
    int64_t instant;
    if (!timearg_instant(c->zone, &a, NULL, timeutil_now(), &instant))
        return ctl_usage_error(c, "%s : date hors limites « %s »", option, s);
    /* UTC with "Z": no '+' to percent-encode in the query string. */
    timearg_format_utc(instant, out, n);
    return out[0] ? CTL_OK : ctl_usage_error(c, "%s : date hors limites « %s »", option, s);
}

/* Writes the ids of `ids` as compact ranges, "12–14, 20". */
static void id_ranges(const json_t *ids, char *buf, size_t n)
{
    size_t len = 0, count = json_array_size(ids);
    buf[0] = '\0';
    for (size_t i = 0; i < count && len < n;) {
        json_int_t first = json_integer_value(json_array_get(ids, i)), last = first;
        size_t j = i + 1;
        while (j < count && json_integer_value(json_array_get(ids, j)) == last + 1)
            last = json_integer_value(json_array_get(ids, j++));
        int w;
        if (last > first)
            w = snprintf(buf + len, n - len, "%s%lld–%lld", i ? ", " : "", (long long)first,
                         (long long)last);
        else
            w = snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)first);
        if (w < 0)
            break;
        len += (size_t)w;
        i = j;
    }
}

/* ---- slots publish / shift ----------------------------------------------- */

struct publish {
    struct ctl *c;
    const char *site, *from, *to, *every, *duration, *mode, *audience, *release, *weekly, *until,
        *practitioner, *min_age, *max_age, *motifs, *date, *half_day;
    bool dry_run;
};

enum {
    OPT_SITE = 1,
    OPT_FROM,
    OPT_TO,
    OPT_EVERY,
    OPT_DURATION,
    OPT_MODE,
    OPT_AUDIENCE,
    OPT_RELEASE,
    OPT_WEEKLY,
    OPT_UNTIL,
    OPT_PRACTITIONER,
    OPT_MIN_AGE,
    OPT_MAX_AGE,
    OPT_MOTIFS,
    OPT_DRY_RUN,
    OPT_DATE,
    OPT_HALF_DAY,
    OPT_STATUS,
    OPT_LIMIT,
    OPT_REASON,
    OPT_NOTE,
};

static int on_publish(void *state, int id, const char *arg)
{
    struct publish *p = state;
    switch (id) {
    case OPT_SITE:
        p->site = arg;
        break;
    case OPT_FROM:
        p->from = arg;
        break;
    case OPT_TO:
        p->to = arg;
        break;
    case OPT_EVERY:
        p->every = arg;
        break;
    case OPT_DURATION:
        p->duration = arg;
        break;
    case OPT_MODE:
        p->mode = arg;
        break;
    case OPT_AUDIENCE:
        p->audience = arg;
        break;
    case OPT_RELEASE:
        p->release = arg;
        break;
    case OPT_WEEKLY:
        p->weekly = arg;
        break;
    case OPT_UNTIL:
        p->until = arg;
        break;
    case OPT_PRACTITIONER:
        p->practitioner = arg;
        break;
    case OPT_MIN_AGE:
        p->min_age = arg;
        break;
    case OPT_MAX_AGE:
        p->max_age = arg;
        break;
    case OPT_MOTIFS:
        p->motifs = arg;
        break;
    case OPT_DRY_RUN:
        p->dry_run = true;
        break;
    case OPT_DATE:
        p->date = arg;
        break;
    case OPT_HALF_DAY:
        p->half_day = arg;
        break;
    default:
        return ctl_usage_error(p->c, "option inattendue");
    }
    return CTL_OK;
}

static const struct ctl_field_option publish_fields[] = {
    {"site_id", "--site"},
    {"practitioner_rpps", "--practitioner"},
    {"mode", "--mode"},
    {"audiences", "--audience"},
    {"release_minutes", "--release"},
    {"restrictions.min_age_years", "--min-age"},
    {"restrictions.max_age_years", "--max-age"},
    {"restrictions.motifs", "--motifs"},
    {"pattern.from_date", "--from"},
    {"pattern.to_date", "--until"},
    {"pattern.days", "--weekly"},
    {"pattern.from_time", "--from"},
    {"pattern.to_time", "--to"},
    {"pattern.every_min", "--every"},
    {"pattern.duration_min", "--duration"},
    {"shift.date", "--date"},
    {"shift.half_day", "--half-day"},
    {"shift.every_min", "--every"},
    {NULL, NULL},
};

/* Sets the members common to the three ways of publishing. */
static int publish_common(struct publish *p, json_t *body)
{
    struct ctl *c = p->c;
    json_int_t site;
    if (!p->site)
        return ctl_usage_error(c, "--site ID est obligatoire (le lieu des créneaux)");
    if (!ctl_parse_id(p->site, &site))
        return ctl_usage_error(c, "--site : identifiant de lieu invalide « %s »", p->site);
    json_object_set_new(body, "site_id", json_integer(site));
    if (p->practitioner) {
        if (!validate_rpps(p->practitioner))
            return ctl_usage_error(c,
                                   "--practitioner : RPPS invalide « %s » (11 chiffres, clé "
                                   "de Luhn)",
                                   p->practitioner);
        json_object_set_new(body, "practitioner_rpps", json_string(p->practitioner));
    }
    json_object_set_new(body, "mode", json_string(p->mode ? p->mode : "office"));
    if (!p->audience)
        return ctl_usage_error(c, "--audience est obligatoire (ex. --audience "
                                  "sas,emergency,pharmacy)");
    const char *const *values;
    size_t n = labels_values(LABELS_AUDIENCE, &values);
    json_t *aud = ctl_list_arg(c, "--audience", p->audience, values, n);
    if (!aud)
        return CTL_USAGE;
    json_object_set_new(body, "audiences", aud);
    if (p->release) {
        int min;
        if (!timearg_minutes(p->release, 10080, &min))
            return ctl_usage_error(c, "--release : durée illisible « %s » (ex. 2h, 90m)",
                                   p->release);
        json_object_set_new(body, "release_minutes", json_integer(min));
    }
    if (p->min_age || p->max_age || p->motifs) {
        json_t *r = json_object();
        json_object_set_new(body, "restrictions", r);
        if (p->min_age)
            json_object_set_new(r, "min_age_years", json_integer(atoi(p->min_age)));
        if (p->max_age)
            json_object_set_new(r, "max_age_years", json_integer(atoi(p->max_age)));
        if (p->motifs) {
            n = labels_values(LABELS_MOTIF, &values);
            json_t *m = ctl_list_arg(c, "--motifs", p->motifs, values, n);
            if (!m)
                return CTL_USAGE;
            json_object_set_new(r, "motifs", m);
        }
    }
    return CTL_OK;
}

/* Builds the explicit `slots` of a one-off publication from --from, --to,
 * --every and --duration, in the territory's local time. */
static int publish_slots(struct publish *p, json_t *body, int every, int duration)
{
    struct ctl *c = p->c;
    struct timearg from, to;
    if (!timearg_parse(p->from, &from) || (!from.has_time && !from.has_offset))
        return ctl_usage_error(c, "--from : début illisible « %s » (ex. 2026-12-01T14:00)",
                               p->from);
    if (!timearg_parse(p->to, &to) || (!to.has_time && !to.has_offset))
        return ctl_usage_error(c, "--to : fin illisible « %s » (ex. 18:00)", p->to);
    json_t *t;
    int rc = ctl_territory(c, &t);
    if (rc != CTL_OK)
        return rc;
    int64_t now = timeutil_now(), start, end;
    if (!timearg_instant(c->zone, &from, NULL, now, &start))
        return ctl_usage_error(c, "--from : date hors limites « %s »", p->from);
    /* "--to 18:00" is on the day of --from. */
    if (!timearg_instant(c->zone, &to, from.has_date ? &from : NULL, now, &end))
        return ctl_usage_error(c, "--to : date hors limites « %s »", p->to);
    if (end <= start)
        return ctl_usage_error(c, "--to doit être après --from");
    json_t *slots = json_array();
    for (int64_t s = start; s + 60 * (int64_t)duration <= end; s += 60 * (int64_t)every) {
        if (json_array_size(slots) == MAX_SLOTS) {
            json_decref(slots);
            return ctl_usage_error(c, "plus de %d créneaux : publiez en plusieurs fois", MAX_SLOTS);
        }
        char ts[TIMEUTIL_RFC3339_SIZE];
        if (!timeutil_format_rfc3339(c->zone, s, ts, sizeof(ts))) {
            json_decref(slots);
            return ctl_usage_error(c, "date hors limites");
        }
        json_array_append_new(slots,
                              json_pack("{s:s, s:i}", "start", ts, "duration_min", duration));
    }
    if (json_array_size(slots) == 0) {
        json_decref(slots);
        return ctl_usage_error(c, "aucun créneau de %d min ne tient entre --from et --to",
                               duration);
    }
    json_object_set_new(body, "slots", slots);
    return CTL_OK;
}

/* Builds the recurring `pattern` of --weekly. */
static int publish_pattern(struct publish *p, json_t *body, int every, int duration)
{
    struct ctl *c = p->c;
    struct timearg from, to, until;
    if (!timearg_parse(p->from, &from) || from.has_offset || !from.has_time)
        return ctl_usage_error(c, "--from : avec --weekly, donnez la date et l'heure locales "
                                  "du premier créneau (ex. 2026-12-01T14:00)");
    if (!timearg_parse(p->to, &to) || to.has_offset || !to.has_time)
        return ctl_usage_error(c, "--to : avec --weekly, donnez l'heure locale de fin (ex. "
                                  "18:00)");
    if (!p->until || !timearg_parse(p->until, &until) || !until.has_date || until.has_time)
        return ctl_usage_error(c, "--weekly demande --until DATE (ex. 2026-12-31)");
    if (!from.has_date) {
        int rc = cmd_today(c, &from);
        if (rc != CTL_OK)
            return rc;
    }
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    json_t *d = ctl_list_arg(c, "--weekly", p->weekly, days, 7);
    if (!d)
        return CTL_USAGE;
    char fd[16], td[16], ft[8], tt[8];
    timearg_format_date(&from, fd, sizeof(fd));
    timearg_format_date(&until, td, sizeof(td));
    timearg_format_time(&from, ft, sizeof(ft));
    timearg_format_time(&to, tt, sizeof(tt));
    json_t *pat = json_pack("{s:s, s:s, s:o, s:s, s:s, s:i}", "from_date", fd, "to_date", td,
                            "days", d, "from_time", ft, "to_time", tt, "every_min", every);
    if (p->duration)
        json_object_set_new(pat, "duration_min", json_integer(duration));
    json_object_set_new(body, "pattern", pat);
    return CTL_OK;
}

/* Prints what a publication would send (--dry-run). */
static void publish_dry_run(struct ctl *c, json_t *body)
{
    if (c->json) {
        ctl_print_json(body);
        return;
    }
    printf("Rien n'est envoyé (--dry-run).  Publication prévue sur le lieu n° %lld, %s, "
           "publics : ",
           (long long)ctl_int(body, "site_id"), labels_get(LABELS_MODE, ctl_str(body, "mode")));
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(body, "audiences"), i, v)
        printf("%s%s", i ? ", " : "", labels_get(LABELS_AUDIENCE, json_string_value(v)));
    putchar('\n');
    json_t *slots = json_object_get(body, "slots");
    if (slots) {
        printf("%zu créneaux :\n", json_array_size(slots));
        json_array_foreach (slots, i, v) {
            char when[64];
            labels_when_year(ctl_str(v, "start"), when, sizeof(when));
            printf("  %s (%lld min)  %s\n", when, (long long)ctl_int(v, "duration_min"),
                   ctl_str(v, "start"));
        }
    } else {
        char *s = json_dumps(body, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    }
}

static int publish_send(struct publish *p, json_t *body)
{
    struct ctl *c = p->c;
    if (p->dry_run) {
        publish_dry_run(c, body);
        return CTL_OK;
    }
    json_t *r;
    int rc = ctl_call(c, "slot.publish", body, &r, NULL, NULL);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        char ids[2048];
        id_ranges(json_object_get(r, "slot_ids"), ids, sizeof(ids));
        long long count = (long long)ctl_int(r, "count"),
                  skipped = (long long)ctl_int(r, "skipped");
        printf("%lld créneau%s publié%s", count, count > 1 ? "x" : "", count > 1 ? "s" : "");
        if (count > 0)
            printf(" (n° %s)", ids);
        if (skipped > 0)
            printf(", %lld ignoré%s (passé%s ou déjà publié%s)", skipped, skipped > 1 ? "s" : "",
                   skipped > 1 ? "s" : "", skipped > 1 ? "s" : "");
        printf(".\n");
    }
    json_decref(r);
    return CTL_OK;
}

static const struct option publish_options[] = {
    {"site", required_argument, NULL, OPT_SITE},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"every", required_argument, NULL, OPT_EVERY},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"mode", required_argument, NULL, OPT_MODE},
    {"audience", required_argument, NULL, OPT_AUDIENCE},
    {"audiences", required_argument, NULL, OPT_AUDIENCE},
    {"release", required_argument, NULL, OPT_RELEASE},
    {"weekly", required_argument, NULL, OPT_WEEKLY},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"practitioner", required_argument, NULL, OPT_PRACTITIONER},
    {"min-age", required_argument, NULL, OPT_MIN_AGE},
    {"max-age", required_argument, NULL, OPT_MAX_AGE},
    {"motifs", required_argument, NULL, OPT_MOTIFS},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"date", required_argument, NULL, OPT_DATE},
    {"half-day", required_argument, NULL, OPT_HALF_DAY},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static int slots_publish(struct ctl *c, int argc, char **argv, bool shift)
{
    struct publish p = {.c = c};
    int first;
    int rc = cmd_parse(c, argc, argv, publish_options, on_publish, &p, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    c->field_options = publish_fields;
    json_t *body = json_object();
    rc = publish_common(&p, body);
    if (rc != CTL_OK)
        goto out;
    int every = 0, duration = 0;
    if (!p.every || !timearg_minutes(p.every, 240, &every)) {
        rc = ctl_usage_error(c, "--every DURÉE est obligatoire (ex. 20m) : l'intervalle entre "
                                "deux créneaux");
        goto out;
    }
    if (shift) {
        if (p.from || p.to || p.weekly || p.duration || p.until) {
            rc = ctl_usage_error(c, "slots shift prend --date et --half-day (pas --from, --to, "
                                    "--duration, --weekly ni --until)");
            goto out;
        }
        struct timearg d;
        if (!p.date || !timearg_parse(p.date, &d) || !d.has_date || d.has_time) {
            rc = ctl_usage_error(c, "--date DATE est obligatoire (ex. 2026-12-01)");
            goto out;
        }
        if (!p.half_day) {
            rc = ctl_usage_error(c, "--half-day morning|afternoon|evening est obligatoire");
            goto out;
        }
        char date[16];
        timearg_format_date(&d, date, sizeof(date));
        json_object_set_new(
            body, "shift",
            json_pack("{s:s, s:s, s:i}", "date", date, "half_day", p.half_day, "every_min", every));
    } else {
        if (p.date || p.half_day) {
            rc = ctl_usage_error(c, "--date et --half-day sont pour « slots shift »");
            goto out;
        }
        if (!p.from || !p.to) {
            rc = ctl_usage_error(c, "--from et --to sont obligatoires");
            goto out;
        }
        duration = every;
        if (p.duration && !timearg_minutes(p.duration, 240, &duration)) {
            rc = ctl_usage_error(c, "--duration : durée illisible « %s » (ex. 15m)", p.duration);
            goto out;
        }
        if (p.until && !p.weekly) {
            rc = ctl_usage_error(c, "--until va avec --weekly");
            goto out;
        }
        rc = p.weekly ? publish_pattern(&p, body, every, duration)
                      : publish_slots(&p, body, every, duration);
        if (rc != CTL_OK)
            goto out;
    }
    rc = publish_send(&p, body);
out:
    json_decref(body);
    return rc;
}

/* ---- slots list ---------------------------------------------------------- */

struct list_opts {
    struct ctl *c;
    const char *from, *to, *status, *practitioner, *limit;
};

static int on_list(void *state, int id, const char *arg)
{
    struct list_opts *l = state;
    switch (id) {
    case OPT_FROM:
        l->from = arg;
        break;
    case OPT_TO:
        l->to = arg;
        break;
    case OPT_STATUS:
        l->status = arg;
        break;
    case OPT_PRACTITIONER:
        l->practitioner = arg;
        break;
    case OPT_LIMIT:
        l->limit = arg;
        break;
    default:
        return ctl_usage_error(l->c, "option inattendue");
    }
    return CTL_OK;
}

static const struct option list_options[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"status", required_argument, NULL, OPT_STATUS},
    {"practitioner", required_argument, NULL, OPT_PRACTITIONER},
    {"limit", required_argument, NULL, OPT_LIMIT},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static const struct ctl_field_option list_fields[] = {
    {"from", "--from"},
    {"to", "--to"},
    {"status", "--status"},
    {"limit", "--limit"},
    {"practitioner_rpps", "--practitioner"},
    {NULL, NULL},
};

/* Fills the from/to/status/limit members of a list query; `statuses` is
 * the enumeration of --status. */
static int list_query(struct list_opts *l, json_t *q, enum labels_kind statuses)
{
    struct ctl *c = l->c;
    char ts[TIMEARG_UTC_SIZE];
    int rc;
    if (l->from) {
        if ((rc = instant_arg(c, "--from", l->from, false, ts, sizeof(ts))) != CTL_OK)
            return rc;
        json_object_set_new(q, "from", json_string(ts));
    }
    if (l->to) {
        if ((rc = instant_arg(c, "--to", l->to, true, ts, sizeof(ts))) != CTL_OK)
            return rc;
        json_object_set_new(q, "to", json_string(ts));
    }
    if (l->status) {
        const char *const *values;
        size_t n = labels_values(statuses, &values);
        json_t *s = ctl_list_arg(c, "--status", l->status, values, n);
        if (!s)
            return CTL_USAGE;
        json_object_set_new(q, "status", s);
    }
    if (l->limit) {
        json_int_t n;
        if (!ctl_parse_id(l->limit, &n))
            return ctl_usage_error(c, "--limit : nombre attendu");
        json_object_set_new(q, "limit", json_integer(n));
    }
    return CTL_OK;
}

static int slots_list(struct ctl *c, int argc, char **argv)
{
    struct list_opts l = {.c = c};
    int first;
    int rc = cmd_parse(c, argc, argv, list_options, on_list, &l, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    c->field_options = list_fields;
    json_t *q = json_object();
    rc = list_query(&l, q, LABELS_SLOT_STATUS);
    if (rc == CTL_OK && l.practitioner)
        json_object_set_new(q, "practitioner_rpps", json_string(l.practitioner));
    json_t *r = NULL;
    if (rc == CTL_OK)
        rc = ctl_call(c, "slot.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
        return CTL_OK;
    }
    json_t *slots = json_object_get(r, "slots");
    if (json_array_size(slots) == 0) {
        printf("Aucun créneau sur la période.\n");
        json_decref(r);
        return CTL_OK;
    }
    /* The practitioner column only when the list has several (a
     * coordinator's), or slots without one (CSNP shifts). */
    const char *first_rpps = NULL;
    bool several = false;
    size_t i;
    json_t *s;
    json_array_foreach (slots, i, s) {
        const char *rpps = ctl_str(ctl_get(s, "practitioner"), "rpps");
        if (!rpps || (first_rpps && strcmp(rpps, first_rpps) != 0))
            several = true;
        if (!first_rpps)
            first_rpps = rpps;
    }
    static const char *const heads[] = {"N°",      "Début",  "Fin",         "Mode",     "Lieu",
                                        "Publics", "Statut", "Réservation", "Praticien"};
    struct table t;
    table_init(&t, several ? 9 : 8, heads);
    table_align_right(&t, 0);
    table_align_right(&t, 7);
    table_max_width(&t, 4, 52);
    table_max_width(&t, 5, 30);
    json_array_foreach (slots, i, s) {
        char id[24], start[40], end[16], place[300], aud[200] = "", booking[24] = "", who[220];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(s, "slot_id"));
        labels_when(ctl_str(s, "start"), start, sizeof(start));
        labels_hhmm(ctl_str(s, "end"), end, sizeof(end));
        cmd_slot_place(s, false, place, sizeof(place));
        /* The site's number, which slots publish --site takes. */
        size_t used = strlen(place);
        json_int_t site_id = ctl_int(json_object_get(s, "site"), "site_id");
        if (site_id > 0 && used < sizeof(place))
            snprintf(place + used, sizeof(place) - used, " (lieu n° %lld)", (long long)site_id);
        size_t k;
        json_t *a;
        json_array_foreach (json_object_get(s, "audiences"), k, a) {
            strncat(aud, k ? ", " : "", sizeof(aud) - strlen(aud) - 1);
            strncat(aud, labels_get(LABELS_AUDIENCE, json_string_value(a)),
                    sizeof(aud) - strlen(aud) - 1);
        }
        if (ctl_str(s, "released_at"))
            snprintf(aud, sizeof(aud), "tous (ouvert)");
        if (json_object_get(s, "booking_id"))
            snprintf(booking, sizeof(booking), "%lld", (long long)ctl_int(s, "booking_id"));
        const json_t *pr = json_object_get(s, "practitioner");
        if (pr)
            snprintf(who, sizeof(who), "Dr %s", ctl_str(pr, "family_name"));
        else
            snprintf(who, sizeof(who), "(garde CSNP)");
        const char *row[] = {id,
                             start,
                             end,
                             labels_get(LABELS_MODE, ctl_str(s, "mode")),
                             place,
                             aud,
                             labels_get(LABELS_SLOT_STATUS, ctl_str(s, "status")),
                             booking,
                             who};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
    printf("%zu créneau%s%s\n", json_array_size(slots), json_array_size(slots) > 1 ? "x" : "",
           json_is_true(json_object_get(r, "truncated")) ? " (liste tronquée : précisez --from, "
                                                           "--to ou --limit)"
                                                         : "");
    json_decref(r);
    return CTL_OK;
}

/* ---- slots withdraw ------------------------------------------------------ */

static const struct option plain_options[] = {
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static int slots_withdraw(struct ctl *c, int argc, char **argv)
{
    int first;
    int rc = cmd_parse(c, argc, argv, plain_options, NULL, NULL, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first >= argc)
        return ctl_usage_error(c, "donnez le numéro d'au moins un créneau");
    json_t *ids = json_array();
    for (int i = first; i < argc; i++) {
        json_int_t id;
        if (!ctl_parse_id(argv[i], &id)) {
            json_decref(ids);
            return ctl_usage_error(c, "numéro de créneau invalide : %s", argv[i]);
        }
        json_array_append_new(ids, json_integer(id));
    }
    json_t *q = json_pack("{s:o}", "slot_ids", ids), *r;
    rc = ctl_call(c, "slot.withdraw", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        char list[2048];
        id_ranges(json_object_get(r, "slot_ids"), list, sizeof(list));
        long long n = (long long)ctl_int(r, "count");
        printf("%lld créneau%s retiré%s%s%s.\n", n, n > 1 ? "x" : "", n > 1 ? "s" : "",
               n ? " : n° " : "", n ? list : "");
    }
    json_decref(r);
    return CTL_OK;
}

int cmd_slots(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, slots_usage, NULL, &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (strcmp(sub, "publish") == 0)
        return slots_publish(c, argc - 1, argv + 1, false);
    if (strcmp(sub, "shift") == 0)
        return slots_publish(c, argc - 1, argv + 1, true);
    if (strcmp(sub, "list") == 0)
        return slots_list(c, argc - 1, argv + 1);
    if (strcmp(sub, "withdraw") == 0)
        return slots_withdraw(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "slots : sous-commande inconnue « %s »", sub);
}

/* ---- bookings ------------------------------------------------------------ */

static void print_bookings(json_t *bookings)
{
    static const char *const heads[] = {"N°",    "Rendez-vous", "Mode",      "Patient", "Téléphone",
                                        "Motif", "Urgence",     "Demandeur", "Statut",  "Issue"};
    struct table t;
    table_init(&t, 10, heads);
    table_align_right(&t, 0);
    table_max_width(&t, 7, 32);
    size_t i;
    json_t *b;
    json_array_foreach (bookings, i, b) {
        char id[24], when[40], patient[200];
        snprintf(id, sizeof(id), "%lld", (long long)ctl_int(b, "booking_id"));
        json_t *slot = json_object_get(b, "slot");
        labels_when(ctl_str(slot, "start"), when, sizeof(when));
        json_t *pat = json_object_get(b, "patient");
        cmd_patient(pat, patient, sizeof(patient));
        const char *phone = ctl_str(pat, "phone");
        const char *outcome = ctl_str(ctl_get(b, "outcome"), "kind");
        /* The outcome, the GP taking new patients the patient was referred
         * to, and the summary sent to their médecin traitant (protocol 1.6.0). */
        char issue[300] = "";
        const json_t *referred = json_object_get(b, "referred_to");
        if (outcome)
            snprintf(issue, sizeof(issue), "%s", labels_get(LABELS_OUTCOME, outcome));
        if (referred)
            snprintf(issue + strlen(issue), sizeof(issue) - strlen(issue), "%sadressé au Dr %s %s",
                     outcome ? ", " : "", ctl_str(referred, "given_name"),
                     ctl_str(referred, "family_name"));
        const json_t *summary = json_object_get(b, "mt_summary");
        if (summary) {
            const json_t *mt = json_object_get(summary, "practitioner");
            const char *state = ctl_str(summary, "state");
            snprintf(issue + strlen(issue), sizeof(issue) - strlen(issue),
                     "%scompte rendu au Dr %s %s (%s)", issue[0] ? ", " : "",
                     ctl_str(mt, "given_name"), ctl_str(mt, "family_name"),
                     state && strcmp(state, "sent") == 0   ? "envoyé"
                     : state && strcmp(state, "dead") == 0 ? "non remis"
                                                           : "en attente");
        }
        const char *row[] = {id,
                             when,
                             labels_get(LABELS_MODE, ctl_str(slot, "mode")),
                             patient,
                             phone ? phone : "",
                             labels_get(LABELS_MOTIF, ctl_str(ctl_get(b, "motif"), "code")),
                             labels_get(LABELS_URGENCY, ctl_str(b, "urgency")),
                             ctl_str(ctl_get(b, "requester"), "name"),
                             labels_get(LABELS_BOOKING_STATUS, ctl_str(b, "status")),
                             issue};
        table_add(&t, row);
    }
    table_print(&t, stdout, 0);
    table_free(&t);
}

static int bookings_list(struct ctl *c, int argc, char **argv)
{
    struct list_opts l = {.c = c};
    static const struct option options[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"status", required_argument, NULL, OPT_STATUS},
        {"limit", required_argument, NULL, OPT_LIMIT},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_list, &l, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    c->field_options = list_fields;
    json_t *q = json_object(), *r = NULL;
    rc = list_query(&l, q, LABELS_BOOKING_STATUS);
    if (rc == CTL_OK)
        rc = ctl_call(c, "booking.list", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        json_t *list = json_object_get(r, "bookings");
        if (json_array_size(list) == 0) {
            printf("Aucune réservation sur la période.\n");
        } else {
            print_bookings(list);
            printf("%zu réservation%s%s\n", json_array_size(list),
                   json_array_size(list) > 1 ? "s" : "",
                   json_is_true(json_object_get(r, "truncated")) ? " (liste tronquée)" : "");
        }
    }
    json_decref(r);
    return CTL_OK;
}

struct reason_opts {
    struct ctl *c;
    const char *reason, *note;
};

static int on_reason(void *state, int id, const char *arg)
{
    struct reason_opts *o = state;
    if (id == OPT_REASON)
        o->reason = arg;
    else if (id == OPT_NOTE)
        o->note = arg;
    else
        return ctl_usage_error(o->c, "option inattendue");
    return CTL_OK;
}

static const struct option reason_options[] = {
    {"reason", required_argument, NULL, OPT_REASON},
    {"note", required_argument, NULL, OPT_NOTE},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static int bookings_cancel(struct ctl *c, int argc, char **argv)
{
    struct reason_opts o = {.c = c};
    int first;
    int rc = cmd_parse(c, argc, argv, reason_options, on_reason, &o, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_int_t id;
    if (first + 1 != argc || !ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "donnez le numéro de la réservation");
    if (!o.reason)
        return ctl_usage_error(c, "--reason MOTIF est obligatoire");
    static const struct ctl_field_option fields[] = {
        {"reason", "--reason"}, {"note", "--note"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_pack("{s:I, s:s}", "booking_id", id, "reason", o.reason), *r;
    if (o.note)
        json_object_set_new(q, "note", json_string(o.note));
    rc = ctl_call(c, "booking.cancel", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
    } else {
        char when[40];
        labels_when_year(ctl_str(ctl_get(r, "slot"), "start"), when, sizeof(when));
        printf("Réservation n° %lld du %s annulée (%s).\n", (long long)id, when,
               labels_get(LABELS_CANCEL_REASON, o.reason));
    }
    json_decref(r);
    return CTL_OK;
}

/* Refers the patient of a booking, who has no médecin traitant, to one of
 * the territory's GPs taking new patients (booking.mt_handover). */
static int bookings_mt_handover(struct ctl *c, int argc, char **argv)
{
    int first;
    int rc = cmd_parse(c, argc, argv, plain_options, NULL, NULL, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_int_t id;
    if (first + 1 != argc || !ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "donnez le numéro de la réservation");
    json_t *r;
    rc = cmd_send(c, "booking.mt_handover", json_pack("{s:I}", "booking_id", id), &r);
    if (rc != CTL_OK || !r)
        return rc;
    const json_t *pr = json_object_get(r, "practitioner");
    const json_t *m = json_object_get(r, "message");
    char progress[128];
    cmd_message_progress(m, progress, sizeof(progress));
    printf("Patient adressé au Dr %s %s (RPPS %s), qui prend de nouveaux patients : "
           "message n° %lld%s.\n",
           ctl_str(pr, "given_name"), ctl_str(pr, "family_name"), ctl_str(pr, "rpps"),
           (long long)ctl_int(m, "message_id"), progress);
    printf("Dites au patient le nom de ce médecin : il reçoit ses coordonnées et la "
           "consultation du rendez-vous n° %lld.\n",
           (long long)id);
    json_decref(r);
    return CTL_OK;
}

int cmd_bookings(struct ctl *c, int argc, char **argv)
{
    const char *sub;
    int rc = cmd_subcommand(c, argc, argv, bookings_usage, NULL, &sub);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (strcmp(sub, "list") == 0)
        return bookings_list(c, argc - 1, argv + 1);
    if (strcmp(sub, "cancel") == 0)
        return bookings_cancel(c, argc - 1, argv + 1);
    if (strcmp(sub, "mt-handover") == 0)
        return bookings_mt_handover(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "bookings : sous-commande inconnue « %s »", sub);
}

/* ---- outcome ------------------------------------------------------------- */

int cmd_outcome(struct ctl *c, int argc, char **argv)
{
    c->usage = outcome_usage;
    struct reason_opts o = {.c = c};
    static const struct option options[] = {
        {"note", required_argument, NULL, OPT_NOTE},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_reason, &o, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_int_t id;
    if (argc - first != 2)
        return ctl_usage_error(c, "donnez la réservation et l'issue");
    if (!ctl_parse_id(argv[first], &id))
        return ctl_usage_error(c, "numéro de réservation invalide : %s", argv[first]);
    const char *const *values;
    size_t n = labels_values(LABELS_OUTCOME, &values);
    bool known = false;
    for (size_t i = 0; i < n; i++)
        known = known || strcmp(values[i], argv[first + 1]) == 0;
    if (!known)
        return ctl_usage_error(c, "issue inconnue « %s »", argv[first + 1]);
    static const struct ctl_field_option fields[] = {{"note", "--note"}, {NULL, NULL}};
    c->field_options = fields;
    json_t *q = json_pack("{s:I, s:s}", "booking_id", id, "outcome", argv[first + 1]), *r;
    if (o.note)
        json_object_set_new(q, "note", json_string(o.note));
    rc = ctl_call(c, "outcome.report", q, &r, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(r);
    else
        printf("Issue enregistrée pour la réservation n° %lld : %s.\n", (long long)id,
               labels_get(LABELS_OUTCOME, argv[first + 1]));
    json_decref(r);
    return CTL_OK;
}
