/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfcc.h - the X-Forwarded-Client-Cert header in Envoy's field syntax and
 * the PROXY protocol v2 header with SSL TLVs: how the proxy tells an upstream
 * who the verified client is.
 */
#ifndef DUET_LIB_XFCC_H
#define DUET_LIB_XFCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"
#include "lib/identity.h"

/* What happens to an X-Forwarded-Client-Cert header the client sent itself. */
enum xfcc_mode {
    XFCC_SANITIZE = 0,   /* drop the client's, set the verified identity (default) */
    XFCC_SANITIZE_SET,   /* Envoy's name for the same */
    XFCC_FORWARD_ONLY,   /* pass the client's through unchanged, add nothing */
    XFCC_APPEND_FORWARD  /* keep the client's and append the verified identity */
};

/* Parse "sanitize", "forward_only", "append_forward", "sanitize_set". */
int xfcc_mode_parse(const char *text, enum xfcc_mode *out, struct duet_err *err) MUST_CHECK;

/*
 * One XFCC element for an identity:
 *   Hash=<sha256 of DER, lower-case hex>;Subject="<RFC 4514>";URI=<uri>;DNS=<dns>...
 * URIs, then DNS names, in certificate order; the Subject is always quoted.
 *
 * Escaping, so that no byte from a certificate reaches the header raw,
 * whatever the CA signed (Envoy's rules, plus a reversible step for bytes
 * Envoy leaves undefined):
 *   1. every byte outside visible ASCII (below 0x20, 0x7F and above, but not
 *      the space) and every '%' becomes %XX, two upper-case hex digits; so
 *      "a\r\nb" is a%0D%0Ab, "100%" is 100%25, UTF-8 "é" is %C3%A9;
 *   2. a value then holding ',', ';', '=', '"', '\' or a space is put in
 *      double quotes, with '"' and '\' preceded by a backslash.
 * To read a value back: drop the quotes and the backslash before '"' or '\',
 * then replace each %XX by its byte.  The element holds only 0x20-0x7E, and
 * spaces only inside quotes.  Returns a new string (free()) or NULL on OOM.
 */
char *xfcc_element(const struct duet_identity *id);

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
