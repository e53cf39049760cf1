/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2up.c - HTTP/2 toward the upstream (upstream_protocol h2c, h2, auto; see
 * h2up.h).  Each worker keeps, per generation and listener, up to
 * upstream_h2_connections upstream connections, each an nghttp2 client
 * session over a bufferevent (plaintext for h2c, TLS with ALPN "h2" for h2).
 * An HTTP/2 client's stream that h2.c forwards becomes one stream here, on
 * the first connection with room under the upstream's
 * SETTINGS_MAX_CONCURRENT_STREAMS, or a new one (up to
 * upstream_h2_connections, and past them up to upstream_h2_max_connections
 * once every one is known to be full), or (no more allowed) queued by nghttp2
 * on the least loaded.
 *
 * The request's fields are those of the head http_decide() rebuilt, so the
 * policy, the identity header and the removal of the client's copies are the
 * HTTP/1.1 path's own.  Flow control both ways without unbounded buffering:
 * request bytes wait here only within the client's stream window, which h2.c
 * opens again when the upstream took them (hook `taken`); response bytes are
 * given back to the stream's window (nghttp2_session_consume_stream) only when
 * the client took them (h2up_consumed), so at most H2UP_STREAM_WINDOW per
 * stream waits in the proxy (H2UP_READER_WINDOW once the client read that
 * much of it).  The connection's window opens as bytes arrive:
 * the connections are shared by every client of the worker and listener, and
 * a client that never reads must not hold the others' responses back.
 *
 * Cancellation both ways: a client stream that ends early resets its
 * upstream stream with CANCEL; an upstream RST_STREAM reaches the client as
 * RST_STREAM.  A GOAWAY from the upstream stops new streams on that
 * connection; streams it did not process (above its last stream id, or
 * REFUSED_STREAM) are sent again on another connection when none of their
 * body went yet, else refused to the client with REFUSED_STREAM.  The
 * upstream is hostile too: nghttp2 checks its frames and fields (RFC 9113
 * 8.1.1, 8.2.2: connection-specific fields make the response malformed), the
 * header list is bounded by max_header_size, and an upstream that breaks the
 * protocol loses its connection, its streams answered 502 or reset.
 */
#include "proxy/proxy_int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "proxy/h2.h"
#include "proxy/h2up.h"
#include "util/log.h"

#define H2UP_CONN_WINDOW (16 * 1024 * 1024) /* given back as bytes arrive: few WINDOW_UPDATEs */
#define H2UP_STREAM_WINDOW (64 * 1024)      /* response bytes per stream the client did not take */
#define H2UP_READER_WINDOW (256 * 1024)     /* ... once it took that much of it: it reads */
#define H2UP_OUT_HIGH (128 * 1024)          /* frames queued toward the upstream */
#define H2UP_IDLE_SECONDS 30                /* an upstream connection without streams closes */
#define H2UP_SETTINGS_GUESS 100             /* streams per connection before its SETTINGS */
#define H2UP_RETRIES 2                      /* a refused stream sent again, at most */

struct h2up_conn {
    struct h2up_conn *next;
    struct worker *w;
    struct gen *gen; /* a reference */
    struct gen_listener *gl;
    size_t target;
    bool tls;
    struct bufferevent *bev;
    nghttp2_session *sess;
    struct event *flush_ev;
    struct h2up_stream *streams; /* open, or closed but still held by h2.c */
    unsigned nstreams;           /* open */
    bool connected;
    bool settings;  /* the upstream's SETTINGS arrived: its stream limit is known */
    bool goaway; /* no new stream: the upstream sent GOAWAY, or the connection failed */
    char error[120]; /* what nghttp2 last refused of the upstream's frames */
};

struct h2up_stream {
    struct h2up_stream *prev, *next;
    struct h2up_conn *uc; /* NULL once its connection is gone */
    int32_t id;
    const struct h2up_hooks *hooks; /* NULL: h2.c let go (h2up_cancel, or after reset) */
    void *arg;
    char *head;
    size_t head_len;
    bool te, end_req, deferred, data_sent;
    bool closed;      /* the upstream stream is closed */
    bool got_head, done;
    bool local_reset; /* the proxy reset it (a malformed response, flow control) */
    uint32_t local_code;
    bool too_large;
    int retries;
    int status;
    size_t hbytes;
    nghttp2_nv *nv; /* the header block being received (copies) */
    size_t nnv, cap;
    struct evbuffer *out;
    size_t taken;      /* request bytes framed, not yet reported by `taken` */
    size_t unconsumed; /* response bytes handed to h2.c, not yet consumed */
    size_t took;       /* response bytes the client took, up to H2UP_STREAM_WINDOW */
};

