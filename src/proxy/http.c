/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the request path of the proxy's http mode without sockets, once
 * a head has been read (reqread.c): the checks of what it means, path
 * normalisation, the decision and the head sent upstream; see http.h.
 *
 * The rule throughout: parse the client's bytes strictly, decide on what was
 * parsed, and rebuild what goes upstream from the parsed values.  Nothing
 * the client wrote about framing (Content-Length, Transfer-Encoding), Host or
 * identity is copied through, so an upstream with a lenient parser cannot be
 * shown a different request from the one the policy allowed (RFC 9112 11.2,
 * request smuggling).
 *
 * Normalising before authorization closes the classic gap where a rule on
 * /hr/ is bypassed with /hr/../customers/ or /%68r/: the policy decides on
 * the normalised path, and the upstream receives exactly that path.
 *
 * Upgrades: a WebSocket upgrade is a GET without a body, decided like any
 * request, and its rebuilt head carries "Upgrade: websocket" and
 * "Connection: Upgrade" (the switch itself is forward.c's, on the upstream's
 * 101).  Every other Upgrade, and HTTP2-Settings, is dropped: an h2c upgrade
 * passed through would let the client speak HTTP/2 to the upstream on a
 * connection whose later requests the proxy never sees ("h2c smuggling").
 */
#include "proxy/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/bbuf.h"
#include "lib/x509util.h"


static bool
unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Normalise a request target; see http.h. */
int
http_normalize_target(const char *target, char **out, struct duet_err *err)
{
    const char *q = strchr(target, '?');
    size_t plen = q != NULL ? (size_t)(q - target) : strlen(target);
    char *dec = NULL;   /* after percent handling */
    char **segs = NULL; /* segment stack */
    size_t nsegs = 0;
    size_t d = 0;
    char *res = NULL;
    int rc = -1;

    *out = NULL;
    if (strchr(target, '#') != NULL)
        return err_set(err, DUET_ERR_INPUT, "a fragment ('#') in a request target (RFC 9112 3.2)");
    if (strcmp(target, "*") == 0) {
        *out = strdup("*");
        return *out != NULL ? 0 : err_nomem(err);
    }
    if (target[0] != '/')
        return err_set(err, DUET_ERR_INPUT, "request target must start with /");
    dec = malloc(plen * 3 + 1);
    segs = calloc(plen + 1, sizeof(char *));
    if (dec == NULL || segs == NULL) {
        err_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c == '%') {
            int hi = i + 2 < plen ? x509u_hexval(target[i + 1]) : -1;
            int lo = i + 2 < plen ? x509u_hexval(target[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                err_set(err, DUET_ERR_INPUT, "malformed percent-encoding in the path");
                goto out;
            }
            unsigned char v = (unsigned char)(hi * 16 + lo);
            if (v == '/' || v == '\\' || v == 0) {
                err_set(err, DUET_ERR_INPUT,
                        "encoded '/', '\\' or NUL in the path is refused (ambiguous to upstreams)");
                goto out;
            }
            if (unreserved(v)) {
                dec[d++] = (char)v;
            } else {
                dec[d++] = '%';
                dec[d++] = (char)toupper((unsigned char)target[i + 1]);
                dec[d++] = (char)toupper((unsigned char)target[i + 2]);
            }
            i += 2;
        } else if (c == '\\' || c < 0x21 || c == 0x7f) {
            err_set(err, DUET_ERR_INPUT, "invalid character in the path");
            goto out;
        } else if (c == ';') {
            /*
             * Path parameters: Tomcat, Jetty and Spring drop ";..." from each
             * segment before resolving dots, so /public/..;/admin is /admin
             * to them; refused rather than guessed.
             */
            err_set(err, DUET_ERR_INPUT,
                    "';' in the path (path parameters) is refused: servers that strip them "
                    "would see another path");
            goto out;
        } else {
            dec[d++] = (char)c;
        }
    }
    dec[d] = '\0';
    /* Split on '/', dropping empty segments (merging slashes) and resolving dots. */
    {
        bool trailing = d > 1 && dec[d - 1] == '/';
        char *save = NULL;
        for (char *s = strtok_r(dec, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
            if (strcmp(s, ".") == 0) {
                trailing = true;
                continue;
            }
            if (strcmp(s, "..") == 0) {
                if (nsegs == 0) {
                    err_set(err, DUET_ERR_INPUT, "the path climbs above the root");
                    goto out;
                }
                nsegs--;
                trailing = true;
                continue;
            }
            segs[nsegs++] = s;
            trailing = false;
        }
        /* A trailing slash in the input is kept. */
        if (d > 1 && dec[0] != '\0' && target[plen - 1] == '/')
            trailing = true;
        size_t total = 2 + (q != NULL ? strlen(q) : 0);
        for (size_t i = 0; i < nsegs; i++)
            total += strlen(segs[i]) + 1;
        res = malloc(total + 1);
        if (res == NULL) {
            err_nomem(err);
            goto out;
        }
        size_t o = 0;
        for (size_t i = 0; i < nsegs; i++) {
            res[o++] = '/';
            size_t l = strlen(segs[i]);
            memcpy(res + o, segs[i], l);
            o += l;
        }
        if (o == 0 || (trailing && nsegs > 0))
            res[o++] = '/';
        res[o] = '\0';
        if (q != NULL)
            strcat(res, q);
    }
    *out = res;
    res = NULL;
    rc = 0;
out:
    free(res);
    free(dec);
    free(segs);
    return rc;
}

/* --- what a head means ------------------------------------------------------------------------ */

/* Options a request's Connection headers may list together (close, keep-alive, a few names). */
#define HTTP_MAX_CONNECTION_OPTIONS 32

const char *
http_header_get(const struct http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    }
    return NULL;
}

