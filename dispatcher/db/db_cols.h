/* Result columns read by name.
 *
 * A reader that takes column 7 of a result must count the columns of its SQL
 * text, and reads the wrong one without a word when the text changes.  So
 * each reader names the columns it reads, finds their numbers once per result
 * with db_cols_resolve(), and reads its rows with those numbers:
 *
 *     enum { COL_ID, COL_NAME, NCOLS };
 *     static const char *const names[NCOLS] = {[COL_ID] = "id", [COL_NAME] = "name"};
 *     int cols[NCOLS];
 *     if (!db_cols_resolve(res, names, NCOLS, cols, sql_name[SQL_X]))
 *         return false;  (as for a failed query)
 *     for (int i = 0; i < PQntuples(res); i++)
 *         ... PQgetvalue(res, i, cols[COL_NAME]) ...
 *
 * Every column read this way needs a stable name in its SQL text: a plain
 * column reference keeps its own, an expression gets one with AS.
 */
#ifndef SNP_DB_COLS_H
#define SNP_DB_COLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Writes into `cols` (room for `n`) the number of the column of `res` named
 * by each of the `n` entries of `names`, in the same order.  Names are
 * matched as PQfnumber matches them: without double quotes in lower case,
 * as SQL folds unquoted identifiers ("ID" finds a column id); within double
 * quotes exactly as written ("\"Id\"" finds only a column Id).  Asking for
 * the same name twice gives the same column twice.
 *
 * A name that no column of `res` has, or that two of them have (a SELECT of
 * s.id and r.id: reading either would be a guess), is a mistake in the SQL
 * text or in its reader.  Then an error naming `query` (the query, for the
 * log: a name of sql_name[] or a short description) and the column is
 * logged, every entry of `cols` is set to -1, and false is returned: the
 * caller must not read the result, and handles the answer as it handles a
 * failed query.  A NULL `res` is refused the same way.  `res` is neither
 * kept nor changed; call this once per result, not once per row. */
bool db_cols_resolve(const PGresult *res, const char *const *names, size_t n, int *cols,
                     const char *query) __attribute__((warn_unused_result));

/* Typed readers of one value, for results in text format (db_query) and in
 * binary format (db_query_binary) alike.  A text column's value is
 * PQgetvalue() in both formats; a NULL reads as `if_null` (as "" for text,
 * as no item for an array).  A value of a type the reader does not know
 * reads as `if_null` too: the readers below name the types they take. */

/* An integer: smallint, integer or bigint. */
int64_t db_col_int(const PGresult *res, int row, int col, int64_t if_null);

/* An instant in seconds since 1970: a bigint of seconds (text or binary),
 * or a timestamp with time zone (binary), floored to the second. */
int64_t db_col_epoch(const PGresult *res, int row, int col, int64_t if_null);

/* Calls `fn` with each item of a one-dimensional text[] (text: its literal
 * without quoting, as '{a,b}', or '' for none; binary: the array's
 * representation), in order, as a NUL-terminated string of at most 63
 * bytes.  Returns false when an item is longer, when the value cannot be
 * read, or when `fn` returns false. */
bool db_col_each_text(const PGresult *res, int row, int col,
                      bool (*fn)(const char *item, void *arg), void *arg);

#endif
