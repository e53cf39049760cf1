/* SPDX-License-Identifier: Apache-2.0 */
/*
 * forward.c - HTTP/1 mode: requests read from the client (the strict scanner,
 * then http-parser with the reader's callbacks), each decided by
 * forward_decide() (checks, normalisation, policy, the head rebuilt for the
 * upstream; no socket) and sent by forward_request(), its body framed again;
 * responses parsed only as far as needed to find their end and passed through;
 * keep-alive on both sides, pipelined requests waiting their turn, and a
 * bodyless idempotent request retried once when a pooled upstream connection
 * turns out to be closed.
 *
 * WebSocket: an upgrade request is decided like any other; while its answer
 * is awaited the client's next bytes wait unread; a 101 that answers it
 * turns the connection into relay.c's byte relay (its mode becomes
 * relay_mode), any other answer keeps it in HTTP, the next bytes being read
 * as a new request.  An upstream connection that carried an upgrade is never
 * reused.
 */
#include "proxy/proxy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "lib/xfcc.h"
#include "util/log.h"

static void process_client_http(struct conn *c);
static void forward_release(struct conn *c);

/*
 * Write a short HTTP response and close once it is flushed (the mode's reply
 * hook).  The answer to a HEAD has the head only, its Content-Length the
 * length a GET would have had (RFC 9110 9.3.2, 8.6): a body would be read as
 * the next response.
 */
static void
forward_reply(struct conn *c, int status, const char *reason, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct evbuffer *out = bufferevent_get_output(c->cbev);

    json_decref(body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        status, reason, text != NULL ? strlen(text) + 1 : 1);
    if (!c->h1.head_method)
        evbuffer_add_printf(out, "%s\n", text != NULL ? text : "");
    free(text);
    metrics_slot_count(status >= 0 && status < 600 ? &c->gl->codes[status] : NULL,
                       "duet_requests_total", "listener=\"%s\",code=\"%d\"", c->gl->mlabel, status);
    c->state = CONN_FLUSHING;
    bufferevent_disable(c->cbev, EV_READ);
    if (c->ubev != NULL) {
        bufferevent_setcb(c->ubev, NULL, NULL, NULL, NULL);
        bufferevent_free(c->ubev);
        c->ubev = NULL;
    }
    bufferevent_enable(c->cbev, EV_WRITE);
}

/* Refuse the request being read with a status (conn_refuse's request path). */
static void
forward_refuse(struct conn *c, int status, const char *reason)
{
    struct conn_refusal r = {.kind = CONN_REFUSE_REQUEST, .status = status, .reason = reason};

    conn_refuse(c, &r);
}

/* --- requests --------------------------------------------------------------------- */

/* The request head deadline passed before the head was complete. */
static void
head_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (c->state >= CONN_FLUSHING || c->h1.req_state != REQ_HEADERS)
        return;
    snprintf(why, sizeof(why), "the request head did not arrive within %d ms",
             c->gen->cfg.head_timeout_ms);
    forward_refuse(c, 408, why);
}

/* A request head began and is not complete: it has head_timeout_ms to be. */
static void
head_deadline_arm(struct conn *c)
{
    struct timeval tv = {c->gen->cfg.head_timeout_ms / 1000,
                         (c->gen->cfg.head_timeout_ms % 1000) * 1000};

    if (c->gen->cfg.head_timeout_ms <= 0)
        return;
    if (c->h1.head_timer == NULL &&
        (c->h1.head_timer = evtimer_new(c->w->base, head_deadline_cb, c)) == NULL)
        return;
    evtimer_add(c->h1.head_timer, &tv);
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
    c->h1.req_state = REQ_HEADERS;
    c->h1.head_method = false; /* until this request's head says HEAD */
    return 0;
}

/* Decide one request whose head is read; see proxy_int.h. */
void
forward_decide(const struct listener_cfg *l, const struct duet_identity *id,
               const char *id_xfcc, const char *client_ip, struct http_reader *rd,
               const http_parser *p, struct http_decision *d)
{
    struct http_context ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.policy = &l->policy;
    ctx.id = id;
    ctx.id_xfcc = id_xfcc;
    ctx.client_ip = client_ip;
    ctx.xfcc = l->xfcc;
    ctx.forwarded = l->forwarded;
    http_decide(rd, p, &ctx, d);
}

