/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp.c - the CA's OCSP responder (RFC 6960): the answers, signed by the
 * delegated signer of ocspsigner.c.
 *
 * Answers are computed from the inventory when asked for - nothing is
 * pre-signed - so a revocation is in the next response.  `duet ca serve`
 * passes a cache (ocspcache.c): a signed answer to one CertID without a
 * nonce is served again while the inventory's generation and the signer are
 * those it was signed under, for less than the cache's age; the commonest
 * request is looked up there before it is even decoded (plain_certid).
 *
 * Everything in a request is hostile: its size and the number of
 * certificates it asks about are bounded before any work, every failure to
 * decode is a malformedRequest, and a CertID only ever selects a row by its
 * canonical serial after its issuer hashes matched the issuing CA's.
 */
#include "ca/ocsp.h"
#include "ca/ocsp_signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/x509util.h"

/* RFC 5280 4.1.2.2: conforming serials have at most 20 octets. */
#define MAX_SERIAL_OCTETS 20


/* RFC 6960 4.2.1 OCSPResponseStatus names; see ocsp.h. */
const char *
ca_ocsp_status_name(int status)
{
    switch (status) {
    case OCSP_RESPONSE_STATUS_SUCCESSFUL:
        return "successful";
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
        return "malformedRequest";
    case OCSP_RESPONSE_STATUS_INTERNALERROR:
        return "internalError";
    case OCSP_RESPONSE_STATUS_TRYLATER:
        return "tryLater";
    case OCSP_RESPONSE_STATUS_SIGREQUIRED:
        return "sigRequired";
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
        return "unauthorized";
    default:
        return "unknown";
    }
}

/* --- answers ---------------------------------------------------------------- */

/* What one answer is built from, computed once per request. */
struct answer_ctx {
    struct ca *ca;
    X509 *issuing;
    char *issuer_text; /* the issuing CA's subject as the inventory spells it */
    struct ca_ocsp_summary *sum;
    struct ca_ocsp_cache *cache; /* its epoch set for this request; NULL: read every row */
};

