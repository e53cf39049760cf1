/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - `duet ca serve` itself: what it prepares before it listens (the
 * server certificate, the anchors client certificates are verified
 * against, the OCSP signer, the CRL, the roots), the two listeners (evhttp
 * over TLS for the API, plain evhttp for what is public), the routing of
 * paths to endpoints, the timer that keeps the CRL, the server certificate
 * and the OCSP signer fresh, and a clean stop on SIGTERM.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "caserver/caserver_int.h"
#include "lib/pemout.h"
#include "lib/tls.h"
#include "lib/x509util.h"
#include "util/evlog.h"
#include "util/log.h"
#include "util/net_addr.h"
#include "util/notify.h"

/* The profile of the server's own certificate. */
#define SERVER_PROFILE "server"

/* Wall-clock seconds; see caserver_int.h. */
int64_t
caserver_now(void)
{
    return (int64_t)time(NULL);
}

/* Monotonic seconds; see caserver_int.h. */
double
caserver_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new string "DIR/NAME"; NULL when out of memory. */
static char *
path_in(const struct casrv *s, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s", ca_dir(s->ca), name) < 0)
        return NULL;
    return p;
}

/* Certificates as one PEM string (malloc'd); NULL when out of memory. */
static char *
certs_pem(X509 *const *v, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long len = 0;
    bool ok = b != NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(b, v[i]) == 1;
    if (ok && (len = BIO_get_mem_data(b, &data)) > 0 && (out = malloc((size_t)len + 1)) != NULL) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    BIO_free(b);
    return out;
}

/* Keep a CRL as the one served: its DER, PEM, dates and number. */
static int
crl_install(struct casrv *s, X509_CRL *crl, struct duet_err *err)
{
    unsigned char *der = NULL;
    char *pem = NULL, *data = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t number = 0;
    int64_t tu = 0, nu = 0;
    long plen = 0;
    int len = i2d_X509_CRL(crl, &der);
    int rc = -1;

    if (len <= 0 || b == NULL || PEM_write_bio_X509_CRL(b, crl) != 1 ||
        (plen = BIO_get_mem_data(b, &data)) <= 0 || (pem = malloc((size_t)plen)) == NULL ||
        num == NULL || ASN1_INTEGER_get_uint64(&number, num) != 1 ||
        !x509u_time(X509_CRL_get0_lastUpdate(crl), &tu) ||
        !x509u_time(X509_CRL_get0_nextUpdate(crl), &nu)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot encode the CRL");
        goto out;
    }
    memcpy(pem, data, (size_t)plen);
    OPENSSL_free(s->crl_der);
    free(s->crl_pem);
    s->crl_der = der;
    s->crl_der_len = (size_t)len;
    s->crl_pem = pem;
    s->crl_pem_len = (size_t)plen;
    s->crl_this_update = tu;
    s->crl_next_update = nu;
    s->crl_number = number;
    der = NULL;
    pem = NULL;
    rc = 0;
out:
    OPENSSL_free(der);
    free(pem);
    BIO_free(b);
    ASN1_INTEGER_free(num);
    return rc;
}

/* Bring the CRL up to date; see caserver_int.h. */
int
caserver_crl_refresh(struct casrv *s, struct duet_err *err)
{
    struct duet_err gerr = {.kind = DUET_ERR_NONE};
    X509_CRL *crl = NULL;
    uint64_t gen = 0;
    bool made = false;
    bool gen_ok;
    int rc = -1;

    /* The generation first: a write after it moves it on, and the next check looks again. */
    gen_ok = store_generation(ca_store(s->ca), &gen, &gerr) == 0;
    if (ca_crl_current(s->ca, caserver_now(), s->o->crl_validity, s->crl_number, &crl, &made,
                       err) != 0)
        return -1;
    if (crl != NULL && crl_install(s, crl, err) != 0)
        goto out;
    if (crl != NULL && made)
        log_msg("info", "ca_crl", "signed CRL number %llu, valid until %lld (%lld s)",
                (unsigned long long)s->crl_number, (long long)s->crl_next_update,
                (long long)(s->crl_next_update - s->crl_this_update));
    else if (crl != NULL)
        log_msg("info", "ca_crl",
                "serving CRL number %llu, published in the inventory by another process, valid "
                "until %lld",
                (unsigned long long)s->crl_number, (long long)s->crl_next_update);
    s->crl_gen = gen;
    s->crl_gen_known = gen_ok;
    rc = 0;
out:
    X509_CRL_free(crl);
    return rc;
}

