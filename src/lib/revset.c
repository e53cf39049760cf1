/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revset.c - CRLs read into compact sets of revoked serials; see revset.h.
 *
 * The CRL (RFC 5280 section 5) is walked as DER:
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
 *   TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier,
 *       issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL,
 *       revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER,
 *           revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
 *       crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 *
 * Only the small parts (issuer, algorithm, signature, CRL extensions) go
 * through OpenSSL's decoders.  Entries are counted in a first pass and stored
 * in a second: the serial's DER content bytes in one blob, the revocation date
 * (32-bit seconds) and reason beside them, and an open-addressing table of
 * entry numbers at most 3/4 full.
 */
#include "lib/revset.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <errno.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/fileio.h"
#include "lib/x509util.h"

#define REV_NO_REASON 255
#define REV_MAX_SERIAL 127 /* RFC 5280 allows 20 octets; leave room for odd CAs */
#define REV_MEMO_KEYS 4
#define REV_MAX_ENTRY_ISSUERS 1024 /* distinct certificateIssuer values per indirect CRL */

/* One issuer key a CRL's signature verified with. */
struct memo_key {
    uint8_t *der;
    size_t len;
};

struct revcrl {
    X509_NAME *issuer;
    char *source;
    int64_t this_update;
    int64_t next_update;
    bool only_user; /* issuingDistributionPoint: onlyContainsUserCerts */
    bool only_ca;   /* issuingDistributionPoint: onlyContainsCACerts */
    GENERAL_NAMES *idp_names; /* issuingDistributionPoint: its distributionPoint, or NULL */
    ASN1_OCTET_STRING *idp_der; /* issuingDistributionPoint as encoded, or NULL */
    ASN1_OCTET_STRING *akid;    /* authorityKeyIdentifier's keyIdentifier, or NULL */
    ASN1_INTEGER *number;       /* cRLNumber, or NULL */
    bool delta;                 /* a delta CRL (deltaCRLIndicator, RFC 5280 5.2.4) */
    ASN1_INTEGER *base;         /* a delta CRL's BaseCRLNumber */

    /* The signature: over a kept digest, or over the kept TBS for EdDSA and RSA-PSS. */
    X509_ALGOR *alg;
    ASN1_BIT_STRING *sig;
    const EVP_MD *md;
    const char *key_type; /* "EC" or "RSA" for the digest path */
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen;
    ASN1_TYPE *tbs; /* NULL on the digest path */

    pthread_mutex_t memo_lock;
    atomic_int nmemo;
    struct memo_key memo[REV_MEMO_KEYS];

    /* The set. */
    uint32_t n;
    uint32_t mask;    /* table size - 1 */
    uint32_t *table;  /* entry number + 1, or 0 */
    uint32_t *soff;   /* offset of entry i's serial in blob: length byte, then content */
    uint32_t *date;   /* revocation time, seconds since 1970 */
    uint8_t *reason;  /* CRLReason, or REV_NO_REASON */
    uint8_t *blob;
    size_t bloblen;

    /*
     * An indirect CRL (RFC 5280 5.2.5 indirectCRL): the certificate issuer of
     * each entry (5.3.3).  Issuer 0 is the CRL's own issuer; issuer k > 0 is
     * the k-th distinct certificateIssuer value, kept as its names and its DER.
     * Only indirect CRLs have `eiss`, so an ordinary CRL's entries cost what
     * they did; an entry's key in the table is (issuer number, serial).
     */
    bool indirect;
    uint16_t *eiss;            /* issuer number of entry i, or NULL for a direct CRL */
    uint32_t nci;              /* issuers known, counting issuer 0 */
    GENERAL_NAMES **ci_names;  /* [k], k >= 1; [0] unused */
    struct memo_key *ci_der;   /* [k]: the certificateIssuer value as encoded */
};

struct revset {
    struct revcrl **crls;
    size_t n;
    size_t ndelta;     /* how many of them are delta CRLs */
    bool insecure_dsa; /* DSA-signed CRLs are accepted (revset_insecure_crl_dsa()) */
};

/* --- DER --------------------------------------------------------------------- */

struct der {
    const uint8_t *p;
    size_t len;
};

/* The next element of `in`: its tag, its content, and where it starts and ends. */
static bool
der_next(struct der *in, unsigned int *tag, struct der *content, struct der *whole)
{
    const uint8_t *start = in->p;
    size_t left = in->len;
    size_t len = 0;
    size_t hdr = 2;

    if (left < 2 || (start[0] & 0x1f) == 0x1f)
        return false;
    if (start[1] < 0x80) {
        len = start[1];
    } else {
        size_t nb = start[1] & 0x7f;
        if (nb == 0 || nb > 4 || left < 2 + nb)
            return false;
        for (size_t i = 0; i < nb; i++)
            len = (len << 8) | start[2 + i];
        hdr = 2 + nb;
    }
    if (len > left - hdr)
        return false;
    *tag = start[0];
    content->p = start + hdr;
    content->len = len;
    if (whole != NULL) {
        whole->p = start;
        whole->len = hdr + len;
    }
    in->p += hdr + len;
    in->len -= hdr + len;
    return true;
}

/* Peek at the tag of the next element, or -1 at the end. */
static int
der_peek(const struct der *in)
{
    return in->len > 0 ? in->p[0] : -1;
}

