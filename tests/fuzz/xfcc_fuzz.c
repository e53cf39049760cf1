/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xfcc_fuzz.c - libFuzzer target for the identity headers sent upstream
 * (src/lib/xfcc.c).  The input is an identity: a subject, a CN and SANs of
 * any bytes (split at NUL; the first byte of each SAN picks URI or DNS).  The
 * property is more than "does not crash":
 *   - the X-Forwarded-Client-Cert element holds only visible ASCII, and
 *     spaces only inside quotes;
 *   - split by the grammar documented in xfcc.h (by a parser written here,
 *     independently of xfcc.c), it gives back Hash, then exactly the subject,
 *     the URIs and the DNS names, in order;
 *   - the PROXY v2 header parses back exactly: every TLV inside the header,
 *     the CN and the single URI equal to what went in, or the build fails
 *     with an error instead of cutting a value.
 * Any violation abort()s.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "lib/xfcc.h"
#include "proxy/ppv2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SANS 8

static void
die(const char *what, const char *element)
{
    fprintf(stderr, "xfcc_fuzz: %s\nelement: %s\n", what, element != NULL ? element : "(none)");
    abort();
}

/* One self-signed certificate for the Hash, made once. */
static X509 *
the_cert(void)
{
    static X509 *x;
    EVP_PKEY *k;

    if (x != NULL)
        return x;
    k = EVP_EC_gen("P-256");
    x = X509_new();
    if (k == NULL || x == NULL || !X509_set_version(x, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || !X509_set_pubkey(x, k) ||
        !X509_sign(x, k, EVP_sha256()))
        die("cannot make the test certificate", NULL);
    EVP_PKEY_free(k);
    return x;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * The next key=value of the element at *pp; the decoded value into out (at
 * most cap bytes, NUL-terminated).  Fails (abort) on anything the grammar
 * does not allow.
 */
static void
next_pair(const char **pp, const char *elem, char *key, size_t keycap, char *out, size_t cap,
          size_t *outlen)
{
    const char *p = *pp;
    size_t k = 0, n = 0;
    bool quoted;

    while (*p && *p != '=') {
        if (k + 1 >= keycap)
            die("key too long", elem);
        key[k++] = *p++;
    }
    key[k] = '\0';
    if (*p++ != '=')
        die("no '=' after a key", elem);
    quoted = *p == '"';
    if (quoted)
        p++;
    for (;;) {
        char c = *p;
        if (n + 1 >= cap)
            die("value longer than its input", elem);
        if (quoted && c == '"') {
            p++;
            break;
        }
        if (!quoted && (c == '\0' || c == ';'))
            break;
        if (c == '\0')
            die("unterminated quoted value", elem);
        if (!quoted && strchr(",=\"\\ ", c) != NULL)
            die("a special character in a bare value", elem);
        if (quoted && c == '\\') {
            if (p[1] != '"' && p[1] != '\\')
                die("a backslash before something else than '\"' or '\\'", elem);
            out[n++] = p[1];
            p += 2;
            continue;
        }
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (hi < 0 || lo < 0)
                die("'%' without two upper-case hex digits", elem);
            out[n++] = (char)(hi << 4 | lo);
            p += 3;
            continue;
        }
        out[n++] = c;
        p++;
    }
    out[n] = '\0';
    *outlen = n;
    if (*p == ';')
        p++;
    else if (*p != '\0')
        die("junk after a value", elem);
    *pp = p;
}

static void
expect_pair(const char **pp, const char *elem, const char *key, const char *value, char *buf,
            size_t cap)
{
    char k[16];
    size_t n;

    if (**pp == '\0')
        die("the element ends early", elem);
    next_pair(pp, elem, k, sizeof(k), buf, cap, &n);
    if (strcmp(k, key) != 0)
        die("pairs out of order", elem);
    if (value != NULL && (n != strlen(value) || memcmp(buf, value, n) != 0))
        die("a value does not come back", elem);
}

static void
check_xfcc(const struct duet_identity *id, size_t cap)
{
    char *e = xfcc_element(id);
    char *buf = malloc(cap + 80);
    const char *p;
    bool inq = false;

    if (e == NULL || buf == NULL)
        die("xfcc_element failed", NULL);
    /* visible ASCII; a space only inside quotes (a quote preceded by '\' is escaped) */
    for (const char *q = e; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7E)
            die("a byte outside visible ASCII", e);
        if (c == ' ' && !inq)
            die("a space outside quotes", e);
        if (inq && c == '\\' && q[1] != '\0')
            q++;
        else if (c == '"')
            inq = !inq;
    }
    p = e;
    expect_pair(&p, e, "Hash", NULL, buf, cap + 80);
    if (strlen(buf) != 64 || strspn(buf, "0123456789abcdef") != 64)
        die("the Hash is not 64 lower-case hex digits", e);
    expect_pair(&p, e, "Subject", id->subject, buf, cap + 80);
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_URI)
            expect_pair(&p, e, "URI", id->sans[i].value, buf, cap + 80);
    }
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_DNS)
            expect_pair(&p, e, "DNS", id->sans[i].value, buf, cap + 80);
    }
    if (*p != '\0')
        die("pairs left over", e);
    free(buf);
    free(e);
}

