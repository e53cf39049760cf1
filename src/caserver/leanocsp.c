/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leanocsp.c - OCSP answers on `duet ca serve`'s plain listener without
 * libevent's HTTP request path (its request object, header lists, reply
 * headers): the commonest request the CA server gets, answered in a few
 * microseconds from the cache of signed answers.
 *
 * evhttp still owns every connection (its bufferevent, timeouts, the
 * connection count of conns.c, the close).  When a connection's first bytes
 * arrive, an input-buffer callback swaps evhttp's read callback on that
 * bufferevent for lean_read_cb(), keeping evhttp's write and event callbacks
 * and their argument (evhttp's connection).  lean_read_cb() reads requests
 * from the start of the input buffer with the strict reader of leanhttp.c:
 * an OCSP request it fully reads is answered (one prebuilt head and the DER,
 * the same head evhttp writes) and removed; a prefix stays in the buffer
 * until more arrives.  At the first request it does not read (another
 * endpoint, anything outside its grammar, an answer it cannot make, or
 * answers piling up unread by the client), evhttp's read callback is put
 * back and called on the untouched buffer: evhttp reads the connection from
 * that request boundary on, for good, exactly as if its earlier requests had
 * never been there, so every other request keeps evhttp's behaviour, limits
 * and error answers.  A connection is never taken back from evhttp.
 *
 * Reading without FIONREAD: libevent 2.1's socket bufferevent reads with
 * evbuffer_read(), which asks the kernel how much is waiting (an
 * ioctl(FIONREAD)) before each readv.  While a connection is on the lean
 * path, the bufferevent's own read event (struct bufferevent's ev_read,
 * event2/bufferevent_struct.h) runs lean_ev_read() instead of libevent's
 * read callback: one recv() into the input buffer's free space, then
 * lean_read_cb().  It is the same event, armed and disarmed by
 * bufferevent_enable/disable with evhttp's read timeout, freed with the
 * bufferevent, so evhttp's timeouts, the connection count and the close are
 * untouched; end of stream, an error and the read timeout go to evhttp's
 * event callback exactly as libevent's read callback would send them.  The
 * hand-over to evhttp puts libevent's read callback back first.
 *
 * One generation read per batch: a read event only stores what it
 * received and puts the connection on the list of the batch; the batch
 * runs once every read event of the loop's turn has run (an event made
 * active by the first of them, so queued behind them all), opens a batch on
 * the answer cache, and reads and answers the requests of each connection
 * in turn.  The first answer that may be served from the cache reads the
 * inventory's generation; the others of the batch reuse it.  Every request
 * answered in a batch was received before the batch ran (nothing in it
 * reads a socket), so before that read: a revocation committed before a
 * request arrived, on any node, is seen by its answer.  On PostgreSQL this
 * turns one round trip per answer into one per turn of the loop.  A
 * connection is held (bufferevent_incref) while on the list; one freed by
 * evhttp meanwhile (its callbacks cleared) is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/http.h>

#include "caserver/caserver_int.h"
#include "caserver/leanhttp.h"
#include "util/log.h"

/* Answers written and not yet sent past which the connection goes to evhttp (one at a time). */
#define LEAN_OUT_MAX (64 * 1024)

/* Bytes one recv() of the lean path asks for (libevent's own most per read). */
#define LEAN_READ_MAX 16384

/* The one server of the process, and evhttp's read callback, as first seen. */
static struct casrv *lean_srv;
static bufferevent_data_cb evhttp_read;

/* libevent's callback of a socket bufferevent's read event, as first seen. */
static event_callback_fn bev_read_fn;

/* The connections whose received requests wait for the batch (each held). */
struct lean_pending {
    struct bufferevent *bev;
    void *evcon;
};
static struct lean_pending *pending;
static size_t npending, cap_pending;
/* The batch: an event made active, never added, on the connections' loop. */
static struct event *batch_ev;

static void lean_ev_read(evutil_socket_t fd, short what, void *arg);

