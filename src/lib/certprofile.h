/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certprofile.h - the parts of the RFC 5280 certificate profile that OpenSSL's
 * strict mode (X509_V_FLAG_X509_STRICT) leaves unchecked, checked by duet on
 * a chain OpenSSL accepted: the serial number (4.1.2.2), the criticality of
 * subjectAltName beside a non-empty subject (4.2.1.6), an empty
 * authorityInfoAccess (4.2.2.1), an authorityKeyIdentifier without
 * keyIdentifier or, on a certificate that is not self-signed, none at all
 * (4.2.1.1), and a known extension whose value is not DER of its syntax (4.2).
 */
#ifndef DUET_LIB_CERTPROFILE_H
#define DUET_LIB_CERTPROFILE_H

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/verify.h"

/* Octets of a serial number's DER contents RFC 5280 4.1.2.2 allows at most. */
#define CERTPROFILE_MAX_SERIAL_OCTETS 20

/*
 * Check one certificate at chain index `i` of a chain of `n` (the trust
 * anchor is index n - 1; its serial number is not checked, see the file
 * comment of certprofile.c).  On failure returns -1 with one sentence naming
 * the certificate and the field, and *fail = VERIFY_MALFORMED.
 */
int certprofile_check(X509 *cert, int i, int n, enum verify_fail *fail,
                      struct duet_err *err) MUST_CHECK;

/* certprofile_check() on every certificate of a chain, leaf first; *depth: the index. */
int certprofile_check_chain(STACK_OF(X509) *chain, enum verify_fail *fail, int *depth,
                            struct duet_err *err) MUST_CHECK;

#endif
