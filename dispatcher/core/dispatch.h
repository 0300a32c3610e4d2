/* The dispatch core: every operation of the flow (publish, request, offer,
 * accept, decline, cancel, outcome, expiry) and the capacity query.
 *
 * Each state change is decided from the in-memory store, committed with one
 * call to an snp_* SQL function (one round trip), and only then applied to
 * memory and answered.  The database's conditional updates have the last
 * word: when it refuses (a slot taken meanwhile, possibly by another snpd),
 * memory is corrected and the next candidate is tried.
 *
 * Slot and request state machines, with every transition and who triggers
 * it, are in docs/dispatch.md.
 *
 * The protocol's JSON never crosses this interface: operations take their
 * message's fields as structs, and answer and push typed structs, which
 * the edge (dispatcher/commands/calls.c and views.c) decodes and writes.
 * The JSON the core itself reads and writes is the database's: the
 * announcements on snp_change, the territories' settings, and the
 * parameters of snp_slots_publish and snp_request_create.
 */
#ifndef SNP_DISPATCH_H
#define SNP_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "dispatcher/db/db.h"
#include "protocol/codec.h"
#include "dispatcher/core/store.h"
#include "dispatcher/core/token.h"
#include "protocol/snp_decl.h"

/* Operations end with SNP_PROTO_OK or one of the protocol's error codes
 * (enum snp_proto_code of protocol/codec.h, declared with their HTTP status
 * and meaning in protocol/snp.v1.json): the core answers in the caller's
 * terms, and nothing copies the declaration's table of errors.
 *
 * The error of a failed database call (the SN* SQLSTATEs raised by the
 * snp_* functions of sql/migrations/), and its sentence: the primary message
 * only, never the detail of a failed constraint, which may quote a row. */
enum snp_proto_code dispatch_db_error(enum db_status st, const PGresult *res);
const char *dispatch_db_message(enum db_status st, const PGresult *res);
/* The field at fault that an SQL function named in the detail of its error
 * (SN422 of snp_field_error, SN409, SNT03), or NULL: other details (failed
 * constraints) may quote a row and are never shown. */
const char *dispatch_db_field(const PGresult *res);

/* Who is calling, as established from their token. */
struct caller {
    int64_t token_id;
    enum token_role role;
    char territory[64];
    char rpps[12];           /* gp tokens */
    int64_t organisation_id; /* requester tokens */
    int64_t site_id;         /* reception tokens */
    char actor[32];          /* "token:<id>", recorded in events */
};

/* capacity.query's horizon: a window starting now. */
enum dispatch_horizon { HORIZON_2H, HORIZON_4H, HORIZON_TODAY, HORIZON_24H, HORIZON_48H };

/* "2h", "4h", "today", "24h", "48h" (the declaration's type horizon) <->
 * enum dispatch_horizon. */
bool dispatch_horizon_parse(const char *s, enum dispatch_horizon *out);
const char *dispatch_horizon_name(enum dispatch_horizon h);

/* Who receives a push (whose event is one of snp_push_name()'s). */
struct push_target {
    const char *territory;
    enum snp_topic topic;
    const char *rpps;        /* bookings: the practitioner concerned (NULL: nobody yet) */
    int64_t site_id;         /* bookings: the slot's site, for its reception (0: not for it) */
    int64_t organisation_id; /* requests: the requester concerned */
};

/* The most alternatives an offer shows (the settings' alternatives). */
#define DISPATCH_MAX_ALTERNATIVES 10

/* The offer of an offered request: the held slot, until when, and the free
 * slots it may take instead (ranked, best first). */
struct dispatch_offer {
    const struct slot *slot;
    int64_t expires_at;
    const struct slot *alternatives[DISPATCH_MAX_ALTERNATIVES];
    size_t nalternatives;
};

/* A booking the core made, as memory holds it. */
struct dispatch_booking {
    int64_t booking_id;
    const struct request *request; /* NULL: not known to this process */
    const struct slot *slot;
    int64_t created_at;
};

/* What a successful operation answers, typed: the edge encodes it as the
 * protocol's response (dispatcher/commands/views.c), so that the core never
 * writes the protocol's JSON.  Borrowed for the callback: its pointers into
 * the store and its strings are valid until the callback returns. */
enum dispatch_answer_kind {
    ANSWER_PUBLISHED, /* slot.publish */
    ANSWER_WITHDRAWN, /* slot.withdraw */
    ANSWER_SLOTS,     /* slot.list */
    ANSWER_REQUEST,   /* request.create, offer.decline, request.cancel: from memory */
    ANSWER_BOOKING,   /* offer.accept: the booking just made */
    ANSWER_STORED,    /* a request or booking as the database shows it (JSON text built
                         by its SQL function): booking.cancel, outcome.report, and the
                         answers memory cannot give */
    ANSWER_CAPACITY,  /* capacity.query */
};

