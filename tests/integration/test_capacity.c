/* A randomized, model-based test of capacity.query (protocol/snp.v1.md:
 * capacity.query, the types horizon, audience, capacity_by_mode and
 * capacity_by_audience, the release rule): for any caller allowed to query
 * capacity, at any quiet point, the answer equals a count this test makes
 * itself, over HTTP and over the WebSocket, on either of two snpd processes.
 *
 * Two territories share the database:
 *   - test-t (Europe/Paris): practices in Redon, Allaire and Guémené-Penfao
 *     (19 km away) and a teleconsultation service in Vannes (51 km); holds of
 *     30 seconds, the declaration's minimum, so that they run out by
 *     themselves (the run ends by waiting for one);
 *   - test-other (Indian/Reunion, so that its local day ends elsewhere):
 *     practices in Rennes and Cesson-Sévigné; it lists test-t as its
 *     neighbour, test-t lists none.
 *
 * Random operations, sent over HTTP to either process: publish (random
 * site, practitioner or coordinator, mode, audiences, motifs, age bounds,
 * release rule, starts spread over the horizons' ends, the local day's end,
 * release instants and the next seconds), withdraw, request.create by five
 * requester organisations of both territories (holds), accept (the held
 * slot or another), decline, request.cancel, booking.cancel by the
 * practitioner or the coordinator.  A probe publishes, for an instant k two
 * seconds ahead, slots starting at k, at k plus each horizon, at the local
 * day's end and one second before it, and two whose release rule applies at
 * k and k + 1 (none offered: no patient is 110), then queries at k itself.
 *
 * A quiet point: both processes' memories (slot.list) were seen to hold the
 * database's live slots and statuses, and the database's events did not
 * move from that snapshot until the free slots were read after the
 * answers.  An answer that differs then is a violation, never retried (a
 * retry would come a second later, past the edge that made the
 * difference).  The count, written out here from the declaration (not from
 * snpd's SQL or C), with `from` and `to` taken from the answer after
 * checking them (`from` is the moment of the query, between the clock read
 * before it and after it; `to` is from plus 2, 4, 24 or 48 hours, or the next
 * local midnight of the caller's territory for `today`; both written in that
 * territory's local time): a slot counts when
 *   - the database says it is free;
 *   - it is of the caller's territory or of a territory the caller's lists
 *     as its neighbour (the reading snpd makes of "Territories it may borrow
 *     capacity from", in capacity.query as in request.create: a neighbour's
 *     commune is also accepted as the centre); never another's;
 *   - from <= start < to (a slot starting exactly at `to` belongs to the next
 *     window; one that started, even if not expired yet, to none);
 *   - its mode is among `modes`, when given;
 *   - with `radius_km`, its site is within that distance of the commune's
 *     centre (great-circle distance; radii closer than 300 m to a site's
 *     distance are not drawn), or it is a teleconsultation (docs/snpctl.md:
 *     "teleconsultations always count").
 * by_mode counts it under its mode; by_audience under each audience it is
 * open to: published for it, published for `public` (any requester), or
 * any once its release rule applies (from >= start - release_minutes).  sas
 * and desk get `slots`: exactly the slots counted, each as published, by
 * start across the territory and its neighbours, with `truncated` false;
 * other roles get none.  gp and reception may not ask (forbidden); a
 * commune unknown is not_found, one of a territory out of reach
 * other_territory.  Every difference is a violation, printed with the seed
 * and the operations of the seed so far.
 *
 * The suite runs seeds 1 2 3 (40 operations each) in one database, then
 * waits for a hold to run out.  More:
 *   SNP_CAPACITY_SEEDS="4 5 6" SNP_CAPACITY_OPS=80 ./deploy/test.sh -- -R test_capacity -V
 *   SNP_CAPACITY_MINUTES=10 ./deploy/test.sh -- -R test_capacity -V   (random seeds, up to 55)
 * (SNP_CAPACITY_VERBOSE=1 prints every operation as it is made.)  A seed
 * replays the same choices, not the same timings: holds run out and snpd's
 * matching answers in real time, and the seeds of a run share the database.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "clients/lib/snpclient.h"
#include "dispatcher/core/token.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"
#include "tests/support/rng.h"
#include "tests/support/wait.h"

#define SETTLE_MS 10000 /* the processes' memories must reach the database within this */
#define HOLD_S    30    /* test-t's hold_seconds: territory_settings' minimum */

static struct fixture f;
static struct snpd_proc second;
static int ports[2];
static struct snpclient *clients[2];

static struct rng rng;

static int rnd(int n)
{
    return rng_below(&rng, n);
}

/* --- the territories, their places and their callers ------------------------------ */

enum { T_MAIN, T_OTHER, NTERR };

static const struct {
    const char *id;
    const char *zone;
    int neighbour; /* the territory it lists as its neighbour, or -1 */
} terr[NTERR] = {
    {FIX_TERRITORY, "Europe/Paris", -1},
    {"test-other", "Indian/Reunion", T_MAIN},
};

static const char *const horizons[] = {"2h", "4h", "today", "24h", "48h"};
enum { NHORIZONS = 5 };
static const char *const modes[] = {"office", "home", "teleconsultation"};
enum { MODE_TELE = 2 };
static const char *const audiences[] = {"sas",          "emergency", "pharmacy",
                                        "professional", "desk",      "public"};
enum { AUD_PUBLIC_BIT = 5, NAUD = 6 };

/* Whether a caller of territory `t` sees the slots of territory `of`. */
static bool visible(int t, int of)
{
    return t == of || terr[t].neighbour == of;
}

struct commune {
    char insee[8];
    int terr;
    double lat, lon;
};

struct site {
    int64_t id;
    int terr;
    double lat, lon;
    char rpps[2][12]; /* its practitioners ("" when fewer) */
};

static struct commune communes[8];
static int ncommunes;
static struct site sites[8];
static int nsites;

/* Everyone who calls snpd here.  The first NQUERY may ask for capacity. */
struct caller {
    const char *label;
    const char *role;
    int terr;
    char token[48];
    int64_t organisation; /* a requester's organisation */
    bool makes_requests;
    struct snpclient_ws *ws[2]; /* opened on first use, one per process */
};

enum {
    C_PHARMACY,
    C_EMERGENCY,
    C_SAS,
    C_DESK,
    C_PROFESSIONAL,
    C_COORDINATOR,
    C_ADMIN,
    C_O_PHARMACY,
    C_O_SAS,
    C_O_COORDINATOR,
    NQUERY, /* those below may not query capacity */
    C_GP1 = NQUERY,
    C_GP2,
    C_RECEPTION,
    C_O_GP2,
    NCALLERS
};

static struct caller callers[NCALLERS] = {
    [C_PHARMACY] = {"test-t pharmacy", "pharmacy", T_MAIN, "", 0, true, {0}},
    [C_EMERGENCY] = {"test-t emergency", "emergency", T_MAIN, "", 0, false, {0}},
    [C_SAS] = {"test-t sas", "sas", T_MAIN, "", 0, true, {0}},
    [C_DESK] = {"test-t desk", "desk", T_MAIN, "", 0, true, {0}},
    [C_PROFESSIONAL] = {"test-t professional", "professional", T_MAIN, "", 0, false, {0}},
    [C_COORDINATOR] = {"test-t coordinator", "coordinator", T_MAIN, "", 0, false, {0}},
    [C_ADMIN] = {"test-t admin", "admin", T_MAIN, "", 0, false, {0}},
    [C_O_PHARMACY] = {"test-other pharmacy", "pharmacy", T_OTHER, "", 0, true, {0}},
    [C_O_SAS] = {"test-other sas", "sas", T_OTHER, "", 0, true, {0}},
    [C_O_COORDINATOR] = {"test-other coordinator", "coordinator", T_OTHER, "", 0, false, {0}},
    [C_GP1] = {"test-t gp " FIX_GP1, "gp", T_MAIN, "", 0, false, {0}},
    [C_GP2] = {"test-t gp " FIX_GP2, "gp", T_MAIN, "", 0, false, {0}},
    [C_RECEPTION] = {"test-t reception", "reception", T_MAIN, "", 0, false, {0}},
    [C_O_GP2] = {"test-other gp " FIX_GP2, "gp", T_OTHER, "", 0, false, {0}},
};

static const int coordinator_of[NTERR] = {C_COORDINATOR, C_O_COORDINATOR};

static bool lists_slots(int c)
{
    return strcmp(callers[c].role, "sas") == 0 || strcmp(callers[c].role, "desk") == 0;
}

/* The gp caller of practitioner `rpps` in territory `t`, or -1. */
static int gp_caller(const char *rpps, int t)
{
    if (t == T_MAIN)
        return strcmp(rpps, FIX_GP1) == 0 ? C_GP1 : strcmp(rpps, FIX_GP2) == 0 ? C_GP2 : -1;
    return strcmp(rpps, FIX_GP2) == 0 ? C_O_GP2 : -1;
}

static int territory_index(const char *id)
{
    for (int t = 0; t < NTERR; t++)
        if (strcmp(terr[t].id, id) == 0)
            return t;
    return -1;
}

/* --- the model: every slot the test published, as it asked -------------------------- */

struct mslot {
    int64_t id;
    int terr;
    int site;
    int64_t start; /* epoch seconds */
    int mode;
    unsigned aud; /* one bit per audiences[] entry */
    int release;  /* release_minutes, 0: none */
};

static struct mslot *slots;
static size_t nslots, slots_cap;

