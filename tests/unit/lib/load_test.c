/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load_test.c - unit tests of src/lib/load.c: certificates, CRLs and keys
 * from PEM (several blocks, truncated, encrypted keys), DER (trailing bytes,
 * the wrong kind of object), PKCS#12 (modern AES/PBKDF2 and legacy 3DES,
 * right, wrong and missing password) and unreadable files.  Every negative
 * case asserts the message, which must name the file and what was expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include "lib/err.h"
#include "lib/load.h"
#include "testlib/certfactory.h"

static struct {
    char *dir;
    EVP_PKEY *k_ca, *k_leaf, *k_ed;
    X509 *ca, *leaf, *leaf2;
    X509_CRL *crl;
} F;

/* dir/name; freed by the caller. */
static char *
fpath(const char *name)
{
    return cf_path(F.dir, name);
}

/* Write bytes to dir/name and return the path. */
static char *
put(const char *name, const void *data, size_t len)
{
    char *p = fpath(name);

    cf_write_file(p, data, len);
    return p;
}

/* Assert the error names the path: "<path>: <rest>". */
static void
assert_err(const struct duet_err *err, const char *path, const char *rest)
{
    char want[2048];

    assert_int_equal(err->kind, DUET_ERR_INPUT);
    snprintf(want, sizeof(want), "%s: %s", path, rest);
    assert_contains(err->msg, want);
    assert_true(strncmp(err->msg, path, strlen(path)) == 0);
}

static uint8_t *
p12_der(PKCS12 *p12, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    uint8_t *out;

    assert_true(n > 0);
    out = malloc((size_t)n);
    assert_non_null(out);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

/* Write a PKCS#12 file of leaf+key with the CA; legacy selects 3DES, else the 3.0 defaults. */
static char *
put_p12(const char *name, const char *pass, bool legacy)
{
    STACK_OF(X509) *ca = cf_certs(F.ca, NULL);
    PKCS12 *p12;
    uint8_t *der;
    size_t len = 0;
    char *p;

    if (legacy)
        p12 = PKCS12_create(pass, "leaf", F.k_leaf, F.leaf, ca,
                            NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                            NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 0, 0, 0);
    else
        p12 = PKCS12_create_ex(pass, "leaf", F.k_leaf, F.leaf, ca, 0, 0, 0, 0, 0, NULL, NULL);
    assert_non_null(p12);
    der = p12_der(p12, &len);
    p = put(name, der, len);
    free(der);
    PKCS12_free(p12);
    OSSL_STACK_OF_X509_free(ca);
    return p;
}

/* Write the leaf key as encrypted PKCS#8 PEM (AES-256-CBC) under pass. */
static char *
put_encrypted_key(const char *name, const char *pass)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n;
    char *p;

    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, F.k_leaf, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                   (void *)(uintptr_t)pass),
                     1);
    n = BIO_get_mem_data(bio, &mem);
    p = put(name, mem, (size_t)n);
    BIO_free(bio);
    return p;
}

/* ---- certificates ---- */

static void
test_pem_several_blocks_in_order(void **state)
{
    char *p = fpath("three.pem");
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    cf_write_certs(p, F.leaf, F.ca, F.leaf2, NULL);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), 0);
    assert_int_equal(err.kind, DUET_ERR_NONE);
    assert_int_equal(sk_X509_num(certs), 3);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), F.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), F.ca), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 2), F.leaf2), 0);
    OSSL_STACK_OF_X509_free(certs);
    free(p);
}

