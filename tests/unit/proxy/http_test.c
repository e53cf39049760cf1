/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_test.c - unit tests of the proxy's socket-free HTTP pieces
 * (src/proxy/http.c): request-target normalisation, a table of targets and
 * what policy and upstream must see (or the exact refusal), and the request
 * head sent upstream: hop-by-hop headers and those named by Connection
 * dropped, framing and Host rebuilt, identity and forwarding headers (and
 * their '_' look-alikes) replaced, X-Forwarded-Client-Cert handled per mode;
 * the checks of what a head means (Host, framing, Connection), each refusal
 * with its status and words; and whole decisions from the client's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/policy.h"
#include "lib/xfcc.h"
#include "proxy/http.h"
#include "testlib/certfactory.h"

#define E_PCT "malformed percent-encoding in the path"
#define E_ENC "encoded '/', '\\' or NUL in the path is refused (ambiguous to upstreams)"
#define E_CHAR "invalid character in the path"
#define E_ROOT "the path climbs above the root"
#define E_SLASH "request target must start with /"
#define E_PARAM                                                                                    \
    "';' in the path (path parameters) is refused: servers that strip them would see another path"
#define E_FRAG "a fragment ('#') in a request target (RFC 9112 3.2)"

/* ---- http_normalize_target ---- */

struct ncase {
    const char *in;
    const char *out;   /* NULL: refused */
    const char *error; /* with out NULL: the exact message */
};

static struct ncase ncases[] = {
    {"/", "/", NULL},
    {"*", "*", NULL},
    {"/a/b", "/a/b", NULL},
    {"/a/b/", "/a/b/", NULL},
    {"/a/b/../c", "/a/c", NULL},
    {"/a/b/..", "/a/", NULL},
    {"/a/..", "/", NULL},
    {"/a//b", "/a/b", NULL},
    {"//a///b//", "/a/b/", NULL},
    {"/a/./b/", "/a/b/", NULL},
    {"/a/.", "/a/", NULL},
    {"/./", "/", NULL},
    {"/hr/../customers/x", "/customers/x", NULL},
    {"/%68r/x", "/hr/x", NULL},
    {"/%7Euser", "/~user", NULL},
    {"/%7euser", "/~user", NULL},
    {"/a%41%2d%2E%5f", "/aA-._", NULL},
    {"/a/%2e%2e/b", "/b", NULL},
    {"/a/%2E/b", "/a/b", NULL},
    {"/a%20b", "/a%20b", NULL},
    {"/a%2ab", "/a%2Ab", NULL},
    {"/a%3fb", "/a%3Fb", NULL},
    {"/x?q=/../", "/x?q=/../", NULL},
    {"/a/../x?q=%2F&r=a//b", "/x?q=%2F&r=a//b", NULL},
    {"/?", "/?", NULL},
    {"/..", NULL, E_ROOT},
    {"/../a", NULL, E_ROOT},
    {"/a/../..", NULL, E_ROOT},
    {"/a/%2e%2e/%2e%2e/b", NULL, E_ROOT},
    {"/a%2Fb", NULL, E_ENC},
    {"/a%2fb", NULL, E_ENC},
    {"/a%5Cb", NULL, E_ENC},
    {"/a%5cb", NULL, E_ENC},
    {"/a%00b", NULL, E_ENC},
    {"/a\\b", NULL, E_CHAR},
    {"/a b", NULL, E_CHAR},
    {"/a\tb", NULL, E_CHAR},
    {"/a\x7f", NULL, E_CHAR},
    {"/%zz", NULL, E_PCT},
    {"/a%", NULL, E_PCT},
    {"/a%4", NULL, E_PCT},
    {"/a%4g", NULL, E_PCT},
    {"%zz", NULL, E_SLASH},
    {"", NULL, E_SLASH},
    {"a/b", NULL, E_SLASH},
    {"http://host/a", NULL, E_SLASH},
    {"/public/..;/admin", NULL, E_PARAM},
    {"/a;jsessionid=1/b", NULL, E_PARAM},
    {"/a%3Bb", "/a%3Bb", NULL},
    {"/a?x=1;y=2", "/a?x=1;y=2", NULL},
    {"/a#frag", NULL, E_FRAG},
};