static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
digits(const uint8_t *p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* UTCTime "YYMMDDHHMMSSZ" or GeneralizedTime "YYYYMMDDHHMMSSZ" (RFC 5280 4.1.2.5). */
static bool
der_time(unsigned int tag, const struct der *c, int64_t *out)
{
    const uint8_t *p = c->p;
    int y, mo, d, h, mi, s;

    if (tag == 0x17 && c->len == 13) {
        if (!digits(p, 2, &y))
            return false;
        y += y < 50 ? 2000 : 1900;
        p += 2;
    } else if (tag == 0x18 && c->len == 15) {
        if (!digits(p, 4, &y))
            return false;
        p += 4;
    } else {
        return false;
    }
    if (!digits(p, 2, &mo) || !digits(p + 2, 2, &d) || !digits(p + 4, 2, &h) ||
        !digits(p + 6, 2, &mi) || !digits(p + 8, 2, &s) || p[10] != 'Z')
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return true;
}

/* A DER INTEGER's content is minimal: no redundant leading 00 or FF octet. */
static bool
der_int_minimal(const struct der *c)
{
    if (c->len == 0)
        return false;
    if (c->len == 1)
        return true;
    return !((c->p[0] == 0x00 && c->p[1] < 0x80) || (c->p[0] == 0xff && c->p[1] >= 0x80));
}

static uint32_t
serial_hash(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* --- one CRL ------------------------------------------------------------------ */

static void
revcrl_free(struct revcrl *c)
{
    if (c == NULL)
        return;
    X509_NAME_free(c->issuer);
    GENERAL_NAMES_free(c->idp_names);
    ASN1_OCTET_STRING_free(c->idp_der);
    ASN1_OCTET_STRING_free(c->akid);
    ASN1_INTEGER_free(c->number);
    ASN1_INTEGER_free(c->base);
    free(c->source);
    X509_ALGOR_free(c->alg);
    ASN1_BIT_STRING_free(c->sig);
    ASN1_TYPE_free(c->tbs);
    for (int i = 0; i < REV_MEMO_KEYS; i++)
        free(c->memo[i].der);
    pthread_mutex_destroy(&c->memo_lock);
    free(c->table);
    free(c->soff);
    free(c->date);
    free(c->reason);
    free(c->blob);
    free(c->eiss);
    for (uint32_t k = 1; k < c->nci; k++) {
        GENERAL_NAMES_free(c->ci_names[k]);
        free(c->ci_der[k].der);
    }
    free(c->ci_names);
    free(c->ci_der);
    free(c);
}

/* Where a CRL is, for messages: "FILE: the CRL of ISSUER" or "FILE: CRL #n". */
static void
crl_where(const char *label, int index, const X509_NAME *issuer, char *buf, size_t len)
{
    char *name = issuer != NULL ? x509u_name(issuer) : NULL;

    if (name != NULL)
        snprintf(buf, len, "%s: the CRL of %s", label, name);
    else
        snprintf(buf, len, "%s: CRL #%d", label, index + 1);
    free(name);
}

/* The OID of an extension, dotted, for messages. */
static void
oid_text(const struct der *oid, char *buf, size_t len)
{
    uint8_t tlv[2 + 127];
    const unsigned char *p = tlv;
    ASN1_OBJECT *o = NULL;

    /* `oid` is the content octets: rebuild the OBJECT IDENTIFIER's TLV to decode it. */
    if (oid->len < 128) {
        tlv[0] = 0x06;
        tlv[1] = (uint8_t)oid->len;
        memcpy(tlv + 2, oid->p, oid->len);
        o = d2i_ASN1_OBJECT(NULL, &p, (long)oid->len + 2);
    }
    snprintf(buf, len, "?");
    if (o != NULL)
        OBJ_obj2txt(buf, (int)len, o, 1);
    ASN1_OBJECT_free(o);
    ERR_clear_error();
}

/*
 * The extensions of one entry: the reason is kept, the invalidity date and
 * hold instruction are allowed, a certificateIssuer's value is returned in
 * *ci (RFC 5280 5.3.3: "If used by conforming CRL issuers, this extension
 * MUST always be critical", so a non-critical one is refused, and it belongs
 * to indirect CRLs only: "identifies the certificate issuer associated with
 * an entry in an indirect CRL"), and any other critical extension is refused.
 */
static int
entry_extensions(const struct revcrl *c, struct der exts, const char *where, size_t idx,
                 int *reason, struct der *ci, struct duet_err *err)
{
    static const uint8_t oid_reason[] = {0x55, 0x1d, 0x15};
    static const uint8_t oid_invalidity[] = {0x55, 0x1d, 0x18};
    static const uint8_t oid_hold[] = {0x55, 0x1d, 0x17};
    static const uint8_t oid_cert_issuer[] = {0x55, 0x1d, 0x1d};
    unsigned int tag;
    struct der ext;

    while (exts.len > 0) {
        struct der oid, v;
        bool critical = false;
        if (!der_next(&exts, &tag, &ext, NULL) || tag != 0x30 ||
            !der_next(&ext, &tag, &oid, NULL) || tag != 0x06)
            return err_set(err, DUET_ERR_INPUT, "%s: entry %zu has a malformed extension", where,
                           idx + 1);
        if (der_peek(&ext) == 0x01) {
            if (!der_next(&ext, &tag, &v, NULL) || v.len != 1)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: entry %zu has a malformed extension", where, idx + 1);
            critical = v.p[0] != 0;
        }
        if (!der_next(&ext, &tag, &v, NULL) || tag != 0x04 || ext.len != 0)
            return err_set(err, DUET_ERR_INPUT, "%s: entry %zu has a malformed extension", where,
                           idx + 1);
        if (oid.len == 3 && memcmp(oid.p, oid_reason, 3) == 0) {
            struct der e;
            if (!der_next(&v, &tag, &e, NULL) || tag != 0x0a || e.len != 1 || e.p[0] > 10 ||
                e.p[0] == 7)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: entry %zu has a reasonCode that is not a CRLReason (0-10)",
                               where, idx + 1);
            *reason = e.p[0];
        } else if (oid.len == 3 && memcmp(oid.p, oid_cert_issuer, 3) == 0) {
            if (!c->indirect)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: entry %zu has a certificateIssuer extension, but the CRL is "
                               "not indirect (no indirectCRL in its issuingDistributionPoint; "
                               "RFC 5280 5.3.3)",
                               where, idx + 1);
            if (!critical)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: entry %zu has a certificateIssuer extension that is not "
                               "critical; RFC 5280 5.3.3 requires it critical",
                               where, idx + 1);
            *ci = v;
        } else if (critical && !(oid.len == 3 && (memcmp(oid.p, oid_invalidity, 3) == 0 ||
                                                  memcmp(oid.p, oid_hold, 3) == 0))) {
            char o[80];
            oid_text(&oid, o, sizeof(o));
            return err_set(err, DUET_ERR_INPUT,
                           "%s: entry %zu has a critical extension duet does not handle (OID %s)",
                           where, idx + 1, o);
        }
    }
    return 0;
}

/*
 * The issuer number of a certificateIssuer value `ci` (its OCTET STRING
 * content) in an indirect CRL, adding it when new; -1 with err set when it is
 * malformed, names no directoryName (RFC 5280 5.3.3: "Conforming CRL issuers
 * MUST include in this extension the distinguished name (DN) from the issuer
 * field of the certificate that corresponds to this CRL entry") or is one
 * issuer too many.  `prev` is the previous entry's number, tried first.
 */
static int
entry_issuer_number(struct revcrl *c, struct der ci, uint32_t prev, const char *where,
                    size_t idx, struct duet_err *err)
{
    const unsigned char *p = ci.p;
    GENERAL_NAMES *gn = NULL;
    bool dn = false;

    if (prev > 0 && c->ci_der[prev].len == ci.len && memcmp(c->ci_der[prev].der, ci.p, ci.len) == 0)
        return (int)prev;
    for (uint32_t k = 1; k < c->nci; k++)
        if (c->ci_der[k].len == ci.len && memcmp(c->ci_der[k].der, ci.p, ci.len) == 0)
            return (int)k;
    gn = d2i_GENERAL_NAMES(NULL, &p, (long)ci.len);
    for (int i = 0; gn != NULL && i < sk_GENERAL_NAME_num(gn); i++)
        dn = dn || sk_GENERAL_NAME_value(gn, i)->type == GEN_DIRNAME;
    ERR_clear_error();
    if (gn == NULL || p != ci.p + ci.len || !dn) {
        GENERAL_NAMES_free(gn);
        return err_set(err, DUET_ERR_INPUT,
                       "%s: entry %zu has a certificateIssuer that is malformed or names no "
                       "directoryName (RFC 5280 5.3.3)",
                       where, idx + 1);
    }
    if (c->nci >= REV_MAX_ENTRY_ISSUERS) {
        GENERAL_NAMES_free(gn);
        return err_set(err, DUET_ERR_INPUT,
                       "%s: entry %zu: the CRL names more than %d certificate issuers; duet "
                       "accepts at most that many",
                       where, idx + 1, REV_MAX_ENTRY_ISSUERS - 1);
    }
    if (c->nci == 0)
        c->nci = 1; /* issuer 0: the CRL issuer */
    if (c->ci_names == NULL || c->nci % 16 == 0) {
        size_t cap = ((size_t)c->nci + 16) & ~(size_t)15;
        GENERAL_NAMES **nn = realloc(c->ci_names, cap * sizeof(*nn));
        if (nn != NULL)
            c->ci_names = nn;
        struct memo_key *nd = nn != NULL ? realloc(c->ci_der, cap * sizeof(*nd)) : NULL;
        if (nd == NULL) {
            GENERAL_NAMES_free(gn);
            return err_nomem(err);
        }
        c->ci_der = nd;
    }
    c->ci_der[c->nci].der = malloc(ci.len ? ci.len : 1);
    if (c->ci_der[c->nci].der == NULL) {
        GENERAL_NAMES_free(gn);
        return err_nomem(err);
    }
    memcpy(c->ci_der[c->nci].der, ci.p, ci.len);
    c->ci_der[c->nci].len = ci.len;
    c->ci_names[c->nci] = gn;
    return (int)c->nci++;
}