static void conn_teardown(struct h2up_conn *uc, const char *why, bool retry);
static int stream_attach(struct worker *w, struct gen *gen, struct gen_listener *gl, bool tls,
                         struct h2up_stream *s, struct h2up_conn *avoid, struct duet_err *err);

static void
count_upstream(struct gen_listener *gl, bool tls)
{
    metrics_slot_count(&gl->up_h2streams[tls], "duet_upstream_h2_streams_total",
                       "listener=\"%s\",upstream_proto=\"%s\"", gl->mlabel, tls ? "h2" : "h2c");
}

static void
nv_clear(struct h2up_stream *s)
{
    for (size_t i = 0; i < s->nnv; i++) {
        free(s->nv[i].name);
        free(s->nv[i].value);
    }
    s->nnv = 0;
    s->hbytes = 0;
    s->status = 0;
}

static void
stream_free(struct h2up_stream *s)
{
    nv_clear(s);
    free(s->nv);
    free(s->head);
    evbuffer_free(s->out);
    free(s);
}

static void
unlink_stream(struct h2up_stream *s)
{
    if (s->uc == NULL)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->uc->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->uc = NULL;
}

static void
schedule_flush(struct h2up_conn *uc)
{
    if (uc != NULL && uc->flush_ev != NULL)
        event_active(uc->flush_ev, EV_WRITE, 0);
}

/* A connection left without streams waits H2UP_IDLE_SECONDS for the next, then closes. */
static void
conn_idle_check(struct h2up_conn *uc)
{
    struct timeval idle = {H2UP_IDLE_SECONDS, 0};

    if (uc->nstreams == 0 && uc->connected)
        bufferevent_set_timeouts(uc->bev, &idle, NULL);
}

/*
 * The upstream stream closed, or its HEADERS was never sent: nghttp2 opens a
 * request's stream before it checks that the HEADERS may go (a GOAWAY came
 * first, the stream was cancelled, the header block is too large), and
 * closes it after, REFUSED_STREAM or the cancel's code, so this is the one
 * place a stream ends (no on_frame_not_send: it would see the stream once
 * more, freed or already sent again).  An unfinished response is retried
 * when nothing of it was processed and none of its body went, else h2.c
 * hears why; a stream h2.c let go is freed.
 */
static void
stream_closed(struct h2up_conn *uc, struct h2up_stream *s, uint32_t code)
{
    char why[200];

    if (s->closed)
        return;
    s->closed = true;
    if (uc->nstreams > 0)
        uc->nstreams--;
    if (s->hooks != NULL && !s->done) {
        const struct h2up_hooks *h = s->hooks;
        if (code == NGHTTP2_REFUSED_STREAM && !s->got_head && !s->data_sent &&
            s->retries < H2UP_RETRIES) {
            struct duet_err err;
            unlink_stream(s);
            s->closed = false;
            s->retries++;
            if (stream_attach(uc->w, uc->gen, uc->gl, uc->tls, s, uc, &err) == 0) {
                conn_idle_check(uc);
                return;
            }
            s->closed = true;
        }
        s->hooks = NULL;
        if (s->too_large)
            snprintf(why, sizeof(why), "the response's header list is larger than %zu bytes",
                     uc->gen->cfg.max_header_bytes);
        else if (s->local_reset && s->local_code != NGHTTP2_PROTOCOL_ERROR)
            snprintf(why, sizeof(why), "the upstream broke HTTP/2 on its stream (RST_STREAM %s "
                                       "sent)",
                     nghttp2_http2_strerror(s->local_code));
        else if (s->local_reset)
            snprintf(why, sizeof(why), "the upstream sent a malformed HTTP/2 response (%s)",
                     uc->error[0] != '\0' ? uc->error : "RFC 9113 8.1.1, 8.2.2");
        h->reset(s->arg, code, s->too_large || s->local_reset ? why : NULL);
    }
    if (s->hooks == NULL) {
        unlink_stream(s);
        stream_free(s);
    }
    conn_idle_check(uc);
}

