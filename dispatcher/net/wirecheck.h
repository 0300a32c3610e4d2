/* Checks of the client's bytes that libwebsockets 4.1.6 does not make, done
 * below it, on what its own recv() calls return.
 *
 * lws 4.1.6 serves WebSocket frames that the client did not mask (RFC 6455
 * §5.1 requires the server to close such a connection with 1002; lws only
 * does so from upstream commit cae06c63a, "Audit fixes", after 4.1.x), and
 * it drops a connection without any answer when the request target holds
 * %00 (lws_parse_urldecode returns -1 on a decoded NUL), where HTTP asks for
 * 400.  Neither case reaches a protocol callback, so snpd defines recv():
 * lws calls it for every plain-socket read, and the definition in the
 * executable takes precedence over the C library's.  Reads of descriptors
 * that are not watched (libpq's, for one) go straight to recvfrom().
 *
 * A watched HTTP connection is followed from request line to request line:
 * a request target holding %00 is answered 400 at once and the read then
 * ends the connection for lws (it sees the peer close).  A request followed
 * by bytes snpd cannot place (pipelining) ends the following for that
 * connection.  A WebSocket connection is followed frame header by frame
 * header from the upgrade on; an unmasked frame calls the owner's hook,
 * which closes the connection with 1002.
 *
 * TLS connections are read by OpenSSL, not through recv(): these checks do
 * not apply to them.  Everything runs on the loop thread.
 */
#ifndef SNP_WIRECHECK_H
#define SNP_WIRECHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Starts following the accepted socket `fd` as HTTP, from its first byte. */
void wirecheck_watch(int fd);

/* Stops following `fd` (the connection is closing). */
void wirecheck_unwatch(int fd);

/* The request on `fd` is answered and its body, `body_len` bytes, was read
 * whole: the next bytes begin a request line. */
void wirecheck_request_done(int fd, size_t body_len);

/* `fd` became a WebSocket connection: its next bytes begin a frame.
 * `on_unmasked(owner)` is called, once, from inside lws' read of an
 * unmasked frame, before lws parses it. */
void wirecheck_websocket(int fd, void (*on_unmasked)(void *owner), void *owner);

/* Frees the table of watched descriptors (at shutdown). */
void wirecheck_free(void);

#endif
