#include "dispatcher/net/wirecheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Where a watched connection's next byte falls. */
enum wire_state {
    WIRE_OFF,           /* not followed (lost track, or never watched) */
    WIRE_REQUEST_LINE,  /* in a request line */
    WIRE_HEADERS,       /* in the header lines that follow it */
    WIRE_AFTER_HEADERS, /* after the empty line: a body, or bytes lws keeps */
    WIRE_FRAMES,        /* WebSocket frames, from a frame header on */
    WIRE_ENDED          /* answered 400 here: every read is the end */
};

struct wire {
    enum wire_state state;
    int spaces;      /* spaces seen in the request line */
    int percent;     /* in the request target: 1 after '%', 2 after "%0" */
    size_t line_len; /* bytes of the current header line, CR excluded */
    size_t extra;    /* bytes after the headers */
    uint8_t hdr[14]; /* the frame header being read */
    size_t hdr_have;
    size_t hdr_need;
    uint64_t payload_left; /* bytes of the current frame still to skip */
    void (*on_unmasked)(void *owner);
    void *owner;
};

/* Watched connections by descriptor. */
static struct wire **wires;
static size_t nwires;

static struct wire *wire_of(int fd)
{
    return fd >= 0 && (size_t)fd < nwires ? wires[fd] : NULL;
}

void wirecheck_watch(int fd)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= nwires) {
        size_t n = nwires ? nwires : 256;
        while (n <= (size_t)fd)
            n *= 2;
        struct wire **grown = realloc(wires, n * sizeof(*grown));
        if (!grown)
            return; /* not followed: lws' own behaviour */
        memset(grown + nwires, 0, (n - nwires) * sizeof(*grown));
        wires = grown;
        nwires = n;
    }
    struct wire *w = wires[fd];
    if (!w) {
        w = malloc(sizeof(*w));
        if (!w)
            return;
        wires[fd] = w;
    }
    memset(w, 0, sizeof(*w));
    w->state = WIRE_REQUEST_LINE;
}

void wirecheck_unwatch(int fd)
{
    struct wire *w = wire_of(fd);
    if (!w)
        return;
    free(w);
    wires[fd] = NULL;
}

void wirecheck_free(void)
{
    for (size_t i = 0; i < nwires; i++)
        free(wires[i]);
    free(wires);
    wires = NULL;
    nwires = 0;
}

void wirecheck_request_done(int fd, size_t body_len)
{
    struct wire *w = wire_of(fd);
    if (!w)
        return;
    /* Only when exactly the body came after the headers is the next byte
     * known to begin a request; otherwise the following stops here. */
    bool in_step = w->state == WIRE_AFTER_HEADERS && w->extra == body_len;
    memset(w, 0, sizeof(*w));
    w->state = in_step ? WIRE_REQUEST_LINE : WIRE_OFF;
}

void wirecheck_websocket(int fd, void (*on_unmasked)(void *owner), void *owner)
{
    struct wire *w = wire_of(fd);
    if (!w)
        return;
    /* A client sends no frame before the server's 101 (RFC 6455 §4.1): a
     * byte after the upgrade's headers would put the following out of step. */
    bool in_step = w->state == WIRE_AFTER_HEADERS && w->extra == 0;
    memset(w, 0, sizeof(*w));
    w->state = in_step ? WIRE_FRAMES : WIRE_OFF;
    w->on_unmasked = on_unmasked;
    w->owner = owner;
}

/* Follows `n` bytes of HTTP; returns false when the request target holds
 * %00. */
static bool follow_http(struct wire *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        switch (w->state) {
        case WIRE_REQUEST_LINE:
            if (c == '\n') {
                w->state = WIRE_HEADERS;
                w->line_len = 0;
            } else if (c == ' ') {
                w->spaces++;
                w->percent = 0;
            } else if (w->spaces == 1) {
                if (c == '%')
                    w->percent = 1;
                else if (c == '0' && w->percent == 2)
                    return false;
                else
                    w->percent = c == '0' && w->percent == 1 ? 2 : 0;
            }
            break;
        case WIRE_HEADERS:
            if (c == '\n') {
                if (w->line_len == 0) {
                    w->state = WIRE_AFTER_HEADERS;
                    w->extra = 0;
                }
                w->line_len = 0;
            } else if (c != '\r') {
                w->line_len++;
            }
            break;
        case WIRE_AFTER_HEADERS:
            w->extra += n - i;
            return true;
        default:
            return true;
        }
    }
    return true;
}

/* Follows `n` bytes of WebSocket frames; returns false at a frame header
 * without the mask bit. */
static bool follow_frames(struct wire *w, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (w->payload_left > 0) {
            size_t skip = n - i < w->payload_left ? n - i : (size_t)w->payload_left;
            w->payload_left -= skip;
            i += skip;
            continue;
        }
        w->hdr[w->hdr_have++] = p[i++];
        if (w->hdr_have == 2) {
            if (!(w->hdr[1] & 0x80))
                return false;
            size_t len7 = w->hdr[1] & 0x7f;
            w->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
        }
        if (w->hdr_have >= 2 && w->hdr_have == w->hdr_need) {
            size_t len7 = w->hdr[1] & 0x7f;
            uint64_t len = len7;
            if (len7 == 126)
                len = ((uint64_t)w->hdr[2] << 8) | w->hdr[3];
            else if (len7 == 127)
                for (int k = 0; k < 8; k++)
                    len = (k == 0 ? 0 : len << 8) | w->hdr[2 + k];
            w->payload_left = len;
            w->hdr_have = w->hdr_need = 0;
        }
    }
    return true;
}

/* The answer to a request target holding %00, written here because lws
 * 4.1.6 gives snpd no chance to: the connection then ends. */
static void answer_bad_target(int fd)
{
#define BAD_TARGET_BODY                                                                            \
    "{\"error\":{\"code\":\"bad_json\",\"message\":\"the request target holds %00\"}}\n"
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\n"
                                 "content-type: application/json\r\n"
                                 "content-length: 71\r\n"
                                 "connection: close\r\n"
                                 "x-content-type-options: nosniff\r\n"
                                 "cache-control: no-store\r\n"
                                 "\r\n" BAD_TARGET_BODY;
    _Static_assert(sizeof(BAD_TARGET_BODY) - 1 == 71, "content-length matches the body");
#undef BAD_TARGET_BODY
    /* Best effort: a client that does not read its answer only loses it. */
    ssize_t w = send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
}

/* lws 4.1.6 reads every plain socket with recv(); see wirecheck.h. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    struct wire *w = wire_of(fd);
    if (w && w->state == WIRE_ENDED)
        return 0;
    ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
    if (!w || n <= 0 || (flags & MSG_PEEK) || w->state == WIRE_OFF)
        return n;
    if (w->state == WIRE_FRAMES) {
        if (!follow_frames(w, buf, (size_t)n)) {
            w->state = WIRE_OFF;
            if (w->on_unmasked)
                w->on_unmasked(w->owner);
        }
        return n;
    }
    if (!follow_http(w, buf, (size_t)n)) {
        w->state = WIRE_ENDED;
        answer_bad_target(fd);
        return 0; /* lws sees the peer close and frees the connection */
    }
    return n;
}
