#include "dispatcher/commands/render.h"

#include <string.h>

#include "protocol/codec.h"

const char render_utf8_bom[] = "\xef\xbb\xbf";

void render_csv_field(struct buf *b, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n")) {
        buf_append(b, "\"", 1);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                buf_append(b, "\"", 1);
            buf_append(b, p, 1);
        }
        buf_append(b, "\"", 1);
    } else {
        buf_append(b, s, strlen(s));
    }
    buf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

void render_csv_row(struct buf *b, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        render_csv_field(b, fields[i] ? fields[i] : "", i + 1 == n);
}

void render_html_text(struct buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&':
            buf_append(b, "&amp;", 5);
            break;
        case '<':
            buf_append(b, "&lt;", 4);
            break;
        case '>':
            buf_append(b, "&gt;", 4);
            break;
        case '"':
            buf_append(b, "&quot;", 6);
            break;
        default:
            buf_append(b, p, 1);
        }
    }
}

void render_html_number(struct buf *b, const char *s)
{
    const char *p = s;
    if (*p == '-')
        buf_append(b, p++, 1);
    size_t digits = strspn(p, "0123456789");
    if (digits == 0) {
        render_html_text(b, s);
        return;
    }
    for (size_t i = 0; i < digits; i++) {
        if (i > 0 && (digits - i) % 3 == 0)
            buf_append(b, "\xe2\x80\xaf", 3);
        buf_append(b, p + i, 1);
    }
    p += digits;
    if (*p == '.') {
        buf_append(b, ",", 1);
        p++;
    }
    render_html_text(b, p);
}

json_t *render_parts(const char *text, size_t len)
{
    const struct snp_proto_limits *lim = snp_proto_limits();
    json_t *parts = json_array();
    size_t at = 0;
    while (parts && at < len && json_array_size(parts) <= lim->max_array_items) {
        size_t n = len - at;
        if (n > lim->max_string_bytes) {
            n = lim->max_string_bytes;
            /* Back to the start of a UTF-8 sequence: never cut a character. */
            while (n > 0 && ((unsigned char)text[at + n] & 0xC0) == 0x80)
                n--;
        }
        json_array_append_new(parts, json_stringn(text + at, n));
        at += n;
    }
    if (!parts || at != len || json_array_size(parts) > lim->max_array_items) {
        json_decref(parts);
        return NULL;
    }
    return parts;
}
