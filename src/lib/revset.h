/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revset.h - revocation by CRL, from a compact set of revoked serials.
 *
 * A CRL is read once, off the serving path, by a DER walker that does not
 * build OpenSSL's parsed CRL objects (which cost hundreds of bytes per entry):
 * its structure, times and extensions are checked, and its entries become a
 * hash set of serial numbers with the revocation date and reason, about 35
 * bytes per entry.  The signature cannot always be checked at load (the
 * issuing CA's certificate usually arrives with the client's chain), so the
 * digest of the signed part is kept and the signature is verified with the
 * issuer's key the first time a chain needs the CRL; the key that verified it
 * is remembered, so later handshakes only compare keys.
 *
 * A revset is immutable once loaded apart from that memo, which is safe to
 * update from several threads.
 */
#ifndef DUET_LIB_REVSET_H
#define DUET_LIB_REVSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/err.h"

struct revset;
struct revcrl;

enum rev_status {
    REV_GOOD,              /* a current CRL of the issuer covers it and does not list it */
    REV_REVOKED,           /* listed: date and reason filled */
    REV_NO_CRL,            /* no CRL from this issuer */
    REV_CRL_EXPIRED,       /* the newest usable CRL is past its nextUpdate */
    REV_CRL_NOT_YET_VALID, /* the CRL's thisUpdate is in the future */
    REV_CRL_BAD_SIGNATURE, /* CRLs name the issuer, but none verifies with its key */
    REV_CRL_NO_CRL_SIGN,   /* the issuer's key usage does not allow signing CRLs */
    REV_CRL_OUT_OF_SCOPE,  /* CRLs of the issuer were given, but their scope excludes it */
};

/* Why a CRL of the certificate's issuer does not cover it (RFC 5280 6.3.3 (b)(2)). */
enum rev_scope {
    REV_SCOPE_OK,
    REV_SCOPE_USER_ONLY,   /* onlyContainsUserCerts, and the certificate is a CA's */
    REV_SCOPE_CA_ONLY,     /* onlyContainsCACerts, and the certificate is not a CA's */
    REV_SCOPE_DP_MISMATCH, /* its distributionPoint is none of the certificate's */
    REV_SCOPE_DP_NO_CDP,   /* it names a distributionPoint, the certificate has none */
};

struct rev_result {
    enum rev_status status;
    const struct revcrl *crl; /* the CRL concerned, when there is one */
    int64_t date;             /* REV_REVOKED: revocation date */
    int reason;               /* REV_REVOKED: CRLReason code, -1 when absent */
    enum rev_scope scope;     /* REV_CRL_OUT_OF_SCOPE: why the CRL does not cover it */
    /* REV_CRL_BAD_SIGNATURE, REV_CRL_NO_CRL_SIGN: why another signer was refused, or "" */
    char signer_why[768];
};

/*
 * Certificates other than the issuer's that may sign its CRLs (RFC 5280
 * 6.3.3 (f)): another key of the same CA (key rollover) or a CRL-signing
 * certificate of the same name, or the signer of an indirect CRL whose issuer
 * the certificate's cRLIssuer names (the name is revcrl_get0_issuer(crl)).
 * `find` is called only for a CRL that serves the certificate, covers it and
 * does not verify with the issuer's own key (or when that key may not sign
 * CRLs, or the CRL is an indirect one of another issuer); it returns true
 * when a certificate it accepts as the CRL's signer verifies the signature
 * (revcrl_verify()), else false with the reason it refused a candidate in
 * `why` (left empty when there was none).
 */
struct rev_signers {
    bool (*find)(void *arg, const struct revcrl *crl, X509 *cert, X509 *issuer, char *why,
                 size_t len);
    void *arg;
};

struct revset *revset_new(void);
void revset_free(struct revset *rs);

/*
 * Add the CRLs of a file (PEM with one or more "X509 CRL" blocks, or DER).
 * Each CRL is checked as it is read: structure, version, matching signature
 * algorithms, a strong signature digest, a nextUpdate, certificateIssuer
 * entries (critical) only in an indirect CRL (RFC 5280 5.2.5, 5.3.3), a
 * delta CRL only with a critical deltaCRLIndicator and a cRLNumber (RFC 5280
 * 5.2.4), a non-critical cRLNumber (RFC 5280 5.2.3), an issuingDistributionPoint
 * that is not empty and asserts at most one "only contains" (5.2.5), and no
 * critical extension duet does not handle.  Errors name the file
 * and the CRL (by issuer) or the entry at fault.  On error nothing of the
 * file is added.
 *
 * One file is read at a time in the process (the others wait): reading a
 * large CRL costs several times its size while it runs (the mapped file, its
 * DER, the set being built), so a CRL fetched by URL being checked on one
 * thread while a reload reads the previous one on another would add up.
 */