static void
run_normalize(void **state)
{
    const struct ncase *c = *state;
    char *out = (char *)1;
    struct duet_err err;
    int rc;

    err_clear(&err);
    rc = http_normalize_target(c->in, &out, &err);
    if (c->out != NULL) {
        if (rc != 0)
            fail_msg("\"%s\" refused: %s", c->in, err.msg);
        assert_non_null(out);
        assert_string_equal(out, c->out);
        free(out);
        return;
    }
    assert_int_equal(rc, -1);
    assert_null(out);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, c->error);
}

/* Normalisation is idempotent: what comes out goes through unchanged. */
static void
test_normalize_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ncases) / sizeof(ncases[0]); i++) {
        char *once = NULL, *twice = NULL;
        struct duet_err err;

        if (ncases[i].out == NULL)
            continue;
        err_clear(&err);
        assert_int_equal(http_normalize_target(ncases[i].in, &once, &err), 0);
        if (http_normalize_target(once, &twice, &err) != 0)
            fail_msg("\"%s\" (from \"%s\") refused: %s", once, ncases[i].in, err.msg);
        assert_string_equal(twice, once);
        free(once);
        free(twice);
    }
}

/* ---- http_header_get ---- */

static void
test_header_get(void **state)
{
    char n1[] = "Host", v1[] = "a", n2[] = "host", v2[] = "b", n3[] = "Accept", v3[] = "*/*";
    const struct http_header h[] = {{n1, v1}, {n2, v2}, {n3, v3}};

    (void)state;
    assert_string_equal(http_header_get(h, 3, "HOST"), "a");
    assert_string_equal(http_header_get(h, 3, "accept"), "*/*");
    assert_null(http_header_get(h, 3, "Accep"));
    assert_null(http_header_get(h, 0, "Host"));
}

/* ---- http_build_upstream_head ---- */

static EVP_PKEY *key;
static X509 *cert;
static struct duet_identity *id;