/* Refresh the CRL when the inventory moved or its life runs short; see caserver_int.h. */
void
caserver_crl_check(struct casrv *s)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    int64_t now = caserver_now();
    uint64_t gen = 0;

    if (store_generation(ca_store(s->ca), &gen, &err) != 0) {
        log_msg("warn", "ca_crl", "cannot tell whether the CRL is current, serving number %llu: %s",
                (unsigned long long)s->crl_number, err.msg);
        return;
    }
    if (s->crl_gen_known && gen == s->crl_gen &&
        now < s->crl_next_update - (s->crl_next_update - s->crl_this_update) / 3)
        return;
    if (caserver_crl_refresh(s, &err) != 0)
        log_msg("error", "ca_crl", "cannot bring the CRL up to date, serving number %llu: %s",
                (unsigned long long)s->crl_number, err.msg);
}

/*
 * Whether the server certificate on disk can be kept at `now`: issued by
 * this issuing CA, its key matching, every --server-name on it, and more than
 * a third of its life left.  Fills the validity and serial of s on success.
 */
static bool
server_cert_usable(struct casrv *s, const char *crt, const char *key, int64_t now)
{
    BIO *b = BIO_new_file(crt, "r");
    X509 *cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO *kb = BIO_new_file(key, "r");
    EVP_PKEY *pk = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    X509 *issuing = ca_issuing_cert(s->ca);
    int64_t nb = 0, na = 0;
    bool ok = cert != NULL && pk != NULL && X509_check_issued(issuing, cert) == X509_V_OK &&
              X509_verify(cert, X509_get0_pubkey(issuing)) == 1 &&
              X509_check_private_key(cert, pk) == 1 && x509u_time(X509_get0_notBefore(cert), &nb) &&
              x509u_time(X509_get0_notAfter(cert), &na) && now < na - (na - nb) / 3;

    for (size_t i = 0; ok && i < s->o->nserver_names; i++) {
        const char *n = s->o->server_names[i];
        ok = X509_check_ip_asc(cert, n, 0) == 1 || X509_check_host(cert, n, 0, 0, NULL) == 1;
    }
    if (ok) {
        free(s->cert_serial);
        s->cert_serial = x509u_serial(X509_get0_serialNumber(cert));
        s->cert_not_before = nb;
        s->cert_not_after = na;
    }
    ERR_clear_error();
    EVP_PKEY_free(pk);
    BIO_free(kb);
    X509_free(cert);
    BIO_free(b);
    return ok;
}

/* The SANs of the server certificate from --server-name: "ip:" for addresses, else "dns:". */
static char **
server_sans(const struct caserver_opts *o)
{
    char **v = calloc(o->nserver_names + 1, sizeof(char *));
    unsigned char buf[16];

    for (size_t i = 0; v != NULL && i < o->nserver_names; i++) {
        const char *n = o->server_names[i];
        bool ip = inet_pton(AF_INET, n, buf) == 1 || inet_pton(AF_INET6, n, buf) == 1;
        if (asprintf(&v[i], "%s:%s", ip ? "ip" : "dns", n) < 0)
            v[i] = NULL;
        if (v[i] == NULL) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return NULL;
        }
    }
    return v;
}

/*
 * The serial the new server certificate renews: the one in ca-server.crt
 * when the inventory holds it valid and not yet renewed (NULL otherwise).
 */
static char *
server_cert_renews(struct casrv *s, const char *crt)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    BIO *b = BIO_new_file(crt, "r");
    X509 *cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    char *raw = cert != NULL ? x509u_serial(X509_get0_serialNumber(cert)) : NULL;
    char *canon = raw != NULL ? store_serial_canonical(raw, &err) : NULL;
    struct store_cert *row = NULL;

    if (canon != NULL && (store_get(ca_store(s->ca), canon, &row, &err) != 0 || row == NULL ||
                          row->status != STORE_VALID || row->renewed_by != NULL ||
                          strcmp(row->profile, SERVER_PROFILE) != 0)) {
        free(canon);
        canon = NULL;
    }
    ERR_clear_error();
    store_cert_free(row);
    free(raw);
    X509_free(cert);
    BIO_free(b);
    return canon;
}