static struct mslot *model_slot(int64_t id)
{
    size_t lo = 0, hi = nslots;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (slots[mid].id == id)
            return &slots[mid];
        if (slots[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void model_add(const struct mslot *s)
{
    if (nslots == slots_cap) {
        slots_cap = slots_cap ? slots_cap * 2 : 256;
        slots = realloc(slots, slots_cap * sizeof(*slots));
        cr_assert_not_null(slots);
    }
    /* Ids come in increasing order, but for the odd publication that
     * raced another: keep them sorted. */
    size_t i = nslots++;
    for (; i > 0 && slots[i - 1].id > s->id; i--)
        slots[i] = slots[i - 1];
    slots[i] = *s;
}

/* --- the run's record: operations, figures, violations ------------------------------ */

static struct {
    uint64_t seed;
    long ops, checks, queries_http, queries_ws, agreements, moved, sync_polls;
    long errors_checked;
    long edge_from, edge_to, edge_to_today, edge_release, started_free;
    long violations;
    long databases;       /* replaced during the run */
    char seeds_here[256]; /* the seeds run before in this database */
} run;

/* The operations of the current seed, one line each, printed with the
 * first violation of the seed (and the later ones with what came since). */
static char **oplog;
static size_t noplog, oplog_cap, oplog_printed;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (noplog == oplog_cap) {
        oplog_cap = oplog_cap ? oplog_cap * 2 : 128;
        oplog = realloc(oplog, oplog_cap * sizeof(*oplog));
        cr_assert_not_null(oplog);
    }
    oplog[noplog] = strdup(line);
    cr_assert_not_null(oplog[noplog]);
    noplog++;
    if (getenv("SNP_CAPACITY_VERBOSE"))
        fprintf(stderr, "[capacity] %s\n", line);
}

static void oplog_reset(void)
{
    for (size_t i = 0; i < noplog; i++)
        free(oplog[i]);
    noplog = oplog_printed = 0;
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    if (oplog_printed < noplog) {
        if (!oplog_printed)
            fprintf(stderr, "[capacity] seeds run before in this database: %s\n",
                    run.seeds_here[0] ? run.seeds_here : "none");
        fprintf(stderr, "[capacity] seed %llu, operations %s:\n", (unsigned long long)run.seed,
                oplog_printed ? "since the last violation" : "so far");
        for (; oplog_printed < noplog; oplog_printed++)
            fprintf(stderr, "[capacity]   %s\n", oplog[oplog_printed]);
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[capacity] VIOLATION (seed %llu): ", (unsigned long long)run.seed);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    run.violations++;
}

/* --- set-up ----------------------------------------------------------------------- */

/* Adds a token for caller `c` (its role, in its territory) by SQL, as
 * fixture.c does, and writes its secret into callers[c]. */
static void add_token(int c, const char *rpps, int64_t organisation, int64_t site)
{
    uint8_t hash[DIGEST_SHA256_LEN];
    char hex[DIGEST_SHA256_HEX_LEN];
    cr_assert(token_generate(callers[c].token, hash));
    digest_hex(hash, sizeof(hash), hex);
    char org[24], site_s[24];
    snprintf(org, sizeof(org), "%lld", (long long)organisation);
    snprintf(site_s, sizeof(site_s), "%lld", (long long)site);
    const char *p[] = {hex,  callers[c].role,           terr[callers[c].terr].id,
                       rpps, organisation ? org : NULL, site ? site_s : NULL};
    PQclear(fix_sql(&f,
                    "INSERT INTO api_token (secret_sha256, role, territory_id, rpps,"
                    " organisation_id, site_id) VALUES (decode($1, 'hex'), $2, $3, $4, $5, $6)",
                    6, p));
}

/* The fixture's territory, grown: two more places in test-t, two practices
 * in test-other (a territory of another time zone that borrows test-t's
 * capacity), an organisation of every requester kind needed, the tokens the
 * fixture lacks.  Then both processes. */
static void setup(void)
{
    /* hold_seconds: the declaration's minimum, so that holds run out
     * during the run by themselves. */
    char settings[64];
    snprintf(settings, sizeof(settings), "{\"hold_seconds\": %d}", HOLD_S);
    fixture_setup(&f, settings);
    PQclear(pgtest_exec(
        &f.pg,
        "UPDATE territory SET time_zone = 'Indian/Reunion' WHERE id = 'test-other';"
        "INSERT INTO territory_neighbour VALUES ('test-other', '" FIX_TERRITORY "');"
        "INSERT INTO commune VALUES ('44067', 'Guémené-Penfao', '44290', 47.6331, -1.8319),"
        " ('56260', 'Vannes', '56000', 47.6559, -2.7603),"
        " ('35051', 'Cesson-Sévigné', '35510', 48.1211, -1.6030);"
        "INSERT INTO territory_commune VALUES ('" FIX_TERRITORY "', '44067'),"
        " ('" FIX_TERRITORY "', '56260'), ('test-other', '35051');"
        "INSERT INTO territory_practitioner VALUES ('test-other', '" FIX_GP2 "');"
        "INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude, longitude)"
        " VALUES ('" FIX_TERRITORY "', 'practice', 'Maison de santé de Guémené', '3 rue du"
        " Don', '44067', 47.6340, -1.8330),"
        " ('" FIX_TERRITORY "', 'teleconsultation', 'Téléconsultation du Morbihan', '1 place"
        " Gambetta', '56260', 47.6570, -2.7590),"
        " ('test-other', 'practice', 'Cabinet de Rennes', '5 rue de Brest', '35238', 48.1100,"
        " -1.6900),"
        " ('test-other', 'practice', 'Cabinet de Cesson', '2 cours de la Vilaine', '35051',"
        " 48.1200, -1.6040);"
        "INSERT INTO practitioner_site SELECT '" FIX_GP1 "', id FROM site"
        " WHERE name = 'Maison de santé de Guémené';"
        "INSERT INTO practitioner_site SELECT '" FIX_GP2 "', id FROM site"
        " WHERE name IN ('Téléconsultation du Morbihan', 'Cabinet de Rennes', 'Cabinet de"
        " Cesson');"
        "INSERT INTO organisation (territory_id, kind, name, finess, commune_insee) VALUES"
        " ('" FIX_TERRITORY "', 'professional', 'Infirmiers de Redon', '350990057', '35236'),"
        " ('test-other', 'sas', 'SAS de Rennes', '350990065', '35238');"));

    /* The fixture's tokens, and the others. */
    static const struct {
        int c;
        enum fix_role r;
    } fixture_tokens[] = {
        {C_PHARMACY, FIX_PHARMACY},
        {C_EMERGENCY, FIX_EMERGENCY},
        {C_SAS, FIX_SAS},
        {C_DESK, FIX_DESK},
        {C_COORDINATOR, FIX_COORDINATOR},
        {C_O_PHARMACY, FIX_OTHER_PHARMACY},
        {C_GP1, FIX_GP_1},
        {C_GP2, FIX_GP_2},
    };
    for (size_t i = 0; i < sizeof(fixture_tokens) / sizeof(fixture_tokens[0]); i++)
        snprintf(callers[fixture_tokens[i].c].token, sizeof(callers[0].token), "%s",
                 f.token[fixture_tokens[i].r]);
    static const char *const org_name[NCALLERS] = {
        [C_PROFESSIONAL] = "Infirmiers de Redon",
        [C_O_SAS] = "SAS de Rennes",
    };
    for (int c = 0; c < NCALLERS; c++) {
        if (callers[c].token[0])
            continue;
        int64_t org = 0;
        if (org_name[c]) {
            const char *p[] = {org_name[c]};
            org = fix_sql_ll(&f, "SELECT id FROM organisation WHERE name = $1", 1, p);
        }
        add_token(c, c == C_O_GP2 ? FIX_GP2 : NULL, org, c == C_RECEPTION ? f.site_csnp : 0);
    }
    /* A requester's calls go with its organisation's requests. */
    for (int c = 0; c < NCALLERS; c++) {
        const char *p[] = {terr[callers[c].terr].id, callers[c].role};
        if (callers[c].makes_requests)
            callers[c].organisation = fix_sql_ll(
                &f, "SELECT id FROM organisation WHERE territory_id = $1 AND kind = $2", 2, p);
    }

    /* The places, as the database has them (the fixture's and the above). */
    PGresult *res = pgtest_exec(&f.pg, "SELECT c.insee, tc.territory_id, c.latitude, c.longitude"
                                       " FROM commune c JOIN territory_commune tc"
                                       " ON tc.insee = c.insee ORDER BY 1");
    ncommunes = PQntuples(res);
    cr_assert_leq(ncommunes, 8);
    for (int i = 0; i < ncommunes; i++) {
        snprintf(communes[i].insee, sizeof(communes[i].insee), "%s", PQgetvalue(res, i, 0));
        communes[i].terr = territory_index(PQgetvalue(res, i, 1));
        communes[i].lat = atof(PQgetvalue(res, i, 2));
        communes[i].lon = atof(PQgetvalue(res, i, 3));
    }
    PQclear(res);
    /* Every site but the CSNP (its slots belong to shifts: test_model's
     * business), with its practitioners. */
    res = pgtest_exec(&f.pg, "SELECT s.id, s.territory_id, s.latitude, s.longitude,"
                             " array_agg(ps.rpps ORDER BY ps.rpps)::text FROM site s"
                             " JOIN practitioner_site ps ON ps.site_id = s.id"
                             " WHERE s.kind <> 'csnp' GROUP BY s.id ORDER BY s.id");
    nsites = PQntuples(res);
    cr_assert_leq(nsites, 8);
    for (int i = 0; i < nsites; i++) {
        struct site *s = &sites[i];
        memset(s, 0, sizeof(*s));
        s->id = atoll(PQgetvalue(res, i, 0));
        s->terr = territory_index(PQgetvalue(res, i, 1));
        s->lat = atof(PQgetvalue(res, i, 2));
        s->lon = atof(PQgetvalue(res, i, 3));
        const char *list = PQgetvalue(res, i, 4); /* {10999900011,10999900029} */
        for (int k = 0; k < 2 && strlen(list) >= 1 + 12 * (size_t)k + 11; k++)
            snprintf(s->rpps[k], sizeof(s->rpps[k]), "%.11s", list + 1 + 12 * k);
    }
    PQclear(res);

    fixture_start(&f);
    snpd_proc_start(&second, f.pg.conninfo, NULL, true);
    ports[0] = f.snpd.port;
    ports[1] = second.port;
    for (int p = 0; p < 2; p++) {
        clients[p] = snpclient_new("127.0.0.1", ports[p], false);
        cr_assert_not_null(clients[p]);
    }
    cr_assert_eq(snp_proto_init(), 0, "the protocol schema does not load");
}

static void teardown(void)
{
    for (int c = 0; c < NCALLERS; c++) {
        callers[c].token[0] = 0;
        callers[c].organisation = 0;
    }
    for (int c = 0; c < NCALLERS; c++)
        for (int p = 0; p < 2; p++) {
            snpclient_ws_close(callers[c].ws[p]);
            callers[c].ws[p] = NULL;
        }
    for (int p = 0; p < 2; p++) {
        snpclient_free(clients[p]);
        clients[p] = NULL;
    }
    if (second.pid > 0)
        snpd_proc_stop(&second, SIGTERM, 15000);
    second.pid = 0;
    fixture_teardown(&f);
    oplog_reset();
    free(oplog);
    oplog = NULL;
    oplog_cap = 0;
    free(slots);
    slots = NULL;
    nslots = slots_cap = 0;
}

TestSuite(capacity, .init = setup, .fini = teardown, .timeout = 4100);

/* --- talking to snpd -------------------------------------------------------------- */

static json_int_t num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The process an operation goes to: either, or the first only in the
 * tests that query at once what they changed (the other process learns
 * it a moment later, which the random test waits for). */
static bool first_process_only;

static int any_process(void)
{
    return first_process_only ? 0 : rnd(2);
}

/* An operation over HTTP to process `p` as caller `c`; `body` is stolen. */
static json_t *call(int p, const char *method, const char *path, int c, json_t *body, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *r = fix_api_port(ports[p], method, path, callers[c].token, text, status);
    free(text);
    return r;
}

/* A status that no random operation may get: the caller was refused or
 * snpd failed. */
static bool unexpected(int status)
{
    return status == 401 || status == 403 || status >= 500 || status == 0;
}

static struct snpclient_ws *ws_of(int c, int p)
{
    if (!callers[c].ws[p]) {
        char err[200];
        callers[c].ws[p] =
            snpclient_ws_open(clients[p], NULL, callers[c].token, 5000, err, sizeof(err));
        cr_assert_not_null(callers[c].ws[p], "WebSocket as %s: %s", callers[c].label, err);
    }
    return callers[c].ws[p];
}

/* The next local midnight of territory `t` after now, as epoch seconds. */
static int64_t next_midnight(int t)
{
    const char *p[] = {terr[t].zone};
    return fix_sql_ll(&f,
                      "SELECT extract(epoch FROM (date_trunc('day', now() AT TIME ZONE $1)"
                      " + interval '1 day') AT TIME ZONE $1)::bigint",
                      1, p);
}

/* The wall clock as snpd reads it: time() may read a coarser clock, a few
 * milliseconds behind, which matters just after a second begins. */
static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* --- operations ------------------------------------------------------------------- */

static unsigned parse_audiences(const char *pg_array) /* {sas,public} */
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", pg_array + (pg_array[0] == '{'));
    unsigned mask = 0;
    for (char *save = NULL, *a = strtok_r(buf, ",}", &save); a; a = strtok_r(NULL, ",}", &save))
        for (int b = 0; b < NAUD; b++)
            if (strcmp(a, audiences[b]) == 0)
                mask |= 1u << b;
    return mask;
}

static unsigned json_audiences(json_t *list)
{
    unsigned mask = 0;
    size_t i;
    json_t *a;
    json_array_foreach (list, i, a)
        for (int b = 0; b < NAUD; b++)
            if (json_is_string(a) && strcmp(json_string_value(a), audiences[b]) == 0)
                mask |= 1u << b;
    return mask;
}

static int mode_index(const char *name)
{
    for (int m = 0; m < 3; m++)
        if (name && strcmp(name, modes[m]) == 0)
            return m;
    return -1;
}

static void audiences_text(unsigned mask, char *out, size_t n)
{
    out[0] = 0;
    for (int a = 0; a < NAUD; a++)
        if (mask & (1u << a)) {
            size_t len = strlen(out);
            snprintf(out + len, n - len, "%s%s", len ? "," : "", audiences[a]);
        }
}

/* Publishes `n` slots at `site` starting at `starts` (epoch seconds), as
 * the site's practitioner `who` (0 or 1) or as the coordinator naming them,
 * and adds those created to the model after reading them back: each must
 * be in the database as asked.  `restrictions` (stolen) may be NULL.
 * Returns the number created. */
static int publish(int site, int who, bool as_gp, int mode, unsigned aud, int release,
                   json_t *restrictions, const int64_t *starts, int n)
{
    const struct site *s = &sites[site];
    const char *rpps = s->rpps[who][0] ? s->rpps[who] : s->rpps[0];
    int c = as_gp ? gp_caller(rpps, s->terr) : -1;
    if (c < 0)
        c = coordinator_of[s->terr];
    json_t *aud_j = json_array();
    for (int a = 0; a < NAUD; a++)
        if (aud & (1u << a))
            json_array_append_new(aud_j, json_string(audiences[a]));
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char iso[32];
        fix_iso_utc(starts[i], iso);
        json_array_append_new(list,
                              json_pack("{s:s, s:i}", "start", iso, "duration_min", 5 + rnd(56)));
    }
    json_t *body =
        json_pack("{s:I, s:s, s:s, s:o, s:o}", "site_id", (json_int_t)s->id, "practitioner_rpps",
                  rpps, "mode", modes[mode], "audiences", aud_j, "slots", list);
    if (release)
        json_object_set_new(body, "release_minutes", json_integer(release));
    char restr[120] = "";
    if (restrictions) {
        char *text = json_dumps(restrictions, JSON_COMPACT);
        snprintf(restr, sizeof(restr), " restrictions %s", text ? text : "?");
        free(text);
        json_object_set_new(body, "restrictions", restrictions);
    }
    int p = any_process(), st;
    json_t *r = call(p, "POST", "/api/v1/slots", c, body, &st);
    char aud_s[64], when[200] = "";
    audiences_text(aud, aud_s, sizeof(aud_s));
    int64_t now = wall_now();
    for (int i = 0; i < n; i++) {
        size_t len = strlen(when);
        snprintf(when + len, sizeof(when) - len, "%s%+llds", i ? "," : "",
                 (long long)(starts[i] - now));
    }
    if (st != 201) {
        violation("publish as %s answered %d", callers[c].label, st);
        json_decref(r);
        return 0;
    }
    size_t nids = json_array_size(json_object_get(r, "slot_ids"));
    /* The ids as a PostgreSQL array: the JSON array with braces. */
    char *idlist = json_dumps(json_object_get(r, "slot_ids"), JSON_COMPACT);
    cr_assert_not_null(idlist);
    idlist[0] = '{';
    idlist[strlen(idlist) - 1] = '}';
    note("publish on %d as %s: site %lld %s [%s] release %d%s starts now%s -> slots %.80s (%lld"
         " skipped)",
         p + 1, callers[c].label, (long long)s->id, modes[mode], aud_s, release, restr, when,
         idlist, (long long)num(r, "skipped"));
    if (num(r, "count") + num(r, "skipped") != n)
        violation("publish of %d slots answered count %lld, skipped %lld", n,
                  (long long)num(r, "count"), (long long)num(r, "skipped"));
    json_decref(r);
    const char *params[] = {idlist};
    PGresult *res = fix_sql(&f,
                            "SELECT id, territory_id, site_id, coalesce(rpps, ''),"
                            " extract(epoch FROM starts_at)::bigint, mode, audience::text,"
                            " coalesce(release_minutes, 0) FROM slot WHERE id = ANY($1::bigint[])",
                            1, params);
    free(idlist);
    if ((size_t)PQntuples(res) != nids)
        violation("publish answered %zu ids, %d in the database", nids, PQntuples(res));
    /* The model keeps what was asked; the database must hold the same. */
    for (int k = 0; k < PQntuples(res); k++) {
        struct mslot m = {.id = atoll(PQgetvalue(res, k, 0)),
                          .terr = s->terr,
                          .site = site,
                          .start = atoll(PQgetvalue(res, k, 4)),
                          .mode = mode,
                          .aud = aud,
                          .release = release};
        bool asked = false;
        for (int j = 0; j < n; j++)
            asked = asked || starts[j] == m.start;
        if (territory_index(PQgetvalue(res, k, 1)) != s->terr ||
            atoll(PQgetvalue(res, k, 2)) != s->id || strcmp(PQgetvalue(res, k, 3), rpps) != 0 ||
            !asked || mode_index(PQgetvalue(res, k, 5)) != mode ||
            parse_audiences(PQgetvalue(res, k, 6)) != aud || atoi(PQgetvalue(res, k, 7)) != release)
            violation("slot %lld is not in the database as published", (long long)m.id);
        model_add(&m);
    }
    PQclear(res);
    return (int)nids;
}

static json_t *random_restrictions(void)
{
    static const char *const motifs[] = {"fever",     "ent",  "respiratory",  "urinary",
                                         "digestive", "skin", "minor_trauma", "headache"};
    json_t *r = json_object();
    if (rnd(2)) {
        int lo = rnd(70);
        json_object_set_new(r, "min_age_years", json_integer(lo));
        if (rnd(2))
            json_object_set_new(r, "max_age_years", json_integer(lo + rnd(121 - lo)));
    } else {
        json_object_set_new(r, "max_age_years", json_integer(rnd(100)));
    }
    if (rnd(2)) {
        json_t *m = json_array();
        int first = rnd(8), n = 1 + rnd(3);
        for (int i = 0; i < n; i++)
            json_array_append_new(m, json_string(motifs[(first + i) % 8]));
        json_object_set_new(r, "motifs", m);
    }
    return r;
}

/* A start for a new slot of territory `t`, at least 3 s ahead: anywhere in
 * the next 50 hours, or near a horizon's end, the local day's end, the
 * instant the release rule `release` applies, or in the next seconds (the
 * slot starts during the run, free until housekeeping expires it). */
static int64_t random_start(int t, int release)
{
    int64_t now = wall_now(), start;
    static const int64_t bounds[] = {2 * 3600, 4 * 3600, 24 * 3600, 48 * 3600};
    switch (rnd(10)) {
    case 0:
    case 1:
    case 2:
        start = now + 10 + rnd(50 * 3600);
        break;
    case 3:
    case 4:
    case 5:
        start = now + bounds[rnd(4)] - 90 + rnd(181);
        break;
    case 6:
        start = next_midnight(t) - 90 + rnd(181);
        break;
    case 7:
    case 8:
        start = release ? now + 60 * (int64_t)release - 60 + rnd(121) : now + 3 + rnd(600);
        break;
    default:
        start = now + 3 + rnd(30);
        break;
    }
    return start < now + 3 ? now + 3 : start;
}

static int random_release(void)
{
    static const int choices[] = {10, 15, 30, 60, 120, 240, 1440, 2880, 10080};
    return rnd(5) < 2 ? choices[rnd(9)] : 0;
}

static unsigned random_audiences(void)
{
    unsigned mask = 0;
    switch (rnd(4)) {
    case 0: /* one audience */
        mask = 1u << rnd(NAUD);
        break;
    case 1: /* public with others */
        mask = (1u << AUD_PUBLIC_BIT) | (unsigned)rnd(1 << NAUD);
        break;
    default:
        while (!mask)
            mask = (unsigned)rnd(1 << NAUD);
    }
    return mask;
}

static void op_publish(void)
{
    int site = rnd(nsites);
    int release = random_release();
    int n = 1 + rnd(4);
    int64_t starts[4];
    for (int i = 0; i < n; i++) {
        bool again;
        do { /* distinct starts: the database skips a second slot at the same start */
            starts[i] = random_start(sites[site].terr, release);
            again = false;
            for (int j = 0; j < i; j++)
                again = again || starts[j] == starts[i];
        } while (again);
    }
    publish(site, rnd(2), rnd(2), rnd(3), random_audiences(), release,
            rnd(10) < 3 ? random_restrictions() : NULL, starts, n);
}

/* A row of `sql`, chosen at random (NULL when it has none). */
static PGresult *pick(const char *sql, int *row)
{
    return rng_pick_row(&rng, &f.pg, sql, row);
}

static int64_t val(PGresult *res, int row, int col)
{
    return atoll(PQgetvalue(res, row, col));
}

static void op_withdraw(void)
{
    int row;
    PGresult *res = pick("SELECT id, coalesce(rpps, '') FROM slot WHERE status = 'free'"
                         " AND starts_at > now() ORDER BY id",
                         &row);
    if (!res)
        return;
    int64_t id = val(res, row, 0);
    const struct mslot *m = model_slot(id);
    int c = m ? gp_caller(PQgetvalue(res, row, 1), m->terr) : -1;
    PQclear(res);
    if (!m) {
        violation("slot %lld is free but the test never published it", (long long)id);
        return;
    }
    if (c < 0 || rnd(2))
        c = coordinator_of[m->terr];
    int p = any_process(), st;
    json_decref(call(p, "POST", "/api/v1/slots/withdraw", c,
                     json_pack("{s:[I]}", "slot_ids", (json_int_t)id), &st));
    note("withdraw on %d as %s: slot %lld -> %d", p + 1, callers[c].label, (long long)id, st);
    if (st != 200 && st != 409)
        violation("withdraw of slot %lld answered %d", (long long)id, st);
}

static void op_create(void)
{
    static const char *const motifs[] = {"fever",        "ent",       "respiratory",
                                         "urinary",      "digestive", "skin",
                                         "minor_trauma", "headache",  "other"};
    static const char *const urgencies[] = {"same_day", "24h", "48h"};
    static unsigned serial;
    int requesters[NQUERY], n = 0;
    for (int c = 0; c < NQUERY; c++)
        if (callers[c].makes_requests)
            requesters[n++] = c;
    int c = requesters[rnd(n)];
    int homes[8], nh = 0;
    for (int i = 0; i < ncommunes; i++)
        if (communes[i].terr == callers[c].terr)
            homes[nh++] = i;
    char ref[64];
    snprintf(ref, sizeof(ref), "cap-%llu-%u", (unsigned long long)run.seed, serial++);
    int birth = 1930 + rnd(95);
    const char *urgency = urgencies[rnd(3)];
    const char *motif = motifs[rnd(9)];
    json_t *body =
        json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:b}, s:{s:s}, s:s}", "client_ref", ref, "patient",
                  "initials", "C. Q.", "birth_year", birth, "sex", rnd(2) ? "female" : "male",
                  "commune_insee", communes[homes[rnd(nh)]].insee, "has_mt", 0, "motif", "code",
                  motif, "urgency", urgency);
    if (rnd(3) == 0) {
        json_t *m = json_array();
        int first = rnd(3), k = 1 + rnd(2);
        for (int i = 0; i < k; i++)
            json_array_append_new(m, json_string(modes[(first + i) % 3]));
        json_object_set_new(body, "constraints", json_pack("{s:o}", "modes", m));
    }
    int p = any_process(), st;
    json_t *r = call(p, "POST", "/api/v1/requests", c, body, &st);
    const char *status = fix_json_str(r, "status");
    note("request.create on %d as %s: born %d, %s, %s -> %d, request %lld %s, slot %lld", p + 1,
         callers[c].label, birth, motif, urgency, st, (long long)num(r, "request_id"),
         status ? status : "", (long long)num(fix_json_at(r, "offer.slot"), "slot_id"));
    if (st != 201)
        violation("request.create as %s answered %d", callers[c].label, st);
    json_decref(r);
}

