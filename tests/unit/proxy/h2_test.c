/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2_test.c - unit tests of HTTP/2 mode's request side without a socket
 * (src/proxy/h2.c): a stream's fields added one by one as nghttp2 hands them
 * over (h2_request_add: RFC 9113 8.2/8.3 refusals with their words, the
 * header list bound), then decided (h2_decide: malformed requests, the policy
 * as for HTTP/1.1, and the exact HTTP/1.1 head the upstream receives: Host
 * from :authority, the framing the proxy chose, Cookie fields joined, the
 * identity header replacing a forged one).
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
#include "lib/identity.h"
#include "lib/policy.h"
#include "proxy/h2.h"
#include "proxy/http.h"

#define ALICE_URI "spiffe://corp/alice"
#define ALICE_XFCC "Hash=aa;Subject=\"CN=alice\";URI=" ALICE_URI
#define CLIENT_IP "192.0.2.7"
#define ADDED                                                                                     \
    "X-Forwarded-Client-Cert: " ALICE_XFCC "\r\n"                                               \
    "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\nX-Real-IP: " CLIENT_IP "\r\n"  \
    "Forwarded: for=" CLIENT_IP ";proto=https\r\n\r\n"

static struct identity_san alice_san = {DUET_SAN_URI, (char *)ALICE_URI};
static struct duet_identity alice;

static void
listener_setup(struct listener_cfg *l)
{
    const char *const any[] = {"any"};
    const char *const a[] = {"uri:" ALICE_URI};
    const char *const read[] = {"GET", "HEAD", "POST", "OPTIONS"};
    struct duet_err err;

    memset(l, 0, sizeof(*l));
    l->name = (char *)"api";
    l->mode = MODE_HTTP;
    l->xfcc = XFCC_SANITIZE;
    l->forwarded = HTTP_FWD_SET;
    assert_int_equal(policy_add_rule(&l->policy, "no-admin", false, any, 1, NULL, 0, NULL,
                                     NULL,
                                     "/api/admin", &err),
                     0);
    assert_int_equal(policy_add_rule(&l->policy, "alice-api", true, a, 1, read, 4, NULL, NULL, "/api/",
                                     &err),
                     0);
}

/* --- h2_request_add: one field at a time ---------------------------------------------------- */

struct fcase {
    const char *name;
    const char *fields[8][2]; /* added in order until a NULL name */
    const char *refusal;      /* NULL: all accepted; else words of the refusal */
};

static struct fcase fcases[] = {
    {"a good request",
     {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"accept", "*/*"}},
     NULL},
    {"upper case in a name", {{":method", "GET"}, {"X-Upper", "1"}}, "upper case in a name"},
    {"a name that is not a token", {{":method", "GET"}, {"a b", "1"}}, "not a token"},
    {"connection", {{":method", "GET"}, {"connection", "close"}}, "connection-specific"},
    {"keep-alive", {{"keep-alive", "5"}}, "connection-specific"},
    {"proxy-connection", {{"proxy-connection", "x"}}, "connection-specific"},
    {"transfer-encoding", {{"transfer-encoding", "chunked"}}, "connection-specific"},
    {"upgrade", {{"upgrade", "h2c"}}, "connection-specific"},
    {"te: trailers is fine", {{"te", "trailers"}}, NULL},
    {"te: gzip", {{"te", "gzip"}}, "only \"trailers\""},
    {"pseudo-header after a regular one", {{"accept", "*/*"}, {":path", "/"}},
     ":path after a regular field"},
    {"repeated :method", {{":method", "GET"}, {":method", "POST"}}, ":method repeated"},
    {"unknown pseudo-header", {{":protocol", "websocket"}}, "expected :method, :scheme"},
    {":status in a request", {{":status", "200"}}, "expected :method, :scheme"},
    {"LF in a value", {{"x-a", "a\nb"}}, "CR, LF or NUL"},
    {"CR in a pseudo-header", {{":path", "/a\rb"}}, "CR, LF or NUL"},
    {"white space around a value", {{"x-a", " a"}}, "white space around"},
    {"an empty name", {{"", "a"}}, "empty name"},
    {"a control byte in a value", {{"x-a", "a\x17" "b"}}, "a control character in its value"},
    {"DEL in a value", {{"x-a", "a\x7f"}}, "a control character in its value"},
    {"obs-text and a tab are fine", {{"x-a", "caf\xc3\xa9\tok"}}, NULL},
    {"a space in :path", {{":path", "/a b"}}, "not visible ASCII"},
    {"a byte above 0x7e in :path", {{":path", "/caf\xc3\xa9"}}, "not visible ASCII"},
};

