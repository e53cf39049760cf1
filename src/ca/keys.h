/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.h - the key types duet makes and certifies: their names in ca.yaml and
 * on the command line (--key-type), key generation, and which subject keys
 * the CA accepts to certify.
 */
#ifndef DUET_CA_KEYS_H
#define DUET_CA_KEYS_H

#include <openssl/evp.h>

#include "lib/err.h"

enum ca_key_type { CA_KEY_P256 = 0, CA_KEY_P384, CA_KEY_ED25519, CA_KEY_RSA3072 };

/* Parse "p256", "p384", "ed25519", "rsa3072"; the message lists them. */
int ca_key_type_parse(const char *text, enum ca_key_type *out, struct duet_err *err) MUST_CHECK;
/* The name ca_key_type_parse reads back ("p256"...). */
const char *ca_key_type_name(enum ca_key_type t);
/* A new private key of the type (owned by the caller); NULL with the reason on failure. */
EVP_PKEY *ca_key_generate(enum ca_key_type t, struct duet_err *err);

/*
 * Whether a subject's public key is one duet certifies: as strong as what
 * verification accepts - RSA of 2048 bits or more, EC P-256, P-384 or P-521,
 * Ed25519.  Refused keys are described in the message ("RSA 1024").
 */
int ca_key_check_subject(EVP_PKEY *key, struct duet_err *err) MUST_CHECK;

#endif
