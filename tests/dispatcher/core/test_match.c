#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/core/match.h"
#include "dispatcher/core/model.h"

/*
 * Instants are plain seconds: matching never needs a time zone.  NOW is
 * 2026-06-01T06:00:00Z (08:00 in Paris, far from any DST change).
 */
#define NOW    INT64_C(1780293600)
#define MINUTE 60
#define HOUR   3600

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The patient lives in Redon; sites are placed due north of it. */
#define REDON_LAT  47.6514
#define REDON_LON  -2.0840
#define RENNES_LAT 48.1173
#define RENNES_LON -1.6778
/* 0.045 degree of latitude is 5.004 km on a 6371 km sphere. */
#define LAT_5KM 0.045

static struct site site_redon = {
    .id = 1, .kind = SITE_PRACTICE, .commune = "35236", .lat = REDON_LAT, .lon = REDON_LON};
static struct site site_5km = {
    .id = 2, .kind = SITE_PRACTICE, .lat = REDON_LAT + LAT_5KM, .lon = REDON_LON};
static struct site site_10km = {
    .id = 3, .kind = SITE_CSNP, .lat = REDON_LAT + 2 * LAT_5KM, .lon = REDON_LON};
static struct site site_rennes = {
    .id = 4, .kind = SITE_PRACTICE, .commune = "35238", .lat = RENNES_LAT, .lon = RENNES_LON};
/* A teleconsultation service far from the patient, on purpose. */
static struct site site_tele = {
    .id = 5, .kind = SITE_TELECONSULTATION, .lat = RENNES_LAT, .lon = RENNES_LON};

/* RPPS numbers of the demo territory. */
static struct practitioner gp_mt = {.rpps = "10999900011"};
static struct practitioner gp_a = {.rpps = "10999900029"};
static struct practitioner gp_b = {.rpps = "10999900037"};

/* A free office slot in `site`, open to pharmacies, without restrictions. */
static struct slot make_slot(int64_t id, struct site *site, int64_t start)
{
    struct slot s;
    memset(&s, 0, sizeof(s));
    s.id = id;
    s.site = site;
    s.start = start;
    s.duration_min = 15;
    s.mode = MODE_OFFICE;
    s.audience = AUD_PHARMACY;
    s.motifs = 0;
    s.min_age = -1;
    s.max_age = -1;
    s.release_minutes = 0;
    s.status = SLOT_FREE;
    return s;
}

/* A waiting pharmacy request for a 30-year-old in Redon, due within 24 h, 30 km at most. */
static struct request make_request(int64_t id)
{
    struct request r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.organisation_id = 7;
    r.kind = AUD_PHARMACY;
    r.motif = MOTIF_FEVER;
    r.urgency = URGENCY_24H;
    r.age = 30;
    r.created_at = NOW - 10 * MINUTE;
    r.deadline = NOW + 24 * HOUR;
    r.modes = MODE_ALL;
    r.max_distance_km = 30;
    r.lat = REDON_LAT;
    r.lon = REDON_LON;
    r.status = REQ_WAITING;
    return r;
}

/* Default weights, territory mean 0.5, nobody else waiting. */
static struct match_context make_context(void)
{
    struct match_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    model_weights_default(&ctx.weights);
    ctx.mean_booked_ratio = 0.5;
    return ctx;
}

static bool eligible(const struct request *r, const struct slot *s)
{
    double d;
    return match_eligible(r, s, NOW, &d);
}

/*
 * Ranks the two slots `a` and `b` (both must be eligible), in both input
 * orders, checks that the order does not depend on the input order, and
 * returns the id of the best one.  Stores both scores when asked.
 */
static int64_t best_of(const struct request *r, struct slot *a, struct slot *b,
                       const struct match_context *ctx, double *score_a, double *score_b)
{
    struct slot *ab[] = {a, b};
    struct slot *ba[] = {b, a};
    struct match_candidate o1[2], o2[2];

    cr_assert_eq(match_rank(r, ab, 2, ctx, o1, 2), 2, "both slots must be eligible");
    cr_assert_eq(match_rank(r, ba, 2, ctx, o2, 2), 2);
    cr_assert_eq(o1[0].slot, o2[0].slot, "the ranking depends on the input order");
    cr_assert_eq(o1[1].slot, o2[1].slot);
    if (score_a != NULL)
        *score_a = o1[0].slot == a ? o1[0].score : o1[1].score;
    if (score_b != NULL)
        *score_b = o1[0].slot == b ? o1[0].score : o1[1].score;
    return o1[0].slot->id;
}

/* ---- Names and parsers ------------------------------------------------ */

Test(match, model_names_round_trip)
{
    for (unsigned i = 0; i < 3; i++) {
        uint8_t bit = (uint8_t)(1u << i), back = 0;
        cr_assert_not_null(model_mode_name(bit));
        cr_expect(model_mode_parse(model_mode_name(bit), &back));
        cr_expect_eq(back, bit);
    }
    for (unsigned i = 0; i < 6; i++) {
        uint8_t bit = (uint8_t)(1u << i), back = 0;
        cr_assert_not_null(model_audience_name(bit));
        cr_expect(model_audience_parse(model_audience_name(bit), &back));
        cr_expect_eq(back, bit);
    }
    for (int m = 0; m < MOTIF_COUNT; m++) {
        enum motif back = MOTIF_COUNT;
        cr_assert_not_null(model_motif_name((enum motif)m));
        cr_expect(model_motif_parse(model_motif_name((enum motif)m), &back));
        cr_expect_eq(back, (enum motif)m);
    }
    for (int st = SLOT_FREE; st <= SLOT_EXPIRED; st++) {
        enum slot_status back = SLOT_FREE;
        cr_expect(model_slot_status_parse(model_slot_status_name((enum slot_status)st), &back));
        cr_expect_eq(back, (enum slot_status)st);
    }
    for (int st = REQ_WAITING; st <= REQ_UNSERVED; st++) {
        enum request_status back = REQ_WAITING;
        cr_expect(
            model_request_status_parse(model_request_status_name((enum request_status)st), &back));
        cr_expect_eq(back, (enum request_status)st);
    }
    for (int u = URGENCY_SAME_DAY; u <= URGENCY_48H; u++) {
        enum urgency back = URGENCY_SAME_DAY;
        cr_expect(model_urgency_parse(model_urgency_name((enum urgency)u), &back));
        cr_expect_eq(back, (enum urgency)u);
    }
    for (int k = SITE_PRACTICE; k <= SITE_TELECONSULTATION; k++) {
        enum site_kind back = SITE_PRACTICE;
        cr_expect(model_site_kind_parse(model_site_kind_name((enum site_kind)k), &back));
        cr_expect_eq(back, (enum site_kind)k);
    }
}

