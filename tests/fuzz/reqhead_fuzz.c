/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reqhead_fuzz.c - libFuzzer target for the proxy's request path in http
 * mode: the strict head scanner, http-parser with the proxy's reader
 * callbacks, the checks of what a head means, path normalisation, the policy
 * decision and the head rebuilt for the upstream (http_decide(), the same
 * function the proxy calls).
 *
 * The property is differential, not "does not crash": whenever a request is
 * forwarded, its forwarded head, read again by the strict scanner and by
 * http-parser, is exactly one complete head (no byte left over) whose method,
 * target, Host and framing are those the policy decided on; it carries the
 * verified identity's X-Forwarded-Client-Cert once and no other identity or
 * forwarding header the client could have written (names compared with case
 * and '-'/'_' folded); it says "Upgrade: websocket" and "Connection:
 * Upgrade", once each, when the decision is a WebSocket upgrade (then a GET
 * in HTTP/1.1 without a body, which http-parser reads as an upgrade too) and
 * no Upgrade, Connection or HTTP2-Settings otherwise (no h2c upgrade gets
 * through); and deciding the forwarded head again gives the same decision.
 * A forwarded request always went through an allowing rule.
 *
 * The first input byte chooses the client (alice, bob or none) and the modes.
 */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/policy.h"
#include "proxy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct policy pol;
static struct duet_identity alice, bob;
static struct identity_san alice_san = {DUET_SAN_URI, (char *)"spiffe://t/alice"};
static struct identity_san bob_san = {DUET_SAN_URI, (char *)"spiffe://t/bob"};

static void
setup(void)
{
    static int done;
    struct duet_err err;
    const char *const a[] = {"uri:spiffe://t/alice"};
    const char *const any[] = {"any"};
    const char *const get[] = {"GET", "HEAD"};

    if (done)
        return;
    done = 1;
    alice.name = (char *)"spiffe://t/alice";
    alice.subject = (char *)"CN=alice";
    alice.nsans = 1;
    alice.sans = &alice_san;
    alice.xfcc = (char *)"Hash=aa;Subject=\"CN=alice\";URI=spiffe://t/alice";
    bob.name = (char *)"spiffe://t/bob";
    bob.subject = (char *)"CN=bob";
    bob.nsans = 1;
    bob.sans = &bob_san;
    bob.xfcc = (char *)"Hash=bb;Subject=\"CN=bob\";URI=spiffe://t/bob";
    if (policy_add_rule(&pol, "no-secrets", false, any, 1, NULL, 0, NULL, NULL, "/public/secret",
                        &err) != 0 ||
        policy_add_rule(&pol, "alice-admin", true, a, 1, get, 2, "admin.corp", NULL, "/admin/",
                        &err) != 0 ||
        policy_add_rule(&pol, "public", true, any, 1, NULL, 0, NULL, NULL, "/public/", &err) != 0 ||
        policy_add_rule(&pol, "health", true, any, 1, NULL, 0, NULL, "/health", NULL, &err) != 0 ||
        policy_add_rule(&pol, "alice-api", true, a, 1, NULL, 0, NULL, NULL, "/api", &err) != 0)
        abort();
}

/* Whether the path of a forwarded target is one the allowing rule names (see the top). */
static bool
path_named_by(const char *rule, const char *target)
{
    size_t n = strcspn(target, "?");

    if (strcmp(rule, "health") == 0)
        return n == 7 && memcmp(target, "/health", 7) == 0;
    if (strcmp(rule, "alice-api") == 0)
        return (n == 4 || (n > 4 && target[4] == '/')) && memcmp(target, "/api", 4) == 0;
    if (strcmp(rule, "public") == 0)
        return n >= 8 && memcmp(target, "/public/", 8) == 0;
    return n >= 7 && memcmp(target, "/admin/", 7) == 0;
}

/* http-parser over a whole buffer with the proxy's reader callbacks. */
struct parsed {
    struct http_reader rd;
    http_parser p;
    int headers_done;
    size_t head_end; /* bytes consumed when on_headers_complete ran */
};

