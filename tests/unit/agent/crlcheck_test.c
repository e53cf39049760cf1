/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlcheck_test.c - unit tests of the agent's check of a fetched CRL
 * (src/agent/crlcheck.c): the issuing CA's and the root's CRLs accepted; a
 * CRL signed by another key under the same name, one from an unknown issuer,
 * one from a CA that does not chain to the pinned root, an expired or a
 * not-yet-valid one, an older one than the local copy, and text that is no
 * CRL, each refused with its sentence.
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

#include "agent/agent.h"
#include "lib/err.h"
#include "testlib/certfactory.h"

struct pki {
    EVP_PKEY *root_key, *issuing_key, *other_key;
    X509 *root, *issuing;
    X509 *other_issuing;    /* same name as issuing, another key, signed by another root */
    X509 *other_root;       /* same name as root, another key */
    STACK_OF(X509) * chain; /* issuing */
    char *dir;
    char *local;
};

static struct pki P;

static int
setup(void **state)
{
    (void)state;
    P.root_key = cf_key_new(CF_KEY_EC_P256);
    P.issuing_key = cf_key_new(CF_KEY_EC_P256);
    P.other_key = cf_key_new(CF_KEY_EC_P256);
    P.root = cf_cert_new(&(struct cf_cert_spec){
        .cn = "Demo Root CA", .o = "Demo", .key = P.root_key, .bc = CF_BC_CA});
    P.issuing = cf_cert_new(&(struct cf_cert_spec){.cn = "Demo Issuing CA",
                                                   .o = "Demo",
                                                   .key = P.issuing_key,
                                                   .issuer = P.root,
                                                   .issuer_key = P.root_key,
                                                   .bc = CF_BC_CA});
    P.other_root = cf_cert_new(&(struct cf_cert_spec){
        .cn = "Demo Root CA", .o = "Demo", .key = P.other_key, .bc = CF_BC_CA});
    P.other_issuing = cf_cert_new(&(struct cf_cert_spec){.cn = "Demo Issuing CA",
                                                         .o = "Demo",
                                                         .key = P.other_key,
                                                         .issuer = P.other_root,
                                                         .issuer_key = P.other_key,
                                                         .bc = CF_BC_CA});
    P.chain = cf_certs(P.issuing, NULL);
    P.dir = cf_tmpdir();
    P.local = cf_path(P.dir, "crl.pem");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    OSSL_STACK_OF_X509_free(P.chain);
    X509_free(P.root);
    X509_free(P.issuing);
    X509_free(P.other_root);
    X509_free(P.other_issuing);
    EVP_PKEY_free(P.root_key);
    EVP_PKEY_free(P.issuing_key);
    EVP_PKEY_free(P.other_key);
    free(P.local);
    cf_tmpdir_remove(P.dir);
    return 0;
}

/* A CRL of issuer/key with the given number and times (0, 0: valid now) as PEM. */
static uint8_t *
crl_pem(X509 *issuer, EVP_PKEY *key, uint64_t number, int64_t last, int64_t next, size_t *len)
{
    X509_CRL *crl = cf_crl_new(&(struct cf_crl_spec){.issuer = issuer,
                                                     .issuer_key = key,
                                                     .number = number,
                                                     .last_update = last,
                                                     .next_update = next});
    uint8_t *pem = cf_crl_pem(crl, len);

    X509_CRL_free(crl);
    return pem;
}

/* Check a CRL as the agent would, with no local copy unless one was written. */
static int
check(const uint8_t *pem, size_t len, STACK_OF(X509) * chain, struct duet_err *err)
{
    return agent_crl_check("GET /crl.pem", pem, len, P.root, chain, P.local, (int64_t)time(NULL),
                           err);
}

static void
test_issuing_and_root_crls_accepted(void **state)
{
    struct duet_err err;
    size_t n1, n2;
    uint8_t *a = crl_pem(P.issuing, P.issuing_key, 3, 0, 0, &n1);
    uint8_t *b = crl_pem(P.root, P.root_key, 1, 0, 0, &n2);
    uint8_t *both = malloc(n1 + n2 + 1);

    (void)state;
    remove(P.local);
    assert_int_equal(check(a, n1, P.chain, &err), 0);
    assert_int_equal(check(b, n2, NULL, &err), 0);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    both[n1 + n2] = '\0';
    assert_int_equal(check(both, n1 + n2, P.chain, &err), 0);
    free(a);
    free(b);
    free(both);
}

