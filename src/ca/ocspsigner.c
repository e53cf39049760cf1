/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspsigner.c - the CA's delegated OCSP signer (RFC 6960 4.2.2.2).
 *
 * The signer is a certificate the issuing CA gives one of its own keys
 * (id-kp-OCSPSigning, with id-pkix-ocsp-nocheck so that relying parties do
 * not ask about the responder itself), short-lived and renewed with a third
 * of its life left.  Like every certificate it is in the inventory before it
 * is used; its key sits beside issuing.key, encrypted with the same
 * passphrase, so a restart reuses it, or stays in a PKCS#11 token
 * (ocsp_key_uri in ca.yaml), which every new signer certifies again.  Two
 * processes renewing at once may
 * leave the key of one beside the certificate of the other: the next load
 * sees that the key does not match and issues a new signer.  ocsp.c answers
 * with it.
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

/* Free a signer; NULL is fine. */
void
ca_ocsp_signer_free(struct ca_ocsp_signer *s)
{
    if (s == NULL)
        return;
    X509_free(s->cert);
    EVP_PKEY_free(s->key); /* EVP_PKEY_free clears private key material */
    free(s->serial);
    free(s);
}

/* The signer's certificate; see ocsp.h. */
X509 *
ca_ocsp_signer_cert(const struct ca_ocsp_signer *s)
{
    return s->cert;
}

/* --- the delegated signer --------------------------------------------------- */

/* A signer of cert and key (both taken); NULL when memory runs out (both freed then). */
static struct ca_ocsp_signer *
signer_new(X509 *cert, EVP_PKEY *key, struct duet_err *err)
{
    struct ca_ocsp_signer *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        X509_free(cert);
        EVP_PKEY_free(key);
        err_nomem(err);
        return NULL;
    }
    s->cert = cert;
    s->key = key;
    s->serial = x509u_serial(X509_get0_serialNumber(cert));
    if (s->serial == NULL || !x509u_time(X509_get0_notBefore(cert), &s->not_before) ||
        !x509u_time(X509_get0_notAfter(cert), &s->not_after)) {
        ca_ocsp_signer_free(s);
        err_set(err, DUET_ERR_INTERNAL, "the OCSP signer's serial or validity cannot be read");
        return NULL;
    }
    return s;
}

/*
 * Whether s may sign at now and for a while: issued by the issuing CA, its
 * key matching, in the inventory as the OCSP signer and not revoked there,
 * with more than a third of its life left.  False with the reason in *why
 * (a short text); -1 only when the inventory cannot be read.
 */
static int
signer_usable(struct ca *ca, const struct ca_ocsp_signer *s, int64_t now, bool *usable,
              const char **why, struct duet_err *err)
{
    X509 *issuing = ca_issuing_cert(ca);
    struct store_cert *row = NULL;

    *usable = false;
    if (X509_check_private_key(s->cert, s->key) != 1) {
        ERR_clear_error();
        *why = "its key does not match its certificate";
        return 0;
    }
    if (X509_check_issued(issuing, s->cert) != X509_V_OK ||
        X509_verify(s->cert, X509_get0_pubkey(issuing)) != 1) {
        ERR_clear_error();
        *why = "it was not issued by the issuing CA";
        return 0;
    }
    if (now < s->not_before || (s->not_after - now) * 3 <= s->not_after - s->not_before) {
        *why = "less than a third of its life is left";
        return 0;
    }
    if (store_get(ca_store(ca), s->serial, &row, err) != 0)
        return -1;
    if (row == NULL || strcmp(row->profile, CA_PROFILE_OCSP_SIGNER) != 0)
        *why = "the inventory does not hold it as the OCSP signer";
    else if (row->status == STORE_REVOKED)
        *why = "it is revoked";
    else
        *usable = true;
    store_cert_free(row);
    return 0;
}

