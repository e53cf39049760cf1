/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcheck_test.c - unit tests of OCSP checking of client certificates in
 * `duet proxy` (src/proxy/ocspcheck.c): the cache (bounds, least recently
 * used eviction, expiry, replacement), what a response answers (good,
 * revoked with its reason, unknown, no nextUpdate, refusals), the issuer
 * remembered for a leaf (the search itself: x509util_test.c), and the
 * responder a leaf names.
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

#include "proxy/ocspcheck.h"

#include "ocsp_fixture.h"

#define GOOD                                                                                       \
    {                                                                                              \
        .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600                        \
    }

/* ocsp_evaluate of spec's response. */
static int
evaluate(const struct resp_spec *sp, struct ocsp_answer *a, char *code, char *why)
{
    size_t len;
    unsigned char *der = make_resp(sp, &len);
    int rc = ocsp_evaluate(der, len, leaf, ca, now, a, code, 32, why, 1200);

    OPENSSL_free(der);
    return rc;
}

static void
key_of(uint8_t key[OCSP_KEY_LEN], int n)
{
    memset(key, 0, OCSP_KEY_LEN);
    memcpy(key, &n, sizeof(n));
    key[OCSP_KEY_LEN - 1] = (uint8_t)n; /* differs past the bucket hash too */
}

static struct ocsp_answer
answer(int status, int64_t expires)
{
    struct ocsp_answer a;

    memset(&a, 0, sizeof(a));
    a.status = status;
    a.reason = -1;
    a.expires = expires;
    return a;
}

