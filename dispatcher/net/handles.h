/* Telling snpd's libuv handles from libwebsockets' on the shared loop.
 *
 * With a foreign loop, lws 4.1 does not finish its own teardown: after
 * lws_context_destroy() has closed its handles, the application must call it
 * once more, and only then does the context pointer become NULL.  Calling it
 * again too early frees the context under lws' pending close callbacks, so
 * snpd marks every handle of its own and waits until no other handle is
 * left on the loop.
 */
#ifndef SNP_HANDLES_H
#define SNP_HANDLES_H

#include <uv.h>

/* Marks `h` as snpd's own (sets its data field; use container_of to get back
 * to the owner). */
void handle_mark_own(uv_handle_t *h);

/* Counts the handles on `loop` that are not snpd's own, closing or not. */
int handle_count_foreign(uv_loop_t *loop);

#endif
