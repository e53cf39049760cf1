/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_objects.h - making key objects in a PKCS#11 token: a key pair
 * generated inside it (`duet ca init --generate-key`), an existing key
 * written into it (`duet ca import-key`), and the removal of what duet
 * itself just made when a later step fails.
 *
 * libp11 0.4.12 (Debian 12's) cannot generate or store an EC private key, so
 * these calls go to the module's own function list (C_GenerateKeyPair,
 * C_CreateObject), the module dlopen'ed from the URI's module-path.  The
 * URI, the token and the PIN are found and read as ca_pkcs11_open() does
 * (pkcs11.h).  Every private key made is CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, CKA_EXTRACTABLE false and CKA_SIGN, with the URI's object
 * label and id; its public half goes beside it under the same label and id.
 * An object of that label or id already in the token is never overwritten.
 */
#ifndef DUET_CA_PKCS11_OBJECTS_H
#define DUET_CA_PKCS11_OBJECTS_H

#include <openssl/evp.h>

#include "ca/keys.h"
#include "lib/err.h"

/*
 * Generate a key pair of type t (p256, p384 or rsa3072; ed25519 is refused:
 * libp11 cannot sign with it) in the token the URI names.  Refused, with
 * nothing made, when an object with the URI's label or id exists.
 */
int ca_pkcs11_generate(const char *uri, enum ca_key_type t, struct duet_err *err) MUST_CHECK;

/*
 * Write key (EC P-256/P-384 or RSA 2048+; borrowed) into the token the URI
 * names: the private key, non-extractable, and its public key.  Refused, with
 * nothing made, when an object with the URI's label or id exists.  The key's
 * bytes this function copies are wiped before it returns.
 * CA_PKCS11_TAKEN (err set, nothing written) when an object of the token
 * already has the URI's label or id: the caller may look at what it is.
 */
#define CA_PKCS11_TAKEN 1
int ca_pkcs11_import(const char *uri, EVP_PKEY *key, struct duet_err *err) MUST_CHECK;

/*
 * Destroy the private and public key objects the URI's label and id name:
 * only for undoing ca_pkcs11_generate() or ca_pkcs11_import() of this
 * process when a later step fails (they refused to start on an existing
 * object, so what matches is what they made).
 */
int ca_pkcs11_destroy(const char *uri, struct duet_err *err) MUST_CHECK;

#endif
