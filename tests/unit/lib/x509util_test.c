/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509util_test.c - unit tests of src/lib/x509util.c: RFC 3339 parsing
 * (valid and invalid forms as tables), day distances, colon hex, serials,
 * key descriptions, names and labels, signature digests, the issuer of a
 * certificate found by name and signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>

#include "lib/x509util.h"
#include "testlib/certfactory.h"

static void
test_parse_time_valid(void **state)
{
    static const struct {
        const char *text;
        int64_t want;
    } cases[] = {
        {"2026-10-01T09:30:00Z", 1790847000},
        {"2026-10-01t09:30:00z", 1790847000},
        {"2026-10-01 09:30:00Z", 1790847000},
        {"2026-10-01T11:30:00+02:00", 1790847000},
        {"2026-10-01T04:00:00-05:30", 1790847000},
        {"2026-10-02T01:30:00+16:00", 1790847000},
        {"2026-10-01T09:30:00.123456Z", 1790847000},
        {"2026-10-01T09:30:00.5+00:00", 1790847000},
        {"2026-10-01", 1790812800},
        {"2024-02-29", 1709164800},
        {"1970-01-01T00:00:00Z", 0},
        {"2026-12-31T23:59:59Z", 1798761599},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -1;
        if (!x509u_parse_time(cases[i].text, &t))
            fail_msg("\"%s\" was refused", cases[i].text);
        if (t != cases[i].want)
            fail_msg("\"%s\" gave %lld, expected %lld", cases[i].text, (long long)t,
                     (long long)cases[i].want);
    }
}

static void
test_parse_time_invalid(void **state)
{
    static const char *const bad[] = {
        "2026-02-30",           /* no such day */
        "2025-02-29",           /* not a leap year */
        "2026-04-31T00:00:00Z", /* no such day */
        "garbage",
        "",
        "2026-10-01T09:30:00",   /* no zone */
        "2026-10-01T09:30Z",     /* no seconds */
        "2026-10-01T09:30:00.Z", /* empty fraction */
        "2026-10-01T09:30:00+0200",
        "2026-10-01T09:30:00+2:00",
        "2026-10-01T09:30:00+24:00",
        "2026-10-01T24:00:00Z",
        "2026-10-01T09:60:00Z",
        "2026-13-01",
        "2026-00-10",
        "2026-10-00",
        "26-10-01",
        "2026-10-01Z",
        "2026-10-01T09:30:00Z ",
        "2026/10/01",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 0;
        if (x509u_parse_time(bad[i], &t))
            fail_msg("\"%s\" was accepted as %lld", bad[i], (long long)t);
    }
}

static void
test_fmt_days(void **state)
{
    static const struct {
        int64_t delta;
        const char *want;
    } cases[] = {
        {-52 * CF_DAY, "52 days ago"}, {-52 * CF_DAY - 3600, "52 days ago"}, {-CF_DAY, "1 day ago"},
        {3 * CF_DAY, "in 3 days"},     {3 * CF_DAY + 86399, "in 3 days"},    {CF_DAY, "in 1 day"},
        {400 * CF_DAY, "in 400 days"},
    };
    const int64_t now = 1790847000;
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        x509u_fmt_days(now + cases[i].delta, now, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
}

/* Under a day the distance is spelled out, since the date may be today or not. */
static void
test_fmt_days_under_a_day(void **state)
{
    const int64_t now = 1790847000;
    char buf[64];

    (void)state;
    x509u_fmt_days(now, now, buf, sizeof(buf));
    assert_string_equal(buf, "in less than a day");
    x509u_fmt_days(now - 3600, now, buf, sizeof(buf));
    assert_string_equal(buf, "less than a day ago");
    x509u_fmt_days(now - 86399, now, buf, sizeof(buf));
    assert_string_equal(buf, "less than a day ago");
    x509u_fmt_days(now + 86399, now, buf, sizeof(buf));
    assert_string_equal(buf, "in less than a day");
}

static void
test_fmt_dates(void **state)
{
    char buf[64];

    (void)state;
    x509u_fmt_date(1790847000, buf, sizeof(buf));
    assert_string_equal(buf, "2026-10-01");
    x509u_fmt_rfc3339(1790847000, buf, sizeof(buf));
    assert_string_equal(buf, "2026-10-01T09:30:00Z");
}

static void
test_hex_colon(void **state)
{
    static const uint8_t b[] = {0x3f, 0xa1, 0x07};
    static const uint8_t one[] = {0x00};
    char *s;

    (void)state;
    s = x509u_hex_colon(b, sizeof(b));
    assert_string_equal(s, "3F:A1:07");
    free(s);
    s = x509u_hex_colon(one, 1);
    assert_string_equal(s, "00");
    free(s);
    s = x509u_hex_colon(b, 0);
    assert_string_equal(s, "");
    free(s);
}

static char *
serial_of(const char *hex)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai;
    char *s;

    assert_true(BN_hex2bn(&bn, hex) > 0);
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(ai);
    s = x509u_serial(ai);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return s;
}

