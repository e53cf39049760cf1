/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_test.c - the public API of libduet (include/duet.h) end to end on
 * files in a temporary directory: verifier lifetime, trust anchors from files
 * and memory, CRL files (one without nextUpdate is refused), setters that
 * refuse bad values and keep the old one, PKCS#12 input with a password
 * file, and the identity accessors of a successful verification.
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

#include <openssl/pkcs12.h>

#include "duet.h"
#include "testlib/certfactory.h"

#define CA_SUBJECT "CN=API Test CA,O=Duet Test"

static struct {
    char *dir;
    EVP_PKEY *k_ca, *k_leaf;
    X509 *ca, *leaf;
    int64_t t0, t1; /* creation window of the leaf */
} F;

static char *
fpath(const char *name)
{
    return cf_path(F.dir, name);
}

/* A verifier trusting ca.pem. */
static struct duet_verifier *
verifier(void)
{
    struct duet_verifier *v = duet_verifier_new();
    char *p = fpath("ca.pem");

    assert_non_null(v);
    if (duet_verifier_add_trusted_file(v, p) != 0)
        fail_msg("%s", duet_verifier_error(v));
    free(p);
    return v;
}

static void
assert_input_error(struct duet_verifier *v, const char *fragment)
{
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INPUT);
    assert_contains(duet_verifier_error(v), fragment);
}

static void
test_version_new_free(void **state)
{
    struct duet_verifier *v = duet_verifier_new();

    (void)state;
    assert_string_equal(duet_version(), "0.1.0");
    assert_non_null(v);
    assert_null(duet_verifier_error(v));
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_NONE);
    assert_null(duet_verifier_identity(v));
    duet_verifier_free(v);
    duet_verifier_free(NULL);
}

static void
test_verify_file_identity(void **state)
{
    struct duet_verifier *v = verifier();
    char *p = fpath("leaf.pem");
    const struct duet_identity *id;
    enum duet_san_type type = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char fp[EVP_MAX_MD_SIZE * 3 + 1];

    (void)state;
    assert_int_equal(duet_verifier_set_purpose(v, DUET_PURPOSE_CLIENT), 0);
    assert_int_equal(duet_verifier_set_name(v, "svc.example"), 0);
    if (duet_verifier_verify_file(v, p) != 0)
        fail_msg("%s", duet_verifier_error(v));
    assert_null(duet_verifier_error(v));
    id = duet_verifier_identity(v);
    assert_non_null(id);
    assert_string_equal(duet_identity_name(id), "spiffe://corp.example/svc");
    assert_string_equal(duet_identity_subject(id), "CN=svc,O=Duet Test");
    assert_string_equal(duet_identity_issuer(id), CA_SUBJECT);
    assert_string_equal(duet_identity_serial(id), "0A:BC:DE");
    assert_int_equal(X509_digest(F.leaf, EVP_sha256(), md, &n), 1);
    for (unsigned int i = 0; i < n; i++)
        sprintf(fp + i * 3, "%02X%s", md[i], i + 1 < n ? ":" : "");
    assert_string_equal(duet_identity_fingerprint(id), fp);
    assert_in_range(duet_identity_not_before(id), F.t0 - 3600, F.t1 - 3600);
    assert_in_range(duet_identity_not_after(id), F.t0 + 30 * CF_DAY, F.t1 + 30 * CF_DAY);
    assert_int_equal(duet_identity_san_count(id), 3);
    assert_string_equal(duet_identity_san(id, 0, &type), "svc.example");
    assert_int_equal(type, DUET_SAN_DNS);
    assert_string_equal(duet_identity_san(id, 1, &type), "spiffe://corp.example/svc");
    assert_int_equal(type, DUET_SAN_URI);
    assert_string_equal(duet_identity_san(id, 2, &type), "192.0.2.7");
    assert_int_equal(type, DUET_SAN_IP);
    assert_string_equal(duet_identity_san(id, 2, NULL), "192.0.2.7");
    type = 0;
    assert_null(duet_identity_san(id, 3, &type));
    assert_int_equal(type, 0);
    free(p);
    duet_verifier_free(v);
}

static void
test_identity_cleared_on_failure(void **state)
{
    struct duet_verifier *v = verifier();
    char *p = fpath("leaf.pem");

    (void)state;
    assert_int_equal(duet_verifier_verify_file(v, p), 0);
    assert_non_null(duet_verifier_identity(v));
    assert_int_equal(duet_verifier_set_name(v, "other.example"), 0);
    assert_int_equal(duet_verifier_verify_file(v, p), -1);
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INVALID);
    assert_contains(duet_verifier_error(v), "is not valid for the name other.example");
    assert_null(duet_verifier_identity(v));
    /* A later success clears the error. */
    assert_int_equal(duet_verifier_set_name(v, "192.0.2.7"), 0);
    assert_int_equal(duet_verifier_verify_file(v, p), 0);
    assert_null(duet_verifier_error(v));
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_NONE);
    free(p);
    duet_verifier_free(v);
}

