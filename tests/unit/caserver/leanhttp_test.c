/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leanhttp_test.c - unit tests of the strict OCSP request reader of `duet ca
 * serve`'s plain listener (src/caserver/leanhttp.c): the two requests it
 * reads and their fields, every prefix of them waiting for more, pipelined
 * requests read one at a time, and each thing it must pass on to evhttp
 * untouched (framing games, smuggling shapes, other endpoints, oversized
 * heads and bodies, HTTP/1.0 without keep-alive, obs-fold, bare LF/CR).
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

#include "caserver/leanhttp.h"

#define MAX_BODY 65536

static enum leanhttp_verdict
parse(const char *s, struct leanhttp_req *r)
{
    return caserver_leanhttp_parse((const uint8_t *)s, strlen(s), MAX_BODY, r);
}

/* Every proper prefix of s reads as MORE (then s is what the caller says). */
static void
prefixes_wait(const char *s, size_t upto)
{
    struct leanhttp_req r;

    for (size_t i = 0; i < upto; i++) {
        enum leanhttp_verdict v = caserver_leanhttp_parse((const uint8_t *)s, i, MAX_BODY, &r);
        if (v != LEANHTTP_MORE)
            fail_msg("prefix of %zu bytes of %s: verdict %d, expected MORE", i, s, (int)v);
    }
}

static void
test_post_read_with_its_body(void **state)
{
    const char *s = "POST /ocsp HTTP/1.1\r\nHost: ca\r\nContent-Type: application/ocsp-request\r\n"
                    "Content-Length: 5\r\n\r\nABCDE";
    struct leanhttp_req r;

    (void)state;
    assert_int_equal(parse(s, &r), LEANHTTP_OCSP);
    assert_true(r.post);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.target_len, 5);
    assert_memory_equal(r.target, "/ocsp", 5);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "ABCDE", 5);
    assert_int_equal(r.total, strlen(s));
    prefixes_wait(s, strlen(s));
}

static void
test_get_read_and_ab_style_http10_keep_alive(void **state)
{
    const char *g = "GET /ocsp/MEMwQTA%2FMD0wOzAJBgUrDgMCGgUABBQ= HTTP/1.1\r\nHost: ca\r\n\r\n";
    const char *ab = "POST /ocsp HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-length: 3\r\n"
                     "Content-type: application/ocsp-request\r\nHost: 127.0.0.1:1\r\n"
                     "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\nxyz";
    struct leanhttp_req r;

    (void)state;
    assert_int_equal(parse(g, &r), LEANHTTP_OCSP);
    assert_false(r.post);
    assert_null(r.body);
    assert_int_equal(r.total, strlen(g));
    assert_int_equal(r.target_len, strlen("/ocsp/MEMwQTA%2FMD0wOzAJBgUrDgMCGgUABBQ="));
    prefixes_wait(g, strlen(g));
    assert_int_equal(parse(ab, &r), LEANHTTP_OCSP);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.body_len, 3);
}

static void
test_pipelined_requests_read_one_at_a_time(void **state)
{
    const char *one = "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: 2\r\n\r\nhi";
    char two[512];
    struct leanhttp_req r;

    (void)state;
    snprintf(two, sizeof(two), "%sGET /crl HTTP/1.1\r\n\r\n", one);
    assert_int_equal(parse(two, &r), LEANHTTP_OCSP);
    assert_int_equal(r.total, strlen(one));
    /* What follows is the next request, read (here: passed on) from its own start. */
    assert_int_equal(parse(two + r.total, &r), LEANHTTP_PASS);
}

