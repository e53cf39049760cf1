/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert.c - `duet cert <sub>`: the usage of the family and the dispatch to
 * one file per subcommand (cmd_cert_inspect.c, cmd_cert_verify.c,
 * cmd_cert_issue.c, ...).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void
cert_usage(FILE *out)
{
    fprintf(out,
            "usage: duet cert inspect [--format text|json] [--password-file F] FILE...\n"
            "       duet cert verify --trusted ROOTS.pem [options] LEAF.pem\n"
            "       duet cert issue NAME --profile P --ca-dir DIR --out OUTDIR [options]\n"
            "       duet cert sign CSR --profile P --ca-dir DIR --out FILE [options]\n"
            "       duet cert list --ca-dir DIR [filters] [--format table|json|csv]\n"
            "       duet cert show SERIAL|CERTFILE --ca-dir DIR [--format text|json]\n"
            "       duet cert renew SERIAL|CERTFILE --ca-dir DIR --out OUTDIR [--reuse-key]\n"
            "       duet cert revoke SERIAL|CERTFILE --ca-dir DIR [--reason R]\n"
            "       duet cert export --cert F --key F --format pem|der|p12 [--legacy] --out F\n"
            "       duet cert expiring --ca-dir DIR --within 30d [--format prometheus]\n");
}

/* `duet cert <sub>` dispatch. */
int
cmd_cert(int argc, char **argv)
{
    if (argc < 2) {
        cert_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "inspect") == 0)
        return cmd_cert_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_cert_verify(argc - 1, argv + 1);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {{"issue", cmd_cert_issue},   {"sign", cmd_cert_sign},
                {"list", cmd_cert_list},     {"show", cmd_cert_show},
                {"renew", cmd_cert_renew},   {"revoke", cmd_cert_revoke},
                {"export", cmd_cert_export}, {"expiring", cmd_cert_expiring}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        cert_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet cert: unknown subcommand \"%s\"\n", argv[1]);
    cert_usage(stderr);
    return EXIT_USAGE;
}
