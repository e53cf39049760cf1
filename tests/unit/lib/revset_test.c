/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revset_test.c - unit tests of the compact revocation set (src/lib/revset.c):
 * what a CRL must be to load, each status revset_check() reports, the
 * signature paths (digest for ECDSA and RSA, the kept signed part for
 * Ed25519), and a large CRL whose every serial is found.
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

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "lib/err.h"
#include "lib/revset.h"
#include "testlib/certfactory.h"

struct world {
    EVP_PKEY *k_root, *k_int, *k_leaf, *k_other, *k_rsa, *k_ed;
    X509 *root;     /* CN=Rev Root */
    X509 *inter;    /* CN=Rev Issuing, by root */
    X509 *leaf;     /* serial 0x1001, by inter */
    X509 *leaf_hi;  /* serial 0x80000001 (DER content has a leading 00), by inter */
    X509 *impostor; /* CN=Rev Issuing again, self-signed with another key */
    X509 *nosign;   /* CN=Rev NoSign, CA without cRLSign */
    X509 *rsa_ca;   /* CN=Rev RSA, RSA 2048 */
    X509 *ed_ca;    /* CN=Rev Ed, Ed25519 */
};

static struct world W;

static X509 *
ca_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *ku)
{
    struct cf_cert_spec s = {.cn = cn, .key = key, .issuer = issuer, .issuer_key = issuer_key,
                             .bc = CF_BC_CA, .key_usage = ku};
    return cf_cert_new(&s);
}

static X509 *
leaf_cert(uint64_t serial)
{
    struct cf_cert_spec s = {.cn = "leaf", .key = W.k_leaf, .issuer = W.inter,
                             .issuer_key = W.k_int, .serial = serial, .bc = CF_BC_LEAF,
                             .eku = CF_EKU_CLIENT};
    return cf_cert_new(&s);
}

static int
setup(void **state)
{
    (void)state;
    W.k_root = cf_key_new(CF_KEY_EC_P256);
    W.k_int = cf_key_new(CF_KEY_EC_P256);
    W.k_leaf = cf_key_new(CF_KEY_EC_P256);
    W.k_other = cf_key_new(CF_KEY_EC_P256);
    W.k_rsa = cf_key_new(CF_KEY_RSA_2048);
    W.k_ed = cf_key_new(CF_KEY_ED25519);
    W.root = ca_cert("Rev Root", W.k_root, NULL, NULL, NULL);
    W.inter = ca_cert("Rev Issuing", W.k_int, W.root, W.k_root, NULL);
    W.leaf = leaf_cert(0x1001);
    W.leaf_hi = leaf_cert(0x80000001u);
    W.impostor = ca_cert("Rev Issuing", W.k_other, NULL, NULL, NULL);
    W.nosign = ca_cert("Rev NoSign", W.k_other, W.root, W.k_root, "critical,keyCertSign");
    W.rsa_ca = ca_cert("Rev RSA", W.k_rsa, NULL, NULL, NULL);
    W.ed_ca = ca_cert("Rev Ed", W.k_ed, NULL, NULL, NULL);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509 *certs[] = {W.root, W.inter, W.leaf, W.leaf_hi, W.impostor, W.nosign, W.rsa_ca, W.ed_ca};
    EVP_PKEY *keys[] = {W.k_root, W.k_int, W.k_leaf, W.k_other, W.k_rsa, W.k_ed};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* Add a CRL to a set as DER; returns revset_add_mem's result, message in err. */
static int
add_crl(struct revset *rs, X509_CRL *crl, struct duet_err *err)
{
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    int rc;

    assert_true(len > 0);
    err_clear(err);
    rc = revset_add_mem(rs, "t.crl", der, (size_t)len, err);
    OPENSSL_free(der);
    return rc;
}

/* A set holding one CRL of issuer, signed by key, listing `revoked`. */
static struct revset *
one_crl(X509 *issuer, EVP_PKEY *key, const struct cf_revoked *revoked, size_t n, int64_t last,
        int64_t next)
{
    struct cf_crl_spec s = {.issuer = issuer, .issuer_key = key, .revoked = revoked,
                            .nrevoked = n, .last_update = last, .next_update = next};
    X509_CRL *crl = cf_crl_new(&s);
    struct revset *rs = revset_new();
    struct duet_err err;

    assert_non_null(rs);
    if (add_crl(rs, crl, &err) != 0)
        fail_msg("CRL refused: %s", err.msg);
    X509_CRL_free(crl);
    return rs;
}

static void
test_good_and_revoked(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x1001, CRL_REASON_KEY_COMPROMISE, -2 * CF_DAY},
                               {0x80000001u, CF_NO_REASON, 0}};
    struct revset *rs = one_crl(W.inter, W.k_int, rev, 2, 0, 0);
    X509 *other = leaf_cert(0x1002);
    struct rev_result r;
    int64_t now = time(NULL);

    assert_int_equal(revset_count(rs), 1);
    assert_int_equal(revcrl_entries(revset_get0(rs, 0)), 2);
    assert_string_equal(revcrl_source(revset_get0(rs, 0)), "t.crl");
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(r.reason, CRL_REASON_KEY_COMPROMISE);
    assert_true(r.date > now - 2 * CF_DAY - 60 && r.date < now - 2 * CF_DAY + 60);
    revset_check(rs, W.leaf_hi, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(r.reason, -1);
    revset_check(rs, other, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    /* A resumed session: by name alone. */
    revset_check(rs, W.leaf, NULL, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check(rs, other, NULL, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    /* The issuing CA is checked against the root's CRL, and there is none. */
    revset_check(rs, W.inter, W.root, now, false, &r);
    assert_int_equal(r.status, REV_NO_CRL);
    X509_free(other);
    revset_free(rs);
}

static void
test_times(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x1001, CF_NO_REASON, -3 * CF_DAY}};
    int64_t now = time(NULL);
    struct rev_result r;

    struct revset *rs = one_crl(W.inter, W.k_int, rev, 1, -10 * CF_DAY, -CF_DAY);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_CRL_EXPIRED);
    assert_true(revcrl_next_update(r.crl) < now);
    revset_check(rs, W.leaf, W.inter, now, true, &r); /* warn mode: still revokes */
    assert_int_equal(r.status, REV_REVOKED);
    revset_free(rs);

    rs = one_crl(W.inter, W.k_int, NULL, 0, CF_DAY, 7 * CF_DAY);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_CRL_NOT_YET_VALID);
    revset_free(rs);
}

