#include "dispatcher/jobs/sender.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "dispatcher/db/db_cols.h"
#include "dispatcher/net/handles.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define BACKLOG_EVERY_MS 5000
#define ERROR_TEXT_MAX   200 /* what is kept of an answer's body in last_error */
#define MAX_IN_FLIGHT    8   /* messages one process hands over at once */

/* One claimed row: a file write or an HTTP exchange, then the query that
 * records its result. */
struct outgoing {
    struct sender *s;
    struct outgoing *prev, *next; /* in s->sending while an HTTP exchange is in flight */
    long long id;
    int attempts;
    char kind[16];
    char channel[8];
    char *document; /* the JSON sent: address and text; freed as soon as handed over */
    uv_fs_t fs;
    uv_buf_t buf;
    CURL *easy;
    struct curl_slist *headers;
    char error[ERROR_TEXT_MAX + 1]; /* the start of the answer's body */
    size_t error_len;
    char curl_error[CURL_ERROR_SIZE];
};

static void sender_claim(struct sender *s);
static void sender_maybe_closed(struct sender *s);

static void sender_set_state(struct sender *s, enum sender_state next)
{
    static const char *const names[] = {"idle", "running", "closing", "closed"};
    log_debug("sender", "%s -> %s", names[s->state], names[next]);
    s->state = next;
}

static void outgoing_unlink(struct outgoing *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else if (o->s->sending == o)
        o->s->sending = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

/* Wipes the document before freeing it: it holds an address and health data. */
static void outgoing_drop_document(struct outgoing *o)
{
    if (o->document) {
        memset(o->document, 0, strlen(o->document));
        free(o->document);
        o->document = NULL;
    }
}

static void outgoing_free(struct outgoing *o)
{
    outgoing_unlink(o);
    if (o->easy) {
        httpc_remove(&o->s->http, o->easy);
        curl_easy_cleanup(o->easy);
    }
    curl_slist_free_all(o->headers);
    outgoing_drop_document(o);
    free(o);
}

/* --- recording results ------------------------------------------------------------- */

static void on_recorded(void *arg, enum db_status st, const PGresult *res)
{
    struct outgoing *o = arg;
    struct sender *s = o->s;
    s->queries--;
    s->transfers--;
    if (st != DB_OK)
        log_warn("sender", "message %lld: cannot record the result (%s); sent again later", o->id,
                 st == DB_QUERY_ERROR ? PQresultErrorMessage(res) : "no database");
    else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
        s->stats.given_up++;
        log_warn("sender", "message %lld (%s by %s) given up", o->id, o->kind, o->channel);
    }
    outgoing_free(o);
    if (s->state == SENDER_RUNNING)
        sender_claim(s);
    else
        sender_maybe_closed(s);
}

/* Records the end of an attempt: accepted, or failed for `why`. */
static void outgoing_record(struct outgoing *o, bool accepted, const char *why)
{
    struct sender *s = o->s;
    outgoing_unlink(o);
    if (o->easy) {
        httpc_remove(&s->http, o->easy);
        curl_easy_cleanup(o->easy);
        o->easy = NULL;
    }
    outgoing_drop_document(o);
    char id[24], attempts[16];
    snprintf(id, sizeof(id), "%lld", o->id);
    snprintf(attempts, sizeof(attempts), "%d", o->attempts);
    s->queries++;
    if (accepted) {
        s->stats.sent++;
        log_debug("sender", "message %lld (%s by %s) sent", o->id, o->kind, o->channel);
        const char *params[] = {id, attempts};
        db_query(s->db, sql_text[SQL_MESSAGE_SENT], 2, params, on_recorded, o);
        return;
    }
    s->stats.failures++;
    log_info("sender", "message %lld (%s by %s) failed (%s); attempt %d", o->id, o->kind,
             o->channel, why, o->attempts);
    char wait[24], dead_after[24];
    snprintf(wait, sizeof(wait), "%ld",
             httpc_retry_ms(&s->rng, o->attempts, s->cfg->message_retry_max_s));
    snprintf(dead_after, sizeof(dead_after), "%d", s->cfg->message_dead_after_s);
    const char *params[] = {id, attempts, wait, dead_after, why};
    db_query(s->db, sql_text[SQL_MESSAGE_FAILED], 5, params, on_recorded, o);
}

