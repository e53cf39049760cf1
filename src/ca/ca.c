/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca.c - the CA: initialisation, issuance, revocation and CRLs.
 *
 * Issuance follows DESIGN.md "Inventory": inside one BEGIN IMMEDIATE
 * transaction the CA draws a 128-bit random serial, checks it was never used,
 * signs, and inserts the row; only after COMMIT does the certificate leave
 * this module.  A crash before COMMIT leaves neither a row nor a certificate;
 * a crash after it leaves a row whose certificate may never have been
 * written, which loses nothing.  CA keys are stored as encrypted PKCS#8
 * (AES-256-CBC, PBKDF2) and wiped from memory when the CA is closed.
 */
#include "ca/ca.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca/pkcs11.h"
#include "ca/team.h"
#include "lib/bbuf.h"
#include "lib/fileio.h"
#include "lib/identity.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/verify.h"
#include "lib/x509util.h"

#define ROOT_VALIDITY (10 * 365 * 86400LL)
#define ISSUING_VALIDITY (5 * 365 * 86400LL)
#define ROOT_CRL_VALIDITY (365 * 86400LL)
#define BACKDATE 60 /* tolerate clocks of relying parties a minute behind */
#define SERIAL_BYTES 16

struct ca {
    char *dir;
    struct ca_config cfg;
    X509 *root;
    X509 *issuing;
    EVP_PKEY *issuing_key; /* NULL when opened without a passphrase */
    struct ca_pkcs11 *hsm; /* the token holding issuing_key, when ca.yaml has key_uri */
    struct ca_pkcs11 *ocsp_hsm; /* ocsp_key_uri's token when hsm is NULL, opened when needed */
    EVP_PKEY *ocsp_key;         /* its key, lent by ocsp_hsm or hsm */
    char *passphrase;      /* kept (wiped at close) for the keys the CA writes itself */
    struct store *store;
};

/* --- small parsers ------------------------------------------------------ */

/* RFC 5280 5.3.1 reason names accepted by `duet cert revoke --reason`. */
int
ca_reason_parse(const char *text)
{
    static const char *const names[] = {"unspecified",        "keyCompromise",
                                        "caCompromise",       "affiliationChanged",
                                        "superseded",         "cessationOfOperation",
                                        "certificateHold"};

    /* Case-insensitive: RFC 5280 spells "cACompromise", most tools "caCompromise". */
    for (int i = 0; text != NULL && i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (strcasecmp(text, names[i]) == 0)
            return i;
    }
    return -1;
}

/* --- certificate construction ------------------------------------------ */

/* The digest to sign with; see ca.h. */
const EVP_MD *
ca_sign_md(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) >= 384)
        return EVP_sha384();
    return EVP_sha256();
}

/*
 * Add an extension built as a structure (never from a configuration string
 * that OpenSSL would parse again: a name holding ",IP:..." stays one name).
 */
static int
add_ext(X509 *cert, int nid, void *value, bool critical, struct duet_err *err)
{
    if (value == NULL)
        return err_nomem(err);
    if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot add the %s extension", OBJ_nid2sn(nid));
    return 0;
}

static X509_NAME *
make_name(const char *org, const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    if (n == NULL)
        return NULL;
    if ((org != NULL && !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                                    (const unsigned char *)org, -1, -1, 0)) ||
        (cn != NULL &&
         !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* A fresh positive 128-bit serial. */
static ASN1_INTEGER *
random_serial(void)
{
    uint8_t buf[SERIAL_BYTES];
    BIGNUM *bn;
    ASN1_INTEGER *ai = NULL;

    do {
        if (RAND_bytes(buf, sizeof(buf)) != 1)
            return NULL;
    } while (buf[0] == 0); /* keep the full 16 bytes so every serial has the same length */
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    if (bn != NULL)
        ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    OPENSSL_cleanse(buf, sizeof(buf));
    return ai;
}

/* RFC 5280 4.2.1.3 key usage bits. */
#define SPEC_KU_DIGITAL_SIGNATURE (1u << 0)
#define SPEC_KU_KEY_ENCIPHERMENT (1u << 2)
#define SPEC_KU_KEY_CERT_SIGN (1u << 5)
#define SPEC_KU_CRL_SIGN (1u << 6)
/* Beside the PROFILE_EKU_* bits: id-kp-OCSPSigning (RFC 6960 4.2.2.2). */
#define SPEC_EKU_OCSP_SIGN (1u << 8)

/* What a new certificate is; every extension is a structure or a set of flags. */
struct cert_spec {
    X509_NAME *subject;
    EVP_PKEY *pubkey;
    X509 *issuer;          /* NULL: self-signed */
    EVP_PKEY *signer;
    ASN1_INTEGER *serial;
    int64_t not_before;
    int64_t not_after;
    bool ca;                       /* basicConstraints CA:TRUE (always critical) */
    int pathlen;                   /* -1: none */
    unsigned key_usage;            /* KU_* bits, critical */
    unsigned eku;                  /* PROFILE_EKU_* bits; 0: no extension */
    GENERAL_NAMES *san;            /* NULL: none */
    NAME_CONSTRAINTS *name_constraints; /* NULL: none */
    const struct strlist *crl_urls;  /* NULL or empty: none */
    const struct strlist *ocsp_urls; /* NULL or empty: none */
    bool ocsp_nocheck;               /* id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1) */
};

/* A URI GENERAL_NAME for a URL of ca.yaml (checked when ca.yaml was loaded). */
static GENERAL_NAME *
uri_name(const char *url)
{
    struct profile_san s = {.type = PROFILE_SAN_URI, .value = strdup(url)};
    GENERAL_NAME *g = s.value != NULL ? profile_san_to_name(&s) : NULL;

    profile_san_clear(&s);
    return g;
}

static int
add_basic_constraints(X509 *x, const struct cert_spec *s, struct duet_err *err)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int rc;

    if (bc == NULL)
        return err_nomem(err);
    bc->ca = s->ca ? 0xff : 0;
    if (s->pathlen >= 0 && ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
                            !ASN1_INTEGER_set(bc->pathlen, s->pathlen))) {
        BASIC_CONSTRAINTS_free(bc);
        return err_nomem(err);
    }
    rc = add_ext(x, NID_basic_constraints, bc, true, err);
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

static int
add_key_usage(X509 *x, unsigned bits, struct duet_err *err)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    int rc = -1;

    if (ku == NULL)
        return err_nomem(err);
    for (int b = 0; b < 9; b++) {
        if ((bits & (1u << b)) && !ASN1_BIT_STRING_set_bit(ku, b, 1)) {
            err_nomem(err);
            goto out;
        }
    }
    rc = add_ext(x, NID_key_usage, ku, true, err);
out:
    ASN1_BIT_STRING_free(ku);
    return rc;
}

static int
add_eku(X509 *x, unsigned eku, struct duet_err *err)
{
    EXTENDED_KEY_USAGE *e = sk_ASN1_OBJECT_new_null();
    int rc;

    if (e == NULL || ((eku & PROFILE_EKU_SERVER) &&
                      !sk_ASN1_OBJECT_push(e, OBJ_nid2obj(NID_server_auth))) ||
        ((eku & PROFILE_EKU_CLIENT) && !sk_ASN1_OBJECT_push(e, OBJ_nid2obj(NID_client_auth))) ||
        ((eku & SPEC_EKU_OCSP_SIGN) && !sk_ASN1_OBJECT_push(e, OBJ_nid2obj(NID_OCSP_sign)))) {
        sk_ASN1_OBJECT_free(e);
        return err_nomem(err);
    }
    rc = add_ext(x, NID_ext_key_usage, e, false, err);
    sk_ASN1_OBJECT_free(e); /* the objects are OpenSSL's static ones */
    return rc;
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING. */
static int
add_ski(X509 *x, struct duet_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASN1_OCTET_STRING *ski = NULL;
    int rc;

    if (!X509_pubkey_digest(x, EVP_sha1(), md, &len) || (ski = ASN1_OCTET_STRING_new()) == NULL ||
        !ASN1_OCTET_STRING_set(ski, md, (int)len)) {
        ASN1_OCTET_STRING_free(ski);
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot compute the subject key identifier");
    }
    rc = add_ext(x, NID_subject_key_identifier, ski, false, err);
    ASN1_OCTET_STRING_free(ski);
    return rc;
}

/* RFC 5280 4.2.1.1: the issuer's subject key identifier; NULL when it has none. */
static AUTHORITY_KEYID *
issuer_akid(X509 *issuer, struct duet_err *err)
{
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(issuer);
    AUTHORITY_KEYID *akid;

    if (skid == NULL) {
        err_set(err, DUET_ERR_INTERNAL, "the issuing certificate has no subject key identifier");
        return NULL;
    }
    akid = AUTHORITY_KEYID_new();
    if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_dup(skid)) == NULL) {
        AUTHORITY_KEYID_free(akid);
        err_nomem(err);
        return NULL;
    }
    return akid;
}

