/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509util.h - small conversions shared by identity, verification and
 * inspection: names, serials, times, fingerprints, key descriptions.
 * Strings returned as `char *` are owned by the caller (free()).
 */
#ifndef DUET_LIB_X509UTIL_H
#define DUET_LIB_X509UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/compat.h"
#include "lib/err.h"

/* Distinguished name in RFC 4514 order and escaping ("CN=alice,O=Corp"); NULL on OOM. */
char *x509u_name(const X509_NAME *name);
/* The first commonName of a name as UTF-8, or NULL when there is none. */
char *x509u_name_cn(const X509_NAME *name);
/* Serial as upper-case hex bytes joined by colons ("3F:A1:07"); NULL on OOM. */
char *x509u_serial(const ASN1_INTEGER *serial);
/* The value of one hex digit, or -1. */
int x509u_hexval(int c);
/* Bytes as upper-case hex joined by colons; NULL on OOM. */
char *x509u_hex_colon(const uint8_t *buf, size_t len);
/* SHA-256 of the certificate's DER as colon hex; NULL on failure. */
char *x509u_fingerprint(const X509 *cert);
/* SHA-256, fetched from the provider once for the process (an implicit fetch per use costs). */
const EVP_MD *x509u_sha256(void);
/* SHA-256 of the DER SubjectPublicKeyInfo as colon hex; NULL on failure. */
char *x509u_spki_fingerprint(const EVP_PKEY *pkey);
/*
 * SHA-256 of a certificate's SubjectPublicKeyInfo exactly as the certificate
 * carries it, as colon hex; NULL on failure.  The same value as
 * x509u_spki_fingerprint() of its key for the keys duet writes, without
 * OpenSSL 3.0's encoder (which costs a CA several times the signature).
 */
char *x509u_cert_spki_fingerprint(const X509 *cert);
/*
 * How a certificate is named in messages: "CN=alice,O=Corp (serial 3F:A1)".
 * Never NULL: falls back to a fixed text when memory runs out.
 */
void x509u_label(const X509 *cert, char *buf, size_t len);

/* ASN1_TIME as seconds since the epoch; false when it cannot be read. */
bool x509u_time(const ASN1_TIME *t, int64_t *out);
/* "2026-10-01" in UTC. */
void x509u_fmt_date(int64_t t, char *buf, size_t len);
/* "2026-10-01T09:30:00Z". */
void x509u_fmt_rfc3339(int64_t t, char *buf, size_t len);
/*
 * Distance of t from now in whole days: "52 days ago", "in 1 day"; under a
 * day, "less than a day ago" or "in less than a day".
 */
void x509u_fmt_days(int64_t t, int64_t now, char *buf, size_t len);
/*
 * Parse an RFC 3339 time ("2026-10-01T09:30:00Z", "...+02:00", fractions
 * ignored) or a bare date ("2026-10-01", midnight UTC).  Returns false on any
 * other text.
 */
bool x509u_parse_time(const char *text, int64_t *out);

/* "EC P-256", "RSA 2048", "Ed25519", ...; bits in *bits when not NULL. */
void x509u_key_describe(const EVP_PKEY *pkey, char *buf, size_t len, int *bits);
/* Short name of the digest a certificate/CRL/CSR signature algorithm uses ("SHA256"), or "". */
const char *x509u_sig_digest(int sig_nid);
/*
 * One GeneralName as "DNS:x", "IP:1.2.3.4", "URI:u", "email:e", "DirName:CN=x",
 * "RID:1.2.3"; an IP name constraint shows "IP:addr/mask".
 */
void x509u_general_name(const GENERAL_NAME *g, char *buf, size_t len);
/* RFC 5280 5.3.1 name of a CRL reason code ("keyCompromise"), or "unknown". */
const char *x509u_crl_reason(long code);
/* Whether `cert` is self-issued (subject equals issuer). */
bool x509u_self_issued(const X509 *cert);
/*
 * The issuer of `cert` among `a`, then among `b` (either may be NULL): the
 * first certificate other than `cert` whose subject and key identifier match
 * cert's issuer (X509_check_issued) and whose key verifies cert's signature,
 * so a CA of the same name with another key is passed over.  Borrowed from
 * the stack; NULL when none is there.
 */
X509 *x509u_find_issuer(X509 *cert, STACK_OF(X509) * a, STACK_OF(X509) * b);

#endif