static void
run_field(void **state)
{
    const struct fcase *c = *state;
    struct h2_request r;
    int rv = 0;

    memset(&r, 0, sizeof(r));
    r.max_bytes = 16384;
    for (size_t i = 0; i < 8 && c->fields[i][0] != NULL && rv == 0; i++)
        rv = h2_request_add(&r, (const uint8_t *)c->fields[i][0], strlen(c->fields[i][0]),
                            (const uint8_t *)c->fields[i][1], strlen(c->fields[i][1]));
    if (c->refusal == NULL) {
        if (rv != 0)
            fail_msg("refused: %s", r.err.msg);
    } else {
        assert_int_equal(rv, -1);
        if (strstr(r.err.msg, c->refusal) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", r.err.msg, c->refusal);
    }
    h2_request_clear(&r);
}

/* The header list bound counts every field (RFC 9113 6.5.2) and keeps nothing past it. */
static void
test_list_bound(void **state)
{
    struct h2_request r;
    char name[16];

    (void)state;
    memset(&r, 0, sizeof(r));
    r.max_bytes = 1000;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "x-%d", i);
        assert_int_equal(h2_request_add(&r, (const uint8_t *)name, strlen(name),
                                        (const uint8_t *)"0123456789", 10),
                         0);
    }
    assert_true(r.too_large);
    assert_true(r.rd.nhdrs < 30); /* what came past the bound was not kept */
    assert_true(r.list_bytes > 1000);
    h2_request_clear(&r);
}

/* --- h2_decide ------------------------------------------------------------------------------ */

struct dcase {
    const char *name;
    const char *fields[10][2];
    bool body_follows;
    int malformed;       /* 1: h2_decide refuses (RST_STREAM PROTOCOL_ERROR) */
    int status;          /* else the decision's status (0: forwarded) */
    const char *rule;    /* the deciding rule, when the policy was asked */
    const char *want;    /* the forwarded head, or words of the refusal */
};

#define GET_API(path) {":method", "GET"}, {":scheme", "https"}, {":authority", "api.corp"}, \
                      {":path", path}

static struct dcase dcases[] = {
    {"a GET forwarded as HTTP/1.1, forged identity dropped",
     {GET_API("/api/./x/../items?q=1"), {"accept", "*/*"},
      {"x-forwarded-client-cert", "URI=spiffe://corp/admin"}, {"x_forwarded_client_cert", "x"}},
     false, 0, 0, "alice-api",
     "GET /api/items?q=1 HTTP/1.1\r\nHost: api.corp\r\naccept: */*\r\n" ADDED},
    {"denied by a path rule after normalising", {GET_API("/api/x/../admin/keys")}, false, 0, 403,
     "no-admin", "denied by rule no-admin"},
    {"no rule matches", {GET_API("/other")}, false, 0, 403, "default-deny", NULL},
    {"a POST with content-length keeps it",
     {{":method", "POST"}, {":scheme", "https"}, {":authority", "api.corp"}, {":path", "/api/u"},
      {"content-length", "5"}},
     true, 0, 0, "alice-api",
     "POST /api/u HTTP/1.1\r\nHost: api.corp\r\nContent-Length: 5\r\n" ADDED},
    {"a POST without content-length goes chunked",
     {{":method", "POST"}, {":scheme", "https"}, {":authority", "api.corp"}, {":path", "/api/u"}},
     true, 0, 0, "alice-api",
     "POST /api/u HTTP/1.1\r\nHost: api.corp\r\nTransfer-Encoding: chunked\r\n" ADDED},
    {"cookies joined", {GET_API("/api/c"), {"cookie", "a=1"}, {"x-b", "2"}, {"cookie", "c=3"}},
     false, 0, 0, "alice-api",
     "GET /api/c HTTP/1.1\r\nHost: api.corp\r\ncookie: a=1; c=3\r\nx-b: 2\r\n" ADDED},
    {"host alone, no :authority",
     {{":method", "GET"}, {":scheme", "https"}, {":path", "/api/h"}, {"host", "api.corp"}},
     false, 0, 0, "alice-api", "GET /api/h HTTP/1.1\r\nHost: api.corp\r\n" ADDED},
    {":authority and host disagree", {GET_API("/api/x"), {"host", "evil.corp"}}, false, 1, 0,
     NULL, "name different hosts"},
    {"missing :path", {{":method", "GET"}, {":scheme", "https"}, {":authority", "api.corp"}},
     false, 1, 0, NULL, "no :path"},
    {"missing :method", {{":scheme", "https"}, {":path", "/api/"}}, false, 1, 0, NULL,
     "no :method"},
    {"missing :scheme", {{":method", "GET"}, {":path", "/api/"}}, false, 1, 0, NULL,
     "no :scheme"},
    {":path without a slash", {GET_API("api/x")}, false, 1, 0, NULL, "must start with '/'"},
    {"OPTIONS *", {{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "api.corp"},
                   {":path", "*"}},
     false, 0, 403, "default-deny", NULL},
    {"GET *", {GET_API("*")}, false, 1, 0, NULL, "must start with '/'"},
    {"content-length but the stream ended", {GET_API("/api/x"), {"content-length", "10"}}, false,
     1, 0, NULL, "ended with no DATA"},
    {"two content-lengths", {GET_API("/api/x"), {"content-length", "1"},
                             {"content-length", "2"}},
     true, 0, 400, NULL, "Content-Length"},
    {"an unknown method", {{":method", "BREW"}, {":scheme", "https"}, {":authority", "api.corp"},
                           {":path", "/api/"}},
     false, 0, 400, NULL, "unknown method"},
    {"CONNECT", {{":method", "CONNECT"}, {":authority", "api.corp:443"}}, false, 0, 400, NULL,
     "CONNECT"},
    {"no host at all", {{":method", "GET"}, {":scheme", "https"}, {":path", "/api/"}}, false, 0,
     400, NULL, "Host"},
};