/* The digest of a CertID's hashAlgorithm, among those accepted; NULL for another. */
static const EVP_MD *
certid_md(const ASN1_OBJECT *alg)
{
    switch (OBJ_obj2nid(alg)) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha256:
        return EVP_sha256();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* Whether an OCTET STRING holds exactly len bytes equal to md. */
static bool
hash_equal(const ASN1_OCTET_STRING *h, const unsigned char *md, unsigned int len)
{
    return h != NULL && ASN1_STRING_length(h) == (int)len &&
           memcmp(ASN1_STRING_get0_data(h), md, len) == 0;
}

/*
 * Whether a CertID names the issuing CA (RFC 6960 4.1.1): issuerNameHash is
 * the hash of its subject's DER, issuerKeyHash that of its subjectPublicKey
 * BIT STRING value, with the CertID's own algorithm.
 */
static bool
certid_ours(const struct answer_ctx *a, OCSP_CERTID *cid, ASN1_INTEGER **serial)
{
    ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
    ASN1_OBJECT *alg = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const EVP_MD *dgst;

    *serial = NULL;
    if (!OCSP_id_get0_info(&name_hash, &alg, &key_hash, serial, cid) ||
        (dgst = certid_md(alg)) == NULL)
        return false;
    if (!X509_NAME_digest(X509_get_subject_name(a->issuing), dgst, md, &len) ||
        !hash_equal(name_hash, md, len))
        return false;
    if (!X509_pubkey_digest(a->issuing, dgst, md, &len) || !hash_equal(key_hash, md, len))
        return false;
    return true;
}

/*
 * Add the SingleResponse of one CertID to bs (RFC 6960 4.2.1), with the
 * request's CertID as it came.  *ours is set when the CertID names the
 * issuing CA.  -1 when the inventory cannot be read or OpenSSL fails.
 */
static int
answer_one(struct answer_ctx *a, OCSP_BASICRESP *bs, OCSP_CERTID *cid, ASN1_TIME *this_upd,
           ASN1_TIME *next_upd, bool *ours, struct duet_err *err)
{
    ASN1_INTEGER *serial = NULL;
    struct store_cert *row = NULL;
    struct ca_ocsp_cache_status st = {.revoked = false};
    bool found = false;
    ASN1_TIME *revtime = NULL;
    char *text = NULL;
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    int reason = OCSP_REVOKED_STATUS_NOSTATUS;
    int rc = -1;

    *ours = certid_ours(a, cid, &serial);
    /* Never a lookup for a negative or oversized serial: no such row can exist. */
    if (*ours && serial != NULL && ASN1_STRING_type(serial) == V_ASN1_INTEGER &&
        ASN1_STRING_length(serial) > 0 && ASN1_STRING_length(serial) <= MAX_SERIAL_OCTETS) {
        if ((text = x509u_serial(serial)) == NULL) {
            err_nomem(err);
            goto out;
        }
        /* The row as read in this epoch (nothing written since), else read now. */
        found = a->cache != NULL && ca_ocsp_cache_status_get(a->cache, text, &st);
        if (!found && store_get(ca_store(a->ca), text, &row, err) != 0) {
            err_prefix(err, "the inventory cannot be read");
            goto out;
        }
        /* The issuing CA itself is in the inventory, but the root issued it. */
        if (row != NULL && strcmp(row->issuer, a->issuer_text) == 0) {
            found = true;
            st.revoked = row->status == STORE_REVOKED;
            st.revoked_at = row->revoked_at;
            st.reason = row->reason;
            if (a->cache != NULL)
                ca_ocsp_cache_status_put(a->cache, text, &st);
        }
        if (found) {
            status = st.revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD;
            /* RFC 5280 5.3.1, as in the CRL: unspecified is left out. */
            if (st.revoked && st.reason > 0)
                reason = st.reason;
        }
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED &&
        (revtime = ASN1_GENERALIZEDTIME_set(NULL, (time_t)st.revoked_at)) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (OCSP_basic_add1_status(bs, cid, status, reason, revtime, this_upd, next_upd) == NULL) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot add a status to the OCSP response");
        goto out;
    }
    if (status == V_OCSP_CERTSTATUS_GOOD)
        a->sum->good++;
    else if (status == V_OCSP_CERTSTATUS_REVOKED)
        a->sum->revoked++;
    else
        a->sum->unknown++;
    rc = 0;
out:
    ASN1_TIME_free(revtime);
    store_cert_free(row);
    free(text);
    return rc;
}

/*
 * The request's nonce (RFC 8954): none is fine, else exactly one whose value
 * - the OCTET STRING inside extnValue, or for older clients extnValue itself
 * - has 1 to CA_OCSP_MAX_NONCE octets.  *present tells whether there is one.
 */
static int
nonce_check(OCSP_REQUEST *rq, bool *present, struct duet_err *err)
{
    int idx = OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, -1);
    const ASN1_OCTET_STRING *v;
    ASN1_OCTET_STRING *inner;
    const unsigned char *p;
    int len;

    *present = idx >= 0;
    if (idx < 0)
        return 0;
    if (OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, idx) >= 0)
        return err_set(err, DUET_ERR_INPUT, "the request has more than one nonce");
    v = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(rq, idx));
    len = ASN1_STRING_length(v);
    p = ASN1_STRING_get0_data(v);
    inner = d2i_ASN1_OCTET_STRING(NULL, &p, len);
    if (inner != NULL && p == ASN1_STRING_get0_data(v) + len)
        len = ASN1_STRING_length(inner);
    ASN1_OCTET_STRING_free(inner);
    ERR_clear_error();
    if (len < 1 || len > CA_OCSP_MAX_NONCE)
        return err_set(err, DUET_ERR_INPUT,
                       "the request's nonce has %d octets; RFC 8954 allows 1 to %d", len,
                       CA_OCSP_MAX_NONCE);
    return 0;
}

/*
 * Decode a request and check what every answer needs checked: its size, one
 * DER OCSPRequest with nothing after it, 1 to CA_OCSP_MAX_CERTS CertIDs that
 * each encode again (to be echoed), at most one nonce of an allowed length
 * (*nonce says whether there is one).  Returns successful with *rq_out set,
 * else malformedRequest with err saying why.
 */
static int
request_decode(const uint8_t *req, size_t len, OCSP_REQUEST **rq_out, bool *nonce,
               struct duet_err *err)
{
    OCSP_REQUEST *rq = NULL;
    const unsigned char *p = req;
    int n;

