#include "tests/support/pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

static PGconn *admin_connect(void)
{
    const char *base = getenv("SNP_TEST_PG");
    cr_assert(base && *base, "SNP_TEST_PG is not set: run the tests through deploy/test.sh");
    PGconn *c = PQconnectdb(base);
    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to the test cluster: %s",
              PQerrorMessage(c));
    return c;
}

void pgtest_create(struct pgtest *t)
{
    pgtest_create_with(t, "");
}

void pgtest_create_with(struct pgtest *t, const char *options)
{
    static int counter;
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "snptest_%ld_%d", (long)getpid(), ++counter);
    PGconn *admin = admin_connect();
    char sql[512];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s %s", t->name, options);
    PGresult *r = PQexec(admin, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "CREATE DATABASE: %s",
              PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(admin);
    snprintf(t->conninfo, sizeof(t->conninfo), "%s dbname=%s", getenv("SNP_TEST_PG"), t->name);
    t->conn = PQconnectdb(t->conninfo);
    cr_assert(PQstatus(t->conn) == CONNECTION_OK, "%s", PQerrorMessage(t->conn));
    PQclear(PQexec(t->conn, "SET client_min_messages = warning"));
}

void pgtest_drop(struct pgtest *t)
{
    if (t->conn)
        PQfinish(t->conn);
    t->conn = NULL;
    if (!t->name[0])
        return;
    PGconn *admin = admin_connect();
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    t->name[0] = '\0';
}

PGresult *pgtest_exec(struct pgtest *t, const char *sql)
{
    PGresult *r = PQexec(t->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s\n-> %s", sql,
              PQresultErrorMessage(r));
    return r;
}

long pgtest_long(struct pgtest *t, const char *sql)
{
    PGresult *r = pgtest_exec(t, sql);
    cr_assert(PQntuples(r) == 1 && PQnfields(r) >= 1, "%s returned %d rows", sql, PQntuples(r));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

void pgtest_load_demo(struct pgtest *t)
{
    const char *src = getenv("SNP_SOURCE_DIR");
    cr_assert(src, "SNP_SOURCE_DIR is not set");
    char path[1024];
    snprintf(path, sizeof(path), "%s/sql/demo/demo_territory.sql", src);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *sql = malloc((size_t)n + 1);
    cr_assert(sql);
    cr_assert(fread(sql, 1, (size_t)n, f) == (size_t)n);
    sql[n] = '\0';
    fclose(f);
    PQclear(pgtest_exec(t, sql));
    free(sql);
}
