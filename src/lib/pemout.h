/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pemout.h - the one place duet writes certificates, keys, CRLs and PKCS#12
 * files.  Every writer encodes in memory, then writes atomically through
 * fileio_write_atomic() (temporary file, fsync, rename, fsync of the
 * directory): a reader sees the old file or the new one, never half of it.
 * A file holding a private key is mode 0600, any other 0644 (DESIGN.md
 * "Files").
 */
#ifndef DUET_LIB_PEMOUT_H
#define DUET_LIB_PEMOUT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

/*
 * Certificates as PEM, in the order given (a leaf, then its issuers), then,
 * when key is not NULL, that private key as unencrypted PKCS#8 PEM: one file
 * for servers that want both.  Mode 0600 when a key is in it, else 0644.
 */
int pemout_certs(const char *path, X509 *const *certs, size_t n, EVP_PKEY *key,
                 struct duet_err *err) MUST_CHECK;

/* One certificate as DER, mode 0644. */
int pemout_cert_der(const char *path, X509 *cert, struct duet_err *err) MUST_CHECK;

/*
 * A private key as PKCS#8 PEM, mode 0600: encrypted with AES-256-CBC under
 * the passphrase (PBKDF2) when passphrase is not NULL, else unencrypted.
 * The unencrypted encoding is built in OpenSSL's secure heap when it has one
 * and wiped when freed.
 */
int pemout_key(const char *path, EVP_PKEY *key, const char *passphrase,
               struct duet_err *err) MUST_CHECK;

/* CRLs as PEM in the order given, or, with der, the first one as DER; mode 0644. */
int pemout_crls(const char *path, X509_CRL *const *crls, size_t n, bool der,
                struct duet_err *err) MUST_CHECK;

/*
 * A PKCS#12 file (RFC 7292) of key, leaf and chain (NULL: none) under the
 * password, mode 0600.  By default AES-256-CBC with PBKDF2 and a SHA-256 MAC
 * (100,000 iterations); with legacy, 3DES with SHA-1 (2,048 iterations) for
 * old Windows, macOS and Java keystores.  The friendly name is the leaf's CN.
 */
int pemout_p12(const char *path, EVP_PKEY *key, X509 *leaf, STACK_OF(X509) * chain,
               const char *password, bool legacy, struct duet_err *err) MUST_CHECK;

#endif
