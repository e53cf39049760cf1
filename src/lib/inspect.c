/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inspect.c - the JSON model of certificates, CSRs, CRLs and keys shown by
 * `duet cert inspect`.
 *
 * Every field comes from the parsed object, never from OpenSSL's text dump,
 * so the JSON is stable for scripts.  Extensions follow RFC 5280 section
 * 4.2; absent extensions are JSON null, empty lists are [].
 */
#include "lib/inspect.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/x509util.h"

/* Take ownership of a malloc'd string into a JSON string (null when NULL). */
static json_t *
jstr_take(char *s)
{
    json_t *j = s != NULL ? json_string(s) : json_null();

    free(s);
    return j != NULL ? j : json_null();
}

static json_t *
jtime(const ASN1_TIME *t)
{
    int64_t v;
    char buf[32];

    if (t == NULL || !x509u_time(t, &v))
        return json_null();
    x509u_fmt_rfc3339(v, buf, sizeof(buf));
    return json_string(buf);
}

/*
 * "TAG:" and the bytes of a name as a JSON string.  The bytes are kept whole
 * when they are UTF-8 without a NUL; otherwise every byte outside visible
 * ASCII is written as \xNN, so a name is never cut short (a NUL) nor dropped
 * (invalid UTF-8 makes json_string fail) and the model hides nothing.
 */
static json_t *
tagged_bytes(const char *tag, const unsigned char *d, size_t n)
{
    size_t tl = strlen(tag), o = tl + 1;
    char *s = malloc(tl + 2 + 4 * n);
    json_t *j = NULL;

    if (s == NULL)
        return json_null();
    memcpy(s, tag, tl);
    s[tl] = ':';
    memcpy(s + o, d, n);
    if (memchr(d, 0, n) == NULL)
        j = json_stringn(s, o + n);
    if (j == NULL) {
        for (size_t i = 0; i < n; i++) {
            if (d[i] >= 0x20 && d[i] < 0x7f) {
                s[o++] = (char)d[i];
            } else {
                snprintf(s + o, 5, "\\x%02x", d[i]);
                o += 4;
            }
        }
        j = json_stringn(s, o);
    }
    free(s);
    return j != NULL ? j : json_null();
}

/* One GeneralName as a JSON string; see x509u_general_name() for the other types. */
static json_t *
general_name(const GENERAL_NAME *g)
{
    char buf[600];
    json_t *j;

    if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL)
        return tagged_bytes(g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email",
                            ASN1_STRING_get0_data(g->d.ia5), (size_t)ASN1_STRING_length(g->d.ia5));
    x509u_general_name(g, buf, sizeof(buf));
    j = json_string(buf);
    return j != NULL ? j : tagged_bytes("name", (const unsigned char *)buf, strlen(buf));
}

static json_t *
general_names(const GENERAL_NAMES *gens)
{
    json_t *arr = json_array();

    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++)
        json_array_append_new(arr, general_name(sk_GENERAL_NAME_value(gens, i)));
    return arr;
}

/* Whether the extension with nid is marked critical in the list. */
static bool
ext_critical(const STACK_OF(X509_EXTENSION) *exts, int nid)
{
    int idx = X509v3_get_ext_by_NID(exts, nid, -1);

    return idx >= 0 && X509_EXTENSION_get_critical(X509v3_get_ext(exts, idx));
}

static json_t *
key_usage(const STACK_OF(X509_EXTENSION) *exts)
{
    static const struct {
        int bit;
        const char *name;
    } bits[] = {{0, "digitalSignature"}, {1, "contentCommitment"}, {2, "keyEncipherment"},
                {3, "dataEncipherment"}, {4, "keyAgreement"},      {5, "keyCertSign"},
                {6, "cRLSign"},          {7, "encipherOnly"},      {8, "decipherOnly"}};
    ASN1_BIT_STRING *ku = X509V3_get_d2i(exts, NID_key_usage, NULL, NULL);
    json_t *vals;

    if (ku == NULL)
        return json_null();
    vals = json_array();
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (ASN1_BIT_STRING_get_bit(ku, bits[i].bit))
            json_array_append_new(vals, json_string(bits[i].name));
    }
    ASN1_BIT_STRING_free(ku);
    return json_pack("{s:b,s:o}", "critical", ext_critical(exts, NID_key_usage), "values", vals);
}

