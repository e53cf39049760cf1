/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify.h - the one certificate verification path of duet.
 *
 * The proxy's handshake callback, the tunnel, `duet cert verify` and the
 * agent all verify through verify_chain()/verify_store_ctx(): chain building
 * from trust anchors and untrusted certificates, purpose, name, time,
 * revocation by CRL, strict X.509 checks, depth, basic constraints, path
 * length, name constraints, policy, weak keys and weak signatures.  A failure
 * is one sentence naming the certificate (subject and serial) and the check.
 */
#ifndef DUET_LIB_VERIFY_H
#define DUET_LIB_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/revset.h"

#define VERIFY_DEFAULT_MAX_DEPTH 8
/* Smallest RSA modulus accepted anywhere in a chain (NIST SP 800-131A). */
#define VERIFY_MIN_RSA_BITS 2048

/* What to verify against; every pointer is borrowed for the call. */
struct verify_params {
    X509_STORE *store;         /* trust anchors; required */
    STACK_OF(X509) *untrusted; /* candidate intermediates; may be NULL */
    const struct revset *revs; /* CRLs; NULL or empty disables revocation checks */
    enum duet_purpose purpose; /* extended key usage the leaf must carry */
    const char *name;          /* DNS name or IP literal the leaf must match; may be NULL */
    bool use_time;             /* verify at `time` instead of now */
    int64_t time;
    bool max_depth_set;        /* false: VERIFY_DEFAULT_MAX_DEPTH */
    int max_depth;             /* CA certificates allowed between leaf and anchor */
    enum duet_crl_scope crl_scope;
    bool accept_expired_crl;   /* an expired CRL still revokes but does not fail (warn mode) */
};

/*
 * Verify `leaf` for the parameters.  `extra` (may be NULL) adds untrusted
 * certificates, typically those presented with the leaf.  On success returns
 * 0 and, when chain_out is not NULL, stores the verified chain (leaf first,
 * trust anchor last; the caller frees it with OSSL_STACK_OF_X509_free).  On
 * failure returns -1 with err->kind DUET_ERR_INVALID and the reason, or
 * another kind when verification could not run.
 */
int verify_chain(const struct verify_params *p, X509 *leaf, STACK_OF(X509) *extra,
                 STACK_OF(X509) **chain_out, struct duet_err *err) MUST_CHECK;

/*
 * Verify with a store context the caller initialised (the TLS handshake
 * hands one over with the peer's chain).  Applies the parameters other than
 * store and untrusted, runs the verification and the checks OpenSSL does not
 * do, and sets the context's error on failure.  Returns 0 or -1 as above.
 */
int verify_store_ctx(X509_STORE_CTX *ctx, const struct verify_params *p,
                     struct duet_err *err) MUST_CHECK;

/*
 * Revocation of a verified chain (leaf first, trust anchor last): every
 * certificate below the anchor, or the leaf alone with DUET_CRL_LEAF, must be
 * covered by a current CRL of its issuer and not be listed.  The anchor is
 * trusted by configuration and not checked.  On failure returns -1 with the
 * reason and, when code is not NULL, the X509_V_ERR_* code and the chain
 * index of the certificate concerned.
 */
int verify_revocation(STACK_OF(X509) *chain, const struct verify_params *p, int64_t now,
                      int *code, int *depth, struct duet_err *err) MUST_CHECK;

/* Check that a name given for verification is a usable DNS name or IP literal. */
bool verify_name_valid(const char *name);

#endif
