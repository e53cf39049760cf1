/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_test.c - unit tests of the CA's OCSP responder (src/ca/ocsp.c),
 * against one CA made for the group in a temporary directory.
 *
 * Requests are built, and responses read and verified, with OpenSSL's own
 * OCSP API, independently of the code under test: every successful response
 * must verify (OCSP_basic_verify) with the root as the only trust anchor and
 * say good, revoked (time, reason) or unknown exactly as the inventory does.
 * Hostile input - garbage, truncations and bit flips of a valid request,
 * oversized requests, too many certificates, long nonces, huge or negative
 * serials, CertIDs of another CA, of the issuing CA or of the root - must
 * each give a well-formed OCSPResponse and never a successful one that says
 * something false.  The delegated signer is recorded in the inventory,
 * reused across opens and replaced when a third of its life is left or it
 * is revoked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/ocsp.h"
#include "lib/err.h"
#include "lib/x509util.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define HOUR 3600

static struct cafx F; /* the CA, in F.dir */

/* What the CA has signed and revoked, and another CA it must not answer for. */
static struct {
    struct ca_ocsp_signer *signer;
    int64_t now;
    X509 *good;     /* issued by the CA */
    X509 *revoked;  /* issued, then revoked with keyCompromise */
    X509 *other_ca; /* another CA, with the same subject as the issuing CA */
    EVP_PKEY *other_key;
    X509 *other_leaf;
} W;

/* An issued certificate of profile server for NAME. */
static X509 *
issue(const char *name)
{
    struct ca_request req = {.profile = "server", .cn = name};
    struct duet_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;

    if (ca_issue_keypair(F.ca, &req, NULL, &cert, &key, NULL, &err) != 0)
        fail_msg("issue %s: %s", name, err.msg);
    EVP_PKEY_free(key);
    return cert;
}

static char *
serial_of(X509 *cert)
{
    return x509u_serial(X509_get0_serialNumber(cert));
}

static int
group_setup(void **state)
{
    struct duet_err err = {0};
    char *serial;

    (void)state;
    if (cafx_setup(&F, (struct ca_init_opts){.name = "Ocsp Test", .trust_domain = "ocsp.example"},
                   NULL) != 0)
        return -1;
    W.now = (int64_t)time(NULL);
    if (ca_ocsp_signer_ensure(F.ca, W.now, 0, &W.signer, NULL, &err) != 0) {
        fprintf(stderr, "signer: %s\n", err.msg);
        return -1;
    }
    W.good = issue("good.example");
    W.revoked = issue("revoked.example");
    serial = serial_of(W.revoked);
    if (ca_revoke(F.ca, serial, CRL_REASON_KEY_COMPROMISE, W.now - 100, NULL, &err) != 0) {
        fprintf(stderr, "revoke: %s\n", err.msg);
        return -1;
    }
    free(serial);
    W.other_key = cf_key_new(CF_KEY_EC_P256);
    W.other_ca = cf_cert_new(&(struct cf_cert_spec){
        .cn = "Ocsp Test Issuing CA", .o = "Ocsp Test", .key = W.other_key, .bc = CF_BC_CA});
    {
        EVP_PKEY *k = cf_key_new(CF_KEY_EC_P256);
        W.other_leaf = cf_cert_new(&(struct cf_cert_spec){.cn = "other.example",
                                                          .key = k,
                                                          .issuer = W.other_ca,
                                                          .issuer_key = W.other_key,
                                                          .bc = CF_BC_LEAF});
        EVP_PKEY_free(k);
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    ca_ocsp_signer_free(W.signer);
    X509_free(W.good);
    X509_free(W.revoked);
    X509_free(W.other_ca);
    X509_free(W.other_leaf);
    EVP_PKEY_free(W.other_key);
    cafx_teardown(&F);
    return 0;
}

/* ---- independent helpers ---- */

/* A CertID for cert under issuer, hashed with md. */
static OCSP_CERTID *
id_of(const EVP_MD *md, X509 *cert, X509 *issuer)
{
    OCSP_CERTID *id = OCSP_cert_to_id(md, cert, issuer);

    assert_non_null(id);
    return id;
}

/* A CertID naming the issuing CA as issuer and any serial (of `len` bytes of `fill`). */
static OCSP_CERTID *
id_serial(const uint8_t *bytes, size_t len, bool negative)
{
    X509 *iss = ca_issuing_cert(F.ca);
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    BIGNUM *bn = BN_bin2bn(bytes, (int)len, NULL);
    OCSP_CERTID *id;

    assert_non_null(bn);
    BN_set_negative(bn, negative ? 1 : 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, sn));
    id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(iss), X509_get0_pubkey_bitstr(iss), sn);
    assert_non_null(id);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return id;
}

/* A request asking about the CertIDs given (taken), NULL-terminated. */
static OCSP_REQUEST *
request(OCSP_CERTID *first, ...)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    va_list ap;

    assert_non_null(req);
    va_start(ap, first);
    for (OCSP_CERTID *id = first; id != NULL; id = va_arg(ap, OCSP_CERTID *))
        assert_non_null(OCSP_request_add0_id(req, id));
    va_end(ap);
    return req;
}

static uint8_t *
req_der(OCSP_REQUEST *req, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* What came back for one request. */
struct answer {
    OCSP_RESPONSE *resp;
    OCSP_BASICRESP *bs; /* when successful */
    int status;
    struct ca_ocsp_summary sum;
    struct duet_err err;
};

static void
answer_clear(struct answer *a)
{
    OCSP_BASICRESP_free(a->bs);
    OCSP_RESPONSE_free(a->resp);
    memset(a, 0, sizeof(*a));
}

/* A trust store of the root alone, verifying at `at`. */
static X509_STORE *
trust_at(int64_t at)
{
    X509_STORE *st = cf_store(ca_root_cert(F.ca), NULL);

    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), (time_t)at);
    return st;
}

/*
 * Whether every CertID of a response names the issuing CA: OpenSSL's
 * responder check (without OCSP_NOCHECKS) needs one issuer for them all.
 */
static bool
all_ours(OCSP_BASICRESP *bs)
{
    for (int i = 0; i < OCSP_resp_count(bs); i++) {
        OCSP_CERTID *id = OCSP_CERTID_dup(OCSP_SINGLERESP_get0_id(OCSP_resp_get0(bs, i)));
        ASN1_OBJECT *alg = NULL;
        OCSP_CERTID *mine;
        int nid;
        assert_int_equal(OCSP_id_get0_info(NULL, &alg, NULL, NULL, id), 1);
        nid = OBJ_obj2nid(alg);
        mine =
            nid == NID_sha1 || nid == NID_sha256
                ? id_of(nid == NID_sha1 ? EVP_sha1() : EVP_sha256(), W.good, ca_issuing_cert(F.ca))
                : NULL;
        bool same = mine != NULL && OCSP_id_issuer_cmp(id, mine) == 0;
        OCSP_CERTID_free(mine);
        OCSP_CERTID_free(id);
        if (!same)
            return false;
    }
    return true;
}

