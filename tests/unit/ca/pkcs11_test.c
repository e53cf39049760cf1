/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_test.c - unit tests of the RFC 7512 URI parser of src/ca/pkcs11.c:
 * what `key_uri:` and `duet ca init --key-uri` accept, the decoded values,
 * and the refusals (a PIN in the URI above all, whose value never reaches a
 * message).  Signing through a token is tested with SoftHSM2 in
 * tests/integration/test_ca_pkcs11.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/pkcs11.h"
#include "lib/err.h"

static void
test_parse_full(void **state)
{
    struct ca_pkcs11_uri u;
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(ca_pkcs11_uri_parse("pkcs11:token=duet%20ca;object=issuing;id=%01%a2;"
                                         "type=private;serial=abc;manufacturer=SoftHSM%20project;"
                                         "model=SoftHSM%20v2?module-path=/usr/lib/softhsm/"
                                         "libsofthsm2.so&pin-source=file:/etc/duet/pin",
                                         &u, &err),
                     0);
    assert_string_equal(u.token, "duet ca");
    assert_string_equal(u.object, "issuing");
    assert_int_equal(u.id_len, 2);
    assert_int_equal(u.id[0], 0x01);
    assert_int_equal(u.id[1], 0xa2);
    assert_string_equal(u.serial, "abc");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "file:/etc/duet/pin");
    ca_pkcs11_uri_clear(&u);
    assert_null(u.token);
}

static void
test_parse_minimal(void **state)
{
    struct ca_pkcs11_uri u;
    struct duet_err err = {0};

    (void)state;
    /* The scheme is case-insensitive; empty segments are skipped; id alone names the key. */
    assert_int_equal(ca_pkcs11_uri_parse("PKCS11:serial=42;;id=%7f", &u, &err), 0);
    assert_null(u.token);
    assert_string_equal(u.serial, "42");
    assert_null(u.object);
    assert_int_equal(u.id_len, 1);
    assert_int_equal(u.id[0], 0x7f);
    assert_null(u.module_path);
    assert_null(u.pin_source);
    ca_pkcs11_uri_clear(&u);
}

static void
test_refusals(void **state)
{
    static const struct {
        const char *uri;
        const char *want; /* a part of the message */
    } cases[] = {
        {"file:/etc/key.pem", "expected pkcs11:token=LABEL;object=LABEL"},
        {"pkcs11:object=issuing", "no token named"},
        {"pkcs11:token=t", "no key named"},
        {"pkcs11:token=t;object=k;object=j", "object is given twice"},
        {"pkcs11:token=t;object=", "object: expected a non-empty text value"},
        {"pkcs11:token=t;object=a%2", "'%' must start two hex digits"},
        {"pkcs11:token=t;object=a%zz", "'%' must start two hex digits"},
        {"pkcs11:token=t;object=a%00b", "expected a non-empty text value"},
        {"pkcs11:token=t;object=a b", "byte 0x20 must be percent-encoded"},
        {"pkcs11:token=t;object=a\"b", "byte 0x22 must be percent-encoded"},
        {"pkcs11:token=t;object=k;type=cert", "type: expected private"},
        {"pkcs11:token=t;object=k;slot-id=3", "unknown attribute \"slot-id\"; expected token"},
        {"pkcs11:token=t;object", "expected attributes as name=value"},
        {"pkcs11:token=t;object=k?pin-source=env:PIN", "pin-source: expected file:/PATH"},
        {"pkcs11:token=t;object=k?pin-value=s3cret-1234", "pin-value is not accepted"},
        {"pkcs11:token=t;pin-value=s3cret-1234;object=k", "pin-value is not accepted"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_pkcs11_uri u;
        struct duet_err err = {0};
        print_message("%s\n", cases[i].uri);
        assert_int_equal(ca_pkcs11_uri_parse(cases[i].uri, &u, &err), -1);
        assert_non_null(strstr(err.msg, cases[i].want));
        /* A PIN given in the URI never reaches a message. */
        assert_null(strstr(err.msg, "s3cret"));
        assert_null(u.token);
        assert_null(u.object);
    }
}

static void
test_with_pin_file(void **state)
{
    struct duet_err err = {0};
    char dir[] = "/tmp/duet-pkcs11-test-XXXXXX";
    char path[256];
    char want[400];
    char *out;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pin", dir);
    fclose(fopen(path, "w"));
    out = ca_pkcs11_uri_with_pin_file("pkcs11:token=t;object=k", path, &err);
    snprintf(want, sizeof(want), "pkcs11:token=t;object=k?pin-source=file:%s", path);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    out = ca_pkcs11_uri_with_pin_file("pkcs11:token=t;object=k?module-path=/m.so", path, &err);
    snprintf(want, sizeof(want), "pkcs11:token=t;object=k?module-path=/m.so&pin-source=file:%s",
             path);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    /* Two places naming the PIN is one too many. */
    assert_null(
        ca_pkcs11_uri_with_pin_file("pkcs11:token=t;object=k?pin-source=file:/x", path, &err));
    assert_non_null(strstr(err.msg, "give one of them"));
    unlink(path);
    assert_null(ca_pkcs11_uri_with_pin_file("pkcs11:token=t;object=k", path, &err));
    assert_non_null(strstr(err.msg, "the PIN file cannot be found"));
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_with_pin_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
