/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspreq_fuzz.c - differential libFuzzer target for the OCSP responder of
 * `duet ca serve` (src/ca/ocsp.c).  Every input is answered twice at the same
 * instant: by ca_ocsp_respond_cached() with a cache primed by answering
 * plain requests about known serials (so that the fast path, which matches
 * the plainest request before it is decoded, has answers to find), and by
 * ca_ocsp_respond() without a cache.  Both responses are read with OpenSSL:
 * the response status, and for each SingleResponse its CertID (as DER), its
 * status, revocation time and reason, and the nonce must be the same.  A
 * cache hit is allowed only for a request that OpenSSL decodes completely
 * (nothing after it) to exactly one CertID, no nonce, whose DER is one the
 * cache was given: the question answered before.  The CA is made once, in a
 * temporary directory removed at exit.
 *
 * The CA's keys and serials are new at every run, so the corpus names them
 * by markers of the same length, which each input has replaced before it is
 * answered: "duet-seed-name-sha1!" and "duet-seed-key-sha1!!" (the issuing
 * CA's SHA-1 name and key hashes), "duet-seed-issuer-name-sha256!!!!" and
 * "duet-seed-issuer-key-sha256!!!!!" (SHA-256), and the 16-byte serials
 * 5EED5EED5EED5EED5EED5EED5EED5E01 (good), ...5E02 (revoked with
 * keyCompromise), ...5E03 (good); ...5E04 was never issued.
 */
#define _XOPEN_SOURCE 700
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/ocsp.h"
#include "ca/ocspcache.h"
#include "lib/err.h"
#include "lib/x509util.h"

#include "fuzz_ca.h"

#define MAX_KEPT 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    bool ready;
    struct ca *ca;
    struct ca_ocsp_signer *signer;
    struct ca_ocsp_cache *cache;
    int64_t now;
    X509 *certs[3];               /* good, revoked, good */
    uint8_t *primed[4];           /* plain requests answered first */
    size_t primed_len[4];
    uint8_t marks[7][32];         /* the markers' values in this CA, in MARKS order */
    uint8_t *kept[MAX_KEPT];      /* DER CertIDs the cache may hold */
    size_t kept_len[MAX_KEPT];
    size_t nkept;
} F;

/* Markers of the corpus; see the top of this file. */
static const struct {
    const char *bytes;
    size_t len;
} MARKS[7] = {
    {"duet-seed-name-sha1!", 20},
    {"duet-seed-key-sha1!!", 20},
    {"duet-seed-issuer-name-sha256!!!!", 32},
    {"duet-seed-issuer-key-sha256!!!!!", 32},
    {"\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\x01", 16},
    {"\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\x02", 16},
    {"\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\xed\x5e\x03", 16},
};

static void
die(const char *what, const struct duet_err *err)
{
    fprintf(stderr, "ocspreq_fuzz: %s: %s\n", what, err != NULL ? err->msg : "");
    abort();
}

/* A certificate of profile server for name, whose serial's DER has 16 octets. */
static X509 *
issue(const char *name)
{
    struct ca_request req = {.profile = "server", .cn = name};
    struct duet_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;

    for (;;) {
        if (ca_issue_keypair(F.ca, &req, NULL, &cert, &key, NULL, &err) != 0)
            die("issue", &err);
        EVP_PKEY_free(key);
        const ASN1_INTEGER *s = X509_get0_serialNumber(cert);
        if (ASN1_STRING_length(s) == 16 && ASN1_STRING_get0_data(s)[0] < 0x80)
            return cert;
        X509_free(cert);
    }
}

/* The live values of the markers. */
static void
marks_set(void)
{
    X509 *ca = ca_issuing_cert(F.ca);
    unsigned int n = 0;

    if (!X509_NAME_digest(X509_get_subject_name(ca), EVP_sha1(), F.marks[0], &n) || n != 20 ||
        !X509_pubkey_digest(ca, EVP_sha1(), F.marks[1], &n) || n != 20 ||
        !X509_NAME_digest(X509_get_subject_name(ca), EVP_sha256(), F.marks[2], &n) || n != 32 ||
        !X509_pubkey_digest(ca, EVP_sha256(), F.marks[3], &n) || n != 32)
        die("hashes", NULL);
    for (int i = 0; i < 3; i++)
        memcpy(F.marks[4 + i], ASN1_STRING_get0_data(X509_get0_serialNumber(F.certs[i])), 16);
}

/* A copy of data with every marker replaced by its value (free it). */
static uint8_t *
translate(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(size + 1);

    if (out == NULL)
        abort();
    memcpy(out, data, size);
    for (int m = 0; m < 7; m++)
        for (size_t i = 0; i + MARKS[m].len <= size; i++)
            if (memcmp(out + i, MARKS[m].bytes, MARKS[m].len) == 0)
                memcpy(out + i, F.marks[m], MARKS[m].len);
    return out;
}