/* A TLS context for the API from the files on disk; replaces s->ssl_ctx. */
static int
server_ctx_load(struct casrv *s, const char *crt, const char *key, const char *trust,
                struct duet_err *err)
{
    struct tls_opts to = {.cert_file = crt,
                          .key_file = key,
                          .ca_file = trust,
                          .verify_optional = true,
                          .any_purpose = true,
                          /* POST /v1/renew decides on an expired one (a profile's renew_grace) */
                          .expired_leaf_ok = true,
                          .listener = "ca-serve"};
    SSL_CTX *ctx = NULL;

    if (tls_server_ctx_new(&to, &ctx, NULL, err) != 0)
        return -1;
    /* Connections open keep the old context: their SSL objects hold a reference. */
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = ctx;
    return 0;
}

/*
 * Make sure the server certificate is usable at now: keep the one on disk,
 * or issue a new one (profile server, a new key), write key and chain, and
 * load a new TLS context.  At start (s->ssl_ctx NULL) the context is loaded
 * in every case.
 */
static int
server_cert_ensure(struct casrv *s, int64_t now, struct duet_err *err)
{
    char *crt = path_in(s, CASERVER_FILE_CERT), *key = path_in(s, CASERVER_FILE_KEY);
    char *trust = path_in(s, CASERVER_FILE_TRUST);
    char **sans = NULL, *renews = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pk = NULL;
    bool clamped = false;
    int rc = -1;

    if (crt == NULL || key == NULL || trust == NULL) {
        err_nomem(err);
        goto out;
    }
    if (server_cert_usable(s, crt, key, now)) {
        rc = s->ssl_ctx == NULL ? server_ctx_load(s, crt, key, trust, err) : 0;
        goto out;
    }
    if ((sans = server_sans(s->o)) == NULL) {
        err_nomem(err);
        goto out;
    }
    renews = server_cert_renews(s, crt);
    {
        struct ca_request req = {.profile = SERVER_PROFILE,
                                 .cn = s->o->server_names[0],
                                 .sans = (const char *const *)sans,
                                 .nsans = s->o->nserver_names,
                                 .owner = "duet-ca-serve",
                                 .renews = renews,
                                 .now = now};
        if (ca_issue_keypair(s->ca, &req, NULL, &cert, &pk, &clamped, err) != 0) {
            err_prefix(err, "the CA server's own certificate (profile %s)", SERVER_PROFILE);
            goto out;
        }
    }
    {
        X509 *chain[2] = {cert, ca_issuing_cert(s->ca)};
        if (pemout_key(key, pk, NULL, err) != 0 || pemout_certs(crt, chain, 2, NULL, err) != 0)
            goto out;
    }
    if (!server_cert_usable(s, crt, key, now)) {
        err_set(err, DUET_ERR_INTERNAL, "%s: the certificate just issued cannot be used", crt);
        goto out;
    }
    if (server_ctx_load(s, crt, key, trust, err) != 0)
        goto out;
    log_msg("info", "ca_server_certificate", "issued the CA server's certificate, serial %s%s%s",
            s->cert_serial, renews != NULL ? ", renewing " : "", renews != NULL ? renews : "");
    rc = 0;
out:
    for (size_t i = 0; sans != NULL && i < s->o->nserver_names; i++)
        free(sans[i]);
    free(sans);
    free(renews);
    EVP_PKEY_free(pk);
    X509_free(cert);
    free(crt);
    free(key);
    free(trust);
    return rc;
}

/* Routes of the HTTPS listener and of the plain one (public: usable without TLS). */
struct route {
    const char *path;
    bool public;
};

enum route_id {
    R_CA,
    R_ENROLL,
    R_RENEW,
    R_REVOKE,
    R_ROOTS,
    R_CHAIN,
    R_CRL,
    R_CRL_PEM,
    R_OCSP,
    R_HEALTHZ,
    R_METRICS,
    R_COUNT
};

static const struct route routes[R_COUNT] = {
    [R_CA] = {"/v1/ca", false},        [R_ENROLL] = {"/v1/enroll", false},
    [R_RENEW] = {"/v1/renew", false},  [R_REVOKE] = {"/v1/revoke", false},
    [R_ROOTS] = {"/roots.pem", true},  [R_CHAIN] = {"/chain.pem", true},
    [R_CRL] = {"/crl", true},          [R_CRL_PEM] = {"/crl.pem", true},
    [R_OCSP] = {"/ocsp", true},        [R_HEALTHZ] = {"/healthz", false},
    [R_METRICS] = {"/metrics", false},
};

