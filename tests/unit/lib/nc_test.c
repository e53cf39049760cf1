/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nc_test.c - unit tests of src/lib/nc.c: host name syntax (valid and
 * invalid names with the reason given), DNS subtrees, what a wildcard can
 * stand for against a subtree, and nc_check_chain() on chains from the
 * certificate factory, each refusal with its category, code, depth and
 * sentence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "lib/nc.h"
#include "testlib/certfactory.h"

static void
test_dns_name_valid(void **state)
{
    static const char *const ok[] = {
        "a", "example.com", "A-1.Example.COM", "xn--bcher-kva.example", "1.example",
        "a23456789012345678901234567890123456789012345678901234567890123.example",
    };
    static const char *const ok_wild[] = {"*.example.com", "*.a"};

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!nc_dns_name_valid(ok[i], strlen(ok[i]), false, NULL, 0))
            fail_msg("%s should be a valid host name", ok[i]);
    }
    for (size_t i = 0; i < sizeof(ok_wild) / sizeof(ok_wild[0]); i++) {
        assert_true(nc_dns_name_valid(ok_wild[i], strlen(ok_wild[i]), true, NULL, 0));
        assert_false(nc_dns_name_valid(ok_wild[i], strlen(ok_wild[i]), false, NULL, 0));
    }
}

static void
test_dns_name_invalid(void **state)
{
    static const struct {
        const char *name;
        bool wildcard;
        const char *why;
    } cases[] = {
        {"", true, "it is empty"},
        {".example.com", true, "it has an empty label (a leading or doubled dot)"},
        {"a..example", true, "it has an empty label (a leading or doubled dot)"},
        {"example.com.", true, "it ends with a dot"},
        {"-a.example", true, "a label starts with a hyphen"},
        {"a-.example", true, "a label ends with a hyphen"},
        {"example-", true, "a label ends with a hyphen"},
        {"my_host.example", true, "'_' is not allowed in a host name"},
        {"f*.example.com", true, "a wildcard is allowed only as the whole left-most label"},
        {"a.*.example.com", true, "a wildcard is allowed only as the whole left-most label"},
        {"*.*.example.com", true, "a wildcard is allowed only as the whole left-most label"},
        {"*", true, "a wildcard is allowed only as the whole left-most label"},
        {"*.", true, "a wildcard is allowed only as the whole left-most label"},
        {"a b.example", true, "byte 0x20 is not allowed in a host name"},
        {"caf\xc3\xa9.example", true, "byte 0xC3 is not allowed in a host name"},
        {"a234567890123456789012345678901234567890123456789012345678901234.example", true,
         "a label is longer than 63 characters"},
    };
    char why[160];
    char longname[300];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        if (nc_dns_name_valid(cases[i].name, strlen(cases[i].name), cases[i].wildcard, why,
                              sizeof(why)))
            fail_msg("\"%s\" should be refused", cases[i].name);
        assert_contains(why, cases[i].why);
    }
    /* A NUL inside the IA5String is a byte like any other. */
    assert_false(nc_dns_name_valid("a\0.example", 10, false, why, sizeof(why)));
    assert_contains(why, "byte 0x00");
    /* 253 characters at most. */
    memset(longname, 'a', sizeof(longname));
    for (size_t i = 50; i < 260; i += 51)
        longname[i] = '.';
    assert_true(nc_dns_name_valid(longname, 253, false, why, sizeof(why)));
    assert_false(nc_dns_name_valid(longname, 254, false, why, sizeof(why)));
    assert_string_equal(why, "it is longer than 253 characters");
}

static bool
in_subtree(const char *name, const char *base)
{
    return nc_dns_in_subtree(name, strlen(name), base, strlen(base));
}

