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
    "                        [--password-file F] --out F [--force]\n"
    "       duet cert export --from-p12 F.p12 --password-file F --out DIR [--name NAME]\n"
    "                        [--force]\n"
    "The second form reads a PKCS#12 back: DIR/NAME.key (0600) and DIR/NAME.crt (leaf,\n"
    "then the rest of the chain); NAME defaults to the file's name without .p12/.pfx.\n";

/* NAME for --from-p12: --name, else the file's base name without .p12 or .pfx. */
static bool
p12_base(const char *path, const char *name, char *buf, size_t len)
{
    const char *b = strrchr(path, '/');
    size_t n;

    if (name != NULL) {
        snprintf(buf, len, "%s", name);
        return cli_safe_name(buf);
    }
    b = b != NULL ? b + 1 : path;
    n = strlen(b);
    if (n > 4 && (strcmp(b + n - 4, ".p12") == 0 || strcmp(b + n - 4, ".pfx") == 0))
        n -= 4;
    snprintf(buf, len, "%.*s", (int)n, b);
    return cli_safe_name(buf);
}

/*
 * `--from-p12`: the key and certificates of a PKCS#12 file as PEM files in
 * o->out (created when missing).  Nothing is written unless both files can
 * be (neither exists, or --force).
 */
static int
export_from_p12(const struct cli_opts *o, struct duet_err *err)
{
    struct load_bundle b;
    char base[80];
    char *pass = NULL, *key_path = NULL, *crt_path = NULL;
    X509 **certs = NULL;
    int rc = -1;

    memset(&b, 0, sizeof(b));
    if (!p12_base(o->from_p12, o->name, base, sizeof(base))) {
        err_set(err, DUET_ERR_INPUT,
                "%s: cannot name the PEM files after it; give --name NAME (1-64 letters, digits, "
                "'.', '-', '_' or '@')",
                o->from_p12);
        goto out;
    }
    if (cli_check_secret_mode(o->password_file, "the password file", err) != 0 ||
        fileio_read_secret(o->password_file, &pass, err) != 0 ||
        load_bundle_file(o->from_p12, pass, &b, err) != 0)
        goto out;
    if (b.format != LOAD_PKCS12) {
        err_set(err, DUET_ERR_INPUT, "%s: expected a PKCS#12 file, found %s", o->from_p12,
                load_format_name(b.format));
        goto out;
    }
    if (b.key == NULL || b.certs == NULL || sk_X509_num(b.certs) == 0) {
        err_set(err, DUET_ERR_INPUT, "%s: expected a private key and its certificate, found %s",
                o->from_p12, b.key == NULL ? "no private key" : "no certificate");
        goto out;
    }
    if (X509_check_private_key(sk_X509_value(b.certs, 0), b.key) != 1) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INPUT, "%s: its first certificate does not belong to its key",
                o->from_p12);
        goto out;
    }
    if (cli_check_out_dir(o->out, err) != 0)
        goto out;
    key_path = cli_path_in(o->out, base, ".key");
    crt_path = cli_path_in(o->out, base, ".crt");
    certs = calloc((size_t)sk_X509_num(b.certs), sizeof(*certs));
    if (key_path == NULL || crt_path == NULL || certs == NULL) {
        err_nomem(err);
        goto out;
    }
    if (cli_check_out_file(key_path, o->force, err) != 0 ||
        cli_check_out_file(crt_path, o->force, err) != 0)
        goto out;
    for (int i = 0; i < sk_X509_num(b.certs); i++)
        certs[i] = sk_X509_value(b.certs, i);
    if (pemout_key(key_path, b.key, NULL, err) != 0 ||
        pemout_certs(crt_path, certs, (size_t)sk_X509_num(b.certs), NULL, err) != 0)
        goto out;
    printf("wrote %s (key, 0600) and %s (%d certificate%s)\n", key_path, crt_path,
           sk_X509_num(b.certs), sk_X509_num(b.certs) == 1 ? "" : "s");
    rc = 0;
out:
    free(certs);
    free(key_path);
    free(crt_path);
    fileio_free_secret(pass);
    load_bundle_clear(&b);
    return rc;
}

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
                              OB_CERT | OB_KEY | OB_FORMAT | OB_LEGACY | OB_PASSWORD_FILE | OB_OUT |
                                  OB_FORCE | OB_FROM_P12 | OB_NAME,
                              export_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.from_p12 != NULL) {
        if (o.nargs != 0 || o.out == NULL || o.password_file == NULL || o.cert != NULL ||
            o.key != NULL || o.format != NULL || o.legacy) {
            fprintf(stderr,
                    "%s: --from-p12 F needs --password-file and --out DIR, and takes no --cert, "
                    "--key, --format or --legacy\n%s",
                    o.cmd, export_usage);
            goto out;
        }
        rc = export_from_p12(&o, &err) == 0 ? EXIT_OK : cli_fail(o.cmd, &err);
        goto out;
    }
    if (o.name != NULL) {
        fprintf(stderr, "%s: --name goes with --from-p12\n", o.cmd);
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
    if (cli_check_out_file(o.out, o.force, &err) != 0 ||
        load_certs_file(o.cert, NULL, &certs, &err) != 0 ||
        (o.key != NULL && load_key_file(o.key, NULL, &key, &err) != 0) ||
        (o.password_file != NULL &&
         (cli_check_secret_mode(o.password_file, "the password file", &err) != 0 ||
          fileio_read_secret(o.password_file, &pass, &err) != 0)))
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
