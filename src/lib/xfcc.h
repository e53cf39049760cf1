/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfcc.h - the X-Forwarded-Client-Cert header in Envoy's field syntax: how
 * the proxy tells an HTTP upstream who the verified client is (the PROXY
 * protocol v2 header of TCP mode is built in src/proxy/ppv2.c).
 */
#ifndef DUET_LIB_XFCC_H
#define DUET_LIB_XFCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