/* The Date header's value of the current second (evhttp's format). */
static const char *
http_date(void)
{
    static time_t last = -1;
    static char text[64];
    time_t now = time(NULL);
    struct tm tm;

    if (now != last && gmtime_r(&now, &tm) != NULL) {
        strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

/* Append the text s at *at (the caller has the room). */
static void
put_str(char **at, const char *s)
{
    size_t n = strlen(s);

    memcpy(*at, s, n);
    *at += n;
}

/* Append v in decimal at *at. */
static void
put_uint(char **at, size_t v)
{
    char d[24];
    size_t n = 0;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *(*at)++ = d[--n];
}

/*
 * Answer the request r on bev: 0 when the answer is in the output buffer
 * (audited, counted), -1 when evhttp is to read the request instead.
 */
static int
lean_answer(struct bufferevent *bev, void *evcon, const struct leanhttp_req *r, double t0)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct evbuffer *out = bufferevent_get_output(bev);
    uint8_t *der = NULL, *resp = NULL;
    const uint8_t *req;
    size_t len, resp_len = 0;
    char head[256], peer[64], *at, *addr = NULL;
    ev_uint16_t port = 0;
    int rc = -1;

    if (r->post) {
        req = r->body;
        len = r->body_len;
    } else {
        /* "/ocsp/" + at most LEANHTTP_MAX_HEAD bytes: a copy with its NUL for the decoder */
        char path[LEANHTTP_MAX_HEAD + 1];
        size_t plen = r->target_len - 6;
        memcpy(path, r->target + 6, plen);
        path[plen] = '\0';
        if (!caserver_ocsp_get_der(path, &der, &len))
            return -1; /* evhttp answers its 400 */
        req = der;
    }
    if (caserver_ocsp_answer(lean_srv, req, len, t0, &resp, &resp_len, &err) != 0)
        goto out; /* evhttp tries again and answers the 500 with its reason */
    /* evhttp's head for this answer, in its order, built without printf */
    at = head;
    put_str(&at, r->minor == 1 ? "HTTP/1.1" : "HTTP/1.0");
    put_str(&at, " 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                 "Cache-Control: no-store\r\n");
    if (r->minor == 1) {
        put_str(&at, "Date: ");
        put_str(&at, http_date());
        put_str(&at, "\r\n");
    } else {
        put_str(&at, "Connection: keep-alive\r\n");
    }
    put_str(&at, "Content-Length: ");
    put_uint(&at, resp_len);
    put_str(&at, "\r\n\r\n");
    /* Room for both first: never half an answer in the buffer */
    if (evbuffer_expand(out, (size_t)(at - head) + resp_len) != 0 ||
        evbuffer_add(out, head, (size_t)(at - head)) != 0 || evbuffer_add(out, resp, resp_len) != 0)
        goto out;
    evhttp_connection_get_peer(evcon, &addr, &port);
    at = peer;
    put_str(&at, addr != NULL && strlen(addr) < sizeof(peer) - 8 ? addr : "?");
    *at++ = ':';
    put_uint(&at, port);
    *at = '\0';
    caserver_audit_ocsp(r->post ? "POST" : "GET", r->target, r->target_len, peer, t0);
    rc = 0;
out:
    free(resp);
    free(der);
    return rc;
}

/*
 * Send what the answers put in the output buffer now, in one writev, rather
 * than a loop iteration later from a write event (two epoll_ctl fewer per
 * answer); whatever the socket does not take is left to the bufferevent,
 * whose write event and timeout then apply as to any answer.
 */
static void
lean_flush(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);

    if (evbuffer_get_length(out) == 0)
        return;
    (void)evbuffer_write(out, bufferevent_getfd(bev));
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(bev, EV_WRITE);
    else if ((bufferevent_get_enabled(bev) & EV_WRITE) != 0)
        bufferevent_disable(bev, EV_WRITE);
}

/*
 * Run fn as bev's read event callback (lean_ev_read, or libevent's own back):
 * the event is disarmed, assigned with the same descriptor, flags and
 * argument, and armed again (with the read timeout) if reading was on.
 */
static void
lean_set_read_fn(struct bufferevent *bev, event_callback_fn fn)
{
    struct event *ev = &bev->ev_read;
    bool reading = (bufferevent_get_enabled(bev) & EV_READ) != 0;

    if (event_get_callback(ev) == fn)
        return;
    if (reading)
        bufferevent_disable(bev, EV_READ);
    (void)event_assign(ev, event_get_base(ev), event_get_fd(ev), event_get_events(ev), fn,
                       event_get_callback_arg(ev));
    if (reading)
        bufferevent_enable(bev, EV_READ);
}

/*
 * Read bev's socket on the lean path: a connection whose read event is
 * libevent's own (as first seen), on its descriptor, with the bufferevent
 * as its argument, and no read watermark (a limit libevent would apply).
 */
static void
lean_own_reads(struct bufferevent *bev)
{
    struct event *ev = &bev->ev_read;
    event_callback_fn fn = event_get_callback(ev);
    size_t low = 0, high = 0;

    if (fn == lean_ev_read)
        return; /* already */
    if (bev_read_fn == NULL)
        bev_read_fn = fn;
    bufferevent_getwatermark(bev, EV_READ, &low, &high);
    if (fn != bev_read_fn || event_get_callback_arg(ev) != bev ||
        event_get_fd(ev) != bufferevent_getfd(bev) || event_get_fd(ev) < 0 || low != 0 || high != 0)
        return; /* not libevent's reading as known: libevent keeps reading */
    lean_set_read_fn(bev, lean_ev_read);
}

/* Give the connection to evhttp from the request at the start of its input on. */
static void
lean_hand_over(struct bufferevent *bev, void *evcon)
{
    bufferevent_data_cb wcb = NULL;
    bufferevent_event_cb ecb = NULL;

    if (bev_read_fn != NULL && event_get_callback(&bev->ev_read) == lean_ev_read)
        lean_set_read_fn(bev, bev_read_fn);
    bufferevent_getcb(bev, NULL, &wcb, &ecb, NULL);
    bufferevent_setcb(bev, evhttp_read, wcb, ecb, evcon);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        evhttp_read(bev, evcon);
}

/* Read and answer the requests at the start of bev's input (in a batch). */
static void
lean_serve(struct bufferevent *bev, void *evcon)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t max = LEANHTTP_MAX_HEAD + lean_srv->o->max_body;
    bool pass = false;

    while (!pass && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_length(in), take = n < max ? n : max;
        struct leanhttp_req r;
        enum leanhttp_verdict v;
        double t0 = caserver_mono();
        const uint8_t *p;

        /* Answers the client leaves unread: evhttp answers one at a time from here. */
        pass = evbuffer_get_length(bufferevent_get_output(bev)) > LEAN_OUT_MAX ||
               (p = evbuffer_pullup(in, (ev_ssize_t)take)) == NULL;
        if (pass)
            break;
        v = caserver_leanhttp_parse(p, take, lean_srv->o->max_body, &r);
        if (v == LEANHTTP_MORE) {
            /* More than the longest request read here cannot be one. */
            pass = take < n;
            break;
        }
        pass = v != LEANHTTP_OCSP || lean_answer(bev, evcon, &r, t0) != 0;
        if (!pass)
            evbuffer_drain(in, r.total);
    }
    lean_flush(bev);
    if (pass)
        lean_hand_over(bev, evcon);
    else
        lean_own_reads(bev);
}

