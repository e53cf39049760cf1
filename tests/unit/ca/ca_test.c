/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_test.c - unit tests of the CA (src/ca/ca.c) in temporary directories.
 *
 * One CA (EC P-256, with a passphrase) is made for the group; tests issue
 * from it and check each certificate independently of the CA's own code:
 * it verifies with verify_chain() for its purpose, its serial is 128 random
 * bits, its inventory row carries the right fields, validity is clamped to
 * the issuing CA.  Revocation is checked end to end: the CRL is signed by
 * the issuing CA, lists the serial with its date and reason, numbers
 * increase, and verification with it refuses the revoked certificate and
 * accepts another; the root CRL is renewed with the (possibly offline) root
 * key.  Init and open refusals, policy refusals (which must
 * leave the inventory unchanged) and the small parsers are tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "lib/err.h"
#include "lib/load.h"
#include "lib/verify.h"
#include "testlib/certfactory.h"

#include "ca_fixture.h"

#define ORG "Corp Test"
#define TD "corp.example"
#define ISSUING_SUBJECT "CN=" ORG " Issuing CA,O=" ORG
#define ROOT_SUBJECT "CN=" ORG " Root CA,O=" ORG
#define HOUR ((int64_t)3600)
#define DAY (24 * HOUR)

static struct cafx F; /* the group's CA, opened with the passphrase; F.key: the leaves' key */

static int
group_setup(void **state)
{
    (void)state;
    return cafx_setup(&F, (struct ca_init_opts){.name = ORG, .trust_domain = TD}, NULL);
}

static int
group_teardown(void **state)
{
    (void)state;
    cafx_teardown(&F);
    return 0;
}

/* ---- independent helpers ---- */

/* A file of the group's CA directory, malloc'd. */
static char *
ca_file(const char *name)
{
    return cf_path(F.dir, name);
}

static int64_t
asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_true(ASN1_TIME_to_tm(t, &tm));
    return (int64_t)timegm(&tm);
}

/* Upper-case colon hex of a byte buffer, into buf. */
static void
colon_hex(const uint8_t *b, size_t n, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && off + 4 < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%02X", i ? ":" : "", b[i]);
}

/* The canonical serial of a certificate, computed here (not by x509util). */
static void
serial_of(X509 *cert, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    uint8_t b[64];
    int n;

    assert_non_null(bn);
    n = BN_bn2bin(bn, b);
    assert_true(n > 0 && n <= (int)sizeof(b));
    colon_hex(b, (size_t)n, buf, len);
    BN_free(bn);
}

/* SHA-256 of the SubjectPublicKeyInfo, colon hex. */
static void
spki_sha256(EVP_PKEY *key, char *buf, size_t len)
{
    uint8_t *der = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_PUBKEY(key, &der);

    assert_true(n > 0);
    assert_true(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL));
    OPENSSL_free(der);
    colon_hex(md, mdlen, buf, len);
}

/* Whether the certificate carries a SAN of the type with exactly this value. */
static bool
has_san(X509 *cert, int type, const char *value)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool found = false;

    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *s = NULL;
        if (g->type != type)
            continue;
        if (type == GEN_DNS || type == GEN_URI || type == GEN_EMAIL)
            s = g->d.ia5;
        else if (type == GEN_IPADD)
            s = g->d.ip;
        if (type == GEN_IPADD) {
            uint8_t ip4[4];
            if (inet_pton(AF_INET, value, ip4) == 1 && ASN1_STRING_length(s) == 4 &&
                memcmp(ASN1_STRING_get0_data(s), ip4, 4) == 0)
                found = true;
        } else if (s != NULL && (size_t)ASN1_STRING_length(s) == strlen(value) &&
                   memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0) {
            found = true;
        }
    }
    GENERAL_NAMES_free(gens);
    return found;
}

/*
 * Verify a leaf against the group CA's root with the issuing CA as an
 * untrusted intermediate, optionally with CRLs (both NULL: no revocation).
 */
static int
verify_leaf(struct ca *ca, X509 *leaf, enum duet_purpose purpose, const char *name,
            X509_CRL *crl, X509_CRL *root_crl, struct duet_err *err)
{
    X509_STORE *store = cf_store(ca_root_cert(ca), NULL);
    STACK_OF(X509) *untrusted = cf_certs(ca_issuing_cert(ca), NULL);
    STACK_OF(X509_CRL) *crls = NULL;
    struct verify_params p = {0};
    int rc;

    if (crl != NULL) {
        crls = sk_X509_CRL_new_null();
        assert_non_null(crls);
        assert_true(X509_CRL_up_ref(crl));
        assert_true(sk_X509_CRL_push(crls, crl) > 0);
        if (root_crl != NULL) {
            assert_true(X509_CRL_up_ref(root_crl));
            assert_true(sk_X509_CRL_push(crls, root_crl) > 0);
        }
    }
    p.store = store;
    p.untrusted = untrusted;
    struct revset *revs = cf_revset(crls);
    p.revs = revs;
    p.purpose = purpose;
    p.name = name;
    err_clear(err);
    rc = verify_chain(&p, leaf, NULL, NULL, err);
    revset_free(revs);
    cf_crls_free(crls);
    OSSL_STACK_OF_X509_free(untrusted);
    X509_STORE_free(store);
    return rc;
}

/* Issue from the group CA; fails the test on refusal. */
static X509 *
issue_ok(struct ca *ca, const char *profile, const char *cn, const char *const *sans,
         size_t nsans, int64_t ttl, int64_t now, bool *clamped)
{
    struct ca_request r = {0};
    struct duet_err err = {0};
    X509 *cert = NULL;

    r.profile = profile;
    r.cn = cn;
    r.sans = sans;
    r.nsans = nsans;
    r.ttl = ttl;
    r.pubkey = F.key;
    r.now = now;
    if (ca_issue(ca, &r, &cert, clamped, &err) != 0)
        fail_msg("ca_issue %s/%s: %s", profile, cn, err.msg);
    assert_non_null(cert);
    return cert;
}

/* ---- init and open ---- */

