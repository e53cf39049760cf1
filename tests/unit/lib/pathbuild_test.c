/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pathbuild_test.c - unit tests of the candidate path walk (src/lib/pathbuild.c):
 * the order candidates are tried in, loop detection, signatures, and every bound.
 * Certificates come from the factory: a root, twins of one intermediate (one
 * subject, one key) with different issuers and validity, and a leaf under it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/pathbuild.h"
#include "testlib/certfactory.h"

static EVP_PKEY *k_root, *k_int, *k_leaf, *k_other;
static X509 *root, *other, *leaf;

/* A certificate of subject CN=Int and key k_int, issued by `issuer`, valid [nb, na]. */
static X509 *
twin(uint64_t serial, X509 *issuer, EVP_PKEY *issuer_key, int64_t nb, int64_t na)
{
    struct cf_cert_spec s = {.cn = "Int",
                             .key = k_int,
                             .issuer = issuer,
                             .issuer_key = issuer_key,
                             .serial = serial,
                             .bc = CF_BC_CA,
                             .not_before = nb,
                             .not_after = na};

    return cf_cert_new(&s);
}

/* What the walk handed to the callback: the serial of each path's second certificate. */
struct seen {
    long mids[64];
    int n;
    int stop_at; /* 1-based path number at which to return 1; 0: never */
    int fail_at; /* ... to return -1 */
};

static int
record(void *arg, STACK_OF(X509) * path)
{
    struct seen *s = arg;

    assert_true(sk_X509_num(path) >= 1);
    if (sk_X509_num(path) >= 2 && s->n < 64)
        s->mids[s->n] = ASN1_INTEGER_get(X509_get0_serialNumber(sk_X509_value(path, 1)));
    s->n++;
    if (s->fail_at == s->n)
        return -1;
    return s->stop_at == s->n ? 1 : 0;
}

static int
setup(void **state)
{
    struct cf_cert_spec s;

    (void)state;
    k_root = cf_key_new(CF_KEY_EC_P256);
    k_int = cf_key_new(CF_KEY_EC_P256);
    k_leaf = cf_key_new(CF_KEY_EC_P256);
    k_other = cf_key_new(CF_KEY_EC_P256);
    s = (struct cf_cert_spec){.cn = "Root", .key = k_root, .serial = 1, .bc = CF_BC_CA};
    root = cf_cert_new(&s);
    s = (struct cf_cert_spec){.cn = "Other", .key = k_other, .serial = 2, .bc = CF_BC_CA};
    other = cf_cert_new(&s);
    /* The leaf names CN=Int as its issuer; any twin's key verifies it. */
    {
        X509 *t = twin(3, root, k_root, 0, 0);
        s = (struct cf_cert_spec){.cn = "leaf.example",
                                  .key = k_leaf,
                                  .issuer = t,
                                  .issuer_key = k_int,
                                  .serial = 4,
                                  .bc = CF_BC_LEAF};
        leaf = cf_cert_new(&s);
        X509_free(t);
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(root);
    X509_free(other);
    X509_free(leaf);
    EVP_PKEY_free(k_root);
    EVP_PKEY_free(k_int);
    EVP_PKEY_free(k_leaf);
    EVP_PKEY_free(k_other);
    return 0;
}

static int
walk(STACK_OF(X509) * trusted, STACK_OF(X509) * untrusted, const struct pathbuild_limits *lim,
     struct seen *seen, struct pathbuild_stats *stats)
{
    struct pathbuild_limits def;

    if (lim == NULL) {
        pathbuild_limits_default(&def, 8);
        lim = &def;
    }
    return pathbuild_run(leaf, trusted, untrusted, (int64_t)time(NULL), lim, record, seen,
                         stats);
}

/* RFC 4158 3.5: trusted issuers first, then time-valid ones, then the order given. */
static void
test_order(void **state)
{
    X509 *expired = twin(0x10, root, k_root, -2 * CF_YEAR, -CF_DAY);
    X509 *valid_a = twin(0x11, root, k_root, 0, 0);
    X509 *valid_b = twin(0x12, root, k_root, 0, 0);
    X509 *trusted_twin = twin(0x13, root, k_root, 0, 0);
    STACK_OF(X509) *tr = cf_certs(root, trusted_twin, NULL);
    STACK_OF(X509) *un = cf_certs(expired, valid_a, valid_b, NULL);
    struct seen seen = {0};
    struct pathbuild_stats stats;

    (void)state;
    assert_int_equal(walk(tr, un, NULL, &seen, &stats), 0);
    assert_int_equal(seen.n, 4);
    assert_int_equal(stats.paths, 4);
    assert_false(stats.limited);
    assert_int_equal(seen.mids[0], 0x13); /* a trusted twin ends the path at once */
    assert_int_equal(seen.mids[1], 0x11);
    assert_int_equal(seen.mids[2], 0x12);
    assert_int_equal(seen.mids[3], 0x10);
    X509_free(expired);
    X509_free(valid_a);
    X509_free(valid_b);
    X509_free(trusted_twin);
    OSSL_STACK_OF_X509_free(tr);
    OSSL_STACK_OF_X509_free(un);
}

/* A candidate whose key does not verify the signature is not followed; 1 stops the walk. */
static void
test_signature_and_stop(void **state)
{
    struct cf_cert_spec s = {.cn = "Int", .key = k_other, .issuer = root, .issuer_key = k_root,
                             .serial = 0x20, .bc = CF_BC_CA};
    X509 *wrong_key = cf_cert_new(&s); /* CN=Int, but not the key that signed the leaf */
    X509 *a = twin(0x21, root, k_root, 0, 0);
    X509 *b = twin(0x22, root, k_root, 0, 0);
    STACK_OF(X509) *tr = cf_certs(root, NULL);
    STACK_OF(X509) *un = cf_certs(wrong_key, a, b, NULL);
    struct seen seen = {.stop_at = 1};
    struct pathbuild_stats stats;

    (void)state;
    assert_int_equal(walk(tr, un, NULL, &seen, &stats), 1);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.mids[0], 0x21);
    seen = (struct seen){.fail_at = 2};
    assert_int_equal(walk(tr, un, NULL, &seen, &stats), -1);
    assert_int_equal(seen.n, 2);
    X509_free(wrong_key);
    X509_free(a);
    X509_free(b);
    OSSL_STACK_OF_X509_free(tr);
    OSSL_STACK_OF_X509_free(un);
}