static int
on_headers_complete(http_parser *p)
{
    struct parsed *ps = ((struct http_reader *)p->data)->owner;

    ps->headers_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = http_reader_on_url,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = on_headers_complete,
};

/*
 * Scan and parse one head from data as the proxy does.  Returns 1 with the
 * head parsed, 0 when it is incomplete or refused by the scanner or the parser.
 */
static int
parse_head(const uint8_t *data, size_t size, struct parsed *ps, size_t *head_len)
{
    size_t used = 0;
    int status = 0;
    struct duet_err err;
    int r;

    memset(ps, 0, sizeof(*ps));
    ps->rd.owner = ps;
    ps->rd.max_head = 16384;
    http_scan_init(&ps->rd.scan, 16384);
    r = http_scan_feed(&ps->rd.scan, (const char *)data, size, &used, &status, &err);
    if (r != 1) {
        assert(r == 0 || status == 400 || status == 431 || status == 505);
        return 0;
    }
    *head_len = used;
    http_parser_init(&ps->p, HTTP_REQUEST);
    ps->p.data = &ps->rd;
    size_t n = http_parser_execute(&ps->p, &settings, (const char *)data, used);
    if (!ps->headers_done || ps->rd.too_large || ps->rd.nomem)
        return 0;
    /*
     * http-parser reads the head to the same last byte as the scanner (paused
     * in on_headers_complete, it reports the final LF as not yet consumed).
     */
    if (n + 1 != used) {
        fprintf(stderr, "n=%zu used=%zu\n", n, used);
        abort();
    }
    return 1;
}

static char
fold(char c)
{
    return c == '_' ? '-' : (char)tolower((unsigned char)c);
}

static int
folds_to(const char *name, const char *lower)
{
    for (; *name && *lower; name++, lower++) {
        if (fold(*name) != *lower)
            return 0;
    }
    return *name == '\0' && *lower == '\0';
}

