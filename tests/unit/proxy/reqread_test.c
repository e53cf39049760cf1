/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reqread_test.c - unit tests of the strict request-head scanner
 * (src/proxy/reqread.c): a table of heads, each fed whole and then one byte
 * at a time, with the verdict, the status and the words of the refusal; and
 * the scanner stopping at the last byte of a head followed by a body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "proxy/reqread.h"


struct scase {
    const char *name;
    const char *in;
    int want;        /* 1 complete, 0 more, -1 refused */
    int status;      /* when refused */
    const char *msg; /* a part of the message, when refused */
};

static struct scase scases[] = {
    {"minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0, NULL},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0, NULL},
    {"http/1.0 no headers", "GET / HTTP/1.0\r\n\r\n", 1, 0, NULL},
    {"value with tab, obs-text", "GET / HTTP/1.1\r\nX-A:\t\xff v \r\n\r\n", 1, 0, NULL},
    {"empty value", "GET / HTTP/1.1\r\nX-A:\r\n\r\n", 1, 0, NULL},
    {"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", 0, 0, NULL},
    {"space before colon", "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", -1, 400,
     "followed directly by ':'"},
    {"leading space on a field line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -1, 400,
     "obsolete line folding"},
    {"folded value", "GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", -1, 400, "obsolete line folding"},
    {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", -1, 400, "found LF"},
    {"bare CR in a value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", -1, 400, "expected LF"},
    {"control in a value", "GET / HTTP/1.1\r\nX-A: a\x01"
                           "b\r\n\r\n", -1, 400, "byte 0x01"},
    {"DEL in a value", "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", -1, 400, "byte 0x7f"},
    {"control in a name", "GET / HTTP/1.1\r\nX\x01: a\r\n\r\n", -1, 400, "a token"},
    {"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", -1, 400, "a header name"},
    {"two spaces in the request line", "GET  / HTTP/1.1\r\n\r\n", -1, 400, "request target"},
    {"HTTP/0.9 request line", "GET /\r\n\r\n", -1, 400, "HTTP/1.1"},
    {"lower-case version", "GET / http/1.1\r\n\r\n", -1, 400, "HTTP/x.y"},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", -1, 505, "HTTP/2.0 is not supported"},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", -1, 505, "HTTP/1.2"},
    {"HTTP/0.9 spelled", "GET / HTTP/0.9\r\n\r\n", -1, 505, "HTTP/0.9"},
    {"two-digit version", "GET / HTTP/11.1\r\n\r\n", -1, 400, "HTTP/x.y"},
    {"space in the method", "G T / HTTP/1.1\r\n\r\n", -1, 400, "HTTP/x.y"},
    {"tab in the target", "GET /a\tb HTTP/1.1\r\n\r\n", -1, 400, "a tab"},
    {"too large",
     "GET / HTTP/1.1\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
     -1, 431, "larger than 100 bytes"},
};

static void
run_scan(void **state)
{
    const struct scase *c = *state;
    struct http_scan s;
    struct duet_err err;
    size_t used = 0, n = strlen(c->in);
    int status = 0, r;

    /* Whole, then one byte at a time: the same verdict at the same byte. */
    http_scan_init(&s, 100);
    err_clear(&err);
    r = http_scan_feed(&s, c->in, n, &used, &status, &err);
    assert_int_equal(r, c->want);
    if (r < 0) {
        assert_int_equal(status, c->status);
        if (strstr(err.msg, c->msg) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, c->msg);
    } else if (r == 1) {
        assert_int_equal(used, n);
    }
    http_scan_init(&s, 100);
    for (size_t i = 0; i < n; i++) {
        int status1 = 0;
        size_t used1 = 0;
        int r1 = http_scan_feed(&s, c->in + i, 1, &used1, &status1, &err);
        if (r1 != 0) {
            assert_int_equal(r1, c->want);
            assert_int_equal(status1, c->status);
            if (r1 == 1)
                assert_int_equal(i + 1, n);
            return;
        }
    }
    assert_int_equal(c->want, 0);
}

/* A head followed by a body: the scanner stops at the head's last byte. */
static void
test_scan_stops_at_head_end(void **state)
{
    static const char in[] = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
    struct http_scan s;
    struct duet_err err;
    size_t used = 0;
    int status = 0;

    (void)state;
    http_scan_init(&s, 16384);
    assert_int_equal(http_scan_feed(&s, in, sizeof(in) - 1, &used, &status, &err), 1);
    assert_int_equal(used, sizeof(in) - 1 - strlen("abcGET"));
}

int
main(void)
{
    enum { NS = sizeof(scases) / sizeof(scases[0]) };
    static char snames[NS][96];
    struct CMUnitTest tests[NS + 1];
    size_t n = 0;

    for (size_t i = 0; i < NS; i++) {
        snprintf(snames[i], sizeof(snames[i]), "scan: %s", scases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = snames[i], .test_func = run_scan, .initial_state = &scases[i]};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_scan_stops_at_head_end);
    return _cmocka_run_group_tests("reqread", tests, n, NULL, NULL);
}
