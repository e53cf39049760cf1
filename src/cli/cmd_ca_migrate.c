/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_migrate.c - `duet ca migrate --ca-dir DIR --to postgres://...`: the
 * CA's SQLite inventory copied into PostgreSQL and verified (ca_migrate).
 * Exit 0 when copied and verified, 1 when refused or failed (nothing is left
 * in PostgreSQL unless the copy was committed; ca.yaml is changed only after
 * the verification), 2 on usage errors.  The URL's password never appears in
 * any output.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { O_CA_DIR = 300, O_TO, O_HELP };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory, on SQLite today"},
    {{"to", required_argument, NULL, O_TO},
     "postgres://...",
     "the PostgreSQL database that takes over the inventory"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};
static const char migrate_usage[] =
    "usage: duet ca migrate --ca-dir DIR --to postgres://[user@]host[:port]/database\n"
    "Copies the inventory to PostgreSQL, verifies the copy, then points ca.yaml at it.\n";

/* `duet ca migrate`; see cli_ca_usage(). */
int
cmd_ca_migrate(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL, *to = NULL;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca_migrate_result res;
    struct ca *ca = NULL;
    char *where = NULL;
    int rc = EXIT_USAGE;
    int c;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == O_CA_DIR) {
            dir = optarg;
        } else if (c == O_TO) {
            to = optarg;
        } else if (c == O_HELP) {
            cli_flags_help(stdout, migrate_usage, flags, CLI_NFLAGS(flags));
            return EXIT_OK;
        } else {
            cli_bad_option("duet ca migrate", c, argv); /* a value may be a URL with a password */
            cli_ca_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || to == NULL || optind != argc) {
        fprintf(stderr, "duet ca migrate: --ca-dir DIR and --to postgres://... are required\n");
        return EXIT_USAGE;
    }
    if (!store_is_postgres_url(to)) {
        fprintf(stderr, "duet ca migrate: --to: expected a PostgreSQL URL "
                        "(postgres://[user@]host[:port]/database)\n");
        return EXIT_USAGE;
    }
    if (cli_open_ca(dir, false, NULL, &ca, &err) != 0 || ca_migrate(ca, to, &res, &err) != 0) {
        rc = cli_fail("duet ca migrate", &err);
        goto out;
    }
    where = store_url_redact(to, "***");
    printf("copied %zu certificates and %zu tokens to %s (CRL number %llu); verified: the "
           "count and every serial match\n",
           res.certs, res.tokens, where != NULL ? where : "PostgreSQL",
           (unsigned long long)res.crl_number);
    if (res.config_updated)
        printf("%s/%s now names it (store:); %s/%s stays as it was, a copy up to now\n", dir,
               CA_FILE_CONFIG, dir, CA_FILE_INVENTORY);
    else
        printf("to use it, set store: in %s/%s to the URL (without its password)\n", dir,
               CA_FILE_CONFIG);
    if (store_url_has_password(to))
        printf("note: the password is not written to %s: give it to every duet command "
               "through PGPASSFILE (~/.pgpass) or PGPASSWORD\n",
               CA_FILE_CONFIG);
    rc = EXIT_OK;
out:
    free(where);
    ca_close(ca);
    return rc;
}
