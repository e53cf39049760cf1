/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c - the life of a client connection on the accept side: accept (the
 * connection limit, the failed-handshake throttle), the TLS handshake and its
 * deadline, the identity, the one refusal path (conn_refuse), the idle
 * timeout, draining, close and free.  What happens once the handshake is done
 * is the connection mode's (struct conn_mode in proxy_int.h): conn.c calls
 * its hooks and never asks which mode it is.
 */
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "lib/x509util.h"
#include "util/log.h"

/* --- lingering close after a fatal alert ----------------------------------------- */

/*
 * A client refused at the handshake has often written already: with TLS 1.3
 * its side of the handshake ends before the proxy looks at its certificate,
 * and clients send their request at once.  Closing the socket with that
 * request unread makes the kernel answer with a reset, and the client reports
 * "connection reset" instead of the alert (certificate_required, unknown_ca)
 * that says what is wrong.  So a refused socket is shut for writing (the alert
 * and a FIN go out) and what the client still sends is read and dropped, up to
 * LINGER_BYTES or LINGER_SECS, whichever comes first, then it is closed.
 * Bounded per worker: past LINGER_MAX a refused socket is closed at once, so
 * a flood of bad handshakes cannot hold descriptors (the throttle limits it
 * further).
 */
#define LINGER_SECS 2.0
#define LINGER_BYTES (64 * 1024)
#define LINGER_MAX 256

struct conn_linger {
    struct conn_linger *prev, *next;
    struct worker *w;
    struct event *ev;
    evutil_socket_t fd;
    size_t left;     /* bytes still read before closing regardless */
    double deadline; /* now_mono() time after which it closes regardless */
};

static void
linger_end(struct conn_linger *l)
{
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        l->w->lingering = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    l->w->nlingering--;
    event_free(l->ev);
    evutil_closesocket(l->fd);
    free(l);
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn_linger *l = arg;
    char buf[4096];
    double left_s = l->deadline - now_mono();
    struct timeval tv;
    ssize_t n = 0;

    if (what & EV_READ) {
        n = recv(fd, buf, l->left < sizeof(buf) ? l->left : sizeof(buf), 0);
        if (n > 0)
            l->left -= (size_t)n;
    }
    /* EOF, an error, the byte budget or the deadline: done. */
    if (n == 0 && (what & EV_READ) != 0) {
        linger_end(l);
        return;
    }
    if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) || l->left == 0 ||
        left_s <= 0) {
        linger_end(l);
        return;
    }
    tv.tv_sec = (time_t)left_s;
    tv.tv_usec = (suseconds_t)((left_s - (double)tv.tv_sec) * 1e6);
    if (event_add(l->ev, &tv) != 0)
        linger_end(l);
}

/*
 * Keep the client socket of c open past the bufferevent's free, shut for
 * writing and drained as above.  Returns quietly when it cannot (at the cap,
 * out of descriptors or memory): the socket then closes with the bufferevent.
 */
static void
linger_start(struct conn *c)
{
    static const struct timeval first = {(time_t)LINGER_SECS, 0};
    struct worker *w = c->w;
    evutil_socket_t fd = bufferevent_getfd(c->cbev);
    struct conn_linger *l;

    if (fd < 0 || w->nlingering >= LINGER_MAX || (l = calloc(1, sizeof(*l))) == NULL)
        return;
    /* Our own descriptor of the socket: the bufferevent closes its one. */
    if ((l->fd = dup(fd)) < 0) {
        free(l);
        return;
    }
    l->ev = event_new(w->base, l->fd, EV_READ, linger_cb, l);
    if (l->ev == NULL || evutil_make_socket_nonblocking(l->fd) != 0 ||
        shutdown(l->fd, SHUT_WR) != 0 || event_add(l->ev, &first) != 0) {
        if (l->ev != NULL)
            event_free(l->ev);
        evutil_closesocket(l->fd);
        free(l);
        return;
    }
    l->w = w;
    l->left = LINGER_BYTES;
    l->deadline = now_mono() + LINGER_SECS;
    l->next = w->lingering;
    if (w->lingering != NULL)
        w->lingering->prev = l;
    w->lingering = l;
    w->nlingering++;
}

/* Close the lingering sockets of a worker that stops; see proxy_int.h. */
void
conn_linger_clear(struct worker *w)
{
    while (w->lingering != NULL)
        linger_end(w->lingering);
}

/* --- the failed-handshake throttle ------------------------------------------ */

static void
throttle_policy_of(const struct proxy_cfg *cfg, struct throttle_policy *p)
{
    p->per_second = cfg->fail_per_second;
    p->burst = cfg->fail_burst;
    p->exempt = cfg->throttle_exempt;
    p->nexempt = cfg->nthrottle_exempt;
}

/*
 * Whether this address may start a handshake now (it takes a token that a
 * successful handshake gives back); a refusal is counted, and logged at most
 * once a second per address with the number refused since.
 */
