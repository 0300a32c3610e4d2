/* The declared indicators and the data protection jobs, on a real
 * PostgreSQL: a month of activity (October 2026, with its 25-hour day) is
 * generated through the real event-producing SQL functions, the test keeps
 * its own model of what it did, computes every indicator from that model and
 * compares with what the indicator functions read from the event log; then
 * extractions (CSV, JSON, HTML, participation statement) through
 * indicators_command() are checked for byte-identical reproducibility,
 * masking and the absence of patient identity; the audit, the identity
 * erasure and the audit purge through protection_run(); the append-only
 * guards.
 *
 * The clock.  The dispatch functions read now() (a slot can only be held
 * while its start is ahead, an outcome only after it), and the event log
 * stamps clock_timestamp().  To replay a past month, the test installs in its
 * throwaway database a schema snp_testclock whose now() and clock_timestamp()
 * return the session setting snp.test_now (or the real time when it is
 * unset), puts that schema before pg_catalog in the session's search_path,
 * and points the timestamp column defaults (event.at, audit.at,
 * request.created_at, slot.published_at, booking.booked_at) at it.  The
 * production functions run unchanged: their now() merely resolves to the test
 * clock.  Connections opened by the code under test (indicators_command,
 * protection_run) get the same clock through their connection string's
 * options when they need it.
 *
 * With SNP_TEST_KEEP_DB set, the month's database and output files are kept
 * (their names are printed) for investigating a failure.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "base/timeutil.h"
#include "dispatcher/commands/indicators.h"
#include "dispatcher/jobs/protection.h"
#include "protocol/codec.h"
#include "tests/support/fixture.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static struct fixture f;
static const struct timeutil_zone *paris;

/* --- database helpers --------------------------------------------------------------- */

static PGresult *sqlp(const char *sql, int n, const char *const *params)
{
    return fix_sql(&f, sql, n, params);
}

static long long sql_ll(const char *sql, int n, const char *const *params)
{
    return fix_sql_ll(&f, sql, n, params);
}

static void clock_at(int64_t t)
{
    fix_clock_at(&f, t);
}

/* The fixture's connection string with the test clock at `now` (for the
 * connections the code under test opens). */
static void conninfo_at(const char *now, char *out, size_t n)
{
    snprintf(out, n,
             "%s options='-c snp.test_now=%s -c search_path=snp_testclock,pg_catalog,public'",
             f.pg.conninfo, now);
}

/* --- calendar ----------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The local calendar day of an instant, as days since 1970-01-01. */
static int64_t local_day(int64_t t)
{
    struct tm tm;
    cr_assert(timeutil_to_local(paris, t, &tm));
    return days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int64_t local_time(int64_t day, int minute)
{
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_min = minute};
    int64_t t;
    cr_assert(timeutil_from_local(paris, &tm, &t));
    return t;
}

static int weekday(int64_t day) /* 0 Monday .. 6 Sunday */
{
    return (int)((day + 3) % 7);
}

static void iso_week(int64_t day, char out[12])
{
    int64_t thursday = day - weekday(day) + 3;
    int y, m, d;
    civil_from_days(thursday, &y, &m, &d);
    snprintf(out, 12, "%04d-W%02d", y, (int)((thursday - days_from_civil(y, 1, 1)) / 7 + 1));
}

static int64_t utc(const char *s)
{
    int64_t t;
    cr_assert(timeutil_parse_rfc3339(s, &t), "bad time %s", s);
    return t;
}

/* --- the model ---------------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

enum { NGP = 8, NSITES = 10 };

static const char *const gp_rpps[NGP] = {FIX_GP1,       FIX_GP2,       "10999900037",
                                         "10999900045", "10999900052", "10999900060",
                                         "10999900078", "10999900086"};
static const char *const external_mt = "10999999994";

/* Model sites: 0 and 1 are the fixture's practices of GP1 and GP2, 2 its
 * CSNP, 3 a teleconsultation service (GP3), 4..9 the practices of GP3..GP8. */
static int64_t site_id[NSITES];
static const char *const site_kind[NSITES] = {
    "practice", "practice", "csnp",     "teleconsultation", "practice",
    "practice", "practice", "practice", "practice",         "practice"};

/* The keys of the duty_status breakdown (0023), in the order of their labels. */
enum {
    DUTY_INDEPENDENT,
    DUTY_LOCUM,
    DUTY_RETIRED,
    DUTY_RESIDENT,
    DUTY_NOT_STATED,
    DUTY_UNFILLED,
    NDUTY
};
static const char *const duty_keys[NDUTY] = {"independent", "locum",      "retired",
                                             "resident",    "not_stated", "unfilled"};

static const struct schedule {
    int gp; /* -1: the CSNP's shift, no practitioner */
    int site;
    unsigned days; /* bit 0 Monday .. bit 6 Sunday */
    int hour, count, duration;
    const char *mode;
    int release;
} schedules[] = {
    {0, 0, 0x1f, 9, 9, 20, "office", 0},
    {1, 1, 0x15, 14, 9, 20, "office", 0},
    {2, 3, 0x0a, 18, 8, 15, "teleconsultation", 0},
    {2, 4, 0x20, 9, 9, 20, "office", 0},
    {3, 5, 0x1f, 17, 6, 20, "office", 0},
    {4, 6, 0x0a, 8, 4, 30, "office", 0},
    {4, 6, 0x04, 14, 4, 30, "home", 0},
    {5, 7, 0x7f, 12, 6, 20, "office", 0},
    {6, 8, 0x3f, 10, 8, 15, "office", 120},
    {7, 9, 0x04, 16, 3, 20, "office", 0},
    {-1, 2, 0x7f, 8, 48, 15, "office", 0},
};

enum slot_state { FREE, HELD, BOOKED, WITHDRAWN };

struct mslot {
    int64_t id;
    int gp, site;
    int64_t start;
    int duration;
    const char *mode;
    int release;
    bool probe; /* kept for the probe requests */
    enum slot_state state;
    int booked_by; /* request index of the live booking, -1 */
};

enum fate { F_BOOKED, F_CANCELLED, F_UNSERVED };

enum source { S_PHARMACY, S_EMERGENCY, S_SAS, S_PROFESSIONAL, S_DESK, NSOURCES };
static const char *const source_name[NSOURCES] = {"pharmacy", "emergency", "sas", "professional",
                                                  "desk"};
static int64_t org_id[NSOURCES];

static const char *const motifs[] = {"fever",     "ent",  "respiratory",   "urinary",
                                     "digestive", "skin", "minor_trauma",  "musculoskeletal",
                                     "headache",  "eye",  "psychological", "other"};
static const char *const communes[] = {"35236", "56001", "35013", "44185", "35238"};
static const char *const urgencies[] = {"same_day", "24h", "48h"};

struct mreq {
    int64_t id;
    int64_t created, deadline;
    int source, urgency;
    const char *motif, *commune;
    int age;
    bool has_mt, ald, c2s, tag70;
    const char *mt_rpps;
    int probe_slot; /* forced slot (probes), -1 */
    enum fate fate;
    const char *cancel_reason;
    int slot; /* live booking's slot, -1 */
    int64_t booking_id;
    const char *outcome;
    int64_t seen_at; /* when an outcome of a patient seen was first reported, or 0 */
    int offers, declined, expired;
    bool second_pharmacy; /* made by the territory's second pharmacy */
};

/* A second pharmacy, which makes three of October's requests: a small
 * cell of the breakdown per organisation. */
static int64_t second_pharmacy_id;

/* The organisation that makes request `r`. */
static int64_t request_org(const struct mreq *r)
{
    return r->second_pharmacy ? second_pharmacy_id : org_id[r->source];
}

static struct mslot *slots;
static size_t nslots;
static struct mreq *reqs;
static size_t nreqs;
static int64_t period_from, period_to;

static int cmp_slot(const void *a, const void *b)
{
    const struct mslot *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->site != y->site ? x->site - y->site : x->gp - y->gp;
}

static int cmp_req(const void *a, const void *b)
{
    const struct mreq *x = a, *y = b;
    return x->created < y->created ? -1 : x->created > y->created;
}

static void add_slot(int gp, int site, int64_t start, int duration, const char *mode, int release,
                     bool probe)
{
    slots = realloc(slots, (nslots + 1) * sizeof(*slots));
    cr_assert(slots);
    slots[nslots++] = (struct mslot){.gp = gp,
                                     .site = site,
                                     .start = start,
                                     .duration = duration,
                                     .mode = mode,
                                     .release = release,
                                     .probe = probe,
                                     .state = FREE,
                                     .booked_by = -1};
}

static int find_slot(int site, int64_t start)
{
    for (size_t i = 0; i < nslots; i++)
        if (slots[i].site == site && slots[i].start == start)
            return (int)i;
    cr_assert_fail("no model slot at site %d starting %lld", site, (long long)start);
    return -1;
}

/* --- reference data ----------------------------------------------------------------- */

static void add_reference_data(void)
{
    PQclear(pgtest_exec(
        &f.pg, "INSERT INTO commune VALUES ('35013', 'Bains-sur-Oust', '35600', 47.7036, -2.0705),"
               " ('44185', 'Saint-Nicolas-de-Redon', '44460', 47.6434, -2.0631),"
               " ('35219', 'Pipriac', '35550', 47.8095, -1.9464);"
               "INSERT INTO territory_commune VALUES ('test-t', '35013'), ('test-t', '44185'),"
               " ('test-t', '35219');"
               "INSERT INTO practitioner (rpps, family_name, given_name) VALUES"
               " ('10999900037', 'Bernard', 'Claire'), ('10999900045', 'Guillou', 'Marc'),"
               " ('10999900052', 'Hamon', 'Sophie'), ('10999900060', 'Jaouen', 'Luc'),"
               " ('10999900078', 'Kerleau', 'Nina'), ('10999900086', 'Lucas', 'Paul');"
               "INSERT INTO territory_practitioner SELECT 'test-t', rpps FROM practitioner"
               " WHERE rpps NOT IN ('10999900011', '10999900029');"
               "INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude,"
               " longitude) VALUES"
               " ('test-t', 'teleconsultation', 'Téléconsultation CPTS', '1 place', '35236', 47.65,"
               "  -2.08),"
               " ('test-t', 'practice', 'Cabinet 3', '3 rue', '35236', 47.65, -2.08),"
               " ('test-t', 'practice', 'Cabinet 4', '4 rue', '35013', 47.70, -2.07),"
               " ('test-t', 'practice', 'Cabinet 5', '5 rue', '44185', 47.64, -2.06),"
               " ('test-t', 'practice', 'Cabinet 6', '6 rue', '56001', 47.64, -2.16),"
               " ('test-t', 'practice', 'Cabinet 7', '7 rue', '35236', 47.65, -2.08),"
               " ('test-t', 'practice', 'Cabinet 8', '8 rue', '35219', 47.81, -1.95);"
               "INSERT INTO practitioner_site SELECT '10999900037', id FROM site"
               " WHERE name IN ('Téléconsultation CPTS', 'Cabinet 3');"
               "INSERT INTO practitioner_site SELECT p.rpps, s.id FROM (VALUES"
               " ('10999900045', 'Cabinet 4'), ('10999900052', 'Cabinet 5'),"
               " ('10999900060', 'Cabinet 6'), ('10999900078', 'Cabinet 7'),"
               " ('10999900086', 'Cabinet 8')) p (rpps, name) JOIN site s ON s.name = p.name;"
               "INSERT INTO organisation (territory_id, kind, name, rpps, commune_insee) VALUES"
               " ('test-t', 'professional', 'Cabinet infirmier', '10999900094', '35236');"
               "INSERT INTO indicator_target (territory_id, code, period_kind, target) VALUES"
               " ('test-t', 'requests_served_rate', 'month', 80),"
               " ('test-t', 'delay_median', 'month', 240),"
               " ('test-t', 'slots_published', 'month', 2000);"));
    site_id[0] = f.site_gp1;
    site_id[1] = f.site_gp2;
    site_id[2] = f.site_csnp;
    static const char *const names[] = {"Téléconsultation CPTS",
                                        "Cabinet 3",
                                        "Cabinet 4",
                                        "Cabinet 5",
                                        "Cabinet 6",
                                        "Cabinet 7",
                                        "Cabinet 8"};
    for (int i = 3; i < NSITES; i++) {
        const char *p[] = {names[i - 3]};
        site_id[i] = sql_ll("SELECT id FROM site WHERE name = $1", 1, p);
    }
    for (int s = 0; s < NSOURCES; s++) {
        const char *p[] = {source_name[s]};
        org_id[s] = sql_ll("SELECT id FROM organisation WHERE territory_id = 'test-t'"
                           " AND kind = $1",
                           1, p);
    }
    second_pharmacy_id =
        sql_ll("INSERT INTO organisation (territory_id, kind, name, finess, commune_insee)"
               " VALUES ('test-t', 'pharmacy', 'Pharmacie de la Gare', '350990065', '56001')"
               " RETURNING id",
               0, NULL);
}

/* --- generating the month ----------------------------------------------------------- */

/* The requests the test places on purpose: clock change, day and period
 * boundaries, exact 24 h and 48 h delays, a booking after its deadline. */