/*
 * Send a request that was allowed: its rebuilt head to the upstream (one from
 * the pool, the one already open, or a new one), then the body as it comes.
 * Returns false when no upstream could take it (the answer is under way).
 */
static bool
forward_request(struct conn *c, const http_parser *p, struct http_decision *d)
{
    if (c->ubev != NULL && c->h1.upgrading) {
        /*
         * That connection carried an upgrade the upstream did not take: what
         * it would make of the next request is not worth finding out.
         */
        bufferevent_setcb(c->ubev, NULL, NULL, NULL, NULL);
        bufferevent_free(c->ubev);
        c->ubev = NULL;
        c->up = UP_NONE;
    }
    if (c->ubev == NULL) {
        upstream_for_request(c);
        if (c->state >= CONN_FLUSHING || c->ubev == NULL)
            return false;
    }
    c->h1.upgrading = d->req.upgrade != HTTP_UPGRADE_NONE;
    c->h1.resp_from = c->down_bytes;
    c->h1.chunked_up = d->req.framing == HTTP_BODY_CHUNKED;
    c->h1.up_keepalive = false;
    free(c->h1.retry_head);
    c->h1.retry_head = NULL;
    /*
     * A reused connection may have been closed by the upstream just now; a
     * request without a body and safe to repeat is kept to send again on a
     * new connection if no response comes back (the head itself is kept).
     */
    upstream_send(c, d->head, d->head_len);
    c->up_bytes += d->head_len;
    if (c->h1.up_reused && d->req.framing == HTTP_BODY_NONE &&
        (p->method == HTTP_GET || p->method == HTTP_HEAD || p->method == HTTP_OPTIONS)) {
        c->h1.retry_head = d->head;
        c->h1.retry_len = d->head_len;
        d->head = NULL;
    }
    c->h1.req_state = REQ_BODY;
    c->h1.resp_started = false;
    http_parser_init(&c->h1.resp_p, HTTP_RESPONSE);
    c->h1.resp_p.data = c;
    return true;
}

