/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conns.c - the connections of `duet ca serve`'s two listeners: each one
 * counted from its accept() to the close of its socket, whatever ended it
 * (the answer, the client, a timeout, a TLS handshake that failed), the cap
 * of --max-connections per listener, and the pause after accept() fails.
 *
 * libevent 2.1.12's evhttp has no connection limit and tells nobody when a
 * connection ends: evhttp_connection_set_closecb needs the connection, which
 * a server only sees once a request has arrived.  What it does call once per
 * accepted socket is the bufferevent callback (evhttp_set_bevcb), and that
 * bufferevent lives as long as the connection.  So a connection is counted
 * when its bufferevent is made, and uncounted when it ends:
 *  - TLS: when OpenSSL frees the connection's SSL (an ex_data free callback;
 *    bufferevent_openssl frees it just after closing the socket);
 *  - plain HTTP: a reference of 0 bytes is put in the bufferevent's output
 *    buffer (its input buffer takes nothing from outside); libevent lets go
 *    of it (its cleanup callback) either when the first answer is written
 *    there, with evhttp's connection then being the bufferevent's callback
 *    argument (its close callback is set then and uncounts it), or when the
 *    bufferevent is freed without ever having answered (its callbacks
 *    already cleared): uncounted there.
 * The bufferevent itself stays the one evhttp would have (the TLS one, or a
 * plain socket one): no layer in between, so evhttp's "close once the answer
 * is written" still holds.
 *
 * At the cap the listener stops accepting (evconnlistener_disable); the
 * kernel's backlog holds the next connections, and accepting resumes as soon
 * as one closes.  No connection is accepted and then dropped.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "caserver/caserver_int.h"
#include "util/log.h"

/* Seconds between two ca_connections warnings of one listener. */
#define CONNS_WARN_EVERY 10.0

/*
 * The server whose listeners accept_error_cb() pauses: a listener's callback
 * argument is evhttp's own, so the one server of the process is found here.
 */
static struct casrv *accept_srv;

/* The SSL ex_data index that holds a TLS connection's listener (-1: not made yet). */
static int ssl_idx = -1;

/* The listener of an evconnlistener, or NULL. */
static struct caserver_listener *
listener_of(struct evconnlistener *lev)
{
    for (int i = 0; accept_srv != NULL && i < 2; i++) {
        if (accept_srv->lst[i].lev == lev)
            return &accept_srv->lst[i];
    }
    return NULL;
}

/* Accept on l again, unless it is at its cap or an accept() pause is running. */
static void
listener_resume(struct caserver_listener *l)
{
    struct casrv *s = l->s;

    if (l->lev == NULL || l->at_cap)
        return;
    if (s->accept_backoff != NULL && evtimer_pending(s->accept_backoff, NULL))
        return;
    evconnlistener_enable(l->lev);
}

/* A connection of l begins: count it, and stop accepting at the cap. */
static void
conn_begin(struct caserver_listener *l)
{
    struct casrv *s = l->s;
    double now = caserver_mono();
    char labels[48];

    l->open++;
    if (l->open < s->o->max_connections || l->lev == NULL)
        return;
    l->at_cap = true;
    evconnlistener_disable(l->lev);
    snprintf(labels, sizeof(labels), "listener=\"%s\"", l->name);
    caserver_metric_add("duet_ca_connection_limit_total", labels, 1);
    l->unwarned++;
    if (l->warned_at != 0 && now - l->warned_at < CONNS_WARN_EVERY)
        return;
    log_msg("warn", "ca_connections",
            "%s listener: %zu connections open, the --max-connections limit; not accepting "
            "until one closes (the kernel queues the next ones); limit reached %lu time%s "
            "since the last warning",
            l->name, l->open, l->unwarned, l->unwarned == 1 ? "" : "s");
    l->warned_at = now;
    l->unwarned = 0;
}

/* A connection of l has ended (its socket is closed, or closing now). */
static void
conn_end(struct caserver_listener *l)
{
    if (l->open > 0)
        l->open--;

    if (l->at_cap && l->open < l->s->o->max_connections) {
        l->at_cap = false;
        listener_resume(l);
    }
}

/* OpenSSL frees an SSL: if it is a counted connection's, that connection has ended. */
static void
ssl_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL)
        conn_end(ptr);
}

