#include "dispatcher/core/model.h"

#include <math.h>
#include <string.h>

#include "protocol/snp_decl.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Mean Earth radius (IUGG), in kilometres. */
#define EARTH_RADIUS_KM 6371.0
/* Not M_PI: that one is POSIX, not C11. */
#define PI 3.14159265358979323846

/* Indexed by bit position (MODE_ and AUD_) or by enum value. */
static const char *const mode_names[] = {"office", "home", "teleconsultation"};
static const char *const audience_names[] = {"sas",          "emergency", "pharmacy",
                                             "professional", "desk",      "public"};
static const char *const motif_names[] = {
    "fever",     "ent",  "respiratory",   "urinary",
    "digestive", "skin", "minor_trauma",  "musculoskeletal",
    "headache",  "eye",  "psychological", "other",
};
static const char *const slot_status_names[] = {"free", "held", "booked", "withdrawn", "expired"};
static const char *const request_status_names[] = {"waiting", "offered", "booked", "cancelled",
                                                   "unserved"};
static const char *const urgency_names[] = {"same_day", "24h", "48h"};
static const char *const site_kind_names[] = {"practice", "csnp", "teleconsultation"};

/* The tables must follow the enums of model.h. */
_Static_assert(COUNT(mode_names) == 3 && MODE_ALL == 7, "mode names");
_Static_assert(COUNT(audience_names) == 6 && AUD_ALL == 63, "audience names");
_Static_assert(COUNT(motif_names) == MOTIF_COUNT, "motif names");
_Static_assert(COUNT(slot_status_names) == SLOT_EXPIRED + 1, "slot status names");
_Static_assert(COUNT(request_status_names) == REQ_UNSERVED + 1, "request status names");
_Static_assert(COUNT(urgency_names) == URGENCY_48H + 1, "urgency names");
_Static_assert(COUNT(site_kind_names) == SITE_TELECONSULTATION + 1, "site kind names");

static double radians(double deg)
{
    return deg * (PI / 180.0);
}

double model_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    /* The equirectangular approximation: within a territory (tens of km)
     * it differs from the great-circle distance by far less than a metre
     * per kilometre, and costs one cosine where haversine costs five
     * trigonometric calls; it runs for every slot of every ranking. */
    double x = radians(lon2 - lon1) * cos(radians((lat1 + lat2) / 2));
    double y = radians(lat2 - lat1);
    return EARTH_RADIUS_KM * sqrt(x * x + y * y);
}

/*
 * Looks `s` up in `names`; returns true and stores its index in *index when
 * found.
 */
static bool find_name(const char *const *names, size_t n, const char *s, size_t *index)
{
    if (s == NULL)
        return false;
    /* The first letter first: a million slots read at start-up each parse
     * a mode, a status and their audiences, and a call to strcmp per name
     * tried was 7 % of the load (bench/README.md §9). */
    for (size_t i = 0; i < n; i++) {
        if (names[i][0] == s[0] && strcmp(names[i], s) == 0) {
            *index = i;
            return true;
        }
    }
    return false;
}

/* Returns the name of the single bit `bit` in a table indexed by bit position, or NULL. */
static const char *bit_name(const char *const *names, size_t n, unsigned bit)
{
    for (size_t i = 0; i < n; i++) {
        if (bit == 1u << i)
            return names[i];
    }
    return NULL;
}

/* Returns names[v] when v is a valid index, NULL otherwise. */
static const char *enum_name(const char *const *names, size_t n, int v)
{
    if (v < 0 || (size_t)v >= n)
        return NULL;
    return names[v];
}

bool model_mode_parse(const char *s, uint8_t *bit)
{
    size_t i;
    if (!find_name(mode_names, COUNT(mode_names), s, &i))
        return false;
    *bit = (uint8_t)(1u << i);
    return true;
}

const char *model_mode_name(uint8_t bit)
{
    return bit_name(mode_names, COUNT(mode_names), bit);
}

bool model_audience_parse(const char *s, uint8_t *bit)
{
    size_t i;
    if (!find_name(audience_names, COUNT(audience_names), s, &i))
        return false;
    *bit = (uint8_t)(1u << i);
    return true;
}

const char *model_audience_name(uint8_t bit)
{
    return bit_name(audience_names, COUNT(audience_names), bit);
}

bool model_motif_parse(const char *s, enum motif *out)
{
    size_t i;
    if (!find_name(motif_names, COUNT(motif_names), s, &i))
        return false;
    *out = (enum motif)i;
    return true;
}

const char *model_motif_name(enum motif m)
{
    return enum_name(motif_names, COUNT(motif_names), (int)m);
}

bool model_slot_status_parse(const char *s, enum slot_status *out)
{
    size_t i;
    if (!find_name(slot_status_names, COUNT(slot_status_names), s, &i))
        return false;
    *out = (enum slot_status)i;
    return true;
}

const char *model_slot_status_name(enum slot_status st)
{
    return enum_name(slot_status_names, COUNT(slot_status_names), (int)st);
}

bool model_request_status_parse(const char *s, enum request_status *out)
{
    size_t i;
    if (!find_name(request_status_names, COUNT(request_status_names), s, &i))
        return false;
    *out = (enum request_status)i;
    return true;
}

const char *model_request_status_name(enum request_status st)
{
    return enum_name(request_status_names, COUNT(request_status_names), (int)st);
}

bool model_urgency_parse(const char *s, enum urgency *out)
{
    size_t i;
    if (!find_name(urgency_names, COUNT(urgency_names), s, &i))
        return false;
    *out = (enum urgency)i;
    return true;
}

const char *model_urgency_name(enum urgency u)
{
    return enum_name(urgency_names, COUNT(urgency_names), (int)u);
}

bool model_site_kind_parse(const char *s, enum site_kind *out)
{
    size_t i;
    if (!find_name(site_kind_names, COUNT(site_kind_names), s, &i))
        return false;
    *out = (enum site_kind)i;
    return true;
}

const char *model_site_kind_name(enum site_kind k)
{
    return enum_name(site_kind_names, COUNT(site_kind_names), (int)k);
}

/* The declared default of number setting `s`. */
static double setting_default(enum snp_setting s)
{
    return snp_setting_bounds(s)->default_value;
}

void model_weights_default(struct weights *w)
{
    w->start_per_hour = setting_default(SNP_SETTING_WEIGHTS_START_PER_HOUR);
    w->distance_per_km = setting_default(SNP_SETTING_WEIGHTS_DISTANCE_PER_KM);
    w->own_mt_bonus = setting_default(SNP_SETTING_WEIGHTS_OWN_MT_BONUS);
    w->fairness = setting_default(SNP_SETTING_WEIGHTS_FAIRNESS);
    w->scarcity = setting_default(SNP_SETTING_WEIGHTS_SCARCITY);
}

size_t model_slots_after(struct slot *const *slots, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slots[mid]->start <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
