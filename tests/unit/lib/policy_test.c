/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_test.c - unit tests of authorization by verified identity
 * (src/lib/policy.c).
 *
 * Four tables: identity patterns as parsed (every type, "any", IP
 * canonicalisation and the exact refusals), the glob matcher, patterns
 * matched against identities made from real certificates (SANs, subject
 * fields, the issuer, the SPIFFE rule, NULL identities), and decisions of a
 * fixed ordered policy on HTTP and TCP requests (first match wins, default
 * deny, method/host/path conditions).  Rule construction errors are checked
 * separately.
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

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/policy.h"
#include "testlib/certfactory.h"

#define ISSUER_DN "CN=Policy CA,O=Corp"
#define UNKNOWN_TAIL                                                                               \
    "; expected uri:, dns:, ip:, email:, cn:, ou:, o:, issuer: followed by a glob, any or anonymous"

/* Identities every table uses, made once. */
struct world {
    EVP_PKEY *k_ca, *k_leaf;
    X509 *ca;
    struct duet_identity *one;   /* one SPIFFE URI SAN, DNS, IPs, email; CN payroll-1, OU HR */
    struct duet_identity *two;   /* two URI SANs, the first the SPIFFE ID of `one` */
    struct duet_identity *multi; /* no SANs; CN admin-7, OU Ops and HR, O Corp and Other */
    struct duet_identity *nocn;  /* only a DNS SAN, no subject at all */
};

static struct world W;

enum who { ID_NULL = 0, ID_ONE, ID_TWO, ID_MULTI, ID_NOCN };

static const struct duet_identity *
who(enum who w)
{
    switch (w) {
    case ID_ONE:
        return W.one;
    case ID_TWO:
        return W.two;
    case ID_MULTI:
        return W.multi;
    case ID_NOCN:
        return W.nocn;
    case ID_NULL:
        break;
    }
    return NULL;
}

static struct duet_identity *
identity_of(X509 *x)
{
    struct duet_identity *id = NULL;
    struct duet_err err;

    err_clear(&err);
    if (identity_from_x509(x, &id, &err) != 0)
        fail_msg("identity_from_x509: %s", err.msg);
    return id;
}

static X509 *
leaf(const char *cn, const char *o, const char *ou, const char *const *sans)
{
    struct cf_cert_spec s = {
        .cn = cn,
        .o = o,
        .ou = ou,
        .key = W.k_leaf,
        .issuer = W.ca,
        .issuer_key = W.k_ca,
        .bc = CF_BC_LEAF,
        .eku = CF_EKU_CLIENT,
        .sans = sans,
    };
    return cf_cert_new(&s);
}

static int
world_setup(void **state)
{
    static const char *const one_sans[] = {"URI:spiffe://corp/hr/payroll",
                                           "DNS:payroll.corp",
                                           "IP:10.1.2.3",
                                           "IP:2001:db8::1",
                                           "email:ops@corp.example",
                                           NULL};
    static const char *const two_sans[] = {"URI:spiffe://corp/hr/payroll",
                                           "URI:https://other.example/id", NULL};
    static const char *const nocn_sans[] = {"DNS:nocn.corp", NULL};
    struct cf_cert_spec ca = {.cn = "Policy CA", .o = "Corp", .bc = CF_BC_CA};
    X509 *x;
    X509_NAME *name;

    (void)state;
    W.k_ca = cf_key_new(CF_KEY_EC_P256);
    W.k_leaf = cf_key_new(CF_KEY_EC_P256);
    ca.key = W.k_ca;
    W.ca = cf_cert_new(&ca);

    x = leaf("payroll-1", "Corp", "HR", one_sans);
    W.one = identity_of(x);
    X509_free(x);
    x = leaf("payroll-2", "Corp", "HR", two_sans);
    W.two = identity_of(x);
    X509_free(x);
    x = leaf(NULL, NULL, NULL, nocn_sans);
    W.nocn = identity_of(x);
    X509_free(x);

    /* Two OUs and two Os: the factory makes one of each, so add and re-sign. */
    x = leaf("admin-7", "Corp", "Ops", NULL);
    name = X509_NAME_dup(X509_get_subject_name(x));
    assert_non_null(name);
    assert_true(X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_UTF8,
                                           (const unsigned char *)"HR", -1, -1, 0));
    assert_true(X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                           (const unsigned char *)"Other", -1, -1, 0));
    assert_true(X509_set_subject_name(x, name));
    X509_NAME_free(name);
    assert_true(X509_sign(x, W.k_ca, EVP_sha256()) > 0);
    W.multi = identity_of(x);
    X509_free(x);

    /* The issuer string the issuer: cases rely on. */
    assert_string_equal(W.one->issuer, ISSUER_DN);
    return 0;
}

