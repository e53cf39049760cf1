/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c - the admin listener (libevent's evhttp on worker 0's loop):
 * /metrics (Prometheus text, with the notAfter of every certificate and the
 * thisUpdate and nextUpdate of every CRL of the current generation as Unix
 * times, and the older seconds-until gauges), /healthz (the process
 * answers), /readyz (each listener has a reachable target, no CRL in use is
 * past its nextUpdate, no --ocsp require listener's responder failed its last
 * OCSP_UNREADY_FAILURES queries, and the process is not draining; its body
 * also says how each CRL URL and OCSP staple is doing: the age of what is
 * cached and the last error of fetches that keep failing, which make it 503
 * only once a CRL they keep passes its nextUpdate, and a staple never).
 */
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "lib/x509util.h"
#include "proxy/crlfetch.h"
#include "util/log.h"

static void
expiry_gauges(struct gen *g)
{
    int64_t now = wall_now();

    metrics_gauge_clear("duet_certificate_expiry_seconds");
    metrics_gauge_clear("duet_certificate_not_after_timestamp_seconds");
    metrics_gauge_clear("duet_crl_expiry_seconds");
    metrics_gauge_clear("duet_crl_next_update_timestamp_seconds");
    metrics_gauge_clear("duet_crl_this_update_timestamp_seconds");
    metrics_gauge_clear("duet_crl_age_seconds");
    metrics_gauge_clear("duet_ocsp_staple_age_seconds");
    metrics_gauge_clear("duet_ocsp_staple_expiry_seconds");
    for (size_t i = 0; i < g->cfg.nlisteners; i++) {
        const struct staple *st = g->ls[i].staple;
        if (st != NULL && st->der != NULL) {
            char labels[200], ln[128];
            metrics_label(ln, sizeof(ln), g->ls[i].cfg->name);
            snprintf(labels, sizeof(labels), "listener=\"%s\"", ln);
            metrics_gauge_set("duet_ocsp_staple_age_seconds", labels,
                              (double)(now - st->this_update));
            metrics_gauge_set("duet_ocsp_staple_expiry_seconds", labels,
                              (double)(st->next_update - now));
        }
    }
    for (size_t i = 0; i < g->cfg.nlisteners; i++) {
        const struct tls_ctx_info *info = &g->ls[i].info;
        for (size_t k = 0; k < info->nitems; k++) {
            char labels[1200], ln[128], what[600], file[400];
            bool crl = strncmp(info->items[k].what, "CRL ", 4) == 0;
            metrics_label(ln, sizeof(ln), g->ls[i].cfg->name);
            metrics_label(what, sizeof(what), info->items[k].what + (crl ? 4 : 12));
            metrics_label(file, sizeof(file), info->items[k].file);
            snprintf(labels, sizeof(labels), "listener=\"%s\",%s=\"%s\",file=\"%s\"", ln,
                     crl ? "issuer" : "subject", what, file);
            /* The *_seconds-until gauges are kept for existing dashboards (deprecated). */
            metrics_gauge_set(crl ? "duet_crl_expiry_seconds" : "duet_certificate_expiry_seconds",
                              labels, (double)(info->items[k].not_after - now));
            metrics_gauge_set(crl ? "duet_crl_next_update_timestamp_seconds"
                                  : "duet_certificate_not_after_timestamp_seconds",
                              labels, (double)info->items[k].not_after);
            if (crl) {
                metrics_gauge_set("duet_crl_age_seconds", labels,
                                  (double)(now - info->items[k].this_update));
                metrics_gauge_set("duet_crl_this_update_timestamp_seconds", labels,
                                  (double)info->items[k].this_update);
            }
        }
    }
}

static void
admin_metrics(struct evhttp_request *req, void *arg)
{
    struct proxy *px = arg;
    struct evbuffer *b = evbuffer_new();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct gen *g = gen_current(px);

    expiry_gauges(g);
    gen_unref(g);
    metrics_gauge_set("duet_proxy_generations", "", (double)gen_alive());
    if (f != NULL) {
        metrics_write(f);
        fclose(f);
    }
    evbuffer_add(b, text != NULL ? text : "", len);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* A plain-text answer of /healthz and /readyz (without a Content-Type, evhttp says text/html). */
static void
text_reply(struct evhttp_request *req, int status, const char *reason, struct evbuffer *b)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, status, reason, b);
}

static void
admin_healthz(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    evbuffer_add_printf(b, "ok\n");
    text_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void
admin_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/* The admin listener's accept(2) failed: the same back-off as accept_error_cb, a fixed 1 s. */
static void
admin_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    static double logged;
    struct timeval one = {1, 0};
    double now = now_mono();

    (void)arg;
    if (logged == 0 || now - logged >= 1.0) {
        log_event("error", "accept_error",
                  json_pack("{s:s,s:s,s:i}", "listener", "admin", "error",
                            strerror(EVUTIL_SOCKET_ERROR()), "retry_ms", 1000));
        logged = now;
    }
    evconnlistener_disable(lev);
    if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, admin_accept_resume_cb, lev,
                        &one) != 0)
        evconnlistener_enable(lev);
}

