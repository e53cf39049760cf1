/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upstream.c - the upstream side of a connection: choosing a target (round
 * robin, skipping targets marked down), connecting (with TLS toward the
 * upstream, or the tunnel's TLS toward its server), the PROXY v2 header,
 * failing over to the next target, the upstream keep-alive pool of HTTP mode,
 * and the upstream bufferevent's callbacks, which call the connection mode's
 * hooks.
 */
#include "proxy/proxy_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "proxy/ppv2.h"
#include "util/log.h"

#define UPSTREAM_DOWN_SECONDS 10

/* --- the keep-alive pool ----------------------------------------------------------- */

/*
 * The upstream keep-alive pool (http mode): when a client connection ends
 * between requests, its upstream connection, if the upstream keeps it alive,
 * waits here for the next client connection of the same worker, listener and
 * generation instead of being closed, so a client that connects for one
 * request does not cost the upstream a new TCP (or TLS) connection.  At most
 * upstream_keepalive idle connections per target and worker; an idle one that
 * the upstream closes, or that sends anything, or that waits longer than
 * POOL_IDLE_SECONDS, is closed.  Not with the PROXY protocol, whose header
 * describes one client connection.
 */
#define POOL_IDLE_SECONDS 30

struct pooled {
    struct pooled *next;
    struct worker *w;
    struct gen *gen; /* a reference */
    struct gen_listener *gl;
    size_t target;
    struct bufferevent *bev;
};

static void
pool_drop(struct pooled *e)
{
    for (struct pooled **pp = &e->w->pool; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            e->w->pool_len--;
            break;
        }
    }
    bufferevent_free(e->bev);
    gen_unref(e->gen);
    free(e);
}

/* An idle upstream connection spoke (it may not) or closed: it goes. */
static void
pool_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pool_drop(arg);
}

static void
pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    pool_drop(arg);
}

/* Keep an idle upstream connection for later requests; see proxy_int.h. */
bool
upstream_pool_put_bev(struct worker *w, struct gen *gen, struct gen_listener *gl, size_t target,
                      struct bufferevent *bev)
{
    const struct proxy_cfg *cfg = &gen->cfg;
    struct timeval idle = {POOL_IDLE_SECONDS, 0};
    struct pooled *e;
    int same = 0;

    if (gl->cfg->proxy_protocol || cfg->upstream_keepalive <= 0 ||
        evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
        evbuffer_get_length(bufferevent_get_input(bev)) > 0 || gen_retired(w->px, gen))
        return false;
    /* Counted only when the pool could be full: a put is O(1) under the limit. */
    for (e = w->pool_len >= cfg->upstream_keepalive ? w->pool : NULL; e != NULL; e = e->next)
        if (e->gl == gl && e->target == target)
            same++;
    if (same >= cfg->upstream_keepalive || (e = calloc(1, sizeof(*e))) == NULL)
        return false;
    e->w = w;
    e->gen = gen;
    gen_ref(e->gen);
    e->gl = gl;
    e->target = target;
    e->bev = bev;
    bufferevent_setcb(e->bev, pool_read_cb, NULL, pool_event_cb, e);
    bufferevent_set_timeouts(e->bev, &idle, NULL);
    bufferevent_enable(e->bev, EV_READ);
    e->next = w->pool;
    w->pool = e;
    w->pool_len++;
    return true;
}

/* Whether the upstream connection of a closing client connection can be kept; keeps it. */
static bool
pool_put(struct conn *c)
{
    if (c->mode->upstream_reusable == NULL || !c->mode->upstream_reusable(c) ||
        c->up != UP_CONNECTED)
        return false;
    return upstream_pool_put_bev(c->w, c->gen, c->gl, c->target, c->ubev);
}

/* An idle upstream connection of this listener and generation; see proxy_int.h. */
bool
upstream_pool_take_bev(struct worker *w, struct gen *gen, struct gen_listener *gl,
                       struct bufferevent **bev, size_t *target)
{
    struct pooled **pp = &w->pool;

