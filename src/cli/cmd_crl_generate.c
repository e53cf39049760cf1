/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_crl_generate.c - `duet crl` and its one subcommand, `duet crl
 * generate`: the issuing CA's CRL (followed by the root CRL in PEM), or with
 * --root a renewed root CRL signed with the root key.  Exit 0 on success, 1
 * when it fails or is refused (nothing is written then), 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/pemout.h"
#include "lib/x509util.h"

enum { O_CA_DIR = 300, O_OUT, O_DER, O_NEXT_UPDATE, O_PASSPHRASE_FILE, O_HELP, O_ROOT, O_ROOT_KEY };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory"},
    {{"out", required_argument, NULL, O_OUT},
     "FILE",
     "where the CRL goes (with --root: default DIR/root.crl)"},
    {{"der", no_argument, NULL, O_DER}, NULL, "the issuing CA's CRL alone, DER"},
    {{"next-update", required_argument, NULL, O_NEXT_UPDATE},
     "D",
     "when the next CRL is due (default 24h; 8760h with --root)"},
    {{"passphrase-file", required_argument, NULL, O_PASSPHRASE_FILE},
     "F",
     "the CA passphrase's file (else DUET_CA_PASSPHRASE)"},
    {{"root", no_argument, NULL, O_ROOT}, NULL, "renew the root's CRL with the root key"},
    {{"root-key", required_argument, NULL, O_ROOT_KEY},
     "F",
     "the root key, kept offline (with --root)"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};

static void
crl_usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet crl generate --ca-dir DIR --out FILE [--der] [--next-update 24h]\n"
        "                         [--passphrase-file F]\n"
        "       duet crl generate --root --ca-dir DIR [--root-key F] [--next-update 8760h]\n"
        "                         [--out FILE] [--passphrase-file F]\n"
        "The first form writes the issuing CA's CRL followed by the root CRL (PEM) or the\n"
        "issuing CA's CRL alone (--der).  --root renews DIR/root.crl with the root key.\n",
        flags, CLI_NFLAGS(flags));
}

/* CRLs to a file: PEM (issuing, then root when given) or DER (issuing alone). */
static int
write_crls(const char *path, X509_CRL *issuing, X509_CRL *root, bool der, struct duet_err *err)
{
    X509_CRL *crls[2] = {issuing, root};

    return pemout_crls(path, crls, root != NULL ? 2 : 1, der, err);
}

/* `duet crl generate`; see crl_usage(). */
static int
crl_generate_cmd(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL, *out = NULL, *pass_file = NULL, *root_key = NULL;
    bool der = false, root = false, validity_given = false;
    int64_t validity = 24 * 3600;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    X509_CRL *crl = NULL, *root_crl = NULL;
    int rc = EXIT_USAGE;
    int c;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CA_DIR:
            dir = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_DER:
            der = true;
            break;
        case O_PASSPHRASE_FILE:
            pass_file = optarg;
            break;
        case O_ROOT:
            root = true;
            break;
        case O_ROOT_KEY:
            root_key = optarg;
            break;
        case O_NEXT_UPDATE:
            validity_given = true;
            if (duration_parse(optarg, &validity, &err) != 0 || validity <= 0) {
                fprintf(stderr,
                        "duet crl generate: --next-update \"%s\": expected a duration such as 24h "
                        "or 7d\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case O_HELP:
            crl_usage(stdout);
            return EXIT_OK;
        default:
            cli_bad_option("duet crl generate", c, argv);
            crl_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (root) {
        char *pass = NULL;
        if (dir == NULL || optind != argc || der) {
            fprintf(stderr,
                    "duet crl generate --root: --ca-dir DIR is required; --der does not apply\n");
            crl_usage(stderr);
            return EXIT_USAGE;
        }
        if (!validity_given)
            validity = 365 * 86400LL;
        if (cli_protect_secrets(&err) != 0 || cli_passphrase(pass_file, &pass, &err) != 0 ||
            cli_open_ca(dir, false, NULL, &ca, &err) != 0 ||
            ca_root_crl_renew(ca, root_key, pass, (int64_t)time(NULL), validity, &root_crl, &err) !=
                0 ||
            (out != NULL && write_crls(out, root_crl, NULL, false, &err) != 0)) {
            fileio_free_secret(pass);
            rc = cli_fail("duet crl generate", &err);
            goto done;
        }
        fileio_free_secret(pass);
        {
            char nu[32];
            x509u_fmt_rfc3339((int64_t)time(NULL) + validity, nu, sizeof(nu));
            printf("renewed %s/%s: root CRL, next update %s\n", dir, CA_FILE_ROOT_CRL, nu);
        }
        rc = EXIT_OK;
        goto done;
    }
    if (root_key != NULL) {
        fprintf(stderr, "duet crl generate: --root-key goes with --root\n");
        return EXIT_USAGE;
    }
    if (dir == NULL || out == NULL || optind != argc) {
        fprintf(stderr, "duet crl generate: --ca-dir DIR and --out FILE are required\n");
        crl_usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_open_ca(dir, true, pass_file, &ca, &err) != 0 ||
        (!der && ca_root_crl(ca, &root_crl, &err) != 0) ||
        ca_crl(ca, (int64_t)time(NULL), validity, &crl, &err) != 0 ||
        write_crls(out, crl, root_crl, der, &err) != 0) {
        rc = cli_fail("duet crl generate", &err);
        goto done;
    }
    {
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        char nu[32];
        x509u_fmt_rfc3339((int64_t)time(NULL) + validity, nu, sizeof(nu));
        printf("wrote %s: CRL of %s with %d revoked certificate%s, next update %s%s\n", out,
               ca_config(ca)->name, revs ? sk_X509_REVOKED_num(revs) : 0,
               (revs && sk_X509_REVOKED_num(revs) == 1) ? "" : "s", nu,
               der ? "" : ", followed by the root CRL");
    }
    if (root_crl != NULL) {
        int64_t nu = 0;
        if (x509u_time(X509_CRL_get0_nextUpdate(root_crl), &nu) &&
            nu - (int64_t)time(NULL) < 30 * 86400LL) {
            char when[32];
            x509u_fmt_rfc3339(nu, when, sizeof(when));
            fprintf(stderr,
                    "duet crl generate: warning: the root CRL in the bundle expires %s; renew it "
                    "with duet crl generate --root --ca-dir %s\n",
                    when, dir);
        }
    }
    rc = EXIT_OK;
done:
    X509_CRL_free(crl);
    X509_CRL_free(root_crl);
    ca_close(ca);
    return rc;
}

/* `duet crl <sub>`. */
int
cmd_crl(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "generate") == 0)
        return crl_generate_cmd(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        crl_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet crl: expected generate\n");
    crl_usage(stderr);
    return EXIT_USAGE;
}
