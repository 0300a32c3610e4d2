/* A Unix-socket relay in front of the test PostgreSQL, so that a test can
 * make the database disappear for one snpd (every connection cut, new ones
 * refused) without disturbing the other tests that share the cluster. */
#ifndef SNP_TEST_PGPROXY_H
#define SNP_TEST_PGPROXY_H

#include <pthread.h>
#include <stdbool.h>

#define PGPROXY_MAX_PAIRS 64

struct pgproxy {
    char dir[64];         /* the socket directory snpd connects to */
    int port;             /* the port number in the socket's name */
    char upstream[160];   /* the real server's socket path */
    int listen_fd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* signalled when hold or down change */
    bool down;
    bool stop;
    const char *hold;     /* client bytes holding this pattern wait, or NULL */
    bool held;            /* a relay is waiting on `hold` */
    int fds[PGPROXY_MAX_PAIRS * 2];
};

/* Starts the relay towards the cluster of SNP_TEST_PG; writes into
 * `conninfo` a connection string to database `dbname` through it. */
void pgproxy_start(struct pgproxy *p, const char *dbname, char *conninfo, size_t size);

/* Cuts every relayed connection and refuses new ones (down), or accepts
 * them again. */
void pgproxy_set_down(struct pgproxy *p, bool down);

/* From now on, a message from a client that contains `pattern` (a query's
 * text, which libpq sends as it is) is not forwarded until
 * pgproxy_release: the client waits for its answer, the rest goes on. */
void pgproxy_hold(struct pgproxy *p, const char *pattern);

/* Whether a message is being held (the client has sent it). */
bool pgproxy_holding(struct pgproxy *p);

/* Forwards what was held and holds nothing more. */
void pgproxy_release(struct pgproxy *p);

void pgproxy_stop(struct pgproxy *p);

#endif
