#include "dispatcher/jobs/outbox.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/net/handles.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define BACKLOG_EVERY_MS 5000
#define ERROR_TEXT_MAX   200 /* what is kept of an answer's body in last_error */
#define KICK_DELAY_MS    50  /* announced changes wait this long to share a claim */

/* One row being pushed: one outbound HTTP exchange (two when a conditional
 * update answers 404 and is sent again as a creation), then the query that
 * records its result. */
enum push_state {
    PUSH_CREATING, /* POST {base}/Appointment in flight */
    PUSH_UPDATING, /* PUT {base}/Appointment?identifier=… in flight */
    PUSH_RECORDING /* the result's UPDATE in flight; the easy handle is gone */
};

struct push {
    struct outbox *ob;
    struct push *prev, *next; /* in ob->sending while an exchange is in flight */
    enum push_state state;
    CURL *easy;
    struct curl_slist *headers;
    long long id;
    int attempts;
    char *base_url;
    char *body;
    long long booking_id;
    char error[ERROR_TEXT_MAX + 1]; /* the start of the answer's body, or curl's error */
    size_t error_len;
    char curl_error[CURL_ERROR_SIZE];
    char why[ERROR_TEXT_MAX + CURL_ERROR_SIZE]; /* what went wrong, as recorded */
};

static void outbox_claim(struct outbox *ob);
static void outbox_maybe_closed(struct outbox *ob);

static void outbox_set_state(struct outbox *ob, enum outbox_state next)
{
    static const char *const names[] = {"idle", "running", "closing", "closed"};
    log_debug("outbox", "%s -> %s", names[ob->state], names[next]);
    ob->state = next;
}

/* --- recording results ------------------------------------------------------------- */

static void push_unlink(struct push *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (p->ob->sending == p)
        p->ob->sending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void push_free(struct push *p)
{
    push_unlink(p);
    if (p->easy) {
        httpc_remove(&p->ob->http, p->easy);
        curl_easy_cleanup(p->easy);
    }
    curl_slist_free_all(p->headers);
    free(p->base_url);
    free(p->body);
    free(p);
}

static void on_recorded(void *arg, enum db_status st, const PGresult *res)
{
    struct push *p = arg;
    struct outbox *ob = p->ob;
    ob->queries--;
    ob->transfers--;
    if (st != DB_OK)
        log_warn("outbox", "push %lld: cannot record the result (%s); sent again later", p->id,
                 st == DB_QUERY_ERROR ? PQresultErrorMessage(res) : "no database");
    else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
        ob->stats.given_up++;
        log_warn("outbox", "push %lld of booking %lld given up after refusals: %s", p->id,
                 p->booking_id, p->why);
    }
    push_free(p);
    if (ob->state == OUTBOX_RUNNING)
        outbox_claim(ob); /* a free place: the next due row may go */
    else
        outbox_maybe_closed(ob);
}

/* Records the end of an exchange: `http` is the status (0 when there was no
 * answer), `refused` whether it counts towards giving up. */
