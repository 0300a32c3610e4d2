/* wsraw: a bare WebSocket client connection for the benchmarks that must
 * timestamp what arrives on many connections at once.
 *
 * snpclient services its connections from lws' poll() loop and hands
 * messages over one connection at a time, so the moment a message is taken
 * from it is not the moment it arrived, and its cost grows with the number
 * of connections it holds.  A subscriber that only receives needs none of
 * lws: this is a plain TCP socket, the upgrade written by hand (RFC 6455
 * §4.1, with the snp.v1 subprotocol and the token in an Authorization
 * header), masked text frames out, unmasked frames in.  The caller owns the
 * socket: it puts it in its own epoll set and reads when it is readable, so
 * a receipt is timestamped when read() returned it.
 *
 * One `struct wsraw` is one connection; nothing here is thread-safe.
 */
#ifndef SNP_BENCH_WSRAW_H
#define SNP_BENCH_WSRAW_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "bench/util.h"

struct wsraw {
    int fd;       /* -1 once closed */
    char *in;     /* bytes read and not yet taken as whole messages */
    size_t len;   /* bytes in `in` */
    size_t cap;   /* size of `in` */
    size_t taken; /* bytes at the start of `in` already handed out */
    bool closed;  /* a close frame arrived, or the peer closed the socket */
};

/* Connects from `local_address` (NULL: the system's choice) to
 * 127.0.0.1:`port`, sends the upgrade with `bearer`, and waits up to
 * `timeout_ms` for the 101 answer.  The socket stays blocking, with
 * `timeout_ms` as its receive time-out, until wsraw_set_nonblocking().
 * Returns 0, or -1 with a one-line reason in `err`, `w` then closed. */
int wsraw_open(struct wsraw *w, const char *local_address, int port, const char *bearer,
               int timeout_ms, char *err, size_t errlen) BENCH_MUST_CHECK;

/* Sends `text` as one masked text frame (blocking); false when the
 * connection failed. */
bool wsraw_send(struct wsraw *w, const char *text, size_t len) BENCH_MUST_CHECK;

/* Sends {"id": `id`, "type": `type`, "data": `data_json`} and waits, blocking
 * (the socket must still be blocking), for the response with that id; other
 * messages that come first are dropped.  Returns 0 when the response has
 * "ok": true, -1 otherwise, with the response (or the reason) in `err`. */
int wsraw_call(struct wsraw *w, const char *id, const char *type, const char *data_json, char *err,
               size_t errlen) BENCH_MUST_CHECK;

/* As wsraw_call(), and also hands back the response itself in `*answer`
 * (not NUL-terminated; valid until the next read on `w`) and `*answer_len`
 * whenever one came, "ok" or not; NULL and 0 when none did. */
int wsraw_request(struct wsraw *w, const char *id, const char *type, const char *data_json,
                  const char **answer, size_t *answer_len, char *err,
                  size_t errlen) BENCH_MUST_CHECK;

/* Makes the socket non-blocking, for the caller's event loop. */
bool wsraw_set_nonblocking(struct wsraw *w) BENCH_MUST_CHECK;

/* Reads what the socket holds now (once; on a blocking socket it waits for
 * something).  Returns the bytes read, 0 when nothing was there (EAGAIN),
 * -1 when the connection ended (then `closed` is set). */
ssize_t wsraw_fill(struct wsraw *w);

/* Takes the next whole text message out of what was read: returns true
 * with `*msg` (not NUL-terminated; valid until the next wsraw_fill()) and
 * `*len`, false when no whole message is left.  Pings are answered with a
 * pong, other control frames and binary messages are skipped; a close frame
 * sets `closed`.  Fragmented messages are not assembled (snpd sends each
 * message in one frame): one sets `closed`. */
bool wsraw_next(struct wsraw *w, const char **msg, size_t *len);

/* Closes the socket (no close handshake) and frees the buffer. */
void wsraw_close(struct wsraw *w);

#endif
