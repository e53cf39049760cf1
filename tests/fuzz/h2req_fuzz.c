/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2req_fuzz.c - libFuzzer target for the proxy's HTTP/2 request path: a
 * stream's fields as nghttp2 hands them over (h2_request_add, the RFC 9113
 * 8.2/8.3 checks), then the decision (h2_decide -> http_decide: the same
 * normalisation, policy and upstream head as HTTP/1.1).
 *
 * The property is differential, not "does not crash": whenever a stream is
 * forwarded, the HTTP/1.1 head it becomes, read again by the strict scanner
 * and by http-parser, is exactly one complete head (no byte left over) whose
 * method and target are those the policy decided on, with one Host equal to
 * the decided host, the verified identity's X-Forwarded-Client-Cert once, no
 * connection-specific field (Connection, Upgrade, TE, Keep-Alive) and the
 * framing the proxy chose: chunked when a body follows without
 * content-length, the client's Content-Length when it gave one, none
 * otherwise.  A forwarded request always went through an allowing rule, and
 * the rules, written out again in this file without the policy code, allow it.
 *
 * Input: one byte of options (bit 0: a body follows; bit 1: no identity),
 * then fields, each a length byte, the name, a length byte, the value.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/policy.h"
#include "proxy/h2.h"
#include "proxy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct listener_cfg lcfg;
static struct duet_identity alice;
static struct identity_san alice_san = {DUET_SAN_URI, (char *)"spiffe://t/alice"};
#define ALICE_XFCC "Hash=aa;Subject=\"CN=alice\";URI=spiffe://t/alice"

static void
setup(void)
{
    static int done;
    struct duet_err err;
    const char *const a[] = {"uri:spiffe://t/alice"};
    const char *const any[] = {"any"};
    const char *const get[] = {"GET", "HEAD", "POST"};

    if (done)
        return;
    done = 1;
    alice.name = (char *)"spiffe://t/alice";
    alice.subject = (char *)"CN=alice";
    alice.nsans = 1;
    alice.sans = &alice_san;
    alice.xfcc = (char *)ALICE_XFCC;
    lcfg.name = (char *)"fuzz";
    lcfg.mode = MODE_HTTP;
    lcfg.xfcc = XFCC_SANITIZE;
    lcfg.forwarded = HTTP_FWD_SET;
    if (policy_add_rule(&lcfg.policy, "no-secrets", false, any, 1, NULL, 0, NULL,
                        NULL,
                        "/public/secret", &err) != 0 ||
        policy_add_rule(&lcfg.policy, "alice-admin", true, a, 1, get, 3, "admin.corp",
                        NULL,
                        "/admin/", &err) != 0 ||
        policy_add_rule(&lcfg.policy, "public", true, any, 1, NULL, 0, NULL, NULL, "/public/", &err) !=
            0)
        abort();
}

struct parsed {
    struct http_reader rd;
    http_parser p;
    int done;
};

static int
on_headers_complete(http_parser *p)
{
    ((struct parsed *)((struct http_reader *)p->data)->owner)->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = http_reader_on_url,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = on_headers_complete,
};

static size_t
count(const struct http_reader *rd, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < rd->nhdrs; i++)
        if (rd->hdrs[i].name != NULL && strcasecmp(rd->hdrs[i].name, name) == 0)
            n++;
    return n;
}

/* The path of target (before any query) is p or below it, segment by segment. */
static bool
under(const char *target, const char *p)
{
    size_t plen = strcspn(target, "?"), n = strlen(p);

    return plen >= n && strncmp(target, p, n) == 0 && (plen == n || target[n] == '/');
}

/*
 * The rules of setup(), spelled out again without the policy code: nothing
 * under /public/secret; /admin for alice on admin.corp with GET, HEAD or
 * POST; /public for any verified client; no client without a certificate.
 */
static bool
allowed_by_the_rules(const struct http_decision *d, bool anonymous)
{
    const char *t = d->target, *h = d->req.host != NULL ? d->req.host : "";

    if (anonymous || under(t, "/public/secret"))
        return false;
    if (under(t, "/admin"))
        return strncasecmp(h, "admin.corp", 10) == 0 && strchr(":.", h[10]) != NULL &&
               (strcmp(d->method, "GET") == 0 || strcmp(d->method, "HEAD") == 0 ||
                strcmp(d->method, "POST") == 0);
    return under(t, "/public");
}

