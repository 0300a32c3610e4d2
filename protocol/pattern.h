/* pattern: the string patterns of the protocol's declaration matched
 * without regexec, when their shape allows it.
 *
 * Most "pattern"s of protocol/snp.v1.json are a run of character classes
 * anchored at both ends: client_ref is ^[A-Za-z0-9._:-]{1,64}$, a territory
 * id ^[a-z0-9][a-z0-9-]{1,62}$, an ISO week ^[0-9]{4}-W[0-9]{2}$.  glibc's
 * regexec costs a few microseconds even on those, and client_ref is in every
 * request.create.  A pattern of this shape compiles here to a list of atoms,
 * each a set of bytes with a repeat count:
 *
 *   ^ atom+ $     atom:  [class] or a literal character, then {n}, {m,n} or
 *                        nothing (once); class: characters and ranges a-z,
 *                        a '-' first or last taken literally
 *
 * with every atom but the last repeated a fixed number of times, so that a
 * match is read left to right with no backtracking.  Anything else
 * (alternation, groups, ?, *, +, negated classes, escapes, a varying count
 * before the last atom) is refused by pattern_compile, and the codec keeps
 * regexec for it.  Classes hold ASCII only, so a byte above 0x7f never
 * matches, as with regexec in the C locale.
 */
#ifndef SNP_PROTOCOL_PATTERN_H
#define SNP_PROTOCOL_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PATTERN_MAX_ATOMS 8

struct pattern_atom {
    uint64_t set[2]; /* bytes 0..127 that match */
    unsigned min, max;
};

struct pattern {
    struct pattern_atom atoms[PATTERN_MAX_ATOMS];
    unsigned natoms;
};

/* Compiles the extended regular expression `re` when it has the shape above:
 * true, or false (then `p` is not to be used) when it has not. */
bool pattern_compile(struct pattern *p, const char *re) __attribute__((warn_unused_result));

/* Whether the `n` bytes of `s` match `p` whole. */
bool pattern_match(const struct pattern *p, const char *s, size_t n);

#endif