static json_t *
ext_key_usage(const STACK_OF(X509_EXTENSION) *exts)
{
    EXTENDED_KEY_USAGE *eku = X509V3_get_d2i(exts, NID_ext_key_usage, NULL, NULL);
    json_t *vals;

    if (eku == NULL)
        return json_null();
    vals = json_array();
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
        int nid = OBJ_obj2nid(o);
        char oid[128];
        if (nid != NID_undef) {
            json_array_append_new(vals, json_string(OBJ_nid2sn(nid)));
        } else {
            OBJ_obj2txt(oid, sizeof(oid), o, 1);
            json_array_append_new(vals, json_string(oid));
        }
    }
    EXTENDED_KEY_USAGE_free(eku);
    return json_pack("{s:b,s:o}", "critical", ext_critical(exts, NID_ext_key_usage), "values",
                     vals);
}

static json_t *
basic_constraints(const STACK_OF(X509_EXTENSION) *exts)
{
    BASIC_CONSTRAINTS *bc = X509V3_get_d2i(exts, NID_basic_constraints, NULL, NULL);
    json_t *j;

    if (bc == NULL)
        return json_null();
    j = json_pack("{s:b,s:b,s:o}", "critical", ext_critical(exts, NID_basic_constraints), "ca",
                  bc->ca != 0, "path_len",
                  bc->pathlen != NULL ? json_integer(ASN1_INTEGER_get(bc->pathlen)) : json_null());
    BASIC_CONSTRAINTS_free(bc);
    return j;
}

static json_t *
subtrees(const STACK_OF(GENERAL_SUBTREE) *st)
{
    json_t *arr = json_array();

    for (int i = 0; st != NULL && i < sk_GENERAL_SUBTREE_num(st); i++)
        json_array_append_new(arr, general_name(sk_GENERAL_SUBTREE_value(st, i)->base));
    return arr;
}

static json_t *
name_constraints(const STACK_OF(X509_EXTENSION) *exts)
{
    NAME_CONSTRAINTS *nc = X509V3_get_d2i(exts, NID_name_constraints, NULL, NULL);
    json_t *j;

    if (nc == NULL)
        return json_null();
    j = json_pack("{s:b,s:o,s:o}", "critical", ext_critical(exts, NID_name_constraints),
                  "permitted", subtrees(nc->permittedSubtrees), "excluded",
                  subtrees(nc->excludedSubtrees));
    NAME_CONSTRAINTS_free(nc);
    return j;
}

static json_t *
sans(const STACK_OF(X509_EXTENSION) *exts)
{
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    json_t *arr = general_names(gens);

    GENERAL_NAMES_free(gens);
    return arr;
}

static json_t *
crl_dps(const STACK_OF(X509_EXTENSION) *exts)
{
    CRL_DIST_POINTS *dps = X509V3_get_d2i(exts, NID_crl_distribution_points, NULL, NULL);
    json_t *arr = json_array();

    for (int i = 0; dps != NULL && i < sk_DIST_POINT_num(dps); i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
        if (dp->distpoint == NULL || dp->distpoint->type != 0)
            continue;
        GENERAL_NAMES *gens = dp->distpoint->name.fullname;
        for (int k = 0; k < sk_GENERAL_NAME_num(gens); k++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
            if (g->type == GEN_URI)
                json_array_append_new(
                    arr, json_stringn((const char *)ASN1_STRING_get0_data(g->d.ia5),
                                      (size_t)ASN1_STRING_length(g->d.ia5)));
            else
                json_array_append_new(arr, general_name(g));
        }
    }
    CRL_DIST_POINTS_free(dps);
    return arr;
}

/* Authority Information Access URIs for one method (OCSP or caIssuers). */
static json_t *
aia(const STACK_OF(X509_EXTENSION) *exts, int method)
{
    AUTHORITY_INFO_ACCESS *info = X509V3_get_d2i(exts, NID_info_access, NULL, NULL);
    json_t *arr = json_array();

    for (int i = 0; info != NULL && i < sk_ACCESS_DESCRIPTION_num(info); i++) {
        ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(info, i);
        if (OBJ_obj2nid(ad->method) != method)
            continue;
        if (ad->location->type == GEN_URI)
            json_array_append_new(
                arr, json_stringn((const char *)ASN1_STRING_get0_data(ad->location->d.ia5),
                                  (size_t)ASN1_STRING_length(ad->location->d.ia5)));
        else
            json_array_append_new(arr, general_name(ad->location));
    }
    AUTHORITY_INFO_ACCESS_free(info);
    return arr;
}

static json_t *
key_json(const EVP_PKEY *pk)
{
    char desc[96];
    int bits = 0;

    if (pk == NULL)
        return json_null();
    x509u_key_describe(pk, desc, sizeof(desc), &bits);
    return json_pack("{s:s,s:s,s:i}", "type", EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "?",
                     "description", desc, "bits", bits);
}