static int
world_teardown(void **state)
{
    (void)state;
    identity_free(W.one);
    identity_free(W.two);
    identity_free(W.multi);
    identity_free(W.nocn);
    X509_free(W.ca);
    EVP_PKEY_free(W.k_ca);
    EVP_PKEY_free(W.k_leaf);
    memset(&W, 0, sizeof(W));
    return 0;
}

/* ---- pattern parsing ---- */

struct pcase {
    const char *text;
    enum policy_field field;
    const char *glob;  /* NULL with PF_ANY */
    const char *error; /* the exact message; NULL: must parse */
};

static struct pcase pcases[] = {
    {"uri:spiffe://corp/hr/*", PF_URI, "spiffe://corp/hr/*", NULL},
    {"dns:*.corp", PF_DNS, "*.corp", NULL},
    {"ip:10.0.0.1", PF_IP, "10.0.0.1", NULL},
    {"ip:0:0::1", PF_IP, "::1", NULL},
    {"ip:2001:DB8:0:0:0:0:0:1", PF_IP, "2001:db8::1", NULL},
    {"email:*@corp.example", PF_EMAIL, "*@corp.example", NULL},
    {"cn:payroll-*", PF_CN, "payroll-*", NULL},
    {"ou:HR", PF_OU, "HR", NULL},
    {"o:Corp", PF_O, "Corp", NULL},
    {"issuer:CN=Policy CA,*", PF_ISSUER, "CN=Policy CA,*", NULL},
    {"any", PF_ANY, NULL, NULL},
    {"anonymous", PF_ANONYMOUS, NULL, NULL},
    {"URI:spiffe://x", PF_URI, "spiffe://x", NULL},
    {"cn:a:b", PF_CN, "a:b", NULL},
    {"spife:x", PF_ANY, NULL, "unknown pattern \"spife:x\"" UNKNOWN_TAIL},
    {"uri", PF_ANY, NULL, "unknown pattern \"uri\"" UNKNOWN_TAIL},
    {"", PF_ANY, NULL, "unknown pattern \"\"" UNKNOWN_TAIL},
    {"anything", PF_ANY, NULL, "unknown pattern \"anything\"" UNKNOWN_TAIL},
    {":x", PF_ANY, NULL, "unknown pattern \":x\"" UNKNOWN_TAIL},
    {"uri:", PF_ANY, NULL, "pattern \"uri:\": nothing after \"uri:\""},
    {"ip:", PF_ANY, NULL, "pattern \"ip:\": nothing after \"ip:\""},
    {"ip:10.0.0.256", PF_ANY, NULL, "pattern \"ip:10.0.0.256\": not an IPv4 or IPv6 address"},
    {"ip:10.0.0.*", PF_ANY, NULL, "pattern \"ip:10.0.0.*\": not an IPv4 or IPv6 address"},
    {"ip:host.corp", PF_ANY, NULL, "pattern \"ip:host.corp\": not an IPv4 or IPv6 address"},
};

static void
run_pattern(void **state)
{
    const struct pcase *c = *state;
    struct policy_pattern p;
    struct duet_err err;
    int rc;

    err_clear(&err);
    memset(&p, 0x5a, sizeof(p));
    rc = policy_pattern_parse(c->text, &p, &err);
    if (c->error != NULL) {
        assert_int_equal(rc, -1);
        assert_int_equal(err.kind, DUET_ERR_INPUT);
        assert_string_equal(err.msg, c->error);
        assert_null(p.glob);
        return;
    }
    if (rc != 0)
        fail_msg("\"%s\" refused: %s", c->text, err.msg);
    assert_int_equal(p.field, c->field);
    if (c->glob == NULL)
        assert_null(p.glob);
    else
        assert_string_equal(p.glob, c->glob);
    policy_pattern_clear(&p);
    assert_null(p.glob);
}