/* Header names compared as upstreams that fold '_' into '-' (CGI, WSGI) would. */
static bool
name_folds_to(const char *name, const char *lower_dashed)
{
    for (; *name && *lower_dashed; name++, lower_dashed++) {
        char c = *name == '_' ? '-' : (char)tolower((unsigned char)*name);
        if (c != *lower_dashed)
            return false;
    }
    return *name == '\0' && *lower_dashed == '\0';
}

/* A value with the optional whitespace around it removed (RFC 9110 5.5), in buf. */
static const char *
trim_ows(const char *v, char *buf, size_t len)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

/* Calls fn for each comma-separated element of a list value (RFC 9110 5.6.1); stops at true. */
static bool
list_any(const char *v, bool (*fn)(const char *el, size_t n, void *arg), void *arg)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *e = v;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n > 0 && fn(v, n, arg))
            return true;
        v = e;
    }
    return false;
}

static bool
el_count(const char *el, size_t n, void *arg)
{
    (void)el;
    (void)n;
    return ++*(size_t *)arg > HTTP_MAX_CONNECTION_OPTIONS;
}

static bool
el_is_framing(const char *el, size_t n, void *arg)
{
    static const char *const names[] = {"host", "content-length", "transfer-encoding"};
    char buf[32];

    (void)arg;
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, el, n);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name_folds_to(buf, names[i]))
            return true;
    }
    return false;
}

