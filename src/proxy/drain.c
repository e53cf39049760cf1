/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drain.c - graceful shutdown: on SIGTERM or SIGINT every worker closes its
 * listening sockets and idle connections, open connections finish what they
 * are doing (HTTP: the response in flight), and the process ends when none
 * is left or the drain timeout has passed; a second signal ends it at once.
 */
#include "proxy/proxy_int.h"

#include <signal.h>

#include "util/log.h"
#include "util/notify.h"

/*
 * A worker's listening sockets are closed (or it will never close them: its
 * loop is ending).  The last worker to get here writes the "draining" line, so
 * that a client connecting after that line is refused, whichever worker's
 * socket the kernel would have picked (SO_REUSEPORT); workers run in their own
 * threads, so the count is atomic.
 */
static void
drain_listener_closed(struct proxy *px)
{
    if (atomic_fetch_sub(&px->drain_listening, 1) != 1)
        return;
    log_event("info", "shutdown",
              json_pack("{s:s,s:s,s:I,s:i}", "signal", px->drain_signal, "phase", "draining",
                        "open_connections", (json_int_t)px->drain_open, "drain_timeout_ms",
                        px->drain_timeout_ms));
}

/*
 * In a worker's own thread, once SIGTERM arrived: its listening sockets close
 * (a new connection is refused, or goes to the process that replaces this
 * one), idle upstream connections go, and client connections waiting for
 * their next request close; the others finish what they are doing (an HTTP
 * connection closes after the response in flight).
 */
static void
worker_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->draining = true;
    for (size_t i = 0; i < w->nlev; i++) {
        if (w->lev[i] != NULL) {
            evconnlistener_free(w->lev[i]);
            w->lev[i] = NULL;
        }
        if (w->pause != NULL && w->pause[i].timer != NULL)
            event_del(w->pause[i].timer);
    }
    drain_listener_closed(w->px);
    upstream_pool_clear(w);
    conn_drain_idle(w);
}

/*
 * Every 100 ms while draining: done when every worker has closed its
 * listening sockets and no connection is open, or when the drain timeout
 * passed.
 */
static void
drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    long open = (long)metrics_conn_active();

    (void)fd;
    (void)what;
    if ((open > 0 || atomic_load(&px->drain_listening) > 0) && now_mono() < px->drain_deadline)
        return;
    log_event(open > 0 ? "warn" : "info", "shutdown",
              json_pack("{s:s,s:I}", "phase", open > 0 ? "drain_timeout" : "drained",
                        "open_connections", (json_int_t)open));
    event_del(px->drain_timer);
    for (int i = 0; i < px->nworkers; i++)
        event_base_loopexit(px->workers[i].base, NULL);
}

/*
 * SIGTERM (or SIGINT): stop accepting and let open connections finish, for
 * at most the drain timeout; a second signal ends the process at once.
 */
void
drain_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    static const struct timeval zero = {0, 0}, tick = {0, 100000};
    struct proxy *px = arg;
    struct gen *g;
    int drain_ms;

    (void)what;
    if (atomic_exchange(&px->draining, true)) {
        log_event("warn", "shutdown",
                  json_pack("{s:s,s:s,s:I}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
                            "phase", "forced", "open_connections",
                            (json_int_t)metrics_conn_active()));
        for (int i = 0; i < px->nworkers; i++)
            event_base_loopexit(px->workers[i].base, NULL);
        return;
    }
    g = gen_current(px);
    drain_ms = g->cfg.drain_timeout_ms;
    gen_unref(g);
    (void)notify_send("STOPPING=1\nSTATUS=draining open connections");
    /* The "draining" line waits for the last worker's listeners (drain_listener_closed). */
    px->drain_signal = sig == SIGINT ? "SIGINT" : "SIGTERM";
    px->drain_open = (long)metrics_conn_active();
    px->drain_timeout_ms = drain_ms;
    px->drain_deadline = now_mono() + drain_ms / 1000.0;
    atomic_store(&px->drain_listening, px->nworkers);
    for (int i = 0; i < px->nworkers; i++) {
        if (event_base_once(px->workers[i].base, -1, EV_TIMEOUT, worker_drain_cb,
                            &px->workers[i], &zero) != 0) {
            event_base_loopexit(px->workers[i].base, NULL);
            drain_listener_closed(px);
        }
    }
    px->drain_timer = event_new(px->workers[0].base, -1, EV_PERSIST, drain_check_cb, px);
    if (px->drain_timer == NULL || event_add(px->drain_timer, &tick) != 0) {
        for (int i = 0; i < px->nworkers; i++)
            event_base_loopexit(px->workers[i].base, NULL);
    }
}

/* Every second: changed files trigger a reload; CRLs near or past nextUpdate are reported. */