static const struct probe {
    const char *created, *slot;
    int urgency, source;
} probes[] = {
    {"2026-10-24T18:00:00Z", "2026-10-25T18:30:00Z", 2, S_SAS},       /* 24.5 h across the change */
    {"2026-10-25T22:30:00Z", "2026-10-25T22:50:00Z", 0, S_PHARMACY},  /* 23:30 CET, same day */
    {"2026-10-25T22:35:00Z", "2026-10-25T23:10:00Z", 1, S_PHARMACY},  /* next local day */
    {"2026-10-24T22:30:00Z", "2026-10-25T07:00:00Z", 0, S_EMERGENCY}, /* 00:30 CEST on the 25th */
    {"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", 0, S_DESK},      /* 02:30 CEST -> 02:30 CET */
    {"2026-09-30T22:00:00Z", "2026-10-01T06:00:00Z", 1, S_SAS},       /* first minute of October */
    {"2026-09-30T21:59:00Z", "2026-10-01T06:20:00Z", 1, S_SAS},       /* last minute of September */
    {"2026-10-31T22:59:00Z", "2026-11-01T09:00:00Z", 2, S_SAS},       /* last minute of October */
    {"2026-10-31T23:00:00Z", "2026-11-01T09:30:00Z", 2, S_PHARMACY},  /* first of November */
    {"2026-10-20T08:00:00Z", "2026-10-21T08:00:00Z", 0, S_PHARMACY},  /* after its deadline, 24 h */
    {"2026-10-14T08:00:00Z", "2026-10-16T08:00:00Z", 2, S_SAS},       /* exactly 48 h */
};
/* Slots on the period's edges, left free. */
static const char *const edge_slots[] = {"2026-09-30T21:40:00Z", "2026-09-30T22:00:00Z",
                                         "2026-10-31T22:40:00Z", "2026-10-31T23:00:00Z"};

static void plan_slots(void)
{
    int64_t first = days_from_civil(2026, 9, 28), last = days_from_civil(2026, 11, 2);
    for (int64_t day = first; day <= last; day++) {
        for (size_t s = 0; s < sizeof(schedules) / sizeof(schedules[0]); s++) {
            const struct schedule *sc = &schedules[s];
            if (!(sc->days & (1u << weekday(day))))
                continue;
            for (int k = 0; k < sc->count; k++)
                add_slot(sc->gp, sc->site, local_time(day, sc->hour * 60 + k * sc->duration),
                         sc->duration, sc->mode, sc->release, false);
        }
    }
    /* GP8 reaches 2 hours in week 42 only. */
    for (int k = 0; k < 4; k++)
        add_slot(7, 9, local_time(days_from_civil(2026, 10, 16), 14 * 60 + 20 * k), 20, "office", 0,
                 false);
    for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++)
        add_slot(2, 3, utc(probes[p].slot), 20, "teleconsultation", 0, true);
    for (size_t e = 0; e < sizeof(edge_slots) / sizeof(edge_slots[0]); e++)
        add_slot(2, 3, utc(edge_slots[e]), 20, "teleconsultation", 0, true);
    qsort(slots, nslots, sizeof(*slots), cmp_slot);
}

static const char *const all_audiences = "[\"pharmacy\", \"emergency\", \"sas\", \"professional\", "
                                         "\"desk\"]";

static void publish_slots(void)
{
    clock_at(utc("2026-09-25T08:00:00Z"));
    /* One call per site and practitioner, as a practitioner's agenda would. */
    for (int site = 0; site < NSITES; site++) {
        for (int gp = -1; gp < NGP; gp++) {
            json_t *arr = json_array();
            for (size_t i = 0; i < nslots; i++) {
                if (slots[i].site != site || slots[i].gp != gp)
                    continue;
                char ts[32];
                fix_iso_utc(slots[i].start, ts);
                json_t *o = json_pack(
                    "{s:s, s:i, s:s, s:o}", "start", ts, "duration_min", slots[i].duration, "mode",
                    slots[i].mode, "audience",
                    json_loads(slots[i].release ? "[\"sas\", \"emergency\"]" : all_audiences, 0,
                               NULL));
                if (slots[i].release)
                    json_object_set_new(o, "release_minutes", json_integer(slots[i].release));
                json_array_append_new(arr, o);
            }
            if (json_array_size(arr) == 0) {
                json_decref(arr);
                continue;
            }
            char *text = json_dumps(arr, JSON_COMPACT);
            char sid[24];
            snprintf(sid, sizeof(sid), "%lld", (long long)site_id[site]);
            const char *p[] = {"test-t", sid, gp >= 0 ? gp_rpps[gp] : NULL, "token:gp", text};
            PGresult *r = sqlp("SELECT id, extract(epoch FROM starts_at)::bigint"
                               " FROM snp_slots_publish($1, $2::bigint, $3, $4, $5::jsonb)",
                               5, p);
            cr_assert_eq((size_t)PQntuples(r), json_array_size(arr));
            for (int i = 0; i < PQntuples(r); i++)
                slots[find_slot(site, atoll(PQgetvalue(r, i, 1)))].id = atoll(PQgetvalue(r, i, 0));
            PQclear(r);
            free(text);
            json_decref(arr);
        }
    }
    /* About 3 % of the practitioners' ordinary slots are withdrawn. */
    clock_at(utc("2026-09-26T08:00:00Z"));
    for (size_t i = 0; i < nslots; i++) {
        if (slots[i].gp < 0 || slots[i].probe || rnd(100) >= 3)
            continue;
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)slots[i].id);
        const char *p[] = {id, "test-t", gp_rpps[slots[i].gp], "token:gp"};
        PQclear(sqlp("SELECT id FROM snp_slot_withdraw($1::bigint, $2, $3, $4)", 4, p));
        slots[i].state = WITHDRAWN;
    }
}

static void plan_requests(void)
{
    size_t cap = 4096;
    reqs = calloc(cap, sizeof(*reqs));
    cr_assert(reqs);
    for (int64_t day = days_from_civil(2026, 10, 1); day <= days_from_civil(2026, 10, 31); day++) {
        int n = 60 + (int)rnd(21);
        for (int k = 0; k < n; k++) {
            cr_assert(nreqs < cap);
            struct mreq *r = &reqs[nreqs++];
            int minute = rnd(100) < 5 ? (int)rnd(7 * 60) : 7 * 60 + (int)rnd(15 * 60);
            r->created = local_time(day, minute);
            uint32_t s = rnd(100);
            r->source = s < 30   ? S_PHARMACY
                        : s < 45 ? S_EMERGENCY
                        : s < 75 ? S_SAS
                        : s < 90 ? S_PROFESSIONAL
                                 : S_DESK;
            uint32_t u = rnd(100);
            r->urgency = u < 45 ? 0 : u < 85 ? 1 : 2;
            uint32_t m = rnd(100);
            r->motif = m < 2 ? "eye" : m < 3 ? "psychological" : motifs[rnd(12)];
            uint32_t c = rnd(100);
            r->commune = communes[c < 45 ? 0 : c < 70 ? 1 : c < 85 ? 2 : c < 95 ? 3 : 4];
            r->age = (int)rnd(96);
            r->ald = rnd(100) < 20;
            r->c2s = rnd(100) < 12;
            r->tag70 = r->age >= 70 && rnd(100) < 95;
            r->has_mt = rnd(100) < 75;
            r->mt_rpps = !r->has_mt ? NULL : rnd(100) < 40 ? gp_rpps[rnd(NGP)] : external_mt;
            r->probe_slot = -1;
        }
    }
    for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
        struct mreq *r = &reqs[nreqs++];
        memset(r, 0, sizeof(*r));
        r->created = utc(probes[p].created);
        r->urgency = probes[p].urgency;
        r->source = probes[p].source;
        r->motif = "fever";
        r->commune = "35236";
        r->age = 40;
        r->probe_slot = find_slot(3, utc(probes[p].slot));
    }
    qsort(reqs, nreqs, sizeof(*reqs), cmp_req);
    /* Three requests of the second pharmacy, in October. */
    for (size_t i = 0, n = 0; i < nreqs && n < 3; i++)
        if (reqs[i].source == S_PHARMACY && reqs[i].probe_slot < 0 &&
            reqs[i].created >= utc("2026-10-05T00:00:00Z")) {
            reqs[i].second_pharmacy = true;
            n++;
        }
    /* Three patients from a small commune: a cell that must be masked. */
    reqs[100].commune = reqs[900].commune = reqs[1700].commune = "35219";
    for (size_t i = 0; i < nreqs; i++) {
        reqs[i].deadline =
            timeutil_deadline(paris, reqs[i].created, (enum timeutil_urgency)reqs[i].urgency);
        reqs[i].slot = -1;
    }
}

/* The earliest free ordinary slot starting in [from, to], other than
 * `except`; for `prefer_gp1`, GP1's first if it has one. */
static int pick(int64_t from, int64_t to, int except, bool prefer_gp1)
{
    for (int pass = prefer_gp1 ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < nslots; i++) {
            const struct mslot *s = &slots[i];
            if (s->start < from)
                continue;
            if (s->start > to)
                break;
            if (s->state == FREE && !s->probe && !s->release && (int)i != except &&
                (pass == 1 || s->gp == 0))
                return (int)i;
        }
    }
    return -1;
}

static int64_t next_housekeeping;

/* Runs housekeeping at every full hour up to `t`, as snpd would. */
static void housekeeping_until(int64_t t)
{
    while (next_housekeeping <= t) {
        clock_at(next_housekeeping);
        PQclear(sqlp("SELECT count(*) FROM snp_housekeeping('system')", 0, NULL));
        next_housekeeping += 3600;
    }
}

static void id_text(int64_t v, char out[24])
{
    snprintf(out, 24, "%lld", (long long)v);
}

static void create_request(size_t i, int hold)
{
    struct mreq *r = &reqs[i];
    char ts[32], ref[32], body_slot[24], org[24];
    fix_iso_utc(r->deadline, ts);
    snprintf(ref, sizeof(ref), "gen-%zu", i);
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:s, s:[s], s:s, s:i, s:i, s:s, s:b, s:o, s:o}", "client_ref", ref,
        "motif", r->motif, "urgency", urgencies[r->urgency], "deadline", ts, "modes", "office",
        "patient_commune", r->commune, "patient_birth_year", 2026 - r->age, "patient_age", r->age,
        "patient_sex", rnd(2) ? "female" : "male", "has_mt", r->has_mt, "mt_rpps",
        r->mt_rpps ? json_string(r->mt_rpps) : json_null(), "priority_groups", json_array());
    json_t *groups = json_object_get(body, "priority_groups");
    if (r->ald)
        json_array_append_new(groups, json_string("ald"));
    if (r->c2s)
        json_array_append_new(groups, json_string("c2s"));
    if (r->tag70)
        json_array_append_new(groups, json_string("aged_70_plus"));
    char name[32], phone[16], text[48];
    snprintf(name, sizeof(name), "Patient %04zu", i);
    snprintf(phone, sizeof(phone), "0699%06zu", i);
    snprintf(text, sizeof(text), "texte libre %04zu", i);
    json_t *identity = json_pack("{s:s, s:s, s:s, s:s}", "display_name", name, "phone", phone,
                                 "birth_date", "1970-01-15", "motif_text", text);
    char *b = json_dumps(body, JSON_COMPACT), *id = json_dumps(identity, JSON_COMPACT);
    id_text(request_org(r), org);
    if (hold >= 0)
        id_text(slots[hold].id, body_slot);
    const char *p[] = {"test-t", org, "token:requester", b, id, hold >= 0 ? body_slot : NULL};
    clock_at(r->created);
    PGresult *res = sqlp("SELECT request_id, status, coalesce(held_slot, 0)"
                         " FROM snp_request_create($1, $2::bigint, $3, $4::jsonb, $5::jsonb,"
                         " $6::bigint, 180)",
                         6, p);
    r->id = atoll(PQgetvalue(res, 0, 0));
    cr_assert_str_eq(PQgetvalue(res, 0, 1), hold >= 0 ? "offered" : "waiting");
    if (hold >= 0) {
        cr_assert_eq(atoll(PQgetvalue(res, 0, 2)), slots[hold].id);
        slots[hold].state = HELD;
        r->offers++;
    }
    PQclear(res);
    free(b);
    free(id);
    json_decref(body);
    json_decref(identity);
}

/* Releases the held slot `from` for `reason` and holds `next` (or none). */
static void offer_move(size_t i, int from, const char *reason, int next, int64_t at)
{
    struct mreq *r = &reqs[i];
    char rid[24], sfrom[24], snext[24];
    id_text(r->id, rid);
    if (from >= 0)
        id_text(slots[from].id, sfrom);
    if (next >= 0)
        id_text(slots[next].id, snext);
    const char *p[] = {rid, from >= 0 ? sfrom : NULL, reason, next >= 0 ? snext : NULL,
                       "token:requester"};
    clock_at(at);
    PGresult *res = sqlp("SELECT status, coalesce(held_slot, 0)"
                         " FROM snp_offer_move($1::bigint, $2::bigint, $3, $4::bigint, 180, $5)",
                         5, p);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), next >= 0 ? "offered" : "waiting");
    PQclear(res);
    if (from >= 0) {
        slots[from].state = FREE;
        if (strcmp(reason, "declined") == 0)
            r->declined++;
        else if (strcmp(reason, "expired") == 0)
            r->expired++;
    }
    if (next >= 0) {
        slots[next].state = HELD;
        r->offers++;
    }
}

/* Whether request `i` may book free slot `s` instead of its offer at `at`
 * (mode, audience, restrictions, window: the database's own check). */
static bool alternative_allowed(size_t i, int s, int64_t at)
{
    char rid[24], sid[24];
    id_text(reqs[i].id, rid);
    id_text(slots[s].id, sid);
    const char *p[] = {rid, sid};
    clock_at(at);
    return sql_ll("SELECT (snp_slot_refusal(r, s) IS NULL)::int FROM request r, slot s"
                  " WHERE r.id = $1::bigint AND s.id = $2::bigint",
                  2, p) == 1;
}

