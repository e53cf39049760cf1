/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pemout.c - writers of certificates, keys, CRLs and PKCS#12 files: each
 * encodes into a memory BIO and hands the bytes to fileio_write_atomic() with
 * the mode its content calls for.
 */
#include "lib/pemout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include "lib/fileio.h"
#include "lib/x509util.h"

/* A memory BIO; in the secure heap when asked and OpenSSL has one. */
static BIO *
mem_bio(bool secret)
{
    BIO *bio = secret ? BIO_new(BIO_s_secmem()) : NULL;

    return bio != NULL ? bio : BIO_new(BIO_s_mem());
}

/* Write what a memory BIO holds to path, atomically, with mode. */
static int
write_bio(BIO *bio, const char *path, mode_t mode, struct duet_err *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n <= 0)
        return err_set(err, DUET_ERR_INTERNAL, "%s: nothing to write", path);
    return fileio_write_atomic(path, (const uint8_t *)data, (size_t)n, mode, err);
}

/* Certificates, then an optional key, as PEM; see pemout.h. */
int
pemout_certs(const char *path, X509 *const *certs, size_t n, EVP_PKEY *key, struct duet_err *err)
{
    BIO *bio = mem_bio(key != NULL);
    int rc = -1;

    if (bio == NULL)
        return err_nomem(err);
    for (size_t i = 0; i < n; i++) {
        if (!PEM_write_bio_X509(bio, certs[i])) {
            err_nomem(err);
            goto out;
        }
    }
    if (key != NULL && !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot encode the key", path);
        goto out;
    }
    rc = write_bio(bio, path, key != NULL ? 0600 : 0644, err);
out:
    BIO_free(bio);
    return rc;
}

/* One certificate as DER; see pemout.h. */
int
pemout_cert_der(const char *path, X509 *cert, struct duet_err *err)
{
    BIO *bio = mem_bio(false);
    int rc = -1;

    if (bio == NULL)
        return err_nomem(err);
    if (i2d_X509_bio(bio, cert))
        rc = write_bio(bio, path, 0644, err);
    else
        err_nomem(err);
    BIO_free(bio);
    return rc;
}

/* The PBKDF2 iterations of keys written now: the default or DUET_CA_KDF_ITERATIONS. */
static int
kdf_iterations(int *iter, struct duet_err *err)
{
    const char *e = getenv("DUET_CA_KDF_ITERATIONS");
    char *end = NULL;
    long n;

    *iter = PEMOUT_KDF_ITERATIONS;
    if (e == NULL || e[0] == '\0')
        return 0;
    n = strtol(e, &end, 10);
    if (end == e || *end != '\0' || n < PEMOUT_KDF_MIN_ITERATIONS || n > 100000000)
        return err_set(err, DUET_ERR_INPUT,
                       "DUET_CA_KDF_ITERATIONS \"%s\": expected a number of PBKDF2 iterations "
                       "from %d up (default %d)",
                       e, PEMOUT_KDF_MIN_ITERATIONS, PEMOUT_KDF_ITERATIONS);
    *iter = (int)n;
    return 0;
}

/* A private key as PKCS#8 PEM, encrypted or not; see pemout.h. */
int
pemout_key(const char *path, EVP_PKEY *key, const char *passphrase, struct duet_err *err)
{
    BIO *bio = mem_bio(passphrase == NULL);
    int rc = -1;

    if (bio == NULL)
        return err_nomem(err);
    if (passphrase != NULL) {
        unsigned char salt[PEMOUT_KDF_SALT_BYTES];
        PKCS8_PRIV_KEY_INFO *p8 = NULL;
        X509_SIG *sig = NULL;
        int iter = 0;
        bool ok;
        if (kdf_iterations(&iter, err) != 0)
            goto out;
        p8 = EVP_PKEY2PKCS8(key);
        ok = p8 != NULL && RAND_bytes(salt, sizeof(salt)) == 1 &&
             (sig = PKCS8_encrypt_ex(-1, EVP_aes_256_cbc(), passphrase, (int)strlen(passphrase),
                                     salt, (int)sizeof(salt), iter, p8, NULL, NULL)) != NULL &&
             PEM_write_bio_PKCS8(bio, sig);
        PKCS8_PRIV_KEY_INFO_free(p8);
        X509_SIG_free(sig);
        if (!ok) {
            err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot encrypt the key", path);
            goto out;
        }
    } else if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "%s: cannot encode the key", path);
        goto out;
    }
    rc = write_bio(bio, path, 0600, err);
