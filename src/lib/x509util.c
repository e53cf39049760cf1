/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509util.c - names, serials, times, fingerprints and key descriptions in
 * the forms duet prints everywhere, so that `duet cert inspect`, `duet cert
 * verify`, the logs and the inventory spell a certificate the same way.
 */
#include "lib/x509util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <openssl/objects.h>

/* Copy a memory BIO's contents into a new NUL-terminated string. */
static char *
bio_to_string(BIO *bio)
{
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    char *s;

    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0) /* an empty BIO has no data pointer, and memcpy must not get NULL */
        memcpy(s, mem, (size_t)n);
    s[n] = '\0';
    return s;
}

/* RFC 4514 string form of a name; see x509util.h. */
char *
x509u_name(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;

    if (bio == NULL)
        return NULL;
    /* RFC 2253 flags minus the hex dump of unknown types, UTF-8 kept as is. */
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        s = bio_to_string(bio);
    BIO_free(bio);
    return s;
}

/* First commonName as UTF-8; see x509util.h. */
char *
x509u_name_cn(const X509_NAME *name)
{
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    const ASN1_STRING *data;
    unsigned char *utf8 = NULL;
    int n;
    char *s;

    if (idx < 0)
        return NULL;
    data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s != NULL) {
        memcpy(s, utf8, (size_t)n);
        s[n] = '\0';
    }
    OPENSSL_free(utf8);
    return s;
}

int
x509u_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Colon hex of a byte string; see x509util.h. */
char *
x509u_hex_colon(const uint8_t *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *s = malloc(len == 0 ? 1 : len * 3);
    size_t i;

    if (s == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        s[i * 3] = hex[buf[i] >> 4];
        s[i * 3 + 1] = hex[buf[i] & 15];
        s[i * 3 + 2] = (i + 1 < len) ? ':' : '\0';
    }
    if (len == 0)
        s[0] = '\0';
    return s;
}

/* Serial number as colon hex; a negative serial (invalid, but seen) gets a '-'. */
char *
x509u_serial(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    uint8_t buf[64];
    int n;
    char *hex;
    char *s;

    if (bn == NULL)
        return NULL;
    n = BN_num_bytes(bn);
    if (n > (int)sizeof(buf)) {
        BN_free(bn);
        return strdup("(oversized)");
    }
    if (n == 0) {
        buf[0] = 0;
        n = 1;
    } else {
        BN_bn2bin(bn, buf);
    }
    hex = x509u_hex_colon(buf, (size_t)n);
    if (hex == NULL || !BN_is_negative(bn)) {
        BN_free(bn);
        return hex;
    }
    BN_free(bn);
    s = malloc(strlen(hex) + 2);
    if (s != NULL) {
        s[0] = '-';
        strcpy(s + 1, hex);
    }
    free(hex);
    return s;
}

static EVP_MD *sha256_md;
static CRYPTO_ONCE sha256_once = CRYPTO_ONCE_STATIC_INIT;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 fetched once; see x509util.h.  Falls back to the implicit fetch. */
const EVP_MD *
x509u_sha256(void)
{
    if (!CRYPTO_THREAD_run_once(&sha256_once, sha256_fetch) || sha256_md == NULL)
        return EVP_sha256();
    return sha256_md;
}

/* SHA-256 fingerprint of the certificate DER; see x509util.h. */
char *
x509u_fingerprint(const X509 *cert)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!X509_digest(cert, x509u_sha256(), md, &n))
        return NULL;
    return x509u_hex_colon(md, n);
}

/* SHA-256 of the SubjectPublicKeyInfo DER; see x509util.h. */
char *
x509u_spki_fingerprint(const EVP_PKEY *pkey)
{
    uint8_t *der = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int len;
    char *s = NULL;

    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return NULL;
    if (EVP_Digest(der, (size_t)len, md, &n, x509u_sha256(), NULL))
        s = x509u_hex_colon(md, n);
    OPENSSL_free(der);
    return s;
}