static int requester_of(int64_t organisation)
{
    for (int c = 0; c < NQUERY; c++)
        if (callers[c].makes_requests && callers[c].organisation == organisation)
            return c;
    return -1;
}

static const char *const OFFERED = "SELECT r.id, s.id, r.organisation_id FROM request r"
                                   " JOIN slot s ON s.held_for = r.id AND s.status = 'held'"
                                   " WHERE r.status = 'offered' ORDER BY r.id";

/* Calls `verb` (accept, decline, cancel) on request `rq` of organisation
 * `org` with `body` (stolen). */
static void request_call(int64_t rq, int64_t org, const char *verb, json_t *body, const char *what)
{
    int c = requester_of(org);
    if (c < 0) {
        json_decref(body);
        violation("request %lld of an organisation the test does not know", (long long)rq);
        return;
    }
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/%s", (long long)rq, verb);
    int p = any_process(), st;
    json_decref(call(p, "POST", path, c, body, &st));
    note("%s on %d as %s: request %lld %s -> %d", verb, p + 1, callers[c].label, (long long)rq,
         what, st);
    if (unexpected(st))
        violation("%s of request %lld answered %d", verb, (long long)rq, st);
}

/* Accepts or declines the held slot of an offered request. */
static void answer_offer(bool accept)
{
    int row;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0), slot = val(res, row, 1), org = val(res, row, 2);
    PQclear(res);
    char what[40];
    snprintf(what, sizeof(what), "held slot %lld", (long long)slot);
    json_t *body = json_pack("{s:I}", "slot_id", (json_int_t)slot);
    if (!accept)
        json_object_set_new(body, "reason", json_string("too_far"));
    request_call(rq, org, accept ? "accept" : "decline", body, what);
}