/*
 * Answer DER bytes with `signer` at `now`; the response must decode, an
 * unsuccessful one must carry no responseBytes, and a successful one must
 * verify with the root as the only trust anchor (the responder check skipped
 * only when its CertIDs name several issuers).
 */
static void
ask_der_with(struct ca_ocsp_signer *signer, const uint8_t *der, size_t len, int64_t now,
             int64_t validity, struct answer *a)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    const unsigned char *p;

    memset(a, 0, sizeof(*a));
    assert_int_equal(
        ca_ocsp_respond(F.ca, signer, der, len, now, validity, &out, &out_len, &a->sum, &a->err),
        0);
    p = out;
    a->resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out_len);
    assert_non_null(a->resp);
    assert_ptr_equal(p, out + out_len);
    free(out);
    a->status = OCSP_response_status(a->resp);
    assert_int_equal(a->status, a->sum.status);
    a->bs = OCSP_response_get1_basic(a->resp);
    ERR_clear_error();
    if (a->status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        assert_null(a->bs);
        assert_true(a->err.msg[0] != '\0');
        return;
    }
    assert_non_null(a->bs);
    {
        X509_STORE *st = trust_at(now);
        int v = OCSP_basic_verify(a->bs, NULL, st, all_ours(a->bs) ? 0 : OCSP_NOCHECKS);
        if (v != 1)
            fail_msg("OCSP_basic_verify: %d", v);
        X509_STORE_free(st);
    }
}

static void
ask(OCSP_REQUEST *req, int64_t now, struct answer *a)
{
    size_t len;
    uint8_t *der = req_der(req, &len);

    ask_der_with(W.signer, der, len, now, 0, a);
    OPENSSL_free(der);
}

/* The status the response gives for id, with the reason, revocation and update times. */
static int
status_of(const struct answer *a, OCSP_CERTID *id, int *reason, int64_t *revtime, int64_t *this_upd,
          int64_t *next_upd)
{
    ASN1_GENERALIZEDTIME *rt = NULL, *tu = NULL, *nu = NULL;
    int status = -1, r = -1;

    if (!OCSP_resp_find_status(a->bs, id, &status, &r, &rt, &tu, &nu))
        fail_msg("no answer for the CertID");
    if (reason != NULL)
        *reason = r;
    if (revtime != NULL)
        assert_true(rt == NULL ? (*revtime = 0, true) : x509u_time(rt, revtime));
    if (this_upd != NULL)
        assert_true(x509u_time(tu, this_upd));
    if (next_upd != NULL)
        assert_true(nu != NULL && x509u_time(nu, next_upd));
    return status;
}

/* ---- the answers ---- */