    while (*pp != NULL) {
        struct pooled *e = *pp;
        if (e->gen->id < gen->id) {
            pool_drop(e);
            continue;
        }
        if (e->gen != gen || e->gl != gl) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        w->pool_len--;
        *bev = e->bev;
        *target = e->target;
        gen_unref(e->gen); /* the caller holds the same generation */
        free(e);
        return true;
    }
    return false;
}

/*
 * An idle upstream connection for this client connection's listener and
 * generation, attached to it; false when there is none.  Connections of
 * older generations met on the way are closed.
 */
static bool
pool_take(struct conn *c)
{
    return upstream_pool_take_bev(c->w, c->gen, c->gl, &c->ubev, &c->target);
}

/* Close the idle upstream connections of generations older than g; see proxy_int.h. */
void
upstream_pool_retire(struct worker *w, const struct gen *g)
{
    struct pooled **pp = &w->pool;

    while (*pp != NULL) {
        struct pooled *e = *pp;
        if (e->gen->id < g->id)
            pool_drop(e); /* unlinks e: *pp is the next one now */
        else
            pp = &e->next;
    }
}

/* Close every idle upstream connection of a worker; see proxy_int.h. */
void
upstream_pool_clear(struct worker *w)
{
    while (w->pool != NULL)
        pool_drop(w->pool);
}

/* The client connection is freed: its upstream is pooled or closed; see proxy_int.h. */
void
upstream_release(struct conn *c)
{
    SSL *ssl;

    if (pool_put(c))
        return;
    ssl = bufferevent_openssl_get_ssl(c->ubev);
    if (ssl != NULL && c->up == UP_CONNECTED)
        SSL_shutdown(ssl);
    bufferevent_free(c->ubev);
}

/* --- connecting --------------------------------------------------------------------- */

/* Round robin over targets, skipping those marked down; see proxy_int.h. */
size_t
upstream_pick(struct gen_listener *gl)
{
    const struct listener_cfg *l = gl->cfg;
    size_t start = atomic_fetch_add(&gl->rr, 1);
    int64_t now = wall_now();

    for (size_t k = 0; k < l->ntargets; k++) {
        size_t i = (start + k) % l->ntargets;
        if (atomic_load(&gl->down_until[i]) <= now)
            return i;
    }
    return start % l->ntargets;
}

static size_t
pick_target(struct conn *c)
{
    return upstream_pick(c->gl);
}

/* A target failed: marked down for a while, logged and counted; see proxy_int.h. */
void
upstream_target_failed(struct gen_listener *gl, size_t target, const char *peer, const char *why)
{
    const struct listener_cfg *l = gl->cfg;
    char labels[300], ul[256];

    atomic_store(&gl->down_until[target], wall_now() + UPSTREAM_DOWN_SECONDS);
    log_event("error", "upstream_error",
              json_pack("{s:s,s:s,s:s,s:s}", "listener", l->name, "peer", peer, "upstream",
                        l->targets[target].text, "error", why));
    metrics_label(ul, sizeof(ul), l->targets[target].text);
    snprintf(labels, sizeof(labels), "upstream=\"%s\"", ul);
    metrics_count("duet_upstream_failures_total", labels, 1);
}

/* A target failed: marked down, logged, counted; the next one, or the mode gives up. */
void
upstream_fail(struct conn *c, const char *why)
{
    const struct listener_cfg *l = c->gl->cfg;
    struct evbuffer *saved = NULL;

    upstream_target_failed(c->gl, c->target, c->peer, why);
    if (c->ubev != NULL) {
        /* HTTP: nothing reached the failed upstream; keep the request for the next one. */
        if (c->mode->retry_keeps_output && c->up != UP_CONNECTED &&
            (saved = evbuffer_new()) != NULL) {
            evbuffer_add_buffer(saved, bufferevent_get_output(c->ubev));
            if (c->pp_len > 0)
                evbuffer_drain(saved, c->pp_len);
        }
        bufferevent_free(c->ubev);
        c->ubev = NULL;
    }
    c->up = UP_NONE;
    /* Try the next target once per target before giving up. */
    if (++c->tries < (int)l->ntargets &&
        (c->mode->upstream_answering == NULL || !c->mode->upstream_answering(c))) {
        struct evbuffer *pending = saved;
        saved = NULL;
        upstream_connect(c);
        if (pending != NULL && c->ubev != NULL)
            evbuffer_add_buffer(bufferevent_get_output(c->ubev), pending);
        if (pending != NULL)
            evbuffer_free(pending);
        return;
    }
    if (saved != NULL)
        evbuffer_free(saved);
    c->up = UP_FAILED;
    if (c->mode->upstream_unreachable != NULL)
        c->mode->upstream_unreachable(c);
    else
        conn_close(c);
}