Test(match, model_names_match_sql_and_protocol)
{
    cr_expect_str_eq(model_mode_name(MODE_HOME), "home");
    cr_expect_str_eq(model_mode_name(MODE_TELECONSULTATION), "teleconsultation");
    cr_expect_str_eq(model_audience_name(AUD_EMERGENCY), "emergency");
    cr_expect_str_eq(model_audience_name(AUD_PUBLIC), "public");
    cr_expect_str_eq(model_motif_name(MOTIF_FEVER), "fever");
    cr_expect_str_eq(model_motif_name(MOTIF_MINOR_TRAUMA), "minor_trauma");
    cr_expect_str_eq(model_motif_name(MOTIF_OTHER), "other");
    cr_expect_str_eq(model_slot_status_name(SLOT_WITHDRAWN), "withdrawn");
    cr_expect_str_eq(model_request_status_name(REQ_UNSERVED), "unserved");
    cr_expect_str_eq(model_urgency_name(URGENCY_SAME_DAY), "same_day");
    cr_expect_str_eq(model_urgency_name(URGENCY_24H), "24h");
    cr_expect_str_eq(model_site_kind_name(SITE_CSNP), "csnp");
}

Test(match, model_parsers_refuse_unknown_names)
{
    uint8_t bit = 42;
    enum motif m = MOTIF_SKIN;
    enum urgency u = URGENCY_48H;

    cr_expect_not(model_mode_parse(NULL, &bit));
    cr_expect_not(model_mode_parse("", &bit));
    cr_expect_not(model_mode_parse("Office", &bit));
    cr_expect_not(model_mode_parse("office ", &bit));
    cr_expect_not(model_audience_parse("all", &bit));
    cr_expect_eq(bit, 42, "a failed parse must leave the output unchanged");
    cr_expect_not(model_motif_parse("flu", &m));
    cr_expect_eq(m, MOTIF_SKIN);
    cr_expect_not(model_urgency_parse("24 h", &u));
    cr_expect_eq(u, URGENCY_48H);

    cr_expect_null(model_mode_name(0));
    cr_expect_null(model_mode_name(MODE_OFFICE | MODE_HOME));
    cr_expect_null(model_audience_name(AUD_ALL));
    cr_expect_null(model_motif_name(MOTIF_COUNT));
    cr_expect_null(model_slot_status_name((enum slot_status)(SLOT_EXPIRED + 1)));
}

Test(match, weights_default)
{
    struct weights w;
    model_weights_default(&w);
    cr_expect_eq(w.start_per_hour, 1.0);
    cr_expect_eq(w.distance_per_km, 0.1);
    cr_expect_eq(w.own_mt_bonus, 4.0);
    cr_expect_eq(w.fairness, 2.0);
    cr_expect_eq(w.scarcity, 0.5);
}

/* ---- Distance --------------------------------------------------------- */

Test(match, distance_redon_rennes)
{
    double d = model_distance_km(REDON_LAT, REDON_LON, RENNES_LAT, RENNES_LON);
    cr_expect(fabs(d - 60.0) <= 3.0, "Redon-Rennes: %f km", d);
    cr_expect_eq(d, model_distance_km(RENNES_LAT, RENNES_LON, REDON_LAT, REDON_LON));
    cr_expect_eq(model_distance_km(REDON_LAT, REDON_LON, REDON_LAT, REDON_LON), 0.0);
    d = model_distance_km(REDON_LAT, REDON_LON, REDON_LAT + LAT_5KM, REDON_LON);
    cr_expect(fabs(d - 5.004) < 0.01, "0.045 degree north: %f km", d);
    /* Antipodes: half the circumference, not NaN. */
    d = model_distance_km(0, 0, 0, 180);
    cr_expect(fabs(d - 6371.0 * 3.14159265358979) < 0.01, "antipodes: %f km", d);
}

/* ---- Hard filters ----------------------------------------------------- */

Test(match, eligible_baseline)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    double d = -1;

    cr_expect(match_eligible(&r, &s, NOW, &d));
    cr_expect_eq(d, 0.0);
    cr_expect(match_eligible(&r, &s, NOW, NULL), "distance_km may be NULL");
}

Test(match, filter_slot_status)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    enum slot_status others[] = {SLOT_HELD, SLOT_BOOKED, SLOT_WITHDRAWN, SLOT_EXPIRED};

    cr_expect(eligible(&r, &s));
    for (size_t i = 0; i < COUNT(others); i++) {
        s.status = others[i];
        cr_expect_not(eligible(&r, &s), "status %s", model_slot_status_name(others[i]));
    }
}

Test(match, filter_minimum_lead_time)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + MATCH_MIN_LEAD_S + 1);

    cr_expect(eligible(&r, &s));
    s.start = NOW + MATCH_MIN_LEAD_S;
    cr_expect_not(eligible(&r, &s), "exactly 5 minutes ahead is too late to get there");
    s.start = NOW - HOUR;
    cr_expect_not(eligible(&r, &s), "a past slot");
}

Test(match, filter_deadline)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, r.deadline);

    cr_expect(eligible(&r, &s), "a slot starting at the deadline meets it");
    s.start = r.deadline + 1;
    cr_expect_not(eligible(&r, &s));
}

Test(match, filter_mode)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);

    r.modes = MODE_OFFICE;
    cr_expect(eligible(&r, &s));
    s.mode = MODE_HOME;
    cr_expect_not(eligible(&r, &s));
    s.mode = MODE_TELECONSULTATION;
    cr_expect_not(eligible(&r, &s));
    r.modes = MODE_OFFICE | MODE_TELECONSULTATION;
    cr_expect(eligible(&r, &s));
}

