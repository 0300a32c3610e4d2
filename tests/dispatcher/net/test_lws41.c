/* dispatcher/net/lws41.c: the workarounds for libwebsockets 4.1.  What they
 * change in snpd's behaviour is shown end to end by the suites each entry
 * of lws41.h names; here, that the library snpd runs with is the one they
 * were written for, and the parts that need no connection. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>

#include "dispatcher/net/lws41.h"

Test(lws41, the_library_is_the_version_the_workarounds_are_for)
{
    /* A Debian upgrade to another lws stops here: review lws41.h. */
    const char *v = lws_get_library_version();
    cr_assert(strncmp(v, "4.1.", 4) == 0, "libwebsockets %s: review dispatcher/net/lws41.h", v);
}

Test(lws41, a_bound_port_is_reported_before_lws_is_started)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port);
    cr_assert_eq(lws41_port_available("127.0.0.1", port), -EADDRINUSE);
    close(fd);
    cr_assert_eq(lws41_port_available("127.0.0.1", port), 0);
    /* Names are left to lws, which resolves and reports them. */
    cr_assert_eq(lws41_port_available("localhost", port), 0);
}

Test(lws41, a_certificate_openssl_refused_is_refused)
{
    cr_assert_eq(lws41_client_cert_verdict(0), 1);
    cr_assert_eq(lws41_client_cert_verdict(1), 0);
    cr_assert_eq(lws41_confirm_upgrade(), 0);
}
