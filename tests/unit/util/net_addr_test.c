/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_addr_test.c - unit tests of the address helpers (src/util/net_addr.c):
 * which listen and target addresses count as loopback (127/8, ::1, a unix
 * socket, and the IPv4-mapped ::ffff:127.x.y.z an IPv6 socket reaches
 * 127.x.y.z through) and which as every interface (0.0.0.0, ::, and the
 * IPv4-mapped ::ffff:0.0.0.0, on which an IPv6 socket accepts every IPv4
 * client, RFC 4291 2.5.5.2), each however it is spelled.
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

#include "lib/err.h"
#include "util/net_addr.h"

static const struct {
    const char *in;
    bool loopback;
} loopback_cases[] = {
    {"127.0.0.1:8443", true},
    {"127.1.2.3:8443", true},
    {"127.255.255.255:1", true},
    {"[::1]:8443", true},
    {"[0:0:0:0:0:0:0:1]:8443", true},
    {"[::ffff:127.0.0.1]:8443", true},
    {"[::ffff:127.9.8.7]:8443", true},
    {"[::ffff:7f00:1]:8443", true},
    {"[0:0:0:0:0:ffff:127.0.0.1]:8443", true},
    {"unix:/run/duet.sock", true},
    {"0.0.0.0:8443", false},
    {"126.255.255.255:8443", false},
    {"128.0.0.1:8443", false},
    {"192.0.2.10:8443", false},
    {"[::]:8443", false},
    {"[::2]:8443", false},
    {"[::ffff:0.0.0.0]:8443", false},
    {"[::ffff:128.0.0.1]:8443", false},
    {"[::ffff:192.0.2.10]:8443", false},
    {"[::127.0.0.1]:8443", false},   /* IPv4-compatible (deprecated), not mapped */
    {"[64:ff9b::127.0.0.1]:8443", false}, /* NAT64: another machine's 127.0.0.1 at best */
    {"[2001:db8::1]:8443", false},
};

static void
test_loopback(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(loopback_cases) / sizeof(loopback_cases[0]); i++) {
        struct duet_err err = {0};
        struct net_addr a;

        if (net_addr_parse(loopback_cases[i].in, true, &a, &err) != 0)
            fail_msg("net_addr_parse(\"%s\"): %s", loopback_cases[i].in, err.msg);
        if (net_addr_is_loopback(&a) != loopback_cases[i].loopback)
            fail_msg("net_addr_is_loopback(\"%s\") = %d, want %d", loopback_cases[i].in,
                     !loopback_cases[i].loopback, loopback_cases[i].loopback);
        net_addr_clear(&a);
    }
}

static const struct {
    const char *in;
    bool wildcard;
} wildcard_cases[] = {
    {"0.0.0.0:8443", true},
    {"0:8443", true}, /* "0" resolves to 0.0.0.0 */
    {"[::]:8443", true},
    {"[0:0:0:0:0:0:0:0]:8443", true},
    {"[::ffff:0.0.0.0]:8443", true},
    {"[::ffff:0:0]:8443", true},
    {"[0:0:0:0:0:ffff:0.0.0.0]:8443", true},
    {"127.0.0.1:8443", false},
    {"[::1]:8443", false},
    {"[::ffff:127.0.0.1]:8443", false},
    {"[::ffff:0.0.0.1]:8443", false},
    {"[::ffff:192.0.2.10]:8443", false},
    {"192.0.2.10:8443", false},
    {"[::0.0.0.1]:8443", false},
    {"unix:/run/duet.sock", false},
};

static void
test_wildcard(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(wildcard_cases) / sizeof(wildcard_cases[0]); i++) {
        struct duet_err err = {0};
        struct net_addr a;

        if (net_addr_parse(wildcard_cases[i].in, true, &a, &err) != 0)
            fail_msg("net_addr_parse(\"%s\"): %s", wildcard_cases[i].in, err.msg);
        if (net_addr_is_wildcard(&a) != wildcard_cases[i].wildcard)
            fail_msg("net_addr_is_wildcard(\"%s\") = %d, want %d", wildcard_cases[i].in,
                     !wildcard_cases[i].wildcard, wildcard_cases[i].wildcard);
        net_addr_clear(&a);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_wildcard),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
