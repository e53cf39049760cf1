/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reload.c - reload: on SIGHUP or when a file the configuration reads
 * changes, the configuration is read again from its source (struct
 * cfg_source), validated, and a new generation is built on a thread of its
 * own (a large CRL does not stall handshakes); the swap is a pointer under a
 * mutex.  A reload that fails keeps the running generation and says why.
 * The watcher also reports CRLs near or past their nextUpdate.
 */
#include "proxy/proxy_int.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/x509util.h"
#include "util/log.h"
#include "util/notify.h"

/* Remember the files a configuration reads; see proxy_int.h. */
void
reload_watch_reset(struct proxy *px, const struct proxy_cfg *cfg)
{
    const char *files[MAX_WATCH];
    size_t n = proxy_cfg_files(cfg, files, MAX_WATCH);

    for (size_t i = 0; i < px->nwatch; i++)
        free(px->watch[i].path);
    px->nwatch = 0;
    for (size_t i = 0; i < n; i++) {
        struct file_sig *s = &px->watch[px->nwatch];
        struct stat st;
        if ((s->path = strdup(files[i])) == NULL)
            continue;
        s->exists = stat(files[i], &st) == 0;
        if (s->exists) {
            s->mtime = st.st_mtim;
            s->size = st.st_size;
            s->ino = st.st_ino;
        }
        px->nwatch++;
    }
}

static bool
watch_changed(struct proxy *px)
{
    for (size_t i = 0; i < px->nwatch; i++) {
        struct file_sig *s = &px->watch[i];
        struct stat st;
        bool exists = stat(s->path, &st) == 0;
        if (exists != s->exists)
            return true;
        if (exists && (st.st_mtim.tv_sec != s->mtime.tv_sec ||
                       st.st_mtim.tv_nsec != s->mtime.tv_nsec || st.st_size != s->size ||
                       st.st_ino != s->ino))
            return true;
    }
    return false;
}

/* Read the configuration from its source again; see proxy_int.h. */
int
cfg_source_read(const struct cfg_source *src, struct proxy_cfg *out, struct duet_err *err)
{
    bool check = false;

    if (src->yaml_path != NULL)
        return proxy_cfg_from_file(src->yaml_path, src->role, out, err);
    return proxy_cfg_from_args(src->argc, src->argv, src->role, out, &check, err);
}

/* Same listening addresses?  They cannot change without a restart. */
static bool
same_listeners(const struct proxy_cfg *a, const struct proxy_cfg *b)
{
    if (a->nlisteners != b->nlisteners)
        return false;
    for (size_t i = 0; i < a->nlisteners; i++) {
        if (strcmp(a->listeners[i].listen.text, b->listeners[i].listen.text) != 0)
            return false;
    }
    return true;
}

/*
 * On a worker's loop after a reload: its open connections meet the new
 * trust, and its idle upstream connections of older generations close.
 */
static void
revalidate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct gen *g = gen_current(w->px);

    (void)fd;
    (void)what;
    conn_revalidate(w, g);
    upstream_pool_retire(w, g); /* each idle upstream connection holds its generation */
    gen_unref(g);
}

/*
 * Ask every worker to check its open connections against the generation just
 * installed: a CRL that now lists a client, or anchors that no longer include
 * its CA, end that client's connections (conn_revalidate).
 */
static void
revalidate_all(struct proxy *px)
{
    static const struct timeval zero = {0, 0};

    for (int i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        if (w->base != NULL &&
            event_base_once(w->base, -1, EV_TIMEOUT, revalidate_cb, w, &zero) != 0)
            log_msg("error", "reload", "cannot ask a worker to check its open connections");
    }
}

