/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reqread.h - reading a request head from a client: the strict scanner that
 * sees every byte before http-parser does, and the reader behind
 * http-parser's callbacks that collects the request line and the headers.
 */
#ifndef DUET_PROXY_REQREAD_H
#define DUET_PROXY_REQREAD_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "lib/err.h"

/* One header as received. */
struct http_header {
    char *name;
    char *value;
};

/*
 * The strict request-head scanner (RFC 9112 2.2, 3 and 5), fed the client's
 * bytes before http-parser sees them, so that whatever http-parser would
 * tolerate (spaces in header names, obsolete line folding, bare LF, odd
 * versions) never reaches a decision.  It accepts, byte by byte and without
 * buffering:
 *   *( CRLF ) method SP request-target SP "HTTP/" DIGIT "." DIGIT CRLF
 *   *( token ":" *( SP / HTAB / VCHAR / obs-text ) CRLF ) CRLF
 * and only HTTP/1.0 and HTTP/1.1 (505 for another version).
 */
struct http_scan {
    unsigned char state;
    unsigned char vpos;       /* position in "HTTP/x.y" */
    unsigned char major, minor;
    size_t bytes;             /* head bytes seen, leading empty lines included */
    size_t max;               /* more than this: 431 */
};

void http_scan_init(struct http_scan *s, size_t max_bytes);

/*
 * Feed n bytes.  Returns 1 when the head ended within them (*used: the bytes
 * up to and including its final LF), 0 when it needs more (*used = n), -1 when
 * the bytes are not a valid head: *status is 400, 431 or 505 and err says what
 * was expected at which byte.
 */
int http_scan_feed(struct http_scan *s, const char *p, size_t n, size_t *used, int *status,
                   struct duet_err *err) MUST_CHECK;

/* Whether s is an RFC 9110 token (tchar+). */
bool http_is_token(const char *s);

/*
 * What http-parser's callbacks collect of one request head.  The proxy points
 * http_parser.data at it and uses the three callbacks below; `owner` leads
 * back to the connection.
 */
struct http_reader {
    struct http_header *hdrs;
    size_t nhdrs, hcap;
    char *url;
    size_t url_len, url_cap;
    /* Length and room of the last header's name and value: a piece is appended in O(piece). */
    size_t name_len, name_cap, value_len, value_cap;
    size_t head_bytes, max_head;
    bool last_was_value;
    bool too_large; /* past max_head: 431 */
    bool nomem;
    struct http_scan scan;
    void *owner;
};

/* Forget the previous request's head (at message begin); the scanner starts over. */
void http_reader_reset(struct http_reader *rd);
/* Free everything the reader holds. */
void http_reader_clear(struct http_reader *rd);
int http_reader_on_url(http_parser *p, const char *at, size_t n);
int http_reader_on_header_field(http_parser *p, const char *at, size_t n);
int http_reader_on_header_value(http_parser *p, const char *at, size_t n);

#endif