static void
test_init_files(void **state)
{
    static const char *const files[] = {CA_FILE_CONFIG,       CA_FILE_ROOT_CERT,
                                        CA_FILE_ROOT_KEY,     CA_FILE_ROOT_CRL,
                                        CA_FILE_ISSUING_CERT, CA_FILE_ISSUING_KEY,
                                        CA_FILE_INVENTORY};
    static const char *const keys[] = {CA_FILE_ROOT_KEY, CA_FILE_ISSUING_KEY};
    struct duet_err err = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = ca_file(files[i]);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
            fail_msg("%s is missing or empty", p);
        free(p);
    }
    {
        char *p = ca_file(CA_FILE_ROOT_KEY_OFFLINE);
        assert_int_not_equal(access(p, F_OK), 0);
        free(p);
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *p = ca_file(keys[i]);
        struct stat st;
        size_t len = 0;
        uint8_t *pem;
        EVP_PKEY *k = NULL;

        assert_int_equal(stat(p, &st), 0);
        if ((st.st_mode & 0777) != 0600)
            fail_msg("%s has mode %03o, want 600", p, (unsigned)(st.st_mode & 0777));
        pem = cf_read_file(p, &len);
        assert_non_null(pem);
        assert_contains((const char *)pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----");
        assert_null(strstr((const char *)pem, "-----BEGIN PRIVATE KEY-----"));
        assert_null(strstr((const char *)pem, "-----BEGIN EC PRIVATE KEY-----"));
        free(pem);
        /* The passphrase opens it, and it is a P-256 key. */
        if (load_key_file(p, CAFX_PASS, &k, &err) != 0)
            fail_msg("%s: %s", p, err.msg);
        assert_true(EVP_PKEY_is_a(k, "EC"));
        assert_int_equal(EVP_PKEY_get_bits(k), 256);
        if (strcmp(keys[i], CA_FILE_ROOT_KEY) == 0)
            assert_int_equal(X509_check_private_key(ca_root_cert(F.ca), k), 1);
        else
            assert_int_equal(X509_check_private_key(ca_issuing_cert(F.ca), k), 1);
        EVP_PKEY_free(k);
        free(p);
    }
}

static void
test_init_hierarchy(void **state)
{
    X509 *root = ca_root_cert(F.ca);
    X509 *inter = ca_issuing_cert(F.ca);
    BASIC_CONSTRAINTS *bc;
    struct duet_err err = {0};
    X509_CRL *rcrl = NULL;
    char buf[256];

    (void)state;
    X509_NAME_oneline(X509_get_subject_name(root), buf, sizeof(buf));
    assert_string_equal(buf, "/O=" ORG "/CN=" ORG " Root CA");
    X509_NAME_oneline(X509_get_subject_name(inter), buf, sizeof(buf));
    assert_string_equal(buf, "/O=" ORG "/CN=" ORG " Issuing CA");
    /* Self-signed root; issuing CA signed by it, pathlen 0. */
    assert_int_equal(X509_verify(root, X509_get0_pubkey(root)), 1);
    assert_int_equal(X509_verify(inter, X509_get0_pubkey(root)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(inter), X509_get_subject_name(root)), 0);
    bc = X509_get_ext_d2i(inter, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    /* The issuing CA is valid for longer than any default profile TTL. */
    assert_true(asn1_time(X509_get0_notAfter(inter)) > (int64_t)time(NULL) + 2 * 365 * DAY);
    assert_true(X509_cmp_time(X509_get0_notAfter(root), NULL) > 0);
    assert_true(asn1_time(X509_get0_notAfter(root)) >= asn1_time(X509_get0_notAfter(inter)));

    /* The root CRL, signed by the root, lists nothing. */
    if (ca_root_crl(F.ca, &rcrl, &err) != 0)
        fail_msg("ca_root_crl: %s", err.msg);
    assert_int_equal(X509_CRL_verify(rcrl, X509_get0_pubkey(root)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(rcrl), X509_get_subject_name(root)), 0);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(rcrl)) <= 0); /* -1: no list at all */
    X509_CRL_free(rcrl);

    /* The issuing CA is in the inventory, as issued by the root. */
    serial_of(inter, buf, sizeof(buf));
    struct store_cert *row = NULL;
    if (store_get(ca_store(F.ca), buf, &row, &err) != 0)
        fail_msg("store_get %s: %s", buf, err.msg);
    if (row == NULL)
        fail_msg("issuing CA %s is not in the inventory", buf);
    assert_string_equal(row->subject, ISSUING_SUBJECT);
    assert_string_equal(row->issuer, ROOT_SUBJECT);
    store_cert_free(row);

    /* ca.yaml: the name and trust domain given to init. */
    const struct ca_config *cfg = ca_config(F.ca);
    assert_string_equal(cfg->name, ORG);
    assert_string_equal(cfg->trust_domain, TD);
    assert_non_null(ca_config_profile(cfg, "server"));
    assert_string_equal(ca_dir(F.ca), F.dir);
}

static void
test_init_refusals(void **state)
{
    static const struct {
        const char *what;
        const char *passphrase;
        const char *name;
        const char *msg;
    } cases[] = {
        {"no passphrase", NULL, ORG, "a CA passphrase is required"},
        {"empty passphrase", "", ORG, "a CA passphrase is required"},
        {"short passphrase", "1234567", ORG, "at least 8 characters"},
        {"no name", CAFX_PASS, NULL, "--name"},
        {"empty name", CAFX_PASS, "", "--name"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_init_opts o = {0};
        struct duet_err err = {0};
        char *dir = cf_path(F.tmp, "refused");

        o.dir = dir;
        o.name = cases[i].name;
        o.key_type = CA_KEY_P256;
        o.passphrase = cases[i].passphrase;
        if (ca_init(&o, &err) == 0)
            fail_msg("%s: accepted", cases[i].what);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].msg, err.msg);
        /* Refused before anything is made: not even the directory. */
        if (access(dir, F_OK) == 0)
            fail_msg("%s: %s was created", cases[i].what, dir);
        free(dir);
    }
}

static void
test_init_existing_refused(void **state)
{
    struct ca_init_opts o = {0};
    struct duet_err err = {0};
    char *root = ca_file(CA_FILE_ROOT_CERT);
    char *key = ca_file(CA_FILE_ISSUING_KEY);
    size_t n1 = 0, n2 = 0, k1 = 0, k2 = 0;
    uint8_t *before = cf_read_file(root, &n1);
    uint8_t *kbefore = cf_read_file(key, &k1);
    size_t rows = cafx_inventory_count(F.ca);

    (void)state;
    o.dir = F.dir;
    o.name = "Other";
    o.key_type = CA_KEY_P256;
    o.passphrase = "another passphrase";
    assert_int_equal(ca_init(&o, &err), -1);
    assert_contains(err.msg, F.dir);
    assert_contains(err.msg, "already holds a CA");

    uint8_t *after = cf_read_file(root, &n2);
    uint8_t *kafter = cf_read_file(key, &k2);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    assert_int_equal(k1, k2);
    assert_memory_equal(kbefore, kafter, k1);
    assert_int_equal(cafx_inventory_count(F.ca), rows);
    free(before);
    free(after);
    free(kbefore);
    free(kafter);
    free(root);
    free(key);
}