/* --- nghttp2's callbacks (the upstream's frames) ---------------------------------------------- */

static ssize_t
req_read_cb(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
            nghttp2_data_source *src, void *user)
{
    struct h2up_stream *s = src->ptr;
    int n = evbuffer_remove(s->out, buf, len);

    (void)sess;
    (void)id;
    (void)user;
    if (n > 0) {
        s->data_sent = true;
        s->taken += (size_t)n;
        return n;
    }
    if (s->end_req) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

static int
on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2up_stream *s = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);

    (void)user;
    if (s != NULL)
        nv_clear(s);
    return 0;
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    struct h2up_conn *uc = user;
    struct h2up_stream *s = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);

    (void)flags;
    if (s == NULL || s->hooks == NULL)
        return 0;
    s->hbytes += nlen + vlen + 32; /* RFC 9113 6.5.2 */
    if (s->hbytes > uc->gen->cfg.max_header_bytes) {
        s->too_large = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        s->status = vlen == 3 && value[0] >= '1' && value[0] <= '5'
                        ? (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0')
                        : 0;
        return 0;
    }
    if (nlen > 0 && name[0] == ':')
        return 0; /* nghttp2 refuses any other pseudo-header in a response */
    if (s->nnv == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        nghttp2_nv *nv = realloc(s->nv, cap * sizeof(*nv));
        if (nv == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->nv = nv;
        s->cap = cap;
    }
    s->nv[s->nnv].name = malloc(nlen + 1);
    s->nv[s->nnv].value = malloc(vlen + 1);
    if (s->nv[s->nnv].name == NULL || s->nv[s->nnv].value == NULL) {
        free(s->nv[s->nnv].name);
        free(s->nv[s->nnv].value);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    memcpy(s->nv[s->nnv].name, name, nlen);
    memcpy(s->nv[s->nnv].value, value, vlen);
    s->nv[s->nnv].name[nlen] = s->nv[s->nnv].value[vlen] = '\0';
    s->nv[s->nnv].namelen = nlen;
    s->nv[s->nnv].valuelen = vlen;
    s->nv[s->nnv].flags = NGHTTP2_NV_FLAG_NONE;
    s->nnv++;
    return 0;
}

/* A header block is complete: the response's head (1xx skipped), or its trailers. */
static void
headers_done(struct h2up_stream *s, bool end)
{
    if (s->hooks == NULL || s->done)
        return;
    if (!s->got_head) {
        if (s->status >= 100 && s->status < 200) {
            nv_clear(s);
            return;
        }
        s->got_head = true;
        if (end)
            s->done = true;
        s->hooks->head(s->arg, s->status, s->nv, s->nnv, end);
    } else {
        s->done = true;
        s->hooks->trailers(s->arg, s->nv, s->nnv);
        if (s->hooks != NULL)
            s->hooks->end(s->arg);
    }
    nv_clear(s);
}

static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2up_conn *uc = user;
    struct h2up_stream *s = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (s != NULL)
            headers_done(s, end);
        break;
    case NGHTTP2_DATA:
        if (s != NULL && end && s->hooks != NULL && !s->done) {
            s->done = true;
            s->hooks->end(s->arg);
        }
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            uc->settings = true;
        break;
    case NGHTTP2_GOAWAY:
        uc->goaway = true; /* nghttp2 closes the streams above its last id (REFUSED_STREAM) */
        break;
    default:
        break;
    }
    return 0;
}

static int
on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *user)
{
    struct h2up_stream *s = nghttp2_session_get_stream_user_data(sess, id);

    (void)flags;
    (void)user;
    /*
     * The connection's window opens as bytes arrive: a stream's window alone
     * holds its response back, so a client that never reads keeps no other
     * client's response from coming on the same connection.
     */
    nghttp2_session_consume_connection(sess, len);
    if (s == NULL || s->hooks == NULL || !s->got_head) {
        nghttp2_session_consume_stream(sess, id, len); /* nobody takes them */
        return 0;
    }
    s->unconsumed += len;
    s->hooks->data(s->arg, data, len);
    return 0;
}

static int
on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *user)
{
    struct h2up_stream *s = nghttp2_session_get_stream_user_data(sess, id);

    if (s != NULL)
        stream_closed(user, s, code);
    return 0;
}

