/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crlpub.c - one CRL for every process on an inventory.
 *
 * Every CRL ca_crl signs is published in the inventory (store_crl_put), with
 * the count of revoked rows it lists.  A process that serves the CRL (each
 * `duet ca serve` node) asks ca_crl_current whether the newest published one
 * is still current: it takes it when another process published a newer one,
 * so every node serves the same document, and signs a new one (numbered by
 * the inventory, so numbers grow across processes) only when a revocation is
 * missing from it or a third of its life is left.  A revocation made
 * anywhere moves the revoked count, so the next look finds it; a published
 * CRL never goes back (store_crl_put keeps the greater number).
 */
#include "ca/ca.h"

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "store/store.h"

/* Whether a published CRL lists every revocation and has more than a third of its life left. */
static bool
published_current(const struct store_crl *c, uint64_t revoked, int64_t now)
{
    int64_t life = c->next_update - c->this_update;

    return c->revoked == revoked && life > 0 && now < c->next_update - life / 3;
}

/*
 * The published CRL's DER as a CRL of this issuing CA with the number the
 * inventory recorded; NULL when it is not one (then a new one is signed).
 */
static X509_CRL *
published_parse(struct ca *ca, const struct store_crl *c)
{
    const unsigned char *p = c->der;
    X509_CRL *crl = c->der != NULL ? d2i_X509_CRL(NULL, &p, (long)c->der_len) : NULL;
    X509 *issuing = ca_issuing_cert(ca);
    ASN1_INTEGER *num = NULL;
    bool ok = false;

    if (crl != NULL && p == c->der + c->der_len &&
        X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuing)) == 0 &&
        X509_CRL_verify(crl, X509_get0_pubkey(issuing)) == 1 &&
        (num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) != NULL) {
        uint64_t v = 0;
        ok = ASN1_INTEGER_get_uint64(&v, num) == 1 && v == c->number;
    }
    ASN1_INTEGER_free(num);
    ERR_clear_error();
    if (!ok) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

/* The CRL to serve now; see ca.h. */
int
ca_crl_current(struct ca *ca, int64_t now, int64_t validity, uint64_t have, X509_CRL **out,
               bool *made, struct duet_err *err)
{
    struct store *st = ca_store(ca);
    struct store_crl *head = NULL, *full = NULL;
    uint64_t revoked = 0, again = 0;
    int rc = -1;

    *out = NULL;
    if (made != NULL)
        *made = false;
    if (store_crl_get(st, false, &head, &revoked, err) != 0)
        return -1;
    if (head != NULL && published_current(head, revoked, now)) {
        if (head->number <= have) {
            rc = 0; /* the one served is the newest */
            goto out;
        }
        if (store_crl_get(st, true, &full, &again, err) != 0)
            goto out;
        /* Read again: another process may have published a newer one in between. */
        if (full != NULL && published_current(full, again, now) &&
            (*out = published_parse(ca, full)) != NULL) {
            rc = 0;
            goto out;
        }
    }
    rc = ca_crl(ca, now, validity, out, err);
    if (made != NULL)
        *made = rc == 0;
out:
    store_crl_free(head);
    store_crl_free(full);
    return rc;
}
