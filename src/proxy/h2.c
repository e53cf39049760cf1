/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.c - HTTP/2 mode: a client that negotiated "h2" by ALPN (forward.c hands
 * the connection over after the handshake) is served by an nghttp2 server
 * session fed from the client's bufferevent (nghttp2_session_mem_recv /
 * mem_send).  Each stream is one request: its fields are checked as RFC 9113
 * 8.2/8.3 require (h2_request_add in h2req.c, on top of nghttp2's own HTTP
 * messaging checks), then decided exactly as an HTTP/1.1 request (h2_decide ->
 * http_decide: normalisation, policy, identity header, forwarding headers)
 * and sent as an HTTP/1.1 request on an upstream connection of its own, from
 * the keep-alive pool or new.  The response comes back as HEADERS, DATA and,
 * when the upstream sends chunked trailers, a trailing HEADERS.
 *
 * Flow control both ways: the client's DATA is given back to its window
 * (nghttp2_session_consume) only once the upstream has taken it, so at most
 * one window per stream (and --h2-connection-window per connection) waits in
 * the proxy; a response waits in the proxy up to H2_RESP_HELD per stream and
 * --h2-max-held-bytes per connection, past which the upstream is not read
 * until the client's window lets DATA go.  A connection uses at most
 * --h2-max-upstreams upstream connections; further streams wait for one.
 *
 * Stalls: a timer per connection (h2_tick) resets with CANCEL a stream the
 * client holds up (no request DATA while it may send, or response bytes its
 * window keeps in) for --h2-stream-timeout, ends a connection with no stream
 * and no HEADERS or DATA for --idle-timeout (PINGs do not count), and closes
 * a retired connection whose streams have not finished within --drain-timeout.
 *
 * Abuse: SETTINGS_MAX_CONCURRENT_STREAMS, the header list bounded by
 * --max-header-size before it is kept, CONTINUATION frames and queued
 * SETTINGS/PING acks bounded by nghttp2's options, and rapid reset
 * (CVE-2023-44487): more than H2_RST_MAX RST_STREAMs from the client within
 * H2_RST_WINDOW seconds ends the connection with GOAWAY ENHANCE_YOUR_CALM, as
 * do more than H2_CTRL_MAX PING or SETTINGS frames (read or not) as often.
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
#include <nghttp2/nghttp2.h>

#include "lib/xfcc.h"
#include "proxy/h2.h"
#include "proxy/h2up.h"
#include "util/log.h"

/* Bytes of frames queued toward the client before nghttp2 is asked for more. */
#define H2_OUT_HIGH (128 * 1024)
/* PING and SETTINGS frames from the client per H2_RST_WINDOW seconds: past it, GOAWAY. */
#define H2_CTRL_MAX 1000

/* --- the session ---------------------------------------------------------------------------- */

struct h2_stream {
    struct h2_stream *prev, *next;
    struct h2_conn *hc;
    int32_t id;
    struct h2_request req;
    bool bad;           /* h2_request_add refused a field (req.err) */
    bool end_req;       /* the client ended its side of the stream */
    bool forwarding;    /* the request went (or goes) upstream */
    bool chunked_up;    /* its body goes upstream chunked */
    bool has_cl;        /* its body goes upstream with Content-Length cl */
    uint64_t cl, body_sent;
    bool head_method;   /* a HEAD request: the response has no body */
    size_t unconsumed;  /* DATA bytes queued upstream, not yet given back to the client */
    struct bufferevent *ubev;
    size_t target;
    int tries;
    bool up_connected;
    bool up_reused;     /* the upstream connection came from the pool */
    char *retry_head;   /* a bodyless idempotent request on a pooled connection, for a retry */
    size_t retry_len;
    http_parser resp_p;
    struct http_reader resp_rd; /* the response head, then its trailers */
    bool resp_started;  /* bytes of a response arrived */
    bool resp_head;     /* the response's HEADERS are submitted */
    bool resp_done;     /* the response is complete (or answered by the proxy) */
    bool trailers;      /* trailers wait in resp_rd */
    bool up_keepalive;
    bool deferred;      /* the data provider waits for bytes */
    int status;
    struct evbuffer *body; /* response bytes waiting for DATA frames */
    bool idempotent;    /* bodyless GET, HEAD or OPTIONS: may be retried on a new connection */
    bool queued;        /* allowed, waiting for an upstream slot (--h2-max-upstreams) */
    double queued_at;   /* since when: past --h2-stream-timeout it is refused (REFUSED_STREAM) */
    struct evbuffer *pending; /* queued: the request head and the body received so far */
    char *up2_head;     /* queued for an HTTP/2 upstream: the decided head (pending: the body) */
    size_t up2_head_len;
    bool up2_te;        /* the client asked for trailers (te: trailers): so does the upstream */
    double progress;    /* when the stream last moved: request DATA in, HEADERS or DATA out */
    bool timed_out;     /* reset for --h2-stream-timeout */
    bool up_reset;      /* reset for its upstream (relayed, or failed mid-response): not the client's doing */
    struct h2up_stream *up; /* upstream_protocol h2c/h2: the upstream's stream (h2up.c) */
};

struct h2_conn {
    struct conn *c;
    nghttp2_session *sess;
    struct h2_stream *streams;
    double rst_since;
    unsigned rst_count;
    unsigned nstreams;
    bool goaway; /* a GOAWAY NO_ERROR went out (draining, retiring) */
    int32_t goaway_last; /* the last stream it lets finish: later ones are refused */
    bool calmed; /* GOAWAY ENHANCE_YOUR_CALM for rapid reset */
    double ctrl_since; /* PING and SETTINGS frames counted since */
    unsigned ctrl_count;
    double progress;    /* the last HEADERS or DATA either way */
    double retired_at;  /* conn_retire() with streams open: they have --drain-timeout */
    struct event *timer; /* h2_tick */
    bool dequeuing;     /* h2_dequeue runs */
};

static void h2_flush(struct h2_conn *hc);
static void h2_dequeue(struct h2_conn *hc);
static void h2_resume_held(struct h2_conn *hc);
static size_t h2_held(const struct h2_conn *hc);

/* duet_requests_total of an HTTP/2 client's request, by the status it was answered with. */
static void
count_request(struct conn *c, int status)
{
    static const char *const up[] = {"http/1.1", "h2c", "h2", "h2c"};
    struct gen_listener *gl = c->gl;
    enum upstream_proto p = gl->cfg->up_proto;

    metrics_slot_count(status >= 0 && status < 600 ? &gl->h2codes[status] : NULL,
                       "duet_requests_total",
                       "listener=\"%s\",code=\"%d\",proto=\"h2\",upstream_proto=\"%s\"", gl->mlabel,
                       status, p == UPSTREAM_AUTO && gl->up_ctx != NULL ? "h2" : up[p]);
}

/* duet_h2_stream_resets_total, by why. */
static void
count_reset(struct conn *c, enum h2_reset why)
{
    static const char *const reason[H2_RESET_COUNT] = {
        [H2_RESET_CLIENT] = "client",
        [H2_RESET_CANCEL] = "cancel",
        [H2_RESET_ERROR] = "error",
        [H2_RESET_UPSTREAM] = "upstream",
        [H2_RESET_STALLED] = "stalled",
        [H2_RESET_RAPID_RESET_GOAWAY] = "rapid_reset_goaway",
        [H2_RESET_CONTROL_FLOOD_GOAWAY] = "control_flood_goaway",
        [H2_RESET_QUEUE_TIMEOUT] = "queue_timeout",
    };

    metrics_slot_count(&c->gl->h2resets[why], "duet_h2_stream_resets_total",
                       "listener=\"%s\",reason=\"%s\"", c->gl->mlabel, reason[why]);
}

static bool hop_by_hop(const char *name, const char *connection);

/* Resume a response's DATA now that bytes (or its end) are there. */
static void
stream_resume(struct h2_stream *st)
{
    if (st->deferred && st->resp_head) {
        st->deferred = false;
        nghttp2_session_resume_data(st->hc->sess, st->id);
    }
}