/* RFC 5280 4.2.1.13: one distribution point per URL, each a fullName URI. */
static int
add_crl_dps(X509 *x, const struct strlist *urls, struct duet_err *err)
{
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    int rc = -1;

    if (dps == NULL)
        return err_nomem(err);
    for (size_t i = 0; i < urls->n; i++) {
        DIST_POINT *dp = DIST_POINT_new();
        GENERAL_NAME *g = uri_name(urls->v[i]);
        if (dp == NULL || g == NULL || (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
            (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL ||
            !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, g)) {
            GENERAL_NAME_free(g);
            DIST_POINT_free(dp);
            err_nomem(err);
            goto out;
        }
        dp->distpoint->type = 0;
        if (!sk_DIST_POINT_push(dps, dp)) {
            DIST_POINT_free(dp);
            err_nomem(err);
            goto out;
        }
    }
    rc = add_ext(x, NID_crl_distribution_points, dps, false, err);
out:
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return rc;
}

/* RFC 5280 4.2.2.1: an OCSP access description per URL. */
static int
add_aia(X509 *x, const struct strlist *urls, struct duet_err *err)
{
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    int rc = -1;

    if (aia == NULL)
        return err_nomem(err);
    for (size_t i = 0; i < urls->n; i++) {
        ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
        GENERAL_NAME *g = uri_name(urls->v[i]);
        if (ad == NULL || g == NULL) {
            GENERAL_NAME_free(g);
            ACCESS_DESCRIPTION_free(ad);
            err_nomem(err);
            goto out;
        }
        ASN1_OBJECT_free(ad->method);
        ad->method = OBJ_nid2obj(NID_ad_OCSP);
        GENERAL_NAME_free(ad->location);
        ad->location = g;
        if (!sk_ACCESS_DESCRIPTION_push(aia, ad)) {
            ACCESS_DESCRIPTION_free(ad);
            err_nomem(err);
            goto out;
        }
    }
    rc = add_ext(x, NID_info_access, aia, false, err);
out:
    sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
    return rc;
}

static X509 *
build_cert(const struct cert_spec *s, struct duet_err *err)
{
    X509 *x = X509_new();
    AUTHORITY_KEYID *akid = NULL;

    if (x == NULL) {
        err_nomem(err);
        return NULL;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, s->serial) ||
        !X509_set_subject_name(x, s->subject) ||
        !X509_set_issuer_name(x, s->issuer != NULL ? X509_get_subject_name(s->issuer)
                                                    : s->subject) ||
        !X509_set_pubkey(x, s->pubkey) ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after) == NULL) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot fill in the certificate");
        goto err;
    }
    if (add_basic_constraints(x, s, err) != 0 || add_key_usage(x, s->key_usage, err) != 0 ||
        (s->eku != 0 && add_eku(x, s->eku, err) != 0) ||
        (s->san != NULL && sk_GENERAL_NAME_num(s->san) > 0 &&
         add_ext(x, NID_subject_alt_name, s->san, false, err) != 0) ||
        (s->name_constraints != NULL &&
         add_ext(x, NID_name_constraints, s->name_constraints, true, err) != 0) ||
        add_ski(x, err) != 0)
        goto err;
    if (s->ocsp_nocheck) {
        ASN1_NULL *nul = ASN1_NULL_new();
        int rc = add_ext(x, NID_id_pkix_OCSP_noCheck, nul, false, err);
        ASN1_NULL_free(nul);
        if (rc != 0)
            goto err;
    }
    if (s->issuer != NULL &&
        ((akid = issuer_akid(s->issuer, err)) == NULL ||
         add_ext(x, NID_authority_key_identifier, akid, false, err) != 0))
        goto err;
    if ((s->crl_urls != NULL && s->crl_urls->n > 0 && add_crl_dps(x, s->crl_urls, err) != 0) ||
        (s->ocsp_urls != NULL && s->ocsp_urls->n > 0 && add_aia(x, s->ocsp_urls, err) != 0))
        goto err;
    if (X509_sign(x, s->signer, ca_sign_md(s->signer)) <= 0) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "signing the certificate failed");
        goto err;
    }
    AUTHORITY_KEYID_free(akid);
    return x;
err:
    AUTHORITY_KEYID_free(akid);
    X509_free(x);
    return NULL;
}

/* --- files --------------------------------------------------------------- */

/* DIR/NAME, the caller's to free; see ca.h. */
char *
ca_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* --- CRLs ---------------------------------------------------------------- */

struct crl_entry {
    const char *serial; /* canonical colon hex */
    int64_t when;
    int reason;
};

/* Build and sign a CRL v2 (RFC 5280 5.1) with number, AKI and reason codes. */
static X509_CRL *
build_crl(X509 *issuer, EVP_PKEY *key, const struct crl_entry *entries, size_t n,
          uint64_t number, int64_t now, int64_t validity, struct duet_err *err)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = NULL;
    ASN1_INTEGER *num = NULL;
    AUTHORITY_KEYID *akid = NULL;

    if (crl == NULL) {
        err_nomem(err);
        return NULL;
    }
    if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
        (t = ASN1_TIME_set(NULL, (time_t)now)) == NULL || !X509_CRL_set1_lastUpdate(crl, t) ||
        ASN1_TIME_set(t, (time_t)(now + validity)) == NULL || !X509_CRL_set1_nextUpdate(crl, t)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot fill in the CRL");
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        BIGNUM *bn = NULL;
        ASN1_INTEGER *sn = NULL;
        ASN1_TIME *rt = NULL;
        char hex[160];
        size_t k = 0;
        bool ok;

        for (const char *p = entries[i].serial; *p && k + 1 < sizeof(hex); p++) {
            if (*p != ':')
                hex[k++] = *p;
        }
        hex[k] = '\0';
        ok = r != NULL && BN_hex2bn(&bn, hex) > 0 && (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
             X509_REVOKED_set_serialNumber(r, sn) &&
             (rt = ASN1_TIME_set(NULL, (time_t)entries[i].when)) != NULL &&
             X509_REVOKED_set_revocationDate(r, rt);
        /* RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent. */
        if (ok && entries[i].reason > 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            ok = e != NULL && ASN1_ENUMERATED_set(e, entries[i].reason) &&
                 X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0);
            ASN1_ENUMERATED_free(e);
        }
        ok = ok && X509_CRL_add0_revoked(crl, r);
        BN_free(bn);
        ASN1_INTEGER_free(sn);
        ASN1_TIME_free(rt);
        if (!ok) {
            X509_REVOKED_free(r);
            err_set_ssl(err, DUET_ERR_INTERNAL, "cannot add serial %s to the CRL",
                        entries[i].serial);
            goto err;
        }
    }
    X509_CRL_sort(crl);
    num = ASN1_INTEGER_new();
    if (num == NULL || !ASN1_INTEGER_set_uint64(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot set the CRL number");
        goto err;
    }
    akid = issuer_akid(issuer, err);
    if (akid == NULL || !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0)) {
        if (akid != NULL)
            err_set_ssl(err, DUET_ERR_INTERNAL, "cannot set the CRL authority key identifier");
        goto err;
    }
    if (X509_CRL_sign(crl, key, ca_sign_md(key)) <= 0) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "signing the CRL failed");
        goto err;
    }
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    return crl;
err:
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return NULL;
}

/* --- inventory rows ------------------------------------------------------ */

