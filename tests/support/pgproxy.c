#include "tests/support/pgproxy.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

struct pair {
    struct pgproxy *p;
    int a;
    int b;
};

static void track(struct pgproxy *p, int fd, bool add)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < PGPROXY_MAX_PAIRS * 2; i++) {
        if (add && p->fds[i] < 0) {
            p->fds[i] = fd;
            break;
        }
        if (!add && p->fds[i] == fd) {
            p->fds[i] = -1;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

/* Waits while `buf`, from the client, holds the pattern of pgproxy_hold. */
static void wait_while_held(struct pgproxy *p, const char *buf, size_t n)
{
    pthread_mutex_lock(&p->lock);
    bool match = p->hold && memmem(buf, n, p->hold, strlen(p->hold)) != NULL;
    if (match)
        p->held = true;
    while (match && p->hold && !p->down && !p->stop)
        pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void *relay(void *arg)
{
    struct pair *pr = arg;
    char buf[16384];
    for (;;) {
        struct pollfd fds[2] = {{.fd = pr->a, .events = POLLIN}, {.fd = pr->b, .events = POLLIN}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR)
            break;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n > 0 && i == 0)
                wait_while_held(pr->p, buf, (size_t)n);
            /* MSG_NOSIGNAL: a peer that went away must not raise SIGPIPE,
             * which would kill the whole test process. */
            if (n <= 0 || send(fds[1 - i].fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
                done = true;
        }
        if (done || pr->p->stop)
            break;
    }
    track(pr->p, pr->a, false);
    track(pr->p, pr->b, false);
    close(pr->a);
    close(pr->b);
    free(pr);
    return NULL;
}

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        close(fd);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void *acceptor(void *arg)
{
    struct pgproxy *p = arg;
    while (!p->stop) {
        struct pollfd pfd = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int c = accept(p->listen_fd, NULL, NULL);
        if (c < 0)
            continue;
        pthread_mutex_lock(&p->lock);
        bool down = p->down;
        pthread_mutex_unlock(&p->lock);
        int u = down ? -1 : connect_unix(p->upstream);
        if (u < 0) {
            close(c);
            continue;
        }
        struct pair *pr = malloc(sizeof(*pr));
        pr->p = p;
        pr->a = c;
        pr->b = u;
        track(p, c, true);
        track(p, u, true);
        pthread_t t;
        pthread_create(&t, NULL, relay, pr);
        pthread_detach(t);
    }
    return NULL;
}

void pgproxy_start(struct pgproxy *p, const char *dbname, char *conninfo, size_t size)
{
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < PGPROXY_MAX_PAIRS * 2; i++)
        p->fds[i] = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    const char *base = getenv("SNP_TEST_PG");
    cr_assert(base);
    char host[128] = "", port[16] = "";
    const char *h = strstr(base, "host=");
    const char *po = strstr(base, "port=");
    cr_assert(h && po, "SNP_TEST_PG needs host= and port=");
    sscanf(h + 5, "%127s", host);
    sscanf(po + 5, "%15s", port);
    snprintf(p->upstream, sizeof(p->upstream), "%s/.s.PGSQL.%s", host, port);
    snprintf(p->dir, sizeof(p->dir), "/tmp/snp-pgproxy-XXXXXX");
    cr_assert(mkdtemp(p->dir));
    chmod(p->dir, 0755);
    p->port = 6543;
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/.s.PGSQL.%d", p->dir, p->port);
    cr_assert(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(p->listen_fd, 64) == 0);
    pthread_create(&p->thread, NULL, acceptor, p);
    const char *user = strstr(base, "user=");
    char u[64] = "snpd";
    if (user)
        sscanf(user + 5, "%63s", u);
    snprintf(conninfo, size, "host=%s port=%d user=%s dbname=%s", p->dir, p->port, u, dbname);
}

void pgproxy_set_down(struct pgproxy *p, bool down)
{
    pthread_mutex_lock(&p->lock);
    p->down = down;
    pthread_cond_broadcast(&p->changed);
    if (down)
        for (int i = 0; i < PGPROXY_MAX_PAIRS * 2; i++)
            if (p->fds[i] >= 0)
                shutdown(p->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&p->lock);
}

void pgproxy_hold(struct pgproxy *p, const char *pattern)
{
    pthread_mutex_lock(&p->lock);
    p->hold = pattern;
    p->held = false;
    pthread_mutex_unlock(&p->lock);
}

bool pgproxy_holding(struct pgproxy *p)
{
    pthread_mutex_lock(&p->lock);
    bool held = p->held;
    pthread_mutex_unlock(&p->lock);
    return held;
}

void pgproxy_release(struct pgproxy *p)
{
    pthread_mutex_lock(&p->lock);
    p->hold = NULL;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

void pgproxy_stop(struct pgproxy *p)
{
    pgproxy_set_down(p, true);
    p->stop = true;
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    char path[160];
    snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", p->dir, p->port);
    unlink(path);
    rmdir(p->dir);
}
