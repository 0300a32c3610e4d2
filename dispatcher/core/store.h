/* The in-memory index of the dispatch state (see model.h), and its loading
 * from PostgreSQL at start-up.
 *
 * The store owns every territory, commune, practitioner, site, slot and
 * open request in memory.  It is changed only by dispatch.c and its
 * dispatch_*.c files, after the database has committed the corresponding
 * change, and read by matching and capacity queries without any database
 * round trip.
 */
#ifndef SNP_STORE_H
#define SNP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/idmap.h"
#include "base/timeutil.h"
#include "dispatcher/db/db.h"
#include "dispatcher/core/model.h"

struct commune {
    char insee[6];
    char postal_code[6]; /* "" when unknown */
    char *name;
    double lat;
    double lon;
};

/* A requester organisation, for the names shown with bookings. */
struct organisation {
    int64_t id;
    char kind[16];
    char *name;
    char finess[10]; /* "" when identified by RPPS */
    char commune[6]; /* INSEE code of where it is */
};

/* A territory's settings (territory.settings in SQL), with their defaults
 * from docs/dispatch.md applied. */
#define STORE_NEW_PATIENT_GPS 50 /* the declaration's max of new_patient_gps */

struct territory_settings {
    int hold_seconds;            /* how long an offer holds its slot: 180 */
    int alternatives;            /* alternatives listed with an offer: 3 */
    int outcome_delay_hours;     /* outcomes accepted until start + this: 72 */
    int identity_retention_days; /* patient identity erased this long after: 90 */
    /* Read by the indicator and retention SQL (docs/indicators.md); kept
     * here to show them in territory.get. */
    int indicator_mask_threshold;     /* 5 */
    int indicator_consolidation_days; /* 7 */
    int contract_start_month;         /* 1 */
    int audit_retention_months;       /* snpd's default, CONFIG_AUDIT_RETENTION_MONTHS */
    struct weights weights;
    /* Read by the message SQL (sql/migrations/0026); kept here to show them. */
    bool mt_summary;                                 /* true */
    char new_patient_gps[STORE_NEW_PATIENT_GPS][12]; /* RPPS, in the coordinator's order */
    int n_new_patient_gps;
};

/* struct slot_brief, what capacity.query and the ranking read of a live
 * slot, is in model.h. */

struct territory {
    char id[64];
    char *name;
    char finess[10]; /* the CPTS's FINESS number, "" when none (docs/fhir.md) */
    bool is_sas;
    const struct timeutil_zone *zone;
    struct territory_settings settings;
    struct territory **neighbours; /* whose capacity it may use */
    size_t nneighbours;
    struct commune **communes;
    size_t ncommunes;
    struct site **sites; /* its sites, by id (the store owns them) */
    size_t nsites;
    /* Live slots (free, held, booked) sorted by start, then id, and what
     * capacity.query reads of each (briefs[i] is slots[i]'s). */
    struct slot **slots;
    struct slot_brief *briefs;
    size_t nslots;
    size_t capslots;
    /* Open requests (waiting or offered), by id. */
    struct request **open;
    size_t nopen;
    size_t capopen;
};

struct store {
    struct territory **territories;
    size_t nterritories;
    struct idmap communes;       /* idmap_code_key(insee) -> struct commune */
    struct idmap practitioners;  /* idmap_code_key(rpps) -> struct practitioner */
    struct idmap sites;          /* id -> struct site */
    size_t site_count;           /* sites made; each one's index is below it */
    struct idmap organisations;  /* id -> struct organisation */
    struct idmap slots;          /* id -> struct slot (live ones) */
    struct idmap requests;       /* id -> struct request (open ones) */
    struct store_reload *reload; /* the reference reload running, or NULL */
    bool reference_stale;        /* the last reload failed: housekeeping retries it */
};

/* Frees everything the store holds and resets it to empty. */
void store_free(struct store *st);

struct territory *store_territory(const struct store *st, const char *id);
struct commune *store_commune(const struct store *st, const char *insee);
struct practitioner *store_practitioner(const struct store *st, const char *rpps);

/* Writes into `out` (room for `max`) the practitioners who practise at a
 * site of territory `t`, in no particular order; returns how many there are
 * (possibly more than `max`, of which `max` were written). */