/* One request on either listener. */
static void
dispatch(struct evhttp_request *req, struct casrv *s, bool tls)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    struct careq r;
    int id = R_COUNT;

    for (int i = 0; path != NULL && i < R_COUNT; i++) {
        size_t n = strlen(routes[i].path);
        if ((tls || routes[i].public) && strncmp(path, routes[i].path, n) == 0 &&
            (path[n] == '\0' || (i == R_OCSP && path[n] == '/'))) {
            id = i;
            break;
        }
    }
    caserver_req_begin(&r, s, req, id < R_COUNT ? routes[id].path : "other", tls);
    if (!caserver_framing_ok(&r) || !caserver_body_size_ok(&r))
        return;
    /*
     * The TLS layer lets a client certificate past its notAfter through (and
     * only that failure): renewal decides on it, every other endpoint refuses it.
     */
    if (r.id != NULL && caserver_now() > r.id->not_after && id != R_RENEW) {
        char when[32];
        x509u_fmt_rfc3339(r.id->not_after, when, sizeof(when));
        caserver_reply_error(&r, 401, "certificate_expired",
                             "the client certificate (serial %s) expired at %s; only POST "
                             "/v1/renew accepts an expired certificate, within its profile's "
                             "renew_grace",
                             r.id->serial, when);
        return;
    }
    switch (id) {
    case R_CA:
        caserver_api_ca(&r);
        break;
    case R_ENROLL:
        caserver_api_enroll(&r);
        break;
    case R_RENEW:
        caserver_api_renew(&r);
        break;
    case R_REVOKE:
        caserver_api_revoke(&r);
        break;
    case R_ROOTS:
        caserver_pub_pem(&r, s->roots_pem);
        break;
    case R_CHAIN:
        caserver_pub_pem(&r, s->chain_pem);
        break;
    case R_CRL:
        caserver_pub_crl(&r, false);
        break;
    case R_CRL_PEM:
        caserver_pub_crl(&r, true);
        break;
    case R_OCSP:
        caserver_pub_ocsp(&r, path + strlen(routes[R_OCSP].path));
        break;
    case R_HEALTHZ:
        caserver_pub_healthz(&r);
        break;
    case R_METRICS:
        caserver_pub_metrics(&r);
        break;
    default:
        caserver_reply_error(&r, 404, "not_found",
                             "no such endpoint%s; see docs/ca-server.md for the API",
                             tls ? ""
                                 : " on the plain HTTP listener (it serves /crl, /crl.pem, "
                                   "/roots.pem, /chain.pem and /ocsp)");
        break;
    }
}

/* The HTTPS listener's requests; a connection without TLS gets a bare 500, never the API. */
static void
https_cb(struct evhttp_request *req, void *arg)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;

    if (bev == NULL || bufferevent_openssl_get_ssl(bev) == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    dispatch(req, arg, true);
}

/* The plain HTTP listener's requests. */
static void
http_cb(struct evhttp_request *req, void *arg)
{
    dispatch(req, arg, false);
}

/*
 * The audit line of a handshake refused because the client certificate did
 * not verify (another CA's, not yet valid, a bad signature...): the peer, the
 * sentence of the verification and its category, when the fatal alert goes
 * out.  evhttp closes such connections without a request to log.
 */
