/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.h - one-time enrollment tokens (DESIGN.md "Lifecycle"): an operator
 * binds a name, a profile, SANs and inventory fields to a token; a host that
 * holds the token sends a CSR for its own key and gets a certificate of
 * exactly that binding, once, before the token expires.
 *
 * A token is "duet1_" followed by 32 random bytes (RAND_priv_bytes) in
 * base64url without padding (43 characters).  The inventory keeps only its
 * SHA-256, so a copy of inventory.db does not hold usable tokens, and a
 * presented token is found by its hash (no comparison of secrets to time).
 * No message or log written here ever contains a token's text.
 */
#ifndef DUET_CA_TOKEN_H
#define DUET_CA_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/ca.h"
#include "lib/err.h"
#include "store/store.h"

#define CA_TOKEN_PREFIX "duet1_"
/* Length of a token's text: the prefix and 43 base64url characters. */
#define CA_TOKEN_LEN (sizeof(CA_TOKEN_PREFIX) - 1 + 43)
#define CA_TOKEN_DEFAULT_TTL ((int64_t)15 * 60)
#define CA_TOKEN_MAX_TTL ((int64_t)7 * 24 * 3600)

/* What a token binds; strings borrowed for the call. */
struct ca_token_opts {
    const char *name;          /* the certificate's CN */
    const char *profile;       /* a profile of ca.yaml (not issuing-ca) */
    const char *const *sans;   /* "dns:H", "ip:A", "uri:U", "email:E"; none: profile default */
    size_t nsans;
    const char *owner;         /* inventory fields of the certificate, may be NULL */
    const char *location;
    int64_t ttl;               /* the token's lifetime; 0: 15 minutes; at most 7 days */
    const char *created_by;    /* who asks (a login name), may be NULL */
    int64_t now;               /* 0: now */
};

/*
 * Make a token.  Everything the certificate will hold is checked now, with
 * the checks issuance applies (the name as a CN, the profile, each SAN parsed
 * and the list checked by profile_check_names, a SPIFFE ID under the owner's
 * team for a team_from_owner profile, the issuing CA's name constraints), so a token never promises what the CA would refuse.  The SANs
 * bound are the normalised forms (no SAN given: ca_default_san()).  The row
 * is recorded in the inventory.  *token is the text (free it with
 * ca_token_text_free, which wipes it); *row, when row is not NULL, the
 * inventory row (store_token_free).
 */
int ca_token_create(struct ca *ca, const struct ca_token_opts *o, char **token,
                    struct store_token **row, struct duet_err *err) MUST_CHECK;

/* Wipe and free a token's text; NULL is fine. */
void ca_token_text_free(char *token);

/*
 * The inventory id of a token's text: its SHA-256 in lower-case hex, into
 * id[65].  Text that is not a well-formed token is refused (without quoting
 * it).
 */
int ca_token_id(const char *token, char id[65], struct duet_err *err) MUST_CHECK;

/*
 * Redeem a token with a CSR (`from` names the CSR in messages, e.g. its
 * file).  Refused, each with its own message and nothing recorded: a
 * malformed or unknown token, a token already used (with the date and the
 * serial it produced) or expired (with the date); a CSR whose signature does
 * not verify, that asks for a name the token does not bind, or for any
 * extension besides subjectAltName (basicConstraints, keyUsage,
 * extendedKeyUsage, nameConstraints...: named in the message).  The CSR's
 * subject is not used.  The certificate is built from the token's binding
 * and the profile only: the CN is the token's name, the SANs those the CSR
 * asks for (all of them bound) or, when it asks for none, every bound name;
 * the key is the CSR's.  Its validity is ttl seconds (0: the profile's
 * default_ttl; `duet ca serve` gives the profile's api_ttl), checked against
 * the profile's max_ttl: tokens bind no validity of their own.  The token is
 * marked used and the certificate recorded in one transaction: a refusal or
 * failure leaves the token unused (the host may retry until it expires), a
 * success leaves both recorded.
 * *cert belongs to the caller; *row, when row is not NULL, is the token as
 * used.
 */
int ca_token_redeem(struct ca *ca, const char *token, X509_REQ *req, const char *from, int64_t now,
                    int64_t ttl, X509 **cert, bool *clamped, struct store_token **row,
                    struct duet_err *err) MUST_CHECK;

#endif