struct dispatch_answer {
    enum dispatch_answer_kind kind;
    /* The call repeated an earlier one (request.create with a client_ref
     * used already, for the same request): HTTP answers 200 instead of the
     * route's creation status. */
    bool repeat;
    union {
        struct {
            int count, skipped; /* slots created, and given slots already there */
            const int64_t *slot_ids;
            size_t nslot_ids;
        } published;
        struct {
            const int64_t *slot_ids;
            size_t nslot_ids;
        } withdrawn;
        struct {
            struct slot *const *slots;
            size_t nslots;
            bool truncated;
        } slots;
        struct {
            const struct request *request;
            const struct dispatch_offer *offer; /* NULL unless it is offered */
        } request;
        struct dispatch_booking booking;
        const char *stored;
        struct {
            const struct territory *territory;
            enum dispatch_horizon horizon;
            int64_t from, to;
            int total;
            int by_mode[3];     /* office, home, teleconsultation */
            int by_audience[6]; /* in AUD_* bit order */
            bool listed;        /* the slots are shown to this caller */
            struct slot *const *slots;
            size_t nslots;
            bool truncated;
        } capacity;
    };
};

/* The answer to an operation: `answer` on success (SNP_PROTO_OK), or NULL
 * with an error, a sentence, and the dotted path of the field at fault (or
 * NULL). */
typedef void (*dispatch_cb)(void *arg, enum snp_proto_code err, const char *message,
                            const char *field, const struct dispatch_answer *answer);

/* A push, typed as answers are: the edge encodes it as the event's data
 * (views.c), only when someone connected receives it.  Borrowed for the
 * hook's call. */
struct dispatch_push {
    enum snp_push event;
    /* The bookings' events: the booking as the database shows it (JSON text
     * of its SQL function), or NULL when it is `booking`, from memory; and
     * the site of its slot (whose territory is the booking's). */
    const char *stored;
    int64_t site_id;
    union {
        const struct slot *capacity; /* capacity.changed: what became of it */
        struct {
            int64_t request_id;
            const char *client_ref;
            const struct dispatch_offer *offer;
        } offer_made;
        struct {
            int64_t request_id;
            const char *client_ref;
            int64_t slot_id;
            int64_t expired_at;
        } offer_expired;
        struct {
            int64_t request_id;
            const char *client_ref;
            const char *status, *previous_status;
            int64_t booking_id; /* 0: none */
        } request_updated;
        struct dispatch_booking booking; /* booking.created, when not `stored` */
        struct {
            int64_t booking_id, request_id;
            const char *client_ref, *outcome, *reported_at;
        } outcome;
    };
};

struct dispatch_hooks {
    void *ctx;
    /* Called after a committed change. */
    void (*push)(void *ctx, const struct push_target *to, const struct dispatch_push *p);
    /* Whether a push to `to` would reach anyone connected to this process
     * (may be NULL: then every push is built). */
    bool (*wants)(void *ctx, const struct push_target *to);
    /* Called when token `id` was revoked, by this process or another one. */
    void (*token_revoked)(void *ctx, int64_t id);
};

struct dispatch_stats {
    uint64_t bookings;
    uint64_t offers;
    uint64_t holds_expired;
    uint64_t conflicts;    /* hold or booking refused by the database */
    uint64_t match_passes; /* matching passes that had work */
    uint64_t match_slices; /* passes that ran out of time (MATCH_SLICE_NS) and
                              left work for the next loop turn */
};

/* Ids of slots or requests to look at again (dispatch_offers.c). */
struct id_queue {
    int64_t *ids;
    size_t n;
    size_t cap;
};

struct parked_call;
struct heard_notice;

