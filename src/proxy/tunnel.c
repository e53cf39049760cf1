/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunnel.c - `duet tunnel`, the client side: a local plaintext connection is
 * carried over mTLS to the server.  The TLS handshake is the upstream's, so
 * the handshake log line, its metric and the server's check (its certificate
 * verified, its SPIFFE ID matching --verify-uri, its OCSP staple judged:
 * tunstaple.h) happen when the upstream connects, before the client's side
 * is read; then bytes are relayed both ways (relay.c).
 */
#include "proxy/proxy_int.h"

#include <stdio.h>

#include <event2/bufferevent_ssl.h>

#include "proxy/tunstaple.h"

/* The tunnel's client side: plain bytes; any event ends the connection. */
static void
tunnel_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    (void)what;
    conn_close(c);
}

/* Accepted: the client side waits (not read) until the server is connected. */
static void
tunnel_start(struct conn *c, evutil_socket_t fd)
{
    c->cbev =
        bufferevent_socket_new(c->w->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->cbev == NULL) {
        evutil_closesocket(fd);
        conn_close(c);
        return;
    }
    bufferevent_setcb(c->cbev, NULL, NULL, tunnel_client_event, c);
    bufferevent_disable(c->cbev, EV_READ);
    c->tries = 0;
    upstream_connect(c);
}

/* The tunnel's server check: its certificate verified; its SPIFFE ID matching. */
static bool
tunnel_server_ok(struct conn *c, char *why, size_t len)
{
    struct duet_err err;
    struct policy_request req = {0};
    struct policy_decision d;

    if (tls_peer_identity(c->ssl, &c->id, &err) != 0 || c->id == NULL) {
        snprintf(why, len, "the server's certificate cannot be read");
        return false;
    }
    if (c->gl->cfg->policy.nrules == 0)
        return true;
    req.id = c->id;
    d = policy_decide(&c->gl->cfg->policy, &req);
    if (!d.allow)
        snprintf(why, len, "server %s does not match --verify-uri", c->id->name);
    return d.allow;
}

/*
 * The server's OCSP staple (asked for unless --no-staple-check), judged
 * against the chain this handshake verified: counted by verdict; false with
 * the sentence in why and the metrics label in *fail when it refuses the
 * server.
 */
static bool
tunnel_staple_ok(struct conn *c, char *why, size_t len, enum tls_fail *fail)
{
    const struct listener_cfg *l = c->gl->cfg;
    unsigned char *der = NULL;
    long n;
    char server[600], code[32], labels[300], ln[128];
    enum tunstaple_verdict v;

    if (l->no_staple_check)
        return true;
    n = SSL_get_tlsext_status_ocsp_resp(c->ssl, &der);
    snprintf(server, sizeof(server), "%s (%s)", l->server_name, l->targets[c->target].text);
    v = tunstaple_judge(n > 0 ? der : NULL, n > 0 ? (size_t)n : 0,
                        SSL_get0_verified_chain(c->ssl), server, l->require_staple, wall_now(),
                        code, sizeof(code), why, len);
    metrics_label(ln, sizeof(ln), l->name);
    snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"%s\"", ln,
             tunstaple_verdict_name(v));
    metrics_count("duet_tunnel_ocsp_staples_total", labels, 1);
    switch (v) {
    case TUNSTAPLE_GOOD:
    case TUNSTAPLE_NONE:
        return true;
    case TUNSTAPLE_MISSING:
        *fail = TLS_FAIL_STAPLE_MISSING;
        return false;
    case TUNSTAPLE_REVOKED:
        *fail = TLS_FAIL_STAPLE_REVOKED;
        return false;
    default:
        *fail = TLS_FAIL_STAPLE_BAD;
        return false;
    }
}

/*
 * Connected and the TLS handshake with the server done: check it, then
 * relay.  The client's side is not read before this, so a refused server
 * gets no byte of the client's data.
 */
static void
tunnel_upstream_connected(struct conn *c)
{
    char why[1800];
    double secs = now_mono() - c->t_start;
    enum tls_fail fail = TLS_FAIL_POLICY;

    if (!tunnel_server_ok(c, why, sizeof(why)) || !tunnel_staple_ok(c, why, sizeof(why), &fail)) {
        struct conn_refusal r = {
            .kind = CONN_REFUSE_HANDSHAKE, .fail = fail, .reason = why, .secs = secs};
        conn_refuse(c, &r);
        return;
    }
    c->state = CONN_OPEN;
    conn_log_handshake(c, c->ssl, true, NULL, TLS_FAIL_NONE, secs);
    metrics_handshake(c->gl->hs, TLS_FAIL_NONE, secs);
    relay_start(c);
}

/* Connecting or the TLS handshake with the server failed: a refused handshake. */
static void
tunnel_upstream_failed(struct conn *c, short what)
{
    char why[600];
    struct conn_refusal r = {.kind = CONN_REFUSE_HANDSHAKE, .fail = TLS_FAIL_OTHER};

    int eno = EVUTIL_SOCKET_ERROR(); /* read first: the calls below may change it */
    BIO *wbio = c->ssl != NULL ? SSL_get_wbio(c->ssl) : NULL;
    /*
     * A connection that never reached its target never carried the ClientHello.
     * libevent reports the refused connect as a failed handshake (its queue
     * holds SSL_ERROR_SYSCALL), so the bytes written, not the TLS error queue,
     * tell the two apart; a target that accepted and then reset the connection
     * has the ClientHello behind it.
     */
    bool never_connected = wbio != NULL && BIO_number_written(wbio) == 0;

    r.secs = now_mono() - c->t_start;
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof(why),
                 "connecting to %s and the TLS handshake did not finish within %d ms",
                 c->gl->cfg->targets[c->target].text, c->gen->cfg.connect_timeout_ms);
    else if (never_connected && eno != 0 && tls_verify_reason(c->ssl) == NULL)
        snprintf(why, sizeof(why), "cannot connect to %s: %s",
                 c->gl->cfg->targets[c->target].text,
                 evutil_socket_error_to_string(eno));
    else
        conn_handshake_failure(c->ubev, c->ssl, why, sizeof(why), &r.fail);
    r.reason = why;
    conn_refuse(c, &r);
}

const struct conn_mode tunnel_mode = {
    .name = "tunnel",
    .client_tls = false,
    .start = tunnel_start,
    .upstream_connected = tunnel_upstream_connected,
    .upstream_failed = tunnel_upstream_failed,
};