static void
test_pem_mixed_bundle(void **state)
{
    static const char other[] = "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n";
    size_t clen = 0, rlen = 0, klen = 0;
    uint8_t *c = cf_cert_pem(F.leaf, &clen);
    uint8_t *r = cf_crl_pem(F.crl, &rlen);
    uint8_t *k = cf_key_pem(F.k_leaf, &klen);
    size_t len = clen + rlen + klen + strlen(other);
    uint8_t *all = malloc(len);
    struct load_bundle b;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_non_null(all);
    memcpy(all, c, clen);
    memcpy(all + clen, r, rlen);
    memcpy(all + clen + rlen, other, strlen(other));
    memcpy(all + clen + rlen + strlen(other), k, klen);
    assert_int_equal(load_bundle_mem("mixed", all, len, NULL, &b, &err), 0);
    assert_int_equal(b.format, LOAD_PEM);
    assert_int_equal(sk_X509_num(b.certs), 1);
    assert_int_equal(sk_X509_CRL_num(b.crls), 1);
    assert_int_equal(b.nkeys, 1);
    assert_false(b.key_encrypted);
    assert_int_equal(EVP_PKEY_eq(b.key, F.k_leaf), 1);
    assert_int_equal(b.nother, 1);
    load_bundle_clear(&b);
    assert_null(b.certs);
    assert_null(b.key);
    assert_int_equal(b.nkeys, 0);
    free(c);
    free(r);
    free(k);
    free(all);
}

static void
test_der_cert(void **state)
{
    size_t len = 0;
    uint8_t *der = cf_cert_der(F.leaf, &len);
    char *p = put("leaf.der", der, len);
    struct load_bundle b;
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_bundle_file(p, NULL, &b, &err), 0);
    assert_int_equal(b.format, LOAD_DER);
    assert_int_equal(sk_X509_num(b.certs), 1);
    assert_int_equal(X509_cmp(sk_X509_value(b.certs, 0), F.leaf), 0);
    load_bundle_clear(&b);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 1);
    OSSL_STACK_OF_X509_free(certs);
    free(der);
    free(p);
}

static void
test_der_trailing_garbage(void **state)
{
    size_t len = 0;
    uint8_t *der = cf_cert_der(F.leaf, &len);
    uint8_t *buf = malloc(len + 3);
    char *p;
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_non_null(buf);
    memcpy(buf, der, len);
    memcpy(buf + len, "\x00\x01\x02", 3);
    p = put("trailing.der", buf, len + 3);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_null(certs);
    assert_err(&err, p, "DER certificate is followed by 3 unexpected bytes");
    free(der);
    free(buf);
    free(p);
}

static void
test_pem_truncated(void **state)
{
    size_t alen = 0, blen = 0;
    uint8_t *a = cf_cert_pem(F.leaf, &alen);
    uint8_t *b = cf_cert_pem(F.ca, &blen);
    char *end = strstr((char *)b, "-----END");
    size_t cut = (size_t)(end - (char *)b);
    uint8_t *buf = malloc(alen + cut);
    char *p1;
    char *p2;
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_non_null(buf);
    /* Block 2 loses its END line. */
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, cut);
    p2 = put("trunc2.pem", buf, alen + cut);
    assert_int_equal(load_certs_file(p2, NULL, &certs, &err), -1);
    assert_null(certs);
    assert_err(&err, p2, "PEM block 2 (CERTIFICATE) is truncated: no END line");
    /* Block 1 cut in the middle of its base64. */
    p1 = put("trunc1.pem", a, alen / 2);
    assert_int_equal(load_certs_file(p1, NULL, &certs, &err), -1);
    assert_err(&err, p1, "PEM block 1 (CERTIFICATE) is truncated: no END line");
    free(a);
    free(b);
    free(buf);
    free(p1);
    free(p2);
}

static void
test_pem_corrupt_base64(void **state)
{
    static const char bad[] = "-----BEGIN CERTIFICATE-----\nMIIB!!!!not base64\n"
                              "-----END CERTIFICATE-----\n";
    char *p = put("corrupt.pem", bad, strlen(bad));
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "PEM block 1");
    free(p);
}

static void
test_pem_not_a_certificate(void **state)
{
    /* Valid base64 of bytes that are not a certificate. */
    static const char bad[] = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
    char *p = put("notcert.pem", bad, strlen(bad));
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "PEM block 1 (CERTIFICATE) is not a valid X.509 certificate");
    free(p);
}

