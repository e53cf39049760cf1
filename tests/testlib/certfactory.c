/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certfactory.c - the test certificate factory (see certfactory.h).
 *
 * Extensions are written through OpenSSL's configuration syntax
 * (X509V3_EXT_conf_nid), the same path `openssl x509 -extfile` takes, so a
 * spec reads like an extension file.  The subjectKeyIdentifier is the SHA-1
 * of the public key (RFC 5280 4.2.1.2, method 1) and the
 * authorityKeyIdentifier copies the issuer's, as RFC 5280 4.2.1.1 asks and
 * OpenSSL's strict mode checks.  Nothing here is hardened: a failure is a
 * bug in the test and ends the process with a message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "testlib/certfactory.h"
#include "lib/revset.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/dsa.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

/* Print what failed, with OpenSSL's reasons, and abort the test. */
static void
cf_die(const char *what)
{
    fprintf(stderr, "certfactory: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

/* malloc that never returns NULL. */
static void *
cf_alloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL)
        cf_die("out of memory");
    return p;
}

/* Make a new key of the given type; the caller owns it (EVP_PKEY_free). */
EVP_PKEY *
cf_key_new(enum cf_key_type type)
{
    EVP_PKEY *k = NULL;

    switch (type) {
    case CF_KEY_EC_P256:
        k = EVP_EC_gen("P-256");
        break;
    case CF_KEY_EC_P384:
        k = EVP_EC_gen("P-384");
        break;
    case CF_KEY_RSA_1024:
        k = EVP_RSA_gen(1024);
        break;
    case CF_KEY_RSA_2048:
        k = EVP_RSA_gen(2048);
        break;
    case CF_KEY_ED25519:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case CF_KEY_DSA_1024:
    case CF_KEY_DSA_2048: {
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
        EVP_PKEY_CTX *kc = NULL;
        EVP_PKEY *params = NULL;
        if (pc != NULL && EVP_PKEY_paramgen_init(pc) == 1 &&
            EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, type == CF_KEY_DSA_1024 ? 1024 : 2048) == 1 &&
            EVP_PKEY_paramgen(pc, &params) == 1 &&
            (kc = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL)) != NULL &&
            EVP_PKEY_keygen_init(kc) == 1)
            (void)EVP_PKEY_keygen(kc, &k);
        EVP_PKEY_CTX_free(kc);
        EVP_PKEY_CTX_free(pc);
        EVP_PKEY_free(params);
        break;
    }
    }
    if (k == NULL)
        cf_die("cannot generate key");
    return k;
}

/* The digest to sign with: none for EdDSA keys, which hash internally. */
static const EVP_MD *
cf_md(EVP_PKEY *signer, enum cf_digest d)
{
    if (EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448"))
        return NULL;
    return d == CF_SHA1 ? EVP_sha1() : EVP_sha256();
}

/* Set t to now + off seconds. */
static void
cf_set_time(ASN1_TIME *t, time_t now, int64_t off)
{
    if (ASN1_TIME_set(t, now + (time_t)off) == NULL)
        cf_die("cannot set time");
}

/* Add one extension from its configuration value ("critical,CA:TRUE"). */
static void
cf_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    if (ext == NULL) {
        fprintf(stderr, "certfactory: bad value for %s: %s\n", OBJ_nid2sn(nid), value);
        cf_die("cannot make extension");
    }
    if (!X509_add_ext(x, ext, -1))
        cf_die("cannot add extension");
    X509_EXTENSION_free(ext);
}

/* Add one extension from its DER value. */
static void
cf_add_raw_ext(X509 *x, const struct cf_raw_ext *r)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(r->oid, 0);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;

    if (obj == NULL || os == NULL || !ASN1_OCTET_STRING_set(os, r->der, (int)r->len))
        cf_die("cannot make raw extension");
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, r->critical ? 1 : 0, os);
    if (ext == NULL || !X509_add_ext(x, ext, -1))
        cf_die("cannot add raw extension");
    X509_EXTENSION_free(ext);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
}

