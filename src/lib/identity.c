/* SPDX-License-Identifier: Apache-2.0 */
/*
 * identity.c - a certificate's identity and its canonical name.
 *
 * The canonical name follows DESIGN.md: the URI SAN when there is exactly one
 * (a SPIFFE ID, spiffe://trust-domain/path), else the first DNS SAN, else the
 * subject commonName, else the whole subject.
 */
#include "lib/identity.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "lib/x509util.h"

const char *
identity_san_tag(enum duet_san_type type)
{
    switch (type) {
    case DUET_SAN_DNS:
        return "DNS";
    case DUET_SAN_IP:
        return "IP";
    case DUET_SAN_URI:
        return "URI";
    case DUET_SAN_EMAIL:
        return "email";
    }
    return "?";
}

/* Free an identity; see identity.h. */
void
identity_free(struct duet_identity *id)
{
    if (id == NULL || atomic_fetch_sub(&id->refs, 1) != 1)
        return;
    free(id->xfcc);
    free(id->name);
    free(id->subject);
    free(id->issuer);
    free(id->cn);
    free(id->serial);
    free(id->fingerprint);
    for (size_t i = 0; i < id->nsans; i++)
        free(id->sans[i].value);
    free(id->sans);
    X509_free(id->cert);
    free(id);
}

/* Another reference to a shared identity; see identity.h. */
struct duet_identity *
identity_up_ref(struct duet_identity *id)
{
    if (id != NULL)
        atomic_fetch_add(&id->refs, 1);
    return id;
}

/* Copy an IA5String SAN value, refusing embedded NULs (a classic spoofing trick). */
static char *
ia5_copy(const ASN1_IA5STRING *s, bool *bad)
{
    int n = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    char *v;

    if (memchr(d, '\0', (size_t)n) != NULL) {
        *bad = true;
        return NULL;
    }
    v = malloc((size_t)n + 1);
    if (v != NULL) {
        memcpy(v, d, (size_t)n);
        v[n] = '\0';
    }
    return v;
}

static int
collect_sans(X509 *cert, struct duet_identity *id, struct duet_err *err)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
    int rc = -1;

    if (n == 0) {
        GENERAL_NAMES_free(gens);
        return 0;
    }
    id->sans = calloc((size_t)n, sizeof(*id->sans));
    if (id->sans == NULL) {
        err_nomem(err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        struct identity_san *s = &id->sans[id->nsans];
        bool bad = false;

        switch (g->type) {
        case GEN_DNS:
            s->type = DUET_SAN_DNS;
            s->value = ia5_copy(g->d.dNSName, &bad);
            break;
        case GEN_URI:
            s->type = DUET_SAN_URI;
            s->value = ia5_copy(g->d.uniformResourceIdentifier, &bad);
            break;
        case GEN_EMAIL:
            s->type = DUET_SAN_EMAIL;
            s->value = ia5_copy(g->d.rfc822Name, &bad);
            break;
        case GEN_IPADD: {
            char ip[INET6_ADDRSTRLEN];
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            s->type = DUET_SAN_IP;
            if ((len == 4 && inet_ntop(AF_INET, d, ip, sizeof(ip)) != NULL) ||
                (len == 16 && inet_ntop(AF_INET6, d, ip, sizeof(ip)) != NULL))
                s->value = strdup(ip);
            else
                bad = true;
            break;
        }
        default:
            continue;
        }
        if (bad) {
            err_set(err, DUET_ERR_INVALID,
                    "the %s subject alternative name is malformed (embedded NUL or bad length)",
                    identity_san_tag(s->type));
            goto out;
        }
        if (s->value == NULL) {
            err_nomem(err);
            goto out;
        }
        id->nsans++;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Choose the canonical name; see the file comment. */
static char *
canonical_name(const struct duet_identity *id)
{
    const char *uri = NULL;
    int nuri = 0;

    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_URI) {
            nuri++;
            uri = id->sans[i].value;
        }
    }
    if (nuri == 1)
        return strdup(uri);
    for (size_t i = 0; i < id->nsans; i++) {
        if (id->sans[i].type == DUET_SAN_DNS)
            return strdup(id->sans[i].value);
    }
    if (id->cn != NULL)
        return strdup(id->cn);
    return strdup(id->subject);
}

/* Build an identity; see identity.h. */
int
identity_from_x509(X509 *cert, struct duet_identity **out, struct duet_err *err)
{
    struct duet_identity *id = calloc(1, sizeof(*id));

    *out = NULL;
    if (id == NULL)
        return err_nomem(err);
    atomic_init(&id->refs, 1);
    id->subject = x509u_name(X509_get_subject_name(cert));
    id->issuer = x509u_name(X509_get_issuer_name(cert));
    id->cn = x509u_name_cn(X509_get_subject_name(cert));
    id->serial = x509u_serial(X509_get0_serialNumber(cert));
    id->fingerprint = x509u_fingerprint(cert);
    if (id->subject == NULL || id->issuer == NULL || id->serial == NULL ||
        id->fingerprint == NULL) {
        err_nomem(err);
        goto err;
    }
    if (!x509u_time(X509_get0_notBefore(cert), &id->not_before) ||
        !x509u_time(X509_get0_notAfter(cert), &id->not_after)) {
        err_set(err, DUET_ERR_INVALID, "certificate %s has a malformed validity period",
                id->subject);
        goto err;
    }
    if (collect_sans(cert, id, err) != 0)
        goto err;
    id->name = canonical_name(id);
    if (id->name == NULL || !X509_up_ref(cert)) {
        err_nomem(err);
        goto err;
    }
    id->cert = cert;
    *out = id;
    return 0;
err:
    identity_free(id);
    return -1;
}