static bool
conn_throttle_allows(struct proxy *px, const struct proxy_cfg *cfg, const char *listener,
                     const struct sockaddr *sa)
{
    struct throttle_policy p;
    uint64_t report = 0;
    char ip[INET6_ADDRSTRLEN] = "?";

    throttle_policy_of(cfg, &p);
    if (throttle_take(px->throttle, &p, sa, now_mono(), &report))
        return true;
    metrics_count("duet_throttled_total", "reason=\"failed_handshakes\"", 1);
    if (report > 0) {
        char peer[80];
        sockaddr_text(sa, peer, sizeof(peer), ip, sizeof(ip));
        log_event("warn", "throttled",
                  json_pack("{s:s,s:s,s:s,s:I,s:f,s:f}", "listener", listener, "peer", ip,
                            "reason", "too many failed handshakes from this address", "refused",
                            (json_int_t)report, "burst", cfg->fail_burst, "per_second",
                            cfg->fail_per_second));
    }
    return false;
}

/*
 * A handshake from this address succeeded, or the proxy itself failed before
 * the handshake: the token taken at accept comes back.
 */
static void
conn_throttle_give_back(struct proxy *px, const struct proxy_cfg *cfg, const struct sockaddr *sa)
{
    struct throttle_policy p;

    throttle_policy_of(cfg, &p);
    throttle_give_back(px->throttle, &p, sa, now_mono());
}

/* --- close and free ------------------------------------------------------------ */

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    ocsp_waiter_cancel(c->ocsp_wait); /* an answer arriving later finds nobody */
    c->ocsp_wait = NULL;
    if (c->hs_timer != NULL)
        event_free(c->hs_timer);
    if (c->life_timer != NULL)
        event_free(c->life_timer);
    if (c->cbev != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
        if (ssl != NULL)
            SSL_shutdown(ssl);
        if (c->linger)
            linger_start(c);
        bufferevent_free(c->cbev);
    }
    if (c->ubev != NULL)
        upstream_release(c);
    if (c->wprev != NULL)
        c->wprev->wnext = c->wnext;
    else if (c->w->conns == c)
        c->w->conns = c->wnext;
    if (c->wnext != NULL)
        c->wnext->wprev = c->wprev;
    metrics_bytes(c->up_bytes, c->down_bytes);
    metrics_conn_close();
    identity_free(c->id);
    free(c->xfcc);
    if (c->mode->release != NULL)
        c->mode->release(c);
    gen_unref(c->gen);
    free(c);
}

/* Schedule the free; callbacks stop at once; see proxy_int.h. */
void
conn_close(struct conn *c)
{
    static const struct timeval zero = {0, 0};

    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (c->hs_timer != NULL)
        event_del(c->hs_timer);
    if (c->life_timer != NULL)
        event_del(c->life_timer);
    if (c->mode->stop != NULL)
        c->mode->stop(c);
    if (c->cbev != NULL) {
        bufferevent_setcb(c->cbev, NULL, NULL, NULL, NULL);
        bufferevent_disable(c->cbev, EV_READ | EV_WRITE);
    }
    if (c->ubev != NULL) {
        bufferevent_setcb(c->ubev, NULL, NULL, NULL, NULL);
        bufferevent_disable(c->ubev, EV_READ | EV_WRITE);
    }
    if (event_base_once(c->w->base, -1, EV_TIMEOUT, conn_free_cb, c, &zero) != 0)
        conn_free_cb(-1, 0, c);
}

/* An address in words, for logs; see proxy_int.h. */
void
sockaddr_text(const struct sockaddr *sa, char *buf, size_t len, char *ip, size_t iplen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
        snprintf(buf, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
        snprintf(buf, len, "[%s]:%d", host, port);
    } else {
        snprintf(host, sizeof(host), "unix");
        snprintf(buf, len, "unix");
    }
    snprintf(ip, iplen, "%s", host);
}

/* --- logs and refusals ---------------------------------------------------------- */

/* The reason a TLS handshake failed, in words, with its metrics category. */
void
conn_handshake_failure(struct bufferevent *bev, SSL *ssl, char *buf, size_t len,
                       enum tls_fail *fail)
{
    const char *r = ssl != NULL ? tls_verify_reason(ssl) : NULL;
    unsigned long e = 0, last = 0;

    /* libevent queues SSL_get_error()'s code too; keep the most specific OpenSSL error. */
    while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0) {
        if (ERR_GET_LIB(e) != 0 && (last == 0 || ERR_GET_LIB(last) != ERR_LIB_SSL))
            last = e;
    }
    if (r != NULL) {
        snprintf(buf, len, "%s", r);
        *fail = tls_verify_fail(ssl);
        if (*fail == TLS_FAIL_NONE)
            *fail = TLS_FAIL_OTHER;
        return;
    }
    if (last != 0 && ERR_GET_REASON(last) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        snprintf(buf, len, "the client presented no certificate");
        *fail = TLS_FAIL_NO_CERT;
        return;
    }
    if (last != 0) {
        const char *rs = ERR_reason_error_string(last);
        char code[32];
        snprintf(code, sizeof(code), "error %lx", last);
        snprintf(buf, len, "TLS handshake failed: %s", rs != NULL ? rs : code);
        *fail = TLS_FAIL_OTHER;
        return;
    }
    snprintf(buf, len, "the connection closed during the TLS handshake");
    *fail = TLS_FAIL_OTHER;
}