/* Confirms slot `s` (held for the request, or a free alternative, which
 * releases the held one, `held`). */
static void accept_offer(size_t i, int s, int held, int64_t at)
{
    struct mreq *r = &reqs[i];
    char rid[24], org[24], sid[24];
    id_text(r->id, rid);
    id_text(request_org(r), org);
    id_text(slots[s].id, sid);
    const char *p[] = {rid, org, sid, "token:requester"};
    clock_at(at);
    r->booking_id = sql_ll(
        "SELECT booking_id FROM snp_offer_accept($1::bigint, $2::bigint, $3::bigint, $4)", 4, p);
    if (held >= 0 && held != s)
        slots[held].state = FREE;
    slots[s].state = BOOKED;
    slots[s].booked_by = (int)i;
    r->slot = s;
    r->fate = F_BOOKED;
}

static void request_cancel(size_t i, const char *reason, int64_t at)
{
    struct mreq *r = &reqs[i];
    char rid[24], org[24];
    id_text(r->id, rid);
    id_text(request_org(r), org);
    const char *p[] = {rid, org, reason, "token:requester"};
    clock_at(at);
    PQclear(sqlp("SELECT 1 FROM snp_request_cancel($1::bigint, $2::bigint, $3, $4)", 4, p));
    if (r->slot >= 0) {
        slots[r->slot].state = FREE;
        slots[r->slot].booked_by = -1;
        r->slot = -1;
    }
    r->fate = F_CANCELLED;
    r->cancel_reason = reason;
}

/* The practitioner cancels the booking (the request waits again). */
static void practitioner_cancel(size_t i, int64_t at)
{
    struct mreq *r = &reqs[i];
    char bid[24];
    id_text(r->booking_id, bid);
    const char *p[] = {bid, "test-t", "practitioner_unavailable", "token:gp"};
    clock_at(at);
    PGresult *res = sqlp("SELECT request_status FROM snp_booking_cancel($1::bigint, $2, NULL,"
                         " $3, $4)",
                         4, p);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "waiting");
    PQclear(res);
    slots[r->slot].state = FREE;
    slots[r->slot].booked_by = -1;
    r->slot = -1;
    r->fate = F_UNSERVED; /* until rebooked */
}

static bool in_week42(int64_t t)
{
    int64_t d = local_day(t);
    return d >= days_from_civil(2026, 10, 12) && d <= days_from_civil(2026, 10, 18);
}

static void run_request(size_t i)
{
    struct mreq *r = &reqs[i];
    int64_t t = r->created;
    housekeeping_until(t);
    if (r->probe_slot >= 0) {
        create_request(i, r->probe_slot);
        accept_offer(i, r->probe_slot, r->probe_slot, t + 120);
        return;
    }
    uint32_t intent = rnd(100), sub = rnd(100);
    bool prefer = r->source == S_SAS && in_week42(t);
    int64_t from = t + 30 * 60;
    if (intent < 7) { /* left waiting: unserved at the deadline */
        create_request(i, -1);
        r->fate = F_UNSERVED;
        return;
    }
    if (intent < 11) { /* cancelled while waiting */
        static const char *const reasons[] = {"patient_seen_elsewhere", "patient_request",
                                              "duplicate", "other"};
        create_request(i, -1);
        request_cancel(i, reasons[rnd(4)], t + 300);
        return;
    }
    bool late = sub >= 95;
    int a = late ? pick(r->deadline + 1 > from ? r->deadline + 1 : from, r->deadline + 6 * 3600, -1,
                        false)
                 : pick(from, r->deadline, -1, prefer);
    if (a < 0) {
        create_request(i, -1);
        r->fate = F_UNSERVED;
        return;
    }
    create_request(i, a);
    if (sub < 10) { /* declined, then the next slot */
        int b = pick(from, r->deadline, a, prefer);
        offer_move(i, a, "declined", b, t + 60);
        if (b < 0) {
            r->fate = F_UNSERVED;
            return;
        }
        accept_offer(i, b, b, t + 120);
    } else if (sub < 15) { /* the hold ran out, then the next slot */
        int b = pick(from, r->deadline, a, prefer);
        offer_move(i, a, "expired", b, t + 181);
        if (b < 0) {
            r->fate = F_UNSERVED;
            return;
        }
        accept_offer(i, b, b, t + 240);
    } else if (sub < 20) { /* a free alternative instead of the held slot */
        int b = pick(from, r->deadline, a, prefer);
        if (b >= 0 && !alternative_allowed(i, b, t + 120))
            b = -1; /* snpd books only what it could have offered (0012) */
        accept_offer(i, b >= 0 ? b : a, a, t + 120);
    } else if (sub < 23 && r->urgency > 0) { /* the practitioner cancels; rebooked */
        accept_offer(i, a, a, t + 120);
        practitioner_cancel(i, t + 600);
        int c = pick(from, r->deadline, a, prefer);
        if (c < 0)
            return; /* waits; unserved at the deadline */
        offer_move(i, -1, "declined", c, t + 720);
        accept_offer(i, c, c, t + 780);
    } else if (sub < 30 && r->source == S_EMERGENCY) { /* the patient refuses the slip */
        accept_offer(i, a, a, t + 120);
        request_cancel(i, "patient_refused", t + 300);
    } else {
        accept_offer(i, a, a, t + 120);
    }
}

static int cmp_booked(const void *a, const void *b)
{
    const struct mreq *x = *(const struct mreq *const *)a, *y = *(const struct mreq *const *)b;
    int64_t sx = slots[x->slot].start, sy = slots[y->slot].start;
    return sx < sy ? -1 : sx > sy;
}

static void report_outcome(struct mreq *r, const char *outcome, int64_t at)
{
    char bid[24];
    id_text(r->booking_id, bid);
    const char *p[] = {bid, "test-t", outcome, "note confidentielle", "token:gp"};
    clock_at(at);
    PQclear(sqlp("SELECT id FROM snp_outcome_report($1::bigint, $2, NULL, $3, $4, 72, $5)", 5, p));
    bool seen = strcmp(outcome, "attended") == 0 || strcmp(outcome, "redirected_emergency") == 0 ||
                strcmp(outcome, "hospitalised") == 0;
    if (seen && r->seen_at == 0)
        r->seen_at = at;
    r->outcome = outcome;
}

static void report_outcomes(void)
{
    struct mreq **booked = calloc(nreqs, sizeof(*booked));
    size_t n = 0;
    for (size_t i = 0; i < nreqs; i++)
        if (reqs[i].fate == F_BOOKED)
            booked[n++] = &reqs[i];
    qsort(booked, n, sizeof(*booked), cmp_booked);
    for (size_t k = 0; k < n; k++) {
        struct mreq *r = booked[k];
        int64_t start = slots[r->slot].start;
        uint32_t o = rnd(100);
        if (o < 68) {
            report_outcome(r, "attended", start + 1800);
        } else if (o < 76) {
            report_outcome(r, "no_show", start + 1800);
        } else if (o < 79) {
            report_outcome(r, "redirected_emergency", start + 1800);
        } else if (o < 81) {
            report_outcome(r, "hospitalised", start + 1800);
        } else if (o < 83) {
            report_outcome(r, "cancelled_by_patient", start + 1800);
        } else if (o < 85) { /* corrected: the later report counts */
            report_outcome(r, "no_show", start + 1200);
            report_outcome(r, "attended", start + 3600);
        } /* else: never reported */
    }
    free(booked);
}

/* SAS calls (migration 0019): what the SAS regulators recorded. */
struct mcall {
    int64_t at;
    const char *outcome;
    int req; /* slot_request: index in reqs, else -1 */
};
static struct mcall *calls;
static size_t ncalls;
static const char *const call_outcomes[] = {"advice", "prescription", "slot_request", "sent_to_15",
                                            "other"};

static void record_call(int64_t at, const char *outcome, int req)
{
    calls = realloc(calls, (ncalls + 1) * sizeof(*calls));
    cr_assert(calls);
    calls[ncalls++] = (struct mcall){at, outcome, req};
    char org[24], rid[24];
    id_text(org_id[S_SAS], org);
    if (req >= 0)
        id_text(reqs[req].id, rid);
    const char *p[] = {org, outcome, req >= 0 ? rid : NULL};
    clock_at(at);
    PQclear(sqlp(
        "SELECT snp_call_record('test-t', $1::bigint, 'token:sas', $2, $3::bigint, NULL, NULL)", 3,
        p));
}

/* Every SAS request is the issue of a call recorded a minute after it (the
 * probes at the month's edges put some of these calls across them); the
 * other calls are spread over the month, with three sent to the 15 (a
 * small cell) and four at the edges.  Drawn after everything else, with the
 * generator's state put back, so that the rest of the month is the one it
 * was before calls existed. */
static void record_calls(void)
{
    uint64_t saved = rng_state;
    for (size_t i = 0; i < nreqs; i++)
        if (reqs[i].source == S_SAS)
            record_call(reqs[i].created + 60, "slot_request", (int)i);
    for (int64_t day = days_from_civil(2026, 10, 1); day <= days_from_civil(2026, 10, 31); day++) {
        int n = 25 + (int)rnd(15);
        for (int k = 0; k < n; k++) {
            uint32_t o = rnd(100);
            record_call(local_time(day, (int)rnd(24 * 60)),
                        o < 55   ? "advice"
                        : o < 80 ? "prescription"
                                 : "other",
                        -1);
        }
    }
    record_call(utc("2026-10-03T10:00:00Z"), "sent_to_15", -1);
    record_call(utc("2026-10-12T10:00:00Z"), "sent_to_15", -1);
    record_call(utc("2026-10-20T10:00:00Z"), "sent_to_15", -1);
    record_call(utc("2026-09-30T21:59:59Z"), "advice", -1); /* September */
    record_call(utc("2026-09-30T22:00:00Z"), "advice", -1); /* October */
    record_call(utc("2026-10-31T22:59:59Z"), "other", -1);  /* October */
    record_call(utc("2026-10-31T23:00:00Z"), "other", -1);  /* November */
    rng_state = saved;
}

static void generate_month(void)
{
    rng_state = 0x9E3779B97F4A7C15ULL;
    plan_slots();
    publish_slots();
    plan_requests();
    next_housekeeping = utc("2026-09-25T09:00:00Z");
    for (size_t i = 0; i < nreqs; i++)
        run_request(i);
    housekeeping_until(utc("2026-11-04T00:00:00Z"));
    /* Waiting requests ended unserved at their deadline. */
    for (size_t i = 0; i < nreqs; i++)
        if (reqs[i].fate == F_UNSERVED)
            cr_assert_eq(reqs[i].slot, -1);
    report_outcomes();
    record_calls();
}

/* --- expected values ---------------------------------------------------------------- */

struct cell {
    char code[48];
    char key[32];
    char raw[32]; /* the unmasked value as SQL writes it, "" when undefined */
    long long pc; /* patients described, -1 for none */
    bool breakdown;
    bool masked; /* hidden, as a small cell or as its complement */
    bool small;  /* hidden because it describes too few patients */
};

static struct cell *cells;
static size_t ncells;

static void cell_add(const char *code, const char *key, const char *raw, long long pc,
                     bool breakdown)
{
    cells = realloc(cells, (ncells + 1) * sizeof(*cells));
    cr_assert(cells);
    struct cell *c = &cells[ncells++];
    memset(c, 0, sizeof(*c));
    snprintf(c->code, sizeof(c->code), "%s", code);
    snprintf(c->key, sizeof(c->key), "%s", key);
    snprintf(c->raw, sizeof(c->raw), "%s", raw);
    c->pc = pc;
    c->breakdown = breakdown;
}

static const char *fmt_count(long long n)
{
    static char b[8][32];
    static int k;
    char *s = b[k++ % 8];
    snprintf(s, 32, "%lld", n);
    return s;
}

/* round(100 * num / den, 1), half away from zero, as numeric does. */
static const char *fmt_pct(long long num, long long den)
{
    static char b[8][32];
    static int k;
    char *s = b[k++ % 8];
    if (den == 0)
        return "";
    long long tenths = (2000 * num + den) / (2 * den);
    snprintf(s, 32, "%lld.%lld", tenths / 10, tenths % 10);
    return s;
}

static const char *fmt_hours(long long minutes)
{
    static char b[8][32];
    static int k;
    char *s = b[k++ % 8];
    long long h = (minutes * 200 + 60) / 120;
    snprintf(s, 32, "%lld.%02lld", h / 100, h % 100);
    return s;
}

static long long base(long long num, long long den)
{
    return num > 0 ? (num < den ? num : den) : den;
}

static void count(const char *code, long long n)
{
    cell_add(code, "", fmt_count(n), n, false);
}

