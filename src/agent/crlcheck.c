/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlcheck.c - a CRL the agent fetched, checked before it replaces the local
 * copy that relying parties on the host read.
 *
 * The CRL comes over a connection verified against the pinned root, but the
 * file outlives the connection and other programs trust it: so each CRL in
 * it must be signed by the pinned root or a CA certificate that verifies
 * against it, be current, pass the checks duet applies to every CRL it loads
 * (lib/revset.h: no critical extension duet does not handle), not be a delta
 * CRL (the file must stand alone),
 * and be no older than the local copy (RFC 5280 5.2.3: cRLNumber increases).
 * A bad answer keeps the good file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent.h"
#include "lib/fileio.h"
#include "lib/revset.h"
#include "lib/x509util.h"

/* How far ahead of our clock a CRL's thisUpdate may be (clocks drift). */
#define CRL_SKEW 300

/* The CRLs of a PEM text, in order; NULL when there is none. */
static STACK_OF(X509_CRL) * crls_of(const uint8_t *data, size_t len)
{
    STACK_OF(X509_CRL) *out = sk_X509_CRL_new_null();
    BIO *b = BIO_new_mem_buf(data, (int)len);
    X509_CRL *x;

    if (out == NULL || b == NULL) {
        BIO_free(b);
        sk_X509_CRL_free(out);
        return NULL;
    }
    while ((x = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_CRL_push(out, x)) {
            X509_CRL_free(x);
            break;
        }
    }
    ERR_clear_error();
    BIO_free(b);
    if (sk_X509_CRL_num(out) == 0) {
        sk_X509_CRL_free(out);
        return NULL;
    }
    return out;
}

static void
crls_free(STACK_OF(X509_CRL) * s)
{
    sk_X509_CRL_pop_free(s, X509_CRL_free);
}

/*
 * The CA certificates a CRL may come from: the root, and each certificate of
 * chain that is a CA and verifies against the root at now.  Borrowed
 * pointers; NULL when out of memory.
 */
static STACK_OF(X509) * issuers_of(X509 *root, STACK_OF(X509) * chain, int64_t now)
{
    STACK_OF(X509) *out = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();

    if (out == NULL || store == NULL || !X509_STORE_add_cert(store, root) ||
        !sk_X509_push(out, root)) {
        sk_X509_free(out);
        X509_STORE_free(store);
        return NULL;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        bool ok = false;

        if (X509_check_ca(x) >= 1 && ctx != NULL &&
            X509_STORE_CTX_init(ctx, store, x, chain) == 1) {
            X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
            ok = X509_verify_cert(ctx) == 1;
        }
        X509_STORE_CTX_free(ctx);
        if (ok && !sk_X509_push(out, x))
            break;
    }
    ERR_clear_error();
    X509_STORE_free(store);
    return out;
}

/* The issuer among `issuers` whose name is the CRL's and whose key verifies it, else NULL. */
static X509 *
signer_of(X509_CRL *crl, STACK_OF(X509) * issuers, bool *named)
{
    *named = false;
    for (int i = 0; i < sk_X509_num(issuers); i++) {
        X509 *x = sk_X509_value(issuers, i);
        if (X509_NAME_cmp(X509_get_subject_name(x), X509_CRL_get_issuer(crl)) != 0)
            continue;
        *named = true;
        if (X509_CRL_verify(crl, X509_get0_pubkey(x)) == 1)
            return x;
    }
    ERR_clear_error();
    return NULL;
}

/* A CRL's issuer as text for messages (owned by the caller); never NULL unless out of memory. */
static char *
issuer_text(X509_CRL *crl)
{
    char *s = x509u_name(X509_CRL_get_issuer(crl));

    return s != NULL ? s : strdup("(unreadable issuer)");
}

/* An INTEGER in decimal (OPENSSL_free), NULL when out of memory. */
static char *
decimal(const ASN1_INTEGER *n)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(n, NULL);
    char *s = bn != NULL ? BN_bn2dec(bn) : NULL;

    BN_free(bn);
    return s;
}

/* -1, 0, 1 as a is older than, as old as or newer than b (cRLNumber, else thisUpdate). */
static int
crl_order(X509_CRL *a, X509_CRL *b, char *why, size_t len)
{
    ASN1_INTEGER *na = X509_CRL_get_ext_d2i(a, NID_crl_number, NULL, NULL);
    ASN1_INTEGER *nb = X509_CRL_get_ext_d2i(b, NID_crl_number, NULL, NULL);
    int64_t ta = 0, tb = 0;
    int rc;

    ERR_clear_error();
    if (na != NULL && nb != NULL) {
        char *da = decimal(na), *db = decimal(nb);
        rc = ASN1_INTEGER_cmp(na, nb);
        snprintf(why, len, "CRL number %s, the local copy's %s", da != NULL ? da : "?",
                 db != NULL ? db : "?");
        OPENSSL_free(da);
        OPENSSL_free(db);
    } else {
        char sa[40], sb[40];
        (void)x509u_time(X509_CRL_get0_lastUpdate(a), &ta);
        (void)x509u_time(X509_CRL_get0_lastUpdate(b), &tb);
        x509u_fmt_rfc3339(ta, sa, sizeof(sa));
        x509u_fmt_rfc3339(tb, sb, sizeof(sb));
        rc = ta < tb ? -1 : ta > tb;
        snprintf(why, len, "thisUpdate %s, the local copy's %s", sa, sb);
    }
    ASN1_INTEGER_free(na);
    ASN1_INTEGER_free(nb);
    return rc < 0 ? -1 : rc > 0;
}