/* SHA-256 of a certificate's SubjectPublicKeyInfo; see x509util.h. */
char *
x509u_cert_spki_fingerprint(const X509 *cert)
{
    uint8_t *der = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int len;
    char *s = NULL;

    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0)
        return NULL;
    if (EVP_Digest(der, (size_t)len, md, &n, x509u_sha256(), NULL))
        s = x509u_hex_colon(md, n);
    OPENSSL_free(der);
    return s;
}

/* Subject and serial of a certificate as used in every message. */
void
x509u_label(const X509 *cert, char *buf, size_t len)
{
    char *subj = x509u_name(X509_get_subject_name(cert));
    char *serial = x509u_serial(X509_get0_serialNumber(cert));

    if (subj != NULL && subj[0] == '\0') {
        free(subj);
        subj = strdup("(empty subject)");
    }
    snprintf(buf, len, "%s (serial %s)", subj != NULL ? subj : "?", serial != NULL ? serial : "?");
    free(subj);
    free(serial);
}

/* ASN1_TIME to seconds since the epoch. */
bool
x509u_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

void
x509u_fmt_date(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

void
x509u_fmt_rfc3339(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whole days between t and now, spelled for a sentence. */
void
x509u_fmt_days(int64_t t, int64_t now, char *buf, size_t len)
{
    int64_t d = t - now;
    int64_t days = (d < 0 ? -d : d) / 86400;

    if (days == 0)
        snprintf(buf, len, d < 0 ? "less than a day ago" : "in less than a day");
    else if (d < 0)
        snprintf(buf, len, "%lld day%s ago", (long long)days, days == 1 ? "" : "s");
    else
        snprintf(buf, len, "in %lld day%s", (long long)days, days == 1 ? "" : "s");
}

/* Read exactly n digits. */
static bool
digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* RFC 3339 date-time or full-date; see x509util.h. */
bool
x509u_parse_time(const char *text, int64_t *out)
{
    const char *p = text;
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0;
    int64_t offset = 0;

    memset(&tm, 0, sizeof(tm));
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &s))
            return false;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return false;
            while (isdigit((unsigned char)*p))
                p++;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = (*p == '-') ? -1 : 1;
            p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
            offset = sign * (int64_t)(oh * 3600 + om * 60);
        } else {
            return false;
        }
    }
    if (*p != '\0')
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *out = (int64_t)timegm(&tm) - offset;
    /* timegm normalises 2026-02-31 to March; refuse dates that do not exist. */
    {
        time_t back = (time_t)(*out + offset);
        struct tm chk;
        gmtime_r(&back, &chk);
        if (chk.tm_mday != d || chk.tm_mon != mo - 1)
            return false;
    }
    return true;
}

/* Human description of a public or private key. */
void
x509u_key_describe(const EVP_PKEY *pkey, char *buf, size_t len, int *bits)
{
    int b = EVP_PKEY_get_bits(pkey);
    char group[64];
    size_t glen = 0;

    if (bits != NULL)
        *bits = b;
    if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
        snprintf(buf, len, "%s %d", EVP_PKEY_is_a(pkey, "RSA") ? "RSA" : "RSA-PSS", b);
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen)) {
            int nid = OBJ_sn2nid(group);
            const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
            snprintf(buf, len, "EC %s", nist != NULL ? nist : group);
        } else {
            snprintf(buf, len, "EC (explicit parameters, %d bits)", b);
        }
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        snprintf(buf, len, "Ed25519");
    } else if (EVP_PKEY_is_a(pkey, "ED448")) {
        snprintf(buf, len, "Ed448");
    } else if (EVP_PKEY_is_a(pkey, "DSA")) {
        snprintf(buf, len, "DSA %d", b);
    } else {
        const char *name = EVP_PKEY_get0_type_name(pkey);
        snprintf(buf, len, "%s %d", name != NULL ? name : "unknown", b);
    }
}

