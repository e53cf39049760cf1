/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2req.c - one HTTP/2 stream's request without a socket (h2.h): its fields
 * added as nghttp2 hands them over and checked as RFC 9113 8.2/8.3 require,
 * and, since it goes on as HTTP/1.1, as RFC 9110 requires of a field value;
 * then its decision: the pseudo-headers become what http_decide() reads of an
 * HTTP/1.1 request (method, target, Host, the framing the proxy chooses),
 * so the normalisation, the policy, the identity header and the head rebuilt
 * for the upstream are HTTP/1.1's own.  The session is in h2.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h2.h"

static bool
value_ok(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return false;
    return true;
}

/*
 * What an HTTP/1.1 field value may hold (RFC 9110 5.5: SP, HTAB, VCHAR,
 * obs-text), pseudo-headers visible ASCII only (as a request line): HTTP/2
 * forbids only CR, LF and NUL,
 * but the request goes to an HTTP/1.1 upstream, where the proxy's own
 * scanner would refuse any other control byte.
 */
static bool
value_h1_ok(const uint8_t *v, size_t n, bool pseudo)
{
    for (size_t i = 0; i < n; i++)
        if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f ||
            (pseudo && (v[i] <= 0x20 || v[i] > 0x7e)))
            return false;
    return true;
}

static bool
name_is(const uint8_t *name, size_t nlen, const char *s)
{
    return nlen == strlen(s) && memcmp(name, s, nlen) == 0;
}

static char *
dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Append a field to a reader's list (the reader owns the copies). */
static int
reader_push(struct http_reader *rd, const char *name, size_t nlen, const char *value,
            size_t vlen)
{
    if (rd->nhdrs == rd->hcap) {
        size_t cap = rd->hcap ? rd->hcap * 2 : 16;
        struct http_header *nh = realloc(rd->hdrs, cap * sizeof(*nh));
        if (nh == NULL)
            return -1;
        rd->hdrs = nh;
        rd->hcap = cap;
    }
    rd->hdrs[rd->nhdrs].name = dup_n((const uint8_t *)name, nlen);
    rd->hdrs[rd->nhdrs].value = dup_n((const uint8_t *)value, vlen);
    rd->nhdrs++;
    if (rd->hdrs[rd->nhdrs - 1].name == NULL || rd->hdrs[rd->nhdrs - 1].value == NULL)
        return -1;
    return 0;
}

/* Append a copy of a field to a reader's list; see h2.h. */
int
h2_reader_push(struct http_reader *rd, const char *name, size_t nlen, const char *value,
               size_t vlen)
{
    return reader_push(rd, name, nlen, value, vlen);
}

