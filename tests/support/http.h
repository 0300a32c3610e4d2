/* A small blocking HTTP/1.1 client for tests, on plain sockets, so that
 * tests can also send what a well-behaved client library never would
 * (malformed headers, oversized bodies, half-open connections). */
#ifndef SNP_TEST_HTTP_H
#define SNP_TEST_HTTP_H

#include <stddef.h>

struct http_response {
    int status;
    char *headers; /* raw header block */
    char *body;    /* NUL-terminated */
    size_t body_len;
};

/* Sends one request with "Connection: close" to 127.0.0.1:`port` and reads
 * the whole answer.  `extra_headers` is a block of "Name: value\r\n" lines
 * or NULL; `body` may be NULL.  Returns 0, or -1 when the connection failed
 * or timed out (5 s). */
int http_request(int port, const char *method, const char *path, const char *extra_headers,
                 const char *body, struct http_response *out);

/* Sends `raw` bytes as they are and reads until the server closes or 5 s
 * pass; returns the number of bytes read into `out` (NUL-terminated), or -1. */
int http_raw(int port, const char *raw, size_t raw_len, char *out, size_t out_size);

/* Opens a TCP connection to 127.0.0.1:`port`; returns the descriptor or -1. */
int http_connect(int port);

void http_response_free(struct http_response *r);

#endif