Test(match, filter_audience)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);

    s.audience = AUD_SAS | AUD_PHARMACY;
    cr_expect(eligible(&r, &s));
    s.audience = AUD_SAS | AUD_EMERGENCY;
    cr_expect_not(eligible(&r, &s));
    s.audience = AUD_PUBLIC;
    cr_expect(eligible(&r, &s), "public means any requester kind");
    r.kind = AUD_DESK;
    cr_expect(eligible(&r, &s));
}

Test(match, filter_motif_restriction)
{
    struct request r = make_request(1); /* fever */
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);

    cr_expect(eligible(&r, &s), "no restriction");
    s.motifs = 1u << MOTIF_ENT;
    cr_expect_not(eligible(&r, &s));
    s.motifs = (1u << MOTIF_ENT) | (1u << MOTIF_FEVER);
    cr_expect(eligible(&r, &s));
    r.motif = MOTIF_OTHER;
    cr_expect_not(eligible(&r, &s));
}

Test(match, filter_min_age)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);

    s.min_age = 18;
    cr_expect(eligible(&r, &s));
    r.age = 18;
    cr_expect(eligible(&r, &s), "the bound is inclusive");
    r.age = 17;
    cr_expect_not(eligible(&r, &s));
    s.min_age = -1;
    cr_expect(eligible(&r, &s));
}

Test(match, filter_max_age)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);

    s.min_age = 0;
    s.max_age = 15; /* children only */
    cr_expect_not(eligible(&r, &s));
    r.age = 15;
    cr_expect(eligible(&r, &s), "the bound is inclusive");
    r.age = 0;
    cr_expect(eligible(&r, &s));
    r.age = 30;
    s.max_age = -1;
    cr_expect(eligible(&r, &s));
}

Test(match, filter_declined)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + HOUR);
    int64_t declined[] = {99, 10, 11};

    r.declined = declined;
    r.ndeclined = 1;
    cr_expect(eligible(&r, &s));
    r.ndeclined = 3;
    cr_expect_not(eligible(&r, &s));
}

Test(match, filter_maximum_distance)
{
    struct request r = make_request(1); /* 30 km at most */
    struct slot s = make_slot(10, &site_rennes, NOW + HOUR);
    double d = -1;

    cr_expect_not(match_eligible(&r, &s, NOW, &d));
    cr_expect_eq(d, -1, "distance_km untouched when not eligible");
    r.max_distance_km = 61;
    cr_expect(match_eligible(&r, &s, NOW, &d));
    cr_expect(fabs(d - 60.0) < 0.1, "distance %f", d);
    r.max_distance_km = 59;
    cr_expect_not(eligible(&r, &s));
    r.max_distance_km = 0; /* no limit: the distance is still reported, for the score */
    d = -1;
    cr_expect(match_eligible(&r, &s, NOW, &d));
    cr_expect(fabs(d - 60.0) < 0.1, "distance %f", d);
}

Test(match, filter_distance_ignored_for_teleconsultation)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_tele, NOW + HOUR);
    double d = -1;

    r.max_distance_km = 10;
    s.mode = MODE_TELECONSULTATION;
    cr_expect(match_eligible(&r, &s, NOW, &d));
    cr_expect_eq(d, 0.0, "teleconsultation reports distance 0");
    s.mode = MODE_OFFICE; /* the same site as an office: too far */
    cr_expect_not(eligible(&r, &s));
}

Test(match, filter_distance_of_home_visit_from_site)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_rennes, NOW + HOUR);

    s.mode = MODE_HOME;
    cr_expect_not(eligible(&r, &s), "the doctor would travel 60 km");
    s.site = &site_5km;
    cr_expect(eligible(&r, &s));
}

/* ---- Release rule ----------------------------------------------------- */

Test(match, open_to_audience)
{
    struct slot s = make_slot(10, &site_redon, NOW + 3 * HOUR);

    s.audience = AUD_SAS | AUD_EMERGENCY;
    cr_expect(match_slot_open_to(&s, AUD_SAS, NOW));
    cr_expect(match_slot_open_to(&s, AUD_EMERGENCY, NOW));
    cr_expect_not(match_slot_open_to(&s, AUD_PHARMACY, NOW));
    s.audience = AUD_PUBLIC;
    cr_expect(match_slot_open_to(&s, AUD_PHARMACY, NOW));
    cr_expect(match_slot_open_to(&s, AUD_PROFESSIONAL, NOW));
}

Test(match, release_rule_threshold)
{
    struct request r = make_request(1);
    struct slot s = make_slot(10, &site_redon, NOW + 3 * HOUR);
    int64_t threshold = s.start - 120 * MINUTE;

    s.audience = AUD_SAS;
    s.release_minutes = 120;
    cr_expect_not(match_slot_open_to(&s, AUD_PHARMACY, threshold - 1));
    cr_expect_not(match_eligible(&r, &s, threshold - 1, NULL));
    cr_expect(match_slot_open_to(&s, AUD_PHARMACY, threshold));
    cr_expect(match_eligible(&r, &s, threshold, NULL));
    cr_expect(match_slot_open_to(&s, AUD_DESK, threshold + HOUR), "open to every kind");
    cr_expect(match_slot_open_to(&s, AUD_SAS, threshold - 1), "its own audience all along");
}

/* Kind 0 asks whether a slot is open to everyone (fhir.c's PUBLIC type),
 * and match_slot_audiences gives every kind a slot is open to at once
 * (capacity.query): both by the same rule as one kind at a time. */
Test(match, open_to_everyone_and_every_audience)
{
    struct slot s = make_slot(10, &site_redon, NOW + 3 * HOUR);
    int64_t released_at = s.start - 60 * MINUTE;

    s.audience = AUD_SAS | AUD_PHARMACY;
    s.release_minutes = 60;
    cr_expect_not(match_slot_open_to(&s, 0, released_at - 1));
    cr_expect_eq(match_slot_audiences(&s, released_at - 1), AUD_SAS | AUD_PHARMACY);
    cr_expect(match_slot_open_to(&s, 0, released_at), "released: open to everyone");
    cr_expect_eq(match_slot_audiences(&s, released_at), AUD_ALL);
    s.audience = AUD_PUBLIC;
    s.release_minutes = 0;
    cr_expect(match_slot_open_to(&s, 0, NOW), "published for the public");
    cr_expect_eq(match_slot_audiences(&s, NOW), AUD_ALL);
    for (uint8_t audience = 0; audience <= AUD_ALL; audience++) {
        s.audience = audience;
        for (int kind = 0; kind < 6; kind++)
            cr_expect_eq(match_slot_open_to(&s, (uint8_t)(1u << kind), NOW),
                         (match_slot_audiences(&s, NOW) >> kind) & 1, "audience %u, kind %d",
                         audience, kind);
    }
}