/* --- the file sender --------------------------------------------------------------- */

static void on_written(uv_fs_t *req)
{
    struct outgoing *o = container_of(req, struct outgoing, fs);
    struct sender *s = o->s;
    s->io--;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    char why[128] = "";
    if (n < 0)
        snprintf(why, sizeof(why), "cannot write the message file: %s", uv_strerror((int)n));
    else if ((size_t)n != o->buf.len)
        snprintf(why, sizeof(why), "short write to the message file");
    outgoing_record(o, n >= 0 && (size_t)n == o->buf.len, why);
}

/* Appends the document as one line.  O_APPEND makes each write land whole
 * at the end, whichever process writes. */
static bool file_send(struct outgoing *o)
{
    struct sender *s = o->s;
    size_t len = strlen(o->document);
    o->document[len] = '\n'; /* the document was allocated with room for it */
    o->buf = uv_buf_init(o->document, (unsigned int)(len + 1));
    if (uv_fs_write(s->loop, &o->fs, s->file, &o->buf, 1, -1, on_written) != 0)
        return false;
    s->io++;
    return true;
}

static void on_opened(uv_fs_t *req)
{
    struct sender *s = req->data;
    s->io--;
    s->opening = false;
    if (req->result >= 0) {
        s->file = (uv_file)req->result;
        s->open_failed = false;
        log_info("sender", "messages are written to %s", s->cfg->message_file);
        if (s->state == SENDER_RUNNING)
            sender_claim(s);
    } else if (!s->open_failed) {
        /* Said once: it is tried again at every poll. */
        s->open_failed = true;
        log_warn("sender", "cannot open %s (%s): messages wait in the database until it can",
                 s->cfg->message_file, uv_strerror((int)req->result));
    }
    uv_fs_req_cleanup(req);
    free(req);
    if (s->state != SENDER_RUNNING)
        sender_maybe_closed(s);
}

/* Opens the file unless it is open or opening; tried again at every poll
 * while it fails (a directory created later, a disk remounted). */
static void file_open(struct sender *s)
{
    if (s->file >= 0 || s->opening)
        return;
    uv_fs_t *req = malloc(sizeof(*req));
    if (!req)
        return;
    req->data = s;
    if (uv_fs_open(s->loop, req, s->cfg->message_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                   0600, on_opened) != 0) {
        free(req);
        return;
    }
    s->io++;
    s->opening = true;
}

/* --- the HTTP sender --------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct outgoing *o = arg;
    size_t len = size * n;
    size_t room = ERROR_TEXT_MAX - o->error_len;
    size_t take = len < room ? len : room;
    for (size_t i = 0; i < take; i++) {
        char c = data[i];
        o->error[o->error_len++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
    o->error[o->error_len] = '\0';
    return len;
}

static bool http_send(struct outgoing *o)
{
    struct sender *s = o->s;
    const struct config *cfg = s->cfg;
    char key[64], auth[300];
    snprintf(key, sizeof(key), "Idempotency-Key: snpd-message-%lld", o->id);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h)
        o->headers = h;
    h = h ? curl_slist_append(h, "Accept: application/json") : NULL;
    h = h ? curl_slist_append(h, "Expect:") : NULL;
    h = h ? curl_slist_append(h, key) : NULL;
    if (h && cfg->message_gateway_token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->message_gateway_token);
        h = curl_slist_append(h, auth);
    }
    o->easy = curl_easy_init();
    if (!h || !o->easy)
        return false;
    CURL *e = o->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, o);
    curl_easy_setopt(e, CURLOPT_URL, cfg->message_gateway_url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->document);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(o->document));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->message_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->message_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, o);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, o->curl_error);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "snpd/" SNP_VERSION);
    if (!httpc_add(&s->http, e))
        return false;
    o->next = s->sending;
    if (o->next)
        o->next->prev = o;
    s->sending = o;
    return true;
}

/* httpc's callback: an exchange ended. */
static void on_transfer_done(struct httpc *h, CURL *easy, CURLcode result)
{
    (void)h;
    struct outgoing *o = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&o);
    if (!o)
        return;
    long http = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
    char why[ERROR_TEXT_MAX + CURL_ERROR_SIZE + 16];
    if (http > 0)
        snprintf(why, sizeof(why), "HTTP %ld: %s", http, o->error);
    else
        snprintf(why, sizeof(why), "%s", o->curl_error[0] ? o->curl_error : "no answer");
    outgoing_record(o, http >= 200 && http < 300, why);
}

