/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor_test.c - unit tests of src/lib/doctor.c, the checks behind `duet
 * doctor`: a key against its certificate, a chain's order and completeness,
 * a certificate's fitness for its role, validity and expiry soon, a CRL's
 * freshness and presence for an issuer, a key file's mode and owner, the
 * directories above a file, a trust
 * bundle's public, extra, expired and non-CA certificates.  Each case
 * asserts the codes found, in order, and the words a user reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509.h>

#include "lib/doctor.h"
#include "testlib/certfactory.h"
#include "testlib/pkiworld.h"

/* Root -> Inter -> {server, client, expired/future certs...}, a CA as leaf, an old root. */
static struct pki_world pki;
static struct {
    X509 *server, *client, *expired, *future, *soon, *no_ds, *old_ca;
    X509 *cdp;
    X509 *noaki, *impostor; /* a leaf without key identifier; "Inter" with another key */
} w;
static const struct doctor_src SRC = {.file = "f.pem", .key = "--cert"};

static int
setup(void **state)
{
    (void)state;
    pkw_new(&pki);
#define LEAF(...) pkw_leaf(&pki, (struct cf_cert_spec){__VA_ARGS__})
    w.server = LEAF(.cn = "server", .eku = CF_EKU_SERVER);
    w.client = LEAF(.cn = "alice", .eku = CF_EKU_CLIENT);
    w.expired = LEAF(.cn = "old", .eku = CF_EKU_SERVER, .not_before = -100 * CF_DAY,
                     .not_after = -10 * CF_DAY);
    w.future = LEAF(.cn = "new", .eku = CF_EKU_SERVER, .not_before = 10 * CF_DAY,
                    .not_after = 100 * CF_DAY);
    w.soon = LEAF(.cn = "soon", .eku = CF_EKU_SERVER, .not_before = -CF_DAY,
                  .not_after = 10 * CF_DAY + 3600);
    w.no_ds = LEAF(.cn = "nods", .eku = CF_EKU_SERVER, .key_usage = "keyEncipherment");
    w.cdp = LEAF(.cn = "cdp", .eku = CF_EKU_SERVER, .crl_dp = "URI:http://ca.example/int.crl");
    w.noaki = LEAF(.cn = "noaki", .eku = CF_EKU_SERVER, .no_aki = true);
#undef LEAF
    w.old_ca = cf_cert_new(&(struct cf_cert_spec){.cn = "Old",
                                                  .key = pki.other_key,
                                                  .bc = CF_BC_CA,
                                                  .not_before = -400 * CF_DAY,
                                                  .not_after = -5 * CF_DAY});
    w.impostor = cf_cert_new(&(struct cf_cert_spec){.cn = "Inter",
                                                    .key = pki.other_key,
                                                    .issuer = pki.root,
                                                    .issuer_key = pki.root_key,
                                                    .bc = CF_BC_CA});
    return 0;
}

static int
teardown(void **state)
{
    X509 *certs[] = {w.server, w.client, w.expired, w.future, w.soon,
                     w.no_ds,  w.old_ca, w.cdp,     w.noaki,  w.impostor};
    (void)state;
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    pkw_free(&pki);
    return 0;
}

/* The findings of a report as "severity:code", space-separated ("" for none). */
static const char *
codes(struct doctor_report *r)
{
    static char buf[512];
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < r->n && off < sizeof(buf); i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s:%s", i ? " " : "",
                                doctor_sev_name(r->v[i].sev), r->v[i].code);
    assert_false(r->nomem);
    return buf;
}

static void
test_pair(void **state)
{
    struct doctor_report r = {0};
    (void)state;

    doctor_check_pair(&r, &SRC, w.server, pki.leaf_key);
    assert_string_equal(codes(&r), "");
    doctor_check_pair(&r, &SRC, w.server, pki.root_key);
    assert_string_equal(codes(&r), "error:key_mismatch");
    assert_contains(r.v[0].problem, "does not belong to the certificate CN=server");
    assert_string_equal(r.v[0].file, "f.pem");
    assert_string_equal(r.v[0].key, "--cert");
    assert_null(r.v[0].config);
    doctor_report_clear(&r);
}

