/* SPDX-License-Identifier: Apache-2.0 */
/*
 * staple_test.c - unit tests of the checks an OCSP response passes before
 * `duet proxy` staples it (src/proxy/staple.c): signer (the issuer, its
 * delegated OCSP signer, nobody else), CertID, status, times with the clock
 * skew, and the refusal codes and sentences; the GET request path, the
 * issuer found in a chain, and the cache file name.
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

#include "ocsp_fixture.h"

/* staple_check of spec's response; code and why for the caller. */
static int
check(const struct resp_spec *sp, struct staple_facts *f, char *code, char *why)
{
    size_t len;
    unsigned char *der = make_resp(sp, &len);
    int rc = staple_check(der, len, leaf, ca, now, f, code, 32, why, 1200);

    OPENSSL_free(der);
    return rc;
}

#define GOOD                                                                                       \
    {                                                                                              \
        .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600                        \
    }

static void
test_good_from_the_issuer_and_its_delegate(void **state)
{
    struct staple_facts f;
    char code[32], why[1200];
    struct resp_spec a = GOOD, b = GOOD, c = GOOD, d = GOOD;

    (void)state;
    assert_int_equal(check(&a, &f, code, why), 0);
    assert_int_equal(f.status, V_OCSP_CERTSTATUS_GOOD);
    assert_true(f.this_update == now - 60 && f.next_update == now + 3600);
    b.signer = del;
    b.key = del_key;
    b.include_signer = true;
    assert_int_equal(check(&b, &f, code, why), 0);
    c.sha256 = true; /* a responder that hashes with SHA-256 */
    assert_int_equal(check(&c, &f, code, why), 0);
    d.this_off = 200; /* a responder clock a little ahead: within the skew */
    assert_int_equal(check(&d, &f, code, why), 0);
}

static void
test_refusals_name_the_reason(void **state)
{
    struct staple_facts f;
    char code[32], why[1200];
    struct resp_spec sp;

    (void)state;
    /* A delegated signer without id-kp-OCSPSigning. */
    sp = (struct resp_spec)GOOD;
    sp.signer = del_noeku;
    sp.key = del_key;
    sp.include_signer = true;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "unknown_signer");
    assert_non_null(strstr(why, "\"CN=Not a responder\", which is neither the certificate's "
                                "issuer \"CN=Issuing CA\""));
    /* Another key under the issuer's name. */
    sp = (struct resp_spec)GOOD;
    sp.signer = stranger;
    sp.key = stranger_key;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "bad_signature");
    assert_string_equal(why, "bad signature: the response does not verify with the key of "
                             "\"CN=Issuing CA\"");
    /* The same stranger carried in the response: the issuer it names is the signer checked. */
    sp.include_signer = true;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "bad_signature");
    /* Another certificate's status. */
    sp = (struct resp_spec)GOOD;
    sp.subject = other;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "wrong_certificate");
    assert_string_equal(why, "the response has no status for this certificate (serial 03:E9): it "
                             "answers for another certificate");
    /* Revoked, unknown. */
    sp = (struct resp_spec)GOOD;
    sp.status = V_OCSP_CERTSTATUS_REVOKED;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "revoked");
    assert_int_equal(f.status, V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(f.revoked_at, now - 600);
    assert_non_null(
        strstr(why, "the responder says the certificate (serial 03:E9) was revoked on "));
    assert_non_null(strstr(why, ", reason keyCompromise; a revoked status is never stapled"));
    sp.status = V_OCSP_CERTSTATUS_UNKNOWN;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "unknown");
    assert_int_equal(f.status, V_OCSP_CERTSTATUS_UNKNOWN);
    /* Times. */
    sp = (struct resp_spec)GOOD;
    sp.this_off = -7200;
    sp.next_off = -1;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "expired");
    assert_non_null(strstr(why, "the response is expired: its nextUpdate "));
    sp.next_off = 0; /* none */
    sp.this_off = -60;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "no_next_update");
    sp = (struct resp_spec)GOOD;
    sp.this_off = STAPLE_CLOCK_SKEW + 60;
    sp.next_off = 7200;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "not_yet_valid");
    /* Not successful. */
    sp = (struct resp_spec)GOOD;
    sp.response_status = OCSP_RESPONSE_STATUS_TRYLATER;
    assert_int_equal(check(&sp, &f, code, why), -1);
    assert_string_equal(code, "unsuccessful");
    assert_string_equal(why, "the responder answered \"trylater\" (responseStatus 3), not "
                             "\"successful\"");
}