static void
test_signature(void **state)
{
    (void)state;
    struct revset *rs = one_crl(W.inter, W.k_leaf, NULL, 0, 0, 0); /* right name, wrong key */
    struct rev_result r;
    int64_t now = time(NULL);
    struct duet_err err;

    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_CRL_BAD_SIGNATURE);
    /* The right CRL next to it is the one used. */
    struct cf_revoked rev[] = {{0x1001, CF_NO_REASON, 0}};
    struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = rev,
                            .nrevoked = 1};
    X509_CRL *good = cf_crl_new(&s);
    assert_int_equal(add_crl(rs, good, &err), 0);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check(rs, W.leaf, W.inter, now, false, &r); /* the remembered key */
    assert_int_equal(r.status, REV_REVOKED);
    /* A different CA of the same name does not verify it. */
    revset_check(rs, W.leaf, W.impostor, now, false, &r);
    assert_int_equal(r.status, REV_CRL_BAD_SIGNATURE);
    X509_CRL_free(good);
    revset_free(rs);
}

static void
test_rsa_and_ed25519(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x77, CRL_REASON_SUPERSEDED, 0}};
    int64_t now = time(NULL);
    struct rev_result r;
    EVP_PKEY *k = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec ls = {.cn = "x", .key = k, .serial = 0x77, .bc = CF_BC_LEAF,
                              .eku = CF_EKU_CLIENT};

    for (int i = 0; i < 2; i++) {
        X509 *ca = i == 0 ? W.rsa_ca : W.ed_ca;
        EVP_PKEY *cak = i == 0 ? W.k_rsa : W.k_ed;
        ls.issuer = ca;
        ls.issuer_key = cak;
        X509 *leaf = cf_cert_new(&ls);
        struct revset *rs = one_crl(ca, cak, rev, 1, 0, 0);
        revset_check(rs, leaf, ca, now, false, &r);
        assert_int_equal(r.status, REV_REVOKED);
        assert_int_equal(r.reason, CRL_REASON_SUPERSEDED);
        revset_check(rs, leaf, W.impostor, now, false, &r);
        assert_int_not_equal(r.status, REV_REVOKED);
        revset_free(rs);
        X509_free(leaf);
    }
    EVP_PKEY_free(k);
}

static void
test_no_crl_sign(void **state)
{
    (void)state;
    struct cf_cert_spec ls = {.cn = "y", .key = W.k_leaf, .issuer = W.nosign,
                              .issuer_key = W.k_other, .bc = CF_BC_LEAF, .eku = CF_EKU_CLIENT};
    X509 *leaf = cf_cert_new(&ls);
    struct revset *rs = one_crl(W.nosign, W.k_other, NULL, 0, 0, 0);
    struct rev_result r;

    revset_check(rs, leaf, W.nosign, time(NULL), false, &r);
    assert_int_equal(r.status, REV_CRL_NO_CRL_SIGN);
    revset_free(rs);
    X509_free(leaf);
}

/* Re-sign a CRL after changing it. */
static void
resign(X509_CRL *crl, EVP_PKEY *key)
{
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
}

static X509_CRL *
plain_crl(const struct cf_revoked *rev, size_t n)
{
    struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = rev,
                            .nrevoked = n};
    return cf_crl_new(&s);
}

