/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_rekey.c - `duet ca rekey-storage`: every encrypted key of a CA
 * directory re-encrypted with today's key derivation (src/ca/storage.c),
 * optionally under a new passphrase.  Exit 0, 1 when it failed (nothing
 * changed unless the message says otherwise), 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/storage.h"
#include "cli/cli.h"
#include "lib/fileio.h"

enum { O_CA_DIR = 300, O_PASS, O_NEW_PASS, O_HELP };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory"},
    {{"passphrase-file", required_argument, NULL, O_PASS},
     "F",
     "the current passphrase's file (else DUET_CA_PASSPHRASE)"},
    {{"new-passphrase-file", required_argument, NULL, O_NEW_PASS},
     "F2",
     "the new passphrase's file (else DUET_CA_NEW_PASSPHRASE; else the same passphrase)"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};

static void
usage(FILE *out)
{
    cli_flags_help(out,
                   "usage: duet ca rekey-storage --ca-dir DIR [--passphrase-file F]\n"
                   "                             [--new-passphrase-file F2]\n"
                   "Re-encrypts every encrypted key of the CA directory with PBKDF2-HMAC-SHA256,\n"
                   "600000 iterations; with --new-passphrase-file (or DUET_CA_NEW_PASSPHRASE), "
                   "under that\npassphrase.\n",
                   flags, CLI_NFLAGS(flags));
}

/* The new passphrase: --new-passphrase-file, else DUET_CA_NEW_PASSPHRASE, else none. */
static int
new_passphrase(const char *file, char **out, struct duet_err *err)
{
    const char *env = getenv("DUET_CA_NEW_PASSPHRASE");

    *out = NULL;
    if (file != NULL)
        return cli_passphrase(file, out, err);
    if (env != NULL && env[0] != '\0' && (*out = strdup(env)) == NULL)
        return err_nomem(err);
    return 0;
}

/* `duet ca rekey-storage`. */
int
cmd_ca_rekey(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL, *pass_file = NULL, *new_file = NULL;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca_rekeyed *done = NULL;
    char *pass = NULL, *new_pass = NULL;
    size_t n = 0;
    int c, rc = EXIT_INVALID;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == O_CA_DIR) {
            dir = optarg;
        } else if (c == O_PASS) {
            pass_file = optarg;
        } else if (c == O_NEW_PASS) {
            new_file = optarg;
        } else if (c == O_HELP) {
            usage(stdout);
            return EXIT_OK;
        } else {
            cli_bad_option("duet ca rekey-storage", c, argv);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr,
                dir == NULL ? "duet ca rekey-storage: --ca-dir DIR is required\n"
                            : "duet ca rekey-storage: unexpected argument \"%s\"\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (cli_protect_secrets(&err) != 0 || cli_passphrase(pass_file, &pass, &err) != 0 ||
        new_passphrase(new_file, &new_pass, &err) != 0 ||
        ca_rekey_storage(dir, pass, new_pass, &done, &n, &err) != 0) {
        rc = cli_fail("duet ca rekey-storage", &err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        cli_put_text(stdout, done[i].file);
        printf(": %s -> %s\n", done[i].before, done[i].after);
    }
    if (new_pass != NULL)
        printf("the keys now open with the new passphrase only\n");
    rc = EXIT_OK;
out:
    ca_rekeyed_free(done, n);
    fileio_free_secret(pass);
    fileio_free_secret(new_pass);
    return rc;
}
