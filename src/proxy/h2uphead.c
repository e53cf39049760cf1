/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2uphead.c - the HTTP/2 request fields an HTTP/2 upstream receives (h2up.h),
 * made from the HTTP/1.1 head http_decide() rebuilt after the policy, so what
 * an h2c or h2 upstream sees is what an HTTP/1.1 upstream would: the identity
 * header set and the client's copies gone, the forwarding headers.  Host
 * becomes :authority (RFC 9113 8.3.1); the fields HTTP/2 forbids or the proxy
 * chose for HTTP/1.1 framing go (RFC 9113 8.2.2: Connection, Keep-Alive,
 * Proxy-Connection, Upgrade, Transfer-Encoding, TE but "trailers"); names in
 * lower case (RFC 9113 8.2.1).  No socket: the unit tests call it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h2up.h"

/* Name the head's fields as HTTP/2 does (lower case); connection-specific ones dropped. */
static bool
field_dropped(const char *name)
{
    static const char *const names[] = {"host",    "connection", "keep-alive", "proxy-connection",
                                        "upgrade", "te",         "transfer-encoding"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The HTTP/2 fields of a head rebuilt by http_decide(); see h2up.h. */
int
h2up_fields_make(const char *head, size_t head_len, bool tls, bool te_trailers,
                 struct h2up_fields *out, struct duet_err *err)
{
    char *buf = malloc(head_len + 1), *line, *next, *sp, *target, *authority = NULL;
    nghttp2_nv *nv = NULL;
    size_t n = 4, cap = 6;

    memset(out, 0, sizeof(*out));
    if (buf == NULL)
        return err_nomem(err);
    memcpy(buf, head, head_len);
    buf[head_len] = '\0';
    for (const char *p = buf; (p = strstr(p, "\r\n")) != NULL; p += 2)
        cap++;
    if ((nv = calloc(cap, sizeof(*nv))) == NULL) {
        free(buf);
        return err_nomem(err);
    }
    line = buf;
    next = strstr(line, "\r\n");
    if (next == NULL || (sp = strchr(line, ' ')) == NULL || sp > next)
        goto bad;
    *next = '\0';
    *sp = '\0';
    target = sp + 1;
    if ((sp = strchr(target, ' ')) == NULL)
        goto bad;
    *sp = '\0';
    for (line = next + 2; (next = strstr(line, "\r\n")) != NULL && next != line; line = next + 2) {
        char *colon = strchr(line, ':'), *v;
        *next = '\0';
        if (colon == NULL || colon == line)
            goto bad;
        *colon = '\0';
        for (char *q = line; *q != '\0'; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        v = colon + 1 + strspn(colon + 1, " ");
        if (strcmp(line, "host") == 0)
            authority = v;
        if (field_dropped(line) || n + 1 >= cap)
            continue;
        nv[n++] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, strlen(line), strlen(v),
                               NGHTTP2_NV_FLAG_NONE};
    }
    if (next == NULL)
        goto bad; /* no empty line: not a whole head */
    nv[0] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)buf, 7, strlen(buf),
                         NGHTTP2_NV_FLAG_NONE};
    nv[1] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)(tls ? "https" : "http"), 7,
                         tls ? 5 : 4, NGHTTP2_NV_FLAG_NONE};
    nv[2] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)target, 5, strlen(target),
                         NGHTTP2_NV_FLAG_NONE};
    nv[3] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)(authority ? authority : ""), 10,
                         authority ? strlen(authority) : 0, NGHTTP2_NV_FLAG_NONE};
    if (te_trailers)
        nv[n++] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8,
                               NGHTTP2_NV_FLAG_NONE};
    out->buf = buf;
    out->nv = nv;
    out->n = n;
    return 0;
bad:
    free(nv);
    free(buf);
    return err_set(err, DUET_ERR_INTERNAL, "cannot read the request head rebuilt for the upstream");
}

/* Free what h2up_fields_make() made; see h2up.h. */
void
h2up_fields_clear(struct h2up_fields *f)
{
    free(f->nv);
    free(f->buf);
    memset(f, 0, sizeof(*f));
}