static void
expect_refused(X509_CRL *crl, const char *fragment)
{
    struct revset *rs = revset_new();
    struct duet_err err;

    assert_int_equal(add_crl(rs, crl, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    if (strstr(err.msg, fragment) == NULL || strstr(err.msg, "t.crl") == NULL)
        fail_msg("expected \"%s\" in: %s", fragment, err.msg);
    assert_int_equal(revset_count(rs), 0);
    revset_free(rs);
    X509_CRL_free(crl);
}

static void
test_refused_crls(void **state)
{
    (void)state;
    X509_CRL *c;
    ASN1_INTEGER *one = ASN1_INTEGER_new();

    ASN1_INTEGER_set(one, 1);
    c = plain_crl(NULL, 0);
    assert_true(X509_CRL_add1_ext_i2d(c, NID_delta_crl, one, 0, 0));
    resign(c, W.k_int);
    expect_refused(c, "has a deltaCRLIndicator that is not critical, repeated or malformed "
                      "(RFC 5280 5.2.4)");

    c = plain_crl(NULL, 0);
    ASN1_OBJECT *odd = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(val, (const unsigned char *)"\x05\x00", 2);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, odd, 1, val);
    assert_true(X509_CRL_add_ext(c, ext, -1));
    resign(c, W.k_int);
    expect_refused(c, "critical extension duet does not handle (OID 1.3.6.1.4.1.99999.1)");
    X509_EXTENSION_free(ext);

    {
        struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .no_next_update = true};
        expect_refused(cf_crl_new(&s), "CN=Rev Issuing has no nextUpdate");
    }
    {
        struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .digest = CF_SHA1};
        expect_refused(cf_crl_new(&s), "refused as too weak");
    }

    /* An entry with an unknown critical extension names the entry. */
    struct cf_revoked rev[] = {{5, CF_NO_REASON, 0}, {6, CF_NO_REASON, 0}};
    c = plain_crl(rev, 2);
    X509_REVOKED *r = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(c), 1);
    assert_true(X509_REVOKED_add_ext(r, ext = X509_EXTENSION_create_by_OBJ(NULL, odd, 1, val), -1));
    X509_EXTENSION_free(ext);
    resign(c, W.k_int);
    expect_refused(c, "entry 2 has a critical extension");

    /* An indirect CRL that is also partial (onlySomeReasons). */
    {
        struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int,
                                .idp = "critical,indirectCRL:TRUE,onlysomereasons:keyCompromise"};
        expect_refused(cf_crl_new(&s), "is a partial CRL (issuingDistributionPoint with "
                                       "onlySomeReasons");
    }
    /* RFC 5280 5.3.3: certificateIssuer only in an indirect CRL, and always critical. */
    {
        struct cf_revoked ci[] = {{5, CF_NO_REASON, 0, X509_get_subject_name(W.root), false}};
        struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = ci,
                                .nrevoked = 1};
        expect_refused(cf_crl_new(&s), "entry 1 has a certificateIssuer extension, but the CRL "
                                       "is not indirect");
        ci[0].ci_noncritical = true;
        s.idp = "critical,indirectCRL:TRUE";
        expect_refused(cf_crl_new(&s), "entry 1 has a certificateIssuer extension that is not "
                                       "critical; RFC 5280 5.3.3 requires it critical");
    }

    ASN1_OBJECT_free(odd);
    ASN1_OCTET_STRING_free(val);
    ASN1_INTEGER_free(one);
}

static void
test_scope_and_remove(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x1001, CRL_REASON_REMOVE_FROM_CRL, 0}};
    X509_CRL *c = plain_crl(rev, 1);
    struct revset *rs = revset_new();
    struct duet_err err;
    struct rev_result r;
    int64_t now = time(NULL);

    /* removeFromCRL is not a revocation. */
    assert_int_equal(add_crl(rs, c, &err), 0);
    assert_int_equal(revcrl_entries(revset_get0(rs, 0)), 0);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    revset_free(rs);
    X509_CRL_free(c);

    /* A root CRL only for CA certificates covers the issuing CA, not a leaf of the root. */
    struct cf_crl_spec s = {.issuer = W.root, .issuer_key = W.k_root};
    c = cf_crl_new(&s);
    ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
    idp->onlyCA = 1;
    assert_true(X509_CRL_add1_ext_i2d(c, NID_issuing_distribution_point, idp, 1, 0));
    ISSUING_DIST_POINT_free(idp);
    resign(c, W.k_root);
    rs = revset_new();
    assert_int_equal(add_crl(rs, c, &err), 0);
    revset_check(rs, W.inter, W.root, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    struct cf_cert_spec ls = {.cn = "z", .key = W.k_leaf, .issuer = W.root, .issuer_key = W.k_root,
                              .bc = CF_BC_LEAF, .eku = CF_EKU_CLIENT};
    X509 *leaf = cf_cert_new(&ls);
    revset_check(rs, leaf, W.root, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    assert_int_equal(r.scope, REV_SCOPE_CA_ONLY);
    assert_ptr_equal(r.crl, revset_get0(rs, 0));
    X509_free(leaf);
    X509_CRL_free(c);
    revset_free(rs);
}

static void
test_pem_file_and_garbage(void **state)
{
    (void)state;
    char *dir = cf_tmpdir();
    char path[512];
    struct revset *rs = revset_new();
    struct duet_err err;
    struct cf_crl_spec s1 = {.issuer = W.inter, .issuer_key = W.k_int};
    struct cf_crl_spec s2 = {.issuer = W.root, .issuer_key = W.k_root};
    X509_CRL *a = cf_crl_new(&s1), *b = cf_crl_new(&s2);

    snprintf(path, sizeof(path), "%s/bundle.pem", dir);
    cf_write_crls(path, a, b, NULL);
    err_clear(&err);
    assert_int_equal(revset_add_file(rs, path, &err), 0);
    assert_int_equal(revset_count(rs), 2);
    assert_true(revset_bytes(rs) > 0);

    snprintf(path, sizeof(path), "%s/garbage.crl", dir);
    cf_write_file(path, "\x30\x05\x01\x02", 4);
    assert_int_equal(revset_add_file(rs, path, &err), -1);
    assert_non_null(strstr(err.msg, "garbage.crl"));
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    cf_write_certs(path, W.leaf, NULL);
    assert_int_equal(revset_add_file(rs, path, &err), -1);
    assert_non_null(strstr(err.msg, "no CRL found"));
    assert_int_equal(revset_count(rs), 2);
    X509_CRL_free(a);
    X509_CRL_free(b);
    revset_free(rs);
    cf_tmpdir_remove(dir);
}

/* 50,000 entries: every serial found, others not, and about 40 bytes each. */
static void
test_large(void **state)
{
    (void)state;
    enum { N = 50000 };
    struct cf_revoked *rev = calloc(N, sizeof(*rev));
    int64_t now = time(NULL);
    struct rev_result r;

    assert_non_null(rev);
    for (size_t i = 0; i < N; i++) {
        rev[i].serial = 0x100000 + i * 7;
        rev[i].reason = (int)(i % 3);
    }
    struct revset *rs = one_crl(W.inter, W.k_int, rev, N, 0, 0);
    assert_int_equal(revcrl_entries(revset_get0(rs, 0)), N);
    assert_true(revset_bytes(rs) < (size_t)N * 40);
    EVP_PKEY *k = W.k_leaf;
    for (size_t i = 0; i < N; i += 997) {
        struct cf_cert_spec ls = {.cn = "n", .key = k, .issuer = W.inter, .issuer_key = W.k_int,
                                  .serial = rev[i].serial, .bc = CF_BC_LEAF};
        X509 *x = cf_cert_new(&ls);
        revset_check(rs, x, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_REVOKED);
        assert_int_equal(r.reason, rev[i].reason);
        X509_free(x);
        ls.serial = rev[i].serial + 1;
        x = cf_cert_new(&ls);
        revset_check(rs, x, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_GOOD);
        X509_free(x);
    }
    revset_free(rs);
    free(rev);
}

/* ---- CRL scope, critical cRLNumber and other signers (RFC 5280 5.2.3, 5.2.5, 6.3.3) ---- */

/* A set holding one CRL of W.inter from spec fields; fails the test when refused. */
static struct revset *
spec_set(const struct cf_crl_spec *spec)
{
    X509_CRL *crl = cf_crl_new(spec);
    struct revset *rs = revset_new();
    struct duet_err err;

    if (add_crl(rs, crl, &err) != 0)
        fail_msg("CRL refused: %s", err.msg);
    X509_CRL_free(crl);
    return rs;
}

/* A leaf of W.inter with crlDistributionPoints `dp` (NULL: none). */
static X509 *
leaf_with_dp(uint64_t serial, const char *dp)
{
    struct cf_cert_spec s = {.cn = "dp", .key = W.k_leaf, .issuer = W.inter,
                             .issuer_key = W.k_int, .serial = serial, .bc = CF_BC_LEAF,
                             .eku = CF_EKU_CLIENT, .crl_dp = dp};
    return cf_cert_new(&s);
}

/* A CRL of W.inter whose issuingDistributionPoint is the relative name CN=<cn>. */
static X509_CRL *
crl_idp_relative(const char *cn)
{
    X509_CRL *c = plain_crl(NULL, 0);
    ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
    X509_NAME *rdn = X509_NAME_new();

    assert_true(X509_NAME_add_entry_by_txt(rdn, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                           -1, -1, 0));
    idp->distpoint = DIST_POINT_NAME_new();
    idp->distpoint->type = 1;
    idp->distpoint->name.relativename = sk_X509_NAME_ENTRY_new_null();
    sk_X509_NAME_ENTRY_push(idp->distpoint->name.relativename,
                            X509_NAME_ENTRY_dup(X509_NAME_get_entry(rdn, 0)));
    assert_true(X509_CRL_add1_ext_i2d(c, NID_issuing_distribution_point, idp, 1, 0));
    ISSUING_DIST_POINT_free(idp);
    X509_NAME_free(rdn);
    resign(c, W.k_int);
    return c;
}

static void
test_crl_number_critical(void **state)
{
    (void)state;
    struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = W.k_int, .number_critical = true};
    struct cf_crl_spec twin = {.issuer = W.inter, .issuer_key = W.k_int};
    struct revset *rs;

    /* RFC 5280 5.2.3: cRLNumber MUST be non-critical. */
    expect_refused(cf_crl_new(&s), "t.crl: the CRL of CN=Rev Issuing marks its cRLNumber "
                                   "extension critical; RFC 5280 5.2.3 requires it non-critical");
    rs = spec_set(&twin);
    assert_int_equal(revset_count(rs), 1);
    revset_free(rs);
}

