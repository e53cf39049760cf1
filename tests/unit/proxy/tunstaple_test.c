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

#include "ocsp_fixture.h"

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
