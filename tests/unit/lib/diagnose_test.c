/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diagnose_test.c - unit tests of src/lib/diagnose.c: the order of a chain
 * as sent (complete, wrong order, missing issuer, unrelated extra), a client
 * certificate's fitness (validity, EKU, key usage, CA), the chain we send
 * against a server's CA names (sent, needs the chain, not accepted), the
 * reading of alerts in context, signature scheme names and key fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/diagnose.h"
#include "testlib/certfactory.h"
#include "testlib/pkiworld.h"

/* Root -> Inter -> alice, and the unrelated root Other with its own leaf, eve. */
static struct pki_world pki;
static struct {
    X509 *leaf, *other_leaf;
} w;

static int
setup(void **state)
{
    (void)state;
    pkw_new(&pki);
    w.leaf = pkw_leaf(&pki, (struct cf_cert_spec){.cn = "alice", .eku = CF_EKU_CLIENT});
    w.other_leaf = cf_cert_new(&(struct cf_cert_spec){.cn = "eve",
                                                      .key = pki.leaf_key,
                                                      .issuer = pki.other_root,
                                                      .issuer_key = pki.other_key,
                                                      .bc = CF_BC_LEAF,
                                                      .eku = CF_EKU_CLIENT});
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(w.leaf);
    X509_free(w.other_leaf);
    pkw_free(&pki);
    return 0;
}

