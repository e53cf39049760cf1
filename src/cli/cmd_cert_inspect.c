/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_inspect.c - `duet cert inspect`: every certificate, chain, CSR,
 * CRL and key in the files given, as text (render.c) or JSON (the model of
 * inspect_bundle()).  Exit 0, or 2 when a file cannot be read; every file
 * that can be read is shown.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/fileio.h"
#include "lib/inspect.h"
#include "lib/load.h"

enum { OPT_PASSWORD_FILE = 256, OPT_FORMAT, OPT_HELP };

static const struct cli_flag flags[] = {
    {{"format", required_argument, NULL, OPT_FORMAT},
     "text|json",
     "the output format (default text)"},
    {{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
     "F",
     "the password of PKCS#12 files and encrypted keys (first line)"},
    {{"help", no_argument, NULL, OPT_HELP}, NULL, "print this help"},
};

static void
inspect_usage(FILE *out)
{
    cli_flags_help(out,
                   "usage: duet cert inspect [--format text|json] [--password-file F] FILE...\n"
                   "Reads PEM, DER and PKCS#12 certificates and chains, CSRs, CRLs and keys;\n"
                   "a FILE written https://HOST:PORT or HOST:PORT (no such file) is the chain\n"
                   "that server sends.\n",
                   flags, CLI_NFLAGS(flags));
}

/*
 * The chain a live endpoint sends, as the model of a file: "file" is the
 * endpoint as given, "format" is "TLS"; NULL with the reason in err.
 */
static json_t *
inspect_endpoint(const char *target, struct duet_err *err)
{
    struct load_bundle b;
    char *host = NULL;
    json_t *f;

    memset(&b, 0, sizeof(b));
    b.format = LOAD_PEM;
    if (cli_fetch_chain(target, 10000, &b.certs, &host, err) != 0)
        return NULL;
    free(host);
    f = inspect_bundle(target, &b, (int64_t)time(NULL));
    load_bundle_clear(&b);
    if (f == NULL) {
        err_nomem(err);
        return NULL;
    }
    json_object_set_new(f, "format", json_string("TLS"));
    return f;
}

/* `duet cert inspect`: every file is shown; any unreadable one makes the exit 2. */
int
cmd_cert_inspect(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct duet_err err = {.kind = DUET_ERR_NONE};
    char *password = NULL;
    bool json = false;
    json_t *all = NULL;
    int rc = EXIT_USAGE;
    int c;

    err_clear(&err);
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (!cli_format("duet cert inspect", optarg, &json)) {
                goto out;
            }
            break;
        case OPT_PASSWORD_FILE:
            if (password != NULL)
                fileio_free_secret(password);
            if (fileio_read_secret(optarg, &password, &err) != 0) {
                fprintf(stderr, "%s\n", err.msg);
                goto out;
            }
            break;
        case OPT_HELP:
            inspect_usage(stdout);
            rc = EXIT_OK;
            goto out;
        default: /* ':' too */
            cli_bad_option("duet cert inspect", c, argv);
            inspect_usage(stderr);
            goto out;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "duet cert inspect: no file was given\n");
        inspect_usage(stderr);
        goto out;
    }
    all = json_array();
    if (all == NULL) {
        fprintf(stderr, "duet cert inspect: out of memory\n");
        goto out;
    }
    rc = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct load_bundle b;
        json_t *f;

        if (cli_is_endpoint(argv[i])) {
            f = inspect_endpoint(argv[i], &err);
            if (f == NULL) {
                cli_put_text(stderr, err.msg);
                fputc('\n', stderr);
                rc = EXIT_USAGE;
                continue;
            }
            if (json) {
                json_array_append_new(all, f);
            } else {
                render_inspect_text(stdout, f);
                json_decref(f);
            }
            continue;
        }
        if (load_bundle_file(argv[i], password, &b, &err) != 0) {
            cli_put_text(stderr, err.msg);
            fputc('\n', stderr);
            load_bundle_clear(&b);
            rc = EXIT_USAGE;
            continue;
        }
        f = inspect_bundle(argv[i], &b, (int64_t)time(NULL));
        load_bundle_clear(&b);
        if (f == NULL) {
            fprintf(stderr, "%s: out of memory\n", argv[i]);
            rc = EXIT_USAGE;
            continue;
        }
        if (json) {
            json_array_append_new(all, f);
        } else {
            render_inspect_text(stdout, f);
            json_decref(f);
        }
    }
    if (json) {
        /* ASCII only: names from certificates reach the terminal as \uXXXX, never raw. */
        json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    }
out:
    json_decref(all);
    fileio_free_secret(password);
    return rc;
}
