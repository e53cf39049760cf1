/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.c - the CA's encrypted keys re-encrypted with today's key
 * derivation; see storage.h.
 */
#include "ca/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ca/ca.h"
#include "lib/fileio.h"
#include "lib/pemout.h"

#define MAX_KEYS 32

/* Whether a file starts as an encrypted PKCS#8 PEM key. */
static bool
is_encrypted_key(const char *path)
{
    static const char tag[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    char head[sizeof(tag)] = {0};
    FILE *f = fopen(path, "r");
    bool yes;

    if (f == NULL)
        return false;
    yes = fread(head, 1, sizeof(tag) - 1, f) == sizeof(tag) - 1 &&
          memcmp(head, tag, sizeof(tag) - 1) == 0;
    fclose(f);
    return yes;
}

/* The encrypted *.key files of dir, sorted, into out[] (paths the caller frees). */
static int
list_keys(const char *dir, char **out, size_t *n, struct duet_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    *n = 0;
    if (d == NULL)
        return err_set(err, DUET_ERR_INPUT, "%s: cannot read the CA directory: %s", dir,
                       strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char *path;
        struct stat st;
        if (len < 5 || strcmp(e->d_name + len - 4, ".key") != 0)
            continue;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
            closedir(d);
            return err_nomem(err);
        }
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || !is_encrypted_key(path)) {
            free(path);
            continue;
        }
        if (*n == MAX_KEYS) {
            free(path);
            closedir(d);
            return err_set(err, DUET_ERR_INPUT, "%s: more than %d encrypted keys", dir,
                           MAX_KEYS);
        }
        out[(*n)++] = path;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) { /* a stable order for the report */
        for (size_t j = i; j > 0 && strcmp(out[j - 1], out[j]) > 0; j--) {
            char *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return 0;
}

/* Re-encrypt the CA's keys; see storage.h. */
int
ca_rekey_storage(const char *dir, const char *passphrase, const char *new_passphrase,
                 struct ca_rekeyed **out, size_t *n, struct duet_err *err)
{
    char *paths[MAX_KEYS] = {NULL};
    EVP_PKEY *keys[MAX_KEYS] = {NULL};
    char *tmp[MAX_KEYS] = {NULL};
    struct ca_rekeyed *done = NULL;
    const char *pass = new_passphrase != NULL ? new_passphrase : passphrase;
    size_t nk = 0, renamed = 0;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (new_passphrase != NULL && strlen(new_passphrase) < CA_MIN_PASSPHRASE)
        return err_set(err, DUET_ERR_INPUT,
                       "the new CA passphrase must have at least %d characters",
                       CA_MIN_PASSPHRASE);
    if (list_keys(dir, paths, &nk, err) != 0)
        goto out;
    if (nk == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: no encrypted key (*.key) to re-encrypt", dir);
        goto out;
    }
    /* Everything opens first: nothing changes unless all of it can. */
    for (size_t i = 0; i < nk; i++) {
        if (ca_read_key_file(paths[i], passphrase, &keys[i], err) != 0) {
            err_prefix(err, "nothing was changed");
            goto out;
        }
    }
    if ((done = calloc(nk, sizeof(*done))) == NULL) {
        err_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < nk; i++) {
        long iter = 0;
        if (pemout_key_kdf(paths[i], &iter, done[i].before, sizeof(done[i].before), err) != 0 ||
            asprintf(&tmp[i], "%s.rekey", paths[i]) < 0) {
            tmp[i] = NULL;
            if (err->kind == DUET_ERR_NONE)
                err_nomem(err);
            goto out;
        }
        if (pemout_key(tmp[i], keys[i], pass, err) != 0) {
            err_prefix(err, "%s (nothing was changed)", paths[i]);
            goto out;
        }
    }
    for (; renamed < nk; renamed++) {
        if (rename(tmp[renamed], paths[renamed]) != 0) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: cannot replace it with %s (%s); %zu of %zu keys already use the new "
                    "encryption%s",
                    paths[renamed], tmp[renamed], strerror(errno), renamed, nk,
                    new_passphrase != NULL ? " and the new passphrase" : "");
            goto out;
        }
        free(tmp[renamed]);
        tmp[renamed] = NULL;
    }
    {
        /* The renames are durable before the report says so. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    for (size_t i = 0; i < nk; i++) {
        long iter = 0;
        done[i].file = paths[i];
        paths[i] = NULL;
        if (pemout_key_kdf(done[i].file, &iter, done[i].after, sizeof(done[i].after), err) != 0)
            goto out;
    }
    *out = done;
    *n = nk;
    done = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < nk; i++) {
        if (tmp[i] != NULL) {
            unlink(tmp[i]);
            free(tmp[i]);
        }
        EVP_PKEY_free(keys[i]);
        free(paths[i]);
    }
    if (done != NULL)
        ca_rekeyed_free(done, nk);
    return rc;
}

/* Free what ca_rekey_storage() listed. */
void
ca_rekeyed_free(struct ca_rekeyed *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i].file);
    free(v);
}
