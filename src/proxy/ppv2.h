/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ppv2.h - the PROXY protocol v2 header with SSL TLVs (haproxy
 * doc/proxy-protocol.txt): how the proxy tells a TCP-mode upstream who the
 * client is, where it connected from and what it negotiated.
 */
#ifndef DUET_PROXY_PPV2_H
#define DUET_PROXY_PPV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"
#include "lib/identity.h"

/* PROXY v2 TLV types (haproxy doc/proxy-protocol.txt section 2.2). */
#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_SUBTYPE_SSL_CIPHER 0x23
#define PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04
/* duet's own TLVs, in the range the specification reserves for custom use. */
#define PP2_TYPE_DUET_URI 0xE0  /* the client's URI SAN (SPIFFE ID), when exactly one */
#define PP2_TYPE_DUET_CERT 0xE1 /* the client's certificate, DER */

/* What goes into a PROXY v2 header. */
struct ppv2_info {
    const struct sockaddr *src; /* client address (AF_INET or AF_INET6) */
    const struct sockaddr *dst; /* address the client connected to */
    const char *alpn;           /* negotiated ALPN, or NULL */
    const char *sni;            /* server name the client asked for, or NULL */
    const char *tls_version;    /* "TLSv1.3" */
    const char *cipher;
    const struct duet_identity *id; /* verified client, or NULL */
    bool resumed;
};

/*
 * Build a PROXY v2 header (PROXY command, TCP over IPv4 or IPv6, or LOCAL
 * when the addresses are not IP) with the TLVs above.  TLV values are binary
 * and carried as they are; one that does not fit a TLV's 16-bit length, or a
 * header over 64 KiB, is refused with an error naming it (never cut, wrapped
 * or left out).  *out is owned by the caller (free()).
 */
int ppv2_build(const struct ppv2_info *info, uint8_t **out, size_t *len,
               struct duet_err *err) MUST_CHECK;

#endif
