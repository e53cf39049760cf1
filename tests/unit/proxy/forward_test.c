/* SPDX-License-Identifier: Apache-2.0 */
/*
 * forward_test.c - unit tests of HTTP/1 mode's request decision
 * (forward_decide() in src/proxy/forward.c) without a socket: a request head
 * is read as the proxy reads it (the strict scanner, then http-parser with
 * the reader's callbacks) and decided against a listener's configuration
 * (its rules, its X-Forwarded-Client-Cert and forwarding modes) for a client
 * identity.  Each case asserts the decision (status, deciding rule or the
 * refusal's words, whether it is a WebSocket upgrade) and, when the request
 * is forwarded, the exact head bytes the upstream receives.
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
#include "proxy/http.h"
#include "proxy/proxy_int.h"

#define ALICE_URI "spiffe://corp/alice"
#define ALICE_XFCC "Hash=aa;Subject=\"CN=alice\";URI=" ALICE_URI
#define CLIENT_IP "192.0.2.7"
/* What the proxy adds after the client's headers: identity, then forwarding (mode set). */
#define ADDED                                                                                     \
    "X-Forwarded-Client-Cert: " ALICE_XFCC "\r\n"                                               \
    "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\nX-Real-IP: " CLIENT_IP "\r\n"  \
    "Forwarded: for=" CLIENT_IP ";proto=https\r\n\r\n"

static struct identity_san alice_san = {DUET_SAN_URI, (char *)ALICE_URI};
static struct duet_identity alice;

/* A head read as the proxy reads it, stopped when its headers are complete. */
struct head {
    struct http_reader rd;
    http_parser p;
    bool done;
};

static int
on_headers_complete(http_parser *p)
{
    ((struct head *)((struct http_reader *)p->data)->owner)->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = http_reader_on_url,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = on_headers_complete,
};

static void
head_read(struct head *h, const char *bytes)
{
    size_t used = 0;
    int status = 0;
    struct duet_err err;

    memset(h, 0, sizeof(*h));
    h->rd.owner = h;
    h->rd.max_head = 16384;
    http_scan_init(&h->rd.scan, 16384);
    assert_int_equal(http_scan_feed(&h->rd.scan, bytes, strlen(bytes), &used, &status, &err), 1);
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = &h->rd;
    http_parser_execute(&h->p, &settings, bytes, used);
    assert_true(h->done);
}

/*
 * The listener: "no-admin" denies everyone under /api/admin, "alice-read"
 * lets alice GET and HEAD under /api/; anything else falls to default-deny.
 */
static void
listener_setup(struct listener_cfg *l, enum xfcc_mode xfcc, enum http_fwd_mode fwd)
{
    const char *const any[] = {"any"};
    const char *const a[] = {"uri:" ALICE_URI};
    const char *const read[] = {"GET", "HEAD"};
    struct duet_err err;

    memset(l, 0, sizeof(*l));
    l->name = (char *)"api";
    l->mode = MODE_HTTP;
    l->xfcc = xfcc;
    l->forwarded = fwd;
    assert_int_equal(policy_add_rule(&l->policy, "no-admin", false, any, 1, NULL, 0, NULL,
                                     NULL,
                                     "/api/admin", &err),
                     0);
    assert_int_equal(policy_add_rule(&l->policy, "alice-read", true, a, 1, read, 2, NULL,
                                     NULL,
                                     "/api/", &err),
                     0);
}

struct fcase {
    const char *name;
    enum xfcc_mode xfcc;
    enum http_fwd_mode fwd;
    bool anonymous; /* no client certificate */
    const char *in;
    int status;       /* 0: forwarded */
    const char *rule; /* the deciding rule, when the policy was asked */
    const char *want; /* the forwarded head (status 0) or the refusal's words */
    bool websocket;   /* the request is a WebSocket upgrade (d.req.upgrade), allowed or not */
};

#define WS_ASK                                                                                    \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                  \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

