/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca.h - duet's private CA: a root, an issuing intermediate, profiles in
 * ca.yaml and the inventory.
 *
 * A CA directory holds:
 *   ca.yaml        configuration and profiles (written by ca_init, edited by operators)
 *   root.crt       the root certificate (the trust bundle clients and servers use)
 *   root.key       the root key, encrypted (absent with an offline root)
 *   root.crl       the root's CRL (covers the issuing CA), renewed with the root key
 *   issuing.crt    the issuing intermediate (pathlen 0)
 *   issuing.key    its key, encrypted with the CA passphrase
 *   inventory.db   the SQLite inventory (WAL)
 *   ocsp-signer.crt, ocsp-signer.key   the delegated OCSP signer (ocsp.c), its key
 *                  encrypted like issuing.key; made and renewed by the CA itself
 * Every certificate issued is recorded in the inventory in the transaction
 * that allocates its serial, before it is returned (DESIGN.md "Inventory").
 */
#ifndef DUET_CA_H
#define DUET_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/keys.h"
#include "ca/profile.h"
#include "lib/err.h"
#include "store/store.h"

#define CA_FILE_CONFIG "ca.yaml"
#define CA_FILE_ROOT_CERT "root.crt"
#define CA_FILE_ROOT_KEY "root.key"
#define CA_FILE_ROOT_KEY_OFFLINE "root-offline.key"
#define CA_FILE_ROOT_CRL "root.crl"
#define CA_FILE_ISSUING_CERT "issuing.crt"
#define CA_FILE_ISSUING_KEY "issuing.key"
#define CA_FILE_ISSUING_KEY_OFFLINE "issuing-offline.key" /* issuing.key after import-key */
#define CA_FILE_INVENTORY "inventory.db"
#define CA_FILE_OCSP_CERT "ocsp-signer.crt"
#define CA_FILE_OCSP_KEY "ocsp-signer.key"

/* The inventory profile of the delegated OCSP signer: reserved, as issuing-ca is. */
#define CA_PROFILE_OCSP_SIGNER "ocsp-signer"

/* Shortest accepted CA passphrase. */
#define CA_MIN_PASSPHRASE 8

struct ca_init_opts {
    const char *dir;
    const char *name;          /* organisation name: subject O and CN prefix */
    const char *trust_domain;  /* SPIFFE trust domain; NULL: derived from name */
    enum ca_key_type key_type;
    const char *passphrase;    /* required: CA keys are never stored unencrypted */
    bool offline_root;         /* root key written to root-offline.key, to be moved away */
    /*
     * The inventory: NULL for inventory.db in the directory, else a
     * PostgreSQL URL whose database must not hold an inventory yet.  ca.yaml
     * records it as `store:` without its password (libpq then takes it from
     * PGPASSFILE or PGPASSWORD).
     */
    const char *store;
    const char *const *permit_dns; /* name constraints on the issuing CA */
    size_t npermit_dns;
    const char *const *permit_uri;
    size_t npermit_uri;
    /*
     * The issuing key in a PKCS#11 token (RFC 7512 URI), NULL: a new key in
     * issuing.key.  The key must exist in the token; ca.yaml records the URI
     * as `key_uri:` and no issuing key file is written.  pin_file (optional)
     * names a 0600 file holding the PIN, recorded as the URI's pin-source.
     */
    const char *key_uri;
    const char *pin_file;
    /*
     * With key_uri: make the key pair in the token first (key_type: p256,
     * p384 or rsa3072), refusing when the URI's label or id is taken; it
     * is removed again if init fails.
     */
    bool generate_key;
    /*
     * The delegated OCSP signer's key in a PKCS#11 token, NULL: a file the
     * server makes (ocsp-signer.key).  Made with generate_key like
     * key_uri's, else it must exist; pin_file applies to it too.  Recorded
     * as `ocsp_key_uri:`; every OCSP signer certificate certifies that key.
     */
    const char *ocsp_key_uri;
    /*
     * The root key in a PKCS#11 token, NULL: root.key (or root-offline.key).
     * Made with generate_key like the others, else it must exist; refused
     * with offline_root.  Recorded as `root_key_uri:`, which `crl generate
     * --root` signs with.
     */
    const char *root_key_uri;
};

/*
 * Create a CA directory (which must not already hold a CA): keys, root and
 * issuing certificates, root CRL, ca.yaml and an empty inventory.  Nothing is
 * left behind on failure other than the (empty) directory.
 */