static void
test_idp_load_rules(void **state)
{
    (void)state;
    struct cf_crl_spec both = {.issuer = W.inter, .issuer_key = W.k_int,
                               .idp = "critical,onlyuser:TRUE,onlyCA:TRUE"};
    struct cf_crl_spec user = {.issuer = W.inter, .issuer_key = W.k_int,
                               .idp = "critical,onlyuser:TRUE"};
    X509_CRL *c;
    struct revset *rs;
    const GENERAL_NAMES *names;
    struct duet_err err;
    char *dn;

    expect_refused(cf_crl_new(&both), "asserting both onlyContainsUserCerts and "
                                      "onlyContainsCACerts; RFC 5280 5.2.5 allows at most one");
    /* An IDP that is an empty SEQUENCE. */
    c = plain_crl(NULL, 0);
    ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
    assert_true(X509_CRL_add1_ext_i2d(c, NID_issuing_distribution_point, idp, 1, 0));
    ISSUING_DIST_POINT_free(idp);
    resign(c, W.k_int);
    expect_refused(c, "has an empty issuingDistributionPoint, which RFC 5280 5.2.5 forbids");

    rs = spec_set(&user);
    assert_null(revcrl_idp_names(revset_get0(rs, 0)));
    revset_free(rs);
    /* A relative name is resolved against the CRL's issuer (RFC 5280 5.2.5). */
    rs = revset_new();
    c = crl_idp_relative("Part 2");
    assert_int_equal(add_crl(rs, c, &err), 0);
    X509_CRL_free(c);
    names = revcrl_idp_names(revset_get0(rs, 0));
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    assert_int_equal(sk_GENERAL_NAME_value(names, 0)->type, GEN_DIRNAME);
    dn = X509_NAME_oneline(sk_GENERAL_NAME_value(names, 0)->d.directoryName, NULL, 0);
    assert_string_equal(dn, "/CN=Rev Issuing/CN=Part 2");
    OPENSSL_free(dn);
    revset_free(rs);
}

