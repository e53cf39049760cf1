/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token_test.c - unit tests of one-time enrollment tokens (src/ca/token.c)
 * against one CA made for the group in a temporary directory, with name
 * constraints (corp.example) on its issuing CA.
 *
 * Tokens are redeemed with CSRs built here with the OpenSSL API.  Creation
 * refuses what issuance would refuse (a name outside the profile, outside
 * the name constraints, an unknown profile, a lifetime past 7 days).  A
 * redemption yields the token's binding and nothing the CSR asks beyond it
 * (read back from the certificate and the inventory), spends the token once
 * (the second use names the date and serial), not after expiry; a refused CSR
 * (an extra name, another SPIFFE ID, CA:TRUE, a key usage, serverAuth) and a
 * failure inside the issuance transaction leave the token unused and nothing
 * recorded.  No message holds the token's text.
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

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "ca/ca.h"
#include "ca/token.h"
#include "lib/err.h"
#include "lib/x509util.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define TD "corp.example"

static struct cafx F; /* F.key: the host's own key */

static int
group_setup(void **state)
{
    static const char *const dns[] = {TD};
    static const char *const uri[] = {"spiffe://" TD "/"};

    (void)state;
    return cafx_setup(&F,
                      (struct ca_init_opts){.name = "Token Test",
                                            .trust_domain = TD,
                                            .permit_dns = dns,
                                            .npermit_dns = 1,
                                            .permit_uri = uri,
                                            .npermit_uri = 1},
                      NULL);
}

static int
group_teardown(void **state)
{
    (void)state;
    cafx_teardown(&F);
    return 0;
}

/* ---- helpers, independent of the code under test ---- */

/*
 * A CSR for F.key with CN "host", the given extensions as OpenSSL
 * configuration values (NID, value; NID 0 ends the list).
 */
