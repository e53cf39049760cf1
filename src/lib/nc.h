/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nc.h - duet's own checks of names and name constraints on a chain that
 * OpenSSL has accepted (RFC 5280 4.2.1.6, 4.2.1.10, 6.1.3 (b) and (c)).
 *
 * OpenSSL checks every subject and subjectAltName against the constraints of
 * the CAs above it, but reads a wildcard DNS name as a literal string, keeps
 * a nameConstraints extension of an end-entity certificate or one without
 * subtrees, takes a DNS constraint with a leading period, and accepts any
 * byte string as a dNSName.  nc_check_chain() refuses those; the rest of the
 * name-constraint processing stays OpenSSL's.
 */
#ifndef DUET_LIB_NC_H
#define DUET_LIB_NC_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/verify.h"

/*
 * Whether `name` (len bytes, not NUL-terminated) is a host name in the
 * preferred name syntax (RFC 1034 3.5 as amended by RFC 1123 2.1): labels of
 * 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen,
 * 253 bytes at most, no trailing dot.  With `wildcard`, a left-most label of
 * exactly "*" is allowed too.  When not, and `why` is not NULL, writes what
 * is wrong with it.
 */
bool nc_dns_name_valid(const char *name, size_t len, bool wildcard, char *why, size_t whylen);

/*
 * Whether DNS name `name` lies in the subtree of DNS constraint `base`
 * (RFC 5280 4.2.1.10: equal to it, or it with labels added on the left;
 * compared without regard to case).  An empty base holds every name.
 */
bool nc_dns_in_subtree(const char *name, size_t len, const char *base, size_t blen);

/*
 * Whether some name a wildcard DNS name `*.rest` stands for (`rest` with one
 * label added on the left) lies in the subtree of `base`.  `rest` and `rlen`
 * exclude the "*." prefix.
 */
bool nc_wildcard_meets(const char *rest, size_t rlen, const char *base, size_t blen);

/*
 * Whether every name the wildcard `*.rest` stands for lies in the subtree of
 * `base`.
 */
bool nc_wildcard_within(const char *rest, size_t rlen, const char *base, size_t blen);

/*
 * The checks of this module on a chain OpenSSL accepted (leaf first, trust
 * anchor last).  On failure returns -1 with one sentence naming the
 * certificate, the name and the constraint, the category in *fail
 * (VERIFY_MALFORMED or VERIFY_NAME_CONSTRAINTS), the X509_V_ERR_* code in
 * *code and the chain index of the certificate in *depth.  Returns 0 when
 * the chain passes, -1 with DUET_ERR_NOMEM when memory ran out.
 */
int nc_check_chain(STACK_OF(X509) *chain, enum verify_fail *fail, int *code, int *depth,
                   struct duet_err *err) MUST_CHECK;

#endif