static void
test_serial(void **state)
{
    static const struct {
        const char *hex;
        const char *want;
    } cases[] = {
        {"3FA107", "3F:A1:07"},
        {"0", "00"},
        {"1", "01"},
        {"80", "80"},
        {"-1", "-01"},
        {"0123456789ABCDEF0123456789ABCDEF", "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = serial_of(cases[i].hex);
        assert_non_null(s);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
}

static void
test_key_describe(void **state)
{
    static const struct {
        enum cf_key_type type;
        const char *want;
        int bits;
    } cases[] = {
        {CF_KEY_EC_P256, "EC P-256", 256},   {CF_KEY_EC_P384, "EC P-384", 384},
        {CF_KEY_RSA_2048, "RSA 2048", 2048}, {CF_KEY_RSA_1024, "RSA 1024", 1024},
        {CF_KEY_ED25519, "Ed25519", 256},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = cf_key_new(cases[i].type);
        char buf[64];
        int bits = -1;

        x509u_key_describe(k, buf, sizeof(buf), &bits);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(bits, cases[i].bits);
        x509u_key_describe(k, buf, sizeof(buf), NULL);
        assert_string_equal(buf, cases[i].want);
        EVP_PKEY_free(k);
    }
}

static void
test_names_and_label(void **state)
{
    EVP_PKEY *k = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec s = {
        .cn = "a,b+c", .o = "Corp", .key = k, .serial = 0x3FA1, .bc = CF_BC_CA};
    X509 *x = cf_cert_new(&s);
    struct cf_cert_spec e = {.key = k, .serial = 0x05, .key_usage = CF_KU_NONE};
    X509 *empty = cf_cert_new(&e);
    char *n;
    char label[256];

    (void)state;
    n = x509u_name(X509_get_subject_name(x));
    assert_string_equal(n, "CN=a\\,b\\+c,O=Corp"); /* RFC 4514 escaping */
    free(n);
    n = x509u_name_cn(X509_get_subject_name(x));
    assert_string_equal(n, "a,b+c");
    free(n);
    assert_null(x509u_name_cn(X509_get_subject_name(empty)));
    x509u_label(x, label, sizeof(label));
    assert_string_equal(label, "CN=a\\,b\\+c,O=Corp (serial 3F:A1)");
    x509u_label(empty, label, sizeof(label));
    assert_string_equal(label, "(empty subject) (serial 05)");
    assert_true(x509u_self_issued(x));
    X509_free(x);
    X509_free(empty);
    EVP_PKEY_free(k);
}

/* The issuer among two lists: by signature, not by name alone; never the certificate itself. */
static void
test_find_issuer(void **state)
{
    EVP_PKEY *ca_key = cf_key_new(CF_KEY_EC_P256);
    EVP_PKEY *stranger_key = cf_key_new(CF_KEY_EC_P256);
    EVP_PKEY *leaf_key = cf_key_new(CF_KEY_EC_P256);
    /* the same name as the CA and no key identifiers: only the signature tells them apart */
    X509 *ca = cf_cert_new(
        &(struct cf_cert_spec){.cn = "Issuing", .key = ca_key, .bc = CF_BC_CA, .no_aki = true});
    X509 *stranger = cf_cert_new(&(struct cf_cert_spec){
        .cn = "Issuing", .key = stranger_key, .bc = CF_BC_CA, .no_aki = true});
    X509 *leaf = cf_cert_new(&(struct cf_cert_spec){.cn = "leaf",
                                                    .key = leaf_key,
                                                    .issuer = ca,
                                                    .issuer_key = ca_key,
                                                    .bc = CF_BC_LEAF,
                                                    .no_aki = true});
    STACK_OF(X509) *first = sk_X509_new_null();
    STACK_OF(X509) *second = sk_X509_new_null();

    (void)state;
    assert_null(x509u_find_issuer(leaf, NULL, NULL));
    assert_true(sk_X509_push(first, leaf));
    assert_true(sk_X509_push(first, stranger));
    assert_null(x509u_find_issuer(leaf, first, NULL));
    assert_true(sk_X509_push(second, ca));
    assert_ptr_equal(x509u_find_issuer(leaf, first, second), ca);
    assert_ptr_equal(x509u_find_issuer(leaf, second, NULL), ca);
    assert_ptr_equal(x509u_find_issuer(leaf, NULL, second), ca);
    assert_null(x509u_find_issuer(ca, second, first)); /* self-signed: not its own issuer */
    sk_X509_free(first);
    sk_X509_free(second);
    X509_free(leaf);
    X509_free(stranger);
    X509_free(ca);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(stranger_key);
    EVP_PKEY_free(ca_key);
}

static void
test_fingerprints(void **state)
{
    EVP_PKEY *k = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec s = {.cn = "fp", .key = k, .serial = 9};
    X509 *x = cf_cert_new(&s);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *got;
    char *want;

    (void)state;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    want = x509u_hex_colon(md, n);
    got = x509u_fingerprint(x);
    assert_string_equal(got, want);
    free(got);
    free(want);
    assert_int_equal(X509_pubkey_digest(x, EVP_sha256(), md, &n), 1);
    got = x509u_spki_fingerprint(k);
    /* The SPKI digest covers the whole SubjectPublicKeyInfo, not just the key bits. */
    want = x509u_hex_colon(md, n);
    assert_string_not_equal(got, want);
    assert_int_equal(strlen(got), 95);
    free(want);
    /* The certificate's SubjectPublicKeyInfo, as it carries it, gives the same digest. */
    want = x509u_cert_spki_fingerprint(x);
    assert_non_null(want);
    assert_string_equal(want, got);
    free(got);
    free(want);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void
test_sig_digest(void **state)
{
    (void)state;
    assert_string_equal(x509u_sig_digest(NID_ecdsa_with_SHA256), "SHA256");
    assert_string_equal(x509u_sig_digest(NID_sha1WithRSAEncryption), "SHA1");
    assert_string_equal(x509u_sig_digest(NID_ED25519), "");
}

static void
test_time_roundtrip(void **state)
{
    ASN1_TIME *t = ASN1_TIME_new();
    int64_t out = 0;

    (void)state;
    assert_non_null(t);
    assert_non_null(ASN1_TIME_set(t, (time_t)1790847000));
    assert_true(x509u_time(t, &out));
    assert_int_equal(out, 1790847000);
    assert_false(x509u_time(NULL, &out));
    ASN1_TIME_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time_valid), cmocka_unit_test(test_parse_time_invalid),
        cmocka_unit_test(test_fmt_days),         cmocka_unit_test(test_fmt_days_under_a_day),
        cmocka_unit_test(test_fmt_dates),        cmocka_unit_test(test_hex_colon),
        cmocka_unit_test(test_serial),           cmocka_unit_test(test_key_describe),
        cmocka_unit_test(test_names_and_label),  cmocka_unit_test(test_find_issuer),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_sig_digest),       cmocka_unit_test(test_time_roundtrip),
    };

    return cmocka_run_group_tests_name("x509util", tests, NULL, NULL);
}