static X509_REQ *
make_csr(const int *nids, const char *const *values)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;

    assert_non_null(req);
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"host", -1, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, name));
    assert_true(X509_REQ_set_pubkey(req, F.key));
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    for (size_t i = 0; nids != NULL && nids[i] != 0; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nids[i], values[i]);
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
    }
    if (sk_X509_EXTENSION_num(exts) > 0)
        assert_true(X509_REQ_add_extensions(req, exts));
    assert_true(X509_REQ_sign(req, F.key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return req;
}

/* A CSR asking for one subjectAltName value (NULL: none). */
static X509_REQ *
csr_san(const char *san)
{
    const int nids[] = {NID_subject_alt_name, 0};
    const char *const values[] = {san};

    return make_csr(san != NULL ? nids : NULL, values);
}

/* Make a token or fail the test; *row filled when row is not NULL. */
static char *
token_ok(const char *name, const char *profile, const char *const *sans, size_t nsans,
         int64_t now, struct store_token **row)
{
    struct ca_token_opts o = {.name = name,
                              .profile = profile,
                              .sans = sans,
                              .nsans = nsans,
                              .owner = "team-a",
                              .location = "rack 7",
                              .created_by = "alice",
                              .now = now};
    struct duet_err err = {0};
    char *tok = NULL;

    if (ca_token_create(F.ca, &o, &tok, row, &err) != 0)
        fail_msg("ca_token_create: %s", err.msg);
    return tok;
}

/* The token's row as the inventory holds it now. */
static struct store_token *
token_row(const char *tok)
{
    struct duet_err err = {0};
    struct store_token *t = NULL;
    char id[65];

    assert_int_equal(ca_token_id(tok, id, &err), 0);
    assert_int_equal(store_token_get(ca_store(F.ca), id, &t, &err), 0);
    assert_non_null(t);
    return t;
}

static void
assert_unused(const char *tok)
{
    struct store_token *t = token_row(tok);

    assert_int_equal(t->used_at, 0);
    assert_null(t->serial);
    store_token_free(t);
}

/* ---- creation ---- */

static void
test_create_binds_and_hides_the_text(void **state)
{
    struct store_token *row = NULL;
    int64_t now = (int64_t)time(NULL);
    char *tok = token_ok("alice", "client", NULL, 0, now, &row);
    char *tok2 = token_ok("alice", "client", NULL, 0, now, NULL);
    char id[65];
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(strlen(tok), CA_TOKEN_LEN);
    assert_int_equal(strncmp(tok, "duet1_", 6), 0);
    assert_string_not_equal(tok, tok2);
    /* The row holds the hash, never the text. */
    assert_int_equal(ca_token_id(tok, id, &err), 0);
    assert_string_equal(row->id, id);
    assert_int_equal(strlen(row->id), 64);
    assert_null(strstr(row->id, tok + 6));
    /* The default binding of a SPIFFE profile: the name's SPIFFE ID. */
    assert_string_equal(row->name, "alice");
    assert_string_equal(row->profile, "client");
    assert_int_equal(row->nsans, 1);
    assert_string_equal(row->sans[0], "uri:spiffe://" TD "/alice");
    assert_string_equal(row->owner, "team-a");
    assert_string_equal(row->location, "rack 7");
    assert_string_equal(row->created_by, "alice");
    assert_int_equal(row->created_at, now);
    assert_int_equal(row->expires_at, now + CA_TOKEN_DEFAULT_TTL);
    store_token_free(row);
    ca_token_text_free(tok);
    ca_token_text_free(tok2);
}

/* Whatever issuance would refuse is refused when the token is made, and nothing is recorded. */
static void
test_create_refusals(void **state)
{
    static const char *const dns[] = {"dns:alice." TD};
    static const char *const outside[] = {"dns:api.evil.example"};
    static const char *const bad[] = {"dns:bad name"};
    static const char *const spiffe[] = {"uri:spiffe://" TD "/a"};
    static const struct {
        const char *what, *name, *profile;
        const char *const *sans;
        int64_t ttl;
        const char *want;
    } cases[] = {
        {"a DNS name in a client (SPIFFE-only) profile", "alice", "client", dns, 0,
         "profile client requires exactly one URI SAN, a SPIFFE ID"},
        {"a SPIFFE ID in a server profile", "a", "server", spiffe, 0,
         "name uri:spiffe://" TD "/a is not allowed by profile server"},
        {"a name outside the issuing CA's name constraints", "api", "server", outside, 0,
         "a name of this token is outside the issuing CA's name constraints"},
        {"an unknown profile", "x", "nosuch", dns, 0,
         "profile \"nosuch\" cannot be bound to a token: it is not in ca.yaml; expected one of "
         "server, client, peer, device"},
        {"the issuing CA's profile", "x", "issuing-ca", dns, 0, "cannot be bound to a token"},
        {"a lifetime past 7 days", "alice", "client", NULL, CA_TOKEN_MAX_TTL + 1,
         "a token lives from 1 second to 7 days"},
        {"an empty name", "", "client", NULL, 0, "must have 1 to 64 characters"},
        {"a malformed SAN", "x", "server", bad, 0, "bad name"},
    };
    struct store_token **v = NULL;
    size_t before = 0, after = 0;
    struct duet_err err = {0};

    (void)state;
    assert_int_equal(store_token_list(ca_store(F.ca), &v, &before, &err), 0);
    store_tokens_free(v, before);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_token_opts o = {.name = cases[i].name,
                                  .profile = cases[i].profile,
                                  .sans = cases[i].sans,
                                  .nsans = cases[i].sans != NULL ? 1 : 0,
                                  .ttl = cases[i].ttl};
        char *tok = NULL;
        memset(&err, 0, sizeof(err));
        if (ca_token_create(F.ca, &o, &tok, NULL, &err) == 0)
            fail_msg("%s: accepted", cases[i].what);
        assert_null(tok);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].want, err.msg);
    }
    assert_int_equal(store_token_list(ca_store(F.ca), &v, &after, &err), 0);
    store_tokens_free(v, after);
    assert_int_equal(after, before);
}

/* ---- redemption ---- */