static void
test_pem_no_block(void **state)
{
    static const char text[] = "hello\n-----BEGIN nothing useful\n";
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(
        load_certs_mem("memory", (const uint8_t *)text, strlen(text), NULL, &certs, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, "memory: no PEM block found");
}

static void
test_pem_only_unknown_blocks(void **state)
{
    static const char text[] = "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"
                               "-----BEGIN BAR-----\nAAAA\n-----END BAR-----\n";
    struct load_bundle b;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    /* load.h: nothing recognisable is a failure. */
    assert_int_equal(
        load_bundle_mem("foo.pem", (const uint8_t *)text, strlen(text), NULL, &b, &err), -1);
    load_bundle_clear(&b);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_contains(err.msg, "foo.pem: no certificate, CRL, CSR or private key");
}

static void
test_empty_memory(void **state)
{
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_mem("peer chain", (const uint8_t *)"", 0, NULL, &certs, &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, "peer chain: input is empty");
}

static void
test_empty_file(void **state)
{
    char *p = put("empty.pem", "", 0);
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "file is empty");
    free(p);
}

static void
test_directory(void **state)
{
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(F.dir, NULL, &certs, &err), -1);
    assert_err(&err, F.dir, "is a directory");
}

static void
test_missing_file(void **state)
{
    char *p = fpath("does-not-exist.pem");
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "no such file");
    free(p);
}

static void
test_der_crl_is_not_a_certificate(void **state)
{
    size_t len = 0;
    uint8_t *der = cf_crl_der(F.crl, &len);
    char *p = put("ca.crl.der", der, len);
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_null(certs);
    assert_err(&err, p, "no certificate found (DER holds a CRL)");
    free(der);
    free(p);
}

static void
test_random_bytes(void **state)
{
    uint8_t junk[64];
    char *p;
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11); /* starts with 0x0b: not a DER SEQUENCE */
    p = put("junk.bin", junk, sizeof(junk));
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "neither PEM nor DER");
    free(p);
}

static void
test_der_sequence_of_nothing(void **state)
{
    static const uint8_t seq[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    char *p = put("seq.der", seq, sizeof(seq));
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "DER data is not a certificate, CRL, CSR, private key or PKCS#12 store");
    free(p);
}

/* ---- PKCS#12 ---- */

static void
check_p12_contents(const char *p, const char *pass)
{
    struct load_bundle b;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    struct duet_err err;

    err_clear(&err);
    if (load_bundle_file(p, pass, &b, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(b.format, LOAD_PKCS12);
    assert_int_equal(b.nkeys, 1);
    assert_int_equal(EVP_PKEY_eq(b.key, F.k_leaf), 1);
    load_bundle_clear(&b);
    /* The key's certificate first, then the others. */
    assert_int_equal(load_certs_file(p, pass, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), F.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), F.ca), 0);
    OSSL_STACK_OF_X509_free(certs);
    assert_int_equal(load_key_file(p, pass, &key, &err), 0);
    assert_int_equal(EVP_PKEY_eq(key, F.k_leaf), 1);
    EVP_PKEY_free(key);
}

static void
test_p12_modern_right_password(void **state)
{
    char *p = put_p12("modern.p12", "s3cret", false);

    (void)state;
    check_p12_contents(p, "s3cret");
    free(p);
}

static void
test_p12_modern_wrong_password(void **state)
{
    char *p = put_p12("modern-wrong.p12", "s3cret", false);
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, "guess", &certs, &err), -1);
    assert_null(certs);
    assert_err(&err, p, "wrong password for PKCS#12 file");
    free(p);
}

static void
test_p12_modern_missing_password(void **state)
{
    char *p = put_p12("modern-nopass.p12", "s3cret", false);
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_certs_file(p, NULL, &certs, &err), -1);
    assert_err(&err, p, "PKCS#12 file is protected by a password");
    free(p);
}