/* Headers done: decide, then send the head rebuilt from what was parsed upstream. */
static int
on_headers_complete(http_parser *p)
{
    struct http_reader *rd = p->data;
    struct conn *c = rd->owner;
    struct http_decision d;

    if (c->h1.head_timer != NULL && evtimer_pending(c->h1.head_timer, NULL))
        event_del(c->h1.head_timer);
    c->h1.head_method = p->method == HTTP_HEAD;
    c->h1.keep_alive = http_should_keep_alive(p) != 0;
    if (c->id != NULL && c->id->xfcc == NULL && c->xfcc == NULL)
        c->xfcc = xfcc_element(c->id);
    forward_decide(c->gl->cfg, c->id,
                   c->id != NULL && c->id->xfcc != NULL ? c->id->xfcc : c->xfcc, c->peer_ip,
                   rd, p, &d);
    if (d.decided)
        conn_log_authz(c, &d.d, d.method, d.req.host, d.target);
    if (d.status == 403) {
        struct conn_refusal r = {.kind = CONN_REFUSE_POLICY, .rule = d.d.rule};
        r.secs = now_mono() - c->t_start;
        conn_refuse(c, &r);
    } else if (d.status != 0) {
        forward_refuse(c, d.status, d.err.msg);
    }
    if (d.status != 0 || !forward_request(c, p, &d))
        http_parser_pause(p, 1);
    http_decision_clear(&d);
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
    if (c->h1.chunked_up)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add(out, at, n);
    if (c->h1.chunked_up)
        evbuffer_add(out, "\r\n", 2);
    c->up_bytes += n;
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct conn *c = ((struct http_reader *)p->data)->owner;

    /* Trailers are not forwarded: the upstream sees the body the proxy framed, then its end. */
    if (c->ubev != NULL && c->h1.chunked_up)
        evbuffer_add(bufferevent_get_output(c->ubev), "0\r\n\r\n", 5);
    c->h1.req_state = REQ_WAIT_RESPONSE;
    http_scan_init(&c->h1.rd.scan, c->gen->cfg.max_header_bytes); /* for the next request */
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

/* Records OpenSSL holds, pulled into the input buffer; see proxy_int.h. */
void
forward_client_pull(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
    struct evbuffer *in = bufferevent_get_input(c->cbev);

    if (ssl == NULL || c->state == CONN_CLOSING || !(bufferevent_get_enabled(c->cbev) & EV_READ))
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

    forward_client_pull(c);

    while (c->state < CONN_FLUSHING && c->h1.req_state != REQ_WAIT_RESPONSE) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (evbuffer_get_length(in) == 0)
            break;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (c->h1.req_state == REQ_HEADERS) {
            /* The strict scanner reads the head's bytes before http-parser does. */
            size_t used;
            int status, r;
            struct duet_err err;
            r = http_scan_feed(&c->h1.rd.scan, v.iov_base, v.iov_len, &used, &status, &err);
            if (r < 0) {
                forward_refuse(c, status, err.msg);
                return;
            }
            /* Most heads arrive whole: the deadline is armed only for one that does not. */
            if (r == 0 &&
                (c->h1.head_timer == NULL || !evtimer_pending(c->h1.head_timer, NULL)))
                head_deadline_arm(c);
        }
        n = http_parser_execute(&c->h1.req_p, &req_settings, v.iov_base, v.iov_len);
        if (c->state >= CONN_FLUSHING)
            return; /* refused inside a callback; the reply is under way */
        evbuffer_drain(in, n);
        e = HTTP_PARSER_ERRNO(&c->h1.req_p);
        if (c->h1.rd.too_large) {
            char why[96];
            snprintf(why, sizeof(why), "the request head is larger than %zu bytes",
                     c->gen->cfg.max_header_bytes);
            forward_refuse(c, 431, why);
            return;
        }
        if (c->h1.rd.nomem) {
            forward_refuse(c, 500, "out of memory");
            return;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            forward_refuse(c, e == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400,
                           http_errno_description(e));
            return;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->h1.req_p, 0);
            if (c->h1.req_state == REQ_WAIT_RESPONSE) {
                /*
                 * After a head with Upgrade, http-parser takes what follows
                 * for another protocol: the next request, if the upstream
                 * does not switch, is read by a parser started afresh.
                 */
                if (c->h1.req_p.upgrade) {
                    http_parser_init(&c->h1.req_p, HTTP_REQUEST);
                    c->h1.req_p.data = &c->h1.rd;
                }
                break;
            }
        }
        if (c->ubev == NULL && c->h1.req_state != REQ_HEADERS)
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

/* --- responses -------------------------------------------------------------------- */

static int
on_resp_headers_complete(http_parser *p)
{
    struct conn *c = p->data;

    /* RFC 9112 6.3: a response to HEAD, and 1xx/204/304, carry no body. */
    return c->h1.head_method ? 1 : 0;
}

static int
on_resp_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    if (p->status_code >= 100 && p->status_code < 200)
        return 0; /* an interim response; the final one follows */
    c->h1.up_keepalive = http_should_keep_alive(p) != 0;
    free(c->h1.retry_head);
    c->h1.retry_head = NULL;
    metrics_slot_count(p->status_code < 600 ? &c->gl->codes[p->status_code] : NULL,
                       "duet_requests_total", "listener=\"%s\",code=\"%u\"", c->gl->mlabel,
                       p->status_code);
    if (c->h1.req_state != REQ_WAIT_RESPONSE) {
        /*
         * The upstream answered before the request's body was all read (a
         * 401 after the head, say).  What the client still sends must reach
         * nobody: that upstream would read it as the next request, and a
         * pooled connection would hand it to another client.  The response
         * goes out, then both connections close; neither is reused.
         */
        c->h1.up_keepalive = false;
        c->state = CONN_FLUSHING;
        bufferevent_disable(c->cbev, EV_READ);
    } else if (!c->h1.keep_alive || !http_should_keep_alive(p) || c->h1.client_eof ||
               c->w->draining) {
        c->state = CONN_FLUSHING;
    } else {
        c->h1.req_state = REQ_HEADERS;
    }
    c->h1.resp_started = false;
    http_parser_pause(p, 1);
    return 0;
}

/*
 * A response head is complete: a 101 switches the connection only when it
 * answers the WebSocket upgrade the proxy forwarded, and says so (Upgrade and
 * Connection: upgrade, which http-parser reports as p->upgrade); 2 tells
 * http-parser that the head ends the HTTP part.  Any other 101 is an error
 * (forward_bad_switch).  Other responses go on as usual.
 */