/* RFC 9110 7.2 / RFC 3986 3.2.2: uri-host [ ":" port ]; an empty value is allowed. */
static bool
valid_host(const char *h)
{
    const char *p = h;

    if (*p == '[') {
        const char *e = strchr(p, ']');
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (e == NULL || (size_t)(e - p - 1) >= sizeof(buf))
            return false;
        memcpy(buf, p + 1, (size_t)(e - p - 1));
        buf[e - p - 1] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return false;
        p = e + 1;
    } else {
        /*
         * A reg-name of letters, digits, '-', '_' and '.' in non-empty labels
         * (one trailing '.' allowed): RFC 3986 also allows percent-encoding
         * and sub-delims, which no real host name uses and which would let
         * "adm%69n.corp" slip past a rule on admin.corp.
         */
        const char *label = p;
        for (; *p && *p != ':'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '.') {
                if (p == label)
                    return false;
                label = p + 1;
            } else if (!(isalnum(c) || c == '-' || c == '_')) {
                return false;
            }
        }
    }
    if (*p == ':') {
        p++;
        size_t digits = strspn(p, "0123456789");
        if (digits > 5 || p[digits] != '\0')
            return false;
        return true;
    }
    return *p == '\0';
}

/*
 * A client's value as it may appear in a reason (a log line, a 400 body):
 * visible ASCII and spaces as they are, any other byte as \xNN, at most max
 * bytes of the value, "..." when cut.  buf must hold 4 * max + 4 bytes.
 */