static void
test_pattern_null_text(void **state)
{
    struct policy_pattern p;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(policy_pattern_parse(NULL, &p, &err), -1);
    assert_string_equal(err.msg, "unknown pattern \"\"" UNKNOWN_TAIL);
    policy_pattern_clear(NULL); /* NULL is fine */
}

/* ---- glob ---- */

struct gcase {
    const char *pat, *text;
    bool want;
};

static const struct gcase gcases[] = {
    {"", "", true},
    {"", "a", false},
    {"a", "", false},
    {"*", "", true},
    {"**", "x", true},
    {"?", "", false},
    {"?", "x", true},
    {"abc", "abc", true},
    {"abc", "abd", false},
    {"abc", "ABC", false},
    {"a*c", "ac", true},
    {"a*c", "abbbc", true},
    {"a*c", "abcd", false},
    {"a?c", "abc", true},
    {"a?c", "ac", false},
    {"a*b*c", "aXbYc", true},
    {"a*b", "aXbYb", true},
    {"a*b", "aXbY", false},
    {"*.corp", "x.corp", true},
    {"*.corp", "corp", false},
    {"*.corp", "x.corp.evil", false},
    {"spiffe://corp/*", "spiffe://corp/a/b", true},
    {"spiffe://corp/?", "spiffe://corp/ab", false},
};

static void
test_glob(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(gcases) / sizeof(gcases[0]); i++) {
        const struct gcase *g = &gcases[i];
        if (policy_glob(g->pat, g->text) != g->want)
            fail_msg("policy_glob(\"%s\", \"%s\") should be %s", g->pat, g->text,
                     g->want ? "true" : "false");
    }
}

/* ---- matching ---- */

struct mcase {
    const char *pattern;
    enum who id;
    bool want;
};

static const struct mcase mcases[] = {
    {"any", ID_ONE, true},
    {"any", ID_NOCN, true},
    {"uri:spiffe://corp/hr/*", ID_ONE, true},
    {"uri:spiffe://corp/hr/payroll", ID_ONE, true},
    {"uri:spiffe://corp/fin/*", ID_ONE, false},
    /* The SPIFFE rule: two URI SANs, no single SPIFFE ID, even though one matches. */
    {"uri:spiffe://corp/hr/*", ID_TWO, false},
    {"uri:spiffe://*", ID_TWO, false},
    /* Non-SPIFFE URI patterns are not subject to it. */
    {"uri:https://other.example/*", ID_TWO, true},
    {"uri:*", ID_MULTI, false},
    {"dns:*.corp", ID_ONE, true},
    {"dns:payroll.corp", ID_ONE, true},
    {"dns:*.other", ID_ONE, false},
    {"dns:*.corp", ID_MULTI, false},
    {"ip:10.1.2.3", ID_ONE, true},
    {"ip:10.1.2.4", ID_ONE, false},
    {"ip:2001:0db8:0:0::1", ID_ONE, true},
    {"ip:2001:db8::2", ID_ONE, false},
    {"email:*@corp.example", ID_ONE, true},
    {"email:root@*", ID_ONE, false},
    /* DNS SAN values do not satisfy other SAN types. */
    {"uri:payroll.corp", ID_ONE, false},
    {"email:payroll.corp", ID_ONE, false},
    {"cn:payroll-*", ID_ONE, true},
    {"cn:Payroll-*", ID_ONE, false},
    {"cn:payroll-1", ID_TWO, false},
    {"cn:*", ID_NOCN, false},
    {"ou:HR", ID_ONE, true},
    {"ou:Ops", ID_ONE, false},
    {"ou:Ops", ID_MULTI, true},
    {"ou:HR", ID_MULTI, true},
    {"ou:Fin", ID_MULTI, false},
    {"o:Corp", ID_ONE, true},
    {"o:Co*", ID_ONE, true},
    {"o:Other", ID_MULTI, true},
    {"o:Other", ID_ONE, false},
    {"o:*", ID_NOCN, false},
    {"issuer:" ISSUER_DN, ID_ONE, true},
    {"issuer:*O=Corp", ID_MULTI, true},
    {"issuer:CN=Other*", ID_ONE, false},
    /* The issuer pattern is about the issuer, not the subject. */
    {"issuer:CN=payroll-1*", ID_ONE, false},
};

