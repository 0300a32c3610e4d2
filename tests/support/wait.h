/* Waiting in tests for a condition rather than for a time.
 *
 * A test that needs something to have happened (a process to be ready, a
 * row to appear, a notification to reach another process) polls for it with
 * wait_until() or WAIT_UNTIL() and a generous timeout: on a fast machine the
 * wait ends as soon as the condition holds, on a slow one (or under ASan) it
 * still has time.  test_sleep_ms() remains for the few waits that are about
 * time itself (letting a deadline pass, pacing a load, a window in which
 * nothing may happen); each such call says why in a comment.
 */
#ifndef SNP_TEST_WAIT_H
#define SNP_TEST_WAIT_H

#include <stdbool.h>
#include <stdint.h>

/* The monotonic clock in milliseconds, for deadlines within a test (never
 * for timing what is tested). */
int64_t test_now_ms(void);

/* Sleeps `ms` milliseconds (again after an interruption by a signal). */
void test_sleep_ms(int ms);

/* A wait in progress: a deadline and the pause before the next poll. */
struct test_wait {
    int64_t end_ms;
    int step_ms;
};

/* Starts a wait of at most `timeout_ms`. */
struct test_wait test_wait_start(int timeout_ms);

/* Called when the condition did not hold yet: returns false when the time is
 * up, else sleeps a little (10 ms, doubling up to 100 ms, never past the
 * deadline) and returns true for another poll.  The condition is thus
 * always polled once more after the deadline has passed. */
bool test_wait_again(struct test_wait *w);

/* Calls `cond(arg)` until it returns true or `timeout_ms` have passed;
 * returns whether it did.  `cond` is called at least once, and once more
 * when the time is up. */
bool wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
    __attribute__((warn_unused_result));

/* The same for a boolean expression, evaluated until it is true or
 * `timeout_ms` have passed; `ok` (a bool lvalue) is set to its last value,
 * so to whether it became true:
 *
 *     bool held;
 *     WAIT_UNTIL(held, pgproxy_holding(&proxy), 10000);
 *     cr_assert(held, "...");
 *
 * (C11 has no expression that loops, hence a statement and a variable.) */
#define WAIT_UNTIL(ok, expr, timeout_ms)                                                           \
    for (struct test_wait wait_until_w_ = test_wait_start(timeout_ms);                             \
         !((ok) = (expr)) && test_wait_again(&wait_until_w_);) {                                   \
    }

#endif