static void
test_dns_in_subtree(void **state)
{
    (void)state;
    assert_true(in_subtree("example.com", "example.com"));
    assert_true(in_subtree("www.Example.com", "example.COM"));
    assert_true(in_subtree("a.b.example.com", "example.com"));
    assert_true(in_subtree("anything", ""));
    assert_false(in_subtree("notexample.com", "example.com"));
    assert_false(in_subtree("example.com", "www.example.com"));
    assert_false(in_subtree("com", "example.com"));
    /* OpenSSL's reading of a leading period, which duet refuses in a certificate. */
    assert_true(in_subtree("a.example.com", ".example.com"));
    assert_false(in_subtree("example.com", ".example.com"));
}

static bool
meets(const char *wild, const char *base)
{
    return nc_wildcard_meets(wild + 2, strlen(wild) - 2, base, strlen(base));
}

static bool
within(const char *wild, const char *base)
{
    return nc_wildcard_within(wild + 2, strlen(wild) - 2, base, strlen(base));
}

static void
test_wildcard_against_subtrees(void **state)
{
    (void)state;
    /* Some name of *.example.com is in: */
    assert_true(meets("*.example.com", "bar.example.com")); /* bar.example.com itself */
    assert_true(meets("*.example.com", "BAR.Example.com"));
    assert_true(meets("*.example.com", "example.com"));     /* all of them */
    assert_true(meets("*.example.com", "com"));
    assert_true(meets("*.example.com", ""));
    /* No name of *.example.com is in: */
    assert_false(meets("*.example.com", "a.bar.example.com")); /* two labels deeper */
    assert_false(meets("*.example.com", "example.org"));
    assert_false(meets("*.example.com", "barexample.com"));
    assert_false(meets("*.example.com", "bar.xexample.com"));
    assert_false(meets("*.example.com", ".bar.example.com"));
    /* Every name of *.example.com is in: */
    assert_true(within("*.example.com", "example.com"));
    assert_true(within("*.a.example.com", "example.com"));
    assert_true(within("*.example.com", ""));
    assert_false(within("*.example.com", "bar.example.com"));
    assert_false(within("*.example.com", "a.example.com"));
    assert_false(within("*.example.com", "example.org"));
}

/* ---- nc_check_chain() on factory chains ---- */

static EVP_PKEY *k_root, *k_int, *k_leaf;
static X509 *root;

static int
setup(void **state)
{
    struct cf_cert_spec rs = {.cn = "NC Root", .key = NULL, .serial = 1, .bc = CF_BC_CA};

    (void)state;
    k_root = cf_key_new(CF_KEY_EC_P256);
    k_int = cf_key_new(CF_KEY_EC_P256);
    k_leaf = cf_key_new(CF_KEY_EC_P256);
    rs.key = k_root;
    root = cf_cert_new(&rs);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(root);
    EVP_PKEY_free(k_root);
    EVP_PKEY_free(k_int);
    EVP_PKEY_free(k_leaf);
    return 0;
}

/* Run nc_check_chain() on leaf <- intermediate(nc) <- root; returns its result. */
static int
check(const char *const *nc, const char *const *leaf_sans, bool leaf_nc, enum verify_fail *fail,
      int *code, int *depth, struct duet_err *err)
{
    struct cf_cert_spec is = {.cn = "NC Int",
                              .key = k_int,
                              .issuer = root,
                              .issuer_key = k_root,
                              .serial = 2,
                              .bc = CF_BC_CA,
                              .name_constraints = nc};
    X509 *inter = cf_cert_new(&is);
    struct cf_cert_spec ls = {.cn = "leaf",
                              .key = k_leaf,
                              .issuer = inter,
                              .issuer_key = k_int,
                              .serial = 3,
                              .bc = CF_BC_LEAF,
                              .sans = leaf_sans,
                              .name_constraints = leaf_nc ? nc : NULL};
    X509 *leaf = cf_cert_new(&ls);
    STACK_OF(X509) *chain = cf_certs(leaf, inter, root, NULL);
    int rc;

    *fail = VERIFY_OK;
    *code = 0;
    *depth = -1;
    err_clear(err);
    rc = nc_check_chain(chain, fail, code, depth, err);
    OSSL_STACK_OF_X509_free(chain);
    X509_free(leaf);
    X509_free(inter);
    return rc;
}