static void op_accept(void)
{
    answer_offer(true);
}

/* Accepts another free slot, which snpd books only if the request could
 * have been offered it (test_model checks which). */
static void op_alternative(void)
{
    int row, k;
    PGresult *res = pick(OFFERED, &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0), org = val(res, row, 2);
    PQclear(res);
    PGresult *free_slots = pick("SELECT id FROM slot WHERE status = 'free' ORDER BY id", &k);
    if (!free_slots)
        return;
    int64_t slot = val(free_slots, k, 0);
    PQclear(free_slots);
    char what[40];
    snprintf(what, sizeof(what), "other slot %lld", (long long)slot);
    request_call(rq, org, "accept", json_pack("{s:I}", "slot_id", (json_int_t)slot), what);
}

static void op_decline(void)
{
    answer_offer(false);
}

static void op_cancel(void)
{
    int row;
    PGresult *res = pick("SELECT id, organisation_id, status FROM request"
                         " WHERE status IN ('waiting', 'offered', 'booked') ORDER BY id",
                         &row);
    if (!res)
        return;
    int64_t rq = val(res, row, 0), org = val(res, row, 1);
    char what[40];
    snprintf(what, sizeof(what), "(%s)", PQgetvalue(res, row, 2));
    PQclear(res);
    request_call(rq, org, "cancel", json_pack("{s:s}", "reason", "patient_seen_elsewhere"), what);
}

/* The practitioner (or the coordinator of the slot's territory) cancels a
 * booking: the slot is free again, the request waits again. */
static void op_booking_cancel(void)
{
    int row;
    PGresult *res = pick("SELECT b.id, b.rpps, s.territory_id, s.id FROM booking b"
                         " JOIN slot s ON s.id = b.slot_id WHERE b.status = 'booked' ORDER BY b.id",
                         &row);
    if (!res)
        return;
    int64_t id = val(res, row, 0), slot = val(res, row, 3);
    int t = territory_index(PQgetvalue(res, row, 2));
    int c = gp_caller(PQgetvalue(res, row, 1), t);
    PQclear(res);
    if (c < 0 || rnd(3) == 0)
        c = coordinator_of[t];
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/bookings/%lld/cancel", (long long)id);
    int p = any_process(), st;
    json_decref(
        call(p, "POST", path, c, json_pack("{s:s}", "reason", "practitioner_unavailable"), &st));
    note("booking.cancel on %d as %s: booking %lld (slot %lld) -> %d", p + 1, callers[c].label,
         (long long)id, (long long)slot, st);
    if (unexpected(st))
        violation("booking.cancel of booking %lld answered %d", (long long)id, st);
}

/* --- capacity queries and the count ----------------------------------------------- */

struct query {
    int caller;
    int process;
    bool ws;
    int horizon;
    int commune; /* index in communes[], or -1 */
    double radius;
    int nmodes;
    int mode[3];         /* in the order given */
    bool pair_with_next; /* the next query is the same over the other transport */
    int64_t t0, t1;      /* the clock before and after it */
    int status;          /* HTTP status (WebSocket: 200, or the error's) */
    json_t *data;        /* the answer's data, or the error object */
};