static void
test_p12_legacy_3des(void **state)
{
    char *p = put_p12("legacy.p12", "s3cret", true);
    STACK_OF(X509) *certs = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    check_p12_contents(p, "s3cret");
    assert_int_equal(load_certs_file(p, "wrong", &certs, &err), -1);
    assert_err(&err, p, "wrong password for PKCS#12 file");
    free(p);
}

static void
test_p12_legacy_rc2_loads_legacy_provider(void **state)
{
    /*
     * RC2-40 exists only in OpenSSL's legacy provider.  The file is made in a
     * library context of its own, so the default context, which the loader
     * uses, has to load the legacy provider by itself.
     */
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *legacy;
    OSSL_PROVIDER *dflt;
    STACK_OF(X509) *ca = cf_certs(F.ca, NULL);
    PKCS12 *p12;
    uint8_t *der;
    size_t len = 0;
    char *p;

    (void)state;
    assert_non_null(lc);
    legacy = OSSL_PROVIDER_load(lc, "legacy");
    dflt = OSSL_PROVIDER_load(lc, "default");
    if (legacy == NULL)
        skip(); /* the legacy module is not installed */
    assert_non_null(dflt);
    assert_int_equal(OSSL_PROVIDER_available(NULL, "legacy"), 0);
    p12 = PKCS12_create_ex("s3cret", "leaf", F.k_leaf, F.leaf, ca, NID_pbe_WithSHA1And40BitRC2_CBC,
                           NID_pbe_WithSHA1And40BitRC2_CBC, 0, 0, 0, lc, NULL);
    assert_non_null(p12);
    der = p12_der(p12, &len);
    p = put("legacy-rc2.p12", der, len);
    free(der);
    PKCS12_free(p12);
    OSSL_STACK_OF_X509_free(ca);
    OSSL_PROVIDER_unload(legacy);
    OSSL_PROVIDER_unload(dflt);
    OSSL_LIB_CTX_free(lc);
    check_p12_contents(p, "s3cret");
    assert_int_equal(OSSL_PROVIDER_available(NULL, "legacy"), 1);
    free(p);
}

/* ---- keys ---- */

static void
test_encrypted_pkcs8_right_passphrase(void **state)
{
    char *p = put_encrypted_key("enc.key", "hunter22");
    struct load_bundle b;
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_key_file(p, "hunter22", &key, &err), 0);
    assert_int_equal(EVP_PKEY_eq(key, F.k_leaf), 1);
    EVP_PKEY_free(key);
    assert_int_equal(load_bundle_file(p, "hunter22", &b, &err), 0);
    assert_true(b.key_encrypted);
    load_bundle_clear(&b);
    free(p);
}

static void
test_encrypted_pkcs8_wrong_passphrase(void **state)
{
    char *p = put_encrypted_key("enc-wrong.key", "hunter22");
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_key_file(p, "hunter2", &key, &err), -1);
    assert_null(key);
    assert_err(&err, p, "PEM block 1 (ENCRYPTED PRIVATE KEY): wrong passphrase or corrupt key");
    free(p);
}

static void
test_encrypted_pkcs8_missing_passphrase(void **state)
{
    char *p = put_encrypted_key("enc-none.key", "hunter22");
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_key_file(p, NULL, &key, &err), -1);
    assert_null(key);
    assert_err(&err, p, "PEM block 1 (ENCRYPTED PRIVATE KEY) is encrypted; a passphrase is needed");
    free(p);
}