static void
test_chain(void **state)
{
    static const struct {
        const char *name;
        int order[4]; /* indexes into the world's certs, -1 ends */
        bool roots;
        const char *want;
        const char *words;
    } cases[] = {
        {"complete", {0, 1, -1}, true, "", NULL},
        {"complete, root not given", {0, 1, -1}, false, "", NULL},
        {"leaf alone", {0, -1}, true, "error:chain_incomplete", "certificate 0, CN=server"},
        {"wrong order",
         {0, 2, 1, -1},
         true,
         "warning:chain_wrong_order",
         "is not followed by its issuer CN=Inter"},
        {"unrelated", {0, 1, 3, -1}, true, "warning:chain_unrelated", "certificate 2, CN=Other"},
        /* an intermediate in the bundle is no help: peers hold roots */
        {"leaf alone, intermediate trusted", {0, -1}, true, "error:chain_incomplete", NULL},
        /* no bundle: the issuer may be a root the peers hold */
        {"leaf alone, no bundle",
         {0, -1},
         false,
         "warning:chain_issuer_unknown",
         "whether that is a root or an intermediate"},
        /* the issuer's name, but not its key: only the signature tells */
        {"impostor CA", {4, 5, -1}, true, "error:chain_bad_signature", "certificate 0, CN=noaki"},
        {"real CA, no key identifier", {4, 1, -1}, true, "", NULL},
    };
    X509 *pool[] = {w.server, pki.inter, pki.root, pki.other_root, w.noaki, w.impostor};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct doctor_report r = {0};
        STACK_OF(X509) *chain = sk_X509_new_null();
        STACK_OF(X509) *roots = i == 5 ? cf_certs(pki.root, pki.inter, NULL) : cf_certs(pki.root, NULL);
        for (int k = 0; cases[i].order[k] >= 0; k++)
            sk_X509_push(chain, pool[cases[i].order[k]]);
        doctor_check_chain(&r, &SRC, chain, cases[i].roots ? roots : NULL);
        if (strcmp(codes(&r), cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, codes(&r), cases[i].want);
        if (cases[i].words != NULL)
            assert_contains(r.v[0].problem, cases[i].words);
        if (strcmp(cases[i].want, "error:chain_bad_signature") == 0)
            assert_contains(r.v[0].problem, "is not signed by the key of certificate 1, CN=Inter");
        sk_X509_free(chain);
        OSSL_STACK_OF_X509_free(roots);
        doctor_report_clear(&r);
    }
}

static void
test_role(void **state)
{
    static const struct {
        int cert; /* 0 server, 1 client, 2 inter, 3 no digitalSignature */
        enum doctor_role role;
        const char *want, *words;
    } cases[] = {
        {0, DOCTOR_ROLE_SERVER, "", NULL},
        {1, DOCTOR_ROLE_CLIENT, "", NULL},
        {0, DOCTOR_ROLE_CLIENT, "error:eku_no_client_auth", "does not include clientAuth"},
        {1, DOCTOR_ROLE_SERVER, "error:eku_no_server_auth", "does not include serverAuth"},
        {2, DOCTOR_ROLE_SERVER, "error:cert_is_ca", "is a CA certificate"},
        {3, DOCTOR_ROLE_SERVER, "error:key_usage", "without digitalSignature"},
    };
    X509 *pool[] = {w.server, w.client, pki.inter, w.no_ds};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct doctor_report r = {0};
        doctor_check_role(&r, &SRC, pool[cases[i].cert], cases[i].role);
        assert_string_equal(codes(&r), cases[i].want);
        if (cases[i].words != NULL) {
            assert_contains(r.v[0].problem, cases[i].words);
            assert_contains(r.v[0].fix, cases[i].role == DOCTOR_ROLE_SERVER ? "--profile server"
                                                                            : "--profile client");
        }
        doctor_report_clear(&r);
    }
}

