/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mkcrl.c - write a signed CRL with many entries, fast, for tests and the
 * revocation benchmark: building a million X509_REVOKED objects through
 * OpenSSL would take longer than the test it serves.
 *
 *   mkcrl --cert ISSUER.crt --key ISSUER.key --count N --out FILE.pem
 *         [--revoke CERT.pem]... [--days D] [--pass-env VAR] [--der]
 *
 * The N serials are 16 pseudo-random octets (like duet's), each revoked a
 * day ago with reason keyCompromise; the serials of the --revoke
 * certificates are listed first.  Signed with SHA-256.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void
die(const char *msg)
{
    fprintf(stderr, "mkcrl: %s\n", msg);
    exit(1);
}

static void
put(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            die("out of memory");
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* Tag, length, then the content of `in`. */
static void
wrap(struct buf *out, uint8_t tag, const struct buf *in)
{
    uint8_t h[6];
    size_t n = 0;

    h[n++] = tag;
    if (in->len < 0x80) {
        h[n++] = (uint8_t)in->len;
    } else if (in->len < 0x100) {
        h[n++] = 0x81;
        h[n++] = (uint8_t)in->len;
    } else if (in->len < 0x10000) {
        h[n++] = 0x82;
        h[n++] = (uint8_t)(in->len >> 8);
        h[n++] = (uint8_t)in->len;
    } else if (in->len < 0x1000000) {
        h[n++] = 0x83;
        h[n++] = (uint8_t)(in->len >> 16);
        h[n++] = (uint8_t)(in->len >> 8);
        h[n++] = (uint8_t)in->len;
    } else {
        h[n++] = 0x84;
        h[n++] = (uint8_t)(in->len >> 24);
        h[n++] = (uint8_t)(in->len >> 16);
        h[n++] = (uint8_t)(in->len >> 8);
        h[n++] = (uint8_t)in->len;
    }
    put(out, h, n);
    put(out, in->p, in->len);
}

static void
utctime(struct buf *out, time_t t)
{
    struct tm tm;
    char s[64];

    gmtime_r(&t, &tm);
    snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    uint8_t h[2] = {0x17, 13};
    put(out, h, 2);
    put(out, s, 13);
}

static void
entry(struct buf *list, const uint8_t *serial, size_t slen, time_t when)
{
    static const uint8_t reason[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d,
                                     0x15, 0x04, 0x03, 0x0a, 0x01, 0x01};
    struct buf e = {0}, s = {0};

    put(&s, serial, slen);
    wrap(&e, 0x02, &s);
    utctime(&e, when);
    put(&e, reason, sizeof(reason));
    wrap(list, 0x30, &e);
    free(e.p);
    free(s.p);
}

static X509 *
read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL)
        fclose(f);
    if (x == NULL) {
        fprintf(stderr, "mkcrl: %s: cannot read a PEM certificate\n", path);
        exit(1);
    }
    return x;
}