out:
    BIO_free(bio);
    return rc;
}

/* How an encrypted key file is protected; see pemout.h. */
int
pemout_key_kdf(const char *path, long *iterations, char *desc, size_t len,
               struct duet_err *err)
{
    BIO *in = BIO_new_file(path, "r");
    X509_SIG *sig = NULL;
    const X509_ALGOR *alg = NULL;
    PBE2PARAM *pbe2 = NULL;
    PBKDF2PARAM *kdf = NULL;
    char cipher[64] = "?", prf[64] = "hmacWithSHA1";
    int rc = -1;

    *iterations = 0;
    snprintf(desc, len, "not an encrypted PKCS#8 key");
    if (in == NULL)
        return err_set_ssl(err, DUET_ERR_INPUT, "%s: cannot read the key file", path);
    if ((sig = PEM_read_bio_PKCS8(in, NULL, NULL, NULL)) == NULL) {
        ERR_clear_error();
        rc = 0; /* unencrypted, or not PKCS#8: nothing to describe */
        goto out;
    }
    X509_SIG_get0(sig, &alg, NULL);
    if (OBJ_obj2nid(alg->algorithm) != NID_pbes2 ||
        (pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter)) == NULL) {
        snprintf(desc, len, "encrypted with %s", OBJ_nid2ln(OBJ_obj2nid(alg->algorithm)));
        rc = 0;
        goto out;
    }
    OBJ_obj2txt(cipher, sizeof(cipher), pbe2->encryption->algorithm, 0);
    if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2 ||
        (kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                         pbe2->keyfunc->parameter)) == NULL) {
        snprintf(desc, len, "PBES2 %s, key derivation %s", cipher,
                 OBJ_nid2ln(OBJ_obj2nid(pbe2->keyfunc->algorithm)));
        rc = 0;
        goto out;
    }
    if (kdf->prf != NULL)
        OBJ_obj2txt(prf, sizeof(prf), kdf->prf->algorithm, 0);
    *iterations = ASN1_INTEGER_get(kdf->iter);
    snprintf(desc, len, "PBES2 %s, PBKDF2-%s, %ld iterations", cipher, prf, *iterations);
    rc = 0;
out:
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);
    BIO_free(in);
    return rc;
}

/* CRLs as PEM, or the first as DER; see pemout.h. */
int
pemout_crls(const char *path, X509_CRL *const *crls, size_t n, bool der, struct duet_err *err)
{
    BIO *bio = mem_bio(false);
    bool ok = n > 0;
    int rc = -1;

    if (bio == NULL)
        return err_nomem(err);
    if (der)
        ok = ok && i2d_X509_CRL_bio(bio, crls[0]);
    for (size_t i = 0; !der && ok && i < n; i++)
        ok = PEM_write_bio_X509_CRL(bio, crls[i]);
    if (ok)
        rc = write_bio(bio, path, 0644, err);
    else
        err_nomem(err);
    BIO_free(bio);
    return rc;
}

/* PKCS#12; see pemout.h. */
int
pemout_p12(const char *path, EVP_PKEY *key, X509 *leaf, STACK_OF(X509) * chain,
           const char *password, bool legacy, struct duet_err *err)
{
    char *fname = x509u_name_cn(X509_get_subject_name(leaf));
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
    int iter = legacy ? 2048 : 100000;
    PKCS12 *p12 = PKCS12_create_ex(password, fname != NULL ? fname : "duet", key, leaf, chain, nid,
                                   nid, iter, -1, 0, NULL, NULL);
    BIO *bio = NULL;
    int rc = -1;

    free(fname);
    if (p12 == NULL)
        return err_set_ssl(err, DUET_ERR_INTERNAL, "cannot build the PKCS#12 file");
    if (!PKCS12_set_mac(p12, password, -1, NULL, 0, iter, legacy ? EVP_sha1() : EVP_sha256())) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot add the PKCS#12 MAC");
        goto out;
    }
    if ((bio = mem_bio(false)) == NULL || !i2d_PKCS12_bio(bio, p12)) {
        err_nomem(err);
        goto out;
    }
    rc = write_bio(bio, path, 0600, err);
out:
    BIO_free(bio);
    PKCS12_free(p12);
    return rc;
}
