#include "tests/support/wait.h"

#include <errno.h>
#include <time.h>

/* The first pause is short so that a condition about to hold ends the wait
 * at once; the longest keeps a condition that costs a query or a request
 * from loading a busy machine. */
#define WAIT_FIRST_STEP_MS 10
#define WAIT_MAX_STEP_MS   100

int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void test_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

struct test_wait test_wait_start(int timeout_ms)
{
    return (struct test_wait){.end_ms = test_now_ms() + timeout_ms, .step_ms = WAIT_FIRST_STEP_MS};
}

bool test_wait_again(struct test_wait *w)
{
    int64_t left = w->end_ms - test_now_ms();
    if (left <= 0)
        return false;
    test_sleep_ms(left < w->step_ms ? (int)left : w->step_ms);
    w->step_ms = w->step_ms * 2 > WAIT_MAX_STEP_MS ? WAIT_MAX_STEP_MS : w->step_ms * 2;
    return true;
}

bool wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    struct test_wait w = test_wait_start(timeout_ms);
    while (!cond(arg))
        if (!test_wait_again(&w))
            return false;
    return true;
}