static void rate(const char *code, long long num, long long den)
{
    cell_add(code, "", fmt_pct(num, den), base(num, den), false);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static bool in_period(int64_t t)
{
    return t >= period_from && t < period_to;
}

static bool served(const struct mreq *r)
{
    return r->fate == F_BOOKED;
}

static long long delay_min(const struct mreq *r)
{
    return (slots[r->slot].start - r->created) / 60;
}

static const char *slot_rpps(int s)
{
    return slots[s].gp >= 0 ? gp_rpps[slots[s].gp] : NULL;
}

static bool outcome_is(const struct mreq *r, const char *o)
{
    return served(r) && r->outcome && strcmp(r->outcome, o) == 0;
}

static bool in_group(const struct mreq *r, const char *g)
{
    if (strcmp(g, "ald") == 0)
        return r->ald;
    if (strcmp(g, "c2s") == 0)
        return r->c2s;
    return r->age >= 70 || r->tag70;
}

static void expect_requests(void)
{
    long long n = 0, nserved = 0, before = 0, same = 0, h24 = 0, h48 = 0, unserved = 0,
              cancelled = 0, offers = 0, offers_p = 0, declined = 0, declined_p = 0, expired = 0,
              expired_p = 0, outcomes = 0, no_shows = 0, redirected = 0, hospitalised = 0,
              by_patient = 0, ed = 0, ed_refused = 0, ed_served = 0, ed_honoured = 0,
              ed_avoided = 0, no_mt = 0, own_mt = 0;
    long long *delays = calloc(nreqs, sizeof(*delays));
    long long by_source[NSOURCES] = {0}, by_urgency[3] = {0}, by_motif[12] = {0};
    static const char *const reasons[] = {"patient_request",
                                          "patient_seen_elsewhere",
                                          "practitioner_unavailable",
                                          "patient_refused",
                                          "duplicate",
                                          "entered_in_error",
                                          "other"};
    long long by_reason[7] = {0};
    static const char *const groups[] = {"ald", "c2s", "aged_70_plus"};
    long long grp_req[3] = {0}, grp_served[3] = {0};
    for (size_t i = 0; i < nreqs; i++) {
        const struct mreq *r = &reqs[i];
        if (!in_period(r->created))
            continue;
        n++;
        by_source[r->source]++;
        by_urgency[r->urgency]++;
        for (int m = 0; m < 12; m++)
            by_motif[m] += strcmp(motifs[m], r->motif) == 0;
        offers += r->offers;
        offers_p += r->offers > 0;
        declined += r->declined;
        declined_p += r->declined > 0;
        expired += r->expired;
        expired_p += r->expired > 0;
        unserved += r->fate == F_UNSERVED;
        if (r->fate == F_CANCELLED) {
            cancelled++;
            for (int k = 0; k < 7; k++)
                by_reason[k] += strcmp(reasons[k], r->cancel_reason) == 0;
        }
        for (int g = 0; g < 3; g++) {
            grp_req[g] += in_group(r, groups[g]);
            grp_served[g] += in_group(r, groups[g]) && served(r);
        }
        bool emergency = r->source == S_EMERGENCY;
        ed += emergency;
        ed_refused +=
            emergency && r->fate == F_CANCELLED && strcmp(r->cancel_reason, "patient_refused") == 0;
        if (!served(r))
            continue;
        nserved++;
        long long d = delay_min(r);
        delays[nserved - 1] = d;
        before += slots[r->slot].start <= r->deadline;
        same += local_day(slots[r->slot].start) == local_day(r->created);
        h24 += d <= 1440;
        h48 += d <= 2880;
        outcomes += r->outcome != NULL;
        no_shows += outcome_is(r, "no_show");
        redirected += outcome_is(r, "redirected_emergency");
        hospitalised += outcome_is(r, "hospitalised");
        by_patient += outcome_is(r, "cancelled_by_patient");
        ed_served += emergency;
        ed_honoured +=
            emergency && (outcome_is(r, "attended") || outcome_is(r, "redirected_emergency") ||
                          outcome_is(r, "hospitalised"));
        ed_avoided += emergency && outcome_is(r, "attended");
        no_mt += !r->has_mt;
        own_mt += slot_rpps(r->slot) && r->mt_rpps && strcmp(slot_rpps(r->slot), r->mt_rpps) == 0;
    }
    qsort(delays, (size_t)nserved, sizeof(*delays), cmp_ll);
    /* percentile_disc: the first value whose position reaches the fraction,
     * the position computed in double precision as PostgreSQL does. */
    char median[32] = "", p90[32] = "";
    if (nserved > 0) {
        snprintf(median, sizeof(median), "%lld.0",
                 delays[(long long)ceil(0.5 * (double)nserved) - 1]);
        snprintf(p90, sizeof(p90), "%lld.0", delays[(long long)ceil(0.9 * (double)nserved) - 1]);
    }
    free(delays);
    count("requests", n);
    count("requests_cancelled", cancelled);
    count("requests_served", nserved);
    rate("requests_served_rate", nserved, n);
    count("served_before_deadline", before);
    rate("served_before_deadline_rate", before, n);
    count("seen_same_day", same);
    rate("seen_same_day_rate", same, n);
    count("seen_within_24h", h24);
    rate("seen_within_24h_rate", h24, n);
    count("seen_within_48h", h48);
    rate("seen_within_48h_rate", h48, n);
    cell_add("delay_median", "", median, nserved, false);
    cell_add("delay_p90", "", p90, nserved, false);
    count("requests_unserved", unserved);
    rate("requests_unserved_rate", unserved, n);
    cell_add("offers_made", "", fmt_count(offers), offers_p, false);
    cell_add("offers_declined", "", fmt_count(declined), declined_p, false);
    cell_add("holds_expired", "", fmt_count(expired), expired_p, false);
    count("outcomes_reported", outcomes);
    count("no_shows", no_shows);
    rate("no_show_rate", no_shows, outcomes);
    count("redirected_emergency", redirected);
    count("hospitalised", hospitalised);
    count("cancelled_by_patient", by_patient);
    count("ed_redirections", ed);
    count("ed_redirections_refused", ed_refused);
    count("ed_redirections_served", ed_served);
    count("ed_redirections_honoured", ed_honoured);
    count("ed_visits_avoided", ed_avoided);
    count("served_without_mt", no_mt);
    rate("served_without_mt_share", no_mt, nserved);
    count("seen_by_own_mt", own_mt);
    for (int s = 0; s < NSOURCES; s++)
        cell_add("requests_by_source", source_name[s], fmt_count(by_source[s]), by_source[s], true);
    for (int m = 0; m < 12; m++)
        cell_add("requests_by_motif", motifs[m], fmt_count(by_motif[m]), by_motif[m], true);
    for (int u = 0; u < 3; u++)
        cell_add("requests_by_urgency", urgencies[u], fmt_count(by_urgency[u]), by_urgency[u],
                 true);
    for (int k = 0; k < 7; k++)
        cell_add("requests_cancelled_by_reason", reasons[k], fmt_count(by_reason[k]), by_reason[k],
                 true);
    for (int g = 0; g < 3; g++) {
        cell_add("requests_priority_group", groups[g], fmt_count(grp_req[g]), grp_req[g], true);
        cell_add("served_priority_group", groups[g], fmt_count(grp_served[g]), grp_served[g], true);
    }
    static const char *const all_communes[] = {"35236", "56001", "35013",
                                               "44185", "35238", "35219"};
    for (int c = 0; c < 6; c++) {
        long long nr = 0, ns = 0;
        for (size_t i = 0; i < nreqs; i++) {
            if (!in_period(reqs[i].created) || strcmp(reqs[i].commune, all_communes[c]) != 0)
                continue;
            nr++;
            ns += served(&reqs[i]);
        }
        if (nr == 0)
            continue;
        cell_add("requests_by_commune", all_communes[c], fmt_count(nr), nr, true);
        cell_add("served_by_commune", all_communes[c], fmt_count(ns), ns, true);
    }
    /* Per organisation (migration 0020): one per kind, and the second
     * pharmacy. */
    for (int o = 0; o <= NSOURCES; o++) {
        int64_t id = o < NSOURCES ? org_id[o] : second_pharmacy_id;
        long long nr = 0, ns = 0;
        for (size_t i = 0; i < nreqs; i++) {
            if (!in_period(reqs[i].created) || request_org(&reqs[i]) != id)
                continue;
            nr++;
            ns += served(&reqs[i]);
        }
        if (nr == 0)
            continue;
        char key[24];
        id_text(id, key);
        cell_add("requests_by_organisation", key, fmt_count(nr), nr, true);
        cell_add("served_by_organisation", key, fmt_count(ns), ns, true);
    }
    /* Patients without a médecin traitant, per group of the MT indicators
     * (0020): aged 17 or more, ALD, C2S, aged 70 or more. */
    static const char *const mt_groups[] = {"aged_17_plus", "ald", "c2s", "aged_70_plus"};
    for (int g = 0; g < 4; g++) {
        long long nr = 0, ns = 0;
        for (size_t i = 0; i < nreqs; i++) {
            const struct mreq *r = &reqs[i];
            if (!in_period(r->created) || r->has_mt)
                continue;
            bool in = g == 0 ? r->age >= 17 : in_group(r, mt_groups[g]);
            nr += in;
            ns += in && served(r);
        }
        cell_add("requests_without_mt_by_group", mt_groups[g], fmt_count(nr), nr, true);
        cell_add("served_without_mt_by_group", mt_groups[g], fmt_count(ns), ns, true);
    }
}

/* Participation per practitioner and ISO week. */
struct gp_week {
    int gp;
    char week[12];
    int64_t monday;
    long long slots, minutes, sas;
};
static struct gp_week *weeks;
static size_t nweeks;

static bool sas_eligible(int s)
{
    int ri = slots[s].booked_by;
    if (ri < 0 || slots[s].gp < 0)
        return false;
    const struct mreq *r = &reqs[ri];
    return r->source == S_SAS && delay_min(r) <= 2880 &&
           !(r->mt_rpps && strcmp(r->mt_rpps, gp_rpps[slots[s].gp]) == 0) &&
           !outcome_is(r, "no_show") && !outcome_is(r, "cancelled_by_patient");
}

static void expect_participation(void)
{
    int64_t wfrom = local_time(days_from_civil(2026, 9, 28), 0);
    int64_t wto = local_time(days_from_civil(2026, 11, 2), 0);
    for (size_t i = 0; i < nslots; i++) {
        const struct mslot *s = &slots[i];
        if (s->gp < 0 || s->start < wfrom || s->start >= wto)
            continue;
        char week[12];
        iso_week(local_day(s->start), week);
        struct gp_week *w = NULL;
        for (size_t k = 0; k < nweeks && !w; k++)
            if (weeks[k].gp == s->gp && strcmp(weeks[k].week, week) == 0)
                w = &weeks[k];
        if (!w) {
            weeks = realloc(weeks, (nweeks + 1) * sizeof(*weeks));
            w = &weeks[nweeks++];
            memset(w, 0, sizeof(*w));
            w->gp = s->gp;
            snprintf(w->week, sizeof(w->week), "%s", week);
            w->monday = local_day(s->start) - weekday(local_day(s->start));
        }
        if (s->state != WITHDRAWN) {
            w->slots++;
            w->minutes += s->duration;
        }
        w->sas += sas_eligible((int)i);
    }
    long long with_slots = 0, met = 0, sas = 0, capped = 0;
    for (size_t k = 0; k < nweeks; k++) {
        with_slots += weeks[k].slots > 0;
        met += weeks[k].minutes >= 120;
        sas += weeks[k].sas;
        capped += weeks[k].sas < 20 ? weeks[k].sas : 20;
    }
    cell_add("gp_weeks_with_slots", "", fmt_count(with_slots), -1, false);
    cell_add("gp_weeks_2h", "", fmt_count(met), -1, false);
    count("sas_48h_consultations", sas);
    count("sas_48h_consultations_capped", capped);
}

static void expect_slots(void)
{
    static const char *const modes[] = {"office", "home", "teleconsultation"};
    static const char *const kinds[] = {"practice", "csnp", "teleconsultation"};
    long long n = 0, minutes = 0, withdrawn = 0, used = 0, released = 0;
    long long by_mode[3] = {0}, mode_min[3] = {0}, by_kind[3] = {0}, kind_min[3] = {0};
    bool gp_active[NGP] = {false};
    for (size_t i = 0; i < nslots; i++) {
        const struct mslot *s = &slots[i];
        if (!in_period(s->start))
            continue;
        n++;
        minutes += s->duration;
        withdrawn += s->state == WITHDRAWN;
        used += s->booked_by >= 0;
        released += s->release && s->state != WITHDRAWN;
        if (s->gp >= 0 && s->state != WITHDRAWN)
            gp_active[s->gp] = true;
        for (int m = 0; m < 3; m++)
            if (strcmp(modes[m], s->mode) == 0) {
                by_mode[m]++;
                mode_min[m] += s->duration;
            }
        for (int k = 0; k < 3; k++)
            if (strcmp(kinds[k], site_kind[s->site]) == 0) {
                by_kind[k]++;
                kind_min[k] += s->duration;
            }
    }
    long long gps = 0;
    for (int g = 0; g < NGP; g++)
        gps += gp_active[g];
    cell_add("slots_published", "", fmt_count(n), -1, false);
    cell_add("slot_hours_published", "", fmt_hours(minutes), -1, false);
    cell_add("slots_withdrawn", "", fmt_count(withdrawn), -1, false);
    count("slots_used", used);
    cell_add("slot_use_rate", "", fmt_pct(used, n - withdrawn), used, false);
    cell_add("slots_released", "", fmt_count(released), -1, false);
    cell_add("participating_gps", "", fmt_count(gps), -1, false);
    for (int m = 0; m < 3; m++) {
        cell_add("slots_published_by_mode", modes[m], fmt_count(by_mode[m]), -1, true);
        cell_add("slot_hours_by_mode", modes[m], fmt_hours(mode_min[m]), -1, true);
    }
    for (int k = 0; k < 3; k++) {
        cell_add("slots_published_by_site_kind", kinds[k], fmt_count(by_kind[k]), -1, true);
        cell_add("slot_hours_by_site_kind", kinds[k], fmt_hours(kind_min[k]), -1, true);
    }
    /* Per care centre (0020): each CSNP site that has slots in the period. */
    for (int site = 0; site < NSITES; site++) {
        if (strcmp(site_kind[site], "csnp") != 0)
            continue;
        long long cn = 0, cmin = 0, cused = 0;
        for (size_t i = 0; i < nslots; i++) {
            const struct mslot *sl = &slots[i];
            if (sl->site != site || !in_period(sl->start))
                continue;
            cn++;
            cmin += sl->duration;
            cused += sl->booked_by >= 0;
        }
        if (cn == 0)
            continue;
        char key[24];
        id_text(site_id[site], key);
        cell_add("slots_by_care_centre", key, fmt_count(cn), -1, true);
        cell_add("slot_hours_by_care_centre", key, fmt_hours(cmin), -1, true);
        cell_add("slots_used_by_care_centre", key, fmt_count(cused), cused, true);
    }
    /* Per duty status (0023): the month's centre shifts are never assigned,
     * so each CSNP slot is unfilled, or not_stated when a practitioner
     * published it in their own name. */
    long long dn[NDUTY] = {0}, dmin[NDUTY] = {0}, dused[NDUTY] = {0}, csnp = 0;
    for (size_t i = 0; i < nslots; i++) {
        const struct mslot *sl = &slots[i];
        if (strcmp(site_kind[sl->site], "csnp") != 0 || !in_period(sl->start))
            continue;
        int k = sl->gp < 0 ? DUTY_UNFILLED : DUTY_NOT_STATED;
        csnp++;
        dn[k]++;
        dmin[k] += sl->duration;
        dused[k] += sl->booked_by >= 0;
    }
    for (int k = 0; k < NDUTY && csnp > 0; k++) {
        cell_add("slots_by_duty_status", duty_keys[k], fmt_count(dn[k]), -1, true);
        cell_add("slot_hours_by_duty_status", duty_keys[k], fmt_hours(dmin[k]), -1, true);
        cell_add("slots_used_by_duty_status", duty_keys[k], fmt_count(dused[k]), dused[k], true);
    }
}

/* The masking rule of snp_indicator_table, applied to the expected cells. */
static void expect_masks(long long threshold)
{
    for (size_t i = 0; i < ncells; i++)
        cells[i].masked = cells[i].small = cells[i].pc > 0 && cells[i].pc < threshold;
    for (size_t i = 0; i < ncells; i++) {
        bool first = cells[i].breakdown;
        for (size_t k = 0; k < i && first; k++)
            first = strcmp(cells[k].code, cells[i].code) != 0;
        if (!first)
            continue;
        size_t primary = 0;
        for (size_t k = i; k < ncells; k++)
            primary += strcmp(cells[k].code, cells[i].code) == 0 && cells[k].masked;
        if (primary != 1)
            continue;
        struct cell *best = NULL;
        for (size_t k = i; k < ncells; k++) {
            struct cell *c = &cells[k];
            if (strcmp(c->code, cells[i].code) != 0 || c->masked || c->pc <= 0)
                continue;
            if (!best || c->pc < best->pc || (c->pc == best->pc && strcmp(c->key, best->key) < 0))
                best = c;
        }
        if (best)
            best->masked = true;
    }
}

static struct cell *cell_find(const char *code, const char *key)
{
    for (size_t i = 0; i < ncells; i++)
        if (strcmp(cells[i].code, code) == 0 && strcmp(cells[i].key, key) == 0)
            return &cells[i];
    return NULL;
}

static void expect_calls(void)
{
    long long n = 0, to_slot = 0, booked = 0, by[5] = {0};
    for (size_t i = 0; i < ncalls; i++) {
        const struct mcall *c = &calls[i];
        if (!in_period(c->at))
            continue;
        n++;
        for (int k = 0; k < 5; k++)
            by[k] += strcmp(c->outcome, call_outcomes[k]) == 0;
        if (c->req >= 0) {
            to_slot++;
            booked += served(&reqs[c->req]);
        }
    }
    count("sas_calls", n);
    rate("sas_calls_to_slot_rate", to_slot, n);
    count("sas_calls_slot_booked", booked);
    /* round(n × 2615 / 17232), half away from zero (docs/indicators.md). */
    cell_add("sas_ed_visits_avoided", "", fmt_count((2 * n * 2615 + 17232) / (2 * 17232)), n,
             false);
    for (int k = 0; k < 5; k++)
        cell_add("sas_calls_by_outcome", call_outcomes[k], fmt_count(by[k]), by[k], true);
    cr_expect_eq(by[3], 3, "the small cell of sent_to_15");
}

/* The médecin traitant's summaries (migration 0026, docs/messages.md): one
 * per booking, when an outcome of a patient seen is first reported, for an
 * MT known to the reference who is not the practitioner of the slot. */
static void expect_messages(void)
{
    long long summaries = 0;
    for (size_t i = 0; i < nreqs; i++) {
        const struct mreq *r = &reqs[i];
        if (r->seen_at == 0 || !in_period(r->seen_at) || !r->has_mt || !r->mt_rpps ||
            strcmp(r->mt_rpps, external_mt) == 0)
            continue;
        const char *seen_by = slot_rpps(r->slot);
        summaries += !seen_by || strcmp(seen_by, r->mt_rpps) != 0;
    }
    count("mt_summaries_sent", summaries);
    cr_expect_gt(summaries, 0, "the month has summaries to count");
    count("patients_referred_to_new_mt", 0);
    count("confirmations_sent_to_patients", 0);
}

static void compute_expected(void)
{
    period_from = utc("2026-09-30T22:00:00Z");
    period_to = utc("2026-10-31T23:00:00Z");
    expect_requests();
    expect_slots();
    expect_participation();
    expect_calls();
    expect_messages();
    expect_masks(5);
}

/* --- comparing ---------------------------------------------------------------------- */

static void check_raw_values(void)
{
    PGresult *r = sqlp("SELECT r.code, r.key,"
                       " CASE WHEN r.value IS NULL THEN '' ELSE round(r.value, d.decimals)::text"
                       " END, coalesce(r.patient_count, -1)"
                       " FROM snp_ind_period('test-t', 'month', '2026-10') p,"
                       " snp_ind_rows('test-t', p.period_from, p.period_to, p.consolidated_at) r"
                       " JOIN indicator_definition d USING (code, version)",
                       0, NULL);
    cr_expect_eq((size_t)PQntuples(r), ncells, "%d rows, %zu expected", PQntuples(r), ncells);
    int wrong = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *code = PQgetvalue(r, i, 0), *key = PQgetvalue(r, i, 1);
        struct cell *c = cell_find(code, key);
        cr_expect(c != NULL, "unexpected row %s/%s", code, key);
        if (!c)
            continue;
        if (strcmp(c->raw, PQgetvalue(r, i, 2)) != 0 || c->pc != atoll(PQgetvalue(r, i, 3))) {
            wrong++;
            cr_expect_fail("%s/%s: value %s (patients %s), expected %s (patients %lld)", code, key,
                           PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), c->raw, c->pc);
        }
    }
    PQclear(r);
    cr_assert_eq(wrong, 0);
}

