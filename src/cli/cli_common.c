/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_common.c - what several subcommands share: the CA passphrase, opening
 * a CA directory, reporting errors, escaping names for a terminal, and
 * keeping the decrypted CA key out of core dumps.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lib/duration.h"
#include "lib/fileio.h"

/* A secret's file readable by its owner only; see cli.h. */
int
cli_check_secret_mode(const char *file, const char *what, struct duet_err *err)
{
    struct stat st;

    if (stat(file, &st) == 0 && (st.st_mode & 077) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: %s is readable by group or others (mode %03o); fix with: chmod 600 %s",
                       file, what, (unsigned)(st.st_mode & 0777), file);
    return 0;
}

/* The CA passphrase from --passphrase-file, else DUET_CA_PASSPHRASE; see cli.h. */
int
cli_passphrase(const char *file, char **out, struct duet_err *err)
{
    const char *env = getenv("DUET_CA_PASSPHRASE");

    *out = NULL;
    if (file != NULL) {
        if (cli_check_secret_mode(file, "the passphrase file", err) != 0)
            return -1;
        return fileio_read_secret(file, out, err);
    }
    if (env != NULL && env[0] != '\0') {
        *out = strdup(env);
        return *out != NULL ? 0 : err_nomem(err);
    }
    return err_set(err, DUET_ERR_INPUT,
                   "the CA passphrase is needed: give --passphrase-file F or set "
                   "DUET_CA_PASSPHRASE");
}

/* Open the CA, with its signing key when `signing` is set; see cli.h. */
int
cli_open_ca(const char *dir, bool signing, const char *passphrase_file, struct ca **out,
            struct duet_err *err)
{
    char *pass = NULL;
    int rc;

    *out = NULL;
    if (dir == NULL)
        return err_set(err, DUET_ERR_INPUT, "--ca-dir DIR is required");
    if (signing && (cli_protect_secrets(err) != 0 ||
                    cli_passphrase(passphrase_file, &pass, err) != 0))
        return -1;
    rc = ca_open(dir, pass, out, err);
    fileio_free_secret(pass);
    return rc;
}

/* Print a message for an error and return the exit status it maps to. */
int
cli_fail(const char *cmd, const struct duet_err *err)
{
    fprintf(stderr, "%s: ", cmd);
    cli_put_text(stderr, err->msg);
    fputc('\n', stderr);
    return EXIT_INVALID;
}

/* Name an option getopt_long refused, without its value; see cli.h. */
void
cli_bad_option(const char *cmd, int c, char *const *argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : NULL;
    char *name = arg != NULL ? strndup(arg, strcspn(arg, "=")) : NULL;

    fprintf(stderr, "%s: ", cmd);
    cli_put_text(stderr, name != NULL ? name : "an option");
    fprintf(stderr, " %s\n", c == ':' ? "needs a value" : "is not an option of this command");
    free(name);
}

/* Visible ASCII and space as is, other bytes as \xNN; see cli.h. */
void
cli_put_text(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++) {
        if (*p >= 0x20 && *p < 0x7f)
            fputc(*p, out);
        else
            fprintf(out, "\\x%02x", *p);
    }
}

/* cli_put_text into a new string; see cli.h. */
char *
cli_text(const char *s)
{
    size_t n = 1;
    char *out, *o;

    if (s == NULL)
        s = "";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p >= 0x20 && *p < 0x7f) ? 1 : 4;
    if ((out = malloc(n)) == NULL)
        return NULL;
    o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f) {
            *o++ = (char)*p;
        } else {
            snprintf(o, 5, "\\x%02x", *p);
            o += 4;
        }
    }
    *o = '\0';
    return out;
}

/* No core dump, not dumpable; see cli.h. */
int
cli_protect_secrets(struct duet_err *err)
{
    const struct rlimit none = {0, 0};

    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return err_set(err, DUET_ERR_INTERNAL,
                       "cannot turn core dumps off (RLIMIT_CORE) before the CA key is decrypted: "
                       "%s",
                       strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return err_set(err, DUET_ERR_INTERNAL,
                       "cannot make the process non-dumpable (PR_SET_DUMPABLE) before the CA key "
                       "is decrypted: %s",
                       strerror(errno));
    return 0;
}

/* The --format option; see cli.h. */
bool
cli_format(const char *cmd, const char *text, bool *json)
{
    if (text == NULL || strcmp(text, "text") == 0) {
        *json = false;
        return true;
    }
    if (strcmp(text, "json") == 0) {
        *json = true;
        return true;
    }
    fprintf(stderr, "%s: --format \"", cmd);
    cli_put_text(stderr, text);
    fprintf(stderr, "\": expected text or json\n");
    return false;
}

/* A duration option that must be positive; see cli.h. */
bool
cli_positive_duration(const char *cmd, const char *name, const char *text, const char *examples,
                      int64_t *out)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};

    if (duration_parse(text, out, &err) == 0 && *out > 0)
        return true;
    fprintf(stderr, "%s: %s \"", cmd, name);
    cli_put_text(stderr, text);
    fprintf(stderr, "\": expected a positive duration such as %s\n", examples);
    return false;
}