static void
test_redeem_issues_the_binding_once(void **state)
{
    static const char *const sans[] = {"uri:spiffe://" TD "/a", "dns:a." TD};
    int64_t now = (int64_t)time(NULL);
    char *tok = token_ok("a", "peer", sans, 2, now, NULL);
    X509_REQ *req = csr_san(NULL);
    struct store_token *used = NULL;
    struct store_cert *crow = NULL;
    struct duet_err err = {0};
    X509 *cert = NULL, *again = NULL;
    bool clamped = true;
    size_t before = cafx_inventory_count(F.ca);

    (void)state;
    if (ca_token_redeem(F.ca, tok, req, "host.csr", now + 5, 0, &cert, &clamped, &used, &err) != 0)
        fail_msg("redeem: %s", err.msg);
    assert_false(clamped);
    /* Every bound name, the token's name as CN, the host's key; not a CA. */
    char *names = cafx_sans_text(cert);
    assert_string_equal(names, "URI:spiffe://" TD "/a, DNS:a." TD);
    free(names);
    char *cn = x509u_name_cn(X509_get_subject_name(cert));
    assert_string_equal(cn, "a");
    free(cn);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), F.key), 1);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true(X509_get_extended_key_usage(cert) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    /* In the inventory with the token's fields; the token used by that serial. */
    char *serial = x509u_serial(X509_get0_serialNumber(cert));
    assert_int_equal(cafx_inventory_count(F.ca), before + 1);
    assert_int_equal(store_get(ca_store(F.ca), serial, &crow, &err), 0);
    assert_non_null(crow);
    assert_string_equal(crow->profile, "peer");
    assert_string_equal(crow->owner, "team-a");
    assert_string_equal(crow->location, "rack 7");
    assert_string_equal(used->serial, serial);
    assert_int_equal(used->used_at, now + 5);
    struct store_token *t = token_row(tok);
    assert_string_equal(t->serial, serial);
    store_token_free(t);

    /* Twice: refused with the date and serial, nothing more recorded. */
    char want[200], when[32];
    x509u_fmt_rfc3339(now + 5, when, sizeof(when));
    snprintf(want, sizeof(want), "enrollment token already used on %s (certificate serial %s)",
             when, serial);
    assert_int_equal(
        ca_token_redeem(F.ca, tok, req, "host.csr", now + 6, 0, &again, NULL, NULL, &err), -1);
    assert_null(again);
    assert_contains(err.msg, want);
    assert_null(strstr(err.msg, tok));
    assert_int_equal(cafx_inventory_count(F.ca), before + 1);

    store_cert_free(crow);
    store_token_free(used);
    free(serial);
    X509_free(cert);
    X509_REQ_free(req);
    ca_token_text_free(tok);
}

