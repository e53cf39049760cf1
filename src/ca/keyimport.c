/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyimport.c - `duet ca import-key`: a CA's issuing key moved from
 * issuing.key into a PKCS#11 token; and what `duet ca init` shares with it
 * for keys in a token: the URI with its PIN file, the key pair generated and
 * undone, the `key_uri:` lines of ca.yaml.
 *
 * The order makes every failure leave a working CA: the key goes into the
 * token, the token is asked to sign and the signature checked against
 * issuing.crt, and only then ca.yaml (written atomically) switches to the
 * token; issuing.key is renamed last, never deleted.  A failure before the
 * switch removes what duet made in the token, and the CA goes on with its
 * file.  A kill between the token write and the switch leaves the key in
 * the token and the CA on its file; the same import run again finds this
 * CA's key under the label and finishes (adopt_token_key).
 */
#include "ca/ca.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ca/pkcs11.h"
#include "ca/pkcs11_objects.h"
#include "lib/fileio.h"

/* A token key's URI, made in the token on request; see ca.h. */
int
ca_token_key_prepare(const char *key_uri, const char *pin_file, bool generate, enum ca_key_type t,
                     char **uri, bool *generated, struct duet_err *err)
{
    *uri = pin_file != NULL ? ca_pkcs11_uri_with_pin_file(key_uri, pin_file, err) : strdup(key_uri);
    if (*uri == NULL)
        return pin_file != NULL ? -1 : err_nomem(err);
    if (generate) {
        if (ca_pkcs11_generate(*uri, t, err) != 0)
            return -1;
        *generated = true;
    }
    return 0;
}

/* Remove a key pair generated for a failed command; see ca.h. */
void
ca_token_key_undo(const char *uri, struct duet_err *err)
{
    struct duet_err derr = {.kind = DUET_ERR_NONE};
    size_t used = strnlen(err->msg, sizeof(err->msg));

    if (ca_pkcs11_destroy(uri, &derr) != 0 && used + 3 < sizeof(err->msg))
        snprintf(err->msg + used, sizeof(err->msg) - used, "; %.300s", derr.msg);
}

/* Add `FIELD: URI` to ca.yaml's text; see ca.h. */
int
ca_yaml_append_key_uri(char **yaml, const char *field, const char *uri)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (f == NULL)
        return -1;
    fprintf(f,
            "%s# %s lives in this PKCS#11 token; the PIN comes from pin-source or\n"
            "# $" CA_PKCS11_PIN_ENV ", never from this file.\n"
            "%s: \"%s\"\n",
            *yaml,
            strcmp(field, "key_uri") == 0        ? "The issuing key"
            : strcmp(field, "root_key_uri") == 0 ? "The root key"
                                                 : "The OCSP signer's key",
            field, uri);
    if (fclose(f) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    free(*yaml);
    *yaml = out;
    return 0;
}

/*
 * Whether the token's key signs as issuing.crt's key: a signature made in
 * the token over fixed bytes verifies with the certificate's public key.
 */
static int
check_token_key(const char *uri, const char *dir, X509 *issuing, struct duet_err *err)
{
    static const unsigned char probe[] = "duet ca import-key: does this key belong to issuing.crt";
    struct ca_pkcs11 *hsm = NULL;
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *sctx = EVP_MD_CTX_new(), *vctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int rc = -1;

    if (sctx == NULL || vctx == NULL) {
        err_nomem(err);
        goto out;
    }
    if (ca_pkcs11_open(uri, &hsm, &k, err) != 0)
        goto out;
    if (EVP_DigestSignInit(sctx, NULL, ca_sign_md(k), NULL, k) != 1 ||
        EVP_DigestSign(sctx, sig, &siglen, probe, sizeof(probe)) != 1) {
        err_set_ssl(err, DUET_ERR_INPUT, "%s: the token's key does not sign", uri);
        goto out;
    }
    if (EVP_DigestVerifyInit(vctx, NULL, ca_sign_md(k), NULL, X509_get0_pubkey(issuing)) != 1 ||
        EVP_DigestVerify(vctx, sig, siglen, probe, sizeof(probe)) != 1) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INPUT, "%s: the token's key does not belong to %s/%s", uri, dir,
                CA_FILE_ISSUING_CERT);
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(sctx); /* holds a reference to k: freed before the token closes */
    EVP_MD_CTX_free(vctx);
    ca_pkcs11_close(hsm);
    return rc;
}

/*
 * The URI's label or id is taken in the token.  When what it names is this
 * CA's issuing key (an earlier import-key was killed after writing it and
 * before switching ca.yaml), the import goes on with it and res->adopted says
 * so; anything else is refused with the pkcs11-tool command that frees the
 * label, since only the operator knows whether that object is in use.
 */
static int
adopt_token_key(const char *uri, const char *dir, X509 *issuing, struct ca_import_result *res,
                struct duet_err *err)
{
    struct duet_err why = {.kind = DUET_ERR_NONE};
    struct ca_pkcs11_uri u;
    char hexid[2 * 64 + 1] = "";
    int rc = -1;

