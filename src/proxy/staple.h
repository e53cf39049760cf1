/* SPDX-License-Identifier: Apache-2.0 */
/*
 * staple.h - OCSP stapling of the proxy's own certificate (--ocsp-staple):
 * the checks a response passes before it is stapled, the GET request that
 * asks for it (RFC 6960 appendix A.1), and the staple a listener's TLS
 * context hands to clients that send status_request.
 *
 * The fetcher (crlfetch.c) keeps the response in the cache directory, under
 * a name made from the responder's URL and the certificate file, and only
 * ever renames a response into place after staple_check() passed; the file
 * is watched like a CRL file, so a new response reaches new connections
 * through a reload (gen.c calls staple_load()).  A response that is not good
 * (revoked, unknown), not for this certificate, not signed by its issuer or
 * the issuer's delegated OCSP signer, not yet valid or past its nextUpdate
 * is never stapled: the client then gets no staple, and the log says why.
 */
#ifndef DUET_PROXY_STAPLE_H
#define DUET_PROXY_STAPLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/err.h"
#include "proxy/config.h"

/* Seconds a thisUpdate may be ahead of our clock (and a nextUpdate behind it is not allowed). */
#define STAPLE_CLOCK_SKEW 300

/* What a checked response says (staple_check). */
struct staple_facts {
    int status; /* V_OCSP_CERTSTATUS_GOOD, _REVOKED or _UNKNOWN */
    int64_t this_update;
    int64_t next_update;
    int64_t revoked_at; /* status revoked: when */
    int reason;         /* status revoked: the CRLReason code, -1 when none is given */
};

/*
 * Check an OCSP response (DER) for stapling with `leaf`, issued by `issuer`,
 * at `now`: responseStatus successful, a basic response whose signature
 * verifies with the key of the issuer or of a certificate the issuer signed
 * that has id-kp-OCSPSigning and is valid at now, a SingleResponse for the
 * leaf's CertID (SHA-1 or SHA-256 hashes), thisUpdate no more than
 * STAPLE_CLOCK_SKEW seconds ahead, a nextUpdate that has not passed, status
 * good.  Returns 0 when it may be stapled.  Otherwise -1, with code (a
 * metric label: not_ocsp, unsuccessful, bad_signature, unknown_signer,
 * wrong_certificate, not_yet_valid, expired, no_next_update, revoked,
 * unknown) and why (a sentence naming what was expected); out is filled as
 * far as the response was read (status and times for revoked and unknown).
 */
int staple_check(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
                 struct staple_facts *out, char *code, size_t clen, char *why, size_t wlen);

/*
 * The issuer of the first certificate of `chain` among the others (by name
 * and signature), else among `extra` (may be NULL).  Borrowed; NULL when
 * none is there.
 */
X509 *staple_find_issuer(STACK_OF(X509) * chain, STACK_OF(X509) * extra);

/*
 * The path of a GET request for the status of leaf (RFC 6960 appendix A.1):
 * base_path, a '/', then the DER OCSPRequest (SHA-1 CertID, no nonce: a
 * staple is shared by every client, and responders cache GET answers)
 * base64-encoded with '+', '/' and '=' percent-encoded.  False when buf is
 * too small or OpenSSL fails.
 */
bool staple_get_path(X509 *leaf, X509 *issuer, const char *base_path, char *buf, size_t len);

/*
 * The cache file of the staple of certificate file `cert` fetched from
 * `url`, in `dir`: like a CRL's (crlplan_cache_name) with ".ocsp" for
 * ".crl", the name made from both.  False when buf is too small.
 */
bool staple_cache_name(const char *dir, const char *url, const char *cert, char *buf, size_t len);

/*
 * The responder of a listener with --ocsp-staple: --ocsp-staple-url, else
 * the first http:// OCSP URL of the authorityInfoAccess of its --cert.
 * *url is the caller's.  Errors name the file and what is missing.
 */
int staple_listener_url(const struct listener_cfg *l, char **url, struct duet_err *err) MUST_CHECK;

/* A listener's staple, loaded from its cache file when a generation is built. */
struct staple {
    unsigned char *der; /* NULL: nothing to staple */
    size_t len;
    int64_t this_update, next_update;
    const char *listener;
    atomic_bool expired_logged;
};

/*
 * The staple of listener l (server role with --ocsp-staple): its cache file,
 * checked with staple_check() against the certificate of --cert now; a
 * missing file is no staple, a refused one is logged (ocsp_staple_failed,
 * source "cache") and not stapled.  Then the status callback is set on ctx.
 * Fails only when --cert has no issuer to check a response with.
 */
int staple_attach(const struct listener_cfg *l, SSL_CTX *ctx, struct staple **out,
                  struct duet_err *err) MUST_CHECK;

/* Free a staple (NULL is fine). */
void staple_free(struct staple *st);

#endif