static const char *
shown(const char *v, size_t max, char *buf, size_t len)
{
    size_t o = 0, i = 0;

    for (; v[i] && i < max && o + 5 < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            snprintf(buf + o, len - o, "\\x%02x", c);
            o += 4;
        }
    }
    if (v[i] && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

#define SHOWN_MAX 64
#define SHOWN_LEN (4 * SHOWN_MAX + 4)

static int check_fail(int code, int *status, struct duet_err *err, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static int
check_fail(int code, int *status, struct duet_err *err, const char *fmt, ...)
{
    char msg[DUET_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    *status = code;
    return err_set(err, DUET_ERR_INPUT, "%s", msg);
}

/* Check a parsed head and fill host and framing; see http.h. */
int
http_request_check(struct http_request *r, int *status, struct duet_err *err)
{
    const char *cl = NULL;
    int nhost = 0, ncl = 0, nte = 0;
    bool chunked = false;

    size_t nconn = 0;

    *status = 0;
    r->host = NULL;
    r->framing = HTTP_BODY_NONE;
    r->content_length = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        char buf[64], sh[SHOWN_LEN];
        if (!http_is_token(h->name))
            return check_fail(400, status, err,
                              "header name \"%s\" is not a token (RFC 9110 5.1)",
                              shown(h->name, SHOWN_MAX, sh, sizeof(sh)));
        if (strpbrk(h->value, "\r\n") != NULL)
            return check_fail(400, status, err, "header %s: CR or LF in the value",
                              shown(h->name, SHOWN_MAX, sh, sizeof(sh)));
        if (strcasecmp(h->name, "host") == 0) {
            nhost++;
            r->host = h->value;
        } else if (strcasecmp(h->name, "content-length") == 0) {
            ncl++;
            cl = h->value;
        } else if (strcasecmp(h->name, "transfer-encoding") == 0) {
            nte++;
            if (strcasecmp(trim_ows(h->value, buf, sizeof(buf)), "chunked") == 0) {
                chunked = true;
            } else {
                *status = 501;
                return err_set(err, DUET_ERR_INPUT,
                               "Transfer-Encoding \"%s\" is not supported; expected chunked",
                               shown(h->value, SHOWN_MAX, sh, sizeof(sh)));
            }
        } else if (name_folds_to(h->name, "host") || name_folds_to(h->name, "content-length") ||
                   name_folds_to(h->name, "transfer-encoding")) {
            return check_fail(400, status, err,
                              "header name \"%s\" is ambiguous: it differs from a framing or "
                              "Host header only by '_'",
                              shown(h->name, SHOWN_MAX, sh, sizeof(sh)));
        } else if (strcasecmp(h->name, "connection") == 0) {
            if (list_any(h->value, el_is_framing, NULL))
                return check_fail(400, status, err,
                                  "Connection may not name Host, Content-Length or "
                                  "Transfer-Encoding (\"%s\")",
                                  shown(h->value, SHOWN_MAX, sh, sizeof(sh)));
            /* Each header is looked up in these options: their number is bounded. */
            if (list_any(h->value, el_count, &nconn))
                return check_fail(400, status, err, "more than %d Connection options",
                                  HTTP_MAX_CONNECTION_OPTIONS);
        }
    }
    if (nhost > 1)
        return check_fail(400, status, err, "more than one Host header");
    /*
     * RFC 9112 3.2 lets HTTP/1.0 omit Host and HTTP/1.1 send it empty; both
     * are refused, so that a rule denying by host can never be skipped by a
     * request the upstream routes to its default host.
     */
    if (nhost == 0)
        return check_fail(400, status, err, "a request without Host");
    if (r->host[0] == '\0' || r->host[0] == ':')
        return check_fail(400, status, err, "an empty Host");
    if (r->host != NULL && !valid_host(r->host)) {
        char sh[SHOWN_LEN];
        return check_fail(400, status, err, "Host \"%s\" is not a host[:port]",
                          shown(r->host, SHOWN_MAX, sh, sizeof(sh)));
    }
    if (nte > 0 && (r->http_major == 1 && r->http_minor == 0))
        return check_fail(400, status, err,
                          "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)");
    if (nte > 1)
        return check_fail(400, status, err, "more than one Transfer-Encoding header");
    if (nte > 0 && ncl > 0)
        return check_fail(400, status, err,
                          "both Content-Length and Transfer-Encoding (RFC 9112 6.3)");
    if (ncl > 1)
        return check_fail(400, status, err, "more than one Content-Length header");
    if (chunked) {
        r->framing = HTTP_BODY_CHUNKED;
    } else if (ncl == 1) {
        char buf[32];
        const char *v = trim_ows(cl, buf, sizeof(buf));
        char *end = NULL, sh[SHOWN_LEN];
        if (*v == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18)
            return check_fail(400, status, err,
                              "Content-Length \"%s\" is not a number of bytes",
                              shown(cl, SHOWN_MAX, sh, sizeof(sh)));
        errno = 0;
        r->content_length = strtoull(v, &end, 10);
        r->framing = HTTP_BODY_LENGTH;
    }
    return 0;
}

/* --- the forwarded head ----------------------------------------------------------------------- */

/* The options the request's Connection headers list, collected once per request. */
struct conn_opts {
    const char *el[HTTP_MAX_CONNECTION_OPTIONS];
    size_t len[HTTP_MAX_CONNECTION_OPTIONS];
    size_t n;
};

static bool
el_collect(const char *el, size_t n, void *arg)
{
    struct conn_opts *o = arg;

    if (o->n == HTTP_MAX_CONNECTION_OPTIONS)
        return true;
    o->el[o->n] = el;
    o->len[o->n++] = n;
    return false;
}

/* Names the proxy sets itself or that belong to this hop, compared with case and '_' folded. */
static bool
dropped_name(const struct conn_opts *opts, const char *name)
{
    static const char *const names[] = {
        "connection",      "keep-alive",        "te",          "trailer",
        "upgrade",         "host",              "content-length", "transfer-encoding",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "forwarded",       "x-real-ip",         "x-forwarded-client-cert",
        "http2-settings"};
    char lower[8];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name_folds_to(name, names[i]))
            return true;
    }
    /* Proxy-* (Proxy-Connection, Proxy-Authorization, ...) is for this hop only. */
    for (size_t i = 0; i < 6 && name[i]; i++)
        lower[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
    if (strlen(name) >= 6 && memcmp(lower, "proxy-", 6) == 0)
        return true;
    /* What Connection names is for this hop only (RFC 9110 7.6.1). */
    for (size_t i = 0; i < opts->n; i++) {
        if (opts->len[i] == strlen(name) && strncasecmp(opts->el[i], name, opts->len[i]) == 0)
            return true;
    }
    return false;
}

static bool
value_ok(const char *v)
{
    return strpbrk(v, "\r\n") == NULL;
}

/* Every value of the client's headers spelled exactly `name`, joined with ", ". */
static void
put_joined(struct bbuf *b, const struct http_request *r, const char *name, const char *sep,
           bool *any)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) != 0)
            continue;
        bbuf_str(b, *any ? sep : "");
        bbuf_str(b, r->headers[i].value);
        *any = true;
    }
}