/* The forwarded head, read again, says what was decided. */
static void
check_forwarded(const struct http_decision *d, const struct h2_request *r, bool body_follows,
                bool anonymous)
{
    struct parsed ps;
    size_t used = 0, n;
    int status = 0;
    struct duet_err err;
    const char *v;

    memset(&ps, 0, sizeof(ps));
    ps.rd.owner = &ps;
    ps.rd.max_head = 1 << 20;
    http_scan_init(&ps.rd.scan, 1 << 20);
    assert(http_scan_feed(&ps.rd.scan, d->head, d->head_len, &used, &status, &err) == 1);
    assert(used == d->head_len);
    http_parser_init(&ps.p, HTTP_REQUEST);
    ps.p.data = &ps.rd;
    n = http_parser_execute(&ps.p, &settings, d->head, d->head_len);
    (void)n;
    assert(ps.done);
    assert(strcmp(http_method_str((enum http_method)ps.p.method), d->method) == 0);
    assert(ps.rd.url != NULL && strcmp(ps.rd.url, d->target) == 0);
    assert(count(&ps.rd, "host") == 1);
    v = http_header_get(ps.rd.hdrs, ps.rd.nhdrs, "host");
    assert(v != NULL && d->req.host != NULL && strcmp(v, d->req.host) == 0);
    assert(count(&ps.rd, "x-forwarded-client-cert") == (anonymous ? 0 : 1));
    if (!anonymous)
        assert(strcmp(http_header_get(ps.rd.hdrs, ps.rd.nhdrs, "x-forwarded-client-cert"),
                      ALICE_XFCC) == 0);
    assert(count(&ps.rd, "x_forwarded_client_cert") == 0);
    assert(count(&ps.rd, "connection") == 0 && count(&ps.rd, "upgrade") == 0 &&
           count(&ps.rd, "te") == 0 && count(&ps.rd, "keep-alive") == 0);
    if (http_header_get(r->rd.hdrs, r->rd.nhdrs, "content-length") != NULL) {
        assert(count(&ps.rd, "content-length") == 1 && count(&ps.rd, "transfer-encoding") == 0);
    } else if (body_follows) {
        assert(count(&ps.rd, "transfer-encoding") == 1 && count(&ps.rd, "content-length") == 0);
        assert(strcmp(http_header_get(ps.rd.hdrs, ps.rd.nhdrs, "transfer-encoding"), "chunked") ==
               0);
    } else {
        assert(count(&ps.rd, "transfer-encoding") == 0 && count(&ps.rd, "content-length") == 0);
    }
    assert(d->decided && d->d.allow);
    assert(allowed_by_the_rules(d, anonymous));
    http_reader_clear(&ps.rd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h2_request r;
    struct h2_context ctx;
    struct http_decision d;
    struct duet_err err;
    bool body_follows, anonymous;
    size_t i = 1;
    int bad = 0;

    setup();
    if (size < 1)
        return 0;
    body_follows = data[0] & 1;
    anonymous = (data[0] & 2) != 0;
    memset(&r, 0, sizeof(r));
    r.max_bytes = 16384;
    while (i < size && !bad) {
        size_t nl = data[i++], vl;
        const uint8_t *name = data + i, *value;
        if (i + nl >= size)
            break;
        i += nl;
        vl = data[i++];
        if (i + vl > size)
            break;
        value = data + i;
        i += vl;
        bad = h2_request_add(&r, name, nl, value, vl) != 0;
    }
    if (!bad && !r.too_large) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.l = &lcfg;
        ctx.id = anonymous ? NULL : &alice;
        ctx.id_xfcc = anonymous ? NULL : ALICE_XFCC;
        ctx.client_ip = "192.0.2.1";
        ctx.body_follows = body_follows;
        if (h2_decide(&r, &ctx, &d, &err) == 0) {
            if (d.status == 0)
                check_forwarded(&d, &r, body_follows, anonymous);
            http_decision_clear(&d);
        }
    }
    h2_request_clear(&r);
    return 0;
}
