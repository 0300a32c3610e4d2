#include "tests/support/httpstub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

char *httpstub_read_request(int fd, const volatile int *stop, char **body)
{
    size_t cap = 65536, len = 0, want = 0;
    char *buf = malloc(cap + 1);
    char *end = NULL;
    while (buf && !*stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");
            want = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (end && len >= want) {
            *body = end + 4;
            return buf;
        }
        if (len == cap)
            break;
    }
    free(buf);
    return NULL;
}

static void serve(struct httpstub *s, int fd)
{
    char *body = NULL;
    char *req = httpstub_read_request(fd, &s->stop, &body);
    if (!req)
        return;
    pthread_mutex_lock(&s->lock);
    int status = s->status;
    pthread_mutex_unlock(&s->lock);
    char text[160];
    int n = snprintf(text, sizeof(text),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
                     status);
    ssize_t w = write(fd, text, (size_t)n);
    (void)w;
    struct httpstub_request r = {
        .head = strndup(req, (size_t)(body - 4 - req)), .body = strdup(body), .answer = status};
    free(req);
    pthread_mutex_lock(&s->lock);
    if (s->ngot < HTTPSTUB_MAX) {
        s->got[s->ngot++] = r;
    } else {
        free(r.head);
        free(r.body);
    }
    pthread_mutex_unlock(&s->lock);
}

static void *stub_main(void *arg)
{
    struct httpstub *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

void httpstub_start(struct httpstub *s, int status)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->status = status;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(s->listen_fd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    cr_assert_eq(listen(s->listen_fd, 64), 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, stub_main, s), 0);
}

void httpstub_answer(struct httpstub *s, int status)
{
    pthread_mutex_lock(&s->lock);
    s->status = status;
    pthread_mutex_unlock(&s->lock);
}

int httpstub_count(struct httpstub *s, int status)
{
    pthread_mutex_lock(&s->lock);
    int n = 0;
    for (int i = 0; i < s->ngot; i++)
        n += status == 0 || s->got[i].answer == status;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void httpstub_stop(struct httpstub *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    for (int i = 0; i < s->ngot; i++) {
        free(s->got[i].head);
        free(s->got[i].body);
    }
    pthread_mutex_destroy(&s->lock);
}
