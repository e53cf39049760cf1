/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c - key types: names, generation and the subject keys the CA accepts.
 *
 * New keys are made by OpenSSL's EVP helpers (EC on the NIST curves, Ed25519,
 * RSA with e = 65537).  The subject-key check mirrors what duet's verification
 * accepts, so the CA never signs a certificate its relying parties would
 * refuse for its key.
 */
#include "ca/keys.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "lib/x509util.h"

/* Parse a key type's name; see keys.h. */
int
ca_key_type_parse(const char *text, enum ca_key_type *out, struct duet_err *err)
{
    static const struct {
        const char *name;
        enum ca_key_type t;
    } types[] = {{"p256", CA_KEY_P256},
                 {"p384", CA_KEY_P384},
                 {"ed25519", CA_KEY_ED25519},
                 {"rsa3072", CA_KEY_RSA3072}};

    for (size_t i = 0; text != NULL && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(text, types[i].name) == 0) {
            *out = types[i].t;
            return 0;
        }
    }
    return err_set(err, DUET_ERR_INPUT,
                   "key type \"%s\" is not supported; expected p256, p384, ed25519 or rsa3072",
                   text != NULL ? text : "");
}

/* The name of a key type; see keys.h. */
const char *
ca_key_type_name(enum ca_key_type t)
{
    switch (t) {
    case CA_KEY_P256:
        return "p256";
    case CA_KEY_P384:
        return "p384";
    case CA_KEY_ED25519:
        return "ed25519";
    case CA_KEY_RSA3072:
        return "rsa3072";
    }
    return "?";
}

/* A new key of a type; see keys.h. */
EVP_PKEY *
ca_key_generate(enum ca_key_type t, struct duet_err *err)
{
    EVP_PKEY *k = NULL;

    switch (t) {
    case CA_KEY_P256:
        k = EVP_EC_gen("P-256");
        break;
    case CA_KEY_P384:
        k = EVP_EC_gen("P-384");
        break;
    case CA_KEY_ED25519:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case CA_KEY_RSA3072:
        k = EVP_RSA_gen(3072);
        break;
    }
    if (k == NULL)
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot generate a %s key", ca_key_type_name(t));
    return k;
}

/* Whether duet certifies this subject key; see keys.h. */
int
ca_key_check_subject(EVP_PKEY *key, struct duet_err *err)
{
    char desc[64];
    int bits = 0;

    x509u_key_describe(key, desc, sizeof(desc), &bits);
    if (((EVP_PKEY_is_a(key, "RSA") && bits < 2048)) ||
        !(EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "EC") || EVP_PKEY_is_a(key, "ED25519")) ||
        (EVP_PKEY_is_a(key, "EC") && strcmp(desc, "EC P-256") != 0 &&
         strcmp(desc, "EC P-384") != 0 && strcmp(desc, "EC P-521") != 0))
        return err_set(err, DUET_ERR_INPUT,
                       "the subject's key is %s; duet issues for RSA 2048+, EC P-256/384/521 "
                       "and Ed25519 keys",
                       desc);
    return 0;
}
