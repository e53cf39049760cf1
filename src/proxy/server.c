/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - the proxy/tunnel engine: workers, generations, connections,
 * HTTP/1.1 and TCP relaying, the admin listener, reload.
 *
 * Threads: worker 0 runs in the main thread and also serves the admin
 * listener, signals and the file watcher; workers 1..N-1 are threads with
 * their own event_base and their own listening sockets (SO_REUSEPORT), so the
 * kernel spreads connections without a shared accept lock.
 *
 * Generations: everything a reload can change (TLS contexts, trust, CRLs,
 * policy, targets) lives in a reference-counted generation.  A connection
 * takes a reference when it is accepted and keeps it to the end, so a reload
 * never changes an open connection; new connections take the new generation.
 * Reloads are built on a separate thread, so loading a large CRL does not
 * stall handshakes; the swap itself is a pointer under a mutex.
 *
 * Connections never free themselves inside a callback: conn_close() marks
 * the connection closing and schedules the free on the loop.
 */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <limits.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <http_parser.h>
#include <openssl/err.h>

#include "lib/x509util.h"
#include "proxy/http.h"
#include "proxy/metrics.h"
#include "proxy/ppv2.h"
#include "util/log.h"
#include "util/notify.h"

#define MAX_WORKERS 256
#define MAX_WATCH 64
#define UPSTREAM_DOWN_SECONDS 10
#define RELAY_HIGH_WATER (1024 * 1024)

/* --- generations ----------------------------------------------------------- */

struct gen_listener {
    const struct listener_cfg *cfg;
    SSL_CTX *ssl_ctx; /* server: toward clients; tunnel: toward the target */
    SSL_CTX *up_ctx;  /* server with upstream TLS */
    struct tls_ctx_info info;
    atomic_size_t rr;
    _Atomic int64_t *down_until; /* per target */
    /* Counter series found once, for the per-request metrics. */
    _Atomic(struct metrics_counter *) *authz; /* (rule index + 1) * 2 + allow */
    _Atomic(struct metrics_counter *) codes[600];
};

struct gen {
    atomic_int refs;
    uint64_t id;
    struct proxy_cfg cfg;
    struct gen_listener *ls;
};

/*
 * Free what gen_build made for n listeners: whole or partly built (calloc'd,
 * so what was not made yet is NULL).  The one destroy path of a generation's
 * listeners: gen_free, gen_build's failure and proxy_check all use it.
 */
static void
gen_listeners_free(struct gen_listener *ls, size_t n)
{
    for (size_t i = 0; ls != NULL && i < n; i++) {
        SSL_CTX_free(ls[i].ssl_ctx);
        SSL_CTX_free(ls[i].up_ctx);
        tls_ctx_info_clear(&ls[i].info);
        free(ls[i].down_until);
        free(ls[i].authz);
    }
    free(ls);
}

static void
gen_free(struct gen *g)
{
    if (g == NULL)
        return;
    gen_listeners_free(g->ls, g->cfg.nlisteners);
    proxy_cfg_clear(&g->cfg);
    free(g);
}

static void
gen_ref(struct gen *g)
{
    atomic_fetch_add(&g->refs, 1);
}

static void *
gen_free_thread(void *arg)
{
    gen_free(arg);
    return NULL;
}

/*
 * Drop a reference.  The last one of a retired generation is often dropped by
 * a worker closing a connection; the generation's memory (tens of MB with a
 * large CRL) is then freed on a low-priority thread of its own, not on the
 * worker, so the handshakes in flight do not wait for it.
 */
static void
gen_unref(struct gen *g)
{
    pthread_t t;
    pthread_attr_t attr;

    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    if (pthread_attr_init(&attr) == 0) {
        bool started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                       pthread_create(&t, &attr, gen_free_thread, g) == 0;
        pthread_attr_destroy(&attr);
        if (started)
            return;
    }
    gen_free(g);
}

/* Build the TLS contexts of a configuration; takes ownership of cfg on success. */
static int
gen_build(struct proxy_cfg *cfg, struct gen **out, struct duet_err *err)
{
    static atomic_ulong next_id = 1;
    struct gen *g = calloc(1, sizeof(*g));

    *out = NULL;
    if (g == NULL)
        return err_nomem(err);
    g->ls = calloc(cfg->nlisteners, sizeof(*g->ls));
    if (g->ls == NULL) {
        free(g);
        return err_nomem(err);
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_cfg *l = &cfg->listeners[i];
        struct gen_listener *gl = &g->ls[i];
        struct tls_opts o;

        gl->cfg = l;
        gl->down_until = calloc(l->ntargets, sizeof(*gl->down_until));
        gl->authz = calloc((l->policy.nrules + 1) * 2, sizeof(*gl->authz));
        if (gl->down_until == NULL || gl->authz == NULL) {
            err_nomem(err);
            goto err;
        }
        memset(&o, 0, sizeof(o));
        o.cert_file = l->cert;
        o.key_file = l->key;
        o.ca_file = l->cacert;
        o.crl_files = (const char *const *)l->crls;
        o.ncrl_files = l->ncrls;
        o.crl_scope = l->crl_scope;
        o.crl_expired_ok = l->crl_expired_warn;
        o.tls12 = l->tls12;
        o.verify_optional = l->verify_optional;
        o.insecure_key_mode = cfg->insecure_key_mode;
        if (cfg->role == ROLE_SERVER) {
            o.alpn = l->alpn != NULL ? l->alpn : (l->mode == MODE_HTTP ? "http/1.1" : NULL);
            o.session_tickets = !l->no_tickets;
            o.read_ahead = l->mode == MODE_HTTP; /* drained by client_pull() */
            o.ticket_keys_file = l->ticket_keys;
            o.listener = l->name;     /* sessions resume only under this listener, */
            o.policy = &l->policy;    /* trust and policy (see tls.c "Session binding") */
            if (tls_server_ctx_new(&o, &gl->ssl_ctx, &gl->info, err) != 0)
                goto err_named;
            if (l->up_cacert != NULL) {
                struct tls_opts u;
                memset(&u, 0, sizeof(u));
                u.cert_file = l->up_cert;
                u.key_file = l->up_key;
                u.ca_file = l->up_cacert;
                u.insecure_key_mode = cfg->insecure_key_mode;
                u.tls12 = true;
                if (tls_client_ctx_new(&u, &gl->up_ctx, &gl->info, err) != 0)
                    goto err_named;
            }
        } else {
            o.alpn = l->alpn;
            if (tls_client_ctx_new(&o, &gl->ssl_ctx, &gl->info, err) != 0)
                goto err_named;
        }
        continue;
    err_named:
        if (cfg->nlisteners > 1)
            err_prefix(err, "listener %s", l->name);
        goto err;
    }
    g->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    /* gl->cfg pointed into the caller's array, which now belongs to g->cfg: same memory. */
    atomic_init(&g->refs, 1);
    g->id = atomic_fetch_add(&next_id, 1);
    *out = g;
    return 0;
err:
    /* cfg still belongs to the caller: only what was built here goes. */
    gen_listeners_free(g->ls, cfg->nlisteners);
    free(g);
    return -1;
}

int
proxy_check(const struct proxy_cfg *cfg, struct duet_err *err)
{
    struct proxy_cfg copy = *cfg;
    struct gen *g = NULL;
    /* gen_build takes ownership; build on a shallow copy and hand the memory back. */
    if (gen_build(&copy, &g, err) != 0)
        return -1;
    /* The configuration's memory is the caller's: free the generation without it. */
    gen_listeners_free(g->ls, cfg->nlisteners);
    free(g);
    return 0;
}

