/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the `duet` command line: subcommand entry points and the text
 * renderer of inspection results.  Subcommands parse arguments and call the
 * layers below; exit statuses follow each command's documented contract.
 */
#ifndef DUET_CLI_H
#define DUET_CLI_H

#include <stdio.h>

#include <stdbool.h>

#include <jansson.h>

#include "ca/ca.h"
#include "lib/err.h"

/* Exit statuses shared by the subcommands. */
enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

int cmd_cert(int argc, char **argv);
int cmd_cert_inspect(int argc, char **argv);
int cmd_cert_verify(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_tunnel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ticket_keys(int argc, char **argv);
int cmd_cert_issue(int argc, char **argv);
int cmd_cert_sign(int argc, char **argv);
int cmd_cert_list(int argc, char **argv);
int cmd_cert_show(int argc, char **argv);
int cmd_cert_renew(int argc, char **argv);
int cmd_cert_revoke(int argc, char **argv);
int cmd_cert_export(int argc, char **argv);
int cmd_cert_expiring(int argc, char **argv);

/* The CA passphrase from --passphrase-file (first line), else DUET_CA_PASSPHRASE. */
int cli_passphrase(const char *file, char **out, struct duet_err *err);
/*
 * Open a CA directory; with `signing`, first cli_protect_secrets(), then
 * decrypt its issuing key with the passphrase.
 */
int cli_open_ca(const char *dir, bool signing, const char *passphrase_file, struct ca **out,
                struct duet_err *err);
/* Print "cmd: message" on stderr, escaped (cli_put_text); returns 1 (failed or refused). */
int cli_fail(const char *cmd, const struct duet_err *err);

/*
 * Text from certificates, CSRs and the inventory for a terminal: visible ASCII
 * and spaces as they are, every other byte (ESC, CR, LF, bytes of UTF-8) as
 * \xNN, so no escape sequence in a name ever reaches the terminal.  NULL
 * prints nothing.
 */
void cli_put_text(FILE *out, const char *s);
/* The same escaping into a new string (the caller frees it); NULL when out of memory. */
char *cli_text(const char *s);

/*
 * Called before a command reads the CA passphrase or decrypts a CA key: no
 * core dump (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0, which also
 * keeps other processes of the same user from reading its memory).  Fails
 * when either cannot be set; the command must then stop.
 */
int cli_protect_secrets(struct duet_err *err);

/* Print one inspected file (the model of inspect_bundle()) for a human. */
void render_inspect_text(FILE *out, const json_t *file);

#endif
