/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert.c - `duet cert inspect` and `duet cert verify`.
 *
 * verify follows the contract of DESIGN.md: exit 0 valid, 1 invalid with a
 * one-line reason on stderr, 2 usage error or unreadable input.  inspect
 * exits 0, or 2 when a file cannot be read; it shows every file it can.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "duet.h"
#include "lib/err.h"
#include "lib/fileio.h"
#include "lib/inspect.h"
#include "lib/load.h"
#include "lib/x509util.h"

static void
cert_usage(FILE *out)
{
    fprintf(out, "usage: duet cert inspect [--format text|json] [--password-file F] FILE...\n"
                 "       duet cert verify --trusted ROOTS.pem [options] LEAF.pem\n"
                 "       duet cert issue NAME --profile P --ca-dir DIR --out OUTDIR [options]\n"
                 "       duet cert sign CSR --profile P --ca-dir DIR --out FILE [options]\n"
                 "       duet cert list --ca-dir DIR [filters] [--format table|json|csv]\n"
                 "       duet cert show SERIAL|CERTFILE --ca-dir DIR [--format text|json]\n"
                 "       duet cert renew SERIAL|CERTFILE --ca-dir DIR --out OUTDIR [--reuse-key]\n"
                 "       duet cert revoke SERIAL|CERTFILE --ca-dir DIR [--reason R]\n"
                 "       duet cert export --cert F --key F --format pem|der|p12 [--legacy] --out F\n"
                 "       duet cert expiring --ca-dir DIR --within 30d [--format prometheus]\n");
}

static void
verify_usage(FILE *out)
{
    fprintf(out,
            "usage: duet cert verify --trusted ROOTS.pem [--untrusted CHAIN.pem]...\n"
            "                        [--purpose server|client] [--name HOSTNAME_OR_IP]\n"
            "                        [--at RFC3339_TIME] [--crl CRL.pem]... [--crl-scope chain|leaf]\n"
            "                        [--max-depth N] [--password-file F] LEAF.pem\n"
            "exit 0 valid, 1 invalid (reason on stderr), 2 usage error or unreadable input\n");
}

static void
inspect_usage(FILE *out)
{
    fprintf(out, "usage: duet cert inspect [--format text|json] [--password-file F] FILE...\n"
                 "Reads PEM, DER and PKCS#12 certificates and chains, CSRs, CRLs and keys.\n");
}

/* `duet cert <sub>` dispatch. */
int
cmd_cert(int argc, char **argv)
{
    if (argc < 2) {
        cert_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "inspect") == 0)
        return cmd_cert_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_cert_verify(argc - 1, argv + 1);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {{"issue", cmd_cert_issue},   {"sign", cmd_cert_sign},
                {"list", cmd_cert_list},     {"show", cmd_cert_show},
                {"renew", cmd_cert_renew},   {"revoke", cmd_cert_revoke},
                {"export", cmd_cert_export}, {"expiring", cmd_cert_expiring}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        cert_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet cert: unknown subcommand \"%s\"\n", argv[1]);
    cert_usage(stderr);
    return EXIT_USAGE;
}

enum { OPT_TRUSTED = 256, OPT_UNTRUSTED, OPT_PURPOSE, OPT_NAME, OPT_AT, OPT_CRL, OPT_CRL_SCOPE,
       OPT_MAX_DEPTH, OPT_PASSWORD_FILE, OPT_FORMAT, OPT_HELP };

/* Report a verifier error and map it to the exit status of the contract. */
static int
verifier_fail(struct duet_verifier *v)
{
    const char *msg = duet_verifier_error(v);

    /* The reason quotes names from the certificate: escaped for the terminal. */
    cli_put_text(stderr, msg != NULL ? msg : "verification failed");
    fputc('\n', stderr);
    return duet_verifier_error_kind(v) == DUET_ERR_INVALID ? EXIT_INVALID : EXIT_USAGE;
}

/*
 * `duet cert verify`.  Files are loaded in the order given; any unreadable
 * one ends the command with exit 2 before verification starts.
 */