static int
on_resp_head(http_parser *p)
{
    struct conn *c = p->data;

    if (p->status_code == 101)
        return c->h1.upgrading && p->upgrade && c->h1.req_state == REQ_WAIT_RESPONSE &&
                       c->state == CONN_OPEN
                   ? 2
                   : -1;
    return on_resp_headers_complete(p);
}

static const http_parser_settings resp_settings = {
    .on_headers_complete = on_resp_head,
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

/*
 * A retiring connection (conn_retire) whose next response has not begun: its
 * head gets "Connection: close", so the client knows the connection ends
 * after it.  Returns how many bytes of the head come before the header is
 * added (the head up to its last line's end; v then points at them), 0 when
 * it cannot be added (an interim 1xx response, a head over 64 KiB), or -1
 * while the head has not all arrived.
 */
static ssize_t
close_cut(struct conn *c, struct evbuffer *in, struct evbuffer_iovec *v)
{
    size_t len = evbuffer_get_length(in);
    size_t lim = len < 65536 ? len : 65536;
    unsigned char *d = evbuffer_pullup(in, (ssize_t)lim);
    const unsigned char *crlf = d != NULL ? memmem(d, lim, "\r\n\r\n", 4) : NULL;
    const unsigned char *lf = d != NULL ? memmem(d, lim, "\n\n", 2) : NULL;
    size_t cut;

    if (d != NULL && crlf == NULL && lf == NULL && lim < 65536)
        return -1;
    c->h1.close_sent = true; /* decided for this response, either way */
    if (d == NULL || (crlf == NULL && lf == NULL))
        return 0;
    if (lim > 9 && memcmp(d, "HTTP/1.", 7) == 0 && d[9] == '1')
        return 0;
    cut = crlf != NULL && (lf == NULL || crlf < lf) ? (size_t)(crlf - d) + 2
                                                     : (size_t)(lf - d) + 1;
    v->iov_base = d;
    v->iov_len = lim;
    return (ssize_t)cut;
}

/*
 * The upstream answered 101 to a WebSocket upgrade, and its head is queued
 * for the client: the connection leaves HTTP for good and becomes a relay of
 * bytes both ways (relay.c, with TCP mode's backpressure, idle timeout,
 * draining and close).  What the client sent after its request waited
 * unread in the input buffer; it goes to the upstream now, and so do the
 * bytes that followed the 101.  The upstream connection is never pooled
 * (relay_mode has no upstream_reusable).
 */
static void
forward_switch_protocols(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);

    metrics_slot_count(&c->gl->codes[101], "duet_requests_total", "listener=\"%s\",code=\"101\"",
                       c->gl->mlabel);
    /*
     * The relay reads as TCP mode does, one record at a time: records that
     * OpenSSL's read-ahead already holds are pulled now, and no more are
     * read ahead, so none waits unseen for the socket to be readable again.
     */
    forward_client_pull(c);
    if (ssl != NULL)
        SSL_set_read_ahead(ssl, 0);
    bufferevent_setwatermark(c->cbev, EV_READ, 0, 0);
    bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
    bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
    forward_release(c);
    c->mode = &relay_mode;
    if (c->retiring) {
        /* Retired (conn_retire) while the upgrade was answered: no relay begins. */
        c->state = CONN_FLUSHING;
        bufferevent_disable(c->cbev, EV_READ);
        bufferevent_enable(c->cbev, EV_WRITE);
        return;
    }
    relay_start(c);
}

/*
 * The upstream answered 101 to a request that asked for no upgrade (or
 * without saying to what): an upstream error.  The client gets a 502 when
 * nothing of that response has reached it yet; otherwise the connection ends.
 */
