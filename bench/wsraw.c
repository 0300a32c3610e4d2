#include "bench/wsraw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OP_CONT  0x0
#define OP_TEXT  0x1
#define OP_CLOSE 0x8
#define OP_PING  0x9

/* The largest message kept; a capacity.changed push of 1,000 changes is
 * about 250 kB. */
#define MAX_MESSAGE (1u << 20)

static void fail(struct wsraw *w, char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", what, errno ? ": " : "", errno ? strerror(errno) : "");
    wsraw_close(w);
}

/* Makes room for `more` bytes after the unread ones. */
static bool reserve(struct wsraw *w, size_t more)
{
    if (w->taken) {
        memmove(w->in, w->in + w->taken, w->len - w->taken);
        w->len -= w->taken;
        w->taken = 0;
    }
    if (w->len + more <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 16384;
    while (cap < w->len + more)
        cap *= 2;
    char *in = realloc(w->in, cap);
    if (!in)
        return false;
    w->in = in;
    w->cap = cap;
    return true;
}

int wsraw_open(struct wsraw *w, const char *local_address, int port, const char *bearer,
               int timeout_ms, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    errno = 0;
    w->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (w->fd < 0) {
        fail(w, err, errlen, "socket");
        return -1;
    }
    int one = 1;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (local_address) {
        struct sockaddr_in from = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, local_address, &from.sin_addr) != 1 ||
            bind(w->fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
            fail(w, err, errlen, "bind");
            return -1;
        }
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(w->fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        fail(w, err, errlen, "connect");
        return -1;
    }
    /* The key is any 16 bytes in base64; the server's accept value is not
     * checked here (the 101 and a working connection are what count). */
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: c25wYmVuY2gtd3NyYXcxMg==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: snp.v1\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     port, bearer);
    if (n < 0 || (size_t)n >= sizeof(req) || !bench_write_all(w->fd, req, (size_t)n)) {
        fail(w, err, errlen, "sending the upgrade");
        return -1;
    }
    char *eoh = NULL;
    while (!eoh) {
        if (wsraw_fill(w) <= 0) {
            fail(w, err, errlen, "no answer to the upgrade");
            return -1;
        }
        eoh = memmem(w->in, w->len, "\r\n\r\n", 4);
        if (!eoh && w->len > 8192) {
            errno = 0;
            fail(w, err, errlen, "an upgrade answer without an end");
            return -1;
        }
    }
    if (w->len < 12 || memcmp(w->in, "HTTP/1.1 101", 12) != 0) {
        char line[120];
        size_t l = strcspn(w->in, "\r\n");
        snprintf(line, sizeof(line), "upgrade refused: %.*s", (int)(l < 80 ? l : 80), w->in);
        errno = 0;
        fail(w, err, errlen, line);
        return -1;
    }
    /* What follows the headers is already frames. */
    w->taken = (size_t)(eoh - w->in) + 4;
    return 0;
}

/* Writes one masked frame of opcode `op`. */
static bool send_frame(struct wsraw *w, int op, const char *payload, size_t len)
{
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | op);
    if (len < 126) {
        head[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8);
        head[h++] = (unsigned char)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    /* Masking is required of clients (RFC 6455 §5.3); its key only guards
     * against proxies, so a fixed one does here. */
    static const unsigned char key[4] = {0x5a, 0x13, 0xc7, 0x2e};
    memcpy(head + h, key, 4);
    h += 4;
    char *frame = malloc(h + len);
    if (!frame)
        return false;
    memcpy(frame, head, h);
    for (size_t i = 0; i < len; i++)
        frame[h + i] = (char)(payload[i] ^ key[i % 4]);
    /* A non-blocking socket may refuse part of it: wait until it is taken. */
    size_t off = 0;
    bool ok = true;
    while (ok && off < h + len) {
        ssize_t n = write(w->fd, frame + off, h + len - off);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && (errno == EINTR || errno == EAGAIN))
            bench_sleep_us(100);
        else
            ok = false;
    }
    free(frame);
    return ok;
}

