/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify.h - the one certificate verification path of duet.
 *
 * The proxy's handshake callback, the tunnel, `duet cert verify` and the
 * agent all verify through verify_chain()/verify_store_ctx(): chain building
 * from trust anchors and untrusted certificates (and, when that path fails,
 * the other candidate paths, bounded: pathbuild.h), purpose, name, time,
 * revocation by CRL, strict X.509 checks, depth, basic constraints, path
 * length, name constraints, policy, weak keys and weak signatures.  A failure
 * is one sentence naming the certificate (subject and serial) and the check,
 * and a category (enum verify_fail) for machines: metrics, log reason codes
 * and the throttle decide on the category, never on the words, so a sentence
 * can be reworded without moving a metric.
 */
#ifndef DUET_LIB_VERIFY_H
#define DUET_LIB_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/revset.h"

#define VERIFY_DEFAULT_MAX_DEPTH 8

/*
 * The category of a verification's first failure: one per distinct cause an
 * operator or a metric tells apart.  Each has a stable machine name
 * (verify_fail_code()); values may be reordered, names never change.
 */
enum verify_fail {
    VERIFY_OK = 0,             /* "ok": the chain verified */
    VERIFY_ERROR,              /* "error": verification could not run (input, memory) */
    VERIFY_EXPIRED,            /* "expired": a certificate is past its notAfter */
    VERIFY_NOT_YET_VALID,      /* "not_yet_valid": a certificate is before its notBefore */
    VERIFY_UNKNOWN_CA,         /* "unknown_ca": no path to a trusted certificate */
    VERIFY_ANCHOR_REJECTED,    /* "anchor_rejected": the trust anchor's settings refuse it */
    VERIFY_BAD_SIGNATURE,      /* "bad_signature": a signature does not verify */
    VERIFY_NOT_CA,             /* "not_ca": an issuer is not a CA or may not sign certificates */
    VERIFY_PATH_LENGTH,        /* "path_length": a pathLenConstraint is exceeded */
    VERIFY_TOO_DEEP,           /* "too_deep": more intermediates than the maximum depth */
    VERIFY_BAD_EKU,            /* "purpose": not valid for the purpose (extended key usage) */
    VERIFY_LEAF_IS_CA,         /* "leaf_is_ca": a CA certificate presented for TLS */
    VERIFY_NAME_MISMATCH,      /* "name": not valid for the name asked for */
    VERIFY_NAME_CONSTRAINTS,   /* "name_constraints": a name outside an issuer's constraints */
    VERIFY_CERT_POLICY,        /* "cert_policy": certificate policy processing failed */
    VERIFY_CRITICAL_EXTENSION, /* "critical_extension": an unhandled critical extension */
    VERIFY_MALFORMED,          /* "malformed": not a well-formed RFC 5280 certificate */
    VERIFY_WEAK_KEY,           /* "weak_key": a key below duet's minimum */
    VERIFY_WEAK_SIGNATURE,     /* "weak_signature": SHA-1, MD5 or an unsupported algorithm */
    VERIFY_REVOKED,            /* "revoked": listed on its issuer's CRL */
    VERIFY_CRL_MISSING,        /* "crl_missing": no CRL of an issuer among those given */
    VERIFY_CRL_STALE,          /* "crl_stale": the issuer's CRL is past its nextUpdate */
    VERIFY_CRL_NOT_YET_VALID,  /* "crl_not_yet_valid": the CRL is before its thisUpdate */
    VERIFY_CRL_BAD_SIGNATURE,  /* "crl_bad_signature": the CRL is not signed by its issuer */
    VERIFY_CRL_NO_CRL_SIGN,    /* "crl_no_crl_sign": the issuer's key may not sign CRLs */
    VERIFY_OTHER,              /* "other": any other check of OpenSSL's */
    VERIFY_FAIL_COUNT
};