int revset_add_file(struct revset *rs, const char *path, struct duet_err *err) MUST_CHECK;
/* The same for CRLs in memory; `label` names them in errors. */
int revset_add_mem(struct revset *rs, const char *label, const uint8_t *data, size_t len,
                   struct duet_err *err) MUST_CHECK;

/*
 * Accept CRLs signed with DSA from now on (`--insecure-crl-signature dsa`);
 * by default revset_add_file() refuses them, naming the file, the algorithm
 * and that flag.  The CRL signer's own DSA key is then accepted too, for
 * signing CRLs only (revset_allows_crl_dsa(), verify.c).
 */
void revset_insecure_crl_dsa(struct revset *rs);
bool revset_allows_crl_dsa(const struct revset *rs);

/* Number of CRLs held. */
size_t revset_count(const struct revset *rs);
/* The i-th CRL (0 <= i < revset_count). */
const struct revcrl *revset_get0(const struct revset *rs, size_t i);
/* Bytes of memory held by the set (tables, serials, names). */
size_t revset_bytes(const struct revset *rs);

const X509_NAME *revcrl_get0_issuer(const struct revcrl *c);
int64_t revcrl_this_update(const struct revcrl *c);
int64_t revcrl_next_update(const struct revcrl *c);
size_t revcrl_entries(const struct revcrl *c);
/* The file the CRL came from. */
const char *revcrl_source(const struct revcrl *c);
/* Its cRLNumber (RFC 5280 5.2.3), or NULL when it has none; borrowed. */
const ASN1_INTEGER *revcrl_get0_number(const struct revcrl *c);
/* Whether it is a delta CRL (RFC 5280 5.2.4), which only counts beside its complete CRL. */
bool revcrl_is_delta(const struct revcrl *c);
/*
 * The names of the CRL's issuingDistributionPoint (a relative name already
 * resolved against the CRL's issuer), or NULL when it names none.
 */
const GENERAL_NAMES *revcrl_idp_names(const struct revcrl *c);
/*
 * Whether the CRL's signature verifies with the key of `signer`; a key that
 * verified it is remembered, so asking again costs a comparison.
 */
bool revcrl_verify(const struct revcrl *c, X509 *signer);

/*
 * Revocation status of `cert`, issued by `issuer`, at time `now`.  Among the
 * CRLs naming the issuer whose signature verifies with the issuer's key and
 * whose scope covers the certificate, the newest is used; an indirect CRL of
 * another issuer serves it when the certificate names that issuer as the
 * cRLIssuer of a distribution point (RFC 5280 6.3.3 (b)(1)), and in an
 * indirect CRL an entry lists it only when the entry's certificate issuer
 * (5.3.3) is its issuer.  With `issuer` NULL
 * (a resumed session, where only the leaf is kept) CRLs are matched by name
 * alone and only a listing counts: the result is REV_REVOKED, or REV_GOOD (or
 * a status saying no CRL covers it).  With accept_expired, an expired CRL
 * still revokes but does not fail.  A delta CRL never counts alone: it is
 * applied over the complete CRL chosen (RFC 5280 5.2.4, 6.3.3 (c)) when it
 * has the same issuer, scope and authority key, its BaseCRLNumber is at most
 * the complete CRL's number and its own number is higher; the newest such
 * delta wins.  A certificate it lists is revoked; its removeFromCRL releases
 * only a certificateHold of the complete CRL.
 */
void revset_check(const struct revset *rs, X509 *cert, X509 *issuer, int64_t now,
                  bool accept_expired, struct rev_result *out);
/*
 * revset_check(), where a CRL that the issuer's key does not verify may still
 * count when `alt` (may be NULL) finds another signer it accepts.  A CRL
 * whose issuingDistributionPoint excludes the certificate (RFC 5280 6.3.3
 * (b)(2)) is never used, not even to revoke.
 */
void revset_check_ex(const struct revset *rs, X509 *cert, X509 *issuer, int64_t now,
                     bool accept_expired, const struct rev_signers *alt, struct rev_result *out);

#endif