/* The CRLs of the local copy that verify with one of issuers; NULL when none is usable. */
static STACK_OF(X509_CRL) * local_good(const char *local, STACK_OF(X509) * issuers)
{
    STACK_OF(X509_CRL) *crls = NULL;
    STACK_OF(X509_CRL) *good = NULL;
    struct duet_err e;
    uint8_t *data = NULL;
    size_t len = 0;

    if (local == NULL || access(local, F_OK) != 0 || fileio_read(local, &data, &len, &e) != 0)
        return NULL;
    crls = crls_of(data, len);
    free(data);
    if (crls == NULL || (good = sk_X509_CRL_new_null()) == NULL) {
        crls_free(crls);
        return NULL;
    }
    while (sk_X509_CRL_num(crls) > 0) {
        X509_CRL *x = sk_X509_CRL_shift(crls);
        bool named;
        if (signer_of(x, issuers, &named) == NULL || !sk_X509_CRL_push(good, x))
            X509_CRL_free(x);
    }
    crls_free(crls);
    return good;
}

/* One fetched CRL (number i of label) against the issuers, the clock and the local copy. */
static int
check_one(const char *label, int i, X509_CRL *crl, STACK_OF(X509) * issuers,
          STACK_OF(X509_CRL) * local, int64_t now, struct duet_err *err)
{
    char *iss = issuer_text(crl);
    const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
    int64_t tu = 0, tn = 0;
    char when[40], why[200];
    bool named = false;
    X509 *signer;
    int rc = -1;

    if (iss == NULL)
        return err_nomem(err);
    if ((signer = signer_of(crl, issuers, &named)) == NULL) {
        if (named)
            err_set(err, DUET_ERR_INVALID,
                    "%s: CRL %d (issuer %s): its signature does not verify with the key of the "
                    "CA this agent trusts (signed by another key)",
                    label, i + 1, iss);
        else
            err_set(err, DUET_ERR_INVALID,
                    "%s: CRL %d: its issuer %s is neither the pinned root nor a CA of the chain "
                    "issued to this host",
                    label, i + 1, iss);
        goto out;
    }
    /* RFC 5280 4.2.1.3: a key that signs CRLs has cRLSign when keyUsage is present. */
    if ((X509_get_extension_flags(signer) & EXFLAG_KUSAGE) != 0 &&
        (X509_get_key_usage(signer) & KU_CRL_SIGN) == 0) {
        err_set(err, DUET_ERR_INVALID,
                "%s: CRL %d (issuer %s): the issuer's keyUsage does not allow signing CRLs "
                "(no cRLSign)",
                label, i + 1, iss);
        goto out;
    }
    if (!x509u_time(X509_CRL_get0_lastUpdate(crl), &tu) || nu == NULL || !x509u_time(nu, &tn)) {
        err_set(err, DUET_ERR_INVALID,
                "%s: CRL %d (issuer %s): unreadable thisUpdate or no "
                "nextUpdate",
                label, i + 1, iss);
        goto out;
    }
    if (tu > now + CRL_SKEW) {
        x509u_fmt_rfc3339(tu, when, sizeof(when));
        err_set(err, DUET_ERR_INVALID,
                "%s: CRL %d (issuer %s): thisUpdate %s is in the future (not yet valid)", label,
                i + 1, iss, when);
        goto out;
    }
    if (tn <= now) {
        x509u_fmt_rfc3339(tn, when, sizeof(when));
        err_set(err, DUET_ERR_INVALID,
                "%s: CRL %d (issuer %s): expired, its nextUpdate %s has passed", label, i + 1, iss,
                when);
        goto out;
    }
    for (int j = 0; j < sk_X509_CRL_num(local); j++) {
        X509_CRL *old = sk_X509_CRL_value(local, j);
        if (X509_NAME_cmp(X509_CRL_get_issuer(old), X509_CRL_get_issuer(crl)) != 0)
            continue;
        if (crl_order(crl, old, why, sizeof(why)) < 0) {
            err_set(err, DUET_ERR_INVALID,
                    "%s: CRL %d (issuer %s) is older than the local copy: %s", label, i + 1, iss,
                    why);
            goto out;
        }
    }
    rc = 0;
out:
    free(iss);
    return rc;
}

/* Check a fetched CRL file; see agent.h. */
int
agent_crl_check(const char *label, const uint8_t *data, size_t len, X509 *root,
                STACK_OF(X509) * chain, const char *local, int64_t now, struct duet_err *err)
{
    STACK_OF(X509_CRL) *crls = NULL;
    STACK_OF(X509_CRL) *old = NULL;
    STACK_OF(X509) *issuers = NULL;
    struct revset *rs = NULL;
    int rc = -1;

    if ((crls = crls_of(data, len)) == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s: not a PEM CRL", label);
        goto out;
    }
    /* The checks every CRL duet loads passes (structure, extensions, algorithms). */
    if ((rs = revset_new()) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (revset_add_mem(rs, label, data, len, err) != 0)
        goto out;
    for (size_t i = 0; i < revset_count(rs); i++) {
        if (revcrl_is_delta(revset_get0(rs, i))) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: CRL #%zu is a delta CRL; the local copy must be complete", label, i + 1);
            goto out;
        }
    }
    if ((issuers = issuers_of(root, chain, now)) == NULL) {
        err_nomem(err);
        goto out;
    }
    old = local_good(local, issuers);
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        if (check_one(label, i, sk_X509_CRL_value(crls, i), issuers, old, now, err) != 0)
            goto out;
    }
    rc = 0;
out:
    revset_free(rs);
    sk_X509_free(issuers);
    crls_free(old);
    crls_free(crls);
    return rc;
}