/* The DER of a request about cert (one CertID, hashed with md), with or without a nonce. */
static uint8_t *
request_der(X509 *cert, const EVP_MD *md, bool nonce, size_t *len)
{
    OCSP_REQUEST *rq = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(md, cert, ca_issuing_cert(F.ca));
    unsigned char *der = NULL;
    int n;

    if (rq == NULL || id == NULL || OCSP_request_add0_id(rq, id) == NULL)
        die("request", NULL);
    if (nonce && OCSP_request_add1_nonce(rq, NULL, 16) != 1)
        die("nonce", NULL);
    if ((n = i2d_OCSP_REQUEST(rq, &der)) <= 0)
        die("encode", NULL);
    OCSP_REQUEST_free(rq);
    *len = (size_t)n;
    return der;
}

/* Remember a CertID's DER as one the cache may hold. */
static void
keep(const uint8_t *key, size_t len)
{
    for (size_t i = 0; i < F.nkept; i++)
        if (F.kept_len[i] == len && memcmp(F.kept[i], key, len) == 0)
            return;
    if ((F.kept[F.nkept] = malloc(len)) == NULL)
        abort();
    memcpy(F.kept[F.nkept], key, len);
    F.kept_len[F.nkept++] = len;
}

/*
 * The DER of the CertID of a request OpenSSL decodes completely to one
 * CertID and no nonce, into *key (OPENSSL_free); 0 for any other request.
 */
static size_t
plain_key(const uint8_t *data, size_t size, unsigned char **key)
{
    const unsigned char *p = data;
    OCSP_REQUEST *rq = d2i_OCSP_REQUEST(NULL, &p, (long)size);
    int n = 0;

    *key = NULL;
    if (rq != NULL && p == data + size && OCSP_request_onereq_count(rq) == 1 &&
        OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, -1) < 0)
        n = i2d_OCSP_CERTID(OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, 0)), key);
    OCSP_REQUEST_free(rq);
    ERR_clear_error();
    return n > 0 ? (size_t)n : 0;
}

/* A new cache, primed with the plain requests. */
static void
prime(void)
{
    ca_ocsp_cache_free(F.cache);
    for (size_t i = 0; i < F.nkept; i++)
        free(F.kept[i]);
    F.nkept = 0;
    if ((F.cache = ca_ocsp_cache_new(0, 0)) == NULL)
        abort();
    for (int i = 0; i < 4; i++) {
        struct ca_ocsp_summary sum;
        struct duet_err err = {0};
        uint8_t *resp = NULL;
        size_t rlen = 0;
        unsigned char *key = NULL;
        size_t klen;

        if (ca_ocsp_respond_cached(F.ca, F.signer, F.cache, F.primed[i], F.primed_len[i], F.now,
                                   0, &resp, &rlen, &sum, &err) != 0 ||
            sum.status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
            die("prime", &err);
        free(resp);
        if ((klen = plain_key(F.primed[i], F.primed_len[i], &key)) == 0)
            die("prime key", NULL);
        keep(key, klen);
        OPENSSL_free(key);
    }
}

static void
setup(void)
{
    struct duet_err err = {0};
    char *serial;

    F.ca = fuzz_ca_open("ocspreq-fuzz", "Ocsp Fuzz", "ocsp.example");
    /* One instant for every answer: both answers of an input are signed at it. */
    F.now = (int64_t)time(NULL);
    if (ca_ocsp_signer_ensure(F.ca, F.now, 0, &F.signer, NULL, &err) != 0)
        die("signer", &err);
    F.certs[0] = issue("good.example");
    F.certs[1] = issue("revoked.example");
    F.certs[2] = issue("other.example");
    serial = x509u_serial(X509_get0_serialNumber(F.certs[1]));
    if (ca_revoke(F.ca, serial, CRL_REASON_KEY_COMPROMISE, F.now - 100, NULL, &err) != 0)
        die("revoke", &err);
    free(serial);
    marks_set();
    F.primed[0] = request_der(F.certs[0], EVP_sha1(), false, &F.primed_len[0]);
    F.primed[1] = request_der(F.certs[1], EVP_sha1(), false, &F.primed_len[1]);
    F.primed[2] = request_der(F.certs[2], EVP_sha256(), false, &F.primed_len[2]);
    F.primed[3] = request_der(F.certs[0], EVP_sha256(), false, &F.primed_len[3]);
    prime();
    F.ready = true;
}

/* What a response says, for comparison: status, nonce, then per SingleResponse. */
struct said {
    int status;
    bool nonce;
    int n;
    unsigned char *ids[CA_OCSP_MAX_CERTS];
    int idlen[CA_OCSP_MAX_CERTS];
    int cst[CA_OCSP_MAX_CERTS];
    int reason[CA_OCSP_MAX_CERTS];
    char revtime[CA_OCSP_MAX_CERTS][32];
};

static void
read_response(const uint8_t *der, size_t len, struct said *s)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;

    memset(s, 0, sizeof(*s));
    if (r == NULL || p != der + len) {
        fprintf(stderr, "ocspreq_fuzz: a response that does not decode\n");
        abort();
    }
    s->status = OCSP_response_status(r);
    if (s->status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        if ((bs = OCSP_response_get1_basic(r)) == NULL) {
            fprintf(stderr, "ocspreq_fuzz: a successful response without a basic response\n");
            abort();
        }
        s->nonce = OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1) >= 0;
        s->n = OCSP_resp_count(bs);
        if (s->n < 1 || s->n > CA_OCSP_MAX_CERTS) {
            fprintf(stderr, "ocspreq_fuzz: a response with %d answers\n", s->n);
            abort();
        }
        for (int i = 0; i < s->n; i++) {
            OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
            ASN1_GENERALIZEDTIME *rt = NULL, *tu = NULL, *nu = NULL;
            s->idlen[i] = i2d_OCSP_CERTID(OCSP_SINGLERESP_get0_id(sr), &s->ids[i]);
            s->cst[i] = OCSP_single_get0_status(sr, &s->reason[i], &rt, &tu, &nu);
            if (rt != NULL)
                snprintf(s->revtime[i], sizeof(s->revtime[i]), "%.*s", ASN1_STRING_length(rt),
                         (const char *)ASN1_STRING_get0_data(rt));
        }
    }
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
    ERR_clear_error();
}

