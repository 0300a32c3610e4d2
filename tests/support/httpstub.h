/* A stand-in HTTP service for the tests of what snpd sends out (the message
 * gateway; any service that is POSTed JSON): a thread that accepts one
 * connection at a time on a loopback port, reads one request, answers the
 * status it is told to, and keeps every request it received.
 */
#ifndef SNP_TEST_HTTPSTUB_H
#define SNP_TEST_HTTPSTUB_H

#include <pthread.h>

#define HTTPSTUB_MAX 256

struct httpstub_request {
    char *head; /* request line and headers */
    char *body;
    int answer; /* the status answered */
};

struct httpstub {
    pthread_t thread;
    pthread_mutex_t lock;
    int listen_fd;
    int port;
    volatile int stop;
    int status; /* what the next requests are answered */
    struct httpstub_request got[HTTPSTUB_MAX];
    int ngot;
};

/* Reads one request from `fd` (headers, then Content-Length bytes of body)
 * into a malloc'ed string and points *body at its body; NULL when the peer
 * went away or *stop was set.  For stand-ins that answer in their own way. */
char *httpstub_read_request(int fd, const volatile int *stop, char **body);

/* Starts `s` answering `status`; fails the test when it cannot listen. */
void httpstub_start(struct httpstub *s, int status);

/* Changes what the next requests are answered. */
void httpstub_answer(struct httpstub *s, int status);

/* How many requests were answered `status` (0: any). */
int httpstub_count(struct httpstub *s, int status);

/* Stops the thread and frees what it kept. */
void httpstub_stop(struct httpstub *s);

#endif