/* Each bound cuts the walk and says so. */
static void
test_bounds(void **state)
{
    STACK_OF(X509) *tr = cf_certs(root, NULL);
    STACK_OF(X509) *un = sk_X509_new_null();
    struct pathbuild_limits lim;
    struct seen seen = {0};
    struct pathbuild_stats stats;

    (void)state;
    for (int i = 0; i < 12; i++)
        assert_true(sk_X509_push(un, twin(0x30 + (uint64_t)i, root, k_root, 0, 0)));
    pathbuild_limits_default(&lim, 8);
    assert_int_equal(walk(tr, un, &lim, &seen, &stats), 0);
    assert_int_equal(seen.n, PATHBUILD_MAX_ISSUERS);
    assert_true(stats.limited);
    lim.max_paths = 3;
    seen = (struct seen){0};
    assert_int_equal(walk(tr, un, &lim, &seen, &stats), 0);
    assert_int_equal(seen.n, 3);
    assert_true(stats.limited);
    pathbuild_limits_default(&lim, 8);
    lim.max_sigchecks = 2;
    seen = (struct seen){0};
    assert_int_equal(walk(tr, un, &lim, &seen, &stats), 0);
    assert_int_equal(stats.sigchecks, 2); /* the leaf's by a twin, the twin's by the root */
    assert_int_equal(seen.n, 1);
    assert_true(stats.limited);
    /* max_depth 0: no intermediate between the leaf and the anchor. */
    pathbuild_limits_default(&lim, 0);
    seen = (struct seen){0};
    assert_int_equal(walk(tr, un, &lim, &seen, &stats), 0);
    assert_int_equal(seen.n, 0);
    assert_true(stats.limited);
    OSSL_STACK_OF_X509_free(tr);
    OSSL_STACK_OF_X509_free(un);
}

/*
 * RFC 4158 5.2: a cycle of cross-certificates (A by B, B by A) ends, with no
 * path, even when a certificate of B names the trusted root (by a key that
 * is not the root's), so that the ring is not pruned as unreachable.
 */
static void
test_cycle(void **state)
{
    EVP_PKEY *kb = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec sb = {.cn = "B", .key = kb, .serial = 0x40, .bc = CF_BC_CA};
    X509 *b0 = cf_cert_new(&sb);
    X509 *a_by_b = twin(0x41, b0, kb, 0, 0);
    struct cf_cert_spec sa = {.cn = "Int", .key = k_int, .serial = 0x42, .bc = CF_BC_CA};
    X509 *a0 = cf_cert_new(&sa); /* self-signed CN=Int */
    X509 *b_by_a;
    X509 *b_forged;
    STACK_OF(X509) *tr = cf_certs(root, NULL);
    STACK_OF(X509) *un;
    struct seen seen = {0};
    struct pathbuild_stats stats;

    (void)state;
    sb.issuer = a0;
    sb.issuer_key = k_int;
    sb.serial = 0x43;
    b_by_a = cf_cert_new(&sb);
    sb.issuer = root;
    sb.issuer_key = k_other; /* the root's name and key identifier, another signature */
    sb.serial = 0x44;
    b_forged = cf_cert_new(&sb);
    un = cf_certs(a_by_b, b_by_a, a0, b_forged, NULL);
    assert_int_equal(walk(tr, un, NULL, &seen, &stats), 0);
    assert_int_equal(seen.n, 0);
    assert_false(stats.limited);
    /*
     * Before a candidate's key checks anything, the candidate must be
     * anchored: from the root down, only B-forged names the root, and a key
     * that is not the root's signed it (one failed check); so nothing of the ring is
     * anchored, and no key of the ring checks a signature (it took 5 checks
     * when keys were tried from the leaf up).
     */
    assert_int_equal(stats.sigchecks, 1);
    assert_int_equal(stats.badsigs, 1);
    X509_free(b_forged);
    X509_free(b0);
    X509_free(a_by_b);
    X509_free(a0);
    X509_free(b_by_a);
    EVP_PKEY_free(kb);
    OSSL_STACK_OF_X509_free(tr);
    OSSL_STACK_OF_X509_free(un);
}

