/* The in-memory model of the dispatch state: territories with their sites,
 * practitioners, live slots and open requests.  PostgreSQL is the source of
 * truth; this is an index rebuilt from it at start-up (store.c) and updated
 * only after each committed state change (dispatch*.c), so that matching and
 * capacity queries never wait for the database.
 *
 * Codes are small bit sets so that eligibility tests are a few AND
 * operations.  The string names used in SQL and the protocol are given by
 * the *_name() and *_parse() helpers of model.c.
 */
#ifndef SNP_MODEL_H
#define SNP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slot modes: one bit each; a request accepts a set of them. */
enum {
    MODE_OFFICE = 1 << 0,
    MODE_HOME = 1 << 1,
    MODE_TELECONSULTATION = 1 << 2,
    MODE_ALL = 7,
};

/* Audiences of a slot, and the requester kind of a request (one bit). */
enum {
    AUD_SAS = 1 << 0,
    AUD_EMERGENCY = 1 << 1,
    AUD_PHARMACY = 1 << 2,
    AUD_PROFESSIONAL = 1 << 3,
    AUD_DESK = 1 << 4,
    AUD_PUBLIC = 1 << 5, /* any requester kind */
    AUD_ALL = 63,
};

/* Motif codes, one bit each (protocol type motif_code, same order). */
enum motif {
    MOTIF_FEVER,
    MOTIF_ENT,
    MOTIF_RESPIRATORY,
    MOTIF_URINARY,
    MOTIF_DIGESTIVE,
    MOTIF_SKIN,
    MOTIF_MINOR_TRAUMA,
    MOTIF_MUSCULOSKELETAL,
    MOTIF_HEADACHE,
    MOTIF_EYE,
    MOTIF_PSYCHOLOGICAL,
    MOTIF_OTHER,
    MOTIF_COUNT
};

enum slot_status { SLOT_FREE, SLOT_HELD, SLOT_BOOKED, SLOT_WITHDRAWN, SLOT_EXPIRED };
enum request_status { REQ_WAITING, REQ_OFFERED, REQ_BOOKED, REQ_CANCELLED, REQ_UNSERVED };
enum urgency { URGENCY_SAME_DAY, URGENCY_24H, URGENCY_48H };
enum site_kind { SITE_PRACTICE, SITE_CSNP, SITE_TELECONSULTATION };

/* Ranking weights, a territory setting (settings.weights in SQL); each
 * is documented in docs/dispatch.md with its default. */
struct weights {
    double start_per_hour;  /* cost of each hour between now and the slot's start */
    double distance_per_km; /* cost of each kilometre to the site (not for teleconsultation) */
    double own_mt_bonus;    /* bonus for a slot of the patient's own médecin traitant */
    double fairness;        /* cost per unit of booked/published above the territory mean */
    double scarcity;        /* cost per other waiting request that could use the slot */
};

struct territory;

struct practitioner {
    char rpps[12];
    char *family_name;
    char *given_name;
    char specialty[8]; /* TRE-R38 code of the practitioner's specialty, e.g. "SM54" */
    /* The sites where the practitioner practises (practitioner_site), in
     * every territory, by id; the store owns the sites. */
    struct site **sites;
    size_t nsites;
    /* Fairness counters over the slots loaded in memory (the live horizon). */
    unsigned published;
    unsigned booked;
};

struct site {
    int64_t id;
    struct territory *territory;
    enum site_kind kind;
    char *name;
    char *address;
    char commune[6];
    double lat;
    double lon;
    char *phone;  /* "" when unknown */
    size_t index; /* 0 .. store's site_count - 1, fixed when the site is made
                     (sites are never removed): per-query tables of sites */
};

struct slot {
    int64_t id;
    struct territory *territory;
    struct site *site;
    struct practitioner *practitioner; /* NULL for a CSNP shift slot */
    int64_t start;                     /* seconds since the epoch, UTC */
    int duration_min;
    uint8_t mode;        /* exactly one MODE_ bit */
    uint8_t audience;    /* AUD_ bits */
    uint16_t motifs;     /* 1 << enum motif bits; 0: any motif */
    int8_t min_age;      /* -1: none */
    int8_t max_age;      /* -1: none */
    int release_minutes; /* 0: no release rule */
    enum slot_status status;
    int64_t held_for;        /* request id while held */
    int64_t hold_expires_at; /* while held */
    int64_t released_at;     /* when its release rule opened it to all, or 0 */
    bool pending;            /* a state change for it is on its way to the database */
    bool stale;              /* another process changed it while pending: read it again after */
    bool queued;             /* waiting for the next matching pass (dispatch_offers.c) */
    /* Lifetime (store.h): references held by the store and by operations in
     * flight; `gone` once the store let it go (no longer live). */
    unsigned refs;
    bool gone;
};

/* What capacity.query and the ranking read of a live slot, kept in an array
 * beside the territory's slots (store.h: same index, same order), so that
 * their walks over up to every slot of a window read memory in sequence
 * instead of one pointer per slot.  The fields other than the status
 * never change while the slot is live; the status changes only through
 * store_slot_set_status.  Sixteen bytes, a quarter of a cache line. */