static void
forward_bad_switch(struct conn *c)
{
    const char *why = c->h1.upgrading
                          ? "the upstream answered 101 without Upgrade and Connection: upgrade"
                          : "the upstream switched protocols (101) for a request that asked for "
                            "no upgrade";

    log_event("error", "upstream_error",
              json_pack("{s:s,s:s,s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                        "upstream", c->gl->cfg->targets[c->target].text, "error", why));
    if (c->down_bytes != c->h1.resp_from) {
        conn_close(c);
        return;
    }
    forward_reply(c, 502, "Bad Gateway",
                  json_pack("{s:s,s:s}", "error", "bad_gateway", "detail", why));
}

/* The upstream sent bytes: a response, passed to the client as it is parsed. */
static void
forward_upstream_readable(struct conn *c)
{
    struct bufferevent *bev = c->ubev;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(c->cbev);

    if (c->h1.req_state == REQ_HEADERS && evbuffer_get_length(in) > 0 &&
        c->state != CONN_CLOSING) {
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
        c->up = UP_NONE;
        c->h1.up_keepalive = false;
        return;
    }
    while (evbuffer_get_length(in) > 0 && c->state != CONN_CLOSING) {
        struct evbuffer_iovec v;
        size_t n;
        ssize_t cut = 0;
        enum http_errno e;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (c->retiring && !c->h1.close_sent && !c->h1.resp_started &&
            (cut = close_cut(c, in, &v)) < 0)
            return; /* the rest of the head comes in the next read */
        c->h1.resp_started = true;
        n = http_parser_execute(&c->h1.resp_p, &resp_settings, v.iov_base,
                                cut > 0 ? (size_t)cut : v.iov_len);
        e = HTTP_PARSER_ERRNO(&c->h1.resp_p);
        if (e == HPE_CB_headers_complete && c->h1.resp_p.status_code == 101) {
            forward_bad_switch(c);
            return;
        }
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
        if (cut > 0 && n == (size_t)cut && e == HPE_OK)
            evbuffer_add(out, "Connection: close\r\n", 19);
        if (c->h1.resp_p.upgrade) {
            forward_switch_protocols(c); /* a 101 that on_resp_head accepted */
            return;
        }
        if (e != HPE_PAUSED && evbuffer_get_length(out) >= RELAY_HIGH_WATER) {
            /* A large download: wait until the client has taken what we hold. */
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(c->cbev, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
            return;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->h1.resp_p, 0);
            if (c->state == CONN_FLUSHING) {
                bufferevent_disable(bev, EV_READ);
                if (evbuffer_get_length(out) == 0)
                    conn_close(c); /* all written already */
                else
                    bufferevent_enable(c->cbev, EV_WRITE);
                return;
            }
            /* Response done: read the client's next request, or wait for it lean. */
            http_parser_init(&c->h1.resp_p, HTTP_RESPONSE);
            c->h1.resp_p.data = c;
            forward_client_pull(c);
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
forward_upstream_writable(struct conn *c)
{
    if (c->state >= CONN_FLUSHING || c->h1.req_state == REQ_WAIT_RESPONSE)
        return;
    if (!(bufferevent_get_enabled(c->cbev) & EV_READ)) {
        bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
        bufferevent_enable(c->cbev, EV_READ);
        process_client_http(c);
    }
}

/* The client took what was queued: resume reading a response held back. */
static void
forward_client_writable(struct conn *c)
{
    if (c->ubev != NULL && c->h1.resp_started && !(bufferevent_get_enabled(c->ubev) & EV_READ)) {
        bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
        bufferevent_enable(c->ubev, EV_READ);
        forward_upstream_readable(c);
    }
}

/* A client may half-close after its request: deliver the response first. */
static bool
forward_client_eof(struct conn *c)
{
    if (c->ubev == NULL || c->h1.req_state == REQ_HEADERS || c->state == CONN_FLUSHING)
        return false;
    c->h1.client_eof = true;
    bufferevent_disable(c->cbev, EV_READ);
    return true;
}

/* The connected upstream went away (EOF, error, idle). */
static void
forward_upstream_closed(struct conn *c, short what)
{
    if (c->h1.resp_started) {
        /* A response read until EOF ends here. */
        http_parser_execute(&c->h1.resp_p, &resp_settings, NULL, 0);
        if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0) {
            c->state = CONN_FLUSHING;
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
    c->up = UP_NONE;
    if (c->h1.retry_head != NULL && c->h1.req_state != REQ_HEADERS &&
        !(what & BEV_EVENT_TIMEOUT)) {
        /* A pooled connection the upstream had closed: the same request on a new one. */
        char *head = c->h1.retry_head;
        c->h1.retry_head = NULL;
        c->h1.up_reused = false;
        c->tries = 0;
        upstream_connect(c);
        metrics_upstream_conn(false);
        if (c->ubev != NULL && c->state != CONN_CLOSING)
            evbuffer_add(bufferevent_get_output(c->ubev), head, c->h1.retry_len);
        free(head);
        return;
    }
    if (c->h1.req_state != REQ_HEADERS) {
        /* The request went out but no response came back. */
        forward_reply(c, 502, "Bad Gateway",
                      json_pack("{s:s,s:s}", "error", "bad_gateway", "detail",
                                "the upstream closed the connection without a response"));
    }
}

/* Every target failed: 502, unless a response already began. */
static void
forward_upstream_unreachable(struct conn *c)
{
    if (c->h1.resp_started) {
        conn_close(c);
        return;
    }
    forward_reply(c, 502, "Bad Gateway",
                  json_pack("{s:s,s:s}", "error", "bad_gateway", "detail",
                            "the upstream service could not be reached"));
}

static bool
forward_upstream_answering(const struct conn *c)
{
    return c->h1.resp_started;
}

/* The last response completed, the upstream keeps the connection, no body is pending. */
static bool
forward_upstream_reusable(const struct conn *c)
{
    return c->h1.up_keepalive && c->h1.req_state != REQ_BODY && !c->h1.upgrading;
}

/* Between requests, nothing of the next one read yet. */
static bool
forward_idle(const struct conn *c)
{
    return c->h1.req_state == REQ_HEADERS && c->h1.rd.scan.bytes == 0 && !c->h1.resp_started &&
           evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0;
}

/* The client is verified: read its requests. */
static void
forward_handshake_done(struct conn *c, double secs)
{
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;

    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
        /* The client chose HTTP/2: the connection is h2.c's from now on. */
        c->mode = &h2_mode;
        h2_mode.handshake_done(c, secs);
        return;
    }
    metrics_handshake(c->gl->hs, TLS_FAIL_NONE, secs);
    /* Pipelined requests wait in the input buffer; this bounds how much of them. */
    bufferevent_setwatermark(c->cbev, EV_READ, 0, 256 * 1024);
    http_parser_init(&c->h1.req_p, HTTP_REQUEST);
    c->h1.rd.owner = c;
    c->h1.rd.max_head = c->gen->cfg.max_header_bytes;
    http_scan_init(&c->h1.rd.scan, c->gen->cfg.max_header_bytes);
    c->h1.req_p.data = &c->h1.rd;
    http_parser_init(&c->h1.resp_p, HTTP_RESPONSE);
    c->h1.resp_p.data = c;
    forward_client_pull(c);
    if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
        process_client_http(c);
    else
        conn_trim_idle(c);
}

/*
 * conn_retire(): no request is read any more; a response in flight goes out
 * (with Connection: close when its head has not begun), then the close.
 */
static void
forward_retire(struct conn *c)
{
    if (c->h1.req_state == REQ_HEADERS && !c->h1.resp_started) {
        conn_close(c); /* nothing in flight: a head begun now is never answered */
        return;
    }
    c->h1.keep_alive = false; /* on_resp_message_complete: close once written */
    c->h1.close_sent = c->h1.resp_started;
    if (c->h1.req_state == REQ_WAIT_RESPONSE)
        bufferevent_disable(c->cbev, EV_READ);
}

static void
forward_stop(struct conn *c)
{
    if (c->h1.head_timer != NULL)
        event_del(c->h1.head_timer);
}

/* The HTTP/1 part's memory goes (at the free, or when the connection becomes a relay). */
static void
forward_release(struct conn *c)
{
    free(c->h1.retry_head);
    c->h1.retry_head = NULL;
    if (c->h1.head_timer != NULL)
        event_free(c->h1.head_timer);
    c->h1.head_timer = NULL;
    http_reader_clear(&c->h1.rd);
}

const struct conn_mode forward_mode = {
    .name = "http",
    .client_tls = true,
    .retry_keeps_output = true,
    .handshake_done = forward_handshake_done,
    .client_readable = process_client_http,
    .client_writable = forward_client_writable,
    .client_eof = forward_client_eof,
    .upstream_unreachable = forward_upstream_unreachable,
    .upstream_answering = forward_upstream_answering,
    .upstream_readable = forward_upstream_readable,
    .upstream_writable = forward_upstream_writable,
    .upstream_closed = forward_upstream_closed,
    .upstream_reusable = forward_upstream_reusable,
    .idle = forward_idle,
    .reply = forward_reply,
    .stop = forward_stop,
    .release = forward_release,
    .retire = forward_retire,
};