static void
test_chain_order(void **state)
{
    X509_STORE *roots = cf_store(pki.root, NULL);
    static const struct {
        int which; /* 0 leaf+inter, 1 leaf, 2 leaf+root+inter, 3 leaf+inter+other, 4 leaf+inter+root
                    */
        bool trust;
        enum diag_chain want;
        int index;
    } cases[] = {
        {0, true, DIAG_CHAIN_OK, -1},         {1, true, DIAG_CHAIN_MISSING, 0},
        {2, true, DIAG_CHAIN_WRONG_ORDER, 0}, {3, true, DIAG_CHAIN_UNRELATED, 2},
        {4, true, DIAG_CHAIN_OK, -1},         {0, false, DIAG_CHAIN_MISSING, 1},
        {4, false, DIAG_CHAIN_OK, -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        STACK_OF(X509) *c = NULL;
        int idx = 99;
        switch (cases[i].which) {
        case 0:
            c = cf_certs(w.leaf, pki.inter, NULL);
            break;
        case 1:
            c = cf_certs(w.leaf, NULL);
            break;
        case 2:
            c = cf_certs(w.leaf, pki.root, pki.inter, NULL);
            break;
        case 3:
            c = cf_certs(w.leaf, pki.inter, pki.other_root, NULL);
            break;
        default:
            c = cf_certs(w.leaf, pki.inter, pki.root, NULL);
            break;
        }
        assert_int_equal(diag_chain_order(c, cases[i].trust ? roots : NULL, &idx), cases[i].want);
        assert_int_equal(idx, cases[i].index);
        OSSL_STACK_OF_X509_free(c);
    }
    assert_string_equal(diag_chain_code(DIAG_CHAIN_MISSING), "missing_issuer");
    assert_string_equal(diag_chain_code(DIAG_CHAIN_WRONG_ORDER), "wrong_order");
    X509_STORE_free(roots);
}

static void
test_client_usable(void **state)
{
    int64_t now = (int64_t)time(NULL);
    X509 *expired = cf_cert_new(&(struct cf_cert_spec){.cn = "old",
                                                       .key = pki.leaf_key,
                                                       .issuer = pki.inter,
                                                       .issuer_key = pki.int_key,
                                                       .not_before = -10 * CF_DAY,
                                                       .not_after = -CF_DAY,
                                                       .eku = CF_EKU_CLIENT});
    X509 *future = cf_cert_new(&(struct cf_cert_spec){.cn = "new",
                                                      .key = pki.leaf_key,
                                                      .issuer = pki.inter,
                                                      .issuer_key = pki.int_key,
                                                      .not_before = CF_DAY,
                                                      .not_after = 10 * CF_DAY,
                                                      .eku = CF_EKU_CLIENT});
    X509 *server = cf_cert_new(&(struct cf_cert_spec){.cn = "svc",
                                                      .key = pki.leaf_key,
                                                      .issuer = pki.inter,
                                                      .issuer_key = pki.int_key,
                                                      .eku = CF_EKU_SERVER});
    X509 *both = cf_cert_new(&(struct cf_cert_spec){.cn = "peer",
                                                    .key = pki.leaf_key,
                                                    .issuer = pki.inter,
                                                    .issuer_key = pki.int_key,
                                                    .eku = CF_EKU_SERVER | CF_EKU_CLIENT});
    X509 *noeku = cf_cert_new(&(struct cf_cert_spec){
        .cn = "plain", .key = pki.leaf_key, .issuer = pki.inter, .issuer_key = pki.int_key});
    X509 *kuenc = cf_cert_new(&(struct cf_cert_spec){.cn = "enc",
                                                     .key = pki.leaf_key,
                                                     .issuer = pki.inter,
                                                     .issuer_key = pki.int_key,
                                                     .key_usage = "keyEncipherment",
                                                     .eku = CF_EKU_CLIENT});

    (void)state;
    assert_int_equal(diag_client_usable(w.leaf, now), DIAG_CLIENT_OK);
    assert_int_equal(diag_client_usable(both, now), DIAG_CLIENT_OK);
    assert_int_equal(diag_client_usable(noeku, now), DIAG_CLIENT_OK);
    assert_int_equal(diag_client_usable(expired, now), DIAG_CLIENT_EXPIRED);
    assert_int_equal(diag_client_usable(future, now), DIAG_CLIENT_NOT_YET_VALID);
    assert_int_equal(diag_client_usable(server, now), DIAG_CLIENT_EKU);
    assert_int_equal(diag_client_usable(kuenc, now), DIAG_CLIENT_KEY_USAGE);
    assert_int_equal(diag_client_usable(pki.inter, now), DIAG_CLIENT_IS_CA);
    assert_string_equal(diag_client_code(DIAG_CLIENT_EKU), "eku");
    {
        /* the chain as sent: current only while every certificate is */
        STACK_OF(X509) *chain = sk_X509_new_null();
        assert_non_null(chain);
        assert_true(sk_X509_push(chain, w.leaf) > 0 && sk_X509_push(chain, pki.inter) > 0);
        assert_true(diag_chain_current(chain, now));
        assert_false(diag_chain_current(chain, now + 100 * CF_YEAR));
        assert_true(sk_X509_push(chain, expired) > 0);
        assert_false(diag_chain_current(chain, now));
        (void)sk_X509_pop(chain);
        assert_true(sk_X509_push(chain, future) > 0);
        assert_false(diag_chain_current(chain, now));
        sk_X509_free(chain);
    }
    X509_free(expired);
    X509_free(future);
    X509_free(server);
    X509_free(both);
    X509_free(noeku);
    X509_free(kuenc);
}

static void
test_ca_match(void **state)
{
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    STACK_OF(X509_NAME) *inter_names = sk_X509_NAME_new_null();
    STACK_OF(X509) *full = cf_certs(w.leaf, pki.inter, NULL);
    STACK_OF(X509) *alone = cf_certs(w.leaf, NULL);
    STACK_OF(X509) *eve = cf_certs(w.other_leaf, NULL);
    STACK_OF(X509) *eve_full = cf_certs(w.other_leaf, pki.other_root, NULL);
    STACK_OF(X509) *known = cf_certs(pki.root, pki.inter, NULL);
    const X509_NAME *m = NULL;
    X509 *missing = NULL;

    (void)state;
    sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(pki.root)));
    sk_X509_NAME_push(inter_names, X509_NAME_dup(X509_get_subject_name(pki.inter)));
    assert_int_equal(diag_ca_match(full, NULL, NULL, &m, &missing), DIAG_CA_NO_NAMES);
    assert_int_equal(diag_ca_match(full, names, NULL, &m, &missing), DIAG_CA_SENT);
    assert_int_equal(X509_NAME_cmp(m, X509_get_subject_name(pki.root)), 0);
    assert_null(missing);
    /* the intermediate named: the leaf alone reaches it */
    assert_int_equal(diag_ca_match(alone, inter_names, NULL, &m, NULL), DIAG_CA_SENT);
    /* leaf alone, the intermediate known from --cacert: named as what is missing */
    assert_int_equal(diag_ca_match(alone, names, known, &m, &missing), DIAG_CA_NEEDS_CHAIN);
    assert_ptr_equal(missing, pki.inter);
    /* leaf alone, its issuer unknown: most likely a leaf-only file */
    assert_int_equal(diag_ca_match(alone, names, NULL, &m, &missing), DIAG_CA_NEEDS_CHAIN);
    assert_null(missing);
    assert_null(m);
    /* another CA's complete chain, or its leaf under a known other root */
    assert_int_equal(diag_ca_match(eve_full, names, known, &m, &missing), DIAG_CA_NOT_ACCEPTED);
    {
        STACK_OF(X509) *k2 = cf_certs(pki.other_root, NULL);
        assert_int_equal(diag_ca_match(eve, names, k2, &m, &missing), DIAG_CA_NOT_ACCEPTED);
        OSSL_STACK_OF_X509_free(k2);
    }
    assert_string_equal(diag_ca_match_code(DIAG_CA_NEEDS_CHAIN), "needs_chain");
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    sk_X509_NAME_pop_free(inter_names, X509_NAME_free);
    OSSL_STACK_OF_X509_free(full);
    OSSL_STACK_OF_X509_free(alone);
    OSSL_STACK_OF_X509_free(eve);
    OSSL_STACK_OF_X509_free(eve_full);
    OSSL_STACK_OF_X509_free(known);
}

