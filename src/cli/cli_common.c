/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_common.c - what several subcommands share: the CA passphrase, opening
 * a CA directory, reporting errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lib/fileio.h"

/* The CA passphrase from --passphrase-file, else DUET_CA_PASSPHRASE; see cli.h. */
int
cli_passphrase(const char *file, char **out, struct duet_err *err)
{
    const char *env = getenv("DUET_CA_PASSPHRASE");

    *out = NULL;
    if (file != NULL) {
        struct stat st;
        if (stat(file, &st) == 0 && (st.st_mode & 077) != 0)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: the passphrase file is readable by group or others (mode %03o); "
                           "fix with: chmod 600 %s",
                           file, (unsigned)(st.st_mode & 0777), file);
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
    if (signing && cli_passphrase(passphrase_file, &pass, err) != 0)
        return -1;
    rc = ca_open(dir, pass, out, err);
    fileio_free_secret(pass);
    return rc;
}

/* Print a message for an error and return the exit status it maps to. */
int
cli_fail(const char *cmd, const struct duet_err *err)
{
    fprintf(stderr, "%s: %s\n", cmd, err->msg);
    return EXIT_INVALID;
}