int ca_init(const struct ca_init_opts *o, struct duet_err *err) MUST_CHECK;

struct ca;

/* What ca_import_key() could not finish after the CA switched to the token. */
struct ca_import_result {
    bool key_file_kept; /* issuing.key could not be renamed issuing-offline.key */
    char why_kept[128];
    bool adopted; /* the token held this key already (an interrupted import) */
    char adopted_note[256];
};

/*
 * Move a CA's issuing key (issuing.key, opened with passphrase) into the
 * PKCS#11 token key_uri names (pin_file, optional, recorded as its
 * pin-source): the private key, sensitive and not extractable, and its
 * public key, under the URI's label and id, which must be free, or already
 * hold this very key (an import killed before ca.yaml switched: then
 * res->adopted; any other key there is refused with the command freeing
 * the label).  The token
 * must then sign as issuing.crt's key; only then does ca.yaml gain
 * `key_uri:` and issuing.key become issuing-offline.key (still encrypted
 * with the CA passphrase: a backup to move offline).  On failure before
 * ca.yaml changes, what was made in the token is removed and the CA still
 * uses its file.  Refused when ca.yaml already has key_uri:.
 */
int ca_import_key(const char *dir, const char *passphrase, const char *key_uri,
                  const char *pin_file, struct ca_import_result *res,
                  struct duet_err *err) MUST_CHECK;

/*
 * Append `FIELD: "URI"` (key_uri, ocsp_key_uri or root_key_uri, with a comment on the
 * PIN) to ca.yaml's text, replacing *yaml; the URI holds no '"' or '\\'
 * (ca_pkcs11_uri_parse refuses them).  -1 when out of memory.
 */
int ca_yaml_append_key_uri(char **yaml, const char *field, const char *uri) MUST_CHECK;

/*
 * The delegated OCSP signer's key when ca.yaml has ocsp_key_uri: opened in
 * its token the first time (with the PIN, as for key_uri) and kept until
 * ca_close(); *key is a reference of the caller's, to free before
 * ca_close().  *key NULL and 0 when the signer's key is a file.
 */
int ca_ocsp_token_key(struct ca *ca, EVP_PKEY **key, struct duet_err *err) MUST_CHECK;

/*
 * A key in a token for `ca init` or `ca import-key`: *uri is key_uri as
 * ca.yaml records it (with pin_file, optional, as its pin-source), the
 * caller's to free; with generate, a key pair of type t is first made in the
 * token (ca_pkcs11_generate: refused over an existing label or id) and
 * *generated set, so that a later failure calls ca_token_key_undo().
 */
int ca_token_key_prepare(const char *key_uri, const char *pin_file, bool generate,
                         enum ca_key_type t, char **uri, bool *generated,
                         struct duet_err *err) MUST_CHECK;
/* Remove the key pair ca_token_key_prepare() made; a failure is appended to err. */
void ca_token_key_undo(const char *uri, struct duet_err *err);

/* "DIR/NAME" in a new string (the caller frees it); NULL when out of memory. */
char *ca_join_path(const char *dir, const char *name);

/*
 * Open a CA directory.  With a passphrase the issuing key is decrypted for
 * signing (a wrong passphrase is refused), or, when ca.yaml has key_uri:,
 * reached in its PKCS#11 token with the PIN (see ca/pkcs11.h); with NULL the
 * CA opens read-only for listing and inspection.
 */
int ca_open(const char *dir, const char *passphrase, struct ca **out,
            struct duet_err *err) MUST_CHECK;
void ca_close(struct ca *ca);

struct store *ca_store(struct ca *ca);
const struct ca_config *ca_config(const struct ca *ca);
X509 *ca_issuing_cert(const struct ca *ca); /* borrowed */
X509 *ca_root_cert(const struct ca *ca);    /* borrowed */
const char *ca_dir(const struct ca *ca);

/* The digest a CA key signs with: none for EdDSA, SHA-384 for P-384 keys, else SHA-256. */
const EVP_MD *ca_sign_md(EVP_PKEY *key);

/*
 * A key the CA keeps in its directory (DIR/name), encrypted with the CA
 * passphrase as issuing.key is (encrypted PKCS#8, mode 0600, written
 * atomically).  Both need a CA opened with its passphrase.  ca_key_read
 * refuses a file readable by group or others and says "wrong CA passphrase"
 * when it does not decrypt; *key belongs to the caller.
 */
