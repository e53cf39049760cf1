/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunstaple.c - the verdict of `duet tunnel` on the OCSP staple its server
 * sent (see tunstaple.h); tunnel.c asks for it, reads it once the handshake
 * is done and refuses the server before relaying anything.
 */
#include "proxy/tunstaple.h"

#include <stdio.h>
#include <string.h>

#include <openssl/ocsp.h>

#include "lib/x509util.h"
#include "proxy/staple.h"

/* The metrics label of a verdict; see tunstaple.h. */
const char *
tunstaple_verdict_name(enum tunstaple_verdict v)
{
    static const char *const names[] = {"good", "none", "missing", "revoked", "bad"};

    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "bad";
}

/* Judge a server's staple; see tunstaple.h. */
enum tunstaple_verdict
tunstaple_judge(const unsigned char *der, size_t len, STACK_OF(X509) * verified,
                const char *server, bool require, int64_t now, char *code, size_t clen,
                char *why, size_t wlen)
{
    struct staple_facts f;
    char label[600], date[40], scode[32], swhy[1200];
    X509 *leaf = verified != NULL ? sk_X509_value(verified, 0) : NULL;
    X509 *issuer = NULL;

    snprintf(code, clen, "%s", "");
    snprintf(why, wlen, "%s", "");
    if (der == NULL || len == 0) {
        if (!require)
            return TUNSTAPLE_NONE;
        snprintf(code, clen, "missing");
        snprintf(why, wlen, "the server %s sent no OCSP staple (--require-staple)", server);
        return TUNSTAPLE_MISSING;
    }
    if (leaf != NULL)
        issuer = staple_find_issuer(verified, NULL);
    if (issuer == NULL) {
        snprintf(code, clen, "no_issuer");
        snprintf(why, wlen,
                 "the server %s sent an OCSP staple, but its verified chain holds no issuer of "
                 "its certificate to check the staple with",
                 server);
        return TUNSTAPLE_BAD;
    }
    if (staple_check(der, len, leaf, issuer, now, &f, scode, sizeof(scode), swhy,
                     sizeof(swhy)) == 0)
        return TUNSTAPLE_GOOD;
    snprintf(code, clen, "%s", scode);
    if (strcmp(scode, "revoked") == 0) {
        /* The response verified (signer, certificate): a revocation the CA signed. */
        x509u_label(leaf, label, sizeof(label));
        x509u_fmt_date(f.revoked_at, date, sizeof(date));
        snprintf(why, wlen,
                 "the server %s: certificate %s was revoked on %s (reason: %s) by the OCSP "
                 "staple it sent",
                 server, label, date,
                 f.reason >= 0 ? x509u_crl_reason(f.reason) : "unspecified");
        return TUNSTAPLE_REVOKED;
    }
    snprintf(why, wlen,
             "the server %s sent an OCSP staple that does not hold (%s): %s; a sound server "
             "never sends one, so it is refused",
             server, scode, swhy);
    return TUNSTAPLE_BAD;
}
