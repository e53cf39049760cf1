/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the HTTP/1.1 pieces of the proxy that need no socket: request
 * path normalisation (so that policy and upstream see the same path) and the
 * rewritten request head sent upstream.
 */
#ifndef DUET_PROXY_HTTP_H
#define DUET_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/xfcc.h"

/*
 * Normalise a request target's path (RFC 3986 6.2.2): percent-encoded
 * unreserved characters are decoded, other escapes upper-cased, dot segments
 * removed (5.2.4) and runs of '/' merged.  Encoded '/', '\' and NUL, a raw
 * '\', and a path that climbs above the root are refused (-1) rather than
 * guessed.  The query string is kept as it is.  *out is malloc'd.
 */
int http_normalize_target(const char *target, char **out, struct duet_err *err) MUST_CHECK;

/* One header as received. */
struct http_header {
    char *name;
    char *value;
};

/* What the proxy knows of a request when its headers are complete. */
struct http_request {
    const char *method;
    const char *target;   /* normalised */
    int http_major, http_minor;
    const struct http_header *headers;
    size_t nheaders;
    const char *client_ip;
    const struct duet_identity *id; /* NULL when the client presented no certificate */
    const char *id_xfcc;            /* xfcc_element(id), computed once per connection; may be NULL */
    enum xfcc_mode xfcc;
};

/*
 * The head to send upstream: request line, the client's headers without the
 * hop-by-hop ones (Connection and what it names, Keep-Alive, Proxy-*, TE,
 * Trailer, Upgrade), X-Forwarded-For/-Proto set, X-Forwarded-Client-Cert per
 * the mode.  *out is malloc'd, *len its length.
 */
int http_build_upstream_head(const struct http_request *r, char **out, size_t *len,
                             struct duet_err *err) MUST_CHECK;

/* The value of a header (first occurrence, name case-insensitive), or NULL. */
const char *http_header_get(const struct http_header *h, size_t n, const char *name);

#endif