/* A directory holding only an inventory (a half-made or foreign CA) is not overwritten either. */
static void
test_init_partial_dir_refused(void **state)
{
    struct ca_init_opts o = {0};
    struct duet_err err = {0};
    char *dir = cf_path(F.tmp, "partial");
    char *cfg = cf_path(dir, CA_FILE_CONFIG);

    (void)state;
    assert_int_equal(mkdir(dir, 0700), 0);
    cf_write_file(cfg, "name: x\n", 8);
    o.dir = dir;
    o.name = ORG;
    o.key_type = CA_KEY_P256;
    o.passphrase = CAFX_PASS;
    assert_int_equal(ca_init(&o, &err), -1);
    assert_contains(err.msg, "already holds a CA");
    size_t len = 0;
    uint8_t *text = cf_read_file(cfg, &len);
    assert_int_equal(len, 8);
    free(text);
    free(cfg);
    free(dir);
}

static void
test_open_refusals(void **state)
{
    struct duet_err err = {0};
    struct ca *ca = (struct ca *)(uintptr_t)1;
    char *empty = cf_path(F.tmp, "empty");

    (void)state;
    assert_int_equal(ca_open(F.dir, "wrong passphrase!", &ca, &err), -1);
    assert_null(ca);
    assert_contains(err.msg, "wrong CA passphrase");
    assert_contains(err.msg, CA_FILE_ISSUING_KEY);

    /* A CA key readable by others is refused, with the chmod that fixes it. */
    {
        char *key = ca_file(CA_FILE_ISSUING_KEY);
        assert_int_equal(chmod(key, 0640), 0);
        ca = (struct ca *)(uintptr_t)1;
        int rc = ca_open(F.dir, CAFX_PASS, &ca, &err);
        assert_int_equal(chmod(key, 0600), 0);
        assert_int_equal(rc, -1);
        assert_null(ca);
        assert_contains(err.msg, key);
        assert_contains(err.msg, "readable by group or others");
        assert_contains(err.msg, "chmod 600");
        free(key);
    }

    assert_int_equal(mkdir(empty, 0700), 0);
    ca = (struct ca *)(uintptr_t)1;
    assert_int_equal(ca_open(empty, CAFX_PASS, &ca, &err), -1);
    assert_null(ca);
    assert_contains(err.msg, empty);
    assert_contains(err.msg, "no CA here");
    free(empty);
}

/* Without the passphrase the CA opens for reading but cannot sign. */
static void
test_open_read_only(void **state)
{
    struct duet_err err = {0};
    struct ca *ro = NULL;
    struct ca_request r = {0};
    X509 *cert = (X509 *)(uintptr_t)1;
    X509_CRL *crl = (X509_CRL *)(uintptr_t)1;
    const char *sans[] = {"dns:ro.corp.example"};

    (void)state;
    if (ca_open(F.dir, NULL, &ro, &err) != 0)
        fail_msg("read-only open: %s", err.msg);
    assert_true(cafx_inventory_count(ro) >= 1);
    assert_int_equal(X509_cmp(ca_issuing_cert(ro), ca_issuing_cert(F.ca)), 0);
    r.profile = "server";
    r.cn = "ro";
    r.sans = sans;
    r.nsans = 1;
    r.pubkey = F.key;
    assert_int_equal(ca_issue(ro, &r, &cert, NULL, &err), -1);
    assert_null(cert);
    assert_contains(err.msg, "opened without its passphrase");
    assert_int_equal(ca_crl(ro, (int64_t)time(NULL), DAY, &crl, &err), -1);
    assert_null(crl);
    assert_contains(err.msg, "opened without its passphrase");
    ca_close(ro);
    ca_close(NULL);
}

/* ---- issuance ---- */

static void
test_issue_server(void **state)
{
    const char *sans[] = {"dns:API.corp.example", "ip:10.0.0.7"};
    int64_t now = (int64_t)time(NULL);
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    char serial[128], fp[128];
    bool clamped = true;
    size_t before = cafx_inventory_count(F.ca);
    X509 *cert;

    (void)state;
    {
        struct ca_request r = {0};
        r.profile = "server";
        r.cn = "api";
        r.sans = sans;
        r.nsans = 2;
        r.pubkey = F.key;
        r.owner = "team-api";
        r.location = "rack 4";
        r.now = now;
        cert = NULL;
        if (ca_issue(F.ca, &r, &cert, &clamped, &err) != 0)
            fail_msg("ca_issue: %s", err.msg);
    }
    assert_false(clamped);
    assert_int_equal(cafx_inventory_count(F.ca), before + 1);

    /* It verifies for a server with its names, and not for a client. */
    if (verify_leaf(F.ca, cert, DUET_PURPOSE_SERVER, "api.corp.example", NULL, NULL, &err) != 0)
        fail_msg("verify as server: %s", err.msg);
    if (verify_leaf(F.ca, cert, DUET_PURPOSE_SERVER, "10.0.0.7", NULL, NULL, &err) != 0)
        fail_msg("verify as server by IP: %s", err.msg);
    assert_int_equal(verify_leaf(F.ca, cert, DUET_PURPOSE_CLIENT, NULL, NULL, NULL, &err), -1);
    assert_int_equal(verify_leaf(F.ca, cert, DUET_PURPOSE_SERVER, "other.corp.example", NULL,
                                 NULL, &err),
                     -1);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca_issuing_cert(F.ca))), 1);

    /* Contents. */
    assert_true(has_san(cert, GEN_DNS, "api.corp.example")); /* lower-cased */
    assert_true(has_san(cert, GEN_IPADD, "10.0.0.7"));
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_SERVER);
    assert_true(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
    assert_false(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), F.key), 1);
    assert_int_equal(asn1_time(X509_get0_notAfter(cert)), now + 2160 * HOUR); /* default ttl */
    assert_true(asn1_time(X509_get0_notBefore(cert)) <= now);
    assert_true(asn1_time(X509_get0_notBefore(cert)) >= now - 5 * 60);

    /* A positive 128-bit serial: 16 bytes of magnitude, 16 or 17 bytes of DER content. */
    {
        const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
        unsigned char *der = NULL;
        int dlen = i2d_ASN1_INTEGER(sn, &der);
        assert_non_null(bn);
        assert_false(BN_is_negative(bn));
        assert_int_equal(BN_num_bytes(bn), 16);
        assert_true(BN_num_bits(bn) > 120);
        assert_true(dlen == 2 + 16 || dlen == 2 + 17);
        OPENSSL_free(der);
        BN_free(bn);
    }

    /* The inventory row. */
    serial_of(cert, serial, sizeof(serial));
    assert_int_equal(store_get(ca_store(F.ca), serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->serial, serial);
    assert_string_equal(row->name, "api.corp.example");
    assert_string_equal(row->subject, "CN=api,O=" ORG);
    assert_string_equal(row->issuer, ISSUING_SUBJECT);
    assert_string_equal(row->profile, "server");
    assert_string_equal(row->owner, "team-api");
    assert_string_equal(row->location, "rack 4");
    assert_contains(row->sans, "DNS:api.corp.example");
    assert_contains(row->sans, "IP:10.0.0.7");
    spki_sha256(F.key, fp, sizeof(fp));
    assert_string_equal(row->key_fingerprint, fp);
    assert_int_equal(row->not_before, asn1_time(X509_get0_notBefore(cert)));
    assert_int_equal(row->not_after, asn1_time(X509_get0_notAfter(cert)));
    assert_int_equal(row->issued_at, now);
    assert_int_equal(row->status, STORE_VALID);
    assert_null(row->renews);
    {
        unsigned char *der = NULL;
        int dlen = i2d_X509(cert, &der);
        assert_int_equal(row->der_len, (size_t)dlen);
        assert_memory_equal(row->der, der, (size_t)dlen);
        OPENSSL_free(der);
    }
    store_cert_free(row);
    X509_free(cert);
}

