/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_fixture.c - the certificates and OCSP responses shared by the OCSP
 * unit tests of the proxy and the tunnel (see ocsp_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ocsp_fixture.h"

int64_t now;
EVP_PKEY *ca_key, *leaf_key, *del_key, *stranger_key;
X509 *ca, *leaf, *other, *del, *del_noeku, *stranger;

/* A certificate for cn with key, signed by issuer/ikey (self-signed when NULL). */
X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial, const char *bc,
          const char *eku)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, NULL);
    X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    if (bc != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (eku != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
    return x;
}

/* Make the keys and certificates (a cmocka group setup). */
int
setup(void **state)
{
    (void)state;
    now = (int64_t)time(NULL);
    ca_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    del_key = EVP_EC_gen("P-256");
    stranger_key = EVP_EC_gen("P-256");
    ca = make_cert("Issuing CA", ca_key, NULL, NULL, 1, "critical,CA:TRUE", NULL);
    leaf = make_cert("localhost", leaf_key, ca, ca_key, 1001, NULL, "serverAuth");
    other = make_cert("other", leaf_key, ca, ca_key, 1002, NULL, "serverAuth");
    del = make_cert("OCSP responder", del_key, ca, ca_key, 2001, NULL, "OCSPSigning");
    del_noeku = make_cert("Not a responder", del_key, ca, ca_key, 2002, NULL, "serverAuth");
    /* The issuer's name, another key: a forgery that names the issuer. */
    stranger = make_cert("Issuing CA", stranger_key, NULL, NULL, 1, "critical,CA:TRUE", NULL);
    return 0;
}

/* Free what setup() made. */
int
teardown(void **state)
{
    (void)state;
    X509_free(ca);
    X509_free(leaf);
    X509_free(other);
    X509_free(del);
    X509_free(del_noeku);
    X509_free(stranger);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(del_key);
    EVP_PKEY_free(stranger_key);
    return 0;
}

/* The DER of the OCSP response sp describes, signed now. */
unsigned char *
make_resp(const struct resp_spec *sp, size_t *len)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(sp->sha256 ? EVP_sha256() : EVP_sha1(),
                                      sp->subject != NULL ? sp->subject : leaf, ca);
    ASN1_TIME *tu = ASN1_GENERALIZEDTIME_set(NULL, (time_t)(now + sp->this_off));
    ASN1_TIME *nu =
        sp->next_off != 0 ? ASN1_GENERALIZEDTIME_set(NULL, (time_t)(now + sp->next_off)) : NULL;
    ASN1_TIME *rev = ASN1_GENERALIZEDTIME_set(NULL, (time_t)(now - 600));
    OCSP_RESPONSE *r;
    unsigned char *der = NULL;
    int n;

    assert_non_null(OCSP_basic_add1_status(
        bs, id, sp->status,
        sp->status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1,
        sp->status == V_OCSP_CERTSTATUS_REVOKED ? rev : NULL, tu, nu));
    assert_int_equal(OCSP_basic_sign(bs, sp->signer != NULL ? sp->signer : ca,
                                     sp->key != NULL ? sp->key : ca_key, EVP_sha256(), NULL,
                                     sp->include_signer ? 0 : OCSP_NOCERTS),
                     1);
    if (sp->response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        r = OCSP_response_create(sp->response_status, NULL);
    else
        r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    n = i2d_OCSP_RESPONSE(r, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    OCSP_RESPONSE_free(r);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    ASN1_TIME_free(rev);
    return der;
}
