#include "tests/support/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until EOF or timeout into a growing buffer. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, TIMEOUT_MS) <= 0)
            break;
        if (n + 1024 > cap) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int http_raw(int port, const char *raw, size_t raw_len, char *out, size_t out_size)
{
    int fd = http_connect(port);
    if (fd < 0)
        return -1;
    if (send_all(fd, raw, raw_len) != 0) {
        close(fd);
        return -1;
    }
    size_t n;
    char *got = read_all(fd, &n);
    close(fd);
    if (!got)
        return -1;
    size_t copy = n < out_size - 1 ? n : out_size - 1;
    memcpy(out, got, copy);
    out[copy] = '\0';
    free(got);
    return (int)copy;
}

int http_request(int port, const char *method, const char *path, const char *extra_headers,
                 const char *body, struct http_response *out)
{
    memset(out, 0, sizeof(*out));
    int fd = http_connect(port);
    if (fd < 0)
        return -1;
    size_t blen = body ? strlen(body) : 0;
    char head[4096];
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                      "%sContent-Length: %zu\r\n%s\r\n",
                      method, path, port, body ? "Content-Type: application/json\r\n" : "", blen,
                      extra_headers ? extra_headers : "");
    if (hn < 0 || (size_t)hn >= sizeof(head) || send_all(fd, head, (size_t)hn) != 0 ||
        (blen && send_all(fd, body, blen) != 0)) {
        close(fd);
        return -1;
    }
    size_t n;
    char *resp = read_all(fd, &n);
    close(fd);
    if (!resp)
        return -1;
    char *sep = strstr(resp, "\r\n\r\n");
    if (!sep || sscanf(resp, "HTTP/1.%*d %d", &out->status) != 1) {
        free(resp);
        return -1;
    }
    *sep = '\0';
    out->headers = strdup(resp);
    out->body_len = n - (size_t)(sep + 4 - resp);
    out->body = malloc(out->body_len + 1);
    if (out->body) {
        memcpy(out->body, sep + 4, out->body_len);
        out->body[out->body_len] = '\0';
    }
    free(resp);
    return 0;
}

void http_response_free(struct http_response *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
