/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedule_test.c - unit tests of when the agent renews and how long it waits
 * after a failure (src/agent/schedule.c): the renewal time and its jitter
 * stay within their bounds for any random value, and the backoff grows
 * exponentially inside [lo, hi].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/agent.h"

static const uint64_t rnds[] = {0, 1, 2, 7, 19, 999, 123456789, UINT64_MAX / 3, UINT64_MAX};

static void
test_renew_base(void **state)
{
    (void)state;
    /* Two thirds of a 24 h lifetime. */
    assert_int_equal(agent_renew_base(0, 86400, 0), 57600);
    assert_int_equal(agent_renew_base(1000, 1120, 0), 1080);
    /* The CA's renew_after wins when it is inside the validity. */
    assert_int_equal(agent_renew_base(0, 86400, 50000), 50000);
    /* Outside it, ignored. */
    assert_int_equal(agent_renew_base(0, 86400, 90000), 57600);
    assert_int_equal(agent_renew_base(100, 86500, 50), 57700);
    /* A certificate with no lifetime: renew now. */
    assert_int_equal(agent_renew_base(500, 500, 0), 500);
}

static void
test_renew_jitter_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
        int64_t t = agent_renew_time(0, 86400, 0, rnds[i]);
        assert_true(t >= 57600);
        assert_true(t <= 57600 + 86400 / 20);
        t = agent_renew_time(1000, 1120, 0, rnds[i]);
        assert_true(t >= 1080 && t <= 1086);
        /* A renew_after near the end: never past notAfter - 1. */
        t = agent_renew_time(0, 100, 99, rnds[i]);
        assert_true(t >= 99 && t <= 99);
    }
    assert_int_equal(agent_renew_time(0, 86400, 0, 0), 57600);
    assert_int_equal(agent_renew_time(0, 86400, 0, 4320), 57600 + 4320);
    assert_int_equal(agent_renew_time(0, 86400, 0, 4321), 57600);
}

static void
test_backoff_bounds(void **state)
{
    (void)state;
    for (unsigned a = 0; a < 70; a++) {
        int64_t cap = 5;
        for (unsigned k = 0; k < a && cap < 600; k++)
            cap *= 2;
        if (cap > 600)
            cap = 600;
        for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
            int64_t d = agent_backoff(a, 5, 600, rnds[i]);
            assert_true(d >= 5 && d <= 600);
            assert_true(d <= cap && d >= cap - cap / 2);
        }
    }
    /* No jitter taken: the ceiling itself. */
    assert_int_equal(agent_backoff(0, 5, 600, 0), 5);
    assert_int_equal(agent_backoff(1, 5, 600, 0), 10);
    assert_int_equal(agent_backoff(3, 5, 600, 0), 40);
    assert_int_equal(agent_backoff(7, 5, 600, 0), 600);
    assert_int_equal(agent_backoff(1000, 5, 600, 0), 600);
    /* The most jitter: half the ceiling, never under lo. */
    assert_int_equal(agent_backoff(7, 5, 600, 300), 300);
    assert_int_equal(agent_backoff(0, 5, 600, 2), 5);
    /* Odd bounds are made sane. */
    assert_int_equal(agent_backoff(0, 0, 0, 0), 1);
    assert_int_equal(agent_backoff(4, 10, 3, 0), 10);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renew_base),
        cmocka_unit_test(test_renew_jitter_bounds),
        cmocka_unit_test(test_backoff_bounds),
    };
    return cmocka_run_group_tests_name("agent_schedule", tests, NULL, NULL);
}