/* --- the proxy ------------------------------------------------------------ */

struct proxy;

struct pooled;

struct worker {
    int idx;
    pthread_t thr;
    struct event_base *base;
    struct evconnlistener **lev;
    size_t nlev;
    struct proxy *px;
    struct pooled *pool; /* idle upstream connections (http mode) */
    struct accept_pause *pause; /* per listener: accept back-off when out of descriptors */
    struct conn *conns;  /* its open client connections (for draining) */
    bool draining;       /* SIGTERM: no new connections, open ones finish */
};

/*
 * A listener whose accept(2) fails (EMFILE when the process is out of file
 * descriptors, ENFILE, ENOBUFS, ENOMEM) stays readable: accepting again at
 * once would spin the worker and flood the log.  It is disabled instead for
 * ACCEPT_PAUSE_MIN_MS, doubling up to ACCEPT_PAUSE_MAX_MS while the errors go
 * on; one log line a second says so.  The first accept that works again
 * resets the delay.
 */
#define ACCEPT_PAUSE_MIN_MS 100
#define ACCEPT_PAUSE_MAX_MS 1000

struct accept_pause {
    struct worker *w;
    size_t li;           /* the listener's index */
    struct event *timer; /* re-enables the listener */
    int delay_ms;        /* 0: not backing off */
    double logged;       /* monotonic seconds of the last accept_error line */
    unsigned long errors; /* accept errors since that line */
};

struct file_sig {
    char *path;
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool exists;
};


struct proxy {
    pthread_mutex_t lock;
    struct gen *gen;
    struct worker workers[MAX_WORKERS];
    int nworkers;
    enum proxy_role role;
    int argc;
    char **argv;
    struct evhttp *admin;
    struct event *sighup, *sigterm, *sigint, *sigusr1, *watch_timer;
    unsigned long ticks; /* watch_cb runs, one a second */
    struct file_sig watch[MAX_WATCH];
    size_t nwatch;
    atomic_bool reloading;
    atomic_bool reload_again;
    bool crl_warned;
    struct throttle *throttle; /* failed handshakes per client address (throttle.c) */
    atomic_bool draining;      /* SIGTERM received: see sigterm_cb */
    double drain_deadline;     /* monotonic */
    struct event *drain_timer;
};

static struct gen *
gen_current(struct proxy *px)
{
    struct gen *g;

    pthread_mutex_lock(&px->lock);
    g = px->gen;
    gen_ref(g);
    pthread_mutex_unlock(&px->lock);
    return g;
}

static double
now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- per-IP failed-handshake throttle --------------------------------------- */

static void
throttle_policy_of(const struct proxy_cfg *cfg, struct throttle_policy *p)
{
    p->per_second = cfg->fail_per_second;
    p->burst = cfg->fail_burst;
    p->exempt = cfg->throttle_exempt;
    p->nexempt = cfg->nthrottle_exempt;
}

static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len, char *ip,
                          size_t iplen);

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

/* A handshake from this address succeeded: the token taken at accept comes back. */
static void
conn_throttle_succeeded(struct proxy *px, const struct proxy_cfg *cfg, const struct sockaddr *sa)
{
    struct throttle_policy p;

    throttle_policy_of(cfg, &p);
    throttle_give_back(px->throttle, &p, sa, now_mono());
}

/* --- connections ---------------------------------------------------------- */

enum req_state { REQ_HEADERS = 0, REQ_BODY, REQ_WAIT_RESPONSE };

struct conn {
    struct worker *w;
    struct gen *gen;
    struct gen_listener *gl;
    struct bufferevent *cbev; /* client side */
    struct bufferevent *ubev; /* upstream side */
    struct event *hs_timer;   /* server role: the handshake deadline, counted from accept */
    SSL *ssl;                 /* the TLS side: client (server role) or upstream (tunnel) */
    struct sockaddr_storage peer_ss, local_ss;
    char peer[80];
    char peer_ip[64];
    double t_start;
    struct duet_identity *id;
    bool closing, handshake_done, close_when_flushed, upstream_connected, upstream_failed;
    size_t target;
    int tries;
    /* HTTP */
    http_parser req_p, resp_p;
    enum req_state req_state;
    struct http_reader rd;     /* the request head being read (p->data of req_p) */
    struct event *head_timer;  /* the request head deadline, made on first use */
    bool chunked_up, head_method, keep_alive;
    bool resp_started;
    uint64_t up_bytes, down_bytes;
    size_t pp_len; /* PROXY header bytes at the head of the upstream output */
    char *xfcc;    /* the client's X-Forwarded-Client-Cert element, made once */
    bool client_eof; /* the client finished sending; answer what is in flight, then close */
    bool up_reused;    /* the upstream connection came from the idle pool */
    bool up_keepalive; /* the last response completed and the upstream keeps the connection */
    char *retry_head;  /* a bodyless idempotent request sent on a reused connection, for a retry */
    size_t retry_len;
    /* The idle timeout (see conn_idle_continue): bytes moved at the last check, and when. */
    uint64_t idle_seen;
    double idle_since;
    struct conn *wprev, *wnext; /* the worker's list of open connections */
};

static void conn_close(struct conn *c);
static void upstream_connect(struct conn *c);
static void process_client_http(struct conn *c);
static void conn_trim_idle(struct conn *c);
static void client_pull(struct conn *c);
static void upstream_send(struct conn *c, const char *data, size_t len);

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

/* Whether the upstream connection of a closing client connection can be kept; keeps it. */
static bool
pool_put(struct conn *c)
{
    const struct proxy_cfg *cfg = &c->gen->cfg;
    const struct listener_cfg *l = c->gl->cfg;
    struct timeval idle = {POOL_IDLE_SECONDS, 0};
    struct pooled *e;
    int same = 0;

    if (cfg->role != ROLE_SERVER || l->mode != MODE_HTTP || l->proxy_protocol ||
        cfg->upstream_keepalive <= 0 || !c->upstream_connected || !c->up_keepalive ||
        c->upstream_failed || c->req_state == REQ_BODY ||
        evbuffer_get_length(bufferevent_get_output(c->ubev)) > 0 ||
        evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
        return false;
    for (e = c->w->pool; e != NULL; e = e->next)
        if (e->gl == c->gl && e->target == c->target)
            same++;
    if (same >= cfg->upstream_keepalive || (e = calloc(1, sizeof(*e))) == NULL)
        return false;
    e->w = c->w;
    e->gen = c->gen;
    gen_ref(e->gen);
    e->gl = c->gl;
    e->target = c->target;
    e->bev = c->ubev;
    bufferevent_setcb(e->bev, pool_read_cb, NULL, pool_event_cb, e);
    bufferevent_set_timeouts(e->bev, &idle, NULL);
    bufferevent_enable(e->bev, EV_READ);
    e->next = c->w->pool;
    c->w->pool = e;
    return true;
}

/*
 * An idle upstream connection for this client connection's listener and
 * generation, attached to it; false when there is none.  Connections of
 * older generations met on the way are closed.
 */
static bool
pool_take(struct conn *c)
{
    struct pooled **pp = &c->w->pool;

    while (*pp != NULL) {
        struct pooled *e = *pp;
        if (e->gen->id < c->gen->id) {
            pool_drop(e);
            continue;
        }
        if (e->gen != c->gen || e->gl != c->gl) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        c->ubev = e->bev;
        c->target = e->target;
        gen_unref(e->gen); /* the connection holds the same generation */
        free(e);
        return true;
    }
    return false;
}

/* Close every idle upstream connection of a worker (at exit). */
static void
pool_clear(struct worker *w)
{
    while (w->pool != NULL)
        pool_drop(w->pool);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (c->hs_timer != NULL)
        event_free(c->hs_timer);
    if (c->cbev != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
        if (ssl != NULL)
            SSL_shutdown(ssl);
        bufferevent_free(c->cbev);
    }
    if (c->ubev != NULL && !pool_put(c)) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->ubev);
        if (ssl != NULL && c->upstream_connected)
            SSL_shutdown(ssl);
        bufferevent_free(c->ubev);
    }
    free(c->retry_head);
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
    if (c->head_timer != NULL)
        event_free(c->head_timer);
    http_reader_clear(&c->rd);
    gen_unref(c->gen);
    free(c);
}