/* Fill an inventory row from a signed certificate. */
static int
row_from_cert(X509 *cert, const char *profile, const char *owner, const char *location,
              const char *renews, int64_t now, struct store_cert *row, struct duet_err *err)
{
    struct duet_identity *id = NULL;
    uint8_t *der = NULL;
    int len;
    struct bbuf sans = {0};

    memset(row, 0, sizeof(*row));
    if (identity_from_x509(cert, &id, err) != 0)
        return -1;
    /* Every name, however many: the row lists what the certificate holds. */
    for (size_t i = 0; i < id->nsans; i++) {
        bbuf_str(&sans, i ? ", " : "");
        bbuf_str(&sans, identity_san_tag(id->sans[i].type));
        bbuf_put(&sans, ":", 1);
        bbuf_str(&sans, id->sans[i].value);
    }
    bbuf_put(&sans, "", 1);
    len = i2d_X509(cert, &der);
    if (len <= 0 || sans.oom) {
        OPENSSL_free(der);
        free(sans.p);
        identity_free(id);
        return err_nomem(err);
    }
    row->serial = id->serial;
    row->name = id->name;
    row->subject = id->subject;
    row->issuer = id->issuer;
    id->serial = id->name = id->subject = id->issuer = NULL;
    row->sans = (char *)sans.p;
    row->profile = strdup(profile);
    row->owner = owner != NULL ? strdup(owner) : NULL;
    row->location = location != NULL ? strdup(location) : NULL;
    row->renews = renews != NULL ? strdup(renews) : NULL;
    row->key_fingerprint = x509u_cert_spki_fingerprint(cert);
    row->not_before = id->not_before;
    row->not_after = id->not_after;
    row->issued_at = now;
    row->status = STORE_VALID;
    row->der = malloc((size_t)len);
    if (row->der != NULL) {
        memcpy(row->der, der, (size_t)len);
        row->der_len = (size_t)len;
    }
    OPENSSL_free(der);
    identity_free(id);
    if (row->sans == NULL || row->profile == NULL || row->key_fingerprint == NULL ||
        row->der == NULL || (owner != NULL && row->owner == NULL) ||
        (location != NULL && row->location == NULL) || (renews != NULL && row->renews == NULL))
        return err_nomem(err);
    return 0;
}

static void
row_clear(struct store_cert *row)
{
    free(row->serial);
    free(row->name);
    free(row->subject);
    free(row->issuer);
    free(row->sans);
    free(row->profile);
    free(row->owner);
    free(row->location);
    free(row->key_fingerprint);
    free(row->renews);
    free(row->renewed_by);
    free(row->der);
    memset(row, 0, sizeof(*row));
}

/*
 * Draw a serial, sign the certificate and insert its row, inside the open
 * transaction.  A serial already used (2^-128 odds, or a broken RNG) is
 * drawn again.  *out is the signed certificate.
 */
static int
sign_and_record(struct store *store, struct cert_spec *spec, const char *profile,
                const char *owner, const char *location, const char *renews, int64_t now,
                X509 **out, struct duet_err *err)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        struct store_cert row;
        char *serial_text;
        bool used = false;
        X509 *cert;
        int rc;

        spec->serial = random_serial();
        if (spec->serial == NULL)
            return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot draw a random serial");
        serial_text = x509u_serial(spec->serial);
        if (serial_text == NULL || store_serial_used(store, serial_text, &used, err) != 0) {
            free(serial_text);
            ASN1_INTEGER_free(spec->serial);
            spec->serial = NULL;
            return serial_text == NULL ? err_nomem(err) : -1;
        }
        free(serial_text);
        if (used) {
            ASN1_INTEGER_free(spec->serial);
            spec->serial = NULL;
            continue;
        }
        cert = build_cert(spec, err);
        ASN1_INTEGER_free(spec->serial);
        spec->serial = NULL;
        if (cert == NULL)
            return -1;
        if (row_from_cert(cert, profile, owner, location, renews, now, &row, err) != 0) {
            row_clear(&row);
            X509_free(cert);
            return -1;
        }
        rc = store_insert(store, &row, err);
        if (rc == 0 && renews != NULL)
            rc = store_link_renewal(store, renews, row.serial, err);
        row_clear(&row);
        if (rc != 0) {
            X509_free(cert);
            return -1;
        }
        *out = cert;
        return 0;
    }
    return err_set(err, DUET_ERR_INTERNAL, "could not draw an unused serial in 8 attempts");
}

/* --- init ---------------------------------------------------------------- */

/* Trust domain from an organisation name: lower case, other characters to '-'. */
static char *
derive_trust_domain(const char *name)
{
    char *td = malloc(strlen(name) + 1);
    size_t n = 0;

    if (td == NULL)
        return NULL;
    for (const char *p = name; *p; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (isalnum((unsigned char)c))
            td[n++] = c;
        else if (n > 0 && td[n - 1] != '-')
            td[n++] = '-';
    }
    while (n > 0 && td[n - 1] == '-')
        n--;
    td[n] = '\0';
    if (n == 0) {
        free(td);
        return strdup("duet");
    }
    return td;
}

/* Whether a string is visible ASCII and spaces only (safe to echo in a message). */
static bool
printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

/* A permitted subtree of one name, appended to st. */
static bool
push_subtree(STACK_OF(GENERAL_SUBTREE) *st, const struct profile_san *s)
{
    GENERAL_SUBTREE *t = GENERAL_SUBTREE_new();
    GENERAL_NAME *g = profile_san_to_name(s);

    if (t == NULL || g == NULL) {
        GENERAL_SUBTREE_free(t);
        GENERAL_NAME_free(g);
        return false;
    }
    GENERAL_NAME_free(t->base);
    t->base = g;
    if (!sk_GENERAL_SUBTREE_push(st, t)) {
        GENERAL_SUBTREE_free(t);
        return false;
    }
    return true;
}

/*
 * Name constraints of the issuing CA from --permit-dns/--permit-uri, built as
 * a structure.  A DNS constraint is a DNS name (RFC 5280 4.2.1.10: a suffix);
 * a URI constraint is the host taken from a prefix such as spiffe://corp/.
 */
static NAME_CONSTRAINTS *
name_constraints_new(const struct ca_init_opts *o, struct duet_err *err)
{
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();

    if (nc == NULL || (nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL) {
        NAME_CONSTRAINTS_free(nc);
        err_nomem(err);
        return NULL;
    }
    for (size_t i = 0; i < o->npermit_dns; i++) {
        const char *d = o->permit_dns[i];
        struct profile_san s;
        char text[300];
        if (d[0] == '.') {
            /*
             * RFC 5280 4.2.1.10: a dNSName constraint is a name, which holds
             * itself and every name under it; the leading period is the URI
             * and email form, and verifiers refuse it in a DNS constraint.
             */
            err_set(err, DUET_ERR_INPUT,
                    "--permit-dns \"%.100s\": a DNS name constraint has no leading period "
                    "(RFC 5280 4.2.1.10); write %.100s, which permits that name and every "
                    "name under it",
                    printable(d) ? d : "(not printable)", printable(d) ? d + 1 : "the name");
            goto err;
        }
        snprintf(text, sizeof(text), "dns:%s", d);
        if (strlen(d) > 253 || d[0] == '*' || profile_san_parse(text, &s, err) != 0) {
            err_set(err, DUET_ERR_INPUT,
                    "--permit-dns \"%s\": expected a DNS suffix such as corp.internal",
                    printable(d) ? d : "(not printable)");
            goto err;
        }
        bool ok = push_subtree(nc->permittedSubtrees, &s);
        profile_san_clear(&s);
        if (!ok) {
            err_nomem(err);
            goto err;
        }
    }
    for (size_t i = 0; i < o->npermit_uri; i++) {
        const char *u = o->permit_uri[i];
        const char *host = strstr(u, "://");
        struct profile_san s;
        char text[300];
        size_t k = 0;
        host = host != NULL ? host + 3 : u;
        while (host[k] != '\0' && host[k] != '/')
            k++;
        if (k == 0 || k > 253 || memchr(host, ':', k) != NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "--permit-uri \"%.100s\": expected a URI prefix such as spiffe://corp/ or a "
                    "host",
                    printable(u) ? u : "(not printable)");
            goto err;
        }
        snprintf(text, sizeof(text), "dns:%.*s", (int)k, host);
        if (profile_san_parse(text, &s, err) != 0) {
            err_set(err, DUET_ERR_INPUT,
                    "--permit-uri \"%.100s\": the host of a URI prefix must be a DNS name, as "
                    "in spiffe://corp/",
                    printable(u) ? u : "(not printable)");
            goto err;
        }
        /* A URI constraint holds the host as an IA5String (RFC 5280 4.2.1.10). */
        s.type = PROFILE_SAN_URI;
        bool ok = push_subtree(nc->permittedSubtrees, &s);
        profile_san_clear(&s);
        if (!ok) {
            err_nomem(err);
            goto err;
        }
    }
    return nc;
err:
    NAME_CONSTRAINTS_free(nc);
    return NULL;
}