/* The TLV of a type in [p, end), which TLVs must fill exactly; NULL when absent. */
static const uint8_t *
find_tlv(const uint8_t *p, const uint8_t *end, uint8_t type, size_t *n)
{
    const uint8_t *found = NULL;

    while (p < end) {
        size_t len;
        if (end - p < 3)
            die("a TLV header cut short", NULL);
        len = (size_t)p[1] << 8 | p[2];
        if ((size_t)(end - p - 3) < len)
            die("a TLV overruns the header", NULL);
        if (p[0] == type) {
            found = p + 3;
            *n = len;
        }
        p += 3 + len;
    }
    return found;
}

static void
check_tlv(const uint8_t *p, const uint8_t *end, uint8_t type, const char *want)
{
    size_t n = 0;
    const uint8_t *v = find_tlv(p, end, type, &n);

    if (want == NULL) {
        if (v != NULL)
            die("an unexpected TLV", NULL);
        return;
    }
    if (v == NULL || n != strlen(want) || memcmp(v, want, n) != 0)
        die("a TLV value does not come back", NULL);
}

static void
check_ppv2(const struct duet_identity *id)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct ppv2_info info = {.src = (const struct sockaddr *)&a,
                             .dst = (const struct sockaddr *)&a,
                             .alpn = "h2",
                             .tls_version = "TLSv1.3",
                             .cipher = "TLS_AES_128_GCM_SHA256",
                             .id = id};
    struct duet_err err;
    uint8_t *h = NULL;
    size_t len = 0, n = 0, nuri = 0;
    const uint8_t *ssl, *end;
    const char *uri = NULL;

    err_clear(&err);
    if (ppv2_build(&info, &h, &len, &err) != 0) {
        /* refused, never cut: only when something is too large for a TLV or the header */
        if (h != NULL || (strstr(err.msg, "65535") == NULL && strstr(err.msg, "64 KiB") == NULL))
            die("ppv2_build failed for another reason", err.msg);
        return;
    }
    if (len < 16 + 12 || ((size_t)h[14] << 8 | h[15]) != len - 16)
        die("the PROXY v2 length is wrong", NULL);
    end = h + len;
    check_tlv(h + 28, end, PP2_TYPE_ALPN, "h2");
    ssl = find_tlv(h + 28, end, PP2_TYPE_SSL, &n);
    if (ssl == NULL || n < 5)
        die("no SSL TLV", NULL);
    check_tlv(ssl + 5, ssl + n, PP2_SUBTYPE_SSL_CN, id->cn);
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_URI) {
            nuri++;
            uri = id->sans[i].value;
        }
    }
    check_tlv(h + 28, end, PP2_TYPE_DUET_URI, nuri == 1 ? uri : NULL);
    free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    struct identity_san sans[MAX_SANS];
    struct duet_identity id;
    char *p, *end;
    size_t nfield = 0;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    memset(&id, 0, sizeof(id));
    id.cert = the_cert();
    id.sans = sans;
    /* fields split at NUL: subject, CN, then SANs (first byte: odd URI, even DNS) */
    p = copy;
    end = copy + size;
    while (p <= end && nfield < 2 + MAX_SANS) {
        char *f = p;
        p += strlen(p) + 1;
        if (nfield == 0) {
            id.subject = f;
        } else if (nfield == 1) {
            id.cn = *f != '\0' ? f : NULL;
        } else {
            sans[id.nsans].type = (*f & 1) ? DUET_SAN_URI : DUET_SAN_DNS;
            sans[id.nsans].value = *f != '\0' ? f + 1 : f;
            id.nsans++;
        }
        nfield++;
    }
    check_xfcc(&id, size);
    check_ppv2(&id);
    free(copy);
    return 0;
}
