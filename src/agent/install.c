/* SPDX-License-Identifier: Apache-2.0 */
/*
 * install.c - what the CA issued, from its answer to the host's files, with
 * nothing lost on the way.
 *
 * Once the CA has issued a certificate, the token (or the certificate that
 * renewed) is spent: the CA will not issue it again.  So before any live file
 * is touched, the leaf, its chain and the new key (when there is one) are
 * kept in the agent's state directory (STATE_DIR/NAME.pending.pem, 0600,
 * atomically).  If writing the live files then fails (a directory missing,
 * read-only, full), the next run installs from there without asking the CA
 * again; the pending file goes once everything is in place.
 *
 * Live files: a new key and its certificate are each written completely to a
 * NAME.agent-new file (fsync) and then renamed key first, certificate second,
 * so that what is on disk is the old pair or the new one except for the
 * moment between two renames (a reader of the two files should check that
 * they match and read again if not, or reload on the hook); a renewal that
 * keeps the key replaces the certificate alone.  The optional bundle holds
 * leaf, chain and key in one file written by one rename: its reader always
 * sees a matching pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/agent.h"
#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/x509util.h"

/* Free what is holds and zero it; the key is wiped by OpenSSL's free. */
void
agent_issued_clear(struct agent_issued *is)
{
    if (is == NULL)
        return;
    X509_free(is->leaf);
    OSSL_STACK_OF_X509_free(is->chain);
    EVP_PKEY_free(is->newkey);
    memset(is, 0, sizeof(*is));
}

/* The leaf then its chain as one array (borrowed pointers); NULL when out of memory. */
static X509 **
certs_of(const struct agent_issued *is, size_t *n)
{
    X509 **v;

    *n = 1 + (size_t)sk_X509_num(is->chain);
    if ((v = calloc(*n, sizeof(*v))) == NULL)
        return NULL;
    v[0] = is->leaf;
    for (size_t i = 1; i < *n; i++)
        v[i] = sk_X509_value(is->chain, (int)i - 1);
    return v;
}

/* Keep the issuance in the state directory; see agent.h. */
int
agent_pending_write(const char *pending, const struct agent_issued *is, struct duet_err *err)
{
    size_t n = 0;
    X509 **v = certs_of(is, &n);
    int rc;

    if (v == NULL)
        return err_nomem(err);
    /* 0600 when it holds the key, in the agent's own 0700 directory. */
    rc = pemout_certs(pending, v, n, is->newkey, err);
    free(v);
    return rc;
}

/* Read a pending issuance; see agent.h. */
int
agent_pending_read(const char *pending, const char *key_path, struct agent_issued *is,
                   struct duet_err *err)
{
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    char *serial = NULL;
    BIO *b = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = -1;

    memset(is, 0, sizeof(*is));
    if (access(pending, F_OK) != 0 && errno == ENOENT)
        return 0;
    if (fileio_read(pending, &data, &len, err) != 0 ||
        load_certs_mem(pending, data, len, NULL, &certs, err) != 0)
        goto out;
    if ((b = BIO_new_mem_buf(data, (int)len)) == NULL) {
        err_nomem(err);
        goto out;
    }
    /* The key block follows the certificates; PEM_read_bio_PrivateKey skips to it. */
    is->newkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    ERR_clear_error();
    is->leaf = sk_X509_shift(certs);
    is->chain = certs;
    certs = NULL;
    if (is->newkey == NULL && load_key_file(key_path, NULL, &key, err) != 0) {
        struct duet_err e = *err;
        err_set(err, e.kind, "%s; %s holds a certificate for that key", e.msg, pending);
        goto out;
    }
    if (X509_check_private_key(is->leaf, is->newkey != NULL ? is->newkey : key) != 1) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INVALID,
                "%s: the certificate does not match %s; move the file away to go on without it",
                pending, is->newkey != NULL ? "the key kept with it" : key_path);
        goto out;
    }
    if ((serial = x509u_serial(X509_get0_serialNumber(is->leaf))) == NULL) {
        err_nomem(err);
        goto out;
    }
    snprintf(is->serial, sizeof(is->serial), "%s", serial);
    rc = 1;
out:
    if (rc != 1)
        agent_issued_clear(is);
    free(serial);
    BIO_free(b);
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    free(data);
    EVP_PKEY_free(key);
    OSSL_STACK_OF_X509_free(certs);
    return rc;
}

/* fsync the directory of path, so that renames in it are durable. */
static void
sync_dir(const char *path)
{
    char *d = strdup(path);
    char *slash = d != NULL ? strrchr(d, '/') : NULL;
    int fd;

    if (d == NULL)
        return;
    if (slash == d)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    fd = open(slash != NULL ? d : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

/* Install into the live files; see agent.h and the top of the file. */
int
agent_install(const struct agent_cert_cfg *c, const struct agent_issued *is, struct duet_err *err)
{
    size_t n = 0;
    X509 **v = certs_of(is, &n);
    EVP_PKEY *cur = NULL;
    char *knew = NULL, *cnew = NULL;
    int rc = -1;

    if (v == NULL)
        return err_nomem(err);
    if (is->newkey != NULL) {
        if (asprintf(&knew, "%s.agent-new", c->key) < 0 ||
            asprintf(&cnew, "%s.agent-new", c->cert) < 0) {
            knew = cnew = NULL;
            err_nomem(err);
            goto out;
        }
        if (pemout_key(knew, is->newkey, NULL, err) != 0 ||
            pemout_certs(cnew, v, n, NULL, err) != 0)
            goto out;
        /* Key first, certificate right after: both complete and synced already. */
        if (rename(knew, c->key) != 0) {
            err_set(err, DUET_ERR_INPUT, "%s: cannot rename the new key into place: %s", c->key,
                    strerror(errno));
            goto out;
        }
        if (rename(cnew, c->cert) != 0) {
            err_set(err, DUET_ERR_INPUT, "%s: cannot rename the new certificate into place: %s",
                    c->cert, strerror(errno));
            goto out;
        }
        sync_dir(c->key);
        sync_dir(c->cert);
    } else if (pemout_certs(c->cert, v, n, NULL, err) != 0) {
        goto out;
    }
    if (c->chain != NULL && n > 1 && pemout_certs(c->chain, v + 1, n - 1, NULL, err) != 0)
        goto out;
    if (c->bundle != NULL) {
        if (is->newkey == NULL && load_key_file(c->key, NULL, &cur, err) != 0)
            goto out;
        if (pemout_certs(c->bundle, v, n, is->newkey != NULL ? is->newkey : cur, err) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0 && knew != NULL) {
        (void)unlink(knew);
        (void)unlink(cnew);
    }
    EVP_PKEY_free(cur);
    free(knew);
    free(cnew);
    free(v);
    return rc;
}