static void check_masked_table(void)
{
    PGresult *r = sqlp("SELECT code, key, value_text, masked, coalesce(progress_pct::text, ''),"
                       " coalesce(target_met::text, '')"
                       " FROM snp_indicator_table('test-t', 'month', '2026-10') ORDER BY ord",
                       0, NULL);
    cr_assert_eq((size_t)PQntuples(r), ncells);
    int masked = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *code = PQgetvalue(r, i, 0), *key = PQgetvalue(r, i, 1);
        struct cell *c = cell_find(code, key);
        cr_assert(c, "unexpected row %s/%s", code, key);
        const char *want = c->small ? "<5" : c->masked ? "secret" : c->raw;
        cr_expect_str_eq(PQgetvalue(r, i, 2), want, "%s/%s (value %s, %lld patients)", code, key,
                         c->raw, c->pc);
        cr_expect_eq(strcmp(PQgetvalue(r, i, 3), "t") == 0, c->masked, "%s/%s mask", code, key);
        masked += c->masked;
    }
    /* The small commune and its complementary cell are masked. */
    cr_expect(cell_find("requests_by_commune", "35219")->small);
    char second[24];
    id_text(second_pharmacy_id, second);
    cr_expect(cell_find("requests_by_organisation", second)->small);
    cr_expect_geq(masked, 2);
    /* Targets: progress for "more is better", a verdict for the others. */
    for (int i = 0; i < PQntuples(r); i++) {
        const char *code = PQgetvalue(r, i, 0);
        struct cell *c = cell_find(code, "");
        if (strcmp(code, "requests_served_rate") == 0) {
            long long tenths = atoll(c->raw) * 10 + (strchr(c->raw, '.')[1] - '0');
            long long p = (200 * tenths + 80) / 160; /* round(100 * v / 80, 1) in tenths */
            char want[32];
            snprintf(want, sizeof(want), "%lld.%lld", p / 10, p % 10);
            cr_expect_str_eq(PQgetvalue(r, i, 4), want);
            cr_expect_str_eq(PQgetvalue(r, i, 5), tenths >= 800 ? "true" : "false");
        } else if (strcmp(code, "delay_median") == 0) {
            cr_expect_str_eq(PQgetvalue(r, i, 4), "");
            cr_expect_str_eq(PQgetvalue(r, i, 5), atof(c->raw) <= 240 ? "true" : "false");
        } else if (strcmp(code, "slots_published") == 0) {
            long long n = atoll(c->raw), p = (2000 * n + 2000) / 4000;
            char want[32];
            snprintf(want, sizeof(want), "%lld.%lld", p / 10, p % 10);
            cr_expect_str_eq(PQgetvalue(r, i, 4), want);
        }
    }
    PQclear(r);
}

static void check_participation(void)
{
    PGresult *r = sqlp("SELECT rpps, iso_week, slots, hours::text, rule_2h_met::text, sas_text,"
                       " capped_text, masked, coalesce(weeks_2h, -1), coalesce(weeks_in_period,"
                       " -1), coalesce(to_char(week_monday, 'YYYY-MM-DD'), '')"
                       " FROM snp_participation_statement('test-t', 'month', '2026-10')"
                       " ORDER BY ord",
                       0, NULL);
    size_t totals = 0, complements = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *rpps = PQgetvalue(r, i, 0), *week = PQgetvalue(r, i, 1);
        int gp = -1;
        for (int g = 0; g < NGP; g++)
            if (strcmp(gp_rpps[g], rpps) == 0)
                gp = g;
        cr_assert_geq(gp, 0);
        if (strcmp(week, "total") == 0) {
            totals++;
            long long met = 0, sas = 0, minutes = 0;
            for (size_t k = 0; k < nweeks; k++) {
                if (weeks[k].gp != gp)
                    continue;
                met += weeks[k].minutes >= 120;
                sas += weeks[k].sas;
                minutes += weeks[k].minutes;
            }
            cr_expect_eq(atoll(PQgetvalue(r, i, 8)), met, "%s weeks_2h", rpps);
            cr_expect_eq(atoll(PQgetvalue(r, i, 9)), 5, "weeks in October");
            cr_expect_str_eq(PQgetvalue(r, i, 3), fmt_hours(minutes));
            bool masked = sas > 0 && sas < 5;
            cr_expect_str_eq(PQgetvalue(r, i, 5), masked ? "<5" : fmt_count(sas), "%s total", rpps);
            continue;
        }
        struct gp_week *w = NULL;
        for (size_t k = 0; k < nweeks && !w; k++)
            if (weeks[k].gp == gp && strcmp(weeks[k].week, week) == 0)
                w = &weeks[k];
        cr_assert(w, "unexpected week %s of %s", week, rpps);
        cr_expect_eq(atoll(PQgetvalue(r, i, 2)), w->slots, "%s %s slots", rpps, week);
        cr_expect_str_eq(PQgetvalue(r, i, 3), fmt_hours(w->minutes), "%s %s hours", rpps, week);
        cr_expect_str_eq(PQgetvalue(r, i, 4), w->minutes >= 120 ? "true" : "false");
        int y, m, d;
        civil_from_days(w->monday, &y, &m, &d);
        char monday[16];
        snprintf(monday, sizeof(monday), "%04d-%02d-%02d", y, m, d);
        cr_expect_str_eq(PQgetvalue(r, i, 10), monday);
        if (strcmp(PQgetvalue(r, i, 7), "f") == 0) {
            cr_expect_str_eq(PQgetvalue(r, i, 5), fmt_count(w->sas), "%s %s sas", rpps, week);
            cr_expect_str_eq(PQgetvalue(r, i, 6), fmt_count(w->sas < 20 ? w->sas : 20));
        } else {
            cr_expect_str_eq(PQgetvalue(r, i, 5), w->sas < 5 ? "<5" : "secret");
            complements += w->sas >= 5;
        }
        if (w->sas > 0 && w->sas < 5)
            cr_expect_str_eq(PQgetvalue(r, i, 7), "t", "%s %s sas %lld not masked", rpps, week,
                             w->sas);
    }
    cr_expect_eq((size_t)PQntuples(r), nweeks + totals);
    /* A practitioner with exactly one small week has a second week hidden. */
    size_t expected_complements = 0;
    for (int g = 0; g < NGP; g++) {
        int small = 0;
        bool candidate = false;
        for (size_t k = 0; k < nweeks; k++) {
            if (weeks[k].gp != g)
                continue;
            small += weeks[k].sas > 0 && weeks[k].sas < 5;
            candidate |= weeks[k].sas >= 5;
        }
        expected_complements += small == 1 && candidate;
    }
    cr_expect_eq(complements, expected_complements);
    cr_expect_eq(totals, (size_t)NGP);
    PQclear(r);
    /* GP1 received more than 20 eligible SAS consultations in week 42. */
    bool capped = false;
    for (size_t k = 0; k < nweeks; k++)
        capped |= weeks[k].gp == 0 && strcmp(weeks[k].week, "2026-W42") == 0 && weeks[k].sas > 20;
    cr_expect(capped, "the generated month does not exercise the cap");
}

