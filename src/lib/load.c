/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load.c - certificates, keys, CRLs and CSRs from PEM, DER and PKCS#12.
 *
 * The format is decided by content, not by file name: text with a
 * "-----BEGIN " line is PEM (RFC 7468) and every block in it is read; anything
 * else must be exactly one DER object (trailing bytes are refused), tried as a
 * certificate, a PKCS#12 store (RFC 7292), a CRL, a CSR and a private key.
 * PKCS#12 files made with legacy algorithms (RC2, 3DES) load OpenSSL's legacy
 * provider on first need.
 */
#include "lib/load.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include "lib/fileio.h"

const char *
load_format_name(enum load_format f)
{
    switch (f) {
    case LOAD_PEM:
        return "PEM";
    case LOAD_DER:
        return "DER";
    case LOAD_PKCS12:
        return "PKCS#12";
    }
    return "unknown";
}

/* Release a bundle; see load.h. */
void
load_bundle_clear(struct load_bundle *b)
{
    if (b == NULL)
        return;
    OSSL_STACK_OF_X509_free(b->certs);
    sk_X509_CRL_pop_free(b->crls, X509_CRL_free);
    sk_X509_REQ_pop_free(b->csrs, X509_REQ_free);
    EVP_PKEY_free(b->key);
    memset(b, 0, sizeof(*b));
}

/* Passphrase callback state: records whether OpenSSL asked for one. */
struct pass_cb {
    const char *pass;
    bool asked;
};

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
    struct pass_cb *pc = u;
    size_t n;

    (void)rwflag;
    pc->asked = true;
    if (pc->pass == NULL)
        return -1;
    n = strlen(pc->pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pc->pass, n);
    return (int)n;
}

static CRYPTO_ONCE legacy_once = CRYPTO_ONCE_STATIC_INIT;
/* Kept for the life of the process; released by OpenSSL's cleanup (see below). */
static OSSL_PROVIDER *legacy_provider;
static OSSL_PROVIDER *default_provider;

/*
 * Drop the references load_legacy_provider() took.  Runs as an OPENSSL_atexit
 * handler, at the start of OPENSSL_cleanup(): OpenSSL 3.0 does not release a
 * provider loaded with OSSL_PROVIDER_load() by itself.
 */
static void
unload_legacy_provider(void)
{
    if (default_provider != NULL)
        OSSL_PROVIDER_unload(default_provider);
    if (legacy_provider != NULL)
        OSSL_PROVIDER_unload(legacy_provider);
    default_provider = legacy_provider = NULL;
}

/* Make the legacy algorithms of old PKCS#12 files available, keeping the default ones. */
static void
load_legacy_provider(void)
{
    legacy_provider = OSSL_PROVIDER_load(NULL, "legacy");
    default_provider = OSSL_PROVIDER_load(NULL, "default");
    (void)OPENSSL_atexit(unload_legacy_provider);
}

static int
bundle_add_cert(struct load_bundle *b, X509 *x, struct duet_err *err)
{
    if (b->certs == NULL && (b->certs = sk_X509_new_null()) == NULL)
        return err_nomem(err);
    if (!sk_X509_push(b->certs, x))
        return err_nomem(err);
    return 0;
}

static int
bundle_add_crl(struct load_bundle *b, X509_CRL *c, struct duet_err *err)
{
    if (b->crls == NULL && (b->crls = sk_X509_CRL_new_null()) == NULL)
        return err_nomem(err);
    if (!sk_X509_CRL_push(b->crls, c))
        return err_nomem(err);
    return 0;
}

static int
bundle_add_csr(struct load_bundle *b, X509_REQ *r, struct duet_err *err)
{
    if (b->csrs == NULL && (b->csrs = sk_X509_REQ_new_null()) == NULL)
        return err_nomem(err);
    if (!sk_X509_REQ_push(b->csrs, r))
        return err_nomem(err);
    return 0;
}

static void
bundle_add_key(struct load_bundle *b, EVP_PKEY *k, bool encrypted)
{
    b->nkeys++;
    if (b->key == NULL) {
        b->key = k;
        b->key_encrypted = encrypted;
    } else {
        EVP_PKEY_free(k);
    }
}