static void push_record(struct push *p, long http, bool refused)
{
    struct outbox *ob = p->ob;
    httpc_remove(&ob->http, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = NULL;
    push_unlink(p);
    p->state = PUSH_RECORDING;
    char id[24], attempts[16];
    snprintf(id, sizeof(id), "%lld", p->id);
    snprintf(attempts, sizeof(attempts), "%d", p->attempts);
    ob->queries++;
    if (http >= 200 && http < 300) {
        ob->stats.sent++;
        log_debug("outbox", "push %lld of booking %lld: %ld", p->id, p->booking_id, http);
        const char *params[] = {id, attempts};
        db_query(ob->db, sql_text[SQL_OUTBOX_SENT], 2, params, on_recorded, p);
        return;
    }
    ob->stats.failures++;
    char wait[24], dead_after[24], refused_text[8];
    snprintf(wait, sizeof(wait), "%ld",
             httpc_retry_ms(&ob->rng, p->attempts, ob->cfg->sas_push_retry_max_s));
    snprintf(dead_after, sizeof(dead_after), "%d", ob->cfg->sas_push_dead_after_s);
    snprintf(refused_text, sizeof(refused_text), "%s", refused ? "true" : "false");
    char *why = p->why;
    if (http > 0)
        snprintf(why, sizeof(p->why), "HTTP %ld: %s", http, p->error);
    else
        snprintf(why, sizeof(p->why), "%s", p->curl_error[0] ? p->curl_error : "no answer");
    log_info("outbox", "push %lld of booking %lld failed (%s); attempt %d", p->id, p->booking_id,
             why, p->attempts);
    const char *params[] = {id, attempts, wait, refused_text, dead_after, why};
    db_query(ob->db, sql_text[SQL_OUTBOX_FAILED], 6, params, on_recorded, p);
}

/* --- sending ----------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct push *p = arg;
    size_t len = size * n;
    size_t room = ERROR_TEXT_MAX - p->error_len;
    size_t take = len < room ? len : room;
    for (size_t i = 0; i < take; i++) {
        char c = data[i];
        p->error[p->error_len++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
    p->error[p->error_len] = '\0';
    return len;
}

/* Points the easy handle at the creation (POST) or the conditional update
 * (PUT) and hands it to httpc.  Returns false when libcurl refuses. */
static bool push_send(struct push *p, bool create)
{
    struct outbox *ob = p->ob;
    char *url;
    if (create) {
        if (asprintf(&url, "%s/Appointment", p->base_url) < 0)
            return false;
    } else {
        char value[340];
        snprintf(value, sizeof(value), "%s|%lld", ob->id_system, p->booking_id);
        char *escaped = curl_easy_escape(p->easy, value, 0);
        if (!escaped)
            return false;
        int n = asprintf(&url, "%s/Appointment?identifier=%s", p->base_url, escaped);
        curl_free(escaped);
        if (n < 0)
            return false;
    }
    p->state = create ? PUSH_CREATING : PUSH_UPDATING;
    p->error_len = 0;
    p->error[0] = '\0';
    p->curl_error[0] = '\0';
    curl_easy_setopt(p->easy, CURLOPT_URL, url);
    curl_easy_setopt(p->easy, CURLOPT_CUSTOMREQUEST, create ? NULL : "PUT");
    bool ok = httpc_add(&ob->http, p->easy);
    free(url);
    return ok;
}

/* The columns of outbox_claim.sql. */
enum claim_col {
    CLAIM_ID,
    CLAIM_BOOKING,
    CLAIM_SEQ,
    CLAIM_ATTEMPTS,
    CLAIM_BASE_URL,
    CLAIM_BODY,
    CLAIM_NCOLS
};
static const char *const claim_names[CLAIM_NCOLS] = {
    [CLAIM_ID] = "id",
    [CLAIM_BOOKING] = "booking_id",
    [CLAIM_SEQ] = "seq",
    [CLAIM_ATTEMPTS] = "attempts",
    [CLAIM_BASE_URL] = "base_url",
    [CLAIM_BODY] = "body",
};

/* A push for row `row` of a claim, of columns `c`. */
static struct push *push_new(struct outbox *ob, const PGresult *res, int row, const int *c)
{
    struct push *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ob = ob;
    p->id = atoll(PQgetvalue(res, row, c[CLAIM_ID]));
    p->booking_id = atoll(PQgetvalue(res, row, c[CLAIM_BOOKING]));
    p->attempts = atoi(PQgetvalue(res, row, c[CLAIM_ATTEMPTS]));
    p->base_url = strdup(PQgetvalue(res, row, c[CLAIM_BASE_URL]));
    p->body = strdup(PQgetvalue(res, row, c[CLAIM_BODY]));
    p->easy = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/fhir+json");
    if (h)
        p->headers = h;
    h = h ? curl_slist_append(h, "Accept: application/fhir+json") : NULL;
    /* libcurl asks a server to confirm bodies over 1 KiB before sending them
     * ("Expect: 100-continue") and waits a second for the answer. */
    h = h ? curl_slist_append(h, "Expect:") : NULL;
    if (!p->base_url || !p->body || !p->easy || !h) {
        push_free(p);
        return NULL;
    }
    CURL *e = p->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, p);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(p->body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ob->cfg->sas_push_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ob->cfg->sas_push_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->curl_error);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "snpd/" SNP_VERSION);
    return p;
}

/* An exchange ended: decide what its answer means. */
static void push_done(struct push *p, CURLcode code)
{
    long http = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &http);
    if (p->state == PUSH_UPDATING && http == 404) {
        /* The platform does not know the appointment: the guide says to
         * create it. */
        httpc_remove(&p->ob->http, p->easy);
        if (push_send(p, true))
            return;
        http = 0;
        snprintf(p->curl_error, sizeof(p->curl_error), "cannot send the creation");
    }
    bool transient = http == 0 || http == 408 || http == 429 || http >= 500;
    push_record(p, http, !transient && (http < 200 || http >= 300));
}

/* httpc's callback: a transfer ended. */
static void on_transfer_done(struct httpc *h, CURL *easy, CURLcode result)
{
    (void)h;
    struct push *p = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&p);
    if (p)
        push_done(p, result);
}

/* --- claiming ---------------------------------------------------------------------- */