/*
 * Walk revokedCertificates.  With c->soff == NULL only count entries and
 * serial bytes; otherwise fill the arrays.  In an indirect CRL each entry's
 * certificate issuer is found as RFC 5280 5.3.3 says: "If this extension is
 * not present on the first entry in an indirect CRL, the certificate issuer
 * defaults to the CRL issuer. On subsequent entries in an indirect CRL, if
 * this extension is not present, the certificate issuer for the entry is the
 * same as that for the preceding entry."
 */
static int
walk_entries(struct revcrl *c, struct der list, const char *where, size_t *count,
             size_t *serial_bytes, struct duet_err *err)
{
    size_t n = 0;
    size_t off = 0;
    size_t seen = 0; /* entries read, including removeFromCRL ones not kept */
    uint32_t cur = 0; /* the certificate issuer carried from entry to entry */
    unsigned int tag;

    while (list.len > 0) {
        struct der entry, serial, t, ci = {NULL, 0};
        int64_t when = 0;
        int reason = REV_NO_REASON;
        if (!der_next(&list, &tag, &entry, NULL) || tag != 0x30)
            return err_set(err, DUET_ERR_INPUT, "%s: entry %zu is malformed", where, n + 1);
        if (!der_next(&entry, &tag, &serial, NULL) || tag != 0x02 || !der_int_minimal(&serial))
            return err_set(err, DUET_ERR_INPUT,
                           "%s: entry %zu has a malformed serial number", where, n + 1);
        if (serial.len > REV_MAX_SERIAL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: entry %zu has a serial number of %zu octets; at most %d are "
                           "accepted",
                           where, n + 1, serial.len, REV_MAX_SERIAL);
        if (!der_next(&entry, &tag, &t, NULL) || !der_time(tag, &t, &when))
            return err_set(err, DUET_ERR_INPUT,
                           "%s: entry %zu has a malformed revocation date", where, n + 1);
        if (entry.len > 0) {
            struct der exts;
            if (!der_next(&entry, &tag, &exts, NULL) || tag != 0x30 || entry.len != 0)
                return err_set(err, DUET_ERR_INPUT, "%s: entry %zu is malformed", where, n + 1);
            if (entry_extensions(c, exts, where, n, &reason, &ci, err) != 0)
                return -1;
        }
        if (ci.p != NULL) {
            int k = entry_issuer_number(c, ci, cur, where, seen, err);
            if (k < 0)
                return -1;
            cur = (uint32_t)k;
        }
        seen++;
        if (reason == 8 && !c->delta) /* removeFromCRL belongs to delta CRLs: not revoked */
            continue;
        if (c->soff != NULL) {
            if (c->eiss != NULL)
                c->eiss[n] = (uint16_t)cur;
            c->soff[n] = (uint32_t)off;
            c->blob[off] = (uint8_t)serial.len;
            memcpy(c->blob + off + 1, serial.p, serial.len);
            c->date[n] = when < 0 ? 0 : when > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)when;
            c->reason[n] = (uint8_t)reason;
        }
        off += 1 + serial.len;
        n++;
        if (n >= UINT32_MAX / 2 || off >= UINT32_MAX)
            return err_set(err, DUET_ERR_INPUT, "%s: too many entries", where);
    }
    *count = n;
    *serial_bytes = off;
    return 0;
}

/* Entry i's serial in the blob. */
static const uint8_t *
entry_serial(const struct revcrl *c, uint32_t i, size_t *len)
{
    const uint8_t *p = c->blob + c->soff[i];

    *len = p[0];
    return p + 1;
}

/* Entry i's issuer number: always 0 in a direct CRL. */
static uint32_t
entry_issuer(const struct revcrl *c, uint32_t i)
{
    return c->eiss != NULL ? c->eiss[i] : 0;
}

/* Where the key (issuer number, serial) starts probing; a direct CRL hashes the serial alone. */
static uint32_t
key_hash(uint32_t iss, const uint8_t *s, size_t len)
{
    return serial_hash(s, len) ^ (iss * 0x9e3779b1u);
}

/* Index of the entry of issuer number `iss` with this serial (DER content bytes), or -1. */
static int64_t
set_find(const struct revcrl *c, uint32_t iss, const uint8_t *s, size_t len)
{
    if (c->n == 0)
        return -1;
    for (uint32_t h = key_hash(iss, s, len) & c->mask;; h = (h + 1) & c->mask) {
        uint32_t e = c->table[h];
        size_t elen;
        const uint8_t *es;
        if (e == 0)
            return -1;
        es = entry_serial(c, e - 1, &elen);
        if (elen == len && memcmp(es, s, len) == 0 && entry_issuer(c, e - 1) == iss)
            return (int64_t)e - 1;
    }
}

/* Whether issuer number k of the CRL is the certificate issuer `name` (RFC 5280 5.3.3). */
static bool
issuer_number_is(const struct revcrl *c, uint32_t k, const X509_NAME *name)
{
    if (k == 0)
        return X509_NAME_cmp(c->issuer, name) == 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(c->ci_names[k]); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(c->ci_names[k], i);
        if (g->type == GEN_DIRNAME && X509_NAME_cmp(g->d.directoryName, name) == 0)
            return true;
    }
    return false;
}

/*
 * The entry of the CRL listing the certificate of issuer `iname` and this
 * serial, or -1: RFC 5280 6.3.3 (i), "If an entry is found that matches the
 * certificate issuer and serial number as described in Section 5.3.3".  In a
 * direct CRL every entry's issuer is the CRL's, which the caller matched.
 */
static int64_t
entry_find(const struct revcrl *c, const X509_NAME *iname, const uint8_t *s, size_t len)
{
    int64_t e = -1;

    if (c->eiss == NULL)
        return set_find(c, 0, s, len);
    for (uint32_t k = 0; k < (c->nci ? c->nci : 1) && e < 0; k++)
        if (issuer_number_is(c, k, iname))
            e = set_find(c, k, s, len);
    return e;
}

/* Fill the entries and the hash table. */
static int
build_set(struct revcrl *c, struct der list, const char *where, struct duet_err *err)
{
    size_t n = 0;
    size_t bytes = 0;
    size_t cap = 16;

    if (walk_entries(c, list, where, &n, &bytes, err) != 0)
        return -1;
    while (cap < n + n / 3 + 1)
        cap <<= 1;
    c->table = calloc(cap, sizeof(*c->table));
    c->soff = malloc((n ? n : 1) * sizeof(*c->soff));
    if (c->indirect && (c->eiss = malloc((n ? n : 1) * sizeof(*c->eiss))) == NULL)
        return err_nomem(err);
    c->date = malloc((n ? n : 1) * sizeof(*c->date));
    c->reason = malloc(n ? n : 1);
    c->blob = malloc(bytes ? bytes : 1);
    if (c->table == NULL || c->soff == NULL || c->date == NULL || c->reason == NULL ||
        c->blob == NULL)
        return err_nomem(err);
    c->mask = (uint32_t)(cap - 1);
    c->bloblen = bytes;
    if (walk_entries(c, list, where, &n, &bytes, err) != 0)
        return -1;
    c->n = (uint32_t)n;
    for (uint32_t i = 0; i < n; i++) {
        size_t len, elen;
        const uint8_t *s = entry_serial(c, i, &len);
        uint32_t iss = entry_issuer(c, i);
        uint32_t h = key_hash(iss, s, len) & c->mask;
        for (; c->table[h] != 0; h = (h + 1) & c->mask) {
            const uint8_t *es = entry_serial(c, c->table[h] - 1, &elen);
            if (elen == len && memcmp(es, s, len) == 0 && entry_issuer(c, c->table[h] - 1) == iss)
                break; /* a repeated (issuer, serial): the first entry stands */
        }
        if (c->table[h] == 0)
            c->table[h] = i + 1;
    }
    return 0;
}