static json_t *
sig_alg_json(int nid)
{
    return json_string(nid != NID_undef ? OBJ_nid2ln(nid) : "unknown");
}

/* A certificate as JSON; see inspect.h. */
json_t *
inspect_cert(X509 *cert, int64_t now)
{
    const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(cert);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cert);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert);
    int64_t nb = 0, na = 0;
    bool have_nb = x509u_time(X509_get0_notBefore(cert), &nb);
    bool have_na = x509u_time(X509_get0_notAfter(cert), &na);
    json_t *j;

    /* Populates the cached extension flags used by X509_check_issued. */
    (void)X509_get_extension_flags(cert);
    j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "type", json_string("certificate"));
    json_object_set_new(j, "subject", jstr_take(x509u_name(X509_get_subject_name(cert))));
    json_object_set_new(j, "issuer", jstr_take(x509u_name(X509_get_issuer_name(cert))));
    json_object_set_new(j, "serial", jstr_take(x509u_serial(X509_get0_serialNumber(cert))));
    json_object_set_new(j, "version", json_integer(X509_get_version(cert) + 1));
    json_object_set_new(j, "not_before", jtime(X509_get0_notBefore(cert)));
    json_object_set_new(j, "not_after", jtime(X509_get0_notAfter(cert)));
    json_object_set_new(j, "days_left",
                        have_na ? json_integer((json_int_t)((na - now) / 86400)) : json_null());
    json_object_set_new(j, "expired", json_boolean(have_na && na < now));
    json_object_set_new(j, "not_yet_valid", json_boolean(have_nb && nb > now));
    json_object_set_new(j, "key", key_json(X509_get0_pubkey(cert)));
    json_object_set_new(j, "signature_algorithm", sig_alg_json(X509_get_signature_nid(cert)));
    json_object_set_new(j, "self_signed", json_boolean(X509_self_signed(cert, 0) == 1));
    json_object_set_new(j, "sans", sans(exts));
    json_object_set_new(j, "key_usage", key_usage(exts));
    json_object_set_new(j, "extended_key_usage", ext_key_usage(exts));
    json_object_set_new(j, "basic_constraints", basic_constraints(exts));
    json_object_set_new(j, "name_constraints", name_constraints(exts));
    json_object_set_new(j, "crl_distribution_points", crl_dps(exts));
    json_object_set_new(j, "ocsp", aia(exts, NID_ad_OCSP));
    json_object_set_new(j, "ca_issuers", aia(exts, NID_ad_ca_issuers));
    json_object_set_new(j, "subject_key_id",
                        skid != NULL ? jstr_take(x509u_hex_colon(ASN1_STRING_get0_data(skid),
                                                                 (size_t)ASN1_STRING_length(skid)))
                                     : json_null());
    json_object_set_new(j, "authority_key_id",
                        akid != NULL ? jstr_take(x509u_hex_colon(ASN1_STRING_get0_data(akid),
                                                                 (size_t)ASN1_STRING_length(akid)))
                                     : json_null());
    json_object_set_new(j, "fingerprint_sha256", jstr_take(x509u_fingerprint(cert)));
    json_object_set_new(j, "spki_sha256",
                        X509_get0_pubkey(cert) != NULL
                            ? jstr_take(x509u_spki_fingerprint(X509_get0_pubkey(cert)))
                            : json_null());
    ERR_clear_error();
    return j;
}

/* A certificate request as JSON; see inspect.h. */
json_t *
inspect_csr(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    json_t *j = json_object();

    if (j == NULL) {
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return NULL;
    }
    json_object_set_new(j, "type", json_string("csr"));
    json_object_set_new(j, "subject", jstr_take(x509u_name(X509_REQ_get_subject_name(req))));
    json_object_set_new(j, "key", key_json(pk));
    json_object_set_new(j, "signature_algorithm", sig_alg_json(X509_REQ_get_signature_nid(req)));
    json_object_set_new(j, "signature_valid",
                        json_boolean(pk != NULL && X509_REQ_verify(req, pk) == 1));
    json_object_set_new(j, "sans", sans(exts));
    json_object_set_new(j, "key_usage", key_usage(exts));
    json_object_set_new(j, "extended_key_usage", ext_key_usage(exts));
    json_object_set_new(j, "basic_constraints", basic_constraints(exts));
    json_object_set_new(j, "spki_sha256",
                        pk != NULL ? jstr_take(x509u_spki_fingerprint(pk)) : json_null());
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return j;
}