int
main(int argc, char **argv)
{
    const char *cert_path = NULL, *key_path = NULL, *out_path = NULL;
    const char *pass_env = NULL;
    const char *revoke[64];
    int nrevoke = 0;
    long count = 0, days = 7, number = 1;
    int der = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--der") == 0) {
            der = 1;
            continue;
        }
        if (v == NULL)
            die("usage: mkcrl --cert F --key F --count N --out F [--revoke CERT]... [--days D] "
                "[--pass-env VAR] [--number 1..127] [--der]");
        if (strcmp(a, "--cert") == 0)
            cert_path = v;
        else if (strcmp(a, "--key") == 0)
            key_path = v;
        else if (strcmp(a, "--out") == 0)
            out_path = v;
        else if (strcmp(a, "--count") == 0)
            count = strtol(v, NULL, 10);
        else if (strcmp(a, "--days") == 0)
            days = strtol(v, NULL, 10);
        else if (strcmp(a, "--pass-env") == 0)
            pass_env = v;
        else if (strcmp(a, "--number") == 0)
            number = strtol(v, NULL, 10);
        else if (strcmp(a, "--revoke") == 0 && nrevoke < 64)
            revoke[nrevoke++] = v;
        else
            die("unknown option");
        i++;
    }
    if (cert_path == NULL || key_path == NULL || out_path == NULL || count < 0)
        die("--cert, --key, --count and --out are required");
    if (number < 1 || number > 127)
        die("--number: expected 1 to 127 (one octet)");

    X509 *issuer = read_cert(cert_path);
    FILE *kf = fopen(key_path, "r");
    char *pass = pass_env != NULL ? getenv(pass_env) : NULL;
    EVP_PKEY *key = kf != NULL ? PEM_read_PrivateKey(kf, NULL, NULL, pass) : NULL;
    if (kf != NULL)
        fclose(kf);
    if (key == NULL)
        die("cannot read the issuer's key (PEM; encrypted ones need --pass-env)");

    time_t now = time(NULL);
    struct buf list = {0}, tbs = {0}, revs = {0};

    for (int i = 0; i < nrevoke; i++) {
        X509 *x = read_cert(revoke[i]);
        unsigned char *d = NULL;
        int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &d);
        if (n < 3)
            die("cannot encode a serial");
        entry(&list, d + 2, (size_t)n - 2, now - 86400); /* short serials: 1-byte length */
        OPENSSL_free(d);
        X509_free(x);
    }
    uint64_t st = 0x9e3779b97f4a7c15u ^ (uint64_t)count;
    for (long i = 0; i < count; i++) {
        uint8_t s[16];
        for (int k = 0; k < 16; k += 8) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            memcpy(s + k, &st, 8);
        }
        s[0] = (uint8_t)(0x10 | (s[0] & 0x6f)); /* positive, no leading zero octet */
        entry(&list, s, sizeof(s), now - 86400);
    }

    /* AlgorithmIdentifier ecdsa-with-SHA256 or sha256WithRSAEncryption, from OpenSSL. */
    X509_ALGOR *a = X509_ALGOR_new();
    int sig_nid = 0;
    if (!OBJ_find_sigid_by_algs(&sig_nid, NID_sha256, EVP_PKEY_get_base_id(key)))
        die("no SHA-256 signature for this key type");
    X509_ALGOR_set0(a, OBJ_nid2obj(sig_nid),
                    EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL);
    unsigned char *ad = NULL;
    int alen = i2d_X509_ALGOR(a, &ad);
    unsigned char *nd = NULL;
    int nlen = i2d_X509_NAME(X509_get_subject_name(issuer), &nd);
    if (alen <= 0 || nlen <= 0)
        die("cannot encode the algorithm or the issuer name");

    static const uint8_t v2[] = {0x02, 0x01, 0x01};
    put(&tbs, v2, sizeof(v2));
    put(&tbs, ad, (size_t)alen);
    put(&tbs, nd, (size_t)nlen);
    utctime(&tbs, now - 3600);
    utctime(&tbs, now + days * 86400);
    if (list.len > 0)
        wrap(&tbs, 0x30, &list);
    /* crlExtensions [0] { SEQUENCE { Extension cRLNumber --number } } */
    {
        /* Extension ::= SEQUENCE { 2.5.29.20, OCTET STRING { INTEGER number } } */
        const uint8_t ext[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55,
                               0x1d, 0x14, 0x04, 0x03, 0x02, 0x01, (uint8_t)number};
        struct buf e = {0};
        put(&e, ext, sizeof(ext));
        wrap(&revs, 0xa0, &e);
        free(e.p);
    }
    put(&tbs, revs.p, revs.len);
    struct buf tbs_whole = {0};
    wrap(&tbs_whole, 0x30, &tbs);

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, tbs_whole.p, tbs_whole.len) != 1)
        die("cannot sign");
    uint8_t *sig = malloc(siglen + 1);
    sig[0] = 0; /* unused bits */
    if (EVP_DigestSign(md, sig + 1, &siglen, tbs_whole.p, tbs_whole.len) != 1)
        die("cannot sign");
    struct buf sigbits = {sig, siglen + 1, siglen + 1};

    struct buf outer = {0}, crl = {0};
    put(&outer, tbs_whole.p, tbs_whole.len);
    put(&outer, ad, (size_t)alen);
    wrap(&outer, 0x03, &sigbits);
    wrap(&crl, 0x30, &outer);

    FILE *out = fopen(out_path, "w");
    if (out == NULL)
        die("cannot write the output file");
    if (der) {
        fwrite(crl.p, 1, crl.len, out);
    } else {
        PEM_write(out, "X509 CRL", "", crl.p, (long)crl.len);
    }
    if (fclose(out) != 0)
        die("cannot write the output file");
    fprintf(stderr, "mkcrl: wrote %s: %ld entries, %zu bytes of DER\n", out_path,
            count + nrevoke, crl.len);
    return 0;
}
