/* SPDX-License-Identifier: Apache-2.0 */
/*
 * identity.h - the identity a verified certificate yields (DESIGN.md,
 * "Identity"): subject, every SAN, serial, SHA-256 fingerprint, issuer,
 * validity and the canonical name used by policy and logs.
 */
#ifndef DUET_LIB_IDENTITY_H
#define DUET_LIB_IDENTITY_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/err.h"

struct identity_san {
    enum duet_san_type type;
    char *value; /* DNS name, IP address text, URI or email address */
};

struct duet_identity {
    char *name;        /* canonical name */
    char *subject;     /* RFC 4514 */
    char *issuer;      /* RFC 4514 */
    char *cn;          /* first subject commonName, or NULL */
    char *serial;      /* colon hex */
    char *fingerprint; /* SHA-256 of the DER, colon hex */
    int64_t not_before;
    int64_t not_after;
    size_t nsans;
    struct identity_san *sans;
    X509 *cert; /* a reference to the certificate it was made from */
    char *xfcc; /* its X-Forwarded-Client-Cert element when made ahead (shared identities), or NULL */
    atomic_int refs;
};

/*
 * Build the identity of a certificate.  SANs of other types (directory
 * names, otherName) are not part of the identity.  A DNS, URI or email SAN
 * with an embedded NUL is refused.  *out is owned by the caller.
 */
int identity_from_x509(X509 *cert, struct duet_identity **out, struct duet_err *err) MUST_CHECK;
/*
 * Drop a reference to an identity, freeing it with the last one; NULL is
 * fine.  An identity is immutable once shared: identity_up_ref() gives another
 * holder (a connection, the verified-chain cache) its own reference.
 */
void identity_free(struct duet_identity *id);
struct duet_identity *identity_up_ref(struct duet_identity *id);
/* The short type tag of a SAN: "DNS", "IP", "URI", "email". */
const char *identity_san_tag(enum duet_san_type type);

#endif