/* --- claiming ---------------------------------------------------------------------- */

static const char *to_type(const char *channel)
{
    if (strcmp(channel, "sms") == 0)
        return "phone";
    if (strcmp(channel, "email") == 0)
        return "email";
    return "rpps";
}

/* The columns of message_claim.sql. */
enum claim_col {
    CLAIM_ID,
    CLAIM_ATTEMPTS,
    CLAIM_KIND,
    CLAIM_CHANNEL,
    CLAIM_RECIPIENT,
    CLAIM_TERRITORY,
    CLAIM_CONTENT,
    CLAIM_NCOLS
};
static const char *const claim_names[CLAIM_NCOLS] = {
    [CLAIM_ID] = "id",
    [CLAIM_ATTEMPTS] = "attempts",
    [CLAIM_KIND] = "kind",
    [CLAIM_CHANNEL] = "channel",
    [CLAIM_RECIPIENT] = "recipient",
    [CLAIM_TERRITORY] = "territory_id",
    [CLAIM_CONTENT] = "content",
};

/* The document handed to the sender (docs/messages.md "What the sender
 * receives") from row `row` of a claim, of columns `c`, with one spare byte
 * for the file sender's newline. */
static char *outgoing_document(const PGresult *res, int row, const int *c, const char *kind,
                               const char *channel, long long id)
{
    json_t *content = json_loads(PQgetvalue(res, row, c[CLAIM_CONTENT]), 0, NULL);
    json_t *doc = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:O?, s:O?}", "message_id", (json_int_t)id, "territory_id",
        PQgetvalue(res, row, c[CLAIM_TERRITORY]), "kind", kind, "channel", channel, "to_type",
        to_type(channel), "to", PQgetvalue(res, row, c[CLAIM_RECIPIENT]), "subject",
        json_object_get(content, "subject"), "text", json_object_get(content, "text"));
    json_decref(content);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (out) {
        memcpy(out, text, len + 1);
        out[len + 1] = '\0';
    }
    memset(text, 0, len);
    free(text);
    return out;
}

static void on_claimed(void *arg, enum db_status st, const PGresult *res)
{
    struct sender *s = arg;
    s->queries--;
    s->claiming = false;
    if (s->state != SENDER_RUNNING) {
        sender_maybe_closed(s);
        return;
    }
    if (st != DB_OK) {
        if (st == DB_QUERY_ERROR)
            log_warn("sender", "cannot claim messages: %s", PQresultErrorMessage(res));
        return;
    }
    int c[CLAIM_NCOLS];
    if (!db_cols_resolve(res, claim_names, CLAIM_NCOLS, c, sql_name[SQL_MESSAGE_CLAIM]))
        return; /* logged; the leases run out and the rows are claimed again */
    for (int i = 0; i < PQntuples(res); i++) {
        struct outgoing *o = calloc(1, sizeof(*o));
        if (!o) {
            log_error("sender", "out of memory: a message waits for its lease to run out");
            continue;
        }
        o->s = s;
        o->id = atoll(PQgetvalue(res, i, c[CLAIM_ID]));
        o->attempts = atoi(PQgetvalue(res, i, c[CLAIM_ATTEMPTS]));
        snprintf(o->kind, sizeof(o->kind), "%s", PQgetvalue(res, i, c[CLAIM_KIND]));
        snprintf(o->channel, sizeof(o->channel), "%s", PQgetvalue(res, i, c[CLAIM_CHANNEL]));
        o->document = outgoing_document(res, i, c, o->kind, o->channel, o->id);
        bool started =
            o->document &&
            (s->cfg->message_sender == MESSAGE_SENDER_FILE ? file_send(o) : http_send(o));
        if (!started) {
            log_error("sender", "cannot start message %lld: out of memory or refused", o->id);
            outgoing_free(o);
            continue;
        }
        s->transfers++;
    }
    if (s->again) {
        s->again = false;
        sender_claim(s);
    }
}