    *rq_out = NULL;
    if (len == 0 || len > CA_OCSP_MAX_REQUEST) {
        err_set(err, DUET_ERR_INPUT, "the request has %zu bytes; expected 1 to %u", len,
                CA_OCSP_MAX_REQUEST);
        return OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
    }
    rq = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    ERR_clear_error();
    if (rq == NULL || p != req + len) {
        err_set(err, DUET_ERR_INPUT, "the request is not one DER OCSPRequest (RFC 6960 4.1.1)");
        goto err;
    }
    n = OCSP_request_onereq_count(rq);
    if (n < 1 || n > CA_OCSP_MAX_CERTS) {
        err_set(err, DUET_ERR_INPUT,
                "the request asks about %d certificates; this responder answers 1 to %d", n,
                CA_OCSP_MAX_CERTS);
        goto err;
    }
    /*
     * Each CertID is echoed in the answer, which copies it by encoding it
     * again: one OpenSSL decodes but cannot encode (odd hashAlgorithm
     * parameters) is the request's fault, not the responder's.
     */
    for (int i = 0; i < n; i++) {
        OCSP_CERTID *copy = OCSP_CERTID_dup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, i)));
        ERR_clear_error();
        if (copy == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "CertID %d of the request cannot be echoed: it does not encode again as "
                    "DER (RFC 6960 4.1.1)",
                    i + 1);
            goto err;
        }
        OCSP_CERTID_free(copy);
    }
    if (nonce_check(rq, nonce, err) != 0)
        goto err;
    *rq_out = rq;
    return OCSP_RESPONSE_STATUS_SUCCESSFUL;
err:
    OCSP_REQUEST_free(rq);
    return OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
}

/*
 * Answer a decoded request into *bs (signed); returns the response status
 * (successful only with *bs set), with err saying why for another.  cache:
 * its epoch set for this request (rows reused from its status table), or NULL.
 */
static int
answer(struct ca *ca, const struct ca_ocsp_signer *signer, struct ca_ocsp_cache *cache,
       OCSP_REQUEST *rq, bool nonce, int64_t now, int64_t validity, OCSP_BASICRESP **bs_out,
       struct ca_ocsp_summary *sum, struct duet_err *err)
{
    struct answer_ctx a = {.ca = ca, .issuing = ca_issuing_cert(ca), .sum = sum, .cache = cache};
    OCSP_BASICRESP *bs = NULL;
    STACK_OF(X509) *extra = NULL;
    ASN1_TIME *this_upd = NULL, *next_upd = NULL;
    int status = OCSP_RESPONSE_STATUS_INTERNALERROR;
    bool any_ours = false;
    int n = OCSP_request_onereq_count(rq);

    *bs_out = NULL;
    if (signer == NULL || now < signer->not_before || now >= signer->not_after) {
        err_set(err, DUET_ERR_INPUT, "the OCSP signer is not valid now; it must be renewed");
        goto out;
    }
    if (validity <= 0)
        validity = CA_OCSP_VALIDITY;
    /* Never an answer that outlives the certificate of its signer. */
    sum->this_update = now;
    sum->next_update = now + validity < signer->not_after ? now + validity : signer->not_after;
    if ((a.issuer_text = x509u_name(X509_get_subject_name(a.issuing))) == NULL ||
        (bs = OCSP_BASICRESP_new()) == NULL ||
        (this_upd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)now)) == NULL ||
        (next_upd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)sum->next_update)) == NULL) {
        err_nomem(err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        bool ours = false;
        if (answer_one(&a, bs, OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, i)), this_upd,
                       next_upd, &ours, err) != 0)
            goto out;
        any_ours = any_ours || ours;
    }
    if (!any_ours) {
        status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
        err_set(err, DUET_ERR_INPUT,
                "the request asks only about certificates of another issuer; this responder "
                "answers for %s",
                a.issuer_text);
        goto out;
    }
    if (nonce && OCSP_copy_nonce(bs, rq) != 1) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot echo the request's nonce");
        goto out;
    }
    /* The issuing CA too, so that a relying party holding only the root can build the chain. */
    if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, a.issuing) ||
        !OCSP_basic_sign(bs, signer->cert, signer->key, ca_sign_md(signer->key), extra,
                         OCSP_RESPID_KEY)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "signing the OCSP response failed");
        goto out;
    }
    sum->nonce = nonce;
    status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    *bs_out = bs;
    bs = NULL;
out:
    sk_X509_free(extra);
    ASN1_TIME_free(this_upd);
    ASN1_TIME_free(next_upd);
    OCSP_BASICRESP_free(bs);
    free(a.issuer_text);
    return status;
}

/*
 * The cache key of a request that may be answered from the cache - one
 * CertID, no nonce - into key (CA_OCSP_CACHE_MAX_KEY bytes): the DER of its
 * CertID, which the answer echoes, so hash algorithm (with its parameters),
 * issuer name and key hashes and serial all take part.  0 when the request
 * may not be (or its CertID is too large to be) answered from the cache.
 */
