/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadh2.c - `duet bench --mode h2`: many requests in flight on few mTLS
 * connections, as gRPC and browsers use HTTP/2.
 *
 * Each connection offers only h2 (ALPN); once the server chose it, an
 * nghttp2 client session keeps --streams GET requests open.  Every stream is
 * timed from its submission to its end, so a request nghttp2 holds back
 * because the server allows fewer concurrent streams counts its wait too (the
 * latency a client would see).  A stream that ends with a 2xx status counts
 * as done; a reset, another status or a connection lost with it open counts
 * as an error with its reason.  After the server's GOAWAY no stream is
 * added; those it refused unprocessed (REFUSED_STREAM) are not counted, and
 * once the others have ended the connection is replaced while the run lasts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include "bench/loadgen_int.h"

/* One request in flight. */
struct h2_stream {
    double start;
    int status;
    struct h2_stream *prev, *next;
};

struct bench_h2 {
    nghttp2_session *session;
    struct h2_stream *streams; /* in flight, for bench_h2_lost() and bench_h2_free() */
    int open;
};

static void
stream_unlink(struct bench_h2 *h, struct h2_stream *st)
{
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    h->open--;
}

static ssize_t
send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct slot *s = arg;

    (void)session;
    (void)flags;
    if (bufferevent_write(s->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* The response's :status, kept on its stream. */
static int
header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    struct h2_stream *st;

    (void)flags;
    (void)arg;
    if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st != NULL && valuelen == 3 && value[0] >= '1' && value[0] <= '5' && value[1] >= '0' &&
        value[1] <= '9' && value[2] >= '0' && value[2] <= '9')
        st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

/* Response bodies are read and dropped; nghttp2 gives the window back by itself. */
static int
data_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
        size_t len, void *arg)
{
    (void)session;
    (void)flags;
    (void)stream_id;
    (void)data;
    (void)len;
    (void)arg;
    return 0;
}

static int submit_one(struct slot *s);

/* A stream ended: count it, and open the next one while the run lasts. */
static int
close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *arg)
{
    struct slot *s = arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    char reason[96];

    if (st == NULL)
        return 0;
    if (error_code == NGHTTP2_REFUSED_STREAM && !nghttp2_session_check_request_allowed(session)) {
        /* past the server's GOAWAY: never processed, sent again on the next connection */
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(reason, sizeof(reason), "stream reset: %s", nghttp2_http2_strerror(error_code));
        bench_record(s->t, st->start, false, reason);
    } else if (st->status < 200 || st->status >= 300) {
        snprintf(reason, sizeof(reason), "HTTP %d", st->status);
        bench_record(s->t, st->start, false, reason);
    } else {
        bench_record(s->t, st->start, true, NULL);
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_unlink(s->h2, st);
    free(st);
    /* after a GOAWAY nghttp2 refuses new streams at once: they wait for the next connection */
    if (bench_mono() < s->t->t_end && nghttp2_session_check_request_allowed(session))
        (void)submit_one(s);
    return 0;
}

/* Submit one GET of --path; 0, or -1 when nghttp2 refuses it. */
static int
submit_one(struct slot *s)
{
    const struct bench_opts *o = s->t->o;
    const char *path = o->path != NULL ? o->path : "/";
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NO_COPY_NAME},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NO_COPY_NAME},
        /* nghttp2 takes non-const pointers; with NO_COPY flags unset it only copies them */
        {(uint8_t *)":authority", (uint8_t *)(uintptr_t)o->server_name, 10, strlen(o->server_name),
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
        {(uint8_t *)":path", (uint8_t *)(uintptr_t)path, 5, strlen(path), NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };
    struct h2_stream *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return -1;
    st->start = bench_mono();
    if (nghttp2_submit_request(s->h2->session, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL,
                               st) < 0) {
        free(st);
        return -1;
    }
    st->next = s->h2->streams;
    if (st->next != NULL)
        st->next->prev = st;
    s->h2->streams = st;
    s->h2->open++;
    return 0;
}

/* Write what the session has to send; false when the session failed. */
static bool
flush(struct slot *s)
{
    return nghttp2_session_send(s->h2->session) == 0;
}

/* The session ended (GOAWAY done, or an error): replace the connection while the run lasts. */
static void
session_over(struct slot *s, const char *reason)
{
    bench_h2_lost(s, reason);
}

void
bench_h2_connected(struct slot *s)
{
    const uint8_t *alpn = NULL;
    unsigned alpn_len = 0;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};

    SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        /* counted once per connection and not retried: the server speaks no HTTP/2 */
        bench_record(s->t, s->t_op, false, "the server did not choose h2 (ALPN)");
        bench_slot_reset(s);
        s->active = false;
        return;
    }
    s->h2 = calloc(1, sizeof(*s->h2));
    if (s->h2 == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
        bench_record(s->t, s->t_op, false, "out of memory");
        bench_slot_reset(s);
        s->active = false;
        return;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, close_cb);
    if (nghttp2_session_client_new(&s->h2->session, cbs, s) != 0) {
        nghttp2_session_callbacks_del(cbs);
        bench_record(s->t, s->t_op, false, "out of memory");
        bench_slot_reset(s);
        s->active = false;
        return;
    }
    nghttp2_session_callbacks_del(cbs);
    (void)nghttp2_submit_settings(s->h2->session, NGHTTP2_FLAG_NONE, iv,
                                  sizeof(iv) / sizeof(iv[0]));
    for (int i = 0; i < s->t->o->streams; i++) {
        if (submit_one(s) != 0)
            break;
    }
    if (!flush(s))
        session_over(s, "HTTP/2 session failed");
}

void
bench_h2_read(struct slot *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    if (s->h2 == NULL) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(s->h2->session, v.iov_base, v.iov_len);
        if (n < 0) {
            char reason[96];
            snprintf(reason, sizeof(reason), "bad HTTP/2 from the server: %s",
                     nghttp2_strerror((int)n));
            session_over(s, reason);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (!flush(s)) {
        session_over(s, "HTTP/2 session failed");
        return;
    }
    if (s->h2->open == 0 && bench_mono() >= s->t->t_end) {
        bench_slot_reset(s);
        s->active = false;
        return;
    }
    if (s->h2->open == 0 && !nghttp2_session_check_request_allowed(s->h2->session)) {
        /* the server's GOAWAY, every stream it took answered: a new connection goes on */
        bench_slot_again(s);
        return;
    }
    if (!nghttp2_session_want_read(s->h2->session) && !nghttp2_session_want_write(s->h2->session))
        session_over(s, "the server ended the connection (GOAWAY) with streams open");
}

void
bench_h2_lost(struct slot *s, const char *reason)
{
    if (s->h2 != NULL) {
        for (struct h2_stream *st = s->h2->streams; st != NULL; st = st->next)
            bench_record(s->t, st->start, false, reason);
    }
    bench_slot_again(s);
}

void
bench_h2_free(struct slot *s)
{
    struct bench_h2 *h = s->h2;

    if (h == NULL)
        return;
    s->h2 = NULL;
    nghttp2_session_del(h->session);
    while (h->streams != NULL) {
        struct h2_stream *st = h->streams;
        h->streams = st->next;
        free(st);
    }
    free(h);
}