/* Does the directory already hold a CA? */
static bool
holds_ca(const char *dir)
{
    static const char *const files[] = {CA_FILE_CONFIG, CA_FILE_INVENTORY, CA_FILE_ISSUING_KEY,
                                        CA_FILE_ROOT_CERT};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = ca_join_path(dir, files[i]);
        struct stat st;
        bool there = p != NULL && stat(p, &st) == 0;
        free(p);
        if (there)
            return true;
    }
    return false;
}

/*
 * Add `store: URL` to ca.yaml's text, the URL without its password and
 * double-quoted (YAML escapes for '"' and '\\').
 */
static int
append_store(char **yaml, const char *url)
{
    char *bare = store_url_redact(url, NULL);
    char *out = NULL;
    size_t len = 0;
    FILE *f;

    if (bare == NULL || (f = open_memstream(&out, &len)) == NULL) {
        free(bare);
        return -1;
    }
    fprintf(f, "%s# The inventory (duet ca init --store); its password is never written here:\n"
               "# libpq reads it from PGPASSFILE (~/.pgpass) or PGPASSWORD.\nstore: \"",
            *yaml);
    for (const char *p = bare; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    fputs("\"\n", f);
    free(bare);
    if (fclose(f) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    free(*yaml);
    *yaml = out;
    return 0;
}

/*
 * The issuing key of `ca init --key-uri`: the URI as ca.yaml will record it
 * (with --pin-file as its pin-source), with --generate-key a new key pair
 * made in the token (*generated set: the caller removes it if init fails),
 * opened in its token, a key duet certifies.  *key is a reference of the
 * caller's, to free before *hsm.
 */
static int
open_token_key(const struct ca_init_opts *o, char **uri, bool *generated, struct ca_pkcs11 **hsm,
               EVP_PKEY **key, struct duet_err *err)
{
    EVP_PKEY *k = NULL;

    if (ca_token_key_prepare(o->key_uri, o->pin_file, o->generate_key, o->key_type, uri,
                             generated, err) != 0)
        return -1;
    if (ca_pkcs11_open(*uri, hsm, &k, err) != 0)
        return -1;
    if (ca_key_check_subject(k, err) != 0) {
        err_prefix(err, "%s: the token's key cannot be a CA key", o->key_uri);
        return -1;
    }
    if (!EVP_PKEY_up_ref(k))
        return err_nomem(err);
    *key = k;
    return 0;
}

/*
 * The OCSP signer's key of `ca init --ocsp-key-uri`: the URI as ca.yaml will
 * record it, the key made with --generate-key (*generated set) and checked
 * to be one duet certifies; the token is closed again (ca serve opens it).
 */
static int
check_ocsp_token_key(const struct ca_init_opts *o, char **uri, bool *generated,
                     struct duet_err *err)
{
    struct ca_pkcs11 *hsm = NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;

    if (ca_token_key_prepare(o->ocsp_key_uri, o->pin_file, o->generate_key, o->key_type, uri,
                             generated, err) != 0)
        return -1;
    if (ca_pkcs11_open(*uri, &hsm, &k, err) != 0)
        goto out;
    if (ca_key_check_subject(k, err) != 0) {
        err_prefix(err, "%s: the token's key cannot be the OCSP signer's", o->ocsp_key_uri);
        goto out;
    }
    rc = 0;
out:
    ca_pkcs11_close(hsm);
    return rc;
}

/* Create a CA directory; see ca.h. */
int
ca_init(const struct ca_init_opts *o, struct duet_err *err)
{
    static const char *const made[] = {CA_FILE_CONFIG,       CA_FILE_ROOT_CERT,
                                       CA_FILE_ROOT_KEY,     CA_FILE_ROOT_KEY_OFFLINE,
                                       CA_FILE_ROOT_CRL,     CA_FILE_ISSUING_CERT,
                                       CA_FILE_ISSUING_KEY,  CA_FILE_INVENTORY,
                                       CA_FILE_INVENTORY "-wal", CA_FILE_INVENTORY "-shm"};
    EVP_PKEY *root_key = NULL, *int_key = NULL;
    struct ca_pkcs11 *hsm = NULL;
    char *key_uri = NULL, *ocsp_uri = NULL, *root_uri = NULL;
    bool generated = false, ocsp_generated = false, root_generated = false;
    struct ca_pkcs11 *root_hsm = NULL; /* the root key's token when the issuing key is a file */
    X509 *root = NULL, *inter = NULL;
    X509_NAME *root_name = NULL, *int_name = NULL;
    X509_CRL *root_crl = NULL;
    struct store *store = NULL;
    char *td = NULL, *yaml = NULL, *path = NULL;
    NAME_CONSTRAINTS *nc = NULL;
    char cn[512];
    int64_t now = (int64_t)time(NULL);
    struct cert_spec spec;
    bool wrote = false;
    int rc = -1;

    if (o->passphrase == NULL || o->passphrase[0] == '\0')
        return err_set(err, DUET_ERR_INPUT,
                       "a CA passphrase is required (--passphrase-file F or DUET_CA_PASSPHRASE); "
                       "duet never stores CA keys unencrypted");
    if (strlen(o->passphrase) < CA_MIN_PASSPHRASE)
        return err_set(err, DUET_ERR_INPUT, "the CA passphrase must have at least %d characters",
                       CA_MIN_PASSPHRASE);
    /* The issuing CA's CN is "<name> Issuing CA" and a CN holds at most 64 characters. */
    if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) > 53)
        return err_set(err, DUET_ERR_INPUT,
                       "--name: expected the organisation name, 1 to 53 characters (it becomes "
                       "\"<name> Issuing CA\", and a CN holds 64)");
    if (holds_ca(o->dir))
        return err_set(err, DUET_ERR_INPUT, "%s: already holds a CA; refusing to overwrite it",
                       o->dir);
    td = o->trust_domain != NULL ? strdup(o->trust_domain) : derive_trust_domain(o->name);
    if (td == NULL) {
        err_nomem(err);
        goto out;
    }
    for (const char *p = td; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.' ||
              *p == '_')) {
            err_set(err, DUET_ERR_INPUT,
                    "--trust-domain \"%s\": expected lower-case letters, digits, '-', '.', '_'", td);
            goto out;
        }
    }
    if (o->npermit_dns + o->npermit_uri > 0 && (nc = name_constraints_new(o, err)) == NULL)
        goto out;
    if (o->root_key_uri != NULL && o->offline_root) {
        err_set(err, DUET_ERR_INPUT, "--root-key-uri and --offline-root: the root key stays in its "
                                     "token; there is no key file to take offline");
        goto out;
    }
    /* The root key is made before any libp11 context opens, and opened after the issuing key. */
    if (o->root_key_uri != NULL &&
        ca_token_key_prepare(o->root_key_uri, o->pin_file, o->generate_key, o->key_type,
                             &root_uri, &root_generated, err) != 0)
        goto out;
    /* The OCSP key's token first: it is closed again before the issuing key's opens. */
    if (o->ocsp_key_uri != NULL &&
        check_ocsp_token_key(o, &ocsp_uri, &ocsp_generated, err) != 0)
        goto out;
    if (o->key_uri != NULL &&
        open_token_key(o, &key_uri, &generated, &hsm, &int_key, err) != 0)
        goto out;
    if (root_uri != NULL) {
        EVP_PKEY *k = NULL;
        if ((hsm != NULL ? ca_pkcs11_open_also(hsm, root_uri, &k, err)
                         : ca_pkcs11_open(root_uri, &root_hsm, &k, err)) != 0)
            goto out;
        if (ca_key_check_subject(k, err) != 0) {
            err_prefix(err, "%s: the token's key cannot be a root key", o->root_key_uri);
            goto out;
        }
        if (!EVP_PKEY_up_ref(k)) {
            err_nomem(err);
            goto out;
        }
        root_key = k;
    }
    /* Everything checked: only now create the directory. */
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot create the CA directory: %s", o->dir,
                strerror(errno));
        goto out;
    }
    if ((root_key == NULL && (root_key = ca_key_generate(o->key_type, err)) == NULL) ||
        (int_key == NULL && (int_key = ca_key_generate(o->key_type, err)) == NULL))
        goto out;

    snprintf(cn, sizeof(cn), "%s Root CA", o->name);
    root_name = make_name(o->name, cn);
    snprintf(cn, sizeof(cn), "%s Issuing CA", o->name);
    int_name = make_name(o->name, cn);
    if (root_name == NULL || int_name == NULL) {
        err_set_ssl(err, DUET_ERR_INPUT, "--name \"%s\" cannot be used in a certificate subject",
                    o->name);
        goto out;
    }
    memset(&spec, 0, sizeof(spec));
    spec.subject = root_name;
    spec.pubkey = root_key;
    spec.signer = root_key;
    spec.serial = random_serial();
    spec.not_before = now - BACKDATE;
    spec.not_after = now + ROOT_VALIDITY;
    spec.ca = true;
    spec.pathlen = -1;
    spec.key_usage = SPEC_KU_KEY_CERT_SIGN | SPEC_KU_CRL_SIGN;
    root = build_cert(&spec, err);
    ASN1_INTEGER_free(spec.serial);
    if (root == NULL)
        goto out;

    /* The inventory first: the issuing CA is recorded before its certificate is written. */
    path = ca_join_path(o->dir, CA_FILE_INVENTORY);
    if (path == NULL) {
        err_nomem(err);
        goto out;
    }
    wrote = true;
    if (o->store != NULL ? store_open_postgres(o->store, true, &store, err) != 0
                         : store_open_sqlite(path, true, &store, err) != 0)
        goto out;
    if (store_begin(store, err) != 0)
        goto out;
    memset(&spec, 0, sizeof(spec));
    spec.subject = int_name;
    spec.pubkey = int_key;
    spec.issuer = root;
    spec.signer = root_key;
    spec.not_before = now - BACKDATE;
    spec.not_after = now + ISSUING_VALIDITY;
    spec.ca = true;
    spec.pathlen = 0;
    spec.key_usage = SPEC_KU_KEY_CERT_SIGN | SPEC_KU_CRL_SIGN;
    spec.name_constraints = nc;
    {
        /* CRL numbers come from one counter, so every CRL of this CA is numbered anew. */
        uint64_t number = 0;
        if (sign_and_record(store, &spec, "issuing-ca", NULL, NULL, NULL, now, &inter, err) != 0 ||
            store_next_crl_number(store, &number, err) != 0 ||
            (root_crl = build_crl(root, root_key, NULL, 0, number, now, ROOT_CRL_VALIDITY, err)) ==
                NULL ||
            store_commit(store, err) != 0) {
            store_rollback(store);
            goto out;
        }
    }