/*
 * /readyz: whether each listener has a target that accepts a TCP connection
 * within READYZ_PROBE_MS.  The probes are non-blocking connects on the admin
 * worker's loop, all at once; the answer goes out when the last one is done,
 * and the worker serves connections meanwhile.
 */
#define READYZ_PROBE_MS 300

struct readyz;

struct readyz_probe {
    struct readyz *rz;
    size_t li;
    struct bufferevent *bev;
};

struct readyz {
    struct proxy *px;
    struct evhttp_request *req;
    struct gen *g;         /* a reference: the listeners and targets probed */
    size_t pending;        /* probes not done yet, plus one while they are being started */
    bool *reachable;       /* per listener */
    struct readyz_probe *probes;
};

/* "in 120 s" or "120 s ago": how far t is from now, for /readyz. */
static void
readyz_when(int64_t t, int64_t now, char *buf, size_t len)
{
    if (t >= now)
        snprintf(buf, len, "in %lld s", (long long)(t - now));
    else
        snprintf(buf, len, "%lld s ago", (long long)(now - t));
}

/*
 * One line per URL the fetcher keeps (CRLs by URL, staples): what is cached
 * and how old it is, and for fetches failing in a row, how many, since when
 * and the last error.  Information only: a cached CRL past its nextUpdate
 * makes /readyz 503 through the listener that loads it, and a staple that
 * cannot be had never does (clients are served without one).
 */
static void
readyz_fetch_lines(struct proxy *px, struct evbuffer *b, int64_t now)
{
    size_t n = crlfetch_status(px->fetch, NULL, 0);
    struct crlfetch_status *st = n > 0 ? calloc(n, sizeof(*st)) : NULL;

    if (st == NULL)
        return;
    n = crlfetch_status(px->fetch, st, n); /* the sources are made at start: n stays */
    for (size_t i = 0; i < n; i++) {
        const struct crlfetch_status *s = &st[i];
        char what[800], tu[40], nu[40], at[40], rel[48];

        if (s->url[0] == '\0')
            continue; /* not published yet (every source is, once the start is done) */
        if (s->ocsp)
            snprintf(what, sizeof(what), "%s: OCSP staple from %s", s->listener, s->url);
        else
            snprintf(what, sizeof(what), "CRL %s", s->url);
        if (s->have) {
            x509u_fmt_rfc3339(s->this_update, tu, sizeof(tu));
            x509u_fmt_rfc3339(s->next_update, nu, sizeof(nu));
            readyz_when(s->next_update, now, rel, sizeof(rel));
            const char *past = s->ocsp ? ": not stapled" : ": passed";
            evbuffer_add_printf(b, "%s: cached copy %lld s old (thisUpdate %s), nextUpdate %s "
                                   "(%s)%s\n",
                                what, (long long)(now - s->this_update), tu, nu, rel,
                                s->next_update > now ? "" : past);
        } else {
            evbuffer_add_printf(b, "%s: nothing cached%s\n", what,
                                s->ocsp ? ": clients that ask get no staple" : "");
        }
        if (s->failures > 0) {
            x509u_fmt_rfc3339(s->last_fail, at, sizeof(at));
            evbuffer_add_printf(b, "%s: the last %d fetch%s failed, the latest at %s (%s): %s\n",
                                what, s->failures, s->failures == 1 ? "" : "es", at, s->code,
                                s->error);
        }
    }
    free(st);
}

