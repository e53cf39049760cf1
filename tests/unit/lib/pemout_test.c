/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pemout_test.c - unit tests of the file writers (src/lib/pemout.c): what
 * each writes reads back with the loaders (src/lib/load.c) as the same
 * objects in the same order, a file holding a private key is 0600 and the
 * others 0644 whatever the umask, no temporary file is left behind, and a
 * PKCS#12 file opens with its password only and uses the algorithms asked
 * for.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "testlib/certfactory.h"

static struct {
    char *dir;
    EVP_PKEY *k_ca, *k_leaf;
    X509 *ca, *leaf;
    X509_CRL *crl1, *crl2;
} F;

static int
setup(void **state)
{
    struct cf_cert_spec s;
    struct cf_crl_spec c;

    (void)state;
    F.dir = cf_tmpdir();
    F.k_ca = cf_key_new(CF_KEY_EC_P256);
    F.k_leaf = cf_key_new(CF_KEY_EC_P256);
    s = (struct cf_cert_spec){.cn = "Pemout CA", .key = F.k_ca, .bc = CF_BC_CA};
    F.ca = cf_cert_new(&s);
    s = (struct cf_cert_spec){
        .cn = "leaf.example", .key = F.k_leaf, .issuer = F.ca, .issuer_key = F.k_ca};
    F.leaf = cf_cert_new(&s);
    c = (struct cf_crl_spec){.issuer = F.ca, .issuer_key = F.k_ca, .number = 1};
    F.crl1 = cf_crl_new(&c);
    c.number = 2;
    F.crl2 = cf_crl_new(&c);
    umask(0); /* the writers set the mode themselves */
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_CRL_free(F.crl1);
    X509_CRL_free(F.crl2);
    X509_free(F.leaf);
    X509_free(F.ca);
    EVP_PKEY_free(F.k_leaf);
    EVP_PKEY_free(F.k_ca);
    cf_tmpdir_remove(F.dir);
    return 0;
}

static void
assert_mode(const char *path, mode_t want)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, want);
}