static void
test_add_trusted_file_errors(void **state)
{
    struct duet_verifier *v = duet_verifier_new();
    char *missing = fpath("missing.pem");
    char *crl = fpath("ca.crl");
    char want[1024];

    (void)state;
    assert_int_equal(duet_verifier_add_trusted_file(v, missing), -1);
    snprintf(want, sizeof(want), "%s: no such file", missing);
    assert_input_error(v, want);
    assert_int_equal(duet_verifier_add_trusted_file(v, crl), -1);
    snprintf(want, sizeof(want), "%s: no certificate found", crl);
    assert_input_error(v, want);
    assert_int_equal(duet_verifier_add_trusted_file(v, NULL), -1);
    assert_input_error(v, "no file given");
    free(missing);
    free(crl);
    duet_verifier_free(v);
}

static void
test_add_trusted_mem(void **state)
{
    struct duet_verifier *v = duet_verifier_new();
    size_t len = 0;
    uint8_t *pem = cf_cert_pem(F.ca, &len);
    char *p = fpath("leaf.pem");

    (void)state;
    assert_int_equal(duet_verifier_add_trusted_mem(v, pem, len), 0);
    if (duet_verifier_verify_file(v, p) != 0)
        fail_msg("%s", duet_verifier_error(v));
    assert_int_equal(duet_verifier_add_trusted_mem(v, (const uint8_t *)"junk", 4), -1);
    assert_input_error(v, "trusted certificates: neither PEM nor DER");
    free(pem);
    free(p);
    duet_verifier_free(v);
}

static void
test_verify_mem_der(void **state)
{
    struct duet_verifier *v = verifier();
    size_t len = 0;
    uint8_t *der = cf_cert_der(F.leaf, &len);

    (void)state;
    if (duet_verifier_verify_mem(v, der, len) != 0)
        fail_msg("%s", duet_verifier_error(v));
    assert_string_equal(duet_identity_serial(duet_verifier_identity(v)), "0A:BC:DE");
    free(der);
    duet_verifier_free(v);
}

static void
test_add_crl_file(void **state)
{
    struct duet_verifier *v = verifier();
    char *crl = fpath("ca.crl");
    char *revoking = fpath("ca-revoking.crl");
    char *leaf = fpath("leaf.pem");

    (void)state;
    assert_int_equal(duet_verifier_add_crl_file(v, crl), 0);
    assert_int_equal(duet_verifier_verify_file(v, leaf), 0);
    assert_int_equal(duet_verifier_add_crl_file(v, revoking), 0);
    assert_int_equal(duet_verifier_verify_file(v, leaf), -1);
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INVALID);
    assert_contains(duet_verifier_error(v), "certificate CN=svc,O=Duet Test (serial 0A:BC:DE) "
                                            "was revoked on ");
    assert_contains(duet_verifier_error(v), "(reason: superseded) by the CRL of " CA_SUBJECT);
    free(crl);
    free(revoking);
    free(leaf);
    duet_verifier_free(v);
}

static void
test_add_crl_without_next_update(void **state)
{
    struct duet_verifier *v = verifier();
    char *p = fpath("no-next.crl");
    char *leaf = fpath("leaf.pem");
    char want[1024];

    (void)state;
    assert_int_equal(duet_verifier_add_crl_file(v, p), -1);
    snprintf(want, sizeof(want),
             "%s: the CRL of " CA_SUBJECT " has no nextUpdate, so its freshness cannot be judged",
             p);
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INPUT);
    assert_string_equal(duet_verifier_error(v), want);
    /* Nothing was added: verification runs without revocation checks. */
    assert_int_equal(duet_verifier_verify_file(v, leaf), 0);
    free(p);
    free(leaf);
    duet_verifier_free(v);
}

/* A DSA-signed CRL: refused by default, naming the file, the algorithm and the flag. */
static void
test_dsa_crl_needs_the_legacy_setting(void **state)
{
    struct duet_verifier *v = verifier();
    char *p = fpath("dsa.crl");
    char want[1024];

    (void)state;
    assert_int_equal(duet_verifier_add_crl_file(v, p), -1);
    snprintf(want, sizeof(want),
             "%s: the CRL of " CA_SUBJECT " is signed with dsa_with_SHA256 (DSA), a legacy "
             "algorithm duet refuses by default; to accept it, pass --insecure-crl-signature dsa "
             "(YAML insecure_crl_signature: dsa)",
             p);
    assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INPUT);
    assert_string_equal(duet_verifier_error(v), want);
    duet_verifier_insecure_crl_dsa(v);
    assert_int_equal(duet_verifier_add_crl_file(v, p), 0);
    free(p);
    duet_verifier_free(v);
}