/*
 * What a refused client presented, so that an operator can tell who it was:
 * its subject, serial and issuer, marked unverified (never an identity).
 */
static void
log_presented(struct log_line *line, X509 *cert)
{
    char *subject, *issuer, *serial;

    if (cert == NULL)
        return;
    subject = x509u_name(X509_get_subject_name(cert));
    issuer = x509u_name(X509_get_issuer_name(cert));
    serial = x509u_serial(X509_get0_serialNumber(cert));
    log_line_open(line, "client_cert");
    log_line_bool(line, "verified", false);
    log_line_str(line, "subject", subject);
    log_line_str(line, "serial", serial);
    log_line_str(line, "issuer", issuer);
    log_line_close(line);
    free(subject);
    free(issuer);
    free(serial);
}

/* The `handshake` line: result, reason, identity, TLS parameters, duration. */
void
conn_log_handshake(struct conn *c, SSL *ssl, bool ok, const char *reason, enum tls_fail fail,
                   double secs)
{
    const struct duet_identity *id = c->id;
    struct log_line line;

    /* Written for every connection: built without a JSON tree. */
    log_line_begin(&line, ok ? "info" : "warn", "handshake");
    log_line_str(&line, "listener", c->gl->cfg->name);
    log_line_str(&line, "peer", c->peer);
    log_line_str(&line, "result", ok ? "ok" : "failed");
    if (!ok) {
        log_line_str(&line, "reason", reason);
        /* The same category as the metric's label, for machines: no_cert, revoked, ... */
        log_line_str(&line, "reason_code",
                     tls_fail_name(fail != TLS_FAIL_NONE ? fail : TLS_FAIL_OTHER));
    }
    if (id == NULL) {
        log_line_str(&line, "identity", NULL);
        if (!ok && ssl != NULL)
            log_presented(&line, tls_presented_cert(ssl));
    } else {
        log_line_open(&line, "identity");
        log_line_str(&line, "name", id->name);
        log_line_str(&line, "subject", id->subject);
        log_line_open_array(&line, "sans");
        for (size_t i = 0; i < id->nsans; i++) {
            /* "URI:..." whole; the log cuts a value too long for a line inside its string. */
            const char *tag = identity_san_tag(id->sans[i].type);
            size_t n = strlen(tag) + 1 + strlen(id->sans[i].value) + 1;
            char small[256], *buf = n <= sizeof(small) ? small : malloc(n);
            if (buf == NULL)
                continue;
            memcpy(buf, tag, strlen(tag));
            buf[strlen(tag)] = ':';
            memcpy(buf + strlen(tag) + 1, id->sans[i].value, strlen(id->sans[i].value) + 1);
            log_line_str(&line, NULL, buf);
            if (buf != small)
                free(buf);
        }
        log_line_close(&line);
        log_line_str(&line, "serial", id->serial);
        log_line_str(&line, "fingerprint", id->fingerprint);
        log_line_str(&line, "issuer", id->issuer);
        log_line_close(&line);
    }
    if (ssl != NULL && ok) {
        log_line_str(&line, "tls_version", SSL_get_version(ssl));
        log_line_str(&line, "cipher", SSL_get_cipher_name(ssl));
        log_line_bool(&line, "resumed", SSL_session_reused(ssl) != 0);
    }
    log_line_num(&line, "duration_ms", secs * 1e3, 3);
    log_line_end(&line);
}

/* The `authz` line and duet_authz_decisions_total; see proxy_int.h. */
void
conn_log_authz(struct conn *c, const struct policy_decision *d, const char *method,
               const char *host, const char *path)
{
    char labels[512], rl[256], ll[128];
    struct log_line line;

    /* Written for every request: built without a JSON tree. */
    log_line_begin(&line, d->allow ? "info" : "warn", "authz");
    log_line_str(&line, "listener", c->gl->cfg->name);
    log_line_str(&line, "peer", c->peer);
    log_line_str(&line, "decision", d->allow ? "allow" : "deny");
    log_line_str(&line, "rule", d->rule);
    log_line_str(&line, "identity", c->id != NULL ? c->id->name : NULL);
    if (c->mode == &h2_mode)
        log_line_str(&line, "proto", "h2");
    if (method != NULL) {
        log_line_str(&line, "method", method);
        log_line_str(&line, "host", host);
        log_line_str(&line, "path", path);
    }
    log_line_end(&line);
    size_t slot = (size_t)(d->index + 1) * 2 + (d->allow ? 1 : 0);
    struct metrics_counter *m = atomic_load(&c->gl->authz[slot]);
    if (m == NULL) {
        metrics_label(rl, sizeof(rl), d->rule);
        metrics_label(ll, sizeof(ll), c->gl->cfg->name);
        snprintf(labels, sizeof(labels), "listener=\"%s\",rule=\"%s\",decision=\"%s\"", ll,
                 rl, d->allow ? "allow" : "deny");
        m = metrics_counter("duet_authz_decisions_total", labels);
        atomic_store(&c->gl->authz[slot], m);
    }
    metrics_counter_add(m, 1);
}

