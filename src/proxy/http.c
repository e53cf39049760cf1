/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - path normalisation and upstream request heads; see http.h.
 *
 * Normalising before authorization closes the classic gap where a rule on
 * /hr/ is bypassed with /hr/../customers/ or /%68r/: the policy decides on
 * the normalised path, and the upstream receives exactly that path.
 */
#include "proxy/http.h"

#include <ctype.h>
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

const char *
http_header_get(const struct http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    }
    return NULL;
}

/* Whether the Connection header lists this name. */
static bool
named_by_connection(const struct http_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, "connection") != 0)
            continue;
        const char *p = r->headers[i].value;
        size_t n = strlen(name);
        while (*p) {
            while (*p == ' ' || *p == ',' || *p == '\t')
                p++;
            const char *e = p;
            while (*e && *e != ',' && *e != ' ' && *e != '\t')
                e++;
            if ((size_t)(e - p) == n && strncasecmp(p, name, n) == 0)
                return true;
            p = e;
        }
    }
    return false;
}

static bool
hop_by_hop(const struct http_request *r, const char *name)
{
    static const char *const hop[] = {"connection",       "keep-alive", "te",
                                      "trailer",          "upgrade",    "x-forwarded-for",
                                      "x-forwarded-proto"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (strcasecmp(name, hop[i]) == 0)
            return true;
    }
    /* Proxy-* (Proxy-Connection, Proxy-Authorization, ...) is for this hop only. */
    if (strncasecmp(name, "proxy-", 6) == 0)
        return true;
    return named_by_connection(r, name);
}

/* Build the upstream head; see http.h. */
int
http_build_upstream_head(const struct http_request *r, char **out, size_t *len,
                         struct duet_err *err)
{
    struct bbuf b = {0};
    char *mine = NULL;
    bool theirs = false; /* every XFCC line the client sent, joined with ',' (RFC 9110 5.3) */
    char ver[16];

    *out = NULL;
    *len = 0;
    bbuf_str(&b, r->method);
    bbuf_put(&b, " ", 1);
    bbuf_str(&b, r->target);
    snprintf(ver, sizeof(ver), " HTTP/%d.%d\r\n", r->http_major, r->http_minor);
    bbuf_str(&b, ver);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        if (hop_by_hop(r, h->name) || strcasecmp(h->name, "x-forwarded-client-cert") == 0)
            continue;
        bbuf_str(&b, h->name);
        bbuf_put(&b, ": ", 2);
        bbuf_str(&b, h->value);
        bbuf_put(&b, "\r\n", 2);
    }
    if (r->id != NULL && r->xfcc != XFCC_FORWARD_ONLY) {
        mine = r->id_xfcc != NULL ? strdup(r->id_xfcc) : xfcc_element(r->id);
        if (mine == NULL) {
            free(b.p);
            return err_nomem(err);
        }
    }
    /* Keep the client's copies only where the mode says so, in the order sent. */
    if (r->xfcc == XFCC_FORWARD_ONLY || r->xfcc == XFCC_APPEND_FORWARD) {
        for (size_t i = 0; i < r->nheaders; i++) {
            const struct http_header *h = &r->headers[i];
            if (strcasecmp(h->name, "x-forwarded-client-cert") != 0)
                continue;
            bbuf_str(&b, theirs ? "," : "X-Forwarded-Client-Cert: ");
            bbuf_str(&b, h->value);
            theirs = true;
        }
    }
    if (mine != NULL) {
        bbuf_str(&b, theirs ? "," : "X-Forwarded-Client-Cert: ");
        bbuf_str(&b, mine);
    }
    if (theirs || mine != NULL)
        bbuf_put(&b, "\r\n", 2);
    bbuf_str(&b, "X-Forwarded-For: ");
    bbuf_str(&b, r->client_ip);
    bbuf_str(&b, "\r\nX-Forwarded-Proto: https\r\n\r\n");
    free(mine);
    if (b.oom) {
        free(b.p);
        return err_nomem(err);
    }
    *out = (char *)b.p;
    *len = b.len;
    return 0;
}
