/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkiworld.h - the small PKI the tests of chain and certificate checks share
 * (diagnose_test.c, doctor_test.c): a root "Root" and an intermediate "Inter"
 * signed by it, the key the leaves under Inter are made with, and an
 * unrelated root "Other" with its own key.  All keys are P-256.
 */
#ifndef DUET_TESTLIB_PKIWORLD_H
#define DUET_TESTLIB_PKIWORLD_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testlib/certfactory.h"

struct pki_world {
    EVP_PKEY *root_key, *int_key, *leaf_key, *other_key;
    X509 *root;       /* CN=Root, self-signed CA */
    X509 *inter;      /* CN=Inter, CA signed by root */
    X509 *other_root; /* CN=Other, self-signed CA with other_key */
};

/* Fill *p with new keys and certificates (a failure aborts the test). */
void pkw_new(struct pki_world *p);
/* Free what pkw_new made; then *p is zero. */
void pkw_free(struct pki_world *p);
/*
 * A new leaf signed by p->inter: spec as given (CN, EKU, validity...) with its
 * key, issuer, issuer key and basicConstraints CA:FALSE set here.
 */
X509 *pkw_leaf(const struct pki_world *p, struct cf_cert_spec spec);

#endif