static void query_text(const struct query *q, char *out, size_t n)
{
    snprintf(out, n, "%s on %d by %s: horizon %s", callers[q->caller].label, q->process + 1,
             q->ws ? "WebSocket" : "HTTP", horizons[q->horizon]);
    if (q->commune >= 0) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, ", commune %s", communes[q->commune].insee);
    }
    if (q->radius > 0) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, ", radius %.1f km", q->radius);
    }
    for (int i = 0; i < q->nmodes; i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", i ? "," : ", modes ", modes[q->mode[i]]);
    }
}

/* Sends `q` and keeps its answer in q->data. */
static void query_send(struct query *q)
{
    q->t0 = wall_now();
    if (q->ws) {
        json_t *data = json_pack("{s:s}", "horizon", horizons[q->horizon]);
        if (q->commune >= 0)
            json_object_set_new(data, "commune_insee", json_string(communes[q->commune].insee));
        if (q->radius > 0)
            json_object_set_new(data, "radius_km", json_real(q->radius));
        if (q->nmodes) {
            json_t *m = json_array();
            for (int i = 0; i < q->nmodes; i++)
                json_array_append_new(m, json_string(modes[q->mode[i]]));
            json_object_set_new(data, "modes", m);
        }
        char *text = json_dumps(data, JSON_COMPACT);
        json_decref(data);
        char *resp = NULL;
        int rc;
        for (int tries = 0;; tries++) {
            rc = snpclient_ws_call(ws_of(q->caller, q->process), "capacity.query", text, 5000,
                                   &resp);
            json_t *env = resp ? json_loads(resp, 0, NULL) : NULL;
            free(resp);
            resp = NULL;
            const char *code = fix_json_str(env, "error.code");
            if (code && strcmp(code, "rate_limited") == 0 && tries < 20) {
                /* A time, not a condition: the connection's token bucket
                 * refills at messages_per_second. */
                json_decref(env);
                test_sleep_ms(100);
                continue;
            }
            cr_assert(rc == 0 || rc == SNPCLIENT_ESERVER, "capacity.query over WebSocket: %s",
                      snpclient_strerror(rc));
            q->status = rc == 0 ? 200 : 0;
            q->data = json_incref(json_object_get(env, rc == 0 ? "data" : "error"));
            json_decref(env);
            break;
        }
        free(text);
    } else {
        char path[256];
        snprintf(path, sizeof(path), "/api/v1/capacity?horizon=%s", horizons[q->horizon]);
        if (q->commune >= 0) {
            size_t len = strlen(path);
            snprintf(path + len, sizeof(path) - len, "&commune_insee=%s",
                     communes[q->commune].insee);
        }
        if (q->radius > 0) {
            size_t len = strlen(path);
            snprintf(path + len, sizeof(path) - len, "&radius_km=%.1f", q->radius);
        }
        for (int i = 0; i < q->nmodes; i++) {
            size_t len = strlen(path);
            snprintf(path + len, sizeof(path) - len, "%s%s",
                     i ? "," : "&modes=", modes[q->mode[i]]);
        }
        json_t *r = fix_api_port(ports[q->process], "GET", path, callers[q->caller].token, NULL,
                                 &q->status);
        cr_assert_not_null(r, "GET %s: no JSON (HTTP %d)", path, q->status);
        q->data = q->status == 200 ? r : json_incref(json_object_get(r, "error"));
        if (q->status != 200)
            json_decref(r);
    }
    q->t1 = wall_now();
    if (q->ws)
        run.queries_ws++;
    else
        run.queries_http++;
}

static double great_circle_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180;
    double a = sin((lat2 - lat1) * rad / 2), b = sin((lon2 - lon1) * rad / 2);
    double h = a * a + cos(lat1 * rad) * cos(lat2 * rad) * b * b;
    return 2 * 6371.0 * asin(sqrt(h));
}

/* A radius around commune `k` that no site lies within 300 m of. */
static double random_radius(int k)
{
    for (;;) {
        double r;
        switch (rnd(3)) {
        case 0:
            r = 1 + rnd(100) / 10.0;
            break;
        case 1:
            r = 1 + rnd(700) / 10.0;
            break;
        default:
            r = 1 + rnd(1990) / 10.0;
        }
        bool clear = true;
        for (int s = 0; s < nsites; s++)
            clear = clear && fabs(great_circle_km(communes[k].lat, communes[k].lon, sites[s].lat,
                                                  sites[s].lon) -
                                  r) > 0.3;
        if (clear)
            return r;
    }
}

static void random_query(struct query *q)
{
    memset(q, 0, sizeof(*q));
    q->caller = rnd(NQUERY);
    q->process = rnd(2);
    q->ws = rnd(2);
    q->horizon = rnd(NHORIZONS);
    q->commune = -1;
    if (rnd(3) == 0) {
        int own[8], n = 0;
        for (int i = 0; i < ncommunes; i++)
            if (visible(callers[q->caller].terr, communes[i].terr))
                own[n++] = i;
        q->commune = own[rnd(n)];
        if (rnd(4))
            q->radius = random_radius(q->commune);
    }
    if (rnd(3) == 0) {
        int first = rnd(3), step = 1 + rnd(2);
        q->nmodes = 1 + rnd(3);
        for (int i = 0; i < q->nmodes; i++)
            q->mode[i] = (first + i * step) % 3;
        if (q->nmodes == 3 && step == 1 && rnd(2)) { /* another order */
            q->mode[1] = (first + 2) % 3;
            q->mode[2] = (first + 1) % 3;
        }
    }
}

/* The free slots of the database, and its count of events in the same
 * snapshot (a change appends an event). */
struct free_set {
    long events;
    int64_t *ids;
    size_t n;
};

