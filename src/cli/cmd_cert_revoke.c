/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_revoke.c - `duet cert revoke`: mark a certificate revoked in the inventory; `duet crl
 * generate` publishes it.  The inventory records who revoked it: "cli:" and the login name of
 * the user running the command (its effective uid).
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <pwd.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/x509util.h"

static const char revoke_usage[] =
    "usage: duet cert revoke SERIAL|CERTFILE --ca-dir DIR\n"
    "                        [--reason unspecified|keyCompromise|caCompromise|affiliationChanged|\n"
    "                                  superseded|cessationOfOperation|certificateHold]\n";

/* Who revokes: "cli:LOGIN", or "cli:uid=N" for a uid without a passwd entry. */
static void
revoker(char *buf, size_t len)
{
    const struct passwd *pw = getpwuid(geteuid());

    if (pw != NULL && pw->pw_name != NULL)
        snprintf(buf, len, "cli:%s", pw->pw_name);
    else
        snprintf(buf, len, "cli:uid=%lu", (unsigned long)geteuid());
}

/* `duet cert revoke`; see the usage above. */
int
cmd_cert_revoke(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert revoke"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    int reason = 0;
    int rc = EXIT_USAGE;
    char by[300];

    if ((prc = cli_parse_opts(argc, argv, OB_CA_DIR | OB_REASON, revoke_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL) {
        fprintf(stderr, "%s: SERIAL|CERTFILE and --ca-dir are required\n%s", o.cmd, revoke_usage);
        goto out;
    }
    if (o.reason != NULL && (reason = ca_reason_parse(o.reason)) < 0) {
        fprintf(stderr, "%s: --reason \"%s\" is not a reason\n%s", o.cmd, o.reason, revoke_usage);
        goto out;
    }
    revoker(by, sizeof(by));
    if (cli_protect_secrets(&err) != 0 || cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        cli_find_row(ca, o.args[0], &row, &err) != 0 ||
        ca_revoke(ca, row->serial, reason, (int64_t)time(NULL), by, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    printf("revoked ");
    cli_put_text(stdout, row->name);
    printf(" (serial %s), reason %s; publish it with duet crl generate\n", row->serial,
           x509u_crl_reason(reason));
    rc = EXIT_OK;
out:
    store_cert_free(row);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
