/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issue_test.c - unit tests of the CA's issuance rules (src/ca/issue.c):
 * signing CSRs, renewal and the default SAN, against one CA made for the
 * group in a temporary directory.
 *
 * CSRs are built here with the OpenSSL API, independently of the code under
 * test.  A signed CSR must carry what it asked for and the profile allows,
 * and nothing else it asked for (CA:TRUE); a refusal names the rule and
 * leaves the inventory unchanged.  A renewal keeps the identity and links
 * the two inventory rows both ways; a revoked or already renewed certificate
 * cannot be renewed.  The renewal window: while valid, then within the
 * profile's renew_grace from the row's notAfter, never for a revoked or CA row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "lib/err.h"
#include "lib/x509util.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define TD "corp.example"

static struct cafx F; /* F.key: the subjects' key */

static int
group_setup(void **state)
{
    (void)state;
    return cafx_setup(&F, (struct ca_init_opts){.name = "Issue Test", .trust_domain = TD}, NULL);
}

static int
group_teardown(void **state)
{
    (void)state;
    cafx_teardown(&F);
    return 0;
}

/* ---- independent helpers ---- */

static struct store_cert *
row_of(X509 *cert)
{
    struct store_cert *row = NULL;
    struct duet_err err = {0};
    char *serial = x509u_serial(X509_get0_serialNumber(cert));

    assert_non_null(serial);
    if (store_get(ca_store(F.ca), serial, &row, &err) != 0)
        fail_msg("store_get %s: %s", serial, err.msg);
    assert_non_null(row);
    free(serial);
    return row;
}

static char *
subject_cn(X509 *cert)
{
    return x509u_name_cn(X509_get_subject_name(cert));
}

/*
 * A CSR for F.key with subject CN (NULL: none), the SANs given as OpenSSL
 * configuration values ("DNS:a", NULL-terminated; NULL: no extension), and
 * basicConstraints CA:TRUE when ask_ca is set.
 */
static X509_REQ *
make_csr(const char *cn, const char *const *sans, bool ask_ca)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;

    assert_non_null(req);
    assert_non_null(name);
    assert_non_null(exts);
    if (cn != NULL)
        assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                               -1, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, name));
    assert_true(X509_REQ_set_pubkey(req, F.key));
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    if (sans != NULL) {
        char val[512] = "";
        for (size_t i = 0; sans[i] != NULL; i++) {
            strcat(val, i ? "," : "");
            strcat(val, sans[i]);
        }
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name, val);
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    if (ask_ca) {
        X509_EXTENSION *e =
            X509V3_EXT_nconf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    if (sk_X509_EXTENSION_num(exts) > 0)
        assert_true(X509_REQ_add_extensions(req, exts));
    assert_true(X509_REQ_sign(req, F.key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return req;
}

/* ca_csr_check then ca_sign_csr under a profile; returns the rc, *cert or err filled. */
static int
sign(X509_REQ *req, const char *profile, const char *name, X509 **cert, struct duet_err *err)
{
    struct ca_sign_opts o = {.profile = profile, .name = name, .owner = "team-a"};
    struct ca_csr csr;
    bool clamped = false;
    int rc;

    *cert = NULL;
    rc = ca_csr_check(req, "req.csr", &o, &csr, err);
    if (rc == 0)
        rc = ca_sign_csr(F.ca, &csr, &o, cert, &clamped, err);
    ca_csr_clear(&csr);
    return rc;
}

/* ---- CSRs ---- */

static void
test_sign_valid_csr(void **state)
{
    static const char *const sans[] = {"DNS:api.corp.example", "IP:10.1.2.3", NULL};
    X509_REQ *req = make_csr("api.corp.example", sans, false);
    struct duet_err err = {0};
    X509 *cert = NULL;
    size_t before = cafx_inventory_count(F.ca);

    (void)state;
    if (sign(req, "server", NULL, &cert, &err) != 0)
        fail_msg("sign: %s", err.msg);
    char *cn = subject_cn(cert);
    char *names = cafx_sans_text(cert);
    assert_string_equal(cn, "api.corp.example");
    assert_string_equal(names, "DNS:api.corp.example, IP Address:10.1.2.3");
    /* The CSR's key is the one certified. */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), F.key), 1);
    /* Recorded, with the profile and owner. */
    assert_int_equal(cafx_inventory_count(F.ca), before + 1);
    struct store_cert *row = row_of(cert);
    assert_string_equal(row->profile, "server");
    assert_string_equal(row->owner, "team-a");
    assert_null(row->renews);
    store_cert_free(row);
    free(cn);
    free(names);
    X509_free(cert);
    X509_REQ_free(req);
}

