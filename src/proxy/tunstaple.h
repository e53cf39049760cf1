/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunstaple.h - `duet tunnel` and its server's OCSP staple: the tunnel asks
 * every server for one (status_request, unless --no-staple-check) and judges
 * what comes back before a byte of the local client's data leaves, with the
 * checks of staple_check() against the issuer found in the chain the tunnel
 * verified, never in what the server claims.
 *
 * The outcome, as curl --cert-status and Firefox decide it: a good staple
 * passes; a revoked one refuses the server; a staple that does not hold (not
 * OCSP, not signed by the issuer or its delegated OCSP signer, for another
 * certificate, expired, status unknown) refuses it too, because a sound
 * server does not send one (it is broken or someone is in the way); no
 * staple passes unless --require-staple.
 */
#ifndef DUET_PROXY_TUNSTAPLE_H
#define DUET_PROXY_TUNSTAPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

enum tunstaple_verdict {
    TUNSTAPLE_GOOD = 0, /* a staple that holds, status good */
    TUNSTAPLE_NONE,     /* no staple, and none required: accepted */
    TUNSTAPLE_MISSING,  /* no staple, and --require-staple: refused */
    TUNSTAPLE_REVOKED,  /* a signed staple says revoked: refused */
    TUNSTAPLE_BAD,      /* a staple that does not hold: refused */
};

/* The metrics label of a verdict: "good", "none", "missing", "revoked", "bad". */
const char *tunstaple_verdict_name(enum tunstaple_verdict v);

/*
 * Judge the staple der/len (NULL or 0 bytes: none) that `server` (its name in
 * the sentence, e.g. "db.internal (10.0.0.5:5433)") sent, for the first
 * certificate of `verified` (the chain the tunnel verified, leaf first),
 * whose issuer is looked for in that chain only, at `now`.  require: no
 * staple is a refusal.  For every refusal, why holds one sentence naming the
 * server and what was wrong (the revocation date and reason for a revoked
 * staple); code holds staple_check()'s code ("revoked", "expired", ...,
 * "missing", "no_issuer"), or "" when accepted.
 */
enum tunstaple_verdict tunstaple_judge(const unsigned char *der, size_t len,
                                       STACK_OF(X509) * verified, const char *server,
                                       bool require, int64_t now, char *code, size_t clen,
                                       char *why, size_t wlen);

#endif