static void
test_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
        const struct mcase *m = &mcases[i];
        struct policy_pattern p;
        struct duet_err err;

        err_clear(&err);
        if (policy_pattern_parse(m->pattern, &p, &err) != 0)
            fail_msg("%s: %s", m->pattern, err.msg);
        if (policy_pattern_match(&p, who(m->id)) != m->want)
            fail_msg("pattern \"%s\" on identity #%d should %smatch", m->pattern, (int)m->id,
                     m->want ? "" : "not ");
        policy_pattern_clear(&p);
    }
}

/* A NULL identity (no certificate presented) matches no pattern, not even "any". */
static void
test_match_null_identity(void **state)
{
    static const char *const pats[] = {"any",  "uri:*", "dns:*", "ip:10.1.2.3", "email:*",
                                       "cn:*", "ou:*",  "o:*",   "issuer:*"};

    (void)state;
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        struct policy_pattern p;
        struct duet_err err;

        err_clear(&err);
        assert_int_equal(policy_pattern_parse(pats[i], &p, &err), 0);
        if (policy_pattern_match(&p, NULL))
            fail_msg("pattern \"%s\" matched a NULL identity", pats[i]);
        /* ...while each does match a real identity, so the test can tell. */
        if (!policy_pattern_match(&p, W.one))
            fail_msg("pattern \"%s\" should match identity one", pats[i]);
        policy_pattern_clear(&p);
    }
}

/* "anonymous" matches the absent identity (verify: optional, no certificate) and no other. */
static void
test_match_anonymous(void **state)
{
    struct policy_pattern p;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(policy_pattern_parse("anonymous", &p, &err), 0);
    assert_true(policy_pattern_match(&p, NULL));
    assert_false(policy_pattern_match(&p, W.one));
    policy_pattern_clear(&p);
}

/* ---- decisions ---- */

/*
 * The policy every decision case runs against, in order:
 *   hr-read       allow the corp/hr SPIFFE IDs  GET,head  host api.corp  path /hr/
 *   hr-deny-rest  deny  the corp/hr SPIFFE IDs                            path /hr/
 *   ops           allow ou:Ops, cn:admin-*              host *.Ops.Corp
 *   v6            allow o:Corp                          host [2001:db8::1] path /v6
 *   public        allow any                  GET                          path /public/
 *   health        allow any                                               path = /health
 *   api           allow any                                               path /api (segments)
 */
static void
build_policy(struct policy *pol)
{
    static const char *const hr[] = {"uri:spiffe://corp/hr/*"};
    static const char *const hr_methods[] = {"GET", "head"};
    static const char *const ops[] = {"ou:Ops", "cn:admin-*"};
    static const char *const corp[] = {"o:Corp"};
    static const char *const any[] = {"any"};
    static const char *const get[] = {"GET"};
    struct duet_err err;

    memset(pol, 0, sizeof(*pol));
    err_clear(&err);
    if (policy_add_rule(pol, "hr-read", true, hr, 1, hr_methods, 2, "api.corp", NULL, "/hr/", &err) !=
            0 ||
        policy_add_rule(pol, "hr-deny-rest", false, hr, 1, NULL, 0, NULL, NULL, "/hr/", &err) != 0 ||
        policy_add_rule(pol, "ops", true, ops, 2, NULL, 0, "*.Ops.Corp", NULL, NULL, &err) != 0 ||
        policy_add_rule(pol, "v6", true, corp, 1, NULL, 0, "[2001:db8::1]", NULL, "/v6", &err) != 0 ||
        policy_add_rule(pol, "public", true, any, 1, get, 1, NULL, NULL, "/public/", &err) != 0 ||
        policy_add_rule(pol, "health", true, any, 1, NULL, 0, NULL, "/health", NULL, &err) != 0 ||
        policy_add_rule(pol, "api", true, any, 1, NULL, 0, NULL, NULL, "/api", &err) != 0)
        fail_msg("policy_add_rule: %s", err.msg);
    assert_int_equal(pol->nrules, 7);
}

