/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ppv2.c - the PROXY protocol v2 header (haproxy doc/proxy-protocol.txt
 * sections 2.1 and 2.2) that TCP mode sends before the client's bytes: the
 * client's and the listener's addresses, ALPN, SNI, and the SSL TLV with the
 * TLS version, cipher and verified client (CN, URI SAN, certificate DER).
 */
#include "proxy/ppv2.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "lib/bbuf.h"

static void
bb_u8(struct bbuf *b, uint8_t v)
{
    bbuf_put(b, &v, 1);
}

static void
bb_u16(struct bbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    bbuf_put(b, x, 2);
}

/*
 * Append a TLV.  A value longer than its 16-bit length can say is refused,
 * naming the TLV, never cut or wrapped (haproxy doc/proxy-protocol.txt 2.2).
 */
static int
bb_tlv(struct bbuf *b, uint8_t type, const char *what, const void *data, size_t n,
       struct duet_err *err)
{
    if (n > 0xFFFF)
        return err_set(err, DUET_ERR_INPUT,
                       "the PROXY v2 TLV for %s (0x%02x) would hold %zu bytes; at most 65535 fit",
                       what, type, n);
    bb_u8(b, type);
    bb_u16(b, (uint16_t)n);
    bbuf_put(b, data, n);
    return 0;
}

/* Build a PROXY v2 header; see ppv2.h. */
int
ppv2_build(const struct ppv2_info *info, uint8_t **out, size_t *len, struct duet_err *err)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    struct bbuf b = {0};
    struct bbuf ssl = {0};
    uint8_t *der = NULL;
    int derlen = 0;
    size_t len_at;
    size_t body;

    *out = NULL;
    *len = 0;
    bbuf_put(&b, sig, sizeof(sig));
    bb_u8(&b, 0x21); /* version 2, PROXY */
    if (info->src != NULL && info->dst != NULL && info->src->sa_family == AF_INET &&
        info->dst->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)info->src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)(const void *)info->dst;
        bb_u8(&b, 0x11);
        len_at = b.len;
        bb_u16(&b, 0);
        bbuf_put(&b, &s->sin_addr, 4);
        bbuf_put(&b, &d->sin_addr, 4);
        bbuf_put(&b, &s->sin_port, 2);
        bbuf_put(&b, &d->sin_port, 2);
    } else if (info->src != NULL && info->dst != NULL && info->src->sa_family == AF_INET6 &&
               info->dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)info->src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)(const void *)info->dst;
        bb_u8(&b, 0x21);
        len_at = b.len;
        bb_u16(&b, 0);
        bbuf_put(&b, &s->sin6_addr, 16);
        bbuf_put(&b, &d->sin6_addr, 16);
        bbuf_put(&b, &s->sin6_port, 2);
        bbuf_put(&b, &d->sin6_port, 2);
    } else {
        if (b.p != NULL)
            b.p[12] = 0x20; /* LOCAL: addresses unknown */
        bb_u8(&b, 0x00);
        len_at = b.len;
        bb_u16(&b, 0);
    }
    if (info->alpn != NULL &&
        bb_tlv(&b, PP2_TYPE_ALPN, "ALPN", info->alpn, strlen(info->alpn), err) != 0)
        goto err;
    if (info->sni != NULL &&
        bb_tlv(&b, PP2_TYPE_AUTHORITY, "the server name", info->sni, strlen(info->sni), err) != 0)
        goto err;
    /* PP2_TYPE_SSL: client flags, verify result, then sub-TLVs. */
    {
        uint8_t client = PP2_CLIENT_SSL;
        /*
         * verify is zero only when the client presented a certificate and it
         * was verified; non-zero in all other cases (proxy-protocol.txt, PP2_TYPE_SSL).
         */
        uint8_t verify[4] = {0, 0, 0, info->id != NULL ? 0 : 1};
        if (info->id != NULL)
            client |= info->resumed ? PP2_CLIENT_CERT_SESS : PP2_CLIENT_CERT_CONN;
        bb_u8(&ssl, client);
        bbuf_put(&ssl, verify, 4);
        if (info->tls_version != NULL &&
            bb_tlv(&ssl, PP2_SUBTYPE_SSL_VERSION, "the TLS version", info->tls_version,
                   strlen(info->tls_version), err) != 0)
            goto err;
        if (info->id != NULL && info->id->cn != NULL &&
            bb_tlv(&ssl, PP2_SUBTYPE_SSL_CN, "the client CN", info->id->cn,
                   strlen(info->id->cn), err) != 0)
            goto err;
        if (info->cipher != NULL &&
            bb_tlv(&ssl, PP2_SUBTYPE_SSL_CIPHER, "the cipher", info->cipher,
                   strlen(info->cipher), err) != 0)
            goto err;
        if (ssl.oom) {
            err_nomem(err);
            goto err;
        }
        if (bb_tlv(&b, PP2_TYPE_SSL, "TLS", ssl.p, ssl.len, err) != 0)
            goto err;
    }
    if (info->id != NULL) {
        const char *uri = NULL;
        int nuri = 0;
        for (size_t i = 0; i < info->id->nsans; i++) {
            if (info->id->sans[i].type == DUET_SAN_URI) {
                uri = info->id->sans[i].value;
                nuri++;
            }
        }
        if (nuri == 1 &&
            bb_tlv(&b, PP2_TYPE_DUET_URI, "the client URI", uri, strlen(uri), err) != 0)
            goto err;
        if (info->id->cert == NULL || (derlen = i2d_X509(info->id->cert, &der)) <= 0) {
            err_set_ssl(err, DUET_ERR_INTERNAL,
                        "the client certificate cannot be encoded for the PROXY v2 header");
            goto err;
        }
        if (bb_tlv(&b, PP2_TYPE_DUET_CERT, "the client certificate", der, (size_t)derlen,
                   err) != 0)
            goto err;
    }
    if (b.oom) {
        err_nomem(err);
        goto err;
    }
    body = b.len - (len_at + 2);
    if (body > 0xFFFF) {
        err_set(err, DUET_ERR_INPUT, "PROXY v2 header would be larger than 64 KiB");
        goto err;
    }
    b.p[len_at] = (uint8_t)(body >> 8);
    b.p[len_at + 1] = (uint8_t)body;
    *out = b.p;
    *len = b.len;
    free(ssl.p);
    OPENSSL_free(der);
    return 0;
err:
    free(ssl.p);
    OPENSSL_free(der);
    free(b.p);
    return -1;
}
