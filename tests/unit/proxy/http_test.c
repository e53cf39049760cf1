/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_test.c - unit tests of the proxy's socket-free HTTP pieces
 * (src/proxy/http.c): request-target normalisation, a table of targets and
 * what policy and upstream must see (or the exact refusal), and the request
 * head sent upstream: hop-by-hop headers and those named by Connection
 * dropped, X-Forwarded-For/-Proto replaced, X-Forwarded-Client-Cert handled
 * per mode.
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
#include "lib/xfcc.h"
#include "proxy/http.h"
#include "testlib/certfactory.h"

#define E_PCT "malformed percent-encoding in the path"
#define E_ENC "encoded '/', '\\' or NUL in the path is refused (ambiguous to upstreams)"
#define E_CHAR "invalid character in the path"
#define E_ROOT "the path climbs above the root"
#define E_SLASH "request target must start with /"

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
    {"Host", "api.corp"},
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
};

#define KEPT                                                                                       \
    "Host: api.corp\r\n"                                                                           \
    "Accept: */*\r\n"                                                                              \
    "Content-Length: 5\r\n"                                                                        \
    "X-Connection-Info: kept: a name that merely contains connection\r\n"
#define FORWARDED "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\r\n"

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
                             "X-Forwarded-Proto: https\r\n\r\n");
    assert_int_equal(len, strlen(out));
    free(out);
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
        NF = sizeof(fixed) / sizeof(fixed[0])
    };
    static char nnames[NN][96];
    static char hnames[NH][96];
    struct CMUnitTest tests[NN + NH + NF];
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
    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("http", tests, n, group_setup, group_teardown);
}