static void
test_cache_keeps_until_expiry_and_replaces(void **state)
{
    struct ocsp_cache *c = ocsp_cache_new(4);
    struct ocsp_answer a = answer(V_OCSP_CERTSTATUS_GOOD, now + 100), got;
    uint8_t k1[OCSP_KEY_LEN], k2[OCSP_KEY_LEN];

    (void)state;
    assert_non_null(c);
    key_of(k1, 1);
    key_of(k2, 2);
    assert_false(ocsp_cache_get(c, k1, now, &got));
    ocsp_cache_put(c, k1, &a, now);
    assert_true(ocsp_cache_get(c, k1, now, &got));
    assert_int_equal(got.status, V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(got.expires, now + 100);
    assert_false(ocsp_cache_get(c, k2, now, &got));
    /* A new answer for the same certificate replaces the old one: good to revoked. */
    a = answer(V_OCSP_CERTSTATUS_REVOKED, now + 50);
    ocsp_cache_put(c, k1, &a, now);
    assert_int_equal(ocsp_cache_len(c), 1);
    assert_true(ocsp_cache_get(c, k1, now, &got));
    assert_int_equal(got.status, V_OCSP_CERTSTATUS_REVOKED);
    /* At its expiry it is gone, and dropped. */
    assert_true(ocsp_cache_get(c, k1, now + 49, &got));
    assert_false(ocsp_cache_get(c, k1, now + 50, &got));
    assert_int_equal(ocsp_cache_len(c), 0);
    /* An answer already expired is not kept. */
    a = answer(V_OCSP_CERTSTATUS_GOOD, now);
    ocsp_cache_put(c, k2, &a, now);
    assert_int_equal(ocsp_cache_len(c), 0);
    ocsp_cache_free(c);
    ocsp_cache_free(NULL);
    assert_null(ocsp_cache_new(0));
}

static void
test_cache_is_bounded_least_recently_used_goes(void **state)
{
    struct ocsp_cache *c = ocsp_cache_new(3);
    struct ocsp_answer a = answer(V_OCSP_CERTSTATUS_GOOD, now + 100), got;
    uint8_t k[6][OCSP_KEY_LEN];

    (void)state;
    for (int i = 0; i < 6; i++)
        key_of(k[i], i + 10);
    ocsp_cache_put(c, k[0], &a, now);
    ocsp_cache_put(c, k[1], &a, now);
    ocsp_cache_put(c, k[2], &a, now);
    assert_int_equal(ocsp_cache_len(c), 3);
    assert_true(ocsp_cache_get(c, k[0], now, &got)); /* k[1] is now the least recently used */
    ocsp_cache_put(c, k[3], &a, now);
    assert_int_equal(ocsp_cache_len(c), 3);
    assert_false(ocsp_cache_get(c, k[1], now, &got));
    assert_true(ocsp_cache_get(c, k[0], now, &got));
    assert_true(ocsp_cache_get(c, k[2], now, &got));
    assert_true(ocsp_cache_get(c, k[3], now, &got));
    /* Many more: never more than the bound. */
    for (int i = 0; i < 1000; i++) {
        uint8_t kk[OCSP_KEY_LEN];
        key_of(kk, 1000 + i);
        ocsp_cache_put(c, kk, &a, now);
        assert_true(ocsp_cache_len(c) <= 3);
    }
    assert_false(ocsp_cache_get(c, k[0], now, &got));
    ocsp_cache_free(c);
}

static void
test_cache_key_and_issuers(void **state)
{
    struct ocsp_cache *c = ocsp_cache_new(10);
    uint8_t a[OCSP_KEY_LEN], b[OCSP_KEY_LEN], a2[OCSP_KEY_LEN], s[OCSP_KEY_LEN];
    X509 *found;

    (void)state;
    assert_true(ocsp_cache_key(leaf, a));
    assert_true(ocsp_cache_key(other, b)); /* same issuer and key, another serial */
    assert_true(ocsp_cache_key(leaf, a2));
    assert_true(ocsp_cache_key(stranger, s));
    assert_memory_equal(a, a2, OCSP_KEY_LEN);
    assert_memory_not_equal(a, b, OCSP_KEY_LEN);
    assert_memory_not_equal(a, s, OCSP_KEY_LEN);

    /* Issuers remembered for resumed sessions: the one whose key signed the leaf, not the
     * stranger of the same name. */
    assert_null(ocsp_cache_find_issuer(c, leaf));
    ocsp_cache_add_issuer(c, stranger);
    ocsp_cache_add_issuer(c, ca);
    ocsp_cache_add_issuer(c, ca);
    found = ocsp_cache_find_issuer(c, leaf);
    assert_ptr_equal(found, ca);
    X509_free(found);
    ocsp_cache_free(c);
}

static void
test_evaluate_good_revoked_unknown(void **state)
{
    struct ocsp_answer a;
    char code[32], why[1200];
    struct resp_spec good = GOOD, del_good = GOOD, rev = GOOD, unk = GOOD, nonext = GOOD;

    (void)state;
    assert_int_equal(evaluate(&good, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(a.expires, now + 3600);
    assert_int_equal(a.this_update, now - 60);

    del_good.signer = del;
    del_good.key = del_key;
    del_good.include_signer = true;
    assert_int_equal(evaluate(&del_good, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_GOOD);

    rev.status = V_OCSP_CERTSTATUS_REVOKED;
    assert_int_equal(evaluate(&rev, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(a.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert_int_equal(a.revoked_at, now - 600);
    assert_int_equal(a.expires, now + 3600);
    /* Revoked holds even when the response is past its nextUpdate. */
    rev.this_off = -7200;
    rev.next_off = -3600;
    assert_int_equal(evaluate(&rev, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(a.expires, now + OCSP_NO_NEXT_UPDATE_SECS);

    unk.status = V_OCSP_CERTSTATUS_UNKNOWN;
    assert_int_equal(evaluate(&unk, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_UNKNOWN);
    assert_int_equal(a.expires, 0); /* never cached */

    nonext.next_off = 0;
    assert_int_equal(evaluate(&nonext, &a, code, why), 0);
    assert_int_equal(a.status, V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(a.expires, now + OCSP_NO_NEXT_UPDATE_SECS);
}

static void
test_evaluate_refusals(void **state)
{
    struct ocsp_answer a;
    char code[32], why[1200];
    struct resp_spec expired = GOOD, strange = GOOD, strange_rev = GOOD, another = GOOD,
                     future = GOOD, noeku = GOOD;
    static const unsigned char garbage[] = "<html>not OCSP</html>";

    (void)state;
    expired.this_off = -7200;
    expired.next_off = -3600;
    assert_int_equal(evaluate(&expired, &a, code, why), -1);
    assert_string_equal(code, "expired");
    assert_non_null(strstr(why, "the response is expired: its nextUpdate "));

    strange.signer = stranger;
    strange.key = stranger_key;
    strange.include_signer = true;
    /* The stranger names itself like the issuer: the issuer's key does not verify it. */
    assert_int_equal(evaluate(&strange, &a, code, why), -1);
    assert_string_equal(code, "bad_signature");
    /* A stranger saying revoked is not believed either. */
    strange_rev = strange;
    strange_rev.status = V_OCSP_CERTSTATUS_REVOKED;
    assert_int_equal(evaluate(&strange_rev, &a, code, why), -1);
    assert_string_equal(code, "bad_signature");

    noeku.signer = del_noeku;
    noeku.key = del_key;
    noeku.include_signer = true;
    assert_int_equal(evaluate(&noeku, &a, code, why), -1);
    assert_string_equal(code, "unknown_signer");

    another.subject = other;
    assert_int_equal(evaluate(&another, &a, code, why), -1);
    assert_string_equal(code, "wrong_certificate");
    assert_non_null(strstr(why, "it answers for another certificate"));

    future.this_off = 3600;
    future.next_off = 7200;
    assert_int_equal(evaluate(&future, &a, code, why), -1);
    assert_string_equal(code, "not_yet_valid");

    assert_int_equal(
        ocsp_evaluate(garbage, sizeof(garbage) - 1, leaf, ca, now, &a, code, 32, why, 1200), -1);
    assert_string_equal(code, "not_ocsp");
}

static void
test_responder_of(void **state)
{
    char *url = NULL;

    (void)state;
    assert_false(ocsp_responder_of(leaf, NULL, &url)); /* no authorityInfoAccess */
    assert_null(url);
    assert_true(ocsp_responder_of(leaf, "http://ocsp.example/", &url));
    assert_string_equal(url, "http://ocsp.example/");
    free(url);
    assert_string_equal(ocsp_result_name(OCSP_R_TIMEOUT), "timeout");
    assert_string_equal(ocsp_result_name(OCSP_R_GOOD), "good");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_keeps_until_expiry_and_replaces),
        cmocka_unit_test(test_cache_is_bounded_least_recently_used_goes),
        cmocka_unit_test(test_cache_key_and_issuers),
        cmocka_unit_test(test_evaluate_good_revoked_unknown),
        cmocka_unit_test(test_evaluate_refusals),
        cmocka_unit_test(test_responder_of),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