static size_t
count_folded(const struct http_reader *rd, const char *lower)
{
    size_t n = 0;
    for (size_t i = 0; i < rd->nhdrs; i++)
        n += folds_to(rd->hdrs[i].name, lower) ? 1 : 0;
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parsed in, out;
    struct http_context ctx;
    struct http_decision d, again;
    size_t head_len = 0, fwd_len = 0;

    setup();
    if (size < 1)
        return 0;
    memset(&ctx, 0, sizeof(ctx));
    ctx.policy = &pol;
    ctx.id = (data[0] & 3) == 0 ? NULL : (data[0] & 3) == 1 ? &bob : &alice;
    ctx.id_xfcc = ctx.id != NULL ? ctx.id->xfcc : NULL;
    ctx.client_ip = (data[0] & 4) ? "2001:db8::7" : "192.0.2.7";
    ctx.xfcc = (data[0] & 8) ? XFCC_SANITIZE_SET : XFCC_SANITIZE;
    ctx.forwarded = (data[0] & 16) ? HTTP_FWD_APPEND : HTTP_FWD_SET;
    data++;
    size--;

    if (!parse_head(data, size, &in, &head_len)) {
        http_reader_clear(&in.rd);
        return 0;
    }
    http_decide(&in.rd, &in.p, &ctx, &d);
    if (d.status != 0) {
        assert(d.head == NULL);
        assert(d.err.msg[0] != '\0');
        http_decision_clear(&d);
        http_reader_clear(&in.rd);
        return 0;
    }
    /* Forwarded: an allowing rule decided it. */
    assert(d.decided && d.d.allow && d.d.index >= 0);
    assert(path_named_by(d.d.rule, d.target));
    assert(d.head != NULL && d.head_len == strlen(d.head));

    /* The forwarded head is one strict head, and nothing follows it. */
    if (!parse_head((const uint8_t *)d.head, d.head_len, &out, &fwd_len))
        abort();
    assert(fwd_len == d.head_len);
    assert(out.p.method == in.p.method);
    assert(strcmp(out.rd.url, d.target) == 0);
    assert(out.p.http_major == 1 && out.p.http_minor == in.p.http_minor);
    {
        const char *h = http_header_get(out.rd.hdrs, out.rd.nhdrs, "host");
        assert((h == NULL) == (d.req.host == NULL));
        assert(h == NULL || strcmp(h, d.req.host) == 0);
        assert(count_folded(&out.rd, "host") == (d.req.host != NULL ? 1u : 0u));
    }
    /* Framing: the one the proxy decided, spelled once. */
    switch (d.req.framing) {
    case HTTP_BODY_NONE:
        assert(!(out.p.flags & (F_CHUNKED | F_CONTENTLENGTH)));
        assert(count_folded(&out.rd, "content-length") == 0);
        assert(count_folded(&out.rd, "transfer-encoding") == 0);
        break;
    case HTTP_BODY_LENGTH:
        assert((out.p.flags & F_CONTENTLENGTH) && !(out.p.flags & F_CHUNKED));
        assert(out.p.content_length == d.req.content_length);
        assert(count_folded(&out.rd, "content-length") == 1);
        assert(count_folded(&out.rd, "transfer-encoding") == 0);
        break;
    case HTTP_BODY_CHUNKED:
        assert(out.p.flags & F_CHUNKED);
        assert(count_folded(&out.rd, "content-length") == 0);
        assert(count_folded(&out.rd, "transfer-encoding") == 1);
        break;
    }
    /* Identity: ours once, or none; never the client's, in any spelling. */
    {
        size_t n = count_folded(&out.rd, "x-forwarded-client-cert");
        const char *x = http_header_get(out.rd.hdrs, out.rd.nhdrs, "x-forwarded-client-cert");
        assert(n == (ctx.id != NULL ? 1u : 0u));
        assert(x == NULL || strcmp(x, ctx.id_xfcc) == 0);
        assert(count_folded(&out.rd, "x-forwarded-for") == 1);
        assert(count_folded(&out.rd, "x-forwarded-proto") == 1);
        assert(count_folded(&out.rd, "x-real-ip") == 1);
        assert(count_folded(&out.rd, "forwarded") == 1);
        assert(count_folded(&out.rd, "x-forwarded-host") == 0);
        assert(strcmp(http_header_get(out.rd.hdrs, out.rd.nhdrs, "x-real-ip"),
                      ctx.client_ip) == 0);
        if (ctx.forwarded == HTTP_FWD_SET)
            assert(strcmp(http_header_get(out.rd.hdrs, out.rd.nhdrs, "x-forwarded-for"),
                          ctx.client_ip) == 0);
        for (size_t i = 0; i < out.rd.nhdrs; i++)
            assert(strncasecmp(out.rd.hdrs[i].name, "proxy-", 6) != 0);
    }
    /* Upgrade: WebSocket only, spelled by the proxy; nothing else of the client's. */
    {
        size_t ws = d.req.upgrade == HTTP_UPGRADE_WEBSOCKET ? 1 : 0;
        const char *u = http_header_get(out.rd.hdrs, out.rd.nhdrs, "upgrade");
        const char *cn = http_header_get(out.rd.hdrs, out.rd.nhdrs, "connection");
        assert(d.req.upgrade == HTTP_UPGRADE_NONE || d.req.upgrade == HTTP_UPGRADE_WEBSOCKET);
        assert(count_folded(&out.rd, "upgrade") == ws);
        assert(count_folded(&out.rd, "connection") == ws);
        assert(count_folded(&out.rd, "http2-settings") == 0);
        assert(out.p.upgrade == ws);
        if (ws) {
            assert(strcmp(u, "websocket") == 0 && strcmp(cn, "Upgrade") == 0);
            assert(in.p.method == HTTP_GET && in.p.http_minor == 1);
            assert(d.req.framing == HTTP_BODY_NONE ||
                   (d.req.framing == HTTP_BODY_LENGTH && d.req.content_length == 0));
        }
    }
    /* The same request decided again, from what the upstream reads: the same decision. */
    http_decide(&out.rd, &out.p, &ctx, &again);
    assert(again.status == 0 && again.d.index == d.d.index);
    assert(again.req.upgrade == d.req.upgrade);
    assert(strcmp(again.target, d.target) == 0);
    http_decision_clear(&again);
    http_decision_clear(&d);
    http_reader_clear(&out.rd);
    http_reader_clear(&in.rd);
    return 0;
}
