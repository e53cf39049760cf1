/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2up_test.c - unit tests of the HTTP/2 request an HTTP/2 upstream receives
 * (src/proxy/h2uphead.c, h2up_fields_make): from the HTTP/1.1 head
 * http_decide() rebuilt, the exact field list in order (pseudo-headers first,
 * Host as :authority, names in lower case, the identity header as decided,
 * connection-specific fields and the proxy's HTTP/1.1 framing gone, te:
 * trailers when the client asked), and the refusal of what is not a head.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "proxy/h2up.h"

struct hcase {
    const char *name;
    const char *head;
    bool tls, te;
    const char *want[16][2]; /* the fields in order, until a NULL name */
    const char *refusal;     /* non-NULL: the words of the refusal */
};

static struct hcase hcases[] = {
    {"a gRPC call with the identity set and the framing dropped",
     "POST /pkg.Echo/Unary HTTP/1.1\r\nHost: api:8443\r\ncontent-type: application/grpc\r\n"
     "grpc-timeout: 5S\r\nTransfer-Encoding: chunked\r\n"
     "X-Forwarded-Client-Cert: URI=spiffe://corp/alice\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n",
     false, true,
     {{":method", "POST"}, {":scheme", "http"}, {":path", "/pkg.Echo/Unary"},
      {":authority", "api:8443"}, {"content-type", "application/grpc"},
      {"grpc-timeout", "5S"}, {"x-forwarded-client-cert", "URI=spiffe://corp/alice"},
      {"x-forwarded-for", "192.0.2.7"}, {"te", "trailers"}},
     NULL},
    {"h2 over TLS is https; content-length stays; no te unless asked",
     "PUT /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", true, false,
     {{":method", "PUT"}, {":scheme", "https"}, {":path", "/a?b=1"}, {":authority", "x"},
      {"content-length", "3"}},
     NULL},
    {"connection-specific fields never reach HTTP/2",
     "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nKeep-Alive: 5\r\nUpgrade: h2c\r\n"
     "Proxy-Connection: x\r\nTE: gzip\r\nAccept: */*\r\n\r\n",
     false, false,
     {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"},
      {"accept", "*/*"}},
     NULL},
    {"no request line", "GET\r\n\r\n", false, false, {{NULL, NULL}},
     "cannot read the request head"},
    {"a field without a colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", false, false, {{NULL, NULL}},
     "cannot read the request head"},
    {"no empty line", "GET / HTTP/1.1\r\nHost: x\r\n", false, false, {{NULL, NULL}},
     "cannot read the request head"},
};

static void
run_head(void **state)
{
    const struct hcase *c = *state;
    struct h2up_fields f;
    struct duet_err err;
    size_t n = 0;
    int rv = h2up_fields_make(c->head, strlen(c->head), c->tls, c->te, &f, &err);

    if (c->refusal != NULL) {
        assert_int_equal(rv, -1);
        if (strstr(err.msg, c->refusal) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", err.msg, c->refusal);
        return;
    }
    assert_int_equal(rv, 0);
    while (n < 16 && c->want[n][0] != NULL)
        n++;
    for (size_t i = 0; i < f.n && i < n; i++) {
        char name[128], value[256];
        snprintf(name, sizeof(name), "%.*s", (int)f.nv[i].namelen, (const char *)f.nv[i].name);
        snprintf(value, sizeof(value), "%.*s", (int)f.nv[i].valuelen,
                 (const char *)f.nv[i].value);
        assert_string_equal(name, c->want[i][0]);
        assert_string_equal(value, c->want[i][1]);
    }
    assert_int_equal(f.n, n);
    h2up_fields_clear(&f);
}

int
main(void)
{
    struct CMUnitTest tests[sizeof(hcases) / sizeof(hcases[0])];

    for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++)
        tests[i] = (struct CMUnitTest){hcases[i].name, run_head, NULL, NULL, &hcases[i]};
    return _cmocka_run_group_tests("h2up", tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