/* nghttp2 pulls a response's body: what the upstream (or the proxy) has, then its end. */
static ssize_t
body_read_cb(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
             nghttp2_data_source *src, void *user)
{
    struct h2_stream *st = src->ptr;
    int n = evbuffer_remove(st->body, buf, len);

    (void)sess;
    (void)id;
    (void)user;
    if (n < 0)
        n = 0;
    if (n > 0 && st->up != NULL)
        h2up_consumed(st->up, (size_t)n);
    if (n > 0)
        h2_resume_held(st->hc);
    if (evbuffer_get_length(st->body) == 0) {
        if (st->resp_done) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (st->trailers && st->resp_rd.nhdrs > 0) {
                nghttp2_nv *nv = calloc(st->resp_rd.nhdrs, sizeof(*nv));
                size_t k = 0;
                for (size_t i = 0; nv != NULL && i < st->resp_rd.nhdrs; i++) {
                    struct http_header *h = &st->resp_rd.hdrs[i];
                    if (h->name == NULL || h->value == NULL || !http_is_token(h->name))
                        continue;
                    for (char *p = h->name; *p != '\0'; p++)
                        if (*p >= 'A' && *p <= 'Z')
                            *p = (char)(*p - 'A' + 'a');
                    if (hop_by_hop(h->name, NULL))
                        continue;
                    size_t vl = strlen(h->value);
                    while (vl > 0 && (h->value[vl - 1] == ' ' || h->value[vl - 1] == '\t'))
                        h->value[--vl] = '\0';
                    nv[k].name = (uint8_t *)h->name;
                    nv[k].namelen = strlen(h->name);
                    nv[k].value = (uint8_t *)h->value;
                    nv[k].valuelen = vl;
                    k++;
                }
                if (nv != NULL && k > 0 && nghttp2_submit_trailer(st->hc->sess, st->id, nv, k) == 0)
                    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                free(nv);
            }
        } else if (n == 0) {
            st->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return n;
}

/* Submit the response's HEADERS (status and fields); its DATA follows from st->body. */
static void
stream_submit(struct h2_stream *st, int status, const nghttp2_nv *fields, size_t n)
{
    nghttp2_nv *nv = calloc(n + 1, sizeof(*nv));
    char code[8];
    nghttp2_data_provider prd;

    snprintf(code, sizeof(code), "%d", status);
    st->status = status;
    st->resp_head = true;
    prd.source.ptr = st;
    prd.read_callback = body_read_cb;
    if (nv == NULL) {
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    nv[0].name = (uint8_t *)":status";
    nv[0].namelen = 7;
    nv[0].value = (uint8_t *)code;
    nv[0].valuelen = strlen(code);
    if (n > 0)
        memcpy(&nv[1], fields, n * sizeof(*nv));
    /* A complete answer without a body ends on its HEADERS (END_STREAM). */
    if (nghttp2_submit_response(st->hc->sess, st->id, nv, n + 1,
                                st->resp_done && !st->trailers &&
                                        evbuffer_get_length(st->body) == 0
                                    ? NULL
                                    : &prd) != 0)
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    free(nv);
}

/* Let go of a stream's upstream: to the pool when it may serve another request, else closed. */
static void
stream_drop_upstream(struct h2_stream *st, bool reusable)
{
    struct conn *c = st->hc->c;

    if (st->ubev == NULL)
        return;
    bufferevent_setcb(st->ubev, NULL, NULL, NULL, NULL);
    if (!(reusable && st->up_connected &&
          upstream_pool_put_bev(c->w, c->gen, c->gl, st->target, st->ubev)))
        bufferevent_free(st->ubev);
    st->ubev = NULL;
    h2_dequeue(st->hc);
}

/* A gRPC request (content-type application/grpc, +proto, +json, ...). */
static bool
is_grpc(const struct h2_request *r)
{
    const char *ct = http_header_get(r->rd.hdrs, r->rd.nhdrs, "content-type");

    return ct != NULL && strncasecmp(ct, "application/grpc", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == '+' || ct[16] == ';');
}

/*
 * The proxy's own answer to a gRPC client is what gRPC clients understand: a
 * trailers-only response, status 200, grpc-status as gRPC maps the HTTP
 * status (403 PERMISSION_DENIED, 400 INTERNAL, 401 UNAUTHENTICATED, 404
 * UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, others UNKNOWN) and the reason
 * in grpc-message, percent-encoded as the gRPC HTTP/2 protocol says (bytes
 * outside 0x20-0x7E, and '%').  Counted as the HTTP status it stands for.
 */
static void
stream_grpc_answer(struct h2_stream *st, int status, const char *reason)
{
    static const int map[][2] = {{400, 13}, {401, 16}, {403, 7},  {404, 12},
                                 {429, 14}, {502, 14}, {503, 14}, {504, 14}};
    char msg[300], enc[900], code[4] = "2";
    size_t k = 0;
    nghttp2_nv nv[4] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status", (uint8_t *)code, 11, 0, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)enc, 12, 0, NGHTTP2_NV_FLAG_NONE},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i][0] == status)
            snprintf(code, sizeof(code), "%d", map[i][1]);
    nv[2].valuelen = strlen(code);
    snprintf(msg, sizeof(msg), "duet proxy: %s", reason);
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0' && k + 4 < sizeof(enc);
         p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%')
            k += (size_t)snprintf(enc + k, sizeof(enc) - k, "%%%02X", *p);
        else
            enc[k++] = (char)*p;
    }
    enc[k] = '\0';
    nv[3].valuelen = k;
    stream_drop_upstream(st, false);
    evbuffer_drain(st->body, evbuffer_get_length(st->body));
    st->resp_head = true;
    st->resp_done = true;
    st->trailers = false;
    st->status = 200;
    count_request(st->hc->c, status);
    if (nghttp2_submit_response(st->hc->sess, st->id, nv, 4, NULL) != 0)
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
}

/*
 * The proxy answers a stream itself (a refusal, an upstream that failed):
 * the same JSON body as HTTP/1.1's answer, then the stream ends; to a gRPC
 * client, a gRPC error with the body's "detail" (or "error") as its message.
 */
static void
stream_answer(struct h2_stream *st, int status, json_t *body)
{
    char *text;
    char len[24];
    nghttp2_nv nv[2] = {
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)len, 14, 0, NGHTTP2_NV_FLAG_NONE},
    };

    if (is_grpc(&st->req)) {
        const char *why = json_string_value(json_object_get(body, "detail"));
        if (why == NULL)
            why = json_string_value(json_object_get(body, "error"));
        stream_grpc_answer(st, status, why != NULL ? why : "refused");
        json_decref(body);
        return;
    }
    text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    stream_drop_upstream(st, false);
    evbuffer_drain(st->body, evbuffer_get_length(st->body));
    if (text != NULL)
        evbuffer_add_printf(st->body, "%s\n", text);
    free(text);
    snprintf(len, sizeof(len), "%zu", evbuffer_get_length(st->body));
    nv[1].valuelen = strlen(len);
    if (st->head_method) /* RFC 9110 9.3.2: the length a GET would have had, no DATA */
        evbuffer_drain(st->body, evbuffer_get_length(st->body));
    st->resp_done = true;
    st->trailers = false;
    count_request(st->hc->c, status);
    stream_submit(st, status, nv, 2);
}

/* A request refused before the policy: the `request_refused` line, then the answer. */
static void
stream_refuse(struct h2_stream *st, int status, const char *reason)
{
    static const char *const kinds[][2] = {
        {"400", "bad_request"},      {"408", "request_timeout"},
        {"431", "header_too_large"}, {"500", "internal_error"},
        {"501", "not_implemented"},  {"505", "http_version_not_supported"},
    };
    struct conn *c = st->hc->c;
    const char *kind = "bad_request";
    char code[8];
    json_t *body;

    snprintf(code, sizeof(code), "%d", status);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i][0], code) == 0)
            kind = kinds[i][1];
    log_event(status >= 500 && status != 501 && status != 505 ? "error" : "warn",
              "request_refused",
              json_pack("{s:s,s:s,s:o,s:i,s:s,s:s,s:i}", "listener", c->gl->cfg->name, "peer",
                        c->peer, "identity", c->id != NULL ? json_string(c->id->name) : json_null(),
                        "status", status, "reason", reason, "proto", "h2", "stream", (int)st->id));
    if (status == 431)
        body = json_pack("{s:s,s:s,s:i}", "error", kind, "detail", reason, "limit_bytes",
                         (int)c->gen->cfg.max_header_bytes);
    else
        body = json_pack("{s:s,s:s}", "error", kind, "detail", reason);
    stream_answer(st, status, body);
}