int ca_key_write(struct ca *ca, const char *name, EVP_PKEY *key, struct duet_err *err) MUST_CHECK;
int ca_key_read(struct ca *ca, const char *name, EVP_PKEY **key, struct duet_err *err) MUST_CHECK;

/* What ca_migrate copied. */
struct ca_migrate_result {
    size_t certs;
    size_t tokens;
    uint64_t crl_number;  /* the last CRL number taken, where the copy's counter stands */
    bool config_updated;  /* ca.yaml now names the copy (store: was absent) */
};

/*
 * Copy the CA's SQLite inventory into the PostgreSQL database at url (which
 * must not hold an inventory yet), in one transaction there while the SQLite
 * one is locked against writers; then read the copy back and verify the
 * count and every serial (its DER, status and revocation) and the tokens; then
 * add `store:` (without the password) to ca.yaml when it has none.  The
 * SQLite file is left unchanged.  A CA already on PostgreSQL is refused.
 */
int ca_migrate(struct ca *ca, const char *url, struct ca_migrate_result *res,
               struct duet_err *err) MUST_CHECK;

/* What to issue; strings borrowed for the call. */
struct ca_request {
    const char *profile;
    const char *cn;               /* subject commonName */
    const char *const *sans;      /* "dns:H", "ip:A", "uri:U", "email:E" (from --san) */
    size_t nsans;
    /*
     * Names given as structures (a CSR's, the renewed certificate's): each is
     * checked on its exact bytes and issued only if the profile allows it;
     * never turned into text that is parsed again.  names_from names their
     * source in messages ("the CSR").
     */
    const GENERAL_NAMES *names;
    const char *names_from;
    /*
     * The CN came from the request (a CSR's subject), not from the operator:
     * it must then be one of the names certified (a DNS name, an address, an
     * email address, a URI or a SPIFFE ID's path), never a free choice of
     * whoever wrote the CSR.
     */
    bool cn_from_request;
    int64_t ttl;                  /* seconds; 0: the profile's default */
    const char *owner;
    const char *owner_from;       /* where owner came from, for messages; NULL: "--owner" */
    const char *location;
    EVP_PKEY *pubkey;             /* the subject's public key */
    const char *renews;           /* canonical serial this renews, or NULL */
    int64_t now;                  /* issuance time; 0: now */
    /*
     * Run inside the issuance transaction once the certificate is signed,
     * recorded and self-checked, just before the commit, with its canonical
     * serial; a failure rolls the whole issuance back.  Token redemption
     * (token.c) spends the token here, so that a token is used exactly when
     * a certificate is issued for it.  NULL: nothing.
     */
    int (*in_txn)(struct store *s, const char *serial, void *arg, struct duet_err *err);
    void *in_txn_arg;
};

/*
 * Build the subjectAltName from the request as GENERAL_NAMEs, check those
 * against the profile, allocate a fresh 128-bit serial,
 * sign, and record the certificate in the inventory - all in one
 * transaction - then return it (*cert_out owned by the caller).  A validity
 * past the issuing CA's notAfter is cut to it and *clamped is set.
 */
int ca_issue(struct ca *ca, const struct ca_request *req, X509 **cert_out, bool *clamped,
             struct duet_err *err) MUST_CHECK;

/*
 * Issue the CA's delegated OCSP signing certificate (RFC 6960 4.2.2.2) for
 * pubkey: subject "O=<name>, CN=<name> OCSP responder", keyUsage
 * digitalSignature, extendedKeyUsage id-kp-OCSPSigning only, id-pkix-ocsp-nocheck,
 * no SAN, valid ttl seconds (cut to the issuing CA's notAfter).  Recorded in
 * the inventory under the profile CA_PROFILE_OCSP_SIGNER in the transaction
 * that draws its serial, as renewing `renews` when that is not NULL.
 * *cert_out belongs to the caller.  ocsp.c decides when to call it.
 */
int ca_issue_ocsp_signer(struct ca *ca, EVP_PKEY *pubkey, const char *renews, int64_t now,
                         int64_t ttl, X509 **cert_out, struct duet_err *err) MUST_CHECK;

/* --- issue.c: the rules of `duet cert issue`, `sign` and `renew`, for every front end --- */

