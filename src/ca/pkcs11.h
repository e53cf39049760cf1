/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11.h - the CA's issuing key in a PKCS#11 token: RFC 7512 URIs
 * (`key_uri: pkcs11:token=...;object=...` in ca.yaml, `duet ca init
 * --key-uri`), the PIN, and an EVP_PKEY that signs inside the token.
 *
 * The key is reached through libp11's own API (PKCS11_*), not OpenSSL's
 * deprecated ENGINE interface: libp11 hands back an EVP_PKEY whose RSA or
 * EC_KEY method calls C_Sign, which OpenSSL 3.0 treats as a "foreign" legacy
 * key and signs with through X509_sign, X509_CRL_sign and OCSP_basic_sign
 * alike.  The private key never leaves the token.
 */
#ifndef DUET_CA_PKCS11_H
#define DUET_CA_PKCS11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "lib/err.h"

/* The environment variables the PIN and the module come from. */
#define CA_PKCS11_PIN_ENV "DUET_PKCS11_PIN"
#define CA_PKCS11_MODULE_ENV "DUET_PKCS11_MODULE"

/* What a pkcs11: URI names; every string is decoded (no %XX left), NULL when absent. */
struct ca_pkcs11_uri {
    char *token;  /* path: token label */
    char *object; /* path: object label */
    uint8_t *id;  /* path: CKA_ID bytes */
    size_t id_len;
    char *serial;       /* path: token serial number */
    char *manufacturer; /* path: token manufacturer */
    char *model;        /* path: token model */
    char *module_path;  /* query: the PKCS#11 module to load */
    char *pin_source;   /* query: "file:/path" (or an absolute path) holding the PIN */
};

/*
 * Parse an RFC 7512 URI.  A token (token, serial, manufacturer or model) and
 * a key (object or id) must be named; type, when given, must be "private".
 * pin-value is refused (a PIN would sit in ca.yaml and in process lists), and
 * no message ever repeats a pin-value.  Unknown attributes are refused with
 * the list of those understood.
 */
int ca_pkcs11_uri_parse(const char *text, struct ca_pkcs11_uri *out,
                        struct duet_err *err) MUST_CHECK;
void ca_pkcs11_uri_clear(struct ca_pkcs11_uri *u);

/* Whether text starts with "pkcs11:" (case-insensitive scheme). */
bool ca_pkcs11_is_uri(const char *text);

/*
 * The same URI with pin-source=file:PATH set (PATH made absolute), for
 * ca.yaml; the result is the caller's to free, NULL on error.
 */
char *ca_pkcs11_uri_with_pin_file(const char *text, const char *pin_file, struct duet_err *err);

/*
 * The PKCS#11 module of the parsed URI u (its text in uri, for the message):
 * module-path, else $DUET_PKCS11_MODULE; NULL, with an error saying how to
 * name one, when neither is set, or when ca_pkcs11_module_check() refuses
 * it.  The result is borrowed from u or the environment.
 */
const char *ca_pkcs11_module(const struct ca_pkcs11_uri *u, const char *uri,
                             struct duet_err *err);

/*
 * Whether the PKCS#11 module at path module may be loaded into a process
 * holding a CA key (uri names the key, for the message): an absolute path to
 * a regular file owned by root or the effective user and not writable by
 * group or others, in a directory (the name's and, through symbolic links,
 * the file's) owned and protected alike.  0, or -1 with an error naming the
 * path, what is wrong and the chmod/chown that fixes it.  ca_pkcs11_module()
 * calls it: every loader of a module goes through both.
 */
int ca_pkcs11_module_check(const char *module, const char *uri, struct duet_err *err) MUST_CHECK;

/*
 * The PIN: from the 0600 file pin-source names, else $DUET_PKCS11_PIN; *pin
 * is NULL when neither gives one, else the caller's, freed with
 * fileio_free_secret().  A pin-source file readable by group or others is
 * refused with the chmod that fixes it.
 */
int ca_pkcs11_read_pin(const struct ca_pkcs11_uri *u, char **pin, struct duet_err *err) MUST_CHECK;

struct ca_pkcs11;

/*
 * Load the module (module-path, else $DUET_PKCS11_MODULE), find the token and
 * log in with the PIN (pin-source=file:..., else $DUET_PKCS11_PIN), find the
 * one private key the URI names.  *key signs through the token and stays valid
 * until ca_pkcs11_close(*out); it is the handle's, not the caller's, and
 * every object holding a reference to it (an X509 made with it as public key,
 * an EVP_PKEY_CTX) must be freed before the handle is closed.  Errors
 * name the URI (which never holds a PIN) and say what was wrong: no such
 * module, token or key, or that the token refused the PIN.
 */
int ca_pkcs11_open(const char *uri, struct ca_pkcs11 **out, EVP_PKEY **key,
                   struct duet_err *err) MUST_CHECK;
void ca_pkcs11_close(struct ca_pkcs11 *p);

/*
 * Another key (the OCSP signer's, the root's) through the handle p already open, which
 * must name the same module: a process keeps one libp11 context per module,
 * since closing one finalizes the module under every other.  The token is
 * found and logged in to as for ca_pkcs11_open() (not again when already).
 * *key is lent by p like the first key; two more keys per handle at most.
 */
int ca_pkcs11_open_also(struct ca_pkcs11 *p, const char *uri, EVP_PKEY **key,
                        struct duet_err *err) MUST_CHECK;

#endif
