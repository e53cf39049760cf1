/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_signer.h - the delegated OCSP signer as ocspsigner.c makes it and
 * ocsp.c signs with it; nothing outside src/ca/ocsp*.c includes it.
 */
#ifndef DUET_CA_OCSP_SIGNER_H
#define DUET_CA_OCSP_SIGNER_H

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct ca_ocsp_signer {
    X509 *cert;
    EVP_PKEY *key;
    char *serial; /* canonical, as in the inventory */
    int64_t not_before;
    int64_t not_after;
};

#endif