/*
 * The SAN a certificate of `profile` gets when the requester names none: the
 * SPIFFE ID "uri:spiffe://<trust domain>/<name>" for a SPIFFE profile
 * ("uri:spiffe://<trust domain>/<owner>/<name>" when its team_from_owner has
 * spiffe and an owner is given; ca_issue checks the owner), else
 * "dns:<name>" for a profile that allows and requires DNS names, else none.
 * *out is a new string (the caller frees it) or NULL when there is no
 * default (an unknown profile included: ca_issue names that error).
 */
int ca_default_san(const struct ca_config *cfg, const char *profile, const char *name,
                   const char *owner, char **out, struct duet_err *err) MUST_CHECK;

/*
 * Issue with a key the CA makes: a new key of key_type (NULL: ca.yaml's
 * key_type), the default SAN when req->nsans is 0, then ca_issue() with
 * req->pubkey set to the new key (req->pubkey is ignored).  On success *cert
 * and *key belong to the caller; on failure both are NULL and nothing was
 * recorded.
 */
int ca_issue_keypair(struct ca *ca, const struct ca_request *req, const char *key_type,
                     X509 **cert, EVP_PKEY **key, bool *clamped, struct duet_err *err) MUST_CHECK;

/* What the signer of a CSR adds to it (`duet cert sign`'s options); strings borrowed. */
struct ca_sign_opts {
    const char *profile;
    const char *name;          /* the certificate's CN; NULL: the CSR's CN */
    const char *const *sans;   /* more names, "dns:H", "ip:A", "uri:U", "email:E" */
    size_t nsans;
    int64_t ttl;               /* 0: the profile's default */
    const char *owner;
    const char *location;
    int64_t now;               /* 0: now */
};

/* A CSR that passed ca_csr_check(), ready for ca_sign_csr(). */
struct ca_csr {
    EVP_PKEY *pubkey;          /* borrowed from the X509_REQ, which must outlive this */
    GENERAL_NAMES *names;      /* the subjectAltName it asks for; NULL: none */
    char *cn;                  /* the CN to certify */
    bool cn_from_request;      /* the CN is the CSR's: it must be a name certified */
};

/*
 * Check a CSR before the CA key is touched: its signature verifies with its
 * own key; it has at most one subjectAltName extension and that one decodes;
 * a CN is found - o->name, else the CSR's subject CN, else the value of the
 * first of o->sans, else the first DNS, URI or email name it asks for.  Every
 * other extension it asks for (basicConstraints CA:TRUE, key usages, name
 * constraints...) is ignored: the profile decides them.  `from` names the
 * CSR in messages (its file).  Fill *out (ca_csr_clear frees it).
 */
int ca_csr_check(X509_REQ *req, const char *from, const struct ca_sign_opts *o,
                 struct ca_csr *out, struct duet_err *err) MUST_CHECK;
void ca_csr_clear(struct ca_csr *c);

/*
 * Sign a checked CSR under o->profile: its names (as structures, each checked
 * on its exact bytes) and o->sans must all be allowed by the profile, and a CN
 * taken from the CSR must be one of the names certified.  Recorded in the
 * inventory as ca_issue() does; *cert belongs to the caller.
 */
int ca_sign_csr(struct ca *ca, const struct ca_csr *csr, const struct ca_sign_opts *o,
                X509 **cert, bool *clamped, struct duet_err *err) MUST_CHECK;

/* The certificate a renewal starts from (ca_renew_check). */
struct ca_renewal {
    const struct store_cert *row; /* borrowed: the inventory row renewed */
    X509 *old;                    /* the certificate renewed, decoded from the row */
    char *cn;                     /* its subject CN, kept */
    GENERAL_NAMES *names;         /* its subjectAltName, kept; NULL: none */
};

/*
 * Whether the certificate of `row` may be renewed: not revoked, not the
 * issuing CA, not renewed already, and readable.  Fill *out with the identity
 * the renewal keeps (ca_renewal_clear frees it; row must outlive it).
 */
int ca_renew_check(const struct store_cert *row, struct ca_renewal *out,
                   struct duet_err *err) MUST_CHECK;
void ca_renewal_clear(struct ca_renewal *r);

/* When a certificate may renew by presenting itself (ca_renew_window). */
struct ca_window {
    bool in_grace;       /* past its notAfter, within its profile's renew_grace */
    int64_t grace;       /* the profile's renew_grace in seconds; 0: off */
    char grace_text[24]; /* "off", or the grace as a duration ("72h", "30d", "90s") */
};