static int
group_setup(void **state)
{
    static const char *const sans[] = {"URI:spiffe://corp/client", NULL};
    struct cf_cert_spec s = {.cn = "client", .o = "Corp", .eku = CF_EKU_CLIENT, .sans = sans};
    struct duet_err err;

    (void)state;
    key = cf_key_new(CF_KEY_EC_P256);
    s.key = key;
    cert = cf_cert_new(&s);
    err_clear(&err);
    if (identity_from_x509(cert, &id, &err) != 0)
        fail_msg("%s", err.msg);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    identity_free(id);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

#define THEIRS1 "By=spiffe://evil;Hash=00;Subject=\"CN=admin\""
#define THEIRS2 "By=spiffe://second"
/* Several XFCC lines from the client are one list (RFC 9110 5.3). */
#define THEIRS THEIRS1 "," THEIRS2

/*
 * What the client sent.  Every header the upstream must not see has "drop"
 * in its value; those it must see are listed in KEPT, in order.
 */
static const char *const client_headers[][2] = {
    {"Host", "drop: rebuilt from the one parsed Host"},
    {"Connection", "keep-alive, X-Secret,\tx-other"},
    {"Keep-Alive", "drop timeout=5"},
    {"X-Secret", "drop named by Connection"},
    {"Accept", "*/*"},
    {"X-Other", "drop named by Connection, other case"},
    {"Proxy-Connection", "drop keep-alive"},
    {"Proxy-Authorization", "drop Basic Zm9vOmJhcg=="},
    {"Proxy-Authenticate", "drop Basic"},
    {"Proxy-Foo", "drop any Proxy-*"},
    {"TE", "drop trailers"},
    {"Trailer", "drop X-T"},
    {"Upgrade", "drop websocket"},
    {"X-Forwarded-For", "drop 6.6.6.6"},
    {"x-forwarded-proto", "drop http"},
    {"X-Forwarded-Client-Cert", THEIRS1},
    {"Content-Length", "5"},
    {"x-forwarded-client-cert", THEIRS2},
    {"X-Connection-Info", "kept: a name that merely contains connection"},
    {"X_Forwarded_Client_Cert", "drop a look-alike of the identity header"},
    {"x-forwarded_for", "drop a look-alike"},
    {"X-Real-IP", "drop 6.6.6.6"},
    {"Forwarded", "drop for=6.6.6.6"},
    {"X-Forwarded-Host", "drop evil"},
    {"Content_Length", "drop a framing look-alike"},
    {"Transfer-Encoding", "drop: framing is the proxy's"},
    {"Proxy_Authorization", "drop Proxy-* spelled with '_'"},
    {"X-Kept_Name", "kept: other names with '_' pass"},
};

#define KEPT                                                                                       \
    "Host: api.corp\r\n"                                                                           \
    "Accept: */*\r\n"                                                                              \
    "X-Connection-Info: kept: a name that merely contains connection\r\n"                          \
    "X-Kept_Name: kept: other names with '_' pass\r\n"                                             \
    "Content-Length: 5\r\n"
#define FORWARDED                                                                                  \
    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 192.0.2.7\r\n"            \
    "Forwarded: for=192.0.2.7;proto=https\r\n\r\n"

enum xf { XF_NONE, XF_THEIRS, XF_MINE, XF_BOTH };

struct hcase {
    const char *name;
    enum xfcc_mode mode;
    bool with_id;
    bool client_sent_xfcc;
    enum xf want;
};

static struct hcase hcases[] = {
    {"sanitize", XFCC_SANITIZE, true, true, XF_MINE},
    {"sanitize_set", XFCC_SANITIZE_SET, true, true, XF_MINE},
    {"forward_only", XFCC_FORWARD_ONLY, true, true, XF_THEIRS},
    {"append_forward", XFCC_APPEND_FORWARD, true, true, XF_BOTH},
    {"sanitize, no client certificate", XFCC_SANITIZE, false, true, XF_NONE},
    {"forward_only, no client certificate", XFCC_FORWARD_ONLY, false, true, XF_THEIRS},
    {"append_forward, no client certificate", XFCC_APPEND_FORWARD, false, true, XF_THEIRS},
    {"append_forward, nothing sent", XFCC_APPEND_FORWARD, true, false, XF_MINE},
    {"forward_only, nothing sent", XFCC_FORWARD_ONLY, true, false, XF_NONE},
    {"sanitize, nothing sent", XFCC_SANITIZE, true, false, XF_MINE},
};

static void
run_head(void **state)
{
    const struct hcase *c = *state;
    enum { NH = sizeof(client_headers) / sizeof(client_headers[0]) };
    struct http_header h[NH];
    size_t nh = 0;
    struct http_request r;
    char *mine = xfcc_element(id);
    char want[4096];
    char *out = NULL;
    size_t len = 0;
    struct duet_err err;

    assert_non_null(mine);
    for (size_t i = 0; i < NH; i++) {
        if (!c->client_sent_xfcc &&
            strcasecmp(client_headers[i][0], "X-Forwarded-Client-Cert") == 0)
            continue;
        h[nh].name = strdup(client_headers[i][0]);
        h[nh].value = strdup(client_headers[i][1]);
        nh++;
    }
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.target = "/hr/x?y=1";
    r.http_major = 1;
    r.http_minor = 1;
    r.headers = h;
    r.nheaders = nh;
    r.host = "api.corp";
    r.framing = HTTP_BODY_LENGTH;
    r.content_length = 5;
    r.client_ip = "192.0.2.7";
    r.id = c->with_id ? id : NULL;
    r.xfcc = c->mode;

    switch (c->want) {
    case XF_NONE:
        snprintf(want, sizeof(want), "POST /hr/x?y=1 HTTP/1.1\r\n" KEPT FORWARDED);
        break;
    case XF_THEIRS:
        snprintf(want, sizeof(want),
                 "POST /hr/x?y=1 HTTP/1.1\r\n" KEPT "X-Forwarded-Client-Cert: " THEIRS
                 "\r\n" FORWARDED);
        break;
    case XF_MINE:
        snprintf(want, sizeof(want),
                 "POST /hr/x?y=1 HTTP/1.1\r\n" KEPT "X-Forwarded-Client-Cert: %s\r\n" FORWARDED,
                 mine);
        break;
    case XF_BOTH:
        snprintf(want, sizeof(want),
                 "POST /hr/x?y=1 HTTP/1.1\r\n" KEPT "X-Forwarded-Client-Cert: " THEIRS
                 ",%s\r\n" FORWARDED,
                 mine);
        break;
    }

    err_clear(&err);
    if (http_build_upstream_head(&r, &out, &len, &err) != 0)
        fail_msg("%s", err.msg);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    assert_string_equal(out, want);
    assert_null(strstr(out, "drop"));
    free(out);
    free(mine);
    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].value);
    }
}

