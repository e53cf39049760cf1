/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle_test.c - unit tests of the failed-handshake limiter
 * (src/proxy/throttle.c): the bucket arithmetic (a token per handshake in flight,
 * given back on success), the table keyed by address (IPv4, IPv4-mapped, IPv6
 * per /64), exempt networks, and the exact errors of the CIDR parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "lib/err.h"
#include "proxy/throttle.h"

static struct sockaddr_storage
sa_of(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* ---- buckets ---- */

static void
test_bucket_a_token_per_handshake_in_flight(void **state)
{
    struct throttle_policy p = {.per_second = 1.0, .burst = 3.0};
    struct throttle_bucket b;
    int started = 0;

    (void)state;
    throttle_bucket_init(&b, &p, 100.0);
    /* Ten handshakes arrive at once: only three start. */
    for (int i = 0; i < 10; i++)
        started += throttle_bucket_take(&b, &p, 100.0) ? 1 : 0;
    assert_int_equal(started, 3);
    assert_true(b.tokens == 0.0);
    /* Two succeed and give their tokens back; the failed one keeps its token. */
    throttle_bucket_give(&b, &p, 100.0);
    throttle_bucket_give(&b, &p, 100.0);
    assert_true(b.tokens == 2.0);
    /* One token a second comes back, never above the burst. */
    assert_true(throttle_bucket_take(&b, &p, 100.0));
    assert_true(throttle_bucket_take(&b, &p, 100.0));
    assert_false(throttle_bucket_take(&b, &p, 100.5));
    assert_true(throttle_bucket_take(&b, &p, 101.0));
    throttle_bucket_give(&b, &p, 1000.0);
    assert_true(b.tokens == 3.0);
}

static void
test_bucket_time_going_back_earns_nothing(void **state)
{
    struct throttle_policy p = {.per_second = 10.0, .burst = 5.0};
    struct throttle_bucket b;

    (void)state;
    throttle_bucket_init(&b, &p, 50.0);
    for (int i = 0; i < 5; i++)
        assert_true(throttle_bucket_take(&b, &p, 50.0));
    assert_false(throttle_bucket_take(&b, &p, 49.0));
    assert_true(b.tokens == 0.0);
}

/* ---- the table ---- */

static void
test_table_waves_of_concurrent_handshakes_stay_limited(void **state)
{
    struct throttle_policy p = {.per_second = 1.0, .burst = 5.0};
    struct throttle *t = throttle_new();
    struct sockaddr_storage a = sa_of("192.0.2.7"), other = sa_of("192.0.2.8");
    uint64_t logged = 99;
    int started = 0;

    (void)state;
    assert_non_null(t);
    /* Successful handshakes cost nothing, however many. */
    for (int i = 0; i < 100; i++) {
        assert_true(throttle_take(t, &p, SA(a), 10.0, &logged));
        throttle_give_back(t, &p, SA(a), 10.0);
    }
    /* A wave of 50 connections at once: 5 start, all fail (no token comes back). */
    for (int i = 0; i < 50; i++)
        started += throttle_take(t, &p, SA(a), 10.0, &logged) ? 1 : 0;
    assert_int_equal(started, 5);
    assert_false(throttle_take(t, &p, SA(a), 10.0, &logged));
    assert_int_equal(logged, 0); /* 45 refusals counted above; the first was reported */
    for (int i = 0; i < 9; i++) {
        assert_false(throttle_take(t, &p, SA(a), 10.1, &logged));
        assert_int_equal(logged, 0); /* at most once a second */
    }
    assert_false(throttle_take(t, &p, SA(a), 10.9, &logged));
    assert_true(throttle_take(t, &p, SA(a), 11.0, &logged)); /* a token a second */
    /* The next wave, after 4.5 s of pay-back, starts 4 handshakes, not 50. */
    started = 0;
    for (int i = 0; i < 50; i++)
        started += throttle_take(t, &p, SA(a), 15.5, &logged) ? 1 : 0;
    assert_int_equal(started, 4);
    /* Another address is not affected. */
    assert_true(throttle_take(t, &p, SA(other), 10.0, &logged));
    throttle_free(t);
}

static void
test_table_ipv4_mapped_and_ipv6_per_64(void **state)
{
    struct throttle_policy p = {.per_second = 0.001, .burst = 2.0};
    struct throttle *t = throttle_new();
    struct sockaddr_storage v4 = sa_of("198.51.100.1"), mapped = sa_of("::ffff:198.51.100.1");
    struct sockaddr_storage h1 = sa_of("2001:db8:1:2::1"), h2 = sa_of("2001:db8:1:2:ffff::9");
    struct sockaddr_storage next64 = sa_of("2001:db8:1:3::1");
    uint64_t logged;

    (void)state;
    assert_non_null(t);
    assert_true(throttle_take(t, &p, SA(v4), 1.0, &logged));
    assert_true(throttle_take(t, &p, SA(mapped), 1.0, &logged));
    assert_false(throttle_take(t, &p, SA(v4), 1.0, &logged));
    assert_false(throttle_take(t, &p, SA(mapped), 1.0, &logged));
    assert_true(throttle_take(t, &p, SA(h1), 1.0, &logged));
    assert_true(throttle_take(t, &p, SA(h2), 1.0, &logged));
    assert_false(throttle_take(t, &p, SA(h1), 1.0, &logged));
    assert_false(throttle_take(t, &p, SA(h2), 1.0, &logged));
    assert_true(throttle_take(t, &p, SA(next64), 1.0, &logged));
    throttle_free(t);
}

static void
test_exempt_networks_are_never_throttled(void **state)
{
    struct throttle_cidr nets[2];
    struct duet_err err;
    struct throttle *t = throttle_new();
    struct sockaddr_storage in4 = sa_of("10.1.2.3"), mapped = sa_of("::ffff:10.200.0.1");
    struct sockaddr_storage in6 = sa_of("fd00:1::5"), out4 = sa_of("11.0.0.1");
    struct sockaddr_storage out6 = sa_of("fd00:2::5");
    uint64_t logged;

    (void)state;
    assert_non_null(t);
    assert_int_equal(throttle_cidr_parse("10.0.0.0/8", &nets[0], &err), 0);
    assert_int_equal(throttle_cidr_parse("fd00:1::/32", &nets[1], &err), 0);
    struct throttle_policy p = {.per_second = 0.001, .burst = 1.0, .exempt = nets, .nexempt = 2};
    for (int i = 0; i < 100; i++) {
        assert_true(throttle_take(t, &p, SA(in4), 1.0, &logged));
        assert_true(throttle_take(t, &p, SA(mapped), 1.0, &logged));
        assert_true(throttle_take(t, &p, SA(in6), 1.0, &logged));
        assert_int_equal(throttle_take(t, &p, SA(out4), 1.0, &logged), i == 0);
        assert_int_equal(throttle_take(t, &p, SA(out6), 1.0, &logged), i == 0);
    }
    throttle_free(t);
}

/* ---- CIDR parsing ---- */

struct ccase {
    const char *in;
    const char *error; /* NULL: accepted */
    unsigned prefix;
};

static void
test_cidr_parse_table(void **state)
{
    static const struct ccase cases[] = {
        {"10.0.0.0/8", NULL, 8},
        {"127.0.0.1", NULL, 32},
        {"0.0.0.0/0", NULL, 0},
        {"::1/128", NULL, 128},
        {"2001:db8::/32", NULL, 32},
        {"::/0", NULL, 0},
        {"10.0.0.1/8", "\"10.0.0.1/8\": bits are set beyond the /8 prefix (did you mean a "
                       "network address?)", 0},
        {"10.0.0.0/33", "\"10.0.0.0/33\": the prefix length must be 0 to 32", 0},
        {"::/129", "\"::/129\": the prefix length must be 0 to 128", 0},
        {"10.0.0.0/", "\"10.0.0.0/\": the prefix length must be 0 to 32", 0},
        {"10.0.0.0/-1", "\"10.0.0.0/-1\": the prefix length must be 0 to 32", 0},
        {"host.example/8", "\"host.example/8\": \"host.example\" is not an IPv4 or IPv6 address; "
                           "expected a network such as 10.0.0.0/8 or 2001:db8::/32", 0},
        {"", "\"\": expected a network such as 10.0.0.0/8 or 2001:db8::/32", 0},
        {"/8", "\"/8\": expected a network such as 10.0.0.0/8 or 2001:db8::/32", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct throttle_cidr c;
        struct duet_err err;
        err_clear(&err);
        int rc = throttle_cidr_parse(cases[i].in, &c, &err);
        if (cases[i].error == NULL) {
            if (rc != 0)
                fail_msg("%s: refused: %s", cases[i].in, err.msg);
            assert_int_equal(c.prefix, cases[i].prefix);
        } else {
            if (rc == 0)
                fail_msg("%s: accepted", cases[i].in);
            assert_string_equal(err.msg, cases[i].error);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_a_token_per_handshake_in_flight),
        cmocka_unit_test(test_bucket_time_going_back_earns_nothing),
        cmocka_unit_test(test_table_waves_of_concurrent_handshakes_stay_limited),
        cmocka_unit_test(test_table_ipv4_mapped_and_ipv6_per_64),
        cmocka_unit_test(test_exempt_networks_are_never_throttled),
        cmocka_unit_test(test_cidr_parse_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
