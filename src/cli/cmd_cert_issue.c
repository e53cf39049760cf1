/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_issue.c - `duet cert issue`: a new key and a certificate for NAME under a profile,
 * written as OUTDIR/NAME.key (0600) and OUTDIR/NAME.crt (leaf and issuing CA)
 * once the inventory has recorded it.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/pemout.h"

static const char issue_usage[] =
    "usage: duet cert issue NAME --profile server|client|peer|device --ca-dir DIR --out OUTDIR\n"
    "                       [--san dns:H|ip:A|uri:U|email:E]... [--ttl 720h] [--owner TEXT]\n"
    "                       [--location TEXT] [--key-type p256|p384|ed25519|rsa3072]\n"
    "                       [--passphrase-file F] [--force] [--format text|json]\n";

/* `duet cert issue`; see the usage above. */
int
cmd_cert_issue(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert issue"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *key_path = NULL, *crt_path = NULL;
    bool clamped = false, json = false;
    int rc = EXIT_USAGE;

    if ((prc = cli_parse_opts(argc, argv,
                              OB_CA_DIR | OB_OUT | OB_PROFILE | OB_SAN | OB_TTL | OB_OWNER |
                                  OB_LOCATION | OB_KEY_TYPE | OB_PASS | OB_FORCE | OB_FORMAT,
                              issue_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL || o.profile == NULL) {
        fprintf(stderr, "%s: NAME, --profile, --ca-dir and --out are required\n%s", o.cmd,
                issue_usage);
        goto out;
    }
    if (!cli_format(o.cmd, o.format, &json))
        goto out;
    if (!cli_safe_name(o.args[0])) {
        fprintf(stderr,
                "%s: NAME \"%s\" must be 1-64 letters, digits, '.', '-', '_' or '@' (it names "
                "the files)\n",
                o.cmd, o.args[0]);
        goto out;
    }
    rc = EXIT_INVALID;
    if (cli_check_out_dir(o.out, &err) != 0 ||
        cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0)
        goto fail;
    key_path = cli_path_in(o.out, o.args[0], ".key");
    crt_path = cli_path_in(o.out, o.args[0], ".crt");
    if (key_path == NULL || crt_path == NULL) {
        err_nomem(&err);
        goto fail;
    }
    if (!o.force && (access(key_path, F_OK) == 0 || access(crt_path, F_OK) == 0)) {
        err_set(&err, DUET_ERR_INPUT, "%s or %s already exists; choose another NAME or --force",
                key_path, crt_path);
        goto fail;
    }
    {
        struct ca_request req = {.profile = o.profile,
                                 .cn = o.args[0],
                                 .sans = o.sans,
                                 .nsans = o.nsans,
                                 .ttl = o.ttl,
                                 .owner = o.owner,
                                 .location = o.location};
        if (ca_issue_keypair(ca, &req, o.key_type, &cert, &key, &clamped, &err) != 0)
            goto fail;
    }
    /* Recorded in the inventory: now the files. */
    if (pemout_key(key_path, key, NULL, &err) != 0 ||
        cli_write_chain(crt_path, cert, ca_issuing_cert(ca), &err) != 0)
        goto fail;
    cli_report_issued("issued", cert, o.profile, clamped, key_path, crt_path, NULL, json);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    free(key_path);
    free(crt_path);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
