/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ca_token.c - `duet ca token`: a one-time enrollment token bound to a
 * name, a profile, SANs and inventory fields (ca_token_create), and
 * `duet ca token --list`: the tokens of the inventory, never their text.
 *
 * The token alone goes to stdout, so that TOKEN=$(duet ca token ...) works;
 * what it binds goes to stderr.  Making a token needs the CA passphrase, as
 * issuing does: a token is a promise of a certificate.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/token.h"
#include "cli/cli.h"
#include "lib/x509util.h"

static const char token_usage[] =
    "usage: duet ca token NAME --profile P --ca-dir DIR [--san dns:H|ip:A|uri:U|email:E]...\n"
    "                     [--owner TEXT] [--location TEXT] [--ttl 15m] [--passphrase-file F]\n"
    "       duet ca token --list --ca-dir DIR [--format text|json]\n"
    "The token (only) is printed on stdout; it is good for one certificate, until --ttl\n"
    "(default 15m, at most 168h) runs out: duet cert sign CSR --token TOKEN ...\n";

/* The login name of the caller, for the token's created_by; NULL when unknown. */
static const char *
login_name(void)
{
    const struct passwd *pw = getpwuid(geteuid());

    return pw != NULL ? pw->pw_name : NULL;
}

/* unused, used or expired at now. */
static const char *
token_status(const struct store_token *t, int64_t now)
{
    if (t->serial != NULL)
        return "used";
    return t->expires_at <= now ? "expired" : "unused";
}

static json_t *
jtime(int64_t t)
{
    char buf[32];

    if (t == 0)
        return json_null();
    x509u_fmt_rfc3339(t, buf, sizeof(buf));
    return json_string(buf);
}

/* One token as JSON: what it binds and its state, never anything of its text. */
static json_t *
token_json(const struct store_token *t, int64_t now)
{
    json_t *o = json_object(), *sans = json_array();

    for (size_t i = 0; i < t->nsans; i++)
        json_array_append_new(sans, cli_json_text(t->sans[i]));
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "name", cli_json_text(t->name));
    json_object_set_new(o, "profile", cli_json_text(t->profile));
    json_object_set_new(o, "sans", sans);
    json_object_set_new(o, "owner", cli_json_text(t->owner));
    json_object_set_new(o, "location", cli_json_text(t->location));
    json_object_set_new(o, "status", json_string(token_status(t, now)));
    json_object_set_new(o, "created_at", jtime(t->created_at));
    json_object_set_new(o, "created_by", cli_json_text(t->created_by));
    json_object_set_new(o, "expires_at", jtime(t->expires_at));
    json_object_set_new(o, "used_at", jtime(t->used_at));
    json_object_set_new(o, "serial", t->serial != NULL ? json_string(t->serial) : json_null());
    return o;
}

/* `duet ca token --list`. */
static int
list_tokens(const struct cli_opts *o)
{
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct store_token **v = NULL;
    struct ca *ca = NULL;
    int64_t now = (int64_t)time(NULL);
    size_t n = 0;

    if (cli_open_ca(o->ca_dir, false, NULL, &ca, &err) != 0 ||
        store_token_list(ca_store(ca), &v, &n, &err) != 0) {
        ca_close(ca);
        return cli_fail(o->cmd, &err);
    }
    if (o->format != NULL && strcmp(o->format, "json") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, token_json(v[i], now));
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(arr);
    } else {
        printf("%-12s  %-24s  %-8s  %-7s  %-20s  %s\n", "ID", "NAME", "PROFILE", "STATUS",
               "EXPIRES / USED", "SERIAL");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            char *name = cli_text(v[i]->name);
            x509u_fmt_rfc3339(v[i]->serial != NULL ? v[i]->used_at : v[i]->expires_at, when,
                              sizeof(when));
            printf("%-12.12s  %-24s  %-8s  %-7s  %-20s  %s\n", v[i]->id, name != NULL ? name : "?",
                   v[i]->profile, token_status(v[i], now), when,
                   v[i]->serial != NULL ? v[i]->serial : "-");
            free(name);
        }
        printf("%zu token%s\n", n, n == 1 ? "" : "s");
    }
    store_tokens_free(v, n);
    ca_close(ca);
    return EXIT_OK;
}

/* `duet ca token`; see the usage above. */
int
cmd_ca_token(int argc, char **argv)
{
    struct cli_opts o = {.cmd = "duet ca token"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca_token_opts to;
    struct store_token *row = NULL;
    struct ca *ca = NULL;
    char *token = NULL;
    char when[32];
    int prc, rc = EXIT_USAGE;

    if ((prc = cli_parse_opts(argc, argv,
                              OB_CA_DIR | OB_PROFILE | OB_SAN | OB_TTL | OB_OWNER | OB_LOCATION |
                                  OB_PASS | OB_LIST | OB_FORMAT,
                              token_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.ca_dir == NULL) {
        fprintf(stderr, "%s: --ca-dir DIR is required\n%s", o.cmd, token_usage);
        goto out;
    }
    if (o.list) {
        if (o.nargs != 0 || o.profile != NULL || o.nsans > 0 || o.ttl != 0 || o.owner != NULL ||
            o.location != NULL) {
            fprintf(stderr, "%s: --list takes only --ca-dir and --format\n%s", o.cmd,
                    token_usage);
            goto out;
        }
        if (!cli_format(o.cmd, o.format, &(bool){false}))
            goto out;
        rc = list_tokens(&o);
        goto out;
    }
    if (o.nargs != 1 || o.profile == NULL || o.format != NULL) {
        fprintf(stderr, "%s: NAME and --profile are required (--format goes with --list)\n%s",
                o.cmd, token_usage);
        goto out;
    }
    memset(&to, 0, sizeof(to));
    to.name = o.args[0];
    to.profile = o.profile;
    to.sans = o.sans;
    to.nsans = o.nsans;
    to.owner = o.owner;
    to.location = o.location;
    to.ttl = o.ttl;
    to.created_by = login_name();
    rc = EXIT_INVALID;
    if (cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0 ||
        ca_token_create(ca, &to, &token, &row, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    /* What it binds, for the operator; the token itself, alone, for the script. */
    x509u_fmt_rfc3339(row->expires_at, when, sizeof(when));
    fprintf(stderr, "token for ");
    cli_put_text(stderr, row->name);
    fprintf(stderr, ", profile %s, names ", row->profile);
    for (size_t i = 0; i < row->nsans; i++) {
        fprintf(stderr, "%s", i > 0 ? ", " : "");
        cli_put_text(stderr, row->sans[i]);
    }
    fprintf(stderr, "%s; usable once, until %s\n", row->nsans == 0 ? "(none)" : "", when);
    printf("%s\n", token);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: cannot write the token to stdout\n", o.cmd);
        goto out;
    }
    rc = EXIT_OK;
out:
    ca_token_text_free(token);
    store_token_free(row);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