static void
handshake_info_cb(const SSL *ssl, int where, int ret)
{
    const char *reason = (where & SSL_CB_WRITE_ALERT) != 0 ? tls_verify_reason(ssl) : NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[INET6_ADDRSTRLEN] = "?", peer[64];
    struct log_line l;
    int port = 0;

    if (reason == NULL || strcmp(SSL_alert_type_string((int)ret), "F") != 0)
        return;
    if (getpeername(SSL_get_fd(ssl), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(peer, sizeof(peer), "%s:%d", addr, port);
    log_line_begin(&l, "info", "ca_handshake_refused");
    log_line_str(&l, "peer", peer);
    log_line_str(&l, "reason", verify_fail_code(tls_verify_category(ssl)));
    log_line_str(&l, "alert", SSL_alert_desc_string_long((int)ret));
    log_line_str(&l, "detail", reason);
    log_line_end(&l);
}

/*
 * A TLS bufferevent for each accepted connection, on the current context.
 * Without one (out of memory), a plain bufferevent: https_cb then drops the
 * connection rather than answering in clear.
 */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
    struct casrv *s = arg;
    SSL *ssl = SSL_new(s->ssl_ctx);
    struct bufferevent *bev;

    if (ssl == NULL)
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    SSL_set_info_callback(ssl, handshake_info_cb);
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* caserver_input_max() of the server, for input_bound_cb (one server per process). */
static size_t input_max;

/*
 * Data came in on a connection: when evhttp is writing an answer on it (no
 * read callback: it only watches for a close) and the input is past
 * input_max, stop reading the socket; evhttp enables reading again once the
 * answer is written, before it reads the next request.
 */
static void
input_bound_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    bufferevent_data_cb rcb = NULL;

    if (info->n_added == 0 || evbuffer_get_length(in) <= input_max)
        return;
    bufferevent_getcb(bev, &rcb, NULL, NULL, NULL);
    if (rcb == NULL && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        bufferevent_disable(bev, EV_READ);
}

/* Bound what a connection makes the server hold of what its client sends; see caserver_int.h. */
static struct bufferevent *
bounded(const struct casrv *s, struct bufferevent *bev)
{
    input_max = caserver_input_max(s);
    if (bev != NULL)
        (void)evbuffer_add_cb(bufferevent_get_input(bev), input_bound_cb, bev);
    return bev;
}

/* The HTTPS listener's bufferevents: bev_cb's, counted for --max-connections. */
static struct bufferevent *
https_bev_cb(struct event_base *base, void *arg)
{
    struct caserver_listener *l = arg;

    return caserver_conn_counted(l, bounded(l->s, bev_cb(base, l->s)));
}

/* The plain listener's bufferevents (those evhttp would make), counted, OCSP on the lean path. */
static struct bufferevent *
http_bev_cb(struct event_base *base, void *arg)
{
    struct caserver_listener *l = arg;
    struct bufferevent *bev = caserver_conn_counted(
        l, bounded(l->s, bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)));

    caserver_lean_watch(l->s, bev);
    return bev;
}

/*
 * The timer: the CRL (another node's, or a new one before a third of its life is
 * left), the server certificate, the signer.
 */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct casrv *s = arg;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    int64_t now = caserver_now();

    (void)fd;
    (void)what;
    caserver_crl_check(s);
    if (server_cert_ensure(s, now, &err) != 0)
        log_msg("error", "ca_server_certificate", "cannot renew the server certificate: %s",
                err.msg);
    if (ca_ocsp_signer_ensure(s->ca, now, 0, &s->signer, NULL, &err) != 0)
        log_msg("error", "ca_ocsp_signer", "cannot renew the OCSP signer: %s", err.msg);
    log_batch_flush();
}

/* SIGTERM, SIGINT: stop accepting, finish the loop. */
static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct casrv *s = arg;

    (void)what;
    log_msg("info", "ca_serve_stop", "signal %d: stopping", (int)sig);
    (void)notify_send("STOPPING=1");
    event_base_loopexit(s->base, NULL);
}