static void
test_encrypted_pkcs8_der(void **state)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n;
    char *p;
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_non_null(bio);
    assert_int_equal(i2d_PKCS8PrivateKey_bio(bio, F.k_leaf, EVP_aes_256_cbc(), NULL, 0, NULL,
                                             (void *)(uintptr_t) "pw-der"),
                     1);
    n = BIO_get_mem_data(bio, &mem);
    p = put("enc.der", mem, (size_t)n);
    BIO_free(bio);
    assert_int_equal(load_key_file(p, "pw-der", &key, &err), 0);
    assert_int_equal(EVP_PKEY_eq(key, F.k_leaf), 1);
    EVP_PKEY_free(key);
    key = NULL;
    assert_int_equal(load_key_file(p, NULL, &key, &err), -1);
    assert_err(&err, p, "DER private key is encrypted; a passphrase is needed");
    assert_int_equal(load_key_file(p, "nope", &key, &err), -1);
    assert_err(&err, p, "DER private key: wrong passphrase or corrupt key");
    free(p);
}

static void
test_der_key(void **state)
{
    size_t len = 0;
    uint8_t *der = cf_key_der(F.k_leaf, &len);
    char *p = put("leaf.key.der", der, len);
    size_t elen = 0;
    uint8_t *eder = cf_key_der(F.k_ed, &elen);
    char *pe = put("ed.key.der", eder, elen);
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(load_key_file(p, NULL, &key, &err), 0);
    assert_int_equal(EVP_PKEY_eq(key, F.k_leaf), 1);
    EVP_PKEY_free(key);
    assert_int_equal(load_key_file(pe, NULL, &key, &err), 0);
    assert_int_equal(EVP_PKEY_eq(key, F.k_ed), 1);
    EVP_PKEY_free(key);
    free(der);
    free(eder);
    free(p);
    free(pe);
}

static void
test_key_file_with_two_keys(void **state)
{
    size_t alen = 0, blen = 0;
    uint8_t *a = cf_key_pem(F.k_leaf, &alen);
    uint8_t *b = cf_key_pem(F.k_ca, &blen);
    uint8_t *buf = malloc(alen + blen);
    char *p;
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_non_null(buf);
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    p = put("two.key", buf, alen + blen);
    assert_int_equal(load_key_file(p, NULL, &key, &err), -1);
    assert_null(key);
    assert_err(&err, p, "holds 2 private keys; expected exactly one");
    free(a);
    free(b);
    free(buf);
    free(p);
}

static void
test_key_file_without_key(void **state)
{
    char *p = fpath("only-cert.pem");
    EVP_PKEY *key = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    cf_write_certs(p, F.leaf, NULL);
    assert_int_equal(load_key_file(p, NULL, &key, &err), -1);
    assert_err(&err, p, "no private key found");
    free(p);
}

/* ---- CRLs ---- */