/* A CSR may ask for some of the bound names: it gets those. */
static void
test_redeem_subset(void **state)
{
    static const char *const sans[] = {"dns:web." TD, "dns:www." TD};
    int64_t now = (int64_t)time(NULL);
    char *tok = token_ok("web", "server", sans, 2, now, NULL);
    X509_REQ *req = csr_san("DNS:WWW." TD);
    struct duet_err err = {0};
    X509 *cert = NULL;

    (void)state;
    if (ca_token_redeem(F.ca, tok, req, "host.csr", now, 0, &cert, NULL, NULL, &err) != 0)
        fail_msg("redeem: %s", err.msg);
    char *names = cafx_sans_text(cert);
    assert_string_equal(names, "DNS:www." TD);
    free(names);
    assert_true(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
    X509_free(cert);
    X509_REQ_free(req);
    ca_token_text_free(tok);
}

static void
test_redeem_expired_unknown_malformed(void **state)
{
    int64_t now = (int64_t)time(NULL);
    struct ca_token_opts o = {.name = "late", .profile = "client", .ttl = 60, .now = now};
    X509_REQ *req = csr_san(NULL);
    struct duet_err err = {0};
    X509 *cert = NULL;
    char *tok = NULL, want[100], when[32];

    (void)state;
    assert_int_equal(ca_token_create(F.ca, &o, &tok, NULL, &err), 0);
    x509u_fmt_rfc3339(now + 60, when, sizeof(when));
    snprintf(want, sizeof(want), "enrollment token expired at %s", when);
    assert_int_equal(ca_token_redeem(F.ca, tok, req, "h.csr", now + 60, 0, &cert, NULL, NULL, &err),
                     -1);
    assert_contains(err.msg, want);
    assert_unused(tok);
    /* One second earlier it was still good. */
    assert_int_equal(ca_token_redeem(F.ca, tok, req, "h.csr", now + 59, 0, &cert, NULL, NULL, &err),
                     0);
    X509_free(cert);
    cert = NULL;

    /* Unknown: well formed, never made here. */
    char unknown[CA_TOKEN_LEN + 1];
    memcpy(unknown, tok, sizeof(unknown));
    unknown[10] = unknown[10] == 'A' ? 'B' : 'A';
    assert_int_equal(ca_token_redeem(F.ca, unknown, req, "h.csr", now, 0, &cert, NULL, NULL, &err),
                     -1);
    assert_contains(err.msg, "unknown enrollment token");
    assert_null(strstr(err.msg, unknown + 6));
    /* Malformed: the shape is described, the text never quoted. */
    static const char *const bad[] = {"", "duet1_short",
                                      "duet2_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                      "duet1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
                                      "duet1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            ca_token_redeem(F.ca, bad[i], req, "h.csr", now, 0, &cert, NULL, NULL, &err), -1);
        assert_contains(err.msg, "not a duet enrollment token");
        if (bad[i][0] != '\0')
            assert_null(strstr(err.msg, bad[i]));
    }
    X509_REQ_free(req);
    ca_token_text_free(tok);
}

/*
 * What a holder of the token cannot get: another name, another SPIFFE ID, a
 * CA, other key usages, serverAuth from a client token.  Each refused by
 * name, the token left unused, nothing recorded; the right CSR still works.
 */
static void
test_redeem_refuses_what_the_token_does_not_bind(void **state)
{
    static const int san_ca[] = {NID_subject_alt_name, NID_basic_constraints, 0};
    static const char *const v_ca[] = {"URI:spiffe://" TD "/a", "critical,CA:TRUE"};
    static const int ku[] = {NID_key_usage, 0};
    static const char *const v_ku[] = {"critical,keyCertSign,cRLSign"};
    static const int eku[] = {NID_ext_key_usage, 0};
    static const char *const v_eku[] = {"serverAuth"};
    static const int nc[] = {NID_name_constraints, 0};
    static const char *const v_nc[] = {"permitted;DNS:evil.example"};
    static const int two[] = {NID_subject_alt_name, 0};
    static const char *const v_two[] = {"URI:spiffe://" TD "/a, DNS:a." TD};
    static const int other[] = {NID_subject_alt_name, 0};
    static const char *const v_other[] = {"URI:spiffe://" TD "/b"};
    static const struct {
        const char *what;
        const int *nids;
        const char *const *values;
        const char *want;
    } cases[] = {
        {"CA:TRUE", san_ca, v_ca, "h.csr: the CSR asks for extension basicConstraints; a "
                                  "certificate from an enrollment token takes its extensions "
                                  "from profile client only"},
        {"key usages", ku, v_ku, "the CSR asks for extension keyUsage"},
        {"serverAuth", eku, v_eku, "the CSR asks for extension extendedKeyUsage"},
        {"name constraints", nc, v_nc, "the CSR asks for extension nameConstraints"},
        {"an extra name", two, v_two,
         "h.csr: the CSR asks for name dns:a." TD ", which is not bound to this enrollment token"},
        {"another SPIFFE ID", other, v_other,
         "the CSR asks for name uri:spiffe://" TD "/b, which is not bound to this enrollment "
         "token"},
    };
    int64_t now = (int64_t)time(NULL);
    char *tok = token_ok("a", "client", NULL, 0, now, NULL);
    size_t before = cafx_inventory_count(F.ca);
    struct duet_err err = {0};
    X509 *cert = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_REQ *req = make_csr(cases[i].nids, cases[i].values);
        memset(&err, 0, sizeof(err));
        if (ca_token_redeem(F.ca, tok, req, "h.csr", now, 0, &cert, NULL, NULL, &err) == 0)
            fail_msg("%s: issued", cases[i].what);
        assert_null(cert);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].want, err.msg);
        assert_null(strstr(err.msg, tok));
        assert_unused(tok);
        X509_REQ_free(req);
    }
    assert_int_equal(cafx_inventory_count(F.ca), before);
    /* A CSR signed by another key than the one it carries. */
    {
        X509_REQ *req = csr_san(NULL);
        EVP_PKEY *other_key = cf_key_new(CF_KEY_EC_P256);
        assert_true(X509_REQ_sign(req, other_key, EVP_sha256()) > 0);
        assert_int_equal(ca_token_redeem(F.ca, tok, req, "h.csr", now, 0, &cert, NULL, NULL, &err),
                         -1);
        assert_contains(err.msg, "the CSR's signature does not verify with its own key");
        EVP_PKEY_free(other_key);
        X509_REQ_free(req);
        assert_unused(tok);
    }
    /* The right CSR: the client certificate the token binds, clientAuth only. */
    X509_REQ *req = csr_san("URI:spiffe://" TD "/a");
    if (ca_token_redeem(F.ca, tok, req, "h.csr", now, 0, &cert, NULL, NULL, &err) != 0)
        fail_msg("redeem: %s", err.msg);
    assert_true(X509_get_extended_key_usage(cert) == XKU_SSL_CLIENT);
    assert_int_equal(X509_check_ca(cert), 0);
    X509_free(cert);
    X509_REQ_free(req);
    ca_token_text_free(tok);
}