/* --- extraction through the command ------------------------------------------------- */

static char outdir[64];

static int run_command(const char *conninfo, const char *const *args)
{
    struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.database, sizeof(cfg.database), "%s", conninfo ? conninfo : f.pg.conninfo);
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"indicators";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return indicators_command(&cfg, argc, argv);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static const char *const outputs[][2] = {
    {"csv", "october.csv"},
    {"json", "october.json"},
    {"html", "october.html"},
    {"statement", "statement.csv"},
};

/* Extracts October in every format into files named with `suffix`. */
static void extract_all(const char *suffix)
{
    for (size_t k = 0; k < 4; k++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/%s%s", outdir, outputs[k][1], suffix);
        bool statement = strcmp(outputs[k][0], "statement") == 0;
        const char *args[] = {"--territory", "test-t",   "--month",
                              "2026-10",     "--format", statement ? "csv" : outputs[k][0],
                              "--output",    path,       statement ? "--statement" : NULL,
                              NULL};
        cr_assert_eq(run_command(NULL, args), 0, "extraction %s failed", outputs[k][0]);
    }
}

static void expect_same_outputs(const char *a, const char *b)
{
    for (size_t k = 0; k < 4; k++) {
        char pa[160], pb[160];
        snprintf(pa, sizeof(pa), "%s/%s%s", outdir, outputs[k][1], a);
        snprintf(pb, sizeof(pb), "%s/%s%s", outdir, outputs[k][1], b);
        size_t la, lb;
        char *x = slurp(pa, &la), *y = slurp(pb, &lb);
        cr_expect(la == lb && memcmp(x, y, la) == 0, "%s differs from %s", pa, pb);
        free(x);
        free(y);
    }
}

static void check_outputs_content(void)
{
    size_t len;
    char path[160];
    snprintf(path, sizeof(path), "%s/october.csv.1", outdir);
    char *csv = slurp(path, &len);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += csv[i] == '\n';
    cr_expect_eq(lines, ncells + 1, "one line per cell plus the header");
    cr_expect(strstr(csv, ",requests_by_commune,1,publics,") != NULL);
    cr_expect(strstr(csv, ",commune,35219,Pipriac (35219),<5,oui,") != NULL,
              "small commune masked");
    cr_expect(strstr(csv, ",secret,oui,") != NULL, "complementary cell masked");
    char line[256];
    snprintf(line, sizeof(line), ",requests,1,demandes,Demandes reçues,count,,,,%s,non,,,\r\n",
             cell_find("requests", "")->raw);
    cr_expect(strstr(csv, line) != NULL, "requests line %s", line);
    free(csv);

    snprintf(path, sizeof(path), "%s/october.json.1", outdir);
    char *text = slurp(path, &len);
    json_error_t err;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    cr_assert(doc, "JSON export: %s", err.text);
    cr_expect_eq(json_array_size(json_object_get(doc, "indicators")), ncells);
    cr_expect_str_eq(
        json_string_value(json_object_get(json_object_get(doc, "period"), "consolidated_at")),
        "2026-11-08T00:00:00+01:00");
    json_decref(doc);
    free(text);

    snprintf(path, sizeof(path), "%s/october.html.1", outdir);
    char *html = slurp(path, &len);
    cr_expect(strstr(html, "<html lang=\"fr\">") != NULL);
    cr_expect(strstr(html, "<svg") != NULL, "charts are inline SVG");
    cr_expect(strstr(html, "octobre 2026") != NULL);
    cr_expect(strstr(html, "<script") == NULL && strstr(html, "src=") == NULL &&
                  strstr(html, "href=\"http") == NULL && strstr(html, "@import") == NULL,
              "the report must be self-contained");
    free(html);

    snprintf(path, sizeof(path), "%s/statement.csv.1", outdir);
    char *st = slurp(path, &len);
    cr_expect(strstr(st, ",10999900011,Le Guen,Anne,2026-W42,2026-10-12,") != NULL);
    free(st);

    /* No patient identity in any export. */
    for (size_t k = 0; k < 4; k++) {
        snprintf(path, sizeof(path), "%s/%s.1", outdir, outputs[k][1]);
        char *out = slurp(path, &len);
        cr_expect(strstr(out, "Patient 0") == NULL && strstr(out, "0699") == NULL &&
                      strstr(out, "texte libre") == NULL && strstr(out, "confidentielle") == NULL,
                  "%s carries patient data", path);
        free(out);
    }
}

/* --- running code that needs an event loop ------------------------------------------ */

struct loop_run {
    uv_loop_t loop;
    struct db db;
    void (*start)(struct loop_run *run);
    bool started, done;
    json_t *answer;
    enum snp_proto_code error;
    struct protection_result protection;
    struct dispatch dispatch;
};

static void loop_db_closed(struct db *db)
{
    (void)db;
}

static void loop_ready(struct db *db, bool up)
{
    struct loop_run *run = container_of(db, struct loop_run, db);
    if (up && !run->started) {
        run->started = true;
        run->start(run);
    }
}

static void loop_finish(struct loop_run *run)
{
    run->done = true;
    db_close(&run->db, loop_db_closed);
}

static void run_loop(struct loop_run *run, const char *conninfo)
{
    cr_assert_eq(uv_loop_init(&run->loop), 0);
    cr_assert_eq(db_init(&run->db, &run->loop, conninfo, 1), 0);
    run->db.on_ready_change = loop_ready;
    uv_run(&run->loop, UV_RUN_DEFAULT);
    cr_assert(run->done);
    cr_assert_eq(uv_loop_close(&run->loop), 0);
}

static void on_get(void *arg, enum snp_proto_code err, const char *message, const char *field,
                   json_t *data)
{
    (void)message;
    (void)field;
    struct loop_run *run = arg;
    run->error = err;
    run->answer = json_incref(data);
    loop_finish(run);
}

static void start_get(struct loop_run *run)
{
    run->dispatch.db = &run->db;
    run->dispatch.loop = &run->loop;
    struct caller c = {.role = ROLE_COORDINATOR, .territory = "test-t", .actor = "token:77"};
    json_t *data = json_pack("{s:s}", "month", "2026-10");
    indicators_get(&run->dispatch, &c, data, on_get, run);
    json_decref(data);
}

static void on_protected(void *arg, const struct protection_result *result)
{
    struct loop_run *run = arg;
    run->protection = *result;
    loop_finish(run);
}

static void start_protection(struct loop_run *run)
{
    protection_run(&run->db, 12, 30, 6 * 3600, on_protected, run);
}

static void check_indicators_get(void)
{
    cr_assert_eq(snp_proto_init(), 0);
    const struct snp_proto_message *msg = snp_proto_message_find("indicators.get");
    cr_assert(msg);
    struct loop_run run;
    memset(&run, 0, sizeof(run));
    run.start = start_get;
    run_loop(&run, f.pg.conninfo);
    cr_assert_eq(run.error, SNP_PROTO_OK);
    cr_assert(run.answer);
    struct snp_proto_error err;
    cr_expect_eq(snp_proto_validate_response(msg, run.answer, &err), 0, "%s at %s", err.message,
                 err.field);
    json_t *list = json_object_get(run.answer, "indicators");
    cr_expect_gt(json_array_size(list), 50);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                     "requests", "single figures come first");
    size_t i;
    json_t *item;
    bool saw_requests = false, saw_masked = false;
    json_array_foreach (list, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (strcmp(name, "requests") == 0) {
            saw_requests = true;
            cr_expect_eq(json_integer_value(json_object_get(item, "value")),
                         atoll(cell_find("requests", "")->raw));
        }
        saw_masked |= strcmp(name, "requests_by_commune__35219") == 0;
    }
    cr_expect(saw_requests);
    cr_expect(!saw_masked, "a masked cell was answered with its value");
    /* Every masked cell is answered as masked, never dropped: by name, with
     * its reason, and for a small one the threshold it stays below. */
    json_t *masked = json_object_get(run.answer, "masked");
    size_t nmasked = 0;
    for (size_t k = 0; k < ncells; k++) {
        const struct cell *c = &cells[k];
        if (!c->masked)
            continue;
        nmasked++;
        char name[96];
        int n = snprintf(name, sizeof(name), "%s%s", c->code, c->key[0] ? "__" : "");
        for (const char *s = c->key; *s && n < (int)sizeof(name) - 1; s++)
            name[n++] =
                isalnum((unsigned char)*s) || *s == '_' ? (char)tolower((unsigned char)*s) : '_';
        name[n] = '\0';
        json_t *found = NULL;
        json_array_foreach (masked, i, item)
            if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0)
                found = item;
        cr_expect(found, "the masked cell %s/%s is not answered as masked", c->code, c->key);
        if (!found)
            continue;
        cr_expect_str_eq(json_string_value(json_object_get(found, "reason")),
                         c->small ? "small_count" : "complementary", "%s", name);
        if (c->small)
            cr_expect_eq(json_integer_value(json_object_get(found, "below")), 5, "%s", name);
        else
            cr_expect_null(json_object_get(found, "below"), "%s", name);
        cr_expect_null(json_object_get(found, "value"), "%s: a masked value was answered", name);
    }
    cr_expect_geq(nmasked, 2);
    cr_expect_eq(json_array_size(masked), nmasked, "only masked cells are listed as masked");
    json_decref(run.answer);
    snp_proto_shutdown();
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'indicators.read'"
                                    " AND actor = 'token:77' AND role = 'coordinator'"
                                    " AND detail ->> 'period' = '2026-10'"),
                 1);
}

/* --- the month ---------------------------------------------------------------------- */

static void setup_month(void)
{
    paris = timeutil_zone_find("Europe/Paris");
    fixture_setup(&f, "{}");
    add_reference_data();
    fix_install_test_clock(&f);
    cr_assert_lt(snprintf(outdir, sizeof(outdir), "%s/snp-indicators-XXXXXX", proc_scratch_dir()),
                 (int)sizeof(outdir), "$TMPDIR is too long for this test");
    cr_assert(mkdtemp(outdir));
}

static void teardown_month(void)
{
    if (getenv("SNP_TEST_KEEP_DB")) { /* for investigating a failure */
        fprintf(stderr, "kept database %s and %s\n", f.pg.name, outdir);
        f.pg.name[0] = '\0';
        fixture_teardown(&f);
        return;
    }
    fixture_teardown(&f);
    for (size_t k = 0; k < 4; k++)
        for (int s = 1; s <= 4; s++) {
            char path[160];
            snprintf(path, sizeof(path), "%s/%s.%d", outdir, outputs[k][1], s);
            unlink(path);
        }
    rmdir(outdir);
}

