#include "dispatcher/net/lws41.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

/* Every function here is written for lws 4.1's behaviour (lws41.h).
 * Another version may have fixed some and changed others: review them
 * before moving this check. */
#if LWS_LIBRARY_VERSION_MAJOR != 4 || LWS_LIBRARY_VERSION_MINOR != 1
#error "dispatcher/net/lws41.c works around libwebsockets 4.1: review each entry of lws41.h"
#endif

int lws41_confirm_upgrade(void)
{
    return 0;
}

int lws41_client_cert_verdict(size_t preverify_ok)
{
    return preverify_ok ? 0 : 1;
}

void lws41_close_politely(struct lws *wsi, int status, const char *reason)
{
    lws_close_reason(wsi, (enum lws_close_status)status, (unsigned char *)reason, strlen(reason));
    /* A zero-length timeout closes the connection, politely for this one
     * reason only: the peer receives the status and reason given above. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
}

int lws41_ping(struct lws *wsi)
{
    unsigned char ping[LWS_PRE + 4];
    memcpy(ping + LWS_PRE, "snpd", 4);
    return lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING);
}

enum lws41_write lws41_write_text_now(struct lws *wsi, unsigned char *payload, size_t len)
{
    if (lws_partial_buffered(wsi))
        return LWS41_LATER;
    /* A short count means an error: a partial write is kept by lws and
     * reported whole. */
    return lws_write(wsi, payload, len, LWS_WRITE_TEXT) < (int)len ? LWS41_FAILED : LWS41_WRITTEN;
}

int lws41_port_available(const char *address, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, address, &a.sin_addr) != 1)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

bool lws41_body_expected(struct lws *wsi, bool post, bool put_or_patch, bool chunked,
                         long announced)
{
    if (chunked)
        return false; /* not readable: answered 411 */
    if (post)
        return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    return put_or_patch && announced > 0;
}