struct slot_brief {
    int64_t start;
    uint32_t site_index;      /* site->index (every live slot has a site) */
    uint16_t release_minutes; /* 0, or 10 to 10080 (the declaration's bounds) */
    uint8_t status : 4;       /* enum slot_status */
    uint8_t mode : 4;         /* one MODE_ bit */
    uint8_t audience;         /* AUD_ bits */
};
_Static_assert(sizeof(struct slot_brief) == 16, "a slot's brief is 16 bytes");

struct request {
    int64_t id;
    struct territory *territory;
    int64_t organisation_id;
    uint8_t kind; /* one AUD_ bit (not AUD_PUBLIC) */
    enum motif motif;
    enum urgency urgency;
    int age;
    int64_t created_at;
    int64_t deadline;
    uint8_t modes;          /* MODE_ bits accepted */
    double max_distance_km; /* 0: no limit */
    double lat;             /* the patient's commune centroid */
    double lon;
    char mt_rpps[12]; /* "" when none */
    enum request_status status;
    int64_t held_slot; /* 0 when none */
    int64_t hold_expires_at;
    int64_t *declined; /* slots declined for this request, never offered again */
    size_t ndeclined;
    bool pending; /* a state change for it is on its way to the database */
    bool stale;   /* another process changed it while pending: read it again after */
    bool queued;  /* waiting for the next matching pass (dispatch_offers.c) */
    /* Lifetime (store.h): references held by the store and by operations in
     * flight; `gone` once the store let it go (no longer open). */
    unsigned refs;
    bool gone;
    char client_ref[65];
    uint8_t priority_groups; /* PRIORITY_ bits */
};

enum { PRIORITY_ALD = 1 << 0, PRIORITY_C2S = 1 << 1, PRIORITY_AGED_70_PLUS = 1 << 2 };

/* What matching needs to know beyond one request and one slot. */
struct match_context {
    int64_t now;
    struct weights weights;
    /* Territory mean of booked/published over practitioners who published. */
    double mean_booked_ratio;
    /* The other requests waiting in the territory (for scarcity). */
    struct request *const *waiting;
    size_t nwaiting;
    /* Optional (NULL: none): the distance from the ranked request's commune
     * to each site, by site index, negative until computed; room for
     * nsite_km sites.  Ranking fills it as it goes, so that each site's
     * distance is computed once per ranking, not once per slot. */
    double *site_km;
    size_t nsite_km;
};

/* The index of the first of the `n` slots (sorted by start) that starts
 * after `t`; `n` when none does.  O(log n). */
size_t model_slots_after(struct slot *const *slots, size_t n, int64_t t);

/* Great-circle distance in kilometres between two WGS84 points. */
double model_distance_km(double lat1, double lon1, double lat2, double lon2);

/* ---- Names and parsers (model.c) ----------------------------------------
 *
 * The string names of the codes above, as used in SQL and in the protocol
 * (protocol/snp.v1.json).  Every *_name() function returns a static string,
 * or NULL when its argument is not a valid code (for the bit-set types: not
 * exactly one known bit); callers pass only valid codes, so NULL means a bug.
 * Every *_parse() function takes an exact, case-sensitive name; it returns
 * true and stores the code in *out, or returns false and leaves *out
 * unchanged (also when `s` is NULL).  All are pure and thread-safe.
 */

#define MODEL_MUST_CHECK __attribute__((warn_unused_result))

/* "office", "home", "teleconsultation" <-> one MODE_ bit. */
MODEL_MUST_CHECK bool model_mode_parse(const char *s, uint8_t *bit);
const char *model_mode_name(uint8_t bit);

/* "sas", "emergency", "pharmacy", "professional", "desk", "public" <-> one AUD_ bit. */
MODEL_MUST_CHECK bool model_audience_parse(const char *s, uint8_t *bit);
const char *model_audience_name(uint8_t bit);

/* "fever", "ent", ..., "other" (enum motif order) <-> enum motif. */
MODEL_MUST_CHECK bool model_motif_parse(const char *s, enum motif *out);
const char *model_motif_name(enum motif m);

/* "free", "held", "booked", "withdrawn", "expired" <-> enum slot_status. */
MODEL_MUST_CHECK bool model_slot_status_parse(const char *s, enum slot_status *out);
const char *model_slot_status_name(enum slot_status st);

/* "waiting", "offered", "booked", "cancelled", "unserved" <-> enum request_status. */
MODEL_MUST_CHECK bool model_request_status_parse(const char *s, enum request_status *out);
const char *model_request_status_name(enum request_status st);

/* "same_day", "24h", "48h" <-> enum urgency. */
MODEL_MUST_CHECK bool model_urgency_parse(const char *s, enum urgency *out);
const char *model_urgency_name(enum urgency u);

/* "practice", "csnp", "teleconsultation" <-> enum site_kind. */
MODEL_MUST_CHECK bool model_site_kind_parse(const char *s, enum site_kind *out);
const char *model_site_kind_name(enum site_kind k);

/*
 * Fills `w` with the default ranking weights, used when a territory's
 * settings do not override them: the defaults the declaration gives the
 * settings weights.* (protocol/snp.v1.json, ranking_weights; see
 * dispatcher/core/match.h for what each term means).
 */
void model_weights_default(struct weights *w);

#endif