static void
test_issue_client_spiffe(void **state)
{
    const char *sans[] = {"uri:spiffe://" TD "/ns/prod/sa/api"};
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    char serial[128];
    int64_t now = (int64_t)time(NULL);
    X509 *cert;

    (void)state;
    cert = issue_ok(F.ca, "client", "api", sans, 1, 0, now, NULL);
    if (verify_leaf(F.ca, cert, DUET_PURPOSE_CLIENT, NULL, NULL, NULL, &err) != 0)
        fail_msg("verify as client: %s", err.msg);
    assert_int_equal(verify_leaf(F.ca, cert, DUET_PURPOSE_SERVER, NULL, NULL, NULL, &err), -1);
    assert_true(has_san(cert, GEN_URI, "spiffe://" TD "/ns/prod/sa/api"));
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
    assert_int_equal(asn1_time(X509_get0_notAfter(cert)), now + 720 * HOUR);

    serial_of(cert, serial, sizeof(serial));
    assert_int_equal(store_get(ca_store(F.ca), serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->name, "spiffe://" TD "/ns/prod/sa/api");
    assert_string_equal(row->profile, "client");
    assert_string_equal(row->sans, "URI:spiffe://" TD "/ns/prod/sa/api");
    assert_null(row->owner);
    assert_null(row->location);
    store_cert_free(row);
    X509_free(cert);
}

static void
test_issue_peer_both_purposes(void **state)
{
    const char *sans[] = {"uri:spiffe://" TD "/peer/a", "dns:a.corp.example"};
    struct duet_err err = {0};
    X509 *cert;

    (void)state;
    cert = issue_ok(F.ca, "peer", "a", sans, 2, 0, 0, NULL);
    if (verify_leaf(F.ca, cert, DUET_PURPOSE_CLIENT, NULL, NULL, NULL, &err) != 0)
        fail_msg("verify peer as client: %s", err.msg);
    if (verify_leaf(F.ca, cert, DUET_PURPOSE_SERVER, "a.corp.example", NULL, NULL, &err) != 0)
        fail_msg("verify peer as server: %s", err.msg);
    X509_free(cert);
}

/* Each issuance draws a new serial. */
static void
test_issue_serials_differ(void **state)
{
    const char *sans[] = {"dns:same.corp.example"};
    char s1[128], s2[128];
    X509 *a, *b;

    (void)state;
    a = issue_ok(F.ca, "server", "same", sans, 1, HOUR, 0, NULL);
    b = issue_ok(F.ca, "server", "same", sans, 1, HOUR, 0, NULL);
    serial_of(a, s1, sizeof(s1));
    serial_of(b, s2, sizeof(s2));
    assert_string_not_equal(s1, s2);
    X509_free(a);
    X509_free(b);
}

static void
test_issue_explicit_ttl(void **state)
{
    const char *sans[] = {"dns:short.corp.example"};
    int64_t now = (int64_t)time(NULL);
    X509 *cert;

    (void)state;
    cert = issue_ok(F.ca, "server", "short", sans, 1, 90 * 60, now, NULL);
    assert_int_equal(asn1_time(X509_get0_notAfter(cert)), now + 90 * 60);
    X509_free(cert);
}

/* Validity past the issuing CA's notAfter is cut to it, and said so. */
static void
test_issue_clamped(void **state)
{
    const char *sans[] = {"dns:late.corp.example"};
    int64_t ca_end = asn1_time(X509_get0_notAfter(ca_issuing_cert(F.ca)));
    int64_t now = ca_end - 10 * DAY;
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    char serial[128];
    bool clamped = false;
    X509 *cert;

    (void)state;
    cert = issue_ok(F.ca, "server", "late", sans, 1, 30 * DAY, now, &clamped);
    assert_true(clamped);
    assert_int_equal(asn1_time(X509_get0_notAfter(cert)), ca_end);
    serial_of(cert, serial, sizeof(serial));
    assert_int_equal(store_get(ca_store(F.ca), serial, &row, &err), 0);
    assert_non_null(row);
    assert_int_equal(row->not_after, ca_end);
    store_cert_free(row);
    X509_free(cert);

    /* Just inside: not clamped. */
    clamped = true;
    cert = issue_ok(F.ca, "server", "late", sans, 1, 9 * DAY, now, &clamped);
    assert_false(clamped);
    assert_int_equal(asn1_time(X509_get0_notAfter(cert)), now + 9 * DAY);
    X509_free(cert);
}

/* A refused request leaves no row behind. */
static void
test_issue_refusals_leave_inventory(void **state)
{
    static const char *const spiffe[] = {"uri:spiffe://" TD "/x"};
    static const char *const dns[] = {"dns:x.corp.example"};
    static const char *const two_uris[] = {"uri:spiffe://" TD "/a", "uri:spiffe://" TD "/b"};
    static const char *const other_td[] = {"uri:spiffe://other.example/x"};
    static const char *const bad_san[] = {"spiffe:x"};
    static const char *const uri_on_server[] = {"dns:x.corp.example", "uri:spiffe://" TD "/x"};
    EVP_PKEY *weak = cf_key_new(CF_KEY_RSA_1024);
    static const struct {
        const char *what;
        const char *profile;
        const char *cn;
        const char *const *sans;
        size_t nsans;
        int64_t ttl;
        bool weak_key;
        const char *msg;
    } cases[] = {
        {"unknown profile", "nope", "x", dns, 1, 0, false, "profile \"nope\" is not in"},
        {"client without URI", "client", "x", dns, 1, 0, false,
         "profile client requires exactly one URI SAN"},
        {"client with two URIs", "client", "x", two_uris, 2, 0, false, "2 given"},
        {"client in another trust domain", "client", "x", other_td, 1, 0, false,
         "not allowed by profile client"},
        {"URI on a server", "server", "x", uri_on_server, 2, 0, false,
         "name uri:spiffe://" TD "/x is not allowed by profile server"},
        {"server without SAN", "server", "x", NULL, 0, 0, false,
         "requires at least one subject alternative name"},
        {"bad SAN", "server", "x", bad_san, 1, 0, false, "unknown type \"spiffe\""},
        {"ttl over max", "client", "x", spiffe, 1, 2161 * HOUR, false,
         "ttl of 2161 hours is over the maximum of 2160 hours of profile client"},
        {"no CN", "server", "", dns, 1, 0, false, "subject CN"},
        {"weak key", "server", "x", dns, 1, 0, true, "RSA 2048+"},
    };
    size_t before = cafx_inventory_count(F.ca);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ca_request r = {0};
        struct duet_err err = {0};
        X509 *cert = (X509 *)(uintptr_t)1;

        r.profile = cases[i].profile;
        r.cn = cases[i].cn;
        r.sans = cases[i].sans;
        r.nsans = cases[i].nsans;
        r.ttl = cases[i].ttl;
        r.pubkey = cases[i].weak_key ? weak : F.key;
        if (ca_issue(F.ca, &r, &cert, NULL, &err) == 0) {
            X509_free(cert);
            fail_msg("%s: issued", cases[i].what);
        }
        assert_null(cert);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].what, cases[i].msg, err.msg);
    }
    assert_int_equal(cafx_inventory_count(F.ca), before);
    EVP_PKEY_free(weak);
}

