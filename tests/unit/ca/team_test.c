/* SPDX-License-Identifier: Apache-2.0 */
/*
 * team_test.c - unit tests of the owner's team in certificates (src/ca/team.c)
 * and of ca_issue() with profiles that carry it, against one CA whose ca.yaml
 * gains three profiles: the team in the subject OU, in the SPIFFE path, both.
 *
 * The team's text is checked with messages that name the field; it goes in as
 * an X509_NAME entry (O, OU, CN in that order) and as the first segment of
 * the SPIFFE ID; a SPIFFE ID outside the owner's team is refused and nothing
 * is recorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/team.h"
#include "ca/token.h"
#include "lib/err.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define TD "corp.example"

static struct cafx F;

static const char team_profiles[] =
    "  team-ou:\n"
    "    extended_key_usage: [clientAuth]\n"
    "    default_ttl: 24h\n"
    "    max_ttl: 48h\n"
    "    san_types: [uri]\n"
    "    spiffe: true\n"
    "    team_from_owner: [ou]\n"
    "  team-spiffe:\n"
    "    extended_key_usage: [clientAuth]\n"
    "    default_ttl: 24h\n"
    "    max_ttl: 48h\n"
    "    san_types: [uri]\n"
    "    spiffe: true\n"
    "    team_from_owner: [spiffe]\n"
    "  team-both:\n"
    "    extended_key_usage: [clientAuth]\n"
    "    default_ttl: 24h\n"
    "    max_ttl: 48h\n"
    "    san_types: [uri]\n"
    "    spiffe: true\n"
    "    team_from_owner: [ou, spiffe]\n";

static int
group_setup(void **state)
{
    (void)state;
    return cafx_setup(&F, (struct ca_init_opts){.name = "Team Test", .trust_domain = TD},
                      team_profiles);
}

static int
group_teardown(void **state)
{
    (void)state;
    cafx_teardown(&F);
    return 0;
}

/* ---- the team's text ---- */

static void
test_team_check(void **state)
{
    static const struct {
        const char *team;
        const char *error; /* NULL: accepted */
    } cases[] = {
        {"payments", NULL},
        {"Pay_ments-2.eu", NULL},
        {"", "--owner: a team has 1 to 64 characters; got 0"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "--owner: a team has 1 to 64 characters; got 65"},
        {"pay/ments", "--owner: a team holds no '/' (offset 3): it is one segment of the SPIFFE "
                      "ID; expected letters, digits, '.', '-' or '_'"},
        {"pay\nments", "--owner: a team holds the byte 0x0a at offset 3; expected letters, "
                       "digits, '.', '-' or '_'"},
        {"pay ments", "--owner: a team holds the byte 0x20 at offset 3; expected letters, "
                      "digits, '.', '-' or '_'"},
        {"caf\xc3\xa9", "--owner: a team holds the byte 0xc3 at offset 3; expected letters, "
                        "digits, '.', '-' or '_'"},
        {"..", "--owner: \"..\" is not a team name; expected letters, digits, '.', '-' or '_'"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        int rc = ca_team_check(cases[i].team, "--owner", &err);
        if (cases[i].error == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.kind, DUET_ERR_INPUT);
            assert_string_equal(err.msg, cases[i].error);
        }
    }
    {
        struct duet_err err = {0};
        assert_int_equal(ca_team_check(NULL, "--owner", &err), -1);
    }
}

/* The OU goes between O and CN, as an entry of its own. */
static void
test_team_add_ou(void **state)
{
    X509_NAME *n = X509_NAME_new();
    struct duet_err err = {0};
    char buf[256];

    (void)state;
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                                (const unsigned char *)"Corp", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)"alice", -1, -1, 0),
                     1);
    assert_int_equal(ca_team_add_ou(n, "payments", &err), 0);
    X509_NAME_oneline(n, buf, sizeof(buf));
    assert_string_equal(buf, "/O=Corp/OU=payments/CN=alice");
    assert_int_equal(X509_NAME_entry_count(n), 3);
    X509_NAME_free(n);
}

static GENERAL_NAMES *
uris(const char *a, const char *b)
{
    GENERAL_NAMES *g = GENERAL_NAMES_new();
    const char *v[] = {a, b};

    for (size_t i = 0; i < 2 && v[i] != NULL; i++) {
        GENERAL_NAME *n = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        assert_true(n != NULL && s != NULL && ASN1_STRING_set(s, v[i], -1));
        GENERAL_NAME_set0_value(n, GEN_URI, s);
        sk_GENERAL_NAME_push(g, n);
    }
    return g;
}

