/* Token buckets: the one rate limit of snpd.  A bucket holds up to `burst`
 * tokens and gains `per_ms` a millisecond; an action takes one.
 *
 * Used for the messages of a WebSocket connection and the API requests of
 * an HTTP connection (the protocol's declared limits, message_burst and
 * messages_per_second: ratelimit_message) and for the unknown tokens one
 * address may present (auth.c, snpd's auth_failures_burst and _per_min).
 * Times are the loop's clock (uv_now), in milliseconds.
 */
#ifndef SNP_RATELIMIT_H
#define SNP_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
    double tokens;
    uint64_t refill_ms; /* when `tokens` was last brought up to date */
};

/* A full bucket at `now_ms`. */
void bucket_fill(struct token_bucket *b, double burst, uint64_t now_ms);

/* Adds what the time since the last refill earned, up to `burst`. */
void bucket_refill(struct token_bucket *b, double burst, double per_ms, uint64_t now_ms);

/* Takes one token if there is one; refills first. */
bool bucket_take(struct token_bucket *b, double burst, double per_ms, uint64_t now_ms);

/* Spends one token without asking (down to 0): the action was done anyway. */
void bucket_spend(struct token_bucket *b);

/* A full bucket of the protocol's message limit (protocol/snp.v1.md §5). */
void ratelimit_message_fill(struct token_bucket *b, uint64_t now_ms);

/* Takes one of the protocol's message tokens: false when the connection
 * sends faster than messages_per_second beyond its message_burst. */
bool ratelimit_message(struct token_bucket *b, uint64_t now_ms);

#endif
