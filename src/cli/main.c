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
            "  version                  print the version\n"
            "\n"
            "Run 'duet <command> --help' (or 'duet help proxy|tunnel|probe|doctor') for a\n"
            "command's options.\n");
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
    if (strcmp(argv[1], "ca") == 0)
        return cmd_ca(argc - 1, argv + 1);
    if (strcmp(argv[1], "crl") == 0)
        return cmd_crl(argc - 1, argv + 1);
    if (strcmp(argv[1], "ocsp") == 0)
        return cmd_ocsp(argc - 1, argv + 1);
    if (strcmp(argv[1], "proxy") == 0)
        return cmd_proxy(argc - 1, argv + 1);
    if (strcmp(argv[1], "tunnel") == 0)
        return cmd_tunnel(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(argv[1], "ticket-keys") == 0)
        return cmd_ticket_keys(argc - 1, argv + 1);
    if (strcmp(argv[1], "agent") == 0)
        return cmd_agent(argc - 1, argv + 1);
    if (strcmp(argv[1], "probe") == 0)
        return cmd_probe(argc - 1, argv + 1);
    if (strcmp(argv[1], "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("duet %s\n", duet_version());
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0 && argc > 2 &&
        (strcmp(argv[2], "probe") == 0 || strcmp(argv[2], "doctor") == 0)) {
        char help[] = "--help";
        char *hargv[] = {argv[2], help, NULL};
        return strcmp(argv[2], "probe") == 0 ? cmd_probe(2, hargv) : cmd_doctor(2, hargv);
    }
    if (strcmp(argv[1], "help") == 0 && argc > 2 &&
        (strcmp(argv[2], "proxy") == 0 || strcmp(argv[2], "tunnel") == 0)) {
        /* `duet help proxy` is `duet proxy --help`: every flag, from the settings table. */
        char help[] = "--help";
        char *hargv[] = {argv[2], help, NULL};
        return strcmp(argv[2], "proxy") == 0 ? cmd_proxy(2, hargv) : cmd_tunnel(2, hargv);
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
