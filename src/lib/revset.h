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

#include "lib/err.h"

struct revset;
struct revcrl;

enum rev_status {
    REV_GOOD,              /* a current CRL of the issuer covers it and does not list it */
    REV_REVOKED,           /* listed: date and reason filled */
    REV_NO_CRL,            /* no CRL from this issuer (or none that covers this kind of certificate) */
    REV_CRL_EXPIRED,       /* the newest usable CRL is past its nextUpdate */
    REV_CRL_NOT_YET_VALID, /* the CRL's thisUpdate is in the future */
    REV_CRL_BAD_SIGNATURE, /* CRLs name the issuer, but none verifies with its key */
    REV_CRL_NO_CRL_SIGN,   /* the issuer's key usage does not allow signing CRLs */
};

struct rev_result {
    enum rev_status status;
    const struct revcrl *crl; /* the CRL concerned, when there is one */
    int64_t date;             /* REV_REVOKED: revocation date */
    int reason;               /* REV_REVOKED: CRLReason code, -1 when absent */
};

struct revset *revset_new(void);
void revset_free(struct revset *rs);

/*
 * Add the CRLs of a file (PEM with one or more "X509 CRL" blocks, or DER).
 * Each CRL is checked as it is read: structure, version, matching signature
 * algorithms, a strong signature digest, a nextUpdate, no delta or indirect
 * CRL, and no critical extension duet does not handle.  Errors name the file
 * and the CRL (by issuer) or the entry at fault.  On error nothing of the
 * file is added.
 */
int revset_add_file(struct revset *rs, const char *path, struct duet_err *err) MUST_CHECK;
/* The same for CRLs in memory; `label` names them in errors. */
int revset_add_mem(struct revset *rs, const char *label, const uint8_t *data, size_t len,
                   struct duet_err *err) MUST_CHECK;

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

/*
 * Revocation status of `cert`, issued by `issuer`, at time `now`.  Among the
 * CRLs naming the issuer whose signature verifies with the issuer's key and
 * whose scope covers the certificate, the newest is used.  With `issuer` NULL
 * (a resumed session, where only the leaf is kept) CRLs are matched by name
 * alone and only a listing counts: the result is REV_REVOKED or REV_GOOD.
 * With accept_expired, an expired CRL still revokes but does not fail.
 */
void revset_check(const struct revset *rs, X509 *cert, X509 *issuer, int64_t now,
                  bool accept_expired, struct rev_result *out);

#endif