/* Join a NULL-terminated list with commas after an optional prefix; malloc'd. */
static char *
cf_join(const char *prefix, const char *const *list)
{
    size_t n = strlen(prefix) + 1;
    char *s;

    for (size_t i = 0; list[i] != NULL; i++)
        n += strlen(list[i]) + 1;
    s = cf_alloc(n);
    strcpy(s, prefix);
    for (size_t i = 0; list[i] != NULL; i++) {
        if (i > 0)
            strcat(s, ",");
        strcat(s, list[i]);
    }
    return s;
}

/* Add an entry to a name when the value is given. */
static void
cf_name_add(X509_NAME *name, int nid, const char *value)
{
    if (value == NULL)
        return;
    if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                    0))
        cf_die("cannot add name entry");
}

static uint64_t cf_next_serial = 0x1000;

/*
 * Make a certificate from spec (see certfactory.h for the defaults).  The
 * issuer's certificate and key are borrowed; the result is owned by the
 * caller (X509_free).
 */
X509 *
cf_cert_new(const struct cf_cert_spec *spec)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    EVP_PKEY *signer = spec->issuer_key != NULL ? spec->issuer_key : spec->key;
    X509 *issuer;
    X509V3_CTX ctx;
    time_t now = time(NULL);
    int64_t nb = spec->not_before;
    int64_t na = spec->not_after;
    char buf[256];

    if (x == NULL || name == NULL || spec->key == NULL)
        cf_die("cannot start certificate");
    if ((spec->issuer == NULL) != (spec->issuer_key == NULL))
        cf_die("issuer and issuer_key go together");
    issuer = spec->issuer != NULL ? spec->issuer : x;
    if (!X509_set_version(x, X509_VERSION_3))
        cf_die("cannot set version");
    if (spec->serial_hex != NULL) {
        BIGNUM *bn = NULL;
        if (!BN_hex2bn(&bn, spec->serial_hex) ||
            BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
            cf_die("cannot set serial from hex");
        BN_free(bn);
    } else if (!ASN1_INTEGER_set_uint64(X509_get_serialNumber(x),
                                        spec->serial != 0 ? spec->serial : cf_next_serial++)) {
        cf_die("cannot set serial");
    }
    cf_name_add(name, NID_organizationName, spec->o);
    cf_name_add(name, NID_organizationalUnitName, spec->ou);
    cf_name_add(name, NID_commonName, spec->cn);
    if (!X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, spec->issuer != NULL ? X509_get_subject_name(spec->issuer) : name))
        cf_die("cannot set names");
    X509_NAME_free(name);
    if (nb == 0 && na == 0) {
        nb = -3600;
        na = CF_YEAR;
    }
    cf_set_time(X509_getm_notBefore(x), now, nb);
    cf_set_time(X509_getm_notAfter(x), now, na);
    if (!X509_set_pubkey(x, spec->key))
        cf_die("cannot set public key");

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509V3_set_ctx_nodb(&ctx);
    if (spec->bc != CF_BC_NONE) {
        snprintf(buf, sizeof(buf), "%sCA:%s", spec->bc_noncritical ? "" : "critical,",
                 spec->bc == CF_BC_CA ? "TRUE" : "FALSE");
        if (spec->bc == CF_BC_CA && spec->has_pathlen)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ",pathlen:%d", spec->pathlen);
        cf_add_ext(x, &ctx, NID_basic_constraints, buf);
    }
    if (spec->key_usage == NULL)
        cf_add_ext(x, &ctx, NID_key_usage,
                   spec->bc == CF_BC_CA ? "critical,keyCertSign,cRLSign"
                                        : "critical,digitalSignature");
    else if (spec->key_usage[0] != '\0')
        cf_add_ext(x, &ctx, NID_key_usage, spec->key_usage);
    if (spec->eku != 0) {
        snprintf(buf, sizeof(buf), "%s%s%s", (spec->eku & CF_EKU_SERVER) ? "serverAuth" : "",
                 (spec->eku & CF_EKU_SERVER) && (spec->eku & CF_EKU_CLIENT) ? "," : "",
                 (spec->eku & CF_EKU_CLIENT) ? "clientAuth" : "");
        cf_add_ext(x, &ctx, NID_ext_key_usage, buf);
    }
    if (spec->sans != NULL && spec->sans[0] != NULL) {
        char *v = cf_join(spec->san_critical ? "critical," : "", spec->sans);
        cf_add_ext(x, &ctx, NID_subject_alt_name, v);
        free(v);
    }
    if (spec->name_constraints != NULL && spec->name_constraints[0] != NULL) {
        char *v = cf_join(spec->nc_noncritical ? "" : "critical,", spec->name_constraints);
        cf_add_ext(x, &ctx, NID_name_constraints, v);
        free(v);
    }
    if (spec->extensions != NULL) {
        /* certificatePolicies is read through a (here empty) configuration database. */
        CONF *conf = NCONF_new(NULL);
        if (conf == NULL)
            cf_die("out of memory");
        X509V3_set_nconf(&ctx, conf);
        for (size_t i = 0; spec->extensions[i] != NULL; i++) {
            const char *eq = strchr(spec->extensions[i], '=');
            X509_EXTENSION *ext;
            char sn[64];
            int nid;
            if (eq == NULL || (size_t)(eq - spec->extensions[i]) >= sizeof(sn))
                cf_die("an extension is \"shortName=value\"");
            memcpy(sn, spec->extensions[i], (size_t)(eq - spec->extensions[i]));
            sn[eq - spec->extensions[i]] = '\0';
            if ((nid = OBJ_sn2nid(sn)) == NID_undef)
                cf_die("unknown extension short name");
            ext = X509V3_EXT_nconf_nid(conf, &ctx, nid, eq + 1);
            if (ext == NULL) {
                fprintf(stderr, "certfactory: bad value for %s: %s\n", sn, eq + 1);
                cf_die("cannot make extension");
            }
            if (!X509_add_ext(x, ext, -1))
                cf_die("cannot add extension");
            X509_EXTENSION_free(ext);
        }
        X509V3_set_ctx_nodb(&ctx);
        NCONF_free(conf);
    }
    if (spec->crl_issuer_dp != NULL) {
        CRL_DIST_POINTS *cdp = sk_DIST_POINT_new_null();
        DIST_POINT *dp = DIST_POINT_new();
        GENERAL_NAME *gn = GENERAL_NAME_new();
        if (cdp == NULL || dp == NULL || gn == NULL ||
            (dp->CRLissuer = GENERAL_NAMES_new()) == NULL)
            cf_die("cannot make a distribution point");
        gn->type = GEN_DIRNAME;
        if ((gn->d.directoryName = X509_NAME_dup(spec->crl_issuer_dp)) == NULL ||
            !sk_GENERAL_NAME_push(dp->CRLissuer, gn))
            cf_die("cannot make a cRLIssuer");
        if (spec->crl_issuer_dp_uri != NULL) {
            GENERAL_NAME *u = GENERAL_NAME_new();
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            if (u == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, spec->crl_issuer_dp_uri, -1) ||
                (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
                (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
                cf_die("cannot make a distributionPoint");
            dp->distpoint->type = 0;
            GENERAL_NAME_set0_value(u, GEN_URI, ia5);
            if (!sk_GENERAL_NAME_push(dp->distpoint->name.fullname, u))
                cf_die("cannot make a distributionPoint");
        }
        if (!sk_DIST_POINT_push(cdp, dp) ||
            !X509_add1_ext_i2d(x, NID_crl_distribution_points, cdp, 0, 0))
            cf_die("cannot add crlDistributionPoints");
        sk_DIST_POINT_pop_free(cdp, DIST_POINT_free);
    } else if (spec->crl_dp != NULL) {
        cf_add_ext(x, &ctx, NID_crl_distribution_points, spec->crl_dp);
    }
    /* SKI before AKI: a self-signed certificate's AKI copies its own SKI. */
    cf_add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (!spec->no_aki)
        cf_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    for (const struct cf_raw_ext *r = spec->raw_exts; r != NULL && r->oid != NULL; r++)
        cf_add_raw_ext(x, r);
    if (X509_sign(x, signer, cf_md(signer, spec->digest)) <= 0)
        cf_die("cannot sign certificate");
    return x;
}

/*
 * Make a CRL from spec: version 2, the issuer's subject, lastUpdate,
 * nextUpdate (unless left out), cRLNumber (critical on request), an
 * issuingDistributionPoint and deltaCRLIndicator when asked,
 * authorityKeyIdentifier and the revoked entries with their reasons.  The
 * result is owned by the caller.
 */
X509_CRL *
cf_crl_new(const struct cf_crl_spec *spec)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    time_t now = time(NULL);
    int64_t lu = spec->last_update;
    int64_t nu = spec->next_update;
    bool keep_order = false;

    if (crl == NULL || t == NULL || num == NULL || spec->issuer == NULL || spec->issuer_key == NULL)
        cf_die("cannot start CRL");
    if (lu == 0 && nu == 0) {
        lu = -3600;
        nu = 7 * CF_DAY;
    }
    if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(spec->issuer)))
        cf_die("cannot set CRL version or issuer");
    cf_set_time(t, now, lu);
    if (!X509_CRL_set1_lastUpdate(crl, t))
        cf_die("cannot set lastUpdate");
    if (!spec->no_next_update) {
        cf_set_time(t, now, nu);
        if (!X509_CRL_set1_nextUpdate(crl, t))
            cf_die("cannot set nextUpdate");
    }
    for (size_t i = 0; i < spec->nrevoked; i++) {
        const struct cf_revoked *r = &spec->revoked[i];
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_INTEGER *serial = ASN1_INTEGER_new();

        if (rev == NULL || serial == NULL || !ASN1_INTEGER_set_uint64(serial, r->serial) ||
            !X509_REVOKED_set_serialNumber(rev, serial))
            cf_die("cannot make revoked entry");
        ASN1_INTEGER_free(serial);
        cf_set_time(t, now, r->when != 0 ? r->when : -3600);
        if (!X509_REVOKED_set_revocationDate(rev, t))
            cf_die("cannot set revocation date");
        if (r->reason != CF_NO_REASON) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            if (e == NULL || !ASN1_ENUMERATED_set(e, r->reason) ||
                !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0))
                cf_die("cannot set revocation reason");
            ASN1_ENUMERATED_free(e);
        }
        if (r->cert_issuer != NULL) {
            GENERAL_NAMES *ci = GENERAL_NAMES_new();
            GENERAL_NAME *g = GENERAL_NAME_new();
            if (ci == NULL || g == NULL ||
                (g->d.directoryName = X509_NAME_dup(r->cert_issuer)) == NULL)
                cf_die("cannot make certificateIssuer");
            g->type = GEN_DIRNAME;
            if (!sk_GENERAL_NAME_push(ci, g) ||
                !X509_REVOKED_add1_ext_i2d(rev, NID_certificate_issuer, ci, !r->ci_noncritical,
                                           0))
                cf_die("cannot set certificateIssuer");
            GENERAL_NAMES_free(ci);
            keep_order = true;
        }
        if (!X509_CRL_add0_revoked(crl, rev))
            cf_die("cannot add revoked entry");
    }
    if (!ASN1_INTEGER_set_uint64(num, spec->number != 0 ? spec->number : 1) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, spec->number_critical, 0))
        cf_die("cannot set cRLNumber");
    X509V3_set_ctx(&ctx, spec->issuer, NULL, NULL, crl, 0);
    X509V3_set_ctx_nodb(&ctx);
    if (spec->delta_base != 0) {
        ASN1_INTEGER *base = ASN1_INTEGER_new();
        if (base == NULL || !ASN1_INTEGER_set_uint64(base, spec->delta_base) ||
            !X509_CRL_add1_ext_i2d(crl, NID_delta_crl, base, 1, 0))
            cf_die("cannot set deltaCRLIndicator");
        ASN1_INTEGER_free(base);
    }
    if (spec->idp != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_issuing_distribution_point, spec->idp);
        if (ext == NULL || !X509_CRL_add_ext(crl, ext, -1)) {
            fprintf(stderr, "certfactory: bad issuingDistributionPoint: %s\n", spec->idp);
            cf_die("cannot add CRL issuingDistributionPoint");
        }
        X509_EXTENSION_free(ext);
    }
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (ext == NULL || !X509_CRL_add_ext(crl, ext, -1))
        cf_die("cannot add CRL authorityKeyIdentifier");
    X509_EXTENSION_free(ext);
    /* certificateIssuer carries over to the entries after it: their order is their meaning. */
    if ((!keep_order && !X509_CRL_sort(crl)) ||
        X509_CRL_sign(crl, spec->issuer_key, cf_md(spec->issuer_key, spec->digest)) <= 0)
        cf_die("cannot sign CRL");
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    return crl;
}

