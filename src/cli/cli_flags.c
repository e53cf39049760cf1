/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_flags.c - one table per command makes both its getopt_long options and
 * the flag lines of its --help, so a flag cannot be parsed without being
 * described, nor described without being parsed.  `duet completion bash`
 * reads the same --help lines.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The getopt_long options of a flag table; see cli.h. */
void
cli_flags_longopts(const struct cli_flag *f, size_t n, struct option *lo)
{
    for (size_t i = 0; i < n; i++)
        lo[i] = f[i].o;
    memset(&lo[n], 0, sizeof(lo[n]));
}

/* One help line: "  --name ARG" padded to a column, then the description. */
void
cli_flag_line(FILE *out, const char *name, const char *arg, const char *help)
{
    char left[96];

    snprintf(left, sizeof(left), "--%s%s%s", name, arg != NULL ? " " : "", arg != NULL ? arg : "");
    if (strlen(left) < 28)
        fprintf(out, "  %-28s %s\n", left, help);
    else
        fprintf(out, "  %s\n  %-28s %s\n", left, "", help);
}

/* The usage synopsis, then one line per flag; see cli.h. */
void
cli_flags_help(FILE *out, const char *synopsis, const struct cli_flag *f, size_t n)
{
    fputs(synopsis, out);
    fputs("options:\n", out);
    for (size_t i = 0; i < n; i++)
        cli_flag_line(out, f[i].o.name, f[i].arg, f[i].help);
}