/* Schedule the free; callbacks stop at once. */
static void
conn_close(struct conn *c)
{
    static const struct timeval zero = {0, 0};

    if (c->closing)
        return;
    c->closing = true;
    if (c->hs_timer != NULL)
        event_del(c->hs_timer);
    if (c->head_timer != NULL)
        event_del(c->head_timer);
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

static void
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

/* The reason a TLS handshake failed, in words, with its metrics category. */
static void
handshake_failure(struct bufferevent *bev, SSL *ssl, char *buf, size_t len, enum tls_fail *fail)
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

static void
log_handshake(struct conn *c, SSL *ssl, bool ok, const char *reason, enum tls_fail fail,
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
        log_line_str(&line, "reason_code", tls_fail_name(fail != TLS_FAIL_NONE ? fail
                                                                              : TLS_FAIL_OTHER));
    }
    if (id == NULL) {
        log_line_str(&line, "identity", NULL);
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

/* A handshake refused (or a verified peer refused by policy): logged with its reason, counted. */
static void
handshake_refused(struct conn *c, SSL *ssl, enum tls_fail fail, const char *reason, double secs)
{
    log_handshake(c, ssl, false, reason, fail, secs);
    metrics_handshake(c->gl->cfg->name, fail, secs);
}

static void
log_authz(struct conn *c, const struct policy_decision *d, const char *method, const char *host,
          const char *path)
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

/* Write a short HTTP response and close once it is flushed. */
static void
http_reply_close(struct conn *c, int status, const char *reason, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct evbuffer *out = bufferevent_get_output(c->cbev);
    char labels[160], ll[128];

    json_decref(body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                        status, reason, text != NULL ? strlen(text) + 1 : 1, text ? text : "");
    free(text);
    metrics_label(ll, sizeof(ll), c->gl->cfg->name);
    snprintf(labels, sizeof(labels), "listener=\"%s\",code=\"%d\"", ll, status);
    metrics_count("duet_requests_total", labels, 1);
    c->close_when_flushed = true;
    bufferevent_disable(c->cbev, EV_READ);
    if (c->ubev != NULL) {
        bufferevent_setcb(c->ubev, NULL, NULL, NULL, NULL);
        bufferevent_free(c->ubev);
        c->ubev = NULL;
    }
    bufferevent_enable(c->cbev, EV_WRITE);
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
static bool
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

/* --- relaying (TCP mode, tunnel, and after an HTTP upgrade refusal) ------ */

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

    if (c->close_when_flushed && evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 &&
        (c->ubev == NULL || evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0)) {
        conn_close(c);
        return;
    }
    if (from != NULL && !(bufferevent_get_enabled(from) & EV_READ) && !c->close_when_flushed) {
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
            c->close_when_flushed = true;
            bufferevent_disable(bev, EV_READ);
            bufferevent_setcb(other, NULL, relay_write, relay_event, c);
            bufferevent_enable(other, EV_WRITE);
            return;
        }
        conn_close(c);
    }
}

static void
start_relay(struct conn *c)
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
}

/* --- upstream connection ----------------------------------------------------- */

static int64_t
wall_now(void)
{
    return (int64_t)time(NULL);
}

/* Round robin over targets, skipping those marked down (unless all are). */
static size_t
pick_target(struct conn *c)
{
    const struct listener_cfg *l = c->gl->cfg;
    size_t start = atomic_fetch_add(&c->gl->rr, 1);
    int64_t now = wall_now();

    for (size_t k = 0; k < l->ntargets; k++) {
        size_t i = (start + k) % l->ntargets;
        if (atomic_load(&c->gl->down_until[i]) <= now)
            return i;
    }
    return start % l->ntargets;
}

static void upstream_event(struct bufferevent *bev, short what, void *arg);
static void upstream_read_http(struct bufferevent *bev, void *arg);
static void upstream_write_http(struct bufferevent *bev, void *arg);

