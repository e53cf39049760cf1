/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_roots.c - `duet ca roots`: the CA's trust bundle (its root
 * certificate) on stdout.  Exit 0, 1 when the CA cannot be opened, 2 on usage
 * errors.
 */
#include <getopt.h>
#include <stdio.h>

#include <openssl/pem.h>

#include "cli/cli.h"

enum { O_CA_DIR = 300, O_HELP };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};
static const char roots_usage[] = "usage: duet ca roots --ca-dir DIR\n"
                                  "Prints the CA's trust bundle (its root certificate, PEM).\n";

/* `duet ca roots`: the root certificate, PEM, on stdout. */
int
cmd_ca_roots(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    int c;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == O_CA_DIR) {
            dir = optarg;
        } else if (c == O_HELP) {
            cli_flags_help(stdout, roots_usage, flags, CLI_NFLAGS(flags));
            return EXIT_OK;
        } else {
            cli_bad_option("duet ca roots", c, argv);
            cli_ca_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr,
                dir == NULL ? "duet ca roots: --ca-dir DIR is required\n"
                            : "duet ca roots: unexpected argument \"%s\"\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (cli_open_ca(dir, false, NULL, &ca, &err) != 0)
        return cli_fail("duet ca roots", &err);
    PEM_write_X509(stdout, ca_root_cert(ca));
    ca_close(ca);
    return EXIT_OK;
}