static void
test_alert_reading(void **state)
{
    static const struct {
        int alert;
        struct diag_alert_ctx ctx;
        const char *code;
        const char *fix_part;
    } cases[] = {
        {TLS13_AD_CERTIFICATE_REQUIRED, {.requested = true}, "no_client_cert", "--cert"},
        {TLS1_AD_UNKNOWN_CA,
         {.requested = true, .sent = true, .ca_match = DIAG_CA_NEEDS_CHAIN},
         "client_chain_incomplete",
         "send the chain: give a file with the leaf followed by "
         "the issuing CA"},
        {TLS1_AD_UNKNOWN_CA,
         {.requested = true, .sent = true, .ca_match = DIAG_CA_SENT},
         "server_lacks_intermediate",
         "add the intermediate CA"},
        {TLS1_AD_UNKNOWN_CA,
         {.requested = true, .sent = true, .ca_match = DIAG_CA_NOT_ACCEPTED},
         "client_wrong_ca",
         "accepts"},
        {TLS1_AD_UNKNOWN_CA, {.requested = true, .sent = true}, "unknown_ca", "send the chain"},
        {SSL3_AD_CERTIFICATE_EXPIRED,
         {.sent = true, .client = DIAG_CLIENT_EXPIRED, .serial = "AB:CD"},
         "client_expired",
         "renew it: duet cert renew AB:CD --ca-dir CA_DIR"},
        {SSL3_AD_CERTIFICATE_EXPIRED, {.sent = true}, "chain_expired", "clocks"},
        /* every certificate we sent is current: the server's CRL has passed nextUpdate */
        {SSL3_AD_CERTIFICATE_EXPIRED,
         {.sent = true, .chain_current = true},
         "server_crl_stale",
         "current CRL"},
        {SSL3_AD_CERTIFICATE_EXPIRED,
         {.sent = true, .chain_current = true, .client = DIAG_CLIENT_EXPIRED, .serial = "01"},
         "client_expired",
         "duet cert renew 01"},
        {SSL3_AD_UNSUPPORTED_CERTIFICATE,
         {.sent = true, .client = DIAG_CLIENT_EKU},
         "client_eku",
         "--profile client"},
        {SSL3_AD_BAD_CERTIFICATE, {.sent = true}, "client_cert_refused", "duet cert verify"},
        {SSL3_AD_BAD_CERTIFICATE,
         {.requested = true, .sent = true, .chain_current = true, .ca_match = DIAG_CA_SENT},
         "server_clock_behind",
         "clock"},
        {SSL3_AD_BAD_CERTIFICATE,
         {.requested = true,
          .sent = true,
          .chain_current = true,
          .ca_match = DIAG_CA_SENT,
          .http_page = true},
         "client_revoked_or_stale_crl",
         "issue a new one"},
        {SSL3_AD_BAD_CERTIFICATE,
         {.requested = true, .sent = true, .chain_current = false, .ca_match = DIAG_CA_SENT},
         "client_cert_refused",
         "duet cert verify"},
        {SSL3_AD_CERTIFICATE_REVOKED, {.sent = true}, "client_revoked", "duet cert issue"},
        {SSL3_AD_HANDSHAKE_FAILURE, {0}, "no_common_parameters", "TLS settings"},
        {SSL3_AD_HANDSHAKE_FAILURE, {.requested = true}, "no_client_cert", "--cert"},
        {SSL3_AD_HANDSHAKE_FAILURE,
         {.requested = true, .sent = true, .ca_match = DIAG_CA_NEEDS_CHAIN},
         "client_chain_incomplete",
         "send the chain"},
        {SSL3_AD_HANDSHAKE_FAILURE,
         {.requested = true, .sent = true, .client = DIAG_CLIENT_EXPIRED, .serial = "01"},
         "client_expired",
         "duet cert renew 01"},
        {TLS1_AD_DECRYPT_ERROR, {.sent = true}, "decrypt_error", "key that belongs"},
        {TLS1_AD_UNRECOGNIZED_NAME, {0}, "unrecognized_name", "--server-name"},
        {TLS1_AD_RECORD_OVERFLOW, {0}, "alert", "server's log"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diag_reading r;
        memset(&r, 0, sizeof(r));
        diag_alert_read(cases[i].alert, &cases[i].ctx, &r);
        assert_string_equal(r.code, cases[i].code);
        assert_non_null(strstr(r.fix, cases[i].fix_part));
        assert_true(strlen(r.meaning) > 10);
    }
    assert_string_equal(diag_alert_name(TLS13_AD_CERTIFICATE_REQUIRED), "certificate required");
    assert_string_equal(diag_alert_name(TLS1_AD_UNKNOWN_CA), "unknown CA");
}

static void
test_sigalgs(void **state)
{
    char buf[16];
    EVP_PKEY *p384 = cf_key_new(CF_KEY_EC_P384);
    EVP_PKEY *ed = cf_key_new(CF_KEY_ED25519);
    EVP_PKEY *rsa = cf_key_new(CF_KEY_RSA_2048);
    static const unsigned ecdsa256[] = {0x0403, 0x0804};
    static const unsigned eddsa[] = {0x0807};

    (void)state;
    assert_string_equal(diag_sigalg_name(0x0403, buf, sizeof(buf)), "ecdsa_secp256r1_sha256");
    assert_string_equal(diag_sigalg_name(0x0804, buf, sizeof(buf)), "rsa_pss_rsae_sha256");
    assert_string_equal(diag_sigalg_name(0x0402, buf, sizeof(buf)), "dsa_sha256");
    assert_string_equal(diag_sigalg_name(0xfefe, buf, sizeof(buf)), "0xfefe");
    assert_true(diag_key_fits_sigalgs(pki.leaf_key, ecdsa256, 2));
    assert_false(diag_key_fits_sigalgs(p384, ecdsa256, 2));
    assert_true(diag_key_fits_sigalgs(rsa, ecdsa256, 2));
    assert_false(diag_key_fits_sigalgs(ed, ecdsa256, 2));
    assert_true(diag_key_fits_sigalgs(ed, eddsa, 1));
    assert_false(diag_key_fits_sigalgs(pki.leaf_key, eddsa, 1));
    assert_true(diag_key_fits_sigalgs(p384, NULL, 0));
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_order), cmocka_unit_test(test_client_usable),
        cmocka_unit_test(test_ca_match),    cmocka_unit_test(test_alert_reading),
        cmocka_unit_test(test_sigalgs),
    };

    return cmocka_run_group_tests_name("diagnose", tests, setup, teardown);
}