/*
 * The issuingDistributionPoint (RFC 5280 5.2.5): its scope (user or CA
 * certificates only) and its distributionPoint names are kept for
 * revset_check(); a relative name is resolved against the CRL's issuer, as
 * 5.2.5 and 4.2.1.13 say; indirectCRL makes the CRL indirect (its entries
 * name their certificate issuers, walk_entries()).  A partial CRL, an empty extension
 * ("MUST NOT issue CRLs where the DER encoding of the issuing distribution
 * point extension is an empty sequence") and one asserting more than one
 * "only contains" ("at most one of onlyContainsUserCerts, onlyContainsCACerts,
 * and onlyContainsAttributeCerts may be set to TRUE") are refused.
 */
static int
idp_read(struct revcrl *c, X509_EXTENSION *ext, const char *where, struct duet_err *err)
{
    ISSUING_DIST_POINT *idp = X509V3_EXT_d2i(ext);
    GENERAL_NAME *dn = NULL;
    int rc = -1;

    if (idp == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed issuingDistributionPoint", where);
        goto out;
    }
    if (idp->onlysomereasons != NULL || idp->onlyattr) {
        err_set(err, DUET_ERR_INPUT,
                "%s is a partial CRL (issuingDistributionPoint with onlySomeReasons or "
                "onlyContainsAttributeCerts), which duet does not support",
                where);
        goto out;
    }
    if (idp->onlyuser && idp->onlyCA) {
        err_set(err, DUET_ERR_INPUT,
                "%s has an issuingDistributionPoint asserting both onlyContainsUserCerts and "
                "onlyContainsCACerts; RFC 5280 5.2.5 allows at most one",
                where);
        goto out;
    }
    if (idp->distpoint == NULL && !idp->onlyuser && !idp->onlyCA && !idp->indirectCRL) {
        err_set(err, DUET_ERR_INPUT,
                "%s has an empty issuingDistributionPoint, which RFC 5280 5.2.5 forbids", where);
        goto out;
    }
    c->indirect = idp->indirectCRL != 0;
    c->only_user = idp->onlyuser != 0;
    c->only_ca = idp->onlyCA != 0;
    if (idp->distpoint != NULL && idp->distpoint->type == 0) {
        c->idp_names = idp->distpoint->name.fullname;
        idp->distpoint->name.fullname = NULL;
    } else if (idp->distpoint != NULL) {
        c->idp_names = GENERAL_NAMES_new();
        dn = GENERAL_NAME_new();
        if (c->idp_names == NULL || dn == NULL ||
            !DIST_POINT_set_dpname(idp->distpoint, c->issuer) ||
            idp->distpoint->dpname == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "%s has an issuingDistributionPoint whose relative name cannot be used",
                    where);
            goto out;
        }
        dn->type = GEN_DIRNAME;
        dn->d.directoryName = idp->distpoint->dpname;
        idp->distpoint->dpname = NULL;
        if (!sk_GENERAL_NAME_push(c->idp_names, dn)) {
            err_nomem(err);
            goto out;
        }
        dn = NULL;
    }
    if (c->idp_names != NULL && sk_GENERAL_NAME_num(c->idp_names) == 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s has an issuingDistributionPoint with an empty distributionPoint", where);
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAME_free(dn);
    ISSUING_DIST_POINT_free(idp);
    return rc;
}

/*
 * The CRL's own extensions: a non-critical cRLNumber, authorityKeyIdentifier,
 * freshestCRL and authorityInfoAccess are fine; an issuingDistributionPoint
 * sets the scope (idp_read()); a delta CRL and any other critical extension
 * are refused.
 */
static int
crl_extensions(struct revcrl *c, struct der exts_der, const char *where, struct duet_err *err)
{
    const unsigned char *p = exts_der.p;
    STACK_OF(X509_EXTENSION) *exts = d2i_X509_EXTENSIONS(NULL, &p, (long)exts_der.len);
    int rc = -1;

    if (exts == NULL || p != exts_der.p + exts_der.len) {
        err_set(err, DUET_ERR_INPUT, "%s has malformed extensions", where);
        goto out;
    }
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        /* RFC 5280 5.2.4: "The delta CRL indicator is a critical CRL extension". */
        if (nid == NID_delta_crl) {
            c->delta = true;
            if (!X509_EXTENSION_get_critical(ext) || c->base != NULL ||
                (c->base = X509V3_EXT_d2i(ext)) == NULL) {
                err_set(err, DUET_ERR_INPUT,
                        "%s has a deltaCRLIndicator that is not critical, repeated or "
                        "malformed (RFC 5280 5.2.4)",
                        where);
                goto out;
            }
            continue;
        }
        if (nid == NID_issuing_distribution_point) {
            if (c->idp_der != NULL ||
                (c->idp_der = ASN1_OCTET_STRING_dup(X509_EXTENSION_get_data(ext))) == NULL) {
                err_set(err, DUET_ERR_INPUT, "%s has a repeated issuingDistributionPoint", where);
                goto out;
            }
            if (idp_read(c, ext, where, err) != 0)
                goto out;
            continue;
        }
        if (nid == NID_authority_key_identifier && c->akid == NULL) {
            AUTHORITY_KEYID *ak = X509V3_EXT_d2i(ext);
            if (ak != NULL) {
                c->akid = ak->keyid;
                ak->keyid = NULL;
            }
            AUTHORITY_KEYID_free(ak);
        }
        if (nid == NID_crl_number && c->number == NULL)
            c->number = X509V3_EXT_d2i(ext);
        /*
         * RFC 5280 5.2.3: "conforming CRL issuers MUST ... mark this extension
         * as non-critical."  A CRL that breaks this is refused, not guessed at.
         */
        if (nid == NID_crl_number && X509_EXTENSION_get_critical(ext)) {
            err_set(err, DUET_ERR_INPUT,
                    "%s marks its cRLNumber extension critical; RFC 5280 5.2.3 requires it "
                    "non-critical",
                    where);
            goto out;
        }
        if (X509_EXTENSION_get_critical(ext) && nid != NID_crl_number &&
            nid != NID_authority_key_identifier) {
            char o[80];
            OBJ_obj2txt(o, sizeof(o), X509_EXTENSION_get_object(ext), 1);
            err_set(err, DUET_ERR_INPUT,
                    "%s has a critical extension duet does not handle (OID %s)", where, o);
            goto out;
        }
    }
    if (c->delta && c->number == NULL) {
        err_set(err, DUET_ERR_INPUT,
                "%s is a delta CRL without a cRLNumber, so it cannot be matched to a complete "
                "CRL (RFC 5280 5.2.4)",
                where);
        goto out;
    }
    rc = 0;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rc;
}

/*
 * How the signature will be checked: digest-then-verify for ECDSA and RSA
 * PKCS#1 v1.5 with SHA-2 (only the digest is kept), the whole signed part
 * for EdDSA and RSA-PSS.  SHA-1 and MD5 are refused, as on certificates.
 */
static int
signature_setup(struct revcrl *c, struct der tbs_whole, const char *where, bool allow_dsa,
                struct duet_err *err)
{
    int nid = OBJ_obj2nid(c->alg->algorithm);
    int md_nid = NID_undef;
    int pk_nid = NID_undef;

