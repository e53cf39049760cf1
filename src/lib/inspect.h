/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inspect.h - what `duet cert inspect` shows, as a JSON model.
 *
 * One model serves both renderings: `--format json` prints it, the text
 * renderer in src/cli walks it.  The keys are documented in
 * docs/cli/cert-inspect.md and are a contract for scripts.
 */
#ifndef DUET_LIB_INSPECT_H
#define DUET_LIB_INSPECT_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/load.h"

/* A certificate as a JSON object; `now` gives days_left.  NULL on OOM. */
json_t *inspect_cert(X509 *cert, int64_t now);
/* A certificate request; its self-signature is checked.  NULL on OOM. */
json_t *inspect_csr(X509_REQ *req);
/* A CRL with every revoked entry.  NULL on OOM. */
json_t *inspect_crl(X509_CRL *crl, int64_t now);
/* A private key: type, size, public key fingerprint (never key material). */
json_t *inspect_key(EVP_PKEY *key, bool encrypted);

/*
 * Everything in a loaded file: {"file", "format", "objects": [...]}.  For a
 * chain of certificates, each but the last gets "signed_by_next".  A private
 * key that matches a certificate of the file is flagged on the key.
 */
json_t *inspect_bundle(const char *path, const struct load_bundle *b, int64_t now);

#endif