/* An evhttp on a listening socket bound to addr; the callback gets s. */
static struct evhttp *
listener_new(struct casrv *s, const char *text, bool tls, struct duet_err *err)
{
    struct net_addr a;
    struct evconnlistener *lev = NULL;
    struct evhttp *h = NULL;

    if (net_addr_parse(text, false, &a, err) != 0)
        return NULL;
    lev = evconnlistener_new_bind(s->base, NULL, NULL,
                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                  128, (struct sockaddr *)&a.ss, a.len);
    if (lev == NULL) {
        err_set(err, DUET_ERR_INPUT, "cannot listen on %s: %s", a.text,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto out;
    }
    if ((h = evhttp_new(s->base)) == NULL || evhttp_bind_listener(h, lev) == NULL) {
        evconnlistener_free(lev);
        err_nomem(err);
        goto out;
    }
    caserver_conns_listen(&s->lst[tls ? 0 : 1], lev);
    /*
     * No Nagle delay: an HTTPS answer leaves as two TLS records (head, body), and
     * the second would otherwise wait for the client's delayed ACK of the first
     * (40 ms on Linux) on every request of a kept-alive connection after the
     * first.  Accepted sockets inherit the option from the listener on Linux.
     */
    {
        int one = 1;
        (void)setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one,
                         sizeof(one));
    }
    evhttp_set_timeout(h, CASERVER_TIMEOUT);
    evhttp_set_max_headers_size(h, 16384);
    /*
     * dispatch() answers a body over --max-body with the API's 413; libevent's
     * own limit, further out, only bounds what a connection may make the
     * server hold (it refuses a larger body unread, with its HTML 413).
     */
    evhttp_set_max_body_size(h, (ev_ssize_t)(s->o->max_body * CASERVER_BODY_READ_FACTOR));
    /* Read (and drop) a body over that after the 413, so the client sees the answer. */
    evhttp_set_flags(h, EVHTTP_SERVER_LINGERING_CLOSE);
    /*
     * Every method reaches the routes, which answer 405 in the API's error
     * format: all bits, so that a method libevent does not know (its
     * EVHTTP_REQ_UNKNOWN_) gets that too instead of libevent's HTML 501.
     */
    evhttp_set_allowed_methods(h, 0xffff);
    if (tls) {
        evhttp_set_bevcb(h, https_bev_cb, &s->lst[0]);
        evhttp_set_gencb(h, https_cb, s);
    } else {
        evhttp_set_bevcb(h, http_bev_cb, &s->lst[1]);
        evhttp_set_gencb(h, http_cb, s);
    }
out:
    net_addr_clear(&a);
    return h;
}

/* What does not change while the server runs: roots, chain, fingerprints, admin patterns. */
static int
prepare(struct casrv *s, struct duet_err *err)
{
    X509 *root = ca_root_cert(s->ca), *issuing = ca_issuing_cert(s->ca);
    X509 *chain[2] = {issuing, root};
    char *trust = path_in(s, CASERVER_FILE_TRUST);
    int rc = -1;

    s->roots_pem = certs_pem(&root, 1);
    s->chain_pem = certs_pem(chain, 2);
    s->root_sha256 = x509u_fingerprint(root);
    s->issuing_sha256 = x509u_fingerprint(issuing);
    s->admins = calloc(s->o->nadmin_ids + 1, sizeof(*s->admins));
    if (trust == NULL || s->roots_pem == NULL || s->chain_pem == NULL || s->root_sha256 == NULL ||
        s->issuing_sha256 == NULL || s->admins == NULL) {
        err_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < s->o->nadmin_ids; i++) {
        if (policy_pattern_parse(s->o->admin_ids[i], &s->admins[i], err) != 0) {
            err_prefix(err, "--admin-identity %s", s->o->admin_ids[i]);
            goto out;
        }
        s->nadmins++;
    }
    /* Client certificates verify to the issuing CA, then the root: both are anchors. */
    if (pemout_certs(trust, chain, 2, NULL, err) != 0)
        goto out;
    rc = 0;
out:
    free(trust);
    return rc;
}

/* Descriptors kept beside the connections: the listeners, the inventory, the log, epoll... */
#define FD_SPARE 64

/*
 * Raise the soft limit of descriptors to what --max-connections needs on the
 * listeners (as far as the hard limit allows), and warn when it stays below:
 * then accept() runs out of descriptors before the cap is reached, and
 * pauses (ca_accept) instead.
 */
static void
nofile_fit(const struct caserver_opts *o)
{
    rlim_t need = (rlim_t)o->max_connections * (o->http_listen != NULL ? 2 : 1) + FD_SPARE;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
        return;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    log_msg("warn", "ca_limits",
            "the descriptor limit (RLIMIT_NOFILE) is %llu, below the %llu that --max-connections "
            "%zu needs on %s; descriptors run out first and accepting pauses (ca_accept): raise "
            "LimitNOFILE or lower --max-connections",
            (unsigned long long)rl.rlim_cur, (unsigned long long)need, o->max_connections,
            o->http_listen != NULL ? "both listeners" : "the listener");
}