static size_t
cache_key(OCSP_REQUEST *rq, bool nonce, uint8_t *key)
{
    OCSP_CERTID *cid;
    unsigned char *p = key;
    int n;

    if (nonce || OCSP_request_onereq_count(rq) != 1)
        return 0;
    cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, 0));
    n = i2d_OCSP_CERTID(cid, NULL);
    if (n <= 0 || n > CA_OCSP_CACHE_MAX_KEY || i2d_OCSP_CERTID(cid, &p) != n) {
        ERR_clear_error();
        return 0;
    }
    return (size_t)n;
}

/*
 * One DER SEQUENCE header at p (n bytes available): its tag, then its length
 * in the minimal form DER requires (short form below 128, else 0x81 or 0x82
 * and no leading zero; requests are at most CA_OCSP_MAX_REQUEST bytes).
 * Returns the header's size with *content set, 0 for anything else.
 */
static size_t
der_seq(const uint8_t *p, size_t n, size_t *content)
{
    if (n < 2 || p[0] != 0x30)
        return 0;
    if (p[1] < 0x80) {
        *content = p[1];
        return 2;
    }
    if (p[1] == 0x81 && n >= 3 && p[2] >= 0x80) {
        *content = p[2];
        return 3;
    }
    if (p[1] == 0x82 && n >= 4 && p[2] != 0) {
        *content = (size_t)p[2] << 8 | p[3];
        return 4;
    }
    return 0;
}

/*
 * The CertID of a request in the plainest form, found without decoding it:
 * OCSPRequest { tbsRequest { requestList { Request { reqCert } } } } and
 * nothing else - no version, requestorName, extension (so no nonce),
 * singleRequestExtensions or signature - each SEQUENCE exactly filling the
 * one around it and the last byte of the request.  That is what `openssl
 * ocsp -no_nonce`, browsers and Go send.  *cid points into req.  The bytes
 * only select a kept answer: a kept key is the DER of a CertID that was
 * decoded and answered in full, and such a request decodes to exactly that
 * CertID, alone and without a nonce, so its answer is the same.  False for
 * any other shape: the request is then decoded in full.
 */
static bool
plain_certid(const uint8_t *req, size_t len, const uint8_t **cid, size_t *clen)
{
    const uint8_t *p = req;
    size_t n = len, c = 0, h;

    /* OCSPRequest, TBSRequest, requestList, Request: each only wraps the next */
    for (int depth = 0; depth < 4; depth++) {
        if ((h = der_seq(p, n, &c)) == 0 || h + c != n)
            return false;
        p += h;
        n = c;
    }
    /* reqCert: a CertID filling the Request */
    if ((h = der_seq(p, n, &c)) == 0 || h + c != n)
        return false;
    *cid = p;
    *clen = n;
    return true;
}

/*
 * Set the cache's epoch for a request: the inventory's generation, read now
 * or earlier in the cache's open batch (any write since the answers and rows
 * were kept forgets them), and the signer.  False when the generation cannot
 * be read: then nothing kept may be trusted, and nothing is kept.
 */
static bool
cache_epoch(struct ca *ca, const struct ca_ocsp_signer *signer, struct ca_ocsp_cache *cache)
{
    struct duet_err gerr = {.kind = DUET_ERR_NONE};
    uint64_t gen = 0;

    if (cache == NULL || signer == NULL)
        return false;
    /* In a batch, one read serves every request of it (all received before the batch opened). */
    if (!ca_ocsp_cache_batch_generation(cache, &gen)) {
        if (store_generation(ca_store(ca), &gen, &gerr) != 0)
            return false;
        ca_ocsp_cache_batch_set(cache, gen);
    }
    ca_ocsp_cache_epoch(cache, gen, signer->serial);
    return true;
}

/*
 * An answer of the cache for rq, at now, into *resp (malloc'd) and *sum;
 * false when there is none.  The epoch is set first (cache_epoch).  *cacheable tells the caller to keep what it signs.
 */
static bool
cache_answer(struct ca *ca, const struct ca_ocsp_signer *signer, struct ca_ocsp_cache *cache,
             const uint8_t *key, size_t klen, int64_t now, uint8_t **resp, size_t *resp_len,
             struct ca_ocsp_summary *sum, bool *cacheable)
{
    struct ca_ocsp_cache_meta m;
    const uint8_t *der;
    size_t len = 0;

    *cacheable = false;
    /* Without a generation, nothing can be trusted unchanged: answer fresh, keep nothing. */
    if (klen == 0 || !cache_epoch(ca, signer, cache))
        return false;
    *cacheable = true;
    if ((der = ca_ocsp_cache_get(cache, key, klen, now, &len, &m)) == NULL ||
        (*resp = malloc(len)) == NULL)
        return false;
    memcpy(*resp, der, len);
    *resp_len = len;
    sum->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    sum->good = m.good;
    sum->revoked = m.revoked;
    sum->unknown = m.unknown;
    sum->this_update = m.this_update;
    sum->next_update = m.next_update;
    sum->cache = CA_OCSP_CACHE_HIT;
    return true;
}

