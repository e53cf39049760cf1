/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11_objects_test.c - unit tests of src/ca/pkcs11_objects.c that need
 * no token: the keys refused before any module is loaded (Ed25519, curves
 * other than P-256/P-384, short RSA), and the module errors naming the URI.
 * Generation and import in a real token are tested with SoftHSM2 in
 * tests/integration/test_ca_pkcs11_objects.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ca/pkcs11_objects.h"
#include "lib/err.h"

/* A module that does not exist: reaching it would fail with "cannot be loaded". */
#define NOWHERE "pkcs11:token=t;object=k?module-path=/nonexistent/libnothing.so"

static void
test_import_refuses_keys_before_the_token(void **state)
{
    static const struct {
        const char *kind;
        const char *want;
    } cases[] = {
        {"ED25519", NOWHERE ": the key is Ed25519; a token key for duet is EC P-256, P-384 or "
                            "RSA 2048+"},
        {"P-521", NOWHERE ": the key is EC P-521; a token key for duet is EC P-256, P-384 or "
                          "RSA 2048+"},
        {"RSA1024", NOWHERE ": the key is RSA 1024; a token key for duet is EC P-256, P-384 or "
                            "RSA 2048+"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        EVP_PKEY *k = strcmp(cases[i].kind, "ED25519") == 0
                          ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                      : strcmp(cases[i].kind, "RSA1024") == 0 ? EVP_RSA_gen(1024)
                                                              : EVP_EC_gen(cases[i].kind);
        assert_non_null(k);
        assert_int_equal(ca_pkcs11_import(NOWHERE, k, &err), -1);
        assert_string_equal(err.msg, cases[i].want);
        EVP_PKEY_free(k);
    }
}

static void
test_generate_refuses_ed25519(void **state)
{
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(ca_pkcs11_generate(NOWHERE, CA_KEY_ED25519, &err), -1);
    assert_string_equal(err.msg, "--generate-key: an ed25519 key in a token cannot sign through "
                                 "libp11; expected --key-type p256, p384 or rsa3072");
}

static void
test_module_errors_name_the_uri(void **state)
{
    struct duet_err err = {0};
    EVP_PKEY *k = EVP_EC_gen("P-256");

    (void)state;
    assert_non_null(k);
    assert_int_equal(ca_pkcs11_generate(NOWHERE, CA_KEY_P256, &err), -1);
    assert_string_equal(err.msg, NOWHERE ": the PKCS#11 module /nonexistent/libnothing.so "
                                         "cannot be loaded");
    assert_int_equal(ca_pkcs11_import(NOWHERE, k, &err), -1);
    assert_string_equal(err.msg, NOWHERE ": the PKCS#11 module /nonexistent/libnothing.so "
                                         "cannot be loaded");
    assert_int_equal(ca_pkcs11_destroy(NOWHERE, &err), -1);
    assert_string_equal(err.msg, NOWHERE ": the PKCS#11 module /nonexistent/libnothing.so "
                                         "cannot be loaded");
    unsetenv("DUET_PKCS11_MODULE");
    assert_int_equal(ca_pkcs11_generate("pkcs11:token=t;object=k", CA_KEY_P256, &err), -1);
    assert_non_null(strstr(err.msg, "pkcs11:token=t;object=k: no PKCS#11 module named"));
    /* A URI with a PIN is refused by the parser, and the PIN not repeated. */
    assert_int_equal(ca_pkcs11_import(NOWHERE "&pin-value=4711", k, &err), -1);
    assert_non_null(strstr(err.msg, "pin-value is not accepted"));
    assert_null(strstr(err.msg, "4711"));
    EVP_PKEY_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_refuses_keys_before_the_token),
        cmocka_unit_test(test_generate_refuses_ed25519),
        cmocka_unit_test(test_module_errors_name_the_uri),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