    if (nid == NID_undef || !OBJ_find_sigid_algs(nid, &md_nid, &pk_nid)) {
        char o[80];
        OBJ_obj2txt(o, sizeof(o), c->alg->algorithm, 1);
        return err_set(err, DUET_ERR_INPUT, "%s is signed with an unknown algorithm (OID %s)",
                       where, o);
    }
    if (md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md4 || md_nid == NID_md2 ||
        md_nid == NID_mdc2 || md_nid == NID_ripemd160 || md_nid == NID_md5_sha1)
        return err_set(err, DUET_ERR_INPUT,
                       "%s is signed with %s, which is refused as too weak", where,
                       OBJ_nid2sn(nid));
    /*
     * DSA: gone from TLS 1.3 and FIPS 186-5 (no longer approved for signing),
     * and from duet's certificate chains (a DSA key is a weak key there); a
     * legacy CRL signer's DSA signature counts only when asked for.
     */
    if (pk_nid == NID_dsa && !allow_dsa)
        return err_set(err, DUET_ERR_INPUT,
                       "%s is signed with %s (DSA), a legacy algorithm duet refuses by default; "
                       "to accept it, pass --insecure-crl-signature dsa (YAML "
                       "insecure_crl_signature: dsa)",
                       where, OBJ_nid2sn(nid));
    if ((md_nid == NID_sha224 || md_nid == NID_sha256 || md_nid == NID_sha384 ||
         md_nid == NID_sha512) &&
        (pk_nid == NID_X9_62_id_ecPublicKey || pk_nid == NID_rsaEncryption)) {
        c->md = EVP_get_digestbynid(md_nid);
        c->key_type = pk_nid == NID_rsaEncryption ? "RSA" : "EC";
        if (c->md == NULL || !EVP_Digest(tbs_whole.p, tbs_whole.len, c->digest, &c->dlen, c->md,
                                         NULL))
            return err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot hash the CRL", where);
        return 0;
    }
    ASN1_STRING *s = ASN1_STRING_new();
    c->tbs = ASN1_TYPE_new();
    if (s == NULL || c->tbs == NULL || !ASN1_STRING_set(s, tbs_whole.p, (int)tbs_whole.len)) {
        ASN1_STRING_free(s);
        return err_nomem(err);
    }
    ASN1_TYPE_set(c->tbs, V_ASN1_SEQUENCE, s); /* kept as encoded: what was signed */
    return 0;
}

/* Read one DER CRL into a new revcrl. */
static int
crl_parse(const char *label, int index, const uint8_t *der, size_t len, bool allow_dsa,
          struct revcrl **out, struct duet_err *err)
{
    struct revcrl *c = calloc(1, sizeof(*c));
    struct der in = {der, len};
    struct der outer, tbs, tbs_whole, alg1, alg1_whole, alg2_whole, alg2, sig, el, revoked = {0};
    unsigned int tag;
    char where[700];
    int rc = -1;

    *out = NULL;
    if (c == NULL)
        return err_nomem(err);
    pthread_mutex_init(&c->memo_lock, NULL);
    crl_where(label, index, NULL, where, sizeof(where));
    if (!der_next(&in, &tag, &outer, NULL) || tag != 0x30 || in.len != 0 ||
        !der_next(&outer, &tag, &tbs, &tbs_whole) || tag != 0x30 ||
        !der_next(&outer, &tag, &alg2, &alg2_whole) || tag != 0x30 ||
        !der_next(&outer, &tag, &sig, NULL) || tag != 0x03 || outer.len != 0) {
        err_set(err, DUET_ERR_INPUT, "%s is not a DER CertificateList", where);
        goto out;
    }
    if (der_peek(&tbs) == 0x02) {
        if (!der_next(&tbs, &tag, &el, NULL) || el.len != 1 || el.p[0] != 1) {
            err_set(err, DUET_ERR_INPUT, "%s has a version other than v2", where);
            goto out;
        }
    }
    if (!der_next(&tbs, &tag, &alg1, &alg1_whole) || tag != 0x30) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed signature algorithm", where);
        goto out;
    }
    if (alg1_whole.len != alg2_whole.len || memcmp(alg1_whole.p, alg2_whole.p, alg1_whole.len) != 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s names different signature algorithms inside and outside the signed part",
                where);
        goto out;
    }
    if (!der_next(&tbs, &tag, &el, &el) || tag != 0x30) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed issuer name", where);
        goto out;
    }
    const unsigned char *p = el.p;
    c->issuer = d2i_X509_NAME(NULL, &p, (long)el.len);
    if (c->issuer == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed issuer name", where);
        goto out;
    }
    crl_where(label, index, c->issuer, where, sizeof(where));
    if (!der_next(&tbs, &tag, &el, NULL) || !der_time(tag, &el, &c->this_update)) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed thisUpdate", where);
        goto out;
    }
    if (der_peek(&tbs) != 0x17 && der_peek(&tbs) != 0x18) {
        err_set(err, DUET_ERR_INPUT, "%s has no nextUpdate, so its freshness cannot be judged", where);
        goto out;
    }
    if (!der_next(&tbs, &tag, &el, NULL) || !der_time(tag, &el, &c->next_update)) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed nextUpdate", where);
        goto out;
    }
    if (der_peek(&tbs) == 0x30 && !der_next(&tbs, &tag, &revoked, NULL)) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed list of revoked certificates", where);
        goto out;
    }
    if (der_peek(&tbs) == 0xa0) {
        struct der wrap, exts_whole;
        if (!der_next(&tbs, &tag, &wrap, NULL) || !der_next(&wrap, &tag, &el, &exts_whole) ||
            tag != 0x30 || wrap.len != 0) {
            err_set(err, DUET_ERR_INPUT, "%s has malformed extensions", where);
            goto out;
        }
        if (crl_extensions(c, exts_whole, where, err) != 0)
            goto out;
    }
    if (tbs.len != 0) {
        err_set(err, DUET_ERR_INPUT, "%s has unexpected data after its extensions", where);
        goto out;
    }
    p = alg2_whole.p;
    c->alg = d2i_X509_ALGOR(NULL, &p, (long)alg2_whole.len);
    if (c->alg == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed signature algorithm", where);
        goto out;
    }
    c->sig = ASN1_BIT_STRING_new();
    if (c->sig == NULL || sig.len < 1 || sig.p[0] != 0 ||
        !ASN1_BIT_STRING_set(c->sig, (unsigned char *)(uintptr_t)(sig.p + 1), (int)sig.len - 1)) {
        err_set(err, DUET_ERR_INPUT, "%s has a malformed signature", where);
        goto out;
    }
    if (signature_setup(c, tbs_whole, where, allow_dsa, err) != 0)
        goto out;
    if (build_set(c, revoked, where, err) != 0)
        goto out;
    c->source = strdup(label);
    if (c->source == NULL) {
        err_nomem(err);
        goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    revcrl_free(c);
    ERR_clear_error();
    return rc;
}

/* --- the set ------------------------------------------------------------------- */

struct revset *
revset_new(void)
{
    return calloc(1, sizeof(struct revset));
}

void
revset_free(struct revset *rs)
{
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->n; i++)
        revcrl_free(rs->crls[i]);
    free(rs->crls);
    free(rs);
}

/* Append the CRLs parsed from one input, all or none. */
static int
add_parsed(struct revset *rs, struct revcrl **got, size_t ngot, struct duet_err *err)
{
    struct revcrl **grown = realloc(rs->crls, (rs->n + ngot) * sizeof(*grown));

    if (grown == NULL)
        return err_nomem(err);
    rs->crls = grown;
    memcpy(rs->crls + rs->n, got, ngot * sizeof(*got));
    rs->n += ngot;
    for (size_t i = 0; i < ngot; i++)
        rs->ndelta += got[i]->delta;
    return 0;
}

/* Decode one PEM body (base64) and read the CRL in it. */
static int
pem_crl(const char *label, size_t index, const char *body, size_t n, bool allow_dsa,
        struct revcrl **out, struct duet_err *err)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    unsigned char *der = malloc(n / 4 * 3 + 80);
    int l1 = 0, l2 = 0;
    int rc = -1;

    if (ctx == NULL || der == NULL) {
        err_nomem(err);
        goto out;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, der, &l1, (const unsigned char *)body, (int)n) < 0 ||
        EVP_DecodeFinal(ctx, der + l1, &l2) != 1) {
        err_set(err, DUET_ERR_INPUT, "%s: CRL #%zu is not valid base64", label, index + 1);
        goto out;
    }
    rc = crl_parse(label, (int)index, der, (size_t)(l1 + l2), allow_dsa, out, err);
out:
    EVP_ENCODE_CTX_free(ctx);
    free(der);
    ERR_clear_error();
    return rc;
}