/* Only the files written are in the directory: no temporary file left. */
static int
count_entries(void)
{
    DIR *d = opendir(F.dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void
test_certs(void **state)
{
    char *p = cf_path(F.dir, "chain.crt");
    X509 *chain[] = {F.leaf, F.ca};
    struct load_bundle b;
    struct duet_err err = {0};
    int before = count_entries();

    (void)state;
    if (pemout_certs(p, chain, 2, NULL, &err) != 0)
        fail_msg("pemout_certs: %s", err.msg);
    assert_mode(p, 0644);
    assert_int_equal(load_bundle_file(p, NULL, &b, &err), 0);
    assert_int_equal(b.format, LOAD_PEM);
    assert_int_equal(sk_X509_num(b.certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(b.certs, 0), F.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(b.certs, 1), F.ca), 0);
    assert_null(b.key);
    load_bundle_clear(&b);

    /* With a key: the same certificates, then the key, and mode 0600. */
    if (pemout_certs(p, chain, 1, F.k_leaf, &err) != 0)
        fail_msg("pemout_certs with key: %s", err.msg);
    assert_mode(p, 0600);
    assert_int_equal(load_bundle_file(p, NULL, &b, &err), 0);
    assert_int_equal(sk_X509_num(b.certs), 1);
    assert_non_null(b.key);
    assert_false(b.key_encrypted);
    assert_int_equal(EVP_PKEY_eq(b.key, F.k_leaf), 1);
    load_bundle_clear(&b);
    assert_int_equal(count_entries(), before + 1);
    free(p);
}

static void
test_cert_der(void **state)
{
    char *p = cf_path(F.dir, "leaf.der");
    STACK_OF(X509) *certs = NULL;
    struct duet_err err = {0};
    size_t len = 0;
    uint8_t *der = NULL, *want = cf_cert_der(F.leaf, &len);
    size_t got_len = 0;

    (void)state;
    if (pemout_cert_der(p, F.leaf, &err) != 0)
        fail_msg("pemout_cert_der: %s", err.msg);
    assert_mode(p, 0644);
    der = cf_read_file(p, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(der, want, len);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 1);
    OSSL_STACK_OF_X509_free(certs);
    free(der);
    free(want);
    free(p);
}

static void
test_key(void **state)
{
    char *p = cf_path(F.dir, "leaf.key");
    char *e = cf_path(F.dir, "leaf-enc.key");
    EVP_PKEY *k = NULL;
    struct duet_err err = {0};
    uint8_t *text;
    size_t len = 0;

    (void)state;
    if (pemout_key(p, F.k_leaf, NULL, &err) != 0)
        fail_msg("pemout_key: %s", err.msg);
    assert_mode(p, 0600);
    text = cf_read_file(p, &len);
    assert_contains((const char *)text, "-----BEGIN PRIVATE KEY-----");
    free(text);
    assert_int_equal(load_key_file(p, NULL, &k, &err), 0);
    assert_int_equal(EVP_PKEY_eq(k, F.k_leaf), 1);
    EVP_PKEY_free(k);
    k = NULL;

    /* Encrypted: PKCS#8 that opens with the passphrase only. */
    if (pemout_key(e, F.k_leaf, "a long passphrase", &err) != 0)
        fail_msg("pemout_key encrypted: %s", err.msg);
    assert_mode(e, 0600);
    text = cf_read_file(e, &len);
    assert_contains((const char *)text, "-----BEGIN ENCRYPTED PRIVATE KEY-----");
    free(text);
    assert_int_equal(load_key_file(e, "wrong passphrase", &k, &err), -1);
    assert_null(k);
    assert_int_equal(load_key_file(e, "a long passphrase", &k, &err), 0);
    assert_int_equal(EVP_PKEY_eq(k, F.k_leaf), 1);
    EVP_PKEY_free(k);
    {
        /* The key derivation is today's: PBKDF2-HMAC-SHA256, 600,000 iterations. */
        long iter = -1;
        char desc[160];
        assert_int_equal(pemout_key_kdf(e, &iter, desc, sizeof(desc), &err), 0);
        assert_int_equal(iter, PEMOUT_KDF_ITERATIONS);
        assert_int_equal(iter, 600000);
        assert_string_equal(desc,
                            "PBES2 aes-256-cbc, PBKDF2-hmacWithSHA256, 600000 iterations");
        /* An unencrypted key has none. */
        assert_int_equal(pemout_key_kdf(p, &iter, desc, sizeof(desc), &err), 0);
        assert_int_equal(iter, 0);
        assert_string_equal(desc, "not an encrypted PKCS#8 key");
    }
    free(e);
    free(p);
}

static long
crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    long v;

    assert_non_null(n);
    v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static void
test_crls(void **state)
{
    char *p = cf_path(F.dir, "both.crl");
    char *d = cf_path(F.dir, "first.crl.der");
    X509_CRL *crls[] = {F.crl2, F.crl1};
    STACK_OF(X509_CRL) *got = NULL;
    struct duet_err err = {0};

    (void)state;
    if (pemout_crls(p, crls, 2, false, &err) != 0)
        fail_msg("pemout_crls: %s", err.msg);
    assert_mode(p, 0644);
    assert_int_equal(load_crls_file(p, &got, &err), 0);
    assert_int_equal(sk_X509_CRL_num(got), 2);
    assert_int_equal(crl_number(sk_X509_CRL_value(got, 0)), 2); /* in the order given */
    assert_int_equal(crl_number(sk_X509_CRL_value(got, 1)), 1);
    sk_X509_CRL_pop_free(got, X509_CRL_free);
    got = NULL;

    /* DER holds the first CRL only. */
    if (pemout_crls(d, crls, 2, true, &err) != 0)
        fail_msg("pemout_crls der: %s", err.msg);
    assert_mode(d, 0644);
    assert_int_equal(load_crls_file(d, &got, &err), 0);
    assert_int_equal(sk_X509_CRL_num(got), 1);
    assert_int_equal(crl_number(sk_X509_CRL_value(got, 0)), 2);
    sk_X509_CRL_pop_free(got, X509_CRL_free);
    free(d);
    free(p);
}

/* The algorithms of a PKCS#12 file: its MAC digest and the key bag's PBE. */
static void
p12_algs(const char *path, const char *pass, int *mac_nid, int *key_pbe_nid)
{
    size_t len = 0;
    uint8_t *der = cf_read_file(path, &len);
    const unsigned char *q = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &q, (long)len);
    const X509_ALGOR *macalg = NULL;
    const ASN1_OBJECT *obj = NULL;
    STACK_OF(PKCS7) * safes;

    assert_non_null(p12);
    PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
    X509_ALGOR_get0(&obj, NULL, NULL, macalg);
    *mac_nid = OBJ_obj2nid(obj);
    *key_pbe_nid = NID_undef;
    safes = PKCS12_unpack_authsafes(p12);
    for (int i = 0; safes != NULL && i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
        if (OBJ_obj2nid(p7->type) == NID_pkcs7_data)
            bags = PKCS12_unpack_p7data(p7);
        else if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted)
            bags = PKCS12_unpack_p7encdata(p7, pass, -1);
        for (int k = 0; bags != NULL && k < sk_PKCS12_SAFEBAG_num(bags); k++) {
            const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, k);
            if (PKCS12_SAFEBAG_get_nid(bag) == NID_pkcs8ShroudedKeyBag) {
                const X509_ALGOR *alg = NULL;
                X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                X509_ALGOR_get0(&obj, NULL, NULL, alg);
                *key_pbe_nid = OBJ_obj2nid(obj);
            }
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    free(der);
}

static void
test_p12(void **state)
{
    static const struct {
        bool legacy;
        int mac;
        int key_pbe;
    } cases[] = {
        {false, NID_sha256, NID_pbes2},
        {true, NID_sha1, NID_pbe_WithSHA1And3_Key_TripleDES_CBC},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = cf_path(F.dir, cases[i].legacy ? "legacy.p12" : "modern.p12");
        STACK_OF(X509) *chain = cf_certs(F.ca, NULL);
        struct load_bundle b;
        struct duet_err err = {0};
        int mac = 0, pbe = 0;

        if (pemout_p12(p, F.k_leaf, F.leaf, chain, "p12 password", cases[i].legacy, &err) != 0)
            fail_msg("pemout_p12: %s", err.msg);
        assert_mode(p, 0600);
        p12_algs(p, "p12 password", &mac, &pbe);
        assert_int_equal(mac, cases[i].mac);
        assert_int_equal(pbe, cases[i].key_pbe);
        assert_int_equal(load_bundle_file(p, "p12 password", &b, &err), 0);
        assert_int_equal(b.format, LOAD_PKCS12);
        assert_int_equal(EVP_PKEY_eq(b.key, F.k_leaf), 1);
        assert_int_equal(sk_X509_num(b.certs), 2);
        load_bundle_clear(&b);
        assert_int_equal(load_bundle_file(p, "wrong", &b, &err), -1);
        load_bundle_clear(&b);
        OSSL_STACK_OF_X509_free(chain);
        free(p);
    }
}

/* A directory that does not exist: the error names the path, nothing is written. */
static void
test_missing_dir(void **state)
{
    char *p = cf_path(F.dir, "no-such-dir/x.crt");
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(pemout_certs(p, &F.leaf, 1, NULL, &err), -1);
    assert_contains(err.msg, p);
    assert_contains(err.msg, "cannot create temporary file");
    assert_int_equal(pemout_key(p, F.k_leaf, NULL, &err), -1);
    assert_contains(err.msg, p);
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certs), cmocka_unit_test(test_cert_der),
        cmocka_unit_test(test_key),   cmocka_unit_test(test_crls),
        cmocka_unit_test(test_p12),   cmocka_unit_test(test_missing_dir),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