static void
upstream_failed(struct conn *c, const char *why)
{
    const struct listener_cfg *l = c->gl->cfg;
    char labels[300], ul[256];
    struct evbuffer *saved = NULL;

    atomic_store(&c->gl->down_until[c->target], wall_now() + UPSTREAM_DOWN_SECONDS);
    log_event("error", "upstream_error",
              json_pack("{s:s,s:s,s:s,s:s}", "listener", l->name, "peer", c->peer, "upstream",
                        l->targets[c->target].text, "error", why));
    metrics_label(ul, sizeof(ul), l->targets[c->target].text);
    snprintf(labels, sizeof(labels), "upstream=\"%s\"", ul);
    metrics_count("duet_upstream_failures_total", labels, 1);
    if (c->ubev != NULL) {
        /* HTTP: nothing reached the failed upstream; keep the request for the next one. */
        if (l->mode == MODE_HTTP && c->gen->cfg.role == ROLE_SERVER && !c->upstream_connected &&
            (saved = evbuffer_new()) != NULL) {
            evbuffer_add_buffer(saved, bufferevent_get_output(c->ubev));
            if (c->pp_len > 0)
                evbuffer_drain(saved, c->pp_len);
        }
        bufferevent_free(c->ubev);
        c->ubev = NULL;
    }
    c->upstream_connected = false;
    /* Try the next target once per target before giving up. */
    if (++c->tries < (int)l->ntargets && !c->resp_started) {
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
    c->upstream_failed = true;
    if (c->gen->cfg.role == ROLE_SERVER && l->mode == MODE_HTTP && !c->resp_started)
        http_reply_close(c, 502, "Bad Gateway",
                         json_pack("{s:s,s:s}", "error", "bad_gateway", "detail",
                                   "the upstream service could not be reached"));
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
upstream_connect(struct conn *c)
{
    const struct listener_cfg *l = c->gl->cfg;
    struct duet_err err;

    c->target = pick_target(c);
    if (c->gl->up_ctx != NULL || c->gen->cfg.role == ROLE_TUNNEL) {
        SSL_CTX *ctx = c->gen->cfg.role == ROLE_TUNNEL ? c->gl->ssl_ctx : c->gl->up_ctx;
        SSL *ssl = SSL_new(ctx);
        const char *name = c->gen->cfg.role == ROLE_TUNNEL
                               ? l->server_name
                               : (l->up_name != NULL ? l->up_name : l->target_names[c->target]);
        if (ssl == NULL || tls_client_set_name(ssl, name, &err) != 0) {
            SSL_free(ssl);
            upstream_failed(c, "cannot start TLS toward the upstream");
            return;
        }
        c->ubev = bufferevent_openssl_socket_new(c->w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->gen->cfg.role == ROLE_TUNNEL)
            c->ssl = ssl;
    } else {
        c->ubev = bufferevent_socket_new(c->w->base, -1,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (c->ubev == NULL) {
        upstream_failed(c, "out of memory");
        return;
    }
    if (l->mode == MODE_HTTP && c->gen->cfg.role == ROLE_SERVER)
        bufferevent_setcb(c->ubev, upstream_read_http, upstream_write_http, upstream_event, c);
    else
        bufferevent_setcb(c->ubev, NULL, NULL, upstream_event, c);
    {
        /* Until connected (and, with TLS, the handshake done): the connect timeout. */
        struct timeval ct = {c->gen->cfg.connect_timeout_ms / 1000,
                             (c->gen->cfg.connect_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->ubev, &ct, &ct);
    }
    if (c->gen->cfg.role == ROLE_SERVER && l->proxy_protocol && send_proxy_header(c) != 0) {
        upstream_failed(c, "cannot build the PROXY protocol header");
        return;
    }
    if (bufferevent_socket_connect(c->ubev, (const struct sockaddr *)&l->targets[c->target].ss,
                                   (int)l->targets[c->target].len) != 0) {
        upstream_failed(c, strerror(errno));
        return;
    }
    bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
}

/*
 * An upstream connection for the request being forwarded (http mode): one
 * from the idle pool when there is one, otherwise a new one.
 */
static void
upstream_for_request(struct conn *c)
{
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};

    c->tries = 0;
    if (!c->gl->cfg->proxy_protocol && pool_take(c)) {
        c->upstream_connected = true;
        c->up_reused = true;
        bufferevent_setcb(c->ubev, upstream_read_http, upstream_write_http, upstream_event, c);
        bufferevent_set_timeouts(c->ubev, &idle, NULL);
        bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
        metrics_upstream_conn(true);
        return;
    }
    c->up_reused = false;
    upstream_connect(c);
    metrics_upstream_conn(false);
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

static void
upstream_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                               (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
        c->upstream_connected = true;
        if (!c->gl->cfg->targets[c->target].is_unix) {
            int one = 1;
            setsockopt(bufferevent_getfd(c->ubev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bufferevent_set_timeouts(c->ubev, &idle, NULL);
        if (c->gen->cfg.role == ROLE_TUNNEL) {
            char why[600];
            double secs = now_mono() - c->t_start;
            if (!tunnel_server_ok(c, why, sizeof(why))) {
                handshake_refused(c, c->ssl, TLS_FAIL_POLICY, why, secs);
                conn_close(c);
                return;
            }
            c->handshake_done = true;
            log_handshake(c, c->ssl, true, NULL, TLS_FAIL_NONE, secs);
            metrics_handshake(c->gl->cfg->name, TLS_FAIL_NONE, secs);
            start_relay(c);
            return;
        }
        if (c->gl->cfg->mode == MODE_TCP)
            start_relay(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) && !c->upstream_connected) {
        char why[600];
        if (c->gen->cfg.role == ROLE_TUNNEL) {
            enum tls_fail fail = TLS_FAIL_OTHER;
            double secs = now_mono() - c->t_start;
            if (what & BEV_EVENT_TIMEOUT)
                snprintf(why, sizeof(why),
                         "connecting to %s and the TLS handshake did not finish within %d ms",
                         c->gl->cfg->targets[c->target].text, c->gen->cfg.connect_timeout_ms);
            else if (EVUTIL_SOCKET_ERROR() != 0 && bufferevent_get_openssl_error(c->ubev) == 0 &&
                     tls_verify_reason(c->ssl) == NULL)
                snprintf(why, sizeof(why), "cannot connect to %s: %s",
                         c->gl->cfg->targets[c->target].text,
                         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            else
                handshake_failure(c->ubev, c->ssl, why, sizeof(why), &fail);
            handshake_refused(c, c->ssl, fail, why, secs);
            conn_close(c);
            return;
        }
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "connect timed out after %d ms",
                     c->gen->cfg.connect_timeout_ms);
        else {
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
        upstream_failed(c, why);
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
        /* HTTP: the upstream went away. */
        if (c->resp_started) {
            /* A response read until EOF ends here. */
            http_parser_execute(&c->resp_p, NULL, NULL, 0);
            if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0) {
                c->close_when_flushed = true;
                bufferevent_free(c->ubev);
                c->ubev = NULL;
                bufferevent_enable(c->cbev, EV_WRITE);
            } else {
                conn_close(c);
            }
            return;
        }
        bufferevent_free(c->ubev);
        c->ubev = NULL;
        c->upstream_connected = false;
        if (c->retry_head != NULL && c->req_state != REQ_HEADERS && !(what & BEV_EVENT_TIMEOUT)) {
            /* A pooled connection the upstream had closed: the same request on a new one. */
            char *head = c->retry_head;
            c->retry_head = NULL;
            c->up_reused = false;
            c->tries = 0;
            upstream_connect(c);
            metrics_upstream_conn(false);
            if (c->ubev != NULL && !c->closing)
                evbuffer_add(bufferevent_get_output(c->ubev), head, c->retry_len);
            free(head);
            return;
        }
        if (c->req_state != REQ_HEADERS) {
            /* The request went out but no response came back. */
            http_reply_close(c, 502, "Bad Gateway",
                             json_pack("{s:s,s:s}", "error", "bad_gateway", "detail",
                                       "the upstream closed the connection without a response"));
        }
    }
}

/* --- HTTP: requests ------------------------------------------------------------ */

/*
 * Refuse the request being read: log why (the event `request_refused` names
 * the listener, peer, identity, status and reason), answer with the status
 * and close.  Every refusal of the request path but the policy's 403 (logged
 * as an authz decision) goes through here.
 */
static void
request_refuse(struct conn *c, int status, const char *reason)
{
    static const char *const kinds[][2] = {
        {"400", "bad_request"},        {"408", "request_timeout"},
        {"431", "header_too_large"},   {"500", "internal_error"},
        {"501", "not_implemented"},    {"505", "http_version_not_supported"},
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
    if (status == 431)
        body = json_pack("{s:s,s:s,s:i}", "error", kind, "detail", reason, "limit_bytes",
                         (int)c->gen->cfg.max_header_bytes);
    else
        body = json_pack("{s:s,s:s}", "error", kind, "detail", reason);
    http_reply_close(c, status, http_status_str((enum http_status)status), body);
}

/* The request head deadline passed before the head was complete. */
static void
head_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (c->closing || c->close_when_flushed || c->req_state != REQ_HEADERS)
        return;
    snprintf(why, sizeof(why), "the request head did not arrive within %d ms",
             c->gen->cfg.head_timeout_ms);
    request_refuse(c, 408, why);
}

/* A request head began and is not complete: it has head_timeout_ms to be. */
static void
head_deadline_arm(struct conn *c)
{
    struct timeval tv = {c->gen->cfg.head_timeout_ms / 1000,
                         (c->gen->cfg.head_timeout_ms % 1000) * 1000};

    if (c->gen->cfg.head_timeout_ms <= 0)
        return;
    if (c->head_timer == NULL && (c->head_timer = evtimer_new(c->w->base, head_deadline_cb, c)) ==
                                     NULL)
        return;
    evtimer_add(c->head_timer, &tv);
}

static int
on_message_begin(http_parser *p)
{
    struct http_reader *rd = p->data;
    struct conn *c = rd->owner;

    /* The scanner has already read this head: keep its state, reset the rest. */
    struct http_scan scan = rd->scan;
    http_reader_reset(rd);
    rd->scan = scan;
    c->req_state = REQ_HEADERS;
    return 0;
}

/* Headers done: decide, then send the head rebuilt from what was parsed upstream. */
static int
on_headers_complete(http_parser *p)
{
    struct http_reader *rd = p->data;
    struct conn *c = rd->owner;
    const struct listener_cfg *l = c->gl->cfg;
    struct http_context ctx;
    struct http_decision d;

    if (c->head_timer != NULL && evtimer_pending(c->head_timer, NULL))
        event_del(c->head_timer);
    c->head_method = p->method == HTTP_HEAD;
    c->keep_alive = http_should_keep_alive(p) != 0;
    if (c->id != NULL && c->id->xfcc == NULL && c->xfcc == NULL)
        c->xfcc = xfcc_element(c->id);
    memset(&ctx, 0, sizeof(ctx));
    ctx.policy = &l->policy;
    ctx.id = c->id;
    ctx.id_xfcc = c->id != NULL && c->id->xfcc != NULL ? c->id->xfcc : c->xfcc;
    ctx.client_ip = c->peer_ip;
    ctx.xfcc = l->xfcc;
    ctx.forwarded = l->forwarded;
    http_decide(rd, p, &ctx, &d);
    if (d.decided)
        log_authz(c, &d.d, d.method, d.req.host, d.target);
    if (d.status == 403) {
        http_reply_close(c, 403, "Forbidden",
                         json_pack("{s:s,s:s,s:o}", "error", "forbidden", "rule", d.d.rule,
                                   "identity",
                                   c->id != NULL ? json_string(c->id->name) : json_null()));
    } else if (d.status != 0) {
        request_refuse(c, d.status, d.err.msg);
    }
    if (d.status != 0) {
        http_decision_clear(&d);
        http_parser_pause(p, 1);
        return 0;
    }
    if (c->ubev == NULL) {
        upstream_for_request(c);
        if (c->closing || c->close_when_flushed || c->ubev == NULL) {
            http_decision_clear(&d);
            http_parser_pause(p, 1);
            return 0;
        }
    }
    c->chunked_up = d.req.framing == HTTP_BODY_CHUNKED;
    c->up_keepalive = false;
    free(c->retry_head);
    c->retry_head = NULL;
    /*
     * A reused connection may have been closed by the upstream just now; a
     * request without a body and safe to repeat is kept to send again on a
     * new connection if no response comes back (the head itself is kept).
     */
    upstream_send(c, d.head, d.head_len);
    c->up_bytes += d.head_len;
    if (c->up_reused && d.req.framing == HTTP_BODY_NONE &&
        (p->method == HTTP_GET || p->method == HTTP_HEAD || p->method == HTTP_OPTIONS)) {
        c->retry_head = d.head;
        c->retry_len = d.head_len;
        d.head = NULL;
    }
    http_decision_clear(&d);
    c->req_state = REQ_BODY;
    c->resp_started = false;
    http_parser_init(&c->resp_p, HTTP_RESPONSE);
    c->resp_p.data = c;
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = ((struct http_reader *)p->data)->owner;
    struct evbuffer *out;

    if (c->ubev == NULL)
        return 0;
    out = bufferevent_get_output(c->ubev);
    if (c->chunked_up)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add(out, at, n);
    if (c->chunked_up)
        evbuffer_add(out, "\r\n", 2);
    c->up_bytes += n;
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct conn *c = ((struct http_reader *)p->data)->owner;

    /* Trailers are not forwarded: the upstream sees the body the proxy framed, then its end. */
    if (c->ubev != NULL && c->chunked_up)
        evbuffer_add(bufferevent_get_output(c->ubev), "0\r\n\r\n", 5);
    c->req_state = REQ_WAIT_RESPONSE;
    http_scan_init(&c->rd.scan, c->gen->cfg.max_header_bytes); /* for the next request */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_message_begin = on_message_begin,
    .on_url = http_reader_on_url,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/*
 * The client side reads with OpenSSL's read-ahead: one read(2) takes a whole
 * TLS record (and whatever followed it) instead of a 5-byte header and then
 * the body.  libevent's SSL bufferevent only asks OpenSSL for records while
 * the socket is readable, so records OpenSSL already holds (a request sent
 * with the handshake's last flight, pipelined requests, the end of an upload)
 * are pulled here, up to the same bound as libevent's read watermark.
 */
#define CLIENT_READ_HIGH (256 * 1024)

static void
client_pull(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
    struct evbuffer *in = bufferevent_get_input(c->cbev);

    if (ssl == NULL || c->closing || !(bufferevent_get_enabled(c->cbev) & EV_READ))
        return;
    while (SSL_has_pending(ssl) && evbuffer_get_length(in) < CLIENT_READ_HIGH) {
        struct evbuffer_iovec v;
        int r;
        if (evbuffer_reserve_space(in, 16384, &v, 1) < 1)
            break;
        r = SSL_read(ssl, v.iov_base, (int)(v.iov_len > INT32_MAX ? INT32_MAX : v.iov_len));
        v.iov_len = r > 0 ? (size_t)r : 0;
        evbuffer_commit_space(in, &v, 1);
        if (r <= 0) {
            /* A partial record (the rest comes through the socket) or the end. */
            ERR_clear_error();
            break;
        }
    }
}

/* Parse what the client sent, one request at a time. */
static void
process_client_http(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->cbev);

    client_pull(c);

    while (!c->closing && !c->close_when_flushed && c->req_state != REQ_WAIT_RESPONSE) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (evbuffer_get_length(in) == 0)
            break;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (c->req_state == REQ_HEADERS) {
            /* The strict scanner reads the head's bytes before http-parser does. */
            size_t used;
            int status, r;
            struct duet_err err;
            r = http_scan_feed(&c->rd.scan, v.iov_base, v.iov_len, &used, &status, &err);
            if (r < 0) {
                request_refuse(c, status, err.msg);
                return;
            }
            /* Most heads arrive whole: the deadline is armed only for one that does not. */
            if (r == 0 && (c->head_timer == NULL || !evtimer_pending(c->head_timer, NULL)))
                head_deadline_arm(c);
        }
        n = http_parser_execute(&c->req_p, &req_settings, v.iov_base, v.iov_len);
        if (c->closing || c->close_when_flushed)
            return; /* refused inside a callback; the reply is under way */
        evbuffer_drain(in, n);
        e = HTTP_PARSER_ERRNO(&c->req_p);
        if (c->rd.too_large) {
            char why[96];
            snprintf(why, sizeof(why), "the request head is larger than %zu bytes",
                     c->gen->cfg.max_header_bytes);
            request_refuse(c, 431, why);
            return;
        }
        if (c->rd.nomem) {
            request_refuse(c, 500, "out of memory");
            return;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            request_refuse(c, e == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400,
                           http_errno_description(e));
            return;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->req_p, 0);
            if (c->req_state == REQ_WAIT_RESPONSE)
                break;
        }
        if (c->ubev == NULL && c->req_state != REQ_HEADERS)
            return; /* upstream failed; the reply is under way */
        if (c->ubev != NULL &&
            evbuffer_get_length(bufferevent_get_output(c->ubev)) >= RELAY_HIGH_WATER) {
            /* A large upload: wait until the upstream has taken what we hold. */
            bufferevent_disable(c->cbev, EV_READ);
            bufferevent_setwatermark(c->ubev, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
            return;
        }
    }
    /*
     * While a response is outstanding, further requests wait in the input
     * buffer (the read watermark bounds it); reading stays enabled, which
     * spares two epoll_ctl calls per request.
     */
}

/* --- HTTP: responses ---------------------------------------------------------- */

static int
on_resp_headers_complete(http_parser *p)
{
    struct conn *c = p->data;

    /* RFC 9112 6.3: a response to HEAD, and 1xx/204/304, carry no body. */
    return c->head_method ? 1 : 0;
}

static int
on_resp_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    char labels[160], ll[128];

    if (p->status_code >= 100 && p->status_code < 200)
        return 0; /* an interim response; the final one follows */
    c->up_keepalive = http_should_keep_alive(p) != 0;
    free(c->retry_head);
    c->retry_head = NULL;
    unsigned int code = p->status_code < 600 ? p->status_code : 0;
    struct metrics_counter *m = atomic_load(&c->gl->codes[code]);
    if (m == NULL) {
        metrics_label(ll, sizeof(ll), c->gl->cfg->name);
        snprintf(labels, sizeof(labels), "listener=\"%s\",code=\"%u\"", ll, p->status_code);
        m = metrics_counter("duet_requests_total", labels);
        if (code != 0)
            atomic_store(&c->gl->codes[code], m);
    }
    metrics_counter_add(m, 1);
    if (c->req_state != REQ_WAIT_RESPONSE) {
        /*
         * The upstream answered before the request's body was all read (a
         * 401 after the head, say).  What the client still sends must reach
         * nobody: that upstream would read it as the next request, and a
         * pooled connection would hand it to another client.  The response
         * goes out, then both connections close; neither is reused.
         */
        c->up_keepalive = false;
        c->close_when_flushed = true;
        bufferevent_disable(c->cbev, EV_READ);
    } else if (!c->keep_alive || !http_should_keep_alive(p) || c->client_eof || c->w->draining) {
        c->close_when_flushed = true;
    } else {
        c->req_state = REQ_HEADERS;
    }
    c->resp_started = false;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_headers_complete = on_resp_headers_complete,
    .on_message_complete = on_resp_message_complete,
};

/*
 * libevent writes a bufferevent's output only once epoll reports the socket
 * writable: two epoll_ctl calls and a wakeup for every response and every
 * forwarded request.  When nothing is waiting in the output buffer, duet
 * writes straight to the socket instead and leaves only what the socket did
 * not take to the bufferevent.
 */
#define DIRECT_WRITE_MAX 15000 /* libevent's SSL write size: a retry is never shorter */

/* Move n bytes from `src` to the client, writing them at once when possible. */
static void
client_send(struct conn *c, struct evbuffer *src, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->cbev);
    SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);

    if (ssl != NULL && n > 0 && n <= DIRECT_WRITE_MAX && evbuffer_get_length(out) == 0) {
        unsigned char *p = evbuffer_pullup(src, (ssize_t)n);
        int w = p != NULL ? SSL_write(ssl, p, (int)n) : -1;
        if (w > 0) {
            evbuffer_drain(src, (size_t)w);
            n -= (size_t)w;
        } else {
            /*
             * Nothing taken (the socket is full, or an error libevent will meet
             * and report): the bufferevent writes the same bytes, which is the
             * retry OpenSSL asks for.
             */
            ERR_clear_error();
        }
    }
    if (n > 0)
        evbuffer_remove_buffer(src, out, n);
}

/* Queue a request head (or any bytes) toward the upstream; see client_send(). */
static void
upstream_send(struct conn *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->ubev);

    if (c->upstream_connected && c->gl->up_ctx == NULL && evbuffer_get_length(out) == 0) {
        ssize_t w = send(bufferevent_getfd(c->ubev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        }
    }
    if (len > 0)
        evbuffer_add(out, data, len);
}

static void
upstream_read_http(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(c->cbev);

    if (c->req_state == REQ_HEADERS && evbuffer_get_length(in) > 0 && !c->closing) {
        /*
         * No request is outstanding: bytes from the upstream now answer
         * nothing the proxy sent (a response to a request it never saw).
         * They are not passed on; the connection is dropped, and the next
         * request gets a new one.
         */
        log_event("error", "upstream_error",
                  json_pack("{s:s,s:s,s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                            "upstream", c->gl->cfg->targets[c->target].text, "error",
                            "the upstream sent bytes while no request was outstanding"));
        bufferevent_free(c->ubev);
        c->ubev = NULL;
        c->upstream_connected = false;
        c->up_keepalive = false;
        return;
    }
    while (evbuffer_get_length(in) > 0 && !c->closing) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        c->resp_started = true;
        n = http_parser_execute(&c->resp_p, &resp_settings, v.iov_base, v.iov_len);
        e = HTTP_PARSER_ERRNO(&c->resp_p);
        if (e != HPE_OK && e != HPE_PAUSED) {
            log_event("error", "upstream_error",
                      json_pack("{s:s,s:s,s:s}", "listener", c->gl->cfg->name, "upstream",
                                c->gl->cfg->targets[c->target].text, "error",
                                http_errno_description(e)));
            conn_close(c);
            return;
        }
        client_send(c, in, n);
        c->down_bytes += n;
        if (e != HPE_PAUSED && evbuffer_get_length(out) >= RELAY_HIGH_WATER) {
            /* A large download: wait until the client has taken what we hold. */
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(c->cbev, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
            return;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->resp_p, 0);
            if (c->close_when_flushed) {
                bufferevent_disable(bev, EV_READ);
                if (evbuffer_get_length(out) == 0)
                    conn_close(c); /* all written already */
                else
                    bufferevent_enable(c->cbev, EV_WRITE);
                return;
            }
            /* Response done: read the client's next request, or wait for it lean. */
            http_parser_init(&c->resp_p, HTTP_RESPONSE);
            c->resp_p.data = c;
            client_pull(c);
            if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
                process_client_http(c);
            else
                conn_trim_idle(c);
            return;
        }
    }
}

/* The upstream took buffered request bytes: resume reading the client. */
static void
upstream_write_http(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->closing || c->close_when_flushed || c->req_state == REQ_WAIT_RESPONSE)
        return;
    if (!(bufferevent_get_enabled(c->cbev) & EV_READ)) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->cbev, EV_READ);
        process_client_http(c);
    }
}

