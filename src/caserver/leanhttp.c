/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leanhttp.c - the strict reader of OCSP requests on `duet ca serve`'s plain
 * listener (leanhttp.h).  It accepts a small subset of RFC 9112 and passes
 * everything else on: the request line is exactly "POST /ocsp HTTP/1.x" or
 * "GET /ocsp/{chars} HTTP/1.x" (chars: base64 and %XX escapes), every line
 * ends in CRLF, header names are tokens and values visible ASCII, space or
 * tab.  The framing is a POST's single Content-Length (digits only, 1 up to
 * the limit) and nothing else: a request that could be framed two ways is
 * never read here, so the general server, which reads the same bytes from
 * the same boundary when it gets them, never sees a request this reader
 * would have cut differently.
 */
#include "caserver/leanhttp.h"

#include <string.h>
#include <strings.h>

/* The request lines this reader answers start with these bytes. */
static const char post_line[] = "POST /ocsp ";
static const char get_line[] = "GET /ocsp/";

/* Whether c is a tchar of RFC 9110 section 5.6.2. */
static bool
is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
        return true;
    return c != '\0' && strchr("!#$%&'*+.^_`|~", c) != NULL;
}

static bool
is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether t[0..n) is a GET target "/ocsp/" + base64 characters and %XX escapes. */
static bool
get_target_ok(const uint8_t *t, size_t n)
{
    size_t i = sizeof(get_line) - 1 - 4; /* after "/ocsp/" */

    if (n <= i)
        return false;
    for (; i < n; i++) {
        uint8_t c = t[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(t[i + 1]) || !is_hex(t[i + 2]))
                return false;
            i += 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/' || c == '=')) {
            return false;
        }
    }
    return true;
}

/* Whether a header name of n bytes is `want` (ASCII, without case). */
static bool
name_is(const uint8_t *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp((const char *)name, want, n) == 0;
}

/* Whether a value of n bytes is `want` without case. */
static bool
value_is(const uint8_t *v, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp((const char *)v, want, n) == 0;
}

/*
 * Find the end of the head in buf[0..len): its length (the empty line
 * included), 0 when not there yet, or -1 when a byte already seen is outside
 * the grammar (so no longer input could make it a request read here).
 */
static long
head_end(const uint8_t *buf, size_t len)
{
    size_t lim = len < LEANHTTP_MAX_HEAD ? len : LEANHTTP_MAX_HEAD;
    size_t np = sizeof(post_line) - 1, ng = sizeof(get_line) - 1;
    bool post = memcmp(buf, post_line, len < np ? len : np) == 0;
    bool get = memcmp(buf, get_line, len < ng ? len : ng) == 0;

    if (!post && !get)
        return -1;
    for (size_t i = 0; i < lim; i++) {
        uint8_t c = buf[i];
        if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return -1; /* a bare LF */
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                return (long)(i + 1);
        } else if (c == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n')
                return -1; /* a bare CR */
        } else if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            return -1;
        }
    }
    return len >= LEANHTTP_MAX_HEAD ? -1 : 0;
}

/* Read; see leanhttp.h. */
enum leanhttp_verdict
caserver_leanhttp_parse(const uint8_t *buf, size_t len, size_t max_body, struct leanhttp_req *r)
{
    long hl = head_end(buf, len);
    const uint8_t *p, *end, *eol;
    size_t clen = 0;
    int ncl = 0, nct = 0, nconn = 0;
    bool keep_alive = false;

    memset(r, 0, sizeof(*r));
    if (hl < 0)
        return LEANHTTP_PASS;
    if (hl == 0)
        return LEANHTTP_MORE;
    end = buf + hl - 2; /* the last CRLF: the empty line */
    /* The request line: method SP target SP HTTP/1.x CRLF. */
    eol = memchr(buf, '\r', (size_t)(end - buf));
    if (eol == NULL)
        return LEANHTTP_PASS;
    {
        const uint8_t *sp1 = memchr(buf, ' ', (size_t)(eol - buf)), *sp2;
        size_t vlen;
        if (sp1 == NULL)
            return LEANHTTP_PASS;
        r->post = sp1 - buf == 4 && memcmp(buf, "POST", 4) == 0;
        if (!r->post && !(sp1 - buf == 3 && memcmp(buf, "GET", 3) == 0))
            return LEANHTTP_PASS;
        sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
        if (sp2 == NULL)
            return LEANHTTP_PASS;
        r->target = (const char *)(sp1 + 1);
        r->target_len = (size_t)(sp2 - sp1 - 1);
        vlen = (size_t)(eol - sp2 - 1);
        if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
            return LEANHTTP_PASS;
        r->minor = sp2[8] - '0';
        if (r->post ? !(r->target_len == 5 && memcmp(r->target, "/ocsp", 5) == 0)
                    : !get_target_ok((const uint8_t *)r->target, r->target_len))
            return LEANHTTP_PASS;
    }
    /* The header lines, up to the empty one. */
    for (p = eol + 2; p < end; p = eol + 2) {
        const uint8_t *colon, *v, *ve;
        eol = memchr(p, '\r', (size_t)(end - p) + 1);
        if (eol == NULL || eol == p)
            return LEANHTTP_PASS;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p)
            return LEANHTTP_PASS; /* no name: obs-fold (a line starting with SP/HT) lands here */
        for (const uint8_t *q = p; q < colon; q++) {
            if (!is_tchar(*q))
                return LEANHTTP_PASS;
        }
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
            ;
        if (name_is(p, (size_t)(colon - p), "content-length")) {
            if (++ncl > 1 || ve - v < 1 || ve - v > 9)
                return LEANHTTP_PASS;
            clen = 0;
            for (const uint8_t *q = v; q < ve; q++) {
                if (*q < '0' || *q > '9')
                    return LEANHTTP_PASS;
                clen = clen * 10 + (size_t)(*q - '0');
            }
        } else if (name_is(p, (size_t)(colon - p), "content-type")) {
            if (++nct > 1 || !value_is(v, (size_t)(ve - v), "application/ocsp-request"))
                return LEANHTTP_PASS;
        } else if (name_is(p, (size_t)(colon - p), "connection")) {
            if (++nconn > 1 || !value_is(v, (size_t)(ve - v), "keep-alive"))
                return LEANHTTP_PASS;
            keep_alive = true;
        } else if (name_is(p, (size_t)(colon - p), "transfer-encoding") ||
                   name_is(p, (size_t)(colon - p), "proxy-connection") ||
                   name_is(p, (size_t)(colon - p), "expect") ||
                   name_is(p, (size_t)(colon - p), "upgrade")) {
            return LEANHTTP_PASS;
        }
    }
    if (r->minor == 0 && !keep_alive)
        return LEANHTTP_PASS;
    if (!r->post) {
        if (ncl > 0)
            return LEANHTTP_PASS;
        r->total = (size_t)hl;
        return LEANHTTP_OCSP;
    }
    if (ncl != 1 || nct != 1 || clen == 0 || clen > max_body)
        return LEANHTTP_PASS;
    if (len - (size_t)hl < clen)
        return LEANHTTP_MORE;
    r->body = buf + hl;
    r->body_len = clen;
    r->total = (size_t)hl + clen;
    return LEANHTTP_OCSP;
}
