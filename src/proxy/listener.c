/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listener.c - the listening sockets: a probe that refuses an address another
 * process already listens on, one socket per worker (SO_REUSEPORT; a unix
 * socket shared by all), and the back-off when accept(2) fails for want of
 * descriptors or memory.  Accepted connections go to conn.c.
 */
#include "proxy/proxy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

/*
 * Whether another socket already listens where a listener is configured, so
 * that a second `duet proxy` started by mistake on a port in use fails instead
 * of silently taking part of the traffic: the workers' sockets carry
 * SO_REUSEPORT (each worker has its own, and the kernel spreads connections),
 * and the kernel lets any socket of the same user that also sets it join the
 * port.  A probe socket without SO_REUSEPORT cannot bind an address another
 * socket listens on, whatever that socket's options, so its bind tells.  It is
 * closed before the workers bind: a process that binds the port in the
 * microseconds between is not detected (a second duet doing the same probe at
 * the same instant would be: one of the two binds fails).  With reuse_port the
 * operator shares the port on purpose (a restart overlapping the old process).
 *
 * A unix socket path that accepts a connection belongs to a running process
 * and is refused (reuse_port or not: the path cannot be shared); one that
 * refuses connections is a stale socket from an earlier run and is removed.
 */
static int
listen_probe(const struct listener_cfg *l, struct duet_err *err)
{
    const struct net_addr *a = &l->listen;
    evutil_socket_t fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int rc = 0;

    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, "listener %s: %s: socket: %s", l->name, a->text,
                       strerror(errno));
    if (a->is_unix) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)&a->ss;
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
            rc = err_set(err, DUET_ERR_INPUT,
                         "listener %s: %s: address already in use: another process accepts "
                         "connections on this socket",
                         l->name, a->text);
        else if (errno == ECONNREFUSED)
            unlink(sun->sun_path); /* a stale socket from a previous run */
    } else if (!l->reuse_port) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno == EADDRINUSE)
            rc = err_set(err, DUET_ERR_INPUT,
                         "listener %s: %s: address already in use: another process listens "
                         "there (give --reuse-port, or reuse_port: true in YAML, to share the "
                         "port on purpose)",
                         l->name, a->text);
    }
    close(fd);
    return rc;
}

/* A listening socket for one worker; SO_REUSEPORT on TCP, so every worker has its own. */
static evutil_socket_t
listen_socket(const struct listener_cfg *l, struct duet_err *err)
{
    const struct net_addr *a = &l->listen;
    evutil_socket_t fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        err_set(err, DUET_ERR_INPUT, "listener %s: %s: socket: %s", l->name, a->text,
                strerror(errno));
        return -1;
    }
    if (!a->is_unix) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 1024) != 0) {
        err_set(err, DUET_ERR_INPUT, "listener %s: %s: cannot listen: %s", l->name, a->text,
                strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool
accept_error_is_resource(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* The back-off is over: accept again. */
static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct accept_pause *ap = arg;

    (void)fd;
    (void)what;
    if (ap->w->lev[ap->li] != NULL) /* NULL once the worker drains */
        evconnlistener_enable(ap->w->lev[ap->li]);
}

/*
 * accept(2) failed with an error libevent does not retry by itself (see
 * struct accept_pause): stop accepting on this listener for a while, and say
 * so at most once a second, with the count of errors since the last line.
 */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct worker *w = arg; /* libevent passes the accept callback's argument */
    struct accept_pause *ap = NULL;
    int e = EVUTIL_SOCKET_ERROR();
    double now = now_mono();
    struct timeval tv;

    for (size_t i = 0; i < w->nlev && ap == NULL; i++) {
        if (w->lev[i] == lev)
            ap = &w->pause[i];
    }
    if (ap == NULL || ap->timer == NULL) {
        evconnlistener_disable(lev); /* not ours to resume: never spin */
        return;
    }
    ap->errors++;
    ap->delay_ms = ap->delay_ms == 0 ? ACCEPT_PAUSE_MIN_MS
                                     : (ap->delay_ms * 2 > ACCEPT_PAUSE_MAX_MS
                                            ? ACCEPT_PAUSE_MAX_MS
                                            : ap->delay_ms * 2);
    if (!accept_error_is_resource(e))
        ap->delay_ms = ACCEPT_PAUSE_MIN_MS; /* unexpected: a short pause, not a spin */
    if (ap->logged == 0 || now - ap->logged >= 1.0) {
        struct gen *g = gen_current(ap->w->px);
        const char *name = ap->li < g->cfg.nlisteners ? g->cfg.listeners[ap->li].name : "?";
        log_event("error", "accept_error",
                  json_pack("{s:s,s:i,s:s,s:I,s:i}", "listener", name, "worker", ap->w->idx,
                            "error", strerror(e), "errors", (json_int_t)ap->errors,
                            "retry_ms", ap->delay_ms));
        gen_unref(g);
        ap->logged = now;
        ap->errors = 0;
    }
    evconnlistener_disable(lev);
    tv.tv_sec = ap->delay_ms / 1000;
    tv.tv_usec = (ap->delay_ms % 1000) * 1000;
    if (evtimer_add(ap->timer, &tv) != 0)
        evconnlistener_enable(lev);
}

/* Open a worker's listening sockets; see proxy_int.h. */
int
listener_open(struct worker *w, const struct proxy_cfg *cfg, evutil_socket_t *shared_unix,
              struct duet_err *err)
{
    w->lev = calloc(cfg->nlisteners, sizeof(*w->lev));
    w->pause = calloc(cfg->nlisteners, sizeof(*w->pause));
    if (w->lev == NULL || w->pause == NULL)
        return err_nomem(err);
    w->nlev = cfg->nlisteners;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        const struct net_addr *a = &l->listen;
        evutil_socket_t fd;
        /* Before the first worker binds: is the address someone else's? */
        if (w->idx == 0 && listen_probe(l, err) != 0)
            return -1;
        if (a->is_unix) {
            /* A unix socket cannot be shared with SO_REUSEPORT: one socket, all workers. */
            if (shared_unix[i] < 0 && (shared_unix[i] = listen_socket(l, err)) < 0)
                return -1;
            fd = w->idx == 0 ? shared_unix[i] : dup(shared_unix[i]);
        } else if ((fd = listen_socket(l, err)) < 0) {
            return -1;
        }
        w->lev[i] = evconnlistener_new(w->base, conn_accept_cb, w,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        w->pause[i].w = w;
        w->pause[i].li = i;
        w->pause[i].timer = evtimer_new(w->base, accept_resume_cb, &w->pause[i]);
        if (w->lev[i] == NULL || w->pause[i].timer == NULL) {
            if (w->lev[i] == NULL)
                close(fd);
            return err_set(err, DUET_ERR_INTERNAL, "%s: cannot watch the listening socket",
                           a->text);
        }
        evconnlistener_set_error_cb(w->lev[i], accept_error_cb);
    }
    return 0;
}