/* A request refused before the policy: the `request_refused` line, then the answer. */
static void
conn_refuse_request(struct conn *c, int status, const char *reason)
{
    static const char *const kinds[][2] = {
        {"400", "bad_request"},      {"408", "request_timeout"},
        {"431", "header_too_large"}, {"500", "internal_error"},
        {"501", "not_implemented"},  {"505", "http_version_not_supported"},
    };
    const char *kind = "bad_request";
    char code[8];
    json_t *body;

    snprintf(code, sizeof(code), "%d", status);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i][0], code) == 0)
            kind = kinds[i][1];
    }
    log_event(status >= 500 && status != 501 && status != 505 ? "error" : "warn",
              "request_refused",
              json_pack("{s:s,s:s,s:o,s:i,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                        "identity", c->id != NULL ? json_string(c->id->name) : json_null(),
                        "status", status, "reason", reason));
    if (c->mode->reply == NULL) {
        conn_close(c);
        return;
    }
    if (status == 431)
        body = json_pack("{s:s,s:s,s:i}", "error", kind, "detail", reason, "limit_bytes",
                         (int)c->gen->cfg.max_header_bytes);
    else
        body = json_pack("{s:s,s:s}", "error", kind, "detail", reason);
    c->mode->reply(c, status, http_status_str((enum http_status)status), body);
}

/* Refuse a connection or a request: log, count, throttle, answer or close; see proxy_int.h. */
void
conn_refuse(struct conn *c, const struct conn_refusal *r)
{
    switch (r->kind) {
    case CONN_REFUSE_HANDSHAKE:
        /* The token the throttle took at accept is not given back: the address pays. */
        conn_log_handshake(c, c->ssl, false, r->reason, r->fail, r->secs);
        c->linger = true;
        metrics_handshake(c->gl->hs, r->fail, r->secs);
        conn_close(c);
        return;
    case CONN_REFUSE_POLICY:
        if (c->mode->reply == NULL) {
            /* No request to answer: the connection was the request, a refused handshake. */
            metrics_handshake(c->gl->hs, TLS_FAIL_POLICY, r->secs);
            conn_close(c);
            return;
        }
        c->mode->reply(c, 403, "Forbidden",
                       json_pack("{s:s,s:s,s:o}", "error", "forbidden", "rule", r->rule,
                                 "identity",
                                 c->id != NULL ? json_string(c->id->name) : json_null()));
        return;
    case CONN_REFUSE_REQUEST:
        conn_refuse_request(c, r->status, r->reason);
        return;
    }
}

/* --- connections that must end: revoked on reload, too old ---------------------- */

/* End a connection at its mode's next boundary, logged and counted; see proxy_int.h. */
void
conn_retire(struct conn *c, const char *code, const char *reason)
{
    char labels[200], ll[128], cl[48];
    struct log_line line;

    if (c->state != CONN_OPEN || c->retiring)
        return;
    c->retiring = true;
    log_line_begin(&line, "info", "connection_closed");
    log_line_str(&line, "listener", c->gl->cfg->name);
    log_line_str(&line, "peer", c->peer);
    if (c->id == NULL) {
        log_line_str(&line, "identity", NULL);
    } else {
        log_line_open(&line, "identity");
        log_line_str(&line, "name", c->id->name);
        log_line_str(&line, "serial", c->id->serial);
        log_line_str(&line, "issuer", c->id->issuer);
        log_line_close(&line);
    }
    log_line_str(&line, "reason", reason);
    log_line_str(&line, "reason_code", code);
    log_line_num(&line, "age_ms", (now_mono() - c->t_start) * 1e3, 0);
    log_line_end(&line);
    metrics_label(ll, sizeof(ll), c->gl->cfg->name);
    metrics_label(cl, sizeof(cl), code);
    snprintf(labels, sizeof(labels), "listener=\"%s\",reason=\"%s\"", ll, cl);
    metrics_count("duet_connections_closed_total", labels, 1);
    if (c->mode->retire != NULL)
        c->mode->retire(c);
    else
        conn_close(c);
}

/* --max-connection-lifetime passed since accept. */
static void
lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char why[160];

    (void)fd;
    (void)what;
    if (c->state == CONN_HANDSHAKE) {
        conn_close(c); /* the handshake deadline is normally shorter; nothing to answer */
        return;
    }
    snprintf(why, sizeof(why),
             "the connection reached its maximum lifetime of %d ms (--max-connection-lifetime)",
             c->gen->cfg.max_lifetime_ms);
    conn_retire(c, "max_lifetime", why);
}

/*
 * Verify c's client again under generation g's trust for its listener: -1
 * (vf, err say why) when it no longer passes, 0 when it does or nothing
 * changed for it (same binding, or a listener the reload removed, whose
 * connections keep going until they end).
 */