    if (ca_pkcs11_uri_parse(uri, &u, err) != 0)
        return -1;
    if (check_token_key(uri, dir, issuing, &why) == 0) {
        res->adopted = true;
        snprintf(res->adopted_note, sizeof(res->adopted_note),
                 "token \"%.64s\" already holds this CA's issuing key under object \"%.64s\" "
                 "(an earlier import was interrupted); using it",
                 u.token != NULL ? u.token : "?", u.object != NULL ? u.object : "(by id)");
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < u.id_len && i < 64; i++)
        snprintf(hexid + 2 * i, 3, "%02x", u.id[i]);
    err_set(err, DUET_ERR_INPUT,
            "%s: token \"%s\" already holds an object %s%s%s that is not this CA's issuing key "
            "(%s/%s); nothing was imported. Name a new %s in --key-uri, or, if that object is "
            "an unused leftover, delete it with: pkcs11-tool --module %s%s%s --login "
            "--delete-object --type privkey %s %s (and again with --type pubkey)",
            uri, u.token != NULL ? u.token : "?", u.object != NULL ? "labelled \"" : "with id ",
            u.object != NULL ? u.object : hexid, u.object != NULL ? "\"" : "", dir,
            CA_FILE_ISSUING_CERT,
            u.object != NULL ? "object=" : "id=", u.module_path != NULL ? u.module_path : "MODULE",
            u.token != NULL ? " --token-label " : "", u.token != NULL ? u.token : "",
            u.object != NULL ? "--label" : "--id", u.object != NULL ? u.object : hexid);
out:
    ca_pkcs11_uri_clear(&u);
    return rc;
}

/* Move the issuing key into a token; see ca.h. */
int
ca_import_key(const char *dir, const char *passphrase, const char *key_uri, const char *pin_file,
              struct ca_import_result *res, struct duet_err *err)
{
    struct ca *ca = NULL;
    EVP_PKEY *key = NULL;
    char *uri = NULL, *keyfile = NULL, *offline = NULL, *yamlpath = NULL, *yaml = NULL;
    uint8_t *text = NULL;
    size_t len = 0;
    bool made = false;
    int rc = -1, imported;

    memset(res, 0, sizeof(*res));
    /* Opened without the passphrase: the key file is read once, below. */
    if (ca_open(dir, NULL, &ca, err) != 0)
        return -1;
    if (ca_config(ca)->key_uri != NULL) {
        err_set(err, DUET_ERR_INPUT,
                "%s/%s: the issuing key is already in a token (key_uri: %s); nothing to import",
                dir, CA_FILE_CONFIG, ca_config(ca)->key_uri);
        goto out;
    }
    keyfile = ca_join_path(dir, CA_FILE_ISSUING_KEY);
    offline = ca_join_path(dir, CA_FILE_ISSUING_KEY_OFFLINE);
    yamlpath = ca_join_path(dir, CA_FILE_CONFIG);
    if (ca_token_key_prepare(key_uri, pin_file, false, CA_KEY_P256, &uri, &made, err) != 0)
        goto out;
    if (keyfile == NULL || offline == NULL || yamlpath == NULL) {
        err_nomem(err);
        goto out;
    }
    if (access(offline, F_OK) == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: exists already; move it away first (it would receive %s)",
                offline, CA_FILE_ISSUING_KEY);
        goto out;
    }
    if (ca_read_key_file(keyfile, passphrase, &key, err) != 0)
        goto out;
    if (X509_check_private_key(ca_issuing_cert(ca), key) != 1) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INPUT, "%s does not belong to %s/%s; nothing was imported", keyfile,
                dir, CA_FILE_ISSUING_CERT);
        goto out;
    }
    if ((imported = ca_pkcs11_import(uri, key, err)) < 0)
        goto out;
    if (imported == CA_PKCS11_TAKEN) {
        /* An import killed before ca.yaml switched left this key there: finish it. */
        if (adopt_token_key(uri, dir, ca_issuing_cert(ca), res, err) != 0)
            goto out;
    } else {
        made = true;
        if (check_token_key(uri, dir, ca_issuing_cert(ca), err) != 0)
            goto out;
    }
    if (fileio_read(yamlpath, &text, &len, err) != 0)
        goto out;
    /* One byte more for a final newline the file may lack. */
    if ((yaml = calloc(1, len + 2)) == NULL) {
        err_nomem(err);
        goto out;
    }
    memcpy(yaml, text, len);
    if (len > 0 && yaml[len - 1] != '\n')
        yaml[len] = '\n';
    if (ca_yaml_append_key_uri(&yaml, "key_uri", uri) != 0) {
        err_nomem(err);
        goto out;
    }
    if (fileio_write_atomic(yamlpath, (const uint8_t *)yaml, strlen(yaml), 0644, err) != 0)
        goto out;
    made = false; /* the CA uses the token now: what is in it stays */
    rc = 0;
    if (rename(keyfile, offline) != 0) {
        res->key_file_kept = true;
        snprintf(res->why_kept, sizeof(res->why_kept), "%s", strerror(errno));
    }
out:
    if (made)
        ca_token_key_undo(uri, err);
    EVP_PKEY_free(key);
    ca_close(ca);
    free(text);
    free(yaml);
    free(uri);
    free(keyfile);
    free(offline);
    free(yamlpath);
    return rc;
}
