/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_serve.c - `duet ca serve`: run the CA of a directory as a network
 * service (src/caserver, docs/ca-server.md).  The options are read, core
 * dumps are turned off and the issuing key decrypted once, then the server
 * runs until SIGTERM.  Exit 0 after a clean stop, 1 when it cannot start,
 * 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/ocsp.h"
#include "caserver/caserver.h"
#include "cli/cli.h"
#include "lib/duration.h"
#include "util/log.h"

enum {
    O_CA_DIR = 300,
    O_LISTEN,
    O_HTTP_LISTEN,
    O_LOG,
    O_LOG_LEVEL,
    O_SERVER_NAME,
    O_ADMIN,
    O_CRL_VALIDITY,
    O_OCSP_VALIDITY,
    O_OCSP_CACHE_AGE,
    O_MAX_BODY,
    O_MAX_CONNECTIONS,
    O_PASSPHRASE_FILE,
    O_PUBLIC_URL,
    O_HELP
};

/* Most --server-name and --admin-identity options. */
#define MAX_REPEAT 32

static const char serve_usage[] =
    "usage: duet ca serve --ca-dir DIR --listen ADDR:PORT [--http-listen ADDR:PORT]\n"
    "                     [--server-name NAME]... [--admin-identity PATTERN]...\n"
    "                     [--public-url http://HOST:PORT] [--crl-validity 24h]\n"
    "                     [--ocsp-validity 1h] [--ocsp-cache-age 60s] [--max-body 65536]\n"
    "                     [--max-connections 1024] [--log FILE] [--log-level info]\n"
    "                     [--passphrase-file F]\n"
    "Serves enrollment, renewal, revocation, the CRL, the roots and OCSP (docs/ca-server.md).\n"
    "The passphrase comes from --passphrase-file, DUET_CA_PASSPHRASE_FILE or "
    "DUET_CA_PASSPHRASE.\n";

static const struct cli_flag flags[] = {
    {{"ca-dir", required_argument, NULL, O_CA_DIR}, "DIR", "the CA directory"},
    {{"listen", required_argument, NULL, O_LISTEN},
     "ADDR:PORT",
     "the mTLS listener (enrollment, renewal, admin)"},
    {{"http-listen", required_argument, NULL, O_HTTP_LISTEN},
     "ADDR:PORT",
     "a plain HTTP listener for the CRL, the roots and OCSP"},
    {{"log", required_argument, NULL, O_LOG}, "FILE", "the JSON-lines log (default stderr)"},
    {{"log-level", required_argument, NULL, O_LOG_LEVEL},
     "debug|info|warn|error",
     "the least severity logged (default info)"},
    {{"server-name", required_argument, NULL, O_SERVER_NAME},
     "NAME",
     "a name in the server's certificate; repeat for several"},
    {{"admin-identity", required_argument, NULL, O_ADMIN},
     "PATTERN",
     "a client identity allowed to revoke and administer; repeat for several"},
    {{"crl-validity", required_argument, NULL, O_CRL_VALIDITY},
     "D",
     "how long each CRL served is valid (default 24h)"},
    {{"ocsp-validity", required_argument, NULL, O_OCSP_VALIDITY},
     "D",
     "how long each OCSP answer is valid (default 1h)"},
    {{"ocsp-cache-age", required_argument, NULL, O_OCSP_CACHE_AGE},
     "D",
     "how long a signed OCSP answer is reused (default 60s)"},
    {{"max-body", required_argument, NULL, O_MAX_BODY},
     "BYTES",
     "the largest request body (default 65536)"},
    {{"max-connections", required_argument, NULL, O_MAX_CONNECTIONS},
     "N",
     "connections open at once (default 1024)"},
    {{"passphrase-file", required_argument, NULL, O_PASSPHRASE_FILE},
     "F",
     "the CA passphrase's file (else DUET_CA_PASSPHRASE_FILE or DUET_CA_PASSPHRASE)"},
    {{"public-url", required_argument, NULL, O_PUBLIC_URL},
     "http://HOST:PORT",
     "the address written into certificates for the CRL and OCSP"},
    {{"help", no_argument, NULL, O_HELP}, NULL, "print this help"},
};

/* Add a repeated option's value; false after printing the usage error. */
static bool
push(const char *name, const char **v, size_t *n, const char *value)
{
    if (*n == MAX_REPEAT) {
        fprintf(stderr, "duet ca serve: at most %d %s options\n", MAX_REPEAT, name);
        return false;
    }
    v[(*n)++] = value;
    return true;
}