/* Build the upstream head; see http.h. */
int
http_build_upstream_head(const struct http_request *r, char **out, size_t *len,
                         struct duet_err *err)
{
    struct bbuf b = {0};
    char *mine = NULL;
    bool theirs = false; /* every XFCC line the client sent, joined with ',' (RFC 9110 5.3) */
    bool v6 = r->client_ip != NULL && strchr(r->client_ip, ':') != NULL;
    struct conn_opts opts = {.n = 0};
    char num[48];

    *out = NULL;
    *len = 0;
    if (!http_is_token(r->method) || r->target == NULL || strpbrk(r->target, " \r\n") != NULL ||
        (r->host != NULL && !value_ok(r->host)) || r->client_ip == NULL ||
        !value_ok(r->client_ip))
        return err_set(err, DUET_ERR_INPUT, "cannot forward a malformed request line or Host");
    bbuf_str(&b, r->method);
    bbuf_put(&b, " ", 1);
    bbuf_str(&b, r->target);
    bbuf_str(&b, r->http_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (r->host != NULL) {
        bbuf_str(&b, "Host: ");
        bbuf_str(&b, r->host);
        bbuf_put(&b, "\r\n", 2);
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, "connection") == 0)
            list_any(r->headers[i].value, el_collect, &opts);
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        if (dropped_name(&opts, h->name))
            continue;
        if (!http_is_token(h->name) || !value_ok(h->value)) {
            free(b.p);
            char sh[SHOWN_LEN];
            return err_set(err, DUET_ERR_INPUT, "cannot forward header \"%s\"",
                           shown(h->name, SHOWN_MAX, sh, sizeof(sh)));
        }
        bbuf_str(&b, h->name);
        bbuf_put(&b, ": ", 2);
        bbuf_str(&b, h->value);
        bbuf_put(&b, "\r\n", 2);
    }
    if (r->upgrade == HTTP_UPGRADE_WEBSOCKET)
        bbuf_str(&b, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    if (r->framing == HTTP_BODY_LENGTH) {
        snprintf(num, sizeof(num), "Content-Length: %" PRIu64 "\r\n", r->content_length);
        bbuf_str(&b, num);
    } else if (r->framing == HTTP_BODY_CHUNKED) {
        bbuf_str(&b, "Transfer-Encoding: chunked\r\n");
    }
    if (r->id != NULL && r->xfcc != XFCC_FORWARD_ONLY) {
        mine = r->id_xfcc != NULL ? strdup(r->id_xfcc) : xfcc_element(r->id);
        if (mine == NULL) {
            free(b.p);
            return err_nomem(err);
        }
        if (!value_ok(mine)) {
            free(mine);
            free(b.p);
            return err_set(err, DUET_ERR_INPUT, "the client's identity cannot be forwarded");
        }
    }
    /* Keep the client's copies only where the mode says so, in the order sent. */
    if (r->xfcc == XFCC_FORWARD_ONLY || r->xfcc == XFCC_APPEND_FORWARD) {
        bbuf_str(&b, "X-Forwarded-Client-Cert: ");
        put_joined(&b, r, "x-forwarded-client-cert", ",", &theirs);
        if (!theirs)
            b.len -= strlen("X-Forwarded-Client-Cert: ");
    }
    if (mine != NULL) {
        bbuf_str(&b, theirs ? "," : "X-Forwarded-Client-Cert: ");
        bbuf_str(&b, mine);
    }
    if (theirs || mine != NULL)
        bbuf_put(&b, "\r\n", 2);
    /* The forwarding headers (RFC 7239 for Forwarded; the X- ones as nginx and Envoy set them). */
    {
        bool any = false;
        bbuf_str(&b, "X-Forwarded-For: ");
        if (r->forwarded == HTTP_FWD_APPEND)
            put_joined(&b, r, "x-forwarded-for", ", ", &any);
        bbuf_str(&b, any ? ", " : "");
        bbuf_str(&b, r->client_ip);
        bbuf_str(&b, "\r\nX-Forwarded-Proto: https\r\nX-Real-IP: ");
        bbuf_str(&b, r->client_ip);
        bbuf_str(&b, "\r\nForwarded: ");
        any = false;
        if (r->forwarded == HTTP_FWD_APPEND)
            put_joined(&b, r, "forwarded", ", ", &any);
        bbuf_str(&b, any ? ", for=" : "for=");
        bbuf_str(&b, v6 ? "\"[" : "");
        bbuf_str(&b, r->client_ip);
        bbuf_str(&b, v6 ? "]\"" : "");
        bbuf_str(&b, ";proto=https\r\n\r\n");
    }
    free(mine);
    if (b.oom) {
        free(b.p);
        return err_nomem(err);
    }
    *out = (char *)b.p;
    *len = b.len;
    return 0;
}

