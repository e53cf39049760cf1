/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inspect_test.c - the JSON model behind `duet cert inspect`: every field a
 * script may rely on, for certificates, chains, CSRs, CRLs and keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "lib/inspect.h"
#include "lib/x509util.h"
#include "testlib/certfactory.h"

struct pki {
    EVP_PKEY *root_key, *int_key, *leaf_key, *other_key;
    X509 *root, *inter, *leaf, *other;
};

static int
setup(void **state)
{
    static const char *const nc[] = {"permitted;DNS:.corp", "excluded;DNS:bad.corp", NULL};
    static const char *const sans[] = {"DNS:alice.corp", "IP:127.0.0.1",
                                       "URI:spiffe://corp/alice", "email:alice@corp", NULL};
    struct pki *p = calloc(1, sizeof(*p));

    p->root_key = cf_key_new(CF_KEY_EC_P256);
    p->int_key = cf_key_new(CF_KEY_EC_P384);
    p->leaf_key = cf_key_new(CF_KEY_EC_P256);
    p->other_key = cf_key_new(CF_KEY_RSA_2048);
    p->root = cf_cert_new(&(struct cf_cert_spec){.cn = "Root", .key = p->root_key, .bc = CF_BC_CA});
    p->inter = cf_cert_new(&(struct cf_cert_spec){.cn = "Issuing",
                                                  .o = "Corp",
                                                  .key = p->int_key,
                                                  .issuer = p->root,
                                                  .issuer_key = p->root_key,
                                                  .bc = CF_BC_CA,
                                                  .has_pathlen = true,
                                                  .pathlen = 0,
                                                  .name_constraints = nc});
    p->leaf = cf_cert_new(&(struct cf_cert_spec){.cn = "alice",
                                                 .key = p->leaf_key,
                                                 .issuer = p->inter,
                                                 .issuer_key = p->int_key,
                                                 .bc = CF_BC_LEAF,
                                                 .eku = CF_EKU_CLIENT | CF_EKU_SERVER,
                                                 .serial = 0x3fa1,
                                                 .sans = sans});
    p->other = cf_cert_new(&(struct cf_cert_spec){.cn = "Other", .key = p->other_key,
                                                  .bc = CF_BC_CA});
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    struct pki *p = *state;

    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf);
    X509_free(p->other);
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->int_key);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->other_key);
    free(p);
    return 0;
}

static const char *
jget(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void
test_leaf_fields(void **state)
{
    struct pki *p = *state;
    int64_t now = (int64_t)time(NULL);
    json_t *j = inspect_cert(p->leaf, now);
    char *fp = x509u_fingerprint(p->leaf);
    json_t *sans = json_object_get(j, "sans");
    json_t *eku = json_object_get(j, "extended_key_usage");
    json_t *ku = json_object_get(j, "key_usage");
    json_t *bc = json_object_get(j, "basic_constraints");

    assert_non_null(j);
    assert_string_equal(jget(j, "type"), "certificate");
    assert_string_equal(jget(j, "subject"), "CN=alice");
    assert_string_equal(jget(j, "issuer"), "CN=Issuing,O=Corp");
    assert_string_equal(jget(j, "serial"), "3F:A1");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    assert_string_equal(jget(json_object_get(j, "key"), "description"), "EC P-256");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "key"), "bits")), 256);
    /* Valid for about a year from now: 364 or 365 whole days left. */
    assert_in_range(json_integer_value(json_object_get(j, "days_left")), 364, 365);
    assert_true(json_is_false(json_object_get(j, "expired")));
    assert_true(json_is_false(json_object_get(j, "self_signed")));
    assert_int_equal(json_array_size(sans), 4);
    assert_string_equal(json_string_value(json_array_get(sans, 0)), "DNS:alice.corp");
    assert_string_equal(json_string_value(json_array_get(sans, 1)), "IP:127.0.0.1");
    assert_string_equal(json_string_value(json_array_get(sans, 2)), "URI:spiffe://corp/alice");
    assert_string_equal(json_string_value(json_array_get(sans, 3)), "email:alice@corp");
    assert_int_equal(json_array_size(json_object_get(eku, "values")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ku, "values"), 0)),
                        "digitalSignature");
    assert_true(json_is_object(bc));
    assert_true(json_is_false(json_object_get(bc, "ca")));
    assert_true(json_is_null(json_object_get(j, "name_constraints")));
    assert_string_equal(jget(j, "fingerprint_sha256"), fp);
    assert_true(json_is_string(json_object_get(j, "subject_key_id")));
    assert_true(json_is_string(json_object_get(j, "authority_key_id")));
    assert_string_equal(jget(j, "signature_algorithm"), "ecdsa-with-SHA256");
    free(fp);
    json_decref(j);
}

