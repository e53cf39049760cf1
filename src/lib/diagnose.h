/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diagnose.h - what a failing mTLS connection means, without sockets: the
 * order and completeness of a chain as a peer sent it, whether a client
 * certificate fits a server's CertificateRequest (accepted CA names, client
 * authentication, validity), and what a TLS alert means in that context.
 * `duet probe` reports these; each problem comes with one sentence and the
 * fix, both in the words docs/cli/probe.md documents.
 */
#ifndef DUET_LIB_DIAGNOSE_H
#define DUET_LIB_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* How a chain as sent (leaf first) is put together. */
enum diag_chain {
    DIAG_CHAIN_OK = 0,        /* each certificate is issued by the next, or by a trusted one */
    DIAG_CHAIN_WRONG_ORDER,   /* an issuer is present, but not right after what it issued */
    DIAG_CHAIN_MISSING,       /* an issuer is neither the next certificate nor trusted */
    DIAG_CHAIN_UNRELATED,     /* a certificate that issued none of those before it */
    DIAG_CHAIN_BAD_SIGNATURE, /* the next one carries the issuer's name (and key identifier),
                                 but its key does not verify the signature: another CA */
};

/* The stable name of a chain verdict ("ok", "wrong_order", "missing_issuer", "unrelated",
 * "bad_signature"). */
const char *diag_chain_code(enum diag_chain c);

/*
 * Analyse the order of `chain` (leaf first, as sent) against the trusted
 * certificates in `trusted` (may be NULL: nothing trusted is known).  A
 * certificate is complete when the next one issued it, when a trusted
 * certificate did, or when it is self-issued.  A certificate sent issues
 * another when its name and key identifiers say so and its key verifies the
 * signature: a next one that only looks the part is DIAG_CHAIN_BAD_SIGNATURE
 * (what `duet doctor` and `duet probe` both report).  Returns the first
 * problem and, in *index, the position of the certificate concerned (the one
 * whose issuer is missing, out of order or not its signer, or the unrelated
 * one); *index is -1 for OK.
 */
enum diag_chain diag_chain_order(STACK_OF(X509) * chain, X509_STORE *trusted, int *index);

/* Whether a certificate is usable for TLS client authentication, first problem only. */
enum diag_client {
    DIAG_CLIENT_OK = 0,
    DIAG_CLIENT_EXPIRED,       /* past its notAfter */
    DIAG_CLIENT_NOT_YET_VALID, /* before its notBefore */
    DIAG_CLIENT_EKU,           /* an extendedKeyUsage without clientAuth (or anyExtendedKeyUsage) */
    DIAG_CLIENT_KEY_USAGE,     /* a keyUsage without digitalSignature */
    DIAG_CLIENT_IS_CA,         /* a CA certificate */
};

/* The stable name of a client verdict ("ok", "expired", "not_yet_valid", "eku", ...). */
const char *diag_client_code(enum diag_client c);

/* Check `leaf` for client authentication at time `now`. */
enum diag_client diag_client_usable(X509 *leaf, int64_t now);

/* Whether every certificate of chain (ours, as sent) is within its validity at now (Unix
 * seconds); false for one whose time cannot be read. */
bool diag_chain_current(STACK_OF(X509) * chain, int64_t now);

/* Whether a chain we would send reaches one of the CA names a server asked for. */
enum diag_ca_match {
    DIAG_CA_NO_NAMES = 0, /* the server named no CA: nothing to compare */
    DIAG_CA_SENT,         /* a certificate we send is named, or issued by a named CA */
    DIAG_CA_NEEDS_CHAIN,  /* reachable only through a CA certificate we do not send, or
                             a leaf sent alone whose issuer is neither named nor known */
    DIAG_CA_NOT_ACCEPTED, /* no certificate of ours, sent or known, leads to a named CA */
};

/* The stable name of a CA match ("no_names", "chains", "needs_chain", "not_accepted"). */
const char *diag_ca_match_code(enum diag_ca_match m);

/*
 * Compare the chain we send (`sent`, leaf first) with the CA names a server
 * accepts (`names`, may be NULL or empty).  `known` (may be NULL) holds other
 * CA certificates we know (--cacert) that the walk up from the last
 * certificate sent may use: reaching a name only through them is
 * DIAG_CA_NEEDS_CHAIN, and *missing (when not NULL) is then the first such
 * certificate (borrowed from `known`).  A leaf sent alone, not self-issued,
 * whose issuer is neither named nor in `known` is DIAG_CA_NEEDS_CHAIN with
 * *missing NULL: the likely cause is a leaf-only file.  *matched (when not NULL) is the
 * accepted name reached (borrowed from `names`), or NULL.
 */
enum diag_ca_match diag_ca_match(STACK_OF(X509) * sent, const STACK_OF(X509_NAME) * names,
                                 STACK_OF(X509) * known, const X509_NAME **matched, X509 **missing);

/* What we know when a server's alert arrives, to read it in context. */
struct diag_alert_ctx {
    bool requested;              /* the server asked for a client certificate */
    bool sent;                   /* we sent one */
    enum diag_client client;     /* our leaf's own fitness */
    enum diag_ca_match ca_match; /* our chain against the CA names asked for */
    bool chain_current;          /* every certificate we sent is within its validity now */
    bool http_page;              /* the refusal came as an HTTP error page (nginx's 400), which
                                    names no check, read as a bad_certificate alert */
    const char *serial;          /* our leaf's serial, for the renewal command; may be NULL */
};

/* A TLS alert read in context: what it most likely means, and the fix. */
struct diag_reading {
    const char *code; /* stable: "no_client_cert", "server_lacks_intermediate", ... */
    char meaning[320];
    char fix[320];
};

/*
 * The TLS name of a SignatureScheme code (RFC 8446 4.2.3: "ecdsa_secp256r1_sha256",
 * "rsa_pss_rsae_sha256", ...), or "0x...." written into buf for a code without one.
 */
const char *diag_sigalg_name(unsigned code, char *buf, size_t len);

/*
 * Whether `key` can sign with one of the SignatureSchemes a server accepts
 * for client certificates (codes[0..n)); true when n is 0 (no list sent).
 * An EC key needs the scheme of its own curve in TLS 1.3 (RFC 8446 4.2.3).
 */
bool diag_key_fits_sigalgs(const EVP_PKEY *key, const unsigned *codes, size_t n);

/* The name of a TLS AlertDescription ("unknown CA", "certificate required", ...). */
const char *diag_alert_name(int alert);

/*
 * Read `alert` (the TLS AlertDescription a server sent, RFC 8446 6.2) with
 * what we know.  Always fills *out; an alert this function does not know is
 * named and explained generically.
 */
void diag_alert_read(int alert, const struct diag_alert_ctx *ctx, struct diag_reading *out);

#endif
