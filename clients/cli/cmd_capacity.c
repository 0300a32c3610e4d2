/* snpctl capacity and watch: the territory's free capacity by commune, once
 * or as a live board.  See commands.h and docs/snpctl.md.
 *
 * The table by commune is built by grouping the free slots that
 * capacity.query lists (the server lists them to the sas and desk roles
 * only), by the commune of their site: one query gives a table consistent
 * with the totals, where querying commune by commune would cost one query
 * per commune and count a slot in every commune whose radius reaches it.
 * The communes of the territory (territory.get) with no free slot are shown
 * with zeros, so the board also shows where nothing is left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/cli/commands.h"
#include "clients/cli/labels.h"
#include "clients/cli/prompt.h"
#include "clients/cli/table.h"
#include "clients/cli/timearg.h"
#include "protocol/codec.h"
#include "protocol/snp_decl.h"

static const char capacity_usage[] =
    "usage : snpctl capacity [--horizon 2h|4h|today|24h|48h] [--commune INSEE [--radius KM]]\n"
    "                        [--modes LISTE]\n"
    "\n"
    "Créneaux libres du territoire dans l'horizon (4h par défaut) : totaux par mode et par\n"
    "public, puis un tableau par commune (nombre, modes, prochain créneau), construit en\n"
    "regroupant par commune les créneaux listés par le serveur (rôles sas et desk ; les\n"
    "autres rôles n'ont que les totaux).  --commune centre la recherche ; --radius ne garde\n"
    "que les lieux à moins de KM km (les téléconsultations restent comptées).\n" CTL_COMMON_HELP;

static const char watch_usage[] =
    "usage : snpctl watch [--horizon 2h|4h|today|24h|48h] [--commune INSEE [--radius KM]]\n"
    "                     [--modes LISTE] [--interval SECONDES]\n"
    "\n"
    "Le tableau de « snpctl capacity », mis à jour en direct : abonné au sujet « capacity »,\n"
    "il redemande la capacité à chaque changement (et toutes les --interval secondes, 30 par\n"
    "défaut, pour que l'horizon avance).  Rôles sas, desk, coordinator, admin.  Ctrl-C pour\n"
    "quitter.  Avec --json, une réponse capacity.query par ligne à chaque mise à jour.\n"
    "La connexion perdue est rétablie toute seule.\n" CTL_COMMON_HELP;

enum {
    OPT_HORIZON = 1,
    OPT_COMMUNE,
    OPT_RADIUS,
    OPT_MODES,
    OPT_INTERVAL,
};

struct cap_opts {
    struct ctl *c;
    const char *horizon, *commune, *radius, *modes, *interval;
};

static int on_cap(void *state, int id, const char *arg)
{
    struct cap_opts *o = state;
    switch (id) {
    case OPT_HORIZON:
        o->horizon = arg;
        break;
    case OPT_COMMUNE:
        o->commune = arg;
        break;
    case OPT_RADIUS:
        o->radius = arg;
        break;
    case OPT_MODES:
        o->modes = arg;
        break;
    case OPT_INTERVAL:
        o->interval = arg;
        break;
    default:
        return ctl_usage_error(o->c, "option inattendue");
    }
    return CTL_OK;
}

static const struct option cap_options[] = {
    {"horizon", required_argument, NULL, OPT_HORIZON},
    {"commune", required_argument, NULL, OPT_COMMUNE},
    {"radius", required_argument, NULL, OPT_RADIUS},
    {"modes", required_argument, NULL, OPT_MODES},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    CTL_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static const struct ctl_field_option cap_fields[] = {
    {"horizon", "--horizon"},
    {"commune_insee", "--commune"},
    {"radius_km", "--radius"},
    {"modes", "--modes"},
    {NULL, NULL},
};

/* Parses the options into the capacity.query data `*query`. */
static int cap_parse(struct ctl *c, int argc, char **argv, struct cap_opts *o, bool watch,
                     json_t **query)
{
    int first;
    *query = NULL;
    int rc = cmd_parse(c, argc, argv, cap_options, on_cap, o, &first);
    if (rc != CTL_OK)
        return rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    if (o->interval && !watch)
        return ctl_usage_error(c, "--interval est pour « snpctl watch »");
    c->field_options = cap_fields;
    json_t *q = json_pack("{s:s}", "horizon", o->horizon ? o->horizon : "4h");
    if (o->commune)
        json_object_set_new(q, "commune_insee", json_string(o->commune));
    if (o->radius) {
        char *end;
        double km = strtod(o->radius, &end);
        if (*end || end == o->radius) {
            json_decref(q);
            return ctl_usage_error(c, "--radius : nombre de kilomètres attendu");
        }
        if (!o->commune) {
            json_decref(q);
            return ctl_usage_error(c, "--radius va avec --commune");
        }
        json_object_set_new(q, "radius_km", json_real(km));
    }
    if (o->modes) {
        const char *const *values;
        size_t n = labels_values(LABELS_MODE, &values);
        json_t *m = ctl_list_arg(c, "--modes", o->modes, values, n);
        if (!m) {
            json_decref(q);
            return CTL_USAGE;
        }
        json_object_set_new(q, "modes", m);
    }
    /* Checked now so that watch does not enter its loop with bad options. */
    struct snp_proto_error err;
    if (snp_proto_validate_request(snp_proto_message_find("capacity.query"), q, &err) != 0) {
        json_decref(q);
        const char *opt = "?";
        for (const struct ctl_field_option *f = cap_fields; f->field; f++)
            if (strcmp(f->field, err.field) == 0)
                opt = f->option;
        return ctl_usage_error(c, "%s : %s", opt, err.message);
    }
    *query = q;
    return CTL_OK;
}