/* A GENERAL_NAME of an IA5 type with exactly these bytes (NULs and CR LF included). */
static GENERAL_NAME *
ia5_name(int type, const char *bytes, size_t len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *a = ASN1_IA5STRING_new();

    assert_non_null(g);
    assert_non_null(a);
    assert_true(ASN1_STRING_set(a, bytes, (int)len));
    GENERAL_NAME_set0_value(g, type, a);
    return g;
}

/* The number of subjectAltName entries of a certificate. */
static int
san_count(X509 *cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;

    GENERAL_NAMES_free(gens);
    return n;
}

/*
 * SAN injection (issue 9 item 4): a name holding ",IP:..." stays one name,
 * whether it comes from --san text or from a CSR's GENERAL_NAMEs, and names
 * with CR, LF or NUL are refused with the byte named.
 */
static void
test_issue_san_injection(void **state)
{
    static const char *const injected[] = {"uri:urn:x:y,IP:10.9.8.7,DNS:evil.example"};
    static const char *const spiffe_injected[] = {"uri:spiffe://" TD "/x,IP:10.9.8.7,DNS:*"};
    static const char comma_ip[] = "spiffe://" TD "/x,IP:127.0.0.1";
    static const char crlf[] = "spiffe://" TD "/x\r\nIP:127.0.0.1";
    static const char nul[] = "spiffe://" TD "/x\0,IP:127.0.0.1";
    struct ca_request r = {0};
    struct duet_err err = {0};
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    X509 *cert = NULL;
    size_t before;

    (void)state;
    /* --san text on a profile with every type and no pattern: one URI, nothing else. */
    cert = issue_ok(F.ca, "device", "dev", injected, 1, 0, 0, NULL);
    assert_int_equal(san_count(cert), 1);
    assert_true(has_san(cert, GEN_URI, "urn:x:y,IP:10.9.8.7,DNS:evil.example"));
    assert_false(has_san(cert, GEN_IPADD, "10.9.8.7"));
    X509_free(cert);

    /* A CSR's URI holding ",IP:127.0.0.1": copied as the one URI it is. */
    assert_true(sk_GENERAL_NAME_push(names, ia5_name(GEN_URI, comma_ip, strlen(comma_ip))));
    r.profile = "device";
    r.cn = "dev";
    r.pubkey = F.key;
    r.names = names;
    r.names_from = "the CSR";
    if (ca_issue(F.ca, &r, &cert, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(san_count(cert), 1);
    assert_true(has_san(cert, GEN_URI, comma_ip));
    assert_false(has_san(cert, GEN_IPADD, "127.0.0.1"));
    X509_free(cert);
    cert = NULL;

    before = cafx_inventory_count(F.ca);
    /* The SPIFFE profile refuses the injected text outright. */
    r.names = NULL;
    r.profile = "client";
    r.sans = spiffe_injected;
    r.nsans = 1;
    assert_int_equal(ca_issue(F.ca, &r, &cert, NULL, &err), -1);
    assert_contains(err.msg, "is not a SPIFFE ID: its path must be");

    /* CR LF and NUL in a CSR's URI: refused, the byte and the source named, escaped. */
    r.profile = "device";
    r.sans = NULL;
    r.nsans = 0;
    r.names = names;
    sk_GENERAL_NAME_pop_free(names, GENERAL_NAME_free);
    names = GENERAL_NAMES_new();
    r.names = names;
    assert_true(sk_GENERAL_NAME_push(names, ia5_name(GEN_URI, crlf, sizeof(crlf) - 1)));
    assert_int_equal(ca_issue(F.ca, &r, &cert, NULL, &err), -1);
    assert_contains(err.msg, "the CSR: URI name \"spiffe://" TD "/x\\x0d\\x0aIP:127.0.0.1\"");
    assert_contains(err.msg, "byte 0x0d at offset");
    assert_null(strchr(err.msg, '\r'));
    GENERAL_NAME_free(sk_GENERAL_NAME_pop(names));
    assert_true(sk_GENERAL_NAME_push(names, ia5_name(GEN_URI, nul, sizeof(nul) - 1)));
    assert_int_equal(ca_issue(F.ca, &r, &cert, NULL, &err), -1);
    assert_contains(err.msg, "byte 0x00 at offset");

    /* A control character in the CN is refused too. */
    r.names = NULL;
    r.sans = injected;
    r.nsans = 1;
    r.cn = "dev\x1b[2J";
    assert_int_equal(ca_issue(F.ca, &r, &cert, NULL, &err), -1);
    assert_contains(err.msg, "control character 0x1b at offset 3");
    assert_null(cert);
    assert_int_equal(cafx_inventory_count(F.ca), before);
    GENERAL_NAMES_free(names);
}

/* Renewal links both rows. */
static void
test_issue_renewal_links(void **state)
{
    const char *sans[] = {"dns:renew.corp.example"};
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    char old_serial[128], new_serial[128];
    struct ca_request r = {0};
    X509 *old, *neu = NULL;

    (void)state;
    old = issue_ok(F.ca, "server", "renew", sans, 1, DAY, 0, NULL);
    serial_of(old, old_serial, sizeof(old_serial));
    r.profile = "server";
    r.cn = "renew";
    r.sans = sans;
    r.nsans = 1;
    r.pubkey = F.key;
    r.renews = old_serial;
    if (ca_issue(F.ca, &r, &neu, NULL, &err) != 0)
        fail_msg("renewal: %s", err.msg);
    serial_of(neu, new_serial, sizeof(new_serial));
    assert_int_equal(store_get(ca_store(F.ca), new_serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->renews, old_serial);
    store_cert_free(row);
    assert_int_equal(store_get(ca_store(F.ca), old_serial, &row, &err), 0);
    assert_non_null(row);
    assert_string_equal(row->renewed_by, new_serial);
    store_cert_free(row);
    X509_free(old);
    X509_free(neu);
}

/* ---- revocation and CRLs ---- */

/* The entry's reason code, -1 when the entry has none, -2 when the serial is absent. */
static int
crl_entry(X509_CRL *crl, X509 *cert, int64_t *when)
{
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *e;
    int crit = 0;
    int reason;

    if (X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(cert)) != 1)
        return -2;
    *when = asn1_time(X509_REVOKED_get0_revocationDate(rev));
    e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
    if (e == NULL)
        return -1;
    reason = (int)ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    return reason;
}

static void
test_revoke_and_crl(void **state)
{
    const char *sa[] = {"dns:revoked.corp.example"};
    const char *sb[] = {"dns:good.corp.example"};
    const char *sc[] = {"dns:plain.corp.example"};
    struct duet_err err = {0};
    struct store_cert *row = NULL;
    X509_CRL *crl = NULL, *crl2 = NULL, *rcrl = NULL;
    char serial_a[128], serial_c[128], date[16];
    int64_t now = (int64_t)time(NULL);
    int64_t when_a = now - 30, when_c = now - 20, t = 0;
    X509 *a, *b, *c;
    struct tm tm;
    time_t tt;

    (void)state;
    a = issue_ok(F.ca, "server", "revoked", sa, 1, 0, 0, NULL);
    b = issue_ok(F.ca, "server", "good", sb, 1, 0, 0, NULL);
    c = issue_ok(F.ca, "server", "plain", sc, 1, 0, 0, NULL);
    serial_of(a, serial_a, sizeof(serial_a));
    serial_of(c, serial_c, sizeof(serial_c));

    if (ca_revoke(F.ca, serial_a, CRL_REASON_KEY_COMPROMISE, when_a, NULL, &err) != 0)
        fail_msg("ca_revoke: %s", err.msg);
    if (ca_revoke(F.ca, serial_c, CRL_REASON_UNSPECIFIED, when_c, NULL, &err) != 0)
        fail_msg("ca_revoke: %s", err.msg);
    assert_int_equal(store_get(ca_store(F.ca), serial_a, &row, &err), 0);
    assert_int_equal(row->status, STORE_REVOKED);
    assert_int_equal(row->revoked_at, when_a);
    assert_int_equal(row->reason, CRL_REASON_KEY_COMPROMISE);
    store_cert_free(row);

    /* Revoking again, or an unknown serial, is refused. */
    assert_int_equal(ca_revoke(F.ca, serial_a, CRL_REASON_SUPERSEDED, now, NULL, &err), -1);
    assert_contains(err.msg, "already revoked");
    assert_contains(err.msg, "keyCompromise");
    assert_int_equal(ca_revoke(F.ca, "01:02:03", CRL_REASON_SUPERSEDED, now, NULL, &err), -1);
    assert_contains(err.msg, "serial 01:02:03 is not in the inventory");

    /* The CRL. */
    if (ca_crl(F.ca, now - 60, 7 * DAY, &crl, &err) != 0)
        fail_msg("ca_crl: %s", err.msg);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_issuing_cert(F.ca))), 1);
    assert_int_not_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_root_cert(F.ca))), 1);
    assert_int_equal(
        X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_issuing_cert(F.ca))), 0);
    assert_int_equal(asn1_time(X509_CRL_get0_lastUpdate(crl)), now - 60);
    assert_non_null(X509_CRL_get0_nextUpdate(crl));
    assert_int_equal(asn1_time(X509_CRL_get0_nextUpdate(crl)), now - 60 + 7 * DAY);
    assert_true(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
    assert_int_equal(crl_entry(crl, a, &t), CRL_REASON_KEY_COMPROMISE);
    assert_int_equal(t, when_a);
    assert_int_equal(crl_entry(crl, c, &t), -1); /* unspecified: no reasonCode (RFC 5280 5.3.1) */
    assert_int_equal(t, when_c);
    assert_int_equal(crl_entry(crl, b, &t), -2);

    /* Numbers increase. */
    if (ca_crl(F.ca, now - 60, DAY, &crl2, &err) != 0)
        fail_msg("ca_crl: %s", err.msg);
    assert_int_equal(cafx_crl_number(crl2), cafx_crl_number(crl) + 1);
    assert_int_equal(asn1_time(X509_CRL_get0_nextUpdate(crl2)), now - 60 + DAY);

    /* Verification with the CRLs: the revoked one is refused, the other accepted. */
    if (ca_root_crl(F.ca, &rcrl, &err) != 0)
        fail_msg("ca_root_crl: %s", err.msg);
    assert_int_equal(verify_leaf(F.ca, a, DUET_PURPOSE_SERVER, "revoked.corp.example", crl, rcrl,
                                 &err),
                     -1);
    tt = (time_t)when_a;
    gmtime_r(&tt, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    assert_contains(err.msg, "was revoked on");
    assert_contains(err.msg, date);
    assert_contains(err.msg, "keyCompromise");
    if (verify_leaf(F.ca, b, DUET_PURPOSE_SERVER, "good.corp.example", crl, rcrl, &err) != 0)
        fail_msg("unrevoked certificate with CRLs: %s", err.msg);
    assert_int_equal(verify_leaf(F.ca, c, DUET_PURPOSE_SERVER, NULL, crl2, rcrl, &err), -1);
    assert_contains(err.msg, "was revoked on");

    X509_CRL_free(crl);
    X509_CRL_free(crl2);
    X509_CRL_free(rcrl);
    X509_free(a);
    X509_free(b);
    X509_free(c);
}

static void
test_crl_refusals(void **state)
{
    struct duet_err err = {0};
    X509_CRL *crl = (X509_CRL *)(uintptr_t)1;

    (void)state;
    assert_int_equal(ca_crl(F.ca, (int64_t)time(NULL), 0, &crl, &err), -1);
    assert_null(crl);
    assert_contains(err.msg, "validity must be positive");
    assert_int_equal(ca_revoke(F.ca, "01:02", 7, (int64_t)time(NULL), NULL, &err), -1);
    assert_contains(err.msg, "reason code 7 is not valid");
    assert_int_equal(ca_revoke(F.ca, "01:02", -1, (int64_t)time(NULL), NULL, &err), -1);
    assert_contains(err.msg, "reason code -1 is not valid");
}

/* A fresh root CRL: signed by the root, numbered after every earlier CRL, written to root.crl. */
static void
test_root_crl_renew(void **state)
{
    struct duet_err err = {0};
    X509_CRL *old = NULL, *crl = NULL, *onfile = NULL, *icrl = NULL;
    int64_t now = (int64_t)time(NULL) - 60;
    char *ikey = ca_file(CA_FILE_ISSUING_KEY);

    (void)state;
    if (ca_root_crl(F.ca, &old, &err) != 0)
        fail_msg("ca_root_crl: %s", err.msg);
    if (ca_root_crl_renew(F.ca, NULL, CAFX_PASS, now, 30 * DAY, &crl, &err) != 0)
        fail_msg("ca_root_crl_renew: %s", err.msg);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_root_cert(F.ca))), 1);
    assert_int_equal(
        X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_root_cert(F.ca))), 0);
    assert_true(cafx_crl_number(crl) > cafx_crl_number(old));
    assert_int_equal(asn1_time(X509_CRL_get0_lastUpdate(crl)), now);
    assert_int_equal(asn1_time(X509_CRL_get0_nextUpdate(crl)), now + 30 * DAY);
    /* root.crl now holds it. */
    if (ca_root_crl(F.ca, &onfile, &err) != 0)
        fail_msg("ca_root_crl: %s", err.msg);
    assert_int_equal(X509_CRL_cmp(onfile, crl), 0);
    assert_int_equal(cafx_crl_number(onfile), cafx_crl_number(crl));
    /* One counter: the issuing CA's next CRL is numbered after it. */
    if (ca_crl(F.ca, now, DAY, &icrl, &err) != 0)
        fail_msg("ca_crl: %s", err.msg);
    assert_true(cafx_crl_number(icrl) > cafx_crl_number(crl));

    /* Refusals leave root.crl alone. */
    assert_int_equal(ca_root_crl_renew(F.ca, NULL, "wrong passphrase!", now, DAY, NULL, &err), -1);
    assert_contains(err.msg, "wrong CA passphrase");
    assert_int_equal(ca_root_crl_renew(F.ca, ikey, CAFX_PASS, now, DAY, NULL, &err), -1);
    assert_contains(err.msg, ikey);
    assert_contains(err.msg, "is not the key of");
    assert_int_equal(ca_root_crl_renew(F.ca, NULL, CAFX_PASS, now, 0, NULL, &err), -1);
    assert_contains(err.msg, "validity must be positive");
    X509_CRL_free(onfile);
    onfile = NULL;
    assert_int_equal(ca_root_crl(F.ca, &onfile, &err), 0);
    assert_int_equal(X509_CRL_cmp(onfile, crl), 0);
    assert_int_equal(cafx_crl_number(onfile), cafx_crl_number(crl));

    X509_CRL_free(old);
    X509_CRL_free(crl);
    X509_CRL_free(onfile);
    X509_CRL_free(icrl);
    free(ikey);
}