/* Answer one request; see ocsp.h. */
int
ca_ocsp_respond(struct ca *ca, const struct ca_ocsp_signer *signer, const uint8_t *req, size_t len,
                int64_t now, int64_t validity, uint8_t **resp, size_t *resp_len,
                struct ca_ocsp_summary *sum, struct duet_err *err)
{
    return ca_ocsp_respond_cached(ca, signer, NULL, req, len, now, validity, resp, resp_len, sum,
                                  err);
}

/* Answer one request, from the cache when the rule allows; see ocsp.h. */
int
ca_ocsp_respond_cached(struct ca *ca, const struct ca_ocsp_signer *signer,
                       struct ca_ocsp_cache *cache, const uint8_t *req, size_t len, int64_t now,
                       int64_t validity, uint8_t **resp, size_t *resp_len,
                       struct ca_ocsp_summary *sum, struct duet_err *err)
{
    OCSP_REQUEST *rq = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *r = NULL;
    unsigned char *der = NULL;
    uint8_t key[CA_OCSP_CACHE_MAX_KEY];
    const uint8_t *plain = NULL;
    size_t klen = 0, plen = 0;
    bool nonce = false, cacheable = false, epoch = false;
    int dlen;
    int rc = -1;

    *resp = NULL;
    *resp_len = 0;
    memset(sum, 0, sizeof(*sum));
    err_clear(err);
    /* The common request, answered from the cache without decoding it. */
    if (cache != NULL && plain_certid(req, len, &plain, &plen) && plen <= CA_OCSP_CACHE_MAX_KEY) {
        if (cache_answer(ca, signer, cache, plain, plen, now, resp, resp_len, sum, &cacheable)) {
            rc = 0;
            goto out;
        }
    }
    sum->status = request_decode(req, len, &rq, &nonce, err);
    if (sum->status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        klen = cache_key(rq, nonce, key);
        /* Looked up already under these very bytes? Else (another encoding) now. */
        if ((plain == NULL || klen != plen || memcmp(key, plain, klen) != 0) &&
            cache_answer(ca, signer, cache, key, klen, now, resp, resp_len, sum, &cacheable)) {
            rc = 0;
            goto out;
        }
        /*
         * cache_answer() said whether the epoch could be set: only then is
         * the answer kept.  Rows are reused in the epoch whatever the request
         * (a nonce, several CertIDs): set it for those too.
         */
        epoch = cacheable || (klen == 0 && cache_epoch(ca, signer, cache));
        cacheable = cacheable && klen > 0;
        sum->status =
            answer(ca, signer, epoch ? cache : NULL, rq, nonce, now, validity, &bs, sum, err);
        /*
         * An answer saying unknown is never kept: the serial may be issued a
         * moment later, and an issuance on PostgreSQL does not move the
         * generation (store_begin_issue), so nothing would forget it.
         */
        cacheable = cacheable && sum->unknown == 0;
    }
    if (sum->status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        /* An unsuccessful response says nothing about any certificate (RFC 6960 4.2.1). */
        sum->good = sum->revoked = sum->unknown = 0;
        sum->this_update = sum->next_update = 0;
        sum->nonce = false;
        cacheable = false;
    }
    if (cache != NULL)
        sum->cache = cacheable ? CA_OCSP_CACHE_MISS : CA_OCSP_CACHE_BYPASS;
    /* An error status goes out without responseBytes; err keeps the reason for the caller. */
    r = OCSP_response_create(sum->status, bs);
    if (r == NULL || (dlen = i2d_OCSP_RESPONSE(r, &der)) <= 0 ||
        (*resp = malloc((size_t)dlen)) == NULL) {
        ERR_clear_error();
        err_nomem(err);
        goto out;
    }
    memcpy(*resp, der, (size_t)dlen);
    *resp_len = (size_t)dlen;
    if (cacheable) {
        struct ca_ocsp_cache_meta m = {.this_update = sum->this_update,
                                       .next_update = sum->next_update,
                                       .good = sum->good,
                                       .revoked = sum->revoked,
                                       .unknown = sum->unknown};
        (void)ca_ocsp_cache_put(cache, key, klen, *resp, *resp_len, &m);
    }
    rc = 0;
out:
    OPENSSL_free(der);
    OCSP_RESPONSE_free(r);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(rq);
    return rc;
}