struct dcase {
    const char *name;
    enum who id;
    const char *method, *host, *path;
    bool allow;
    const char *rule;
};

static struct dcase dcases[] = {
    {"hr read", ID_ONE, "GET", "api.corp", "/hr/x", true, "hr-read"},
    {"method case-insensitive", ID_ONE, "get", "api.corp", "/hr/x", true, "hr-read"},
    {"rule method case-insensitive", ID_ONE, "HEAD", "api.corp", "/hr/x", true, "hr-read"},
    {"host without port, any case", ID_ONE, "GET", "API.Corp:8443", "/hr/x", true, "hr-read"},
    {"absolute host name (trailing dot)", ID_ONE, "GET", "api.corp.:8443", "/hr/x", true,
     "hr-read"},
    {"two trailing dots are not the host", ID_ONE, "GET", "api.corp..", "/hr/x", false,
     "hr-deny-rest"},
    {"first match wins: method falls through", ID_ONE, "POST", "api.corp", "/hr/x", false,
     "hr-deny-rest"},
    {"first match wins: host falls through", ID_ONE, "GET", "other.corp", "/hr/x", false,
     "hr-deny-rest"},
    {"no host falls through", ID_ONE, "GET", NULL, "/hr/x", false, "hr-deny-rest"},
    {"host prefix is not the host", ID_ONE, "GET", "api.corp.evil", "/hr/x", false, "hr-deny-rest"},
    {"path prefix is a prefix", ID_ONE, "GET", "api.corp", "/hrx", false, "default-deny"},
    {"path prefix case-sensitive", ID_ONE, "GET", "api.corp", "/HR/x", false, "default-deny"},
    {"SPIFFE rule: two URI SANs", ID_TWO, "GET", "api.corp", "/hr/x", false, "default-deny"},
    {"second pattern of a rule", ID_MULTI, "PUT", "x.ops.corp", "/anything", true, "ops"},
    {"rule host glob any case", ID_MULTI, "PUT", "X.OPS.CORP:443", "/", true, "ops"},
    {"host glob needs a label", ID_MULTI, "PUT", "ops.corp", "/", false, "default-deny"},
    {"IPv6 literal host with port", ID_ONE, "GET", "[2001:db8::1]:8443", "/v6/x", true, "v6"},
    {"IPv6 literal host", ID_ONE, "GET", "[2001:DB8::1]", "/v6", true, "v6"},
    {"IPv6 other host", ID_ONE, "GET", "[2001:db8::2]:8443", "/v6/x", false, "default-deny"},
    {"any", ID_NOCN, "GET", "whatever", "/public/a", true, "public"},
    {"any, wrong method", ID_NOCN, "DELETE", "whatever", "/public/a", false, "default-deny"},
    {"no identity never matches, not even any", ID_NULL, "GET", "api.corp", "/public/a", false,
     "default-deny"},
    {"TCP request against HTTP rules", ID_ONE, NULL, NULL, NULL, false, "default-deny"},
    {"segment prefix: a sibling is not under it", ID_ONE, "GET", "[2001:db8::1]", "/v6x", false,
     "default-deny"},
    {"exact path", ID_NOCN, "GET", "a", "/health", true, "health"},
    {"exact path, query aside", ID_NOCN, "GET", "a", "/health?verbose=1", true, "health"},
    {"exact path: a longer name is another path", ID_NOCN, "GET", "a", "/healthz-admin", false,
     "default-deny"},
    {"exact path: a segment below is another path", ID_NOCN, "GET", "a", "/health/x", false,
     "default-deny"},
    {"exact path: trailing slash is another path", ID_NOCN, "GET", "a", "/health/", false,
     "default-deny"},
    {"exact path, case-sensitive", ID_NOCN, "GET", "a", "/Health", false, "default-deny"},
    {"exact path: the query is not the path", ID_NOCN, "GET", "a", "/x?/health", false,
     "default-deny"},
    {"segment prefix itself", ID_NOCN, "POST", "a", "/api", true, "api"},
    {"segment prefix, query", ID_NOCN, "POST", "a", "/api?x=/y", true, "api"},
    {"segment prefix, below", ID_NOCN, "POST", "a", "/api/x/y", true, "api"},
    {"segment prefix, trailing slash", ID_NOCN, "POST", "a", "/api/", true, "api"},
    {"segment prefix: sibling refused", ID_NOCN, "POST", "a", "/apix", false, "default-deny"},
    {"segment prefix: sibling with query refused", ID_NOCN, "POST", "a", "/apix?/api/", false,
     "default-deny"},
    {"prefix with slash: the bare segment is not under it", ID_NOCN, "GET", "a", "/public",
     false, "default-deny"},
};

