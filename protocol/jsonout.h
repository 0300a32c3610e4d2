/* jsonout: a jansson value written as compact JSON text, faster than
 * json_dumps.
 *
 * Every answer and push snpd sends is a jansson tree turned into text.
 * jansson's json_dumps writes it through a callback per token and checks
 * every string's UTF-8 again as it goes: about 30 µs for the 2 kB answer
 * to a request.create on the benchmark machine.  jsonout walks the same
 * tree into one growing buffer (base/buf.h), its strings escaped by
 * buf_json_stringn, the project's one JSON string escaper.
 *
 * The text is byte for byte what json_dumps(j, JSON_COMPACT |
 * JSON_REAL_PRECISION(precision)) writes (tests/protocol/test_jsonout.c
 * compares them on random trees): members in the object's order, no
 * blanks, the characters below 0x20, '"' and '\' escaped, nothing else,
 * reals as "%.*g" with ".0" added when they would read as an integer and
 * the exponent without '+' or leading zeros.  It trusts that the tree's
 * strings are valid UTF-8, as jansson's json_string() ensured when it made
 * them (json_dumps would check again and refuse a string made unchecked).
 */
#ifndef SNP_PROTOCOL_JSONOUT_H
#define SNP_PROTOCOL_JSONOUT_H

#include <stddef.h>

#include <jansson.h>

/* The text of `j`, malloc'ed and NUL-terminated, with its length in `*len`
 * when `len` is not NULL; NULL when memory is short, `j` is NULL or nests
 * deeper than 2,048 levels.  `precision` is JSON_REAL_PRECISION's, 1 to 31,
 * or 0 for jansson's default, 17. */
char *jsonout_dumps(const json_t *j, int precision, size_t *len)
    __attribute__((warn_unused_result));

#endif
