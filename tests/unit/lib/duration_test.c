/* SPDX-License-Identifier: Apache-2.0 */
/*
 * duration_test.c - unit tests of the duration parser (src/lib/duration.c):
 * tables of accepted and refused texts in seconds and in milliseconds, the
 * exact messages, and the rule the proxy's timeouts use (1 ms to under a
 * day) checked against what it accepted before the parser was shared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/duration.h"
#include "lib/err.h"

static void
test_seconds(void **state)
{
    static const struct {
        const char *in;
        bool ok;
        int64_t want;
    } cases[] = {
        {"720h", true, 2592000},
        {"30d", true, 2592000},
        {"90m", true, 5400},
        {"3600s", true, 3600},
        {"1h30m", true, 5400},
        {"1w", true, 604800},
        {"2w3d", true, 17 * 86400},
        {"1d1h1m1s", true, 86400 + 3600 + 60 + 1},
        {"3600", true, 3600},
        {"0s", true, 0},
        {"0h5", true, 5}, /* bare digits after groups summing to nothing */
        {"36500d", true, 36500LL * 86400},
        {"", false, 0},
        {"h", false, 0},
        {"-1h", false, 0},
        {"+1h", false, 0},
        {"10x", false, 0},
        {"1h30", false, 0},
        {"1.5h", false, 0},
        {" 1h", false, 0},
        {"1h ", false, 0},
        {"1H", false, 0},
        {"250ms", false, 0}, /* milliseconds only where they are accepted */
        {"36501d", false, 0},
        {"99999999999999h", false, 0},
        {NULL, false, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        int64_t got = -12345;
        int rc = duration_parse(cases[i].in, &got, &err);
        const char *in = cases[i].in != NULL ? cases[i].in : "NULL";
        if ((rc == 0) != cases[i].ok)
            fail_msg("duration_parse(\"%s\") = %d", in, rc);
        if (rc == 0 && got != cases[i].want)
            fail_msg("duration_parse(\"%s\") = %lld, want %lld", in, (long long)got,
                     (long long)cases[i].want);
        if (rc != 0 && got != -12345)
            fail_msg("duration_parse(\"%s\") wrote its output on failure", in);
    }
}

static void
test_seconds_message(void **state)
{
    struct duet_err err = {0};
    int64_t s;

    (void)state;
    assert_int_equal(duration_parse("10x", &s, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, "\"10x\" is not a duration; expected e.g. 720h, 30d, 1h30m");
}

/*
 * Milliseconds with the proxy's bounds (1 to 86,399,999 ms), on the inputs
 * its own parser took before: "Nms" for 0 < N < 86,400,000, and any duration
 * of whole seconds 0 < s < 86,400.
 */
static void
test_milliseconds(void **state)
{
    static const struct {
        const char *in;
        bool ok;
        int64_t want;
    } cases[] = {
        {"250ms", true, 250},
        {"1ms", true, 1},
        {"007ms", true, 7},
        {"86399999ms", true, 86399999},
        {"10s", true, 10000},
        {"5m", true, 300000},
        {"1h30m", true, 5400000},
        {"5", true, 5000},
        {"86399s", true, 86399000},
        {"23h59m59s", true, 86399000},
        {"1s500ms", true, 1500},
        {"0ms", false, 0},
        {"0s", false, 0},
        {"86400000ms", false, 0},
        {"86400s", false, 0},
        {"1d", false, 0},
        {"-5ms", false, 0},
        {"5 ms", false, 0},
        {"5MS", false, 0},
        {"ms", false, 0},
        {"5mss", false, 0},
        {"1.5s", false, 0},
        {"", false, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        int64_t got = -12345;
        int rc = duration_parse_ms(cases[i].in, 1, 86399999, &got, &err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("duration_parse_ms(\"%s\") = %d (%s)", cases[i].in, rc, err.msg);
        if (rc == 0 && got != cases[i].want)
            fail_msg("duration_parse_ms(\"%s\") = %lld, want %lld", cases[i].in, (long long)got,
                     (long long)cases[i].want);
    }
}

static void
test_milliseconds_messages(void **state)
{
    struct duet_err err = {0};
    int64_t ms;

    (void)state;
    assert_int_equal(duration_parse_ms("5 ms", 1, 1000, &ms, &err), -1);
    assert_string_equal(err.msg, "\"5 ms\" is not a duration; expected e.g. 10s, 500ms, 5m");
    assert_int_equal(duration_parse_ms("2s", 1, 1000, &ms, &err), -1);
    assert_string_equal(err.msg, "\"2s\" is out of range; expected 1 ms to 1000 ms");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_seconds_message),
        cmocka_unit_test(test_milliseconds),
        cmocka_unit_test(test_milliseconds_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