static void
test_validity(void **state)
{
    struct doctor_report r = {0};
    int64_t now = (int64_t)time(NULL);
    (void)state;

    doctor_check_validity(&r, &SRC, w.server, false, now, 30 * CF_DAY);
    assert_string_equal(codes(&r), "");
    doctor_check_validity(&r, &SRC, w.expired, false, now, 30 * CF_DAY);
    assert_string_equal(codes(&r), "error:cert_expired");
    assert_contains(r.v[0].problem, "(10 days ago)");
    assert_contains(r.v[0].fix, "renew it: duet cert renew ");
    doctor_report_clear(&r);
    doctor_check_validity(&r, &SRC, w.future, false, now, 30 * CF_DAY);
    assert_string_equal(codes(&r), "error:cert_not_yet_valid");
    assert_contains(r.v[0].problem, "(in 10 days)");
    doctor_report_clear(&r);
    doctor_check_validity(&r, &SRC, w.soon, false, now, 30 * CF_DAY);
    assert_string_equal(codes(&r), "warning:cert_expiring");
    assert_contains(r.v[0].problem, "(10 days left)");
    doctor_report_clear(&r);
    doctor_check_validity(&r, &SRC, w.soon, false, now, 7 * CF_DAY); /* --within 7d */
    assert_string_equal(codes(&r), "");
    doctor_check_validity(&r, &SRC, w.old_ca, true, now, 30 * CF_DAY);
    assert_string_equal(codes(&r), "error:cert_expired");
    assert_contains(r.v[0].fix, "re-issue the CA certificate");
    doctor_report_clear(&r);
}

static void
test_crl_fresh(void **state)
{
    struct doctor_report r = {0};
    int64_t now = (int64_t)time(NULL);
    X509_CRL *fresh = cf_crl_new(&(struct cf_crl_spec){.issuer = pki.inter, .issuer_key = pki.int_key});
    X509_CRL *stale = cf_crl_new(&(struct cf_crl_spec){.issuer = pki.inter,
                                                       .issuer_key = pki.int_key,
                                                       .last_update = -8 * CF_DAY,
                                                       .next_update = -CF_DAY});
    X509_CRL *soon = cf_crl_new(&(struct cf_crl_spec){
        .issuer = pki.inter, .issuer_key = pki.int_key, .last_update = -CF_DAY, .next_update = 3600});
    X509_CRL *open = cf_crl_new(
        &(struct cf_crl_spec){.issuer = pki.inter, .issuer_key = pki.int_key, .no_next_update = true});
    X509_CRL *ahead = cf_crl_new(&(struct cf_crl_spec){.issuer = pki.inter,
                                                       .issuer_key = pki.int_key,
                                                       .last_update = 2 * CF_DAY,
                                                       .next_update = 30 * CF_DAY});
    (void)state;

    doctor_check_crl_fresh(&r, &SRC, fresh, now, 2 * CF_DAY, false);
    assert_string_equal(codes(&r), "");
    doctor_check_crl_fresh(&r, &SRC, stale, now, 2 * CF_DAY, false);
    doctor_check_crl_fresh(&r, &SRC, stale, now, 2 * CF_DAY, true); /* crl_expired: warn */
    doctor_check_crl_fresh(&r, &SRC, soon, now, 2 * CF_DAY, false);
    doctor_check_crl_fresh(&r, &SRC, open, now, 2 * CF_DAY, false);
    assert_string_equal(codes(&r), "error:crl_expired warning:crl_expired warning:crl_expiring "
                                   "warning:crl_no_next_update");
    assert_contains(r.v[0].problem, "the CRL of CN=Inter is past its nextUpdate");
    assert_contains(r.v[0].problem, "(1 day ago): handshakes that need it are refused");
    assert_contains(r.v[2].problem, "(in less than a day)");
    doctor_report_clear(&r);
    /* before its thisUpdate the proxy refuses it, whatever crl_expired says */
    doctor_check_crl_fresh(&r, &SRC, ahead, now, 2 * CF_DAY, true);
    assert_string_equal(codes(&r), "error:crl_not_yet_valid");
    assert_contains(r.v[0].problem, "the CRL of CN=Inter is not valid before its thisUpdate");
    assert_contains(r.v[0].fix, "clock");
    doctor_report_clear(&r);
    X509_CRL_free(ahead);
    X509_CRL_free(fresh);
    X509_CRL_free(stale);
    X509_CRL_free(soon);
    X509_CRL_free(open);
}