static void sender_claim(struct sender *s)
{
    if (s->state != SENDER_RUNNING)
        return;
    if (s->claiming) {
        s->again = true;
        return;
    }
    if (s->cfg->message_sender == MESSAGE_SENDER_FILE && s->file < 0) {
        file_open(s); /* claims when open */
        return;
    }
    int room = MAX_IN_FLIGHT - s->transfers;
    if (room <= 0 || !db_is_up(s->db))
        return;
    char lease[16], limit[16];
    snprintf(lease, sizeof(lease), "%d", s->cfg->message_timeout_ms * 2 / 1000 + 5);
    snprintf(limit, sizeof(limit), "%d", room);
    const char *params[] = {lease, limit};
    s->claiming = true;
    s->queries++;
    db_query(s->db, sql_text[SQL_MESSAGE_CLAIM], 2, params, on_claimed, s);
}

/* The columns of message_backlog.sql. */
enum backlog_col { BACKLOG_PENDING, BACKLOG_OLDEST, BACKLOG_DEAD, BACKLOG_NCOLS };
static const char *const backlog_names[BACKLOG_NCOLS] = {
    [BACKLOG_PENDING] = "pending",
    [BACKLOG_OLDEST] = "oldest_s",
    [BACKLOG_DEAD] = "dead",
};

static void on_backlog(void *arg, enum db_status st, const PGresult *res)
{
    struct sender *s = arg;
    s->queries--;
    int c[BACKLOG_NCOLS];
    if (st == DB_OK && PQntuples(res) == 1 &&
        db_cols_resolve(res, backlog_names, BACKLOG_NCOLS, c, sql_name[SQL_MESSAGE_BACKLOG])) {
        s->stats.backlog_known = true;
        s->stats.pending = atoll(PQgetvalue(res, 0, c[BACKLOG_PENDING]));
        s->stats.oldest_pending_s = atof(PQgetvalue(res, 0, c[BACKLOG_OLDEST]));
        s->stats.dead = atoll(PQgetvalue(res, 0, c[BACKLOG_DEAD]));
    }
    sender_maybe_closed(s);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct sender *s = container_of(t, struct sender, poll_timer);
    if (s->state != SENDER_RUNNING)
        return;
    sender_claim(s);
    uint64_t now = uv_now(s->loop);
    if (now >= s->backlog_due_ms && db_is_up(s->db)) {
        s->backlog_due_ms = now + BACKLOG_EVERY_MS;
        s->queries++;
        db_query(s->db, sql_text[SQL_MESSAGE_BACKLOG], 0, NULL, on_backlog, s);
    }
}

/* --- lifecycle --------------------------------------------------------------------- */

int sender_init(struct sender *s, uv_loop_t *loop, struct db *db, const struct config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->db = db;
    s->cfg = cfg;
    s->file = -1;
    s->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x2545f4914f6cdd1dull;
    if (httpc_init(&s->http, loop, on_transfer_done, s) != 0)
        return -1;
    uv_timer_init(loop, &s->poll_timer);
    handle_mark_own((uv_handle_t *)&s->poll_timer);
    s->open_handles = 2; /* the poll timer and httpc */
    return 0;
}

