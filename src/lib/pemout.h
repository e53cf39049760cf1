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
 * The key derivation of encrypted keys: PBKDF2-HMAC-SHA256 with this many
 * iterations (OWASP's 2023 recommendation for that function) and a 16-byte
 * random salt.  Opening such a key costs about a quarter of a second, which
 * is the point: a stolen key file resists guessing of its passphrase.
 */
#define PEMOUT_KDF_ITERATIONS 600000
#define PEMOUT_KDF_SALT_BYTES 16
/*
 * DUET_CA_KDF_ITERATIONS in the environment sets the iterations of the keys
 * a command writes instead, from this many up: for test environments that
 * make hundreds of throw-away CAs.  Each key file records its own count, so
 * reading never depends on it; `duet ca rekey-storage` without it brings a
 * key back to the default.
 */
#define PEMOUT_KDF_MIN_ITERATIONS 1000

/*
 * A private key as PKCS#8 PEM, mode 0600: encrypted (PBES2: AES-256-CBC,
 * PBKDF2 as above) under the passphrase when passphrase is not NULL, else
 * unencrypted.  The unencrypted encoding is built in OpenSSL's secure heap
 * when it has one and wiped when freed.
 */
int pemout_key(const char *path, EVP_PKEY *key, const char *passphrase,
               struct duet_err *err) MUST_CHECK;

/*
 * How an encrypted PKCS#8 PEM key file is protected: *iterations of PBKDF2
 * (0 when the file is not PBES2 with PBKDF2: unencrypted, or another
 * scheme), and its words in desc ("PBES2 aes-256-cbc, PBKDF2-hmacWithSHA256,
 * 2048 iterations").  Reads the file only; no passphrase needed.
 */
int pemout_key_kdf(const char *path, long *iterations, char *desc, size_t len,
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
