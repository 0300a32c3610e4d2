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