int
revset_add_mem(struct revset *rs, const char *label, const uint8_t *data, size_t len,
               struct duet_err *err)
{
    struct revset tmp = {0}; /* this input's CRLs, added to rs only when all of them are good */
    int rc = -1;
    bool pem = len >= 10 && memmem(data, len < 4096 ? len : 4096, "-----BEGIN", 10) != NULL;

    if (!pem) {
        struct der in = {data, len};
        while (in.len > 0) {
            struct der c, whole;
            unsigned int tag;
            struct revcrl *one;
            if (!der_next(&in, &tag, &c, &whole) || tag != 0x30) {
                err_set(err, DUET_ERR_INPUT, "%s: expected PEM or DER CRLs", label);
                goto out;
            }
            if (crl_parse(label, (int)tmp.n, whole.p, whole.len, rs->insecure_dsa, &one, err) !=
                0)
                goto out;
            if (add_parsed(&tmp, &one, 1, err) != 0) {
                revcrl_free(one);
                goto out;
            }
        }
    } else {
        /*
         * PEM: each "X509 CRL" block is decoded on its own into a DER buffer
         * freed once its set is built, so a large CRL costs its DER and its set
         * at the peak, not also copies of its base64.
         */
        const char *p = (const char *)data;
        const char *end = p + len;
        for (;;) {
            static const char begin[] = "-----BEGIN X509 CRL-----";
            static const char stop[] = "-----END X509 CRL-----";
            const char *b0 = memmem(p, (size_t)(end - p), begin, sizeof(begin) - 1);
            const char *body, *e0;
            struct revcrl *one = NULL;
            if (b0 == NULL)
                break;
            body = b0 + sizeof(begin) - 1;
            e0 = memmem(body, (size_t)(end - body), stop, sizeof(stop) - 1);
            if (e0 == NULL || e0 - body > INT32_MAX) {
                err_set(err, DUET_ERR_INPUT, "%s: CRL #%zu has no END line", label, tmp.n + 1);
                goto out;
            }
            if (pem_crl(label, tmp.n, body, (size_t)(e0 - body), rs->insecure_dsa, &one, err) !=
                0)
                goto out;
            if (add_parsed(&tmp, &one, 1, err) != 0) {
                revcrl_free(one);
                goto out;
            }
            p = e0 + sizeof(stop) - 1;
        }
    }
    if (tmp.n == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no CRL found", label);
        goto out;
    }
    if (add_parsed(rs, tmp.crls, tmp.n, err) != 0)
        goto out;
    tmp.n = 0;
    rc = 0;
out:
    for (size_t i = 0; i < tmp.n; i++)
        revcrl_free(tmp.crls[i]);
    free(tmp.crls);
    ERR_clear_error();
    return rc;
}

/* Held while a file is read: one at a time in the process (see revset.h). */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;

static int add_file_locked(struct revset *rs, const char *path, struct duet_err *err);

int
revset_add_file(struct revset *rs, const char *path, struct duet_err *err)
{
    int rc;

    pthread_mutex_lock(&file_lock);
    rc = add_file_locked(rs, path, err);
    pthread_mutex_unlock(&file_lock);
    return rc;
}

static int
add_file_locked(struct revset *rs, const char *path, struct duet_err *err)
{
    struct stat st;
    void *map;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    /* Mapped, not read: the file's pages are the page cache's, not a copy on the heap. */
    if (fd < 0)
        return err_set(err, DUET_ERR_INPUT, errno == ENOENT ? "%s: no such file" : "%s: cannot open: %s",
                       path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        (uint64_t)st.st_size > FILEIO_MAX_INPUT) {
        int e = errno;
        close(fd);
        if (S_ISDIR(st.st_mode))
            return err_set(err, DUET_ERR_INPUT, "%s: is a directory; expected a file", path);
        if (st.st_size == 0)
            return err_set(err, DUET_ERR_INPUT, "%s: file is empty", path);
        if ((uint64_t)st.st_size > FILEIO_MAX_INPUT)
            return err_set(err, DUET_ERR_INPUT, "%s: file is %lld bytes; the limit is %u", path,
                           (long long)st.st_size, FILEIO_MAX_INPUT);
        return err_set(err, DUET_ERR_INPUT, "%s: cannot read: %s", path, strerror(e));
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot read: %s", path, strerror(errno));
    rc = revset_add_mem(rs, path, map, (size_t)st.st_size, err);
    munmap(map, (size_t)st.st_size);
    return rc;
}

/* See revset.h. */
void
revset_insecure_crl_dsa(struct revset *rs)
{
    rs->insecure_dsa = true;
}

/* See revset.h. */
bool
revset_allows_crl_dsa(const struct revset *rs)
{
    return rs != NULL && rs->insecure_dsa;
}

size_t
revset_count(const struct revset *rs)
{
    return rs != NULL ? rs->n : 0;
}

const struct revcrl *
revset_get0(const struct revset *rs, size_t i)
{
    return rs != NULL && i < rs->n ? rs->crls[i] : NULL;
}

size_t
revset_bytes(const struct revset *rs)
{
    size_t b = 0;

    for (size_t i = 0; rs != NULL && i < rs->n; i++) {
        const struct revcrl *c = rs->crls[i];
        b += sizeof(*c) + ((size_t)c->mask + 1) * sizeof(uint32_t) +
             (size_t)c->n * (2 * sizeof(uint32_t) + 1) + c->bloblen;
        if (c->eiss != NULL)
            b += (size_t)c->n * sizeof(*c->eiss) + (size_t)c->nci * (sizeof(GENERAL_NAMES *) +
                                                                     sizeof(struct memo_key));
        if (c->tbs != NULL)
            b += (size_t)ASN1_STRING_length(c->tbs->value.sequence);
    }
    return b;
}

const X509_NAME *
revcrl_get0_issuer(const struct revcrl *c)
{
    return c->issuer;
}

int64_t
revcrl_this_update(const struct revcrl *c)
{
    return c->this_update;
}

int64_t
revcrl_next_update(const struct revcrl *c)
{
    return c->next_update;
}

size_t
revcrl_entries(const struct revcrl *c)
{
    return c->n;
}

const char *
revcrl_source(const struct revcrl *c)
{
    return c->source;
}

/* --- checking ------------------------------------------------------------------- */

/* Whether the CRL's signature verifies with the issuer's key, remembering keys that did. */
static bool
crl_signed_by(struct revcrl *c, X509 *issuer)
{
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(issuer);
    EVP_PKEY *pk = X509_get0_pubkey(issuer);
    const uint8_t *kd;
    size_t klen;
    int n = atomic_load_explicit(&c->nmemo, memory_order_acquire);
    bool ok = false;

    if (bits == NULL || pk == NULL)
        return false;
    kd = ASN1_STRING_get0_data(bits);
    klen = (size_t)ASN1_STRING_length(bits);
    for (int i = 0; i < n; i++)
        if (c->memo[i].len == klen && memcmp(c->memo[i].der, kd, klen) == 0)
            return true;
    if (c->tbs == NULL) {
        EVP_PKEY_CTX *pc = EVP_PKEY_is_a(pk, c->key_type) ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)
                                                          : NULL;
        ok = pc != NULL && EVP_PKEY_verify_init(pc) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, c->md) == 1 &&
             EVP_PKEY_verify(pc, ASN1_STRING_get0_data(c->sig), (size_t)ASN1_STRING_length(c->sig),
                             c->digest, c->dlen) == 1;
        EVP_PKEY_CTX_free(pc);
    } else {
        ok = ASN1_item_verify(ASN1_ITEM_rptr(ASN1_ANY), c->alg, c->sig, c->tbs, pk) == 1;
    }
    ERR_clear_error();
    if (!ok)
        return false;
    pthread_mutex_lock(&c->memo_lock);
    n = atomic_load_explicit(&c->nmemo, memory_order_relaxed);
    if (n < REV_MEMO_KEYS && (c->memo[n].der = malloc(klen)) != NULL) {
        memcpy(c->memo[n].der, kd, klen);
        c->memo[n].len = klen;
        atomic_store_explicit(&c->nmemo, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&c->memo_lock);
    return true;
}