struct dispatch {
    uv_loop_t *loop;
    struct db *db;
    struct store store;
    size_t load_batch; /* live slots per page at the load (store_load), 0: the default */
    bool ready;        /* the store is loaded */
    bool closed;       /* dispatch_close ran: late database answers are dropped */
    struct dispatch_hooks hooks;
    uv_timer_t timer; /* hold expiry and housekeeping */
    /* The matching pass (docs/dispatch.md "Invariants"): runs before the
     * loop polls whenever a slot became free or a request began to wait,
     * until nothing more can be matched. */
    uv_prepare_t matcher;
    uv_idle_t match_more;           /* active while a pass left work for the next turn */
    struct id_queue match_slots;    /* slots that may serve a waiting request */
    struct id_queue match_requests; /* requests that may find a free slot */
    struct id_queue retry_slots;    /* the same after a failed database call: */
    struct id_queue retry_requests; /* looked at again by the next timer tick */
    /* Reads of slots and requests memory did not know (another process made
     * them), in flight: id -> struct unknown_read (dispatch_sync.c). */
    struct idmap slot_reads;
    struct idmap request_reads;
    uint64_t last_housekeeping_ms;
    bool housekeeping_running;
    bool catch_up_due; /* a catch-up failed: housekeeping tries again */
    /* Announcements heard before the store is loaded: the load's queries
     * may have read the database before them, so they are applied once it
     * is loaded ("Starting while others change", docs/dispatch.md). */
    struct heard_notice *heard; /* oldest first */
    struct heard_notice **heard_tail;
    size_t nheard;
    bool loading;               /* the load's first query has been sent */
    bool catch_up_on_load;      /* too many heard, or listening began during the load */
    int inflight;               /* operations waiting for the database, and parked calls */
    struct parked_call *parked; /* calls waiting for their request's update (dispatch.c) */
    struct request **waiting;   /* waiting requests, for the scarcity term */
    size_t waiting_cap;
    double *site_km; /* one distance per site, for a ranking or a capacity query */
    size_t site_km_cap;
    struct slot **listed; /* the slots a read answers (slot.list, capacity.query) */
    size_t listed_cap;
    struct dispatch_stats stats;
};

/* Prepares the core on `loop` with `db` (which must outlive it).  The store
 * is empty until dispatch_load() completes. */
void dispatch_init(struct dispatch *d, uv_loop_t *loop, struct db *db,
                   const struct dispatch_hooks *hooks);

/* Runs housekeeping once, then loads the store from the database and starts
 * the expiry timer; `done` tells whether it worked. */
void dispatch_load(struct dispatch *d, void (*done)(struct dispatch *d, bool ok));

/* Stops expiry and housekeeping (first step of a shutdown). */
void dispatch_stop(struct dispatch *d);

/* Frees the store and closes the timer handle.  Database answers that
 * arrive later are dropped (their callers get "unavailable"). */
void dispatch_close(struct dispatch *d);

/* The operations' arguments: the fields of the protocol message of the same
 * name, decoded from the validated message at the edge
 * (dispatcher/commands/calls.c), so that these operations never read the
 * message's JSON.  Strings are copies, at the longest the declaration
 * allows, except `note` (borrowed for the call, never kept): a call parked
 * while its request's update is in flight keeps its arguments by value. */

/* A value of a declared enum (cancel_reason, decline_reason, outcome_kind):
 * the longest is 24 characters. */
#define DISPATCH_ENUM_LEN 32

/* offer.accept and offer.decline. */
struct dispatch_offer_args {
    int64_t request_id;
    int64_t slot_id;
    char reason[DISPATCH_ENUM_LEN]; /* a decline's (decline_reason); "" when absent */
};

/* request.cancel (and slip.refuse) and booking.cancel: `id` is the
 * request's or the booking's.  Any declared reason is recorded; who may
 * give patient_refused is the edge's rule (calls.h). */
struct dispatch_cancel_args {
    int64_t id;
    char reason[DISPATCH_ENUM_LEN];
};

struct dispatch_outcome_args {
    int64_t booking_id;
    char outcome[DISPATCH_ENUM_LEN];
    const char *note; /* NULL when absent; borrowed */
};

struct dispatch_withdraw_args {
    const int64_t *slot_ids; /* borrowed; the operation copies them */
    size_t nslot_ids;
};

struct dispatch_slot_list_args {
    bool has_from, has_to; /* absent: now, and from plus 7 days */
    int64_t from, to;      /* Unix seconds */
    char rpps[12];         /* "" for every practitioner */
    unsigned statuses;     /* 1 << enum slot_status; 0 for all */
    size_t limit;
};

struct dispatch_capacity_args {
    enum dispatch_horizon horizon;
    char commune_insee[8]; /* "" when absent */
    double radius_km;      /* 0 when absent */
    uint8_t modes;         /* 1 << enum slot_mode; 0 for all */
};

/* One slot of slot.publish's list. */
struct dispatch_publish_slot {
    int64_t start; /* Unix seconds */
    int duration_min;
};

/* slot.publish: what every slot shares, and the slots, given one by one,
 * as a weekly pattern or as a CSNP shift (exactly one).  Borrowed for the
 * call; names are the declaration's values, in the order given. */