/* --- client side ---------------------------------------------------------------- */

static void
client_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->gl->cfg->mode == MODE_HTTP)
        process_client_http(c);
}

static void
client_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->close_when_flushed && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        conn_close(c);
        return;
    }
    if (c->ubev != NULL && c->resp_started && !(bufferevent_get_enabled(c->ubev) & EV_READ)) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->ubev, EV_READ);
        upstream_read_http(c->ubev, c);
    }
}

/*
 * Give back the buffers of a client connection that waits for its next
 * request: OpenSSL's record buffer (set up by the read that found nothing,
 * kept even with SSL_MODE_RELEASE_BUFFERS) and the input chunk libevent
 * reserved for that read, together about 33 KB that an idle connection would
 * otherwise hold.  The next request allocates them again.
 */
static void
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

/* The TLS handshake with the client finished. */
static void
client_handshake_done(struct conn *c)
{
    const struct listener_cfg *l = c->gl->cfg;
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
    double secs = now_mono() - c->t_start;
    struct duet_err err;

    c->handshake_done = true;
    if (c->hs_timer != NULL)
        event_del(c->hs_timer);
    if (SSL_session_reused(c->ssl) && tls_check_resumed(c->ssl, &err) != 0) {
        handshake_refused(c, c->ssl, tls_verify_fail(c->ssl), err.msg, secs);
        conn_close(c);
        return;
    }
    if (tls_peer_identity(c->ssl, &c->id, &err) != 0) {
        handshake_refused(c, c->ssl, TLS_FAIL_OTHER, err.msg, secs);
        conn_close(c);
        return;
    }
    log_handshake(c, c->ssl, true, NULL, TLS_FAIL_NONE, secs);
    conn_throttle_succeeded(c->w->px, &c->gen->cfg, (const struct sockaddr *)&c->peer_ss);
    bufferevent_set_timeouts(c->cbev, &idle, NULL);
    if (l->mode == MODE_TCP) {
        struct policy_request pr = {0};
        struct policy_decision d;
        pr.id = c->id;
        d = policy_decide(&l->policy, &pr);
        log_authz(c, &d, NULL, NULL, NULL);
        /* In TCP mode the connection is the request: a denial counts as a refused handshake. */
        metrics_handshake(l->name, d.allow ? TLS_FAIL_NONE : TLS_FAIL_POLICY, secs);
        if (!d.allow) {
            conn_close(c);
            return;
        }
        bufferevent_disable(c->cbev, EV_READ); /* until the upstream is there */
        c->tries = 0;
        upstream_connect(c);
        return;
    }
    metrics_handshake(l->name, TLS_FAIL_NONE, secs);
    /* Pipelined requests wait in the input buffer; this bounds how much of them. */
    bufferevent_setwatermark(c->cbev, EV_READ, 0, 256 * 1024);
    http_parser_init(&c->req_p, HTTP_REQUEST);
    c->rd.owner = c;
    c->rd.max_head = c->gen->cfg.max_header_bytes;
    http_scan_init(&c->rd.scan, c->gen->cfg.max_header_bytes);
    c->req_p.data = &c->rd;
    http_parser_init(&c->resp_p, HTTP_RESPONSE);
    c->resp_p.data = c;
    client_pull(c);
    if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
        process_client_http(c);
    else
        conn_trim_idle(c);
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
    double secs = now_mono() - c->t_start;

    (void)fd;
    (void)what;
    if (c->closing || c->handshake_done)
        return;
    snprintf(why, sizeof(why), "the TLS handshake did not finish within %d ms",
             c->gen->cfg.handshake_timeout_ms);
    handshake_refused(c, c->ssl, TLS_FAIL_OTHER, why, secs);
    conn_close(c);
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
    if (!c->handshake_done) {
        char why[900];
        enum tls_fail fail = TLS_FAIL_OTHER;
        double secs = now_mono() - c->t_start;
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "the TLS handshake did not finish within %d ms",
                     c->gen->cfg.handshake_timeout_ms);
        else
            handshake_failure(c->cbev, c->ssl, why, sizeof(why), &fail);
        handshake_refused(c, c->ssl, fail, why, secs);
            conn_close(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->gl->cfg->mode == MODE_HTTP && c->ubev != NULL &&
        c->req_state != REQ_HEADERS && !c->close_when_flushed) {
        /* A client may half-close after its request: deliver the response first. */
        c->client_eof = true;
        bufferevent_disable(c->cbev, EV_READ);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
        conn_idle_continue(c, c->cbev))
        return; /* the response is still coming: not idle */
    if (what & BEV_EVENT_TIMEOUT)
        log_event("info", "idle_timeout",
                  json_pack("{s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer));
    conn_close(c);
}

/* The tunnel's client side: plain bytes; the TLS side is the upstream. */
static void
tunnel_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    (void)what;
    conn_close(c);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
          void *arg)
{
    struct worker *w = arg;
    struct proxy *px = w->px;
    struct gen *g = gen_current(px);
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
    if (g->cfg.role == ROLE_SERVER &&
        !conn_throttle_allows(px, &g->cfg, g->ls[li].cfg->name, sa)) {
        evutil_closesocket(fd);
        gen_unref(g);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        if (g->cfg.role == ROLE_SERVER) /* the proxy's failure, not the client's */
            conn_throttle_succeeded(px, &g->cfg, sa);
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
    c->t_start = now_mono();
    memcpy(&c->peer_ss, sa, (size_t)salen < sizeof(c->peer_ss) ? (size_t)salen : sizeof(c->peer_ss));
    ll = sizeof(c->local_ss);
    getsockname(fd, (struct sockaddr *)&c->local_ss, &ll);
    sockaddr_text(sa, c->peer, sizeof(c->peer), c->peer_ip, sizeof(c->peer_ip));
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (g->cfg.role == ROLE_TUNNEL) {
        c->cbev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->cbev == NULL) {
            evutil_closesocket(fd);
            conn_close(c);
            return;
        }
        bufferevent_setcb(c->cbev, NULL, NULL, tunnel_client_event, c);
        bufferevent_disable(c->cbev, EV_READ);
        c->tries = 0;
        upstream_connect(c);
        return;
    }
    c->ssl = SSL_new(c->gl->ssl_ctx);
    if (c->ssl == NULL) {
        evutil_closesocket(fd);
        conn_throttle_succeeded(px, &g->cfg, sa); /* the proxy's failure, not the client's */
        conn_close(c);
        return;
    }
    c->cbev = bufferevent_openssl_socket_new(w->base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->cbev == NULL) {
        SSL_free(c->ssl);
        evutil_closesocket(fd);
        conn_throttle_succeeded(px, &g->cfg, sa);
        conn_close(c);
        return;
    }
    {
        struct timeval hs = {g->cfg.handshake_timeout_ms / 1000,
                             (g->cfg.handshake_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->cbev, &hs, &hs);
        c->hs_timer = evtimer_new(w->base, handshake_deadline_cb, c);
        if (c->hs_timer == NULL || evtimer_add(c->hs_timer, &hs) != 0) {
            conn_throttle_succeeded(px, &g->cfg, sa);
            conn_close(c);
            return;
        }
    }
    bufferevent_setcb(c->cbev, client_read, client_write, client_event, c);
    bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
}

/* --- listeners and workers --------------------------------------------------- */

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

static int
worker_listen(struct worker *w, const struct proxy_cfg *cfg, evutil_socket_t *shared_unix,
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
        w->lev[i] = evconnlistener_new(w->base, accept_cb, w,
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

static void
log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_batch_flush();
}

/*
 * The first log line of a loop iteration schedules the flush: a zero timeout
 * runs on the next turn of the loop, after the events at hand, so the lines
 * of every request and handshake handled in one turn leave in one write(2).
 */
static void
log_arm(void *arg)
{
    static const struct timeval zero = {0, 0};
    struct worker *w = arg;

    if (event_base_once(w->base, -1, EV_TIMEOUT, log_flush_cb, NULL, &zero) != 0)
        log_batch_flush();
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    log_batch_begin(log_arm, w);
    event_base_dispatch(w->base);
    pool_clear(w);
    log_batch_flush();
    return NULL;
}

/* --- admin: /metrics, /healthz, /readyz -------------------------------------- */

static void
expiry_gauges(struct gen *g)
{
    int64_t now = wall_now();

    metrics_gauge_clear("duet_certificate_expiry_seconds");
    metrics_gauge_clear("duet_crl_expiry_seconds");
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
            metrics_gauge_set(crl ? "duet_crl_expiry_seconds" : "duet_certificate_expiry_seconds",
                              labels, (double)(info->items[k].not_after - now));
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

static void
admin_healthz(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    evbuffer_add_printf(b, "ok\n");
    evhttp_send_reply(req, 200, "OK", b);
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
    struct evhttp_request *req;
    struct gen *g;         /* a reference: the listeners and targets probed */
    size_t pending;        /* probes not done yet, plus one while they are being started */
    bool *reachable;       /* per listener */
    struct readyz_probe *probes;
};

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
        }
        ready = ready && rz->reachable[i] && !stale;
    }
    evhttp_send_reply(rz->req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", b);
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
        evhttp_send_reply(req, 503, "Service Unavailable", b);
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

/* --- reload ------------------------------------------------------------------- */

static void
watch_reset(struct proxy *px, const struct proxy_cfg *cfg)
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

static int
cfg_reparse(struct proxy *px, struct proxy_cfg *out, struct duet_err *err)
{
    bool check = false;

    return proxy_cfg_from_args(px->argc, px->argv, px->role, out, &check, err);
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
        if (cfg_reparse(px, &cfg, &err) != 0) {
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

static void
start_reload(struct proxy *px, const char *why)
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

static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    start_reload(arg, "SIGHUP");
}

/* SIGUSR1: reopen the log file (logrotate moved it; no copytruncate needed). */
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
    pool_clear(w);
    for (struct conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->wnext; /* conn_close only schedules the free */
        if (!c->closing && c->handshake_done && c->gl->cfg->mode == MODE_HTTP &&
            c->gen->cfg.role == ROLE_SERVER && c->req_state == REQ_HEADERS &&
            c->rd.scan.bytes == 0 && !c->resp_started &&
            evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0)
            conn_close(c);
    }
}

/* Every 100 ms while draining: done when no connection is open or the drain timeout passed. */
static void
drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    long open = (long)metrics_conn_active();

    (void)fd;
    (void)what;
    if (open > 0 && now_mono() < px->drain_deadline)
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
static void
sigterm_cb(evutil_socket_t sig, short what, void *arg)
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
    log_event("info", "shutdown",
              json_pack("{s:s,s:s,s:I,s:i}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
                        "phase", "draining", "open_connections",
                        (json_int_t)metrics_conn_active(), "drain_timeout_ms", drain_ms));
    px->drain_deadline = now_mono() + drain_ms / 1000.0;
    for (int i = 0; i < px->nworkers; i++) {
        if (event_base_once(px->workers[i].base, -1, EV_TIMEOUT, worker_drain_cb,
                            &px->workers[i], &zero) != 0)
            event_base_loopexit(px->workers[i].base, NULL);
    }
    px->drain_timer = event_new(px->workers[0].base, -1, EV_PERSIST, drain_check_cb, px);
    if (px->drain_timer == NULL || event_add(px->drain_timer, &tick) != 0) {
        for (int i = 0; i < px->nworkers; i++)
            event_base_loopexit(px->workers[i].base, NULL);
    }
}

/* Every second: changed files trigger a reload; CRLs near or past nextUpdate are reported. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
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
        watch_reset(px, &g->cfg);
        gen_unref(g);
        start_reload(px, "file change");
        return;
    }
    g = gen_current(px);
    if (!atomic_load(&px->reloading)) {
        /* Keep the watched list in step with the current generation. */
        static uint64_t seen_gen;
        if (seen_gen != g->id) {
            watch_reset(px, &g->cfg);
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

/* --- run ---------------------------------------------------------------------- */

int
proxy_run(struct proxy_cfg *cfg, int argc, char **argv)
{
    struct proxy *px = calloc(1, sizeof(*px));
    struct duet_err err;
    struct gen *g = NULL;
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
     * request); the periodic malloc_trim() in watch_cb gives memory back.
     */
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0)
        fatal("libevent has no thread support");
    pthread_mutex_init(&px->lock, NULL);
    if ((px->throttle = throttle_new()) == NULL)
        fatal("out of memory");
    px->role = cfg->role;
    px->argc = argc;
    px->argv = argv;
    if (log_open(cfg->log_file, &err) != 0 ||
        (cfg->log_level != NULL && log_set_level(cfg->log_level, &err) != 0))
        fatal("%s", err.msg);
    {
        int workers = cfg->workers;
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
        if (worker_listen(w, &g->cfg, shared_unix, &err) != 0)
            fatal("%s", err.msg);
    }
    free(shared_unix);
    if (g->cfg.has_admin) {
        px->admin = evhttp_new(px->workers[0].base);
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)&g->cfg.admin.ss;
        char host[INET6_ADDRSTRLEN];
        uint16_t port;
        if (g->cfg.admin.ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
            port = ntohs(a4->sin_port);
        } else {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)&g->cfg.admin.ss;
            inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
            port = ntohs(a6->sin6_port);
        }
        struct evhttp_bound_socket *bound =
            px->admin != NULL ? evhttp_bind_socket_with_handle(px->admin, host, port) : NULL;
        if (bound == NULL)
            fatal("--admin %s: cannot listen: %s", g->cfg.admin.text, strerror(errno));
        evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), admin_accept_error_cb);
        evhttp_set_cb(px->admin, "/metrics", admin_metrics, px);
        evhttp_set_cb(px->admin, "/healthz", admin_healthz, px);
        evhttp_set_cb(px->admin, "/readyz", admin_readyz, px);
        evhttp_set_allowed_methods(px->admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    }
    px->sighup = evsignal_new(px->workers[0].base, SIGHUP, sighup_cb, px);
    px->sigterm = evsignal_new(px->workers[0].base, SIGTERM, sigterm_cb, px);
    px->sigint = evsignal_new(px->workers[0].base, SIGINT, sigterm_cb, px);
    px->sigusr1 = evsignal_new(px->workers[0].base, SIGUSR1, sigusr1_cb, px);
    px->watch_timer = event_new(px->workers[0].base, -1, EV_PERSIST, watch_cb, px);
    {
        struct timeval one = {1, 0};
        event_add(px->sighup, NULL);
        event_add(px->sigterm, NULL);
        event_add(px->sigint, NULL);
        event_add(px->sigusr1, NULL);
        event_add(px->watch_timer, &one);
    }
    watch_reset(px, &g->cfg);
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
                            px->role == ROLE_SERVER ? "proxy" : "tunnel", "version", DUET_VERSION,
                            "workers", px->nworkers, "listeners", ls, "admin",
                            g->cfg.has_admin ? json_string(g->cfg.admin.text) : json_null()));
    }
    for (int i = 1; i < px->nworkers; i++) {
        if (pthread_create(&px->workers[i].thr, NULL, worker_main, &px->workers[i]) != 0)
            fatal("cannot start worker %d", i);
    }
    /* The sockets listen and every worker runs: ready (systemd Type=notify). */
    if (notify_send("READY=1\nSTATUS=serving") != 0)
        log_msg("warn", "notify", "cannot notify the service manager at $NOTIFY_SOCKET");
    log_batch_begin(log_arm, &px->workers[0]);
    event_base_dispatch(px->workers[0].base);
    pool_clear(&px->workers[0]);
    log_batch_flush();
    for (int i = 1; i < px->nworkers; i++)
        pthread_join(px->workers[i].thr, NULL);
    rc = 0;
    /* Exit without tearing down connections one by one: the process ends here. */
    log_close();
    return rc;
}