/* A malformed request (RFC 9113 8.1.1): logged, and the stream reset with PROTOCOL_ERROR. */
static void
stream_malformed(struct h2_stream *st, const char *reason)
{
    struct conn *c = st->hc->c;

    log_event("warn", "request_refused",
              json_pack("{s:s,s:s,s:o,s:s,s:s,s:i,s:s}", "listener", c->gl->cfg->name, "peer",
                        c->peer, "identity",
                        c->id != NULL ? json_string(c->id->name) : json_null(), "reason", reason,
                        "proto", "h2", "stream", (int)st->id, "h2_error", "PROTOCOL_ERROR"));
    stream_drop_upstream(st, false);
    nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
}

/* --- a stream's upstream ---------------------------------------------------------------------- */

static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);

static int
resp_begin(http_parser *p)
{
    struct h2_stream *st = ((struct http_reader *)p->data)->owner;

    http_reader_reset(&st->resp_rd);
    return 0;
}

/* Connection-specific fields of an HTTP/1.1 response never reach an HTTP/2 client. */
static bool
hop_by_hop(const char *name, const char *connection)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "te", "trailer"};
    size_t n = strlen(name);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    /* What the upstream's Connection names (a comma-separated list). */
    for (const char *p = connection; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        size_t l = strcspn(p, " \t,");
        if (l == n && strncasecmp(p, name, n) == 0)
            return true;
        p += l;
    }
    return false;
}