int
cmd_cert_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trusted", required_argument, NULL, OPT_TRUSTED},
        {"untrusted", required_argument, NULL, OPT_UNTRUSTED},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"name", required_argument, NULL, OPT_NAME},
        {"at", required_argument, NULL, OPT_AT},
        {"crl", required_argument, NULL, OPT_CRL},
        {"crl-scope", required_argument, NULL, OPT_CRL_SCOPE},
        {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    struct duet_verifier *v = duet_verifier_new();
    const char **trusted = calloc((size_t)argc, sizeof(char *));
    const char **untrusted = calloc((size_t)argc, sizeof(char *));
    const char **crls = calloc((size_t)argc, sizeof(char *));
    const char *password_file = NULL;
    int ntrusted = 0, nuntrusted = 0, ncrls = 0;
    int rc = EXIT_USAGE;
    int c;

    if (v == NULL || trusted == NULL || untrusted == NULL || crls == NULL) {
        fprintf(stderr, "duet cert verify: out of memory\n");
        goto out;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_TRUSTED:
            trusted[ntrusted++] = optarg;
            break;
        case OPT_UNTRUSTED:
            untrusted[nuntrusted++] = optarg;
            break;
        case OPT_CRL:
            crls[ncrls++] = optarg;
            break;
        case OPT_PASSWORD_FILE:
            password_file = optarg;
            break;
        case OPT_PURPOSE:
            if (strcmp(optarg, "server") == 0) {
                (void)duet_verifier_set_purpose(v, DUET_PURPOSE_SERVER);
            } else if (strcmp(optarg, "client") == 0) {
                (void)duet_verifier_set_purpose(v, DUET_PURPOSE_CLIENT);
            } else {
                fprintf(stderr, "duet cert verify: --purpose \"%s\": expected server or client\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_NAME:
            if (duet_verifier_set_name(v, optarg) != 0) {
                fprintf(stderr, "duet cert verify: --name: %s\n", duet_verifier_error(v));
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_AT: {
            int64_t t;
            if (!x509u_parse_time(optarg, &t)) {
                fprintf(stderr,
                        "duet cert verify: --at \"%s\": expected an RFC 3339 time such as "
                        "2026-10-01T12:00:00Z\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            (void)duet_verifier_set_time(v, t);
            break;
        }
        case OPT_CRL_SCOPE:
            if (strcmp(optarg, "chain") == 0) {
                (void)duet_verifier_set_crl_scope(v, DUET_CRL_CHAIN);
            } else if (strcmp(optarg, "leaf") == 0) {
                (void)duet_verifier_set_crl_scope(v, DUET_CRL_LEAF);
            } else {
                fprintf(stderr, "duet cert verify: --crl-scope \"%s\": expected chain or leaf\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        case OPT_MAX_DEPTH: {
            char *end = NULL;
            long d = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || duet_verifier_set_max_depth(v, (int)d) != 0 ||
                d < 0 || d > 32) {
                fprintf(stderr, "duet cert verify: --max-depth \"%s\": expected 0 to 32\n",
                        optarg);
                verify_usage(stderr);
                goto out;
            }
            break;
        }
        case OPT_HELP:
            verify_usage(stdout);
            rc = EXIT_OK;
            goto out;
        case ':':
            fprintf(stderr, "duet cert verify: %s needs a value\n", argv[optind - 1]);
            verify_usage(stderr);
            goto out;
        default:
            fprintf(stderr, "duet cert verify: unknown option %s\n", argv[optind - 1]);
            verify_usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, optind >= argc ? "duet cert verify: no certificate to verify was given\n"
                                       : "duet cert verify: exactly one certificate file is "
                                         "verified at a time\n");
        verify_usage(stderr);
        goto out;
    }
    if (ntrusted == 0) {
        fprintf(stderr, "duet cert verify: --trusted ROOTS.pem is required\n");
        verify_usage(stderr);
        goto out;
    }
    if (password_file != NULL && duet_verifier_set_password_file(v, password_file) != 0) {
        rc = verifier_fail(v);
        goto out;
    }
    for (int i = 0; i < ntrusted; i++) {
        if (duet_verifier_add_trusted_file(v, trusted[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    for (int i = 0; i < nuntrusted; i++) {
        if (duet_verifier_add_untrusted_file(v, untrusted[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    for (int i = 0; i < ncrls; i++) {
        if (duet_verifier_add_crl_file(v, crls[i]) != 0) {
            rc = verifier_fail(v);
            goto out;
        }
    }
    if (duet_verifier_verify_file(v, argv[optind]) != 0) {
        rc = verifier_fail(v);
        goto out;
    }
    {
        const struct duet_identity *id = duet_verifier_identity(v);
        printf("valid: ");
        cli_put_text(stdout, duet_identity_name(id));
        printf(" (subject ");
        cli_put_text(stdout, duet_identity_subject(id));
        printf(", serial ");
        cli_put_text(stdout, duet_identity_serial(id));
        printf(")\n");
    }
    rc = EXIT_OK;
out:
    free(trusted);
    free(untrusted);
    free(crls);
    duet_verifier_free(v);
    return rc;
}

/* `duet cert inspect`: every file is shown; any unreadable one makes the exit 2. */
int
cmd_cert_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    char *password = NULL;
    bool json = false;
    json_t *all = NULL;
    int rc = EXIT_USAGE;
    int c;

    err_clear(&err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0) {
                json = true;
            } else if (strcmp(optarg, "text") == 0) {
                json = false;
            } else {
                fprintf(stderr, "duet cert inspect: --format \"%s\": expected text or json\n",
                        optarg);
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
        case ':':
            fprintf(stderr, "duet cert inspect: %s needs a value\n", argv[optind - 1]);
            inspect_usage(stderr);
            goto out;
        default:
            fprintf(stderr, "duet cert inspect: unknown option %s\n", argv[optind - 1]);
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