/* Whether every byte of der was consumed by a d2i call that advanced p. */
static bool
consumed_all(const uint8_t *p, const uint8_t *der, size_t len)
{
    return (size_t)(p - der) == len;
}

/*
 * Decode a private key from a single PEM block (rewritten into a BIO so that
 * OpenSSL handles PKCS#8, encrypted PKCS#8 and the traditional formats with
 * their Proc-Type encryption alike).
 */
static int
pem_key_block(const char *label, int idx, const char *name, const char *header,
              const uint8_t *data, long len, const char *password, struct load_bundle *b,
              struct duet_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    EVP_PKEY *k = NULL;
    struct pass_cb pc = {password, false};
    bool encrypted = strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 ||
                     (header != NULL && strstr(header, "ENCRYPTED") != NULL);

    if (bio == NULL)
        return err_nomem(err);
    if (PEM_write_bio(bio, name, header, data, len) <= 0) {
        BIO_free(bio);
        return err_nomem(err);
    }
    k = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &pc);
    BIO_free(bio);
    if (k == NULL) {
        if (encrypted) {
            ERR_clear_error();
            if (password == NULL)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: PEM block %d (%s) is encrypted; a passphrase is needed", label,
                               idx, name);
            return err_set(err, DUET_ERR_INPUT,
                           "%s: PEM block %d (%s): wrong passphrase or corrupt key", label, idx,
                           name);
        }
        return err_set_ssl(err, DUET_ERR_INPUT, "%s: PEM block %d (%s) is not a valid private key",
                           label, idx, name);
    }
    bundle_add_key(b, k, encrypted);
    return 0;
}

/* Does a "-----END " line follow offset off in the text? */
static bool
has_end_after(const uint8_t *data, size_t len, size_t off)
{
    static const char end[] = "-----END ";
    size_t n = sizeof(end) - 1;

    for (size_t i = off; i + n <= len; i++) {
        if (memcmp(data + i, end, n) == 0)
            return true;
    }
    return false;
}

/* Offset of the k-th (1-based) "-----BEGIN " in data, or len. */
static size_t
nth_begin(const uint8_t *data, size_t len, int k)
{
    static const char begin[] = "-----BEGIN ";
    size_t n = sizeof(begin) - 1;
    int seen = 0;

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, begin, n) == 0 && ++seen == k)
            return i;
    }
    return len;
}

/* The type named on the BEGIN line at off ("CERTIFICATE"), printable ASCII only. */
static void
begin_type(const uint8_t *data, size_t len, size_t off, char *buf, size_t blen)
{
    size_t i = off + sizeof("-----BEGIN ") - 1;
    size_t n = 0;

    while (i < len && n + 1 < blen && data[i] != '-' && data[i] >= 0x20 && data[i] < 0x7f)
        buf[n++] = (char)data[i++];
    buf[n] = '\0';
}

