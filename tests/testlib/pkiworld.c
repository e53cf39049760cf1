/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkiworld.c - Root -> Inter, the leaves' key and an unrelated root; see
 * pkiworld.h.
 */
#include "testlib/pkiworld.h"

#include <string.h>

/* Make the world's keys and CA certificates; see pkiworld.h. */
void
pkw_new(struct pki_world *p)
{
    p->root_key = cf_key_new(CF_KEY_EC_P256);
    p->int_key = cf_key_new(CF_KEY_EC_P256);
    p->leaf_key = cf_key_new(CF_KEY_EC_P256);
    p->other_key = cf_key_new(CF_KEY_EC_P256);
    p->root = cf_cert_new(&(struct cf_cert_spec){.cn = "Root", .key = p->root_key, .bc = CF_BC_CA});
    p->inter = cf_cert_new(&(struct cf_cert_spec){.cn = "Inter",
                                                  .key = p->int_key,
                                                  .issuer = p->root,
                                                  .issuer_key = p->root_key,
                                                  .bc = CF_BC_CA});
    p->other_root =
        cf_cert_new(&(struct cf_cert_spec){.cn = "Other", .key = p->other_key, .bc = CF_BC_CA});
}

/* Free the world; see pkiworld.h. */
void
pkw_free(struct pki_world *p)
{
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->other_root);
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->int_key);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->other_key);
    memset(p, 0, sizeof(*p));
}

/* A leaf under Inter; see pkiworld.h. */
X509 *
pkw_leaf(const struct pki_world *p, struct cf_cert_spec spec)
{
    spec.key = p->leaf_key;
    spec.issuer = p->inter;
    spec.issuer_key = p->int_key;
    spec.bc = CF_BC_LEAF;
    return cf_cert_new(&spec);
}
