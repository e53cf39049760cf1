/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.c - TCP mode: once the client's handshake is done, the listener's
 * policy decides on the identity alone (the connection is the request), an
 * upstream is connected (with the PROXY v2 header when configured), and bytes
 * are relayed both ways with backpressure until either side ends.  The
 * tunnel (tunnel.c) relays with the same functions, and so does an HTTP
 * connection once its upstream accepted a WebSocket upgrade (forward.c
 * switches its mode to relay_mode).
 */
#include "proxy/proxy_int.h"

#include <event2/buffer.h>

#include "util/log.h"

static void
relay_read(struct bufferevent *from, void *arg)
{
    struct conn *c = arg;
    struct bufferevent *to = from == c->cbev ? c->ubev : c->cbev;
    size_t n = evbuffer_get_length(bufferevent_get_input(from));

    if (to == NULL)
        return;
    if (from == c->cbev)
        c->up_bytes += n;
    else
        c->down_bytes += n;
    evbuffer_add_buffer(bufferevent_get_output(to), bufferevent_get_input(from));
    if (evbuffer_get_length(bufferevent_get_output(to)) >= RELAY_HIGH_WATER) {
        /* Backpressure: stop reading until the other side drains. */
        bufferevent_disable(from, EV_READ);
        bufferevent_setwatermark(to, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
    }
}

static void
relay_write(struct bufferevent *to, void *arg)
{
    struct conn *c = arg;
    struct bufferevent *from = to == c->cbev ? c->ubev : c->cbev;

    if (c->state == CONN_FLUSHING && evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 &&
        (c->ubev == NULL || evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0)) {
        conn_close(c);
        return;
    }
    if (from != NULL && !(bufferevent_get_enabled(from) & EV_READ) &&
        c->state != CONN_FLUSHING) {
        bufferevent_setwatermark(to, EV_WRITE, 0, 0);
        bufferevent_enable(from, EV_READ);
    }
}

/* One side closed: flush what the other side still has to receive, then close. */
static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct bufferevent *other = bev == c->cbev ? c->ubev : c->cbev;

    if ((what & BEV_EVENT_TIMEOUT) && !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
        conn_idle_continue(c, bev))
        return; /* bytes moved the other way: not idle */
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_TIMEOUT)
            log_event("info", "idle_timeout",
                      json_pack("{s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer));
        if (other != NULL && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            relay_read(bev, c);
        if (other != NULL && evbuffer_get_length(bufferevent_get_output(other)) > 0 &&
            !(what & BEV_EVENT_TIMEOUT)) {
            c->state = CONN_FLUSHING;
            bufferevent_disable(bev, EV_READ);
            bufferevent_setcb(other, NULL, relay_write, relay_event, c);
            bufferevent_enable(other, EV_WRITE);
            return;
        }
        conn_close(c);
    }
}

/*
 * Relay both ways from now on: the relay takes both bufferevents' callbacks.
 * Bytes already read on either side (an HTTP connection switching after a
 * 101: the client's after its upgrade request, the upstream's after the 101)
 * are passed on first.
 */
void
relay_start(struct conn *c)
{
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};

    bufferevent_setcb(c->cbev, relay_read, relay_write, relay_event, c);
    bufferevent_setcb(c->ubev, relay_read, relay_write, relay_event, c);
    bufferevent_set_timeouts(c->cbev, &idle, NULL);
    bufferevent_set_timeouts(c->ubev, &idle, NULL);
    bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
    bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
        relay_read(c->cbev, c);
    if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
        relay_read(c->ubev, c);
}

/* The client is verified: the policy decides on its identity, then the upstream. */
static void
relay_handshake_done(struct conn *c, double secs)
{
    const struct listener_cfg *l = c->gl->cfg;
    struct policy_request pr = {0};
    struct policy_decision d;

    pr.id = c->id;
    d = policy_decide(&l->policy, &pr);
    conn_log_authz(c, &d, NULL, NULL, NULL);
    if (!d.allow) {
        struct conn_refusal r = {.kind = CONN_REFUSE_POLICY, .rule = d.rule, .secs = secs};
        conn_refuse(c, &r);
        return;
    }
    /* In TCP mode the connection is the request: its handshake counts once decided. */
    metrics_handshake(c->gl->hs, TLS_FAIL_NONE, secs);
    bufferevent_disable(c->cbev, EV_READ); /* until the upstream is there */
    c->tries = 0;
    upstream_connect(c);
}

const struct conn_mode relay_mode = {
    .name = "tcp",
    .client_tls = true,
    .handshake_done = relay_handshake_done,
    .upstream_connected = relay_start,
};
