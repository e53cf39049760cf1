/* SPDX-License-Identifier: Apache-2.0 */
/*
 * team.h - the owner's team in the identity of a certificate.
 *
 * A profile with `team_from_owner` makes the owner given at issuance (--owner,
 * a token's owner, the row renewed) part of what the certificate says: an
 * organizationalUnit of the subject (`ou`), and/or the first segment of the
 * SPIFFE ID's path (`spiffe`: spiffe://<trust domain>/<team>/<name>).  Proxy
 * rules can then say `ou:payments` or `uri:spiffe://corp/payments/...` (a glob) of
 * certificates duet issued.  The team is checked as text before it goes
 * anywhere, and goes in as structures: an X509_NAME entry, a GENERAL_NAME.
 */
#ifndef DUET_CA_TEAM_H
#define DUET_CA_TEAM_H

#include <stdbool.h>

#include <openssl/x509v3.h>

#include "ca/profile.h"
#include "lib/err.h"

/* The longest team: an X.520 organizationalUnitName is at most 64 characters (RFC 5280 A.1). */
#define CA_TEAM_MAX 64

/*
 * Check a team's text: 1 to CA_TEAM_MAX characters, each a letter, a digit,
 * '.', '-' or '_' (a SPIFFE path segment, SPIFFE-ID 2.2, and plain text in a
 * subject), not "." or "..".  `field` names where it came from in the
 * message ("--owner"), which says what is wrong, where, and what is expected.
 */
int ca_team_check(const char *team, const char *field, struct duet_err *err) MUST_CHECK;

/*
 * What a profile's team_from_owner asks of a request: nothing when the
 * profile has none; else an owner (the message names the profile and the
 * flag), checked by ca_team_check.
 */
int ca_team_require(const struct ca_profile *p, const char *owner, const char *field,
                    struct duet_err *err) MUST_CHECK;

/*
 * Add the team to a subject as an organizationalUnitName entry, placed before
 * the commonName (O, OU, CN).  0, or -1 when OpenSSL refuses it.
 */
int ca_team_add_ou(X509_NAME *subject, const char *team, struct duet_err *err) MUST_CHECK;

/*
 * For a profile whose SPIFFE ID carries the team: every spiffe:// URI among
 * `names` must be spiffe://<trust_domain>/<team>/... (at least one segment
 * after the team), so that a holder cannot name itself into another team.
 */
int ca_team_check_names(const GENERAL_NAMES *names, const char *trust_domain, const char *team,
                        const char *profile, struct duet_err *err) MUST_CHECK;

#endif