static int
resp_headers_complete(http_parser *p)
{
    struct http_reader *rd = p->data;
    struct h2_stream *st = rd->owner;
    const char *connection;
    nghttp2_nv *nv;
    size_t k = 0;

    if (p->status_code == 101)
        return -1; /* a switch nobody asked for (an HTTP/2 request never carries Upgrade) */
    if (p->status_code < 200)
        return 0; /* an interim response (100 Continue): not forwarded; the final one follows */
    connection = http_header_get(rd->hdrs, rd->nhdrs, "connection");
    if ((nv = calloc(rd->nhdrs + 1, sizeof(*nv))) == NULL)
        return -1;
    for (size_t i = 0; i < rd->nhdrs; i++) {
        struct http_header *h = &rd->hdrs[i];
        if (h->name == NULL)
            continue;
        if (h->value == NULL && (h->value = strdup("")) == NULL)
            continue;
        for (char *q = h->name; *q != '\0'; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        if (!http_is_token(h->name) || hop_by_hop(h->name, connection))
            continue;
        size_t vl = strlen(h->value);
        while (vl > 0 && (h->value[vl - 1] == ' ' || h->value[vl - 1] == '\t'))
            h->value[--vl] = '\0';
        nv[k].name = (uint8_t *)h->name;
        nv[k].namelen = strlen(h->name);
        nv[k].value = (uint8_t *)h->value;
        nv[k].valuelen = vl;
        k++;
    }
    count_request(st->hc->c, (int)p->status_code);
    stream_submit(st, (int)p->status_code, nv, k);
    free(nv);
    http_reader_reset(rd); /* trailers, if any, are collected afresh */
    /* RFC 9112 6.3: a response to HEAD, and 204/304, carry no body. */
    return st->head_method ? 1 : 0;
}

static int
resp_body(http_parser *p, const char *at, size_t n)
{
    struct h2_stream *st = ((struct http_reader *)p->data)->owner;

    if (evbuffer_get_length(st->body) == 0)
        st->progress = now_mono(); /* the client's window is judged from now */
    evbuffer_add(st->body, at, n);
    return 0;
}

static int
resp_complete(http_parser *p)
{
    struct http_reader *rd = p->data;
    struct h2_stream *st = rd->owner;

    if (p->status_code < 200)
        return 0;
    st->resp_done = true;
    st->trailers = rd->nhdrs > 0;
    st->up_keepalive = http_should_keep_alive(p) != 0;
    free(st->retry_head);
    st->retry_head = NULL;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = resp_begin,
    .on_header_field = http_reader_on_header_field,
    .on_header_value = http_reader_on_header_value,
    .on_headers_complete = resp_headers_complete,
    .on_body = resp_body,
    .on_message_complete = resp_complete,
};

static void
up_log_error(struct h2_stream *st, const char *why)
{
    struct conn *c = st->hc->c;

    log_event("error", "upstream_error",
              json_pack("{s:s,s:s,s:s,s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                        "upstream", c->gl->cfg->targets[st->target].text, "error", why, "proto",
                        "h2"));
}

/* The upstream failed the stream: 502 when nothing of a response went out, else a reset. */
static void
stream_upstream_gone(struct h2_stream *st, int status, const char *detail)
{
    if (st->resp_head) {
        stream_drop_upstream(st, false);
        count_reset(st->hc->c, H2_RESET_UPSTREAM);
        st->up_reset = true;
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    stream_answer(st, status,
                  json_pack("{s:s,s:s}", "error", status == 504 ? "gateway_timeout" : "bad_gateway",
                            "detail", detail));
}

/* A new connection toward the next target; what was queued for the last one goes with it. */
static void
stream_connect(struct h2_stream *st, struct evbuffer *pending)
{
    struct conn *c = st->hc->c;
    const struct proxy_cfg *cfg = &c->gen->cfg;
    const struct listener_cfg *l = c->gl->cfg;
    struct timeval ct = {cfg->connect_timeout_ms / 1000, (cfg->connect_timeout_ms % 1000) * 1000};

    st->target = upstream_pick(c->gl);
    st->up_connected = false;
    st->up_reused = false;
    st->ubev = upstream_bev_new(c->w, c->gl, st->target);
    metrics_upstream_conn(false);
    if (st->ubev == NULL) {
        stream_upstream_gone(st, 502, "out of memory");
        return;
    }
    if (pending != NULL)
        evbuffer_add_buffer(bufferevent_get_output(st->ubev), pending);
    bufferevent_setcb(st->ubev, up_read_cb, up_write_cb, up_event_cb, st);
    bufferevent_set_timeouts(st->ubev, &ct, &ct);
    if (bufferevent_socket_connect(st->ubev, (const struct sockaddr *)&l->targets[st->target].ss,
                                   (int)l->targets[st->target].len) != 0) {
        upstream_target_failed(c->gl, st->target, c->peer, "cannot connect");
        stream_upstream_gone(st, 502, "the upstream service could not be reached");
        return;
    }
    bufferevent_enable(st->ubev, EV_READ | EV_WRITE);
}

static void
up_read_cb(struct bufferevent *bev, void *arg)
{
    struct h2_stream *st = arg;
    struct h2_conn *hc = st->hc;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (evbuffer_get_length(in) > 0 && st->ubev != NULL) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (st->resp_done) {
            /* Bytes after the response: that connection is not reused. */
            st->up_keepalive = false;
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        st->resp_started = true;
        n = http_parser_execute(&st->resp_p, &resp_settings, v.iov_base, v.iov_len);
        e = HTTP_PARSER_ERRNO(&st->resp_p);
        if (e == HPE_PAUSED) {
            http_parser_pause(&st->resp_p, 0);
            evbuffer_drain(in, n);
            continue;
        }
        if (e != HPE_OK || st->resp_rd.too_large) {
            up_log_error(st, st->resp_rd.too_large ? "the response head is too large"
                                                   : http_errno_description(e));
            stream_upstream_gone(st, 502, "the upstream sent an invalid response");
            h2_flush(hc);
            return;
        }
        evbuffer_drain(in, n);
        hc->c->down_bytes += n;
    }
    if (st->ubev != NULL && !st->resp_done &&
        (evbuffer_get_length(st->body) >= H2_RESP_HELD ||
         h2_held(hc) >= (size_t)hc->c->gen->cfg.h2_max_held))
        bufferevent_disable(st->ubev, EV_READ); /* the client's window is the limit */
    stream_resume(st);
    h2_flush(hc);
}

/* The upstream took the request bytes queued: the client may send as many again. */
static void
up_write_cb(struct bufferevent *bev, void *arg)
{
    struct h2_stream *st = arg;
    struct h2_conn *hc = st->hc;

    (void)bev;
    if (st->unconsumed > 0) {
        nghttp2_session_consume(hc->sess, st->id, st->unconsumed);
        st->unconsumed = 0;
        h2_flush(hc);
    }
}

static void
up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct h2_stream *st = arg;
    struct h2_conn *hc = st->hc;
    struct conn *c = hc->c;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                               (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
        st->up_connected = true;
        if (!c->gl->cfg->targets[st->target].is_unix) {
            int one = 1;
            setsockopt(bufferevent_getfd(st->ubev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bufferevent_set_timeouts(st->ubev, &idle, NULL);
        return;
    }
    if (st->up_connected && (what & BEV_EVENT_TIMEOUT) &&
        !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
        !st->end_req && !st->resp_started) {
        /* The client is still sending the body: the upstream's silence is not idleness. */
        bufferevent_enable(st->ubev, EV_READ);
        return;
    }
    if (!st->up_connected) {
        char why[200];
        struct evbuffer *saved = evbuffer_new();
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "connect timed out after %d ms",
                     c->gen->cfg.connect_timeout_ms);
        else
            snprintf(why, sizeof(why), "%s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        upstream_target_failed(c->gl, st->target, c->peer, why);
        if (saved != NULL)
            evbuffer_add_buffer(saved, bufferevent_get_output(st->ubev));
        stream_drop_upstream(st, false);
        if (saved != NULL && ++st->tries < (int)c->gl->cfg->ntargets)
            stream_connect(st, saved);
        else
            stream_upstream_gone(st, 502, "the upstream service could not be reached");
        if (saved != NULL)
            evbuffer_free(saved);
        h2_flush(hc);
        return;
    }
    if (st->resp_started && !st->resp_done) {
        /* A response read until the connection ends ends here. */
        http_parser_execute(&st->resp_p, &resp_settings, NULL, 0);
    }
    if (st->resp_done) {
        st->up_keepalive = false;
        stream_drop_upstream(st, false);
    } else if (!st->resp_started && st->retry_head != NULL && !(what & BEV_EVENT_TIMEOUT)) {
        /* A pooled connection the upstream had closed: the same request on a new one. */
        struct evbuffer *again = evbuffer_new();
        stream_drop_upstream(st, false);
        if (again != NULL)
            evbuffer_add(again, st->retry_head, st->retry_len);
        free(st->retry_head);
        st->retry_head = NULL;
        st->tries = 0;
        stream_connect(st, again);
        if (again != NULL)
            evbuffer_free(again);
    } else {
        const char *why = (what & BEV_EVENT_TIMEOUT)
                              ? "the upstream sent no response within the idle timeout"
                              : "the upstream closed the connection without a response";
        up_log_error(st, why);
        stream_upstream_gone(st, (what & BEV_EVENT_TIMEOUT) ? 504 : 502, why);
    }
    stream_resume(st);
    h2_flush(hc);
}

/* --- a stream's HTTP/2 upstream (h2up.c) ------------------------------------------------------- */

/* The upstream's response head: HEADERS now; a trailers-only response ends the stream there. */
static void
up2_head(void *arg, int status, const nghttp2_nv *nv, size_t n, bool end)
{
    struct h2_stream *st = arg;

    st->resp_started = true;
    if (!end) {
        count_request(st->hc->c, status);
        stream_submit(st, status, nv, n);
    } else {
        nghttp2_nv *all = calloc(n + 1, sizeof(*all));
        char code[8];
        snprintf(code, sizeof(code), "%d", status);
        count_request(st->hc->c, status);
        st->resp_head = st->resp_done = true;
        st->status = status;
        if (all != NULL) {
            all[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, strlen(code),
                                  NGHTTP2_NV_FLAG_NONE};
            if (n > 0)
                memcpy(&all[1], nv, n * sizeof(*nv));
        }
        if (all == NULL || nghttp2_submit_response(st->hc->sess, st->id, all, n + 1, NULL) != 0)
            nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                      NGHTTP2_INTERNAL_ERROR);
        free(all);
    }
    h2_flush(st->hc);
}

static void
up2_data(void *arg, const uint8_t *p, size_t n)
{
    struct h2_stream *st = arg;

    if (evbuffer_get_length(st->body) == 0)
        st->progress = now_mono(); /* the client's window is judged from now */
    evbuffer_add(st->body, p, n);
    st->hc->c->down_bytes += n;
    stream_resume(st);
    h2_flush(st->hc);
}

/* The upstream's trailers (grpc-status, grpc-message): sent after the last DATA. */
static void
up2_trailers(void *arg, const nghttp2_nv *nv, size_t n)
{
    struct h2_stream *st = arg;

    http_reader_reset(&st->resp_rd);
    for (size_t i = 0; i < n; i++)
        if (h2_reader_push(&st->resp_rd, (const char *)nv[i].name, nv[i].namelen,
                           (const char *)nv[i].value, nv[i].valuelen) != 0)
            break;
    st->trailers = st->resp_rd.nhdrs > 0;
}

static void
up2_end(void *arg)
{
    struct h2_stream *st = arg;

    st->resp_done = true;
    stream_resume(st);
    h2_flush(st->hc);
}

/*
 * The upstream stream ended without a whole response: its RST_STREAM reaches
 * the client as RST_STREAM with the same code (CANCEL stays CANCEL, which a
 * gRPC client reads as CANCELLED); a stream it refused is refused
 * (REFUSED_STREAM: the client may retry it); a failed connection or a
 * malformed response is a 502, or a reset once the response began.
 */
static void
up2_reset(void *arg, uint32_t code, const char *why)
{
    struct h2_stream *st = arg;

    st->up = NULL; /* a slot of --h2-max-upstreams is free: h2_dequeue below */
    if (why == NULL || code == NGHTTP2_REFUSED_STREAM) {
        count_reset(st->hc->c, H2_RESET_UPSTREAM);
        st->up_reset = true;
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  code <= NGHTTP2_HTTP_1_1_REQUIRED ? code
                                                                    : NGHTTP2_INTERNAL_ERROR);
    } else {
        up_log_error(st, why);
        stream_upstream_gone(st, 502, why);
    }
    h2_dequeue(st->hc);
    h2_flush(st->hc);
}

/* The upstream took n request bytes: the client's windows open by as many. */
static void
up2_taken(void *arg, size_t n)
{
    struct h2_stream *st = arg;

    if (n > st->unconsumed)
        n = st->unconsumed;
    st->unconsumed -= n;
    nghttp2_session_consume(st->hc->sess, st->id, n);
    h2_flush(st->hc);
}

static const struct h2up_hooks up2_hooks = {
    .head = up2_head,
    .data = up2_data,
    .trailers = up2_trailers,
    .end = up2_end,
    .reset = up2_reset,
    .taken = up2_taken,
};

static unsigned h2_upstreams(const struct h2_conn *hc);

/*
 * The stream's upstream stream opens on an HTTP/2 upstream: head, then the
 * body that waited in pending (if it was queued), then its end if the client
 * ended.
 */
static void
stream_start_h2up(struct h2_stream *st, const char *head, size_t head_len, struct evbuffer *pending)
{
    struct conn *c = st->hc->c;
    size_t n = pending != NULL ? evbuffer_get_length(pending) : 0;
    struct duet_err err;

    st->up = h2up_open(c->w, c->gen, c->gl, c->gl->up_ctx != NULL, head, head_len, st->up2_te,
                       st->end_req && n == 0, &up2_hooks, st, &err);
    if (st->up == NULL) {
        up_log_error(st, err.msg);
        stream_upstream_gone(st, 502, "the upstream service could not be reached");
        return;
    }
    c->up_bytes += head_len;
    if (n > 0) {
        const uint8_t *p = evbuffer_pullup(pending, -1);
        if (p == NULL || h2up_data(st->up, p, n) != 0) {
            stream_refuse(st, 500, "out of memory");
            return;
        }
        c->up_bytes += n;
        if (st->end_req)
            h2up_end(st->up);
    }
}

/*
 * upstream_protocol h2c, h2 or auto: the stream goes on an HTTP/2 upstream
 * (false: HTTP/1.1), or waits for one of the connection's --h2-max-upstreams
 * upstream streams, its head kept and its body collecting in pending.
 */
static bool
stream_forward_h2up(struct h2_stream *st, struct http_decision *d)
{
    struct conn *c = st->hc->c;

    if (c->gl->cfg->up_proto == UPSTREAM_HTTP1)
        return false;
    st->forwarding = true;
    st->up2_te = http_header_get(st->req.rd.hdrs, st->req.rd.nhdrs, "te") != NULL;
    if (h2_upstreams(st->hc) >= (unsigned)c->gen->cfg.h2_max_upstreams) {
        if ((st->up2_head = malloc(d->head_len)) == NULL ||
            (st->pending = evbuffer_new()) == NULL) {
            stream_refuse(st, 500, "out of memory");
            return true;
        }
        memcpy(st->up2_head, d->head, d->head_len);
        st->up2_head_len = d->head_len;
        st->queued = true;
        st->queued_at = now_mono();
        return true;
    }
    stream_start_h2up(st, d->head, d->head_len, NULL);
    return true;
}

/* Upstream connections the client connection holds now (--h2-max-upstreams). */
static unsigned
h2_upstreams(const struct h2_conn *hc)
{
    unsigned n = 0;

    for (const struct h2_stream *s = hc->streams; s != NULL; s = s->next)
        n += s->ubev != NULL || s->up != NULL;
    return n;
}

/* Response bytes held for the client connection, all streams together (--h2-max-held-bytes). */
static size_t
h2_held(const struct h2_conn *hc)
{
    size_t n = 0;

    for (const struct h2_stream *s = hc->streams; s != NULL; s = s->next)
        n += evbuffer_get_length(s->body);
    return n;
}

/*
 * Response bytes went out: upstreams paused for the stream's H2_RESP_HELD, or
 * for the connection's --h2-max-held-bytes, are read again once their stream
 * holds half of it and the connection half of its budget.
 */
static void
h2_resume_held(struct h2_conn *hc)
{
    if (h2_held(hc) >= (size_t)hc->c->gen->cfg.h2_max_held / 2)
        return;
    for (struct h2_stream *s = hc->streams; s != NULL; s = s->next) {
        if (s->ubev != NULL && !s->resp_done && evbuffer_get_length(s->body) < H2_RESP_HELD / 2 &&
            !(bufferevent_get_enabled(s->ubev) & EV_READ))
            bufferevent_enable(s->ubev, EV_READ);
    }
}

/*
 * The stream takes an upstream connection, from the pool or new, and req
 * (its request head, then the body received while it waited) goes on it.
 */
static void
stream_upstream_start(struct h2_stream *st, struct evbuffer *req)
{
    struct conn *c = st->hc->c;
    struct timeval idle = {c->gen->cfg.idle_timeout_ms / 1000,
                           (c->gen->cfg.idle_timeout_ms % 1000) * 1000};
    size_t len = evbuffer_get_length(req);

    if (!c->gl->cfg->proxy_protocol &&
        upstream_pool_take_bev(c->w, c->gen, c->gl, &st->ubev, &st->target)) {
        st->up_connected = true;
        st->up_reused = true;
        metrics_upstream_conn(true);
        bufferevent_setcb(st->ubev, up_read_cb, up_write_cb, up_event_cb, st);
        bufferevent_set_timeouts(st->ubev, &idle, NULL);
        bufferevent_enable(st->ubev, EV_READ | EV_WRITE);
        if (st->idempotent && (st->retry_head = malloc(len)) != NULL) {
            evbuffer_copyout(req, st->retry_head, len);
            st->retry_len = len;
        }
    } else {
        st->tries = 0;
        stream_connect(st, NULL);
        if (st->ubev == NULL)
            return;
    }
    evbuffer_add_buffer(bufferevent_get_output(st->ubev), req);
    c->up_bytes += len;
    if (st->end_req && st->chunked_up)
        evbuffer_add(bufferevent_get_output(st->ubev), "0\r\n\r\n", 5);
}

/*
 * The connection sent GOAWAY (retired, draining): streams still waiting for
 * an upstream slot never reached the upstream, and none goes now: each is
 * refused with REFUSED_STREAM, which a client may retry on a new connection,
 * where the policy decides it again (RFC 9113 8.7).
 */
static void
h2_refuse_queued(struct h2_conn *hc)
{
    for (struct h2_stream *s = hc->streams; s != NULL; s = s->next) {
        if (!s->queued)
            continue;
        s->queued = false;
        s->up_reset = true; /* not the client's doing */
        nghttp2_submit_rst_stream(hc->sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
    }
}

/*
 * An upstream slot is free: the streams waiting for one (--h2-max-upstreams)
 * take it, the longest waiting first.
 */
static void
h2_dequeue(struct h2_conn *hc)
{
    if (hc->dequeuing || hc->c->state >= CONN_CLOSING)
        return;
    if (hc->goaway) {
        h2_refuse_queued(hc);
        return;
    }
    hc->dequeuing = true; /* a start that fails drops its upstream, which comes back here */
    while (h2_upstreams(hc) < (unsigned)hc->c->gen->cfg.h2_max_upstreams) {
        struct h2_stream *next = NULL;
        struct evbuffer *req;
        for (struct h2_stream *s = hc->streams; s != NULL; s = s->next)
            if (s->queued && (next == NULL || s->id < next->id))
                next = s;
        if (next == NULL)
            break;
        next->queued = false;
        req = next->pending;
        next->pending = NULL;
        if (next->up2_head != NULL) {
            stream_start_h2up(next, next->up2_head, next->up2_head_len, req);
            free(next->up2_head);
            next->up2_head = NULL;
        } else {
            stream_upstream_start(next, req);
        }
        evbuffer_free(req);
    }
    hc->dequeuing = false;
}

/* The stream's request was allowed: its head goes to an upstream connection, or waits for one. */
static void
stream_forward(struct h2_stream *st, struct http_decision *d)
{
    struct conn *c = st->hc->c;
    struct evbuffer *req;

    if (stream_forward_h2up(st, d))
        return;
    req = evbuffer_new();
    st->forwarding = true;
    st->chunked_up = d->req.framing == HTTP_BODY_CHUNKED;
    st->has_cl = d->req.framing == HTTP_BODY_LENGTH;
    st->cl = d->req.content_length;
    st->head_method = strcmp(d->method, "HEAD") == 0;
    st->idempotent = d->req.framing == HTTP_BODY_NONE &&
                     (strcmp(d->method, "GET") == 0 || strcmp(d->method, "HEAD") == 0 ||
                      strcmp(d->method, "OPTIONS") == 0);
    http_parser_init(&st->resp_p, HTTP_RESPONSE);
    st->resp_rd.owner = st;
    st->resp_rd.max_head = c->gen->cfg.max_header_bytes;
    st->resp_p.data = &st->resp_rd;
    if (req == NULL || evbuffer_add(req, d->head, d->head_len) != 0) {
        if (req != NULL)
            evbuffer_free(req);
        stream_refuse(st, 500, "out of memory");
        return;
    }
    if (h2_upstreams(st->hc) >= (unsigned)c->gen->cfg.h2_max_upstreams) {
        st->queued = true; /* its body collects in pending, bounded by its window */
        st->queued_at = now_mono();
        st->pending = req;
        return;
    }
    stream_upstream_start(st, req);
    evbuffer_free(req);
}

/* The stream's header block is complete: decide it, then forward or answer. */
static void
stream_headers_done(struct h2_stream *st, bool end_stream)
{
    struct conn *c = st->hc->c;
    struct h2_context ctx;
    struct http_decision d;
    struct duet_err err;

    st->end_req = end_stream;
    st->head_method = st->req.method != NULL && strcmp(st->req.method, "HEAD") == 0;
    if (st->hc->goaway && st->id > st->hc->goaway_last) {
        /*
         * Retired (revoked on a reload or by OCSP, past its lifetime) or
         * draining: nothing new goes upstream, even from a client that does
         * not read the GOAWAY waiting behind its unread data.
         */
        nghttp2_submit_rst_stream(st->hc->sess, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_REFUSED_STREAM);
        return;
    }
    if (st->bad) {
        if (st->req.err.kind == DUET_ERR_NOMEM)
            stream_refuse(st, 500, "out of memory");
        else
            stream_malformed(st, st->req.err.msg);
        return;
    }
    if (st->req.too_large) {
        char why[96];
        snprintf(why, sizeof(why), "the request's header list is larger than %zu bytes",
                 c->gen->cfg.max_header_bytes);
        stream_refuse(st, 431, why);
        return;
    }
    if (c->id != NULL && c->id->xfcc == NULL && c->xfcc == NULL)
        c->xfcc = xfcc_element(c->id);
    memset(&ctx, 0, sizeof(ctx));
    ctx.l = c->gl->cfg;
    ctx.id = c->id;
    ctx.id_xfcc = c->id != NULL && c->id->xfcc != NULL ? c->id->xfcc : c->xfcc;
    ctx.client_ip = c->peer_ip;
    ctx.body_follows = !end_stream;
    if (h2_decide(&st->req, &ctx, &d, &err) != 0) {
        if (err.kind == DUET_ERR_NOMEM)
            stream_refuse(st, 500, "out of memory");
        else
            stream_malformed(st, err.msg);
        http_decision_clear(&d);
        return;
    }
    if (d.decided)
        conn_log_authz(c, &d.d, d.method, d.req.host, d.target);
    if (d.status == 403 && is_grpc(&st->req)) {
        char why[200];
        snprintf(why, sizeof(why), "denied by rule %s", d.d.rule);
        stream_grpc_answer(st, 403, why);
    } else if (d.status == 403) {
        stream_answer(st, 403,
                      json_pack("{s:s,s:s,s:o}", "error", "forbidden", "rule", d.d.rule,
                                "identity",
                                c->id != NULL ? json_string(c->id->name) : json_null()));
    } else if (d.status != 0) {
        stream_refuse(st, d.status, d.err.msg);
    } else {
        stream_forward(st, &d);
    }
    http_decision_clear(&d);
}

/* --- nghttp2's callbacks ------------------------------------------------------------------ */

static int
on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if ((st = calloc(1, sizeof(*st))) == NULL || (st->body = evbuffer_new()) == NULL) {
        free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->hc = hc;
    st->id = frame->hd.stream_id;
    st->progress = now_mono();
    st->req.max_bytes = hc->c->gen->cfg.max_header_bytes;
    st->next = hc->streams;
    if (hc->streams != NULL)
        hc->streams->prev = st;
    hc->streams = st;
    hc->nstreams++;
    metrics_h2_stream(1);
    metrics_slot_count(&hc->c->gl->h2streams, "duet_h2_streams_total", "listener=\"%s\"",
                       hc->c->gl->mlabel);
    nghttp2_session_set_stream_user_data(sess, st->id, st);
    return 0;
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    struct h2_stream *st;

    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        (st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id)) == NULL)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* the client's trailers: not forwarded, as in HTTP/1.1 */
    /* A refused field: the rest of the block is read (HPACK's state), the stream reset after. */
    if (!st->bad && h2_request_add(&st->req, name, nlen, value, vlen) != 0)
        st->bad = true;
    return 0;
}

/* The client ended its side: the chunked body's end, if it was chunked. */
static void
stream_request_end(struct h2_stream *st)
{
    if ((st->ubev != NULL || st->queued) && st->has_cl && st->body_sent != st->cl) {
        stream_malformed(st, "the request's DATA ended short of its content-length "
                             "(RFC 9113 8.1.1)");
        return;
    }
    st->end_req = true;
    if (st->up != NULL)
        h2up_end(st->up);
    if (st->ubev != NULL && st->chunked_up)
        evbuffer_add(bufferevent_get_output(st->ubev), "0\r\n\r\n", 5);
}

/*
 * One more of what the client may send only so often (RST_STREAMs, PING or
 * SETTINGS frames): *count within H2_RST_WINDOW seconds from *since.  True
 * when this one goes past max, the first time only.
 */
static bool
over_budget(struct h2_conn *hc, double *since, unsigned *count, unsigned max)
{
    double now = now_mono();

    if (now - *since > H2_RST_WINDOW) {
        *since = now;
        *count = 0;
    }
    if (++*count <= max || hc->calmed)
        return false; /* (once GOAWAY went out, what is still read is not logged again) */
    hc->calmed = true;
    return true;
}

/* The client abused the connection: `h2_abuse` with why, counted, then GOAWAY ENHANCE_YOUR_CALM. */
static int
calm_down(struct h2_conn *hc, const char *why, enum h2_reset metric_reason)
{
    log_event("warn", "h2_abuse",
              json_pack("{s:s,s:s,s:o,s:s,s:s}", "listener", hc->c->gl->cfg->name, "peer",
                        hc->c->peer, "identity",
                        hc->c->id != NULL ? json_string(hc->c->id->name) : json_null(), "reason",
                        why, "h2_error", "ENHANCE_YOUR_CALM"));
    count_reset(hc->c, metric_reason);
    return nghttp2_session_terminate_session(hc->sess, NGHTTP2_ENHANCE_YOUR_CALM);
}

/*
 * Rapid reset (CVE-2023-44487): the client's RST_STREAMs, and the proxy's own
 * error resets of its streams (CVE-2025-8671), counted per window.
 */
static int
count_client_reset(struct h2_conn *hc)
{
    char why[120];

    if (!over_budget(hc, &hc->rst_since, &hc->rst_count, H2_RST_MAX))
        return 0;
    snprintf(why, sizeof(why), "more than %d streams reset within %d seconds (rapid reset)",
             H2_RST_MAX, H2_RST_WINDOW);
    return calm_down(hc, why, H2_RESET_RAPID_RESET_GOAWAY);
}

/*
 * PING and SETTINGS floods: nghttp2 bounds the acknowledgements queued
 * unsent; a client that reads them is held to H2_CTRL_MAX frames per
 * H2_RST_WINDOW seconds, past which GOAWAY ENHANCE_YOUR_CALM.
 */
static int
count_control(struct h2_conn *hc, const char *kind)
{
    char why[120];

    if (!over_budget(hc, &hc->ctrl_since, &hc->ctrl_count, H2_CTRL_MAX))
        return 0;
    snprintf(why, sizeof(why), "%s flood: more than %d PING or SETTINGS frames within %d seconds",
             kind, H2_CTRL_MAX, H2_RST_WINDOW);
    return calm_down(hc, why, H2_RESET_CONTROL_FLOOD_GOAWAY);
}

static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);

    if (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) {
        hc->progress = now_mono(); /* what keeps a connection from being idle */
        if (st != NULL)
            st->progress = hc->progress;
    }
    switch (frame->hd.type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            return 0;
        return count_control(hc, frame->hd.type == NGHTTP2_PING ? "PING" : "SETTINGS");
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            stream_headers_done(st, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
        else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            stream_request_end(st);
        return 0;
    case NGHTTP2_DATA:
        if (st != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            stream_request_end(st);
        return 0;
    case NGHTTP2_RST_STREAM:
        count_reset(hc->c, H2_RESET_CLIENT);
        return count_client_reset(hc);
    default:
        return 0;
    }
}

static int
on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(sess, id);
    struct evbuffer *out;

    (void)flags;
    if (len == 0)
        return 0; /* an empty chunk would end a chunked body upstream */
    if (st != NULL && st->up != NULL) {
        if (h2up_data(st->up, data, len) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->progress = now_mono();
        st->unconsumed += len;
        hc->c->up_bytes += len;
        return 0;
    }
    if (st == NULL || (st->ubev == NULL && !st->queued)) {
        /* Nobody takes these bytes (the stream was answered): the windows open again now. */
        nghttp2_session_consume(sess, id, len);
        return 0;
    }
    if (st->has_cl && (len > st->cl || st->body_sent > st->cl - len)) {
        /*
         * More than the content-length the upstream frames the body by: the
         * rest would reach it as another request.  nghttp2 checks this too.
         */
        nghttp2_session_consume(sess, id, len);
        stream_malformed(st, "DATA beyond the request's content-length (RFC 9113 8.1.1)");
        return 0;
    }
    st->body_sent += len;
    st->progress = now_mono();
    out = st->queued ? st->pending : bufferevent_get_output(st->ubev);
    if (st->chunked_up)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (st->chunked_up)
        evbuffer_add(out, "\r\n", 2);
    st->unconsumed += len;
    if (!st->queued)
        hc->c->up_bytes += len; /* (a queued body is counted when it leaves) */
    return 0;
}

static int
on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(sess, id);
    bool had_up;

    if (st == NULL)
        return 0;
    if (code != NGHTTP2_NO_ERROR)
        count_reset(hc->c, code == NGHTTP2_CANCEL ? H2_RESET_CANCEL : H2_RESET_ERROR);
    if (st->unconsumed > 0)
        nghttp2_session_consume_connection(sess, st->unconsumed);
    had_up = st->up != NULL;
    if (st->up != NULL)
        h2up_cancel(st->up, NGHTTP2_CANCEL);
    st->up = NULL;
    stream_drop_upstream(st, st->resp_done && st->up_keepalive && st->end_req &&
                                 st->ubev != NULL &&
                                 evbuffer_get_length(bufferevent_get_output(st->ubev)) == 0);
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        hc->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    hc->nstreams--;
    metrics_h2_stream(-1);
    h2_request_clear(&st->req);
    http_reader_clear(&st->resp_rd);
    evbuffer_free(st->body);
    if (st->pending != NULL)
        evbuffer_free(st->pending);
    free(st->up2_head);
    free(st->retry_head);
    free(st);
    if (had_up)
        h2_dequeue(hc); /* its upstream stream was one of --h2-max-upstreams */
    h2_resume_held(hc); /* what it held no longer counts against the connection's budget */
    return 0;
}

