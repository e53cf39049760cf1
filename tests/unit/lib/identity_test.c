/* SPDX-License-Identifier: Apache-2.0 */
/*
 * identity_test.c - unit tests of src/lib/identity.c: the subject, issuer,
 * serial and fingerprint formats, SAN collection of the four types duet
 * knows, the canonical-name rules of DESIGN.md ("Identity") as a table, the
 * validity times, and the refusal of SANs with an embedded NUL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "lib/err.h"
#include "lib/identity.h"
#include "testlib/certfactory.h"

static struct {
    EVP_PKEY *k_ca, *k_leaf;
    X509 *ca;
} F;

/* A leaf under the CA with the given names; the caller frees it. */
static X509 *
make(const char *cn, const char *ou, const char *o, const char *const *sans, uint64_t serial)
{
    struct cf_cert_spec s = {.cn = cn,
                             .ou = ou,
                             .o = o,
                             .key = F.k_leaf,
                             .issuer = F.ca,
                             .issuer_key = F.k_ca,
                             .serial = serial,
                             .eku = CF_EKU_CLIENT,
                             .sans = sans};

    return cf_cert_new(&s);
}

static struct duet_identity *
identity_of(X509 *x)
{
    struct duet_identity *id = NULL;
    struct duet_err err;

    err_clear(&err);
    if (identity_from_x509(x, &id, &err) != 0)
        fail_msg("identity_from_x509: %s", err.msg);
    assert_non_null(id);
    return id;
}

static void
test_names_serial(void **state)
{
    X509 *x = make("alice", "Eng", "Corp", NULL, 0x3FA107);
    struct duet_identity *id = identity_of(x);

    (void)state;
    assert_string_equal(id->subject, "CN=alice,OU=Eng,O=Corp");
    assert_string_equal(id->issuer, "CN=Identity CA,O=Corp");
    assert_string_equal(id->cn, "alice");
    assert_string_equal(id->serial, "3F:A1:07");
    assert_ptr_equal(id->cert, x);
    identity_free(id);
    X509_free(x);
}

static void
test_serial_high_bit(void **state)
{
    /* 0x80... needs a leading zero octet in DER; the printed serial has none. */
    X509 *x = make("hb", NULL, NULL, NULL, 0x80000000000000FFull);
    struct duet_identity *id = identity_of(x);

    (void)state;
    assert_string_equal(id->serial, "80:00:00:00:00:00:00:FF");
    identity_free(id);
    X509_free(x);
}

static void
test_fingerprint(void **state)
{
    X509 *x = make("fp", NULL, NULL, NULL, 7);
    struct duet_identity *id = identity_of(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char want[EVP_MAX_MD_SIZE * 3 + 1];

    (void)state;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    assert_int_equal(n, 32);
    for (unsigned int i = 0; i < n; i++)
        sprintf(want + i * 3, "%02X%s", md[i], i + 1 < n ? ":" : "");
    assert_string_equal(id->fingerprint, want);
    assert_int_equal(strlen(id->fingerprint), 95);
    identity_free(id);
    X509_free(x);
}

static void
test_utf8_subject(void **state)
{
    X509 *x = make("Zo\xc3\xab", NULL, NULL, NULL, 8);
    struct duet_identity *id = identity_of(x);

    (void)state;
    assert_string_equal(id->cn, "Zo\xc3\xab");
    assert_string_equal(id->subject, "CN=Zo\xc3\xab");
    assert_string_equal(id->name, "Zo\xc3\xab");
    identity_free(id);
    X509_free(x);
}

static void
test_all_san_types(void **state)
{
    static const char *const sans[] = {
        "DNS:a.example",  "IP:10.1.2.3", "URI:spiffe://corp/alice", "email:alice@corp.example",
        "IP:2001:db8::1", "RID:1.2.3.4", "DNS:b.example",           NULL};
    static const struct {
        enum duet_san_type type;
        const char *value;
    } want[] = {
        {DUET_SAN_DNS, "a.example"},           {DUET_SAN_IP, "10.1.2.3"},
        {DUET_SAN_URI, "spiffe://corp/alice"}, {DUET_SAN_EMAIL, "alice@corp.example"},
        {DUET_SAN_IP, "2001:db8::1"},          {DUET_SAN_DNS, "b.example"},
    };
    X509 *x = make("sans", NULL, NULL, sans, 9);
    struct duet_identity *id = identity_of(x);

    (void)state;
    /* The registeredID is not part of the identity. */
    assert_int_equal(id->nsans, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < id->nsans; i++) {
        assert_int_equal(id->sans[i].type, want[i].type);
        assert_string_equal(id->sans[i].value, want[i].value);
    }
    identity_free(id);
    X509_free(x);
}

static void
test_san_tags(void **state)
{
    (void)state;
    assert_string_equal(identity_san_tag(DUET_SAN_DNS), "DNS");
    assert_string_equal(identity_san_tag(DUET_SAN_IP), "IP");
    assert_string_equal(identity_san_tag(DUET_SAN_URI), "URI");
    assert_string_equal(identity_san_tag(DUET_SAN_EMAIL), "email");
}

/* The canonical name rules as a table. */
static const char *const sans_one_uri[] = {"DNS:svc.example", "URI:spiffe://corp/svc", NULL};
static const char *const sans_two_uri[] = {"URI:spiffe://corp/a", "DNS:first.example",
                                           "URI:spiffe://corp/b", "DNS:second.example", NULL};
static const char *const sans_two_uri_no_dns[] = {"URI:spiffe://corp/a", "URI:spiffe://corp/b",
                                                  NULL};
static const char *const sans_dns_ip[] = {"IP:10.0.0.9", "DNS:host.example", NULL};
static const char *const sans_ip_email[] = {"IP:10.0.0.9", "email:bob@corp.example", NULL};

static const struct name_case {
    const char *label;
    const char *cn;
    const char *o;
    const char *const *sans;
    const char *want;
} name_cases[] = {
    {"one URI SAN wins over DNS", "cn", NULL, sans_one_uri, "spiffe://corp/svc"},
    {"two URI SANs: the first DNS", "cn", NULL, sans_two_uri, "first.example"},
    {"two URI SANs, no DNS: the CN", "cn-two-uri", NULL, sans_two_uri_no_dns, "cn-two-uri"},
    {"DNS after IP: the DNS", "cn", NULL, sans_dns_ip, "host.example"},
    {"IP and email only: the CN", "cn-ip", NULL, sans_ip_email, "cn-ip"},
    {"no SAN: the CN", "just-cn", "Corp", NULL, "just-cn"},
    {"no SAN, no CN: the subject", NULL, "Corp", NULL, "O=Corp"},
};

static void
test_canonical_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        const struct name_case *c = &name_cases[i];
        X509 *x = make(c->cn, NULL, c->o, c->sans, 0x100 + i);
        struct duet_identity *id = identity_of(x);

        if (strcmp(id->name, c->want) != 0)
            fail_msg("%s: canonical name is \"%s\", expected \"%s\"", c->label, id->name, c->want);
        identity_free(id);
        X509_free(x);
    }
}