static void
test_signed_by_another_key(void **state)
{
    struct duet_err err;
    size_t n;
    uint8_t *pem = crl_pem(P.other_issuing, P.other_key, 9, 0, 0, &n);

    (void)state;
    remove(P.local);
    assert_int_equal(check(pem, n, P.chain, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: CRL 1 (issuer CN=Demo Issuing CA,O=Demo): its "
                                 "signature does not verify with the key of the CA this agent "
                                 "trusts (signed by another key)");
    free(pem);
}

static void
test_issuer_not_chained_to_the_root(void **state)
{
    struct duet_err err;
    STACK_OF(X509) *foreign = cf_certs(P.other_issuing, NULL);
    size_t n;
    uint8_t *pem = crl_pem(P.other_issuing, P.other_key, 9, 0, 0, &n);

    (void)state;
    remove(P.local);
    /* The CA certificate offered does not verify against the pinned root: it does not count. */
    assert_int_equal(check(pem, n, foreign, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: CRL 1: its issuer CN=Demo Issuing CA,O=Demo is "
                                 "neither the pinned root nor a CA of the chain issued to this "
                                 "host");
    /* Nor does a CRL of the issuing CA when the chain is not known. */
    free(pem);
    pem = crl_pem(P.issuing, P.issuing_key, 9, 0, 0, &n);
    assert_int_equal(check(pem, n, NULL, &err), -1);
    assert_contains(err.msg, "is neither the pinned root");
    OSSL_STACK_OF_X509_free(foreign);
    free(pem);
}

static void
test_delta_crl_refused(void **state)
{
    struct duet_err err;
    size_t n;
    X509_CRL *crl = cf_crl_new(&(struct cf_crl_spec){.issuer = P.issuing,
                                                     .issuer_key = P.issuing_key,
                                                     .number = 8,
                                                     .delta_base = 7});
    uint8_t *pem = cf_crl_pem(crl, &n);

    (void)state;
    remove(P.local);
    /* duet reads delta CRLs beside complete ones; the local copy must stand alone. */
    assert_int_equal(check(pem, n, P.chain, &err), -1);
    assert_string_equal(err.msg,
                        "GET /crl.pem: CRL #1 is a delta CRL; the local copy must be complete");
    X509_CRL_free(crl);
    free(pem);
}

static void
test_times(void **state)
{
    struct duet_err err;
    size_t n;
    uint8_t *pem = crl_pem(P.issuing, P.issuing_key, 4, -7200, -3600, &n);

    (void)state;
    remove(P.local);
    assert_int_equal(check(pem, n, P.chain, &err), -1);
    assert_contains(err.msg, "GET /crl.pem: CRL 1 (issuer CN=Demo Issuing CA,O=Demo): expired, "
                             "its nextUpdate ");
    assert_contains(err.msg, " has passed");
    free(pem);
    pem = crl_pem(P.issuing, P.issuing_key, 4, 3600, 7200, &n);
    assert_int_equal(check(pem, n, P.chain, &err), -1);
    assert_contains(err.msg, "is in the future (not yet valid)");
    free(pem);
    /* A little ahead of our clock is fine. */
    pem = crl_pem(P.issuing, P.issuing_key, 4, 60, 7200, &n);
    assert_int_equal(check(pem, n, P.chain, &err), 0);
    free(pem);
}

static void
test_older_than_the_local_copy(void **state)
{
    struct duet_err err;
    size_t n;
    uint8_t *local = crl_pem(P.issuing, P.issuing_key, 5, 0, 0, &n);
    uint8_t *pem;

    (void)state;
    cf_write_file(P.local, local, n);
    free(local);
    pem = crl_pem(P.issuing, P.issuing_key, 4, 0, 0, &n);
    assert_int_equal(check(pem, n, P.chain, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: CRL 1 (issuer CN=Demo Issuing CA,O=Demo) is "
                                 "older than the local copy: CRL number 4, the local copy's 5");
    free(pem);
    pem = crl_pem(P.issuing, P.issuing_key, 5, 0, 0, &n);
    assert_int_equal(check(pem, n, P.chain, &err), 0);
    free(pem);
    pem = crl_pem(P.issuing, P.issuing_key, 6, 0, 0, &n);
    assert_int_equal(check(pem, n, P.chain, &err), 0);
    free(pem);
    /* The root's CRL is compared with the root's only. */
    pem = crl_pem(P.root, P.root_key, 1, 0, 0, &n);
    assert_int_equal(check(pem, n, P.chain, &err), 0);
    free(pem);
}

static void
test_forged_local_copy_counts_for_nothing(void **state)
{
    struct duet_err err;
    size_t n;
    uint8_t *local = crl_pem(P.other_issuing, P.other_key, 1000, 0, 0, &n);
    uint8_t *pem;

    (void)state;
    cf_write_file(P.local, local, n);
    free(local);
    pem = crl_pem(P.issuing, P.issuing_key, 2, 0, 0, &n);
    assert_int_equal(check(pem, n, P.chain, &err), 0);
    free(pem);
}

static void
test_issuer_without_crl_sign(void **state)
{
    struct duet_err err;
    EVP_PKEY *k = cf_key_new(CF_KEY_EC_P256);
    X509 *ca = cf_cert_new(&(struct cf_cert_spec){.cn = "Signing Only CA",
                                                  .o = "Demo",
                                                  .key = k,
                                                  .issuer = P.root,
                                                  .issuer_key = P.root_key,
                                                  .bc = CF_BC_CA,
                                                  .key_usage = "critical,keyCertSign"});
    STACK_OF(X509) *chain = cf_certs(ca, NULL);
    size_t n;
    uint8_t *pem = crl_pem(ca, k, 1, 0, 0, &n);

    (void)state;
    remove(P.local);
    assert_int_equal(check(pem, n, chain, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: CRL 1 (issuer CN=Signing Only CA,O=Demo): the "
                                 "issuer's keyUsage does not allow signing CRLs (no cRLSign)");
    free(pem);
    OSSL_STACK_OF_X509_free(chain);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static void
test_not_a_crl(void **state)
{
    struct duet_err err;
    size_t n;
    uint8_t *cert = cf_cert_pem(P.issuing, &n);

    (void)state;
    assert_int_equal(check((const uint8_t *)"hello\n", 6, P.chain, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: not a PEM CRL");
    assert_int_equal(check(cert, n, P.chain, &err), -1);
    assert_string_equal(err.msg, "GET /crl.pem: not a PEM CRL");
    free(cert);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuing_and_root_crls_accepted),
        cmocka_unit_test(test_signed_by_another_key),
        cmocka_unit_test(test_issuer_not_chained_to_the_root),
        cmocka_unit_test(test_delta_crl_refused),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_older_than_the_local_copy),
        cmocka_unit_test(test_forged_local_copy_counts_for_nothing),
        cmocka_unit_test(test_issuer_without_crl_sign),
        cmocka_unit_test(test_not_a_crl),
    };
    return cmocka_run_group_tests_name("agent_crlcheck", tests, setup, teardown);
}