/* Read every PEM block; see the file comment for what is recognised. */
static int
load_pem(const char *label, const uint8_t *data, size_t len, const char *password,
         struct load_bundle *b, struct duet_err *err)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    char *name = NULL;
    char *header = NULL;
    unsigned char *der = NULL;
    long dlen = 0;
    int idx = 0;
    int rc = -1;

    if (bio == NULL)
        return err_nomem(err);
    b->format = LOAD_PEM;
    for (;;) {
        const unsigned char *p;

        ERR_clear_error();
        if (!PEM_read_bio(bio, &name, &header, &der, &dlen)) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break; /* no further block */
            }
            idx++;
            size_t at = nth_begin(data, len, idx);
            if (at < len && !has_end_after(data, len, at)) {
                char type[64];
                begin_type(data, len, at, type, sizeof(type));
                ERR_clear_error();
                err_set(err, DUET_ERR_INPUT, "%s: PEM block %d (%s) is truncated: no END line",
                        label, idx, type);
            } else {
                err_set_ssl(err, DUET_ERR_INPUT, "%s: PEM block %d is corrupt", label, idx);
            }
            goto out;
        }
        idx++;
        p = der;
        if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0 ||
            strcmp(name, "TRUSTED CERTIFICATE") == 0) {
            X509 *x = strcmp(name, "TRUSTED CERTIFICATE") == 0 ? d2i_X509_AUX(NULL, &p, dlen)
                                                                : d2i_X509(NULL, &p, dlen);
            if (x == NULL || !consumed_all(p, der, (size_t)dlen)) {
                X509_free(x);
                err_set_ssl(err, DUET_ERR_INPUT,
                            "%s: PEM block %d (%s) is not a valid X.509 certificate", label, idx,
                            name);
                goto out;
            }
            if (bundle_add_cert(b, x, err) != 0) {
                X509_free(x);
                goto out;
            }
        } else if (strcmp(name, "X509 CRL") == 0) {
            X509_CRL *c = d2i_X509_CRL(NULL, &p, dlen);
            if (c == NULL || !consumed_all(p, der, (size_t)dlen)) {
                X509_CRL_free(c);
                err_set_ssl(err, DUET_ERR_INPUT, "%s: PEM block %d (%s) is not a valid CRL",
                            label, idx, name);
                goto out;
            }
            if (bundle_add_crl(b, c, err) != 0) {
                X509_CRL_free(c);
                goto out;
            }
        } else if (strcmp(name, "CERTIFICATE REQUEST") == 0 ||
                   strcmp(name, "NEW CERTIFICATE REQUEST") == 0) {
            X509_REQ *r = d2i_X509_REQ(NULL, &p, dlen);
            if (r == NULL || !consumed_all(p, der, (size_t)dlen)) {
                X509_REQ_free(r);
                err_set_ssl(err, DUET_ERR_INPUT,
                            "%s: PEM block %d (%s) is not a valid certificate request", label,
                            idx, name);
                goto out;
            }
            if (bundle_add_csr(b, r, err) != 0) {
                X509_REQ_free(r);
                goto out;
            }
        } else if (strstr(name, "PRIVATE KEY") != NULL) {
            if (pem_key_block(label, idx, name, header, der, dlen, password, b, err) != 0)
                goto out;
        } else {
            b->nother++;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(der, (size_t)dlen);
        name = header = NULL;
        der = NULL;
    }
    if (idx == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no PEM block found", label);
        goto out;
    }
    if (idx == b->nother) {
        err_set(err, DUET_ERR_INPUT,
                "%s: no certificate, CRL, CSR or private key among its %d PEM block%s", label,
                idx, idx == 1 ? "" : "s");
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(der, (size_t)dlen);
    BIO_free(bio);
    return rc;
}

/*
 * Unpack a PKCS#12 store.  The MAC is checked first so that a wrong password
 * is reported as such; legacy algorithms are enabled when the default ones
 * cannot decrypt.
 */
static int
load_p12(const char *label, PKCS12 *p12, const char *password, struct load_bundle *b,
         struct duet_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    const char *pass = password;

    b->format = LOAD_PKCS12;
    if (PKCS12_mac_present(p12)) {
        if (pass == NULL) {
            /* A store without a password uses an empty or absent one. */
            if (PKCS12_verify_mac(p12, "", 0))
                pass = "";
            else if (PKCS12_verify_mac(p12, NULL, 0))
                pass = NULL;
            else {
                ERR_clear_error();
                return err_set(err, DUET_ERR_INPUT,
                               "%s: PKCS#12 file is protected by a password; give it with "
                               "--password-file",
                               label);
            }
        } else if (!PKCS12_verify_mac(p12, pass, -1)) {
            ERR_clear_error();
            return err_set(err, DUET_ERR_INPUT,
                           "%s: wrong password for PKCS#12 file (MAC check failed)", label);
        }
    }
    ERR_clear_error();
    if (!PKCS12_parse(p12, pass, &key, &cert, &ca)) {
        CRYPTO_ONCE *once = &legacy_once;
        ERR_clear_error();
        CRYPTO_THREAD_run_once(once, load_legacy_provider);
        if (!PKCS12_parse(p12, pass, &key, &cert, &ca))
            return err_set_ssl(err, DUET_ERR_INPUT, "%s: cannot decrypt PKCS#12 contents", label);
    }
    if (key != NULL)
        bundle_add_key(b, key, true);
    if (cert != NULL && bundle_add_cert(b, cert, err) != 0) {
        X509_free(cert);
        OSSL_STACK_OF_X509_free(ca);
        return -1;
    }
    while (ca != NULL && sk_X509_num(ca) > 0) {
        X509 *x = sk_X509_shift(ca);
        if (bundle_add_cert(b, x, err) != 0) {
            X509_free(x);
            OSSL_STACK_OF_X509_free(ca);
            return -1;
        }
    }
    sk_X509_free(ca);
    return 0;
}

