/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idworld.c - the shared world of identities; see idworld.h.
 */
#include "testlib/idworld.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "lib/err.h"
#include "testlib/certfactory.h"

struct id_world IDW;

/* The identity duet reads from x; see idworld.h. */
struct duet_identity *
idw_identity_of(X509 *x)
{
    struct duet_identity *id = NULL;
    struct duet_err err;

    err_clear(&err);
    if (identity_from_x509(x, &id, &err) != 0)
        fail_msg("identity_from_x509: %s", err.msg);
    return id;
}

/* A client leaf signed by the world's CA; see idworld.h. */
X509 *
idw_leaf(const char *cn, const char *o, const char *const *sans)
{
    struct cf_cert_spec s = {
        .cn = cn,
        .o = o,
        .key = IDW.k_leaf,
        .issuer = IDW.ca,
        .issuer_key = IDW.k_ca,
        .bc = CF_BC_LEAF,
        .eku = CF_EKU_CLIENT,
        .sans = sans,
    };
    return cf_cert_new(&s);
}

/* Build the world; see idworld.h. */
int
idw_setup(void **state)
{
    static const char *const known_sans[] = {"DNS:svc.corp",
                                             "URI:spiffe://corp/ns/prod/sa/svc",
                                             "email:svc@corp.example",
                                             "IP:10.9.8.7",
                                             "DNS:*.svc.corp",
                                             "URI:https://corp.example/svc",
                                             NULL};
    static const char *const one_sans[] = {"URI:spiffe://corp/one", NULL};
    static const char *const nocn_sans[] = {"URI:spiffe://corp/nocn", NULL};
    struct cf_cert_spec ca = {.cn = "XFCC CA", .bc = CF_BC_CA};
    X509 *x;

    (void)state;
    IDW.k_ca = cf_key_new(CF_KEY_EC_P256);
    IDW.k_leaf = cf_key_new(CF_KEY_EC_P256);
    ca.key = IDW.k_ca;
    IDW.ca = cf_cert_new(&ca);
    IDW.known = idw_leaf("svc \"one\", two", "Corp", known_sans);
    IDW.id_known = idw_identity_of(IDW.known);
    x = idw_leaf("one.corp", NULL, one_sans);
    IDW.id_one = idw_identity_of(x);
    X509_free(x);
    x = idw_leaf(NULL, NULL, nocn_sans);
    IDW.id_nocn = idw_identity_of(x);
    X509_free(x);
    assert_string_equal(IDW.id_known->subject, IDW_KNOWN_SUBJECT);
    assert_null(IDW.id_nocn->cn);
    return 0;
}

/* Free the world; see idworld.h. */
int
idw_teardown(void **state)
{
    (void)state;
    identity_free(IDW.id_known);
    identity_free(IDW.id_one);
    identity_free(IDW.id_nocn);
    X509_free(IDW.known);
    X509_free(IDW.ca);
    EVP_PKEY_free(IDW.k_ca);
    EVP_PKEY_free(IDW.k_leaf);
    memset(&IDW, 0, sizeof(IDW));
    return 0;
}

/* A leaf with raw IA5String SANs; see idworld.h. */
X509 *
idw_leaf_raw_sans(const char *cn, const struct idw_rawsan *r, size_t n)
{
    X509 *x = idw_leaf(cn, "Corp", NULL);
    GENERAL_NAMES *g = GENERAL_NAMES_new();

    assert_non_null(g);
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        assert_true(gn != NULL && s != NULL);
        assert_true(ASN1_STRING_set(s, r[i].v, (int)r[i].n));
        GENERAL_NAME_set0_value(gn, r[i].type, s);
        assert_true(sk_GENERAL_NAME_push(g, gn) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, g, 0, X509V3_ADD_REPLACE), 1);
    GENERAL_NAMES_free(g);
    assert_true(X509_sign(x, IDW.k_ca, EVP_sha256()) > 0);
    return x;
}
