/* table: plain-text tables and wrapped paragraphs for snpctl's human output.
 *
 * Columns are as wide as their widest cell, counted in characters (UTF-8 code
 * points, so that "Début" is five wide), separated by two spaces, under a
 * heading line and a rule.  Cells are copied; a cell longer than the
 * column's maximum is cut with "…".  The caller owns the struct (usually on
 * its stack): table_init(), table_add() per row, table_print(), then
 * table_free().
 */
#ifndef SNPCTL_TABLE_H
#define SNPCTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12

struct table {
    size_t ncols;
    const char *heads[TABLE_MAX_COLS]; /* borrowed: string literals */
    bool right[TABLE_MAX_COLS];        /* right-aligned (numbers) */
    size_t max[TABLE_MAX_COLS];        /* cut cells past this many characters; 0: never */
    char **cells;                      /* nrows * ncols copies */
    size_t nrows, cap;
    bool failed; /* an allocation failed: rows were lost, printing says so */
};

/* Prepares `t` for `ncols` columns (at most TABLE_MAX_COLS) headed by the
 * `ncols` strings `heads`, which must outlive the table. */
void table_init(struct table *t, size_t ncols, const char *const *heads);

/* Right-aligns column `col` (for counts). */
void table_align_right(struct table *t, size_t col);

/* Cuts the cells of column `col` to `max` characters, "…" included. */
void table_max_width(struct table *t, size_t col, size_t max);

/* Appends a row of `t->ncols` cells; NULL cells print as "—".  The strings
 * are copied. */
void table_add(struct table *t, const char *const *cells);

/* Prints the table to `out`, each line prefixed by `indent` spaces. */
void table_print(const struct table *t, FILE *out, int indent);

/* Frees the rows; `t` may be initialised again afterwards. */
void table_free(struct table *t);

/* Returns the number of characters (UTF-8 code points) of `s`. */
size_t table_width(const char *s);

/* Prints `text` to `out` in lines of at most `width` characters, cut at the
 * last blank that fits (a word longer than a line is cut where it must be,
 * never inside a UTF-8 sequence), keeping the text's own line breaks.  The
 * first line starts with `first` and the others with `next` (indents or a
 * list mark such as "  - ", counted in the width). */
void table_wrap(FILE *out, const char *text, size_t width, const char *first, const char *next);

#endif
