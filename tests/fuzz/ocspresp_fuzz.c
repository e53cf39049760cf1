/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspresp_fuzz.c - libFuzzer target for what `duet proxy --ocsp` makes of a
 * responder's answer (ocsp_evaluate() in src/proxy/ocspcheck.c, with the
 * checks of staple_check()).  The property is more than "does not crash": an
 * answer ocsp_evaluate() takes is checked again by an independent reading
 * with OpenSSL alone.  It decodes whole as a successful basic response; its
 * signature verifies, by OCSP_basic_verify() against a store holding only the
 * issuing CA at the fixed time (the CA also given as a possible signer), as the CA's or a delegated OCSP signer's; it
 * holds a SingleResponse for the leaf's CertID (SHA-1 or SHA-256) with the
 * status taken; a good answer's thisUpdate is at most STAPLE_CLOCK_SKEW ahead
 * and its nextUpdate, when present, has not passed and is when the answer
 * expires (else OCSP_NO_NEXT_UPDATE_SECS from now); a revoked answer's time is
 * the SingleResponse's.  A refused answer must name a code.
 *
 * The CA and the leaf are fixed (below, valid 2020 to 2120) and "now" is
 * 2030-01-01, so the committed corpus (good from the CA and from a delegated
 * signer, revoked, unknown, without nextUpdate, expired, another serial,
 * signed by a stranger, SHA-256 CertID, tryLater) stays meaningful.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/x509util.h"
#include "proxy/ocspcheck.h"
#include "proxy/staple.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1893456000) /* 2030-01-01T00:00:00Z */

static const char CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBNzCB3qADAgECAgEBMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMMD0Z1enogSXNz\n"
    "dWluZyBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowGjEYMBYG\n"
    "A1UEAwwPRnV6eiBJc3N1aW5nIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
    "gFiufJpmmk5qCVNFpkXQaw9/5WeT2psG7Ltz842ssnwpP/m3NSgSe7kBQDdInz+E\n"
    "3yIhmstLSEzYBBDLS+7CsKMTMBEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD\n"
    "AgNIADBFAiAkFOc6k6IO+cqkYsDo0piQ2sIgG+3F/I3RJV1dG6j3cgIhANdPFtYj\n"
    "PiQeYxIxKeLErNVJlyAj0otP9LOa3KGAkBLq\n"
    "-----END CERTIFICATE-----\n";
static const char LEAF_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBRjCB7aADAgECAgIQATAKBggqhkjOPQQDAjAaMRgwFgYDVQQDDA9GdXp6IElz\n"
    "c3VpbmcgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBYxFDAS\n"
    "BgNVBAMMC2Z1enogY2xpZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/X/v\n"
    "237wLiolDuOK0x8mhctgPgQc+M5zXzlKMHEvp1AYlaqqedOpr3f1RxnM+uz22cwi\n"
    "sTRzXfbQ/7VUnD/P5KMlMCMwDAYDVR0TAQH/BAIwADATBgNVHSUEDDAKBggrBgEF\n"
    "BQcDAjAKBggqhkjOPQQDAgNIADBFAiEApxU9tw06HA5mDN5UcUylz0ZfpIFZdqzz\n"
    "YMMQvI1C0IACIBSzIY91P0d+pIw3/Mmr3JJhLW0QwMaL0vqXzEpEwZG7\n"
    "-----END CERTIFICATE-----\n";

/* A broken property: say which, then stop (libFuzzer keeps the input). */
#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "ocspresp_fuzz: %s (line %d)\n", what, __LINE__);                         \
        abort();                                                                                   \
    } while (0)

static X509 *ca, *leaf;
static X509_STORE *store;
static STACK_OF(X509) *cas; /* the CA alone: where a signer that is the CA is found */

static X509 *
pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (x == NULL) {
        ERR_print_errors_fp(stderr);
        FAIL("the fixed certificates cannot be read");
    }
    return x;
}

static void
init(void)
{
    X509_VERIFY_PARAM *vp;

    if (ca != NULL)
        return;
    ca = pem_cert(CA_PEM);
    leaf = pem_cert(LEAF_PEM);
    if ((store = X509_STORE_new()) == NULL || !X509_STORE_add_cert(store, ca) ||
        (cas = sk_X509_new_null()) == NULL || !sk_X509_push(cas, ca) ||
        (vp = X509_STORE_get0_param(store)) == NULL)
        FAIL("the store cannot be made");
    X509_VERIFY_PARAM_set_time(vp, (time_t)NOW);
}

/* The leaf's SingleResponse as OpenSSL alone finds it: 1 with its fields, else 0. */
static int
oracle_status(OCSP_BASICRESP *bs, int *status, ASN1_GENERALIZEDTIME **rev,
              ASN1_GENERALIZEDTIME **tu, ASN1_GENERALIZEDTIME **nu)
{
    const EVP_MD *mds[2] = {EVP_sha1(), EVP_sha256()};
    int reason;

    for (size_t i = 0; i < 2; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(mds[i], leaf, ca);
        int found = id != NULL && OCSP_resp_find_status(bs, id, status, &reason, rev, tu, nu);
        OCSP_CERTID_free(id);
        if (found == 1)
            return 1;
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocsp_answer a;
    char code[32], why[1200];
    const unsigned char *p = data;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
    int64_t t = 0, n = 0, r = 0;
    int status = -1;

    init();
    code[0] = why[0] = '\0';
    if (ocsp_evaluate(data, size, leaf, ca, NOW, &a, code, sizeof(code), why, sizeof(why)) != 0) {
        if (code[0] == '\0' || why[0] == '\0')
            FAIL("a refusal without a code or a reason");
        goto out;
    }
    /* Taken: OpenSSL alone must agree on every point. */
    if (size == 0 || (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)size)) == NULL ||
        p != data + size || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
        (bs = OCSP_response_get1_basic(resp)) == NULL)
        FAIL("taken, but not a whole successful basic response");
    if (OCSP_basic_verify(bs, cas, store, 0) != 1)
        FAIL("taken, but signed by neither the CA nor its delegated OCSP signer");
    if (!oracle_status(bs, &status, &rev, &tu, &nu) || status != a.status ||
        !x509u_time(tu, &t))
        FAIL("taken, but OpenSSL finds another status for the leaf, or none");
    if (status == V_OCSP_CERTSTATUS_GOOD) {
        if (t > NOW + STAPLE_CLOCK_SKEW)
            FAIL("good, but its thisUpdate is in the future");
        if (nu != NULL && (!x509u_time(nu, &n) || n <= NOW || a.expires != n))
            FAIL("good, but past its nextUpdate or kept past it");
        if (nu == NULL && a.expires != NOW + OCSP_NO_NEXT_UPDATE_SECS)
            FAIL("good without nextUpdate, but not kept briefly");
    } else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        if (rev == NULL || !x509u_time(rev, &r) || r != a.revoked_at || a.expires <= NOW)
            FAIL("revoked, but with another time, or not kept");
    } else if (status != V_OCSP_CERTSTATUS_UNKNOWN || a.expires != 0) {
        FAIL("unknown, but kept");
    }
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return 0;
}