#define WRITE(name, expr)                                                                          \
    do {                                                                                           \
        free(path);                                                                                \
        if ((path = ca_join_path(o->dir, name)) == NULL) {                                         \
            err_nomem(err);                                                                        \
            goto out;                                                                              \
        }                                                                                          \
        if ((expr) != 0)                                                                           \
            goto out;                                                                              \
    } while (0)
    if (root_uri == NULL)
        WRITE(o->offline_root ? CA_FILE_ROOT_KEY_OFFLINE : CA_FILE_ROOT_KEY,
              pemout_key(path, root_key, o->passphrase, err));
    if (hsm == NULL)
        WRITE(CA_FILE_ISSUING_KEY, pemout_key(path, int_key, o->passphrase, err));
    WRITE(CA_FILE_ROOT_CERT, pemout_certs(path, &root, 1, NULL, err));
    WRITE(CA_FILE_ISSUING_CERT, pemout_certs(path, &inter, 1, NULL, err));
    WRITE(CA_FILE_ROOT_CRL, pemout_crls(path, &root_crl, 1, false, err));
    yaml = profile_default_yaml(o->name, td, ca_key_type_name(o->key_type), o->offline_root);
    if (yaml == NULL) {
        err_nomem(err);
        goto out;
    }
    if ((o->store != NULL && append_store(&yaml, o->store) != 0) ||
        (key_uri != NULL && ca_yaml_append_key_uri(&yaml, "key_uri", key_uri) != 0) ||
        (ocsp_uri != NULL && ca_yaml_append_key_uri(&yaml, "ocsp_key_uri", ocsp_uri) != 0) ||
        (root_uri != NULL && ca_yaml_append_key_uri(&yaml, "root_key_uri", root_uri) != 0)) {
        err_nomem(err);
        goto out;
    }
    WRITE(CA_FILE_CONFIG, fileio_write_atomic(path, (const uint8_t *)yaml, strlen(yaml), 0644, err));
#undef WRITE
    rc = 0;
out:
    store_close(store);
    if (rc != 0 && wrote) {
        /* Leave no half-made CA behind. */
        for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
            char *p = ca_join_path(o->dir, made[i]);
            if (p != NULL)
                unlink(p);
            free(p);
        }
    }
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(int_key);
    X509_free(root);
    X509_free(inter); /* holds a reference to int_key: freed before the token is closed */
    X509_NAME_free(root_name);
    X509_NAME_free(int_name);
    X509_CRL_free(root_crl);
    free(td);
    NAME_CONSTRAINTS_free(nc);
    free(yaml);
    free(path);
    ca_pkcs11_close(root_hsm); /* after root_key and the root certificate */
    ca_pkcs11_close(hsm);
    /* The key pairs made for this CA go too: a new init may use the labels again. */
    if (rc != 0 && generated)
        ca_token_key_undo(key_uri, err);
    if (rc != 0 && ocsp_generated)
        ca_token_key_undo(ocsp_uri, err);
    if (rc != 0 && root_generated)
        ca_token_key_undo(root_uri, err);
    free(key_uri);
    free(ocsp_uri);
    free(root_uri);
    return rc;
}

/* --- open ---------------------------------------------------------------- */

static int
load_one_cert(const char *dir, const char *name, X509 **out, struct duet_err *err)
{
    char *path = ca_join_path(dir, name);
    STACK_OF(X509) *certs = NULL;
    int rc;

    if (path == NULL)
        return err_nomem(err);
    rc = load_certs_file(path, NULL, &certs, err);
    free(path);
    if (rc != 0)
        return -1;
    *out = sk_X509_shift(certs);
    OSSL_STACK_OF_X509_free(certs);
    return 0;
}

/* Decrypt a CA key file; see ca.h. */
int
ca_read_key_file(const char *path, const char *passphrase, EVP_PKEY **key, struct duet_err *err)
{
    struct duet_err kerr;
    struct stat st;

    *key = NULL;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: the CA key is readable by group or others (mode %03o); fix with: "
                       "chmod 600 %s",
                       path, (unsigned)(st.st_mode & 0777), path);
    if (load_key_file(path, passphrase, key, &kerr) != 0) {
        if (strstr(kerr.msg, "passphrase") != NULL)
            err_set(err, DUET_ERR_INPUT, "%s: wrong CA passphrase", path);
        else
            *err = kerr;
        return -1;
    }
    return 0;
}

/* Open a CA directory; see ca.h. */
int
ca_open(const char *dir, const char *passphrase, struct ca **out, struct duet_err *err)
{
    struct ca *ca = calloc(1, sizeof(*ca));
    char *path = NULL;

    *out = NULL;
    if (ca == NULL || (ca->dir = strdup(dir)) == NULL) {
        free(ca);
        return err_nomem(err);
    }
    path = ca_join_path(dir, CA_FILE_CONFIG);
    if (path == NULL) {
        err_nomem(err);
        goto err;
    }
    if (access(path, F_OK) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no CA here (no %s); create one with duet ca init", dir,
                CA_FILE_CONFIG);
        goto err;
    }
    if (ca_config_load(path, &ca->cfg, err) != 0)
        goto err;
    if (load_one_cert(dir, CA_FILE_ROOT_CERT, &ca->root, err) != 0 ||
        load_one_cert(dir, CA_FILE_ISSUING_CERT, &ca->issuing, err) != 0)
        goto err;
    free(path);
    path = ca_join_path(dir, CA_FILE_INVENTORY);
    if (path == NULL) {
        err_nomem(err);
        goto err;
    }
    if (ca->cfg.store != NULL && strcmp(ca->cfg.store, "sqlite") != 0) {
        if (store_open_postgres(ca->cfg.store, false, &ca->store, err) != 0)
            goto err;
    } else if (store_open_sqlite(path, false, &ca->store, err) != 0) {
        goto err;
    }
    if (passphrase != NULL) {
        free(path);
        path = ca->cfg.key_uri != NULL ? strdup(ca->cfg.key_uri)
                                       : ca_join_path(dir, CA_FILE_ISSUING_KEY);
        if (path == NULL || (ca->passphrase = strdup(passphrase)) == NULL) {
            err_nomem(err);
            goto err;
        }
        if (ca->cfg.key_uri != NULL) {
            EVP_PKEY *k = NULL;
            if (ca_pkcs11_open(ca->cfg.key_uri, &ca->hsm, &k, err) != 0)
                goto err;
            if (!EVP_PKEY_up_ref(k)) {
                err_nomem(err);
                goto err;
            }
            ca->issuing_key = k;
        } else if (ca_read_key_file(path, passphrase, &ca->issuing_key, err) != 0) {
            goto err;
        }
        if (X509_check_private_key(ca->issuing, ca->issuing_key) != 1) {
            ERR_clear_error();
            err_set(err, DUET_ERR_INPUT, "%s%s does not belong to %s/%s", path,
                    ca->hsm != NULL ? ": the token's key" : "", dir, CA_FILE_ISSUING_CERT);
            goto err;
        }
    }
    free(path);
    *out = ca;
    return 0;