struct dispatch_publish_args {
    int64_t site_id;
    const char *rpps; /* NULL when absent */
    const char *mode;
    const char *audiences[6];
    size_t naudiences;
    int release_minutes;  /* 0 when absent */
    int min_age, max_age; /* -1 when absent */
    const char *motifs[MOTIF_COUNT];
    size_t nmotifs;
    enum { PUBLISH_SLOTS, PUBLISH_PATTERN, PUBLISH_SHIFT } how;
    const struct dispatch_publish_slot *slots;
    size_t nslots;
    /* Local dates at midnight (tm_year, tm_mon, tm_mday), times of day in
     * minutes, days by tm_wday. */
    struct {
        struct tm from_date, to_date;
        int from_min, to_min, every_min, duration_min;
        bool days[7];
    } pattern;
    struct {
        struct tm date;
        int from_min, to_min, every_min; /* the half-day's hours */
    } shift;
};

/* request.create: the patient's need.  Strings are borrowed for the call
 * (a creation never parks); NULL when absent. */
struct dispatch_request_args {
    const char *client_ref;
    enum motif motif;
    const char *motif_text;
    enum urgency urgency;
    struct {
        const char *commune_insee;
        int birth_year;
        int birth_month, birth_day; /* 0 when only the year is known */
        const char *birth_date;     /* as given, YYYY-MM-DD */
        const char *sex;
        bool has_mt;
        const char *mt_rpps;
        bool ald, c2s;
        const char *display_name, *initials, *phone;
    } patient;
    uint8_t modes;          /* 0: every mode */
    double max_distance_km; /* 0: no limit */
    bool reduced_mobility;
    /* The details of the requester's kind (source): each present one has
     * its bit in `sources`. */
    unsigned sources;
    struct {
        int triage_level;
        const char *senior_rpps;
    } emergency;
    struct {
        const char *protocol, *test_result;
        const char *exclusions[8];
        size_t nexclusions;
    } pharmacy;
    struct {
        const char *regulator_name, *regulator_id;
    } sas;
};
enum { SOURCE_EMERGENCY = 1 << 0, SOURCE_PHARMACY = 1 << 1, SOURCE_SAS = 1 << 2 };

/* The operations; `cb` is always called once. */
void dispatch_slot_publish(struct dispatch *d, const struct caller *c,
                           const struct dispatch_publish_args *a, dispatch_cb cb, void *arg);
void dispatch_slot_withdraw(struct dispatch *d, const struct caller *c,
                            const struct dispatch_withdraw_args *a, dispatch_cb cb, void *arg);
void dispatch_slot_list(struct dispatch *d, const struct caller *c,
                        const struct dispatch_slot_list_args *a, dispatch_cb cb, void *arg);
/* Answers the request as memory holds it (its offer and alternatives);
 * what the requester gave about the patient is theirs to echo. */
void dispatch_request_create(struct dispatch *d, const struct caller *c,
                             const struct dispatch_request_args *a, dispatch_cb cb, void *arg);
void dispatch_offer_accept(struct dispatch *d, const struct caller *c,
                           const struct dispatch_offer_args *a, dispatch_cb cb, void *arg);
void dispatch_offer_decline(struct dispatch *d, const struct caller *c,
                            const struct dispatch_offer_args *a, dispatch_cb cb, void *arg);
void dispatch_request_cancel(struct dispatch *d, const struct caller *c,
                             const struct dispatch_cancel_args *a, dispatch_cb cb, void *arg);
void dispatch_booking_cancel(struct dispatch *d, const struct caller *c,
                             const struct dispatch_cancel_args *a, dispatch_cb cb, void *arg);
void dispatch_outcome_report(struct dispatch *d, const struct caller *c,
                             const struct dispatch_outcome_args *a, dispatch_cb cb, void *arg);
void dispatch_capacity_query(struct dispatch *d, const struct caller *c,
                             const struct dispatch_capacity_args *a, dispatch_cb cb, void *arg);

/* The db notification hook (set db->data to the dispatch): applies to
 * memory the changes other snpd processes made, announced by the triggers of
 * sql/migrations/0005_notify.sql; our own are recognised and ignored. */
void dispatch_on_db_notify(struct db *db, const char *channel, const char *payload, int be_pid);

/* The db hook told that the LISTEN has run again (set db->data to the
 * dispatch): what other processes announced while this one was not
 * listening is lost, so memory is compared with the database and every
 * object that differs is read again ("During a failover" in
 * docs/dispatch.md). */
void dispatch_on_db_listening(struct db *db);

/* The offer of `r` (an offered request) as memory holds it, with its
 * alternatives freshly ranked, into `out`; false when it holds no slot. */
bool dispatch_offer(struct dispatch *d, const struct request *r, struct dispatch_offer *out);

#endif