static void *
reload_thread(void *arg)
{
    struct proxy *px = arg;

    /*
     * Reading certificates and CRLs (a million serials take most of a second
     * of CPU) yields to the workers: on a busy core handshakes go first and
     * the reload takes longer, instead of handshakes waiting for it.
     */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
        log_msg("warn", "reload", "cannot lower the reload thread's priority");
again:
    do {
        struct proxy_cfg cfg;
        struct duet_err err;
        struct gen *g = NULL, *old;
        double t0 = now_mono();

        atomic_store(&px->reload_again, false);
        err_clear(&err);
        if (cfg_source_read(&px->src, &cfg, &err) != 0) {
            log_event("error", "reload",
                      json_pack("{s:s,s:s}", "result", "failed", "reason", err.msg));
            metrics_count("duet_reloads_total", "result=\"failed\"", 1);
            proxy_cfg_clear(&cfg);
            continue;
        }
        old = gen_current(px);
        if (!same_listeners(&old->cfg, &cfg)) {
            log_event("error", "reload",
                      json_pack("{s:s,s:s}", "result", "failed", "reason",
                                "listening addresses changed; that needs a restart"));
            metrics_count("duet_reloads_total", "result=\"failed\"", 1);
            gen_unref(old);
            proxy_cfg_clear(&cfg);
            continue;
        }
        gen_unref(old);
        if (gen_build(&cfg, &g, &err) != 0) {
            log_event("error", "reload",
                      json_pack("{s:s,s:s,s:s}", "result", "failed", "reason", err.msg, "kept",
                                "the previous certificates, trust, CRLs and policy"));
            metrics_count("duet_reloads_total", "result=\"failed\"", 1);
            proxy_cfg_clear(&cfg);
            continue;
        }
        pthread_mutex_lock(&px->lock);
        old = px->gen;
        px->gen = g;
        pthread_mutex_unlock(&px->lock);
        gen_unref(old);
        log_event("info", "reload",
                  json_pack("{s:s,s:I,s:f}", "result", "ok", "generation", (json_int_t)g->id,
                            "duration_ms", (now_mono() - t0) * 1000.0));
        metrics_count("duet_reloads_total", "result=\"ok\"", 1);
        px->crl_warned = false;
        revalidate_all(px);
    } while (atomic_load(&px->reload_again));
    atomic_store(&px->reloading, false);
    {
        /*
         * A request that arrived between the last check and the store found
         * `reloading` still set and only raised reload_again: take it here
         * (unless a new reload thread already did).
         */
        bool expected = false;
        if (atomic_load(&px->reload_again) &&
            atomic_compare_exchange_strong(&px->reloading, &expected, true))
            goto again;
    }
    (void)notify_send("READY=1\nSTATUS=serving"); /* reloaded, or kept the previous state */
    return NULL;
}

/* Start a reload on its own thread; see proxy_int.h. */
void
reload_start(struct proxy *px, const char *why)
{
    pthread_t t;
    bool expected = false;

    log_event("info", "reload_requested", json_pack("{s:s}", "trigger", why));
    (void)notify_reloading(); /* READY=1 again when the reload thread is done */
    if (!atomic_compare_exchange_strong(&px->reloading, &expected, true)) {
        atomic_store(&px->reload_again, true);
        return;
    }
    if (pthread_create(&t, NULL, reload_thread, px) != 0) {
        atomic_store(&px->reloading, false);
        log_msg("error", "reload", "cannot start the reload thread");
        (void)notify_send("READY=1\nSTATUS=serving"); /* the running state stays */
        return;
    }
    pthread_detach(t);
}

/* SIGHUP: reload (arg: the proxy). */
void
reload_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    reload_start(arg, "SIGHUP");
}

/* SIGUSR1: reopen the log file (logrotate moved it; no copytruncate needed). */
void
reload_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    struct gen *g;

    (void)fd;
    (void)what;
    /*
     * Every 10 s, give the system back the free pages inside the heap: a burst
     * of handshakes leaves holes (their transient memory) between the small
     * blocks open connections keep, and glibc only returns the top of the
     * heap by itself.  This halves the resident memory of idle connections
     * after a burst, for 1-5 ms of this worker every 10 s.
     */
    if (++px->ticks % 10 == 0)
        malloc_trim(128 * 1024);
    if (!atomic_load(&px->reloading) && watch_changed(px)) {
        g = gen_current(px);
        reload_watch_reset(px, &g->cfg);
        gen_unref(g);
        reload_start(px, "file change");
        return;
    }
    g = gen_current(px);
    if (!atomic_load(&px->reloading)) {
        /* Keep the watched list in step with the current generation. */
        static uint64_t seen_gen;
        if (seen_gen != g->id) {
            reload_watch_reset(px, &g->cfg);
            seen_gen = g->id;
        }
    }
    for (size_t i = 0; i < g->cfg.nlisteners && !px->crl_warned; i++) {
        int64_t nu = g->ls[i].info.crl_next_update_min;
        int64_t left = nu - wall_now();
        if (nu != 0 && left < 3600) {
            char date[32];
            x509u_fmt_rfc3339(nu, date, sizeof(date));
            log_event(left < 0 ? "error" : "warn", "crl_stale",
                      json_pack("{s:s,s:s,s:s,s:s}", "listener", g->ls[i].cfg->name, "next_update",
                                date, "state", left < 0 ? "expired" : "expires within the hour",
                                "effect",
                                left < 0 ? (g->ls[i].cfg->crl_expired_warn
                                                ? "handshakes continue (crl_expired: warn)"
                                                : "handshakes that need this CRL are refused")
                                         : "none yet; publish a fresh CRL"));
            px->crl_warned = true;
        }
    }
    gen_unref(g);
}

