/* table: plain-text tables.  See table.h. */
#include "clients/cli/table.h"

#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, size_t ncols, const char *const *heads)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
    for (size_t i = 0; i < t->ncols; i++)
        t->heads[i] = heads[i];
}

void table_align_right(struct table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

void table_max_width(struct table *t, size_t col, size_t max)
{
    if (col < t->ncols)
        t->max[col] = max < 2 ? 2 : max;
}

size_t table_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void table_wrap(FILE *out, const char *text, size_t width, const char *first, const char *next)
{
    const char *prefix = first;
    while (*text) {
        size_t line = strcspn(text, "\n");
        const char *p = text, *end = text + line;
        if (line == 0) {
            fprintf(out, "\n");
            prefix = next;
        }
        while (p < end) {
            size_t room = table_width(prefix) < width ? width - table_width(prefix) : 1;
            size_t chars = 0;
            const char *q = p, *cut = NULL;
            while (q < end && chars < room) {
                if (*q == ' ')
                    cut = q;
                chars += ((unsigned char)*q & 0xC0) != 0x80;
                q++;
            }
            if (q < end && *q == ' ')
                cut = q;
            if (q < end && cut && cut > p)
                q = cut;
            else
                while (q < end && ((unsigned char)*q & 0xC0) == 0x80)
                    q++;
            fprintf(out, "%s%.*s\n", prefix, (int)(q - p), p);
            prefix = next;
            p = q;
            while (p < end && *p == ' ')
                p++;
        }
        text = end + (*end == '\n');
    }
}

/* Returns a copy of `s` cut to `max` characters ("…" being the last one),
 * never splitting a UTF-8 sequence. */
static char *cut(const char *s, size_t max)
{
    if (max == 0 || table_width(s) <= max)
        return strdup(s);
    size_t keep = 0, chars = 0;
    while (s[keep]) {
        if (((unsigned char)s[keep] & 0xC0) != 0x80) {
            if (chars == max - 1)
                break;
            chars++;
        }
        keep++;
    }
    char *r = malloc(keep + sizeof("…"));
    if (r) {
        memcpy(r, s, keep);
        memcpy(r + keep, "…", sizeof("…"));
    }
    return r;
}

void table_add(struct table *t, const char *const *cells)
{
    if (t->failed)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (!c) {
            t->failed = true;
            return;
        }
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = cut(cells[i] ? cells[i] : "—", t->max[i]);
        if (!row[i]) {
            for (size_t j = 0; j < i; j++)
                free(row[j]);
            t->failed = true;
            return;
        }
    }
    t->nrows++;
}

/* A line being assembled, so that trailing blanks can be dropped. */
struct line {
    char buf[4096];
    size_t len;
};

static void put(struct line *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n >= sizeof(l->buf))
        n = sizeof(l->buf) - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void pad(struct line *l, size_t n)
{
    while (n-- && l->len + 1 < sizeof(l->buf))
        l->buf[l->len++] = ' ';
}

static void flush(struct line *l, FILE *out)
{
    while (l->len > 0 && l->buf[l->len - 1] == ' ')
        l->len--;
    l->buf[l->len] = '\0';
    fputs(l->buf, out);
    fputc('\n', out);
    l->len = 0;
}

static void print_row(const struct table *t, FILE *out, int indent, const char *const *cells,
                      const size_t *width)
{
    struct line l = {.len = 0};
    pad(&l, (size_t)indent);
    for (size_t i = 0; i < t->ncols; i++) {
        size_t w = table_width(cells[i]);
        if (t->right[i])
            pad(&l, width[i] - w);
        put(&l, cells[i]);
        if (!t->right[i])
            pad(&l, width[i] - w);
        if (i + 1 < t->ncols)
            put(&l, "  ");
    }
    flush(&l, out);
}

void table_print(const struct table *t, FILE *out, int indent)
{
    size_t width[TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        width[i] = table_width(t->heads[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t w = table_width(t->cells[r * t->ncols + i]);
            if (w > width[i])
                width[i] = w;
        }
    print_row(t, out, indent, t->heads, width);
    struct line l = {.len = 0};
    pad(&l, (size_t)indent);
    for (size_t i = 0; i < t->ncols; i++) {
        for (size_t k = 0; k < width[i]; k++)
            put(&l, "─");
        if (i + 1 < t->ncols)
            put(&l, "  ");
    }
    flush(&l, out);
    for (size_t r = 0; r < t->nrows; r++)
        print_row(t, out, indent, (const char *const *)(t->cells + r * t->ncols), width);
    if (t->failed)
        fputs("(mémoire insuffisante : des lignes manquent)\n", out);
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
    t->failed = false;
}