/* Refusals of ca_csr_check and ca_sign_csr: the exact reason, nothing recorded. */
static void
test_sign_refusals(void **state)
{
    static const char *const dns[] = {"DNS:api.corp.example", NULL};
    static const char *const spiffe_and_dns[] = {"URI:spiffe://" TD "/alice",
                                                 "DNS:alice.corp.example", NULL};
    static const char *const other_td[] = {"URI:spiffe://evil.example/alice", NULL};
    static const char *const spiffe[] = {"URI:spiffe://" TD "/alice", NULL};
    static const struct {
        const char *what;
        const char *cn;
        const char *const *sans;
        const char *profile;
        const char *want;
    } cases[] = {
        {"a DNS name in a client (SPIFFE-only) profile", "alice", spiffe_and_dns, "client",
         "name dns:alice.corp.example is not allowed by profile client (it allows uri)"},
        {"a SPIFFE ID of another trust domain", "alice", other_td, "client",
         "name uri:spiffe://evil.example/alice is not allowed by profile client: it must match "
         "one of spiffe://" TD "/*"},
        {"no name for a server", "api.corp.example", NULL, "server",
         "profile server requires at least one subject alternative name (--san)"},
        {"a CN that is none of the names", "root-admin", spiffe, "client",
         "the CSR: its subject CN \"root-admin\" is none of the names being certified; give "
         "--name to choose the certificate's name"},
        {"an unknown profile", "api.corp.example", dns, "nosuch", "profile \"nosuch\" is not in"},
        {"no CN and no SAN", NULL, NULL, "server",
         "req.csr: the CSR has no CN and no SAN; give --name"},
    };
    size_t before = cafx_inventory_count(F.ca);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_REQ *req = make_csr(cases[i].cn, cases[i].sans, false);
        struct duet_err err = {0};
        X509 *cert = NULL;
        if (sign(req, cases[i].profile, NULL, &cert, &err) == 0)
            fail_msg("%s: signed", cases[i].what);
        assert_null(cert);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].what, err.msg, cases[i].want);
        X509_REQ_free(req);
    }
    assert_int_equal(cafx_inventory_count(F.ca), before);
}

/*
 * A CSR's CN with characters no certified name has (here U+0085 NEXT LINE, a
 * C1 control, and U+202E RIGHT-TO-LEFT OVERRIDE) is refused without quoting
 * it: the refusal reaches terminals and logs (found by
 * tests/fuzz/csr_fuzz.c).  With --name the CSR's CN is not used: signed.
 */
