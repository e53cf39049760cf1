/* SPDX-License-Identifier: Apache-2.0 */
/*
 * install_test.c - unit tests of what the agent does with an issued
 * certificate (src/agent/install.c): the pending copy in the state directory
 * read back as written, with or without a new key, and refused when it does
 * not match its key; installation into the live files (key 0600, chain,
 * bundle with a matching pair, no temporary file left) and its refusal naming
 * the path when a directory is a regular file.
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
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "agent/agent.h"
#include "lib/err.h"
#include "testlib/certfactory.h"

static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca, *leaf;

static int
setup(void **state)
{
    (void)state;
    ca_key = cf_key_new(CF_KEY_EC_P256);
    leaf_key = cf_key_new(CF_KEY_EC_P256);
    ca = cf_cert_new(&(struct cf_cert_spec){.cn = "Issuing", .key = ca_key, .bc = CF_BC_CA});
    leaf = cf_cert_new(&(struct cf_cert_spec){
        .cn = "web", .key = leaf_key, .issuer = ca, .issuer_key = ca_key, .serial = 0x1234});
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    return 0;
}

/* An issuance of leaf with ca as its chain; with_key: the key goes with it. */
static void
issued(struct agent_issued *is, bool with_key)
{
    memset(is, 0, sizeof(*is));
    X509_up_ref(leaf);
    is->leaf = leaf;
    is->chain = cf_certs(ca, NULL);
    if (with_key) {
        EVP_PKEY_up_ref(leaf_key);
        is->newkey = leaf_key;
    }
    snprintf(is->serial, sizeof(is->serial), "12:34");
}

static mode_t
mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static void
test_pending_round_trip_with_key(void **state)
{
    char *dir = cf_tmpdir();
    char *pending = cf_path(dir, "web.pending.pem");
    char *nokey = cf_path(dir, "absent.key");
    struct agent_issued is, back;
    struct duet_err err;

    (void)state;
    assert_int_equal(agent_pending_read(pending, nokey, &back, &err), 0);
    issued(&is, true);
    assert_int_equal(agent_pending_write(pending, &is, &err), 0);
    assert_int_equal(mode_of(pending), 0600);
    assert_int_equal(agent_pending_read(pending, nokey, &back, &err), 1);
    assert_int_equal(X509_cmp(back.leaf, leaf), 0);
    assert_int_equal(sk_X509_num(back.chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(back.chain, 0), ca), 0);
    assert_non_null(back.newkey);
    assert_int_equal(EVP_PKEY_eq(back.newkey, leaf_key), 1);
    assert_string_equal(back.serial, "12:34");
    agent_issued_clear(&back);
    agent_issued_clear(&is);
    free(pending);
    free(nokey);
    cf_tmpdir_remove(dir);
}

static void
test_pending_without_key_matches_the_key_file(void **state)
{
    char *dir = cf_tmpdir();
    char *pending = cf_path(dir, "web.pending.pem");
    char *key = cf_path(dir, "web.key");
    char *want = NULL;
    EVP_PKEY *other = cf_key_new(CF_KEY_EC_P256);
    struct agent_issued is, back;
    struct duet_err err;

    (void)state;
    issued(&is, false);
    assert_int_equal(agent_pending_write(pending, &is, &err), 0);
    cf_write_key(key, leaf_key);
    assert_int_equal(agent_pending_read(pending, key, &back, &err), 1);
    assert_null(back.newkey);
    agent_issued_clear(&back);
    /* The key file changed since: the pending certificate is not for it. */
    cf_write_key(key, other);
    assert_int_equal(agent_pending_read(pending, key, &back, &err), -1);
    assert_int_equal(asprintf(&want,
                              "%s: the certificate does not match %s; move the file away to go "
                              "on without it",
                              pending, key) > 0,
                     1);
    assert_string_equal(err.msg, want);
    assert_null(back.leaf);
    free(want);
    EVP_PKEY_free(other);
    agent_issued_clear(&is);
    free(pending);
    free(key);
    cf_tmpdir_remove(dir);
}

static void
test_install_files_and_bundle(void **state)
{
    char *dir = cf_tmpdir();
    struct agent_cert_cfg c;
    struct agent_issued is;
    struct duet_err err;
    uint8_t *text;
    size_t len;
    BIO *b;
    X509 *x;
    EVP_PKEY *k;
    char *knew;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.cert = cf_path(dir, "web.crt");
    c.key = cf_path(dir, "web.key");
    c.chain = cf_path(dir, "chain.pem");
    c.bundle = cf_path(dir, "web.pem");
    issued(&is, true);
    assert_int_equal(agent_install(&c, &is, &err), 0);
    assert_int_equal(mode_of(c.key), 0600);
    assert_int_equal(mode_of(c.cert), 0644);
    assert_int_equal(mode_of(c.chain), 0644);
    assert_int_equal(mode_of(c.bundle), 0600);
    knew = cf_path(dir, "web.key.agent-new");
    assert_int_equal(access(knew, F_OK), -1);
    text = cf_read_file(c.bundle, &len);
    assert_non_null(text);
    b = BIO_new_mem_buf(text, (int)len);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, leaf), 0);
    X509_free(x);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_int_equal(X509_cmp(x, ca), 0);
    X509_free(x);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    assert_int_equal(EVP_PKEY_eq(k, leaf_key), 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    free(text);
    /* A renewal that keeps the key: the bundle takes the key from the key file. */
    agent_issued_clear(&is);
    issued(&is, false);
    remove(c.bundle);
    assert_int_equal(agent_install(&c, &is, &err), 0);
    assert_int_equal(mode_of(c.bundle), 0600);
    agent_issued_clear(&is);
    free(knew);
    free(c.cert);
    free(c.key);
    free(c.chain);
    free(c.bundle);
    cf_tmpdir_remove(dir);
}

static void
test_install_refused_names_the_path(void **state)
{
    char *dir = cf_tmpdir();
    char *file = cf_path(dir, "certs");
    struct agent_cert_cfg c;
    struct agent_issued is;
    struct duet_err err;
    char *want = NULL;

    (void)state;
    cf_write_file(file, "x", 1);
    memset(&c, 0, sizeof(c));
    c.cert = cf_path(file, "web.crt");
    c.key = cf_path(file, "web.key");
    issued(&is, true);
    assert_int_equal(agent_install(&c, &is, &err), -1);
    assert_int_equal(
        asprintf(&want, "%s.agent-new: cannot create temporary file: Not a directory", c.key) > 0,
        1);
    assert_string_equal(err.msg, want);
    free(want);
    agent_issued_clear(&is);
    free(c.cert);
    free(c.key);
    free(file);
    cf_tmpdir_remove(dir);
}

int
main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_round_trip_with_key),
        cmocka_unit_test(test_pending_without_key_matches_the_key_file),
        cmocka_unit_test(test_install_files_and_bundle),
        cmocka_unit_test(test_install_refused_names_the_path),
    };
    return cmocka_run_group_tests_name("agent_install", tests, setup, teardown);
}
