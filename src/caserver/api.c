/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the /v1 endpoints of `duet ca serve` (docs/ca-server.md):
 * GET /v1/ca, POST /v1/enroll (a one-time token and a CSR), POST /v1/renew
 * and POST /v1/revoke (by the verified client certificate).  The client
 * certificate has passed the TLS layer's verification against this CA's
 * anchors - except its notAfter, which the TLS layer leaves to this file;
 * here it must also be in the inventory, byte for byte, not revoked (the TLS
 * layer holds no CRL) and valid now, or, for renewal only, expired less than
 * its profile's renew_grace ago (ca_renew_window).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/token.h"
#include "caserver/caserver_int.h"
#include "lib/x509util.h"
#include "util/log.h"

/* A certificate as a new PEM string; NULL when out of memory. */
static char *
cert_pem(X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;

    if (b != NULL && PEM_write_bio_X509(b, cert) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
        (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

/* An RFC 3339 time as a JSON string. */
static json_t *
json_time(int64_t t)
{
    char buf[32];

    x509u_fmt_rfc3339(t, buf, sizeof(buf));
    return json_string(buf);
}

/* The canonical serial of a certificate (the inventory's form); NULL when out of memory. */
static char *
cert_serial(X509 *cert)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    char *raw = x509u_serial(X509_get0_serialNumber(cert));
    char *canon = raw != NULL ? store_serial_canonical(raw, &err) : NULL;

    free(raw);
    return canon;
}

/* Answer 200 with what was issued (enroll, renew), and count it. */
static void
reply_issued(struct careq *r, X509 *cert, const char *how)
{
    int64_t nb = 0, na = 0;
    char *pem = cert_pem(cert), *chain = cert_pem(ca_issuing_cert(r->s->ca));
    char labels[32];
    json_t *o = NULL;

    r->issued = cert_serial(cert);
    if (!x509u_time(X509_get0_notBefore(cert), &nb) || !x509u_time(X509_get0_notAfter(cert), &na))
        nb = na = 0;
    if (pem != NULL && chain != NULL && r->issued != NULL)
        o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "serial", r->issued, "certificate", pem,
                      "chain", chain, "not_before", json_time(nb), "not_after", json_time(na),
                      "renew_after", json_time(nb + (na - nb) * 2 / 3));
    free(pem);
    free(chain);
    snprintf(labels, sizeof(labels), "how=\"%s\"", how);
    caserver_metric_add("duet_ca_issued_total", labels, 1);
    caserver_reply_json(r, 200, o);
}

/* A PEM CSR from a JSON string; NULL after answering 400. */
static X509_REQ *
parse_csr(struct careq *r, const json_t *v)
{
    const char *text = json_string_value(v);
    BIO *b = text != NULL ? BIO_new_mem_buf(text, (int)json_string_length(v)) : NULL;
    X509_REQ *req = b != NULL ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    ERR_clear_error();
    if (req == NULL)
        caserver_reply_error(r, 400, "csr_refused",
                             "\"csr\" is not a PEM certificate request (-----BEGIN CERTIFICATE "
                             "REQUEST-----)");
    return req;
}

/*
 * Why a token is refused before its CSR is looked at (0: it may be used), and
 * the validity the API gives under its profile (api_ttl) in *api_ttl when not
 * NULL.  The text of the token is never put in a message.
 */
static int
token_state(struct careq *r, const char *token, int64_t *api_ttl, struct duet_err *err)
{
    struct store_token *t = NULL;
    const struct ca_profile *p;
    char id[65], when[32];
    int rc = -1;

    if (ca_token_id(token, id, err) != 0 || store_token_get(ca_store(r->s->ca), id, &t, err) != 0)
        return -1;
    /* What the API issues under the token's profile (an unknown profile: ca_issue says so). */
    p = t != NULL ? ca_config_profile(ca_config(r->s->ca), t->profile) : NULL;
    if (api_ttl != NULL)
        *api_ttl = p != NULL ? p->api_ttl : 0;
    if (t == NULL) {
        err_set(err, DUET_ERR_INPUT, "unknown enrollment token (not made by this CA, or mistyped)");
    } else if (t->serial != NULL) {
        x509u_fmt_rfc3339(t->used_at, when, sizeof(when));
        err_set(err, DUET_ERR_INPUT,
                "enrollment token already used on %s (certificate serial %s); ask the CA "
                "operator for a new one",
                when, t->serial);
    } else if (t->expires_at <= caserver_now()) {
        x509u_fmt_rfc3339(t->expires_at, when, sizeof(when));
        err_set(err, DUET_ERR_INPUT,
                "enrollment token expired at %s; ask the CA operator for a new one", when);
    } else {
        rc = 0;
    }
    store_token_free(t);
    return rc;
}

/* GET /v1/ca; see docs/ca-server.md. */
void
caserver_api_ca(struct careq *r)
{
    const struct ca_config *cfg = ca_config(r->s->ca);
    const char *base = r->s->o->public_url;
    char crl[512], ocsp[512];
    json_t *o;

    if (!caserver_method_ok(r, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
        return;
    if (base != NULL) {
        snprintf(crl, sizeof(crl), "%s/crl", base);
        snprintf(ocsp, sizeof(ocsp), "%s/ocsp", base);
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "name", cfg->name, "trust_domain",
                  cfg->trust_domain, "root_sha256", r->s->root_sha256, "issuing_sha256",
                  r->s->issuing_sha256, "crl_url", base != NULL ? json_string(crl) : json_null(),
                  "ocsp_url", base != NULL ? json_string(ocsp) : json_null());
    caserver_reply_json(r, 200, o);
}

/* POST /v1/enroll; see docs/ca-server.md. */
void
caserver_api_enroll(struct careq *r)
{
    struct duet_err err = {.kind = DUET_ERR_NONE}, again = {.kind = DUET_ERR_NONE};
    json_t *j = NULL;
    const char *token;
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    bool clamped = false;
    int64_t ttl = 0;

    if (!caserver_method_ok(r, EVHTTP_REQ_POST) || (j = caserver_body_json(r)) == NULL)
        return;
    token = json_string_value(json_object_get(j, "token"));
    if (token == NULL || !json_is_string(json_object_get(j, "csr"))) {
        caserver_reply_error(r, 400, "bad_request",
                             "expected {\"token\": \"duet1_...\", \"csr\": \"-----BEGIN "
                             "CERTIFICATE REQUEST-----...\"}");
        goto out;
    }
    if (token_state(r, token, &ttl, &err) != 0) {
        if (err.kind == DUET_ERR_INPUT)
            caserver_reply_error(r, 403, "token_refused", "%s", err.msg);
        else
            caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    if ((csr = parse_csr(r, json_object_get(j, "csr"))) == NULL)
        goto out;
    /* Short-lived by default: the profile's api_ttl, not the default_ttl of duet cert sign. */
    if (ca_token_redeem(r->s->ca, token, csr, "POST /v1/enroll", caserver_now(), ttl, &cert,
                        &clamped, NULL, &err) != 0) {
        /* The token may have been spent meanwhile: then that is the reason. */
        if (token_state(r, token, NULL, &again) != 0 && again.kind == DUET_ERR_INPUT)
            caserver_reply_error(r, 403, "token_refused", "%s", again.msg);
        else if (err.kind == DUET_ERR_INPUT)
            caserver_reply_error(r, 400, "csr_refused", "%s", err.msg);
        else
            caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    reply_issued(r, cert, "enroll");
out:
    X509_free(cert);
    X509_REQ_free(csr);
    json_decref(j);
}

/*
 * The inventory row of the verified client certificate: the same bytes as
 * recorded, not revoked, valid now - or, with expired_ok (renewal, which
 * decides on the grace), possibly past its notAfter.  NULL after answering
 * 401 (or 500).
 */
static struct store_cert *
caller_row(struct careq *r, const char *what, bool expired_ok)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store_cert *row = NULL;
    char *serial = NULL;
    unsigned char *der = NULL;
    int len;
    char when[32];

    if (r->id == NULL || r->id->cert == NULL) {
        caserver_reply_error(r, 401, "unauthorized",
                             "%s needs a client certificate of this CA (mTLS); none was presented",
                             what);
        return NULL;
    }
    if ((serial = cert_serial(r->id->cert)) == NULL) {
        caserver_reply_error(r, 500, "internal_error", "out of memory");
        return NULL;
    }
    if (store_get(ca_store(r->s->ca), serial, &row, &err) != 0) {
        caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto err;
    }
    len = i2d_X509(r->id->cert, &der);
    if (row == NULL || len <= 0 || (size_t)len != row->der_len ||
        memcmp(der, row->der, row->der_len) != 0) {
        caserver_reply_error(r, 401, "unauthorized",
                             "the client certificate (serial %s) is not in this CA's inventory",
                             serial);
        goto err;
    }
    if (row->status == STORE_REVOKED) {
        x509u_fmt_rfc3339(row->revoked_at, when, sizeof(when));
        caserver_reply_error(r, 401, "unauthorized",
                             "the client certificate (serial %s) was revoked on %s (%s)", serial,
                             when, x509u_crl_reason(row->reason));
        goto err;
    }
    /* Checked again per request: a kept-alive connection may outlive its certificate. */
    if ((!expired_ok && caserver_now() > row->not_after) || caserver_now() < row->not_before) {
        x509u_fmt_rfc3339(row->not_after, when, sizeof(when));
        caserver_reply_error(r, 401, "unauthorized",
                             "the client certificate (serial %s) is not valid now (valid until "
                             "%s)",
                             serial, when);
        goto err;
    }
    OPENSSL_free(der);
    free(serial);
    return row;
err:
    OPENSSL_free(der);
    free(serial);
    store_cert_free(row);
    return NULL;
}

/*
 * Answer 401 for an expired client certificate that may not renew: the
 * sentence (serial, when it expired, the profile's grace, the fix) and the
 * same as fields for programs.
 */
static void
reply_expired(struct careq *r, const struct store_cert *row, const struct ca_window *win,
              const char *sentence)
{
    size_t n = strlen(sentence);

    /* Cut (never overflowed): the sentence is the CA's own, from ca_renew_window. */
    if (n >= sizeof(r->detail))
        n = sizeof(r->detail) - 1;
    memcpy(r->detail, sentence, n);
    r->detail[n] = '\0';
    r->refusal = "certificate_expired";
    caserver_reply_json(r, 401,
                        json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "error", "certificate_expired",
                                  "detail", r->detail, "serial", row->serial, "expired_at",
                                  json_time(row->not_after), "profile", row->profile, "renew_grace",
                                  win->grace_text));
}

/* Answer 409: the certificate has a successor already. */
static void
reply_already_renewed(struct careq *r, const char *serial, const char *successor)
{
    snprintf(r->detail, sizeof(r->detail),
             "certificate %s was renewed already, by certificate %s; renew with that one", serial,
             successor);
    r->refusal = "already_renewed";
    caserver_reply_json(r, 409, json_pack("{s:s, s:s, s:s}", "error", "already_renewed", "detail",
                                          r->detail, "successor", successor));
}

/*
 * After a failed renewal: if another process renewed the certificate between
 * our check and our transaction (the store links a renewal only to a
 * certificate not renewed yet), answer the 409 that check would have given.
 */
static bool
renewed_meanwhile(struct careq *r, const char *serial)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store_cert *now_row = NULL;
    bool yes = false;

    if (store_get(ca_store(r->s->ca), serial, &now_row, &err) == 0 && now_row != NULL &&
        now_row->renewed_by != NULL) {
        reply_already_renewed(r, serial, now_row->renewed_by);
        yes = true;
    }
    store_cert_free(now_row);
    return yes;
}

/* POST /v1/renew; see docs/ca-server.md. */
void
caserver_api_renew(struct careq *r)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca_renewal ren = {0};
    struct ca_renew_opts ro = {0};
    struct store_cert *row = NULL;
    json_t *j = NULL, *csrv;
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    bool clamped = false, have_ren = false;
    struct ca_window win;
    const struct ca_profile *prof;
    int64_t now = caserver_now();

    if (!caserver_method_ok(r, EVHTTP_REQ_POST) || (j = caserver_body_json(r)) == NULL)
        return;
    if ((row = caller_row(r, "POST /v1/renew", true)) == NULL)
        goto out;
    if (row->renewed_by != NULL) {
        reply_already_renewed(r, row->serial, row->renewed_by);
        goto out;
    }
    if (strcmp(row->profile, CA_PROFILE_OCSP_SIGNER) == 0) {
        caserver_reply_error(r, 403, "forbidden",
                             "the OCSP signer is renewed by the CA server itself");
        goto out;
    }
    /* Expired: renewed only within its profile's grace, counted from the row's not_after. */
    if (ca_renew_window(ca_config(r->s->ca), row, now, &win, &err) != 0) {
        if (now > row->not_after)
            reply_expired(r, row, &win, err.msg);
        else
            caserver_reply_error(r, 401, "unauthorized", "%s", err.msg);
        goto out;
    }
    /* Short-lived by default: the profile's api_ttl (0 for a profile gone from ca.yaml). */
    prof = ca_config_profile(ca_config(r->s->ca), row->profile);
    ro.ttl = prof != NULL ? prof->api_ttl : 0;
    csrv = json_object_get(j, "csr");
    if (csrv != NULL) {
        if ((csr = parse_csr(r, csrv)) == NULL)
            goto out;
        ro.pubkey = X509_REQ_get0_pubkey(csr);
        if (ro.pubkey == NULL || X509_REQ_verify(csr, ro.pubkey) != 1) {
            ERR_clear_error();
            caserver_reply_error(r, 400, "csr_refused",
                                 "the CSR's signature does not verify with its own key");
            goto out;
        }
    }
    ro.reuse_key = csrv == NULL;
    if (ca_renew_check(row, &ren, &err) != 0) {
        caserver_reply_error(r, 403, "forbidden", "%s", err.msg);
        goto out;
    }
    have_ren = true;
    r->renews = strdup(row->serial);
    if (ca_renew(r->s->ca, &ren, &ro, &cert, &key, &clamped, &err) != 0) {
        if (renewed_meanwhile(r, row->serial))
            goto out;
        if (err.kind == DUET_ERR_INPUT)
            caserver_reply_error(r, 400, "csr_refused", "%s", err.msg);
        else
            caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    /* The audit line says when a renewal came after expiry, within the grace. */
    r->grace_renewal = win.in_grace;
    r->expired_at = win.in_grace ? row->not_after : 0;
    reply_issued(r, cert, win.in_grace ? "renew_grace" : "renew");
out:
    if (have_ren)
        ca_renewal_clear(&ren);
    EVP_PKEY_free(key);
    X509_free(cert);
    X509_REQ_free(csr);
    store_cert_free(row);
    json_decref(j);
}

/* Whether the verified identity matches one of --admin-identity. */
static bool
is_admin(const struct careq *r)
{
    for (size_t i = 0; r->id != NULL && i < r->s->nadmins; i++) {
        if (policy_pattern_match(&r->s->admins[i], r->id))
            return true;
    }
    return false;
}

/*
 * The caller's identity as the inventory keeps who revoked: its canonical
 * name with the type it came from, as --admin-identity patterns write it -
 * "uri:" for the one URI SAN, "dns:" for the first DNS SAN, else "cn:".
 */
static void
caller_text(const struct duet_identity *id, char *buf, size_t len)
{
    size_t nuri = 0, ndns = 0;

    for (size_t i = 0; i < id->nsans; i++) {
        nuri += id->sans[i].type == DUET_SAN_URI;
        ndns += id->sans[i].type == DUET_SAN_DNS;
    }
    snprintf(buf, len, "%s:%s", nuri == 1 ? "uri" : ndns > 0 ? "dns" : "cn", id->name);
}

/* POST /v1/revoke; see docs/ca-server.md. */
void
caserver_api_revoke(struct careq *r)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store_cert *caller = NULL, *row = NULL;
    const char *stext, *rtext;
    char *serial = NULL, when[32], by[300];
    json_t *j = NULL;
    int reason = 0;
    int64_t now = caserver_now();

    if (!caserver_method_ok(r, EVHTTP_REQ_POST) || (j = caserver_body_json(r)) == NULL)
        return;
    if ((caller = caller_row(r, "POST /v1/revoke", false)) == NULL)
        goto out;
    stext = json_string_value(json_object_get(j, "serial"));
    rtext = json_string_value(json_object_get(j, "reason"));
    if (stext == NULL || (serial = store_serial_canonical(stext, &err)) == NULL) {
        caserver_reply_error(r, 400, "bad_request",
                             "expected {\"serial\": \"4E:2E:...\", \"reason\": \"keyCompromise\"} "
                             "with the serial in hex");
        goto out;
    }
    if (json_object_get(j, "reason") != NULL &&
        (rtext == NULL || (reason = ca_reason_parse(rtext)) < 0)) {
        caserver_reply_error(r, 400, "bad_request",
                             "\"reason\" must be an RFC 5280 reason name such as keyCompromise, "
                             "superseded, cessationOfOperation or affiliationChanged");
        goto out;
    }
    if (strcmp(serial, caller->serial) != 0 && !is_admin(r)) {
        caserver_reply_error(r, 403, "forbidden",
                             "%s may revoke its own certificate only (serial %s), not %s",
                             r->id->name, caller->serial, serial);
        goto out;
    }
    if (store_get(ca_store(r->s->ca), serial, &row, &err) != 0) {
        caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    if (row == NULL) {
        caserver_reply_error(r, 404, "not_found",
                             "no certificate with serial %s was issued by "
                             "this CA",
                             serial);
        goto out;
    }
    if (row->status == STORE_REVOKED) {
        x509u_fmt_rfc3339(row->revoked_at, when, sizeof(when));
        caserver_reply_error(r, 409, "already_revoked", "certificate %s was revoked on %s (%s)",
                             serial, when, x509u_crl_reason(row->reason));
        goto out;
    }
    if (strcmp(row->profile, "issuing-ca") == 0) {
        caserver_reply_error(r, 403, "forbidden", "the issuing CA is not revoked over the API");
        goto out;
    }
    caller_text(r->id, by, sizeof(by));
    if (ca_revoke(r->s->ca, serial, reason, now, by, &err) != 0) {
        caserver_reply_error(r, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    r->revoked = strdup(serial);
    caserver_metric_add("duet_ca_revoked_total", "", 1);
    if (caserver_crl_refresh(r->s, &err) != 0)
        log_msg("error", "ca_crl", "the CRL could not be signed again after revoking %s: %s",
                serial, err.msg);
    x509u_fmt_rfc3339(now, when, sizeof(when));
    caserver_reply_json(r, 200,
                        json_pack("{s:s, s:s, s:s}", "serial", serial, "revoked_at", when, "reason",
                                  x509u_crl_reason(reason)));
out:
    free(serial);
    store_cert_free(row);
    store_cert_free(caller);
    json_decref(j);
}
