/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_agent.c - `duet agent --config FILE [--once | --status | --check]`:
 * keeps this host's certificates fresh against `duet ca serve` (docs/agent.md).
 * The enrollment token comes from token_file, DUET_AGENT_TOKEN or --token
 * (which the process list shows).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "util/log.h"

enum { A_CONFIG = 700, A_ONCE, A_TOKEN, A_STATUS, A_FORMAT, A_CHECK, A_HELP };

static const struct cli_flag flags[] = {
    {{"config", required_argument, NULL, A_CONFIG}, "FILE", "the agent's configuration (YAML)"},
    {{"once", no_argument, NULL, A_ONCE},
     NULL,
     "do what is due now and exit: 0 nothing due or it worked, 1 a failure"},
    {{"token", required_argument, NULL, A_TOKEN},
     "TOKEN",
     "the enrollment token (duet ca token) of the certificate to enroll"},
    {{"status", no_argument, NULL, A_STATUS},
     NULL,
     "print each certificate's serial, expiry and renewal time"},
    {{"format", required_argument, NULL, A_FORMAT},
     "text|json",
     "the --status output format (default text)"},
    {{"check", no_argument, NULL, A_CHECK},
     NULL,
     "check the configuration and print \"configuration OK\""},
    {{"help", no_argument, NULL, A_HELP}, NULL, "print this help"},
};

static void
usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet agent --config FILE [--token TOKEN] [--once]\n"
        "       duet agent --config FILE --status [--format text|json]\n"
        "       duet agent --config FILE --check\n"
        "Keep this host's certificates fresh: enroll each once with a one-time token (the\n"
        "key is made here and never leaves the host), renew at about two thirds of the\n"
        "lifetime over mTLS, write files atomically, run each certificate's on_renew hook,\n"
        "and keep the CA's CRL and roots fresh.  The CA is trusted only after its root\n"
        "matches root_fingerprint.  --token shows in the process list: prefer token_file,\n"
        "or the DUET_AGENT_TOKEN environment variable (--token wins when both are given;\n"
        "hooks do not inherit it).\n",
        flags, CLI_NFLAGS(flags));
}

static void
status_text(const json_t *arr)
{
    size_t i;
    json_t *o;

    json_array_foreach(arr, i, o)
    {
        const char *state = json_string_value(json_object_get(o, "state"));
        cli_put_text(stdout, json_string_value(json_object_get(o, "name")));
        printf(": %s", state);
        if (json_object_get(o, "serial") != NULL) {
            printf(", serial %s, not after %s, renew after %s, %lld s left",
                   json_string_value(json_object_get(o, "serial")),
                   json_string_value(json_object_get(o, "not_after")),
                   json_string_value(json_object_get(o, "renew_after")),
                   (long long)json_integer_value(json_object_get(o, "seconds_left")));
        } else {
            printf(" (");
            cli_put_text(stdout, json_string_value(json_object_get(o, "error")));
            printf(")");
        }
        if (json_object_get(o, "pending") != NULL) {
            printf("; issued and pending installation from ");
            cli_put_text(stdout, json_string_value(json_object_get(o, "pending")));
        }
        printf("\n");
    }
}

/*
 * The token from DUET_AGENT_TOKEN, taken out of the environment so that no
 * hook inherits it; NULL when unset or empty.  Owned by the caller.
 */
static char *
token_from_env(void)
{
    const char *v = getenv("DUET_AGENT_TOKEN");
    char *t = v != NULL && v[0] != '\0' ? strdup(v) : NULL;

    if (v != NULL) {
        OPENSSL_cleanse((void *)(uintptr_t)v, strlen(v));
        unsetenv("DUET_AGENT_TOKEN");
    }
    return t;
}

/* `duet agent`: exit 0 done, 1 failed, 2 usage or configuration error. */
int
cmd_agent(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct agent_run_opts ro = {0};
    struct agent_cfg cfg;
    struct duet_err err;
    const char *config = NULL, *format = "text";
    char *env_token = token_from_env();
    bool status = false, check = false;
    int c, rc = EXIT_USAGE;

    memset(&cfg, 0, sizeof(cfg));
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case A_CONFIG:
            config = optarg;
            break;
        case A_ONCE:
            ro.once = true;
            break;
        case A_TOKEN:
            ro.token = optarg;
            break;
        case A_STATUS:
            status = true;
            break;
        case A_FORMAT:
            format = optarg;
            break;
        case A_CHECK:
            check = true;
            break;
        case A_HELP:
            usage(stdout);
            rc = EXIT_OK;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind != argc || config == NULL) {
        fprintf(stderr, "duet agent: %s\n",
                config == NULL ? "--config FILE is required" : "unexpected argument");
        usage(stderr);
        goto out;
    }
    if ((status + check + ro.once > 1) || ((status || check) && ro.token != NULL)) {
        fprintf(stderr, "duet agent: --once, --status and --check go alone\n");
        goto out;
    }
    if (!cli_format("duet agent", format, &(bool){false}))
        goto out;
    if (ro.token == NULL)
        ro.token = env_token;
    if (agent_config_load(config, &cfg, &err) != 0) {
        fprintf(stderr, "duet agent: ");
        cli_put_text(stderr, err.msg);
        fprintf(stderr, "\n");
        goto out;
    }
    if (check) {
        printf("configuration OK\n");
        rc = EXIT_OK;
        goto out;
    }
    if (status) {
        json_t *arr = NULL;
        if (agent_status(&cfg, &arr, &err) != 0) {
            rc = cli_fail("duet agent", &err);
            goto out;
        }
        if (strcmp(format, "json") == 0) {
            char *s = json_dumps(arr, JSON_INDENT(2));
            if (s != NULL)
                printf("%s\n", s);
            free(s);
        } else {
            status_text(arr);
        }
        json_decref(arr);
        rc = EXIT_OK;
        goto out;
    }
    if (log_open(cfg.log, &err) != 0) {
        rc = cli_fail("duet agent", &err);
        goto out;
    }
    rc = agent_run(&cfg, &ro, &err) == 0 ? EXIT_OK : cli_fail("duet agent", &err);
    log_close();
out:
    if (env_token != NULL) {
        OPENSSL_cleanse(env_token, strlen(env_token));
        free(env_token);
    }
    agent_config_free(&cfg);
    return rc;
}