static void
run_decide(void **state)
{
    const struct dcase *c = *state;
    struct listener_cfg l;
    struct h2_request r;
    struct h2_context ctx;
    struct http_decision d;
    struct duet_err err;
    int rv;

    listener_setup(&l);
    memset(&r, 0, sizeof(r));
    r.max_bytes = 16384;
    for (size_t i = 0; i < 10 && c->fields[i][0] != NULL; i++)
        assert_int_equal(h2_request_add(&r, (const uint8_t *)c->fields[i][0],
                                        strlen(c->fields[i][0]),
                                        (const uint8_t *)c->fields[i][1],
                                        strlen(c->fields[i][1])),
                         0);
    memset(&ctx, 0, sizeof(ctx));
    ctx.l = &l;
    ctx.id = &alice;
    ctx.id_xfcc = ALICE_XFCC;
    ctx.client_ip = CLIENT_IP;
    ctx.body_follows = c->body_follows;
    rv = h2_decide(&r, &ctx, &d, &err);
    if (c->malformed) {
        assert_int_equal(rv, -1);
        if (strstr(err.msg, c->want) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", err.msg, c->want);
    } else {
        assert_int_equal(rv, 0);
        if (d.status != c->status)
            fail_msg("status %d, expected %d (%s)", d.status, c->status, d.err.msg);
        if (c->rule != NULL) {
            assert_true(d.decided);
            assert_string_equal(d.d.rule, c->rule);
        } else {
            assert_false(d.decided);
        }
        if (c->status == 0) {
            assert_non_null(d.head);
            assert_string_equal(d.head, c->want);
        } else if (c->want != NULL && strstr(d.err.msg, c->want) == NULL) {
            fail_msg("reason \"%s\" lacks \"%s\"", d.err.msg, c->want);
        }
    }
    http_decision_clear(&d);
    h2_request_clear(&r);
    policy_clear(&l.policy);
}

int
main(void)
{
    enum { NF = sizeof(fcases) / sizeof(fcases[0]), ND = sizeof(dcases) / sizeof(dcases[0]) };
    static char names[NF + ND + 1][128];
    struct CMUnitTest tests[NF + ND + 1];
    size_t n = 0;

    alice.name = (char *)ALICE_URI;
    alice.subject = (char *)"CN=alice";
    alice.nsans = 1;
    alice.sans = &alice_san;
    for (size_t i = 0; i < NF; i++, n++) {
        snprintf(names[n], sizeof(names[n]), "h2 field: %s", fcases[i].name);
        tests[n] = (struct CMUnitTest){
            .name = names[n], .test_func = run_field, .initial_state = &fcases[i]};
    }
    for (size_t i = 0; i < ND; i++, n++) {
        snprintf(names[n], sizeof(names[n]), "h2 decide: %s", dcases[i].name);
        tests[n] = (struct CMUnitTest){
            .name = names[n], .test_func = run_decide, .initial_state = &dcases[i]};
    }
    tests[n++] = (struct CMUnitTest){.name = "h2: header list bound", .test_func = test_list_bound};
    return _cmocka_run_group_tests("h2", tests, n, NULL, NULL);
}
