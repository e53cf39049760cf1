/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certprofile_test.c - unit tests of src/lib/certprofile.c: each RFC 5280
 * profile rule on a certificate that keeps it and one that breaks it, with
 * the exact sentence, and the trust anchor's exemption for its serial.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/certprofile.h"
#include "testlib/certfactory.h"

static EVP_PKEY *key;

static int
setup(void **state)
{
    (void)state;
    key = cf_key_new(CF_KEY_EC_P256);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    return 0;
}

/* certprofile_check() on a self-signed certificate at index i of n; the sentence in msg. */
static int
check(const struct cf_cert_spec *spec, int i, int n, char *msg, size_t len)
{
    X509 *x = cf_cert_new(spec);
    enum verify_fail fail = VERIFY_OK;
    struct duet_err err;
    int rc;

    err_clear(&err);
    rc = certprofile_check(x, i, n, &fail, &err);
    X509_free(x);
    if (rc != 0) {
        assert_int_equal(rc, -1);
        assert_int_equal(fail, VERIFY_MALFORMED);
        assert_int_equal(err.kind, DUET_ERR_INVALID);
    }
    snprintf(msg, len, "%s", err.msg);
    return rc;
}

static void
test_serial(void **state)
{
    static const struct {
        const char *hex;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {"01", NULL},
        {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NULL}, /* 20 octets */
        {"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NULL},   /* 19 + the sign octet */
        {"80FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "it is longer than 20 octets"},
        {"010000000000000000000000000000000000000000", "it is longer than 20 octets"},
        {"0", "it is zero; a serial number MUST be a positive integer"},
        {"-01", "it is negative; a serial number MUST be a positive integer"},
    };
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct cf_cert_spec s = {.cn = "serial.example", .key = key, .serial_hex = cases[k].hex};
        int rc = check(&s, 0, 2, msg, sizeof(msg));
        if (cases[k].why == NULL) {
            if (rc != 0)
                fail_msg("serial %s refused: %s", cases[k].hex, msg);
            continue;
        }
        if (rc == 0)
            fail_msg("serial %s accepted", cases[k].hex);
        assert_contains(msg, "certificate CN=serial.example (serial ");
        assert_contains(msg, ") has a malformed serial number: ");
        assert_contains(msg, cases[k].why);
        assert_contains(msg, "(RFC 5280 4.1.2.2)");
        /* The trust anchor's serial is not relied on (certprofile.c). */
        assert_int_equal(check(&s, 1, 2, msg, sizeof(msg)), 0);
    }
}

static void
test_san_critical(void **state)
{
    static const char *const sans[] = {"DNS:a.example", NULL};
    struct cf_cert_spec with_subject = {.cn = "a.example", .key = key, .serial = 0x11,
                                        .sans = sans, .san_critical = true};
    struct cf_cert_spec empty_subject = {.key = key, .serial = 0x12, .sans = sans,
                                         .san_critical = true};
    struct cf_cert_spec noncritical = {.cn = "a.example", .key = key, .serial = 0x13,
                                       .sans = sans};
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    assert_int_equal(check(&with_subject, 0, 2, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "certificate CN=a.example (serial 11) has a critical subjectAltName "
                             "extension beside a non-empty subject (RFC 5280 4.2.1.6: it is "
                             "critical only when the subject is empty)");
    assert_int_equal(check(&empty_subject, 0, 2, msg, sizeof(msg)), 0);
    assert_int_equal(check(&noncritical, 0, 2, msg, sizeof(msg)), 0);
}

static void
test_aia(void **state)
{
    static const uint8_t empty[] = {0x30, 0x00};
    static const uint8_t ocsp[] = {0x30, 0x1e, 0x30, 0x1c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05,
                                   0x05, 0x07, 0x30, 0x01, 0x86, 0x10, 'h',  't',  't',  'p',
                                   ':',  '/',  '/',  'o',  '.',  'e',  'x',  'a',  'm',  'p',
                                   'l',  'e'};
    const struct cf_raw_ext raw_empty[] = {{"authorityInfoAccess", false, empty, sizeof(empty)},
                                           {NULL, false, NULL, 0}};
    const struct cf_raw_ext raw_ocsp[] = {{"authorityInfoAccess", false, ocsp, sizeof(ocsp)},
                                          {NULL, false, NULL, 0}};
    struct cf_cert_spec bad = {.cn = "aia", .key = key, .serial = 0x21, .raw_exts = raw_empty};
    struct cf_cert_spec good = {.cn = "aia", .key = key, .serial = 0x22, .raw_exts = raw_ocsp};
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    assert_int_equal(check(&bad, 0, 2, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "certificate CN=aia (serial 21) has an empty authorityInfoAccess "
                             "extension (RFC 5280 4.2.2.1: it holds at least one access "
                             "description)");
    assert_int_equal(check(&bad, 1, 2, msg, sizeof(msg)), -1); /* the anchor too */
    assert_int_equal(check(&good, 0, 2, msg, sizeof(msg)), 0);
}

static void
test_aki(void **state)
{
    static const uint8_t empty[] = {0x30, 0x00};
    const struct cf_raw_ext raw[] = {{"authorityKeyIdentifier", false, empty, sizeof(empty)},
                                     {NULL, false, NULL, 0}};
    struct cf_cert_spec keyless = {.cn = "Root", .key = key, .serial = 0x31, .bc = CF_BC_CA,
                                   .no_aki = true, .raw_exts = raw};
    struct cf_cert_spec none = {.cn = "Root", .key = key, .serial = 0x32, .bc = CF_BC_CA,
                                .no_aki = true};
    struct cf_cert_spec keyid = {.cn = "Root", .key = key, .serial = 0x33, .bc = CF_BC_CA};
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    assert_int_equal(check(&keyless, 0, 1, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "certificate CN=Root (serial 31) has an authorityKeyIdentifier "
                             "extension without keyIdentifier (RFC 5280 4.2.1.1: keyIdentifier "
                             "MUST be included; a self-signed certificate may leave the whole "
                             "extension out instead)");
    assert_int_equal(check(&none, 0, 1, msg, sizeof(msg)), 0);
    assert_int_equal(check(&keyid, 0, 1, msg, sizeof(msg)), 0);
}

/* An extension OpenSSL knows whose value does not decode as its syntax (RFC 5280 4.2). */
static void
test_malformed_known_extension(void **state)
{
    static const uint8_t garbage[] = {'m', 'a', 'l', 'f', 'o', 'r', 'm', 'e', 'd'};
    /* A valid AIA (one OCSP URI) followed by one stray byte. */
    static const uint8_t trailing[] = {0x30, 0x1e, 0x30, 0x1c, 0x06, 0x08, 0x2b, 0x06, 0x01,
                                       0x05, 0x05, 0x07, 0x30, 0x01, 0x86, 0x10, 'h',  't',
                                       't',  'p',  ':',  '/',  '/',  'o',  '.',  'e',  'x',
                                       'a',  'm',  'p',  'l',  'e',  0x00};
    /* subjectInfoAccess with one caRepository URI: well-formed. */
    static const uint8_t sia[] = {0x30, 0x1e, 0x30, 0x1c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05,
                                  0x05, 0x07, 0x30, 0x05, 0x86, 0x10, 'h',  't',  't',  'p',
                                  ':',  '/',  '/',  'r',  '.',  'e',  'x',  'a',  'm',  'p',
                                  'l',  'e'};
    static const struct {
        const char *ext;
        const uint8_t *der;
        size_t len;
        const char *sentence; /* NULL: accepted */
    } cases[] = {
        {"authorityInfoAccess", garbage, sizeof(garbage),
         "certificate CN=ext (serial 41) has a malformed authorityInfoAccess extension: its "
         "value is not the DER of the extension's syntax (RFC 5280 4.2)"},
        {"authorityInfoAccess", trailing, sizeof(trailing),
         "certificate CN=ext (serial 41) has a malformed authorityInfoAccess extension: its "
         "value is not the DER of the extension's syntax (RFC 5280 4.2)"},
        {"subjectInfoAccess", garbage, sizeof(garbage),
         "certificate CN=ext (serial 41) has a malformed subjectInfoAccess extension: its "
         "value is not the DER of the extension's syntax (RFC 5280 4.2)"},
        {"issuerAltName", garbage, sizeof(garbage),
         "certificate CN=ext (serial 41) has a malformed issuerAltName extension: its value "
         "is not the DER of the extension's syntax (RFC 5280 4.2)"},
        {"freshestCRL", garbage, sizeof(garbage),
         "certificate CN=ext (serial 41) has a malformed freshestCRL extension: its value is "
         "not the DER of the extension's syntax (RFC 5280 4.2)"},
        {"subjectInfoAccess", sia, sizeof(sia), NULL},
        {"1.3.6.1.4.1.55555.1", garbage, sizeof(garbage), NULL}, /* unknown, not critical */
    };
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct cf_raw_ext raw[] = {{cases[k].ext, false, cases[k].der, cases[k].len},
                                         {NULL, false, NULL, 0}};
        struct cf_cert_spec s = {.cn = "ext", .key = key, .serial = 0x41, .raw_exts = raw};
        int rc = check(&s, 0, 2, msg, sizeof(msg));
        if (cases[k].sentence == NULL) {
            if (rc != 0)
                fail_msg("case %zu (%s) refused: %s", k, cases[k].ext, msg);
            continue;
        }
        if (rc == 0)
            fail_msg("case %zu (%s) accepted", k, cases[k].ext);
        assert_string_equal(msg, cases[k].sentence);
        assert_int_equal(check(&s, 1, 2, msg, sizeof(msg)), -1); /* the anchor too */
    }
}

/* A trust anchor that is not self-signed must name its issuer's key (RFC 5280 4.2.1.1). */
static void
test_anchor_not_self_signed_without_aki(void **state)
{
    EVP_PKEY *ikey = cf_key_new(CF_KEY_EC_P256);
    struct cf_cert_spec root = {.cn = "Other Root", .key = ikey, .serial = 0x50, .bc = CF_BC_CA};
    X509 *issuer = cf_cert_new(&root);
    struct cf_cert_spec bare = {.cn = "Cross", .key = key, .serial = 0x51, .bc = CF_BC_CA,
                                .issuer = issuer, .issuer_key = ikey, .no_aki = true};
    struct cf_cert_spec with_aki = {.cn = "Cross", .key = key, .serial = 0x52, .bc = CF_BC_CA,
                                    .issuer = issuer, .issuer_key = ikey};
    char msg[DUET_ERR_MSG_MAX];

    (void)state;
    assert_int_equal(check(&bare, 0, 1, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "certificate CN=Cross (serial 51) is not self-signed and has no "
                             "authorityKeyIdentifier extension (RFC 5280 4.2.1.1: only a "
                             "self-signed certificate may leave it out)");
    assert_int_equal(check(&bare, 1, 2, msg, sizeof(msg)), -1); /* as the anchor of a chain */
    assert_int_equal(check(&with_aki, 0, 1, msg, sizeof(msg)), 0);
    X509_free(issuer);
    EVP_PKEY_free(ikey);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_san_critical),
        cmocka_unit_test(test_aia),
        cmocka_unit_test(test_aki),
        cmocka_unit_test(test_malformed_known_extension),
        cmocka_unit_test(test_anchor_not_self_signed_without_aki),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
