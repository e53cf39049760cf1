/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - `duet`: dispatch to subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "duet.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: duet <command> [options]\n"
            "\n"
            "commands:\n"
            "  cert inspect FILE...     show certificates, chains, CSRs, CRLs and keys\n"
            "  cert verify LEAF         verify a certificate chain for a purpose and a name\n"
            "  version                  print the version\n"
            "\n"
            "Run 'duet <command> --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "cert") == 0)
        return cmd_cert(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("duet %s\n", duet_version());
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