void sender_start(struct sender *s)
{
    if (s->state != SENDER_IDLE)
        return;
    if (s->cfg->message_sender == MESSAGE_SENDER_NONE) {
        log_warn("sender", "message_sender is none: messages to patients and practitioners "
                           "are not sent (they wait in message_outbox)");
        return;
    }
    sender_set_state(s, SENDER_RUNNING);
    uv_timer_start(&s->poll_timer, on_poll_timer, 0, (uint64_t)s->cfg->message_poll_ms);
}

static void on_poll_timer_closed(uv_handle_t *h)
{
    struct sender *s = container_of((uv_timer_t *)h, struct sender, poll_timer);
    s->open_handles--;
    sender_maybe_closed(s);
}

static void on_http_closed(struct httpc *h)
{
    struct sender *s = h->data;
    s->open_handles--;
    sender_maybe_closed(s);
}

static void on_file_closed(uv_fs_t *req)
{
    struct sender *s = req->data;
    s->io--;
    uv_fs_req_cleanup(req);
    free(req);
    sender_maybe_closed(s);
}

/* The end of the close: once no write or query is due the file is closed,
 * and once that and every handle are done, on_closed. */
static void sender_maybe_closed(struct sender *s)
{
    if (s->state != SENDER_CLOSING || s->queries > 0 || s->io > 0 || s->transfers > 0)
        return;
    if (s->file >= 0) {
        uv_fs_t *req = malloc(sizeof(*req));
        uv_file f = s->file;
        s->file = -1;
        if (req) {
            req->data = s;
            if (uv_fs_close(s->loop, req, f, on_file_closed) == 0) {
                s->io++;
                return;
            }
            free(req);
        }
        close(f);
    }
    if (s->open_handles > 0)
        return;
    sender_set_state(s, SENDER_CLOSED);
    if (s->on_closed)
        s->on_closed(s);
}

void sender_close(struct sender *s, sender_close_cb on_closed)
{
    if (s->state == SENDER_CLOSING || s->state == SENDER_CLOSED)
        return;
    sender_set_state(s, SENDER_CLOSING);
    s->on_closed = on_closed;
    uv_timer_stop(&s->poll_timer);
    /* Each HTTP exchange in flight is dropped; its row is claimed again
     * when its lease runs out.  File writes end by themselves. */
    while (s->sending) {
        s->transfers--;
        outgoing_free(s->sending);
    }
    httpc_close(&s->http, on_http_closed);
    uv_close((uv_handle_t *)&s->poll_timer, on_poll_timer_closed);
}

void sender_write_metrics(const struct sender *s, struct buf *b)
{
    const struct sender_stats *st = &s->stats;
    buf_printf(b,
               "# HELP snpd_messages_sent_total Messages to patients and practitioners the "
               "sender accepted (this process).\n"
               "# TYPE snpd_messages_sent_total counter\nsnpd_messages_sent_total %llu\n"
               "# HELP snpd_messages_failures_total Message attempts that failed "
               "(this process).\n"
               "# TYPE snpd_messages_failures_total counter\nsnpd_messages_failures_total %llu\n"
               "# HELP snpd_messages_given_up_total Messages this process gave up.\n"
               "# TYPE snpd_messages_given_up_total counter\nsnpd_messages_given_up_total %llu\n",
               (unsigned long long)st->sent, (unsigned long long)st->failures,
               (unsigned long long)st->given_up);
    if (!st->backlog_known)
        return;
    buf_printf(b,
               "# HELP snpd_messages_pending Messages waiting to be sent (whole database).\n"
               "# TYPE snpd_messages_pending gauge\nsnpd_messages_pending %lld\n"
               "# HELP snpd_messages_oldest_pending_seconds Age of the oldest waiting message.\n"
               "# TYPE snpd_messages_oldest_pending_seconds gauge\n"
               "snpd_messages_oldest_pending_seconds %.3f\n"
               "# HELP snpd_messages_dead Messages given up (whole database).\n"
               "# TYPE snpd_messages_dead gauge\nsnpd_messages_dead %lld\n",
               st->pending, st->oldest_pending_s, st->dead);
}