/* One DER object: certificate, PKCS#12, CRL, CSR or private key. */
static int
load_der(const char *label, const uint8_t *data, size_t len, const char *password,
         struct load_bundle *b, struct duet_err *err)
{
    const unsigned char *p;
    X509 *x;
    PKCS12 *p12;
    X509_CRL *crl;
    X509_REQ *req;
    EVP_PKEY *k;

    b->format = LOAD_DER;
    if (len < 2 || data[0] != 0x30)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: neither PEM nor DER (expected a certificate, CRL, CSR, key or PKCS#12)",
                       label);
    p = data;
    if ((x = d2i_X509(NULL, &p, (long)len)) != NULL) {
        if (consumed_all(p, data, len)) {
            if (bundle_add_cert(b, x, err) != 0) {
                X509_free(x);
                return -1;
            }
            return 0;
        }
        X509_free(x);
        ERR_clear_error();
        return err_set(err, DUET_ERR_INPUT,
                       "%s: DER certificate is followed by %zu unexpected bytes", label,
                       len - (size_t)(p - data));
    }
    p = data;
    if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) != NULL && consumed_all(p, data, len)) {
        int rc = load_p12(label, p12, password, b, err);
        PKCS12_free(p12);
        return rc;
    }
    PKCS12_free(p12);
    p = data;
    if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) != NULL && consumed_all(p, data, len)) {
        ERR_clear_error();
        if (bundle_add_crl(b, crl, err) != 0) {
            X509_CRL_free(crl);
            return -1;
        }
        return 0;
    }
    X509_CRL_free(crl);
    p = data;
    if ((req = d2i_X509_REQ(NULL, &p, (long)len)) != NULL && consumed_all(p, data, len)) {
        ERR_clear_error();
        if (bundle_add_csr(b, req, err) != 0) {
            X509_REQ_free(req);
            return -1;
        }
        return 0;
    }
    X509_REQ_free(req);
    p = data;
    if ((k = d2i_AutoPrivateKey(NULL, &p, (long)len)) != NULL && consumed_all(p, data, len)) {
        ERR_clear_error();
        bundle_add_key(b, k, false);
        return 0;
    }
    EVP_PKEY_free(k);
    {
        /* Encrypted PKCS#8 (EncryptedPrivateKeyInfo). */
        struct pass_cb pc = {password, false};
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL)
            return err_nomem(err);
        k = d2i_PKCS8PrivateKey_bio(bio, NULL, pass_cb, &pc);
        BIO_free(bio);
        if (k != NULL) {
            ERR_clear_error();
            bundle_add_key(b, k, true);
            return 0;
        }
        if (pc.asked) {
            ERR_clear_error();
            if (password == NULL)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: DER private key is encrypted; a passphrase is needed", label);
            return err_set(err, DUET_ERR_INPUT,
                           "%s: DER private key: wrong passphrase or corrupt key", label);
        }
    }
    ERR_clear_error();
    return err_set(err, DUET_ERR_INPUT,
                   "%s: DER data is not a certificate, CRL, CSR, private key or PKCS#12 store",
                   label);
}

/* Whether the text holds a PEM begin line. */
static bool
looks_pem(const uint8_t *data, size_t len)
{
    return nth_begin(data, len, 1) < len;
}

/* Parse a bundle from memory; see load.h. */
int
load_bundle_mem(const char *label, const uint8_t *data, size_t len, const char *password,
                struct load_bundle *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return err_set(err, DUET_ERR_INPUT, "%s: input is empty", label);
    if (len > (size_t)0x7fffffff)
        return err_set(err, DUET_ERR_INPUT, "%s: input is too large", label);
    ERR_clear_error();
    if (looks_pem(data, len))
        return load_pem(label, data, len, password, out, err);
    return load_der(label, data, len, password, out, err);
}

