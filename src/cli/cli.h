/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the `duet` command line: subcommand entry points and the text
 * renderer of inspection results.  Subcommands parse arguments and call the
 * layers below; exit statuses follow each command's documented contract.
 */
#ifndef DUET_CLI_H
#define DUET_CLI_H

#include <stdio.h>

#include <jansson.h>

/* Exit statuses shared by the subcommands. */
enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

int cmd_cert(int argc, char **argv);
int cmd_cert_inspect(int argc, char **argv);
int cmd_cert_verify(int argc, char **argv);

/* Print one inspected file (the model of inspect_bundle()) for a human. */
void render_inspect_text(FILE *out, const json_t *file);

#endif
