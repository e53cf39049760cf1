/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leanhttp.h - the strict reader of the one request `duet ca serve` answers
 * without libevent's HTTP server on its plain listener: an OCSP request
 * (POST /ocsp with a DER body, GET /ocsp/{base64}) in HTTP/1.1, or HTTP/1.0
 * with "Connection: keep-alive".  It only says "this is such a request,
 * exactly these bytes", "not yet known" or "not mine": whatever it does not
 * fully understand is passed on, unread, to the general server (evhttp),
 * which then sees the connection's bytes from that request on.  No
 * libevent, no allocation: the unit tests and the fuzz target call it alone.
 */
#ifndef DUET_CASERVER_LEANHTTP_H
#define DUET_CASERVER_LEANHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest request head read here (request line, headers, the empty line). */
#define LEANHTTP_MAX_HEAD 4096

enum leanhttp_verdict {
    LEANHTTP_MORE, /* a prefix of a request this reader may answer: wait for more bytes */
    LEANHTTP_OCSP, /* one complete OCSP request: fields filled */
    LEANHTTP_PASS, /* not one this reader answers: hand the bytes on, untouched */
};

/* An OCSP request read from the start of a buffer (pointers into it). */
struct leanhttp_req {
    bool post;          /* POST /ocsp (else GET /ocsp/...) */
    int minor;          /* HTTP/1.minor: 0 (then keep-alive was asked) or 1 */
    const char *target; /* the request-target as sent: "/ocsp" or "/ocsp/{base64}" */
    size_t target_len;
    const uint8_t *body; /* POST: the request's body, else NULL */
    size_t body_len;
    size_t total; /* bytes of the request (head and body): the next one starts there */
};

/*
 * Read the request at the start of buf[0..len): LEANHTTP_OCSP (r filled),
 * LEANHTTP_MORE or LEANHTTP_PASS.  A POST body over max_body bytes, a head
 * over LEANHTTP_MAX_HEAD, any byte or header outside the strict grammar
 * (bare LF, obs-fold, control bytes, Transfer-Encoding, Expect, Upgrade,
 * Proxy-Connection, more than one Content-Length, Content-Type or
 * Connection, a Connection other than keep-alive, a body on GET) is PASS.
 * A verdict on a prefix of buf is MORE or the verdict on buf; bytes after
 * r->total never change it.
 */
enum leanhttp_verdict caserver_leanhttp_parse(const uint8_t *buf, size_t len, size_t max_body,
                                              struct leanhttp_req *r);

#endif