static int
send_proxy_header(struct conn *c)
{
    struct ppv2_info info;
    uint8_t *hdr = NULL;
    size_t len = 0;
    struct duet_err err;
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    char alpn_s[256] = "";

    memset(&info, 0, sizeof(info));
    info.src = (const struct sockaddr *)&c->peer_ss;
    info.dst = (const struct sockaddr *)&c->local_ss;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen > 0 && alen < sizeof(alpn_s)) {
        memcpy(alpn_s, alpn, alen);
        alpn_s[alen] = '\0';
        info.alpn = alpn_s;
    }
    info.sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    info.tls_version = SSL_get_version(c->ssl);
    info.cipher = SSL_get_cipher_name(c->ssl);
    info.id = c->id;
    info.resumed = SSL_session_reused(c->ssl);
    if (ppv2_build(&info, &hdr, &len, &err) != 0) {
        log_msg("error", "proxy_protocol", "%s", err.msg);
        return -1;
    }
    evbuffer_add(bufferevent_get_output(c->ubev), hdr, len);
    c->pp_len = len;
    free(hdr);
    return 0;
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    c->mode->upstream_readable(c);
}

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    c->mode->upstream_writable(c);
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);

/* The upstream bufferevent's callbacks: the mode's hooks; see proxy_int.h. */
void
upstream_set_callbacks(struct conn *c)
{
    bufferevent_setcb(c->ubev, c->mode->upstream_readable != NULL ? upstream_read_cb : NULL,
                      c->mode->upstream_writable != NULL ? upstream_write_cb : NULL,
                      upstream_event_cb, c);
}

/* A new, unconnected upstream bufferevent toward a server listener's target; see proxy_int.h. */
struct bufferevent *
upstream_bev_new(struct worker *w, struct gen_listener *gl, size_t target)
{
    const struct listener_cfg *l = gl->cfg;
    struct bufferevent *bev;
    struct duet_err err;

    if (gl->up_ctx != NULL) {
        SSL *ssl = SSL_new(gl->up_ctx);
        const char *name = l->up_name != NULL ? l->up_name : l->target_names[target];
        if (ssl == NULL || tls_client_set_name(ssl, name, &err) != 0) {
            SSL_free(ssl);
            return NULL;
        }
        bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL)
            SSL_free(ssl);
        return bev;
    }
    return bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