static void
run_decide(void **state)
{
    const struct dcase *c = *state;
    struct policy pol;
    struct policy_request req = {who(c->id), c->method, c->host, c->path};
    struct policy_decision d;

    build_policy(&pol);
    d = policy_decide(&pol, &req);
    assert_non_null(d.rule);
    assert_string_equal(d.rule, c->rule);
    assert_int_equal(d.allow, c->allow);
    policy_clear(&pol);
    assert_int_equal(pol.nrules, 0);
    assert_null(pol.rules);
}

/* An empty policy denies everything, by "default-deny". */
static void
test_empty_policy(void **state)
{
    struct policy pol = {0};
    struct policy_request req = {NULL, "GET", "a", "/"};
    struct policy_decision d;

    (void)state;
    d = policy_decide(&pol, &req);
    assert_false(d.allow);
    assert_string_equal(d.rule, "default-deny");
    req.id = W.one;
    d = policy_decide(&pol, &req);
    assert_false(d.allow);
    assert_string_equal(d.rule, "default-deny");
    policy_clear(&pol);
    policy_clear(NULL);
}

/* TCP mode: no method, host or path; rules without HTTP conditions decide. */
static void
test_tcp_mode(void **state)
{
    static const char *const spiffe[] = {"uri:spiffe://corp/hr/*"};
    static const char *const dns[] = {"dns:*.corp"};
    struct policy pol = {0};
    struct policy_request req = {W.one, NULL, NULL, NULL};
    struct policy_decision d;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(policy_add_rule(&pol, "deny-dns", false, dns, 1, NULL, 0, NULL, NULL, NULL, &err),
                     0);
    assert_int_equal(policy_add_rule(&pol, "allow-hr", true, spiffe, 1, NULL, 0, NULL, NULL, NULL, &err),
                     0);
    /* Both rules match `one`: the first (deny) wins. */
    d = policy_decide(&pol, &req);
    assert_false(d.allow);
    assert_string_equal(d.rule, "deny-dns");
    /* `two` carries no DNS SAN and fails the SPIFFE rule. */
    req.id = W.two;
    d = policy_decide(&pol, &req);
    assert_false(d.allow);
    assert_string_equal(d.rule, "default-deny");
    policy_clear(&pol);

    assert_int_equal(policy_add_rule(&pol, "allow-hr", true, spiffe, 1, NULL, 0, NULL, NULL, NULL, &err),
                     0);
    req.id = W.one;
    d = policy_decide(&pol, &req);
    assert_true(d.allow);
    assert_string_equal(d.rule, "allow-hr");
    policy_clear(&pol);
}

