#include "dispatcher/db/db_cols.h"

#include <string.h>

#include "base/log.h"

/* Whether a column after `col` has the same name as `col` (PQfnumber
 * answers the first of them). */
static bool name_repeated(const PGresult *res, int col)
{
    const char *name = PQfname(res, col);
    for (int j = col + 1; j < PQnfields(res); j++)
        if (strcmp(PQfname(res, j), name) == 0)
            return true;
    return false;
}

static bool refuse(int *cols, size_t n)
{
    for (size_t k = 0; k < n; k++)
        cols[k] = -1;
    return false;
}

bool db_cols_resolve(const PGresult *res, const char *const *names, size_t n, int *cols,
                     const char *query)
{
    if (!res) {
        log_error("db", "query %s: no result to read", query);
        return refuse(cols, n);
    }
    for (size_t k = 0; k < n; k++) {
        int col = PQfnumber(res, names[k]);
        if (col < 0 || name_repeated(res, col)) {
            log_error("db", "query %s: %s column named %s in its result", query,
                      col < 0 ? "no" : "more than one", names[k]);
            return refuse(cols, n);
        }
        cols[k] = col;
    }
    return true;
}

/* --- typed readers ---------------------------------------------------------------- */

/* The type OIDs the readers take (PostgreSQL's catalog, pg_type.dat). */
enum {
    OID_TEXT = 25,
    OID_TEXT_ARRAY = 1009,
    OID_TIMESTAMPTZ = 1184,
};

/* The Unix time of PostgreSQL's epoch, 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_UNIX 946684800

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int64_t text_int(const char *p)
{
    bool negative = *p == '-';
    p += negative;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return negative ? -v : v;
}

/* A binary integer of `len` bytes (2, 4 or 8), or `if_null`. */
static int64_t binary_int(const unsigned char *p, int len, int64_t if_null)
{
    switch (len) {
    case 2:
        return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
    case 4:
        return (int32_t)be32(p);
    case 8:
        return (int64_t)be64(p);
    default:
        return if_null;
    }
}

/* In binary, a NULL has no bytes, and an integer or an instant has 2, 4
 * or 8: the length tells both (one call fewer per value, for a million
 * rows at start-up). */
int64_t db_col_int(const PGresult *res, int row, int col, int64_t if_null)
{
    if (PQfformat(res, col) != 0)
        return binary_int((const unsigned char *)PQgetvalue(res, row, col),
                          PQgetlength(res, row, col), if_null);
    if (PQgetisnull(res, row, col))
        return if_null;
    return text_int(PQgetvalue(res, row, col));
}

int64_t db_col_epoch(const PGresult *res, int row, int col, int64_t if_null)
{
    if (PQfformat(res, col) == 0 || PQftype(res, col) != OID_TIMESTAMPTZ)
        return db_col_int(res, row, col, if_null);
    const char *v = PQgetvalue(res, row, col);
    if (PQgetlength(res, row, col) != 8)
        return if_null;
    /* Microseconds since 2000, floored (not truncated) to the second. */
    int64_t us = (int64_t)be64((const unsigned char *)v);
    int64_t s = us / 1000000;
    if (us % 1000000 < 0)
        s--;
    return s + PG_EPOCH_UNIX;
}

/* Calls `fn` with a copy of the `n` bytes at `p`, NUL-terminated. */
static bool each_item(const char *p, size_t n, bool (*fn)(const char *, void *), void *arg)
{
    char item[64];
    if (n >= sizeof(item))
        return false;
    memcpy(item, p, n);
    item[n] = '\0';
    return fn(item, arg);
}

bool db_col_each_text(const PGresult *res, int row, int col,
                      bool (*fn)(const char *item, void *arg), void *arg)
{
    if (PQgetisnull(res, row, col))
        return true;
    const char *v = PQgetvalue(res, row, col);
    if (PQfformat(res, col) == 0) {
        if (v[0] != '{')
            return v[0] == '\0';
        const char *p = v + 1;
        while (*p && *p != '}') {
            size_t n = strcspn(p, ",}");
            if (!each_item(p, n, fn, arg))
                return false;
            p += n;
            if (*p == ',')
                p++;
        }
        return true;
    }
    /* array_send: dimensions, a has-nulls flag, the element type, then
     * (size, lower bound) per dimension, then (length, bytes) per item. */
    const unsigned char *p = (const unsigned char *)v;
    size_t len = (size_t)PQgetlength(res, row, col);
    if (PQftype(res, col) != OID_TEXT_ARRAY || len < 12)
        return false;
    uint32_t ndim = be32(p);
    if (ndim == 0)
        return true;
    if (ndim != 1 || be32(p + 8) != OID_TEXT || len < 20)
        return false;
    uint32_t count = be32(p + 12);
    size_t at = 20;
    for (uint32_t i = 0; i < count; i++) {
        if (len - at < 4)
            return false;
        uint32_t n = be32(p + at);
        at += 4;
        if (n == UINT32_MAX || n > len - at) /* a NULL item, or past the end */
            return false;
        if (!each_item((const char *)p + at, n, fn, arg))
            return false;
        at += n;
    }
    return true;
}