/* Connect to the next target; see proxy_int.h. */
void
upstream_connect(struct conn *c)
{
    const struct proxy_cfg *cfg = &c->gen->cfg;
    const struct listener_cfg *l = c->gl->cfg;
    struct duet_err err;

    c->up = UP_CONNECTING;
    c->target = pick_target(c);
    if (c->gl->up_ctx != NULL || cfg->role == ROLE_TUNNEL) {
        SSL_CTX *ctx = cfg->role == ROLE_TUNNEL ? c->gl->ssl_ctx : c->gl->up_ctx;
        SSL *ssl = SSL_new(ctx);
        const char *name = cfg->role == ROLE_TUNNEL
                               ? l->server_name
                               : (l->up_name != NULL ? l->up_name : l->target_names[c->target]);
        if (ssl == NULL || tls_client_set_name(ssl, name, &err) != 0) {
            SSL_free(ssl);
            upstream_fail(c, "cannot start TLS toward the upstream");
            return;
        }
        c->ubev = bufferevent_openssl_socket_new(c->w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (cfg->role == ROLE_TUNNEL)
            c->ssl = ssl;
    } else {
        c->ubev = bufferevent_socket_new(c->w->base, -1,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (c->ubev == NULL) {
        upstream_fail(c, "out of memory");
        return;
    }
    upstream_set_callbacks(c);
    {
        /* Until connected (and, with TLS, the handshake done): the connect timeout. */
        struct timeval ct = {cfg->connect_timeout_ms / 1000,
                             (cfg->connect_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->ubev, &ct, &ct);
    }
    if (cfg->role == ROLE_SERVER && l->proxy_protocol && send_proxy_header(c) != 0) {
        upstream_fail(c, "cannot build the PROXY protocol header");
        return;
    }
    if (bufferevent_socket_connect(c->ubev, (const struct sockaddr *)&l->targets[c->target].ss,
                                   (int)l->targets[c->target].len) != 0) {
        upstream_fail(c, strerror(errno));
        return;
    }
    bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
}

/*
 * An upstream connection for the request being forwarded (http mode): one
 * from the idle pool when there is one, otherwise a new one.
 */
void
upstream_for_request(struct conn *c)
{
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};

    c->tries = 0;
    if (!c->gl->cfg->proxy_protocol && pool_take(c)) {
        c->up = UP_CONNECTED;
        c->h1.up_reused = true;
        upstream_set_callbacks(c);
        bufferevent_set_timeouts(c->ubev, &idle, NULL);
        bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
        metrics_upstream_conn(true);
        return;
    }
    c->h1.up_reused = false;
    upstream_connect(c);
    metrics_upstream_conn(false);
}

/* Connecting failed: why, in words, then the next target; see proxy_int.h. */
void
upstream_connect_error(struct conn *c, short what)
{
    char why[600];

    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(why, sizeof(why), "connect timed out after %d ms",
                 c->gen->cfg.connect_timeout_ms);
    } else {
        unsigned long e = bufferevent_get_openssl_error(c->ubev);
        const char *vr = bufferevent_openssl_get_ssl(c->ubev)
                             ? tls_verify_reason(bufferevent_openssl_get_ssl(c->ubev))
                             : NULL;
        if (vr != NULL)
            snprintf(why, sizeof(why), "upstream TLS: %s", vr);
        else if (e != 0)
            snprintf(why, sizeof(why), "upstream TLS: %s",
                     ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
        else
            snprintf(why, sizeof(why), "%s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    upstream_fail(c, why);
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                               (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
        c->up = UP_CONNECTED;
        if (!c->gl->cfg->targets[c->target].is_unix) {
            int one = 1;
            setsockopt(bufferevent_getfd(c->ubev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bufferevent_set_timeouts(c->ubev, &idle, NULL);
        if (c->mode->upstream_connected != NULL)
            c->mode->upstream_connected(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) && c->up != UP_CONNECTED) {
        if (c->mode->upstream_failed != NULL)
            c->mode->upstream_failed(c, what);
        else
            upstream_connect_error(c, what);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        if (conn_idle_continue(c, c->ubev))
            return; /* the request body is still coming: not idle */
        log_event("info", "idle_timeout",
                  json_pack("{s:s,s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                            "side", "upstream"));
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (c->mode->upstream_closed != NULL)
            c->mode->upstream_closed(c, what);
        else
            conn_close(c);
    }
}

/*
 * Queue a request head (or any bytes) toward the upstream.  libevent writes a
 * bufferevent's output only once epoll reports the socket writable; when
 * nothing waits in the output buffer of a plain connection, the bytes are
 * written straight to the socket and only what it did not take is queued.
 */
void
upstream_send(struct conn *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->ubev);

    if (c->up == UP_CONNECTED && c->gl->up_ctx == NULL && evbuffer_get_length(out) == 0) {
        ssize_t w = send(bufferevent_getfd(c->ubev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        }
    }
    if (len > 0)
        evbuffer_add(out, data, len);
}