/* ---- CAs made differently ---- */

static struct ca *
init_and_open(const char *sub, enum ca_key_type kt, const char *const *permit_dns, size_t ndns,
              bool offline, char **dir_out)
{
    struct ca_init_opts o = {0};
    struct duet_err err = {0};
    struct ca *ca = NULL;
    char *dir = cf_path(F.tmp, sub);

    o.dir = dir;
    o.name = "Other Org";
    o.key_type = kt;
    o.passphrase = CAFX_PASS;
    o.permit_dns = permit_dns;
    o.npermit_dns = ndns;
    o.offline_root = offline;
    if (ca_init(&o, &err) != 0)
        fail_msg("ca_init %s: %s", sub, err.msg);
    if (ca_open(dir, CAFX_PASS, &ca, &err) != 0)
        fail_msg("ca_open %s: %s", sub, err.msg);
    *dir_out = dir;
    return ca;
}

static void
test_name_constraints(void **state)
{
    static const char *const permit[] = {"corp.example"};
    const char *inside[] = {"dns:api.corp.example"};
    const char *outside[] = {"dns:api.evil.example"};
    struct duet_err err = {0};
    struct ca_request r = {0};
    X509 *cert = NULL;
    char *dir = NULL;
    struct ca *ca = init_and_open("nc", CA_KEY_P256, permit, 1, false, &dir);
    size_t before;

    (void)state;
    /* The trust domain was derived from the name. */
    assert_string_equal(ca_config(ca)->trust_domain, "other-org");
    assert_true(X509_get_ext_by_NID(ca_issuing_cert(ca), NID_name_constraints, -1) >= 0);
    cert = issue_ok(ca, "server", "api", inside, 1, 0, 0, NULL);
    if (verify_leaf(ca, cert, DUET_PURPOSE_SERVER, "api.corp.example", NULL, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    X509_free(cert);
    cert = NULL;

    before = cafx_inventory_count(ca);
    r.profile = "server";
    r.cn = "api";
    r.sans = outside;
    r.nsans = 1;
    r.pubkey = F.key;
    assert_int_equal(ca_issue(ca, &r, &cert, NULL, &err), -1);
    assert_null(cert);
    assert_contains(err.msg, "name constraints");
    assert_int_equal(cafx_inventory_count(ca), before);
    ca_close(ca);
    free(dir);
}

static void
test_offline_root_ed25519(void **state)
{
    const char *sans[] = {"uri:spiffe://other-org/dev/1"};
    struct duet_err err = {0};
    char *dir = NULL;
    struct ca *ca = init_and_open("off", CA_KEY_ED25519, NULL, 0, true, &dir);
    char *on = cf_path(dir, CA_FILE_ROOT_KEY);
    char *off = cf_path(dir, CA_FILE_ROOT_KEY_OFFLINE);
    struct stat st;
    X509 *cert;

    (void)state;
    assert_int_not_equal(access(on, F_OK), 0);
    assert_int_equal(stat(off, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(ca_config(ca)->offline_root);
    assert_string_equal(ca_config(ca)->key_type, "ed25519");
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(ca_issuing_cert(ca)), "ED25519"));
    cert = issue_ok(ca, "device", "dev1", sans, 1, 0, 0, NULL);
    if (verify_leaf(ca, cert, DUET_PURPOSE_CLIENT, NULL, NULL, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    X509_free(cert);

    /* The root CRL is renewed only with the offline key given explicitly. */
    {
        X509_CRL *crl = NULL;
        assert_int_equal(ca_root_crl_renew(ca, NULL, CAFX_PASS, (int64_t)time(NULL), DAY, NULL, &err),
                         -1);
        assert_contains(err.msg, "no root key here");
        assert_contains(err.msg, "the root is offline");
        if (ca_root_crl_renew(ca, off, CAFX_PASS, (int64_t)time(NULL), DAY, &crl, &err) != 0)
            fail_msg("renew with the offline key: %s", err.msg);
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_root_cert(ca))), 1);
        X509_CRL_free(crl);
    }
    ca_close(ca);
    free(on);
    free(off);
    free(dir);
}

/* ---- parsers ---- */

static void
test_key_type_parse(void **state)
{
    static const struct {
        const char *in;
        int want; /* -1: refused */
    } cases[] = {
        {"p256", CA_KEY_P256},       {"p384", CA_KEY_P384},   {"ed25519", CA_KEY_ED25519},
        {"rsa3072", CA_KEY_RSA3072}, {"P256", -1},            {"rsa1024", -1},
        {"rsa2048", -1},             {"", -1},                {"p256 ", -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        enum ca_key_type t = CA_KEY_RSA3072;
        int rc = ca_key_type_parse(cases[i].in, &t, &err);
        if (cases[i].want < 0) {
            if (rc == 0)
                fail_msg("\"%s\" accepted", cases[i].in);
            assert_contains(err.msg, "expected p256, p384, ed25519 or rsa3072");
        } else {
            if (rc != 0 || (int)t != cases[i].want)
                fail_msg("\"%s\": rc %d type %d (%s)", cases[i].in, rc, (int)t, err.msg);
            assert_string_equal(ca_key_type_name(t), cases[i].in);
        }
    }
}

static void
test_key_generate(void **state)
{
    static const struct {
        enum ca_key_type t;
        const char *alg;
        int bits;
    } cases[] = {
        {CA_KEY_P256, "EC", 256},
        {CA_KEY_P384, "EC", 384},
        {CA_KEY_ED25519, "ED25519", 256},
        {CA_KEY_RSA3072, "RSA", 3072},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        EVP_PKEY *k = ca_key_generate(cases[i].t, &err);
        if (k == NULL)
            fail_msg("%s: %s", ca_key_type_name(cases[i].t), err.msg);
        assert_true(EVP_PKEY_is_a(k, cases[i].alg));
        assert_int_equal(EVP_PKEY_get_bits(k), cases[i].bits);
        EVP_PKEY_free(k);
    }
}

static void
test_reason_parse(void **state)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"unspecified", CRL_REASON_UNSPECIFIED},
        {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
        {"caCompromise", CRL_REASON_CA_COMPROMISE},
        {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
        {"superseded", CRL_REASON_SUPERSEDED},
        {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
        {"certificateHold", CRL_REASON_CERTIFICATE_HOLD},
        {"", -1},
        {"compromised", -1},
        {"keycompromise ", -1},
        {"removeFromCRL", -1}, /* only meaningful in delta CRLs */
        {NULL, -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = ca_reason_parse(cases[i].in);
        if (got != cases[i].want)
            fail_msg("ca_reason_parse(\"%s\") = %d, want %d",
                     cases[i].in != NULL ? cases[i].in : "NULL", got, cases[i].want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_files),
        cmocka_unit_test(test_init_hierarchy),
        cmocka_unit_test(test_init_refusals),
        cmocka_unit_test(test_init_existing_refused),
        cmocka_unit_test(test_init_partial_dir_refused),
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_open_read_only),
        cmocka_unit_test(test_issue_server),
        cmocka_unit_test(test_issue_client_spiffe),
        cmocka_unit_test(test_issue_peer_both_purposes),
        cmocka_unit_test(test_issue_serials_differ),
        cmocka_unit_test(test_issue_explicit_ttl),
        cmocka_unit_test(test_issue_clamped),
        cmocka_unit_test(test_issue_refusals_leave_inventory),
        cmocka_unit_test(test_issue_san_injection),
        cmocka_unit_test(test_issue_renewal_links),
        cmocka_unit_test(test_revoke_and_crl),
        cmocka_unit_test(test_crl_refusals),
        cmocka_unit_test(test_root_crl_renew),
        cmocka_unit_test(test_name_constraints),
        cmocka_unit_test(test_offline_root_ed25519),
        cmocka_unit_test(test_key_type_parse),
        cmocka_unit_test(test_key_generate),
        cmocka_unit_test(test_reason_parse),
    };

    return cmocka_run_group_tests_name("ca", tests, group_setup, group_teardown);
}