static void free_set_read(struct free_set *fs)
{
    PGresult *res = pgtest_exec(&f.pg, "SELECT (SELECT count(*) FROM event),"
                                       " coalesce((SELECT array_agg(id ORDER BY id) FROM slot"
                                       " WHERE status = 'free')::text, '{}')");
    fs->events = atol(PQgetvalue(res, 0, 0));
    const char *p = PQgetvalue(res, 0, 1) + 1;
    fs->n = 0;
    fs->ids = malloc((strlen(p) / 2 + 1) * sizeof(*fs->ids));
    cr_assert_not_null(fs->ids);
    while (*p && *p != '}') {
        char *end;
        fs->ids[fs->n++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    PQclear(res);
}

/* What a query should answer, from the model and the free set. */
struct expected {
    int total, by_mode[3];
    int open_to[NAUD]; /* named, released, or published for the public (any kind) */
    int64_t *ids;      /* the slots counted, by start */
    size_t n;
};

static int by_start(const void *a, const void *b)
{
    const struct mslot *x = model_slot(*(const int64_t *)a), *y = model_slot(*(const int64_t *)b);
    return (x->start > y->start) - (x->start < y->start);
}

static void expect(const struct query *q, const struct free_set *fs, int64_t from, int64_t to,
                   struct expected *e)
{
    memset(e, 0, sizeof(*e));
    e->ids = malloc((fs->n + 1) * sizeof(*e->ids));
    cr_assert_not_null(e->ids);
    unsigned wanted = 0;
    for (int i = 0; i < q->nmodes; i++)
        wanted |= 1u << q->mode[i];
    int t = callers[q->caller].terr;
    for (size_t i = 0; i < fs->n; i++) {
        const struct mslot *s = model_slot(fs->ids[i]);
        if (!s || !visible(t, s->terr) || s->start < from || s->start >= to)
            continue;
        if (wanted && !(wanted & (1u << s->mode)))
            continue;
        if (q->radius > 0 && s->mode != MODE_TELE &&
            great_circle_km(communes[q->commune].lat, communes[q->commune].lon, sites[s->site].lat,
                            sites[s->site].lon) > q->radius)
            continue;
        e->total++;
        e->by_mode[s->mode]++;
        bool released = s->release > 0 && from >= s->start - 60 * (int64_t)s->release;
        for (int a = 0; a < NAUD; a++) {
            bool named = (s->aud & (1u << a)) != 0;
            e->open_to[a] += released || named || (s->aud & (1u << AUD_PUBLIC_BIT));
        }
        e->ids[e->n++] = s->id;
    }
    qsort(e->ids, e->n, sizeof(*e->ids), by_start);
}

/* Counts the answers that met an edge: a free slot of the caller's view
 * that starts exactly at `from` or at `to`, whose release rule applies
 * from that very second, or that started but is not expired yet. */
static void count_edges(const struct query *q, const struct free_set *fs, int64_t from, int64_t to)
{
    int t = callers[q->caller].terr;
    bool at_from = false, at_to = false, released = false, started = false;
    for (size_t i = 0; i < fs->n; i++) {
        const struct mslot *s = model_slot(fs->ids[i]);
        if (!s || !visible(t, s->terr))
            continue;
        at_from = at_from || s->start == from;
        at_to = at_to || s->start == to;
        released = released || (s->release > 0 && s->start - 60 * (int64_t)s->release == from);
        started = started || s->start < from;
    }
    bool today = strcmp(horizons[q->horizon], "today") == 0;
    run.edge_from += at_from;
    run.edge_to += at_to && !today;
    run.edge_to_today += at_to && today;
    run.edge_release += released;
    run.started_free += started;
}

/* Appends to `why` (of size n). */
static void why_add(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_add(char *why, size_t n, const char *fmt, ...)
{
    size_t len = strlen(why);
    if (len + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + len, n - len, fmt, ap);
    va_end(ap);
}

/* The window of an answer: `from` and `to` as epoch seconds, and whether
 * they are what the horizon says, written in the territory's local time. */
static bool window_of(const struct query *q, int64_t *from, int64_t *to, char *why, size_t n)
{
    const char *fs = json_string_value(json_object_get(q->data, "from"));
    const char *ts = json_string_value(json_object_get(q->data, "to"));
    if (!fs || !ts) {
        why_add(why, n, " no from/to;");
        return false;
    }
    /* The rules of the horizon type, written out: 2, 4, 24 or 48 hours
     * from now, or the rest of the local day. */
    const char *p[] = {fs, ts, horizons[q->horizon], terr[callers[q->caller].terr].zone};
    PGresult *res = fix_sql(
        &f,
        "SELECT extract(epoch FROM $1::text::timestamptz)::bigint,"
        " extract(epoch FROM $2::text::timestamptz)::bigint,"
        " extract(epoch FROM CASE $3::text WHEN '2h' THEN $1::text::timestamptz + interval '2 "
        "hours'"
        "  WHEN '4h' THEN $1::text::timestamptz + interval '4 hours'"
        "  WHEN '24h' THEN $1::text::timestamptz + interval '24 hours'"
        "  WHEN '48h' THEN $1::text::timestamptz + interval '48 hours'"
        "  ELSE (date_trunc('day', $1::text::timestamptz AT TIME ZONE $4::text) + interval '1 day')"
        "   AT TIME ZONE $4::text END)::bigint,"
        " ($1::text::timestamptz AT TIME ZONE $4::text) = left($1::text, 19)::timestamp"
        "  AND ($2::text::timestamptz AT TIME ZONE $4::text) = left($2::text, 19)::timestamp",
        4, p);
    *from = atoll(PQgetvalue(res, 0, 0));
    *to = atoll(PQgetvalue(res, 0, 1));
    int64_t want_to = atoll(PQgetvalue(res, 0, 2));
    bool local = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    PQclear(res);
    bool ok = true;
    if (*from < q->t0 || *from > q->t1) {
        why_add(why, n, " from %s is not the moment of the query;", fs);
        ok = false;
    }
    if (*to != want_to) {
        why_add(why, n, " to %s is not from + %s (%+llds);", ts, horizons[q->horizon],
                (long long)(*to - want_to));
        ok = false;
    }
    if (!local) {
        why_add(why, n, " from %s / to %s not in %s local time;", fs, ts,
                terr[callers[q->caller].terr].zone);
        ok = false;
    }
    return ok;
}

/* Whether the slot list of an answer is the slots counted, each as
 * published; `*sorted` says whether it is by start. */
static bool list_matches(const struct query *q, const struct expected *e, bool *sorted, char *why,
                         size_t n)
{
    json_t *list = json_object_get(q->data, "slots");
    json_t *truncated = json_object_get(q->data, "truncated");
    if (!lists_slots(q->caller)) {
        if (list || truncated)
            why_add(why, n, " slots given to a %s;", callers[q->caller].role);
        return !list && !truncated;
    }
    bool ok = true;
    /* "whether more slots matched than max_array_items" */
    size_t max = snp_proto_limits()->max_array_items;
    bool over = e->n > max;
    if (!json_is_array(list) || !json_is_boolean(truncated) || json_is_true(truncated) != over) {
        why_add(why, n, " %zu slots counted, %s list, truncated %s;", e->n,
                json_is_array(list) ? "a" : "no", json_is_boolean(truncated) ? "given" : "absent");
        return false;
    }
    if (json_array_size(list) != (over ? max : e->n)) {
        why_add(why, n, " %zu slots listed, %zu counted;", json_array_size(list), e->n);
        ok = false;
    }
    *sorted = true;
    int64_t last = INT64_MIN;
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        int64_t id = num(v, "slot_id");
        const struct mslot *s = model_slot(id);
        bool counted = false;
        for (size_t k = 0; k < e->n && !counted; k++)
            counted = e->ids[k] == id;
        unsigned aud = json_audiences(json_object_get(v, "audiences"));
        if (!s || !counted) {
            why_add(why, n, " slot %lld listed, not counted;", (long long)id);
            ok = false;
            continue;
        }
        const char *status = json_string_value(json_object_get(v, "status"));
        if (!status || strcmp(status, "free") != 0 ||
            mode_index(json_string_value(json_object_get(v, "mode"))) != s->mode || aud != s->aud ||
            num(v, "release_minutes") != s->release ||
            num(json_object_get(v, "site"), "site_id") != sites[s->site].id) {
            why_add(why, n, " slot %lld listed unlike its publication;", (long long)id);
            ok = false;
        }
        *sorted = *sorted && s->start >= last;
        last = s->start;
    }
    /* Cut by start: every slot starting before the last one listed is
     * listed (of those starting with it, any may be). */
    if (over && *sorted) {
        size_t earlier = 0, listed_earlier = 0;
        for (size_t k = 0; k < e->n; k++)
            earlier += model_slot(e->ids[k])->start < last;
        json_array_foreach (list, i, v) {
            const struct mslot *s = model_slot(num(v, "slot_id"));
            listed_earlier += s && s->start < last;
        }
        if (earlier != listed_earlier) {
            why_add(why, n, " %zu slots start before the last listed, %zu listed;", earlier,
                    listed_earlier);
            ok = false;
        }
    }
    return ok;
}

/* Compares one answer with the count; `why` gets what differs. */
static bool verify(struct query *q, const struct free_set *fs, char *why, size_t n)
{
    why[0] = 0;
    if (q->status != 200) {
        char *text = json_dumps(q->data, JSON_COMPACT);
        why_add(why, n, " answered %d %s;", q->status, text ? text : "");
        free(text);
        return false;
    }
    struct snp_proto_error err = {0};
    if (snp_proto_validate_response(snp_proto_message_find("capacity.query"), q->data, &err) != 0) {
        why_add(why, n, " breaks its declaration: %s at %s;", err.message, err.field);
        return false;
    }
    const char *tid = json_string_value(json_object_get(q->data, "territory_id"));
    const char *hz = json_string_value(json_object_get(q->data, "horizon"));
    bool ok = tid && strcmp(tid, terr[callers[q->caller].terr].id) == 0 && hz &&
              strcmp(hz, horizons[q->horizon]) == 0;
    if (!ok)
        why_add(why, n, " territory_id %s, horizon %s;", tid ? tid : "-", hz ? hz : "-");
    int64_t from, to;
    if (!window_of(q, &from, &to, why, n))
        return false;
    struct expected e;
    expect(q, fs, from, to, &e);
    if (num(q->data, "total") != e.total) {
        why_add(why, n, " total %lld, %d counted;", (long long)num(q->data, "total"), e.total);
        ok = false;
    }
    json_t *bm = json_object_get(q->data, "by_mode");
    for (int m = 0; m < 3; m++)
        if (num(bm, modes[m]) != e.by_mode[m]) {
            why_add(why, n, " by_mode.%s %lld, %d counted;", modes[m], (long long)num(bm, modes[m]),
                    e.by_mode[m]);
            ok = false;
        }
    json_t *ba = json_object_get(q->data, "by_audience");
    for (int a = 0; a < NAUD; a++) {
        json_int_t got = num(ba, audiences[a]);
        if (got != e.open_to[a]) {
            why_add(why, n, " by_audience.%s %lld, %d slots open to it;", audiences[a],
                    (long long)got, e.open_to[a]);
            ok = false;
        }
    }
    bool sorted = true;
    ok = list_matches(q, &e, &sorted, why, n) && ok;
    if (!sorted) {
        why_add(why, n, " slots not by start;");
        ok = false;
    }
    if (ok)
        count_edges(q, fs, from, to);
    free(e.ids);
    return ok;
}

struct live_slot {
    int64_t id;
    const char *status;
};

static int live_by_id(const void *a, const void *b)
{
    int64_t x = ((const struct live_slot *)a)->id, y = ((const struct live_slot *)b)->id;
    return (x > y) - (x < y);
}

/* The live slots (free, held, booked) of territory `t` starting in
 * [from, to) in process `p`'s memory (slot.list, as the territory's
 * coordinator), as "id:status,..." by id, the form wait_in_sync reads
 * from the database; the caller frees it. */
static char *memory_slots(int p, int t, int64_t from, int64_t to)
{
    char a[32], b[32], path[160];
    fix_iso_utc(from, a);
    fix_iso_utc(to, b);
    snprintf(path, sizeof(path), "/api/v1/slots?from=%s&to=%s&limit=1000", a, b);
    int st;
    json_t *r = fix_api_port(ports[p], "GET", path, callers[coordinator_of[t]].token, NULL, &st);
    cr_assert_eq(st, 200, "slot.list on %d: %d", p + 1, st);
    cr_assert(json_is_false(json_object_get(r, "truncated")), "more than 1000 live slots");
    json_t *list = json_object_get(r, "slots");
    size_t n = json_array_size(list), len = 0, cap = 32 * n + 1;
    struct live_slot *rows = calloc(n + 1, sizeof(*rows));
    char *out = malloc(cap);
    cr_assert(rows && out);
    for (size_t i = 0; i < n; i++) {
        rows[i].id = num(json_array_get(list, i), "slot_id");
        rows[i].status = fix_json_str(json_array_get(list, i), "status");
    }
    qsort(rows, n, sizeof(*rows), live_by_id);
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld:%.10s", i ? "," : "",
                                (long long)rows[i].id, rows[i].status ? rows[i].status : "?");
    free(rows);
    json_decref(r);
    return out;
}

/* Waits until both processes' memories hold the database's live slots with
 * the database's statuses, and returns the count of events of that
 * snapshot of the database (-1 when they did not within SETTLE_MS; `why`
 * then says where they differed). */
static long wait_in_sync(char *why, size_t n)
{
    int64_t now = wall_now(), from = now - 86400, to = now + 3 * 86400;
    char from_s[24], to_s[24];
    snprintf(from_s, sizeof(from_s), "%lld", (long long)from);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)to);
    const char *p[] = {from_s, to_s, terr[T_MAIN].id, terr[T_OTHER].id};
    struct test_wait w = test_wait_start(SETTLE_MS);
    for (int polls = 0;; polls++) {
        PGresult *res = fix_sql(
            &f,
            "SELECT (SELECT count(*) FROM event),"
            " (SELECT coalesce(string_agg(id || ':' || status, ',' ORDER BY id), '') FROM slot"
            "  WHERE territory_id = $3 AND status IN ('free', 'held', 'booked')"
            "  AND starts_at >= to_timestamp($1::bigint) AND starts_at < to_timestamp($2::bigint)),"
            " (SELECT coalesce(string_agg(id || ':' || status, ',' ORDER BY id), '') FROM slot"
            "  WHERE territory_id = $4 AND status IN ('free', 'held', 'booked')"
            "  AND starts_at >= to_timestamp($1::bigint) AND starts_at < to_timestamp($2::bigint))",
            4, p);
        bool same = true;
        for (int proc = 0; proc < 2 && same; proc++)
            for (int t = 0; t < NTERR && same; t++) {
                char *mem = memory_slots(proc, t, from, to);
                same = strcmp(mem, PQgetvalue(res, 0, 1 + t)) == 0;
                if (!same)
                    snprintf(why, n, "process %d, %s: memory %.200s, database %.200s", proc + 1,
                             terr[t].id, mem, PQgetvalue(res, 0, 1 + t));
                free(mem);
            }
        long events = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (same) {
            run.sync_polls += polls;
            return events;
        }
        if (!test_wait_again(&w))
            return -1;
    }
}

