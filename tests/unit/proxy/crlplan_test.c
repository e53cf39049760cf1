/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlplan_test.c - unit tests of the pure parts of CRLs by URL
 * (src/proxy/crlplan.c): the http:// URL parser and its exact refusals, the
 * cache file names (stable, distinct, safe), and the refresh and retry
 * schedules with their jitter bounds.
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
#include "proxy/crlplan.h"

static void
test_url_good(void **state)
{
    static const struct {
        const char *in, *host, *path;
        int port;
    } t[] = {
        {"http://ca.example.com/crl", "ca.example.com", "/crl", 80},
        {"http://127.0.0.1:8080/issuing.crl", "127.0.0.1", "/issuing.crl", 8080},
        {"HTTP://ca:81", "ca", "/", 81},
        {"http://[::1]:9000/a/b?x=1", "::1", "/a/b?x=1", 9000},
        {"http://host?q", "host", "/?q", 80},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct crl_url u;
        struct duet_err e;
        err_clear(&e);
        assert_int_equal(crlplan_url_parse(t[i].in, &u, &e), 0);
        assert_string_equal(u.host, t[i].host);
        assert_string_equal(u.path, t[i].path);
        assert_int_equal(u.port, t[i].port);
    }
}

static void
test_url_refused(void **state)
{
    static const struct {
        const char *in, *msg;
    } t[] = {
        {"https://ca/crl", "CRL URL \"https://ca/crl\": https:// is not supported; a CRL is "
                           "signed by its CA, so duet fetches it over http://"},
        {"ldap://ca/cn=x", "CRL URL \"ldap://ca/cn=x\": expected http://HOST[:PORT]/PATH"},
        {"http://user@ca/crl",
         "CRL URL \"http://user@ca/crl\": user information (user@host) is not allowed"},
        {"http://ca:0/crl", "CRL URL \"http://ca:0/crl\": expected a port from 1 to 65535"},
        {"http://ca:99999/", "CRL URL \"http://ca:99999/\": expected a port from 1 to 65535"},
        {"http://ca:12x/", "CRL URL \"http://ca:12x/\": expected a port from 1 to 65535"},
        {"http:///crl", "CRL URL \"http:///crl\": expected a host after http://"},
        {"http://c a/", "CRL URL \"http://c a/\": only visible ASCII characters are allowed"},
        {"http://ca/crl#x", "CRL URL \"http://ca/crl#x\": a fragment (#...) is not allowed"},
        {"http://[::1/crl", "CRL URL \"http://[::1/crl\": an unterminated [IPv6] host"},
        {"http://[zz]/crl", "CRL URL \"http://[zz]/crl\": a malformed [IPv6] host"},
        {"http://c%41/", "CRL URL \"http://c%41/\": the host may only hold letters, digits, "
                         "'-', '.' and '_'"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct crl_url u;
        struct duet_err e;
        err_clear(&e);
        assert_int_equal(crlplan_url_parse(t[i].in, &u, &e), -1);
        assert_string_equal(e.msg, t[i].msg);
    }
}

static void
test_cache_name(void **state)
{
    char a[512], b[512], c[512];

    (void)state;
    assert_true(
        crlplan_cache_name("/var/cache/duet/crl", "http://ca.example.com/crl", a, sizeof(a)));
    assert_true(
        crlplan_cache_name("/var/cache/duet/crl", "http://ca.example.com/crl", b, sizeof(b)));
    assert_string_equal(a, b); /* a restart finds the same file */
    assert_int_equal(strncmp(a, "/var/cache/duet/crl/ca.example.com-", 35), 0);
    assert_int_equal(strlen(a), 35 + 16 + 4);
    assert_string_equal(a + strlen(a) - 4, ".crl");
    assert_true(
        crlplan_cache_name("/var/cache/duet/crl", "http://ca.example.com/crl2", c, sizeof(c)));
    assert_string_not_equal(a, c); /* another URL, another file */
    /* An IPv6 host keeps no ':' in the name; nothing leaves the directory. */
    assert_true(crlplan_cache_name("/d", "http://[::1]:8/x/../../y", c, sizeof(c)));
    assert_int_equal(strncmp(c, "/d/__1-", 7), 0);
    assert_null(strchr(c + 3, '/'));
    /* Too small a buffer is refused, not cut. */
    assert_false(crlplan_cache_name("/var/cache/duet/crl", "http://ca/crl", c, 20));
}

static void
test_refresh_delay(void **state)
{
    const int64_t tu = 1000000, nu = tu + 3000; /* 3000 s of validity */
    const int64_t cap = 86400000;

    (void)state;
    /* At 2/3 of the validity, +/- a tenth of it. */
    assert_int_equal(crlplan_refresh_delay_ms(tu * 1000, tu, nu, cap, 0.5), 2000000);
    assert_int_equal(crlplan_refresh_delay_ms(tu * 1000, tu, nu, cap, 0.0), 1700000);
    for (double u = 0.0; u < 1.0; u += 0.01) {
        int64_t d = crlplan_refresh_delay_ms(tu * 1000, tu, nu, cap, u);
        assert_true(d >= 1700000 && d <= 2300000);
        assert_true(tu * 1000 + d < nu * 1000); /* always before nextUpdate */
    }
    /* Capped by --crl-refresh, minus up to a tenth of it. */
    for (double u = 0.0; u < 1.0; u += 0.01) {
        int64_t d = crlplan_refresh_delay_ms(tu * 1000, tu, nu, 60000, u);
        assert_true(d > 54000 && d <= 60000);
    }
    /* Late (or a CRL already past 2/3): soon, but not at once. */
    assert_int_equal(crlplan_refresh_delay_ms((tu + 2900) * 1000, tu, nu, cap, 0.5), 1000);
    assert_int_equal(crlplan_refresh_delay_ms((nu + 10) * 1000, tu, nu, cap, 0.5), 1000);
    /* A 1 s cap (the tests'): never under a second. */
    assert_int_equal(crlplan_refresh_delay_ms(tu * 1000, tu, nu, 1000, 0.99), 1000);
    /* No validity: the cap. */
    assert_int_equal(crlplan_refresh_delay_ms(tu * 1000, tu, tu, 60000, 0.0), 60000);
}

static void
test_retry_delay(void **state)
{
    (void)state;
    assert_int_equal(crlplan_retry_delay_ms(1, 3600000, 0.5), 1000);
    assert_int_equal(crlplan_retry_delay_ms(2, 3600000, 0.5), 2000);
    assert_int_equal(crlplan_retry_delay_ms(5, 3600000, 0.5), 16000);
    assert_int_equal(crlplan_retry_delay_ms(40, 3600000, 0.5), 300000); /* 5 min at most */
    assert_int_equal(crlplan_retry_delay_ms(40, 60000, 0.5), 60000);    /* the cap */
    for (double u = 0.0; u < 1.0; u += 0.01) {
        int64_t d = crlplan_retry_delay_ms(3, 3600000, u);
        assert_true(d >= 3200 && d <= 4800);
    }
    assert_int_equal(crlplan_retry_delay_ms(1, 100, 0.0), 500); /* never a busy loop */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_good),    cmocka_unit_test(test_url_refused),
        cmocka_unit_test(test_cache_name),  cmocka_unit_test(test_refresh_delay),
        cmocka_unit_test(test_retry_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