/*
 * The response is complete while the client is still sending its request (a
 * refusal, an upstream that answered early): RST_STREAM NO_ERROR asks it to
 * stop (RFC 9113 8.1), so a refused upload is not sent to the end.
 */
static int
on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
    struct h2_conn *hc = user;
    struct h2_stream *st;

    /*
     * A stream the proxy resets frees a concurrency slot as the client's own
     * RST_STREAM does: a client making the proxy reset its streams (malformed
     * requests, bodies beyond their length) is held to the same budget.  An
     * upstream's reset passed on, or an upstream failing mid-response, is not
     * the client's doing and does not count.
     */
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR) {
        st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
        return st != NULL && st->up_reset ? 0 : count_client_reset(hc);
    }
    if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) {
        hc->progress = now_mono();
        if ((st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id)) != NULL)
            st->progress = hc->progress;
    }
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id)) == NULL ||
        st->end_req)
        return 0;
    stream_drop_upstream(st, false);
    nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* nghttp2's own refusals (malformed frames and fields, its limits): one log line each. */
static int
on_error(nghttp2_session *sess, int code, const char *msg, size_t len, void *user)
{
    struct h2_conn *hc = user;

    (void)sess;
    log_event("warn", "h2_error",
              json_pack("{s:s,s:s,s:o,s:s,s:s%}", "listener", hc->c->gl->cfg->name, "peer",
                        hc->c->peer, "identity",
                        hc->c->id != NULL ? json_string(hc->c->id->name) : json_null(), "error",
                        nghttp2_strerror(code), "detail", msg, len));
    return 0;
}