/* Sends the queries and compares each answer with the count, at a quiet
 * point: both processes' memories were seen to hold the database's slots
 * (wait_in_sync), and the database's events did not move from then until
 * the free slots were read after the answers.  Nothing then may differ, to
 * the second: a difference is a violation, never retried (a retry would
 * come a second later, past the edge that made the difference).  With
 * `aim`, the queries are sent at that instant (the first attempt only). */
static void check(struct query *qs, int nq, const int64_t *aim)
{
    int64_t deadline = test_now_ms() + SETTLE_MS;
    run.checks++;
    note("check: %d queries%s", nq, aim ? ", at the probe's instant" : "");
    cr_assert_leq(nq, 8);
    for (;;) {
        char why[8][600], sync_why[500] = "";
        long synced = wait_in_sync(sync_why, sizeof(sync_why));
        if (synced < 0) {
            violation("the processes' memories did not come to the database's slots within %d"
                      " ms: %s",
                      SETTLE_MS, sync_why);
            return;
        }
        if (aim) {
            /* A time, not a condition: the instant the probe's slots were
             * published for. */
            struct timespec at = {.tv_sec = (time_t)*aim, .tv_nsec = 2000000L};
            while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
                ;
            aim = NULL;
        }
        for (int i = 0; i < nq; i++)
            query_send(&qs[i]);
        struct free_set fs;
        free_set_read(&fs);
        bool quiet = fs.events == synced;
        for (int i = 0; quiet && i < nq; i++) {
            if (verify(&qs[i], &fs, why[i], sizeof(why[i])))
                continue;
            char text[300];
            query_text(&qs[i], text, sizeof(text));
            violation("%s:%s", text, why[i]);
        }
        /* The same query over both transports: the same answer when it was
         * made in the same second. */
        for (int i = 0; quiet && i + 1 < nq; i++) {
            const char *a = json_string_value(json_object_get(qs[i].data, "from"));
            const char *b = json_string_value(json_object_get(qs[i + 1].data, "from"));
            if (!qs[i].pair_with_next || !a || !b || strcmp(a, b) != 0)
                continue;
            run.agreements++;
            if (!json_equal(qs[i].data, qs[i + 1].data)) {
                char text[300];
                query_text(&qs[i], text, sizeof(text));
                violation("%s: HTTP and WebSocket answers differ in the same second", text);
            }
        }
        for (int i = 0; i < nq; i++) {
            json_decref(qs[i].data);
            qs[i].data = NULL;
        }
        free(fs.ids);
        if (quiet)
            return;
        run.moved++;
        if (test_now_ms() > deadline) {
            violation("no quiet point within %d ms: the database kept changing", SETTLE_MS);
            return;
        }
    }
}

/* A check of a few random queries, one of them over both transports. */
static void check_random(void)
{
    struct query qs[7];
    int n = 3 + rnd(4);
    for (int i = 0; i < n; i++)
        random_query(&qs[i]);
    qs[n] = qs[n - 1];
    qs[n].ws = !qs[n - 1].ws;
    qs[n - 1].pair_with_next = true;
    check(qs, n + 1, NULL);
}

/* --- the probe: queries aimed at an instant ---------------------------------------- */

/* Publishes, in a random territory, slots that start exactly at the window
 * bounds of a query made at instant k (k itself, k plus each horizon, the
 * local day's end and one second before it) and two whose release rule
 * applies at k and one second after it, none offered to any request (no
 * patient is 110); then waits for k and queries at once, by every horizon. */
static void op_probe(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t k = now.tv_sec + 2 + (now.tv_nsec > 500000000L);
    int t = rnd(NTERR);
    int own[8], n = 0;
    for (int s = 0; s < nsites; s++)
        if (sites[s].terr == t)
            own[n++] = s;
    int site = own[rnd(n)];
    int64_t midnight = next_midnight(t);
    int64_t bounds[] = {k,        k + 2 * 3600, k + 4 * 3600, k + 24 * 3600, k + 48 * 3600,
                        midnight, midnight - 1};
    int nb = midnight - 1 > k ? 7 : 5;
    note("probe at %lld (in %.1f s) in %s", (long long)k,
         (double)(k - now.tv_sec) - now.tv_nsec / 1e9, terr[t].id);
    publish(site, rnd(2), false, rnd(3), random_audiences(), 0,
            json_pack("{s:i}", "min_age_years", 110), bounds, nb);
    /* Released at k and one second later; audiences without public, so
     * that the release is what opens them to all. */
    int release = (1 + rnd(12)) * 10;
    int64_t released[] = {k + 60 * (int64_t)release, k + 60 * (int64_t)release + 1};
    unsigned aud = random_audiences() & ~(1u << AUD_PUBLIC_BIT);
    publish(site, rnd(2), false, rnd(3), aud ? aud : 1u, release,
            json_pack("{s:i}", "min_age_years", 110), released, 2);

    /* Every horizon, by callers that see the territory, the first over
     * both transports. */
    struct query qs[NHORIZONS + 1];
    for (int i = 0; i <= NHORIZONS; i++) {
        int c;
        do
            c = rnd(NQUERY);
        while (!visible(callers[c].terr, t));
        memset(&qs[i], 0, sizeof(qs[i]));
        qs[i].caller = c;
        qs[i].process = rnd(2);
        qs[i].ws = rnd(2);
        qs[i].horizon = i ? i - 1 : 0;
        qs[i].commune = -1;
    }
    qs[1] = qs[0];
    qs[1].ws = !qs[0].ws;
    qs[0].pair_with_next = true;
    check(qs, NHORIZONS + 1, &k);
}

/* --- errors and refusals ---------------------------------------------------------- */

/* Sends one query (as `c`, with the extra query string `extra` or WebSocket
 * fields `ws_extra`) over both transports, and checks the error code. */
static void expect_error(int c, const char *extra, json_t *ws_extra, const char *code,
                         int http_status)
{
    for (int p = 0; p < 2; p++) {
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/capacity?horizon=4h%s", extra);
        int st;
        json_t *r = fix_api_port(ports[p], "GET", path, callers[c].token, NULL, &st);
        const char *got = fix_json_str(r, "error.code");
        if (st != http_status || !got || strcmp(got, code) != 0)
            violation("GET %s as %s on %d: %d %s, %d %s expected", path, callers[c].label, p + 1,
                      st, got ? got : "-", http_status, code);
        json_decref(r);
        json_t *data = json_pack("{s:s}", "horizon", "4h");
        json_object_update(data, ws_extra);
        char *text = json_dumps(data, JSON_COMPACT);
        json_decref(data);
        char *resp = NULL;
        int rc = snpclient_ws_call(ws_of(c, p), "capacity.query", text, 5000, &resp);
        json_t *env = resp ? json_loads(resp, 0, NULL) : NULL;
        got = fix_json_str(env, "error.code");
        if (rc != SNPCLIENT_ESERVER || !got || strcmp(got, code) != 0)
            violation("capacity.query %s as %s on %d over WebSocket: %s, %s expected", text,
                      callers[c].label, p + 1, resp ? resp : snpclient_strerror(rc), code);
        json_decref(env);
        free(resp);
        free(text);
        run.errors_checked++;
    }
    json_decref(ws_extra);
}

static void check_errors(void)
{
    /* Roles the declaration does not name may not ask. */
    for (int c = NQUERY; c < NCALLERS; c++) {
        expect_error(c, "", json_object(), "forbidden", 403);
    }
    /* A commune nobody knows; one of a territory that is neither the
     * caller's nor its neighbour (a neighbour's commune is accepted, as
     * request.create accepts it: random_query centres there too). */
    expect_error(C_SAS, "&commune_insee=75056", json_pack("{s:s}", "commune_insee", "75056"),
                 "not_found", 404);
    expect_error(C_COORDINATOR, "&commune_insee=35238",
                 json_pack("{s:s}", "commune_insee", "35238"), "other_territory", 403);
    expect_error(C_O_SAS, "&commune_insee=75056", json_pack("{s:s}", "commune_insee", "75056"),
                 "not_found", 404);
}

/* --- the run ---------------------------------------------------------------------- */

static void run_one(void)
{
    static void (*const ops[])(void) = {op_publish, op_withdraw,       op_create,
                                        op_accept,  op_alternative,    op_decline,
                                        op_cancel,  op_booking_cancel, op_probe};
    static const int weight[] = {26, 5, 22, 10, 5, 8, 6, 5, 3};
    ops[rng_weighted(&rng, weight, sizeof(weight) / sizeof(weight[0]))]();
    run.ops++;
}

static void run_seed(uint64_t seed, void *arg)
{
    int ops = *(const int *)arg;
    /* A database grown past a few hundred live slots (a long run) is
     * replaced by a new one: the checks list every live slot. */
    if (pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status IN ('free', 'held', 'booked')") >
        600) {
        teardown();
        setup();
        run.databases++;
        run.seeds_here[0] = 0;
    }
    run.seed = seed;
    oplog_reset();
    rng_seed(&rng, seed);
    for (int i = 0; i < ops; i++) {
        if (i == ops / 3)
            op_probe(); /* one per seed at least */
        else
            run_one();
        if (i % 4 == 3 || i == ops - 1)
            check_random();
    }
    check_errors();
    size_t len = strlen(run.seeds_here);
    if (len + 24 < sizeof(run.seeds_here))
        snprintf(run.seeds_here + len, sizeof(run.seeds_here) - len, "%s%llu", len ? " " : "",
                 (unsigned long long)seed);
}