/* One row of the table by commune. */
struct commune_row {
    const char *insee, *name;
    int total, by_mode[3];
    const char *next; /* earliest start, RFC 3339 (borrowed) */
};

static int mode_index(const char *mode)
{
    if (!mode)
        return -1;
    return strcmp(mode, "office") == 0             ? 0
           : strcmp(mode, "home") == 0             ? 1
           : strcmp(mode, "teleconsultation") == 0 ? 2
                                                   : -1;
}

/* Prints the capacity answer `cap` with the communes of `territory`;
 * `centre` is the --commune filter or NULL. */
static void render(FILE *out, const json_t *territory, const json_t *cap, const char *centre)
{
    char from[16], to[40];
    labels_hhmm(ctl_str(cap, "from"), from, sizeof(from));
    labels_when(ctl_str(cap, "to"), to, sizeof(to));
    fprintf(out, "Capacité libre — %s — horizon %s (%s → %s)\n",
            ctl_str(territory, "name") ? ctl_str(territory, "name") : ctl_str(cap, "territory_id"),
            labels_get(LABELS_HORIZON, ctl_str(cap, "horizon")), from, to);
    const json_t *bm = json_object_get(cap, "by_mode"), *ba = json_object_get(cap, "by_audience");
    fprintf(out,
            "Total : %lld créneau%s libre%s — cabinet %lld, domicile %lld, "
            "téléconsultation %lld\n",
            (long long)ctl_int(cap, "total"), ctl_int(cap, "total") > 1 ? "x" : "",
            ctl_int(cap, "total") > 1 ? "s" : "", (long long)ctl_int(bm, "office"),
            (long long)ctl_int(bm, "home"), (long long)ctl_int(bm, "teleconsultation"));
    fprintf(out, "Par public : ");
    const char *const *aud;
    size_t na = labels_values(LABELS_AUDIENCE, &aud);
    for (size_t i = 0; i < na; i++)
        fprintf(out, "%s%s %lld", i ? ", " : "", labels_get(LABELS_AUDIENCE, aud[i]),
                (long long)ctl_int(ba, aud[i]));
    fprintf(out, "\n\n");

    const json_t *slots = json_object_get(cap, "slots");
    if (!slots) {
        fprintf(out, "Détail par commune : le serveur ne liste les créneaux qu'aux rôles sas et "
                     "desk.\n");
        return;
    }
    const json_t *communes = json_object_get(territory, "communes");
    size_t cap_rows = json_array_size(communes) + json_array_size(slots) + 1;
    struct commune_row *rows = calloc(cap_rows, sizeof(*rows));
    if (!rows)
        return;
    size_t n = 0, i;
    json_t *v;
    /* Without a centre every commune of the territory is a row; with one,
     * only the centre and the communes that have slots. */
    json_array_foreach (communes, i, v) {
        if (centre && strcmp(ctl_str(v, "insee"), centre) != 0)
            continue;
        rows[n].insee = ctl_str(v, "insee");
        rows[n].name = ctl_str(v, "name");
        n++;
    }
    json_array_foreach (slots, i, v) {
        const json_t *site = json_object_get(v, "site");
        const char *insee = ctl_str(site, "commune_insee");
        if (!insee)
            continue;
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(rows[k].insee, insee) == 0)
                break;
        if (k == n) {
            rows[n].insee = insee;
            rows[n].name = ctl_str(site, "commune_name");
            n++;
        }
        rows[k].total++;
        int m = mode_index(ctl_str(v, "mode"));
        if (m >= 0)
            rows[k].by_mode[m]++;
        const char *start = ctl_str(v, "start");
        /* The server lists slots by start; the first seen is the next. */
        if (!rows[k].next)
            rows[k].next = start;
    }
    static const char *const heads[] = {"Commune",  "INSEE",        "Libres",  "Cabinet",
                                        "Domicile", "Téléconsult.", "Prochain"};
    struct table t;
    table_init(&t, 7, heads);
    for (size_t col = 2; col <= 5; col++)
        table_align_right(&t, col);
    for (size_t k = 0; k < n; k++) {
        char total[16], m0[16], m1[16], m2[16], next[40] = "";
        snprintf(total, sizeof(total), "%d", rows[k].total);
        snprintf(m0, sizeof(m0), "%d", rows[k].by_mode[0]);
        snprintf(m1, sizeof(m1), "%d", rows[k].by_mode[1]);
        snprintf(m2, sizeof(m2), "%d", rows[k].by_mode[2]);
        if (rows[k].next)
            labels_when(rows[k].next, next, sizeof(next));
        const char *row[] = {rows[k].name, rows[k].insee, total, m0, m1, m2, next};
        table_add(&t, row);
    }
    table_print(&t, out, 0);
    table_free(&t);
    free(rows);
    if (json_is_true(json_object_get(cap, "truncated")))
        fprintf(out, "(liste des créneaux tronquée par le serveur : le détail par commune est "
                     "incomplet)\n");
}