static void
test_sign_unprintable_cn(void **state)
{
    static const char *const dns[] = {"DNS:host.example", NULL};
    X509_REQ *req = make_csr("host\xc2\x85\xe2\x80\xae" "example", dns, false);
    struct duet_err err = {0};
    X509 *cert = NULL;
    size_t before = cafx_inventory_count(F.ca);

    (void)state;
    assert_int_not_equal(sign(req, "server", NULL, &cert, &err), 0);
    assert_null(cert);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    for (const char *p = err.msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            fail_msg("an unprintable byte 0x%02x in \"%s\"", (unsigned char)*p, err.msg);
    if (strstr(err.msg, "req.csr: its subject CN holds the byte 0xc2 at offset 4") == NULL ||
        strstr(err.msg, "give --name") == NULL)
        fail_msg("got \"%s\"", err.msg);
    assert_int_equal(cafx_inventory_count(F.ca), before);
    if (sign(req, "server", "host.example", &cert, &err) != 0)
        fail_msg("sign with --name: %s", err.msg);
    char *cn = subject_cn(cert);
    assert_string_equal(cn, "host.example");
    free(cn);
    X509_free(cert);
    X509_REQ_free(req);
}

/* A CSR whose signature is not made by its key is refused before anything else. */
static void
test_sign_bad_signature(void **state)
{
    static const char *const dns[] = {"DNS:api.corp.example", NULL};
    X509_REQ *req = make_csr("api.corp.example", dns, false);
    EVP_PKEY *other = cf_key_new(CF_KEY_EC_P256);
    struct ca_sign_opts o = {.profile = "server"};
    struct ca_csr csr;
    struct duet_err err = {0};

    (void)state;
    assert_true(X509_REQ_sign(req, other, EVP_sha256()) > 0); /* signed by another key */
    assert_int_equal(ca_csr_check(req, "req.csr", &o, &csr, &err), -1);
    assert_string_equal(
        err.msg, "req.csr: the CSR's signature does not verify with its own key; refusing it");
    assert_null(csr.cn);
    assert_null(csr.names);
    EVP_PKEY_free(other);
    X509_REQ_free(req);
}

/* A CSR whose extensions are a raw list: two SAN extensions, or one that does not decode. */
static X509_REQ *
make_csr_raw_sans(bool twice)
{
    static const unsigned char garbage[] = {0x30, 0x03, 0x82, 0x05, 0x61}; /* length past the end */
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509V3_CTX ctx;

    assert_non_null(req);
    assert_non_null(exts);
    assert_non_null(os);
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"api.corp.example", -1, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, name));
    assert_true(X509_REQ_set_pubkey(req, F.key));
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    if (twice) {
        for (int i = 0; i < 2; i++) {
            X509_EXTENSION *e = X509V3_EXT_nconf_nid(
                NULL, &ctx, NID_subject_alt_name, i ? "DNS:evil.example" : "DNS:api.corp.example");
            assert_non_null(e);
            sk_X509_EXTENSION_push(exts, e);
        }
    } else {
        assert_true(ASN1_OCTET_STRING_set(os, garbage, sizeof(garbage)));
        X509_EXTENSION *e = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, os);
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    assert_true(X509_REQ_add_extensions(req, exts));
    assert_true(X509_REQ_sign(req, F.key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_OCTET_STRING_free(os);
    X509_NAME_free(name);
    return req;
}

/* SAN extensions that cannot be read as one list of names: the CSR is refused. */
static void
test_sign_bad_san_extensions(void **state)
{
    static const struct {
        bool twice;
        const char *want;
    } cases[] = {
        {true, "req.csr: the CSR has more than one subjectAltName extension; refusing it"},
        {false, "req.csr: the CSR's subjectAltName extension cannot be decoded; refusing it"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_REQ *req = make_csr_raw_sans(cases[i].twice);
        struct ca_sign_opts o = {.profile = "server"};
        struct ca_csr csr;
        struct duet_err err = {0};

        assert_int_equal(ca_csr_check(req, "req.csr", &o, &csr, &err), -1);
        assert_string_equal(err.msg, cases[i].want);
        assert_null(csr.names);
        assert_null(csr.cn);
        X509_REQ_free(req);
    }
}

/* CA:TRUE asked for in a CSR is ignored: the certificate is a leaf of the profile. */
static void
test_sign_ignores_ca_request(void **state)
{
    static const char *const dns[] = {"DNS:ca.corp.example", NULL};
    X509_REQ *req = make_csr("ca.corp.example", dns, true);
    struct duet_err err = {0};
    X509 *cert = NULL;

    (void)state;
    if (sign(req, "server", NULL, &cert, &err) != 0)
        fail_msg("sign: %s", err.msg);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_false(bc->ca);
    assert_null(bc->pathlen);
    BASIC_CONSTRAINTS_free(bc);
    assert_false(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_check_ca(cert), 0);
    X509_free(cert);
    X509_REQ_free(req);
}

/* --name replaces the CSR's CN; it need not be one of the names. */
static void
test_sign_name_given(void **state)
{
    static const char *const spiffe[] = {"URI:spiffe://" TD "/alice", NULL};
    X509_REQ *req = make_csr("not-a-name", spiffe, false);
    struct duet_err err = {0};
    X509 *cert = NULL;

    (void)state;
    if (sign(req, "client", "Alice Laptop", &cert, &err) != 0)
        fail_msg("sign: %s", err.msg);
    char *cn = subject_cn(cert);
    assert_string_equal(cn, "Alice Laptop");
    free(cn);
    X509_free(cert);
    X509_REQ_free(req);
}

/* ---- the default SAN and issuance with a new key ---- */

static void
test_default_san(void **state)
{
    static const struct {
        const char *profile;
        const char *owner;
        const char *want; /* NULL: none */
    } cases[] = {
        {"server", NULL, "dns:web"},
        {"client", NULL, "uri:spiffe://" TD "/web"},
        /* An owner is inventory only unless the profile has team_from_owner (team_test.c). */
        {"client", "payments", "uri:spiffe://" TD "/web"},
        {"peer", NULL, "uri:spiffe://" TD "/web"},
        {"device", NULL, NULL},
        {"nosuch", NULL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        char *got = (char *)"unset";
        assert_int_equal(ca_default_san(ca_config(F.ca), cases[i].profile, "web", cases[i].owner, &got,
                                        &err), 0);
        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void
test_issue_keypair(void **state)
{
    struct ca_request req = {.profile = "client", .cn = "bob", .owner = "hr"};
    struct duet_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    bool clamped = true;

    (void)state;
    if (ca_issue_keypair(F.ca, &req, "ed25519", &cert, &key, &clamped, &err) != 0)
        fail_msg("ca_issue_keypair: %s", err.msg);
    assert_false(clamped);
    assert_true(EVP_PKEY_is_a(key, "ED25519"));
    assert_int_equal(X509_check_private_key(cert, key), 1);
    char *names = cafx_sans_text(cert);
    assert_string_equal(names, "URI:spiffe://" TD "/bob");
    free(names);
    X509_free(cert);
    EVP_PKEY_free(key);

    /* A bad key type: refused with the types, nothing made. */
    size_t before = cafx_inventory_count(F.ca);
    assert_int_equal(ca_issue_keypair(F.ca, &req, "rsa1024", &cert, &key, &clamped, &err), -1);
    assert_null(cert);
    assert_null(key);
    assert_string_equal(err.msg, "key type \"rsa1024\" is not supported; expected p256, p384, "
                                 "ed25519 or rsa3072");
    assert_int_equal(cafx_inventory_count(F.ca), before);
}

/* ---- renewal ---- */

static X509 *
issue_server(const char *name, const char *location)
{
    char dns[128];
    const char *sans[] = {dns, "ip:192.0.2.7"};
    struct ca_request req = {.profile = "server",
                             .cn = name,
                             .sans = sans,
                             .nsans = 2,
                             .ttl = 10 * CF_DAY,
                             .owner = "ops",
                             .location = location,
                             .pubkey = F.key};
    struct duet_err err = {0};
    X509 *cert = NULL;

    snprintf(dns, sizeof(dns), "dns:%s", name);
    if (ca_issue(F.ca, &req, &cert, NULL, &err) != 0)
        fail_msg("ca_issue: %s", err.msg);
    return cert;
}

static void
test_renew_keeps_identity_and_links(void **state)
{
    X509 *old = issue_server("renew.corp.example", "rack 4");
    struct store_cert *row = row_of(old), *after = NULL;
    struct ca_renewal r;
    struct ca_renew_opts o = {0};
    struct duet_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    bool clamped = false;

    (void)state;
    if (ca_renew_check(row, &r, &err) != 0)
        fail_msg("ca_renew_check: %s", err.msg);
    assert_string_equal(r.cn, "renew.corp.example");
    if (ca_renew(F.ca, &r, &o, &cert, &key, &clamped, &err) != 0)
        fail_msg("ca_renew: %s", err.msg);

    /* Same identity, new serial, new key (of ca.yaml's type, P-256). */
    char *cn_old = subject_cn(old), *cn_new = subject_cn(cert);
    char *sans_old = cafx_sans_text(old), *sans_new = cafx_sans_text(cert);
    assert_string_equal(cn_new, cn_old);
    assert_string_equal(sans_new, sans_old);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(old), X509_get_subject_name(cert)), 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(old), X509_get0_serialNumber(cert)), 0);
    assert_non_null(key);
    assert_true(EVP_PKEY_is_a(key, "EC"));
    assert_int_equal(X509_check_private_key(cert, key), 1);
    assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), F.key), 1);

    /* The same length of validity. */
    int64_t nb = 0, na = 0, onb = 0, ona = 0;
    assert_true(x509u_time(X509_get0_notBefore(cert), &nb));
    assert_true(x509u_time(X509_get0_notAfter(cert), &na));
    assert_true(x509u_time(X509_get0_notBefore(old), &onb));
    assert_true(x509u_time(X509_get0_notAfter(old), &ona));
    assert_int_equal(na - nb, ona - onb);

    /* The inventory links both ways and keeps profile, owner and location. */
    struct store_cert *new_row = row_of(cert);
    assert_string_equal(new_row->renews, row->serial);
    assert_string_equal(new_row->profile, "server");
    assert_string_equal(new_row->owner, "ops");
    assert_string_equal(new_row->location, "rack 4");
    if (store_get(ca_store(F.ca), row->serial, &after, &err) != 0)
        fail_msg("store_get: %s", err.msg);
    assert_string_equal(after->renewed_by, new_row->serial);

    /* Renewed once: not again. */
    struct ca_renewal r2;
    assert_int_equal(ca_renew_check(after, &r2, &err), -1);
    assert_null(r2.old);
    char want[512];
    snprintf(want, sizeof(want),
             "certificate renew.corp.example (serial %s) was already "
             "renewed by %s",
             row->serial, new_row->serial);
    assert_string_equal(err.msg, want);

    /* The renewal itself renews, with the same key when asked. */
    struct ca_renewal r3;
    struct ca_renew_opts reuse = {.reuse_key = true};
    X509 *third = NULL;
    EVP_PKEY *none = NULL;
    if (ca_renew_check(new_row, &r3, &err) != 0 ||
        ca_renew(F.ca, &r3, &reuse, &third, &none, &clamped, &err) != 0)
        fail_msg("renew again: %s", err.msg);
    assert_null(none);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(third), X509_get0_pubkey(cert)), 1);

    ca_renewal_clear(&r3);
    ca_renewal_clear(&r);
    X509_free(third);
    store_cert_free(new_row);
    store_cert_free(after);
    free(cn_old);
    free(cn_new);
    free(sans_old);
    free(sans_new);
    EVP_PKEY_free(key);
    X509_free(cert);
    X509_free(old);
    store_cert_free(row);
}

