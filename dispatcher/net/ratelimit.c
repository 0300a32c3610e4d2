#include "dispatcher/net/ratelimit.h"

#include "protocol/codec.h"

void bucket_fill(struct token_bucket *b, double burst, uint64_t now_ms)
{
    b->tokens = burst;
    b->refill_ms = now_ms;
}

void bucket_refill(struct token_bucket *b, double burst, double per_ms, uint64_t now_ms)
{
    if (now_ms > b->refill_ms)
        b->tokens += (double)(now_ms - b->refill_ms) * per_ms;
    if (b->tokens > burst)
        b->tokens = burst;
    b->refill_ms = now_ms;
}

bool bucket_take(struct token_bucket *b, double burst, double per_ms, uint64_t now_ms)
{
    bucket_refill(b, burst, per_ms, now_ms);
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

void bucket_spend(struct token_bucket *b)
{
    b->tokens = b->tokens >= 1.0 ? b->tokens - 1.0 : 0.0;
}

void ratelimit_message_fill(struct token_bucket *b, uint64_t now_ms)
{
    bucket_fill(b, snp_proto_limits()->message_burst, now_ms);
}

bool ratelimit_message(struct token_bucket *b, uint64_t now_ms)
{
    const struct snp_proto_limits *lim = snp_proto_limits();
    return bucket_take(b, lim->message_burst, lim->messages_per_second / 1000.0, now_ms);
}
