/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_proxy.c - `duet proxy` and `duet tunnel`: parse the configuration,
 * check it (with --check, print "configuration OK" or the first error), run.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "proxy/crlplan.h"
#include "proxy/proxy.h"

/*
 * --check: a `deny` on an exact `path` leaves the paths below it (/admin/,
 * /admin/x) to the rules that follow, which most often allow them; said, not
 * refused, since it may be meant.
 */
static void
deny_exact_report(const struct proxy_cfg *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        for (size_t k = 0; k < l->policy.nrules; k++) {
            const struct policy_rule *r = &l->policy.rules[k];
            size_t n = r->path != NULL ? strlen(r->path) : 0;
            if (r->allow || n == 0 || r->path[n - 1] == '/')
                continue;
            fprintf(out,
                    "warning: listener %s: rule \"%s\" denies only the exact path %s: %s/ and "
                    "%s/x fall to the rules below; write path_prefix: %s to deny them too\n",
                    l->name, r->name, r->path, r->path, r->path, r->path);
        }
    }
}

static int
run(int argc, char **argv, enum proxy_role role)
{
    const char *cmd = role == ROLE_SERVER ? "duet proxy" : "duet tunnel";
    struct proxy_cfg cfg;
    struct duet_err err = {.kind = DUET_ERR_NONE};
    bool check = false;

    memset(&cfg, 0, sizeof(cfg));
    if (proxy_cfg_from_args(argc, argv, role, &cfg, &check, &err) != 0) {
        proxy_cfg_clear(&cfg);
        if (err.kind == DUET_ERR_NONE)
            return EXIT_OK; /* --help */
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return EXIT_USAGE;
    }
    if (check) {
        int rc;
        crlplan_check_report(&cfg, stdout);
        deny_exact_report(&cfg, stdout);
        rc = proxy_check(&cfg, &err);
        proxy_cfg_clear(&cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: %s\n", cmd, err.msg);
            return EXIT_INVALID;
        }
        printf("configuration OK\n");
        return EXIT_OK;
    }
    return proxy_run(&cfg, argc, argv);
}

int
cmd_proxy(int argc, char **argv)
{
    return run(argc, argv, ROLE_SERVER);
}

int
cmd_tunnel(int argc, char **argv)
{
    return run(argc, argv, ROLE_TUNNEL);
}