/* Good, revoked (time and reason) and unknown in one response, with the update times. */
static void
test_good_revoked_unknown(void **state)
{
    static const uint8_t never[16] = {0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    OCSP_CERTID *g = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
    OCSP_CERTID *r = id_of(EVP_sha1(), W.revoked, ca_issuing_cert(F.ca));
    OCSP_CERTID *u = id_serial(never, sizeof(never), false);
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(g), OCSP_CERTID_dup(r), OCSP_CERTID_dup(u), NULL);
    struct answer a;
    int reason = -2;
    int64_t rt = 0, tu = 0, nu = 0;

    (void)state;
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(status_of(&a, g, &reason, NULL, &tu, &nu), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(tu, W.now);
    assert_int_equal(nu, W.now + CA_OCSP_VALIDITY);
    assert_int_equal(status_of(&a, r, &reason, &rt, NULL, NULL), V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert_int_equal(rt, W.now - 100);
    assert_int_equal(status_of(&a, u, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
    assert_int_equal(a.sum.good, 1);
    assert_int_equal(a.sum.revoked, 1);
    assert_int_equal(a.sum.unknown, 1);
    assert_false(a.sum.nonce);
    /* The responder is named by key, its certificate is in the response. */
    {
        const ASN1_OCTET_STRING *kid = NULL;
        const X509_NAME *name = NULL;
        assert_int_equal(OCSP_resp_get0_id(a.bs, &kid, &name), 1);
        assert_non_null(kid);
        assert_null(name);
        assert_int_equal(OCSP_resp_get0_signer(a.bs, &(X509 *){NULL}, NULL), 1);
    }
    answer_clear(&a);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(g);
    OCSP_CERTID_free(r);
    OCSP_CERTID_free(u);
}

/* A SHA-256 CertID is answered, with the same algorithm; the validity option is honoured. */
static void
test_sha256_certid_and_validity(void **state)
{
    OCSP_CERTID *g = id_of(EVP_sha256(), W.good, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(g), NULL);
    struct answer a;
    size_t len;
    uint8_t *der = req_der(req, &len);
    int64_t nu = 0;

    (void)state;
    ask_der_with(W.signer, der, len, W.now, 600, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    /* OCSP_resp_find_status matches the hash algorithm too. */
    assert_int_equal(status_of(&a, g, NULL, NULL, NULL, &nu), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(nu, W.now + 600);
    {
        OCSP_CERTID *id = OCSP_CERTID_dup(OCSP_SINGLERESP_get0_id(OCSP_resp_get0(a.bs, 0)));
        ASN1_OBJECT *alg = NULL;
        assert_int_equal(OCSP_id_get0_info(NULL, &alg, NULL, NULL, id), 1);
        assert_int_equal(OBJ_obj2nid(alg), NID_sha256);
        OCSP_CERTID_free(id);
    }
    answer_clear(&a);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(g);
}

/* A nonce is echoed; RFC 8954: 1 to 32 octets, one nonce only. */
static void
test_nonce(void **state)
{
    static unsigned char n32[32] = {1, 2, 3};
    static unsigned char n33[33] = {1, 2, 3};
    struct answer a;
    OCSP_REQUEST *req;

    (void)state;
    req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)), NULL);
    assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(OCSP_check_nonce(req, a.bs), 1);
    assert_true(a.sum.nonce);
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)), NULL);
    assert_int_equal(OCSP_request_add1_nonce(req, n32, sizeof(n32)), 1);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(OCSP_check_nonce(req, a.bs), 1);
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)), NULL);
    assert_int_equal(OCSP_request_add1_nonce(req, n33, sizeof(n33)), 1);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_contains(a.err.msg, "nonce has 33 octets; RFC 8954 allows 1 to 32");
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    /* Two nonces. */
    req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)), NULL);
    assert_int_equal(OCSP_request_add1_nonce(req, NULL, 8), 1);
    {
        X509_EXTENSION *ext = X509_EXTENSION_dup(OCSP_REQUEST_get_ext(req, 0));
        assert_int_equal(OCSP_REQUEST_add_ext(req, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_contains(a.err.msg, "more than one nonce");
    answer_clear(&a);
    OCSP_REQUEST_free(req);
}

/* Another CA's certificate (even one with the issuing CA's very subject) is not ours. */
static void
test_other_issuers(void **state)
{
    X509 *iss = ca_issuing_cert(F.ca), *root = ca_root_cert(F.ca);
    OCSP_CERTID *other = id_of(EVP_sha1(), W.other_leaf, W.other_ca);
    OCSP_CERTID *g = id_of(EVP_sha1(), W.good, iss);
    OCSP_REQUEST *req;
    struct answer a;

    (void)state;
    /* Only other issuers: unauthorized (RFC 6960 2.3, RFC 5019 2.2.3). */
    req = request(OCSP_CERTID_dup(other), NULL);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    assert_contains(a.err.msg, "only about certificates of another issuer");
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    /* The issuing CA as a subject (the root issued it) and the root itself: not ours. */
    req = request(id_of(EVP_sha1(), iss, root), id_of(EVP_sha256(), root, root), NULL);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    /* The issuing CA's serial under the issuing CA: its row is the root's, so unknown. */
    {
        OCSP_CERTID *self =
            OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(iss), X509_get0_pubkey_bitstr(iss),
                             X509_get0_serialNumber(iss));
        assert_non_null(self);
        req = request(OCSP_CERTID_dup(self), NULL);
        ask(req, W.now, &a);
        assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
        assert_int_equal(status_of(&a, self, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
        answer_clear(&a);
        OCSP_REQUEST_free(req);
        OCSP_CERTID_free(self);
    }

    /* Mixed: ours answered, the other unknown (RFC 6960 2.2). */
    req = request(OCSP_CERTID_dup(g), OCSP_CERTID_dup(other), NULL);
    {
        size_t len;
        uint8_t *der = req_der(req, &len);
        uint8_t *out = NULL;
        size_t out_len = 0;
        const unsigned char *p;
        X509_STORE *st = trust_at(W.now);
        memset(&a, 0, sizeof(a));
        assert_int_equal(
            ca_ocsp_respond(F.ca, W.signer, der, len, W.now, 0, &out, &out_len, &a.sum, &a.err), 0);
        p = out;
        a.resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out_len);
        assert_int_equal(OCSP_response_status(a.resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
        a.bs = OCSP_response_get1_basic(a.resp);
        /*
         * The signature and chain verify; OpenSSL's responder check wants one issuer for
         * every CertID, which a mixed request cannot give.
         */
        assert_int_equal(OCSP_basic_verify(a.bs, NULL, st, OCSP_NOCHECKS), 1);
        assert_int_equal(status_of(&a, g, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(status_of(&a, other, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
        X509_STORE_free(st);
        free(out);
        OPENSSL_free(der);
    }
    answer_clear(&a);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(g);
    OCSP_CERTID_free(other);
}

/* Huge, negative and zero serials are unknown, never a crash or a lookup gone wrong. */
static void
test_odd_serials(void **state)
{
    uint8_t big[200];
    uint8_t good[64];
    struct answer a;
    OCSP_REQUEST *req;
    const ASN1_INTEGER *gs = X509_get0_serialNumber(W.good);

    (void)state;
    memset(big, 0x5a, sizeof(big));
    /* The good certificate's serial, negated: the same digits, another number. */
    assert_true(ASN1_STRING_length(gs) <= (int)sizeof(good));
    memcpy(good, ASN1_STRING_get0_data(gs), (size_t)ASN1_STRING_length(gs));
    req = request(id_serial(big, sizeof(big), false), id_serial(big, 21, false),
                  id_serial(good, (size_t)ASN1_STRING_length(gs), true),
                  id_serial((const uint8_t *)"", 0, false), NULL);
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(a.sum.unknown, 4);
    assert_int_equal(a.sum.good + a.sum.revoked, 0);
    answer_clear(&a);
    OCSP_REQUEST_free(req);
}

/* Input that is no request, too big, or asks about too many certificates. */
static void
test_malformed(void **state)
{
    static const uint8_t junk[] = "GET / HTTP/1.1\r\n\r\n";
    struct answer a;
    OCSP_REQUEST *req;
    size_t len;
    uint8_t *der, *more;

    (void)state;
    ask_der_with(W.signer, junk, sizeof(junk) - 1, W.now, 0, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_contains(a.err.msg, "not one DER OCSPRequest");
    answer_clear(&a);
    ask_der_with(W.signer, junk, 0, W.now, 0, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    answer_clear(&a);

    /* A valid request followed by one more byte. */
    req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)), NULL);
    der = req_der(req, &len);
    more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, der, len);
    more[len] = 0;
    ask_der_with(W.signer, more, len + 1, W.now, 0, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    answer_clear(&a);
    free(more);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);

    /* An empty request list. */
    req = OCSP_REQUEST_new();
    ask(req, W.now, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_contains(a.err.msg, "asks about 0 certificates");
    answer_clear(&a);
    OCSP_REQUEST_free(req);

    /* CA_OCSP_MAX_CERTS is answered, one more is refused, 10,000 too (by size first). */
    {
        static const size_t counts[] = {CA_OCSP_MAX_CERTS, CA_OCSP_MAX_CERTS + 1, 10000};
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            req = OCSP_REQUEST_new();
            for (size_t i = 0; i < counts[c]; i++)
                assert_non_null(
                    OCSP_request_add0_id(req, id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca))));
            ask(req, W.now, &a);
            if (counts[c] == CA_OCSP_MAX_CERTS) {
                assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
                assert_int_equal(a.sum.good, CA_OCSP_MAX_CERTS);
            } else {
                assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
                assert_contains(a.err.msg,
                                counts[c] == 10000 ? "expected 1 to 65536" : "answers 1 to 32");
            }
            answer_clear(&a);
            OCSP_REQUEST_free(req);
        }
    }
}

/* The status a CertID must get, computed with OpenSSL alone. */
static int
expected_status(OCSP_CERTID *cid)
{
    ASN1_OBJECT *alg = NULL;
    const EVP_MD *md;
    OCSP_CERTID *g, *r;
    int st = V_OCSP_CERTSTATUS_UNKNOWN;

    assert_int_equal(OCSP_id_get0_info(NULL, &alg, NULL, NULL, cid), 1);
    switch (OBJ_obj2nid(alg)) {
    case NID_sha1:
        md = EVP_sha1();
        break;
    case NID_sha256:
        md = EVP_sha256();
        break;
    default:
        return st;
    }
    g = id_of(md, W.good, ca_issuing_cert(F.ca));
    r = id_of(md, W.revoked, ca_issuing_cert(F.ca));
    if (OCSP_id_cmp(cid, g) == 0)
        st = V_OCSP_CERTSTATUS_GOOD;
    else if (OCSP_id_cmp(cid, r) == 0)
        st = V_OCSP_CERTSTATUS_REVOKED;
    OCSP_CERTID_free(g);
    OCSP_CERTID_free(r);
    return st;
}

/* Every successful answer to a mangled request is signed and tells the truth. */
static void
check_mangled(const uint8_t *der, size_t len, size_t *successes)
{
    struct answer a;

    ask_der_with(W.signer, der, len, W.now, 0, &a);
    if (a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        (*successes)++;
        for (int i = 0; i < OCSP_resp_count(a.bs); i++) {
            OCSP_SINGLERESP *s = OCSP_resp_get0(a.bs, i);
            int st = OCSP_single_get0_status(s, NULL, NULL, NULL, NULL);
            OCSP_CERTID *id = OCSP_CERTID_dup(OCSP_SINGLERESP_get0_id(s));
            assert_int_equal(st, expected_status(id));
            OCSP_CERTID_free(id);
        }
    } else {
        assert_true(a.status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST ||
                    a.status == OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    }
    answer_clear(&a);
}

/* Truncations and bit flips of a valid request: well-formed responses, never a false one. */
/*
 * A CertID whose hashAlgorithm parameters OpenSSL decodes but cannot encode
 * again (here an empty constructed element of tag [UNIVERSAL 0] where NULL
 * was), beside a CertID of ours: anyone can send it, so the answer is
 * malformedRequest naming the CertID, never internalError (found by
 * tests/fuzz/ocspreq_fuzz.c).
 */
static void
test_certid_not_echoable(void **state)
{
    static const uint8_t sha1_null[] = {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00};
    struct answer a;
    OCSP_REQUEST *req;
    size_t len, hits = 0;
    uint8_t *der;

    (void)state;
    req = request(id_of(EVP_sha256(), W.good, ca_issuing_cert(F.ca)),
                  id_of(EVP_sha1(), W.revoked, ca_issuing_cert(F.ca)), NULL);
    der = req_der(req, &len);
    for (size_t i = 0; i + sizeof(sha1_null) <= len; i++) {
        if (memcmp(der + i, sha1_null, sizeof(sha1_null)) == 0) {
            der[i + 7] = 0x20; /* NULL becomes an empty constructed [UNIVERSAL 0] */
            hits++;
        }
    }
    assert_int_equal(hits, 1);
    ask_der_with(W.signer, der, len, W.now, 0, &a);
    assert_int_equal(a.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_int_equal(a.err.kind, DUET_ERR_INPUT);
    assert_contains(a.err.msg, "CertID 2 of the request");
    assert_int_equal(a.sum.good + a.sum.revoked + a.sum.unknown, 0);
    answer_clear(&a);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
}

static void
test_mangled_requests(void **state)
{
    OCSP_REQUEST *req = request(id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca)),
                                id_of(EVP_sha256(), W.revoked, ca_issuing_cert(F.ca)), NULL);
    size_t len, successes = 0;
    uint8_t *der, *copy;

    (void)state;
    assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
    der = req_der(req, &len);
    copy = malloc(len);
    assert_non_null(copy);
    for (size_t n = 0; n < len; n++)
        check_mangled(der, n, &successes);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, der, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        check_mangled(copy, len, &successes);
    }
    /* Some flips (in the nonce, in a serial) still decode: they were checked above. */
    assert_true(successes > 0);
    free(copy);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
}

/* A revocation shows in the very next response. */
static void
test_revocation_is_immediate(void **state)
{
    X509 *cert = issue("soon-revoked.example");
    OCSP_CERTID *id = id_of(EVP_sha1(), cert, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    struct duet_err err = {0};
    struct answer a;
    char *serial = serial_of(cert);
    int reason = -2;

    (void)state;
    ask(req, W.now, &a);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    answer_clear(&a);
    assert_int_equal(ca_revoke(F.ca, serial, 0, W.now, NULL, &err), 0);
    ask(req, W.now, &a);
    assert_int_equal(status_of(&a, id, &reason, NULL, NULL, NULL), V_OCSP_CERTSTATUS_REVOKED);
    /* unspecified is left out, as in the CRL */
    assert_int_equal(reason, OCSP_REVOKED_STATUS_NOSTATUS);
    answer_clear(&a);
    free(serial);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    X509_free(cert);
}

/* ---- answers reused from the cache ---- */

/* One answer through the cache: the DER kept in *der (the caller frees it), and verified. */
static void
ask_cached(struct ca_ocsp_cache *cache, struct ca_ocsp_signer *signer, OCSP_REQUEST *req,
           int64_t now, struct answer *a, uint8_t **der, size_t *der_len)
{
    size_t len;
    uint8_t *rq = req_der(req, &len);
    const unsigned char *p;

    memset(a, 0, sizeof(*a));
    assert_int_equal(ca_ocsp_respond_cached(F.ca, signer, cache, rq, len, now, 0, der, der_len,
                                            &a->sum, &a->err),
                     0);
    OPENSSL_free(rq);
    p = *der;
    a->resp = d2i_OCSP_RESPONSE(NULL, &p, (long)*der_len);
    assert_non_null(a->resp);
    a->status = OCSP_response_status(a->resp);
    assert_int_equal(a->status, a->sum.status);
    a->bs = OCSP_response_get1_basic(a->resp);
    ERR_clear_error();
    if (a->status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        X509_STORE *st = trust_at(now);
        assert_int_equal(OCSP_basic_verify(a->bs, NULL, st, 0), 1);
        X509_STORE_free(st);
    }
}

/* Whether two answers are the same bytes. */
static bool
same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/*
 * Without a nonce, the second answer is the first one's bytes, until this
 * process revokes the certificate: then `revoked` at once, signed afresh, and
 * that answer reused in turn.
 */
static void
test_cache_hit_then_own_revocation(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    X509 *cert = issue("cached.example");
    OCSP_CERTID *id = id_of(EVP_sha1(), cert, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    struct duet_err err = {0};
    struct answer a;
    uint8_t *d1 = NULL, *d2 = NULL, *d3 = NULL, *d4 = NULL;
    size_t l1, l2, l3, l4;
    int64_t tu = 0;
    char *serial = serial_of(cert);

    (void)state;
    assert_non_null(cache);
    ask_cached(cache, W.signer, req, W.now, &a, &d1, &l1);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    answer_clear(&a);
    ask_cached(cache, W.signer, req, W.now + 5, &a, &d2, &l2);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
    assert_true(same_bytes(d1, l1, d2, l2));
    /* the reused answer says when it was signed, not when it was asked for */
    assert_int_equal(status_of(&a, id, NULL, NULL, &tu, NULL), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(tu, W.now);
    assert_int_equal(a.sum.this_update, W.now);
    assert_int_equal(a.sum.good, 1);
    answer_clear(&a);

    assert_int_equal(ca_revoke(F.ca, serial, CRL_REASON_KEY_COMPROMISE, W.now + 6, NULL, &err), 0);
    ask_cached(cache, W.signer, req, W.now + 7, &a, &d3, &l3);
    assert_int_equal(status_of(&a, id, NULL, NULL, &tu, NULL), V_OCSP_CERTSTATUS_REVOKED);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    assert_int_equal(tu, W.now + 7);
    answer_clear(&a);
    ask_cached(cache, W.signer, req, W.now + 8, &a, &d4, &l4);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
    assert_int_equal(a.sum.revoked, 1);
    assert_true(same_bytes(d3, l3, d4, l4));
    answer_clear(&a);
    free(d1);
    free(d2);
    free(d3);
    free(d4);
    free(serial);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    X509_free(cert);
    ca_ocsp_cache_free(cache);
}

/*
 * A batch (ca_ocsp_cache_batch_open) reads the generation once: the
 * caller opens one only for requests all received before it, so a commit by
 * another handle inside it is not seen by its later answers (they were asked
 * before it) and is seen by the first answer of the next batch.  Answers
 * with a nonce reuse the certificate's row in the epoch the same way, and are
 * still signed afresh, their nonce echoed.
 */
static void
test_cache_batch_reads_once(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    X509 *cert = issue("batch.example");
    OCSP_CERTID *id = id_of(EVP_sha256(), cert, ca_issuing_cert(F.ca));
    OCSP_REQUEST *plain = request(OCSP_CERTID_dup(id), NULL);
    OCSP_REQUEST *nreq = request(OCSP_CERTID_dup(id), NULL);
    struct duet_err err = {0};
    struct store *other = NULL;
    char *inv = cf_path(F.dir, CA_FILE_INVENTORY);
    char *serial = serial_of(cert);
    struct answer a;
    uint8_t *d = NULL;
    size_t l;

    (void)state;
    assert_int_equal(OCSP_request_add1_nonce(nreq, NULL, 16), 1);
    if (store_open_sqlite(inv, false, &other, &err) != 0)
        fail_msg("second handle: %s", err.msg);
    ca_ocsp_cache_batch_open(cache);
    ask_cached(cache, W.signer, nreq, W.now, &a, &d, &l); /* reads the generation, the row */
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    answer_clear(&a);
    free(d);
    assert_int_equal(store_revoke(other, serial, W.now, 1, "cli:test", &err), 0);
    ask_cached(cache, W.signer, nreq, W.now, &a, &d, &l); /* the batch's read and row */
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(OCSP_check_nonce(nreq, a.bs), 1);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, plain, W.now, &a, &d, &l);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    answer_clear(&a);
    free(d);
    ca_ocsp_cache_batch_close(cache);
    /* the next batch reads again: revoked, with and without a nonce */
    ca_ocsp_cache_batch_open(cache);
    ask_cached(cache, W.signer, plain, W.now, &a, &d, &l);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_REVOKED);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, nreq, W.now, &a, &d, &l);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_REVOKED);
    answer_clear(&a);
    free(d);
    ca_ocsp_cache_batch_close(cache);
    store_close(other);
    free(inv);
    free(serial);
    OCSP_REQUEST_free(plain);
    OCSP_REQUEST_free(nreq);
    OCSP_CERTID_free(id);
    X509_free(cert);
    ca_ocsp_cache_free(cache);
}

/*
 * A revocation committed by another handle on the same inventory (as `duet
 * cert revoke` in another process does while `duet ca serve` runs) is seen
 * by the very next answer; so is an issuance by another handle, for a serial
 * answered `unknown` before: such an answer is never kept (an issuance on
 * PostgreSQL does not move the generation, store_begin_issue).
 */
static void
test_cache_sees_another_handles_commit(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    X509 *cert = issue("other-handle.example");
    OCSP_CERTID *id = id_of(EVP_sha256(), cert, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    struct duet_err err = {0};
    struct store *other = NULL;
    char *inv = cf_path(F.dir, CA_FILE_INVENTORY);
    char *serial = serial_of(cert);
    struct answer a;
    uint8_t *d = NULL;
    size_t l;

    (void)state;
    ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
    answer_clear(&a);
    free(d);
    if (store_open_sqlite(inv, false, &other, &err) != 0)
        fail_msg("second handle: %s", err.msg);
    assert_int_equal(store_revoke(other, serial, W.now, 1, "cli:test", &err), 0);
    ask_cached(cache, W.signer, req, W.now + 1, &a, &d, &l);
    assert_int_equal(status_of(&a, id, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_REVOKED);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    answer_clear(&a);
    free(d);

    /* unknown is signed afresh every time, never kept, before and after any write */
    {
        static const uint8_t sn[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                       0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01};
        OCSP_CERTID *uid = id_serial(sn, sizeof(sn), false);
        OCSP_REQUEST *ureq = request(OCSP_CERTID_dup(uid), NULL);
        struct store_cert row = {0};
        static const uint8_t blob[] = {0x30, 0x00};
        ask_cached(cache, W.signer, ureq, W.now + 2, &a, &d, &l);
        assert_int_equal(status_of(&a, uid, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        answer_clear(&a);
        free(d);
        ask_cached(cache, W.signer, ureq, W.now + 2, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        assert_int_equal(a.sum.unknown, 1);
        assert_int_equal(status_of(&a, uid, NULL, NULL, NULL, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
        answer_clear(&a);
        free(d);
        /* a row of another serial written meanwhile: still signed afresh */
        row.serial = (char *)(uintptr_t) "01:02:03";
        row.name = row.subject = row.sans = row.profile = row.key_fingerprint =
            (char *)(uintptr_t) "x";
        row.issuer = (char *)(uintptr_t) "CN=elsewhere";
        row.der = (uint8_t *)(uintptr_t)blob;
        row.der_len = sizeof(blob);
        assert_int_equal(store_insert(other, &row, &err), 0);
        ask_cached(cache, W.signer, ureq, W.now + 3, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        answer_clear(&a);
        free(d);
        OCSP_REQUEST_free(ureq);
        OCSP_CERTID_free(uid);
    }
    store_close(other);
    free(inv);
    free(serial);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    X509_free(cert);
    ca_ocsp_cache_free(cache);
}

/* An answer is reused for less than the cache's age after its thisUpdate, then signed again. */
static void
test_cache_age(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 60);
    OCSP_CERTID *id = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    struct answer a;
    uint8_t *d = NULL;
    size_t l;
    int64_t tu = 0;

    (void)state;
    ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, req, W.now + 59, &a, &d, &l);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
    assert_int_equal(status_of(&a, id, NULL, NULL, &tu, NULL), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(tu, W.now);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, req, W.now + 60, &a, &d, &l);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    assert_int_equal(status_of(&a, id, NULL, NULL, &tu, NULL), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(tu, W.now + 60);
    answer_clear(&a);
    free(d);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    ca_ocsp_cache_free(cache);
}

/*
 * A request with a nonce is signed afresh every time, its nonce echoed, and
 * never kept; so is one asking about two certificates.  A CertID with
 * oversized algorithm parameters is answered but never kept.
 */
static void
test_cache_bypass(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    OCSP_CERTID *id = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
    struct answer a;
    uint8_t *d = NULL;
    size_t l;

    (void)state;
    for (int i = 0; i < 2; i++) {
        OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
        assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
        ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        assert_int_equal(OCSP_check_nonce(req, a.bs), 1);
        assert_true(a.sum.nonce);
        answer_clear(&a);
        free(d);
        OCSP_REQUEST_free(req);
    }
    /* the nonce's answer was not kept: the first request without one is signed now */
    {
        OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
        ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
        answer_clear(&a);
        free(d);
        /* and a nonce request never gets the kept answer (no nonce in it) */
        assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
        ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        assert_int_equal(OCSP_check_nonce(req, a.bs), 1);
        answer_clear(&a);
        free(d);
        OCSP_REQUEST_free(req);
    }
    for (int i = 0; i < 2; i++) {
        OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), OCSP_CERTID_dup(id), NULL);
        ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        assert_int_equal(a.sum.good, 2);
        answer_clear(&a);
        free(d);
        OCSP_REQUEST_free(req);
    }
    /* SEQUENCE { SEQUENCE { sha1, OCTET STRING of 300 bytes }, name hash, key hash, serial } */
    {
        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
        ASN1_INTEGER *sn = NULL;
        uint8_t der[512], *p = der;
        const unsigned char *cp = der;
        size_t params = 300, alg_len = 7 + 4 + params;
        size_t body = 4 + alg_len + 22 + 22;
        OCSP_CERTID *big;
        OCSP_REQUEST *req;
        int snlen;
        assert_int_equal(OCSP_id_get0_info(&nh, NULL, &kh, &sn, id), 1);
        snlen = i2d_ASN1_INTEGER(sn, NULL);
        body += (size_t)snlen;
        *p++ = 0x30, *p++ = 0x82, *p++ = (uint8_t)(body >> 8), *p++ = (uint8_t)body;
        *p++ = 0x30, *p++ = 0x82, *p++ = (uint8_t)(alg_len >> 8), *p++ = (uint8_t)alg_len;
        memcpy(p, "\x06\x05\x2b\x0e\x03\x02\x1a", 7);
        p += 7;
        *p++ = 0x04, *p++ = 0x82, *p++ = (uint8_t)(params >> 8), *p++ = (uint8_t)params;
        memset(p, 0xab, params);
        p += params;
        *p++ = 0x04, *p++ = 20;
        memcpy(p, ASN1_STRING_get0_data(nh), 20);
        p += 20;
        *p++ = 0x04, *p++ = 20;
        memcpy(p, ASN1_STRING_get0_data(kh), 20);
        p += 20;
        assert_int_equal(i2d_ASN1_INTEGER(sn, &p), snlen);
        big = d2i_OCSP_CERTID(NULL, &cp, (long)(p - der));
        assert_non_null(big);
        assert_true(i2d_OCSP_CERTID(big, NULL) > CA_OCSP_CACHE_MAX_KEY);
        req = request(big, NULL);
        for (int i = 0; i < 2; i++) {
            ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
            assert_int_equal(a.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
            assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
            answer_clear(&a);
            free(d);
        }
        OCSP_REQUEST_free(req);
    }
    /* unsuccessful answers are never kept: another issuer's certificate */
    {
        OCSP_REQUEST *req = request(id_of(EVP_sha1(), W.other_leaf, W.other_ca), NULL);
        ask_cached(cache, W.signer, req, W.now, &a, &d, &l);
        assert_int_equal(a.status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_BYPASS);
        answer_clear(&a);
        free(d);
        OCSP_REQUEST_free(req);
    }
    OCSP_CERTID_free(id);
    ca_ocsp_cache_free(cache);
}

/* Whether der decodes to a request of exactly one CertID whose DER is key, without a nonce. */
static bool
decodes_to(const uint8_t *der, size_t len, const uint8_t *key, size_t klen)
{
    const unsigned char *p = der;
    OCSP_REQUEST *rq = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    unsigned char *k = NULL;
    int n = 0;
    bool same = false;

    if (rq != NULL && p == der + len && OCSP_request_onereq_count(rq) == 1 &&
        OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, -1) < 0) {
        n = i2d_OCSP_CERTID(OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, 0)), &k);
        same = n > 0 && (size_t)n == klen && memcmp(k, key, klen) == 0;
    }
    OPENSSL_free(k);
    OCSP_REQUEST_free(rq);
    ERR_clear_error();
    return same;
}

/*
 * One mangled request through a warm cache and without one: the same
 * response status, a successful answer telling the truth, and an answer from
 * the cache only for a request that decodes to the very CertID kept, alone
 * and without a nonce.
 */
static void
check_cached_mangled(struct ca_ocsp_cache *cache, const uint8_t *der, size_t len,
                     const uint8_t *key, size_t klen, size_t *hits)
{
    struct answer plain, cached;
    uint8_t *out = NULL;
    size_t out_len = 0;
    const unsigned char *p;

    ask_der_with(W.signer, der, len, W.now, 0, &plain);
    memset(&cached, 0, sizeof(cached));
    assert_int_equal(ca_ocsp_respond_cached(F.ca, W.signer, cache, der, len, W.now, 0, &out,
                                            &out_len, &cached.sum, &cached.err),
                     0);
    assert_int_equal(cached.sum.status, plain.status);
    p = out;
    cached.resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out_len);
    assert_non_null(cached.resp);
    assert_int_equal(OCSP_response_status(cached.resp), plain.status);
    if (plain.status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        cached.bs = OCSP_response_get1_basic(cached.resp);
        assert_non_null(cached.bs);
        assert_int_equal(OCSP_resp_count(cached.bs), OCSP_resp_count(plain.bs));
        for (int i = 0; i < OCSP_resp_count(cached.bs); i++) {
            OCSP_SINGLERESP *sr = OCSP_resp_get0(cached.bs, i);
            OCSP_CERTID *id = OCSP_CERTID_dup(OCSP_SINGLERESP_get0_id(sr));
            assert_int_equal(OCSP_single_get0_status(sr, NULL, NULL, NULL, NULL),
                             expected_status(id));
            OCSP_CERTID_free(id);
        }
    }
    if (cached.sum.cache != NULL && strcmp(cached.sum.cache, CA_OCSP_CACHE_HIT) == 0) {
        assert_true(decodes_to(der, len, key, klen));
        (*hits)++;
    }
    free(out);
    answer_clear(&cached);
    answer_clear(&plain);
}

/*
 * The common request (one CertID, nothing else) is answered from the cache
 * without being decoded; every other form is decoded first.  Truncations, bit
 * flips, a byte appended and lengths in a longer form than DER's: each gets
 * the status it gets without a cache, and a kept answer only when it still
 * asks exactly the kept question.  The same CertID asked with a requestor
 * name (not the plainest form) gets the kept answer through the decoder.
 */
static void
test_cache_plain_requests(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    OCSP_CERTID *id = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    uint8_t *key = NULL, *copy, *d1 = NULL, *d2 = NULL;
    size_t len, klen, l1, l2, hits = 0;
    uint8_t *der = req_der(req, &len);
    struct answer a;
    int n;

    (void)state;
    n = i2d_OCSP_CERTID(id, &key);
    assert_true(n > 0);
    klen = (size_t)n;
    ask_cached(cache, W.signer, req, W.now, &a, &d1, &l1);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    answer_clear(&a);
    /* with a requestor name: decoded, then the kept answer */
    {
        OCSP_REQUEST *named = request(OCSP_CERTID_dup(id), NULL);
        X509_NAME *nm = X509_NAME_new();
        assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)"asker", -1, -1, 0),
                         1);
        assert_int_equal(OCSP_request_set1_name(named, nm), 1);
        ask_cached(cache, W.signer, named, W.now, &a, &d2, &l2);
        assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
        assert_true(same_bytes(d1, l1, d2, l2));
        answer_clear(&a);
        free(d2);
        X509_NAME_free(nm);
        OCSP_REQUEST_free(named);
    }
    copy = malloc(len + 2);
    assert_non_null(copy);
    check_cached_mangled(cache, der, len, key, klen, &hits);
    assert_int_equal(hits, 1);
    for (size_t i = 0; i < len; i++)
        check_cached_mangled(cache, der, i, key, klen, &hits);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, der, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        check_cached_mangled(cache, copy, len, key, klen, &hits);
    }
    /* a byte after the request */
    memcpy(copy, der, len);
    copy[len] = 0;
    check_cached_mangled(cache, copy, len + 1, key, klen, &hits);
    /* the outer length as 0x81 LL (BER, not DER) */
    assert_true(der[0] == 0x30 && der[1] < 0x80);
    copy[0] = 0x30;
    copy[1] = 0x81;
    memcpy(copy + 2, der + 1, len - 1);
    check_cached_mangled(cache, copy, len + 1, key, klen, &hits);
    /*
     * OpenSSL's decoder takes the longer length form (and a flip or two it
     * reads leniently) as the same question: those got the kept answer, after
     * decoding, which check_cached_mangled() made sure of.
     */
    assert_true(hits >= 2);
    free(copy);
    free(d1);
    OPENSSL_free(key);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    ca_ocsp_cache_free(cache);
}

