/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_flags.c - one table per command makes both its getopt_long options and
 * the flag lines of its --help, so a flag cannot be parsed without being
 * described, nor described without being parsed.  `duet completion bash`
 * reads the same --help lines.
 */
#include <getopt.h>
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

/*
 * Report a getopt_long error; see cli.h.  A flag of the table is named as
 * the table spells it, not as typed: getopt_long takes abbreviations, and
 * optopt holds the flag's value.  An unknown long option is named without
 * what follows its "=": the value of a mistyped --password-file= or --store=
 * may be a secret.  An unknown short option is named itself (optopt), since
 * in a group such as -qz optind has not moved past it yet and argv[optind -
 * 1] is the argument before.
 */
int
cli_flags_error(const char *cmd, int c, char *const *argv, const struct cli_flag *f, size_t n,
                void (*usage)(FILE *out))
{
    const char *flag = NULL;
    char what[128];

    for (size_t i = 0; i < n && optopt >= 256; i++) {
        if (f[i].o.val == optopt)
            flag = f[i].o.name;
    }
    if (flag != NULL)
        snprintf(what, sizeof(what), "--%s", flag);
    else if (optopt > 0 && optopt < 256)
        snprintf(what, sizeof(what), "-%c", optopt);
    else
        snprintf(what, sizeof(what), "%.*s", (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
    fprintf(stderr, "%s: ", cmd);
    if (c == ':') {
        cli_put_text(stderr, what);
        fputs(" needs a value\n", stderr);
    } else if (flag != NULL) {
        cli_put_text(stderr, what);
        fputs(" takes no value\n", stderr);
    } else {
        cli_put_text(stderr, what);
        fputs(" is not an option of this command\n", stderr);
    }
    usage(stderr);
    return EXIT_USAGE;
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
