/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the HTTP/1.1 pieces of the proxy that need no socket: what a
 * request head means, path normalisation (so that policy and upstream see the
 * same path), the decision and the head rebuilt for the upstream.  Reading
 * the head (the strict scanner, http-parser's callbacks) is in reqread.h.
 */
#ifndef DUET_PROXY_HTTP_H
#define DUET_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

#include <http_parser.h>

#include "lib/err.h"
#include "lib/policy.h"
#include "lib/identity.h"
#include "lib/xfcc.h"
#include "proxy/reqread.h"

/*
 * Normalise a request target's path (RFC 3986 6.2.2): percent-encoded
 * unreserved characters are decoded, other escapes upper-cased, dot segments
 * removed (5.2.4) and runs of '/' merged.  Encoded '/', '\' and NUL, a raw
 * '\', and a path that climbs above the root are refused (-1) rather than
 * guessed.  The query string is kept as it is.  *out is malloc'd.
 */
int http_normalize_target(const char *target, char **out, struct duet_err *err) MUST_CHECK;

/* How a request body is framed (RFC 9112 6). */
enum http_framing { HTTP_BODY_NONE = 0, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

/*
 * A protocol switch a request asks for (RFC 9110 7.8) that the proxy relays:
 * WebSocket only (RFC 6455).  Any other Upgrade (h2c above all, which would
 * carry requests the proxy never sees) is taken out of the request.
 */
enum http_upgrade { HTTP_UPGRADE_NONE = 0, HTTP_UPGRADE_WEBSOCKET };

/* What the proxy does with the forwarding headers a client sent itself. */
enum http_fwd_mode {
    HTTP_FWD_SET = 0, /* drop the client's; set X-Forwarded-For/-Proto, X-Real-IP, Forwarded */
    HTTP_FWD_APPEND   /* keep the client's X-Forwarded-For and Forwarded, append ours */
};

/* Parse "set" or "append". */
int http_fwd_mode_parse(const char *text, enum http_fwd_mode *out, struct duet_err *err) MUST_CHECK;

/* What the proxy knows of a request when its headers are complete. */
struct http_request {
    const char *method;
    const char *target;   /* normalised */
    int http_major, http_minor;
    const struct http_header *headers;
    size_t nheaders;
    const char *host;     /* the one Host value; NULL when an HTTP/1.0 request has none */
    enum http_framing framing;
    uint64_t content_length;
    const char *client_ip;
    const struct duet_identity *id; /* NULL when the client presented no certificate */
    const char *id_xfcc;            /* xfcc_element(id), computed once per connection; may be NULL */
    enum xfcc_mode xfcc;
    enum http_fwd_mode forwarded;
    enum http_upgrade upgrade; /* decided: WEBSOCKET forwards Upgrade and Connection */
};

/*
 * Check what a request head means once parsed (RFC 9110 / 9112) and fill
 * r->host, r->framing and r->content_length from the headers: every name a
 * token; exactly one Host for HTTP/1.1 (at most one for 1.0) holding a valid
 * uri-host[:port]; at most one Content-Length, all digits; Transfer-Encoding
 * only as one "chunked" (501 for another coding), never with Content-Length
 * nor in HTTP/1.0; no header whose name differs from Host, Content-Length or
 * Transfer-Encoding only by '_' for '-' (ambiguous to upstreams); Connection
 * never naming Host, Content-Length or Transfer-Encoding.  Returns 0, or -1
 * with *status (400 or 501) and err naming the header and what was expected.
 */
int http_request_check(struct http_request *r, int *status, struct duet_err *err) MUST_CHECK;

/*
 * The head to send upstream, rebuilt from what was parsed and decided, never
 * copied: the request line with the normalised target, the one Host, the
 * client's headers without the hop-by-hop ones (Connection and what it names,
 * Keep-Alive, Proxy-*, TE, Trailer, Upgrade, HTTP2-Settings), without
 * framing, Host and any identity or forwarding header the proxy sets
 * (X-Forwarded-Client-Cert, X-Forwarded-For/-Proto/-Host/-Port, Forwarded,
 * X-Real-IP, compared with case and '-'/'_' folded), then, with r->upgrade
 * WEBSOCKET and only then, "Upgrade: websocket" and "Connection: Upgrade",
 * the framing the proxy decided (Content-Length or chunked),
 * X-Forwarded-Client-Cert per the mode and the forwarding headers per
 * r->forwarded.  Refuses a name that is not a token or a value with CR, LF
 * or NUL.  *out is malloc'd, *len its length.
 */
int http_build_upstream_head(const struct http_request *r, char **out, size_t *len,
                             struct duet_err *err) MUST_CHECK;

/*
 * Everything decided about one request whose head is complete: the checks of
 * http_request_check(), agreement with http-parser's own framing, the
 * normalised target, the policy's decision, and the forwarded head.  Shared by
 * the proxy and the request-head fuzz target, so both run the same path.
 */
struct http_context {
    const struct policy *policy;
    const struct duet_identity *id;
    const char *id_xfcc;
    const char *client_ip;
    enum xfcc_mode xfcc;
    enum http_fwd_mode forwarded;
};

struct http_decision {
    int status;                 /* 0: forward; else the status of the refusal */
    bool decided;               /* the policy was asked (d is set) */
    struct policy_decision d;
    struct http_request req;    /* borrows from the reader and from target */
    char method[24];
    char *target;               /* normalised, malloc'd; NULL before normalisation */
    char *head;                 /* the forwarded head when status == 0, malloc'd */
    size_t head_len;
    struct duet_err err;        /* why, when status != 0 */
};

/*
 * Decide one request: rd and p as left by http-parser when on_headers_complete
 * runs (the values in rd lose their trailing whitespace).  Never fails:
 * out->status says 0 (forward out->head) or the refusal (400, 403, 500, 501,
 * 505).  out->req.upgrade is WEBSOCKET when an HTTP/1.1 request asks for one
 * (Upgrade lists "websocket" and Connection lists "upgrade", both as
 * http-parser read them too); such a request must be a GET without a body
 * (400 otherwise).  Any other Upgrade is dropped and the request forwarded as
 * an ordinary one; CONNECT is refused (400).  Free with http_decision_clear().
 */
void http_decide(struct http_reader *rd, const http_parser *p, const struct http_context *ctx,
                 struct http_decision *out);
void http_decision_clear(struct http_decision *d);

/* The value of a header (first occurrence, name case-insensitive), or NULL. */
const char *http_header_get(const struct http_header *h, size_t n, const char *name);

#endif
