/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp.h - the CA's OCSP responder (RFC 6960), without sockets: a delegated
 * signer the CA issues and renews itself, and answers computed from the
 * inventory at the moment they are asked for, so that a revocation shows in
 * the very next response; `duet ca serve` serves a signed answer again while
 * the inventory and the signer are unchanged (ca_ocsp_respond_cached).  `duet
 * ocsp respond` and `duet ca serve` call these functions; the transport (HTTP
 * GET/POST) is theirs.
 */
#ifndef DUET_CA_OCSP_H
#define DUET_CA_OCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/ocspcache.h"
#include "lib/err.h"

/* Default life of the delegated signer's certificate; renewed with a third of it left. */
#define CA_OCSP_SIGNER_TTL (7 * 86400LL)
/* Shortest life a signer is issued for. */
#define CA_OCSP_SIGNER_MIN_TTL 3600LL
/* Default nextUpdate - thisUpdate of an answer. */
#define CA_OCSP_VALIDITY 3600LL
/* Largest DER OCSPRequest read; larger ones get malformedRequest without being decoded. */
#define CA_OCSP_MAX_REQUEST (64u * 1024u)
/* Most certificates asked about in one request; more get malformedRequest. */
#define CA_OCSP_MAX_CERTS 32
/* Longest nonce accepted (RFC 8954 2.1); a longer one gets malformedRequest. */
#define CA_OCSP_MAX_NONCE 32

/* The delegated signer: its certificate and private key. */
struct ca_ocsp_signer;

/*
 * Make *signer a delegated OCSP signer of the CA that is usable at `now`:
 * issued by the issuing CA, recorded in the inventory under the profile
 * CA_PROFILE_OCSP_SIGNER and not revoked there, its key matching, and more
 * than a third of its life left.  A *signer that is NULL is first looked for
 * in DIR/ocsp-signer.crt and DIR/ocsp-signer.key; a signer that fails any of
 * these checks is replaced by a new one: a new key of ca.yaml's key_type,
 * valid ttl seconds (0: CA_OCSP_SIGNER_TTL; less than CA_OCSP_SIGNER_MIN_TTL
 * is refused), recorded as renewing the one replaced, its key and
 * certificate then written to the CA directory (the key encrypted with the
 * CA passphrase, both atomically).  *issued (may be NULL) tells whether a new
 * certificate was issued.  Needs a CA opened with its passphrase.  On
 * failure *signer is left as it was.
 */
int ca_ocsp_signer_ensure(struct ca *ca, int64_t now, int64_t ttl, struct ca_ocsp_signer **signer,
                          bool *issued, struct duet_err *err) MUST_CHECK;
void ca_ocsp_signer_free(struct ca_ocsp_signer *s);
/* The signer's certificate, borrowed from s. */
X509 *ca_ocsp_signer_cert(const struct ca_ocsp_signer *s);

/* Where an answer of ca_ocsp_respond_cached() came from (ca_ocsp_summary.cache). */
#define CA_OCSP_CACHE_HIT "hit"       /* from the cache: signed before, nothing changed since */
#define CA_OCSP_CACHE_MISS "miss"     /* signed now, and kept for the next requests */
#define CA_OCSP_CACHE_BYPASS "bypass" /* signed now, never kept: a nonce, several CertIDs... */

/* What an answer said, for the caller's output, logs and metrics. */
struct ca_ocsp_summary {
    int status; /* OCSPResponseStatus: OCSP_RESPONSE_STATUS_* */
    size_t good, revoked, unknown;
    bool nonce;          /* the request's nonce was echoed */
    int64_t this_update; /* of a successful answer (when it was signed) */
    int64_t next_update;
    const char *cache; /* CA_OCSP_CACHE_*; NULL without a cache */
};

/*
 * Answer one DER OCSPRequest (RFC 6960 4.1) of len bytes at `now`, from the
 * inventory, signed by `signer` (responderID byKey, its certificate and the
 * issuing CA's included).  Each CertID (hashed with SHA-1, SHA-256, SHA-384
 * or SHA-512) is answered with the same CertID: `unknown` when it names
 * another issuer or a serial the issuing CA never issued, `revoked` with the
 * time and reason (none for unspecified) from the inventory, else `good`;
 * thisUpdate now, nextUpdate now + validity (0: CA_OCSP_VALIDITY), never past
 * the signer's notAfter.  A nonce is echoed.  The response status is
 * malformedRequest for input that does not decode (with trailing bytes
 * included), is larger than CA_OCSP_MAX_REQUEST, asks about no certificate
 * or more than CA_OCSP_MAX_CERTS, has a CertID that does not encode again
 * (so cannot be echoed), or carries more than one nonce or one
 * outside 1..CA_OCSP_MAX_NONCE octets; unauthorized when no CertID names the
 * issuing CA (RFC 6960 2.3, RFC 5019 2.2.3); internalError when the
 * inventory cannot be read or the signer is not valid at now.  A request's
 * signature is not checked: the answers are public.
 *
 * Returns 0 with *resp (malloc'd, the caller frees it) holding a DER
 * OCSPResponse of any status, *sum filled, and err saying why when the status
 * is not successful; -1 only when no response could be encoded at all.
 */
int ca_ocsp_respond(struct ca *ca, const struct ca_ocsp_signer *signer, const uint8_t *req,
                    size_t len, int64_t now, int64_t validity, uint8_t **resp, size_t *resp_len,
                    struct ca_ocsp_summary *sum, struct duet_err *err) MUST_CHECK;

/*
 * ca_ocsp_respond(), with answers reused from `cache` (may be NULL: none)
 * under the rule of docs/ca-server.md.  Only a request asking about exactly
 * one CertID, without a nonce, answered successfully (good, revoked, or
 * unknown for the issuing CA), is looked up and kept, under the DER of its
 * CertID.  Before each lookup the cache's epoch is set to the inventory's
 * generation (store_generation: any write to the inventory, by this process
 * or another, forgets every answer; read once for all the lookups of a batch
 * the cache has open, ca_ocsp_cache_batch_open) and the signer's serial (a
 * new signer forgets them too).  A kept answer is the same bytes again, so its
 * thisUpdate is when it was signed: it is served for less than the cache's
 * max age after that, never at or past its nextUpdate.  A request with a
 * nonce is always signed now and never kept.  One cache serves one signer
 * chain of one CA and one validity; sum->cache says hit, miss or bypass.
 */
int ca_ocsp_respond_cached(struct ca *ca, const struct ca_ocsp_signer *signer,
                           struct ca_ocsp_cache *cache, const uint8_t *req, size_t len, int64_t now,
                           int64_t validity, uint8_t **resp, size_t *resp_len,
                           struct ca_ocsp_summary *sum, struct duet_err *err) MUST_CHECK;

/* RFC 6960 4.2.1 name of an OCSPResponseStatus ("malformedRequest"), or "unknown". */
const char *ca_ocsp_status_name(int status);

#endif
