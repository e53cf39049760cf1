/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_fixture.h - the certificates and OCSP responses the unit tests of
 * OCSP stapling (staple_test.c), the tunnel's staple verdict
 * (tunstaple_test.c) and OCSP checking of client certificates
 * (ocspcheck_test.c) share: an issuing CA, a leaf, another leaf, a delegated
 * OCSP signer with and without id-kp-OCSPSigning, and a stranger CA with the
 * issuer's name and another key; responses built from a resp_spec.
 */
#ifndef DUET_TESTS_OCSP_FIXTURE_H
#define DUET_TESTS_OCSP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

extern int64_t now;
extern EVP_PKEY *ca_key, *leaf_key, *del_key, *stranger_key;
extern X509 *ca, *leaf, *other, *del, *del_noeku, *stranger;

struct resp_spec {
    X509 *subject;       /* the certificate answered for (default leaf) */
    X509 *signer;        /* default ca */
    EVP_PKEY *key;       /* default ca_key */
    int status;          /* V_OCSP_CERTSTATUS_* */
    int64_t this_off;    /* thisUpdate - now */
    int64_t next_off;    /* nextUpdate - now; 0: none */
    bool sha256;         /* a SHA-256 CertID */
    bool include_signer; /* the signer's certificate in the response */
    int response_status; /* OCSP_RESPONSE_STATUS_* */
};

X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial,
                const char *bc, const char *eku);
int setup(void **state);
int teardown(void **state);
unsigned char *make_resp(const struct resp_spec *sp, size_t *len);

#endif
