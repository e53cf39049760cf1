/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen.c - the engine of `duet bench`.
 *
 * One thread per core, each with its own event loop and its share of the
 * connections.  Every operation is timed from its start (connect for full
 * and resume, request for keepalive) to the end of the response.  Results
 * are counted only after the warm-up.  Errors are counted by reason: connect,
 * handshake (with OpenSSL's reason, e.g. an alert from a server that refused
 * the certificate), not resumed, HTTP status, short read, timeout.
 */
#include "bench/loadgen.h"
#include "bench/loadgen_int.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/err.h>

#include "lib/tls.h"

static void
reason_add(struct reasons *r, const char *name)
{
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->name[i], name) == 0) {
            r->count[i]++;
            return;
        }
    }
    if (r->n < MAX_REASONS) {
        snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
        r->count[r->n++] = 1;
    }
}

double
bench_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void slot_start(struct slot *s);
static void slot_send(struct slot *s);

void
bench_slot_reset(struct slot *s)
{
    bench_h2_free(s);
    if (s->bev != NULL) {
        /*
         * A connection freed without a shutdown makes OpenSSL mark its session
         * not resumable (ssl_clear_bad_session), which would spoil the ticket
         * kept for the next connection: close it as a finished one.
         */
        if (s->ssl != NULL && s->connected)
            SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    s->ssl = NULL;
    s->connected = false;
}

void
bench_record(struct bthread *t, double start, bool ok, const char *reason)
{
    double now = bench_mono();

    if (now < t->t_measure || start < t->t_measure || now > t->t_end)
        return; /* warm-up or past the end */
    if (!ok) {
        reason_add(&t->errors, reason);
        return;
    }
    t->ok++;
    if (t->nlat == t->caplat) {
        size_t cap = t->caplat ? t->caplat * 2 : 65536;
        uint32_t *n = realloc(t->lat_us, cap * sizeof(*n));
        if (n == NULL)
            return;
        t->lat_us = n;
        t->caplat = cap;
    }
    t->lat_us[t->nlat++] = (uint32_t)((now - start) * 1e6);
}

/* An operation ended; start the next one as the mode requires. */
static void
op_done(struct slot *s, bool ok, const char *reason)
{
    struct bthread *t = s->t;
    enum bench_mode m = t->o->mode;

    bench_record(t, s->t_op, ok, reason);
    if (m == BENCH_KEEPALIVE && ok && bench_mono() < t->t_end) {
        slot_send(s);
        return;
    }
    bench_slot_again(s);
}

void
bench_slot_again(struct slot *s)
{
    bench_slot_reset(s);
    if (bench_mono() >= s->t->t_end) {
        s->active = false;
        return;
    }
    slot_start(s);
}

static int
on_msg_complete(http_parser *p)
{
    struct slot *s = p->data;

    s->done_resp = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {.on_message_complete = on_msg_complete};

/* A full response arrived: check it, keep the session for resumption, count it. */
static void
slot_response_done(struct slot *s)
{
    const struct bench_opts *o = s->t->o;
    unsigned code = s->parser.status_code;

    if (code < 200 || code >= 300) {
        char r[48];
        snprintf(r, sizeof(r), "HTTP %u", code);
        op_done(s, false, r);
        return;
    }
    if (o->mode == BENCH_RESUME) {
        bool reused = SSL_session_reused(s->ssl);
        SSL_SESSION *sess = SSL_get1_session(s->ssl);
        if (sess != NULL) {
            SSL_SESSION_free(s->session);
            s->session = sess;
        }
        if (s->had_session && !reused) {
            op_done(s, false, "not resumed (the server did a full handshake)");
            return;
        }
        if (reused && s->t_op >= s->t->t_measure && bench_mono() <= s->t->t_end)
            s->t->resumed++;
    }
    op_done(s, true, NULL);
}

static void
slot_read(struct bufferevent *bev, void *arg)
{
    struct slot *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    const struct bench_opts *o = s->t->o;

    if (o->mode == BENCH_H2) {
        bench_h2_read(s);
        return;
    }
    if (o->payload != NULL) {
        size_t n = evbuffer_get_length(in);
        evbuffer_drain(in, n);
        s->echo_got += n;
        if (s->echo_got >= s->echo_want)
            op_done(s, true, NULL);
        return;
    }
    while (evbuffer_get_length(in) > 0 && !s->done_resp) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = http_parser_execute(&s->parser, &resp_settings, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            op_done(s, false, "bad HTTP response");
            return;
        }
    }
    if (s->done_resp)
        slot_response_done(s);
}

static void
slot_send(struct slot *s)
{
    struct bthread *t = s->t;

    s->t_op = bench_mono();
    s->done_resp = false;
    if (t->o->payload != NULL) {
        s->echo_want = strlen(t->o->payload);
        s->echo_got = 0;
        bufferevent_write(s->bev, t->o->payload, s->echo_want);
        return;
    }
    http_parser_init(&s->parser, HTTP_RESPONSE);
    s->parser.data = s;
    bufferevent_write(s->bev, t->request, t->request_len);
}

static void
slot_event(struct bufferevent *bev, short what, void *arg)
{
    struct slot *s = arg;
    struct bthread *t = s->t;

    if (what & BEV_EVENT_CONNECTED) {
        s->connected = true;
        if (t->o->mode == BENCH_IDLE) {
            t->idle_established++;
            return;
        }
        if (t->o->mode == BENCH_KEEPALIVE) {
            slot_send(s);
            return;
        }
        if (t->o->mode == BENCH_H2) {
            bench_h2_connected(s);
            return;
        }
        /* full/resume: the operation started at connect; send without resetting its clock */
        double start = s->t_op;
        slot_send(s);
        s->t_op = start;
        return;
    }
    if ((what & BEV_EVENT_EOF) && s->connected && t->o->payload == NULL && !s->done_resp &&
        t->o->mode != BENCH_IDLE) {
        /* A response delimited by the end of the connection (HTTP/1.0 style). */
        http_parser_execute(&s->parser, &resp_settings, NULL, 0);
        if (s->done_resp) {
            slot_response_done(s);
            return;
        }
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
        char reason[96];
        unsigned long e, last = 0;
        while ((e = bufferevent_get_openssl_error(bev)) != 0) {
            if (ERR_GET_LIB(e) != 0)
                last = e;
        }
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(reason, sizeof(reason), "timeout");
        else if (!s->connected && last != 0)
            snprintf(reason, sizeof(reason), "handshake: %s",
                     ERR_reason_error_string(last) ? ERR_reason_error_string(last) : "error");
        else if (!s->connected && s->ssl != NULL && tls_verify_reason(s->ssl) != NULL)
            snprintf(reason, sizeof(reason), "server certificate refused");
        else if (!s->connected)
            snprintf(reason, sizeof(reason), "connect: %s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        else if (last != 0)
            snprintf(reason, sizeof(reason), "TLS: %s",
                     ERR_reason_error_string(last) ? ERR_reason_error_string(last) : "error");
        else
            snprintf(reason, sizeof(reason), "connection closed before the response");
        if (t->o->mode == BENCH_IDLE) {
            reason_add(&t->errors, reason);
            bench_slot_reset(s);
            return;
        }
        if (t->o->mode == BENCH_H2 && s->connected) {
            bench_h2_lost(s, reason);
            return;
        }
        op_done(s, false, reason);
    }
}

static void
slot_start(struct slot *s)
{
    struct bthread *t = s->t;
    const struct bench_opts *o = t->o;
    struct duet_err err;

    s->active = true;
    s->t_op = bench_mono();
    s->ssl = SSL_new(t->ctx);
    if (s->ssl == NULL || tls_client_set_name(s->ssl, o->server_name, &err) != 0) {
        bench_record(t, s->t_op, false, "cannot create a TLS connection");
        return;
    }
    if (o->mode == BENCH_H2 && SSL_set_alpn_protos(s->ssl, (const uint8_t *)"\x02h2", 3) != 0) {
        bench_record(t, s->t_op, false, "cannot offer h2 (ALPN)");
        return;
    }
    s->had_session = o->mode == BENCH_RESUME && s->session != NULL;
    if (s->had_session)
        SSL_set_session(s->ssl, s->session);
    s->bev = bufferevent_openssl_socket_new(t->base, -1, s->ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        SSL_free(s->ssl);
        s->ssl = NULL;
        bench_record(t, s->t_op, false, "out of memory");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
    bufferevent_setcb(s->bev, slot_read, NULL, slot_event, s);
    {
        struct timeval tv = {10, 0};
        bufferevent_set_timeouts(s->bev, o->mode == BENCH_IDLE ? NULL : &tv, NULL);
    }
    if (bufferevent_socket_connect(s->bev, (const struct sockaddr *)&o->target.ss,
                                   (int)o->target.len) != 0) {
        bench_slot_reset(s);
        bench_record(t, s->t_op, false, "connect failed");
        return;
    }
    if (o->target.ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(bufferevent_getfd(s->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bthread *t = arg;

    (void)fd;
    (void)what;
    event_base_loopexit(t->base, NULL);
}

static void *
thread_main(void *arg)
{
    struct bthread *t = arg;
    double total = (double)(t->o->warmup_ms + t->o->duration_ms) / 1000.0;
    struct timeval tv = {(long)total, (long)((total - floor(total)) * 1e6) + 200000};

    if (tv.tv_usec >= 1000000) {
        tv.tv_sec++;
        tv.tv_usec -= 1000000;
    }
    t->stop_ev = evtimer_new(t->base, stop_cb, t);
    evtimer_add(t->stop_ev, &tv);
    for (int i = 0; i < t->nslots; i++)
        slot_start(&t->slots[i]);
    event_base_dispatch(t->base);
    for (int i = 0; i < t->nslots; i++) {
        bench_slot_reset(&t->slots[i]);
        SSL_SESSION_free(t->slots[i].session);
    }
    event_free(t->stop_ev);
    return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static const char *
mode_name(enum bench_mode m)
{
    switch (m) {
    case BENCH_FULL:
        return "full";
    case BENCH_RESUME:
        return "resume";
    case BENCH_KEEPALIVE:
        return "keepalive";
    case BENCH_IDLE:
        return "idle";
    case BENCH_H2:
        return "h2";
    }
    return "?";
}

int
bench_run(const struct bench_opts *o, struct duet_err *err)
{
    struct tls_opts to;
    SSL_CTX *ctx = NULL;
    struct bthread *ts = NULL;
    uint32_t *all = NULL;
    size_t nall = 0;
    uint64_t ok = 0, resumed = 0, nerr = 0;
    struct reasons errors = {.n = 0};
    int idle = 0;
    double start, secs;
    int rc = -1;

    signal(SIGPIPE, SIG_IGN);
    memset(&to, 0, sizeof(to));
    to.cert_file = o->cert;
    to.key_file = o->key;
    to.ca_file = o->cacert;
    to.tls12 = o->tls12;
    to.insecure_key_mode = o->insecure_key_mode;
    if (evthread_use_pthreads() != 0)
        return err_set(err, DUET_ERR_INTERNAL, "libevent has no thread support");
    if (tls_client_ctx_new(&to, &ctx, NULL, err) != 0)
        return -1;
    if (o->mode == BENCH_RESUME) {
        SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    }
    ts = calloc((size_t)o->threads, sizeof(*ts));
    if (ts == NULL) {
        err_nomem(err);
        goto out;
    }
    start = bench_mono();
    for (int i = 0; i < o->threads; i++) {
        struct bthread *t = &ts[i];
        t->o = o;
        t->ctx = ctx;
        t->base = event_base_new();
        t->nslots = o->concurrency / o->threads + (i < o->concurrency % o->threads ? 1 : 0);
        t->slots = calloc((size_t)(t->nslots > 0 ? t->nslots : 1), sizeof(*t->slots));
        t->t_measure = start + (double)o->warmup_ms / 1000.0;
        t->t_end = t->t_measure + (double)o->duration_ms / 1000.0;
        if (t->base == NULL || t->slots == NULL) {
            err_nomem(err);
            goto out;
        }
        for (int k = 0; k < t->nslots; k++)
            t->slots[k].t = t;
        t->request_len = (size_t)snprintf(t->request, sizeof(t->request),
                                          "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
                                          o->path != NULL ? o->path : "/", o->server_name,
                                          o->mode == BENCH_KEEPALIVE ? ""
                                                                     : "Connection: close\r\n");
        if (pthread_create(&t->thr, NULL, thread_main, t) != 0) {
            err_set(err, DUET_ERR_INTERNAL, "cannot start thread %d", i);
            goto out;
        }
    }
    for (int i = 0; i < o->threads; i++) {
        pthread_join(ts[i].thr, NULL);
        ts[i].thr = 0;
    }
    secs = (double)o->duration_ms / 1000.0;
    for (int i = 0; i < o->threads; i++) {
        ok += ts[i].ok;
        resumed += ts[i].resumed;
        idle += ts[i].idle_established;
        nall += ts[i].nlat;
        for (int k = 0; k < ts[i].errors.n; k++) {
            for (uint64_t c = 0; c < ts[i].errors.count[k]; c++)
                reason_add(&errors, ts[i].errors.name[k]);
            nerr += ts[i].errors.count[k];
        }
    }
    all = malloc((nall ? nall : 1) * sizeof(*all));
    if (all == NULL) {
        err_nomem(err);
        goto out;
    }
    nall = 0;
    for (int i = 0; i < o->threads; i++) {
        if (ts[i].nlat == 0)
            continue; /* no latency recorded: lat_us may be NULL */
        memcpy(all + nall, ts[i].lat_us, ts[i].nlat * sizeof(*all));
        nall += ts[i].nlat;
    }
    qsort(all, nall, sizeof(*all), cmp_u32);
#define PCT(p) (nall ? (double)all[(size_t)((double)(nall - 1) * (p))] / 1000.0 : 0.0)
    if (o->json) {
        json_t *er = json_object();
        for (int k = 0; k < errors.n; k++)
            json_object_set_new(er, errors.name[k], json_integer((json_int_t)errors.count[k]));
        json_t *j = json_pack(
            "{s:s,s:s,s:i,s:i,s:f,s:I,s:f,s:{s:f,s:f,s:f,s:f},s:I,s:o}", "mode",
            mode_name(o->mode),
            "target", o->target.text, "concurrency", o->concurrency, "threads", o->threads,
            "duration_s", secs, "completed", (json_int_t)ok, "rate_per_s",
            o->mode == BENCH_IDLE ? 0.0 : (double)ok / secs, "latency_ms", "p50", PCT(0.5), "p90",
            PCT(0.9), "p99", PCT(0.99), "max", nall ? (double)all[nall - 1] / 1000.0 : 0.0,
            "errors_total", (json_int_t)nerr, "errors", er);
        if (o->mode == BENCH_RESUME)
            json_object_set_new(j, "resumed", json_integer((json_int_t)resumed));
        if (o->mode == BENCH_IDLE)
            json_object_set_new(j, "established", json_integer(idle));
        if (o->mode == BENCH_H2)
            json_object_set_new(j, "streams", json_integer(o->streams));
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(j);
    } else {
        printf("duet bench %s %s: %d connections", mode_name(o->mode), o->target.text,
               o->concurrency);
        if (o->mode == BENCH_H2)
            printf(" x %d streams", o->streams);
        printf(", %d threads, %.1f s measured\n", o->threads, secs);
        if (o->mode == BENCH_IDLE) {
            printf("  established and held: %d of %d\n", idle, o->concurrency);
        } else {
            printf("  completed:  %llu (%.1f/s)\n", (unsigned long long)ok, (double)ok / secs);
            if (o->mode == BENCH_RESUME)
                printf("  resumed:    %llu\n", (unsigned long long)resumed);
            printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", PCT(0.5), PCT(0.9),
                   PCT(0.99), nall ? (double)all[nall - 1] / 1000.0 : 0.0);
        }
        printf("  errors:     %llu\n", (unsigned long long)nerr);
        for (int k = 0; k < errors.n; k++)
            printf("    %-60s %llu\n", errors.name[k], (unsigned long long)errors.count[k]);
    }
#undef PCT
    rc = (nerr > 0 || (o->mode != BENCH_IDLE && ok == 0) ||
          (o->mode == BENCH_IDLE && idle < o->concurrency))
             ? 1
             : 0;
out:
    for (int i = 0; ts != NULL && i < o->threads; i++) {
        if (ts[i].thr)
            pthread_join(ts[i].thr, NULL);
        free(ts[i].slots);
        free(ts[i].lat_us);
        if (ts[i].base != NULL)
            event_base_free(ts[i].base);
    }
    free(ts);
    free(all);
    SSL_CTX_free(ctx);
    return rc;
}