/*
 * What a client can send without any CA's key, to make the walk work: levels
 * of look-alikes of the trusted root (its subject as subject and issuer, no
 * key identifiers), each level's certificates signed by the next level's key,
 * the last level by a key that is not the root's, and a leaf signed by the
 * first level's key.  Every certificate of a level verifies every one of the
 * level below, so a walk that checks signatures with the keys of the peer's
 * own certificates branches at every level until its signature budget is
 * spent, with keys the peer chose (an RSA key whose public exponent is as
 * long as its modulus costs a private-key operation per check).  None of
 * these certificates is signed by a trusted key, so the walk checks no
 * signature with their keys, follows none of them, and pays a few failed
 * checks with the root's key at most.
 */
static void
test_forged_lookalikes_of_the_anchor(void **state)
{
    enum { LEVELS = 9, WIDTH = 7 };
    EVP_PKEY *keys[LEVELS];
    STACK_OF(X509) *tr = cf_certs(root, NULL);
    STACK_OF(X509) *un = sk_X509_new_null();
    struct pathbuild_limits lim;
    struct pathbuild_stats stats;
    struct seen seen = {0};
    struct cf_cert_spec s;
    X509 *forged_leaf;
    X509 *level0 = NULL;

    (void)state;
    assert_non_null(un);
    for (int d = 0; d < LEVELS; d++)
        keys[d] = cf_key_new(CF_KEY_EC_P256);
    for (int d = 0; d < LEVELS; d++) {
        for (int i = 0; i < WIDTH; i++) {
            s = (struct cf_cert_spec){.cn = "Root",
                                      .key = keys[d],
                                      .issuer = root,
                                      .issuer_key = d + 1 < LEVELS ? keys[d + 1] : k_other,
                                      .serial = 0x500 + (uint64_t)(d * WIDTH + i),
                                      .bc = CF_BC_CA,
                                      .no_aki = true};
            X509 *x = cf_cert_new(&s);
            assert_non_null(x);
            assert_true(sk_X509_push(un, x));
            if (level0 == NULL)
                level0 = x;
        }
    }
    s = (struct cf_cert_spec){.cn = "attacker.example",
                              .key = k_leaf,
                              .issuer = level0,
                              .issuer_key = keys[0],
                              .serial = 0x5ff,
                              .bc = CF_BC_LEAF,
                              .no_aki = true};
    forged_leaf = cf_cert_new(&s);
    pathbuild_limits_default(&lim, 8);
    assert_int_equal(pathbuild_run(forged_leaf, tr, un, (int64_t)time(NULL), &lim, record, &seen,
                                   &stats),
                     0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(stats.paths, 0);
    /* At most the failed-signature budget, every check with the root's key. */
    if (stats.sigchecks > PATHBUILD_MAX_BAD_SIGCHECKS)
        fail_msg("the forged look-alikes cost %d signature checks", stats.sigchecks);
    assert_int_equal(stats.sigchecks, stats.badsigs);
    /* One level, all of one key, 60 of them: the same. */
    OSSL_STACK_OF_X509_free(un);
    un = sk_X509_new_null();
    for (int i = 0; i < 60; i++) {
        s = (struct cf_cert_spec){.cn = "Root",
                                  .key = keys[0],
                                  .issuer = root,
                                  .issuer_key = keys[1],
                                  .serial = 0x600 + (uint64_t)i,
                                  .bc = CF_BC_CA,
                                  .no_aki = true};
        assert_true(sk_X509_push(un, cf_cert_new(&s)));
    }
    seen = (struct seen){0};
    assert_int_equal(pathbuild_run(forged_leaf, tr, un, (int64_t)time(NULL), &lim, record, &seen,
                                   &stats),
                     0);
    assert_int_equal(seen.n, 0);
    if (stats.sigchecks > PATHBUILD_MAX_BAD_SIGCHECKS)
        fail_msg("60 forged look-alikes of one key cost %d signature checks", stats.sigchecks);
    assert_true(stats.limited); /* the failed-signature budget ended the search */
    X509_free(forged_leaf);
    for (int d = 0; d < LEVELS; d++)
        EVP_PKEY_free(keys[d]);
    OSSL_STACK_OF_X509_free(tr);
    OSSL_STACK_OF_X509_free(un);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_signature_and_stop),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_forged_lookalikes_of_the_anchor),
    };

    return cmocka_run_group_tests_name("pathbuild", tests, setup, teardown);
}