/*
 * A failure inside the issuance transaction, after the certificate was
 * signed and recorded (here the redemption's own update fails, by a trigger
 * put in the inventory), rolls everything back: no certificate, token unused.
 */
static void
test_failure_inside_issuance_leaves_token_unused(void **state)
{
    int64_t now = (int64_t)time(NULL);
    char *tok = token_ok("b", "client", NULL, 0, now, NULL);
    char *db_path = cf_path(F.dir, "inventory.db");
    X509_REQ *req = csr_san(NULL);
    size_t before = cafx_inventory_count(F.ca);
    struct duet_err err = {0};
    X509 *cert = NULL;
    sqlite3 *db = NULL;
    char *msg = NULL;

    (void)state;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    if (sqlite3_exec(db,
                     "CREATE TRIGGER fail_redeem AFTER UPDATE OF used_at ON tokens "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
                     NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("trigger: %s", msg);
    assert_int_equal(ca_token_redeem(F.ca, tok, req, "h.csr", now, 0, &cert, NULL, NULL, &err), -1);
    assert_null(cert);
    assert_contains(err.msg, "injected failure");
    assert_int_equal(cafx_inventory_count(F.ca), before);
    assert_unused(tok);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER fail_redeem", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* The same token then works, once. */
    if (ca_token_redeem(F.ca, tok, req, "h.csr", now, 0, &cert, NULL, NULL, &err) != 0)
        fail_msg("redeem: %s", err.msg);
    assert_int_equal(cafx_inventory_count(F.ca), before + 1);
    X509_free(cert);
    X509_REQ_free(req);
    free(db_path);
    ca_token_text_free(tok);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_binds_and_hides_the_text),
        cmocka_unit_test(test_create_refusals),
        cmocka_unit_test(test_redeem_issues_the_binding_once),
        cmocka_unit_test(test_redeem_subset),
        cmocka_unit_test(test_redeem_expired_unknown_malformed),
        cmocka_unit_test(test_redeem_refuses_what_the_token_does_not_bind),
        cmocka_unit_test(test_failure_inside_issuance_leaves_token_unused),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
