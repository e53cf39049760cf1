/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idworld.h - one small world of identities shared by the tests of what duet
 * writes about a client (the X-Forwarded-Client-Cert element, the PROXY v2
 * TLVs): a CA and leaves with awkward subjects and many kinds of SAN, built
 * once per test group (idw_setup / idw_teardown as cmocka group fixtures).
 */
#ifndef DUET_TESTLIB_IDWORLD_H
#define DUET_TESTLIB_IDWORLD_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/identity.h"

/* The subject of IDW.known as duet spells it (RFC 2253 with escapes). */
#define IDW_KNOWN_SUBJECT "CN=svc \\\"one\\\"\\, two,O=Corp"

struct id_world {
    EVP_PKEY *k_ca, *k_leaf;
    X509 *ca;
    X509 *known; /* CN=svc "one", two; O=Corp; two URIs, two DNS, email, IP */
    struct duet_identity *id_known;
    struct duet_identity *id_one;  /* one URI SAN, CN one.corp */
    struct duet_identity *id_nocn; /* one URI SAN, no subject */
};

extern struct id_world IDW;

/* A SAN whose IA5String holds any bytes and length (GEN_DNS, GEN_URI, GEN_EMAIL). */
struct idw_rawsan {
    int type;
    const char *v;
    size_t n;
};

/* The identity duet reads from x (the test fails if it cannot). */
struct duet_identity *idw_identity_of(X509 *x);
/* A client leaf signed by IDW.ca with these "TYPE:value" SANs (NULL-terminated, or NULL). */
X509 *idw_leaf(const char *cn, const char *o, const char *const *sans);
/* A leaf whose SANs are raw IA5Strings, built with the OpenSSL API. */
X509 *idw_leaf_raw_sans(const char *cn, const struct idw_rawsan *r, size_t n);
/* cmocka group fixtures: build IDW, and free it. */
int idw_setup(void **state);
int idw_teardown(void **state);

#endif