/*
 * Whether the certificate of inventory row `row` may renew at `now` by
 * presenting itself (POST /v1/renew): while it is valid, and after its
 * notAfter for its profile's renew_grace (ca.yaml), measured from the row's
 * not_after - never from anything the client sends.  Refused, with a sentence
 * naming the serial and what to do: a revoked row (even expired), a row not
 * valid yet, an expired issuing CA or OCSP signer (never renewed this way),
 * an expired row whose profile has no grace ("renew_grace: off") or whose
 * grace has ended (when it ended).  Fills *out either way.  Whether the row
 * was renewed already is ca_renew_check's to say.
 */
int ca_renew_window(const struct ca_config *cfg, const struct store_cert *row, int64_t now,
                    struct ca_window *out, struct duet_err *err) MUST_CHECK;

/* How to renew. */
struct ca_renew_opts {
    bool reuse_key;            /* certify the renewed certificate's key again */
    EVP_PKEY *pubkey;          /* else this key (a checked CSR's: rekey by its holder) */
    const char *key_type;      /* else a new key of this type; NULL: ca.yaml's key_type */
    int64_t ttl;               /* 0: as long as the certificate renewed */
    int64_t now;               /* 0: now */
};

/*
 * Renew: the same CN, names, profile, owner and location, with the old key,
 * o->pubkey or a new one, recorded in the inventory as renewing the old serial (and the old
 * row as renewed by the new one) in the same transaction.  *cert belongs to
 * the caller; so does *key, the new private key (NULL with reuse_key or pubkey).
 */
int ca_renew(struct ca *ca, const struct ca_renewal *r, const struct ca_renew_opts *o, X509 **cert,
             EVP_PKEY **key, bool *clamped, struct duet_err *err) MUST_CHECK;

/*
 * Revoke by canonical serial; refuses unknown and already revoked serials and
 * the issuing CA.  `by` says who revoked it, kept in the inventory as given
 * ("cli:alice", "uri:spiffe://corp/admin/alice"; NULL: not known).
 */
int ca_revoke(struct ca *ca, const char *serial, int reason, int64_t when, const char *by,
              struct duet_err *err) MUST_CHECK;

/*
 * A CRL v2 of the issuing CA listing every revoked certificate with its
 * revocation date and reason, a fresh CRL number and nextUpdate = now + validity,
 * published in the inventory (store_crl_put) in the transaction that took its
 * number.
 */
int ca_crl(struct ca *ca, int64_t now, int64_t validity, X509_CRL **out,
           struct duet_err *err) MUST_CHECK;

/*
 * The CRL to serve at `now` by a process that serves CRL number `have` (0:
 * none yet), for several processes on one inventory (crlpub.c).  The newest
 * published CRL is current when it lists every revocation in the inventory
 * (its count of revoked rows is today's) and more than a third of its life
 * is left.  *out is a newer CRL to serve instead (the published one when it
 * is current and newer than `have` - signed by this issuing CA, else it is
 * not taken - or one signed now, with validity, when none is current), or
 * NULL when the one numbered `have` stays current.  *made (when not NULL)
 * says whether *out was signed now rather than taken from the inventory.
 */
int ca_crl_current(struct ca *ca, int64_t now, int64_t validity, uint64_t have, X509_CRL **out,
                   bool *made, struct duet_err *err) MUST_CHECK;

/*
 * Sign a fresh root CRL (empty: duet does not revoke issuing CAs) with the
 * root key - DIR/root.key, or root_key_path for an offline root - decrypted
 * with the CA passphrase, and replace DIR/root.crl.  *out is owned by the
 * caller when not NULL.
 */
int ca_root_crl_renew(struct ca *ca, const char *root_key_path, const char *passphrase,
                      int64_t now, int64_t validity, X509_CRL **out,
                      struct duet_err *err) MUST_CHECK;

/* The last root CRL written in the CA directory (covers the issuing CA). */
int ca_root_crl(struct ca *ca, X509_CRL **out, struct duet_err *err) MUST_CHECK;

/*
 * Decrypt a CA key file with the passphrase: refused when the file is
 * readable by group or others (the message says how to fix it), and a wrong
 * passphrase said as such ("PATH: wrong CA passphrase").
 */
int ca_read_key_file(const char *path, const char *passphrase, EVP_PKEY **key,
                     struct duet_err *err) MUST_CHECK;

/* Parse an RFC 5280 reason name ("keyCompromise"); returns the code or -1. */
int ca_reason_parse(const char *text);

#endif