int
http_fwd_mode_parse(const char *text, enum http_fwd_mode *out, struct duet_err *err)
{
    if (strcmp(text, "set") == 0)
        *out = HTTP_FWD_SET;
    else if (strcmp(text, "append") == 0)
        *out = HTTP_FWD_APPEND;
    else
        return err_set(err, DUET_ERR_INPUT,
                       "unknown forwarded-headers mode \"%s\"; expected set or append",
                       text);
    return 0;
}

/* --- the decision ----------------------------------------------------------------------------- */

/* One element of a list header equal to a token, case-insensitively (arg: the token). */
static bool
el_is(const char *el, size_t n, void *arg)
{
    const char *token = arg;

    return strlen(token) == n && strncasecmp(el, token, n) == 0;
}

/*
 * Whether a request asks for a switch to WebSocket (RFC 9110 7.8, RFC 6455
 * 4.1): a Connection header lists "upgrade" and an Upgrade header lists
 * "websocket" (both compared case-insensitively, over every line of each).
 * Other protocols the Upgrade lists are not relayed.
 */
static bool
asks_websocket(const struct http_request *r)
{
    bool conn = false, ws = false;

    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        if (!conn && strcasecmp(h->name, "connection") == 0)
            conn = list_any(h->value, el_is, (void *)"upgrade");
        else if (!ws && strcasecmp(h->name, "upgrade") == 0)
            ws = list_any(h->value, el_is, (void *)"websocket");
    }
    return conn && ws;
}

static void
refuse(struct http_decision *out, int status)
{
    out->status = status;
    free(out->head);
    out->head = NULL;
    out->head_len = 0;
}

/* Decide one request; see http.h. */
void
http_decide(struct http_reader *rd, const http_parser *p, const struct http_context *ctx,
            struct http_decision *out)
{
    struct http_request *r = &out->req;
    struct policy_request pr;
    int status = 0;

