/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csrdrop.h - what a CSR asked for that the certificate signed for it does
 * not carry, so that `duet cert sign` can say so instead of dropping it
 * silently.
 *
 * The comparison is made against the certificate as signed, not against a
 * list of rules: a subject attribute, a subjectAltName or a requested
 * extension is reported when the certificate does not hold the same thing
 * (same type and value; for an extension the same criticality and DER
 * value).  Other CSR attributes (challengePassword, unstructuredName...) are
 * never used and always reported, by name only: a challenge password is a
 * secret.
 */
#ifndef DUET_CA_CSRDROP_H
#define DUET_CA_CSRDROP_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "lib/err.h"

enum ca_drop_kind { CA_DROP_SUBJECT, CA_DROP_SAN, CA_DROP_EXTENSION, CA_DROP_ATTRIBUTE };

struct ca_drop {
    enum ca_drop_kind kind;
    char *name;  /* "O", "DNS", "basicConstraints", an OID in dotted form... */
    char *value; /* the CSR's value as text, unescaped (the front end escapes); may be NULL */
    bool critical; /* extensions: the CSR marked it critical */
};

/* "subject", "san", "extension" or "attribute", for messages and JSON. */
const char *ca_drop_kind_name(enum ca_drop_kind k);

/* Why such a field is not in the certificate, one short clause. */
const char *ca_drop_reason(enum ca_drop_kind k);

/*
 * Compare a CSR with the certificate signed for it; *out receives a new array
 * of *n entries (NULL and 0 when nothing was dropped) for ca_drops_free.
 * Fails only when out of memory, or when the CSR's extensions cannot be
 * decoded (such a CSR was refused before signing).
 */
int ca_csr_drops(X509_REQ *req, X509 *cert, struct ca_drop **out, size_t *n,
                 struct duet_err *err) MUST_CHECK;
void ca_drops_free(struct ca_drop *d, size_t n);

#endif
