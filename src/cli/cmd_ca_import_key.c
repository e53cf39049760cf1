/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_import_key.c - `duet ca import-key`: the issuing key of a CA
 * directory moved from issuing.key into a PKCS#11 token (ca_import_key in
 * src/ca/keyimport.c).  Exit 0 when the CA signs through the token, 1 when
 * the import failed or was refused (the CA still uses its file), 2 on usage
 * errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/pkcs11.h"
#include "cli/cli.h"
#include "lib/fileio.h"

enum { O_CA_DIR = 300, O_KEY_URI, O_PIN_FILE, O_PASS, O_HELP };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory holding issuing.key"},
    {{"key-uri", required_argument, NULL, O_KEY_URI},
     "'pkcs11:token=T;object=K?module-path=M'",
     "the token and the label (and id) the key takes there"},
    {{"pin-file", required_argument, NULL, O_PIN_FILE},
     "F",
     "the token's PIN (0600, remembered in ca.yaml; else DUET_PKCS11_PIN)"},
    {{"passphrase-file", required_argument, NULL, O_PASS},
     "F",
     "the passphrase of issuing.key (else DUET_CA_PASSPHRASE)"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};
static const char import_usage[] =
    "usage: duet ca import-key --ca-dir DIR --key-uri 'pkcs11:token=T;object=K?module-path=M'\n"
    "                          [--pin-file F] [--passphrase-file F]\n"
    "Writes the CA's issuing key (issuing.key) into the PKCS#11 token as a sensitive,\n"
    "non-extractable private key and its public key, checks that the token signs as\n"
    "issuing.crt's key, records key_uri in ca.yaml and renames issuing.key to\n"
    "issuing-offline.key (still encrypted: move it offline or shred it).  Stop duet ca\n"
    "serve first.\n";

static void
usage(FILE *out)
{
    cli_flags_help(out, import_usage, flags, CLI_NFLAGS(flags));
}

/* `duet ca import-key`. */
int
cmd_ca_import_key(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL, *uri = NULL, *pin_file = NULL, *pass_file = NULL;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca_import_result res;
    char *pass = NULL;
    int c, rc = EXIT_INVALID;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == O_CA_DIR) {
            dir = optarg;
        } else if (c == O_KEY_URI) {
            uri = optarg;
        } else if (c == O_PIN_FILE) {
            pin_file = optarg;
        } else if (c == O_PASS) {
            pass_file = optarg;
        } else if (c == O_HELP) {
            usage(stdout);
            return EXIT_OK;
        } else {
            cli_bad_option("duet ca import-key", c, argv);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || uri == NULL || optind != argc) {
        fprintf(stderr, "duet ca import-key: --ca-dir DIR and --key-uri URI are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!ca_pkcs11_is_uri(uri)) {
        fprintf(stderr, "duet ca import-key: --key-uri: expected a PKCS#11 URI "
                        "(pkcs11:token=LABEL;object=LABEL, RFC 7512)\n");
        return EXIT_USAGE;
    }
    if (cli_protect_secrets(&err) != 0 || cli_passphrase(pass_file, &pass, &err) != 0 ||
        ca_import_key(dir, pass, uri, pin_file, &res, &err) != 0) {
        rc = cli_fail("duet ca import-key", &err);
        goto out;
    }
    printf("the issuing key of %s is in its PKCS#11 token now (key_uri in %s/%s); every "
           "signing command uses the token\n",
           dir, dir, CA_FILE_CONFIG);
    if (res.key_file_kept)
        printf("warning: %s/%s could not be renamed (%s): it is no longer used; move it "
               "offline or shred it\n",
               dir, CA_FILE_ISSUING_KEY, res.why_kept);
    else
        printf("%s/%s is now %s/%s, still encrypted with the CA passphrase: move it offline "
               "as a backup, or shred it\n",
               dir, CA_FILE_ISSUING_KEY, dir, CA_FILE_ISSUING_KEY_OFFLINE);
    rc = EXIT_OK;
out:
    fileio_free_secret(pass);
    return rc;
}
