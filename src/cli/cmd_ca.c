/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca.c - `duet ca <sub>`: the usage of the family and the dispatch to
 * cmd_ca_init.c, cmd_ca_roots.c, cmd_ca_token.c, cmd_ca_rekey.c,
 * cmd_ca_import_key.c, cmd_ca_migrate.c and cmd_ca_serve.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The usage of `duet ca`; see cli.h. */
void
cli_ca_usage(FILE *out)
{
    fprintf(out, "usage: duet ca init --ca-dir DIR --name \"Org Name\" [--key-type "
                 "p256|p384|ed25519|rsa3072]\n"
                 "                    [--trust-domain TD] [--permit-dns SUFFIX]... [--permit-uri "
                 "PREFIX]...\n"
                 "                    [--offline-root] [--passphrase-file F] "
                 "[--store sqlite|postgres://...]\n"
                 "                    [--key-uri 'pkcs11:token=T;object=K?module-path=M' "
                 "[--pin-file F]\n"
                 "                     [--generate-key]] [--ocsp-key-uri 'pkcs11:...']\n"
                 "                    [--root-key-uri 'pkcs11:...']\n"
                 "       duet ca roots --ca-dir DIR\n"
                 "       duet ca token NAME --profile P --ca-dir DIR [--san S]... [--owner O]\n"
                 "                     [--location L] [--ttl 15m] [--passphrase-file F]\n"
                 "       duet ca token --list --ca-dir DIR [--format text|json]\n"
                 "       duet ca rekey-storage --ca-dir DIR [--passphrase-file F] "
                 "[--new-passphrase-file F2]\n"
                 "       duet ca import-key --ca-dir DIR --key-uri 'pkcs11:...' [--pin-file F] "
                 "[--passphrase-file F]\n"
                 "       duet ca migrate --ca-dir DIR --to postgres://...\n"
                 "       duet ca serve --ca-dir DIR --listen ADDR:PORT [--http-listen ADDR:PORT]\n"
                 "                     [--server-name NAME]... [--admin-identity PATTERN]... "
                 "(--help)\n"
                 "The CA passphrase comes from --passphrase-file F or DUET_CA_PASSPHRASE; a\n"
                 "token's PIN from --pin-file F (0600, remembered in ca.yaml) or "
                 "DUET_PKCS11_PIN.\n");
}

/* `duet ca <sub>`. */
int
cmd_ca(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "init") == 0)
        return cmd_ca_init(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "roots") == 0)
        return cmd_ca_roots(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        return cmd_ca_token(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "rekey-storage") == 0)
        return cmd_ca_rekey(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "import-key") == 0)
        return cmd_ca_import_key(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return cmd_ca_serve(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
        return cmd_ca_migrate(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        cli_ca_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet ca: expected init, roots, token, rekey-storage, import-key, migrate or serve\n");
    cli_ca_usage(stderr);
    return EXIT_USAGE;
}