static void
test_idp_distribution_point(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x5001, CRL_REASON_KEY_COMPROMISE, 0}};
    struct cf_crl_spec a = {.issuer = W.inter, .issuer_key = W.k_int,
                            .idp = "critical,fullname:URI:http://crl.example/a.crl"};
    struct cf_crl_spec b = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = rev,
                            .nrevoked = 1, .idp = "critical,fullname:URI:http://crl.example/b.crl"};
    X509 *in_a = leaf_with_dp(0x5001, "URI:http://crl.example/a.crl");
    X509 *in_b = leaf_with_dp(0x5001, "URI:http://crl.example/b.crl");
    X509 *no_cdp = leaf_with_dp(0x5001, NULL);
    int64_t now = time(NULL);
    struct rev_result r;
    struct revset *rs;

    /* Valid twin: the CRL of the certificate's own distribution point covers it. */
    rs = spec_set(&a);
    revset_check(rs, in_a, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    /* 6.3.3 (b)(2)(i): another point's CRL does not; it is not "good". */
    revset_check(rs, in_b, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    assert_int_equal(r.scope, REV_SCOPE_DP_MISMATCH);
    /* No CRL distribution point: only a CRL for the issuer's whole name covers it. */
    revset_check(rs, no_cdp, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    assert_int_equal(r.scope, REV_SCOPE_DP_NO_CDP);
    /* Not even a resumed session's check (no issuer) takes it. */
    revset_check(rs, in_b, NULL, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    revset_free(rs);

    /* A CRL of point b listing the serial revokes the certificate of point b only. */
    rs = spec_set(&b);
    revset_check(rs, in_b, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check(rs, in_b, NULL, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check(rs, in_a, NULL, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    revset_free(rs);

    /* Both partitions given: each certificate is judged by its own. */
    {
        X509_CRL *ca = cf_crl_new(&a), *cb = cf_crl_new(&b);
        struct duet_err err;
        rs = revset_new();
        assert_int_equal(add_crl(rs, ca, &err), 0);
        assert_int_equal(add_crl(rs, cb, &err), 0);
        revset_check(rs, in_a, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_GOOD);
        revset_check(rs, in_b, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_REVOKED);
        revset_free(rs);
        X509_CRL_free(ca);
        X509_CRL_free(cb);
    }

    /* An IDP naming the issuer's own name is the default point: it covers every certificate. */
    {
        X509_CRL *c = plain_crl(NULL, 0);
        ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
        GENERAL_NAME *g = GENERAL_NAME_new();
        struct duet_err err;
        idp->distpoint = DIST_POINT_NAME_new();
        idp->distpoint->type = 0;
        idp->distpoint->name.fullname = GENERAL_NAMES_new();
        g->type = GEN_DIRNAME;
        g->d.directoryName = X509_NAME_dup(X509_get_subject_name(W.inter));
        sk_GENERAL_NAME_push(idp->distpoint->name.fullname, g);
        assert_true(X509_CRL_add1_ext_i2d(c, NID_issuing_distribution_point, idp, 1, 0));
        ISSUING_DIST_POINT_free(idp);
        resign(c, W.k_int);
        rs = revset_new();
        assert_int_equal(add_crl(rs, c, &err), 0);
        revset_check(rs, no_cdp, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_GOOD);
        revset_check(rs, in_b, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_GOOD);
        revset_free(rs);
        X509_CRL_free(c);
    }

    /* A relative point name: resolved against the issuer, it is not the issuer's own name. */
    {
        X509_CRL *c = crl_idp_relative("Part 2");
        struct duet_err err;
        rs = revset_new();
        assert_int_equal(add_crl(rs, c, &err), 0);
        revset_check(rs, in_a, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
        assert_int_equal(r.scope, REV_SCOPE_DP_MISMATCH);
        revset_free(rs);
        X509_CRL_free(c);
    }
    X509_free(in_a);
    X509_free(in_b);
    X509_free(no_cdp);
}

static void
test_user_only_scope(void **state)
{
    (void)state;
    struct cf_crl_spec user = {.issuer = W.root, .issuer_key = W.k_root,
                               .idp = "critical,onlyuser:TRUE"};
    struct cf_cert_spec ls = {.cn = "u", .key = W.k_leaf, .issuer = W.root, .issuer_key = W.k_root,
                              .bc = CF_BC_LEAF, .eku = CF_EKU_CLIENT};
    X509 *leaf = cf_cert_new(&ls);
    X509_CRL *c = cf_crl_new(&user);
    struct revset *rs = revset_new();
    struct duet_err err;
    struct rev_result r;
    int64_t now = time(NULL);

    /* 6.3.3 (b)(2)(ii): a CRL of user certificates only does not cover the issuing CA. */
    assert_int_equal(add_crl(rs, c, &err), 0);
    revset_check(rs, leaf, W.root, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    revset_check(rs, W.inter, W.root, now, false, &r);
    assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
    assert_int_equal(r.scope, REV_SCOPE_USER_ONLY);
    revset_free(rs);
    X509_CRL_free(c);
    X509_free(leaf);
}

/* A rev_signers search for the tests: accepts `ok` when it verifies the CRL; counts calls. */
struct fake_signers {
    X509 *ok;
    int calls;
};

static bool
fake_find(void *arg, const struct revcrl *crl, X509 *cert, X509 *issuer, char *why, size_t len)
{
    struct fake_signers *f = arg;

    (void)cert;
    (void)issuer;
    f->calls++;
    if (f->ok != NULL && revcrl_verify(crl, f->ok))
        return true;
    snprintf(why, len, "no signer for the test");
    return false;
}

static void
test_other_signer(void **state)
{
    (void)state;
    struct cf_revoked rev[] = {{0x1001, CRL_REASON_KEY_COMPROMISE, 0}};
    /* A CRL of "Rev Issuing" signed with another key (the impostor's, standing for a new key). */
    struct revset *rs = one_crl(W.inter, W.k_other, rev, 1, 0, 0);
    struct fake_signers f = {NULL, 0};
    struct rev_signers alt = {fake_find, &f};
    struct rev_result r;
    int64_t now = time(NULL);

    /* No other signer: the issuer's key does not verify it. */
    revset_check_ex(rs, W.leaf, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_CRL_BAD_SIGNATURE);
    assert_string_equal(r.signer_why, "no signer for the test");
    assert_int_equal(f.calls, 1);
    /* A signer the search accepts makes it count. */
    f.ok = W.impostor;
    revset_check_ex(rs, W.leaf, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(f.calls, 2);
    revset_free(rs);

    /* The issuer's own key verifies it: no search at all. */
    rs = one_crl(W.inter, W.k_int, rev, 1, 0, 0);
    f.calls = 0;
    revset_check_ex(rs, W.leaf, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(f.calls, 0);
    revset_free(rs);

    /* An issuer without cRLSign: another signer is looked for, and counts. */
    {
        struct cf_cert_spec ls = {.cn = "y", .key = W.k_leaf, .issuer = W.nosign,
                                  .issuer_key = W.k_other, .bc = CF_BC_LEAF,
                                  .eku = CF_EKU_CLIENT};
        X509 *leaf = cf_cert_new(&ls);
        rs = one_crl(W.nosign, W.k_int, NULL, 0, 0, 0);
        f.ok = NULL;
        revset_check_ex(rs, leaf, W.nosign, now, false, &alt, &r);
        assert_int_equal(r.status, REV_CRL_NO_CRL_SIGN);
        f.ok = W.inter; /* holds W.k_int */
        revset_check_ex(rs, leaf, W.nosign, now, false, &alt, &r);
        assert_int_equal(r.status, REV_GOOD);
        revset_free(rs);
        X509_free(leaf);
    }
}

/* ---- indirect CRLs (RFC 5280 5.2.5, 5.3.3, 6.3.3 (b)(1)) ---- */

static void add_spec(struct revset *rs, const struct cf_crl_spec *spec);

/* A leaf of issuer/key with this serial, naming `crl_issuer` as cRLIssuer (NULL: no CDP). */
static X509 *
ind_leaf(X509 *issuer, EVP_PKEY *key, uint64_t serial, X509 *crl_issuer, const char *uri)
{
    struct cf_cert_spec s = {.cn = "ind", .key = W.k_leaf, .issuer = issuer, .issuer_key = key,
                             .serial = serial, .bc = CF_BC_LEAF, .eku = CF_EKU_CLIENT,
                             .crl_issuer_dp = crl_issuer ? X509_get_subject_name(crl_issuer) : NULL,
                             .crl_issuer_dp_uri = uri};
    return cf_cert_new(&s);
}

static void
test_indirect(void **state)
{
    (void)state;
    EVP_PKEY *k_ci = cf_key_new(CF_KEY_EC_P256);
    EVP_PKEY *k_b = cf_key_new(CF_KEY_EC_P256);
    X509 *ci = ca_cert("Rev CRL Issuer", k_ci, W.root, W.k_root, NULL);
    X509 *b = ca_cert("Rev Issuing B", k_b, W.root, W.k_root, NULL);
    const X509_NAME *na = X509_get_subject_name(W.inter);
    const X509_NAME *nb = X509_get_subject_name(b);
    /*
     * 5.3.3: the first entry has no certificateIssuer, so it is the CRL
     * issuer's; 0x2002 carries A's over from the entry before it.
     */
    struct cf_revoked rev[] = {{0x4000, CF_NO_REASON, 0, NULL, false},
                               {0x2001, CRL_REASON_KEY_COMPROMISE, 0, na, false},
                               {0x2002, CF_NO_REASON, 0, NULL, false},
                               {0x3000, CF_NO_REASON, 0, nb, false}};
    struct cf_crl_spec spec = {.issuer = ci, .issuer_key = k_ci, .revoked = rev, .nrevoked = 4,
                               .idp = "critical,indirectCRL:TRUE"};
    struct fake_signers f = {ci, 0};
    struct rev_signers alt = {fake_find, &f};
    struct revset *rs = revset_new();
    struct rev_result r;
    int64_t now = time(NULL);
    X509 *a1 = ind_leaf(W.inter, W.k_int, 0x2001, ci, NULL);
    X509 *a2 = ind_leaf(W.inter, W.k_int, 0x2002, ci, NULL);
    X509 *a4 = ind_leaf(W.inter, W.k_int, 0x4000, ci, NULL);
    X509 *b1 = ind_leaf(b, k_b, 0x2001, ci, NULL);
    X509 *b3 = ind_leaf(b, k_b, 0x3000, ci, NULL);
    X509 *a1_nocdp = ind_leaf(W.inter, W.k_int, 0x2001, NULL, NULL);
    X509 *a1_other = ind_leaf(W.inter, W.k_int, 0x2001, b, NULL); /* names B as its CRL issuer */
    X509 *c4 = ind_leaf(ci, k_ci, 0x4000, NULL, NULL);

    add_spec(rs, &spec);
    assert_int_equal(revcrl_entries(revset_get0(rs, 0)), 4);
    revset_check_ex(rs, a1, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(r.reason, CRL_REASON_KEY_COMPROMISE);
    assert_ptr_equal(r.crl, revset_get0(rs, 0));
    revset_check_ex(rs, a2, W.inter, now, false, &alt, &r); /* carried over */
    assert_int_equal(r.status, REV_REVOKED);
    revset_check_ex(rs, b3, b, now, false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    /* An entry of issuer A with serial S does not revoke serial S of issuer B. */
    revset_check_ex(rs, b1, b, now, false, &alt, &r);
    assert_int_equal(r.status, REV_GOOD);
    assert_ptr_equal(r.crl, revset_get0(rs, 0));
    /* Nor does the first entry (the CRL issuer's own) revoke A's 0x4000... */
    revset_check_ex(rs, a4, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_GOOD);
    /* ...but it revokes the CRL issuer's own 0x4000, signed with its own key: no search. */
    f.calls = 0;
    revset_check_ex(rs, c4, ci, now, false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(f.calls, 0);
    /* A certificate whose CDP does not name the CRL issuer: the CRL is not for it. */
    revset_check_ex(rs, a1_nocdp, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_NO_CRL);
    revset_check_ex(rs, a1_other, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_NO_CRL);
    /* The certificate's issuer's key is never the signer; no accepted signer: refused. */
    f.ok = W.inter;
    revset_check_ex(rs, a1, W.inter, now, false, &alt, &r);
    assert_int_equal(r.status, REV_CRL_BAD_SIGNATURE);
    revset_check_ex(rs, a1, W.inter, now, false, NULL, &r);
    assert_int_equal(r.status, REV_CRL_BAD_SIGNATURE);
    /* A resumed session (no issuer): matched by the cRLIssuer name and the entry's issuer. */
    revset_check_ex(rs, a1, NULL, now, false, NULL, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check_ex(rs, b1, NULL, now, false, NULL, &r);
    assert_int_equal(r.status, REV_GOOD);
    revset_free(rs);

    /*
     * 6.3.3 (b)(2)(i): an issuingDistributionPoint naming a URI serves a point
     * with that URI, not one with only the cRLIssuer.
     */
    spec.idp = "critical,fullname:URI:http://x/ind.crl,indirectCRL:TRUE";
    rs = revset_new();
    add_spec(rs, &spec);
    f.ok = ci;
    {
        X509 *u = ind_leaf(W.inter, W.k_int, 0x2001, ci, "http://x/ind.crl");
        X509 *v = ind_leaf(W.inter, W.k_int, 0x2001, ci, "http://x/other.crl");
        revset_check_ex(rs, u, W.inter, now, false, &alt, &r);
        assert_int_equal(r.status, REV_REVOKED);
        revset_check_ex(rs, v, W.inter, now, false, &alt, &r);
        assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
        assert_int_equal(r.scope, REV_SCOPE_DP_MISMATCH);
        revset_check_ex(rs, a1, W.inter, now, false, &alt, &r);
        assert_int_equal(r.status, REV_CRL_OUT_OF_SCOPE);
        X509_free(u);
        X509_free(v);
    }
    revset_free(rs);

    X509 *certs[] = {ci, b, a1, a2, a4, b1, b3, a1_nocdp, a1_other, c4};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY_free(k_ci);
    EVP_PKEY_free(k_b);
}

/* An ordinary CRL costs what it did: no per-entry issuer number. */
static void
test_indirect_memory(void **state)
{
    (void)state;
    struct cf_revoked rev[64];
    struct revset *direct, *indirect = revset_new();
    struct cf_crl_spec spec = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = rev,
                               .nrevoked = 64, .idp = "critical,indirectCRL:TRUE"};

    for (size_t i = 0; i < 64; i++)
        rev[i] = (struct cf_revoked){0x100 + i, CF_NO_REASON, 0, NULL, false};
    direct = one_crl(W.inter, W.k_int, rev, 64, 0, 0);
    add_spec(indirect, &spec);
    /* Same entries; the indirect one adds 2 bytes per entry for the issuer number. */
    assert_int_equal(revset_bytes(indirect) - revset_bytes(direct), 64 * sizeof(uint16_t));
    revset_free(direct);
    revset_free(indirect);
}

/* DSA-signed CRLs: refused unless asked for, then verified with the DSA key. */
static void
test_dsa_signed(void **state)
{
    (void)state;
    EVP_PKEY *k = cf_key_new(CF_KEY_DSA_2048);
    X509 *signer = ca_cert("Rev Issuing", k, W.root, W.k_root, "critical,cRLSign");
    struct cf_revoked rev[] = {{0x1001, CRL_REASON_KEY_COMPROMISE, 0, NULL, false}};
    struct cf_crl_spec s = {.issuer = W.inter, .issuer_key = k, .revoked = rev, .nrevoked = 1};
    X509_CRL *crl = cf_crl_new(&s);
    struct revset *rs = revset_new();
    struct fake_signers f = {signer, 0};
    struct rev_signers alt = {fake_find, &f};
    struct rev_result r;
    struct duet_err err;

    assert_false(revset_allows_crl_dsa(rs));
    assert_int_equal(add_crl(rs, crl, &err), -1);
    assert_string_equal(err.msg, "t.crl: the CRL of CN=Rev Issuing is signed with dsa_with_SHA256 "
                                 "(DSA), a legacy algorithm duet refuses by default; to accept "
                                 "it, pass --insecure-crl-signature dsa (YAML "
                                 "insecure_crl_signature: dsa)");
    assert_int_equal(revset_count(rs), 0);
    revset_insecure_crl_dsa(rs);
    assert_true(revset_allows_crl_dsa(rs));
    if (add_crl(rs, crl, &err) != 0)
        fail_msg("CRL refused: %s", err.msg);
    assert_true(revcrl_verify(revset_get0(rs, 0), signer));
    assert_false(revcrl_verify(revset_get0(rs, 0), W.inter));
    revset_check_ex(rs, W.leaf, W.inter, time(NULL), false, &alt, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_free(rs);
    X509_CRL_free(crl);
    X509_free(signer);
    EVP_PKEY_free(k);
}

/* ---- delta CRLs (RFC 5280 5.2.4, 6.3.3 (c)) ---- */

/* Add a CRL of W.inter made from spec to rs; fails the test when refused. */
static void
add_spec(struct revset *rs, const struct cf_crl_spec *spec)
{
    X509_CRL *crl = cf_crl_new(spec);
    struct duet_err err;

    if (add_crl(rs, crl, &err) != 0)
        fail_msg("CRL refused: %s", err.msg);
    X509_CRL_free(crl);
}

static void
test_delta(void **state)
{
    (void)state;
    struct cf_revoked full_rev[] = {{0x7001, CRL_REASON_CERTIFICATE_HOLD, 0},
                                    {0x7002, CRL_REASON_KEY_COMPROMISE, 0}};
    struct cf_revoked delta_rev[] = {{0x1001, CRL_REASON_KEY_COMPROMISE, 0},
                                     {0x7001, CRL_REASON_REMOVE_FROM_CRL, 0},
                                     {0x7002, CRL_REASON_REMOVE_FROM_CRL, 0}};
    struct cf_crl_spec full = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = full_rev,
                               .nrevoked = 2, .number = 5, .last_update = -7200,
                               .next_update = 7 * CF_DAY};
    struct cf_crl_spec delta = {.issuer = W.inter, .issuer_key = W.k_int, .revoked = delta_rev,
                                .nrevoked = 3, .number = 6, .delta_base = 5};
    X509 *held = leaf_cert(0x7001), *compromised = leaf_cert(0x7002);
    int64_t now = time(NULL);
    struct rev_result r;
    struct revset *rs = revset_new();

    /* The complete CRL alone. */
    add_spec(rs, &full);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    revset_check(rs, held, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    /* With its delta: the delta's revocation counts, and its removeFromCRL releases the hold. */
    add_spec(rs, &delta);
    assert_true(revcrl_is_delta(revset_get0(rs, 1)));
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_ptr_equal(r.crl, revset_get0(rs, 1));
    assert_int_equal(r.reason, CRL_REASON_KEY_COMPROMISE);
    revset_check(rs, W.leaf, NULL, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    revset_check(rs, held, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_GOOD);
    /* removeFromCRL does not undo a revocation other than certificateHold (RFC 5280 5.3.1). */
    revset_check(rs, compromised, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_REVOKED);
    assert_int_equal(r.reason, CRL_REASON_KEY_COMPROMISE);
    revset_free(rs);

    /* A delta alone covers nothing. */
    rs = revset_new();
    add_spec(rs, &delta);
    revset_check(rs, W.leaf, W.inter, now, false, &r);
    assert_int_equal(r.status, REV_NO_CRL);
    revset_free(rs);

    /* Deltas that do not apply to this complete CRL: each leaves the leaf good. */
    {
        struct cf_crl_spec later_base = delta, older = delta, other_scope = delta;
        struct cf_crl_spec other_key = delta;
        struct cf_crl_spec full7 = full;
        later_base.delta_base = 6; /* the complete CRL (5) is older than its base */
        other_scope.idp = "critical,onlyuser:TRUE";
        other_key.issuer_key = W.k_other;
        full7.number = 7; /* a complete CRL newer than the delta (6) */
        const struct cf_crl_spec *fulls[] = {&full, &full, &full, &full7};
        const struct cf_crl_spec *deltas[] = {&later_base, &other_scope, &other_key, &older};
        for (size_t i = 0; i < 4; i++) {
            rs = revset_new();
            add_spec(rs, fulls[i]);
            add_spec(rs, deltas[i]);
            revset_check(rs, W.leaf, W.inter, now, false, &r);
            if (r.status != REV_GOOD)
                fail_msg("delta %zu applied: status %d", i, (int)r.status);
            revset_free(rs);
        }
    }

    /* The newest delta applies; an expired one is an error, not a pass, but still revokes. */
    {
        struct cf_crl_spec stale = delta;
        struct cf_crl_spec d7 = delta;
        stale.last_update = -3600;
        stale.next_update = -60;
        d7.number = 7;
        d7.nrevoked = 0;
        rs = revset_new();
        add_spec(rs, &full);
        add_spec(rs, &delta);
        add_spec(rs, &d7);
        revset_check(rs, W.leaf, W.inter, now, false, &r);
        /* A delta holds every change since its base: the newest alone decides. */
        assert_int_equal(r.status, REV_GOOD);
        revset_free(rs);
        rs = revset_new();
        add_spec(rs, &full);
        add_spec(rs, &stale);
        revset_check(rs, W.leaf, W.inter, now, false, &r);
        assert_int_equal(r.status, REV_CRL_EXPIRED);
        assert_ptr_equal(r.crl, revset_get0(rs, 1));
        revset_check(rs, W.leaf, W.inter, now, true, &r);
        assert_int_equal(r.status, REV_REVOKED);
        revset_free(rs);
    }
    X509_free(held);
    X509_free(compromised);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_and_revoked), cmocka_unit_test(test_times),
        cmocka_unit_test(test_signature),        cmocka_unit_test(test_rsa_and_ed25519),
        cmocka_unit_test(test_no_crl_sign),      cmocka_unit_test(test_refused_crls),
        cmocka_unit_test(test_scope_and_remove), cmocka_unit_test(test_pem_file_and_garbage),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_crl_number_critical),
        cmocka_unit_test(test_idp_load_rules),
        cmocka_unit_test(test_idp_distribution_point),
        cmocka_unit_test(test_user_only_scope),
        cmocka_unit_test(test_other_signer),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_indirect),
        cmocka_unit_test(test_indirect_memory),
        cmocka_unit_test(test_dsa_signed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
