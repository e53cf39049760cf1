/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load.h - reading certificates, chains, private keys, CRLs and CSRs from
 * PEM, DER and PKCS#12, with the format detected from the content.
 *
 * Every error names the file (or the label given for memory input) and what
 * was expected, e.g. "alice.pem: PEM block 2 (CERTIFICATE) is truncated: no
 * END line".
 */
#ifndef DUET_LIB_LOAD_H
#define DUET_LIB_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/compat.h"
#include "lib/err.h"

enum load_format { LOAD_PEM = 1, LOAD_DER = 2, LOAD_PKCS12 = 3 };

/* Everything a file held, in file order within each kind. */
struct load_bundle {
    enum load_format format;
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    STACK_OF(X509_REQ) *csrs;
    EVP_PKEY *key;      /* the first private key, NULL when there is none */
    int nkeys;          /* how many private keys the file held */
    bool key_encrypted; /* the first private key was stored encrypted */
    int nother;         /* PEM blocks of other kinds (ignored) */
};

/* The printable name of a format: "PEM", "DER", "PKCS#12". */
const char *load_format_name(enum load_format f);

/*
 * Parse everything in data (PEM with any number of blocks, or one DER object,
 * or PKCS#12).  `label` names the input in messages; `password` unlocks
 * PKCS#12 files and encrypted private keys and may be NULL.  Fills *out,
 * which the caller releases with load_bundle_clear() whatever the result.
 * Fails on malformed input, on a wrong or missing password, and when nothing
 * recognisable is found.
 */
int load_bundle_mem(const char *label, const uint8_t *data, size_t len, const char *password,
                    struct load_bundle *out, struct duet_err *err) MUST_CHECK;
/* Same, reading the file at path first. */
int load_bundle_file(const char *path, const char *password, struct load_bundle *out,
                     struct duet_err *err) MUST_CHECK;
/* Release what a bundle holds and zero it; the private key is wiped. */
void load_bundle_clear(struct load_bundle *b);

/*
 * Certificates of a file, in file order (for PKCS#12: the key's certificate
 * first).  At least one is required.  *certs is owned by the caller
 * (OSSL_STACK_OF_X509_free).
 */
int load_certs_file(const char *path, const char *password, STACK_OF(X509) **certs,
                    struct duet_err *err) MUST_CHECK;
int load_certs_mem(const char *label, const uint8_t *data, size_t len, const char *password,
                   STACK_OF(X509) **certs, struct duet_err *err) MUST_CHECK;
/* CRLs of a file; at least one is required.  Owned by the caller. */
int load_crls_file(const char *path, STACK_OF(X509_CRL) **crls, struct duet_err *err) MUST_CHECK;
/*
 * The one private key of a file (PEM, DER, PKCS#8 encrypted with passphrase,
 * or PKCS#12 with password).  Exactly one key is required.  Owned by the
 * caller (EVP_PKEY_free).
 */
int load_key_file(const char *path, const char *passphrase, EVP_PKEY **key,
                  struct duet_err *err) MUST_CHECK;

#endif