size_t store_territory_practitioners(const struct store *st, const struct territory *t,
                                     const struct practitioner **out, size_t max);

/* Parses a territory's settings JSON over the defaults.  Unknown keys are
 * ignored; returns false (keeping the defaults) on malformed JSON. */
bool store_parse_settings(const char *json, struct territory_settings *out)
    __attribute__((warn_unused_result));

/* --- Lifetime of slots and requests ---------------------------------------------
 *
 * A slot or request is reference-counted, the way libuv handles and Redis
 * clients are kept alive while a callback may still touch them.  The store
 * holds one reference while the object is live (a slot free, held or booked;
 * a request waiting or offered); every operation waiting for the database
 * holds one of its own on the objects it will touch when the answer comes
 * (dispatch.c, struct op).  Removing an object from the store unlinks it from
 * every index at once and sets `gone`; the memory is released when the last
 * reference is dropped.  So a callback never touches freed memory: it finds
 * the object `gone` and leaves it alone.  Objects are created with one
 * reference, their creator's. */

void store_slot_ref(struct slot *s);
void store_slot_unref(struct slot *s);
void store_request_ref(struct request *r);
void store_request_unref(struct request *r);

/* The live slot or open request with this id, or NULL. */
struct slot *store_slot(const struct store *st, int64_t id);
struct request *store_request(const struct store *st, int64_t id);

/* Inserts a slot into its territory, keeping the order by start; the
 * caller's reference passes to the store.  Returns false when memory is
 * short (that reference is then dropped). */
bool store_add_slot(struct store *st, struct slot *s) __attribute__((warn_unused_result));

/* Removes a slot that is no longer live (withdrawn, expired): unlinked at
 * once, `gone`, and the store's reference dropped. */
void store_remove_slot(struct store *st, struct slot *s);

/* Sets a slot's status, the only way it changes: its territory's brief
 * follows, and so does its practitioner's count of booked slots (the
 * ranking's booked/published ratio). */
void store_slot_set_status(struct slot *s, enum slot_status status);

/* Adds an open request; the caller's reference passes to the store.
 * Returns false when memory is short (that reference is then dropped). */
bool store_add_request(struct store *st, struct request *r) __attribute__((warn_unused_result));

/* Removes a request that is no longer open (booked, cancelled, unserved):
 * unlinked at once, `gone`, and the store's reference dropped. */
void store_remove_request(struct store *st, struct request *r);

/* --- Slot and request rows ------------------------------------------------------
 *
 * Every query that returns slots to snpd (sql/queries/load_slots.sql,
 * load_slots_page.sql, slot_get.sql, slots_publish.sql) names its columns
 * as below, and so does every query that returns open requests
 * (load_requests.sql, request_get_open.sql).  A reader finds the columns
 * once per result with store_slot_cols() (or store_request_cols()), then
 * builds each row with store_slot_from_cols() (store_request_from_cols()),
 * or reads one column of its own with db_cols.h's typed readers (load_slots_page.sql
 * answers in binary, db_query_binary: a bare PQgetvalue of an integer there
 * reads bytes, not digits). */

/* The columns of a slot row. */
enum store_slot_col {
    STORE_SLOT_ID,              /* id */
    STORE_SLOT_TERRITORY,       /* territory_id */
    STORE_SLOT_SITE,            /* site_id */
    STORE_SLOT_RPPS,            /* rpps: '' when the site's */
    STORE_SLOT_STARTS_AT,       /* starts_at_epoch: seconds since 1970 (db_col_epoch) */
    STORE_SLOT_DURATION,        /* duration_min */
    STORE_SLOT_MODE,            /* mode */
    STORE_SLOT_AUDIENCE,        /* audience: a text array, or audience_bits: AUD_ bits */
    STORE_SLOT_MOTIFS,          /* motifs: a text array, '' for any */
    STORE_SLOT_MIN_AGE,         /* min_age: -1 for none */
    STORE_SLOT_MAX_AGE,         /* max_age: -1 for none */
    STORE_SLOT_RELEASE_MINUTES, /* release_minutes: 0 for none */
    STORE_SLOT_STATUS,          /* status */
    STORE_SLOT_HELD_FOR,        /* held_for: a request id, 0 for none */
    STORE_SLOT_HOLD_EXPIRES_AT, /* hold_expires_at_epoch (db_col_epoch): 0 for none */
    STORE_SLOT_NCOLS
};