int cmd_capacity(struct ctl *c, int argc, char **argv)
{
    c->usage = capacity_usage;
    struct cap_opts o = {.c = c};
    json_t *q;
    int rc = cap_parse(c, argc, argv, &o, false, &q);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    json_t *cap = NULL, *territory = NULL;
    if (!c->json)
        rc = ctl_territory(c, &territory);
    if (rc == CTL_OK)
        rc = ctl_call(c, "capacity.query", q, &cap, NULL, NULL);
    json_decref(q);
    if (rc != CTL_OK)
        return rc;
    if (c->json)
        ctl_print_json(cap);
    else
        render(stdout, territory, cap, o.commune);
    json_decref(cap);
    return CTL_OK;
}

/* ---- watch --------------------------------------------------------------- */

/* The live board's connection: opened, authenticated and subscribed, or
 * NULL between a loss and the next attempt. */
struct board {
    struct ctl *c;
    struct snpclient_ws *w;
    json_t *query;
    const char *centre;
    bool tty;     /* redraw in place with ANSI sequences */
    long changes; /* capacity.changed pushes received */
    char status[200];
};

/* Connects, subscribes to `capacity` and fetches the territory.  Returns
 * the exit code; a refusal (role, token) is final, a transport failure is
 * retried by the caller. */
static int board_connect(struct board *b)
{
    json_t *session = NULL;
    int rc = ctl_ws_open(b->c, &b->w, &session);
    json_decref(session);
    if (rc != CTL_OK)
        return rc;
    json_t *q = json_pack("{s:[s]}", "topics", snp_topic_name(SNP_TOPIC_CAPACITY));
    rc = ctl_ws_call(b->c, b->w, "subscribe", q, NULL, NULL);
    json_decref(q);
    if (rc == CTL_OK && !b->c->territory) {
        json_t *t;
        rc = ctl_ws_call(b->c, b->w, "territory.get", NULL, &t, NULL);
        if (rc == CTL_OK)
            b->c->territory = t;
    }
    if (rc != CTL_OK) {
        snpclient_ws_close(b->w);
        b->w = NULL;
    }
    return rc;
}

/* Queries the capacity and draws the board. */
static int board_draw(struct board *b)
{
    json_t *cap;
    int rc = ctl_ws_call(b->c, b->w, "capacity.query", b->query, &cap, NULL);
    if (rc != CTL_OK)
        return rc;
    if (b->c->json) {
        ctl_print_json(cap);
    } else {
        /* The server's clock, in the territory's time like the rest. */
        const char *from = ctl_str(cap, "from");
        char at[16];
        snprintf(at, sizeof(at), "%.8s", from && strlen(from) >= 19 ? from + 11 : "?");
        if (b->tty)
            fputs("\033[H\033[2J", stdout);
        else
            fputs("\n", stdout);
        render(stdout, b->c->territory, cap, b->centre);
        printf("\nMis à jour à %s — %ld changement%s de créneau reçu%s%s\n", at, b->changes,
               b->changes > 1 ? "s" : "", b->changes > 1 ? "s" : "",
               b->tty ? " — Ctrl-C pour quitter" : "");
        fflush(stdout);
    }
    json_decref(cap);
    return CTL_OK;
}