bool wsraw_send(struct wsraw *w, const char *text, size_t len)
{
    return w->fd >= 0 && send_frame(w, OP_TEXT, text, len);
}

int wsraw_request(struct wsraw *w, const char *id, const char *type, const char *data_json,
                  const char **answer, size_t *answer_len, char *err, size_t errlen)
{
    *answer = NULL;
    *answer_len = 0;
    char req[4096];
    int n = snprintf(req, sizeof(req), "{\"id\":\"%s\",\"type\":\"%s\",\"data\":%s}", id, type,
                     data_json ? data_json : "{}");
    if (n < 0 || (size_t)n >= sizeof(req) || !wsraw_send(w, req, (size_t)n)) {
        snprintf(err, errlen, "%s: cannot send", type);
        return -1;
    }
    char want[96];
    int wl = snprintf(want, sizeof(want), "\"id\":\"%s\"", id);
    for (;;) {
        const char *msg;
        size_t len;
        while (wsraw_next(w, &msg, &len)) {
            if (!memmem(msg, len, want, (size_t)wl))
                continue;
            *answer = msg;
            *answer_len = len;
            bool ok = memmem(msg, len, "\"ok\":true", 9) != NULL;
            if (!ok)
                snprintf(err, errlen, "%s: %.*s", type, (int)(len < 300 ? len : 300), msg);
            return ok ? 0 : -1;
        }
        if (w->closed || wsraw_fill(w) <= 0) {
            snprintf(err, errlen, "%s: no answer (connection %s)", type,
                     w->closed ? "closed" : "timed out");
            return -1;
        }
    }
}

int wsraw_call(struct wsraw *w, const char *id, const char *type, const char *data_json, char *err,
               size_t errlen)
{
    const char *answer;
    size_t len;
    return wsraw_request(w, id, type, data_json, &answer, &len, err, errlen);
}

bool wsraw_set_nonblocking(struct wsraw *w)
{
    int flags = fcntl(w->fd, F_GETFL);
    return flags >= 0 && fcntl(w->fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

ssize_t wsraw_fill(struct wsraw *w)
{
    if (w->fd < 0 || w->closed)
        return -1;
    if (!reserve(w, 65536))
        return -1;
    for (;;) {
        ssize_t n = read(w->fd, w->in + w->len, w->cap - w->len);
        if (n > 0) {
            w->len += (size_t)n;
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        w->closed = true;
        return -1;
    }
}

bool wsraw_next(struct wsraw *w, const char **msg, size_t *len)
{
    for (;;) {
        const unsigned char *p = (const unsigned char *)w->in + w->taken;
        size_t avail = w->len - w->taken;
        if (w->closed && w->fd < 0)
            return false;
        if (avail < 2)
            return false;
        bool fin = p[0] & 0x80, masked = p[1] & 0x80;
        int op = p[0] & 0x0f;
        uint64_t plen = p[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (avail < 4)
                return false;
            plen = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (plen == 127) {
            if (avail < 10)
                return false;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | p[2 + i];
            h = 10;
        }
        if (masked || plen > MAX_MESSAGE || !fin || op == OP_CONT) {
            /* Servers never mask; snpd never fragments: give up on it. */
            w->closed = true;
            return false;
        }
        if (avail < h + plen)
            return false;
        const char *payload = (const char *)p + h;
        w->taken += h + (size_t)plen;
        if (op == OP_TEXT) {
            *msg = payload;
            *len = (size_t)plen;
            return true;
        }
        if (op == OP_PING && !send_frame(w, 0xA, payload, (size_t)plen))
            w->closed = true;
        if (op == OP_CLOSE)
            w->closed = true;
    }
}

void wsraw_close(struct wsraw *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    free(w->in);
    w->in = NULL;
    w->len = w->cap = w->taken = 0;
    w->closed = true;
}
