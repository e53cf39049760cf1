/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.h - the HTTP/2 pieces of the proxy that need no socket: one stream's
 * request fields collected and checked as RFC 9113 8.2 and 8.3 require, then
 * decided by the same path as an HTTP/1.1 request (http_decide: checks,
 * normalisation, policy, identity header, the head rebuilt for an HTTP/1.1
 * upstream), in h2req.c.  The session (nghttp2), the streams and their
 * upstreams are in h2.c.
 */
#ifndef DUET_PROXY_H2_H
#define DUET_PROXY_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "proxy/config.h"
#include "proxy/http.h"
#include "proxy/reqread.h"

/* The limits of an HTTP/2 client connection (docs/proxy.md, "HTTP/2"). */
/* (Streams, windows, the stream deadline and the connection's budget: settings, config.h.) */
#define H2_RST_MAX 100                  /* client RST_STREAMs per H2_RST_WINDOW seconds ... */
#define H2_RST_WINDOW 10                /* ... past which: GOAWAY ENHANCE_YOUR_CALM */
#define H2_MAX_OUTBOUND_ACK 100         /* SETTINGS/PING acks queued unsent: past it, GOAWAY */
#define H2_MAX_CONTINUATIONS 8          /* CONTINUATION frames after one HEADERS */
#define H2_RESP_HELD (256 * 1024)       /* response bytes held per stream: the upstream waits */

/* One stream's request fields as received (pseudo-headers apart). */
struct h2_request {
    char *method, *scheme, *authority, *path;
    struct http_reader rd; /* the regular fields, in order (rd.hdrs), names lower case */
    size_t list_bytes;     /* RFC 9113 6.5.2: name + value + 32 for each field */
    size_t max_bytes;      /* more than this: too_large (the rest is not kept) */
    bool regular_seen;
    bool too_large;
    struct duet_err err;   /* why h2_request_add refused a field */
};

/*
 * Add one field of a request's header block.  Refuses (-1, r->err naming the
 * field and what was expected) what RFC 9113 makes a malformed request: a
 * name with upper case or not a token, a pseudo-header other than :method,
 * :scheme, :authority and :path, repeated, or after a regular field; a
 * connection-specific field (Connection, Keep-Alive, Proxy-Connection,
 * Transfer-Encoding, Upgrade); TE other than "trailers"; CR, LF or NUL in a
 * value, or a value with white space around it; and, since the request goes
 * on as HTTP/1.1, any other control byte in a value (in a pseudo-header's,
 * anything but visible ASCII).  Past r->max_bytes the
 * fields are counted and no longer kept (r->too_large; 0).  Out of memory:
 * -1 with err's kind DUET_ERR_NOMEM.
 */
int h2_request_add(struct h2_request *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen) MUST_CHECK;
/* Append copies of a field to a reader's list (the reader owns them); -1 when out of memory. */
int h2_reader_push(struct http_reader *rd, const char *name, size_t nlen, const char *value,
                   size_t vlen) MUST_CHECK;
/* Free what the request holds. */
void h2_request_clear(struct h2_request *r);

/* What a stream's decision needs of its connection. */
struct h2_context {
    const struct listener_cfg *l;
    const struct duet_identity *id; /* NULL when the client presented no certificate */
    const char *id_xfcc;
    const char *client_ip;
    bool body_follows;              /* the HEADERS frame did not end the stream */
};

/*
 * Decide a stream whose header block is complete.  Returns -1 when the
 * request is malformed (RFC 9113 8.1.1: a pseudo-header missing, :path not
 * starting with '/' (but "*" for OPTIONS), content-length on a request whose
 * stream already ended with fewer bytes, :authority and Host that disagree):
 * err says why and the stream is to be reset with PROTOCOL_ERROR.  Otherwise
 * 0 and d as http_decide() leaves it (d->status 0: forward d->head, an
 * HTTP/1.1 request with the framing the proxy chose: Content-Length as the
 * client declared, else chunked when a body follows); Cookie fields are
 * joined with "; " (RFC 9113 8.2.3).  d borrows from r (r->rd): clear d
 * (http_decision_clear) before r.
 */
int h2_decide(struct h2_request *r, const struct h2_context *ctx, struct http_decision *d,
              struct duet_err *err) MUST_CHECK;

#endif
