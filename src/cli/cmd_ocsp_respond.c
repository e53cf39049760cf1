/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ocsp_respond.c - `duet ocsp` and its one subcommand, `duet ocsp
 * respond`: answer one DER OCSP request from a file with the CA's responder
 * (src/ca/ocsp.c), offline - for stapling on hosts that cannot reach the CA,
 * and to check the responder before it is served.  The delegated OCSP signer
 * is made, or renewed, on the way.  Exit 0 when a successful response was
 * written, 1 when the response written has another status (the reason on
 * stderr) or nothing could be written, 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ocsp.h"
#include "cli/cli.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/x509util.h"

enum { O_CA_DIR = 300, O_REQUEST, O_OUT, O_VALIDITY, O_SIGNER_TTL, O_PASSPHRASE_FILE, O_HELP };

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory"},
    {{"request", required_argument, NULL, O_REQUEST}, "REQ.der", "the OCSP request (DER)"},
    {{"out", required_argument, NULL, O_OUT}, "RESP.der", "where the answer goes (DER)"},
    {{"validity", required_argument, NULL, O_VALIDITY},
     "D",
     "how long the answer is valid (default 1h)"},
    {{"signer-ttl", required_argument, NULL, O_SIGNER_TTL},
     "D",
     "the lifetime of the delegated OCSP signer when one is issued (default 7d)"},
    {{"passphrase-file", required_argument, NULL, O_PASSPHRASE_FILE},
     "F",
     "the CA passphrase's file (else DUET_CA_PASSPHRASE)"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};

static void
ocsp_usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet ocsp respond --ca-dir DIR --request REQ.der --out RESP.der\n"
        "                         [--validity 1h] [--signer-ttl 7d] [--passphrase-file F]\n"
        "Answers one DER OCSP request (RFC 6960) from the inventory, signed by the CA's\n"
        "delegated OCSP signer, which is issued or renewed first when needed.\n",
        flags, CLI_NFLAGS(flags));
}

/* `duet ocsp respond`; see ocsp_usage(). */
static int
ocsp_respond_cmd(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    const char *dir = NULL, *req_path = NULL, *out = NULL, *pass_file = NULL;
    int64_t validity = CA_OCSP_VALIDITY, signer_ttl = CA_OCSP_SIGNER_TTL;
    int64_t now = (int64_t)time(NULL);
    struct duet_err err = {.kind = DUET_ERR_NONE}, rerr = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct ca_ocsp_signer *signer = NULL;
    struct ca_ocsp_summary sum;
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;
    bool issued = false;
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
        case O_REQUEST:
            req_path = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_PASSPHRASE_FILE:
            pass_file = optarg;
            break;
        case O_VALIDITY:
            if (!cli_positive_duration("duet ocsp respond", "--validity", optarg, "1h or 7d",
                                       &validity))
                return EXIT_USAGE;
            break;
        case O_SIGNER_TTL:
            if (!cli_positive_duration("duet ocsp respond", "--signer-ttl", optarg, "1h or 7d",
                                       &signer_ttl))
                return EXIT_USAGE;
            break;
        case O_HELP:
            ocsp_usage(stdout);
            return EXIT_OK;
        default:
            cli_bad_option("duet ocsp respond", c, argv);
            ocsp_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || req_path == NULL || out == NULL || optind != argc) {
        fprintf(stderr, "duet ocsp respond: --ca-dir DIR, --request FILE and --out FILE are "
                        "required\n");
        ocsp_usage(stderr);
        return EXIT_USAGE;
    }
    if (fileio_read(req_path, &req, &req_len, &err) != 0 ||
        cli_open_ca(dir, true, pass_file, &ca, &err) != 0 ||
        ca_ocsp_signer_ensure(ca, now, signer_ttl, &signer, &issued, &err) != 0) {
        rc = cli_fail("duet ocsp respond", &err);
        goto out;
    }
    if (issued) {
        X509 *sc = ca_ocsp_signer_cert(signer);
        char *serial = x509u_serial(X509_get0_serialNumber(sc));
        char until[32] = "?";
        int64_t na = 0;
        if (x509u_time(X509_get0_notAfter(sc), &na))
            x509u_fmt_rfc3339(na, until, sizeof(until));
        printf("issued the OCSP signer (serial %s), valid until %s, recorded in the inventory as "
               "profile %s\n",
               serial != NULL ? serial : "?", until, CA_PROFILE_OCSP_SIGNER);
        free(serial);
    }
    if (ca_ocsp_respond(ca, signer, req, req_len, now, validity, &resp, &resp_len, &sum, &rerr) !=
            0 ||
        fileio_write_atomic(out, resp, resp_len, 0644, &err) != 0) {
        /* No response: ca_ocsp_respond's reason; else the write's. */
        rc = cli_fail("duet ocsp respond", resp == NULL ? &rerr : &err);
        goto out;
    }
    printf("wrote %s: %s", out, ca_ocsp_status_name(sum.status));
    if (sum.status == 0) {
        char nu[32];
        x509u_fmt_rfc3339(sum.next_update, nu, sizeof(nu));
        printf(", %zu good, %zu revoked, %zu unknown, %s, next update %s", sum.good, sum.revoked,
               sum.unknown, sum.nonce ? "nonce echoed" : "no nonce", nu);
    }
    printf("\n");
    if (sum.status != 0) {
        rc = cli_fail("duet ocsp respond", &rerr);
        goto out;
    }
    rc = EXIT_OK;
out:
    free(req);
    free(resp);
    ca_ocsp_signer_free(signer);
    ca_close(ca);
    return rc;
}

/* `duet ocsp <sub>`. */
int
cmd_ocsp(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "respond") == 0)
        return ocsp_respond_cmd(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        ocsp_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "duet ocsp: expected respond\n");
    ocsp_usage(stderr);
    return EXIT_USAGE;
}