/* Each of these goes to evhttp unread. */
static void
test_passed_on(void **state)
{
    static const char *const pass[] = {
        /* other endpoints and methods */
        "GET /crl HTTP/1.1\r\n\r\n",
        "GET /roots.pem HTTP/1.1\r\n\r\n",
        "HEAD /ocsp HTTP/1.1\r\n\r\n",
        "PUT /ocsp HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        "POST /ocsp/x HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
        "Content-Length: 1\r\n\r\nx",
        "POST /ocspx HTTP/1.1\r\n\r\n",
        "GET /ocsp HTTP/1.1\r\n\r\n",
        "GET /ocsp/ HTTP/1.1\r\n\r\n",
        "GET /ocsp/abc?x=1 HTTP/1.1\r\n\r\n",
        "GET /ocsp/abc#f HTTP/1.1\r\n\r\n",
        "GET /ocsp/ab%zz HTTP/1.1\r\n\r\n",
        "GET /ocsp/ab% HTTP/1.1\r\n\r\n",
        "GET /ocsp/a b HTTP/1.1\r\n\r\n",
        "GET  /ocsp/abc HTTP/1.1\r\n\r\n",
        "get /ocsp/abc HTTP/1.1\r\n\r\n",
        "GET http://ca/ocsp/abc HTTP/1.1\r\n\r\n",
        /* versions */
        "GET /ocsp/abc HTTP/1.0\r\n\r\n",
        "GET /ocsp/abc HTTP/2.0\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1 \r\n\r\n",
        "GET /ocsp/abc\r\n\r\n",
        /* framing games */
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 2\r\n"
        "Content-Length: 2\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 2, 2"
        "\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: -2"
        "\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: +2"
        "\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 0"
        "\r\n\r\n",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
        "Content-Length: 99999999999999999999\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 65537"
        "\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
        "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n\r\n",
        "POST /ocsp HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Length : 2\r\nContent-Type: application/ocsp-request"
        "\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 2\r\n"
        " 3\r\n\r\nhi",
        "GET /ocsp/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nContent-Length: 4\r\n\r\nGET ",
        "GET /ocsp/abc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        /* other headers it does not handle */
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Type: "
        "application/ocsp-request\r\nContent-Length: 2\r\n\r\nhi",
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nExpect: 100-continue"
        "\r\nContent-Length: 2\r\n\r\nhi",
        "GET /ocsp/abc HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n",
        /* bytes outside the grammar */
        "GET /ocsp/abc HTTP/1.1\nHost: ca\n\n",
        "GET /ocsp/abc HTTP/1.1\r\nHost: ca\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nHost: c\ra\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nHost: ca\r\n folded\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nHo st: ca\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\n: ca\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nHost ca\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nX: \x01\r\n\r\n",
        "GET /ocsp/abc HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
        "\r\nGET /ocsp/abc HTTP/1.1\r\n\r\n",
    };
    struct leanhttp_req r;

    (void)state;
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        enum leanhttp_verdict v = parse(pass[i], &r);
        if (v != LEANHTTP_PASS)
            fail_msg("verdict %d, expected PASS, for: %s", (int)v, pass[i]);
    }
}

static void
test_nul_byte_and_oversized_head_passed_on(void **state)
{
    static const uint8_t nul[] = "GET /ocsp/abc HTTP/1.1\r\nX: a\0b\r\n\r\n";
    char *big = malloc(LEANHTTP_MAX_HEAD + 64);
    struct leanhttp_req r;
    int n;

    (void)state;
    assert_int_equal(caserver_leanhttp_parse(nul, sizeof(nul) - 1, MAX_BODY, &r), LEANHTTP_PASS);
    assert_non_null(big);
    n = snprintf(big, LEANHTTP_MAX_HEAD + 64, "GET /ocsp/abc HTTP/1.1\r\nX: ");
    memset(big + n, 'a', LEANHTTP_MAX_HEAD + 64 - (size_t)n);
    /* Without its end in the first LEANHTTP_MAX_HEAD bytes: passed on, not waited for. */
    assert_int_equal(caserver_leanhttp_parse((uint8_t *)big, LEANHTTP_MAX_HEAD - 1, MAX_BODY, &r),
                     LEANHTTP_MORE);
    assert_int_equal(caserver_leanhttp_parse((uint8_t *)big, LEANHTTP_MAX_HEAD, MAX_BODY, &r),
                     LEANHTTP_PASS);
    free(big);
}

static void
test_body_limit_is_the_callers(void **state)
{
    const char *s = "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
                    "Content-Length: 11\r\n\r\nhello world";
    struct leanhttp_req r;

    (void)state;
    assert_int_equal(caserver_leanhttp_parse((const uint8_t *)s, strlen(s), 10, &r), LEANHTTP_PASS);
    assert_int_equal(caserver_leanhttp_parse((const uint8_t *)s, strlen(s), 11, &r), LEANHTTP_OCSP);
    /* Body not all there yet: wait. */
    assert_int_equal(caserver_leanhttp_parse((const uint8_t *)s, strlen(s) - 1, 11, &r),
                     LEANHTTP_MORE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_read_with_its_body),
        cmocka_unit_test(test_get_read_and_ab_style_http10_keep_alive),
        cmocka_unit_test(test_pipelined_requests_read_one_at_a_time),
        cmocka_unit_test(test_passed_on),
        cmocka_unit_test(test_nul_byte_and_oversized_head_passed_on),
        cmocka_unit_test(test_body_limit_is_the_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
