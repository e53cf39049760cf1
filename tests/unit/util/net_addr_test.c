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

/* Each address, and whether it is loopback and whether it is every interface. */
static const struct {
    const char *in;
    bool loopback, wildcard;
} cases[] = {
    {"127.0.0.1:8443", true, false},
    {"127.1.2.3:8443", true, false},
    {"127.255.255.255:1", true, false},
    {"[::1]:8443", true, false},
    {"[0:0:0:0:0:0:0:1]:8443", true, false},
    {"[::0.0.0.1]:8443", true, false}, /* ::1 again, not IPv4-mapped */
    {"[::ffff:127.0.0.1]:8443", true, false},
    {"[::ffff:127.9.8.7]:8443", true, false},
    {"[::ffff:7f00:1]:8443", true, false},
    {"[0:0:0:0:0:ffff:127.0.0.1]:8443", true, false},
    {"unix:/run/duet.sock", true, false},
    {"0.0.0.0:8443", false, true},
    {"0:8443", false, true}, /* "0" resolves to 0.0.0.0 */
    {"[::]:8443", false, true},
    {"[0:0:0:0:0:0:0:0]:8443", false, true},
    {"[::ffff:0.0.0.0]:8443", false, true},
    {"[::ffff:0:0]:8443", false, true},
    {"[0:0:0:0:0:ffff:0.0.0.0]:8443", false, true},
    {"126.255.255.255:8443", false, false},
    {"128.0.0.1:8443", false, false},
    {"192.0.2.10:8443", false, false},
    {"[::2]:8443", false, false},
    {"[::ffff:0.0.0.1]:8443", false, false},
    {"[::ffff:128.0.0.1]:8443", false, false},
    {"[::ffff:192.0.2.10]:8443", false, false},
    {"[::127.0.0.1]:8443", false, false},        /* IPv4-compatible (deprecated), not mapped */
    {"[64:ff9b::127.0.0.1]:8443", false, false}, /* NAT64: another machine's 127.0.0.1 at best */
    {"[2001:db8::1]:8443", false, false},
};

static void
test_loopback_and_wildcard(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        struct net_addr a;

        if (net_addr_parse(cases[i].in, true, &a, &err) != 0)
            fail_msg("net_addr_parse(\"%s\"): %s", cases[i].in, err.msg);
        if (net_addr_is_loopback(&a) != cases[i].loopback ||
            net_addr_is_wildcard(&a) != cases[i].wildcard)
            fail_msg("\"%s\": loopback %d, every interface %d; want %d, %d", cases[i].in,
                     net_addr_is_loopback(&a), net_addr_is_wildcard(&a), cases[i].loopback,
                     cases[i].wildcard);
        net_addr_clear(&a);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_and_wildcard),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