static int
conn_reverify_under(struct conn *c, struct gen *g, enum verify_fail *vf, struct duet_err *err)
{
    const struct gen_listener *ngl = NULL;

    if (c->gen == g || !c->mode->client_tls || c->ssl == NULL)
        return 0;
    for (size_t i = 0; i < g->nls; i++) {
        if (strcmp(g->ls[i].cfg->name, c->gl->cfg->name) == 0)
            ngl = &g->ls[i];
    }
    if (ngl == NULL || ngl->ssl_ctx == NULL || tls_same_binding(c->gl->ssl_ctx, ngl->ssl_ctx))
        return 0;
    *vf = VERIFY_OK;
    err_clear(err);
    return tls_reverify(ngl->ssl_ctx, c->ssl, vf, err) != 0 ? -1 : 0;
}

/* Revalidate a worker's open connections under generation g; see proxy_int.h. */
void
conn_revalidate(struct worker *w, struct gen *g)
{
    for (struct conn *c = w->conns, *next; c != NULL; c = next) {
        enum verify_fail vf = VERIFY_OK;
        struct duet_err err;

        next = c->wnext; /* conn_retire may schedule the free, never do it here */
        if (c->state != CONN_OPEN || c->retiring)
            continue;
        if (conn_reverify_under(c, g, &vf, &err) != 0) {
            enum tls_fail f = tls_fail_of(vf);
            conn_retire(c, tls_fail_name(f != TLS_FAIL_NONE ? f : TLS_FAIL_OTHER), err.msg);
        }
    }
}

/* --- the idle timeout ------------------------------------------------------------ */

/*
 * Idle means no byte in either direction.  Each side's bufferevent has a read
 * timeout, which only sees that side: during a steady download the client
 * sends nothing and its timeout fires although the connection is busy.  So a
 * read timeout is only a check: when bytes moved either way since the last
 * check, the connection is active, and the side's reading starts again (libevent
 * stopped it) with a shorter timeout, a quarter of the idle timeout, so that a
 * connection that then falls silent is closed within a quarter past the idle
 * timeout.  Returns true when the connection goes on, false when it has been
 * silent both ways for the idle timeout and must be closed.
 */
bool
conn_idle_continue(struct conn *c, struct bufferevent *bev)
{
    int ms = c->gen->cfg.idle_timeout_ms;
    uint64_t moved = c->up_bytes + c->down_bytes;
    double now = now_mono();
    double left;

    if (moved != c->idle_seen || c->idle_since == 0) {
        if (moved == c->idle_seen && now - c->t_start >= ms / 1000.0)
            return false; /* silent since it started, for the whole timeout */
        c->idle_seen = moved;
        c->idle_since = now;
        left = ms / 4000.0;
    } else {
        left = ms / 1000.0 - (now - c->idle_since);
        if (left <= 0.001)
            return false;
        if (left > ms / 4000.0)
            left = ms / 4000.0;
    }
    {
        struct timeval tv = {(time_t)left, (suseconds_t)((left - (double)(time_t)left) * 1e6)};
        if (tv.tv_sec == 0 && tv.tv_usec < 1000)
            tv.tv_usec = 1000;
        bufferevent_set_timeouts(bev, &tv, NULL);
    }
    bufferevent_enable(bev, EV_READ);
    return true;
}

/*
 * Give back the buffers of a client connection that waits for its next
 * request: OpenSSL's record buffer (set up by the read that found nothing,
 * kept even with SSL_MODE_RELEASE_BUFFERS) and the input chunk libevent
 * reserved for that read, together about 33 KB that an idle connection would
 * otherwise hold.  The next request allocates them again.
 */
void
conn_trim_idle(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->cbev);
    SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);

    if (evbuffer_get_length(in) == 0) {
        /* evbuffer_drain() frees the chunks only when it drains something. */
        if (evbuffer_add(in, "", 1) == 0)
            evbuffer_drain(in, 1);
    }
    if (ssl != NULL && SSL_pending(ssl) == 0 && !SSL_has_pending(ssl))
        SSL_free_buffers(ssl);
}

/* Draining: connections waiting for their next request close now; see proxy_int.h. */
void
conn_drain_idle(struct worker *w)
{
    for (struct conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->wnext; /* conn_close only schedules the free */
        if ((c->state == CONN_OPEN || c->state == CONN_FLUSHING) && c->mode->idle != NULL &&
            c->mode->idle(c))
            conn_close(c);
        else if (c->state == CONN_OPEN && c->mode->drain != NULL)
            c->mode->drain(c);
    }
}

/* --- the client side: handshake and events -------------------------------------- */

static void
client_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->ocsp_wait != NULL)
        return; /* the mode starts (and reads what waits) once the OCSP answer is in */
    if (c->mode->client_readable != NULL)
        c->mode->client_readable(c);
}

static void
client_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->state == CONN_FLUSHING && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        conn_close(c);
        return;
    }
    if (c->mode->client_writable != NULL)
        c->mode->client_writable(c);
}