err:
    free(path);
    ca_close(ca);
    return -1;
}

void
ca_close(struct ca *ca)
{
    if (ca == NULL)
        return;
    store_close(ca->store);
    X509_free(ca->root);
    X509_free(ca->issuing);
    EVP_PKEY_free(ca->issuing_key); /* EVP_PKEY_free clears private key material */
    ca_pkcs11_close(ca->ocsp_hsm);  /* every signer holding ocsp_key was freed before */
    ca_pkcs11_close(ca->hsm);       /* after the key: its methods live in the module */
    fileio_free_secret(ca->passphrase);
    ca_config_clear(&ca->cfg);
    free(ca->dir);
    free(ca);
}

struct store *
ca_store(struct ca *ca)
{
    return ca->store;
}

const struct ca_config *
ca_config(const struct ca *ca)
{
    return &ca->cfg;
}

/* The OCSP signer's key in its token; see ca.h. */
int
ca_ocsp_token_key(struct ca *ca, EVP_PKEY **key, struct duet_err *err)
{
    *key = NULL;
    if (ca->cfg.ocsp_key_uri == NULL)
        return 0;
    /* One libp11 context per module: the issuing key's when it is in a token. */
    if (ca->ocsp_key == NULL &&
        (ca->hsm != NULL ? ca_pkcs11_open_also(ca->hsm, ca->cfg.ocsp_key_uri, &ca->ocsp_key, err)
                         : ca_pkcs11_open(ca->cfg.ocsp_key_uri, &ca->ocsp_hsm, &ca->ocsp_key,
                                          err)) != 0) {
        err_prefix(err, "the OCSP signer's key (ocsp_key_uri in %s)", CA_FILE_CONFIG);
        return -1;
    }
    if (!EVP_PKEY_up_ref(ca->ocsp_key))
        return err_nomem(err);
    *key = ca->ocsp_key;
    return 0;
}

X509 *
ca_issuing_cert(const struct ca *ca)
{
    return ca->issuing;
}

X509 *
ca_root_cert(const struct ca *ca)
{
    return ca->root;
}

const char *
ca_dir(const struct ca *ca)
{
    return ca->dir;
}

/* Write DIR/name encrypted with the CA passphrase; see ca.h. */
int
ca_key_write(struct ca *ca, const char *name, EVP_PKEY *key, struct duet_err *err)
{
    char *path;
    int rc;

    if (ca->passphrase == NULL)
        return err_set(err, DUET_ERR_INPUT, "the CA was opened without its passphrase");
    if ((path = ca_join_path(ca->dir, name)) == NULL)
        return err_nomem(err);
    rc = pemout_key(path, key, ca->passphrase, err);
    free(path);
    return rc;
}

/* Read DIR/name with the CA passphrase; see ca.h. */
int
ca_key_read(struct ca *ca, const char *name, EVP_PKEY **key, struct duet_err *err)
{
    char *path;
    int rc;

    *key = NULL;
    if (ca->passphrase == NULL)
        return err_set(err, DUET_ERR_INPUT, "the CA was opened without its passphrase");
    if ((path = ca_join_path(ca->dir, name)) == NULL)
        return err_nomem(err);
    rc = ca_read_key_file(path, ca->passphrase, key, err);
    free(path);
    return rc;
}

/* --- issue --------------------------------------------------------------- */

/*
 * Verify a freshly signed certificate against the CA's own chain before it is
 * committed, so that the CA never hands out a certificate its relying parties
 * would refuse (for instance a name outside the issuing CA's name constraints).
 */
static int
self_check(struct ca *ca, X509 *cert, int64_t now, struct duet_err *err)
{
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    struct verify_params p;
    int rc = -1;

    if (store == NULL || untrusted == NULL || !X509_STORE_add_cert(store, ca->root) ||
        !sk_X509_push(untrusted, ca->issuing)) {
        err_nomem(err);
        goto out;
    }
    memset(&p, 0, sizeof(p));
    p.store = store;
    p.untrusted = untrusted;
    p.use_time = true;
    p.time = now;
    if (verify_chain(&p, cert, NULL, NULL, err) != 0) {
        err_prefix(err, "refusing to issue a certificate relying parties would reject");
        goto out;
    }
    rc = 0;
out:
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return rc;
}

/* Append a checked SAN to gens as a new GENERAL_NAME. */
static int
push_san(GENERAL_NAMES *gens, const struct profile_san *s, struct duet_err *err)
{
    GENERAL_NAME *g = profile_san_to_name(s);

    if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return err_nomem(err);
    }
    return 0;
}

/*
 * The subjectAltName to sign, as GENERAL_NAMEs: the --san texts, parsed and
 * checked for their type, then the names given as structures (a CSR's, the
 * renewed certificate's), each checked on its exact bytes and rebuilt from
 * the checked value.  No name ever goes through a configuration string.
 */
static GENERAL_NAMES *
request_names(const struct ca_request *req, struct duet_err *err)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    int nnames = req->names != NULL ? sk_GENERAL_NAME_num(req->names) : 0;

    if (gens == NULL) {
        err_nomem(err);
        return NULL;
    }
    for (size_t i = 0; i < req->nsans; i++) {
        struct profile_san s;
        int rc = profile_san_parse(req->sans[i], &s, err);
        if (rc == 0)
            rc = push_san(gens, &s, err);
        profile_san_clear(&s);
        if (rc != 0)
            goto err;
    }
    for (int i = 0; i < nnames; i++) {
        struct profile_san s;
        int rc = profile_san_from_name(sk_GENERAL_NAME_value(req->names, i),
                                       req->names_from != NULL ? req->names_from : "the request",
                                       &s, err);
        if (rc == 0)
            rc = push_san(gens, &s, err);
        profile_san_clear(&s);
        if (rc != 0)
            goto err;
    }
    return gens;
err:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* The subject CN: 1 to 64 characters, none of them a control character. */
static int
check_cn(const char *cn, struct duet_err *err)
{
    if (cn == NULL || cn[0] == '\0' || strlen(cn) > 64)
        return err_set(err, DUET_ERR_INPUT,
                       "the certificate name (subject CN) must have 1 to 64 characters");
    for (const char *p = cn; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return err_set(err, DUET_ERR_INPUT,
                           "the certificate name (subject CN) holds the control character 0x%02x "
                           "at offset %zu; expected printable text",
                           c, (size_t)(p - cn));
    }
    return 0;
}

/*
 * Whether a CN is one of the names certified: a DNS name or email address
 * (case-insensitive), an IP address's text, a URI, or the path of a SPIFFE ID
 * ("alice" for spiffe://corp/alice).
 */