/* Parse a bundle from a file; see load.h. */
int
load_bundle_file(const char *path, const char *password, struct load_bundle *out,
                 struct duet_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (fileio_read(path, &data, &len, err) != 0)
        return -1;
    rc = load_bundle_mem(path, data, len, password, out, err);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* What a bundle held, for "expected X, found Y" messages. */
static void
describe_contents(const struct load_bundle *b, char *buf, size_t len)
{
    int ncrl = b->crls ? sk_X509_CRL_num(b->crls) : 0;
    int ncsr = b->csrs ? sk_X509_REQ_num(b->csrs) : 0;

    if (ncrl > 0)
        snprintf(buf, len, "a CRL");
    else if (ncsr > 0)
        snprintf(buf, len, "a certificate request");
    else if (b->nkeys > 0)
        snprintf(buf, len, "a private key");
    else
        snprintf(buf, len, "nothing recognisable");
}

static int
certs_from_bundle(const char *label, struct load_bundle *b, STACK_OF(X509) **certs,
                  struct duet_err *err)
{
    char what[64];

    if (b->certs == NULL || sk_X509_num(b->certs) == 0) {
        describe_contents(b, what, sizeof(what));
        return err_set(err, DUET_ERR_INPUT, "%s: no certificate found (%s holds %s)", label,
                       load_format_name(b->format), what);
    }
    *certs = b->certs;
    b->certs = NULL;
    return 0;
}

/* Certificates of a file; see load.h. */
int
load_certs_file(const char *path, const char *password, STACK_OF(X509) **certs,
                struct duet_err *err)
{
    struct load_bundle b;
    int rc = -1;

    *certs = NULL;
    if (load_bundle_file(path, password, &b, err) == 0)
        rc = certs_from_bundle(path, &b, certs, err);
    load_bundle_clear(&b);
    return rc;
}

/* Certificates from memory; see load.h. */
int
load_certs_mem(const char *label, const uint8_t *data, size_t len, const char *password,
               STACK_OF(X509) **certs, struct duet_err *err)
{
    struct load_bundle b;
    int rc = -1;

    *certs = NULL;
    if (load_bundle_mem(label, data, len, password, &b, err) == 0)
        rc = certs_from_bundle(label, &b, certs, err);
    load_bundle_clear(&b);
    return rc;
}

/* CRLs of a file; see load.h. */
int
load_crls_file(const char *path, STACK_OF(X509_CRL) **crls, struct duet_err *err)
{
    struct load_bundle b;
    char what[64];
    int rc = -1;

    *crls = NULL;
    if (load_bundle_file(path, NULL, &b, err) != 0)
        goto out;
    if (b.crls == NULL || sk_X509_CRL_num(b.crls) == 0) {
        if (b.certs != NULL && sk_X509_num(b.certs) > 0)
            snprintf(what, sizeof(what), "a certificate");
        else
            describe_contents(&b, what, sizeof(what));
        err_set(err, DUET_ERR_INPUT, "%s: no CRL found (%s holds %s)", path,
                load_format_name(b.format), what);
        goto out;
    }
    *crls = b.crls;
    b.crls = NULL;
    rc = 0;
out:
    load_bundle_clear(&b);
    return rc;
}

/* The private key of a file; see load.h. */
int
load_key_file(const char *path, const char *passphrase, EVP_PKEY **key, struct duet_err *err)
{
    struct load_bundle b;
    int rc = -1;

    *key = NULL;
    if (load_bundle_file(path, passphrase, &b, err) != 0)
        goto out;
    if (b.nkeys == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no private key found", path);
        goto out;
    }
    if (b.nkeys > 1) {
        err_set(err, DUET_ERR_INPUT, "%s: holds %d private keys; expected exactly one", path,
                b.nkeys);
        goto out;
    }
    *key = b.key;
    b.key = NULL;
    rc = 0;
out:
    load_bundle_clear(&b);
    return rc;
}
