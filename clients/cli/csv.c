/* csv: CSV reader.  See csv.h. */
#include "clients/cli/csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_RECORD (64u * 1024u)

int csv_open(struct csv *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->f = fopen(path, "r");
    if (!c->f)
        return -1;
    c->sep = ',';
    c->next_line = 1;
    c->first = true;
    return 0;
}

void csv_close(struct csv *c)
{
    if (c->f)
        fclose(c->f);
    free(c->buf);
    free(c->starts);
    free(c->fields);
    memset(c, 0, sizeof(*c));
}

bool csv_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (*p & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
    }
    return true;
}

static bool put(struct csv *c, char ch)
{
    if (c->len + 1 >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        char *b = realloc(c->buf, cap);
        if (!b)
            return false;
        c->buf = b;
        c->cap = cap;
    }
    c->buf[c->len++] = ch;
    return true;
}

static bool start_field(struct csv *c)
{
    if (c->nfields == c->fcap) {
        size_t cap = c->fcap ? c->fcap * 2 : 16;
        size_t *s = realloc(c->starts, cap * sizeof(*s));
        if (!s)
            return false;
        c->starts = s;
        c->fcap = cap;
    }
    c->starts[c->nfields++] = c->len;
    return true;
}

/* Chooses the separator from the first physical line: the more frequent of
 * ',' and ';' outside quotes (',' on a tie). */
static char guess_sep(const char *line)
{
    int commas = 0, semis = 0;
    bool quoted = false;
    for (const char *p = line; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == ',')
            commas++;
        else if (!quoted && *p == ';')
            semis++;
    }
    return semis > commas ? ';' : ',';
}

int csv_next(struct csv *c, const char **why)
{
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    bool quoted = false, in_record = false, field_quoted = false;
    int rc = 0;
    *why = NULL;

    c->len = 0;
    c->nfields = 0;
    while ((n = getline(&line, &lcap, c->f)) >= 0) {
        long this_line = c->next_line++;
        char *p = line;
        if (c->first) {
            c->first = false;
            if ((size_t)n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
                p += 3;
            c->sep = guess_sep(p);
        }
        if (!in_record) {
            /* Skip lines that hold nothing at all. */
            size_t l = strlen(p);
            while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
                l--;
            if (l == 0)
                continue;
            in_record = true;
            c->line = this_line;
            if (!start_field(c))
                goto nomem;
        }
        for (; *p; p++) {
            char ch = *p;
            if (c->len > CSV_MAX_RECORD) {
                *why = "enregistrement de plus de 64 Kio";
                rc = -1;
                goto done;
            }
            if (quoted) {
                if (ch == '"' && p[1] == '"') {
                    p++;
                    if (!put(c, '"'))
                        goto nomem;
                } else if (ch == '"') {
                    quoted = false;
                } else if (!put(c, ch)) {
                    goto nomem;
                }
                continue;
            }
            if (ch == '"' && c->len == c->starts[c->nfields - 1] && !field_quoted) {
                quoted = field_quoted = true;
            } else if (ch == c->sep) {
                if (!put(c, '\0') || !start_field(c))
                    goto nomem;
                field_quoted = false;
            } else if (ch == '\r' && (p[1] == '\n' || p[1] == '\0')) {
                continue;
            } else if (ch == '\n') {
                break;
            } else if (!put(c, ch)) {
                goto nomem;
            }
        }
        if (!quoted) {
            rc = 1;
            goto done;
        }
        /* A quoted field goes on over the next line; the line break is
         * part of it. */
    }
    if (quoted) {
        *why = "guillemet ouvert jamais fermé";
        rc = -1;
    }
done:
    free(line);
    if (rc == 1) {
        if (!put(c, '\0'))
            goto nomem_nofree;
        char **f = realloc(c->fields, c->nfields * sizeof(*f));
        if (!f)
            goto nomem_nofree;
        c->fields = f;
        for (size_t i = 0; i < c->nfields; i++) {
            c->fields[i] = c->buf + c->starts[i];
            if (!csv_utf8_valid(c->fields[i])) {
                *why = "texte qui n'est pas de l'UTF-8 (enregistrez le fichier en UTF-8)";
                return -1;
            }
        }
    }
    return rc;
nomem:
    free(line);
nomem_nofree:
    *why = "mémoire insuffisante";
    errno = ENOMEM;
    return -1;
}