static void
test_no_cn(void **state)
{
    X509 *x = make(NULL, "Eng", "Corp", NULL, 10);
    struct duet_identity *id = identity_of(x);

    (void)state;
    assert_null(id->cn);
    assert_string_equal(id->subject, "OU=Eng,O=Corp");
    assert_string_equal(id->name, "OU=Eng,O=Corp");
    assert_int_equal(id->nsans, 0);
    identity_free(id);
    X509_free(x);
}

static void
test_validity(void **state)
{
    struct cf_cert_spec s = {.cn = "times",
                             .key = F.k_leaf,
                             .issuer = F.ca,
                             .issuer_key = F.k_ca,
                             .serial = 11,
                             .not_before = -2 * CF_DAY,
                             .not_after = 90 * CF_DAY};
    int64_t t0 = (int64_t)time(NULL);
    X509 *x = cf_cert_new(&s);
    int64_t t1 = (int64_t)time(NULL);
    struct duet_identity *id = identity_of(x);

    (void)state;
    assert_in_range(id->not_before, t0 - 2 * CF_DAY, t1 - 2 * CF_DAY);
    assert_in_range(id->not_after, t0 + 90 * CF_DAY, t1 + 90 * CF_DAY);
    identity_free(id);
    X509_free(x);
}

/* Add a SAN of the given type whose value holds an embedded NUL: "good\0.evil.example". */
static X509 *
make_with_nul(int gen_type)
{
    static const char v[] = "good.example\0.evil.example";
    X509 *x = make("nul", NULL, NULL, NULL, 12);
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    assert_non_null(gens);
    assert_non_null(g);
    assert_non_null(s);
    assert_int_equal(ASN1_STRING_set(s, v, (int)sizeof(v) - 1), 1);
    GENERAL_NAME_set0_value(g, gen_type, s);
    assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
    GENERAL_NAMES_free(gens);
    return x;
}

static void
test_embedded_nul_refused(void **state)
{
    static const struct {
        int gen;
        const char *msg;
    } cases[] = {
        {GEN_DNS, "the DNS subject alternative name is malformed"},
        {GEN_URI, "the URI subject alternative name is malformed"},
        {GEN_EMAIL, "the email subject alternative name is malformed"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x = make_with_nul(cases[i].gen);
        struct duet_identity *id = (struct duet_identity *)1;
        struct duet_err err;

        err_clear(&err);
        assert_int_equal(identity_from_x509(x, &id, &err), -1);
        assert_null(id);
        assert_int_equal(err.kind, DUET_ERR_INVALID);
        assert_contains(err.msg, cases[i].msg);
        X509_free(x);
    }
}

static void
test_identity_keeps_certificate(void **state)
{
    X509 *x = make("ref", NULL, NULL, NULL, 13);
    struct duet_identity *id = identity_of(x);

    (void)state;
    X509_free(x); /* the identity holds its own reference */
    assert_string_equal(id->cn, "ref");
    assert_non_null(X509_get_subject_name(id->cert));
    identity_free(id);
    identity_free(NULL);
}

static int
setup(void **state)
{
    struct cf_cert_spec s;

    (void)state;
    F.k_ca = cf_key_new(CF_KEY_EC_P256);
    F.k_leaf = cf_key_new(CF_KEY_EC_P256);
    s = (struct cf_cert_spec){
        .cn = "Identity CA", .o = "Corp", .key = F.k_ca, .serial = 1, .bc = CF_BC_CA};
    F.ca = cf_cert_new(&s);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(F.ca);
    EVP_PKEY_free(F.k_ca);
    EVP_PKEY_free(F.k_leaf);
    memset(&F, 0, sizeof(F));
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_serial),
        cmocka_unit_test(test_serial_high_bit),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_utf8_subject),
        cmocka_unit_test(test_all_san_types),
        cmocka_unit_test(test_san_tags),
        cmocka_unit_test(test_canonical_name),
        cmocka_unit_test(test_no_cn),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_embedded_nul_refused),
        cmocka_unit_test(test_identity_keeps_certificate),
    };

    return cmocka_run_group_tests_name("identity", tests, setup, teardown);
}