static void
test_chain_checks(void **state)
{
    static const char *const excl[] = {"excluded;DNS:bar.example.com", NULL};
    static const char *const perm[] = {"permitted;DNS:example.com", NULL};
    static const char *const perm_bar[] = {"permitted;DNS:bar.example.com", NULL};
    static const char *const ip_only[] = {"permitted;IP:10.0.0.0/255.0.0.0", NULL};
    static const char *const wild[] = {"DNS:*.example.com", NULL};
    static const char *const plain[] = {"DNS:foo.example.com", NULL};
    static const char *const under[] = {"DNS:a_b.example.com", NULL};
    enum verify_fail fail;
    int code;
    int depth;
    struct duet_err err;

    (void)state;
    assert_int_equal(check(perm, wild, false, &fail, &code, &depth, &err), 0);
    assert_int_equal(check(ip_only, wild, false, &fail, &code, &depth, &err), 0);
    assert_int_equal(check(excl, plain, false, &fail, &code, &depth, &err), 0);

    assert_int_equal(check(excl, wild, false, &fail, &code, &depth, &err), -1);
    assert_int_equal(fail, VERIFY_NAME_CONSTRAINTS);
    assert_int_equal(code, X509_V_ERR_EXCLUDED_VIOLATION);
    assert_int_equal(depth, 0);
    assert_string_equal(err.msg,
                        "certificate CN=leaf (serial 03) has the wildcard DNS name *.example.com, "
                        "which can stand for names in the excluded subtree DNS:bar.example.com "
                        "of the name constraints of CN=NC Int (serial 02) (RFC 5280 4.2.1.10)");

    assert_int_equal(check(perm_bar, wild, false, &fail, &code, &depth, &err), -1);
    assert_int_equal(fail, VERIFY_NAME_CONSTRAINTS);
    assert_int_equal(code, X509_V_ERR_PERMITTED_VIOLATION);
    assert_string_equal(err.msg,
                        "certificate CN=leaf (serial 03) has the wildcard DNS name *.example.com, "
                        "which can stand for names outside the DNS subtrees permitted by the name "
                        "constraints of CN=NC Int (serial 02) (RFC 5280 4.2.1.10)");

    assert_int_equal(check(perm, under, false, &fail, &code, &depth, &err), -1);
    assert_int_equal(fail, VERIFY_MALFORMED);
    assert_int_equal(code, X509_V_ERR_UNSUPPORTED_NAME_SYNTAX);
    assert_contains(err.msg, "has the DNS name \"a_b.example.com\" in its subject alternative "
                             "names, which is not a valid host name: '_' is not allowed");

    assert_int_equal(check(perm, plain, true, &fail, &code, &depth, &err), -1);
    assert_int_equal(fail, VERIFY_MALFORMED);
    assert_int_equal(depth, 0);
    assert_contains(err.msg, "certificate CN=leaf (serial 03) carries a nameConstraints extension "
                             "but is not a CA certificate");
}

static void
test_constraint_names_shown_escaped(void **state)
{
    static const char *const nc[] = {"permitted;DNS:.\"a\\b", NULL};
    static const char *const sans[] = {"DNS:x.example", NULL};
    enum verify_fail fail;
    int code;
    int depth;
    struct duet_err err;

    (void)state;
    assert_int_equal(check(nc, sans, false, &fail, &code, &depth, &err), -1);
    assert_int_equal(fail, VERIFY_MALFORMED);
    assert_int_equal(code, X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX);
    assert_int_equal(depth, 1);
    assert_contains(err.msg, "the permitted DNS name constraint \".\\x22a\\x5cb\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_name_valid),
        cmocka_unit_test(test_dns_name_invalid),
        cmocka_unit_test(test_dns_in_subtree),
        cmocka_unit_test(test_wildcard_against_subtrees),
        cmocka_unit_test(test_chain_checks),
        cmocka_unit_test(test_constraint_names_shown_escaped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
