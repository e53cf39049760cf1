/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2up.h - HTTP/2 toward the upstream (upstream_protocol h2c, h2, auto): the
 * streams of HTTP/2 clients multiplexed on a few upstream connections per
 * worker and listener, each an nghttp2 client session (h2up.c).  h2.c opens
 * one upstream stream per client stream it forwards and hears back through
 * the hooks below; the two never hold each other's memory.
 */
#ifndef DUET_PROXY_H2UP_H
#define DUET_PROXY_H2UP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "lib/err.h"

struct worker;
struct gen;
struct gen_listener;
struct h2up_stream;

/*
 * What the upstream's side of a stream does to the client's (h2.c), arg being
 * h2.c's stream.  Every name and value is lent for the call only.  After
 * `reset` no hook runs again and the h2up_stream is gone (h2.c forgets it);
 * otherwise h2.c lets go with h2up_cancel() when its stream closes.
 */
struct h2up_hooks {
    /* The response's head (:status apart); end: it is the whole response (trailers-only). */
    void (*head)(void *arg, int status, const nghttp2_nv *nv, size_t n, bool end);
    /* Response bytes: h2up_consumed() once the client took them opens the upstream's window. */
    void (*data)(void *arg, const uint8_t *p, size_t n);
    /* The response's trailers (grpc-status, grpc-message), then its end. */
    void (*trailers)(void *arg, const nghttp2_nv *nv, size_t n);
    void (*end)(void *arg);
    /*
     * The stream ended without a complete response: the upstream reset it
     * (code, its RST_STREAM's), refused it (REFUSED_STREAM: nothing of it was
     * processed), or the connection failed (why says so; code INTERNAL_ERROR).
     */
    void (*reset)(void *arg, uint32_t code, const char *why);
    /* The upstream took n request bytes given by h2up_data: the client may send as many. */
    void (*taken)(void *arg, size_t n);
};

/*
 * Open a stream toward gl's upstream: head is the HTTP/1.1 head http_decide()
 * rebuilt (policy applied, identity header set, the client's copies gone),
 * turned into HTTP/2 fields (Host becomes :authority; connection-specific
 * fields and the framing the proxy chose are dropped); te_trailers adds
 * "te: trailers" (gRPC asks for it).  end: no request body follows.  tls
 * picks h2 (ALPN) over h2c.  The stream goes on an open connection with room
 * under the upstream's SETTINGS_MAX_CONCURRENT_STREAMS, or a new one (up to
 * upstream_h2_connections), else queues on the least loaded.  NULL with err
 * set when the head cannot be sent (out of memory, a head it cannot read).
 */
struct h2up_stream *h2up_open(struct worker *w, struct gen *gen, struct gen_listener *gl,
                              bool tls, const char *head, size_t head_len, bool te_trailers,
                              bool end, const struct h2up_hooks *hooks, void *arg,
                              struct duet_err *err);
/* Request bytes for the upstream, queued (bounded by the client's stream window). */
int h2up_data(struct h2up_stream *s, const uint8_t *p, size_t n) MUST_CHECK;
/* The request is complete: END_STREAM once its bytes went. */
void h2up_end(struct h2up_stream *s);
/* The client took n bytes of the response: as many may come from the upstream. */
void h2up_consumed(struct h2up_stream *s, size_t n);
/*
 * The client's stream is gone (closed, reset, its connection ended): no hook
 * runs again; if the upstream stream is still open it is reset with code
 * (CANCEL for a client's cancellation).  s is freed by h2up.
 */
void h2up_cancel(struct h2up_stream *s, uint32_t code);
/* The fields of an HTTP/2 request (h2uphead.c): nv points into buf. */
struct h2up_fields {
    char *buf;
    nghttp2_nv *nv;
    size_t n;
};
/*
 * The HTTP/2 request for head, an HTTP/1.1 head as http_decide() rebuilds it
 * (request line, fields, empty line): :method, :scheme ("https" when tls,
 * else "http"), :path, :authority (from Host), then the fields in order with
 * lower-case names, without Host and the connection-specific ones
 * (Connection, Keep-Alive, Proxy-Connection, Upgrade, Transfer-Encoding, TE),
 * and "te: trailers" when te_trailers.  -1 with err when the head is not one
 * (no request line, a field without ':', no empty line) or out of memory.
 * Free with h2up_fields_clear().
 */
int h2up_fields_make(const char *head, size_t head_len, bool tls, bool te_trailers,
                     struct h2up_fields *out, struct duet_err *err) MUST_CHECK;
void h2up_fields_clear(struct h2up_fields *f);
/* Close every upstream HTTP/2 connection of a worker (its streams are cancelled). */
void h2up_clear(struct worker *w);

#endif