static int
on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2up_conn *uc = user;
    struct h2up_stream *s;

    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        uc->error[0] == '\0') {
        /* nghttp2 ends the connection over a frame: its debug data says which. */
        size_t n = frame->goaway.opaque_data_len < 80 ? frame->goaway.opaque_data_len : 80;
        snprintf(uc->error, sizeof(uc->error), "GOAWAY %s sent (%.*s)",
                 nghttp2_http2_strerror(frame->goaway.error_code), (int)n,
                 n > 0 ? (const char *)frame->goaway.opaque_data : "");
        for (char *p = uc->error; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM &&
        (s = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id)) != NULL &&
        s->hooks != NULL) {
        s->local_reset = true;
        s->local_code = frame->rst_stream.error_code;
    }
    return 0;
}

/* nghttp2's refusals of the upstream's frames: the last one is the reason logged. */
static int
on_error(nghttp2_session *sess, int code, const char *msg, size_t len, void *user)
{
    struct h2up_conn *uc = user;

    (void)sess;
    snprintf(uc->error, sizeof(uc->error), "%s: %.*s", nghttp2_strerror(code),
             (int)(len < 80 ? len : 80), msg);
    for (char *p = uc->error; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return 0;
}

/* --- the connection --------------------------------------------------------------------------- */

static void
up_log(struct h2up_conn *uc, const char *why)
{
    log_event("error", "upstream_error",
              json_pack("{s:s,s:s,s:s,s:s}", "listener", uc->gl->cfg->name, "upstream",
                        uc->gl->cfg->targets[uc->target].text, "error", why, "proto",
                        uc->tls ? "h2" : "h2c"));
}

/* Frames for the upstream, then what the upstream took reported to the client side. */
static void
conn_flush(struct h2up_conn *uc)
{
    struct evbuffer *out = bufferevent_get_output(uc->bev);

    if (!uc->connected)
        return;
    while (evbuffer_get_length(out) < H2UP_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(uc->sess, &data);
        if (n < 0) {
            char why[120];
            snprintf(why, sizeof(why), "HTTP/2 toward the upstream: %s",
                     nghttp2_strerror((int)n));
            up_log(uc, why);
            conn_teardown(uc, why, false);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    /*
     * A hook may end other client streams, and so free streams of this list:
     * the scan starts again after each (each stream reports once).
     */
    for (struct h2up_stream *s = uc->streams; s != NULL;) {
        if (s->taken > 0 && s->hooks != NULL) {
            size_t n = s->taken;
            s->taken = 0;
            s->hooks->taken(s->arg, n);
            s = uc->streams;
            continue;
        }
        s = s->next;
    }
    if (!nghttp2_session_want_read(uc->sess) && !nghttp2_session_want_write(uc->sess)) {
        /* A connection error (nghttp2 sent GOAWAY), or GOAWAY and no stream left. */
        char why[200];
        snprintf(why, sizeof(why), "the upstream broke HTTP/2: %s",
                 uc->error[0] != '\0' ? uc->error : "its session ended");
        if (uc->error[0] != '\0')
            up_log(uc, why);
        conn_teardown(uc, uc->error[0] != '\0' ? why : NULL, false);
        return;
    }
    if (uc->goaway && uc->nstreams == 0 && evbuffer_get_length(out) == 0)
        conn_teardown(uc, NULL, false);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

static void
up_read_cb(struct bufferevent *bev, void *arg)
{
    struct h2up_conn *uc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(uc->sess, v.iov_base, v.iov_len);
        if (n < 0) {
            char why[160];
            snprintf(why, sizeof(why), "the upstream broke HTTP/2: %s", nghttp2_strerror((int)n));
            up_log(uc, why);
            nghttp2_session_terminate_session(uc->sess, NGHTTP2_PROTOCOL_ERROR);
            conn_teardown(uc, why, false);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    conn_flush(uc);
}

static void
up_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_flush(arg);
}

static void
up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct h2up_conn *uc = arg;
    char why[200];

    if (what & BEV_EVENT_CONNECTED) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (ssl != NULL)
            SSL_get0_alpn_selected(ssl, &alpn, &alen);
        if (uc->tls && !(alen == 2 && memcmp(alpn, "h2", 2) == 0)) {
            bool shown = alen > 0 && alen < 40;
            snprintf(why, sizeof(why),
                     "upstream_protocol h2: the upstream did not choose h2 by ALPN (%.*s)",
                     shown ? (int)alen : 4, shown ? (const char *)alpn : "none");
            upstream_target_failed(uc->gl, uc->target, "-", why);
            conn_teardown(uc, why, false);
            return;
        }
        uc->connected = true;
        if (!uc->gl->cfg->targets[uc->target].is_unix) {
            int one = 1;
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bufferevent_set_timeouts(bev, NULL, NULL);
        conn_idle_check(uc);
        conn_flush(uc);
        return;
    }
    if (!uc->connected) {
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "connect timed out after %d ms",
                     uc->gen->cfg.connect_timeout_ms);
        else
            snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        upstream_target_failed(uc->gl, uc->target, "-", why);
        conn_teardown(uc, "the upstream service could not be reached", true);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && uc->nstreams == 0) {
        conn_teardown(uc, NULL, false);
        return;
    }
    up_log(uc, "the upstream closed the HTTP/2 connection");
    conn_teardown(uc, "the upstream closed the connection without a response", false);
}

/*
 * The connection goes: its streams are retried elsewhere (retry: the connect
 * failed, nothing was sent) or told why (why NULL: there are none unfinished).
 */
static void
conn_teardown(struct h2up_conn *uc, const char *why, bool retry)
{
    struct worker *w = uc->w;

    for (struct h2up_conn **pp = &w->h2up; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == uc) {
            *pp = uc->next;
            break;
        }
    }
    uc->goaway = true;
    bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(uc->bev, EV_READ | EV_WRITE);
    while (uc->streams != NULL) {
        struct h2up_stream *s = uc->streams;
        struct duet_err err;
        unlink_stream(s);
        if (s->hooks != NULL && !s->done && !s->closed) {
            const struct h2up_hooks *h = s->hooks;
            if (retry && s->retries < (int)uc->gl->cfg->ntargets - 1) {
                s->retries++;
                if (stream_attach(w, uc->gen, uc->gl, uc->tls, s, uc, &err) == 0)
                    continue;
            }
            s->hooks = NULL;
            h->reset(s->arg, NGHTTP2_INTERNAL_ERROR,
                     why != NULL ? why : "the upstream connection ended");
        }
        s->closed = true;
        if (s->hooks == NULL)
            stream_free(s);
        /* else h2.c still holds a finished stream: it lets go with h2up_cancel */
    }
    event_free(uc->flush_ev);
    nghttp2_session_del(uc->sess);
    bufferevent_free(uc->bev);
    gen_unref(uc->gen);
    free(uc);
}

/* A new connection toward the listener's next target, connecting. */
static struct h2up_conn *
conn_new(struct worker *w, struct gen *gen, struct gen_listener *gl, bool tls)
{
    const struct listener_cfg *l = gl->cfg;
    const struct proxy_cfg *cfg = &gen->cfg;
    struct timeval ct = {cfg->connect_timeout_ms / 1000, (cfg->connect_timeout_ms % 1000) * 1000};
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    struct h2up_conn *uc = calloc(1, sizeof(*uc));
    struct duet_err err;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_bytes},
    };

    if (uc == NULL)
        return NULL;
    uc->w = w;
    uc->gen = gen;
    gen_ref(gen);
    uc->gl = gl;
    uc->tls = tls;
    uc->target = upstream_pick(gl);
    if (tls && gl->up_ctx != NULL) {
        SSL *ssl = SSL_new(gl->up_ctx);
        const char *name = l->up_name != NULL ? l->up_name : l->target_names[uc->target];
        if (ssl == NULL || tls_client_set_name(ssl, name, &err) != 0 ||
            SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3) != 0) {
            SSL_free(ssl);
            goto err;
        }
        uc->bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (uc->bev == NULL)
            SSL_free(ssl);
    } else {
        uc->bev = bufferevent_socket_new(w->base, -1,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (uc->bev == NULL || (uc->flush_ev = event_new(w->base, -1, 0, flush_cb, uc)) == NULL ||
        nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto err;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    /* A stream's window opens as the client takes the response (the connection's, on arrival). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_peer_max_concurrent_streams(opt, H2UP_SETTINGS_GUESS);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    if (nghttp2_session_client_new2(&uc->sess, cb, uc, opt) != 0)
        goto err;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    cb = NULL;
    opt = NULL;
    if (nghttp2_submit_settings(uc->sess, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(uc->sess, NGHTTP2_FLAG_NONE, 0, H2UP_CONN_WINDOW) !=
            0)
        goto err;
    bufferevent_setcb(uc->bev, up_read_cb, up_write_cb, up_event_cb, uc);
    bufferevent_set_timeouts(uc->bev, &ct, &ct);
    metrics_upstream_conn(false);
    if (bufferevent_socket_connect(uc->bev, (const struct sockaddr *)&l->targets[uc->target].ss,
                                   (int)l->targets[uc->target].len) != 0) {
        /* Reported by the caller's streams as an unreachable upstream. */
        upstream_target_failed(gl, uc->target, "-", "cannot connect");
        goto err;
    }
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
    uc->next = w->h2up;
    w->h2up = uc;
    return uc;
err:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (uc->sess != NULL)
        nghttp2_session_del(uc->sess);
    if (uc->flush_ev != NULL)
        event_free(uc->flush_ev);
    if (uc->bev != NULL)
        bufferevent_free(uc->bev);
    gen_unref(uc->gen);
    free(uc);
    return NULL;
}

/* The connection a new stream goes on: one with room, a new one, or the least loaded. */
static struct h2up_conn *
conn_pick(struct worker *w, struct gen *gen, struct gen_listener *gl, bool tls,
          struct h2up_conn *avoid)
{
    struct h2up_conn *best = NULL, *unknown = NULL;
    int n = 0, max = gen->cfg.upstream_h2_max_conns;
    int spread = gen->cfg.upstream_h2_conns < max ? gen->cfg.upstream_h2_conns : max;

    for (struct h2up_conn *uc = w->h2up; uc != NULL; uc = uc->next) {
        if (uc->gen != gen || uc->gl != gl || uc->tls != tls || uc->goaway || uc == avoid)
            continue;
        /*
         * Until the upstream's SETTINGS say how many streams it takes, one
         * each: a burst of streams opens connections (up to the setting)
         * rather than piling onto one that may take a single stream.
         */
        uint32_t room = uc->settings ? nghttp2_session_get_remote_settings(
                                           uc->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                                     : 1;
        n++;
        if (uc->nstreams < room)
            return uc;
        if (best == NULL || uc->nstreams < best->nstreams)
            best = uc;
        if (!uc->settings && (unknown == NULL || uc->nstreams < unknown->nstreams))
            unknown = uc;
    }
    /*
     * Every connection is full: a new one up to upstream_h2_connections; then
     * one whose SETTINGS have not come yet (it takes H2UP_SETTINGS_GUESS
     * until they do); then a new one up to the maximum, rather than streams
     * waiting behind streams that may be held for --h2-stream-timeout (a
     * client that never reads, a body that never comes).
     */
    if (best != NULL && n >= spread && unknown != NULL && unknown->nstreams < H2UP_SETTINGS_GUESS)
        return unknown;
    if (best == NULL || n < max) {
        struct h2up_conn *uc = conn_new(w, gen, gl, tls);
        if (uc != NULL)
            return uc;
    }
    return best; /* nghttp2 holds the HEADERS until the upstream lets another stream open */
}

/* Submit s's request on uc: the head as HTTP/2 fields, then its body from s->out. */
static int
stream_submit(struct h2up_conn *uc, struct h2up_stream *s, struct duet_err *err)
{
    struct h2up_fields f;
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = req_read_cb};
    int32_t id;

    if (h2up_fields_make(s->head, s->head_len, uc->tls, s->te, &f, err) != 0)
        return -1;
    id = nghttp2_submit_request(uc->sess, NULL, f.nv, f.n, s->end_req ? NULL : &prd, s);
    h2up_fields_clear(&f);
    if (id < 0)
        return err_set(err, DUET_ERR_INTERNAL, "cannot send the request upstream: %s",
                       nghttp2_strerror(id));
    s->id = id;
    s->uc = uc;
    s->deferred = false;
    s->next = uc->streams;
    if (uc->streams != NULL)
        uc->streams->prev = s;
    uc->streams = s;
    uc->nstreams++;
    if (uc->connected)
        bufferevent_set_timeouts(uc->bev, NULL, NULL);
    schedule_flush(uc);
    return 0;
}

static int
stream_attach(struct worker *w, struct gen *gen, struct gen_listener *gl, bool tls,
              struct h2up_stream *s, struct h2up_conn *avoid, struct duet_err *err)
{
    struct h2up_conn *uc = conn_pick(w, gen, gl, tls, avoid);

    if (uc == NULL)
        return err_set(err, DUET_ERR_INTERNAL, "the upstream service could not be reached");
    return stream_submit(uc, s, err);
}

/* --- what h2.c calls ------------------------------------------------------------------------- */

/* Open a stream toward gl's upstream; see h2up.h. */
struct h2up_stream *
h2up_open(struct worker *w, struct gen *gen, struct gen_listener *gl, bool tls, const char *head,
          size_t head_len, bool te_trailers, bool end, const struct h2up_hooks *hooks, void *arg,
          struct duet_err *err)
{
    struct h2up_stream *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->out = evbuffer_new()) == NULL || (s->head = malloc(head_len)) == NULL) {
        if (s != NULL)
            evbuffer_free(s->out);
        free(s);
        err_nomem(err);
        return NULL;
    }
    memcpy(s->head, head, head_len);
    s->head_len = head_len;
    s->te = te_trailers;
    s->end_req = end;
    s->hooks = hooks;
    s->arg = arg;
    if (stream_attach(w, gen, gl, tls, s, NULL, err) != 0) {
        stream_free(s);
        return NULL;
    }
    count_upstream(gl, tls);
    return s;
}

