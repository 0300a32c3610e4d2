/* A small territory for integration tests, built in a throwaway database:
 * two communes, two practitioners with a practice each, a CSNP, one
 * organisation of each requester kind, and a token for each role whose
 * secret the test knows.  Plus JSON helpers over the raw HTTP client.
 */
#ifndef SNP_TEST_FIXTURE_H
#define SNP_TEST_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tests/support/pgtest.h"
#include "tests/support/proc.h"

#define FIX_TERRITORY "test-t"
#define FIX_GP1       "10999900011"
#define FIX_GP2       "10999900029"

enum fix_role {
    FIX_GP_1,
    FIX_GP_2,
    FIX_PHARMACY,
    FIX_EMERGENCY,
    FIX_SAS,
    FIX_DESK,
    FIX_COORDINATOR,
    FIX_OTHER_PHARMACY,
    FIX_ROLE_COUNT
};

struct fixture {
    struct pgtest pg;
    struct snpd_proc snpd;
    char token[FIX_ROLE_COUNT][48];
    int64_t site_gp1;  /* practice of FIX_GP1 in Redon */
    int64_t site_gp2;  /* practice of FIX_GP2 in Allaire, 15 km away */
    int64_t site_csnp; /* staffed by both */
    int64_t pharmacy_id;
};

/* Creates the database, applies the migrations with `snpd migrate`, and
 * loads the territory with `settings` (a JSON object, e.g. "{}").  Does not
 * start snpd. */
void fixture_setup(struct fixture *f, const char *settings);

/* Loads the territory with `settings` into the database that f->pg is
 * connected to, whose schema is migrated already (fixture_setup calls it;
 * a test on a database of its own fills f->pg.conninfo and f->pg.conn, and
 * leaves f->pg.name empty so that fixture_teardown drops nothing). */
void fixture_load(struct fixture *f, const char *settings);

/* Starts snpd on the fixture's database and waits until it is ready. */
void fixture_start(struct fixture *f);

/* Stops snpd (if running) and drops the database. */
void fixture_teardown(struct fixture *f);

/* Sends a request to the fixture's snpd and parses the JSON answer (NULL
 * when the body is not JSON); stores the HTTP status in *status. */
json_t *fix_api(struct fixture *f, const char *method, const char *path, enum fix_role as,
                const char *body, int *status);
json_t *fix_api_port(int port, const char *method, const char *path, const char *token,
                     const char *body, int *status);

/* Like fix_api, with a JSON `body` (stolen; NULL for none). */
json_t *fix_api_json(struct fixture *f, const char *method, const char *path, enum fix_role as,
                     json_t *body, int *status);

/* Like fix_api_port, with a token's secret, but fails the test when the
 * answer is not JSON, and checks a successful one (status below 300)
 * against the declaration of message `type` in protocol/snp.v1.json
 * (snp_proto_init must have been called). */
json_t *fix_api_checked(int port, const char *type, const char *method, const char *path,
                        const char *token, const char *body, int *status);

/* Waits up to `timeout_ms` for snpd on `port` to count `total` free slots
 * 48 hours ahead (capacity.query as the fixture's SAS); returns whether it
 * did. */
bool fix_wait_capacity(struct fixture *f, int port, json_int_t total, int timeout_ms);

/* Writes the start of a slot `minutes` from now, rounded down to the minute,
 * as "YYYY-MM-DDTHH:MM:00Z". */
void fix_slot_start(int minutes, char out[32]);

/* Publishes `n` office slots of 20 minutes for GP1 (or GP2) at site, the
 * first `first_min` minutes from now, one every `every_min` minutes, for the
 * given audiences (a JSON array text such as "[\"pharmacy\"]").  Returns the
 * number created. */
int fix_publish(struct fixture *f, enum fix_role gp, int n, int first_min, int every_min,
                const char *audiences);

/* Publishes one 20-minute slot `at_min` minutes from now as the
 * coordinator, for practitioner `rpps` at `site` in `mode` ("office"...),
 * for `audiences` (a JSON array text) and with a release rule of
 * `release_minutes` (0: none); fails the test unless it is created, and
 * returns its id. */
int64_t fix_publish_one(struct fixture *f, const char *rpps, int64_t site, int at_min,
                        const char *mode, const char *audiences, int release_minutes);

/* The member of `j` at a dotted path with numeric array indices
 * ("meta.profile.0"), or NULL; fix_json_str gives its string value. */
json_t *fix_json_at(json_t *j, const char *path);
const char *fix_json_str(json_t *j, const char *path);

/* Skips the calling test after stopping `f`'s snpd and dropping its
 * database (fixture_teardown): Criterion runs no .fini after a skip, and
 * the processes started by .init would otherwise outlive the test. */
void fix_skip(struct fixture *f, const char *why);

/* The FHIR R4 JSON-schema validator (tests/fhir/validate.mjs) that
 * deploy/test.sh names in SNP_FHIR_VALIDATOR; skips the calling test
 * (fix_skip) when it is not set (under --sanitize, or without node). */
const char *fix_fhir_validator(struct fixture *f);

/* The body of a minimal valid request.create with this client_ref. */
char *fix_request_body(const char *client_ref, const char *urgency);

/* Adds a token of `role` to `territory` by SQL, for practitioner `rpps` or
 * organisation `organisation_id` (NULL / 0 when the role has none), which
 * expires `expires_in` seconds from now (0: never; negative: already
 * expired) and is revoked when `revoked`.  Writes its secret and returns
 * its id. */
int64_t fix_add_token(struct fixture *f, const char *role, const char *territory, const char *rpps,
                      int64_t organisation_id, int expires_in, bool revoked, char secret[48]);

/* A booking made end to end through the API: GP1 publishes one slot
 * `first_min` minutes ahead, the fixture's pharmacy asks for a patient named
 * `display_name` with phone `phone` and accepts the offer. */
struct fix_booking {
    int64_t request_id;
    int64_t booking_id;
    int64_t slot_id;
};
void fix_book(struct fixture *f, const char *client_ref, const char *display_name,
              const char *phone, int first_min, struct fix_booking *out);

/* Runs `sql` with `n` text parameters on the fixture's own connection and
 * asserts that it succeeded; the caller clears the result. */
PGresult *fix_sql(struct fixture *f, const char *sql, int n, const char *const *params);

/* Runs `sql`, which must answer one row, and returns its first column. */
long long fix_sql_ll(struct fixture *f, const char *sql, int n, const char *const *params);

/* Writes `t` (epoch seconds) as RFC 3339 in UTC ("2026-11-02T07:00:00Z"). */
void fix_iso_utc(int64_t t, char out[32]);

/* The test clock, for replaying past activity through the real SQL
 * functions.  The dispatch functions read now() (a slot can only be held
 * while its start is ahead, an outcome only after it), and the event log
 * stamps clock_timestamp().  This installs in the throwaway database a
 * schema snp_testclock whose now() and clock_timestamp() return the session
 * setting snp.test_now (or the real time when it is unset), puts that schema
 * before pg_catalog in the search_path of the fixture's session, and points
 * the timestamp column defaults (event.at, audit.at, request.created_at,
 * slot.published_at, booking.booked_at) at it.  The production functions run
 * unchanged: their now() merely resolves to the test clock.  Connections
 * opened by snpd keep the real clock. */
void fix_install_test_clock(struct fixture *f);

/* Sets the test clock of the fixture's session to `t` (epoch seconds). */
void fix_clock_at(struct fixture *f, int64_t t);

#endif