static void
test_crl_for(void **state)
{
    struct doctor_report r = {0};
    X509_CRL *by_int =
        cf_crl_new(&(struct cf_crl_spec){.issuer = pki.inter, .issuer_key = pki.int_key});
    /* the same issuer name, signed by another key: not the issuer's CRL */
    X509_CRL *forged =
        cf_crl_new(&(struct cf_crl_spec){.issuer = pki.inter, .issuer_key = pki.other_key});
    STACK_OF(X509_CRL) *good = cf_crls(by_int, NULL), *bad = cf_crls(forged, NULL);
    char uri[128];
    (void)state;

    assert_true(doctor_check_crl_for(&r, &SRC, pki.inter, good, DOCTOR_ERROR, "needed", "fix"));
    assert_string_equal(codes(&r), "");
    assert_false(doctor_check_crl_for(&r, &SRC, pki.inter, bad, DOCTOR_ERROR, "needed", "fix"));
    assert_false(doctor_check_crl_for(&r, &SRC, pki.root, good, DOCTOR_WARNING, "why", "fix"));
    assert_string_equal(codes(&r), "error:crl_missing warning:crl_missing");
    assert_string_equal(r.v[0].problem, "no CRL of CN=Inter is given: needed");
    assert_string_equal(r.v[1].problem, "no CRL of CN=Root is given: why");
    doctor_report_clear(&r);
    assert_true(doctor_cdp_uri(w.cdp, uri, sizeof(uri)));
    assert_string_equal(uri, "http://ca.example/int.crl");
    assert_false(doctor_cdp_uri(w.server, uri, sizeof(uri)));
    assert_string_equal(uri, "");
    cf_crls_free(good);
    cf_crls_free(bad);
    X509_CRL_free(by_int);
    X509_CRL_free(forged);
}

static void
test_key_file(void **state)
{
    char *dir = cf_tmpdir();
    char *path = cf_path(dir, "k.pem");
    struct doctor_report r = {0};
    struct doctor_src src = {.file = path, .key = "listeners[0].key"};
    (void)state;

    cf_write_key(path, pki.leaf_key);
    assert_int_equal(chmod(path, 0600), 0);
    assert_true(doctor_check_key_file(&r, &src, geteuid(), true));
    assert_string_equal(codes(&r), "");
    assert_int_equal(chmod(path, 0640), 0);
    assert_true(doctor_check_key_file(&r, &src, geteuid(), true));
    assert_true(doctor_check_key_file(&r, &src, geteuid(), false)); /* insecure_key_mode */
    assert_int_equal(chmod(path, 0600), 0);
    assert_true(doctor_check_key_file(&r, &src, geteuid() + 1, true));
    assert_string_equal(codes(&r), "error:key_mode warning:key_mode warning:key_owner");
    assert_contains(r.v[0].problem, "mode is 0640: group or others may read it");
    assert_contains(r.v[0].fix, "chmod 600 ");
    assert_contains(r.v[0].fix, path);
    assert_contains(r.v[2].fix, "chown ");
    doctor_report_clear(&r);
    unlink(path);
    assert_false(doctor_check_key_file(&r, &src, geteuid(), true));
    assert_string_equal(codes(&r), "error:key_unreadable");
    assert_contains(r.v[0].problem, "No such file");
    doctor_report_clear(&r);
    free(path);
    cf_tmpdir_remove(dir);
}

static void
test_dirs(void **state)
{
    char *dir = cf_tmpdir();
    char *sub = cf_path(dir, "sub");
    char *inner = cf_path(sub, "inner");
    char *path = cf_path(inner, "k.pem");
    char *rel = NULL;
    struct doctor_report r = {0};
    struct doctor_src src = {.file = path, .key = "--key"};
    (void)state;

    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkdir(inner, 0700), 0);
    cf_write_key(path, pki.leaf_key);
    doctor_check_dirs(&r, &src, "the private key");
    assert_string_equal(codes(&r), "");
    assert_int_equal(chmod(sub, 0777), 0); /* a parent, not the file's own directory */
    doctor_check_dirs(&r, &src, "the private key");
    assert_string_equal(codes(&r), "error:dir_writable");
    assert_contains(r.v[0].problem, sub);
    assert_contains(r.v[0].problem, "writable by others (mode 0777, no sticky bit): any local "
                                    "user can rename the private key");
    assert_contains(r.v[0].fix, "chmod go-w ");
    assert_contains(r.v[0].fix, sub);
    doctor_report_clear(&r);
    assert_int_equal(chmod(sub, 0770), 0);
    doctor_check_dirs(&r, &src, "the private key");
    assert_string_equal(codes(&r), "warning:dir_writable");
    assert_contains(r.v[0].problem, "writable by its group");
    doctor_report_clear(&r);
    assert_int_equal(chmod(sub, 01777), 0); /* sticky, like /tmp */
    doctor_check_dirs(&r, &src, "the private key");
    assert_string_equal(codes(&r), "");
    /* a relative path is walked from the working directory */
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(chdir(sub), 0);
    rel = "inner/k.pem";
    src.file = rel;
    doctor_check_dirs(&r, &src, "the CRL");
    assert_string_equal(codes(&r), "error:dir_writable");
    assert_contains(r.v[0].problem, "rename the CRL");
    doctor_report_clear(&r);
    assert_int_equal(chdir("/"), 0);
    assert_int_equal(chmod(sub, 0700), 0);
    unlink(path);
    rmdir(inner);
    rmdir(sub);
    free(path);
    free(inner);
    free(sub);
    cf_tmpdir_remove(dir);
}

