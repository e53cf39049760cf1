/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ticket_keys.c - `duet ticket-keys rotate FILE`: the shared TLS ticket
 * keys of `duet proxy --ticket-keys`, rotated on the operator's schedule.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/tls.h"

#define DEFAULT_KEEP 3

enum { T_KEEP = 600, T_HELP };

static const struct cli_flag flags[] = {
    {{"keep", required_argument, NULL, T_KEEP}, "N", "how many keys the file holds (default 3)"},
    {{"help", no_argument, NULL, T_HELP}, NULL, "print this help"},
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: duet ticket-keys rotate FILE [--keep N]\n"
            "Put a new random ticket key first in FILE (it seals new tickets) and keep the\n"
            "previous ones after it (they still open the tickets they sealed), N keys in all\n"
            "(default %d).  A missing FILE is created.  The file is written atomically, mode\n"
            "0600; every duet proxy reading it with --ticket-keys reloads it on change.\n"
            "Run it on a schedule shorter than the keys' use, e.g. hourly, and give every\n"
            "instance behind the load balancer the same file.  A ticket resumes only on a\n"
            "listener with the same name, trust, CRLs and rules as the one that issued it.\n",
            DEFAULT_KEEP);
    fputs("options:\n", out);
    for (size_t i = 0; i < CLI_NFLAGS(flags); i++)
        cli_flag_line(out, flags[i].o.name, flags[i].arg, flags[i].help);
}

int
cmd_ticket_keys(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct duet_err err;
    long keep = DEFAULT_KEEP;
    int nkeys = 0;
    int c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "rotate") != 0) {
        fprintf(stderr, "duet ticket-keys: unknown action \"%s\"; expected rotate\n", argv[1]);
        return 2;
    }
    argc--;
    argv++;
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case T_KEEP: {
            char *end = NULL;
            keep = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || keep < 2 || keep > TLS_MAX_TICKET_KEYS) {
                fprintf(stderr,
                        "duet ticket-keys rotate: --keep \"%s\": expected 2 to %d (the new key "
                        "and at least the one before it)\n",
                        optarg, TLS_MAX_TICKET_KEYS);
                return 2;
            }
            break;
        }
        case T_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "duet ticket-keys rotate: expected exactly one FILE\n");
        return 2;
    }
    err_clear(&err);
    if (tls_ticket_keys_rotate(argv[optind], (int)keep, &nkeys, &err) != 0) {
        fprintf(stderr, "duet ticket-keys rotate: %s\n", err.msg);
        return 1;
    }
    printf("rotated %s: a new key seals tickets from now on; %d key%s in the file\n", argv[optind],
           nkeys, nkeys == 1 ? "" : "s");
    return 0;
}