/* Returns the number of slot changes `text` carries when it is a
 * capacity.changed push, else 0. */
static long capacity_changes(const char *text)
{
    json_t *j = NULL;
    struct snp_proto_error err;
    if (snp_proto_parse_server(text, strlen(text), &j, &err) != 0)
        return 0;
    long n = 0;
    const char *changed = snp_push_name(SNP_PUSH_CAPACITY_CHANGED);
    if (strcmp(ctl_str(j, "type") ? ctl_str(j, "type") : "", "push") == 0 &&
        strcmp(ctl_str(j, "event") ? ctl_str(j, "event") : "", changed) == 0) {
        json_t *data = json_object_get(j, "data");
        const struct snp_proto_push *p = snp_proto_push_find(changed);
        if (p && snp_proto_validate_push(p, data, &err) != 0)
            fprintf(stderr, "snpctl: avertissement : capacity.changed non conforme (%s : %s)\n",
                    err.field, err.message);
        n = (long)json_array_size(json_object_get(data, "changes"));
        if (n == 0)
            n = 1;
    }
    json_decref(j);
    return n;
}

/* Waits `ms` milliseconds unless interrupted. */
static void pause_ms(int ms)
{
    for (int waited = 0; waited < ms && !prompt_interrupted(); waited += 100)
        usleep(100 * 1000);
}

int cmd_watch(struct ctl *c, int argc, char **argv)
{
    c->usage = watch_usage;
    struct cap_opts o = {.c = c};
    struct board b = {.c = c};
    int rc = cap_parse(c, argc, argv, &o, true, &b.query);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    int interval = 30;
    if (o.interval) {
        json_int_t v;
        if (!ctl_parse_id(o.interval, &v) || v > 3600) {
            json_decref(b.query);
            return ctl_usage_error(c, "--interval : secondes, de 1 à 3600");
        }
        interval = (int)v;
    }
    b.centre = o.commune;
    b.tty = !c->json && isatty(STDOUT_FILENO);
    prompt_catch_interrupt();
    rc = board_connect(&b);
    if (rc != CTL_OK) {
        json_decref(b.query);
        return rc;
    }
    if (b.tty)
        fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, no cursor */
    /* From now on a lost connection is said on the board and retried. */
    c->quiet_transport = true;
    int backoff = 1;
    bool dirty = true;
    int64_t last = 0;
    while (!prompt_interrupted()) {
        if (!b.w) {
            /* Lost: try again with a growing delay, up to 30 s. */
            if (b.tty)
                printf("\033[H\033[2JConnexion perdue ; nouvelle tentative dans %d s…\n", backoff);
            else
                fprintf(stderr, "snpctl: connexion perdue ; nouvelle tentative dans %d s\n",
                        backoff);
            fflush(stdout);
            pause_ms(backoff * 1000);
            if (prompt_interrupted())
                break;
            backoff = backoff * 2 > 30 ? 30 : backoff * 2;
            rc = board_connect(&b);
            if (rc != CTL_OK && rc != CTL_UNAVAILABLE)
                break; /* refused: retrying will not help */
            rc = CTL_OK;
            dirty = true;
            continue;
        }
        int64_t now = timeutil_monotonic_ms();
        if (dirty || now - last >= (int64_t)interval * 1000) {
            rc = board_draw(&b);
            if (rc == CTL_UNAVAILABLE) {
                snpclient_ws_close(b.w);
                b.w = NULL;
                rc = CTL_OK;
                continue;
            }
            if (rc != CTL_OK)
                break;
            backoff = 1;
            dirty = false;
            last = now;
        }
        char *text = NULL;
        int err = snpclient_ws_recv(b.w, 250, &text);
        if (err == SNPCLIENT_ECLOSED) {
            snpclient_ws_close(b.w);
            b.w = NULL;
            continue;
        }
        if (err == 0) {
            long n = capacity_changes(text);
            free(text);
            if (n > 0) {
                b.changes += n;
                /* Let a burst of pushes settle before querying again. */
                dirty = true;
                while (snpclient_ws_recv(b.w, 150, &text) == 0) {
                    b.changes += capacity_changes(text);
                    free(text);
                }
            }
        }
    }
    if (b.tty)
        fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    snpclient_ws_close(b.w);
    json_decref(b.query);
    return rc;
}