/* HTTP/1.0, no headers at all: the request line and our own headers. */
static void
test_head_minimal(void **state)
{
    struct http_request r;
    char *out = NULL;
    size_t len = 0;
    struct duet_err err;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.target = "/";
    r.http_major = 1;
    r.http_minor = 0;
    r.client_ip = "2001:db8::7";
    r.xfcc = XFCC_SANITIZE;
    err_clear(&err);
    assert_int_equal(http_build_upstream_head(&r, &out, &len, &err), 0);
    assert_string_equal(out, "GET / HTTP/1.0\r\nX-Forwarded-For: 2001:db8::7\r\n"
                             "X-Forwarded-Proto: https\r\nX-Real-IP: 2001:db8::7\r\n"
                             "Forwarded: for=\"[2001:db8::7]\";proto=https\r\n\r\n");
    assert_int_equal(len, strlen(out));
    free(out);
}


/* ---- what a head means ---- */

struct ccase {
    const char *name;
    int minor;
    const char *h[4][2];
    int status;      /* 0 accepted */
    const char *msg; /* part of the message when refused; the Host when accepted */
    enum http_framing framing;
};

static struct ccase ccases[] = {
    {"plain", 1, {{"Host", "a.corp:8443"}}, 0, "a.corp:8443", HTTP_BODY_NONE},
    {"content-length", 1, {{"Host", "a"}, {"content-length", " 12 "}}, 0, "a", HTTP_BODY_LENGTH},
    {"chunked", 1, {{"Host", "a"}, {"Transfer-Encoding", "Chunked"}}, 0, "a", HTTP_BODY_CHUNKED},
    {"ipv6 host", 1, {{"Host", "[2001:db8::1]:443"}}, 0, "[2001:db8::1]:443", HTTP_BODY_NONE},
    {"http/1.0 without host", 0, {{"X-A", "b"}}, 400, "without Host", 0},
    {"no host", 1, {{"X-A", "b"}}, 400, "without Host", 0},
    {"empty host", 1, {{"Host", ""}}, 400, "an empty Host", 0},
    {"host with only a port", 1, {{"Host", ":443"}}, 400, "an empty Host", 0},
    {"33 connection options", 1,
     {{"Host", "a"},
      {"Connection", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,a1,b1,c1,d1,e1,f1,g1"}},
     400, "more than 32 Connection options", 0},
    {"two hosts", 1, {{"Host", "a"}, {"host", "b"}}, 400, "more than one Host", 0},
    {"host with a space", 1, {{"Host", "a b"}}, 400, "is not a host", 0},
    {"host with a slash", 1, {{"Host", "a/b"}}, 400, "is not a host", 0},
    {"host with a long port", 1, {{"Host", "a:123456"}}, 400, "is not a host", 0},
    {"bad ipv6 host", 1, {{"Host", "[zz::1]"}}, 400, "is not a host", 0},
    {"percent-encoded host", 1, {{"Host", "adm%69n.corp"}}, 400, "is not a host", 0},
    {"host with an empty label", 1, {{"Host", "a..corp"}}, 400, "is not a host", 0},
    {"host with a sub-delim", 1, {{"Host", "a;b.corp"}}, 400, "is not a host", 0},
    {"absolute host name", 1, {{"Host", "admin.corp.:443"}}, 0, "admin.corp.:443",
     HTTP_BODY_NONE},
    {"name not a token", 1, {{"Host", "a"}, {"X A", "b"}}, 400, "not a token", 0},
    {"transfer-encoding look-alike", 1, {{"Host", "a"}, {"transfer_encoding", "chunked"}}, 400,
     "ambiguous", 0},
    {"content-length look-alike", 1, {{"Host", "a"}, {"Content_Length", "3"}}, 400, "ambiguous",
     0},
    {"two content-lengths", 1,
     {{"Host", "a"}, {"Content-Length", "3"}, {"Content-Length", "3"}}, 400,
     "more than one Content-Length", 0},
    {"content-length with a sign", 1, {{"Host", "a"}, {"Content-Length", "+3"}}, 400,
     "not a number", 0},
    {"content-length list", 1, {{"Host", "a"}, {"Content-Length", "3, 3"}}, 400, "not a number",
     0},
    {"content-length huge", 1, {{"Host", "a"}, {"Content-Length", "99999999999999999999"}}, 400,
     "not a number", 0},
    {"both framings", 1,
     {{"Host", "a"}, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}}, 400,
     "both Content-Length and Transfer-Encoding", 0},
    {"gzip, chunked", 1, {{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}}, 501,
     "expected chunked", 0},
    {"chunked twice", 1,
     {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}, 400,
     "more than one Transfer", 0},
    {"chunked in http/1.0", 0, {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}, 400, "HTTP/1.0",
     0},
    {"connection names content-length", 1,
     {{"Host", "a"}, {"Connection", "close, Content-Length"}}, 400, "Connection may not name", 0},
    {"connection names host", 1, {{"Host", "a"}, {"Connection", "host"}}, 400,
     "Connection may not name", 0},
    {"connection names transfer_encoding", 1,
     {{"Host", "a"}, {"Connection", "Transfer_Encoding"}}, 400, "Connection may not name", 0},
};

static void
run_check(void **state)
{
    const struct ccase *c = *state;
    struct http_header h[4];
    struct http_request r;
    struct duet_err err;
    int status = -1;
    size_t n = 0;

    char names[4][64], values[4][256];

    for (; n < 4 && c->h[n][0] != NULL; n++) {
        snprintf(names[n], sizeof(names[n]), "%s", c->h[n][0]);
        snprintf(values[n], sizeof(values[n]), "%s", c->h[n][1]);
        h[n].name = names[n];
        h[n].value = values[n];
    }
    memset(&r, 0, sizeof(r));
    r.http_major = 1;
    r.http_minor = c->minor;
    r.headers = h;
    r.nheaders = n;
    err_clear(&err);
    if (c->status == 0) {
        if (http_request_check(&r, &status, &err) != 0)
            fail_msg("refused: %s", err.msg);
        if (c->msg == NULL)
            assert_null(r.host);
        else
            assert_string_equal(r.host, c->msg);
        assert_int_equal(r.framing, c->framing);
        if (c->framing == HTTP_BODY_LENGTH)
            assert_int_equal(r.content_length, 12);
        return;
    }
    assert_int_equal(http_request_check(&r, &status, &err), -1);
    assert_int_equal(status, c->status);
    if (strstr(err.msg, c->msg) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, c->msg);
}

/* ---- the whole decision, from the client's bytes ---- */

struct parsed_req {
    struct http_reader rd;
    http_parser p;
    bool done;
};

static int
dcb_headers_complete(http_parser *p)
{
    ((struct parsed_req *)((struct http_reader *)p->data)->owner)->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings dsettings = {
    .on_url = http_reader_on_url,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = dcb_headers_complete,
};

struct dcase {
    const char *name;
    const char *in;
    int status;
    const char *want; /* the forwarded head (status 0), the rule (403) or part of the reason */
};

#define FWD_ALICE                                                                                  \
    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 192.0.2.7\r\n"            \
    "Forwarded: for=192.0.2.7;proto=https\r\n\r\n"

static struct dcase dcases[] = {
    {"allowed", "GET /public/a HTTP/1.1\r\nhost: x\r\nAccept: */*\r\n\r\n", 0,
     "GET /public/a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Forwarded-Client-Cert: XFCC\r\n"
     FWD_ALICE},
    {"framing regenerated", "POST /public/a HTTP/1.1\r\nHost: x\r\ncontent-length:  5\r\n\r\n", 0,
     "POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Forwarded-Client-Cert: XFCC\r\n"
     FWD_ALICE},
    {"smuggling through Connection",
     "POST /public/a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
     400, "Connection may not name"},
    {"denied path", "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n", 403, "default-deny"},
    {"dot segments decided after normalising", "GET /public/../admin HTTP/1.1\r\nHost: x\r\n\r\n",
     403, "default-deny"},
    /* Upgrades: WebSocket is forwarded as one; anything else is an ordinary request. */
    {"websocket upgrade",
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
     0,
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 13\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "X-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"websocket tokens in any case, among others",
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nconnection: keep-alive, UPGRADE\r\n"
     "upgrade: h2c, WebSocket\r\n\r\n",
     0,
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "X-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"websocket with Content-Length: 0",
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Content-Length: 0\r\n\r\n",
     0,
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Content-Length: 0\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"websocket upgrade with POST",
     "POST /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     400, "a WebSocket upgrade must be a GET request (RFC 6455 4.1), not POST"},
    {"websocket upgrade with a body",
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Content-Length: 5\r\n\r\n",
     400, "a WebSocket upgrade request may not have a body"},
    {"websocket upgrade with a chunked body",
     "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400, "a WebSocket upgrade request may not have a body"},
    {"websocket upgrade denied by the policy",
     "GET /admin HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     403, "default-deny"},
    {"h2c upgrade taken out",
     "GET /public/a HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
     "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
     0, "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"h2c upgrade with a body taken out",
     "POST /public/a HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     "HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 2\r\n\r\n",
     0,
     "POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     "X-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"HTTP2-Settings not named by Connection",
     "GET /public/a HTTP/1.1\r\nHost: x\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", 0,
     "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"unknown upgrade taken out",
     "GET /public/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n", 0,
     "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"Connection: upgrade without Upgrade",
     "GET /public/a HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n", 0,
     "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"Upgrade: websocket without Connection: upgrade",
     "GET /public/a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n",
     0, "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"websocket upgrade in HTTP/1.0 taken out",
     "GET /public/a HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     0, "GET /public/a HTTP/1.0\r\nHost: x\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 400, "CONNECT is not supported"},
    {"asterisk for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "only for OPTIONS"},
    {"absolute form", "GET http://x/public/a HTTP/1.1\r\nHost: x\r\n\r\n", 400, "must start with /"},
    {"path parameters", "GET /public/..;/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400,
     "path parameters"},
    {"fragment", "GET /public/a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment"},
    {"whitespace around values", "GET /public/a HTTP/1.1\r\nHost: x \t\r\nX-A: b  \r\n\r\n", 0,
     "GET /public/a HTTP/1.1\r\nHost: x\r\nX-A: b\r\nX-Forwarded-Client-Cert: XFCC\r\n" FWD_ALICE},
    {"http/1.0 without host", "GET /public/a HTTP/1.0\r\n\r\n", 400, "without Host"},
};

static void
run_decide(void **state)
{
    const struct dcase *c = *state;
    struct parsed_req pr;
    struct http_context ctx;
    struct http_decision d;
    struct policy pol = {0};
    struct duet_err err;
    const char *const any[] = {"any"};
    size_t used = 0;
    int status = 0;

    memset(&pr, 0, sizeof(pr));
    pr.rd.owner = &pr;
    pr.rd.max_head = 16384;
    http_scan_init(&pr.rd.scan, 16384);
    assert_int_equal(http_scan_feed(&pr.rd.scan, c->in, strlen(c->in), &used, &status, &err), 1);
    http_parser_init(&pr.p, HTTP_REQUEST);
    pr.p.data = &pr.rd;
    http_parser_execute(&pr.p, &dsettings, c->in, used);
    assert_true(pr.done);
    assert_int_equal(
        policy_add_rule(&pol, "public", true, any, 1, NULL, 0, NULL, NULL, "/public/", &err), 0);
    memset(&ctx, 0, sizeof(ctx));
    ctx.policy = &pol;
    ctx.id = id;
    ctx.id_xfcc = "XFCC";
    ctx.client_ip = "192.0.2.7";
    http_decide(&pr.rd, &pr.p, &ctx, &d);
    assert_int_equal(d.status, c->status);
    if (c->status == 0) {
        assert_string_equal(d.head, c->want);
        assert_int_equal(d.head_len, strlen(c->want));
    } else if (c->status == 403) {
        assert_true(d.decided);
        assert_string_equal(d.d.rule, c->want);
        assert_null(d.head);
    } else {
        assert_null(d.head);
        if (strstr(d.err.msg, c->want) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", d.err.msg, c->want);
    }
    http_decision_clear(&d);
    http_reader_clear(&pr.rd);
    policy_clear(&pol);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_normalize_idempotent),
        cmocka_unit_test(test_header_get),
        cmocka_unit_test(test_head_minimal),
    };
    enum {
        NN = sizeof(ncases) / sizeof(ncases[0]),
        NH = sizeof(hcases) / sizeof(hcases[0]),
        NF = sizeof(fixed) / sizeof(fixed[0]),
        NC = sizeof(ccases) / sizeof(ccases[0]),
        ND = sizeof(dcases) / sizeof(dcases[0])
    };
    static char cnames[NC][96], dnames[ND][96];
    static char nnames[NN][96];
    static char hnames[NH][96];
    struct CMUnitTest tests[NN + NH + NF + NC + ND];
    size_t n = 0;

    /* One named test per table row, so that TAP reports each case. */
    for (size_t i = 0; i < NN; i++) {
        char shown[48];
        size_t k = 0;
        for (const char *p = ncases[i].in; *p && k + 1 < sizeof(shown); p++)
            shown[k++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
        shown[k] = '\0';
        snprintf(nnames[i], sizeof(nnames[i]), "normalize \"%s\"", shown);
        tests[n++] = (struct CMUnitTest){
            .name = nnames[i], .test_func = run_normalize, .initial_state = &ncases[i]};
    }
    for (size_t i = 0; i < NH; i++) {
        snprintf(hnames[i], sizeof(hnames[i]), "upstream head: %s", hcases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = hnames[i], .test_func = run_head, .initial_state = &hcases[i]};
    }
    for (size_t i = 0; i < NC; i++) {
        snprintf(cnames[i], sizeof(cnames[i]), "check: %s", ccases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = cnames[i], .test_func = run_check, .initial_state = &ccases[i]};
    }
    for (size_t i = 0; i < ND; i++) {
        snprintf(dnames[i], sizeof(dnames[i]), "decide: %s", dcases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = dnames[i], .test_func = run_decide, .initial_state = &dcases[i]};
    }
    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("http", tests, n, group_setup, group_teardown);
}