/*
 * Another signer forgets the answers, even with the inventory unchanged
 * since: after a rotation, no answer of the old signer is served again.
 */
static void
test_cache_new_signer(void **state)
{
    struct ca_ocsp_cache *cache = ca_ocsp_cache_new(0, 0);
    OCSP_CERTID *id = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
    OCSP_REQUEST *req = request(OCSP_CERTID_dup(id), NULL);
    struct ca_ocsp_signer *next = NULL;
    struct duet_err err = {0};
    struct answer a;
    uint8_t *d = NULL;
    size_t l;
    X509 *who = NULL;
    /* W.signer still valid; the one on disk (test_signer_renewal's, or a new one) too */
    int64_t at = W.now + 5 * 86400 + 200;
    char *s1 = serial_of(ca_ocsp_signer_cert(W.signer)), *s2;

    (void)state;
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, at, 0, &next, NULL, &err), 0);
    s2 = serial_of(ca_ocsp_signer_cert(next));
    assert_string_not_equal(s1, s2);
    /* the old signer's answer, kept after the inventory last changed */
    ask_cached(cache, W.signer, req, at, &a, &d, &l);
    answer_clear(&a);
    free(d);
    ask_cached(cache, W.signer, req, at, &a, &d, &l);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_HIT);
    answer_clear(&a);
    free(d);
    ask_cached(cache, next, req, at, &a, &d, &l);
    assert_string_equal(a.sum.cache, CA_OCSP_CACHE_MISS);
    assert_int_equal(OCSP_resp_get0_signer(a.bs, &who, NULL), 1);
    assert_int_equal(X509_cmp(who, ca_ocsp_signer_cert(next)), 0);
    answer_clear(&a);
    free(d);
    free(s1);
    free(s2);
    ca_ocsp_signer_free(next);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    ca_ocsp_cache_free(cache);
}