/* An ASN.1 INTEGER in decimal, as CRL numbers are usually shown; NULL on OOM. */
static char *
integer_decimal(const ASN1_INTEGER *v)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(v, NULL);
    char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;
    char *s = dec != NULL ? strdup(dec) : NULL;

    OPENSSL_free(dec);
    BN_free(bn);
    return s;
}

/* A CRL as JSON; see inspect.h. */
json_t *
inspect_crl(X509_CRL *crl, int64_t now)
{
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    int64_t nu = 0;
    json_t *arr = json_array();
    json_t *j = json_object();

    if (j == NULL || arr == NULL) {
        json_decref(j);
        json_decref(arr);
        ASN1_INTEGER_free(num);
        return NULL;
    }
    for (int i = 0; revs != NULL && i < sk_X509_REVOKED_num(revs); i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
        json_array_append_new(
            arr, json_pack("{s:o,s:o,s:o}", "serial",
                           jstr_take(x509u_serial(X509_REVOKED_get0_serialNumber(r))),
                           "revocation_date", jtime(X509_REVOKED_get0_revocationDate(r)),
                           "reason",
                           reason != NULL ? json_string(x509u_crl_reason(ASN1_ENUMERATED_get(reason)))
                                          : json_null()));
        ASN1_ENUMERATED_free(reason);
    }
    json_object_set_new(j, "type", json_string("crl"));
    json_object_set_new(j, "issuer", jstr_take(x509u_name(X509_CRL_get_issuer(crl))));
    json_object_set_new(j, "version", json_integer(X509_CRL_get_version(crl) + 1));
    json_object_set_new(j, "this_update", jtime(X509_CRL_get0_lastUpdate(crl)));
    json_object_set_new(j, "next_update", jtime(next));
    json_object_set_new(j, "expired", json_boolean(next != NULL && x509u_time(next, &nu) && nu < now));
    json_object_set_new(j, "crl_number", num != NULL ? jstr_take(integer_decimal(num)) : json_null());
    json_object_set_new(j, "signature_algorithm", sig_alg_json(X509_CRL_get_signature_nid(crl)));
    json_object_set_new(j, "revoked_count", json_integer((json_int_t)json_array_size(arr)));
    json_object_set_new(j, "revoked", arr);
    ASN1_INTEGER_free(num);
    ERR_clear_error();
    return j;
}

/* A private key as JSON: never the key material. */
json_t *
inspect_key(EVP_PKEY *key, bool encrypted)
{
    return json_pack("{s:s,s:o,s:b,s:o}", "type", "private_key", "key", key_json(key), "encrypted",
                     encrypted, "spki_sha256", jstr_take(x509u_spki_fingerprint(key)));
}

/* Everything a file held; see inspect.h. */
json_t *
inspect_bundle(const char *path, const struct load_bundle *b, int64_t now)
{
    json_t *objs = json_array();
    int ncert = b->certs != NULL ? sk_X509_num(b->certs) : 0;

    if (objs == NULL)
        return NULL;
    for (int i = 0; i < ncert; i++) {
        X509 *c = sk_X509_value(b->certs, i);
        json_t *o = inspect_cert(c, now);
        if (o == NULL)
            continue;
        if (i + 1 < ncert) {
            X509 *next = sk_X509_value(b->certs, i + 1);
            EVP_PKEY *npk = X509_get0_pubkey(next);
            bool ok = X509_check_issued(next, c) == X509_V_OK && npk != NULL &&
                      X509_verify(c, npk) == 1;
            json_object_set_new(o, "signed_by_next", json_boolean(ok));
        }
        if (b->key != NULL && X509_check_private_key(c, b->key) == 1)
            json_object_set_new(o, "matches_private_key", json_true());
        json_array_append_new(objs, o);
    }
    for (int i = 0; b->csrs != NULL && i < sk_X509_REQ_num(b->csrs); i++)
        json_array_append_new(objs, inspect_csr(sk_X509_REQ_value(b->csrs, i)));
    for (int i = 0; b->crls != NULL && i < sk_X509_CRL_num(b->crls); i++)
        json_array_append_new(objs, inspect_crl(sk_X509_CRL_value(b->crls, i), now));
    if (b->key != NULL)
        json_array_append_new(objs, inspect_key(b->key, b->key_encrypted));
    ERR_clear_error();
    return json_pack("{s:s,s:s,s:o}", "file", path, "format", load_format_name(b->format),
                     "objects", objs);
}
