/* SPDX-License-Identifier: Apache-2.0 */
/*
 * staple.c - OCSP stapling of the proxy's own certificate: the checks a
 * response passes, the GET request, the cache file name, and the staple a
 * listener hands to clients that ask (see staple.h).
 *
 * The status callback runs in every handshake whose client sent
 * status_request; it only compares the clock with the staple's nextUpdate
 * and copies the DER (OpenSSL frees the copy).  TLS 1.2 sends it in a
 * CertificateStatus message, TLS 1.3 in the leaf's certificate entry.
 */
#include "proxy/staple.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/x509util.h"
#include "proxy/crlplan.h"
#include "util/log.h"

#define STAPLE_MAX_BYTES 65536 /* a cached response larger than this is not read */

static int refuse(char *code, size_t clen, char *why, size_t wlen, const char *c, const char *fmt,
                  ...) PRINTF_LIKE(6, 7);

static int
refuse(char *code, size_t clen, char *why, size_t wlen, const char *c, const char *fmt, ...)
{
    va_list ap;

    snprintf(code, clen, "%s", c);
    va_start(ap, fmt);
    vsnprintf(why, wlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whether signer may sign OCSP answers for issuer's certificates at now (RFC 6960 4.2.2.2). */
static bool
delegated_ok(X509 *signer, X509 *issuer, int64_t now)
{
    EVP_PKEY *ik = X509_get0_pubkey(issuer);
    int64_t nb, na;

    if (ik == NULL || X509_check_issued(issuer, signer) != X509_V_OK ||
        X509_verify(signer, ik) != 1)
        return false;
    if ((X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) == 0 ||
        (X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN) == 0)
        return false;
    return x509u_time(X509_get0_notBefore(signer), &nb) &&
           x509u_time(X509_get0_notAfter(signer), &na) && nb <= now + STAPLE_CLOCK_SKEW &&
           now <= na;
}

/* The leaf's status in bs, trying a SHA-1 CertID then a SHA-256 one. */
static bool
find_status(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer, int *status, int *reason,
            ASN1_GENERALIZEDTIME **rev, ASN1_GENERALIZEDTIME **thisupd,
            ASN1_GENERALIZEDTIME **nextupd)
{
    const EVP_MD *mds[2] = {EVP_sha1(), EVP_sha256()};

    for (size_t i = 0; i < 2; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(mds[i], leaf, issuer);
        int found;
        if (id == NULL)
            continue;
        found = OCSP_resp_find_status(bs, id, status, reason, rev, thisupd, nextupd);
        OCSP_CERTID_free(id);
        if (found == 1)
            return true;
    }
    return false;
}

/* Check a response for stapling; see staple.h. */
int
staple_check(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
             struct staple_facts *out, char *code, size_t clen, char *why, size_t wlen)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    STACK_OF(X509) *extra = NULL, *only = NULL;
    X509 *signer = NULL;
    char *serial = x509u_serial(X509_get0_serialNumber(leaf));
    const char *sn = serial != NULL ? serial : "?";
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    char date[40];
    int st, status = -1, reason = -1, rc = -1;

    memset(out, 0, sizeof(*out));
    out->status = -1;
    out->reason = -1;
    if (len == 0 || len > LONG_MAX || (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
        p != der + len) {
        refuse(code, clen, why, wlen, "not_ocsp", "the reply is not a DER OCSP response");
        goto out;
    }
    if ((st = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        refuse(code, clen, why, wlen, "unsuccessful",
               "the responder answered \"%s\" (responseStatus %d), not \"successful\"",
               OCSP_response_status_str(st), st);
        goto out;
    }
    if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
        refuse(code, clen, why, wlen, "not_ocsp", "the response is not a basic OCSP response");
        goto out;
    }
    /* The signer: the issuer itself, or a certificate the response carries. */
    if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, issuer) ||
        OCSP_resp_get0_signer(bs, &signer, extra) != 1) {
        refuse(code, clen, why, wlen, "unknown_signer",
               "the response is signed by neither the issuer of the certificate nor a "
               "certificate it carries");
        goto out;
    }
    /* The signature checked with that signer's key, not with another of the same name. */
    if ((only = sk_X509_new_null()) == NULL || !sk_X509_push(only, signer) ||
        OCSP_basic_verify(bs, only, NULL, OCSP_NOINTERN | OCSP_NOVERIFY | OCSP_NOCHAIN) != 1) {
        char *who = x509u_name(X509_get_subject_name(signer));
        refuse(code, clen, why, wlen, "bad_signature",
               "bad signature: the response does not verify with the key of \"%s\"",
               who != NULL ? who : "?");
        OPENSSL_free(who);
        goto out;
    }
    if (X509_cmp(signer, issuer) != 0 && !delegated_ok(signer, issuer, now)) {
        char *who = x509u_name(X509_get_subject_name(signer));
        char *iss = x509u_name(X509_get_subject_name(issuer));
        refuse(code, clen, why, wlen, "unknown_signer",
               "the response is signed by \"%s\", which is neither the certificate's issuer "
               "\"%s\" nor a currently valid certificate of that issuer with the OCSPSigning "
               "extended key usage",
               who != NULL ? who : "?", iss != NULL ? iss : "?");
        OPENSSL_free(who);
        OPENSSL_free(iss);
        goto out;
    }
    if (!find_status(bs, leaf, issuer, &status, &reason, &rev, &thisupd, &nextupd)) {
        refuse(code, clen, why, wlen, "wrong_certificate",
               "the response has no status for this certificate (serial %s): it answers for "
               "another certificate",
               sn);
        goto out;
    }
    out->status = status;
    out->reason = reason;
    if (!x509u_time(thisupd, &out->this_update) ||
        (nextupd != NULL && !x509u_time(nextupd, &out->next_update)) ||
        (rev != NULL && !x509u_time(rev, &out->revoked_at))) {
        refuse(code, clen, why, wlen, "not_ocsp", "the response's times cannot be read");
        goto out;
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED) {
        x509u_fmt_rfc3339(out->revoked_at, date, sizeof(date));
        refuse(code, clen, why, wlen, "revoked",
               "the responder says the certificate (serial %s) was revoked on %s%s%s; a revoked "
               "status is never stapled",
               sn, date, reason >= 0 ? ", reason " : "",
               reason >= 0 ? OCSP_crl_reason_str(reason) : "");
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        refuse(code, clen, why, wlen, "unknown",
               "the responder does not know the certificate (serial %s): status \"unknown\", not "
               "\"good\"",
               sn);
        goto out;
    }
    if (out->this_update > now + STAPLE_CLOCK_SKEW) {
        x509u_fmt_rfc3339(out->this_update, date, sizeof(date));
        refuse(code, clen, why, wlen, "not_yet_valid",
               "the response's thisUpdate %s is in the future", date);
        goto out;
    }
    if (nextupd == NULL) {
        refuse(code, clen, why, wlen, "no_next_update",
               "the response has no nextUpdate, so there is no telling when it goes stale");
        goto out;
    }
    if (out->next_update <= now) {
        x509u_fmt_rfc3339(out->next_update, date, sizeof(date));
        refuse(code, clen, why, wlen, "expired",
               "the response is expired: its nextUpdate %s has passed", date);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(serial);
    sk_X509_free(extra);
    sk_X509_free(only);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* The issuer of the chain's first certificate; see staple.h. */
X509 *
staple_find_issuer(STACK_OF(X509) * chain, STACK_OF(X509) * extra)
{
    X509 *leaf = sk_X509_value(chain, 0);

    return leaf != NULL ? x509u_find_issuer(leaf, chain, extra) : NULL;
}

/* The GET path asking for the leaf's status; see staple.h. */
bool
staple_get_path(X509 *leaf, X509 *issuer, const char *base_path, char *buf, size_t len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    unsigned char *der = NULL;
    unsigned char b64[2048];
    size_t n = strlen(base_path), o;
    int dlen = -1;
    bool ok = false;

    if (req == NULL || id == NULL || OCSP_request_add0_id(req, id) == NULL)
        goto out;
    id = NULL; /* the request's */
    if ((dlen = i2d_OCSP_REQUEST(req, &der)) <= 0 || (size_t)dlen > (sizeof(b64) - 1) / 4 * 3)
        goto out;
    EVP_EncodeBlock(b64, der, dlen);
    if (n + 2 > len)
        goto out;
    memcpy(buf, base_path, n);
    o = n;
    if (o == 0 || buf[o - 1] != '/')
        buf[o++] = '/';
    for (const unsigned char *c = b64; *c != '\0'; c++) {
        const char *esc = *c == '+' ? "%2B" : *c == '/' ? "%2F" : *c == '=' ? "%3D" : NULL;
        size_t k = esc != NULL ? 3 : 1;
        if (o + k + 1 > len)
            goto out;
        if (esc != NULL)
            memcpy(buf + o, esc, 3);
        else
            buf[o] = (char)*c;
        o += k;
    }
    buf[o] = '\0';
    ok = true;
out:
    OPENSSL_free(der);
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(req);
    return ok;
}

/* The staple's cache file; see staple.h. */
bool
staple_cache_name(const char *dir, const char *url, const char *cert, char *buf, size_t len)
{
    char key[4096], byurl[4096], bykey[4096];
    const char *dash, *hash;

    /* The URL's host, as a CRL's, then a hash of the URL and the certificate file. */
    if ((size_t)snprintf(key, sizeof(key), "%s\n%s", url, cert) >= sizeof(key) ||
        !crlplan_cache_name(dir, url, byurl, sizeof(byurl)) ||
        !crlplan_cache_name(dir, key, bykey, sizeof(bykey)) ||
        (dash = strrchr(byurl, '-')) == NULL || (hash = strrchr(bykey, '-')) == NULL ||
        strlen(hash) < 5)
        return false;
    return (size_t)snprintf(buf, len, "%.*s%.*s.ocsp", (int)(dash - byurl), byurl,
                            (int)(strlen(hash) - 4), hash) < len;
}

/* The responder of a listener; see staple.h. */
int
staple_listener_url(const struct listener_cfg *l, char **url, struct duet_err *err)
{
    STACK_OF(X509) *chain = NULL;
    STACK_OF(OPENSSL_STRING) *aia = NULL;
    const char *found = NULL;
    int rc = -1;

    *url = NULL;
    if (l->ocsp_staple_url != NULL) {
        found = l->ocsp_staple_url;
    } else {
        if (l->cert == NULL) {
            err_set(err, DUET_ERR_INPUT, "--ocsp-staple needs --cert");
            goto out;
        }
        if (load_certs_file(l->cert, NULL, &chain, err) != 0)
            goto out;
        aia = X509_get1_ocsp(sk_X509_value(chain, 0));
        for (int i = 0; i < sk_OPENSSL_STRING_num(aia) && found == NULL; i++) {
            const char *u = sk_OPENSSL_STRING_value(aia, i);
            if (strncasecmp(u, "http://", 7) == 0)
                found = u;
        }
        if (found == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "--ocsp-staple: the certificate in %s names no http:// OCSP responder in its "
                    "authorityInfoAccess; give one with --ocsp-staple-url",
                    l->cert);
            goto out;
        }
    }
    if (strncasecmp(found, "http://", 7) != 0) {
        err_set(err, DUET_ERR_INPUT,
                "OCSP URL \"%.200s\": only http:// is supported; an OCSP response is signed by "
                "its responder, so duet fetches it over http://",
                found);
        goto out;
    }
    if ((*url = strdup(found)) == NULL) {
        err_nomem(err);
        goto out;
    }
    rc = 0;
out:
    X509_email_free(aia);
    OSSL_STACK_OF_X509_free(chain);
    return rc;
}

static int
status_cb(SSL *ssl, void *arg)
{
    struct staple *st = arg;
    unsigned char *copy;

    if (st == NULL || st->der == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if ((int64_t)time(NULL) >= st->next_update) {
        bool was = atomic_exchange(&st->expired_logged, true);
        if (!was) {
            log_event("error", "ocsp_staple_failed",
                      json_pack("{s:s,s:s,s:s,s:s}", "listener", st->listener, "source",
                                "handshake", "code", "expired", "reason",
                                "the stapled response passed its nextUpdate; stapling nothing "
                                "until a fresh one is fetched"));
        }
        return SSL_TLSEXT_ERR_NOACK;
    }
    if ((copy = OPENSSL_memdup(st->der, st->len)) == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)st->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Free a staple; see staple.h. */
void
staple_free(struct staple *st)
{
    if (st == NULL)
        return;
    OPENSSL_free(st->der);
    free(st);
}

/* Load a listener's staple and set the status callback; see staple.h. */
int
staple_attach(const struct listener_cfg *l, SSL_CTX *ctx, struct staple **out, struct duet_err *err)
{
    struct staple *st = calloc(1, sizeof(*st));
    STACK_OF(X509) *chain = NULL;
    X509 *issuer;
    unsigned char *der = NULL;
    size_t len = 0;
    struct staple_facts facts;
    char code[32], why[1200], nu[40];
    int rc = -1;

    *out = NULL;
    if (st == NULL) {
        err_nomem(err);
        goto out;
    }
    st->listener = l->name;
    if (load_certs_file(l->cert, NULL, &chain, err) != 0)
        goto out;
    if ((issuer = staple_find_issuer(chain, NULL)) == NULL) {
        err_set(err, DUET_ERR_INPUT,
                "--ocsp-staple: %s does not carry the issuer of its certificate, which an OCSP "
                "response is checked with; put the issuing CA certificate after it",
                l->cert);
        goto out;
    }
    if (l->staple_file != NULL && access(l->staple_file, F_OK) == 0) {
        struct duet_err e;
        err_clear(&e);
        if (fileio_read(l->staple_file, &der, &len, &e) != 0) {
            log_event("error", "ocsp_staple_failed",
                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "listener", l->name, "file",
                                l->staple_file, "source", "cache", "code", "cache", "reason",
                                e.msg));
        } else if (len > STAPLE_MAX_BYTES) {
            log_event("error", "ocsp_staple_failed",
                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "listener", l->name, "file",
                                l->staple_file, "source", "cache", "code", "too_large", "reason",
                                "the cached response is larger than 64 KiB"));
        } else if (staple_check(der, len, sk_X509_value(chain, 0), issuer, (int64_t)time(NULL),
                                &facts, code, sizeof(code), why, sizeof(why)) != 0) {
            log_event("error", "ocsp_staple_failed",
                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "listener", l->name, "file",
                                l->staple_file, "source", "cache", "code", code, "reason", why));
        } else {
            st->der = der;
            st->len = len;
            st->this_update = facts.this_update;
            st->next_update = facts.next_update;
            der = NULL;
            x509u_fmt_rfc3339(facts.next_update, nu, sizeof(nu));
            log_event("info", "ocsp_staple_loaded",
                      json_pack("{s:s,s:s,s:s}", "listener", l->name, "file", l->staple_file,
                                "next_update", nu));
        }
    }
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, st);
    *out = st;
    st = NULL;
    rc = 0;
out:
    free(der);
    OSSL_STACK_OF_X509_free(chain);
    staple_free(st);
    return rc;
}
