/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunstaple_test.c - unit tests of the verdict of `duet tunnel` on its
 * server's OCSP staple (src/proxy/tunstaple.c): none (accepted, or refused
 * with --require-staple), good, revoked (the date and reason in the
 * sentence), and every staple that does not hold refused with the server
 * named; the issuer comes from the verified chain only, checked by
 * signature, never by name alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "proxy/staple.h"
#include "proxy/tunstaple.h"

static int64_t now;
static EVP_PKEY *ca_key, *leaf_key, *del_key, *stranger_key;
static X509 *ca, *leaf, *other, *del, *del_noeku, *stranger;

static X509 *
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

static int
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

static int
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

struct resp_spec {
    X509 *subject;       /* the certificate answered for (default leaf) */
    X509 *signer;        /* default ca */
    EVP_PKEY *key;       /* default ca_key */
    int status;          /* V_OCSP_CERTSTATUS_* */
    int64_t this_off;    /* thisUpdate - now */
    int64_t next_off;    /* nextUpdate - now; 0: none */
    bool sha256;         /* a SHA-256 CertID */
    bool include_signer; /* the signer's certificate in the response */
    int response_status; /* OCSP_RESPONSE_STATUS_* */
};

static unsigned char *
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

#define GOOD                                                                                       \
    {                                                                                              \
        .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600                        \
    }

#define SERVER "localhost (127.0.0.1:4433)"

/* The chain the tunnel verified: leaf, then the given issuer (NULL: the leaf alone). */
static STACK_OF(X509) *
chain_of(X509 *issuer)
{
    STACK_OF(X509) *sk = sk_X509_new_null();

    assert_non_null(sk);
    assert_true(sk_X509_push(sk, leaf) > 0);
    if (issuer != NULL)
        assert_true(sk_X509_push(sk, issuer) > 0);
    return sk;
}

/* The verdict on spec's response (NULL: no staple) with the chain leaf, issuer. */
static enum tunstaple_verdict
judge(const struct resp_spec *sp, X509 *issuer, bool require, char *code, char *why)
{
    size_t len = 0;
    unsigned char *der = sp != NULL ? make_resp(sp, &len) : NULL;
    STACK_OF(X509) *chain = chain_of(issuer);
    enum tunstaple_verdict v =
        tunstaple_judge(der, len, chain, SERVER, require, now, code, 32, why, 1800);

    sk_X509_free(chain);
    OPENSSL_free(der);
    return v;
}

static void
test_no_staple(void **state)
{
    char code[32], why[1800];

    (void)state;
    assert_int_equal(judge(NULL, ca, false, code, why), TUNSTAPLE_NONE);
    assert_string_equal(code, "");
    assert_string_equal(why, "");
    assert_int_equal(judge(NULL, ca, true, code, why), TUNSTAPLE_MISSING);
    assert_string_equal(code, "missing");
    assert_string_equal(why, "the server " SERVER " sent no OCSP staple (--require-staple)");
    /* An empty staple is none. */
    assert_int_equal(tunstaple_judge((const unsigned char *)"", 0, NULL, SERVER, true, now, code,
                                     sizeof(code), why, sizeof(why)),
                     TUNSTAPLE_MISSING);
}

static void
test_good_and_revoked(void **state)
{
    struct resp_spec sp = GOOD;
    char code[32], why[1800], date[16];
    time_t t = (time_t)(now - 600);
    struct tm tm;

    (void)state;
    assert_int_equal(judge(&sp, ca, true, code, why), TUNSTAPLE_GOOD);
    assert_string_equal(code, "");
    assert_string_equal(why, "");
    /* From the issuer's delegated OCSP signer, carried in the response. */
    sp.signer = del;
    sp.key = del_key;
    sp.include_signer = true;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_GOOD);

    sp = (struct resp_spec)GOOD;
    sp.status = V_OCSP_CERTSTATUS_REVOKED;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_REVOKED);
    assert_string_equal(code, "revoked");
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    assert_true(strncmp(why, "the server " SERVER ": certificate CN=localhost (serial 03:E9) "
                             "was revoked on ",
                        strlen("the server " SERVER ": certificate CN=localhost (serial 03:E9) "
                               "was revoked on ")) == 0);
    assert_non_null(strstr(why, date));
    assert_non_null(strstr(why, " (reason: keyCompromise) by the OCSP staple it sent"));
}

static void
test_bad_staples_name_the_server_and_the_fault(void **state)
{
    struct resp_spec sp = GOOD;
    char code[32], why[1800];
    STACK_OF(X509) *chain;

    (void)state;
    /* A revocation signed by someone else under the issuer's name is a bad staple, not a
     * revocation. */
    sp.status = V_OCSP_CERTSTATUS_REVOKED;
    sp.signer = stranger;
    sp.key = stranger_key;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "bad_signature");
    assert_string_equal(why, "the server " SERVER " sent an OCSP staple that does not hold "
                             "(bad_signature): bad signature: the response does not verify with "
                             "the key of \"CN=Issuing CA\"; a sound server never sends one, so "
                             "it is refused");
    sp = (struct resp_spec)GOOD;
    sp.subject = other;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "wrong_certificate");
    sp = (struct resp_spec)GOOD;
    sp.this_off = -7200;
    sp.next_off = -3600;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "expired");
    sp = (struct resp_spec)GOOD;
    sp.status = V_OCSP_CERTSTATUS_UNKNOWN;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "unknown");
    sp = (struct resp_spec)GOOD;
    sp.response_status = OCSP_RESPONSE_STATUS_TRYLATER;
    assert_int_equal(judge(&sp, ca, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "unsuccessful");
    chain = chain_of(ca);
    assert_int_equal(tunstaple_judge((const unsigned char *)"garbage", 7, chain, SERVER, false,
                                     now, code, sizeof(code), why, sizeof(why)),
                     TUNSTAPLE_BAD);
    assert_string_equal(code, "not_ocsp");
    sk_X509_free(chain);
}

static void
test_the_issuer_comes_from_the_verified_chain(void **state)
{
    struct resp_spec sp = GOOD;
    char code[32], why[1800];

    (void)state;
    /* The leaf alone (a server whose issuer is not in the chain): nothing to check with. */
    assert_int_equal(judge(&sp, NULL, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "no_issuer");
    assert_string_equal(why, "the server " SERVER " sent an OCSP staple, but its verified chain "
                             "holds no issuer of its certificate to check the staple with");
    /* A certificate with the issuer's name and another key did not sign the leaf: not its
     * issuer, even for a response that same key signed. */
    sp.signer = stranger;
    sp.key = stranger_key;
    assert_int_equal(judge(&sp, stranger, false, code, why), TUNSTAPLE_BAD);
    assert_string_equal(code, "no_issuer");
}

static void
test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(tunstaple_verdict_name(TUNSTAPLE_GOOD), "good");
    assert_string_equal(tunstaple_verdict_name(TUNSTAPLE_NONE), "none");
    assert_string_equal(tunstaple_verdict_name(TUNSTAPLE_MISSING), "missing");
    assert_string_equal(tunstaple_verdict_name(TUNSTAPLE_REVOKED), "revoked");
    assert_string_equal(tunstaple_verdict_name(TUNSTAPLE_BAD), "bad");
    assert_string_equal(tunstaple_verdict_name((enum tunstaple_verdict)99), "bad");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_staple),
        cmocka_unit_test(test_good_and_revoked),
        cmocka_unit_test(test_bad_staples_name_the_server_and_the_fault),
        cmocka_unit_test(test_the_issuer_comes_from_the_verified_chain),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