/* Add one field of a request's header block; see h2.h. */
int
h2_request_add(struct h2_request *r, const uint8_t *name, size_t nlen, const uint8_t *value,
               size_t vlen)
{
    static const char *const conn_specific[] = {"connection", "keep-alive", "proxy-connection",
                                                "transfer-encoding", "upgrade"};
    char shown[40];

    snprintf(shown, sizeof(shown), "%.*s", (int)(nlen < 32 ? nlen : 32), (const char *)name);
    for (char *p = shown; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    r->list_bytes += nlen + vlen + 32;
    if (r->too_large || r->list_bytes > r->max_bytes) {
        r->too_large = true;
        return 0;
    }
    if (nlen == 0)
        return err_set(&r->err, DUET_ERR_INPUT, "a header field with an empty name");
    if (!value_ok(value, vlen))
        return err_set(&r->err, DUET_ERR_INPUT,
                       "header field \"%s\": CR, LF or NUL in its value (RFC 9113 8.2.1)", shown);
    if (!value_h1_ok(value, vlen, name[0] == ':'))
        return err_set(&r->err, DUET_ERR_INPUT,
                       "header field \"%s\": %s in its value, which HTTP/1.1 does not allow "
                       "(RFC 9110 5.5, RFC 9112 3)",
                       shown, name[0] == ':' ? "a byte that is not visible ASCII"
                                             : "a control character");
    if (name[0] == ':') {
        char **slot = NULL;
        if (r->regular_seen)
            return err_set(&r->err, DUET_ERR_INPUT,
                           "pseudo-header %s after a regular field (RFC 9113 8.3)", shown);
        if (name_is(name, nlen, ":method"))
            slot = &r->method;
        else if (name_is(name, nlen, ":scheme"))
            slot = &r->scheme;
        else if (name_is(name, nlen, ":authority"))
            slot = &r->authority;
        else if (name_is(name, nlen, ":path"))
            slot = &r->path;
        else
            return err_set(&r->err, DUET_ERR_INPUT,
                           "pseudo-header %s; expected :method, :scheme, :authority or :path",
                           shown);
        if (*slot != NULL)
            return err_set(&r->err, DUET_ERR_INPUT, "pseudo-header %s repeated", shown);
        if ((*slot = dup_n(value, vlen)) == NULL)
            return err_set(&r->err, DUET_ERR_NOMEM, "out of memory");
        return 0;
    }
    r->regular_seen = true;
    for (size_t i = 0; i < nlen; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            return err_set(&r->err, DUET_ERR_INPUT,
                           "header field \"%s\": upper case in a name (RFC 9113 8.2.1)", shown);
    {
        char *n = dup_n(name, nlen);
        bool tok = n != NULL && strlen(n) == nlen && http_is_token(n);
        free(n);
        if (!tok)
            return err_set(&r->err, DUET_ERR_INPUT,
                           "header field \"%s\": the name is not a token (RFC 9110 5.1)", shown);
    }
    for (size_t i = 0; i < sizeof(conn_specific) / sizeof(conn_specific[0]); i++)
        if (name_is(name, nlen, conn_specific[i]))
            return err_set(&r->err, DUET_ERR_INPUT,
                           "header field \"%s\" is connection-specific, not allowed in HTTP/2 "
                           "(RFC 9113 8.2.2)",
                           shown);
    if (name_is(name, nlen, "te") && !(vlen == 8 && memcmp(value, "trailers", 8) == 0))
        return err_set(&r->err, DUET_ERR_INPUT,
                       "header field \"te\": only \"trailers\" is allowed in HTTP/2 "
                       "(RFC 9113 8.2.2)");
    if (vlen > 0 && (value[0] == ' ' || value[0] == '\t' || value[vlen - 1] == ' ' ||
                     value[vlen - 1] == '\t'))
        return err_set(&r->err, DUET_ERR_INPUT,
                       "header field \"%s\": white space around its value (RFC 9113 8.2.1)",
                       shown);
    if (reader_push(&r->rd, (const char *)name, nlen, (const char *)value, vlen) != 0)
        return err_set(&r->err, DUET_ERR_NOMEM, "out of memory");
    return 0;
}

/* Free what the request holds; see h2.h. */
void
h2_request_clear(struct h2_request *r)
{
    free(r->method);
    free(r->scheme);
    free(r->authority);
    free(r->path);
    r->method = r->scheme = r->authority = r->path = NULL;
    http_reader_clear(&r->rd);
}

/* http-parser's method number for a name, or -1. */
static int
method_of(const char *m)
{
    for (int i = 0; i < 64; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (strcmp(s, "<unknown>") == 0)
            break;
        if (strcmp(s, m) == 0)
            return i;
    }
    return -1;
}

/*
 * Cookie fields, which HTTP/2 allows as several (RFC 9113 8.2.3), become one
 * joined with "; " for the HTTP/1.1 upstream, where the first was.
 */
static int
join_cookies(struct http_reader *rd)
{
    size_t first = SIZE_MAX, total = 0, n = 0;
    char *joined, *p;

    for (size_t i = 0; i < rd->nhdrs; i++) {
        if (strcmp(rd->hdrs[i].name, "cookie") == 0) {
            if (first == SIZE_MAX)
                first = i;
            total += strlen(rd->hdrs[i].value) + 2;
            n++;
        }
    }
    if (n < 2)
        return 0;
    if ((joined = malloc(total + 1)) == NULL)
        return -1;
    p = joined;
    for (size_t i = 0, k = 0; i < rd->nhdrs; i++) {
        if (strcmp(rd->hdrs[i].name, "cookie") != 0)
            continue;
        size_t l = strlen(rd->hdrs[i].value);
        if (k++ > 0) {
            memcpy(p, "; ", 2);
            p += 2;
        }
        memcpy(p, rd->hdrs[i].value, l);
        p += l;
    }
    *p = '\0';
    free(rd->hdrs[first].value);
    rd->hdrs[first].value = joined;
    for (size_t i = first + 1, k = first + 1; i < rd->nhdrs;) {
        if (strcmp(rd->hdrs[i].name, "cookie") == 0) {
            free(rd->hdrs[i].name);
            free(rd->hdrs[i].value);
            memmove(&rd->hdrs[i], &rd->hdrs[i + 1], (rd->nhdrs - i - 1) * sizeof(rd->hdrs[0]));
            rd->nhdrs--;
            continue;
        }
        i++;
        k++;
    }
    return 0;
}

/* Decide a stream whose header block is complete; see h2.h. */
int
h2_decide(struct h2_request *r, const struct h2_context *ctx, struct http_decision *d,
          struct duet_err *err)
{
    struct http_context hc;
    http_parser p;
    const char *cl, *host;
    int m;

    memset(d, 0, sizeof(*d));
    if (r->method == NULL)
        return err_set(err, DUET_ERR_INPUT, "the request has no :method (RFC 9113 8.3.1)");
    m = method_of(r->method);
    if (m != HTTP_CONNECT) {
        if (r->scheme == NULL)
            return err_set(err, DUET_ERR_INPUT, "the request has no :scheme (RFC 9113 8.3.1)");
        if (r->path == NULL || r->path[0] == '\0')
            return err_set(err, DUET_ERR_INPUT, "the request has no :path (RFC 9113 8.3.1)");
        if (r->path[0] != '/' && !(m == HTTP_OPTIONS && strcmp(r->path, "*") == 0))
            return err_set(err, DUET_ERR_INPUT,
                           ":path must start with '/' (or be * for OPTIONS) (RFC 9113 8.3.1)");
    }
    host = http_header_get(r->rd.hdrs, r->rd.nhdrs, "host");
    if (r->authority != NULL && host != NULL && strcmp(r->authority, host) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       ":authority and Host name different hosts (RFC 9113 8.3.1)");
    cl = http_header_get(r->rd.hdrs, r->rd.nhdrs, "content-length");
    if (cl != NULL && !ctx->body_follows && (cl[0] == '\0' || cl[strspn(cl, "0")] != '\0'))
        return err_set(err, DUET_ERR_INPUT,
                       "content-length %s on a request whose stream ended with no DATA "
                       "(RFC 9113 8.1.1)",
                       strspn(cl, "0123456789") == strlen(cl) && strlen(cl) < 20 ? cl : "(bad)");
    memset(&p, 0, sizeof(p));
    p.http_major = 1;
    p.http_minor = 1;
    if (m < 0) {
        snprintf(d->method, sizeof(d->method), "%.*s", (int)sizeof(d->method) - 1, "?");
        err_set(&d->err, DUET_ERR_INPUT, "unknown method; expected one HTTP/1.1 upstreams know");
        d->status = 400;
        return 0;
    }
    p.method = (unsigned int)m;
    if (host == NULL && r->authority != NULL &&
        reader_push(&r->rd, "host", 4, r->authority, strlen(r->authority)) != 0)
        return err_set(err, DUET_ERR_NOMEM, "out of memory");
    if (join_cookies(&r->rd) != 0)
        return err_set(err, DUET_ERR_NOMEM, "out of memory");
    if (cl != NULL) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        p.flags |= F_CONTENTLENGTH;
        p.content_length = cl[0] >= '0' && cl[0] <= '9' && *end == '\0' ? v : UINT64_MAX;
    } else if (ctx->body_follows) {
        /* Neither framing comes from the client (transfer-encoding is refused above). */
        if (reader_push(&r->rd, "transfer-encoding", 17, "chunked", 7) != 0)
            return err_set(err, DUET_ERR_NOMEM, "out of memory");
        p.flags |= F_CHUNKED;
    }
    free(r->rd.url);
    r->rd.url = strdup(r->path != NULL ? r->path : "/");
    if (r->rd.url == NULL)
        return err_set(err, DUET_ERR_NOMEM, "out of memory");
    memset(&hc, 0, sizeof(hc));
    hc.policy = &ctx->l->policy;
    hc.id = ctx->id;
    hc.id_xfcc = ctx->id_xfcc;
    hc.client_ip = ctx->client_ip;
    hc.xfcc = ctx->l->xfcc;
    hc.forwarded = ctx->l->forwarded;
    http_decide(&r->rd, &p, &hc, d);
    return 0;
}