/* The client is accepted: its identity, the `handshake` line, then its mode runs. */
static void
client_accepted(struct conn *c)
{
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
    double secs = now_mono() - c->t_start;
    struct duet_err err;
    struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .secs = secs};

    c->state = CONN_OPEN;
    if (c->hs_timer != NULL)
        event_del(c->hs_timer);
    if (tls_peer_identity(c->ssl, &c->id, &err) != 0) {
        r.fail = TLS_FAIL_OTHER;
        r.reason = err.msg;
        conn_refuse(c, &r);
        return;
    }
    conn_log_handshake(c, c->ssl, true, NULL, TLS_FAIL_NONE, secs);
    conn_throttle_give_back(c->w->px, &c->gen->cfg, (const struct sockaddr *)&c->peer_ss);
    bufferevent_set_timeouts(c->cbev, &idle, NULL);
    bufferevent_enable(c->cbev, EV_READ);
    c->mode->handshake_done(c, secs);
}

/* One worker's share of closing the open connections of a certificate found revoked. */
struct ocsp_sweep {
    struct worker *w;
    uint8_t key[OCSP_KEY_LEN];
    char reason[1600];
};

static void
ocsp_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ocsp_sweep *sw = arg;

    (void)fd;
    (void)what;
    for (struct conn *c = sw->w->conns, *next; c != NULL; c = next) {
        uint8_t key[OCSP_KEY_LEN];
        X509 *peer;

        next = c->wnext; /* conn_retire may schedule the free, never do it here */
        if (c->state != CONN_OPEN || c->retiring || !c->mode->client_tls || c->ssl == NULL ||
            (peer = SSL_get0_peer_certificate(c->ssl)) == NULL || !ocsp_cache_key(peer, key) ||
            memcmp(key, sw->key, OCSP_KEY_LEN) != 0)
            continue;
        conn_retire(c, tls_fail_name(TLS_FAIL_REVOKED), sw->reason);
    }
    free(sw);
}

/* Close the open connections of a certificate found revoked; see proxy_int.h. */
void
conn_ocsp_close_revoked(struct proxy *px, const uint8_t key[OCSP_KEY_LEN], const char *reason)
{
    static const struct timeval zero = {0, 0};

    for (int i = 0; i < px->nworkers; i++) {
        struct ocsp_sweep *sw = calloc(1, sizeof(*sw));
        if (sw == NULL)
            return;
        sw->w = &px->workers[i];
        memcpy(sw->key, key, OCSP_KEY_LEN);
        snprintf(sw->reason, sizeof(sw->reason), "open connection: %.1570s", reason);
        if (event_base_once(sw->w->base, -1, EV_TIMEOUT, ocsp_sweep_cb, sw, &zero) != 0)
            free(sw);
    }
}

/*
 * What the OCSP check of the client's leaf decided (--ocsp): good goes on;
 * revoked is refused with the revocation time and reason, like a CRL's; any
 * other outcome is refused under `require` (naming the responder and what
 * went wrong) and accepted under `prefer` (the CRLs, if any, were checked in
 * the handshake), with an `ocsp_check_failed` line and a count.
 */
static void
conn_ocsp_outcome(struct conn *c, const struct ocsp_result *res)
{
    const struct listener_cfg *l = c->gl->cfg;
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    char label[600], why[1600], labels[256], ll[128], *serial = NULL;
    uint8_t key[OCSP_KEY_LEN];
    const char *responder = res->url[0] != '\0' ? res->url : "(none)";
    struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .secs = now_mono() - c->t_start};
    struct log_line line;

    if (res->kind == OCSP_R_GOOD || leaf == NULL) {
        client_accepted(c);
        return;
    }
    x509u_label(leaf, label, sizeof(label));
    if (res->kind == OCSP_R_REVOKED) {
        ocsp_revoked_why(leaf, res, why, sizeof(why));
        r.fail = TLS_FAIL_REVOKED;
        r.reason = why;
        if (!res->cached && ocsp_cache_key(leaf, key))
            conn_ocsp_close_revoked(c->w->px, key, why); /* fresh news: its open connections */
        conn_refuse(c, &r);
        return;
    }
    serial = x509u_serial(X509_get0_serialNumber(leaf));
    log_line_begin(&line, "warn", "ocsp_check_failed");
    log_line_str(&line, "listener", l->name);
    log_line_str(&line, "peer", c->peer);
    log_line_str(&line, "responder", responder);
    log_line_str(&line, "serial", serial);
    log_line_str(&line, "result", ocsp_result_name(res->kind));
    log_line_str(&line, "code", res->kind == OCSP_R_UNKNOWN ? "unknown" : res->code);
    log_line_str(&line, "reason", res->why);
    log_line_str(&line, "outcome", l->ocsp == OCSP_REQUIRE ? "refused" : "accepted");
    log_line_end(&line);
    free(serial);
    if (l->ocsp == OCSP_PREFER) {
        metrics_label(ll, sizeof(ll), l->name);
        snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"%s\"", ll,
                 ocsp_result_name(res->kind));
        metrics_count("duet_ocsp_fail_open_total", labels, 1);
        client_accepted(c);
        return;
    }
    snprintf(why, sizeof(why),
             "no good OCSP answer for certificate %s (--ocsp require): %s", label,
             res->why[0] != '\0' ? res->why : "the responder gave none");
    r.fail = TLS_FAIL_OTHER;
    r.reason = why;
    conn_refuse(c, &r);
}

