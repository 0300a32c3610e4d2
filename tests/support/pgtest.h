/* Throwaway databases for integration tests.
 *
 * deploy/test.sh starts a private PostgreSQL cluster and exports its admin
 * connection string in SNP_TEST_PG.  Each test (or suite) creates a database
 * of its own there with pgtest_create() and drops it with pgtest_drop(), so
 * tests never see each other's rows.  Tests may use blocking libpq: they are
 * clients, not the server.
 */
#ifndef SNP_TEST_PGTEST_H
#define SNP_TEST_PGTEST_H

#include <stdbool.h>

#include <libpq-fe.h>

struct pgtest {
    char name[64];
    char conninfo[512];
    PGconn *conn; /* an open connection to the new database */
};

/* Creates an empty database with a unique name.  Fails the current
 * Criterion test when SNP_TEST_PG is unset or the server refuses. */
void pgtest_create(struct pgtest *t);

/* The same, with `options` after CREATE DATABASE's name (an encoding, say). */
void pgtest_create_with(struct pgtest *t, const char *options);

/* Closes the connection and drops the database. */
void pgtest_drop(struct pgtest *t);

/* Runs `sql` (parameterless) and fails the test unless it succeeds; returns
 * the result, to PQclear. */
PGresult *pgtest_exec(struct pgtest *t, const char *sql);

/* Runs a query returning one value and returns it as a long. */
long pgtest_long(struct pgtest *t, const char *sql);

/* Applies sql/demo/demo_territory.sql from the source tree (after snpd
 * migrate has run). */
void pgtest_load_demo(struct pgtest *t);

#endif