/* Digest used by a signature algorithm, as a short name. */
const char *
x509u_sig_digest(int sig_nid)
{
    int md = NID_undef;
    int pk = NID_undef;

    if (!OBJ_find_sigid_algs(sig_nid, &md, &pk) || md == NID_undef)
        return "";
    return OBJ_nid2sn(md);
}

bool
x509u_self_issued(const X509 *cert)
{
    return X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
}

/* The issuer of cert, by name and signature, among a then b; see x509util.h. */
X509 *
x509u_find_issuer(X509 *cert, STACK_OF(X509) * a, STACK_OF(X509) * b)
{
    STACK_OF(X509) * lists[2] = {a, b};

    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; lists[k] != NULL && i < sk_X509_num(lists[k]); i++) {
            X509 *c = sk_X509_value(lists[k], i);
            EVP_PKEY *pk = X509_get0_pubkey(c);
            if (c != cert && pk != NULL && X509_check_issued(c, cert) == X509_V_OK &&
                X509_verify(cert, pk) == 1)
                return c;
        }
    }
    return NULL;
}

/* RFC 5280 5.3.1 reason code names; 7 is not used by the RFC. */
const char *
x509u_crl_reason(long code)
{
    static const char *const names[] = {
        "unspecified",   "keyCompromise",      "cACompromise", "affiliationChanged",
        "superseded",    "cessationOfOperation", "certificateHold", "unknown",
        "removeFromCRL", "privilegeWithdrawn", "aACompromise"};

    if (code < 0 || code >= (long)(sizeof(names) / sizeof(names[0])))
        return "unknown";
    return names[code];
}

/* One GeneralName as text; see x509util.h. */
void
x509u_general_name(const GENERAL_NAME *g, char *buf, size_t len)
{
    switch (g->type) {
    case GEN_DNS:
    case GEN_URI:
    case GEN_EMAIL: {
        const char *tag = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
        snprintf(buf, len, "%s:%.*s", tag, ASN1_STRING_length(g->d.ia5),
                 (const char *)ASN1_STRING_get0_data(g->d.ia5));
        break;
    }
    case GEN_IPADD: {
        int n = ASN1_STRING_length(g->d.ip);
        const unsigned char *d = ASN1_STRING_get0_data(g->d.ip);
        char a[INET6_ADDRSTRLEN], m[INET6_ADDRSTRLEN];
        if (n == 4 && inet_ntop(AF_INET, d, a, sizeof(a)))
            snprintf(buf, len, "IP:%s", a);
        else if (n == 16 && inet_ntop(AF_INET6, d, a, sizeof(a)))
            snprintf(buf, len, "IP:%s", a);
        else if (n == 8 && inet_ntop(AF_INET, d, a, sizeof(a)) && inet_ntop(AF_INET, d + 4, m, sizeof(m)))
            snprintf(buf, len, "IP:%s/%s", a, m); /* name constraint: address + mask */
        else if (n == 32 && inet_ntop(AF_INET6, d, a, sizeof(a)) &&
                 inet_ntop(AF_INET6, d + 16, m, sizeof(m)))
            snprintf(buf, len, "IP:%s/%s", a, m);
        else
            snprintf(buf, len, "IP:(malformed, %d bytes)", n);
        break;
    }
    case GEN_DIRNAME: {
        char *dn = x509u_name(g->d.directoryName);
        snprintf(buf, len, "DirName:%s", dn != NULL ? dn : "?");
        free(dn);
        break;
    }
    case GEN_RID: {
        char oid[128];
        OBJ_obj2txt(oid, sizeof(oid), g->d.registeredID, 1);
        snprintf(buf, len, "RID:%s", oid);
        break;
    }
    case GEN_OTHERNAME:
        snprintf(buf, len, "othername");
        break;
    default:
        snprintf(buf, len, "other(%d)", g->type);
        break;
    }
}

