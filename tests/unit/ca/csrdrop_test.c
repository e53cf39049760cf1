/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csrdrop_test.c - unit tests of ca_csr_drops() (src/ca/csrdrop.c): a CSR is
 * compared with a certificate made here, independently of the CA.  What the
 * certificate holds as asked (the CN, a SAN, a keyUsage with the same value
 * and criticality) is not reported; a subject attribute, a SAN and an
 * extension it lacks are, each with its value, and a challenge password by
 * name only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "ca/csrdrop.h"
#include "testlib/certfactory.h"

/* Add an extension given as a configuration value ("critical,CA:TRUE") to a list. */
static void
push_ext(STACK_OF(X509_EXTENSION) * exts, int nid, const char *value)
{
    X509_EXTENSION *x = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    assert_non_null(x);
    assert_true(sk_X509_EXTENSION_push(exts, x) > 0);
}

static void
test_drops(void **state)
{
    static const char *const sans[] = {"DNS:api.corp", NULL};
    EVP_PKEY *key = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec spec = {.cn = "api.corp", .o = "Corp", .key = key, .bc = CF_BC_LEAF,
                                .eku = CF_EKU_SERVER, .sans = sans};
    X509 *cert = cf_cert_new(&spec);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subj = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    struct ca_drop *d = NULL;
    size_t n = 0;
    struct duet_err err = {0};

    (void)state;
    assert_non_null(cert);
    /* Subject: O differs from the certificate's, CN is the same. */
    assert_true(X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8,
                                           (const unsigned char *)"Evil \x1b[31mCorp", -1, -1, 0));
    assert_true(X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"api.corp", -1, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, subj));
    assert_true(X509_REQ_set_pubkey(req, key));
    push_ext(exts, NID_subject_alt_name, "DNS:api.corp,DNS:extra.corp");
    push_ext(exts, NID_basic_constraints, "critical,CA:TRUE");
    /* The certificate's own keyUsage, byte for byte: kept, not reported. */
    assert_true(sk_X509_EXTENSION_push(
                    exts, X509_EXTENSION_dup(X509_get_ext(
                              cert, X509_get_ext_by_NID(cert, NID_key_usage, -1)))) > 0);
    assert_true(X509_REQ_add_extensions(req, exts));
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                          (const unsigned char *)"hunter2", -1));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);

    assert_int_equal(ca_csr_drops(req, cert, &d, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(d[0].kind, CA_DROP_SUBJECT);
    assert_string_equal(d[0].name, "O");
    assert_string_equal(d[0].value, "Evil \x1b[31mCorp"); /* unescaped: the front end escapes */
    assert_int_equal(d[1].kind, CA_DROP_SAN);
    assert_string_equal(d[1].name, "DNS");
    assert_string_equal(d[1].value, "extra.corp");
    assert_int_equal(d[2].kind, CA_DROP_EXTENSION);
    assert_string_equal(d[2].name, "basicConstraints");
    assert_string_equal(d[2].value, "CA:TRUE");
    assert_true(d[2].critical);
    assert_int_equal(d[3].kind, CA_DROP_ATTRIBUTE);
    assert_string_equal(d[3].name, "challengePassword");
    assert_null(d[3].value);
    assert_string_equal(ca_drop_kind_name(d[3].kind), "attribute");
    ca_drops_free(d, n);

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(subj);
    X509_REQ_free(req);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* A CSR asking for exactly what the certificate holds: nothing to report. */
static void
test_nothing_dropped(void **state)
{
    static const char *const sans[] = {"DNS:api.corp", NULL};
    EVP_PKEY *key = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec spec = {.cn = "api.corp", .key = key, .bc = CF_BC_LEAF, .sans = sans};
    X509 *cert = cf_cert_new(&spec);
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    struct ca_drop *d = (struct ca_drop *)&d;
    size_t n = 99;
    struct duet_err err = {0};

    (void)state;
    assert_true(X509_REQ_set_subject_name(req, X509_get_subject_name(cert)));
    assert_true(X509_REQ_set_pubkey(req, key));
    push_ext(exts, NID_subject_alt_name, "DNS:api.corp");
    assert_true(X509_REQ_add_extensions(req, exts));
    assert_int_equal(ca_csr_drops(req, cert, &d, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(d);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drops),
        cmocka_unit_test(test_nothing_dropped),
    };
    return cmocka_run_group_tests_name("ca/csrdrop", tests, NULL, NULL);
}