static void lean_read_cb(struct bufferevent *bev, void *evcon);

/*
 * The batch: one generation read (at most) for the requests of every
 * connection on the list, all received before it ran.  Connections put on
 * the list while it runs (none: it reads no socket) wait for the next one.
 */
static void
lean_batch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ca_ocsp_cache *cache = lean_srv != NULL ? lean_srv->ocsp_cache : NULL;
    size_t n = npending;

    (void)fd;
    (void)what;
    (void)arg;
    if (cache != NULL)
        ca_ocsp_cache_batch_open(cache);
    for (size_t i = 0; i < n; i++) {
        struct bufferevent *bev = pending[i].bev;
        bufferevent_data_cb rcb = NULL;
        void *cbarg = NULL;

        bufferevent_getcb(bev, &rcb, NULL, NULL, &cbarg);
        /* Still on the lean path: not freed (callbacks cleared) nor handed over. */
        if (rcb == lean_read_cb && cbarg == pending[i].evcon)
            lean_serve(bev, cbarg);
        bufferevent_decref(bev);
    }
    if (cache != NULL)
        ca_ocsp_cache_batch_close(cache);
    memmove(pending, pending + n, (npending - n) * sizeof(*pending));
    npending -= n;
    if (npending > 0)
        event_active(batch_ev, 0, 0);
}

/*
 * The connection's read callback while it is on the lean path: what was
 * received waits for the batch of this turn of the loop.  Without memory
 * for the list, the requests are served now, each answer reading the
 * generation itself.
 */