/* The stable machine name of a category ("expired", "unknown_ca", ...); "other" if unknown. */
const char *verify_fail_code(enum verify_fail f);
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
    /*
     * The leaf past its notAfter is not a failure (X509_V_ERR_CERT_HAS_EXPIRED
     * at depth 0 only; every other check, the issuers' validity included,
     * still applies).  For `duet ca serve`, whose renewal endpoint decides on
     * an expired certificate from its inventory row (a profile's renew_grace).
     */
    bool accept_expired_leaf;
    /*
     * RFC 5280 6.1.1 (c), (e), (f), (g): the inputs of certificate policy
     * processing.  The zero value is the RFC's default: policies NULL or empty
     * is user-initial-policy-set = {anyPolicy}; initial-explicit-policy,
     * initial-policy-mapping-inhibit and initial-any-policy-inhibit false.
     */
    STACK_OF(ASN1_OBJECT) *policies; /* user-initial-policy-set; borrowed */
    bool require_explicit_policy;    /* initial-explicit-policy */
    bool inhibit_policy_mapping;     /* initial-policy-mapping-inhibit */
    bool inhibit_any_policy;         /* initial-any-policy-inhibit */
    /*
     * When not NULL, a successful verify_chain()/verify_chain_ex() stores here
     * the valid policy set (verify_valid_policies()); the caller frees it with
     * verify_policies_free().  Set to NULL on failure.
     */
    STACK_OF(ASN1_OBJECT) **valid_policies;
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
 * verify_chain(), and the category of the outcome in *fail when fail is not
 * NULL: VERIFY_OK on success, VERIFY_ERROR when verification could not run
 * (err->kind other than DUET_ERR_INVALID), else the cause of the failure.
 */
int verify_chain_ex(const struct verify_params *p, X509 *leaf, STACK_OF(X509) *extra,
                    STACK_OF(X509) **chain_out, enum verify_fail *fail,
                    struct duet_err *err) MUST_CHECK;

/*
 * Verify with a store context the caller initialised (the TLS handshake
 * hands one over with the peer's chain).  Applies the parameters other than
 * store and untrusted, runs the verification and the checks OpenSSL does not
 * do, and sets the context's error on failure.  When the path OpenSSL built
 * fails and another one validates (path building, see verify.c), the
 * context's verified chain is that path and its error X509_V_OK, as libssl
 * reads them after its verification callback.  Returns 0 or -1 as above,
 * with the category in *fail (when not NULL) as verify_chain_ex() does.
 */
int verify_store_ctx(X509_STORE_CTX *ctx, const struct verify_params *p, enum verify_fail *fail,
                     struct duet_err *err) MUST_CHECK;

/*
 * Revocation of a verified chain (leaf first, trust anchor last): every
 * certificate below the anchor, or the leaf alone with DUET_CRL_LEAF, must be
 * covered by a current CRL of its issuer and not be listed.  A CRL the
 * issuer's key does not verify may be signed by another certificate of the
 * same CA among the chain, p->untrusted and p->store (RFC 5280 6.3.3 (f)),
 * accepted only when it validates to the chain's trust anchor.  The anchor is
 * trusted by configuration and not checked.  On failure returns -1 with the
 * reason; when not NULL, *code is the X509_V_ERR_* code, *depth the chain
 * index of the certificate concerned and *fail the category (VERIFY_REVOKED
 * or a VERIFY_CRL_*).
 */
int verify_revocation(STACK_OF(X509) *chain, const struct verify_params *p, int64_t now,
                      int *code, int *depth, enum verify_fail *fail,
                      struct duet_err *err) MUST_CHECK;

/*
 * The valid policy set of a verification that succeeded on ctx (RFC 5280
 * 6.1.5 (g), 6.1.6): the policies of the user-constrained policy set, in the
 * trust anchor's policy domain (before any policy mapping), without
 * duplicates; {anyPolicy} when the chain is valid for any policy; empty when
 * the valid_policy_tree is NULL (some certificate names no policy).  Stores a
 * new stack in *out (the caller frees it with verify_policies_free()).
 */
int verify_valid_policies(X509_STORE_CTX *ctx, STACK_OF(ASN1_OBJECT) **out,
                          struct duet_err *err) MUST_CHECK;

/* Free a stack of policy OIDs and its objects; NULL is fine. */
void verify_policies_free(STACK_OF(ASN1_OBJECT) *policies);

/* Check that a name given for verification is a usable DNS name or IP literal. */
bool verify_name_valid(const char *name);

#endif