/* ---- the delegated signer ---- */

/* The signer certificate: what RFC 6960 4.2.2.2 asks, in the inventory, key encrypted. */
static void
test_signer_certificate(void **state)
{
    X509 *sc = ca_ocsp_signer_cert(W.signer);
    struct store_cert *row = NULL;
    struct duet_err err = {0};
    char *serial = serial_of(sc), *path, *cn;
    EXTENDED_KEY_USAGE *eku;
    ASN1_BIT_STRING *ku;
    int crit = 0;
    struct stat st;
    uint8_t *pem;
    size_t len;

    (void)state;
    cn = x509u_name_cn(X509_get_subject_name(sc));
    assert_string_equal(cn, "Ocsp Test OCSP responder");
    free(cn);
    eku = X509_get_ext_d2i(sc, NID_ext_key_usage, &crit, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_OCSP_sign);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    ku = X509_get_ext_d2i(sc, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1);
    for (int b = 1; b < 9; b++)
        assert_int_equal(ASN1_BIT_STRING_get_bit(ku, b), 0);
    ASN1_BIT_STRING_free(ku);
    assert_true(X509_get_ext_by_NID(sc, NID_id_pkix_OCSP_noCheck, -1) >= 0);
    assert_true(X509_get_ext_by_NID(sc, NID_subject_alt_name, -1) < 0);
    assert_true(X509_check_purpose(sc, X509_PURPOSE_OCSP_HELPER, 0) == 1);
    {
        int64_t nb = 0, na = 0;
        assert_true(x509u_time(X509_get0_notBefore(sc), &nb));
        assert_true(x509u_time(X509_get0_notAfter(sc), &na));
        assert_int_equal(na, W.now + CA_OCSP_SIGNER_TTL);
    }
    assert_int_equal(store_get(ca_store(F.ca), serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->profile, CA_PROFILE_OCSP_SIGNER);
    store_cert_free(row);
    path = cf_path(F.dir, CA_FILE_OCSP_KEY);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    pem = cf_read_file(path, &len);
    assert_non_null(strstr((const char *)pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    free(pem);
    free(path);
    free(serial);
}

/* A new open of the CA reuses the signer on disk; a read-only CA cannot make one. */
static void
test_signer_reused_across_opens(void **state)
{
    struct ca *ca2 = NULL;
    struct ca_ocsp_signer *s2 = NULL;
    struct duet_err err = {0};
    bool issued = true;

    (void)state;
    assert_int_equal(ca_open(F.dir, CAFX_PASS, &ca2, &err), 0);
    assert_int_equal(ca_ocsp_signer_ensure(ca2, W.now + 60, 0, &s2, &issued, &err), 0);
    assert_false(issued);
    assert_int_equal(X509_cmp(ca_ocsp_signer_cert(s2), ca_ocsp_signer_cert(W.signer)), 0);
    ca_ocsp_signer_free(s2);
    ca_close(ca2);

    s2 = NULL;
    assert_int_equal(ca_open(F.dir, NULL, &ca2, &err), 0);
    assert_int_equal(ca_ocsp_signer_ensure(ca2, W.now, 0, &s2, NULL, &err), -1);
    assert_contains(err.msg, "without its passphrase");
    assert_null(s2);
    ca_close(ca2);

    /* A life too short to be worth a signer. */
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, W.now, 60, &s2, NULL, &err), -1);
    assert_contains(err.msg, "at least 3600 seconds");
    assert_null(s2);
}

/*
 * With a third of its life left the signer is replaced; the new one is in the
 * inventory, renewing the old; a revoked signer is replaced too; answers
 * never outlive the signer.
 */
static void
test_signer_renewal(void **state)
{
    struct ca_ocsp_signer *s = NULL;
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    bool issued = false;
    char *old_serial, *new_serial;
    int64_t later = W.now + 5 * 86400; /* 2 of 7 days left */
    int64_t na = 0;

    (void)state;
    /* Still fresh two-thirds in: kept. */
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, W.now + 4 * 86400, 0, &s, &issued, &err), 0);
    assert_false(issued);
    old_serial = serial_of(ca_ocsp_signer_cert(s));
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, later, 0, &s, &issued, &err), 0);
    assert_true(issued);
    new_serial = serial_of(ca_ocsp_signer_cert(s));
    assert_string_not_equal(old_serial, new_serial);
    assert_int_equal(store_get(ca_store(F.ca), new_serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->profile, CA_PROFILE_OCSP_SIGNER);
    assert_string_equal(row->renews, old_serial);
    store_cert_free(row);
    assert_int_equal(store_get(ca_store(F.ca), old_serial, &row, &err), 0);
    assert_string_equal(row->renewed_by, new_serial);
    store_cert_free(row);
    /* Kept when asked again. */
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, later + 60, 0, &s, &issued, &err), 0);
    assert_false(issued);

    /* Answers stop at the signer's notAfter, and none is signed past it. */
    assert_true(x509u_time(X509_get0_notAfter(ca_ocsp_signer_cert(s)), &na));
    {
        OCSP_CERTID *g = id_of(EVP_sha1(), W.good, ca_issuing_cert(F.ca));
        OCSP_REQUEST *req = request(OCSP_CERTID_dup(g), NULL);
        size_t len;
        uint8_t *der = req_der(req, &len);
        struct answer a;
        int64_t nu = 0;
        ask_der_with(s, der, len, na - 600, 0, &a);
        assert_int_equal(status_of(&a, g, NULL, NULL, NULL, &nu), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(nu, na);
        answer_clear(&a);
        ask_der_with(s, der, len, na, 0, &a);
        assert_int_equal(a.status, OCSP_RESPONSE_STATUS_INTERNALERROR);
        assert_contains(a.err.msg, "OCSP signer is not valid now");
        answer_clear(&a);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
        OCSP_CERTID_free(g);
    }

    /* Revoked: replaced at once. */
    assert_int_equal(ca_revoke(F.ca, new_serial, CRL_REASON_KEY_COMPROMISE, later, NULL, &err), 0);
    assert_int_equal(ca_ocsp_signer_ensure(F.ca, later + 120, 0, &s, &issued, &err), 0);
    assert_true(issued);
    free(old_serial);
    old_serial = serial_of(ca_ocsp_signer_cert(s));
    assert_string_not_equal(old_serial, new_serial);
    free(old_serial);
    free(new_serial);
    ca_ocsp_signer_free(s);
}