/* Request bytes for the upstream; see h2up.h. */
int
h2up_data(struct h2up_stream *s, const uint8_t *p, size_t n)
{
    if (evbuffer_add(s->out, p, n) != 0)
        return -1;
    if (s->deferred && s->uc != NULL && !s->closed) {
        s->deferred = false;
        nghttp2_session_resume_data(s->uc->sess, s->id);
    }
    schedule_flush(s->uc);
    return 0;
}

/* The request is complete; see h2up.h. */
void
h2up_end(struct h2up_stream *s)
{
    s->end_req = true;
    if (s->deferred && s->uc != NULL && !s->closed) {
        s->deferred = false;
        nghttp2_session_resume_data(s->uc->sess, s->id);
    }
    schedule_flush(s->uc);
}

/* The client took n response bytes; see h2up.h. */
void
h2up_consumed(struct h2up_stream *s, size_t n)
{
    if (n > s->unconsumed)
        n = s->unconsumed;
    s->unconsumed -= n;
    if (s->uc == NULL || n == 0)
        return;
    nghttp2_session_consume_stream(s->uc->sess, s->id, n);
    /*
     * A client that took a whole first window of the stream reads it: its
     * window grows to H2UP_READER_WINDOW (a large response goes faster); one
     * that never reads keeps H2UP_STREAM_WINDOW per stream in the proxy.
     */
    if (s->took < H2UP_STREAM_WINDOW && (s->took += n) >= H2UP_STREAM_WINDOW)
        nghttp2_session_set_local_window_size(s->uc->sess, NGHTTP2_FLAG_NONE, s->id,
                                              H2UP_READER_WINDOW);
    schedule_flush(s->uc);
}