static void
lean_read_cb(struct bufferevent *bev, void *evcon)
{
    if (batch_ev == NULL &&
        (batch_ev = event_new(bufferevent_get_base(bev), -1, 0, lean_batch_cb, NULL)) == NULL) {
        lean_serve(bev, evcon);
        return;
    }
    if (npending == cap_pending) {
        size_t cap = cap_pending > 0 ? cap_pending * 2 : 64;
        struct lean_pending *p = realloc(pending, cap * sizeof(*p));
        if (p == NULL) {
            lean_serve(bev, evcon);
            return;
        }
        pending = p;
        cap_pending = cap;
    }
    bufferevent_incref(bev);
    pending[npending].bev = bev;
    pending[npending].evcon = evcon;
    if (npending++ == 0)
        event_active(batch_ev, 0, 0);
}

/* A connection's input bound; see caserver_int.h. */
size_t
caserver_input_max(const struct casrv *s)
{
    return LEANHTTP_MAX_HEAD + s->o->max_body + 64 * 1024;
}

/* Drop the list and the batch event; see caserver_int.h. */
void
caserver_lean_stop(void)
{
    for (size_t i = 0; i < npending; i++)
        bufferevent_decref(pending[i].bev);
    free(pending);
    pending = NULL;
    npending = cap_pending = 0;
    if (batch_ev != NULL)
        event_free(batch_ev);
    batch_ev = NULL;
    lean_srv = NULL;
}

/*
 * bev's read event while the connection is on the lean path (in the place
 * of libevent's read callback, which it follows step by step without
 * FIONREAD): one recv() into the input buffer, then lean_read_cb().  The
 * read timeout, end of stream and an error disable reading and go to the
 * bufferevent's event callback (evhttp's), as libevent's would.
 */
static void
lean_ev_read(evutil_socket_t fd, short what, void *arg)
{
    struct bufferevent *bev = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v;
    bufferevent_data_cb rcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;
    short ev = BEV_EVENT_READING;
    ssize_t n = -1;
    int e = ENOMEM;

    bufferevent_incref(bev);
    if (what == EV_TIMEOUT) {
        ev |= BEV_EVENT_TIMEOUT;
    } else {
        evbuffer_unfreeze(in, 0);
        if (evbuffer_reserve_space(in, LEAN_READ_MAX, &v, 1) == 1) {
            do {
                n = recv(fd, v.iov_base, v.iov_len, 0);
                e = errno;
            } while (n < 0 && e == EINTR);
            v.iov_len = n > 0 ? (size_t)n : 0;
            (void)evbuffer_commit_space(in, &v, n > 0 ? 1 : 0);
        }
        evbuffer_freeze(in, 0);
        if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK))
            goto out;
        ev |= n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR;
    }
    if (n > 0) {
        bufferevent_getcb(bev, &rcb, NULL, NULL, &cbarg);
        if (rcb != NULL)
            rcb(bev, cbarg);
    } else {
        bufferevent_disable(bev, EV_READ);
        bufferevent_getcb(bev, NULL, NULL, &ecb, &cbarg);
        if (ecb != NULL)
            ecb(bev, ev, cbarg);
    }
out:
    bufferevent_decref(bev);
}

/*
 * A watched connection's first bytes: evhttp has set its callbacks by now;
 * put lean_read_cb() in the place of its read callback.
 */
static void
lean_first_bytes_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    bufferevent_data_cb rcb = NULL, wcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *evcon = NULL;

    if (info->n_added == 0)
        return;
    evbuffer_remove_cb(buf, lean_first_bytes_cb, arg);
    bufferevent_getcb(bev, &rcb, &wcb, &ecb, &evcon);
    if (rcb == NULL || evcon == NULL || lean_srv == NULL)
        return;
    if (evhttp_read == NULL)
        evhttp_read = rcb;
    if (rcb != evhttp_read)
        return; /* not evhttp's reading state as known: leave it to evhttp */
    bufferevent_setcb(bev, lean_read_cb, wcb, ecb, evcon);
}

/* Watch a plain connection; see caserver_int.h. */
void
caserver_lean_watch(struct casrv *s, struct bufferevent *bev)
{
    if (bev == NULL)
        return;
    lean_srv = s;
    (void)evbuffer_add_cb(bufferevent_get_input(bev), lean_first_bytes_cb, bev);
}