/* The certificate's serial as DER INTEGER content, in buf (or -1 when too long). */
static int
cert_serial(X509 *cert, uint8_t *buf, size_t cap)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(cert);
    uint8_t tmp[REV_MAX_SERIAL + 8];
    unsigned char *p = tmp;
    struct der in = {tmp, 0}, c;
    unsigned int tag;
    int n = i2d_ASN1_INTEGER(s, NULL);

    if (n <= 0 || (size_t)n > sizeof(tmp))
        return -1;
    n = i2d_ASN1_INTEGER(s, &p);
    in.len = (size_t)n;
    if (n <= 0 || !der_next(&in, &tag, &c, NULL) || c.len > cap)
        return -1;
    memcpy(buf, c.p, c.len);
    return (int)c.len;
}

/* Whether a name of the CRL's issuingDistributionPoint is among `names`. */
static bool
idp_names_match(const GENERAL_NAMES *idp, const GENERAL_NAMES *names)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(idp); i++)
        for (int j = 0; j < sk_GENERAL_NAME_num(names); j++)
            if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(idp, i),
                                 sk_GENERAL_NAME_value(names, j)) == 0)
                return true;
    return false;
}

/* Whether a name of the CRL's issuingDistributionPoint is the directoryName `name`. */
static bool
idp_names_dirname(const GENERAL_NAMES *idp, const X509_NAME *name)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(idp); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(idp, i);
        if (g->type == GEN_DIRNAME && X509_NAME_cmp(g->d.directoryName, name) == 0)
            return true;
    }
    return false;
}

/*
 * Whether a CRL of the certificate's issuer covers it, RFC 5280 6.3.3 (b)(2):
 * (ii) onlyContainsUserCerts excludes a certificate with cA TRUE, (iii)
 * onlyContainsCACerts one without; (i) when the issuingDistributionPoint
 * names a distributionPoint, one of its names must be a name of one of the
 * certificate's CRL distribution points.  Only the certificate's points that
 * a complete, direct CRL can serve count: a point with cRLIssuer needs an
 * indirect CRL (6.3.3 (b)(1)), and one with reasons is covered only for those
 * reasons (6.3.3 (d)), never completely.  6.3.3 ends: "If the revocation
 * status has not been determined, repeat the process above with any
 * available CRLs not specified in a distribution point but issued by the
 * certificate issuer. For the processing of such a CRL, assume a DP with
 * both the reasons and the cRLIssuer fields omitted and a distribution point
 * name of the certificate issuer."  So a distributionPoint that is the
 * issuer's own name as a directoryName matches every certificate, with or
 * without CRL distribution points, and any other name matches none of a
 * certificate that has no CRL distribution point.  The certificate's
 * extension is read only for a CRL that names a distributionPoint.
 */
static enum rev_scope
crl_scope(const struct revcrl *c, X509 *cert, bool is_ca)
{
    CRL_DIST_POINTS *cdp;
    const X509_NAME *iname = X509_get_issuer_name(cert);
    enum rev_scope why;

    if (is_ca ? c->only_user : c->only_ca)
        return is_ca ? REV_SCOPE_USER_ONLY : REV_SCOPE_CA_ONLY;
    if (c->idp_names == NULL || idp_names_dirname(c->idp_names, iname))
        return REV_SCOPE_OK;
    cdp = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    why = cdp != NULL && sk_DIST_POINT_num(cdp) > 0 ? REV_SCOPE_DP_MISMATCH : REV_SCOPE_DP_NO_CDP;
    for (int i = 0; cdp != NULL && i < sk_DIST_POINT_num(cdp) && why != REV_SCOPE_OK; i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(cdp, i);
        if (dp->distpoint == NULL || dp->CRLissuer != NULL || dp->reasons != NULL)
            continue;
        if (dp->distpoint->type == 0) {
            if (idp_names_match(c->idp_names, dp->distpoint->name.fullname))
                why = REV_SCOPE_OK;
        } else if (DIST_POINT_set_dpname(dp->distpoint, iname) &&
                   dp->distpoint->dpname != NULL &&
                   idp_names_dirname(c->idp_names, dp->distpoint->dpname)) {
            why = REV_SCOPE_OK; /* nameRelativeToCRLIssuer: relative to the certificate's issuer */
        }
    }
    CRL_DIST_POINTS_free(cdp);
    ERR_clear_error();
    return why;
}

/*
 * Whether an indirect CRL whose issuer is not the certificate's serves it,
 * with its scope in *sc; false when the certificate names the CRL's issuer in
 * none of its distribution points' cRLIssuer (the CRL is then not one for it).
 * RFC 5280 6.3.3 (b)(1): "If the DP includes cRLIssuer, then verify that the
 * issuer field in the complete CRL matches cRLIssuer in the DP and that the
 * complete CRL contains an issuing distribution point extension with the
 * indirectCRL boolean asserted."  (b)(2)(i): "If the distribution point name
 * is present in the IDP CRL extension and the distribution field is present
 * in the DP, then verify that one of the names in the IDP matches one of the
 * names in the DP.  If the distribution point name is present in the IDP CRL
 * extension and the distribution field is omitted from the DP, then verify
 * that one of the names in the IDP matches one of the names in the cRLIssuer
 * field of the DP."  (ii) and (iii) as for any CRL.  The cRLIssuer must name
 * the CRL issuer as a directoryName (names compare as DNs); a point with
 * reasons is skipped as crl_scope() skips it (6.3.3 (d): partial coverage).
 * A nameRelativeToCRLIssuer is resolved against the cRLIssuer (4.2.1.13: "If
 * the cRLIssuer field in the DistributionPoint is present, then the name
 * fragment is appended to the distinguished name that it contains").
 */
static bool
indirect_for(const struct revcrl *c, X509 *cert, bool is_ca, enum rev_scope *sc)
{
    CRL_DIST_POINTS *cdp = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    bool named = false;

    *sc = REV_SCOPE_DP_MISMATCH;
    for (int i = 0; cdp != NULL && i < sk_DIST_POINT_num(cdp) && *sc != REV_SCOPE_OK; i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(cdp, i);
        if (dp->CRLissuer == NULL || dp->reasons != NULL ||
            !idp_names_dirname(dp->CRLissuer, c->issuer))
            continue;
        named = true;
        if (c->idp_names == NULL)
            *sc = REV_SCOPE_OK;
        else if (dp->distpoint == NULL)
            *sc = idp_names_match(c->idp_names, dp->CRLissuer) ? REV_SCOPE_OK : *sc;
        else if (dp->distpoint->type == 0)
            *sc = idp_names_match(c->idp_names, dp->distpoint->name.fullname) ? REV_SCOPE_OK
                                                                               : *sc;
        else if (DIST_POINT_set_dpname(dp->distpoint, c->issuer) &&
                 dp->distpoint->dpname != NULL &&
                 idp_names_dirname(c->idp_names, dp->distpoint->dpname))
            *sc = REV_SCOPE_OK;
    }
    CRL_DIST_POINTS_free(cdp);
    ERR_clear_error();
    if (named && *sc == REV_SCOPE_OK && (is_ca ? c->only_user : c->only_ca))
        *sc = is_ca ? REV_SCOPE_USER_ONLY : REV_SCOPE_CA_ONLY;
    return named;
}

/* Both absent, or both present and equal. */
static bool
same_octets(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
    return a == NULL ? b == NULL : b != NULL && ASN1_STRING_cmp(a, b) == 0;
}

/*
 * The delta CRL to apply over the complete CRL `full`, or NULL: RFC 5280
 * 5.2.4 and 6.3.3 (c), the same issuer, the same scope (the same
 * issuingDistributionPoint, or none in both), the same authorityKeyIdentifier,
 * "the CRL number of the complete CRL is equal to or greater than the
 * BaseCRLNumber specified in the delta CRL" and "less than the CRL number of
 * the delta CRL", in force (thisUpdate passed), and signed as a complete CRL
 * must be.  The one with the highest number wins.
 */