/* Free what prepare() and the run made. */
static void
casrv_clear(struct casrv *s)
{
    for (size_t i = 0; i < s->nadmins; i++)
        policy_pattern_clear(&s->admins[i]);
    free(s->admins);
    /* Connections the evhttps free below must not make a listener accept again. */
    caserver_conns_stop(s);
    caserver_lean_stop();
    if (s->https != NULL)
        evhttp_free(s->https);
    if (s->http != NULL)
        evhttp_free(s->http);
    SSL_CTX_free(s->ssl_ctx);
    ca_ocsp_signer_free(s->signer);
    ca_ocsp_cache_free(s->ocsp_cache);
    OPENSSL_free(s->crl_der);
    free(s->crl_pem);
    free(s->roots_pem);
    free(s->chain_pem);
    free(s->root_sha256);
    free(s->issuing_sha256);
    free(s->cert_serial);
    caserver_metrics_clear();
}

/* Serve; see caserver.h. */
int
caserver_run(struct ca *ca, const struct caserver_opts *o, struct duet_err *err)
{
    struct casrv s = {.ca = ca, .o = o};
    struct event *tick = NULL, *term = NULL, *intr = NULL;
    int64_t period = o->crl_validity / 6;
    struct timeval tv;
    int64_t now = caserver_now();
    int rc = -1;

    if (o->nserver_names == 0)
        return err_set(err, DUET_ERR_INPUT, "at least one --server-name is needed");
    signal(SIGPIPE, SIG_IGN);
    {
        /*
         * epoll with a changelist, as the proxy: evhttp disables reading while
         * it answers and enables it again in the same loop iteration; with the
         * changelist that costs no epoll_ctl (two fewer per OCSP answer).  No
         * descriptor is dup'd in this process.
         */
        struct event_config *ec = event_config_new();
        if (ec != NULL)
            event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        s.base = ec != NULL ? event_base_new_with_config(ec) : event_base_new();
        event_config_free(ec);
    }
    if (s.base == NULL) {
        err_nomem(err);
        goto out;
    }
    if (prepare(&s, err) != 0 || server_cert_ensure(&s, now, err) != 0 ||
        ca_ocsp_signer_ensure(ca, now, 0, &s.signer, NULL, err) != 0 ||
        caserver_crl_refresh(&s, err) != 0)
        goto out;
    if (caserver_conns_init(&s, err) != 0)
        goto out;
    if (o->ocsp_cache_age > 0 &&
        (s.ocsp_cache = ca_ocsp_cache_new(CA_OCSP_CACHE_ENTRIES, o->ocsp_cache_age)) == NULL) {
        err_nomem(err);
        goto out;
    }
    nofile_fit(o);
    if ((s.https = listener_new(&s, o->listen, true, err)) == NULL ||
        (o->http_listen != NULL && (s.http = listener_new(&s, o->http_listen, false, err)) == NULL))
        goto out;
    tv.tv_sec = period < 1 ? 1 : period > 60 ? 60 : (time_t)period;
    tv.tv_usec = 0;
    tick = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
    term = evsignal_new(s.base, SIGTERM, stop_cb, &s);
    intr = evsignal_new(s.base, SIGINT, stop_cb, &s);
    if (tick == NULL || term == NULL || intr == NULL || event_add(tick, &tv) != 0 ||
        event_add(term, NULL) != 0 || event_add(intr, NULL) != 0) {
        err_nomem(err);
        goto out;
    }
    log_msg("info", "ca_serve_start",
            "serving the CA of %s on https://%s%s%s, server certificate serial %s, root %s",
            ca_dir(ca), o->listen, o->http_listen != NULL ? " and http://" : "",
            o->http_listen != NULL ? o->http_listen : "", s.cert_serial, s.root_sha256);
    log_batch_flush();
    log_batch_on_loop(s.base);
    /* Type=notify: ready once both listeners accept (nothing without NOTIFY_SOCKET). */
    (void)notify_send("READY=1\nSTATUS=serving");
    if (event_base_dispatch(s.base) != 0) {
        err_set(err, DUET_ERR_INTERNAL, "the event loop failed");
        goto out;
    }
    rc = 0;
out:
    /* Lines from here on go out one by one: the loop that flushed them ends. */
    log_batch_end();
    if (tick != NULL)
        event_free(tick);
    if (term != NULL)
        event_free(term);
    if (intr != NULL)
        event_free(intr);
    casrv_clear(&s);
    if (s.base != NULL)
        event_base_free(s.base);
    return rc;
}