/* Collect up-referenced certificates of a NULL-terminated list into a new stack. */
STACK_OF(X509) * cf_certs(X509 *first, ...)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    va_list ap;

    if (sk == NULL)
        cf_die("out of memory");
    va_start(ap, first);
    for (X509 *x = first; x != NULL; x = va_arg(ap, X509 *)) {
        if (!X509_up_ref(x) || !sk_X509_push(sk, x))
            cf_die("cannot push certificate");
    }
    va_end(ap);
    return sk;
}

/* Collect up-referenced CRLs of a NULL-terminated list into a new stack. */
STACK_OF(X509_CRL) * cf_crls(X509_CRL *first, ...)
{
    STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
    va_list ap;

    if (sk == NULL)
        cf_die("out of memory");
    va_start(ap, first);
    for (X509_CRL *c = first; c != NULL; c = va_arg(ap, X509_CRL *)) {
        if (!X509_CRL_up_ref(c) || !sk_X509_CRL_push(sk, c))
            cf_die("cannot push CRL");
    }
    va_end(ap);
    return sk;
}

/* Free a stack of CRLs with its CRLs. */
void
cf_crls_free(STACK_OF(X509_CRL) * crls)
{
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
}

/* A trust store of the certificates of a NULL-terminated list; caller frees. */
X509_STORE *
cf_store(X509 *first, ...)
{
    X509_STORE *st = X509_STORE_new();
    va_list ap;

    if (st == NULL)
        cf_die("out of memory");
    va_start(ap, first);
    for (X509 *x = first; x != NULL; x = va_arg(ap, X509 *)) {
        if (!X509_STORE_add_cert(st, x))
            cf_die("cannot add certificate to store");
    }
    va_end(ap);
    return st;
}