Test(indicators, generated_month, .init = setup_month, .fini = teardown_month, .timeout = 600)
{
    generate_month();
    compute_expected();
    cr_assert_gt(pgtest_long(&f.pg, "SELECT count(*) FROM request"), 1800, "thousands of requests");

    check_raw_values();
    check_masked_table();
    check_participation();

    /* Two extractions of the closed month are byte-identical. */
    extract_all(".1");
    extract_all(".2");
    expect_same_outputs(".1", ".2");
    check_outputs_content();
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action ="
                                    " 'indicators.export' AND actor LIKE 'cli:%'"
                                    " AND detail ->> 'territory' = 'test-t'"
                                    " AND detail ->> 'period' = '2026-10'"),
                 8, "every extraction is audited");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action ="
                                    " 'indicators.export' AND detail ->> 'format' ="
                                    " 'statement-csv'"),
                 2);
    check_indicators_get();

    /* A quarter holds the month plus the first request of November; the
     * contract year also the last one of September. */
    long long october = atoll(cell_find("requests", "")->raw);
    cr_expect_eq(sql_ll("SELECT value_text::bigint FROM snp_indicator_table('test-t', 'quarter',"
                        " '2026-Q4') WHERE code = 'requests'",
                        0, NULL),
                 october + 1);
    cr_expect_eq(sql_ll("SELECT value_text::bigint FROM snp_indicator_table('test-t', 'year',"
                        " '2026') WHERE code = 'requests'",
                        0, NULL),
                 october + 2);

    /* What happens after the consolidation instant changes nothing. */
    size_t victim = 0;
    while (!(reqs[victim].fate == F_BOOKED && in_period(reqs[victim].created) &&
             reqs[victim].urgency > 0))
        victim++;
    char bid[24];
    id_text(reqs[victim].booking_id, bid);
    const char *p[] = {bid};
    clock_at(utc("2026-11-20T09:00:00Z"));
    PGresult *res = sqlp("SELECT request_status FROM snp_booking_cancel($1::bigint, 'test-t',"
                         " NULL, 'practitioner_unavailable', 'token:gp')",
                         1, p);
    cr_expect_str_eq(PQgetvalue(res, 0, 0), "unserved");
    PQclear(res);
    extract_all(".3");
    expect_same_outputs(".1", ".3");

    /* Retention: identities past their date are erased, notes with them;
     * the figures do not move. */
    long long identities = pgtest_long(&f.pg, "SELECT count(*) FROM patient_identity");
    cr_assert_gt(identities, 1800);
    PQclear(pgtest_exec(
        &f.pg,
        "UPDATE territory SET settings = '{\"audit_retention_months\": 6}' WHERE id = 'test-t';"
        "INSERT INTO audit (at, actor, role, action, request_id) VALUES"
        " ('2026-08-01T00:00:00Z', 'token:1', 'gp', 'patient.read',"
        "  (SELECT min(id) FROM request));"
        "INSERT INTO audit (at, actor, role, action, detail) VALUES"
        " ('2026-08-01T00:00:00Z', 'cli:x', 'admin', 'indicators.export',"
        "  '{\"territory\": \"test-other\"}'),"
        " ('2026-01-15T00:00:00Z', 'cli:x', 'admin', 'migrate', '{}'),"
        " ('2026-06-01T00:00:00Z', 'cli:x', 'admin', 'migrate', '{}');"));
    char conninfo[1024];
    conninfo_at("2027-03-01T00:00:00Z", conninfo, sizeof(conninfo));
    struct loop_run run;
    memset(&run, 0, sizeof(run));
    run.start = start_protection;
    run_loop(&run, conninfo);
    cr_expect(run.protection.erase_ok && run.protection.purge_ok);
    cr_expect_eq(run.protection.identities_erased, identities);
    cr_expect_eq(run.protection.audit_purged, 2);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM patient_identity"), 0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE outcome_note IS NOT NULL"),
                 0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT coalesce(sum((data ->> 'count')::bigint), 0)"
                                    " FROM event WHERE kind = 'identity.erased'"
                                    " AND territory_id = 'test-t'"),
                 identities);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'identity.erase'"
                                    " AND (detail ->> 'erased')::bigint > 0"),
                 1);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action = 'audit.purge'"
                                    " AND (detail ->> 'deleted')::bigint = 2"),
                 1);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE at < '2026-09-01'"), 2,
                 "the rows within their retention stay");
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action ="
                                    " 'indicators.export' AND actor LIKE 'cli:%'"
                                    " AND detail ->> 'territory' = 'test-t'"),
                 12, "recent export records stay");
    /* A second run finds nothing to do and records nothing. */
    memset(&run, 0, sizeof(run));
    run.start = start_protection;
    run_loop(&run, conninfo);
    cr_expect_eq(run.protection.identities_erased, 0);
    cr_expect_eq(run.protection.audit_purged, 0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit WHERE action IN"
                                    " ('identity.erase', 'audit.purge')"),
                 2);
    extract_all(".4");
    expect_same_outputs(".1", ".4");
}

/* --- small cases -------------------------------------------------------------------- */

static void setup_small(void)
{
    paris = timeutil_zone_find("Europe/Paris");
    fixture_setup(&f, "{}");
    fix_install_test_clock(&f);
    cr_assert_lt(snprintf(outdir, sizeof(outdir), "%s/snp-indicators-XXXXXX", proc_scratch_dir()),
                 (int)sizeof(outdir), "$TMPDIR is too long for this test");
    cr_assert(mkdtemp(outdir));
}

static void teardown_small(void)
{
    fixture_teardown(&f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", outdir);
    cr_expect_eq(system(cmd), 0);
}

/* Three requests in November 2026, one booked and attended; and a slot
 * at the CSNP, left free (its care centre's cells, 0020). */
static void small_activity(void)
{
    char site[24], org[24];
    id_text(f.site_gp1, site);
    id_text(f.pharmacy_id, org);
    clock_at(utc("2026-11-02T07:00:00Z"));
    const char *pub[] = {site, "[{\"start\": \"2026-11-03T09:00:00Z\", \"duration_min\": 20,"
                               " \"mode\": \"office\", \"audience\": [\"pharmacy\"]}]"};
    long long slot = sql_ll("SELECT id FROM snp_slots_publish('test-t', $1::bigint,"
                            " '10999900011', 'token:gp', $2::jsonb)",
                            2, pub);
    char csnp[24];
    id_text(f.site_csnp, csnp);
    const char *centre[] = {csnp, "[{\"start\": \"2026-11-04T09:00:00Z\", \"duration_min\": 30,"
                                  " \"mode\": \"office\", \"audience\": [\"sas\"]}]"};
    PQclear(sqlp("SELECT id FROM snp_slots_publish('test-t', $1::bigint, '10999900011',"
                 " 'token:gp', $2::jsonb)",
                 2, centre));
    for (int i = 0; i < 3; i++) {
        char body[512], sid[24];
        snprintf(body, sizeof(body),
                 "{\"client_ref\": \"s-%d\", \"motif\": \"fever\", \"urgency\": \"48h\","
                 " \"deadline\": \"2026-11-05T08:00:00Z\", \"modes\": [\"office\"],"
                 " \"patient_commune\": \"35236\", \"patient_birth_year\": 1950,"
                 " \"patient_age\": 76, \"patient_sex\": \"female\", \"has_mt\": false}",
                 i);
        id_text(slot, sid);
        const char *p[] = {org, body, i == 0 ? sid : NULL};
        clock_at(utc("2026-11-03T08:00:00Z") + i * 60);
        PQclear(sqlp("SELECT 1 FROM snp_request_create('test-t', $1::bigint, 'token:p', $2::jsonb,"
                     " '{\"initials\": \"A. B.\"}', $3::bigint, 180)",
                     3, p));
    }
    const char *acc[] = {org, fmt_count(slot)};
    clock_at(utc("2026-11-03T08:02:30Z"));
    PQclear(sqlp("SELECT 1 FROM snp_offer_accept((SELECT min(id) FROM request), $1::bigint,"
                 " $2::bigint, 'token:p')",
                 2, acc));
}

Test(indicators, masking_below_threshold, .init = setup_small, .fini = teardown_small)
{
    small_activity();
    /* Every cell about these three patients is masked, in every format. */
    PGresult *r = sqlp("SELECT code, key, value_text, masked FROM snp_indicator_table('test-t',"
                       " 'month', '2026-11') WHERE code IN ('requests', 'requests_served',"
                       " 'requests_by_motif', 'requests_served_rate', 'delay_median',"
                       " 'slots_used', 'requests_priority_group') AND value_text <> '0'",
                       0, NULL);
    cr_assert_gt(PQntuples(r), 6);
    for (int i = 0; i < PQntuples(r); i++) {
        cr_expect_str_eq(PQgetvalue(r, i, 2), "<5", "%s/%s", PQgetvalue(r, i, 0),
                         PQgetvalue(r, i, 1));
        cr_expect_str_eq(PQgetvalue(r, i, 3), "t");
    }
    PQclear(r);
    /* Slots count no patients and stay visible; zero stays visible. */
    cr_expect_eq(sql_ll("SELECT value_text::int FROM snp_indicator_table('test-t', 'month',"
                        " '2026-11') WHERE code = 'slots_published'",
                        0, NULL),
                 2);
    cr_expect_eq(sql_ll("SELECT count(*) FROM snp_indicator_table('test-t', 'month', '2026-11')"
                        " WHERE code IN ('slots_by_care_centre', 'slots_used_by_care_centre')"
                        " AND key_label = 'CSNP de Redon' AND NOT masked"
                        " AND value_text IN ('1', '0')",
                        0, NULL),
                 2);
    cr_expect_eq(sql_ll("SELECT count(*) FROM snp_indicator_table('test-t', 'month', '2026-11')"
                        " WHERE code = 'requests_unserved' AND value_text = '0' AND NOT masked",
                        0, NULL),
                 1);
    const char *formats[] = {"csv", "json", "html"};
    for (int k = 0; k < 3; k++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/small.%s", outdir, formats[k]);
        const char *args[] = {"--territory", "test-t",   "--month", "2026-11", "--format",
                              formats[k],    "--output", path,      NULL};
        cr_assert_eq(run_command(NULL, args), 0);
        size_t len;
        char *text = slurp(path, &len);
        const char *needle = k == 0   ? ",requests,1,demandes,Demandes reçues,count,,,,<5,oui,"
                             : k == 1 ? "\"value_text\": \"<5\""
                                      : "&lt;5";
        cr_expect(strstr(text, needle) != NULL, "%s: no masked cell", formats[k]);
        cr_expect(strstr(text, "A. B.") == NULL);
        free(text);
    }
    /* The threshold is a setting: at 2, the three requests show, the single
     * booking does not. */
    PQclear(pgtest_exec(&f.pg, "UPDATE territory SET settings = '{\"indicator_mask_threshold\":"
                               " 2}' WHERE id = 'test-t'"));
    r = sqlp("SELECT value_text FROM snp_indicator_table('test-t', 'month', '2026-11')"
             " WHERE code IN ('requests', 'requests_served') ORDER BY ord",
             0, NULL);
    cr_assert_eq(PQntuples(r), 2);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "3");
    cr_expect_str_eq(PQgetvalue(r, 1, 0), "<2");
    PQclear(r);
}

Test(indicators, event_log_and_audit_are_append_only, .init = setup_small, .fini = teardown_small)
{
    small_activity();
    static const char *const refused[] = {
        "UPDATE event SET actor = 'x'", "DELETE FROM event", "TRUNCATE event",
        "UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit",
    };
    PQclear(
        pgtest_exec(&f.pg, "INSERT INTO audit (actor, role, action) VALUES ('a', 'admin', 'x')"));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        PGresult *r = PQexec(f.pg.conn, refused[i]);
        cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s was accepted", refused[i]);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        cr_expect_str_eq(state ? state : "", "42501", "%s", refused[i]);
        PQclear(r);
    }
    cr_expect_gt(pgtest_long(&f.pg, "SELECT count(*) FROM event"), 0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM audit"), 1);
}

Test(indicators, catalogue_is_documented, .init = setup_small, .fini = teardown_small)
{
    const char *src = getenv("SNP_SOURCE_DIR");
    cr_assert(src);
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/indicators.md", src);
    size_t len;
    char *doc = slurp(path, &len);
    PGresult *r = sqlp("SELECT code, version, section FROM indicator_definition d"
                       " WHERE version = (SELECT max(version) FROM indicator_definition x"
                       " WHERE x.code = d.code) ORDER BY position",
                       0, NULL);
    cr_assert_gt(PQntuples(r), 50);
    for (int i = 0; i < PQntuples(r); i++) {
        char heading[128];
        snprintf(heading, sizeof(heading), "`%s` (v%s)", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        cr_expect(strstr(doc, heading) != NULL, "docs/indicators.md lacks %s", heading);
    }
    PQclear(r);
    free(doc);
    /* Every emitted code has a definition of the version it claims, and
     * every definition outside the statement is emitted (communes only once
     * some request names one). */
    small_activity();
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM snp_ind_rows('test-t',"
                                    " '2026-11-01', '2026-12-01', '2026-12-08') r"
                                    " LEFT JOIN indicator_definition d USING (code, version)"
                                    " WHERE d.code IS NULL"),
                 0);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM indicator_definition d"
                                    " WHERE section <> 'releve' AND NOT EXISTS (SELECT 1 FROM"
                                    " snp_ind_rows('test-t', '2026-11-01', '2026-12-01',"
                                    " '2026-12-08') r WHERE r.code = d.code)"),
                 0);
}

/* --- the practitioner on duty (0023) ------------------------------------------------ */

/* Publishes at the CSNP at instant `at`, in the name of `rpps` (NULL: the
 * shift's slots, nobody named), `n` office slots of `duration` minutes one
 * after the other from `first`, open to every requester; writes their ids
 * to `ids`. */
static void publish_csnp(const char *at, const char *rpps, const char *first, int n, int duration,
                         int64_t *ids)
{
    json_t *arr = json_array();
    for (int k = 0; k < n; k++) {
        char ts[32];
        fix_iso_utc(utc(first) + (int64_t)k * duration * 60, ts);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:o}", "start", ts, "duration_min",
                                             duration, "mode", "office", "audience",
                                             json_loads(all_audiences, 0, NULL)));
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    char site[24];
    id_text(f.site_csnp, site);
    clock_at(utc(at));
    const char *p[] = {site, rpps, text};
    PGresult *r = sqlp("SELECT id FROM snp_slots_publish('test-t', $1::bigint, $2, 'token:c',"
                       " $3::jsonb) ORDER BY starts_at",
                       3, p);
    cr_assert_eq(PQntuples(r), n);
    for (int k = 0; k < n; k++)
        ids[k] = atoll(PQgetvalue(r, k, 0));
    PQclear(r);
    free(text);
    json_decref(arr);
}

/* At instant `at`, the coordinator assigns the shift of slot `slot` to
 * `rpps` with `status`, or frees it (both NULL). */
static void assign_shift(const char *at, int64_t slot, const char *rpps, const char *status)
{
    char sid[24];
    id_text(slot, sid);
    clock_at(utc(at));
    const char *p[] = {sid, rpps, status};
    PGresult *r = sqlp("SELECT snp_shift_assign('test-t', 'token:c', 'coordinator',"
                       " (SELECT shift_id FROM slot WHERE id = $1::bigint), $2, $3) ->> 'changed'",
                       3, p);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "true", "the assignment at %s changed nothing", at);
    PQclear(r);
}

/* At instant `at`, organisation `organisation` asks for a patient without
 * a médecin traitant and books slot `slot`, starting at `start`, a minute
 * later. */