/* The signer in the CA directory; *out NULL when there is none or it cannot be read. */
static void
signer_load(struct ca *ca, struct ca_ocsp_signer **out)
{
    char *path = NULL;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    struct duet_err lerr;
    size_t n;

    *out = NULL;
    n = strlen(ca_dir(ca)) + sizeof(CA_FILE_OCSP_CERT) + 2;
    if ((path = malloc(n)) == NULL)
        return;
    snprintf(path, n, "%s/%s", ca_dir(ca), CA_FILE_OCSP_CERT);
    if (access(path, F_OK) == 0 && load_certs_file(path, NULL, &certs, &lerr) == 0 &&
        sk_X509_num(certs) == 1 &&
        (ca_config(ca)->ocsp_key_uri != NULL ? ca_ocsp_token_key(ca, &key, &lerr)
                                             : ca_key_read(ca, CA_FILE_OCSP_KEY, &key, &lerr)) ==
            0)
        *out = signer_new(sk_X509_shift(certs), key, &lerr);
    else
        EVP_PKEY_free(key);
    ERR_clear_error();
    OSSL_STACK_OF_X509_free(certs);
    free(path);
}

/* Issue a new signer renewing `renews` (may be NULL) and write its files. */
static int
signer_issue(struct ca *ca, const char *renews, int64_t now, int64_t ttl,
             struct ca_ocsp_signer **out, struct duet_err *err)
{
    enum ca_key_type kt;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *path = NULL;
    size_t n;
    int rc = -1;

    *out = NULL;
    /* A key in a token stays there: each new signer certifies the same key. */
    if (ca_config(ca)->ocsp_key_uri != NULL) {
        if (ca_ocsp_token_key(ca, &key, err) != 0)
            goto out;
    } else if (ca_key_type_parse(ca_config(ca)->key_type, &kt, err) != 0 ||
               (key = ca_key_generate(kt, err)) == NULL) {
        goto out;
    }
    if (ca_issue_ocsp_signer(ca, key, renews, now, ttl, &cert, err) != 0)
        goto out;
    /* Recorded: now the files, the key first so that a certificate never waits for it. */
    n = strlen(ca_dir(ca)) + sizeof(CA_FILE_OCSP_CERT) + 2;
    if ((path = malloc(n)) == NULL) {
        err_nomem(err);
        goto out;
    }
    snprintf(path, n, "%s/%s", ca_dir(ca), CA_FILE_OCSP_CERT);
    if ((ca_config(ca)->ocsp_key_uri == NULL && ca_key_write(ca, CA_FILE_OCSP_KEY, key, err) != 0) ||
        pemout_certs(path, &cert, 1, NULL, err) != 0) {
        err_prefix(err, "the new OCSP signer (recorded in the inventory) cannot be saved");
        goto out;
    }
    *out = signer_new(cert, key, err);
    cert = NULL;
    key = NULL;
    rc = *out != NULL ? 0 : -1;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    free(path);
    return rc;
}

/* Keep, load or issue the delegated signer; see ocsp.h. */
int
ca_ocsp_signer_ensure(struct ca *ca, int64_t now, int64_t ttl, struct ca_ocsp_signer **signer,
                      bool *issued, struct duet_err *err)
{
    struct ca_ocsp_signer *cur = *signer, *loaded = NULL, *fresh = NULL;
    const char *why = NULL;
    bool usable = false;
    int rc = -1;

    if (issued != NULL)
        *issued = false;
    if (ttl == 0)
        ttl = CA_OCSP_SIGNER_TTL;
    /* Shorter, and a signer would be due for renewal again almost as soon as it is made. */
    if (ttl < CA_OCSP_SIGNER_MIN_TTL)
        return err_set(err, DUET_ERR_INPUT,
                       "the OCSP signer's validity must be at least %lld seconds (1h)",
                       (long long)CA_OCSP_SIGNER_MIN_TTL);
    if (cur == NULL) {
        signer_load(ca, &loaded);
        cur = loaded;
    }
    if (cur != NULL && signer_usable(ca, cur, now, &usable, &why, err) != 0)
        goto out;
    if (usable) {
        *signer = cur;
        loaded = NULL;
        rc = 0;
        goto out;
    }
    if (signer_issue(ca, cur != NULL ? cur->serial : NULL, now, ttl, &fresh, err) != 0) {
        if (why != NULL)
            err_prefix(err, "the OCSP signer must be replaced (%s)", why);
        goto out;
    }
    if (*signer != NULL)
        ca_ocsp_signer_free(*signer);
    *signer = fresh;
    if (issued != NULL)
        *issued = true;
    rc = 0;
out:
    ca_ocsp_signer_free(loaded);
    return rc;
}