static void
test_revoked_cannot_renew(void **state)
{
    X509 *old = issue_server("revoked.corp.example", NULL);
    struct store_cert *row = row_of(old), *revoked = NULL;
    struct ca_renewal r;
    struct duet_err err = {0};
    size_t before;
    char want[256];

    (void)state;
    if (ca_revoke(F.ca, row->serial, 1, (int64_t)time(NULL), NULL, &err) != 0)
        fail_msg("ca_revoke: %s", err.msg);
    if (store_get(ca_store(F.ca), row->serial, &revoked, &err) != 0)
        fail_msg("store_get: %s", err.msg);
    before = cafx_inventory_count(F.ca);
    assert_int_equal(ca_renew_check(revoked, &r, &err), -1);
    snprintf(want, sizeof(want),
             "certificate revoked.corp.example (serial %s) is revoked; issue a new one instead",
             row->serial);
    assert_string_equal(err.msg, want);
    assert_null(r.old);
    assert_null(r.cn);
    assert_int_equal(cafx_inventory_count(F.ca), before);
    store_cert_free(revoked);
    store_cert_free(row);
    X509_free(old);
}

/* The issuing CA's own row is not renewed by ca_renew. */
static void
test_issuing_ca_cannot_renew(void **state)
{
    struct store_cert *row = row_of(ca_issuing_cert(F.ca));
    struct ca_renewal r;
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(ca_renew_check(row, &r, &err), -1);
    assert_contains(err.msg, "is the issuing CA; a new issuing CA needs the root key");
    store_cert_free(row);
}