static bool
cn_certified(const char *cn, const GENERAL_NAMES *gens)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *v = NULL;
        char ip[INET6_ADDRSTRLEN];
        switch (g->type) {
        case GEN_DNS:
        case GEN_EMAIL:
            v = g->d.ia5;
            if ((size_t)ASN1_STRING_length(v) == strlen(cn) &&
                strncasecmp((const char *)ASN1_STRING_get0_data(v), cn, strlen(cn)) == 0)
                return true;
            break;
        case GEN_URI: {
            const char *u = (const char *)ASN1_STRING_get0_data(g->d.ia5);
            size_t n = (size_t)ASN1_STRING_length(g->d.ia5);
            const char *path;
            if (n == strlen(cn) && memcmp(u, cn, n) == 0)
                return true;
            if (n > 9 && strncmp(u, "spiffe://", 9) == 0 &&
                (path = memchr(u + 9, '/', n - 9)) != NULL &&
                (size_t)(u + n - path - 1) == strlen(cn) && memcmp(path + 1, cn, strlen(cn)) == 0)
                return true;
            break;
        }
        case GEN_IPADD: {
            int len = ASN1_STRING_length(g->d.ip);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.ip);
            if (((len == 4 && inet_ntop(AF_INET, d, ip, sizeof(ip)) != NULL) ||
                 (len == 16 && inet_ntop(AF_INET6, d, ip, sizeof(ip)) != NULL)) &&
                strcmp(ip, cn) == 0)
                return true;
            break;
        }
        default:
            break;
        }
    }
    return false;
}

/* The request's step inside the issuance transaction, given the new serial. */
static int
run_in_txn(struct ca *ca, const struct ca_request *req, X509 *cert, struct duet_err *err)
{
    char *serial;
    int rc;

    if (req->in_txn == NULL)
        return 0;
    if ((serial = x509u_serial(X509_get0_serialNumber(cert))) == NULL)
        return err_nomem(err);
    rc = req->in_txn(ca->store, serial, req->in_txn_arg, err);
    free(serial);
    return rc;
}

/* Issue a certificate; see ca.h. */
int
ca_issue(struct ca *ca, const struct ca_request *req, X509 **cert_out, bool *clamped,
         struct duet_err *err)
{
    const struct ca_profile *p = ca_config_profile(&ca->cfg, req->profile);
    GENERAL_NAMES *gens = NULL;
    X509_NAME *subject = NULL;
    struct cert_spec spec;
    int64_t now = req->now != 0 ? req->now : (int64_t)time(NULL);
    int64_t ttl;
    int64_t ca_end = 0;
    int rc = -1;

    *cert_out = NULL;
    if (clamped != NULL)
        *clamped = false;
    if (ca->issuing_key == NULL)
        return err_set(err, DUET_ERR_INPUT, "the CA was opened without its passphrase");
    if (p == NULL) {
        char names[256];
        size_t off = 0;
        names[0] = '\0';
        for (size_t i = 0; i < ca->cfg.nprofiles && off < sizeof(names); i++)
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", i ? ", " : "",
                                    ca->cfg.profiles[i].name);
        return err_set(err, DUET_ERR_INPUT, "profile \"%s\" is not in %s; expected one of %s",
                       req->profile != NULL && printable(req->profile) ? req->profile : "",
                       ca->cfg.path, names);
    }
    if (strcmp(p->name, "issuing-ca") == 0 || strcmp(p->name, CA_PROFILE_OCSP_SIGNER) == 0)
        return err_set(err, DUET_ERR_INPUT, "profile %s is reserved", p->name);
    if (check_cn(req->cn, err) != 0)
        return -1;
    if (req->pubkey == NULL)
        return err_set(err, DUET_ERR_INPUT, "no public key to certify");
    if (ca_key_check_subject(req->pubkey, err) != 0)
        return -1;
    if ((gens = request_names(req, err)) == NULL)
        goto out;
    ttl = req->ttl > 0 ? req->ttl : p->default_ttl;
    /* The policy is checked on the very structure that is signed below. */
    if (profile_check_names(&ca->cfg, p, gens, ttl, err) != 0)
        goto out;
    /* The owner's team, where the profile puts it (team.h), checked before it goes anywhere. */
    if (ca_team_require(p, req->owner, req->owner_from != NULL ? req->owner_from : "--owner",
                        err) != 0 ||
        ((p->team & PROFILE_TEAM_SPIFFE) &&
         ca_team_check_names(gens, ca->cfg.trust_domain, req->owner, p->name, err) != 0))
        goto out;
    if (req->cn_from_request && !cn_certified(req->cn, gens)) {
        err_set(err, DUET_ERR_INPUT,
                "%s: its subject CN \"%s\" is none of the names being certified; give --name to "
                "choose the certificate's name",
                req->names_from != NULL ? req->names_from : "the request", req->cn);
        goto out;
    }

    memset(&spec, 0, sizeof(spec));
    subject = make_name(ca->cfg.name, req->cn);
    if (subject == NULL) {
        err_set_ssl(err, DUET_ERR_INPUT, "\"%s\" cannot be used as a subject CN", req->cn);
        goto out;
    }
    if ((p->team & PROFILE_TEAM_OU) && ca_team_add_ou(subject, req->owner, err) != 0)
        goto out;
    if (!x509u_time(X509_get0_notAfter(ca->issuing), &ca_end)) {
        err_set(err, DUET_ERR_INTERNAL, "the issuing CA's notAfter cannot be read");
        goto out;
    }
    if (ca_end <= now) {
        err_set(err, DUET_ERR_INPUT, "the issuing CA expired; it cannot issue any more");
        goto out;
    }
    spec.subject = subject;
    spec.pubkey = req->pubkey;
    spec.issuer = ca->issuing;
    spec.signer = ca->issuing_key;
    spec.not_before = now - BACKDATE;
    spec.not_after = now + ttl;
    if (spec.not_after > ca_end) {
        spec.not_after = ca_end; /* never past the issuing CA's own notAfter */
        if (clamped != NULL)
            *clamped = true;
    }
    spec.ca = false;
    spec.pathlen = -1;
    /* RSA keys also need keyEncipherment for TLS 1.2 RSA key exchange as a server. */
    spec.key_usage = (EVP_PKEY_is_a(req->pubkey, "RSA") && (p->eku & PROFILE_EKU_SERVER))
                         ? SPEC_KU_DIGITAL_SIGNATURE | SPEC_KU_KEY_ENCIPHERMENT
                         : SPEC_KU_DIGITAL_SIGNATURE;
    spec.eku = (p->eku & PROFILE_EKU_SERVER) ? p->eku : PROFILE_EKU_CLIENT;
    spec.san = gens;
    spec.crl_urls = &p->crl_urls;
    spec.ocsp_urls = &p->ocsp_urls;

    /* Without the shared write lock on PostgreSQL: nodes issue side by side (store.h). */
    if (store_begin_issue(ca->store, err) != 0)
        goto out;
    if (sign_and_record(ca->store, &spec, p->name, req->owner, req->location, req->renews, now,
                        cert_out, err) != 0 ||
        self_check(ca, *cert_out, now, err) != 0 || run_in_txn(ca, req, *cert_out, err) != 0 ||
        store_commit(ca->store, err) != 0) {
        store_rollback(ca->store);
        X509_free(*cert_out);
        *cert_out = NULL;
        goto out;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subject);
    return rc;
}

/* Issue the delegated OCSP signing certificate; see ca.h. */
int
ca_issue_ocsp_signer(struct ca *ca, EVP_PKEY *pubkey, const char *renews, int64_t now,
                     int64_t ttl, X509 **cert_out, struct duet_err *err)
{
    X509_NAME *subject = NULL;
    struct cert_spec spec;
    char cn[128];
    int64_t ca_end = 0;
    int rc = -1;

    *cert_out = NULL;
    if (ca->issuing_key == NULL)
        return err_set(err, DUET_ERR_INPUT, "the CA was opened without its passphrase");
    if (ttl <= 0)
        return err_set(err, DUET_ERR_INPUT, "the OCSP signer's validity must be positive");
    if (ca_key_check_subject(pubkey, err) != 0)
        return -1;
    if (!x509u_time(X509_get0_notAfter(ca->issuing), &ca_end))
        return err_set(err, DUET_ERR_INTERNAL, "the issuing CA's notAfter cannot be read");
    if (ca_end <= now)
        return err_set(err, DUET_ERR_INPUT, "the issuing CA expired; it cannot issue any more");
    /* A CN holds 64 characters and a CA name 53: the long form when it fits. */
    snprintf(cn, sizeof(cn), "%s OCSP responder", ca->cfg.name);
    if (strlen(cn) > 64)
        snprintf(cn, sizeof(cn), "%s OCSP", ca->cfg.name);
    if ((subject = make_name(ca->cfg.name, cn)) == NULL)
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot build the OCSP signer's subject");
    memset(&spec, 0, sizeof(spec));
    spec.subject = subject;
    spec.pubkey = pubkey;
    spec.issuer = ca->issuing;
    spec.signer = ca->issuing_key;
    spec.not_before = now - BACKDATE;
    spec.not_after = now + ttl < ca_end ? now + ttl : ca_end;
    spec.ca = false;
    spec.pathlen = -1;
    spec.key_usage = SPEC_KU_DIGITAL_SIGNATURE;
    spec.eku = SPEC_EKU_OCSP_SIGN;
    spec.ocsp_nocheck = true;
    if (store_begin(ca->store, err) != 0)
        goto out;
    if (sign_and_record(ca->store, &spec, CA_PROFILE_OCSP_SIGNER, NULL, NULL, renews, now,
                        cert_out, err) != 0 ||
        self_check(ca, *cert_out, now, err) != 0 || store_commit(ca->store, err) != 0) {
        store_rollback(ca->store);
        X509_free(*cert_out);
        *cert_out = NULL;
        goto out;
    }
    rc = 0;
out:
    X509_NAME_free(subject);
    return rc;
}