/* The signer's profile is reserved: nothing else is issued under it. */
static void
test_signer_profile_reserved(void **state)
{
    struct ca_request req = {.profile = CA_PROFILE_OCSP_SIGNER, .cn = "x"};
    struct duet_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;

    (void)state;
    assert_int_equal(ca_issue_keypair(F.ca, &req, NULL, &cert, &key, NULL, &err), -1);
    assert_null(cert);
    assert_contains(err.msg, "ocsp-signer");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_certificate),
        cmocka_unit_test(test_signer_reused_across_opens),
        cmocka_unit_test(test_good_revoked_unknown),
        cmocka_unit_test(test_sha256_certid_and_validity),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_other_issuers),
        cmocka_unit_test(test_odd_serials),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mangled_requests),
        cmocka_unit_test(test_certid_not_echoable),
        cmocka_unit_test(test_revocation_is_immediate),
        cmocka_unit_test(test_cache_hit_then_own_revocation),
        cmocka_unit_test(test_cache_sees_another_handles_commit),
        cmocka_unit_test(test_cache_batch_reads_once),
        cmocka_unit_test(test_cache_age),
        cmocka_unit_test(test_cache_bypass),
        cmocka_unit_test(test_cache_plain_requests),
        cmocka_unit_test(test_signer_profile_reserved),
        cmocka_unit_test(test_signer_renewal),
        cmocka_unit_test(test_cache_new_signer),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