/* The OCSP answer a handshake waited for is in (on the worker's loop). */
static void
conn_ocsp_done(void *arg, const struct ocsp_result *res)
{
    struct conn *c = arg;

    enum verify_fail vf = VERIFY_OK;
    struct duet_err err;
    struct gen *g;

    c->ocsp_wait = NULL; /* ocspcheck.c frees the waiter */
    if (c->state != CONN_HANDSHAKE)
        return;
    /*
     * A reload during the wait passed this connection by (it was not open
     * yet): it meets the new trust before it is accepted, as the open ones did.
     */
    g = gen_current(c->w->px);
    if (conn_reverify_under(c, g, &vf, &err) != 0) {
        enum tls_fail f = tls_fail_of(vf);
        struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE,
                                 .secs = now_mono() - c->t_start,
                                 .fail = f != TLS_FAIL_NONE ? f : TLS_FAIL_OTHER,
                                 .reason = err.msg};
        conn_refuse(c, &r);
    } else {
        conn_ocsp_outcome(c, res);
    }
    gen_unref(g);
}

/* What a query about c's client leaf needs; see proxy_int.h. */
void
conn_ocsp_ask(struct conn *c, X509 *leaf, struct ocsp_ask *ask)
{
    memset(ask, 0, sizeof(*ask));
    ask->base = c->w->base;
    ask->cache = c->w->px->ocsp_cache;
    ask->listener = c->gl->cfg->name;
    ask->url = c->gl->cfg->ocsp_url;
    ask->timeout_ms = c->gen->cfg.ocsp_timeout_ms;
    ask->leaf = leaf;
}

/*
 * --ocsp: ask about the client's leaf before anything of its connection is
 * read.  Returns true when the connection now waits for the answer (or was
 * already decided); false when there is nothing to ask (no certificate).
 */
static bool
conn_ocsp_start(struct conn *c)
{
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    /*
     * The issuer the request names comes from the chain the handshake
     * verified, never from what the client sent: a certificate of its own
     * making with the issuer's name and key, encoded otherwise, would change
     * the CertID's key hash and turn a signed "revoked" into a refused answer.
     * A resumed session has no verified chain: --cacert, then the issuers of
     * earlier verified chains.
     */
    STACK_OF(X509) *verified = SSL_session_reused(c->ssl) ? NULL : SSL_get0_verified_chain(c->ssl);
    struct ocsp_cache *cache = c->w->px->ocsp_cache;
    X509 *issuer = NULL;
    struct ocsp_ask ask;
    struct ocsp_result res;
    bool waiting = false;

    if (leaf == NULL)
        return false; /* --verify optional and no certificate: nothing to ask about */
    conn_ocsp_ask(c, leaf, &ask);
    if (ocsp_check_cached(&ask, &res)) {
        conn_ocsp_outcome(c, &res);
        return true;
    }
    /*
     * Not cached: the request names the issuer, found (and its signature
     * checked) now; one from a verified chain serves this client's resumed
     * sessions later.
     */
    memset(&res, 0, sizeof(res));
    if ((issuer = ocsp_issuer_get1(cache, leaf, verified, c->gl->ocsp_anchors, &res)) == NULL)
        goto decided;
    ask.issuer = issuer;
    if (ocsp_check_begin(&c->w->ocsp, &ask, conn_ocsp_done, c, &c->ocsp_wait, &res) == 0) {
        /* Nothing of the client's is read meanwhile; the handshake deadline still runs. */
        bufferevent_disable(c->cbev, EV_READ);
        waiting = true;
    }
decided:
    X509_free(issuer);
    if (!waiting)
        conn_ocsp_outcome(c, &res);
    return true;
}

/* The TLS handshake with the client finished. */
static void
client_handshake_done(struct conn *c)
{
    double secs = now_mono() - c->t_start;
    struct duet_err err;
    struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .secs = secs};

    if (SSL_session_reused(c->ssl) && tls_check_resumed(c->ssl, &err) != 0) {
        r.fail = tls_verify_fail(c->ssl);
        r.reason = err.msg;
        conn_refuse(c, &r);
        return;
    }
    /* A resumed session is asked about too: its client may have been revoked since. */
    if (c->gl->cfg->ocsp != OCSP_OFF && c->w->px->ocsp_cache != NULL && conn_ocsp_start(c))
        return;
    client_accepted(c);
}

/*
 * The handshake deadline.  The bufferevent's timeouts only notice silence, so
 * a client sending a byte now and then would keep a handshake open for ever;
 * this timer ends it when the handshake timeout has passed since accept.
 */
