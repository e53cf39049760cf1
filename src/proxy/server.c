/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - proxy_run(): the process of `duet proxy` and `duet tunnel`.  It
 * builds the first generation, opens the listeners of every worker (one
 * event loop per thread), the admin listener and the signal handlers, runs
 * worker 0 on the main thread, and batches each worker's log lines into one
 * write per loop turn.  The pieces are described in proxy_int.h.
 */
#include "proxy/proxy_int.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/thread.h>

#include "proxy/crlfetch.h"
#include "proxy/h2up.h"
#include "util/evlog.h"
#include "util/log.h"
#include "util/notify.h"

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    log_batch_on_loop(w->base);
    event_base_dispatch(w->base);
    conn_linger_clear(w);
    upstream_pool_clear(w);
    h2up_clear(w);
    log_batch_end();
    return NULL;
}


static void
sigusr1_cb(evutil_socket_t sig, short what, void *arg)
{
    struct duet_err err;

    (void)sig;
    (void)what;
    (void)arg;
    log_batch_flush(); /* this thread's lines so far belong to the old file */
    if (log_reopen(&err) != 0)
        log_event("error", "log_reopen", json_pack("{s:s}", "error", err.msg));
    else
        log_event("info", "log_reopen", json_pack("{s:s}", "signal", "SIGUSR1"));
}

/* Run until SIGTERM or SIGINT; see proxy.h. */
int
proxy_run(struct proxy_cfg *cfg, int argc, char **argv)
{
    struct proxy *px = calloc(1, sizeof(*px));
    struct duet_err err;
    struct gen *g = NULL;
    struct crlfetch *crls = NULL; /* stopped before the process exits */
    evutil_socket_t *shared_unix = NULL;
    int rc = 1;

    if (px == NULL)
        fatal("out of memory");
    /*
     * Large blocks (a CRL's serial set, file buffers) always come from mmap, so
     * the memory of a generation retired by a reload goes back to the system
     * instead of staying in the heap (glibc otherwise raises the threshold
     * after the first such free).
     */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    /*
     * Nor does the top of the heap shrink on every free (a TLS record buffer
     * freed by an idle connection would otherwise cost a brk(2) pair per
     * request); the periodic malloc_trim() in reload_watch_cb gives memory back.
     */
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0)
        fatal("libevent has no thread support");
    pthread_mutex_init(&px->lock, NULL);
    if ((px->throttle = throttle_new()) == NULL)
        fatal("out of memory");
    px->src.role = cfg->role;
    px->src.argc = argc;
    px->src.argv = argv;
    if (log_open(cfg->log_file, &err) != 0 ||
        (cfg->log_level != NULL && log_set_level(cfg->log_level, &err) != 0))
        fatal("%s", err.msg);
    {
        int workers = cfg->workers;
        /* CRLs by URL are fetched (or found in the cache) before anything loads them. */
        if (crlfetch_start(cfg, &crls, &err) != 0)
            fatal("%s", err.msg);
        px->fetch = crls; /* /readyz reports on its URLs */
        /* One cache for every worker, sized once (a reload keeps it and its answers). */
        if (cfg->ocsp_cache_size > 0 &&
            (px->ocsp_cache = ocsp_cache_new((size_t)cfg->ocsp_cache_size)) == NULL)
            fatal("out of memory");
        if (gen_build(cfg, &g, &err) != 0)
            fatal("%s", err.msg);
        px->gen = g;
        px->nworkers = workers > MAX_WORKERS ? MAX_WORKERS : workers;
    }
    shared_unix = malloc(g->cfg.nlisteners * sizeof(*shared_unix));
    if (shared_unix == NULL)
        fatal("out of memory");
    for (size_t i = 0; i < g->cfg.nlisteners; i++)
        shared_unix[i] = -1;
    for (int i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        w->idx = i;
        w->px = px;
        {
            /*
             * epoll with a changelist: an event enabled and disabled again
             * within one loop iteration (a bufferevent write) costs no
             * epoll_ctl.  Safe here because no descriptor is dup'd within one
             * loop (the unix listener is dup'd across workers, each with its
             * own loop).
             */
            struct event_config *ec = event_config_new();
            if (ec != NULL)
                event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
            w->base = ec != NULL ? event_base_new_with_config(ec) : event_base_new();
            event_config_free(ec);
        }
        if (w->base == NULL)
            fatal("cannot create an event loop");
        if (listener_open(w, &g->cfg, shared_unix, &err) != 0)
            fatal("%s", err.msg);
        ocsp_recheck_start(w);
    }
    free(shared_unix);
    if (g->cfg.has_admin && admin_start(px, &g->cfg, &err) != 0)
        fatal("%s", err.msg);
    px->sighup = evsignal_new(px->workers[0].base, SIGHUP, reload_sighup_cb, px);
    px->sigterm = evsignal_new(px->workers[0].base, SIGTERM, drain_signal_cb, px);
    px->sigint = evsignal_new(px->workers[0].base, SIGINT, drain_signal_cb, px);
    px->sigusr1 = evsignal_new(px->workers[0].base, SIGUSR1, sigusr1_cb, px);
    px->watch_timer = event_new(px->workers[0].base, -1, EV_PERSIST, reload_watch_cb, px);
    {
        struct timeval one = {1, 0};
        event_add(px->sighup, NULL);
        event_add(px->sigterm, NULL);
        event_add(px->sigint, NULL);
        event_add(px->sigusr1, NULL);
        event_add(px->watch_timer, &one);
    }
    reload_watch_reset(px, &g->cfg);
    {
        json_t *ls = json_array();
        for (size_t i = 0; i < g->cfg.nlisteners; i++) {
            const struct listener_cfg *l = &g->cfg.listeners[i];
            json_t *targets = json_array();
            for (size_t k = 0; k < l->ntargets; k++)
                json_array_append_new(targets, json_string(l->targets[k].text));
            json_array_append_new(ls, json_pack("{s:s,s:s,s:s,s:o,s:I}", "name", l->name, "listen",
                                                l->listen.text, "mode",
                                                l->mode == MODE_HTTP ? "http" : "tcp", "targets",
                                                targets, "rules", (json_int_t)l->policy.nrules));
        }
        log_event("info", "start",
                  json_pack("{s:s,s:s,s:i,s:o,s:o}", "role",
                            px->src.role == ROLE_SERVER ? "proxy" : "tunnel", "version",
                            DUET_VERSION, "workers", px->nworkers, "listeners", ls, "admin",
                            g->cfg.has_admin ? json_string(g->cfg.admin.text) : json_null()));
    }
    for (int i = 1; i < px->nworkers; i++) {
        if (pthread_create(&px->workers[i].thr, NULL, worker_main, &px->workers[i]) != 0)
            fatal("cannot start worker %d", i);
    }
    /* The sockets listen and every worker runs: ready (systemd Type=notify). */
    if (notify_send("READY=1\nSTATUS=serving") != 0)
        log_msg("warn", "notify", "cannot notify the service manager at $NOTIFY_SOCKET");
    log_batch_on_loop(px->workers[0].base);
    event_base_dispatch(px->workers[0].base);
    upstream_pool_clear(&px->workers[0]);
    h2up_clear(&px->workers[0]);
    log_batch_end();
    for (int i = 1; i < px->nworkers; i++)
        pthread_join(px->workers[i].thr, NULL);
    crlfetch_stop(crls);
    rc = 0;
    /* Exit without tearing down connections one by one: the process ends here. */
    log_close();
    return rc;
}