/* Copy a memory BIO into a NUL-terminated malloc'd buffer and free the BIO. */
static uint8_t *
cf_bio_take(BIO *bio, size_t *len)
{
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    uint8_t *out;

    if (n < 0)
        cf_die("cannot read memory BIO");
    out = cf_alloc((size_t)n + 1);
    memcpy(out, mem, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* A new memory BIO, or abort. */
static BIO *
cf_mem_bio(void)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL)
        cf_die("out of memory");
    return bio;
}

/* A certificate as PEM. */
uint8_t *
cf_cert_pem(X509 *cert, size_t *len)
{
    BIO *bio = cf_mem_bio();

    if (!PEM_write_bio_X509(bio, cert))
        cf_die("cannot write certificate PEM");
    return cf_bio_take(bio, len);
}

/* Copy OpenSSL-allocated DER into a malloc'd buffer. */
static uint8_t *
cf_der_take(unsigned char *der, int n, size_t *len)
{
    uint8_t *out;

    if (n <= 0)
        cf_die("cannot encode DER");
    out = cf_alloc((size_t)n);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

/* A certificate as DER. */
uint8_t *
cf_cert_der(X509 *cert, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);

    return cf_der_take(der, n, len);
}

/* A CRL as PEM. */
uint8_t *
cf_crl_pem(X509_CRL *crl, size_t *len)
{
    BIO *bio = cf_mem_bio();

    if (!PEM_write_bio_X509_CRL(bio, crl))
        cf_die("cannot write CRL PEM");
    return cf_bio_take(bio, len);
}