/* A plain connection that was uncounted until now ends: evhttp frees it. */
static void
http_close_cb(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_end(arg);
}

/*
 * libevent let go of the 0-byte reference in a plain connection's output
 * buffer (data: its bufferevent, extra: the listener).  With evhttp's
 * callbacks still on the bufferevent, an answer is being written: evhttp's
 * connection is their argument, and its close callback will end the count.
 * Without (bufferevent_free() clears them), the bufferevent is being
 * destroyed.
 */
static void
http_ref_cb(const void *data, size_t len, void *extra)
{
    struct bufferevent *bev = (struct bufferevent *)(uintptr_t)data;
    bufferevent_event_cb eventcb = NULL;
    void *arg = NULL;

    (void)len;
    bufferevent_getcb(bev, NULL, NULL, &eventcb, &arg);
    if (eventcb != NULL && arg != NULL)
        evhttp_connection_set_closecb(arg, http_close_cb, extra);
    else
        conn_end(extra);
}

/* Count a new connection's bufferevent; see caserver_int.h. */
struct bufferevent *
caserver_conn_counted(struct caserver_listener *l, struct bufferevent *bev)
{
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

    if (bev == NULL)
        return NULL;
    if (ssl != NULL) {
        if (ssl_idx < 0)
            ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_free_cb);
        /* Out of memory: the connection is served but not counted. */
        if (ssl_idx < 0 || SSL_set_ex_data(ssl, ssl_idx, l) != 1)
            return bev;
    } else if (evbuffer_add_reference(bufferevent_get_output(bev), bev, 0, http_ref_cb, l) != 0) {
        return bev;
    }
    conn_begin(l);
    return bev;
}

/* Accept again after the pause accept_error_cb() made. */
static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct casrv *s = arg;

    (void)fd;
    (void)what;
    for (int i = 0; i < 2; i++)
        listener_resume(&s->lst[i]);
}

/*
 * accept() failed (out of descriptors, most likely): stop accepting for
 * 100 ms rather than spin on a socket that stays readable.
 */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct caserver_listener *l = listener_of(lev);
    const struct timeval pause = {0, 100000};
    int e = EVUTIL_SOCKET_ERROR();

    (void)arg;
    log_msg("warn", "ca_accept", "accept failed: %s; pausing for 100 ms",
            evutil_socket_error_to_string(e));
    evconnlistener_disable(lev);
    if (l != NULL && l->s->accept_backoff != NULL)
        event_add(l->s->accept_backoff, &pause);
}

/* Prepare the listeners' state; see caserver_int.h. */
int
caserver_conns_init(struct casrv *s, struct duet_err *err)
{
    static const char *const names[2] = {"https", "http"};

    for (int i = 0; i < 2; i++) {
        memset(&s->lst[i], 0, sizeof(s->lst[i]));
        s->lst[i].s = s;
        s->lst[i].name = names[i];
    }
    if ((s->accept_backoff = evtimer_new(s->base, accept_resume_cb, s)) == NULL)
        return err_nomem(err);
    accept_srv = s;
    return 0;
}

/* Take an evhttp's listening socket in; see caserver_int.h. */
void
caserver_conns_listen(struct caserver_listener *l, struct evconnlistener *lev)
{
    l->lev = lev;
    evconnlistener_set_error_cb(lev, accept_error_cb);
}

/* Stop; see caserver_int.h. */
void
caserver_conns_stop(struct casrv *s)
{
    for (int i = 0; i < 2; i++)
        s->lst[i].lev = NULL;
    if (s->accept_backoff != NULL)
        event_free(s->accept_backoff);
    s->accept_backoff = NULL;
    if (accept_srv == s)
        accept_srv = NULL;
}

/* Connections waiting in the kernel's accept queue; see caserver_int.h. */
long
caserver_conns_waiting(const struct caserver_listener *l)
{
#ifdef TCP_INFO
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    /* On a listening socket, Linux reports its accept queue as tcpi_unacked. */
    if (l->lev != NULL &&
        getsockopt(evconnlistener_get_fd(l->lev), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        ti.tcpi_state == TCP_LISTEN)
        return (long)ti.tcpi_unacked;
#else
    (void)l;
#endif
    return -1;
}