/*
 * Names holding a NUL, CR LF or bytes that are not UTF-8 (issue 9 item 11):
 * the model keeps every name, whole; what JSON cannot hold is escaped \xNN.
 */
static void
test_sans_with_hostile_bytes(void **state)
{
    struct pki *p = *state;
    X509 *x = cf_cert_new(&(struct cf_cert_spec){.cn = "evil", .key = p->leaf_key});
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    static const struct {
        int type;
        const char *bytes;
        size_t len;
        const char *want;
    } names[] = {
        {GEN_DNS, "a\0.evil", 7, "DNS:a\\x00.evil"},
        {GEN_URI, "spiffe://x/\xff\xfe", 13, "URI:spiffe://x/\\xff\\xfe"},
        {GEN_URI, "spiffe://x/y\r\nIP:1.2.3.4", 24, "URI:spiffe://x/y\r\nIP:1.2.3.4"},
    };
    json_t *j, *sans;

    (void)state;
    assert_non_null(x);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *a = ASN1_IA5STRING_new();
        assert_true(ASN1_STRING_set(a, names[i].bytes, (int)names[i].len));
        GENERAL_NAME_set0_value(g, names[i].type, a);
        assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
    j = inspect_cert(x, (int64_t)time(NULL));
    sans = json_object_get(j, "sans");
    assert_int_equal(json_array_size(sans), 3);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(json_string_value(json_array_get(sans, i)), names[i].want);
    json_decref(j);
    GENERAL_NAMES_free(gens);
    X509_free(x);
}

static void
test_ca_constraints(void **state)
{
    struct pki *p = *state;
    json_t *j = inspect_cert(p->inter, (int64_t)time(NULL));
    json_t *bc = json_object_get(j, "basic_constraints");
    json_t *nc = json_object_get(j, "name_constraints");

    assert_true(json_is_true(json_object_get(bc, "ca")));
    assert_true(json_is_true(json_object_get(bc, "critical")));
    assert_int_equal(json_integer_value(json_object_get(bc, "path_len")), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(nc, "permitted"), 0)),
                        "DNS:.corp");
    assert_string_equal(json_string_value(json_array_get(json_object_get(nc, "excluded"), 0)),
                        "DNS:bad.corp");
    assert_string_equal(jget(json_object_get(j, "key"), "description"), "EC P-384");
    json_decref(j);

    j = inspect_cert(p->root, (int64_t)time(NULL));
    assert_true(json_is_true(json_object_get(j, "self_signed")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "basic_constraints"),
                                             "path_len")));
    json_decref(j);
}

static void
test_expired_days(void **state)
{
    struct pki *p = *state;
    /* Ten days after notAfter. */
    int64_t na;
    json_t *j;

    assert_true(x509u_time(X509_get0_notAfter(p->leaf), &na));
    j = inspect_cert(p->leaf, na + 10 * 86400);
    assert_true(json_is_true(json_object_get(j, "expired")));
    assert_int_equal(json_integer_value(json_object_get(j, "days_left")), -10);
    json_decref(j);
}

static void
test_chain_signed_by_next(void **state)
{
    struct pki *p = *state;
    struct load_bundle b;
    json_t *f;
    json_t *objs;

    memset(&b, 0, sizeof(b));
    b.format = LOAD_PEM;
    b.certs = cf_certs(p->leaf, p->inter, p->other, NULL);
    b.key = p->leaf_key;
    EVP_PKEY_up_ref(p->leaf_key);
    b.nkeys = 1;
    f = inspect_bundle("chain.pem", &b, (int64_t)time(NULL));
    objs = json_object_get(f, "objects");
    assert_string_equal(jget(f, "file"), "chain.pem");
    assert_string_equal(jget(f, "format"), "PEM");
    assert_int_equal(json_array_size(objs), 4);
    assert_true(json_is_true(json_object_get(json_array_get(objs, 0), "signed_by_next")));
    assert_true(json_is_false(json_object_get(json_array_get(objs, 1), "signed_by_next")));
    assert_null(json_object_get(json_array_get(objs, 2), "signed_by_next"));
    assert_true(json_is_true(json_object_get(json_array_get(objs, 0), "matches_private_key")));
    assert_null(json_object_get(json_array_get(objs, 1), "matches_private_key"));
    assert_string_equal(jget(json_array_get(objs, 3), "type"), "private_key");
    json_decref(f);
    load_bundle_clear(&b);
}

