/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlpub_test.c - unit tests of one CRL for every process on an inventory
 * (src/ca/crlpub.c): two handles on one CA directory stand for two
 * `duet ca serve` nodes on one inventory.  What one signs the other takes,
 * byte for byte; a revocation through one makes the other sign a newer CRL
 * listing it; a CRL with a third of its life left is signed anew; a published
 * record that is not this CA's CRL is never served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "lib/err.h"
#include "lib/x509util.h"
#include "store/store.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define DAY ((int64_t)86400)

/* Two handles on one CA, two nodes: F.ca and node_b. */
static struct cafx F;
static struct ca *node_b;

static int
group_setup(void **state)
{
    struct duet_err err = {0};

    (void)state;
    if (cafx_setup(&F, (struct ca_init_opts){.name = "CRL Corp", .trust_domain = "crl.example"},
                   NULL) != 0)
        return -1;
    if (ca_open(F.dir, CAFX_PASS, &node_b, &err) != 0) {
        fprintf(stderr, "ca_open %s: %s\n", F.dir, err.msg);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    ca_close(node_b);
    cafx_teardown(&F);
    return 0;
}

/* Whether the CRL's DER is the same bytes as the other's. */
static bool
same_der(X509_CRL *x, X509_CRL *y)
{
    unsigned char *dx = NULL, *dy = NULL;
    int nx = i2d_X509_CRL(x, &dx), ny = i2d_X509_CRL(y, &dy);
    bool same = nx > 0 && nx == ny && memcmp(dx, dy, (size_t)nx) == 0;

    OPENSSL_free(dx);
    OPENSSL_free(dy);
    return same;
}

/* ca_crl_current that must succeed. */
static X509_CRL *
current(struct ca *ca, int64_t now, uint64_t have, bool *made)
{
    struct duet_err err = {0};
    X509_CRL *crl = NULL;

    if (ca_crl_current(ca, now, DAY, have, &crl, made, &err) != 0)
        fail_msg("ca_crl_current: %s", err.msg);
    return crl;
}

/* Whether the CRL lists the certificate. */
static bool
lists(X509_CRL *crl, X509 *cert)
{
    X509_REVOKED *rev = NULL;

    return X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(cert)) == 1;
}

static void
test_two_nodes_serve_one_crl(void **state)
{
    const char *sans[] = {"dns:gone.crl.example"};
    struct ca_request r = {.profile = "server", .cn = "gone", .sans = sans, .nsans = 1};
    struct duet_err err = {0};
    int64_t now = (int64_t)time(NULL);
    X509_CRL *a1, *b1, *b2, *a2, *again;
    X509 *cert = NULL;
    char *serial;
    bool made = false;

    (void)state;
    /* Node A signs the first one; node B takes it, the same document. */
    a1 = current(F.ca, now, 0, &made);
    assert_non_null(a1);
    assert_true(made);
    b1 = current(node_b, now, 0, &made);
    assert_non_null(b1);
    assert_false(made);
    assert_true(same_der(a1, b1));
    /* Nothing moved: both keep what they serve. */
    assert_null(current(node_b, now, cafx_crl_number(b1), &made));
    assert_null(current(F.ca, now, cafx_crl_number(a1), &made));

    /* A revocation through A: B's next look signs a newer CRL listing it, A then takes that. */
    r.pubkey = F.key;
    if (ca_issue(F.ca, &r, &cert, NULL, &err) != 0)
        fail_msg("ca_issue: %s", err.msg);
    serial = x509u_serial(X509_get0_serialNumber(cert));
    assert_non_null(serial);
    if (ca_revoke(F.ca, serial, 1, now, "cli:test", &err) != 0)
        fail_msg("ca_revoke: %s", err.msg);
    b2 = current(node_b, now, cafx_crl_number(b1), &made);
    assert_non_null(b2);
    assert_true(made);
    assert_true(cafx_crl_number(b2) > cafx_crl_number(a1));
    assert_true(lists(b2, cert));
    assert_false(lists(a1, cert));
    a2 = current(F.ca, now, cafx_crl_number(a1), &made);
    assert_non_null(a2);
    assert_false(made);
    assert_true(same_der(a2, b2));

    /* With a third of its life left, a new one is signed; the other node takes it. */
    again = current(F.ca, now + DAY - DAY / 3 + 1, cafx_crl_number(a2), &made);
    assert_non_null(again);
    assert_true(made);
    assert_true(cafx_crl_number(again) > cafx_crl_number(a2));
    assert_true(lists(again, cert));
    X509_CRL_free(b2);
    b2 = current(node_b, now + DAY - DAY / 3 + 1, cafx_crl_number(a2), &made);
    assert_non_null(b2);
    assert_true(same_der(b2, again));

    X509_CRL_free(a1);
    X509_CRL_free(b1);
    X509_CRL_free(b2);
    X509_CRL_free(a2);
    X509_CRL_free(again);
    X509_free(cert);
    free(serial);
}

/*
 * A published record that is not a CRL of this issuing CA (bytes that do not
 * parse, or a CRL recorded under another number) is never served; when its
 * number is above the inventory's counter, no CRL can be published and the
 * refusal says why.
 */
static void
test_bad_published_crl_not_served(void **state)
{
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct duet_err err = {0};
    struct store *st = ca_store(F.ca);
    struct store_crl *head = NULL;
    uint64_t revoked = 0, next = 0;
    int64_t now = (int64_t)time(NULL);
    X509_CRL *crl = NULL, *mine;
    bool made = false;

    (void)state;
    mine = current(F.ca, now, 0, &made);
    assert_non_null(mine);
    assert_int_equal(store_crl_get(st, false, &head, &revoked, &err), 0);
    assert_non_null(head);
    /* Junk (and then a CRL of this CA) recorded under the next numbers of the counter. */
    for (int i = 0; i < 2; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509_CRL(mine, &der);
        struct store_crl bad = *head;
        assert_int_equal(store_begin(st, &err), 0);
        assert_int_equal(store_next_crl_number(st, &next, &err), 0);
        bad.number = next;
        bad.der = i == 0 ? (uint8_t *)(uintptr_t)junk : der;
        bad.der_len = i == 0 ? sizeof(junk) : (size_t)len;
        assert_int_equal(store_crl_put(st, &bad, &err), 0);
        assert_int_equal(store_commit(st, &err), 0);
        OPENSSL_free(der);
        crl = current(node_b, now, cafx_crl_number(mine), &made);
        assert_non_null(crl);
        assert_true(made);
        assert_true(cafx_crl_number(crl) > next);
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_issuing_cert(node_b))), 1);
        X509_CRL_free(crl);
    }
    /* A record numbered above the counter: nothing can be published after it. */
    {
        struct store_crl bad = *head;
        bad.number = next + 100;
        bad.der = (uint8_t *)(uintptr_t)junk;
        bad.der_len = sizeof(junk);
        assert_int_equal(store_begin(st, &err), 0);
        assert_int_equal(store_crl_put(st, &bad, &err), 0);
        assert_int_equal(store_commit(st, &err), 0);
    }
    crl = (X509_CRL *)(uintptr_t)1;
    assert_int_equal(ca_crl_current(node_b, now, DAY, cafx_crl_number(mine), &crl, &made, &err), -1);
    assert_null(crl);
    assert_non_null(strstr(err.msg, "is not above the CRL already published"));
    store_crl_free(head);
    X509_CRL_free(mine);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_serve_one_crl),
        cmocka_unit_test(test_bad_published_crl_not_served),
    };

    return cmocka_run_group_tests_name("ca/crlpub", tests, group_setup, group_teardown);
}
