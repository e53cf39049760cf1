/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_fixture.h - the CA the unit tests of src/ca work against, made once per
 * test group in a temporary directory with ca_init and opened with ca_open
 * (ca_test.c, crlpub_test.c, issue_test.c, ocsp_test.c, team_test.c,
 * token_test.c), and the inventory, SAN and CRL readings several of them check.
 * The helpers read through OpenSSL and the store's interface, not through the
 * code under test.
 */
#ifndef DUET_TESTS_CA_FIXTURE_H
#define DUET_TESTS_CA_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"

/* The passphrase of the fixture's CA keys (unless the group chose another). */
#define CAFX_PASS "correct horse battery staple"

struct cafx {
    char *tmp;     /* a temporary directory: cafx_teardown removes everything below it */
    char *dir;     /* the CA's directory, <tmp>/ca */
    struct ca *ca; /* the CA, opened with its passphrase */
    EVP_PKEY *key; /* a P-256 key for the subjects the tests certify */
};

/*
 * Make a CA in a new <tmp>/ca and open it.  opts says what ca_init needs beyond
 * the directory (name, trust domain, name constraints...); its dir is ignored,
 * a NULL passphrase means CAFX_PASS, and the key type is opts' (0 is P-256).
 * profiles_yaml (NULL: none) is appended to the ca.yaml ca_init wrote, whose
 * last key is `profiles:`, before the CA is opened.  Returns 0, or -1 with the
 * step that failed and why on stderr (a cmocka group set-up returns it).
 */
int cafx_setup(struct cafx *fx, struct ca_init_opts opts, const char *profiles_yaml);
/* Close the CA, free the key, remove the temporary directory; then *fx is zero. */
void cafx_teardown(struct cafx *fx);
/* How many certificates ca's inventory lists now (the test fails if it cannot say). */
size_t cafx_inventory_count(struct ca *ca);
/* A certificate's SANs as "DNS:a, URI:b", OpenSSL's own rendering ("" for none); malloc'd. */
char *cafx_sans_text(X509 *cert);
/* The cRLNumber of a CRL (the test fails when it has none). */
uint64_t cafx_crl_number(X509_CRL *crl);

#endif
