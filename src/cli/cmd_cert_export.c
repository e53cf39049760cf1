/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_export.c - `duet cert export`: a certificate (and key) as PEM, DER or PKCS#12 (modern
 * or --legacy), written through src/lib/pemout.c.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cli/cli.h"
#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/pemout.h"

static const char export_usage[] =
    "usage: duet cert export --cert F --key F --format pem|der|p12 [--legacy]\n"
    "                        [--password-file F] --out F\n";

/* The leaf, the rest of its file's certificates, then the key when given, as PEM. */
static int
export_pem(const char *path, X509 *leaf, STACK_OF(X509) * rest, EVP_PKEY *key, struct duet_err *err)
{
    size_t n = 1 + (size_t)sk_X509_num(rest);
    X509 **certs = calloc(n, sizeof(*certs));
    int rc;

    if (certs == NULL)
        return err_nomem(err);
    certs[0] = leaf;
    for (size_t i = 1; i < n; i++)
        certs[i] = sk_X509_value(rest, (int)i - 1);
    rc = pemout_certs(path, certs, n, key, err);
    free(certs);
    return rc;
}

/* `duet cert export`; see the usage above. */
int
cmd_cert_export(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert export"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    char *pass = NULL;
    X509 *leaf;
    int wrc;
    int rc = EXIT_USAGE;

    if ((prc = cli_parse_opts(argc, argv,
                              OB_CERT | OB_KEY | OB_FORMAT | OB_LEGACY | OB_PASSWORD_FILE | OB_OUT,
                              export_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 0 || o.cert == NULL || o.out == NULL || o.format == NULL) {
        fprintf(stderr, "%s: --cert, --format and --out are required\n%s", o.cmd, export_usage);
        goto out;
    }
    if (strcmp(o.format, "pem") != 0 && strcmp(o.format, "der") != 0 &&
        strcmp(o.format, "p12") != 0) {
        fprintf(stderr, "%s: --format \"%s\": expected pem, der or p12\n", o.cmd, o.format);
        goto out;
    }
    if (strcmp(o.format, "p12") == 0 && (o.key == NULL || o.password_file == NULL)) {
        fprintf(stderr, "%s: --format p12 needs --key and --password-file\n", o.cmd);
        goto out;
    }
    if (strcmp(o.format, "der") == 0 && (o.key != NULL || o.password_file != NULL)) {
        fprintf(stderr,
                "%s: --format der holds the certificate only; --key and --password-file "
                "do not apply\n",
                o.cmd);
        goto out;
    }
    if (strcmp(o.format, "pem") == 0 && o.password_file != NULL) {
        fprintf(stderr,
                "%s: --format pem writes the key unencrypted; --password-file applies to "
                "p12 only\n",
                o.cmd);
        goto out;
    }
    if (o.legacy && strcmp(o.format, "p12") != 0) {
        fprintf(stderr, "%s: --legacy applies to --format p12 only\n", o.cmd);
        goto out;
    }
    rc = EXIT_INVALID;
    if (load_certs_file(o.cert, NULL, &certs, &err) != 0 ||
        (o.key != NULL && load_key_file(o.key, NULL, &key, &err) != 0) ||
        (o.password_file != NULL && fileio_read_secret(o.password_file, &pass, &err) != 0))
        goto fail;
    leaf = sk_X509_shift(certs);
    if (key != NULL && X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        X509_free(leaf);
        err_set(&err, DUET_ERR_INPUT, "%s does not belong to the certificate in %s", o.key, o.cert);
        goto fail;
    }
    if (strcmp(o.format, "der") == 0) {
        wrc = pemout_cert_der(o.out, leaf, &err);
    } else if (strcmp(o.format, "pem") == 0) {
        /* The chain, then the key when given: one file for servers that want both. */
        wrc = export_pem(o.out, leaf, certs, key, &err);
    } else {
        wrc = pemout_p12(o.out, key, leaf, certs, pass, o.legacy, &err);
    }
    X509_free(leaf);
    if (wrc != 0)
        goto fail;
    printf("wrote %s (%s%s)\n", o.out, o.format, o.legacy ? ", legacy 3DES/SHA-1" : "");
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    OSSL_STACK_OF_X509_free(certs);
    EVP_PKEY_free(key);
    fileio_free_secret(pass);
    cli_opts_free(&o);
    return rc;
}
