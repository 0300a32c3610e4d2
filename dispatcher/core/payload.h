/* payload: the text of an snp_change notification, read into its fields.
 *
 * Every change of a slot, request or booking is announced on channel
 * snp_change with a flat JSON object built by the database
 * (json_build_object of scalars: sql/migrations/0005, 0008, 0012, 0022,
 * 0024), five of them for a booking, and every snpd process reads every one,
 * its own included.  jansson took about 7 µs to read one into a tree;
 * payload_read takes the fields in one pass, with no allocation for a
 * payload of up to 1 kB.
 *
 * It answers as jansson's accessors would on the tree json_loads() makes:
 * payload_str as json_string_value (NULL when absent, null or not a
 * string), payload_int as json_integer_value (0 when not an integer),
 * payload_true as json_is_true; when a key repeats, the last one counts.  It
 * reads only flat objects: a payload with an array or object inside, or
 * anything json_loads would refuse (a NUL escaped, a lone surrogate, an
 * integer out of range, a control character in a string, text after the
 * object) is refused whole, as jansson would refuse the text.  The text is
 * trusted to be UTF-8: the database is UTF8 (migrate.c refuses any other)
 * and checks every string it stores, and snpd's sessions ask for UTF-8
 * (db.c).
 */
#ifndef SNP_CORE_PAYLOAD_H
#define SNP_CORE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYLOAD_MAX_FIELDS 32

enum payload_type { PAYLOAD_STRING, PAYLOAD_INTEGER, PAYLOAD_REAL, PAYLOAD_TRUE, PAYLOAD_FALSE,
                    PAYLOAD_NULL };

struct payload_field {
    const char *key; /* NUL-terminated, in the payload's own copy */
    enum payload_type type;
    const char *str; /* PAYLOAD_STRING: its value, unescaped */
    int64_t integer; /* PAYLOAD_INTEGER */
};

struct payload {
    struct payload_field fields[PAYLOAD_MAX_FIELDS];
    size_t n;
    char *text;          /* the unescaped keys and strings: `local`, or malloc'ed */
    char local[1024];
};

/* Reads `text` into `p`, one field per member name (the last value of a
 * repeated one).  Returns false when it is not a flat JSON object that
 * json_loads would read (or has members of more than PAYLOAD_MAX_FIELDS
 * names, or memory is short); `p` then has no field.  payload_free() after,
 * either way. */
bool payload_read(struct payload *p, const char *text);

const char *payload_str(const struct payload *p, const char *key);
int64_t payload_int(const struct payload *p, const char *key);
bool payload_true(const struct payload *p, const char *key);

void payload_free(struct payload *p);

#endif