static const struct revcrl *
delta_for(const struct revset *rs, const struct revcrl *full, X509 *cert, X509 *issuer,
          bool may_sign, int64_t now, const struct rev_signers *alt)
{
    const struct revcrl *best = NULL;
    char why[256];
    /* An indirect CRL of another issuer: the certificate's issuer's key is not its signer. */
    bool other = X509_NAME_cmp(full->issuer, X509_get_issuer_name(cert)) != 0;

    if (full->number == NULL)
        return NULL;
    for (size_t i = 0; i < rs->n; i++) {
        struct revcrl *d = rs->crls[i];
        if (!d->delta || X509_NAME_cmp(d->issuer, full->issuer) != 0 ||
            ASN1_INTEGER_cmp(d->base, full->number) > 0 ||
            ASN1_INTEGER_cmp(full->number, d->number) >= 0 ||
            !same_octets(d->idp_der, full->idp_der) ||
            !same_octets(d->akid, full->akid) || d->this_update > now)
            continue;
        if (best != NULL && ASN1_INTEGER_cmp(d->number, best->number) <= 0)
            continue;
        if (issuer != NULL && !(!other && may_sign && crl_signed_by(d, issuer)) &&
            !(alt != NULL && alt->find(alt->arg, d, cert, issuer, why, sizeof(why))))
            continue;
        best = d;
    }
    return best;
}

/* See revset.h. */
bool
revcrl_verify(const struct revcrl *c, X509 *signer)
{
    /* The memo is the one part of a CRL that changes after loading; it has its own lock. */
    return crl_signed_by((struct revcrl *)(uintptr_t)c, signer);
}

/* See revset.h. */
bool
revcrl_is_delta(const struct revcrl *c)
{
    return c->delta;
}

/* See revset.h. */
const GENERAL_NAMES *
revcrl_idp_names(const struct revcrl *c)
{
    return c->idp_names;
}

/* See revset.h. */
void
revset_check(const struct revset *rs, X509 *cert, X509 *issuer, int64_t now,
             bool accept_expired, struct rev_result *out)
{
    revset_check_ex(rs, cert, issuer, now, accept_expired, NULL, out);
}

/*
 * See revset.h.  The usual case costs what it did before scopes and other
 * signers: a name comparison, two flags and a pointer test per CRL, then the
 * remembered key.  The certificate's CRL distribution points are read only
 * for a CRL that names a distributionPoint, and other signers are looked for
 * only when the issuer's own key does not verify a CRL.
 */
void
revset_check_ex(const struct revset *rs, X509 *cert, X509 *issuer, int64_t now,
                bool accept_expired, const struct rev_signers *alt, struct rev_result *out)
{
    const X509_NAME *iname = X509_get_issuer_name(cert);
    bool is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    /*
     * RFC 5280 6.3.3 (f): "If a key usage extension is present in the CRL
     * issuer's certificate, verify that the cRLSign bit is set."
     */
    bool may_sign = issuer == NULL || !(X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) ||
                    (X509_get_key_usage(issuer) & KU_CRL_SIGN);
    struct revcrl *best = NULL;
    const struct revcrl *unsigned_crl = NULL; /* in scope, but no acceptable signer */
    bool unsigned_other = false;              /* ... and an indirect CRL of another issuer */
    const struct revcrl *outside = NULL;      /* the first CRL whose scope excludes it */
    uint8_t serial[REV_MAX_SERIAL + 1];
    int slen;

    out->status = REV_NO_CRL;
    out->crl = NULL;
    out->date = 0;
    out->reason = -1;
    out->scope = REV_SCOPE_OK;
    out->signer_why[0] = '\0';
    for (size_t i = 0; rs != NULL && i < rs->n; i++) {
        struct revcrl *c = rs->crls[i];
        enum rev_scope sc;
        bool other = false; /* an indirect CRL of another issuer (RFC 5280 6.3.3 (b)(1)) */
        if (c->delta)
            continue;
        if (X509_NAME_cmp(c->issuer, iname) != 0) {
            if (!c->indirect || !indirect_for(c, cert, is_ca, &sc))
                continue;
            other = true;
        } else {
            sc = c->only_user || c->only_ca || c->idp_names != NULL ? crl_scope(c, cert, is_ca)
                                                                    : REV_SCOPE_OK;
        }
        if (sc != REV_SCOPE_OK) {
            if (outside == NULL) {
                outside = c;
                out->scope = sc;
            }
            continue;
        }
        /*
         * 6.3.3 (f): the CRL issuer's path is validated; an indirect CRL of
         * another issuer is never signed by the certificate's issuer, so only
         * `alt` (a certificate of the CRL issuer's name, same trust anchor,
         * cRLSign) can accept it.
         */
        if (issuer != NULL && !(!other && may_sign && crl_signed_by(c, issuer)) &&
            !(alt != NULL &&
              alt->find(alt->arg, c, cert, issuer, out->signer_why, sizeof(out->signer_why)))) {
            unsigned_crl = c;
            unsigned_other = other;
            continue;
        }
        /* The newest CRL already in force; a future one only when nothing else is. */
        if (best == NULL || (best->this_update > now && c->this_update < best->this_update) ||
            (c->this_update <= now && c->this_update > best->this_update))
            best = c;
    }
    if (best == NULL) {
        if (unsigned_crl != NULL) {
            out->status = may_sign || unsigned_other ? REV_CRL_BAD_SIGNATURE
                                                     : REV_CRL_NO_CRL_SIGN;
            out->crl = unsigned_crl;
        } else if (outside != NULL) {
            out->status = REV_CRL_OUT_OF_SCOPE;
            out->crl = outside;
        }
        return;
    }
    out->crl = best;
    if (issuer != NULL && best->this_update > now) {
        out->status = REV_CRL_NOT_YET_VALID;
        return;
    }
    if (issuer != NULL && best->next_update <= now && !accept_expired) {
        out->status = REV_CRL_EXPIRED;
        return;
    }
    slen = cert_serial(cert, serial, sizeof(serial));
    int64_t e = slen > 0 ? entry_find(best, iname, serial, (size_t)slen) : -1;
    const struct revcrl *d = rs->ndelta > 0 ? delta_for(rs, best, cert, issuer, may_sign, now, alt)
                                            : NULL;
    if (d != NULL) {
        int64_t de = slen > 0 ? entry_find(d, iname, serial, (size_t)slen) : -1;
        if (issuer != NULL && d->next_update <= now && !accept_expired) {
            out->status = REV_CRL_EXPIRED;
            out->crl = d;
            return;
        }
        /*
         * RFC 5280 5.3.1: removeFromCRL "indicates that a certificate is to be
         * removed from a CRL because either the certificate expired or was
         * removed from hold": it releases a certificateHold, never another
         * revocation of the complete CRL.
         */
        if (de >= 0 && d->reason[de] == CRL_REASON_REMOVE_FROM_CRL) {
            if (e < 0 || best->reason[e] == CRL_REASON_CERTIFICATE_HOLD) {
                out->crl = d;
                out->status = REV_GOOD;
                return;
            }
        } else if (de >= 0) {
            out->status = REV_REVOKED;
            out->crl = d;
            out->date = d->date[de];
            out->reason = d->reason[de] == REV_NO_REASON ? -1 : d->reason[de];
            return;
        }
    }
    if (e >= 0) {
        out->status = REV_REVOKED;
        out->date = best->date[e];
        out->reason = best->reason[e] == REV_NO_REASON ? -1 : best->reason[e];
        return;
    }
    out->status = REV_GOOD;
}

/* Its cRLNumber, or NULL; see revset.h. */
const ASN1_INTEGER *
revcrl_get0_number(const struct revcrl *c)
{
    return c->number;
}