static void
said_clear(struct said *s)
{
    for (int i = 0; i < s->n; i++)
        OPENSSL_free(s->ids[i]);
}

static void
differ(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "ocspreq_fuzz: with and without the cache, %s differs (%zu-byte request)\n",
            what, size);
    (void)data;
    abort();
}

/* Answer data with the primed cache and without one; see the top of this file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ca_ocsp_summary sc, su;
    struct duet_err ec = {0}, eu = {0};
    uint8_t *rc = NULL, *ru = NULL;
    size_t lc = 0, lu = 0;
    struct said a, b;
    unsigned char *key = NULL;
    uint8_t *in;
    size_t klen;

    if (!F.ready)
        setup();
    if (F.nkept >= MAX_KEPT)
        prime();
    data = in = translate(data, size);
    if (ca_ocsp_respond_cached(F.ca, F.signer, F.cache, data, size, F.now, 0, &rc, &lc, &sc,
                               &ec) != 0 ||
        ca_ocsp_respond(F.ca, F.signer, data, size, F.now, 0, &ru, &lu, &su, &eu) != 0) {
        fprintf(stderr, "ocspreq_fuzz: no response: %s / %s\n", ec.msg, eu.msg);
        abort();
    }
    read_response(rc, lc, &a);
    read_response(ru, lu, &b);
    if (a.status != b.status || sc.status != su.status || a.status != sc.status)
        differ("the response status", data, size);
    if (a.nonce != b.nonce)
        differ("the nonce", data, size);
    if (a.n != b.n)
        differ("the number of answers", data, size);
    for (int i = 0; i < a.n; i++) {
        if (a.idlen[i] != b.idlen[i] || memcmp(a.ids[i], b.ids[i], (size_t)a.idlen[i]) != 0)
            differ("a CertID", data, size);
        if (a.cst[i] != b.cst[i] || a.reason[i] != b.reason[i] ||
            strcmp(a.revtime[i], b.revtime[i]) != 0)
            differ("a certificate's status", data, size);
    }
    if (sc.good != su.good || sc.revoked != su.revoked || sc.unknown != su.unknown)
        differ("the summary", data, size);
    if (sc.cache == NULL || su.cache != NULL)
        differ("whether a cache was used", data, size);
    klen = plain_key(data, size, &key);
    /* OCSPREQ_FUZZ_VERBOSE=1: what each input got, to see that a corpus reaches the cache. */
    if (getenv("OCSPREQ_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "%s cache=%s good=%zu revoked=%zu unknown=%zu%s%s\n",
                ca_ocsp_status_name(sc.status), sc.cache, sc.good, sc.revoked, sc.unknown,
                ec.msg[0] != '\0' ? ": " : "", ec.msg);
    if (strcmp(sc.cache, CA_OCSP_CACHE_HIT) == 0) {
        bool known = false;
        for (size_t i = 0; klen > 0 && i < F.nkept; i++)
            known = known || (F.kept_len[i] == klen && memcmp(F.kept[i], key, klen) == 0);
        if (!known) {
            fprintf(stderr, "ocspreq_fuzz: a cache hit for a question never answered before\n");
            abort();
        }
    } else if (strcmp(sc.cache, CA_OCSP_CACHE_MISS) == 0) {
        /* Kept now: only a plain question may be. */
        if (klen == 0) {
            fprintf(stderr, "ocspreq_fuzz: an answer kept for a request that is not plain\n");
            abort();
        }
        keep(key, klen);
    }
    OPENSSL_free(key);
    said_clear(&a);
    said_clear(&b);
    free(rc);
    free(ru);
    free(in);
    return 0;
}