static void
test_load_crls_file(void **state)
{
    struct cf_crl_spec cs = {.issuer = F.ca, .issuer_key = F.k_ca, .number = 7};
    X509_CRL *second = cf_crl_new(&cs);
    char *p = fpath("two.crl");
    size_t len = 0;
    uint8_t *der = cf_crl_der(F.crl, &len);
    char *pd = put("one.crl.der", der, len);
    STACK_OF(X509_CRL) *crls = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    cf_write_crls(p, F.crl, second, NULL);
    assert_int_equal(load_crls_file(p, &crls, &err), 0);
    assert_int_equal(sk_X509_CRL_num(crls), 2);
    assert_int_equal(X509_CRL_cmp(sk_X509_CRL_value(crls, 0), F.crl), 0);
    /* Same issuer: compare the encodings to tell them apart. */
    {
        size_t l1 = 0, l2 = 0;
        uint8_t *d1 = cf_crl_der(sk_X509_CRL_value(crls, 1), &l1);
        uint8_t *d2 = cf_crl_der(second, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(d1, d2, l1);
        free(d1);
        free(d2);
    }
    cf_crls_free(crls);
    crls = NULL;
    assert_int_equal(load_crls_file(pd, &crls, &err), 0);
    assert_int_equal(sk_X509_CRL_num(crls), 1);
    cf_crls_free(crls);
    X509_CRL_free(second);
    free(der);
    free(p);
    free(pd);
}

static void
test_load_crls_file_with_certificate(void **state)
{
    char *p = fpath("cert-not-crl.pem");
    STACK_OF(X509_CRL) *crls = NULL;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    cf_write_certs(p, F.ca, NULL);
    assert_int_equal(load_crls_file(p, &crls, &err), -1);
    assert_null(crls);
    assert_err(&err, p, "no CRL found (PEM holds a certificate)");
    free(p);
}

static void
test_format_names(void **state)
{
    (void)state;
    assert_string_equal(load_format_name(LOAD_PEM), "PEM");
    assert_string_equal(load_format_name(LOAD_DER), "DER");
    assert_string_equal(load_format_name(LOAD_PKCS12), "PKCS#12");
}

static int
setup(void **state)
{
    struct cf_cert_spec s;
    struct cf_crl_spec cs;

    (void)state;
    F.dir = cf_tmpdir();
    F.k_ca = cf_key_new(CF_KEY_EC_P256);
    F.k_leaf = cf_key_new(CF_KEY_EC_P256);
    F.k_ed = cf_key_new(CF_KEY_ED25519);
    s = (struct cf_cert_spec){.cn = "Load CA", .key = F.k_ca, .serial = 1, .bc = CF_BC_CA};
    F.ca = cf_cert_new(&s);
    s = (struct cf_cert_spec){.cn = "leaf.example",
                              .key = F.k_leaf,
                              .issuer = F.ca,
                              .issuer_key = F.k_ca,
                              .serial = 2,
                              .eku = CF_EKU_CLIENT};
    F.leaf = cf_cert_new(&s);
    s.cn = "leaf2.example";
    s.serial = 3;
    F.leaf2 = cf_cert_new(&s);
    cs = (struct cf_crl_spec){.issuer = F.ca, .issuer_key = F.k_ca};
    F.crl = cf_crl_new(&cs);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(F.ca);
    X509_free(F.leaf);
    X509_free(F.leaf2);
    X509_CRL_free(F.crl);
    EVP_PKEY_free(F.k_ca);
    EVP_PKEY_free(F.k_leaf);
    EVP_PKEY_free(F.k_ed);
    cf_tmpdir_remove(F.dir);
    memset(&F, 0, sizeof(F));
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_several_blocks_in_order),
        cmocka_unit_test(test_pem_mixed_bundle),
        cmocka_unit_test(test_der_cert),
        cmocka_unit_test(test_der_trailing_garbage),
        cmocka_unit_test(test_pem_truncated),
        cmocka_unit_test(test_pem_corrupt_base64),
        cmocka_unit_test(test_pem_not_a_certificate),
        cmocka_unit_test(test_pem_no_block),
        cmocka_unit_test(test_pem_only_unknown_blocks),
        cmocka_unit_test(test_empty_memory),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_der_crl_is_not_a_certificate),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_der_sequence_of_nothing),
        cmocka_unit_test(test_p12_modern_right_password),
        cmocka_unit_test(test_p12_modern_wrong_password),
        cmocka_unit_test(test_p12_modern_missing_password),
        cmocka_unit_test(test_p12_legacy_3des),
        cmocka_unit_test(test_p12_legacy_rc2_loads_legacy_provider),
        cmocka_unit_test(test_encrypted_pkcs8_right_passphrase),
        cmocka_unit_test(test_encrypted_pkcs8_wrong_passphrase),
        cmocka_unit_test(test_encrypted_pkcs8_missing_passphrase),
        cmocka_unit_test(test_encrypted_pkcs8_der),
        cmocka_unit_test(test_der_key),
        cmocka_unit_test(test_key_file_with_two_keys),
        cmocka_unit_test(test_key_file_without_key),
        cmocka_unit_test(test_load_crls_file),
        cmocka_unit_test(test_load_crls_file_with_certificate),
        cmocka_unit_test(test_format_names),
    };

    return cmocka_run_group_tests_name("load", tests, setup, teardown);
}
