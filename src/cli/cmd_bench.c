/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_bench.c - `duet bench`: mTLS load against any endpoint.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "cli/cli.h"
#include "lib/duration.h"

enum {
    B_TARGET = 500,
    B_CERT,
    B_KEY,
    B_CA,
    B_NAME,
    B_MODE,
    B_CONC,
    B_THREADS,
    B_DUR,
    B_WARM,
    B_PATH,
    B_PAYLOAD,
    B_TLS12,
    B_FORMAT,
    B_INSECURE,
    B_STREAMS,
    B_HELP
};

static const struct cli_flag flags[] = {
    {{"target", required_argument, NULL, B_TARGET}, "ADDR:PORT", "the mTLS server to load"},
    {{"cert", required_argument, NULL, B_CERT}, "F", "the client certificate"},
    {{"key", required_argument, NULL, B_KEY}, "F", "the client key"},
    {{"cacert", required_argument, NULL, B_CA}, "ROOTS.pem", "the CAs trusted for the server"},
    {{"server-name", required_argument, NULL, B_NAME}, "NAME", "the name sent (SNI) and checked"},
    {{"mode", required_argument, NULL, B_MODE},
     "full|resume|keepalive|idle|h2",
     "what each connection does (default full)"},
    {{"concurrency", required_argument, NULL, B_CONC}, "N", "connections at once"},
    {{"streams", required_argument, NULL, B_STREAMS}, "N",
     "with --mode h2: requests in flight on each connection (default 100)"},
    {{"threads", required_argument, NULL, B_THREADS}, "N", "worker threads"},
    {{"duration", required_argument, NULL, B_DUR}, "D", "how long to measure (default 10s)"},
    {{"warmup", required_argument, NULL, B_WARM},
     "D",
     "how long to run before measuring (default 2s)"},
    {{"path", required_argument, NULL, B_PATH}, "P", "the path requested (default /)"},
    {{"payload", required_argument, NULL, B_PAYLOAD}, "TEXT", "a request body to send"},
    {{"tls12", no_argument, NULL, B_TLS12}, NULL, "offer TLS 1.2 only"},
    {{"format", required_argument, NULL, B_FORMAT},
     "text|json",
     "the output format (default text)"},
    {{"insecure-key-mode", no_argument, NULL, B_INSECURE},
     NULL,
     "accept a key file readable by group or others (benchmarks only)"},
    {{"help", no_argument, NULL, B_HELP}, NULL, "print this help"},
};

static void
usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet bench --target ADDR:PORT --cert F --key F --cacert ROOTS.pem\n"
        "                  [--server-name NAME] [--mode full|resume|keepalive|idle|h2]\n"
        "                  [--concurrency N] [--streams N] [--threads N] [--duration 10s]\n"
        "                  [--warmup 2s]\n"
        "                  [--path /] [--payload TEXT] [--tls12] [--format text|json]\n"
        "modes: full = new connection, full handshake, one request; resume = TLS 1.3\n"
        "ticket resumption (checked); keepalive = requests on persistent connections;\n"
        "idle = hold N connections open for the duration; h2 = HTTP/2 (ALPN h2), --streams\n"
        "requests (default 100) in flight on each of --concurrency connections.\n"
        "Exit 1 on any error.\n",
        flags, CLI_NFLAGS(flags));
}

int
cmd_bench(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct bench_opts o;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    const char *target = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t secs;
    struct duet_err derr; /* the message names the flag instead */
    int c, rc;

    memset(&o, 0, sizeof(o));
    o.mode = BENCH_FULL;
    o.concurrency = 8;
    o.streams = 100;
    o.threads = ncpu > 0 ? (int)ncpu : 1;
    o.duration_ms = 10000;
    o.warmup_ms = 2000;
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case B_TARGET: target = optarg; break;
        case B_CERT: o.cert = optarg; break;
        case B_KEY: o.key = optarg; break;
        case B_CA: o.cacert = optarg; break;
        case B_NAME: o.server_name = optarg; break;
        case B_PATH: o.path = optarg; break;
        case B_PAYLOAD: o.payload = optarg; break;
        case B_TLS12: o.tls12 = true; break;
        case B_INSECURE: o.insecure_key_mode = true; break;
        case B_MODE:
            if (strcmp(optarg, "full") == 0) o.mode = BENCH_FULL;
            else if (strcmp(optarg, "resume") == 0) o.mode = BENCH_RESUME;
            else if (strcmp(optarg, "keepalive") == 0) o.mode = BENCH_KEEPALIVE;
            else if (strcmp(optarg, "idle") == 0) o.mode = BENCH_IDLE;
            else if (strcmp(optarg, "h2") == 0) o.mode = BENCH_H2;
            else {
                fprintf(stderr, "duet bench: --mode \"%s\": expected full, resume, keepalive, idle or h2\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case B_CONC:
        case B_THREADS: {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > 1000000) {
                fprintf(stderr, "duet bench: %s \"%s\": expected a positive number\n",
                        c == B_CONC ? "--concurrency" : "--threads", optarg);
                return EXIT_USAGE;
            }
            if (c == B_CONC) o.concurrency = (int)n; else o.threads = (int)n;
            break;
        }
        case B_STREAMS: {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > 10000) {
                fprintf(stderr, "duet bench: --streams \"%s\": expected a number from 1 to 10000\n",
                        optarg);
                return EXIT_USAGE;
            }
            o.streams = (int)n;
            break;
        }
        case B_DUR:
        case B_WARM:
            if (duration_parse(optarg, &secs, &derr) != 0 || (c == B_DUR && secs <= 0)) {
                fprintf(stderr, "duet bench: %s \"%s\": expected a duration such as 10s\n",
                        c == B_DUR ? "--duration" : "--warmup", optarg);
                return EXIT_USAGE;
            }
            if (c == B_DUR) o.duration_ms = secs * 1000; else o.warmup_ms = secs * 1000;
            break;
        case B_FORMAT:
            if (!cli_format("duet bench", optarg, &o.json))
                return EXIT_USAGE;
            break;
        case B_HELP:
            usage(stdout);
            return EXIT_OK;
        default:
            cli_bad_option("duet bench", c, argv);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || target == NULL || o.cacert == NULL || (o.cert == NULL) != (o.key == NULL)) {
        fprintf(stderr, "duet bench: --target and --cacert are required; --cert and --key go together\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o.mode == BENCH_H2 && o.payload != NULL) {
        fprintf(stderr, "duet bench: --payload is raw TCP; --mode h2 sends HTTP/2 requests (--path)\n");
        return EXIT_USAGE;
    }
    if (net_addr_parse(target, false, &o.target, &err) != 0) {
        fprintf(stderr, "duet bench: --target: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (o.server_name == NULL) {
        /* The host part of the target. */
        static char host[256];
        const char *colon = strrchr(target, ':');
        size_t n = colon != NULL ? (size_t)(colon - target) : strlen(target);
        if (target[0] == '[' && n >= 2)
            snprintf(host, sizeof(host), "%.*s", (int)(n - 2), target + 1);
        else
            snprintf(host, sizeof(host), "%.*s", (int)n, target);
        o.server_name = host;
    }
    if (o.threads > o.concurrency)
        o.threads = o.concurrency;
    rc = bench_run(&o, &err);
    net_addr_clear(&o.target);
    if (rc < 0) {
        fprintf(stderr, "duet bench: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return rc;
}