/* A CRL as DER. */
uint8_t *
cf_crl_der(X509_CRL *crl, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);

    return cf_der_take(der, n, len);
}

/* A private key as unencrypted PKCS#8 PEM ("PRIVATE KEY"). */
uint8_t *
cf_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO *bio = cf_mem_bio();

    if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        cf_die("cannot write key PEM");
    return cf_bio_take(bio, len);
}

/* A private key as DER in its type's traditional form (SEC1 for EC, PKCS#1 for RSA). */
uint8_t *
cf_key_der(EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(key, &der);

    return cf_der_take(der, n, len);
}

/* Make a fresh private directory for a test; the caller removes it with cf_tmpdir_remove(). */
char *
cf_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    dir = cf_alloc(strlen(base) + sizeof("/duet-test-XXXXXX"));
    sprintf(dir, "%s/duet-test-XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        cf_die("mkdtemp failed");
    return dir;
}

/* nftw callback: remove one entry (files before their directory, FTW_DEPTH). */
static int
cf_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove dir recursively (without following symlinks) and free the string. */
void
cf_tmpdir_remove(char *dir)
{
    if (dir == NULL)
        return;
    if (nftw(dir, cf_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "certfactory: cannot remove %s\n", dir);
    free(dir);
}

/* Join a directory and a file name. */
char *
cf_path(const char *dir, const char *name)
{
    char *p = cf_alloc(strlen(dir) + strlen(name) + 2);

    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Write bytes to a file, replacing it. */
void
cf_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        cf_die("cannot create file");
    if ((len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        cf_die("cannot write file");
}

/* Write certificates as PEM to path, in list order. */
void
cf_write_certs(const char *path, X509 *first, ...)
{
    BIO *bio = BIO_new_file(path, "w");
    va_list ap;

    if (bio == NULL)
        cf_die("cannot create certificate file");
    va_start(ap, first);
    for (X509 *x = first; x != NULL; x = va_arg(ap, X509 *)) {
        if (!PEM_write_bio_X509(bio, x))
            cf_die("cannot write certificate");
    }
    va_end(ap);
    BIO_free(bio);
}

/* Write CRLs as PEM to path, in list order. */
void
cf_write_crls(const char *path, X509_CRL *first, ...)
{
    BIO *bio = BIO_new_file(path, "w");
    va_list ap;

    if (bio == NULL)
        cf_die("cannot create CRL file");
    va_start(ap, first);
    for (X509_CRL *c = first; c != NULL; c = va_arg(ap, X509_CRL *)) {
        if (!PEM_write_bio_X509_CRL(bio, c))
            cf_die("cannot write CRL");
    }
    va_end(ap);
    BIO_free(bio);
}

/* Write a private key as unencrypted PKCS#8 PEM. */
void
cf_write_key(const char *path, EVP_PKEY *key)
{
    size_t len = 0;
    uint8_t *pem = cf_key_pem(key, &len);

    cf_write_file(path, pem, len);
    free(pem);
}

/* Read a whole file; NULL when it cannot be opened or read. */
uint8_t *
cf_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t n = 0;
    size_t got;

    *len = 0;
    if (f == NULL)
        return NULL;
    do {
        if (cap - n < 4096) {
            cap = cap * 2 + 4096;
            uint8_t *nb = realloc(buf, cap + 1);
            if (nb == NULL)
                cf_die("out of memory");
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A revocation set from CRLs; see certfactory.h. */
struct revset *
cf_revset(STACK_OF(X509_CRL) * crls)
{
    struct revset *rs = revset_new();
    struct duet_err err;

    if (rs == NULL)
        cf_die("out of memory");
    for (int i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++) {
        unsigned char *der = NULL;
        int len = i2d_X509_CRL(sk_X509_CRL_value(crls, i), &der);
        if (len <= 0)
            cf_die("cannot encode a CRL");
        err_clear(&err);
        if (revset_add_mem(rs, "test CRL", der, (size_t)len, &err) != 0) {
            fprintf(stderr, "certfactory: %s\n", err.msg);
            abort();
        }
        OPENSSL_free(der);
    }
    return rs;
}
