/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys_test.c - unit tests of the subject keys the CA certifies
 * (src/ca/keys.c): the keys duet's verification accepts pass, the others are
 * refused with their description.  Key type names and generation are tested
 * in ca_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "ca/keys.h"
#include "lib/err.h"
#include "testlib/certfactory.h"

static EVP_PKEY *
key_of(const char *what)
{
    if (strcmp(what, "p256") == 0)
        return cf_key_new(CF_KEY_EC_P256);
    if (strcmp(what, "p384") == 0)
        return cf_key_new(CF_KEY_EC_P384);
    if (strcmp(what, "p521") == 0)
        return EVP_EC_gen("P-521");
    if (strcmp(what, "secp256k1") == 0)
        return EVP_EC_gen("secp256k1");
    if (strcmp(what, "ed25519") == 0)
        return cf_key_new(CF_KEY_ED25519);
    if (strcmp(what, "ed448") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    if (strcmp(what, "rsa1024") == 0)
        return cf_key_new(CF_KEY_RSA_1024);
    return cf_key_new(CF_KEY_RSA_2048);
}

static void
test_subject_keys(void **state)
{
    static const struct {
        const char *key;
        const char *refused; /* the description in the message; NULL: accepted */
    } cases[] = {
        {"p256", NULL},
        {"p384", NULL},
        {"p521", NULL},
        {"ed25519", NULL},
        {"rsa2048", NULL},
        {"rsa1024", "RSA 1024"},
        {"secp256k1", "EC secp256k1"},
        {"ed448", "Ed448"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = key_of(cases[i].key);
        struct duet_err err = {0};
        char want[200];
        int rc;

        assert_non_null(k);
        rc = ca_key_check_subject(k, &err);
        if (cases[i].refused == NULL) {
            if (rc != 0)
                fail_msg("%s refused: %s", cases[i].key, err.msg);
        } else {
            snprintf(want, sizeof(want),
                     "the subject's key is %s; duet issues for RSA 2048+, EC P-256/384/521 and "
                     "Ed25519 keys",
                     cases[i].refused);
            assert_int_equal(rc, -1);
            assert_string_equal(err.msg, want);
        }
        EVP_PKEY_free(k);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