static void
test_not_ocsp(void **state)
{
    struct staple_facts f;
    char code[32], why[1200];
    struct resp_spec sp = GOOD;
    size_t len;
    unsigned char *der = make_resp(&sp, &len), *longer = malloc(len + 1);

    (void)state;
    assert_int_equal(staple_check((const unsigned char *)"<html>", 6, leaf, ca, now, &f, code,
                                  sizeof(code), why, sizeof(why)),
                     -1);
    assert_string_equal(code, "not_ocsp");
    assert_int_equal(staple_check(der, 0, leaf, ca, now, &f, code, sizeof(code), why, sizeof(why)),
                     -1);
    memcpy(longer, der, len);
    longer[len] = 0; /* a byte after the response */
    assert_int_equal(
        staple_check(longer, len + 1, leaf, ca, now, &f, code, sizeof(code), why, sizeof(why)), -1);
    assert_string_equal(code, "not_ocsp");
    /* The same bytes at their length pass: the refusal was the trailing byte. */
    assert_int_equal(
        staple_check(longer, len, leaf, ca, now, &f, code, sizeof(code), why, sizeof(why)), 0);
    /* One bit of the signature flipped. */
    longer[len - 1] ^= 0x01;
    assert_int_equal(
        staple_check(longer, len, leaf, ca, now, &f, code, sizeof(code), why, sizeof(why)), -1);
    free(longer);
    OPENSSL_free(der);
}

static void
test_get_path_is_a_request_for_the_leaf(void **state)
{
    char path[2048];
    unsigned char der[1024], b64[1400];
    const unsigned char *p = der;
    size_t o = 0;
    int n;
    OCSP_REQUEST *req;
    OCSP_CERTID *want = OCSP_cert_to_id(EVP_sha1(), leaf, ca);

    (void)state;
    assert_true(staple_get_path(leaf, ca, "/ocsp", path, sizeof(path)));
    assert_memory_equal(path, "/ocsp/", 6);
    assert_null(strpbrk(path + 6, "+/="));
    /* Undo the escapes, decode, and find the leaf's CertID. */
    for (const char *c = path + 6; *c != '\0'; c++) {
        if (*c == '%') {
            b64[o++] = strncmp(c, "%2B", 3) == 0 ? '+' : strncmp(c, "%2F", 3) == 0 ? '/' : '=';
            c += 2;
        } else {
            b64[o++] = (unsigned char)*c;
        }
    }
    b64[o] = '\0';
    n = EVP_DecodeBlock(der, b64, (int)o);
    assert_true(n > 0);
    while (o > 0 && b64[o - 1] == '=') {
        n--;
        o--;
    }
    req = d2i_OCSP_REQUEST(NULL, &p, n);
    assert_non_null(req);
    assert_int_equal(OCSP_request_onereq_count(req), 1);
    assert_int_equal(OCSP_id_cmp(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)), want), 0);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(want);
    /* A base ending in '/' gets no second one; a buffer too small is refused. */
    assert_true(staple_get_path(leaf, ca, "/", path, sizeof(path)));
    assert_true(path[0] == '/' && path[1] != '/');
    assert_false(staple_get_path(leaf, ca, "/ocsp", path, 20));
}

static void
test_issuer_and_cache_name(void **state)
{
    STACK_OF(X509) *chain = sk_X509_new_null(), *extra = sk_X509_new_null();
    char a[512], b[512], c[512];

    (void)state;
    sk_X509_push(chain, leaf);
    assert_null(staple_find_issuer(chain, NULL));
    sk_X509_push(extra, stranger); /* the issuer's name, not its key */
    assert_null(staple_find_issuer(chain, extra));
    sk_X509_push(extra, ca);
    assert_ptr_equal(staple_find_issuer(chain, extra), ca);
    sk_X509_push(chain, ca);
    assert_ptr_equal(staple_find_issuer(chain, NULL), ca);
    sk_X509_free(chain);
    sk_X509_free(extra);

    assert_true(
        staple_cache_name("/c", "http://ocsp.example:8080/ocsp", "/etc/a.crt", a, sizeof(a)));
    assert_true(
        staple_cache_name("/c", "http://ocsp.example:8080/ocsp", "/etc/b.crt", b, sizeof(b)));
    assert_true(
        staple_cache_name("/c", "http://ocsp.example:8080/ocsp", "/etc/a.crt", c, sizeof(c)));
    assert_memory_equal(a, "/c/ocsp.example-", 16);
    assert_int_equal(strlen(a), strlen("/c/ocsp.example-") + 16 + strlen(".ocsp"));
    assert_string_equal(a + strlen(a) - 5, ".ocsp");
    assert_string_not_equal(a, b);
    assert_string_equal(a, c);
    assert_false(staple_cache_name("/c", "http://ocsp.example/", "/etc/a.crt", a, 20));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_from_the_issuer_and_its_delegate),
        cmocka_unit_test(test_refusals_name_the_reason),
        cmocka_unit_test(test_not_ocsp),
        cmocka_unit_test(test_get_path_is_a_request_for_the_leaf),
        cmocka_unit_test(test_issuer_and_cache_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