static void on_claimed(void *arg, enum db_status st, const PGresult *res)
{
    struct outbox *ob = arg;
    ob->queries--;
    ob->claiming = false;
    if (ob->state != OUTBOX_RUNNING) {
        outbox_maybe_closed(ob);
        return;
    }
    if (st != DB_OK) {
        if (st == DB_QUERY_ERROR)
            log_warn("outbox", "cannot claim pushes: %s", PQresultErrorMessage(res));
        return; /* the next poll tries again */
    }
    int c[CLAIM_NCOLS];
    if (!db_cols_resolve(res, claim_names, CLAIM_NCOLS, c, sql_name[SQL_OUTBOX_CLAIM]))
        return; /* logged; the leases run out and the rows are claimed again */
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct push *p = push_new(ob, res, i, c);
        if (!p || !push_send(p, p->attempts == 1 && atoi(PQgetvalue(res, i, c[CLAIM_SEQ])) == 1)) {
            /* Its lease runs out and it is claimed again. */
            log_error("outbox", "cannot start a push: out of memory or refused by libcurl");
            if (p)
                push_free(p);
            continue;
        }
        ob->transfers++;
        p->next = ob->sending;
        if (p->next)
            p->next->prev = p;
        ob->sending = p;
    }
    if (ob->again) {
        ob->again = false;
        outbox_claim(ob);
    }
}

/* Claims as many due rows as there are free places, unless a claim is in
 * flight (then it claims again when that one ends). */
static void outbox_claim(struct outbox *ob)
{
    if (ob->state != OUTBOX_RUNNING)
        return;
    if (ob->claiming) {
        ob->again = true;
        return;
    }
    int room = ob->cfg->sas_push_max_in_flight - ob->transfers;
    if (room <= 0 || !db_is_up(ob->db))
        return;
    char lease[16], limit[16];
    snprintf(lease, sizeof(lease), "%d", ob->cfg->sas_push_timeout_ms * 2 / 1000 + 5);
    snprintf(limit, sizeof(limit), "%d", room);
    const char *params[] = {lease, limit, ob->id_system};
    ob->claiming = true;
    ob->queries++;
    db_query(ob->db, sql_text[SQL_OUTBOX_CLAIM], 3, params, on_claimed, ob);
}

/* The columns of outbox_backlog.sql. */
enum backlog_col { BACKLOG_PENDING, BACKLOG_OLDEST, BACKLOG_DEAD, BACKLOG_NCOLS };
static const char *const backlog_names[BACKLOG_NCOLS] = {
    [BACKLOG_PENDING] = "pending",
    [BACKLOG_OLDEST] = "oldest_s",
    [BACKLOG_DEAD] = "dead",
};

static void on_backlog(void *arg, enum db_status st, const PGresult *res)
{
    struct outbox *ob = arg;
    ob->queries--;
    int c[BACKLOG_NCOLS];
    if (st == DB_OK && PQntuples(res) == 1 &&
        db_cols_resolve(res, backlog_names, BACKLOG_NCOLS, c, sql_name[SQL_OUTBOX_BACKLOG])) {
        ob->stats.backlog_known = true;
        ob->stats.pending = atoll(PQgetvalue(res, 0, c[BACKLOG_PENDING]));
        ob->stats.oldest_pending_s = atof(PQgetvalue(res, 0, c[BACKLOG_OLDEST]));
        ob->stats.dead = atoll(PQgetvalue(res, 0, c[BACKLOG_DEAD]));
    }
    outbox_maybe_closed(ob);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct outbox *ob = container_of(t, struct outbox, poll_timer);
    ob->kicked = false;
    if (ob->state != OUTBOX_RUNNING)
        return;
    outbox_claim(ob);
    uint64_t now = uv_now(ob->loop);
    if (now >= ob->backlog_due_ms && db_is_up(ob->db)) {
        ob->backlog_due_ms = now + BACKLOG_EVERY_MS;
        ob->queries++;
        db_query(ob->db, sql_text[SQL_OUTBOX_BACKLOG], 0, NULL, on_backlog, ob);
    }
}

/* --- lifecycle --------------------------------------------------------------------- */

int outbox_init(struct outbox *ob, uv_loop_t *loop, struct db *db, const struct config *cfg)
{
    memset(ob, 0, sizeof(*ob));
    ob->loop = loop;
    ob->db = db;
    ob->cfg = cfg;
    ob->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    if (httpc_init(&ob->http, loop, on_transfer_done, ob) != 0)
        return -1;
    uv_timer_init(loop, &ob->poll_timer);
    handle_mark_own((uv_handle_t *)&ob->poll_timer);
    ob->open_handles = 2; /* the poll timer and httpc */
    snprintf(ob->id_system, sizeof(ob->id_system), "%s/fhir/sid/appointment", cfg->public_url);
    return 0;
}