static struct fcase fcases[] = {
    {"allowed request", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items?id=7 HTTP/1.1\r\nHost: api.corp\r\nAccept: */*\r\n\r\n", 0, "alice-read",
     "GET /api/items?id=7 HTTP/1.1\r\nHost: api.corp\r\nAccept: */*\r\n" ADDED},
    {"path normalised before the rules", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/./v1//items HTTP/1.1\r\nHost: api.corp\r\n\r\n", 0, "alice-read",
     "GET /api/v1/items HTTP/1.1\r\nHost: api.corp\r\n" ADDED},
    {"denied by a path rule", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/admin/users HTTP/1.1\r\nHost: api.corp\r\n\r\n", 403, "no-admin", NULL},
    {"denied by a path rule after normalising", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items/../admin/users HTTP/1.1\r\nHost: api.corp\r\n\r\n", 403, "no-admin", NULL},
    {"denied by the method", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "DELETE /api/items HTTP/1.1\r\nHost: api.corp\r\n\r\n", 403, "default-deny", NULL},
    {"denied without a certificate", XFCC_SANITIZE, HTTP_FWD_SET, true,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n\r\n", 403, "default-deny", NULL},
    {"client's identity headers removed, the proxy's added", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n"
     "X-Forwarded-Client-Cert: URI=spiffe://corp/root\r\n"
     "x_forwarded_client_cert: URI=spiffe://corp/root\r\n"
     "X-Forwarded-For: 10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX-Trace: 1\r\n\r\n",
     0, "alice-read", "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nX-Trace: 1\r\n" ADDED},
    {"append_forward keeps the client's element first", XFCC_APPEND_FORWARD, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nX-Forwarded-Client-Cert: By=up\r\n\r\n", 0,
     "alice-read",
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n"
     "X-Forwarded-Client-Cert: By=up," ALICE_XFCC "\r\n"
     "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\nX-Real-IP: " CLIENT_IP "\r\n"
     "Forwarded: for=" CLIENT_IP ";proto=https\r\n\r\n"},
    {"framing and Host rebuilt", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nhost:  api.corp \r\ncontent-length: 0\r\n\r\n", 0, "alice-read",
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nContent-Length: 0\r\n" ADDED},
    {"malformed framing: chunked in HTTP/1.0", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.0\r\nHost: api.corp\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     NULL, "Transfer-Encoding"},
    {"malformed framing: Connection names Content-Length", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nConnection: content-length\r\n"
     "Content-Length: 0\r\n\r\n",
     400, NULL, "Connection may not name"},
    {"malformed framing: Content_Length look-alike", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nContent_Length: 5\r\n\r\n", 400, NULL,
     "Content_Length"},
    {"two Host headers", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nHost: evil.corp\r\n\r\n", 400, NULL, "Host"},
    /* Upgrades: a WebSocket one meets the rules like any request; others are taken out. */
    {"websocket upgrade allowed, identity header replaced", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/live HTTP/1.1\r\nHost: api.corp\r\n" WS_ASK
     "X-Forwarded-Client-Cert: URI=spiffe://corp/root\r\n\r\n",
     0, "alice-read",
     "GET /api/live HTTP/1.1\r\nHost: api.corp\r\nSec-WebSocket-Version: 13\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     ADDED,
     true},
    {"websocket upgrade denied by a path rule", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/admin/live HTTP/1.1\r\nHost: api.corp\r\n" WS_ASK "\r\n", 403, "no-admin", NULL,
     true},
    {"websocket upgrade denied without a certificate", XFCC_SANITIZE, HTTP_FWD_SET, true,
     "GET /api/live HTTP/1.1\r\nHost: api.corp\r\n" WS_ASK "\r\n", 403, "default-deny", NULL,
     true},
    {"websocket upgrade with POST refused before the rules", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "POST /api/live HTTP/1.1\r\nHost: api.corp\r\n" WS_ASK "\r\n", 400, NULL,
     "a WebSocket upgrade must be a GET request (RFC 6455 4.1), not POST"},
    {"websocket upgrade with a body refused before the rules", XFCC_SANITIZE, HTTP_FWD_SET,
     false, "GET /api/live HTTP/1.1\r\nHost: api.corp\r\n" WS_ASK "Content-Length: 5\r\n\r\n",
     400, NULL, "a WebSocket upgrade request may not have a body"},
    {"h2c upgrade taken out", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nUpgrade: h2c\r\n"
     "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
     0, "alice-read", "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n" ADDED},
    {"Upgrade without Connection: upgrade taken out", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nUpgrade: websocket\r\n\r\n", 0,
     "alice-read", "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n" ADDED},
    {"Connection: upgrade without Upgrade taken out", XFCC_SANITIZE, HTTP_FWD_SET, false,
     "GET /api/items HTTP/1.1\r\nHost: api.corp\r\nConnection: upgrade\r\n\r\n", 0,
     "alice-read", "GET /api/items HTTP/1.1\r\nHost: api.corp\r\n" ADDED},
};

static void
run_forward(void **state)
{
    const struct fcase *c = *state;
    struct listener_cfg l;
    struct head h;
    struct http_decision d;
    const struct duet_identity *id = c->anonymous ? NULL : &alice;

    listener_setup(&l, c->xfcc, c->fwd);
    head_read(&h, c->in);
    forward_decide(&l, id, id != NULL ? ALICE_XFCC : NULL, CLIENT_IP, &h.rd, &h.p, &d);
    if (d.status != c->status)
        fail_msg("status %d, expected %d (%s)", d.status, c->status, d.err.msg);
    if (c->rule != NULL) {
        assert_true(d.decided);
        assert_string_equal(d.d.rule, c->rule);
        assert_int_equal(d.d.allow, c->status == 0);
    } else {
        assert_false(d.decided); /* refused before the policy was asked */
    }
    assert_int_equal(d.req.upgrade, c->websocket ? HTTP_UPGRADE_WEBSOCKET : HTTP_UPGRADE_NONE);
    if (c->status == 0) {
        assert_non_null(d.head);
        assert_string_equal(d.head, c->want);
        assert_int_equal(d.head_len, strlen(c->want));
    } else {
        assert_null(d.head);
        if (c->want != NULL && strstr(d.err.msg, c->want) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", d.err.msg, c->want);
    }
    http_decision_clear(&d);
    http_reader_clear(&h.rd);
    policy_clear(&l.policy);
}

int
main(void)
{
    enum { N = sizeof(fcases) / sizeof(fcases[0]) };
    static char names[N][128];
    struct CMUnitTest tests[N];

    alice.name = (char *)ALICE_URI;
    alice.subject = (char *)"CN=alice";
    alice.nsans = 1;
    alice.sans = &alice_san;
    /* One named test per case, so that TAP reports each. */
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "forward: %s", fcases[i].name);
        tests[i] = (struct CMUnitTest){
            .name = names[i], .test_func = run_forward, .initial_state = &fcases[i]};
    }
    return _cmocka_run_group_tests("forward", tests, N, NULL, NULL);
}