Test(match, release_rule_absent)
{
    struct slot s = make_slot(10, &site_redon, NOW + 3 * HOUR);

    s.audience = AUD_SAS;
    s.release_minutes = 0;
    cr_expect_not(match_slot_open_to(&s, AUD_PHARMACY, s.start - 10 * MINUTE));
    cr_expect_not(match_slot_open_to(&s, AUD_PHARMACY, s.start + HOUR));
}

/* ---- Each score term on its own -------------------------------------- */

Test(match, score_start)
{
    struct request r = make_request(1);
    struct slot later = make_slot(1, &site_redon, NOW + 3 * HOUR);
    struct slot sooner = make_slot(2, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double a, b;

    cr_expect_eq(best_of(&r, &later, &sooner, &ctx, &a, &b), 2);
    cr_expect(fabs(a - 3.0) < 1e-9 && fabs(b - 2.0) < 1e-9, "scores %f %f", a, b);
    ctx.weights.start_per_hour = 0;
    cr_expect_eq(best_of(&r, &later, &sooner, &ctx, &a, &b), 2, "tie broken by start");
    cr_expect_eq(a, b);
}

Test(match, score_distance)
{
    struct request r = make_request(1);
    struct slot far = make_slot(1, &site_10km, NOW + 2 * HOUR);
    struct slot near = make_slot(2, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double a, b;

    cr_expect_eq(best_of(&r, &far, &near, &ctx, &a, &b), 2);
    cr_expect(fabs((a - b) - 1.0008) < 1e-3, "10 km cost one hour: %f", a - b);
    ctx.weights.distance_per_km = 0;
    cr_expect_eq(best_of(&r, &far, &near, &ctx, &a, &b), 1, "tie broken by id");
    cr_expect_eq(a, b);
}

Test(match, score_own_mt)
{
    struct request r = make_request(1);
    struct slot other = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct slot own = make_slot(2, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double a, b;

    other.practitioner = &gp_a; /* neither published: no fairness term */
    own.practitioner = &gp_mt;
    memcpy(r.mt_rpps, gp_mt.rpps, sizeof(r.mt_rpps));
    cr_expect_eq(best_of(&r, &other, &own, &ctx, &a, &b), 2);
    cr_expect(fabs((a - b) - 4.0) < 1e-9);
    ctx.weights.own_mt_bonus = 0;
    cr_expect_eq(best_of(&r, &other, &own, &ctx, &a, &b), 1, "tie broken by id");
    cr_expect_eq(a, b);

    /* No médecin traitant, or another one: no bonus. */
    ctx = make_context();
    r.mt_rpps[0] = '\0';
    cr_expect_eq(best_of(&r, &other, &own, &ctx, &a, &b), 1);
    cr_expect_eq(a, b);
    memcpy(r.mt_rpps, gp_b.rpps, sizeof(r.mt_rpps));
    cr_expect_eq(best_of(&r, &other, &own, &ctx, &a, &b), 1);
    cr_expect_eq(a, b);
}

Test(match, score_fairness)
{
    struct request r = make_request(1);
    struct practitioner busy = {.rpps = "10999900029", .published = 10, .booked = 8};
    struct practitioner idle = {.rpps = "10999900037", .published = 10, .booked = 2};
    struct practitioner *all[] = {&busy, &idle};
    struct slot s_busy = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct slot s_idle = make_slot(2, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double a, b;

    s_busy.practitioner = &busy;
    s_idle.practitioner = &idle;
    ctx.mean_booked_ratio = match_mean_booked_ratio(all, COUNT(all));
    cr_expect_eq(best_of(&r, &s_busy, &s_idle, &ctx, &a, &b), 2, "the under-booked GP first");
    cr_expect(fabs(a - (2.0 + 2.0 * 0.3)) < 1e-9, "busy: %f", a);
    cr_expect(fabs(b - (2.0 - 2.0 * 0.3)) < 1e-9, "idle: %f", b);
    ctx.weights.fairness = 0;
    cr_expect_eq(best_of(&r, &s_busy, &s_idle, &ctx, &a, &b), 1, "tie broken by id");
    cr_expect_eq(a, b);
}

Test(match, score_fairness_absent_without_publication)
{
    struct request r = make_request(1);
    struct practitioner none = {.rpps = "10999900045", .published = 0, .booked = 0};
    struct slot shift = make_slot(1, &site_10km, NOW + 2 * HOUR); /* CSNP shift */
    struct slot unpublished = make_slot(2, &site_10km, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double d;

    unpublished.practitioner = &none;
    ctx.weights.distance_per_km = 0;
    ctx.mean_booked_ratio = 0.7; /* would move the score if the term applied */
    cr_assert(match_eligible(&r, &shift, NOW, &d));
    cr_expect(fabs(match_score(&r, &shift, d, &ctx) - 2.0) < 1e-9);
    cr_expect(fabs(match_score(&r, &unpublished, d, &ctx) - 2.0) < 1e-9);
}

Test(match, score_scarcity)
{
    struct request r = make_request(1);
    struct request sas = make_request(2);
    struct request *waiting[] = {&sas};
    struct slot shared = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct slot exclusive = make_slot(2, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();
    double a, b;

    sas.kind = AUD_SAS;
    shared.audience = AUD_PHARMACY | AUD_SAS;
    exclusive.audience = AUD_PHARMACY;
    ctx.waiting = waiting;
    ctx.nwaiting = COUNT(waiting);
    cr_expect_eq(best_of(&r, &shared, &exclusive, &ctx, &a, &b), 2,
                 "the slot no other request can use first");
    cr_expect(fabs((a - b) - 0.5) < 1e-9);
    ctx.weights.scarcity = 0;
    cr_expect_eq(best_of(&r, &shared, &exclusive, &ctx, &a, &b), 1, "tie broken by id");
    cr_expect_eq(a, b);
}

Test(match, score_scarcity_counts_only_others_that_are_eligible)
{
    struct request r = make_request(1);
    struct request self = make_request(1); /* r as stored in the waiting list */
    struct request early = make_request(3);
    struct request other1 = make_request(4);
    struct request other2 = make_request(5);
    struct request *waiting[] = {&self, &early, &other1, &other2};
    struct slot s = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct match_context ctx = make_context();

    early.deadline = NOW + HOUR; /* cannot use a slot in 2 h */
    ctx.waiting = waiting;
    ctx.nwaiting = 2;
    cr_expect(fabs(match_score(&r, &s, 0, &ctx) - 2.0) < 1e-9, "neither self nor early count");
    ctx.nwaiting = 4;
    cr_expect(fabs(match_score(&r, &s, 0, &ctx) - 3.0) < 1e-9, "two others: 2 x 0.5");
}

/* ---- Terms in combination --------------------------------------------- */

Test(match, combination_distance_against_start)
{
    struct request r = make_request(1);
    struct slot far_sooner = make_slot(1, &site_5km, NOW + 2 * HOUR);
    struct slot near_later = make_slot(2, &site_redon, NOW + 3 * HOUR);
    struct match_context ctx = make_context();

    /* Defaults: 5 km cost 0.5 h, less than the hour saved. */
    cr_expect_eq(best_of(&r, &far_sooner, &near_later, &ctx, NULL, NULL), 1);
    /* 0.5 per km: 5 km cost 2.5 h, more than the hour saved. */
    ctx.weights.distance_per_km = 0.5;
    cr_expect_eq(best_of(&r, &far_sooner, &near_later, &ctx, NULL, NULL), 2);
}

Test(match, combination_own_mt_within_bonus_only)
{
    struct request r = make_request(1);
    struct slot other = make_slot(1, &site_redon, NOW + HOUR);
    struct slot own = make_slot(2, &site_redon, NOW + 4 * HOUR);
    struct match_context ctx = make_context();

    other.practitioner = &gp_a;
    own.practitioner = &gp_mt;
    memcpy(r.mt_rpps, gp_mt.rpps, sizeof(r.mt_rpps));
    cr_expect_eq(best_of(&r, &other, &own, &ctx, NULL, NULL), 2, "3 h later: own GP wins");
    own.start = NOW + 6 * HOUR;
    cr_expect_eq(best_of(&r, &other, &own, &ctx, NULL, NULL), 1, "5 h later: beyond the bonus");
}

Test(match, combination_fairness_against_start)
{
    struct request r = make_request(1);
    struct practitioner busy = {.rpps = "10999900029", .published = 10, .booked = 8};
    struct practitioner idle = {.rpps = "10999900037", .published = 10, .booked = 2};
    struct slot s_busy = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct slot s_idle = make_slot(2, &site_redon, NOW + 3 * HOUR);
    struct match_context ctx = make_context(); /* mean 0.5: terms +0.6 and -0.6 */

    s_busy.practitioner = &busy;
    s_idle.practitioner = &idle;
    cr_expect_eq(best_of(&r, &s_busy, &s_idle, &ctx, NULL, NULL), 2, "1 h later < 1.2");
    s_idle.start = NOW + 4 * HOUR;
    cr_expect_eq(best_of(&r, &s_busy, &s_idle, &ctx, NULL, NULL), 1, "2 h later > 1.2");
}

Test(match, combination_scarcity_against_start)
{
    struct request r = make_request(1);
    struct request o1 = make_request(2), o2 = make_request(3), o3 = make_request(4);
    struct request *waiting[] = {&o1, &o2, &o3};
    struct slot shared = make_slot(1, &site_redon, NOW + 2 * HOUR);
    struct slot exclusive = make_slot(2, &site_redon, NOW + 3 * HOUR);
    struct match_context ctx = make_context();

    o1.kind = o2.kind = o3.kind = AUD_EMERGENCY;
    shared.audience = AUD_PHARMACY | AUD_EMERGENCY;
    ctx.waiting = waiting;
    ctx.nwaiting = COUNT(waiting);
    cr_expect_eq(best_of(&r, &shared, &exclusive, &ctx, NULL, NULL), 2,
                 "three competitors (1.5) outweigh one hour");
    exclusive.start = NOW + 4 * HOUR;
    cr_expect_eq(best_of(&r, &shared, &exclusive, &ctx, NULL, NULL), 1, "but not two hours");
}

Test(match, combination_all_terms_add_up)
{
    struct request r = make_request(1);
    struct request o1 = make_request(2), o2 = make_request(3);
    struct request *waiting[] = {&r, &o1, &o2};
    struct practitioner mt = {.rpps = "10999900011", .published = 4, .booked = 1};
    struct slot s = make_slot(1, &site_5km, NOW + 2 * HOUR);
    struct match_context ctx = make_context(); /* mean 0.5 */
    double d;

    s.practitioner = &mt;
    memcpy(r.mt_rpps, mt.rpps, sizeof(r.mt_rpps));
    ctx.waiting = waiting;
    ctx.nwaiting = COUNT(waiting);
    cr_assert(match_eligible(&r, &s, NOW, &d));
    /* start 2 h + 0.1 x 5.004 km - own GP 4 + 2 x (0.25 - 0.5) + 0.5 x 2 others */
    double want = 2.0 + 0.1 * d - 4.0 - 0.5 + 1.0;
    cr_expect(fabs(match_score(&r, &s, d, &ctx) - want) < 1e-9, "score %f, want %f",
              match_score(&r, &s, d, &ctx), want);
}

/* A brief as the store writes it beside a live slot (store.c). */
static struct slot_brief brief_of(const struct slot *s)
{
    return (struct slot_brief){.start = s->start,
                               .release_minutes = (uint16_t)s->release_minutes,
                               .status = (uint8_t)s->status & 0xf,
                               .mode = s->mode & 0xf,
                               .audience = s->audience};
}

/* ---- match_rank ------------------------------------------------------- */

Test(match, rank_orders_best_first_and_skips_ineligible)
{
    struct request r = make_request(1);
    struct slot s1 = make_slot(1, &site_redon, NOW + 5 * HOUR);
    struct slot s2 = make_slot(2, &site_redon, NOW + 1 * HOUR);
    struct slot s3 = make_slot(3, &site_rennes, NOW + 30 * MINUTE); /* too far */
    struct slot s4 = make_slot(4, &site_10km, NOW + 2 * HOUR);      /* 2 + 1.0008 */
    struct slot s5 = make_slot(5, &site_redon, NOW + 3 * HOUR);     /* 3 */
    struct slot s6 = make_slot(6, &site_redon, NOW + 2 * HOUR);     /* held */
    struct slot *slots[] = {&s1, &s2, &s3, &s4, &s5, &s6};
    struct match_context ctx = make_context();
    struct match_candidate out[8];
    int64_t want[] = {2, 5, 4, 1};

    s6.status = SLOT_HELD;
    size_t n = match_rank(&r, slots, COUNT(slots), &ctx, out, COUNT(out));
    cr_assert_eq(n, COUNT(want));
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(out[i].slot->id, want[i], "position %zu: slot %lld, want %lld", i,
                     (long long)out[i].slot->id, (long long)want[i]);
        if (i > 0)
            cr_expect(out[i - 1].score <= out[i].score);
    }
    cr_expect(fabs(out[2].distance_km - 10.0) < 0.05);
    cr_expect_eq(out[0].distance_km, 0.0);
}

Test(match, rank_truncates_to_max)
{
    struct request r = make_request(1);
    struct slot s[6];
    struct slot *slots[6];
    struct match_context ctx = make_context();
    struct match_candidate all[6], top[3];

    /* Starts in an order unrelated to the ids or the array order. */
    int hours[] = {4, 2, 6, 1, 5, 3};
    for (size_t i = 0; i < 6; i++) {
        s[i] = make_slot((int64_t)i + 1, &site_redon, NOW + hours[i] * HOUR);
        slots[i] = &s[i];
    }
    cr_assert_eq(match_rank(&r, slots, 6, &ctx, all, 6), 6);
    cr_assert_eq(match_rank(&r, slots, 6, &ctx, top, 3), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(top[i].slot, all[i].slot);
        cr_expect_eq(top[i].slot->start, NOW + (int64_t)(i + 1) * HOUR);
    }
    cr_expect_eq(match_rank(&r, slots, 6, &ctx, top, 1), 1);
    cr_expect_eq(top[0].slot->id, 4);
    cr_expect_eq(match_rank(&r, slots, 6, &ctx, NULL, 0), 0);
    cr_expect_eq(match_rank(&r, slots, 0, &ctx, top, 3), 0);
}

Test(match, rank_ties_are_deterministic)
{
    struct request r = make_request(1);
    struct slot s[8];
    struct slot *slots[8], *perm[8];
    struct match_context ctx = make_context();
    struct match_candidate out[5];

    /* All weights 0: every score ties; order is by start, then id. */
    memset(&ctx.weights, 0, sizeof(ctx.weights));
    int64_t ids[] = {17, 3, 42, 8, 5, 23, 11, 2};
    int hours[] = {2, 2, 1, 3, 2, 1, 3, 4};
    for (size_t i = 0; i < 8; i++) {
        s[i] = make_slot(ids[i], &site_redon, NOW + hours[i] * HOUR);
        slots[i] = &s[i];
    }
    int64_t want[] = {23, 42, 3, 5, 17}; /* 1 h: 23, 42; 2 h: 3, 5, 17 */
    for (size_t shift = 0; shift < 8; shift++) {
        for (int reverse = 0; reverse < 2; reverse++) {
            for (size_t i = 0; i < 8; i++) {
                size_t j = (i + shift) % 8;
                perm[i] = slots[reverse ? 7 - j : j];
            }
            cr_assert_eq(match_rank(&r, perm, 8, &ctx, out, COUNT(out)), COUNT(out));
            for (size_t i = 0; i < COUNT(out); i++)
                cr_expect_eq(out[i].slot->id, want[i], "shift %zu reverse %d position %zu", shift,
                             reverse, i);
        }
    }
}

Test(match, rank_none_eligible)
{
    struct request r = make_request(1);
    struct slot s1 = make_slot(1, &site_redon, NOW + 48 * HOUR); /* after the deadline */
    struct slot s2 = make_slot(2, &site_redon, NOW + HOUR);
    struct slot *slots[] = {&s1, &s2};
    struct match_context ctx = make_context();
    struct match_candidate out[2];

    s2.audience = AUD_SAS;
    cr_expect_eq(match_rank(&r, slots, 2, &ctx, out, 2), 0);
}

/* ---- match_pick_request ----------------------------------------------- */

/*
 * Calls match_pick_request() on `reqs` in the given order and reversed, checks
 * both agree, and returns the id picked (0 for none).
 */
static int64_t pick(const struct slot *s, struct request **reqs, size_t n)
{
    struct request *rev[16];
    cr_assert(n <= COUNT(rev));
    for (size_t i = 0; i < n; i++)
        rev[i] = reqs[n - 1 - i];
    struct request *a = match_pick_request(s, reqs, n, NOW);
    struct request *b = match_pick_request(s, rev, n, NOW);
    cr_assert_eq(a, b, "the pick depends on the order of the list");
    return a == NULL ? 0 : a->id;
}

Test(match, pick_earliest_deadline_first)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(1), b = make_request(2), c = make_request(3);
    struct request *reqs[] = {&a, &b, &c};

    a.deadline = NOW + 24 * HOUR;
    b.deadline = NOW + 6 * HOUR;
    b.urgency = URGENCY_48H; /* the deadline decides before the urgency */
    b.created_at = NOW;
    c.deadline = NOW + 12 * HOUR;
    c.urgency = URGENCY_SAME_DAY;
    cr_expect_eq(pick(&s, reqs, 3), 2);
}

Test(match, pick_urgency_breaks_deadline_tie)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(1), b = make_request(2), c = make_request(3);
    struct request *reqs[] = {&a, &b, &c};

    a.urgency = URGENCY_48H;
    b.urgency = URGENCY_24H;
    c.urgency = URGENCY_SAME_DAY;
    c.created_at = NOW; /* the latest, still first */
    cr_expect_eq(pick(&s, reqs, 3), 3);
    c.urgency = URGENCY_48H;
    cr_expect_eq(pick(&s, reqs, 3), 2);
}

Test(match, pick_created_at_breaks_urgency_tie)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(1), b = make_request(2);
    struct request *reqs[] = {&a, &b};

    a.created_at = NOW - 5 * MINUTE;
    b.created_at = NOW - 20 * MINUTE;
    cr_expect_eq(pick(&s, reqs, 2), 2);
}

Test(match, pick_id_breaks_remaining_tie)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(7), b = make_request(5), c = make_request(9);
    struct request *reqs[] = {&a, &b, &c};

    cr_expect_eq(pick(&s, reqs, 3), 5);
}

Test(match, pick_ignores_requests_not_waiting)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(1), b = make_request(2), c = make_request(3),
                   d = make_request(4), e = make_request(5);
    struct request *reqs[] = {&a, &b, &c, &d, &e};

    a.status = REQ_OFFERED;
    b.status = REQ_BOOKED;
    c.status = REQ_CANCELLED;
    d.status = REQ_UNSERVED;
    e.deadline = NOW + 30 * HOUR; /* the latest deadline, but the only one waiting */
    cr_expect_eq(pick(&s, reqs, 5), 5);
    e.status = REQ_OFFERED;
    cr_expect_eq(pick(&s, reqs, 5), 0);
}