/* The client's stream is gone; see h2up.h. */
void
h2up_cancel(struct h2up_stream *s, uint32_t code)
{
    struct h2up_conn *uc = s->uc;

    s->hooks = NULL;
    s->unconsumed = 0; /* the connection's window already has them back */
    if (uc == NULL || s->closed) {
        unlink_stream(s);
        stream_free(s);
        if (uc != NULL)
            schedule_flush(uc);
        return;
    }
    nghttp2_submit_rst_stream(uc->sess, NGHTTP2_FLAG_NONE, s->id, code);
    if (nghttp2_session_find_stream(uc->sess, s->id) == NULL &&
        nghttp2_session_set_stream_user_data(uc->sess, s->id, NULL) == 0) {
        /*
         * Its HEADERS still wait for one of the upstream's stream slots:
         * nghttp2 now holds them cancelled, without s, until a slot frees,
         * and drops them then.  s and its request body go now, not then.
         */
        s->closed = true;
        if (uc->nstreams > 0)
            uc->nstreams--;
        unlink_stream(s);
        stream_free(s);
        conn_idle_check(uc);
    }
    schedule_flush(uc); /* else on_stream_close frees s */
}

/* Close every upstream HTTP/2 connection of a worker; see h2up.h. */
void
h2up_clear(struct worker *w)
{
    while (w->h2up != NULL)
        conn_teardown(w->h2up, "the worker stopped", false);
}
