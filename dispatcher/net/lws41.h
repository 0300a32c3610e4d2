/* What libwebsockets 4.1 (Debian 12 ships 4.1.6) needs worked around, in one
 * place.  server.c goes through these functions at each of those points
 * rather than calling lws directly; each entry says what lws 4.1 does, what
 * snpd does instead, and which test shows it.  lws41.c refuses to build
 * against another major.minor version, and test_lws41 refuses another
 * library at run time: with a new lws, review each entry (some may go), then
 * move the check.
 *
 * Also for lws 4.1, kept in their own module because they are a whole
 * mechanism: wirecheck.c (lws accepts unmasked client frames and reads every
 * plain socket with recv(); snpd watches the bytes itself). */
#ifndef SNP_DISPATCHER_LWS41_H
#define SNP_DISPATCHER_LWS41_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

/* RFC 6455 §7.4.1's "try again later", which lws 4.1 has no name for.
 * (test_limits unfinished_fragments_are_bounded_and_timed_out) */
#define LWS41_CLOSE_TRY_AGAIN_LATER 1013

/* CVE-2025-11677: lws 4.1.6 hands LWS_CALLBACK_HTTP_CONFIRM_UPGRADE an `in`
 * that is already freed when the Upgrade header is invalid.  The callback
 * must never read it; it returns this.  (test_health, under ASan:
 * bad_upgrade_header_does_not_crash) */
int lws41_confirm_upgrade(void);

/* LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION: lws 4.1 accepts any
 * certificate the callback returns 0 for, whatever OpenSSL's own verdict
 * against the CA (`preverify_ok`, the callback's `len`).  Returns what the
 * callback must return: 0 to accept, 1 to refuse in the handshake.
 * (test_fhir_mtls) */
int lws41_client_cert_verdict(size_t preverify_ok);

/* Starts the polite close of a WebSocket connection: the close frame with
 * `status` and `reason`, then the peer's.  lws 4.1 closes a connection whose
 * timeout expires without a close frame, except for the timeout reason
 * PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, and on a foreign libuv loop it only
 * schedules the timer from inside its own callbacks: call this from the
 * writeable callback.  (test_limits unmasked_client_frames_close_the_connection_1002
 * and a_quiet_connection_is_kept_by_its_pongs_then_closed_when_they_stop,
 * test_manage a_session_ends_when_its_token_expires) */
void lws41_close_politely(struct lws *wsi, int status, const char *reason);

/* Writes a ping from the writeable callback.  lws 4.1 does not report an
 * empty pong (LWS_CALLBACK_RECEIVE_PONG), so the ping carries a payload.
 * Returns lws_write's result (negative: close the connection).
 * (test_limits
 * a_quiet_connection_is_kept_by_its_pongs_then_closed_when_they_stop) */
int lws41_ping(struct lws *wsi);

/* What lws41_write_text_now did. */
enum lws41_write {
    LWS41_WRITTEN, /* lws has the frame (the socket, or lws' buffer for its rest) */
    LWS41_LATER,   /* lws still holds the rest of an earlier frame: nothing was
                    * written; queue the frame for the writeable callback */
    LWS41_FAILED,  /* the socket cannot be written to: close the connection
                    * (return -1 from the next writeable callback) */
};

/* Writes one text frame of `len` bytes at `payload`, which has LWS_PRE
 * bytes of room before it, outside the writeable callback.  lws 4.1.6 allows
 * it: lws_write() keeps what the socket did not take and sends it before the
 * next writeable callback (lib/core-net/output.c, lws_issue_raw).  It must
 * not be done while lws still holds such a rest: the new frame would be
 * appended without its header (lib/roles/ws/ops-ws.c, inside_frame), so this
 * answers LWS41_LATER then.  The caller must not call it while frames of
 * its own wait to be written before this one.  (test_limits
 * a_reader_that_pauses_gets_every_answer_whole_and_in_order) */
enum lws41_write lws41_write_text_now(struct lws *wsi, unsigned char *payload, size_t len);

/* Whether `port` can be bound on `address` now (the socket is closed again
 * at once); returns 0 or a negative errno.  lws 4.1 makes a context even
 * when it cannot bind its port, and tearing that half-made context down on
 * a foreign loop crashes, so the port is tried before the context is made.
 * A name or an IPv6 address is not tried (0): lws resolves and reports it.
 * (test_health port_in_use_stops_start_up, test_lws41) */
int lws41_port_available(const char *address, int port);

/* Whether the request being read has a body to wait for, given its method
 * (an enum http_method, server.h), whether it is chunked, and the length its
 * Content-Length announces (0 when there is none).  lws 4.1
 * signals the end of a POST body even when it is empty (Content-Length:
 * 0), but not of an empty PUT or PATCH, nor of a POST with neither
 * Content-Length nor chunks (curl -X POST sends those); and it cannot read
 * a chunked body at all, which snpd answers 411.  (test_manage
 * a_post_without_a_body_is_served_and_a_chunked_one_refused) */
bool lws41_body_expected(struct lws *wsi, bool post, bool put_or_patch, bool chunked,
                         long announced);

#endif