Test(match, pick_ignores_ineligible_requests)
{
    struct slot s = make_slot(10, &site_redon, NOW + 2 * HOUR);
    struct request a = make_request(1), b = make_request(2), c = make_request(3),
                   d = make_request(4), e = make_request(5);
    struct request *reqs[] = {&a, &b, &c, &d, &e};
    int64_t declined[] = {10};

    s.audience = AUD_PHARMACY | AUD_SAS;
    a.deadline = NOW + HOUR; /* before the slot */
    b.kind = AUD_EMERGENCY;  /* not in the audience */
    b.deadline = NOW + 3 * HOUR;
    c.declined = declined; /* declined it already */
    c.ndeclined = 1;
    c.deadline = NOW + 3 * HOUR;
    d.modes = MODE_TELECONSULTATION;
    d.deadline = NOW + 3 * HOUR;
    e.kind = AUD_SAS;
    cr_expect_eq(pick(&s, reqs, 5), 5);
    s.status = SLOT_HELD;
    cr_expect_eq(pick(&s, reqs, 5), 0, "a slot that is not free goes to nobody");
    cr_expect_null(match_pick_request(&s, NULL, 0, NOW));
}

/* ---- match_mean_booked_ratio ----------------------------------------- */

Test(match, mean_booked_ratio)
{
    struct practitioner a = {.published = 10, .booked = 8};
    struct practitioner b = {.published = 10, .booked = 2};
    struct practitioner c = {.published = 4, .booked = 2};
    struct practitioner none = {.published = 0, .booked = 0};
    struct practitioner *all[] = {&a, &b, &none, &c};
    struct practitioner *idle[] = {&none};

    cr_expect(fabs(match_mean_booked_ratio(all, COUNT(all)) - 0.5) < 1e-12,
              "(0.8 + 0.2 + 0.5) / 3, the one who published nothing left out");
    cr_expect_eq(match_mean_booked_ratio(idle, 1), 0.0);
    cr_expect_eq(match_mean_booked_ratio(NULL, 0), 0.0);
}

