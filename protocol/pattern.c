#include "protocol/pattern.h"

#include <stdlib.h>
#include <string.h>

static void set_add(struct pattern_atom *a, unsigned char c)
{
    a->set[c >> 6] |= UINT64_C(1) << (c & 63);
}

static bool set_has(const struct pattern_atom *a, unsigned char c)
{
    return c < 128 && (a->set[c >> 6] >> (c & 63) & 1);
}

/* Characters with a meaning in an extended regular expression. */
static bool special(char c)
{
    return c == '\0' || strchr(".[]{}()*+?|^$\\", c) != NULL;
}

/* Reads the class after '[' at `*re`; false unless it is plain. */
static bool read_class(struct pattern_atom *a, const char **re)
{
    const char *s = *re;
    if (*s == '^' || *s == ']')
        return false; /* negated, or a ']' first: left to regexec */
    const char *first = s;
    while (*s != ']') {
        unsigned char lo = (unsigned char)*s;
        if (lo == '\0' || lo >= 128 || lo == '[' || lo == '\\')
            return false;
        if (lo == '-' && s != first && s[1] != ']')
            return false; /* a '-' between two ranges: left to regexec */
        if (s[1] == '-' && s[2] != ']' && s[2] != '\0') {
            unsigned char hi = (unsigned char)s[2];
            if (hi >= 128 || hi < lo || hi == '[' || hi == '\\')
                return false;
            for (unsigned c = lo; c <= hi; c++)
                set_add(a, (unsigned char)c);
            s += 3;
        } else {
            set_add(a, lo); /* a '-' first or last is itself */
            s++;
        }
    }
    *re = s + 1;
    return true;
}

/* Reads a decimal count of at most four digits. */
static bool read_count(const char **re, unsigned *out)
{
    const char *s = *re;
    unsigned v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
        v = v * 10 + (unsigned)(*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || (*s >= '0' && *s <= '9'))
        return false;
    *re = s;
    *out = v;
    return true;
}

/* Reads {n} or {m,n} at `*re`, or nothing (once). */
static bool read_repeat(struct pattern_atom *a, const char **re)
{
    a->min = a->max = 1;
    if (**re != '{')
        return true;
    const char *s = *re + 1;
    if (!read_count(&s, &a->min))
        return false;
    a->max = a->min;
    if (*s == ',') {
        s++;
        if (!read_count(&s, &a->max) || a->max < a->min)
            return false;
    }
    if (*s != '}' || a->max == 0)
        return false;
    *re = s + 1;
    return true;
}

bool pattern_compile(struct pattern *p, const char *re)
{
    memset(p, 0, sizeof(*p));
    if (*re++ != '^')
        return false;
    while (*re != '$') {
        if (p->natoms == PATTERN_MAX_ATOMS)
            return false;
        /* Only the last atom may repeat a varying number of times. */
        if (p->natoms > 0 && p->atoms[p->natoms - 1].min != p->atoms[p->natoms - 1].max)
            return false;
        struct pattern_atom *a = &p->atoms[p->natoms++];
        if (*re == '[') {
            re++;
            if (!read_class(a, &re))
                return false;
        } else if (!special(*re) && (unsigned char)*re < 128) {
            set_add(a, (unsigned char)*re++);
        } else {
            return false;
        }
        if (!read_repeat(a, &re))
            return false;
    }
    return re[1] == '\0' && p->natoms > 0;
}

bool pattern_match(const struct pattern *p, const char *s, size_t n)
{
    size_t at = 0;
    for (unsigned i = 0; i < p->natoms; i++) {
        const struct pattern_atom *a = &p->atoms[i];
        unsigned k = 0;
        while (k < a->max && at < n && set_has(a, (unsigned char)s[at])) {
            k++;
            at++;
        }
        if (k < a->min)
            return false;
    }
    return at == n;
}
