/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_fixture.c - the CA shared by the unit tests of src/ca (see ca_fixture.h).
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

#include "ca_fixture.h"
#include "lib/err.h"
#include "store/store.h"
#include "testlib/certfactory.h"

/* Append text to the file at path; 0 or -1. */
static int
append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");

    if (f == NULL)
        return -1;
    if (fputs(text, f) < 0) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Make and open the group's CA; see ca_fixture.h. */
int
cafx_setup(struct cafx *fx, struct ca_init_opts opts, const char *profiles_yaml)
{
    struct duet_err err = {0};
    char *yaml = NULL;

    memset(fx, 0, sizeof(*fx));
    fx->tmp = cf_tmpdir();
    fx->dir = cf_path(fx->tmp, "ca");
    opts.dir = fx->dir;
    if (opts.passphrase == NULL)
        opts.passphrase = CAFX_PASS;
    if (ca_init(&opts, &err) != 0) {
        fprintf(stderr, "ca_init %s: %s\n", fx->dir, err.msg);
        return -1;
    }
    if (profiles_yaml != NULL) {
        yaml = cf_path(fx->dir, "ca.yaml");
        if (append(yaml, profiles_yaml) != 0) {
            fprintf(stderr, "%s: cannot append the group's profiles\n", yaml);
            free(yaml);
            return -1;
        }
        free(yaml);
    }
    if (ca_open(fx->dir, opts.passphrase, &fx->ca, &err) != 0) {
        fprintf(stderr, "ca_open %s: %s\n", fx->dir, err.msg);
        return -1;
    }
    fx->key = cf_key_new(CF_KEY_EC_P256);
    return 0;
}

/* Undo cafx_setup; see ca_fixture.h. */
void
cafx_teardown(struct cafx *fx)
{
    ca_close(fx->ca);
    EVP_PKEY_free(fx->key);
    free(fx->dir);
    cf_tmpdir_remove(fx->tmp);
    memset(fx, 0, sizeof(*fx));
}

/* The inventory's size, read through the store; see ca_fixture.h. */
size_t
cafx_inventory_count(struct ca *ca)
{
    struct store_filter f = {.now = (int64_t)time(NULL)};
    struct store_cert **v = NULL;
    size_t n = 0;
    struct duet_err err = {0};

    if (store_list(ca_store(ca), &f, &v, &n, &err) != 0)
        fail_msg("store_list: %s", err.msg);
    store_certs_free(v, n);
    return n;
}

/* The SANs as OpenSSL prints them; see ca_fixture.h. */
char *
cafx_sans_text(X509 *cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    long n;

    assert_non_null(bio);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        if (i > 0)
            BIO_puts(bio, ", ");
        GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(gens, i));
    }
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data != NULL ? data : "", (size_t)n);
    assert_non_null(out);
    BIO_free(bio);
    GENERAL_NAMES_free(gens);
    return out;
}

/* A CRL's number, read with OpenSSL; see ca_fixture.h. */
uint64_t
cafx_crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t v = 0;

    assert_non_null(n);
    assert_true(ASN1_INTEGER_get_uint64(&v, n));
    ASN1_INTEGER_free(n);
    return v;
}