/* ---- match_rank_sorted ------------------------------------------------ */

/* A small deterministic generator, so that a failure can be replayed. */
static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static int compare_start(const void *a, const void *b)
{
    const struct slot *x = *(struct slot *const *)a, *y = *(struct slot *const *)b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Ranking runs of slots sorted by start, with their briefs, and stopping
 * early, gives exactly what ranking every slot gives: for many random
 * territories (slots free, held or booked, of every mode, for every
 * audience, some with a release rule), with every rule
 * weighted (médecin traitant bonus, fairness, scarcity included). */
Test(match, rank_sorted_equals_the_full_ranking)
{
    enum { SLOTS = 300, RUNS = 3, MAX = 4, ROUNDS = 200 };
    static struct slot s[SLOTS];
    struct slot *runs[RUNS][SLOTS], *all[SLOTS];
    static struct slot_brief briefs[RUNS][SLOTS];
    size_t nrun[RUNS];
    struct site *sites[] = {&site_redon, &site_5km, &site_10km, &site_rennes, &site_tele};
    struct practitioner *gps[] = {&gp_mt, &gp_a, &gp_b, NULL};
    struct request waiting[3];
    struct request *waiting_ptrs[3];
    uint32_t seed = 42;

    for (int round = 0; round < ROUNDS; round++) {
        gp_mt.published = 10, gp_mt.booked = next_random(&seed) % 11;
        gp_a.published = 10, gp_a.booked = next_random(&seed) % 11;
        gp_b.published = 0, gp_b.booked = 0;
        memset(nrun, 0, sizeof(nrun));
        for (size_t i = 0; i < SLOTS; i++) {
            s[i] = make_slot((int64_t)i + 1, sites[next_random(&seed) % COUNT(sites)],
                             NOW + (int64_t)(next_random(&seed) % (30 * 60)) * MINUTE);
            s[i].practitioner = gps[next_random(&seed) % COUNT(gps)];
            if (s[i].site == &site_tele)
                s[i].mode = MODE_TELECONSULTATION;
            else if (next_random(&seed) % 4 == 0)
                s[i].mode = MODE_HOME;
            if (next_random(&seed) % 7 == 0)
                s[i].status = SLOT_HELD;
            else if (next_random(&seed) % 3 == 0)
                s[i].status = SLOT_BOOKED;
            if (next_random(&seed) % 11 == 0)
                s[i].pending = true;
            if (next_random(&seed) % 5 == 0)
                s[i].audience = AUD_SAS;
            else if (next_random(&seed) % 8 == 0)
                s[i].audience = AUD_PUBLIC;
            if (next_random(&seed) % 4 == 0) /* released to all, or not yet */
                s[i].release_minutes = 10 + (int)(next_random(&seed) % 600);
            all[i] = &s[i];
            size_t k = next_random(&seed) % RUNS;
            runs[k][nrun[k]++] = &s[i];
        }
        for (size_t k = 0; k < RUNS; k++) {
            qsort(runs[k], nrun[k], sizeof(runs[k][0]), compare_start);
            for (size_t i = 0; i < nrun[k]; i++)
                briefs[k][i] = brief_of(runs[k][i]);
        }
        struct request r = make_request(100);
        if (next_random(&seed) % 3 != 0) /* a patient with a médecin traitant, or none */
            snprintf(r.mt_rpps, sizeof(r.mt_rpps), "%s", gp_mt.rpps);
        r.deadline = NOW + (int64_t)(1 + next_random(&seed) % 30) * HOUR;
        if (next_random(&seed) % 3 == 0)
            r.modes = (uint8_t)(1 + next_random(&seed) % MODE_ALL);
        uint8_t kinds[] = {AUD_PHARMACY, AUD_SAS, AUD_DESK};
        r.kind = kinds[next_random(&seed) % COUNT(kinds)];
        for (size_t i = 0; i < COUNT(waiting); i++) {
            waiting[i] = make_request((int64_t)i + 1);
            waiting_ptrs[i] = &waiting[i];
        }
        struct match_context ctx = make_context();
        ctx.weights.scarcity = 0.5;
        ctx.weights.own_mt_bonus = (double)(next_random(&seed) % 8);
        ctx.weights.fairness = (double)(next_random(&seed) % 5);
        ctx.mean_booked_ratio = (double)(next_random(&seed) % 11) / 10.0;
        ctx.waiting = waiting_ptrs;
        ctx.nwaiting = COUNT(waiting);

        /* The full ranking, over the slots that are not pending. */
        struct slot *settled[SLOTS];
        size_t nsettled = 0;
        for (size_t i = 0; i < SLOTS; i++)
            if (!all[i]->pending)
                settled[nsettled++] = all[i];
        struct match_candidate want[MAX], got[MAX];
        size_t nwant = match_rank(&r, settled, nsettled, &ctx, want, MAX);
        size_t ngot = 0;
        for (size_t k = 0; k < RUNS; k++)
            match_rank_sorted(&r, runs[k], briefs[k], nrun[k], &ctx, got, &ngot, MAX);
        cr_assert_eq(ngot, nwant, "round %d: %zu candidates, want %zu", round, ngot, nwant);
        for (size_t i = 0; i < nwant; i++)
            cr_assert_eq(got[i].slot, want[i].slot, "round %d, position %zu: slot %lld, want %lld",
                         round, i, (long long)got[i].slot->id, (long long)want[i].slot->id);
    }
}

Test(match, slots_after_bisects)
{
    struct slot s[4];
    struct slot *p[4];
    int64_t starts[] = {10, 20, 20, 30};
    for (size_t i = 0; i < 4; i++) {
        s[i] = make_slot((int64_t)i + 1, &site_redon, starts[i]);
        p[i] = &s[i];
    }
    cr_expect_eq(model_slots_after(p, 4, 0), 0);
    cr_expect_eq(model_slots_after(p, 4, 10), 1);
    cr_expect_eq(model_slots_after(p, 4, 19), 1);
    cr_expect_eq(model_slots_after(p, 4, 20), 3);
    cr_expect_eq(model_slots_after(p, 4, 30), 4);
    cr_expect_eq(model_slots_after(p, 0, 30), 0);
}

/* A ranking given a distance memo (one entry per site index) ranks exactly
 * as one without, and leaves in the memo each site's distance from the
 * request, computed once; a site whose index the memo does not cover is
 * measured each time. */
Test(match, rank_with_a_site_memo_ranks_the_same)
{
    struct site *sites[] = {&site_redon, &site_5km, &site_10km, &site_rennes, &site_tele};
    for (size_t i = 0; i < COUNT(sites); i++)
        sites[i]->index = i;
    struct request r = make_request(1);
    struct slot s[20];
    struct slot *slots[20];
    for (size_t i = 0; i < COUNT(s); i++) {
        /* Sites 0..3 in turn, one slot in five a teleconsultation. */
        s[i] = make_slot((int64_t)i + 1, sites[i % 4], NOW + (int64_t)(i + 1) * 20 * MINUTE);
        if (i % 5 == 4) {
            s[i].site = &site_tele;
            s[i].mode = MODE_TELECONSULTATION;
        }
        slots[i] = &s[i];
    }
    struct match_context plain = make_context();
    struct match_context memo = make_context();
    double km[3] = {-1, -1, -1}; /* covers sites 0..2: 3 (Rennes) and 4 are not */
    memo.site_km = km;
    memo.nsite_km = COUNT(km);
    struct match_candidate a[10], b[10];
    size_t na = match_rank(&r, slots, COUNT(slots), &plain, a, COUNT(a));
    size_t nb = match_rank(&r, slots, COUNT(slots), &memo, b, COUNT(b));
    cr_assert_eq(na, nb);
    cr_assert_gt(na, 5);
    for (size_t i = 0; i < na; i++) {
        cr_expect_eq(a[i].slot, b[i].slot, "position %zu", i);
        cr_expect_eq(a[i].score, b[i].score, "position %zu", i);
        cr_expect_eq(a[i].distance_km, b[i].distance_km, "position %zu", i);
    }
    for (size_t i = 0; i < COUNT(km); i++)
        cr_expect_eq(km[i], model_distance_km(r.lat, r.lon, sites[i]->lat, sites[i]->lon),
                     "site %zu", i);
    /* Sorted slots (the territory's order) through match_rank_sorted too. */
    for (size_t i = 0; i < COUNT(km); i++)
        km[i] = -1;
    struct slot_brief briefs[COUNT(slots)];
    for (size_t i = 0; i < COUNT(slots); i++)
        briefs[i] = brief_of(slots[i]);
    size_t nc = 0;
    match_rank_sorted(&r, slots, briefs, COUNT(slots), &memo, b, &nc, COUNT(b));
    cr_assert_eq(nc, na);
    for (size_t i = 0; i < na; i++)
        cr_expect_eq(a[i].slot, b[i].slot, "sorted, position %zu", i);
    for (size_t i = 0; i < COUNT(sites); i++)
        sites[i]->index = 0;
}