/* The numbers of a slot row's columns in one result. */
struct store_slot_cols {
    int at[STORE_SLOT_NCOLS];
    bool audience_bits; /* at[STORE_SLOT_AUDIENCE] is audience_bits (0031), not the names */
};

/* Finds the columns of a slot row in `res`, the answer of `query` (a name
 * for the log); the audiences are read from "audience_bits" when `res` has
 * it, else from "audience".  Returns false (logged, see db_cols_resolve)
 * when one is missing: the caller treats the answer as a failed query. */
bool store_slot_cols(const PGresult *res, const char *query, struct store_slot_cols *cols)
    __attribute__((warn_unused_result));

/* Builds a slot from row `i` of `res`, whose columns `cols` holds.  Returns
 * a new slot with one reference (the caller's), or NULL (logged) when the
 * row names something the store lacks. */
struct slot *store_slot_from_cols(const struct store *st, const PGresult *res, int i,
                                  const struct store_slot_cols *cols);

/* The columns of an open request's row. */
enum store_request_col {
    STORE_REQUEST_ID,              /* id */
    STORE_REQUEST_TERRITORY,       /* territory_id */
    STORE_REQUEST_ORGANISATION,    /* organisation_id */
    STORE_REQUEST_KIND,            /* requester_kind */
    STORE_REQUEST_MOTIF,           /* motif */
    STORE_REQUEST_URGENCY,         /* urgency */
    STORE_REQUEST_AGE,             /* patient_age */
    STORE_REQUEST_CREATED_AT,      /* created_at_epoch: seconds since 1970 */
    STORE_REQUEST_DEADLINE,        /* deadline_epoch */
    STORE_REQUEST_MODES,           /* modes: a text array */
    STORE_REQUEST_MAX_DISTANCE,    /* max_distance_km: 0 for none */
    STORE_REQUEST_LAT,             /* latitude: of the patient's commune */
    STORE_REQUEST_LON,             /* longitude */
    STORE_REQUEST_MT_RPPS,         /* mt_rpps: '' for none */
    STORE_REQUEST_STATUS,          /* status */
    STORE_REQUEST_DECLINED,        /* declined_slots: a bigint array */
    STORE_REQUEST_HELD_SLOT,       /* held_slot: the slot held for it, 0 for none */
    STORE_REQUEST_HOLD_EXPIRES_AT, /* hold_expires_at_epoch: 0 for none */
    STORE_REQUEST_CLIENT_REF,      /* client_ref: '' for none */
    STORE_REQUEST_PRIORITY_GROUPS, /* priority_groups: a text array */
    STORE_REQUEST_NCOLS
};

struct store_request_cols {
    int at[STORE_REQUEST_NCOLS];
};

/* The same two for an open request's row. */
bool store_request_cols(const PGresult *res, const char *query, struct store_request_cols *cols)
    __attribute__((warn_unused_result));
struct request *store_request_from_cols(const struct store *st, const PGresult *res, int i,
                                        const struct store_request_cols *cols);

/* Loads everything from the database, asynchronously, the live slots in
 * pages of `batch` rows (0: STORE_LOAD_BATCH), two in flight on two of the
 * pool's connections while the last answered is turned into slots.  `done`
 * is called once with true when the store is complete, false (and a message
 * in the log) when a query failed; the store is then left empty. */
#define STORE_LOAD_BATCH 50000
typedef void (*store_loaded_cb)(struct store *st, bool ok, void *arg);
void store_load(struct store *st, struct db *db, size_t batch, store_loaded_cb done, void *arg);

/* Reads the reference data again (territories and their settings,
 * neighbours, communes, practitioners, sites, organisations) and merges it
 * into the live store: new records are added, changed ones updated in place
 * (slots keep pointing at their site), nothing is removed.  `done` (may be
 * NULL) is called once the store reflects every change committed before
 * this call; reloads asked for while one runs share the next one. */
void store_reload_reference(struct store *st, struct db *db, store_loaded_cb done, void *arg);

#endif