/* --- the connection --------------------------------------------------------------------------- */

/*
 * Queue what nghttp2 has for the client, up to H2_OUT_HIGH (the rest when
 * the client has taken it); when the session is over (GOAWAY sent, no
 * stream left), close once written.
 */
static void
h2_flush(struct h2_conn *hc)
{
    struct conn *c = hc->c;
    struct evbuffer *out = bufferevent_get_output(c->cbev);

    if (c->state >= CONN_CLOSING)
        return;
    if (c->w->draining && !hc->goaway) {
        /* SIGTERM: no new stream; those in flight finish, then the connection ends. */
        hc->goaway = true;
        hc->goaway_last = nghttp2_session_get_last_proc_stream_id(hc->sess);
        nghttp2_submit_goaway(hc->sess, NGHTTP2_FLAG_NONE, hc->goaway_last, NGHTTP2_NO_ERROR,
                              NULL, 0);
        h2_refuse_queued(hc);
    }
    while (evbuffer_get_length(out) < H2_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(hc->sess, &data);
        if (n < 0) {
            log_msg("error", "h2_error", "%s", nghttp2_strerror((int)n));
            conn_close(c);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
        c->down_bytes += (uint64_t)n;
    }
    if (!nghttp2_session_want_read(hc->sess) && !nghttp2_session_want_write(hc->sess)) {
        if (evbuffer_get_length(out) == 0) {
            conn_close(c);
            return;
        }
        c->state = CONN_FLUSHING;
        bufferevent_disable(c->cbev, EV_READ);
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(c->cbev, EV_WRITE);
}

/*
 * Why the client holds the stream up, or NULL: it may send more of the request
 * body (its windows are open) and does not, or response bytes wait that its
 * window (or its not reading) keeps in.  A stream waiting on its upstream, or
 * on the proxy's own windows, is not held up by the client; nor is one whose
 * HTTP/2 upstream began its response while the client sends nothing: both
 * sides of a bidirectional stream (a gRPC watch) may rest for a long time.
 */
static const char *
stream_held_up(const struct h2_stream *st)
{
    nghttp2_session *sess = st->hc->sess;

    if (st->timed_out)
        return NULL;
    if (st->resp_head && evbuffer_get_length(st->body) > 0)
        return "the client's flow-control window (or its reading) let no response data out";
    if (!st->end_req && (st->ubev != NULL || (st->up != NULL && !st->resp_head)) &&
        nghttp2_session_get_stream_local_window_size(sess, st->id) > 0 &&
        nghttp2_session_get_local_window_size(sess) > 0)
        return "the client sent no more of its request body";
    if (!st->forwarding && !st->resp_head)
        return "the client did not finish the request's header block";
    return NULL;
}

/* End the connection: GOAWAY with code, then the close once it is written. */
static void
h2_end(struct h2_conn *hc, uint32_t code)
{
    struct conn *c = hc->c;

    nghttp2_session_terminate_session(hc->sess, code);
    h2_flush(hc);
    if (c->state == CONN_OPEN) {
        c->state = CONN_FLUSHING;
        bufferevent_disable(c->cbev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
            conn_close(c);
    }
}

static void h2_tick_arm(struct h2_conn *hc);

/*
 * The connection's timer: streams the client has held up for
 * --h2-stream-timeout are reset with CANCEL and their upstream dropped; a
 * connection without streams and without HEADERS or DATA either way for
 * --idle-timeout ends (PING, SETTINGS and WINDOW_UPDATE do not keep it);
 * a retired connection whose streams have not finished within --drain-timeout
 * is closed with them open.
 */
static void
h2_tick(evutil_socket_t fd, short what, void *arg)
{
    struct h2_conn *hc = arg;
    struct conn *c = hc->c;
    const struct proxy_cfg *cfg = &c->gen->cfg;
    double now = now_mono();
    bool reset = false;

    (void)fd;
    (void)what;
    if (c->state >= CONN_CLOSING)
        return;
    if (hc->retired_at > 0 && now - hc->retired_at >= cfg->drain_timeout_ms / 1000.0) {
        char why[160];
        unsigned open = 0;
        for (struct h2_stream *st = hc->streams; st != NULL; st = st->next)
            open++;
        snprintf(why, sizeof(why),
                 "the retired connection's streams did not finish within %d ms (--drain-timeout)",
                 cfg->drain_timeout_ms);
        log_event("warn", "h2_goaway_timeout",
                  json_pack("{s:s,s:s,s:o,s:i,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                            "identity", c->id != NULL ? json_string(c->id->name) : json_null(),
                            "open_streams", (int)open, "reason", why));
        conn_close(c);
        return;
    }
    if (hc->streams == NULL && now - hc->progress >= cfg->idle_timeout_ms / 1000.0) {
        log_event("info", "idle_timeout",
                  json_pack("{s:s,s:s,s:s}", "listener", c->gl->cfg->name, "peer", c->peer,
                            "proto", "h2"));
        h2_end(hc, NGHTTP2_NO_ERROR);
        return;
    }
    for (struct h2_stream *st = hc->streams; st != NULL; st = st->next) {
        const char *why = stream_held_up(st);
        /* Waiting that long for a slot is not the client's doing: REFUSED_STREAM, retry allowed. */
        bool waited = st->queued && now - st->queued_at >= cfg->h2_stream_timeout_ms / 1000.0;
        uint32_t code = waited ? NGHTTP2_REFUSED_STREAM : NGHTTP2_CANCEL;
        char reason[240];

        if (waited)
            snprintf(reason, sizeof(reason),
                     "it waited %d ms (--h2-stream-timeout) for one of the client connection's "
                     "%d upstream slots (--h2-max-upstreams)",
                     cfg->h2_stream_timeout_ms, cfg->h2_max_upstreams);
        else if (why != NULL && now - st->progress >= cfg->h2_stream_timeout_ms / 1000.0)
            snprintf(reason, sizeof(reason), "%s for %d ms (--h2-stream-timeout)", why,
                     cfg->h2_stream_timeout_ms);
        else
            continue;
        log_event("warn", "h2_stream_timeout",
                  json_pack("{s:s,s:s,s:o,s:i,s:s,s:s}", "listener", c->gl->cfg->name, "peer",
                            c->peer, "identity",
                            c->id != NULL ? json_string(c->id->name) : json_null(), "stream",
                            (int)st->id, "reason", reason, "h2_error",
                            nghttp2_http2_strerror(code)));
        count_reset(c, waited ? H2_RESET_QUEUE_TIMEOUT : H2_RESET_STALLED);
        st->timed_out = true;
        st->up_reset = waited;
        st->queued = false;
        stream_drop_upstream(st, false);
        nghttp2_submit_rst_stream(hc->sess, NGHTTP2_FLAG_NONE, st->id, code);
        reset = true;
    }
    if (reset)
        h2_flush(hc);
    if (c->state < CONN_CLOSING)
        h2_tick_arm(hc);
}

/* The next tick: a quarter of the shortest deadline, from 50 ms to 5 s. */
static void
h2_tick_arm(struct h2_conn *hc)
{
    const struct proxy_cfg *cfg = &hc->c->gen->cfg;
    int ms = cfg->idle_timeout_ms < cfg->h2_stream_timeout_ms ? cfg->idle_timeout_ms
                                                              : cfg->h2_stream_timeout_ms;
    struct timeval tv;

    if (hc->retired_at > 0 && cfg->drain_timeout_ms < ms)
        ms = cfg->drain_timeout_ms;
    ms /= 4;
    ms = ms < 50 ? 50 : ms > 5000 ? 5000 : ms;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(hc->timer, &tv);
}

/* The client sent bytes: frames for nghttp2. */
static void
h2_client_readable(struct conn *c)
{
    struct h2_conn *hc = c->h2;
    struct evbuffer *in = bufferevent_get_input(c->cbev);

    forward_client_pull(c);
    while (c->state == CONN_OPEN && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(hc->sess, v.iov_base, v.iov_len);
        if (n < 0) {
            /* Floods (CONTINUATION, SETTINGS/PING acks) and other fatal errors: GOAWAY, close. */
            bool calm = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
            log_event("warn", "h2_error",
                      json_pack("{s:s,s:s,s:o,s:s,s:s}", "listener", c->gl->cfg->name, "peer",
                                c->peer, "identity",
                                c->id != NULL ? json_string(c->id->name) : json_null(), "error",
                                nghttp2_strerror((int)n), "h2_error",
                                calm ? "ENHANCE_YOUR_CALM" : "PROTOCOL_ERROR"));
            h2_end(hc, calm ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
            return;
        }
        evbuffer_drain(in, (size_t)n);
        forward_client_pull(c);
    }
    h2_flush(hc);
}

/* The client took what was queued: more frames. */
static void
h2_client_writable(struct conn *c)
{
    if (c->h2 != NULL)
        h2_flush(c->h2);
}

/* The client chose h2: the session, its settings, then whatever came with the handshake. */
static void
h2_handshake_done(struct conn *c, double secs)
{
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    struct h2_conn *hc = NULL;
    const struct proxy_cfg *cfg = &c->gen->cfg;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)cfg->h2_stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)c->gen->cfg.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };

    metrics_handshake(c->gl->hs, TLS_FAIL_NONE, secs);
    if ((hc = calloc(1, sizeof(*hc))) == NULL || nghttp2_session_callbacks_new(&cb) != 0 ||
        nghttp2_option_new(&opt) != 0)
        goto err;
    hc->c = c;
    hc->rst_since = now_mono();
    hc->ctrl_since = hc->rst_since;
    hc->progress = hc->rst_since;
    if ((hc->timer = evtimer_new(c->w->base, h2_tick, hc)) == NULL)
        goto err;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    /* The client's window opens as the upstream takes its bytes, not as they arrive. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    if (nghttp2_session_server_new2(&hc->sess, cb, hc, opt) != 0)
        goto err;
    if (nghttp2_submit_settings(hc->sess, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(hc->sess, NGHTTP2_FLAG_NONE, 0,
                                              cfg->h2_conn_window) != 0)
        goto err;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    c->h2 = hc;
    h2_tick_arm(hc);
    bufferevent_setwatermark(c->cbev, EV_READ, 0, 256 * 1024);
    h2_client_readable(c);
    return;
err:
    if (hc != NULL && hc->sess != NULL)
        nghttp2_session_del(hc->sess);
    if (hc != NULL && hc->timer != NULL)
        event_free(hc->timer);
    free(hc);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    log_msg("error", "h2_error", "cannot start an HTTP/2 session: out of memory");
    conn_close(c);
}

/* No stream open: draining may close the connection now. */
static bool
h2_idle(const struct conn *c)
{
    return c->h2 == NULL || c->h2->streams == NULL;
}

/* Draining began while streams are open: the GOAWAY goes out now, not at the next event. */
static void
h2_drain(struct conn *c)
{
    if (c->h2 != NULL)
        h2_flush(c->h2);
}

/* conn_retire(): GOAWAY, the streams in flight finish, then the close. */
static void
h2_retire(struct conn *c)
{
    struct h2_conn *hc = c->h2;

    if (hc == NULL || hc->streams == NULL) {
        conn_close(c);
        return;
    }
    /* The streams in flight finish (within --drain-timeout, h2_tick); then nothing more. */
    hc->retired_at = now_mono();
    h2_tick_arm(hc);
    hc->goaway = true;
    hc->goaway_last = nghttp2_session_get_last_proc_stream_id(hc->sess);
    nghttp2_submit_goaway(hc->sess, NGHTTP2_FLAG_NONE, hc->goaway_last, NGHTTP2_NO_ERROR, NULL,
                          0);
    h2_refuse_queued(hc);
    h2_flush(hc);
}

/* conn_close(): no upstream callback may run into a closing connection. */
static void
h2_stop(struct conn *c)
{
    if (c->h2 == NULL)
        return;
    if (c->h2->timer != NULL)
        evtimer_del(c->h2->timer);
    for (struct h2_stream *st = c->h2->streams; st != NULL; st = st->next) {
        if (st->up != NULL)
            h2up_cancel(st->up, NGHTTP2_CANCEL);
        st->up = NULL;
        if (st->ubev != NULL) {
            bufferevent_setcb(st->ubev, NULL, NULL, NULL, NULL);
            bufferevent_disable(st->ubev, EV_READ | EV_WRITE);
        }
    }
}

/* The free: every stream, its upstream and the session go. */
static void
h2_release(struct conn *c)
{
    struct h2_conn *hc = c->h2;

    if (hc == NULL)
        return;
    while (hc->streams != NULL) {
        struct h2_stream *st = hc->streams;
        hc->streams = st->next;
        if (st->up != NULL)
            h2up_cancel(st->up, NGHTTP2_CANCEL);
        if (st->ubev != NULL)
            bufferevent_free(st->ubev);
        h2_request_clear(&st->req);
        http_reader_clear(&st->resp_rd);
        evbuffer_free(st->body);
        if (st->pending != NULL)
            evbuffer_free(st->pending);
        free(st->up2_head);
        free(st->retry_head);
        free(st);
        metrics_h2_stream(-1);
    }
    if (hc->timer != NULL)
        event_free(hc->timer);
    nghttp2_session_del(hc->sess);
    free(hc);
    c->h2 = NULL;
}

const struct conn_mode h2_mode = {
    .name = "h2",
    .client_tls = true,
    .handshake_done = h2_handshake_done,
    .client_readable = h2_client_readable,
    .client_writable = h2_client_writable,
    .idle = h2_idle,
    .drain = h2_drain,
    .stop = h2_stop,
    .release = h2_release,
    .retire = h2_retire,
};
