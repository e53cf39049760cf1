/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_renew.c - `duet cert renew`: a certificate with the identity of one in the inventory
 * (ca_renew_check/ca_renew decide), with a new key or --reuse-key, written to
 * OUTDIR/NAME.crt (and NAME.key) once the inventory has linked the two.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/pemout.h"

static const char renew_usage[] =
    "usage: duet cert renew SERIAL|CERTFILE --ca-dir DIR --out OUTDIR [--reuse-key] [--ttl D]\n"
    "                       [--key-type T] [--name FILENAME] [--passphrase-file F] [--force]\n"
    "                       [--format text|json]\n"
    "writes OUTDIR/NAME.crt (and NAME.key unless --reuse-key); NAME defaults to the CN\n";

/* A file name from a CN: characters outside [A-Za-z0-9._-@] become '_'. */
static void
file_base(const char *cn, char *buf, size_t len)
{
    size_t n = 0;

    for (const char *p = cn; *p && n + 1 < len && n < 64; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_' || *p == '@';
        buf[n++] = ok ? *p : '_';
    }
    buf[n] = '\0';
    if (n == 0 || buf[0] == '.')
        buf[0] = '_';
}

/* `duet cert renew`; see the usage above. */
int
cmd_cert_renew(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert renew"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    struct ca_renewal renewal;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char *key_path = NULL, *crt_path = NULL;
    bool clamped = false, json = false;
    int rc = EXIT_USAGE;

    memset(&renewal, 0, sizeof(renewal));
    if ((prc = cli_parse_opts(argc, argv,
                              OB_CA_DIR | OB_OUT | OB_REUSE_KEY | OB_TTL | OB_KEY_TYPE | OB_PASS |
                                  OB_NAME | OB_FORCE | OB_FORMAT,
                              renew_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL) {
        fprintf(stderr, "%s: SERIAL|CERTFILE, --ca-dir and --out are required\n%s", o.cmd,
                renew_usage);
        goto out;
    }
    if (!cli_format(o.cmd, o.format, &json))
        goto out;
    if (o.reuse_key && o.key_type != NULL) {
        fprintf(stderr, "%s: --key-type makes a new key; it cannot go with --reuse-key\n", o.cmd);
        goto out;
    }
    if (o.name != NULL && !cli_safe_name(o.name)) {
        fprintf(stderr, "%s: --name \"%s\" must be 1-64 letters, digits, '.', '-', '_' or '@'\n",
                o.cmd, o.name);
        goto out;
    }
    if (cli_check_out_dir(o.out, &err) != 0 ||
        cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0 ||
        cli_find_row(ca, o.args[0], &row, &err) != 0)
        goto fail;
    if (ca_renew_check(row, &renewal, &err) != 0)
        goto fail;
    {
        char base[80];
        if (o.name != NULL)
            snprintf(base, sizeof(base), "%s", o.name);
        else
            file_base(renewal.cn, base, sizeof(base));
        key_path = cli_path_in(o.out, base, ".key");
        crt_path = cli_path_in(o.out, base, ".crt");
    }
    if (key_path == NULL || crt_path == NULL) {
        err_nomem(&err);
        goto fail;
    }
    if (!o.force &&
        ((!o.reuse_key && access(key_path, F_OK) == 0) || access(crt_path, F_OK) == 0)) {
        err_set(&err, DUET_ERR_INPUT,
                "%s or %s already exists; renew into another --out, give --name, or --force to "
                "replace them",
                key_path, crt_path);
        goto fail;
    }
    {
        struct ca_renew_opts ropts = {
            .reuse_key = o.reuse_key, .key_type = o.key_type, .ttl = o.ttl};
        if (ca_renew(ca, &renewal, &ropts, &cert, &key, &clamped, &err) != 0)
            goto fail;
    }
    if ((!o.reuse_key && pemout_key(key_path, key, NULL, &err) != 0) ||
        cli_write_chain(crt_path, cert, ca_issuing_cert(ca), &err) != 0)
        goto fail;
    cli_report_issued("renewed as", cert, row->profile, clamped, o.reuse_key ? NULL : key_path,
                      crt_path, row->serial, json);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    ca_renewal_clear(&renewal);
    free(key_path);
    free(crt_path);
    EVP_PKEY_free(key);
    X509_free(cert);
    store_cert_free(row);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
