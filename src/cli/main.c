/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - `duet`: dispatch to subcommands; `duet help X [Y]` is `duet X [Y]
 * --help`, and `duet completion bash` prints the shell's completion.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "duet.h"

static const char *const cert_subs[] = {"inspect", "verify", "issue",  "sign",     "list", "show",
                                        "renew",   "revoke", "export", "expiring", NULL};
static const char *const ca_subs[] = {"init",    "roots", "token",      "rekey-storage",
                                      "migrate", "serve", "import-key", NULL};
static const char *const crl_subs[] = {"generate", NULL};
static const char *const ocsp_subs[] = {"respond", NULL};
static const char *const tk_subs[] = {"rotate", NULL};

/* The commands, their subcommands (NULL: none) and entry points; see cli.h. */
const struct cli_command cli_commands[] = {
    {"ca", ca_subs, cmd_ca},
    {"cert", cert_subs, cmd_cert},
    {"crl", crl_subs, cmd_crl},
    {"ocsp", ocsp_subs, cmd_ocsp},
    {"proxy", NULL, cmd_proxy},
    {"tunnel", NULL, cmd_tunnel},
    {"bench", NULL, cmd_bench},
    {"ticket-keys", tk_subs, cmd_ticket_keys},
    {"agent", NULL, cmd_agent},
    {"probe", NULL, cmd_probe},
    {"doctor", NULL, cmd_doctor},
    {"completion", NULL, cmd_completion},
    {NULL, NULL, NULL},
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: duet <command> [options]\n"
            "\n"
            "commands:\n"
            "  ca init|roots            create a private CA; print its trust bundle\n"
            "  cert issue|sign          issue a certificate (new key) or sign a CSR\n"
            "  cert list|show           the inventory of every certificate issued\n"
            "  cert renew|revoke        renew or revoke by serial or certificate file\n"
            "  cert export              PEM, DER or PKCS#12 (modern or --legacy)\n"
            "  cert expiring            exit 1 when certificates expire soon (cron, alerts)\n"
            "  crl generate             the CA's CRL\n"
            "  ocsp respond             answer an OCSP request from a file (offline responder)\n"
            "  cert inspect FILE...     show certificates, chains, CSRs, CRLs and keys\n"
            "  proxy                    mTLS gateway in front of an HTTP or TCP service\n"
            "  tunnel                   mTLS client side for programs that cannot do it\n"
            "  bench                    mTLS load generator (full, resume, keepalive, idle)\n"
            "  ticket-keys rotate FILE  rotate the TLS ticket keys shared by proxies\n"
            "  agent                    keep this host's certificates fresh (enroll, renew)\n"
            "  cert verify LEAF         verify a certificate chain for a purpose and a name\n"
            "  probe HOST:PORT          why an mTLS connection fails, and the fix\n"
            "  doctor                   check a proxy config or TLS files before they fail\n"
            "  completion bash          the bash completion of duet (source it)\n"
            "  version                  print the version\n"
            "\n"
            "Run 'duet help <command> [<subcommand>]' or 'duet <command> [<subcommand>] --help'\n"
            "for a command's options.\n");
}

/* The entry of a top-level command; NULL when there is none of that name. */
static const struct cli_command *
find_command(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}

/* Whether `sub` is one of the NULL-terminated names. */
static bool
has_sub(const char *const *subs, const char *sub)
{
    for (; subs != NULL && *subs != NULL; subs++) {
        if (strcmp(*subs, sub) == 0)
            return true;
    }
    return false;
}

/*
 * `duet help X [Y]`: X's (or X Y's) --help on stdout, exit 0; an unknown
 * command or subcommand is named on stderr, exit 2.
 */
static int
help(int argc, char **argv)
{
    const struct cli_command *c;
    char flag[] = "--help";
    char *hargv[4];

    if (argc < 3) {
        usage(stdout);
        return EXIT_OK;
    }
    if ((c = find_command(argv[2])) == NULL) {
        fprintf(stderr, "duet help: unknown command \"%s\"\n", argv[2]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (argc > 4 || (argc == 4 && !has_sub(c->subs, argv[3]))) {
        fprintf(stderr, "duet help: \"%s\" is not a subcommand of duet %s\n", argv[3], c->name);
        return EXIT_USAGE;
    }
    hargv[0] = argv[2];
    hargv[1] = argc == 4 ? argv[3] : flag;
    hargv[2] = argc == 4 ? flag : NULL;
    hargv[3] = NULL;
    return c->fn(argc == 4 ? 3 : 2, hargv);
}

int
main(int argc, char **argv)
{
    const struct cli_command *c;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((c = find_command(argv[1])) != NULL)
        return c->fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("duet %s\n", duet_version());
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0)
        return help(argc, argv);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