/*
 * When a certificate may renew by presenting itself: while valid, then for
 * its profile's renew_grace counted from the row's not_after; never when
 * revoked (expired or not), not yet valid, or a CA row, whatever ca.yaml says.
 */
static void
test_renew_window(void **state)
{
    static struct ca_profile profiles[] = {
        {.name = (char *)"client", .renew_grace = 36 * 3600},
        {.name = (char *)"server", .renew_grace = 0},
        /* An operator naming profiles after the CA's own rows gives them no grace. */
        {.name = (char *)"issuing-ca", .renew_grace = 36 * 3600},
        {.name = (char *)CA_PROFILE_OCSP_SIGNER, .renew_grace = 36 * 3600},
    };
    static const struct ca_config cfg = {
        .trust_domain = (char *)TD, .profiles = profiles, .nprofiles = 4};
    const int64_t na = 1700000000, g = 36 * 3600;
    static const struct {
        const char *what, *profile;
        bool revoked;
        int64_t at; /* relative to not_after */
        int rc;
        bool in_grace;
        const char *grace_text;
        const char *msg[3];
    } cases[] = {
        {"valid", "client", false, -1, 0, false, "36h", {NULL}},
        {"valid, grace off", "server", false, -3600, 0, false, "off", {NULL}},
        /* RFC 5280 4.1.2.5: valid through its notAfter second, in grace one second later. */
        {"at notAfter", "client", false, 0, 0, false, "36h", {NULL}},
        {"a second after notAfter", "client", false, 1, 0, true, "36h", {NULL}},
        {"last second of the grace", "client", false, 36 * 3600 - 1, 0, true, "36h", {NULL}},
        {"grace ended",
         "client",
         false,
         36 * 3600,
         -1,
         false,
         "36h",
         {"(serial 0A) expired at 2023-11-14T22:13:20Z",
          "profile client allows renewal for 36h after expiry (renew_grace), which ended at "
          "2023-11-16T10:13:20Z",
          "enroll again with a new token (duet ca token)"}},
        {"grace off",
         "server",
         false,
         1,
         -1,
         false,
         "off",
         {"(serial 0A) expired at 2023-11-14T22:13:20Z",
          "profile server allows no renewal after expiry (renew_grace: off)",
          "enroll again with a new token"}},
        {"profile gone from ca.yaml", "gone", false, 1, -1, false, "off", {"renew_grace: off"}},
        {"revoked, then expired within the grace",
         "client",
         true,
         60,
         -1,
         false,
         "36h",
         {"certificate 0A was revoked on", "(keyCompromise)",
          "a revoked certificate never renews"}},
        {"revoked, still valid", "client", true, -60, -1, false, "36h", {"was revoked on"}},
        {"not valid yet",
         "client",
         false,
         -2000000,
         -1,
         false,
         "36h",
         {"certificate 0A is not valid yet (valid from "}},
        {"issuing CA expired",
         "issuing-ca",
         false,
         1,
         -1,
         false,
         "off",
         {"profile issuing-ca", "never renewed after expiry"}},
        {"OCSP signer expired",
         CA_PROFILE_OCSP_SIGNER,
         false,
         1,
         -1,
         false,
         "off",
         {"profile " CA_PROFILE_OCSP_SIGNER, "never renewed after expiry"}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_cert row = {.serial = (char *)"0A",
                                 .profile = (char *)(uintptr_t)cases[i].profile,
                                 .not_before = na - 1000000,
                                 .not_after = na,
                                 .status = cases[i].revoked ? STORE_REVOKED : STORE_VALID,
                                 .revoked_at = na - 100,
                                 .reason = 1};
        struct ca_window w;
        struct duet_err err = {0};
        int rc = ca_renew_window(&cfg, &row, na + cases[i].at, &w, &err);

        if (rc != cases[i].rc)
            fail_msg("%s: returned %d (%s)", cases[i].what, rc, err.msg);
        assert_int_equal(w.in_grace, cases[i].in_grace);
        assert_string_equal(w.grace_text, cases[i].grace_text);
        assert_int_equal(w.grace, strcmp(cases[i].grace_text, "off") == 0 ? 0 : g);
        for (size_t k = 0; k < 3 && cases[i].msg[k] != NULL; k++) {
            if (strstr(err.msg, cases[i].msg[k]) == NULL)
                fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].msg[k], err.msg);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_valid_csr),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_sign_unprintable_cn),
        cmocka_unit_test(test_sign_bad_signature),
        cmocka_unit_test(test_sign_bad_san_extensions),
        cmocka_unit_test(test_sign_ignores_ca_request),
        cmocka_unit_test(test_sign_name_given),
        cmocka_unit_test(test_default_san),
        cmocka_unit_test(test_issue_keypair),
        cmocka_unit_test(test_renew_keeps_identity_and_links),
        cmocka_unit_test(test_revoked_cannot_renew),
        cmocka_unit_test(test_issuing_ca_cannot_renew),
        cmocka_unit_test(test_renew_window),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