/* The policy copies what it is given. */
static void
test_add_rule_copies(void **state)
{
    char name[] = "copied";
    char pat[] = "cn:payroll-*";
    char method[] = "GET";
    char host[] = "api.corp";
    char path[] = "/p/";
    const char *pats[] = {pat};
    const char *methods[] = {method};
    struct policy pol = {0};
    struct policy_request req = {NULL, "GET", "api.corp", "/p/x"};
    struct policy_decision d;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(policy_add_rule(&pol, name, true, pats, 1, methods, 1, host, NULL, path, &err), 0);
    memset(name, 'x', sizeof(name) - 1);
    memset(pat, 'x', sizeof(pat) - 1);
    memset(method, 'x', sizeof(method) - 1);
    memset(host, 'x', sizeof(host) - 1);
    memset(path, 'x', sizeof(path) - 1);
    req.id = W.one;
    d = policy_decide(&pol, &req);
    assert_true(d.allow);
    assert_string_equal(d.rule, "copied");
    policy_clear(&pol);
}

struct rcase {
    const char *name;
    const char *const *patterns;
    size_t npatterns;
    const char *error;
};

static const char *const bad_pat[] = {"cn:ok", "spife:x"};
static const char *const bad_ip[] = {"ip:300.1.1.1"};
static const char *const ok_pat[] = {"any"};

static const struct rcase rcases[] = {
    {"r1", ok_pat, 0, "rule r1: no identity pattern"},
    {"r2", bad_pat, 2, "rule r2: unknown pattern \"spife:x\"" UNKNOWN_TAIL},
    {"r3", bad_ip, 1, "rule r3: pattern \"ip:300.1.1.1\": not an IPv4 or IPv6 address"},
};

/* A refused rule leaves the policy as it was. */
static void
test_add_rule_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
        struct policy pol = {0};
        struct duet_err err;

        build_policy(&pol);
        err_clear(&err);
        assert_int_equal(policy_add_rule(&pol, rcases[i].name, true, rcases[i].patterns,
                                         rcases[i].npatterns, NULL, 0, NULL, NULL, NULL, &err),
                         -1);
        assert_int_equal(err.kind, DUET_ERR_INPUT);
        assert_string_equal(err.msg, rcases[i].error);
        assert_int_equal(pol.nrules, 7);
        policy_clear(&pol);
    }
}

/* Path conditions: exact and prefix exclude each other; both start with '/'. */
static void
test_add_rule_path_errors(void **state)
{
    static const char *const any[] = {"any"};
    static const struct {
        const char *path, *prefix, *error;
    } cases[] = {
        {"/a", "/a/", "rule p: path (exact) and path_prefix exclude each other; keep one"},
        {"health", NULL, "rule p: path \"health\": a path starts with /"},
        {NULL, "api/", "rule p: path \"api/\": a path starts with /"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy pol = {0};
        struct duet_err err;

        err_clear(&err);
        assert_int_equal(policy_add_rule(&pol, "p", true, any, 1, NULL, 0, NULL, cases[i].path,
                                         cases[i].prefix, &err),
                         -1);
        assert_string_equal(err.msg, cases[i].error);
        assert_int_equal(pol.nrules, 0);
    }
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_pattern_null_text),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_null_identity),
        cmocka_unit_test(test_match_anonymous),
        cmocka_unit_test(test_empty_policy),
        cmocka_unit_test(test_tcp_mode),
        cmocka_unit_test(test_add_rule_copies),
        cmocka_unit_test(test_add_rule_errors),
        cmocka_unit_test(test_add_rule_path_errors),
    };
    enum {
        NP = sizeof(pcases) / sizeof(pcases[0]),
        ND = sizeof(dcases) / sizeof(dcases[0]),
        NF = sizeof(fixed) / sizeof(fixed[0])
    };
    static char pnames[NP][96];
    struct CMUnitTest tests[NP + ND + NF];
    size_t n = 0;

    /* One named test per table row, so that TAP reports each case. */
    for (size_t i = 0; i < NP; i++) {
        snprintf(pnames[i], sizeof(pnames[i]), "pattern \"%s\"", pcases[i].text);
        tests[n++] = (struct CMUnitTest){
            .name = pnames[i], .test_func = run_pattern, .initial_state = &pcases[i]};
    }
    for (size_t i = 0; i < ND; i++)
        tests[n++] = (struct CMUnitTest){
            .name = dcases[i].name, .test_func = run_decide, .initial_state = &dcases[i]};
    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("policy", tests, n, world_setup, world_teardown);
}