static void book_csnp(const char *at, int64_t organisation, int64_t slot, const char *start)
{
    static int n;
    char body[512], sid[24], org[24], deadline[32];
    fix_iso_utc(utc(start) + 3600, deadline);
    snprintf(body, sizeof(body),
             "{\"client_ref\": \"duty-%d\", \"motif\": \"fever\", \"urgency\": \"48h\","
             " \"deadline\": \"%s\", \"modes\": [\"office\"], \"patient_commune\": \"35236\","
             " \"patient_birth_year\": 1980, \"patient_age\": 46, \"patient_sex\": \"female\","
             " \"has_mt\": false}",
             n++, deadline);
    id_text(slot, sid);
    id_text(organisation, org);
    clock_at(utc(at));
    const char *rq[] = {org, body, sid};
    long long request =
        sql_ll("SELECT request_id FROM snp_request_create('test-t', $1::bigint, 'token:r',"
               " $2::jsonb, '{\"initials\": \"A. B.\"}', $3::bigint, 180)",
               3, rq);
    char rid[24];
    id_text(request, rid);
    clock_at(utc(at) + 60);
    const char *acc[] = {rid, org, sid};
    cr_assert_gt(sql_ll("SELECT booking_id FROM snp_offer_accept($1::bigint, $2::bigint,"
                        " $3::bigint, 'token:r')",
                        3, acc),
                 0);
}

/* Expects the rows of `sql` (one column), joined by "; ", to be `want`. */
static void expect_rows(const char *sql, const char *want, const char *what)
{
    PGresult *r = sqlp(sql, 0, NULL);
    size_t len = 1;
    for (int i = 0; i < PQntuples(r); i++)
        len += strlen(PQgetvalue(r, i, 0)) + 2;
    char *got = calloc(1, len);
    cr_assert(got);
    for (int i = 0; i < PQntuples(r); i++) {
        if (i)
            strcat(got, "; ");
        strcat(got, PQgetvalue(r, i, 0));
    }
    PQclear(r);
    cr_expect_str_eq(got, want, "%s:\n got  %s\n want %s", what, got, want);
    free(got);
}

static const char duty_breakdown_sql[] =
    "SELECT r.code || '/' || r.key || '=' || round(r.value, d.decimals)"
    " || coalesce(' (' || r.patient_count || ')', '')"
    " FROM snp_ind_period('test-t', 'month', '2026-11') p,"
    " snp_ind_rows('test-t', p.period_from, p.period_to, p.consolidated_at) r"
    " JOIN indicator_definition d USING (code, version)"
    " WHERE d.breakdown = 'duty_status' ORDER BY r.code COLLATE \"C\", r.key COLLATE \"C\"";

static const char duty_breakdown_want[] =
    "slot_hours_by_duty_status/independent=1.50; slot_hours_by_duty_status/locum=1.50; "
    "slot_hours_by_duty_status/not_stated=0.33; slot_hours_by_duty_status/resident=1.00; "
    "slot_hours_by_duty_status/retired=1.00; slot_hours_by_duty_status/unfilled=2.00; "
    "slots_by_duty_status/independent=3; slots_by_duty_status/locum=3; "
    "slots_by_duty_status/not_stated=1; slots_by_duty_status/resident=2; "
    "slots_by_duty_status/retired=3; slots_by_duty_status/unfilled=5; "
    "slots_used_by_duty_status/independent=1 (1); slots_used_by_duty_status/locum=0 (0); "
    "slots_used_by_duty_status/not_stated=0 (0); slots_used_by_duty_status/resident=0 (0); "
    "slots_used_by_duty_status/retired=1 (1); slots_used_by_duty_status/unfilled=1 (1)";

static const char duty_participation_sql[] =
    "SELECT x.rpps || ' ' || x.iso_week || ' ' || x.slots || ' slots ' || x.minutes || ' min '"
    " || x.sas_48h || ' sas'"
    " FROM snp_ind_period('test-t', 'month', '2026-11') p,"
    " snp_ind_participation_v1('test-t', p.period_from, p.period_to, p.consolidated_at) x"
    " ORDER BY x.rpps, x.iso_week";

static const char duty_participation_want[] =
    FIX_GP1 " 2026-W46 6 slots 150 min 2 sas; " FIX_GP1 " 2026-W47 1 slots 20 min 0 sas; " FIX_GP2
            " 2026-W46 5 slots 150 min 0 sas";

/* November 2026 at the CSNP, every shift published before anyone is named
 * (times UTC, an hour behind Paris):
 *   A  Mon 9, 4 × 30 min: the last withdrawn, the first booked by the SAS,
 *      then assigned to GP1 as independent;
 *   B  Tue 10, 3 × 20 min: GP2 as locum, the first booked by the SAS, then
 *      reassigned to GP1 as retired (the latest assignment wins, the
 *      booking follows);
 *   C  Wed 11 afternoon, 2 × 30 min: GP2 as resident, then freed;
 *   D  Thu 12, 2 × 15 min: never assigned within the period, the first
 *      booked by a pharmacy; assigned to GP2 after the consolidation;
 *   E  Fri 13, 3 × 30 min: one slot, GP2 as locum, two more published into
 *      the assigned shift;
 *   F  Sat 14, 2 × 30 min: GP2 as independent, then as resident (status
 *      only);
 *   G  Mon 16: one slot of 20 min that GP1 publishes in their own name. */
Test(indicators, shifts_count_for_the_practitioner_on_duty, .init = setup_small,
     .fini = teardown_small)
{
    int64_t a[4], b[3], c[2], d[2], e[3], fs[2], g[1];
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-09T07:00:00Z", 4, 30, a);
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-10T07:00:00Z", 3, 20, b);
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-11T13:00:00Z", 2, 30, c);
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-12T07:00:00Z", 2, 15, d);
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-13T07:00:00Z", 1, 30, e);
    publish_csnp("2026-11-06T08:00:00Z", NULL, "2026-11-14T07:00:00Z", 2, 30, fs);
    publish_csnp("2026-11-06T08:00:00Z", FIX_GP1, "2026-11-16T08:00:00Z", 1, 20, g);
    char a3[24];
    id_text(a[3], a3);
    const char *w[] = {a3};
    clock_at(utc("2026-11-06T09:00:00Z"));
    PQclear(sqlp("SELECT id FROM snp_slot_withdraw($1::bigint, 'test-t', NULL, 'token:c')", 1, w));

    assign_shift("2026-11-07T09:00:00Z", b[0], FIX_GP2, "locum");
    assign_shift("2026-11-07T09:10:00Z", c[0], FIX_GP2, "resident");
    assign_shift("2026-11-07T09:20:00Z", e[0], FIX_GP2, "locum");
    publish_csnp("2026-11-07T09:30:00Z", NULL, "2026-11-13T07:30:00Z", 2, 30, e + 1);
    assign_shift("2026-11-07T09:40:00Z", fs[0], FIX_GP2, "independent");
    assign_shift("2026-11-07T09:50:00Z", fs[0], FIX_GP2, "resident");
    int64_t sas = sql_ll("SELECT id FROM organisation WHERE territory_id = 'test-t'"
                         " AND kind = 'sas'",
                         0, NULL);
    book_csnp("2026-11-08T10:00:00Z", sas, a[0], "2026-11-09T07:00:00Z");
    assign_shift("2026-11-08T12:00:00Z", a[0], FIX_GP1, "independent");
    book_csnp("2026-11-09T09:00:00Z", sas, b[0], "2026-11-10T07:00:00Z");
    assign_shift("2026-11-09T12:00:00Z", b[0], FIX_GP1, "retired");
    assign_shift("2026-11-10T09:00:00Z", c[0], NULL, NULL);
    book_csnp("2026-11-11T09:00:00Z", f.pharmacy_id, d[0], "2026-11-12T07:00:00Z");

    /* The cohort follows the latest assignment recorded before its as_of:
     * before the reassignment B is GP2's as locum and C GP2's. */
    expect_rows("SELECT coalesce(rpps, '-') || ' ' || coalesce(duty_status, '-') || ' '"
                " || count(*) FROM snp_ind_slot_cohort('test-t', '2026-11-09T00:00:00Z',"
                " '2026-11-12T00:00:00Z', '2026-11-09T10:00:00Z')"
                " GROUP BY rpps, duty_status ORDER BY 1",
                "- - 1; " FIX_GP1 " independent 3; " FIX_GP2 " locum 3; " FIX_GP2 " resident 2",
                "the cohort before the reassignment");

    expect_rows(duty_breakdown_sql, duty_breakdown_want, "the duty status breakdown");
    /* The shifts' hours and SAS consultations are their practitioner's on
     * duty: A and B are GP1's, E and F GP2's; nothing of C, D or of B's
     * first days remains GP2's. */
    expect_rows(duty_participation_sql, duty_participation_want, "snp_ind_participation_v1");
    cr_expect_eq(sql_ll("SELECT value FROM snp_ind_rows('test-t', '2026-10-31T23:00:00Z',"
                        " '2026-11-30T23:00:00Z', '2026-12-07T23:00:00Z')"
                        " WHERE code = 'participating_gps'",
                        0, NULL),
                 2);
    /* The GP participation of 0021 reads the same cohort: GP1's week 46
     * has the 2.5 hours and both SAS bookings of A and B; GP2 has none. */
    expect_rows("SELECT iso_week || ' ' || slots || ' ' || hours || ' ' || open_2h"
                " FROM snp_participation_weeks('" FIX_GP1 "', '2026-11-01', '2026-11-30')"
                " WHERE slots > 0 ORDER BY iso_week",
                "2026-W46 6 2.50 true; 2026-W47 1 0.33 false", "GP1's weeks");
    expect_rows("SELECT iso_week || ' ' || sas || ' ' || array_to_string(refusals, ',')"
                " FROM snp_participation_bookings('" FIX_GP1 "', '2026-11-01', '2026-11-30')"
                " ORDER BY starts_at",
                "2026-W46 true no_precondition; 2026-W46 true no_precondition", "GP1's bookings");
    cr_expect_eq(sql_ll("SELECT count(*) FROM snp_participation_bookings('" FIX_GP2 "',"
                        " '2026-11-01', '2026-11-30')",
                        0, NULL),
                 0);

    /* Labelled and exported like every breakdown, with no special case:
     * the table, indicators.get, the CSV and the HTML report. */
    expect_rows("SELECT key_label || ' ' || value_text FROM snp_indicator_table('test-t', 'month',"
                " '2026-11') WHERE code = 'slots_by_duty_status' ORDER BY ord",
                "Libéral 3; Remplaçant 3; Retraité 3; Interne 2; Statut non renseigné 1;"
                " Non pourvu 5",
                "the published table");
    expect_rows("SELECT x ->> 'name' || ' ' || (x ->> 'value') FROM json_array_elements("
                "snp_indicators_get('test-t', '2026-11', 'token:c', 'coordinator') -> 'indicators')"
                " x WHERE x ->> 'name' LIKE 'slot_hours_by_duty_status__%' ORDER BY 1",
                "slot_hours_by_duty_status__independent 1.50; "
                "slot_hours_by_duty_status__locum 1.50; "
                "slot_hours_by_duty_status__not_stated 0.33; "
                "slot_hours_by_duty_status__resident 1.00; "
                "slot_hours_by_duty_status__retired 1.00; "
                "slot_hours_by_duty_status__unfilled 2.00",
                "indicators.get");
    static const char *const formats[][2] = {
        {"csv", ",slots_by_duty_status,1,creneaux,Créneaux des centres de soins non programmés"
                " par statut du médecin de garde,count,duty_status,unfilled,Non pourvu,5,"},
        {"html", "Non pourvu"},
    };
    for (size_t k = 0; k < 2; k++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/duty.%s", outdir, formats[k][0]);
        const char *args[] = {"--territory", "test-t",   "--month", "2026-11", "--format",
                              formats[k][0], "--output", path,      NULL};
        cr_assert_eq(run_command(NULL, args), 0);
        size_t len;
        char *text = slurp(path, &len);
        cr_expect(strstr(text, formats[k][1]) != NULL, "%s: no %s", formats[k][0], formats[k][1]);
        free(text);
    }

    /* An assignment after the consolidation instant changes nothing of
     * November; a later as_of sees it. */
    assign_shift("2026-12-10T09:00:00Z", d[0], FIX_GP2, "locum");
    expect_rows(duty_breakdown_sql, duty_breakdown_want, "after a late assignment");
    expect_rows(duty_participation_sql, duty_participation_want, "after a late assignment");
    cr_expect_eq(sql_ll("SELECT count(*) FROM snp_ind_slot_cohort('test-t', '2026-11-12T00:00:00Z',"
                        " '2026-11-13T00:00:00Z', '2026-12-31T00:00:00Z')"
                        " WHERE rpps = '" FIX_GP2 "' AND duty_status = 'locum'",
                        0, NULL),
                 2);
}

Test(indicators, command_usage)
{
    struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.database, sizeof(cfg.database), "%s", "host=/nonexistent dbname=x");
    static const char *const bad[][8] = {
        {"--month", "2026-10", NULL},
        {"--territory", "test-t", NULL},
        {"--territory", "test-t", "--month", "2026-13", NULL},
        {"--territory", "test-t", "--quarter", "2026-Q5", NULL},
        {"--territory", "test-t", "--month", "2026-10", "--year", "2026", NULL},
        {"--territory", "test-t", "--month", "2026-10", "--format", "pdf", NULL},
        {"--territory", "test-t", "--month", "2026-10", "--statement", "--format", "html", NULL},
        {"--territory", "Bad Id", "--month", "2026-10", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[10] = {(char *)"indicators"};
        int argc = 1;
        for (int k = 0; bad[i][k]; k++)
            argv[argc++] = (char *)bad[i][k];
        cr_expect_eq(indicators_command(&cfg, argc, argv), 2, "case %zu", i);
    }
}