static void
test_key_has_no_material(void **state)
{
    struct pki *p = *state;
    json_t *j = inspect_key(p->leaf_key, true);
    json_t *c = inspect_cert(p->leaf, 0);

    assert_string_equal(jget(j, "type"), "private_key");
    assert_true(json_is_true(json_object_get(j, "encrypted")));
    assert_string_equal(jget(j, "spki_sha256"), jget(c, "spki_sha256"));
    /* type, key, encrypted, spki_sha256 and nothing else: no key material. */
    assert_int_equal(json_object_size(j), 4);
    assert_int_equal(json_object_size(json_object_get(j, "key")), 3);
    json_decref(j);
    json_decref(c);
}

static void
test_crl(void **state)
{
    struct pki *p = *state;
    const struct cf_revoked rev[] = {{.serial = 0x10, .reason = 1},
                                     {.serial = 0x11, .reason = CF_NO_REASON}};
    X509_CRL *crl = cf_crl_new(&(struct cf_crl_spec){.issuer = p->inter,
                                                      .issuer_key = p->int_key,
                                                      .revoked = rev,
                                                      .nrevoked = 2,
                                                      .number = 4096});
    int64_t nu;
    json_t *j;
    json_t *r;

    assert_true(x509u_time(X509_CRL_get0_nextUpdate(crl), &nu));
    j = inspect_crl(crl, nu - 60);
    assert_string_equal(jget(j, "type"), "crl");
    assert_string_equal(jget(j, "issuer"), "CN=Issuing,O=Corp");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_string_equal(jget(j, "crl_number"), "4096");
    assert_true(json_is_false(json_object_get(j, "expired")));
    assert_int_equal(json_integer_value(json_object_get(j, "revoked_count")), 2);
    r = json_object_get(j, "revoked");
    assert_string_equal(jget(json_array_get(r, 0), "serial"), "10");
    assert_string_equal(jget(json_array_get(r, 0), "reason"), "keyCompromise");
    assert_true(json_is_null(json_object_get(json_array_get(r, 1), "reason")));
    assert_true(json_is_string(json_object_get(json_array_get(r, 1), "revocation_date")));
    json_decref(j);

    j = inspect_crl(crl, nu + 60);
    assert_true(json_is_true(json_object_get(j, "expired")));
    json_decref(j);
    X509_CRL_free(crl);
}

/* A CSR with a SAN extension; a tampered subject breaks its signature. */
static void
test_csr(void **state)
{
    struct pki *p = *state;
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                                              "DNS:svc.corp,URI:spiffe://corp/svc");
    json_t *j;

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"svc", -1, -1, 0);
    X509_REQ_set_subject_name(req, name);
    X509_REQ_set_pubkey(req, p->leaf_key);
    sk_X509_EXTENSION_push(exts, san);
    X509_REQ_add_extensions(req, exts);
    assert_true(X509_REQ_sign(req, p->leaf_key, EVP_sha256()) > 0);

    j = inspect_csr(req);
    assert_string_equal(jget(j, "type"), "csr");
    assert_string_equal(jget(j, "subject"), "CN=svc");
    assert_true(json_is_true(json_object_get(j, "signature_valid")));
    assert_int_equal(json_array_size(json_object_get(j, "sans")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "sans"), 1)),
                        "URI:spiffe://corp/svc");
    json_decref(j);

    /* Change the subject after signing: the self-signature no longer verifies. */
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Evil", -1, -1, 0);
    X509_REQ_set_subject_name(req, name);
    j = inspect_csr(req);
    assert_true(json_is_false(json_object_get(j, "signature_valid")));
    json_decref(j);

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_fields),
        cmocka_unit_test(test_sans_with_hostile_bytes),
        cmocka_unit_test(test_ca_constraints),
        cmocka_unit_test(test_expired_days),
        cmocka_unit_test(test_chain_signed_by_next),
        cmocka_unit_test(test_key_has_no_material),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_csr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