static void
test_add_crl_file_errors(void **state)
{
    struct duet_verifier *v = verifier();
    char *cert = fpath("ca.pem");
    char want[1024];

    (void)state;
    assert_int_equal(duet_verifier_add_crl_file(v, cert), -1);
    snprintf(want, sizeof(want), "%s: no CRL found", cert);
    assert_input_error(v, want);
    assert_int_equal(duet_verifier_add_crl_file(v, NULL), -1);
    assert_input_error(v, "no file given");
    free(cert);
    duet_verifier_free(v);
}

static void
test_set_name_invalid(void **state)
{
    static const char *const bad[] = {"*.example.com", "bad name", "", "a..b", "x/y"};
    struct duet_verifier *v = verifier();
    char *leaf = fpath("leaf.pem");

    (void)state;
    assert_int_equal(duet_verifier_set_name(v, "wrong.example"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        assert_int_equal(duet_verifier_set_name(v, bad[i]), -1);
        snprintf(want, sizeof(want), "name \"%s\" is neither a DNS name nor an IP address", bad[i]);
        assert_int_equal(duet_verifier_error_kind(v), DUET_ERR_INPUT);
        assert_string_equal(duet_verifier_error(v), want);
    }
    /* The refused names did not replace the one set before. */
    assert_int_equal(duet_verifier_verify_file(v, leaf), -1);
    assert_contains(duet_verifier_error(v), "is not valid for the name wrong.example");
    free(leaf);
    duet_verifier_free(v);
}

static void
test_setters_refuse_out_of_range(void **state)
{
    struct duet_verifier *v = verifier();

    (void)state;
    assert_int_equal(duet_verifier_set_purpose(v, (enum duet_purpose)7), -1);
    assert_input_error(v, "unknown purpose 7");
    assert_int_equal(duet_verifier_set_max_depth(v, -1), -1);
    assert_input_error(v, "maximum depth -1 is out of range 0..32");
    assert_int_equal(duet_verifier_set_max_depth(v, 33), -1);
    assert_input_error(v, "maximum depth 33 is out of range");
    assert_int_equal(duet_verifier_set_crl_scope(v, (enum duet_crl_scope)5), -1);
    assert_input_error(v, "unknown CRL scope 5");
    /* A successful setter clears the error. */
    assert_int_equal(duet_verifier_set_max_depth(v, 32), 0);
    assert_null(duet_verifier_error(v));
    assert_int_equal(duet_verifier_set_time(v, (int64_t)time(NULL)), 0);
    assert_int_equal(duet_verifier_set_purpose(v, DUET_PURPOSE_ANY), 0);
    assert_int_equal(duet_verifier_set_crl_scope(v, DUET_CRL_LEAF), 0);
    duet_verifier_free(v);
}

static void
test_pkcs12_with_password_file(void **state)
{
    struct duet_verifier *v = verifier();
    char *p12 = fpath("leaf.p12");
    char *pw = fpath("p12.pass");
    char *empty = fpath("empty.pass");
    char *missing = fpath("missing.pass");

    (void)state;
    assert_int_equal(duet_verifier_verify_file(v, p12), -1);
    assert_input_error(v, "PKCS#12 file is protected by a password");
    assert_int_equal(duet_verifier_set_password_file(v, missing), -1);
    assert_input_error(v, "no such file");
    assert_int_equal(duet_verifier_set_password_file(v, empty), -1);
    assert_input_error(v, "first line is empty");
    assert_int_equal(duet_verifier_set_password_file(v, pw), 0);
    if (duet_verifier_verify_file(v, p12) != 0)
        fail_msg("%s", duet_verifier_error(v));
    assert_string_equal(duet_identity_name(duet_verifier_identity(v)), "spiffe://corp.example/svc");
    free(p12);
    free(pw);
    free(empty);
    free(missing);
    duet_verifier_free(v);
}

static void
test_verify_file_input_errors(void **state)
{
    struct duet_verifier *v = verifier();
    char *crl = fpath("ca.crl");

    (void)state;
    assert_int_equal(duet_verifier_verify_file(v, NULL), -1);
    assert_input_error(v, "no certificate file given");
    assert_int_equal(duet_verifier_verify_file(v, crl), -1);
    assert_input_error(v, "no certificate found");
    assert_int_equal(duet_verifier_verify_file(v, F.dir), -1);
    assert_input_error(v, "is a directory");
    free(crl);
    duet_verifier_free(v);
}

static int
setup(void **state)
{
    static const char *const sans[] = {"DNS:svc.example", "URI:spiffe://corp.example/svc",
                                       "IP:192.0.2.7", NULL};
    struct cf_cert_spec s;
    struct cf_crl_spec cs;
    struct cf_revoked rev = {.serial = 0xABCDE, .reason = CRL_REASON_SUPERSEDED};
    X509_CRL *crl;
    STACK_OF(X509) * ca;
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;
    char *p;

    (void)state;
    F.dir = cf_tmpdir();
    F.k_ca = cf_key_new(CF_KEY_EC_P384);
    F.k_leaf = cf_key_new(CF_KEY_EC_P256);
    s = (struct cf_cert_spec){
        .cn = "API Test CA", .o = "Duet Test", .key = F.k_ca, .serial = 1, .bc = CF_BC_CA};
    F.ca = cf_cert_new(&s);
    F.t0 = (int64_t)time(NULL);
    s = (struct cf_cert_spec){.cn = "svc",
                              .o = "Duet Test",
                              .key = F.k_leaf,
                              .issuer = F.ca,
                              .issuer_key = F.k_ca,
                              .serial = 0xABCDE,
                              .bc = CF_BC_LEAF,
                              .eku = CF_EKU_CLIENT | CF_EKU_SERVER,
                              .sans = sans,
                              .not_before = -3600,
                              .not_after = 30 * CF_DAY};
    F.leaf = cf_cert_new(&s);
    F.t1 = (int64_t)time(NULL);

    p = fpath("ca.pem");
    cf_write_certs(p, F.ca, NULL);
    free(p);
    p = fpath("leaf.pem");
    cf_write_certs(p, F.leaf, NULL);
    free(p);

    cs = (struct cf_crl_spec){.issuer = F.ca, .issuer_key = F.k_ca};
    crl = cf_crl_new(&cs);
    p = fpath("ca.crl");
    cf_write_crls(p, crl, NULL);
    free(p);
    X509_CRL_free(crl);
    /* The newer CRL (later lastUpdate) is the one OpenSSL picks. */
    cs = (struct cf_crl_spec){.issuer = F.ca,
                              .issuer_key = F.k_ca,
                              .revoked = &rev,
                              .nrevoked = 1,
                              .number = 2,
                              .last_update = -600,
                              .next_update = 7 * CF_DAY};
    crl = cf_crl_new(&cs);
    p = fpath("ca-revoking.crl");
    cf_write_crls(p, crl, NULL);
    free(p);
    X509_CRL_free(crl);
    cs = (struct cf_crl_spec){.issuer = F.ca, .issuer_key = F.k_ca, .no_next_update = true};
    crl = cf_crl_new(&cs);
    p = fpath("no-next.crl");
    cf_write_crls(p, crl, NULL);
    free(p);
    X509_CRL_free(crl);
    {
        EVP_PKEY *dk = cf_key_new(CF_KEY_DSA_2048);
        cs = (struct cf_crl_spec){.issuer = F.ca, .issuer_key = dk};
        crl = cf_crl_new(&cs);
        p = fpath("dsa.crl");
        cf_write_crls(p, crl, NULL);
        free(p);
        X509_CRL_free(crl);
        EVP_PKEY_free(dk);
    }

    ca = cf_certs(F.ca, NULL);
    p12 = PKCS12_create_ex("p12-pass", "svc", F.k_leaf, F.leaf, ca, 0, 0, 0, 0, 0, NULL, NULL);
    if (p12 == NULL || (n = i2d_PKCS12(p12, &der)) <= 0)
        return -1;
    p = fpath("leaf.p12");
    cf_write_file(p, der, (size_t)n);
    free(p);
    OPENSSL_free(der);
    PKCS12_free(p12);
    OSSL_STACK_OF_X509_free(ca);
    p = fpath("p12.pass");
    cf_write_file(p, "p12-pass\nignored\n", 17);
    free(p);
    p = fpath("empty.pass");
    cf_write_file(p, "\n", 1);
    free(p);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(F.ca);
    X509_free(F.leaf);
    EVP_PKEY_free(F.k_ca);
    EVP_PKEY_free(F.k_leaf);
    cf_tmpdir_remove(F.dir);
    memset(&F, 0, sizeof(F));
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_new_free),
        cmocka_unit_test(test_verify_file_identity),
        cmocka_unit_test(test_identity_cleared_on_failure),
        cmocka_unit_test(test_add_trusted_file_errors),
        cmocka_unit_test(test_add_trusted_mem),
        cmocka_unit_test(test_verify_mem_der),
        cmocka_unit_test(test_add_crl_file),
        cmocka_unit_test(test_add_crl_without_next_update),
        cmocka_unit_test(test_add_crl_file_errors),
        cmocka_unit_test(test_set_name_invalid),
        cmocka_unit_test(test_setters_refuse_out_of_range),
        cmocka_unit_test(test_pkcs12_with_password_file),
        cmocka_unit_test(test_verify_file_input_errors),
        cmocka_unit_test(test_dsa_crl_needs_the_legacy_setting),
    };

    return cmocka_run_group_tests_name("api", tests, setup, teardown);
}