static void
test_trust(void **state)
{
    struct doctor_report r = {0};
    int64_t now = (int64_t)time(NULL);
    STACK_OF(X509) *one = cf_certs(pki.root, pki.inter, NULL);
    STACK_OF(X509) *two = cf_certs(pki.root, pki.other_root, NULL);
    STACK_OF(X509) *odd = cf_certs(pki.root, w.old_ca, w.server, NULL);
    X509_STORE *system = cf_store(pki.other_root, NULL);
    /* an intermediate of the "public" root Other, and the private one of Root */
    X509 *pub_int = cf_cert_new(&(struct cf_cert_spec){.cn = "Public Issuing",
                                                       .key = pki.leaf_key,
                                                       .issuer = pki.other_root,
                                                       .issuer_key = pki.other_key,
                                                       .bc = CF_BC_CA});
    STACK_OF(X509) *with_pub = cf_certs(pki.root, pub_int, NULL);
    (void)state;

    doctor_check_trust(&r, &SRC, one, system, now);
    assert_string_equal(codes(&r), "");
    doctor_check_trust(&r, &SRC, two, NULL, now);
    assert_string_equal(codes(&r), "info:trust_extra_roots");
    assert_contains(r.v[0].problem, "holds 2 root CAs (first: CN=Root");
    doctor_report_clear(&r);
    doctor_check_trust(&r, &SRC, two, system, now);
    assert_string_equal(codes(&r), "warning:trust_public_root");
    assert_contains(r.v[0].problem, "1 certificate of the bundle is a public root");
    assert_contains(r.v[0].problem, "(first: CN=Other");
    doctor_report_clear(&r);
    doctor_check_trust(&r, &SRC, odd, system, now);
    assert_string_equal(codes(&r),
                        "warning:trust_ca_expired warning:trust_not_ca info:trust_extra_roots");
    assert_contains(r.v[0].problem, "certificate 1, CN=Old");
    assert_contains(r.v[1].problem, "certificate 2, CN=server");
    doctor_report_clear(&r);
    doctor_check_trust(&r, &SRC, with_pub, system, now);
    assert_string_equal(codes(&r), "warning:trust_public_root");
    assert_contains(r.v[0].problem, "certificate 1, CN=Public Issuing");
    assert_contains(r.v[0].problem, "is an intermediate of a public CA: it chains to CN=Other");
    doctor_report_clear(&r);
    doctor_check_trust(&r, &SRC, with_pub, NULL, now); /* no system store: nothing known */
    assert_string_equal(codes(&r), "");
    OSSL_STACK_OF_X509_free(with_pub);
    X509_free(pub_int);
    OSSL_STACK_OF_X509_free(one);
    OSSL_STACK_OF_X509_free(two);
    OSSL_STACK_OF_X509_free(odd);
    X509_STORE_free(system);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair),      cmocka_unit_test(test_chain),
        cmocka_unit_test(test_role),      cmocka_unit_test(test_validity),
        cmocka_unit_test(test_crl_fresh), cmocka_unit_test(test_crl_for),
        cmocka_unit_test(test_key_file),  cmocka_unit_test(test_trust),
        cmocka_unit_test(test_dirs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