static void
readyz_finish(struct readyz *rz)
{
    struct evbuffer *b = evbuffer_new();
    bool ready = true;

    int64_t now = wall_now();

    for (size_t i = 0; i < rz->g->cfg.nlisteners; i++) {
        const struct gen_listener *gl = &rz->g->ls[i];
        int64_t crl_next = gl->info.crl_next_update_min;
        /*
         * A CRL past its nextUpdate (with crl_expired: reject) refuses every
         * client whose chain needs it: not ready, rather than ready while
         * clients are told their certificate cannot be checked.
         */
        bool stale = crl_next != 0 && crl_next < now && !gl->cfg->crl_expired_warn;
        if (b != NULL) {
            evbuffer_add_printf(b, "%s: %s\n", gl->cfg->name,
                                rz->reachable[i] ? "upstream reachable" : "no upstream reachable");
            if (stale)
                evbuffer_add_printf(b, "%s: a CRL passed its nextUpdate %lld s ago; reload a "
                                       "newer one\n",
                                    gl->cfg->name, (long long)(now - crl_next));
            if (gl->cfg->ocsp_staple && gl->staple != NULL &&
                (gl->staple->der == NULL || gl->staple->next_update <= now))
                evbuffer_add_printf(b, "%s: no current OCSP staple: clients that ask for one get "
                                       "none (they are still served)\n",
                                    gl->cfg->name);
        }
        ready = ready && rz->reachable[i] && !stale;
        /*
         * --ocsp require refuses every client without a cached answer while
         * its responder fails: not ready once the last queries all failed.
         */
        if (gl->cfg->ocsp == OCSP_REQUIRE) {
            char last[300];
            int fails = ocsp_failures(gl->cfg->name, last, sizeof(last));
            if (fails >= OCSP_UNREADY_FAILURES) {
                ready = false;
                if (b != NULL)
                    evbuffer_add_printf(b, "%s: the last %d OCSP queries failed (--ocsp require "
                                           "refuses clients without a cached answer): %s\n",
                                        gl->cfg->name, fails, last);
            }
        }
    }
    if (b != NULL)
        readyz_fetch_lines(rz->px, b, now);
    text_reply(rz->req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", b);
    if (b != NULL)
        evbuffer_free(b);
    gen_unref(rz->g);
    free(rz->reachable);
    free(rz->probes);
    free(rz);
}

static void
readyz_done(struct readyz *rz)
{
    if (--rz->pending == 0)
        readyz_finish(rz);
}

static void
readyz_probe_cb(struct bufferevent *bev, short what, void *arg)
{
    struct readyz_probe *p = arg;

    if (what & BEV_EVENT_CONNECTED)
        p->rz->reachable[p->li] = true;
    bufferevent_free(bev);
    p->bev = NULL;
    readyz_done(p->rz);
}

static void
admin_readyz(struct evhttp_request *req, void *arg)
{
    struct proxy *px = arg;
    struct readyz *rz = calloc(1, sizeof(*rz));
    struct event_base *base = px->workers[0].base;
    struct timeval tv = {0, READYZ_PROBE_MS * 1000};
    size_t n = 0, k = 0;

    if (atomic_load(&px->draining)) {
        /* Shutting down: a load balancer sends nothing new here. */
        struct evbuffer *b = evbuffer_new();
        if (b != NULL)
            evbuffer_add_printf(b, "draining: shutting down\n");
        text_reply(req, 503, "Service Unavailable", b);
        if (b != NULL)
            evbuffer_free(b);
        free(rz);
        return;
    }
    if (rz == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    rz->req = req;
    rz->px = px;
    rz->g = gen_current(px);
    for (size_t i = 0; i < rz->g->cfg.nlisteners; i++)
        n += rz->g->ls[i].cfg->ntargets;
    rz->reachable = calloc(rz->g->cfg.nlisteners + 1, sizeof(*rz->reachable));
    rz->probes = calloc(n + 1, sizeof(*rz->probes));
    rz->pending = 1;
    if (rz->reachable == NULL || rz->probes == NULL) {
        gen_unref(rz->g);
        free(rz->reachable);
        free(rz->probes);
        free(rz);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < rz->g->cfg.nlisteners; i++) {
        const struct listener_cfg *l = rz->g->ls[i].cfg;
        for (size_t t = 0; t < l->ntargets; t++, k++) {
            struct readyz_probe *p = &rz->probes[k];
            p->rz = rz;
            p->li = i;
            p->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
            if (p->bev == NULL)
                continue; /* counts as unreachable */
            bufferevent_setcb(p->bev, NULL, NULL, readyz_probe_cb, p);
            bufferevent_set_timeouts(p->bev, &tv, &tv);
            rz->pending++;
            if (bufferevent_socket_connect(p->bev, (const struct sockaddr *)&l->targets[t].ss,
                                           (int)l->targets[t].len) != 0) {
                /* Failed at once, without a callback (no socket, say): unreachable. */
                bufferevent_free(p->bev);
                p->bev = NULL;
                rz->pending--;
            }
        }
    }
    readyz_done(rz);
}

/* The admin listener on worker 0's loop; see proxy_int.h. */
int
admin_start(struct proxy *px, const struct proxy_cfg *cfg, struct duet_err *err)
{
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)&cfg->admin.ss;
    struct evhttp_bound_socket *bound;
    char host[INET6_ADDRSTRLEN];
    uint16_t port;

    px->admin = evhttp_new(px->workers[0].base);
    if (cfg->admin.ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
        port = ntohs(a4->sin_port);
    } else {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)&cfg->admin.ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
        port = ntohs(a6->sin6_port);
    }
    bound = px->admin != NULL ? evhttp_bind_socket_with_handle(px->admin, host, port) : NULL;
    if (bound == NULL)
        return err_set(err, DUET_ERR_INPUT, "--admin %s: cannot listen: %s", cfg->admin.text,
                       strerror(errno));
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), admin_accept_error_cb);
    evhttp_set_cb(px->admin, "/metrics", admin_metrics, px);
    evhttp_set_cb(px->admin, "/healthz", admin_healthz, px);
    evhttp_set_cb(px->admin, "/readyz", admin_readyz, px);
    evhttp_set_allowed_methods(px->admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    return 0;
}