/* --- revoke and CRL -------------------------------------------------------- */

/* Revoke by canonical serial, recording who; see ca.h. */
int
ca_revoke(struct ca *ca, const char *serial, int reason, int64_t when, const char *by,
          struct duet_err *err)
{
    struct store_cert *c = NULL;

    if (reason < 0 || reason == 7 || reason > 10)
        return err_set(err, DUET_ERR_INPUT, "reason code %d is not valid", reason);
    if (store_get(ca->store, serial, &c, err) != 0)
        return -1;
    if (c != NULL && strcmp(c->profile, "issuing-ca") == 0) {
        store_cert_free(c);
        return err_set(err, DUET_ERR_INPUT,
                       "serial %s is the issuing CA; revoking it needs the root key and a new "
                       "issuing CA, which `duet cert revoke` does not do",
                       serial);
    }
    store_cert_free(c);
    if (store_begin(ca->store, err) != 0)
        return -1;
    if (store_revoke(ca->store, serial, when, reason, by, err) != 0 ||
        store_commit(ca->store, err) != 0) {
        store_rollback(ca->store);
        return -1;
    }
    return 0;
}

int
ca_crl(struct ca *ca, int64_t now, int64_t validity, X509_CRL **out, struct duet_err *err)
{
    struct store_cert **rows = NULL;
    struct crl_entry *entries = NULL;
    size_t n = 0, k = 0;
    uint64_t number = 0;
    char *issuer = NULL;
    int rc = -1;

    *out = NULL;
    if (ca->issuing_key == NULL)
        return err_set(err, DUET_ERR_INPUT, "the CA was opened without its passphrase");
    if (validity <= 0)
        return err_set(err, DUET_ERR_INPUT, "the CRL validity must be positive");
    issuer = x509u_name(X509_get_subject_name(ca->issuing));
    if (issuer == NULL)
        return err_nomem(err);
    if (store_begin(ca->store, err) != 0)
        goto out;
    if (store_next_crl_number(ca->store, &number, err) != 0 ||
        store_list_revoked(ca->store, &rows, &n, err) != 0)
        goto rollback;
    entries = calloc(n + 1, sizeof(*entries));
    if (entries == NULL) {
        err_nomem(err);
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i]->issuer, issuer) != 0)
            continue; /* the issuing CA's CRL lists only what it issued */
        entries[k].serial = rows[i]->serial;
        entries[k].when = rows[i]->revoked_at;
        entries[k].reason = rows[i]->reason;
        k++;
    }
    *out = build_crl(ca->issuing, ca->issuing_key, entries, k, number, now, validity, err);
    if (*out == NULL)
        goto rollback;
    {
        /* Published in the same transaction: every process on the inventory serves it. */
        struct store_crl pub = {
            .number = number, .this_update = now, .next_update = now + validity, .revoked = n};
        unsigned char *der = NULL;
        int len = i2d_X509_CRL(*out, &der);
        pub.der = der;
        pub.der_len = len > 0 ? (size_t)len : 0;
        if (len <= 0 || store_crl_put(ca->store, &pub, err) != 0) {
            if (len <= 0)
                err_set_ssl(err, DUET_ERR_INTERNAL, "cannot encode the CRL");
            OPENSSL_free(der);
            X509_CRL_free(*out);
            *out = NULL;
            goto rollback;
        }
        OPENSSL_free(der);
    }
    if (store_commit(ca->store, err) != 0) {
        X509_CRL_free(*out);
        *out = NULL;
        goto out;
    }
    rc = 0;
    goto out;
rollback:
    store_rollback(ca->store);
out:
    free(entries);
    store_certs_free(rows, n);
    free(issuer);
    return rc;
}

int
ca_root_crl(struct ca *ca, X509_CRL **out, struct duet_err *err)
{
    char *path = ca_join_path(ca->dir, CA_FILE_ROOT_CRL);
    STACK_OF(X509_CRL) *crls = NULL;
    int rc;

    *out = NULL;
    if (path == NULL)
        return err_nomem(err);
    rc = load_crls_file(path, &crls, err);
    free(path);
    if (rc != 0)
        return -1;
    *out = sk_X509_CRL_shift(crls);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return 0;
}

/* Renew DIR/root.crl; see ca.h. */
int
ca_root_crl_renew(struct ca *ca, const char *root_key_path, const char *passphrase, int64_t now,
                  int64_t validity, X509_CRL **out, struct duet_err *err)
{
    char *path = root_key_path != NULL ? strdup(root_key_path)
                                       : ca_join_path(ca->dir, CA_FILE_ROOT_KEY);
    EVP_PKEY *key = NULL;
    struct ca_pkcs11 *root_hsm = NULL; /* root_key_uri's token when the issuing key is a file */
    X509_CRL *crl = NULL;
    uint64_t number = 0;
    int rc = -1;

    if (out != NULL)
        *out = NULL;
    if (path == NULL)
        return err_nomem(err);
    if (validity <= 0) {
        err_set(err, DUET_ERR_INPUT, "the CRL validity must be positive");
        goto out;
    }
    if (root_key_path == NULL && ca->cfg.root_key_uri != NULL) {
        /* The root key in its token: through the issuing key's libp11 context if there is one. */
        EVP_PKEY *k = NULL;
        free(path);
        if ((path = strdup(ca->cfg.root_key_uri)) == NULL) {
            err_nomem(err);
            goto out;
        }
        if ((ca->hsm != NULL ? ca_pkcs11_open_also(ca->hsm, path, &k, err)
                             : ca_pkcs11_open(path, &root_hsm, &k, err)) != 0)
            goto out;
        if (!EVP_PKEY_up_ref(k)) {
            err_nomem(err);
            goto out;
        }
        key = k;
    } else {
        if (access(path, F_OK) != 0) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: no root key here%s", path,
                    ca->cfg.offline_root ? " (the root is offline: give its key with --root-key)" : "");
            goto out;
        }
        {
            struct stat st;
            if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
                err_set(err, DUET_ERR_INPUT,
                        "%s: the root key is accessible to group or others (mode %03o); fix with: "
                        "chmod 600 %s",
                        path, (unsigned)(st.st_mode & 0777), path);
                goto out;
            }
        }
        if (ca_read_key_file(path, passphrase, &key, err) != 0)
            goto out;
    }
    if (X509_check_private_key(ca->root, key) != 1) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INPUT, "%s%s is not the key of %s/%s", path,
                root_key_path == NULL && ca->cfg.root_key_uri != NULL ? ": the token's key" : "",
                ca->dir, CA_FILE_ROOT_CERT);
        goto out;
    }
    if (store_begin(ca->store, err) != 0)
        goto out;
    if (store_next_crl_number(ca->store, &number, err) != 0 ||
        (crl = build_crl(ca->root, key, NULL, 0, number, now, validity, err)) == NULL ||
        store_commit(ca->store, err) != 0) {
        store_rollback(ca->store);
        goto out;
    }
    free(path);
    path = ca_join_path(ca->dir, CA_FILE_ROOT_CRL);
    if (path == NULL) {
        err_nomem(err);
        goto out;
    }
    if (pemout_crls(path, &crl, 1, false, err) != 0)
        goto out;
    if (out != NULL) {
        *out = crl;
        crl = NULL;
    }
    rc = 0;
out:
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    ca_pkcs11_close(root_hsm); /* after the key */
    free(path);
    return rc;
}