    memset(out, 0, sizeof(*out));
    snprintf(out->method, sizeof(out->method), "%s", http_method_str((enum http_method)p->method));
    r->method = out->method;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->headers = rd->hdrs;
    r->nheaders = rd->nhdrs;
    r->client_ip = ctx->client_ip;
    r->id = ctx->id;
    r->id_xfcc = ctx->id_xfcc;
    r->xfcc = ctx->xfcc;
    r->forwarded = ctx->forwarded;
    for (size_t i = 0; i < rd->nhdrs; i++) {
        char *v = rd->hdrs[i].value;
        if (v == NULL && rd->hdrs[i].name != NULL)
            v = rd->hdrs[i].value = strdup(""); /* "Name:" with nothing after it */
        if (rd->hdrs[i].name == NULL || v == NULL) {
            err_set(&out->err, DUET_ERR_INPUT, "a header without a name, or out of memory");
            refuse(out, 400);
            return;
        }
        /* A field value is without the whitespace around it (RFC 9110 5.5). */
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            v[--n] = '\0';
    }
    if (p->method == HTTP_CONNECT) {
        err_set(&out->err, DUET_ERR_INPUT, "CONNECT is not supported: duet proxy opens no tunnels");
        refuse(out, 400);
        return;
    }
    if (p->http_major != 1 || p->http_minor > 1) {
        err_set(&out->err, DUET_ERR_INPUT, "HTTP/%u.%u is not supported", p->http_major,
                p->http_minor);
        refuse(out, 505);
        return;
    }
    if (http_request_check(r, &status, &out->err) != 0) {
        refuse(out, status);
        return;
    }
    /* What the proxy will frame must be what http-parser reads the body by. */
    if ((r->framing == HTTP_BODY_CHUNKED) != ((p->flags & F_CHUNKED) != 0) ||
        (r->framing == HTTP_BODY_LENGTH &&
         (!(p->flags & F_CONTENTLENGTH) || p->content_length != r->content_length)) ||
        (r->framing == HTTP_BODY_NONE && (p->flags & F_CONTENTLENGTH))) {
        err_set(&out->err, DUET_ERR_INPUT, "the request's framing is ambiguous");
        refuse(out, 400);
        return;
    }
    /*
     * An upgrade is looked at only when http-parser saw one too (Upgrade and
     * Connection: upgrade), so that both read the request the same way: a
     * WebSocket one is relayed once the upstream answers 101, and must be a
     * GET without a body (whose bytes would precede the switch); any other
     * (h2c, unknown, HTTP/1.0, no "upgrade" in Connection) is an ordinary
     * request whose Upgrade is dropped.
     */
    if (p->upgrade && p->http_minor == 1 && asks_websocket(r)) {
        if (p->method != HTTP_GET) {
            err_set(&out->err, DUET_ERR_INPUT,
                    "a WebSocket upgrade must be a GET request (RFC 6455 4.1), not %s",
                    out->method);
            refuse(out, 400);
            return;
        }
        if (r->framing == HTTP_BODY_CHUNKED ||
            (r->framing == HTTP_BODY_LENGTH && r->content_length > 0)) {
            err_set(&out->err, DUET_ERR_INPUT,
                    "a WebSocket upgrade request may not have a body (Content-Length or "
                    "Transfer-Encoding)");
            refuse(out, 400);
            return;
        }
        r->upgrade = HTTP_UPGRADE_WEBSOCKET;
    }
    if (rd->url == NULL || http_normalize_target(rd->url, &out->target, &out->err) != 0) {
        refuse(out, 400);
        return;
    }
    if (strcmp(out->target, "*") == 0 && p->method != HTTP_OPTIONS) {
        err_set(&out->err, DUET_ERR_INPUT, "the target * is only for OPTIONS");
        refuse(out, 400);
        return;
    }
    r->target = out->target;
    memset(&pr, 0, sizeof(pr));
    pr.id = ctx->id;
    pr.method = out->method;
    pr.host = r->host;
    pr.path = out->target;
    out->d = policy_decide(ctx->policy, &pr);
    out->decided = true;
    if (!out->d.allow) {
        err_set(&out->err, DUET_ERR_INPUT, "denied by rule %s", out->d.rule);
        refuse(out, 403);
        return;
    }
    if (http_build_upstream_head(r, &out->head, &out->head_len, &out->err) != 0)
        refuse(out, out->err.kind == DUET_ERR_NOMEM ? 500 : 400);
}

void
http_decision_clear(struct http_decision *d)
{
    free(d->target);
    free(d->head);
    d->target = NULL;
    d->head = NULL;
}