static void
test_team_check_names(void **state)
{
    static const struct {
        const char *a, *b;
        const char *error;
    } cases[] = {
        {"spiffe://corp/payments/alice", NULL, NULL},
        {"spiffe://corp/payments/eu/alice", "https://docs.corp/x", NULL},
        {"spiffe://corp/hr/alice", NULL,
         "profile p puts the team in the SPIFFE ID: spiffe://corp/hr/alice is not under "
         "spiffe://corp/payments/ (the owner's team); expected spiffe://corp/payments/NAME"},
        {"spiffe://corp/paymentsx/alice", NULL,
         "profile p puts the team in the SPIFFE ID: spiffe://corp/paymentsx/alice is not under "
         "spiffe://corp/payments/ (the owner's team); expected spiffe://corp/payments/NAME"},
        {"spiffe://corp/payments/", NULL,
         "profile p puts the team in the SPIFFE ID: spiffe://corp/payments/ is not under "
         "spiffe://corp/payments/ (the owner's team); expected spiffe://corp/payments/NAME"},
        {"spiffe://other/payments/alice", NULL,
         "profile p puts the team in the SPIFFE ID: spiffe://other/payments/alice is not under "
         "spiffe://corp/payments/ (the owner's team); expected spiffe://corp/payments/NAME"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        GENERAL_NAMES *g = uris(cases[i].a, cases[i].b);
        struct duet_err err = {0};
        int rc = ca_team_check_names(g, "corp", "payments", "p", &err);
        if (cases[i].error == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err.msg, cases[i].error);
        }
        GENERAL_NAMES_free(g);
    }
}

/* ---- issuance with team profiles ---- */

static char *
subject_text(X509 *cert)
{
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
    return strdup(buf);
}

static char *
first_uri(X509 *cert)
{
    GENERAL_NAMES *g = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    char *out = NULL;

    for (int i = 0; g != NULL && i < sk_GENERAL_NAME_num(g) && out == NULL; i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
        if (n->type == GEN_URI)
            out = strndup((const char *)ASN1_STRING_get0_data(n->d.ia5),
                          (size_t)ASN1_STRING_length(n->d.ia5));
    }
    GENERAL_NAMES_free(g);
    return out;
}

static void
test_issue_with_team(void **state)
{
    static const struct {
        const char *profile;
        const char *subject, *uri;
    } cases[] = {
        {"team-ou", "/O=Team Test/OU=payments/CN=alice", "spiffe://" TD "/alice"},
        {"team-spiffe", "/O=Team Test/CN=alice", "spiffe://" TD "/payments/alice"},
        {"team-both", "/O=Team Test/OU=payments/CN=alice", "spiffe://" TD "/payments/alice"},
        {"client", "/O=Team Test/CN=alice", "spiffe://" TD "/alice"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_request req = {.profile = cases[i].profile, .cn = "alice", .owner = "payments"};
        struct duet_err err = {0};
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;

        if (ca_issue_keypair(F.ca, &req, NULL, &cert, &key, NULL, &err) != 0)
            fail_msg("%s: %s", cases[i].profile, err.msg);
        char *s = subject_text(cert), *u = first_uri(cert);
        assert_string_equal(s, cases[i].subject);
        assert_string_equal(u, cases[i].uri);
        free(s);
        free(u);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}

static void
test_issue_team_refusals(void **state)
{
    static const char *const other_team[] = {"uri:spiffe://" TD "/hr/alice"};
    static const char *const mine[] = {"uri:spiffe://" TD "/payments/alice"};
    static const struct {
        const char *profile, *owner;
        const char *const *sans;
        const char *error;
    } cases[] = {
        {"team-both", NULL, mine,
         "profile team-both puts the owner's team in the certificate (team_from_owner); give "
         "--owner TEAM"},
        {"team-ou", "pay/ments", mine,
         "--owner: a team holds no '/' (offset 3): it is one segment of the SPIFFE ID; expected "
         "letters, digits, '.', '-' or '_'"},
        {"team-spiffe", "payments", other_team,
         "profile team-spiffe puts the team in the SPIFFE ID: spiffe://" TD "/hr/alice is not "
         "under spiffe://" TD "/payments/ (the owner's team); expected spiffe://" TD
         "/payments/NAME"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_request req = {.profile = cases[i].profile,
                                 .cn = "alice",
                                 .owner = cases[i].owner,
                                 .sans = cases[i].sans,
                                 .nsans = cases[i].sans != NULL ? 1 : 0,
                                 .pubkey = F.key};
        struct duet_err err = {0};
        X509 *cert = NULL;

        assert_int_equal(ca_issue(F.ca, &req, &cert, NULL, &err), -1);
        assert_null(cert);
        assert_string_equal(err.msg, cases[i].error);
    }
}

/* A token for a team profile binds the team when it is made: none, or a bad one, is refused. */
static void
test_token_needs_team(void **state)
{
    struct ca_token_opts o = {.name = "alice", .profile = "team-both"};
    struct store_token *row = NULL;
    struct duet_err err = {0};
    char *token = NULL;

    (void)state;
    assert_int_equal(ca_token_create(F.ca, &o, &token, &row, &err), -1);
    assert_string_equal(err.msg, "profile team-both puts the owner's team in the certificate "
                                 "(team_from_owner); give --owner TEAM");
    o.owner = "pay ments";
    assert_int_equal(ca_token_create(F.ca, &o, &token, &row, &err), -1);
    assert_string_equal(err.msg, "--owner: a team holds the byte 0x20 at offset 3; expected "
                                 "letters, digits, '.', '-' or '_'");
    assert_null(token);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_team_check),
        cmocka_unit_test(test_team_add_ou),
        cmocka_unit_test(test_team_check_names),
        cmocka_unit_test(test_issue_with_team),
        cmocka_unit_test(test_issue_team_refusals),
        cmocka_unit_test(test_token_needs_team),
    };
    return cmocka_run_group_tests_name("ca/team", tests, group_setup, group_teardown);
}