/* Lets the first live hold run out by itself (hold_seconds is 30 in
 * test-t), checking all the while: the slot is released, offered again or
 * free. */
static void let_a_hold_run_out(void)
{
    int64_t expiry = pgtest_long(&f.pg, "SELECT coalesce(extract(epoch FROM min(hold_expires_at)),"
                                        " 0)::bigint FROM slot WHERE status = 'held'");
    if (!expiry)
        return;
    note("waiting for the hold that runs out at %+llds", (long long)(expiry - wall_now()));
    long before = pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.expired'");
    while (wall_now() < expiry + 2 &&
           pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.expired'") ==
               before) {
        check_random();
        test_sleep_ms(1000); /* a time: the hold's, 30 s at most */
    }
    check_random();
}

/* Both processes end cleanly (under the sanitizers: no memory error). */
static void stop_cleanly(void)
{
    for (int c = 0; c < NCALLERS; c++)
        for (int p = 0; p < 2; p++) {
            snpclient_ws_close(callers[c].ws[p]);
            callers[c].ws[p] = NULL;
        }
    cr_assert_eq(snpd_proc_stop(&second, SIGTERM, 15000), 0, "process 2 did not end cleanly");
    second.pid = 0;
    cr_assert_eq(snpd_proc_stop(&f.snpd, SIGTERM, 15000), 0, "process 1 did not end cleanly");
    f.snpd.pid = 0;
}

static bool no_violation(void *arg)
{
    (void)arg;
    return run.violations == 0;
}

Test(capacity, random_operations_keep_the_answer_equal_to_the_count)
{
    const char *env_ops = getenv("SNP_CAPACITY_OPS");
    int ops = env_ops ? atoi(env_ops) : 40;
    int64_t t0 = test_now_ms();
    char seeds_run[512];
    /* At most 55 minutes: ctest's timeout is 70. */
    int nseeds = rng_run_seeds("SNP_CAPACITY", "1 2 3", 55, run_seed, no_violation, &ops, seeds_run,
                               sizeof(seeds_run));
    let_a_hold_run_out();
    double took = (double)(test_now_ms() - t0) / 1000;
    fprintf(stderr,
            "[capacity] 2 processes, %d seeds (%s) in %ld databases, %ld operations, %ld checks,"
            " %ld queries (%ld HTTP, %ld WebSocket), %ld HTTP/WebSocket pairs equal, %.1f s, %ld"
            " violations\n",
            nseeds, seeds_run, run.databases + 1, run.ops, run.checks,
            run.queries_http + run.queries_ws, run.queries_http, run.queries_ws, run.agreements,
            took, run.violations);
    fprintf(stderr,
            "[capacity] last database: %ld slots, %ld bookings, %ld holds, %ld run out, %ld"
            " releases recorded; checks repeated as the database moved: %ld; polls for the"
            " processes' memories: %ld\n",
            pgtest_long(&f.pg, "SELECT count(*) FROM slot"),
            pgtest_long(&f.pg, "SELECT count(*) FROM booking"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.made'"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'offer.expired'"),
            pgtest_long(&f.pg, "SELECT count(*) FROM event WHERE kind = 'slot.released'"),
            run.moved, run.sync_polls);
    fprintf(stderr,
            "[capacity] edges met: start = from %ld, start = to %ld (today %ld), release"
            " at from %ld, started but free %ld; %ld refusals and errors checked\n",
            run.edge_from, run.edge_to, run.edge_to_today, run.edge_release, run.started_free,
            run.errors_checked);
    cr_assert_eq(run.violations, 0, "%ld violations (see [capacity] VIOLATION lines)",
                 run.violations);
    stop_cleanly();
}

/* --- beyond the random run -------------------------------------------------------- */

/* The `nth` site (from 0) of territory `t` among sites[]. */
static int site_of(int t, int nth)
{
    for (int s = 0; s < nsites; s++)
        if (sites[s].terr == t && nth-- == 0)
            return s;
    cr_assert_fail("no site %d in %s", nth, terr[t].id);
    return -1;
}

/* More free slots than an array may hold (max_array_items): all counted,
 * the first 1000 by start listed, and `truncated` says so.  test-other's
 * SAS sees 401 slots of its own and, after them, 600 of its neighbour. */
Test(capacity, more_free_slots_than_a_list_holds)
{
    rng_seed(&rng, 1);
    first_process_only = true;
    enum { N = 1001, OWN = 401, PER_CALL = 500 };
    int64_t now = wall_now(), starts[N];
    for (int i = 0; i < N; i++)
        starts[i] = now + 600 + 120 * (int64_t)i; /* the last 33 hours ahead */
    int made = publish(site_of(T_OTHER, 0), 0, false, 0, 1u << 0, 0, NULL, starts, OWN);
    for (int i = OWN; i < N; i += PER_CALL)
        made += publish(site_of(T_MAIN, 0), 0, false, 0, 1u << 0, 0, NULL, starts + i,
                        N - i < PER_CALL ? N - i : PER_CALL);
    cr_assert_eq(made, N);
    for (int transport = 0; transport < 2; transport++) {
        struct query q = {.caller = C_O_SAS, .ws = transport, .horizon = 4, .commune = -1};
        query_send(&q);
        cr_assert_eq(q.status, 200);
        cr_expect_eq(num(q.data, "total"), N);
        cr_expect_eq(num(fix_json_at(q.data, "by_audience"), "sas"), N);
        json_t *list = json_object_get(q.data, "slots");
        cr_expect_eq(json_array_size(list), 1000, "%zu slots listed", json_array_size(list));
        cr_expect(json_is_true(json_object_get(q.data, "truncated")));
        for (size_t i = 0; i < json_array_size(list); i++)
            cr_expect_eq(model_slot(num(json_array_get(list, i), "slot_id"))->start, starts[i],
                         "slot %zu of the list is not the %zuth by start", i, i + 1);
        json_decref(q.data);
    }
    struct query q = {.caller = C_ADMIN, .horizon = 4, .commune = -1};
    query_send(&q);
    cr_expect_eq(num(q.data, "total"), N - OWN);
    cr_expect_null(json_object_get(q.data, "slots"), "an admin gets the counts only");
    cr_expect_null(json_object_get(q.data, "truncated"));
    json_decref(q.data);
    /* The same through the random test's count, on both processes. */
    first_process_only = false;
    struct query qs[4];
    for (int i = 0; i < 4; i++)
        qs[i] = (struct query){.caller = i < 2 ? C_O_SAS : C_DESK,
                               .process = i % 2,
                               .ws = i / 2,
                               .horizon = 4,
                               .commune = -1};
    check(qs, 4, NULL);
    cr_assert_eq(run.violations, 0, "see the [capacity] VIOLATION lines");
    stop_cleanly();
}

/* --- where snpd departed from the declaration ------------------------------------
 *
 * Found by the random test above when it was written; each test below is
 * the minimal reproduction, kept as a regression test. */

/* capacity_by_audience: "Free slot counts by audience; a slot open to
 * several audiences counts once in each", its `sas` member "Open to the
 * SAS."; the audience type: "public (any requester, and patients
 * directly)".  A slot published for `public` only is open to the SAS (snpd
 * offers it to SAS requests, match_slot_open_to; its FHIR search exposes it
 * to the SAS platform, docs/fhir.md "Slot types"), yet capacity.query counted
 * it under `public` alone: by_audience.sas 0 where 1 is expected, the same
 * for emergency, pharmacy, professional and desk, while a released slot
 * counted under all six.  dispatch_reads.c now counts a slot under each
 * audience match_slot_open_to opens it to. */
Test(capacity, a_public_slot_counts_for_every_requester)
{
    rng_seed(&rng, 1);
    first_process_only = true;
    int64_t start = wall_now() + 3600;
    cr_assert_eq(publish(site_of(T_MAIN, 0), 0, false, 0, 1u << AUD_PUBLIC_BIT, 0, NULL, &start, 1),
                 1);
    struct query q = {.caller = C_SAS, .horizon = 1, .commune = -1};
    query_send(&q);
    cr_assert_eq(q.status, 200);
    json_t *by = json_object_get(q.data, "by_audience");
    cr_expect_eq(num(q.data, "total"), 1);
    for (int a = 0; a < NAUD; a++)
        cr_expect_eq(num(by, audiences[a]), 1,
                     "a slot published for the public is open to every requester kind:"
                     " by_audience.%s is %lld, 1 expected",
                     audiences[a], (long long)num(by, audiences[a]));
    json_decref(q.data);
}

/* capacity.query's `slots`: "For sas and desk only: the free slots, by
 * start."  For a territory that lists neighbours, snpd listed its own free
 * slots by start, then each neighbour's by start: test-other's SAS got its
 * own slot 3 hours ahead before test-t's 1 hour ahead.  The territories'
 * slots are now walked together by start. */
Test(capacity, a_neighbours_slots_are_listed_by_start)
{
    rng_seed(&rng, 1);
    first_process_only = true;
    int64_t now = wall_now(), later = now + 3 * 3600, sooner = now + 3600;
    cr_assert_eq(publish(site_of(T_OTHER, 0), 0, false, 0, 1u << 0, 0, NULL, &later, 1), 1);
    cr_assert_eq(publish(site_of(T_MAIN, 0), 0, false, 0, 1u << 0, 0, NULL, &sooner, 1), 1);
    struct query q = {.caller = C_O_SAS, .horizon = 1, .commune = -1};
    query_send(&q);
    cr_assert_eq(q.status, 200);
    json_t *list = json_object_get(q.data, "slots");
    cr_assert_eq(json_array_size(list), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct mslot *s = model_slot(num(json_array_get(list, i), "slot_id"));
        cr_expect_eq(s->start, i == 0 ? sooner : later,
                     "slot %zu of the list starts %+llds from now: not by start", i,
                     (long long)(s->start - now));
    }
    json_decref(q.data);
}