void outbox_start(struct outbox *ob)
{
    if (ob->state != OUTBOX_IDLE)
        return;
    if (ob->cfg->public_url[0] == '\0') {
        log_warn("outbox", "public_url is not set: appointments are not pushed to the SAS "
                           "platform (they wait in appointment_outbox)");
        return;
    }
    outbox_set_state(ob, OUTBOX_RUNNING);
    uint64_t every = (uint64_t)ob->cfg->sas_push_poll_ms;
    uv_timer_start(&ob->poll_timer, on_poll_timer, 0, every);
}

void outbox_kick(struct outbox *ob)
{
    /* Every booking announced by any process calls this, in every process,
     * territories without a platform included: a claim per booking would
     * add a round trip to each.  Kicks are gathered into one claim per
     * KICK_DELAY_MS at most. */
    if (ob->state != OUTBOX_RUNNING || ob->kicked)
        return;
    ob->kicked = true;
    uv_timer_start(&ob->poll_timer, on_poll_timer, KICK_DELAY_MS,
                   (uint64_t)ob->cfg->sas_push_poll_ms);
}

static void on_poll_timer_closed(uv_handle_t *h)
{
    struct outbox *ob = container_of((uv_timer_t *)h, struct outbox, poll_timer);
    ob->open_handles--;
    outbox_maybe_closed(ob);
}

static void on_http_closed(struct httpc *h)
{
    struct outbox *ob = h->data;
    ob->open_handles--;
    outbox_maybe_closed(ob);
}

/* The end of the close: once no query is due and every handle is closed. */
static void outbox_maybe_closed(struct outbox *ob)
{
    if (ob->state != OUTBOX_CLOSING || ob->queries > 0 || ob->open_handles > 0)
        return;
    outbox_set_state(ob, OUTBOX_CLOSED);
    if (ob->on_closed)
        ob->on_closed(ob);
}

void outbox_close(struct outbox *ob, outbox_close_cb on_closed)
{
    if (ob->state == OUTBOX_CLOSING || ob->state == OUTBOX_CLOSED)
        return;
    outbox_set_state(ob, OUTBOX_CLOSING);
    ob->on_closed = on_closed;
    uv_timer_stop(&ob->poll_timer);
    /* Each transfer in flight is dropped (removing its easy handle makes
     * libcurl forget its sockets); its row is claimed again when its lease
     * runs out.  Those being recorded end in on_recorded. */
    while (ob->sending) {
        struct push *p = ob->sending;
        ob->transfers--;
        push_free(p);
    }
    httpc_close(&ob->http, on_http_closed);
    uv_close((uv_handle_t *)&ob->poll_timer, on_poll_timer_closed);
}

void outbox_write_metrics(const struct outbox *ob, struct buf *b)
{
    const struct outbox_stats *s = &ob->stats;
    buf_printf(b,
               "# HELP snpd_sas_push_sent_total Appointment pushes the SAS platform "
               "acknowledged (this process).\n"
               "# TYPE snpd_sas_push_sent_total counter\nsnpd_sas_push_sent_total %llu\n"
               "# HELP snpd_sas_push_failures_total Appointment push attempts that failed "
               "(this process).\n"
               "# TYPE snpd_sas_push_failures_total counter\nsnpd_sas_push_failures_total %llu\n"
               "# HELP snpd_sas_push_given_up_total Appointment pushes this process moved "
               "to dead-letter.\n"
               "# TYPE snpd_sas_push_given_up_total counter\nsnpd_sas_push_given_up_total %llu\n",
               (unsigned long long)s->sent, (unsigned long long)s->failures,
               (unsigned long long)s->given_up);
    if (!s->backlog_known)
        return;
    buf_printf(b,
               "# HELP snpd_sas_push_pending Appointment pushes waiting to be sent "
               "(whole database).\n"
               "# TYPE snpd_sas_push_pending gauge\nsnpd_sas_push_pending %lld\n"
               "# HELP snpd_sas_push_oldest_pending_seconds Age of the oldest waiting push.\n"
               "# TYPE snpd_sas_push_oldest_pending_seconds gauge\n"
               "snpd_sas_push_oldest_pending_seconds %.3f\n"
               "# HELP snpd_sas_push_dead Appointment pushes given up (dead-letter, whole "
               "database).\n"
               "# TYPE snpd_sas_push_dead gauge\nsnpd_sas_push_dead %lld\n",
               s->pending, s->oldest_pending_s, s->dead);
}