/* `duet ca serve`; see serve_usage. */
int
cmd_ca_serve(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct caserver_opts so = {.crl_validity = CASERVER_CRL_VALIDITY,
                               .ocsp_validity = CA_OCSP_VALIDITY,
                               .ocsp_cache_age = CA_OCSP_CACHE_AGE,
                               .max_body = CASERVER_MAX_BODY,
                               .max_connections = CASERVER_MAX_CONNECTIONS};
    const char *names[MAX_REPEAT], *admins[MAX_REPEAT];
    const char *dir = NULL, *log_path = NULL, *level = NULL, *pass_file = NULL;
    char host[256];
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    char *end = NULL;
    unsigned long long mb;
    int rc = EXIT_USAGE, c;

    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CA_DIR:
            dir = optarg;
            break;
        case O_LISTEN:
            so.listen = optarg;
            break;
        case O_HTTP_LISTEN:
            so.http_listen = optarg;
            break;
        case O_LOG:
            log_path = optarg;
            break;
        case O_LOG_LEVEL:
            level = optarg;
            break;
        case O_PASSPHRASE_FILE:
            pass_file = optarg;
            break;
        case O_PUBLIC_URL:
            so.public_url = optarg;
            break;
        case O_SERVER_NAME:
            if (!push("--server-name", names, &so.nserver_names, optarg))
                return EXIT_USAGE;
            break;
        case O_ADMIN:
            if (!push("--admin-identity", admins, &so.nadmin_ids, optarg))
                return EXIT_USAGE;
            break;
        case O_CRL_VALIDITY:
            if (!cli_positive_duration("duet ca serve", "--crl-validity", optarg, "1h or 24h",
                                       &so.crl_validity))
                return EXIT_USAGE;
            break;
        case O_OCSP_VALIDITY:
            if (!cli_positive_duration("duet ca serve", "--ocsp-validity", optarg, "1h or 24h",
                                       &so.ocsp_validity))
                return EXIT_USAGE;
            break;
        case O_OCSP_CACHE_AGE:
            /* Short by design: a reused answer's thisUpdate is as old as this. */
            if (duration_parse(optarg, &so.ocsp_cache_age, &err) != 0 || so.ocsp_cache_age < 0 ||
                so.ocsp_cache_age > CASERVER_OCSP_CACHE_AGE_MAX) {
                fprintf(stderr, "duet ca serve: --ocsp-cache-age \"");
                cli_put_text(stderr, optarg);
                fprintf(stderr, "\": expected a duration from 0s (answers never reused) to 5m\n");
                return EXIT_USAGE;
            }
            break;
        case O_MAX_BODY:
            mb = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || mb < 1024 || mb > 16u * 1024 * 1024) {
                fprintf(stderr, "duet ca serve: --max-body \"");
                cli_put_text(stderr, optarg);
                fprintf(stderr, "\": expected a number of bytes from 1024 to 16777216\n");
                return EXIT_USAGE;
            }
            so.max_body = (size_t)mb;
            break;
        case O_MAX_CONNECTIONS:
            mb = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-' || mb < 1 || mb > 1000000) {
                fprintf(stderr, "duet ca serve: --max-connections \"");
                cli_put_text(stderr, optarg);
                fprintf(stderr, "\": expected a number of connections from 1 to 1000000\n");
                return EXIT_USAGE;
            }
            so.max_connections = (size_t)mb;
            break;
        case O_HELP:
            cli_flags_help(stdout, serve_usage, flags, CLI_NFLAGS(flags));
            return EXIT_OK;
        default:
            cli_bad_option("duet ca serve", c, argv);
            fputs(serve_usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || so.listen == NULL || optind != argc) {
        fprintf(stderr, "duet ca serve: --ca-dir DIR and --listen ADDR:PORT are required\n");
        fputs(serve_usage, stderr);
        return EXIT_USAGE;
    }
    if (so.nserver_names == 0) {
        if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0' &&
            strcmp(host, "localhost") != 0) {
            host[sizeof(host) - 1] = '\0';
            names[so.nserver_names++] = host;
        }
        names[so.nserver_names++] = "localhost";
    }
    so.server_names = names;
    so.admin_ids = admins;
    if (pass_file == NULL)
        pass_file = getenv("DUET_CA_PASSPHRASE_FILE");
    if (log_open(log_path, &err) != 0 || (level != NULL && log_set_level(level, &err) != 0) ||
        cli_open_ca(dir, true, pass_file, &ca, &err) != 0 || caserver_run(ca, &so, &err) != 0) {
        rc = cli_fail("duet ca serve", &err);
        goto out;
    }
    rc = EXIT_OK;
out:
    ca_close(ca);
    log_close();
    return rc;
}