static void
handshake_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char why[128];
    struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .fail = TLS_FAIL_OTHER};

    (void)fd;
    (void)what;
    r.secs = now_mono() - c->t_start;
    if (c->state != CONN_HANDSHAKE)
        return;
    snprintf(why, sizeof(why), "the TLS handshake did not finish within %d ms",
             c->gen->cfg.handshake_timeout_ms);
    r.reason = why;
    conn_refuse(c, &r);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        client_handshake_done(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        char why[900];
        struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .fail = TLS_FAIL_OTHER};
        r.secs = now_mono() - c->t_start;
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "the TLS handshake did not finish within %d ms",
                     c->gen->cfg.handshake_timeout_ms);
        else
            conn_handshake_failure(c->cbev, c->ssl, why, sizeof(why), &r.fail);
        r.reason = why;
        conn_refuse(c, &r);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->mode->client_eof != NULL && c->mode->client_eof(c))
        return; /* a half-close after a request: the response goes out first */
    if ((what & BEV_EVENT_TIMEOUT) && !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
        conn_idle_continue(c, c->cbev))
        return; /* the response is still coming: not idle */
    if (what & BEV_EVENT_TIMEOUT)
        log_event("info", "idle_timeout",
                  json_pack("{s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer));
    conn_close(c);
}

/* The client side of the server role: TLS accepted on the socket, with its deadline. */
static void
conn_start_tls(struct conn *c, evutil_socket_t fd)
{
    const struct proxy_cfg *cfg = &c->gen->cfg;
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer_ss;
    struct timeval hs = {cfg->handshake_timeout_ms / 1000,
                         (cfg->handshake_timeout_ms % 1000) * 1000};

    c->ssl = SSL_new(c->gl->ssl_ctx);
    if (c->ssl == NULL) {
        evutil_closesocket(fd);
        conn_throttle_give_back(c->w->px, cfg, sa); /* the proxy's failure, not the client's */
        conn_close(c);
        return;
    }
    c->cbev = bufferevent_openssl_socket_new(c->w->base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->cbev == NULL) {
        SSL_free(c->ssl);
        evutil_closesocket(fd);
        conn_throttle_give_back(c->w->px, cfg, sa);
        conn_close(c);
        return;
    }
    bufferevent_set_timeouts(c->cbev, &hs, &hs);
    c->hs_timer = evtimer_new(c->w->base, handshake_deadline_cb, c);
    if (c->hs_timer == NULL || evtimer_add(c->hs_timer, &hs) != 0) {
        conn_throttle_give_back(c->w->px, cfg, sa);
        conn_close(c);
        return;
    }
    bufferevent_setcb(c->cbev, client_read, client_write, client_event, c);
    bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
}

/* --- accept ------------------------------------------------------------------------ */

/* The mode that runs a listener's connections. */
static const struct conn_mode *
conn_mode_of(const struct proxy_cfg *cfg, const struct listener_cfg *l)
{
    if (cfg->role == ROLE_TUNNEL)
        return &tunnel_mode;
    return l->mode == MODE_HTTP ? &forward_mode : &relay_mode;
}

/* A new client connection on one of the worker's listeners; see proxy_int.h. */
void
conn_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
               void *arg)
{
    struct worker *w = arg;
    struct proxy *px = w->px;
    struct gen *g = gen_current(px);
    const struct conn_mode *mode;
    size_t li;
    struct conn *c = NULL;
    socklen_t ll;

    for (li = 0; li < w->nlev; li++) {
        if (w->lev[li] == lev)
            break;
    }
    if (li >= g->cfg.nlisteners) {
        evutil_closesocket(fd);
        gen_unref(g);
        return;
    }
    if (metrics_conn_active() >= g->cfg.max_conns) {
        log_event("warn", "max_connections",
                  json_pack("{s:s,s:I}", "listener", g->ls[li].cfg->name, "limit",
                            (json_int_t)g->cfg.max_conns));
        evutil_closesocket(fd);
        gen_unref(g);
        return;
    }
    w->pause[li].delay_ms = 0; /* accepting works (again) */
    mode = conn_mode_of(&g->cfg, g->ls[li].cfg);
    if (mode->client_tls && !conn_throttle_allows(px, &g->cfg, g->ls[li].cfg->name, sa)) {
        evutil_closesocket(fd);
        gen_unref(g);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        if (mode->client_tls) /* the proxy's failure, not the client's */
            conn_throttle_give_back(px, &g->cfg, sa);
        gen_unref(g);
        return;
    }
    metrics_conn_open();
    c->w = w;
    c->wnext = w->conns;
    if (w->conns != NULL)
        w->conns->wprev = c;
    w->conns = c;
    c->gen = g;
    c->gl = &g->ls[li];
    c->mode = mode;
    c->t_start = now_mono();
    memcpy(&c->peer_ss, sa,
           (size_t)salen < sizeof(c->peer_ss) ? (size_t)salen : sizeof(c->peer_ss));
    ll = sizeof(c->local_ss);
    getsockname(fd, (struct sockaddr *)&c->local_ss, &ll);
    sockaddr_text(sa, c->peer, sizeof(c->peer), c->peer_ip, sizeof(c->peer_ip));
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (mode->start != NULL)
        mode->start(c, fd);
    else
        conn_start_tls(c, fd);
    if (g->cfg.max_lifetime_ms > 0 && c->state != CONN_CLOSING) {
        struct timeval tv = {g->cfg.max_lifetime_ms / 1000,
                             (g->cfg.max_lifetime_ms % 1000) * 1000};
        c->life_timer = evtimer_new(w->base, lifetime_cb, c);
        if (c->life_timer != NULL)
            evtimer_add(c->life_timer, &tv);
    }
}
