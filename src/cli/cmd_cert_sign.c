/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_sign.c - `duet cert sign`: a certificate for a CSR under a profile.  The CSR only
 * proposes; ca_csr_check() and ca_sign_csr() decide.  With --token, the
 * enrollment token's binding replaces --profile, --san, --name, --owner and
 * --location, and ca_token_redeem() decides (offline enrollment, before
 * `duet ca serve`).  The chain is written to --out once the inventory has
 * recorded it.  What the CSR asked for and the certificate does not carry
 * (ca_csr_drops) is said, one line each on stderr and in --format json.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ca/csrdrop.h"
#include "ca/token.h"
#include "cli/cli.h"
#include "lib/load.h"

static const char sign_usage[] =
    "usage: duet cert sign CSR --profile P --ca-dir DIR --out FILE [--name CN]\n"
    "                      [--san dns:H|ip:A|uri:U|email:E]... [--ttl 720h] [--owner TEXT]\n"
    "                      [--location TEXT] [--passphrase-file F] [--force]\n"
    "                      [--format text|json]\n"
    "       duet cert sign CSR --token TOKEN --ca-dir DIR --out FILE [--passphrase-file F]\n"
    "                      [--force] [--format text|json]\n";

/* One line on stderr per part of the CSR the certificate does not carry. */
static void
print_drops(const char *cmd, const struct ca_drop *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "%s: %s%s %s", cmd, d[i].signed_as != NULL ? "" : "dropped from the CSR: ",
                ca_drop_kind_name(d[i].kind), d[i].name);
        if (d[i].value != NULL) {
            fputs("=\"", stderr);
            cli_put_text(stderr, d[i].value);
            fputc('"', stderr);
        }
        if (d[i].signed_as != NULL) {
            fputs(" signed as \"", stderr);
            cli_put_text(stderr, d[i].signed_as);
            fputc('"', stderr);
        }
        fprintf(stderr, "%s; %s\n", d[i].critical ? " (critical)" : "", ca_drop_reason(&d[i]));
    }
}

/* --format json: the certificate signed and what was dropped, one object on stdout. */
static void
print_json(X509 *cert, const char *profile, bool clamped, const char *out,
           const struct ca_drop *d, size_t n)
{
    json_t *o = cli_issued_json("signed", cert, profile, clamped, NULL, out, NULL);
    json_t *drops = json_array();
    json_t *changed = json_array();

    for (size_t i = 0; drops != NULL && changed != NULL && i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "kind", json_string(ca_drop_kind_name(d[i].kind)));
        json_object_set_new(e, "name", cli_json_text(d[i].name));
        json_object_set_new(e, "value", cli_json_text(d[i].value));
        if (d[i].signed_as != NULL)
            json_object_set_new(e, "signed_as", cli_json_text(d[i].signed_as));
        if (d[i].kind == CA_DROP_EXTENSION)
            json_object_set_new(e, "critical", json_boolean(d[i].critical));
        json_object_set_new(e, "reason", json_string(ca_drop_reason(&d[i])));
        json_array_append_new(d[i].signed_as != NULL ? changed : drops, e);
    }
    if (o == NULL || drops == NULL || changed == NULL) {
        json_decref(o);
        json_decref(drops);
        json_decref(changed);
        fprintf(stderr, "duet cert sign: out of memory\n");
        return;
    }
    json_object_set_new(o, "dropped", drops);
    json_object_set_new(o, "changed", changed);
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(o);
}

/* With --token: the token's binding, the CSR's key; see ca_token_redeem(). */
static int
sign_with_token(const struct cli_opts *o, X509_REQ *req, struct ca **ca, X509 **cert,
                bool *clamped, char **profile, struct duet_err *err)
{
    struct store_token *row = NULL;

    if (cli_open_ca(o->ca_dir, true, o->pass_file, ca, err) != 0 ||
        ca_token_redeem(*ca, o->token, req, o->args[0], 0, 0, cert, clamped, &row, err) != 0)
        return -1;
    *profile = row != NULL ? strdup(row->profile) : NULL;
    store_token_free(row);
    return *profile != NULL ? 0 : err_nomem(err);
}

/* `duet cert sign`; see the usage above. */
int
cmd_cert_sign(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert sign"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct load_bundle b;
    struct ca *ca = NULL;
    struct ca_sign_opts sopts;
    struct ca_csr csr;
    X509 *cert = NULL;
    char *token_profile = NULL;
    struct ca_drop *drops = NULL;
    size_t ndrops = 0;
    bool clamped = false, json = false;
    int rc = EXIT_USAGE;

    memset(&b, 0, sizeof(b));
    memset(&sopts, 0, sizeof(sopts));
    memset(&csr, 0, sizeof(csr));
    if ((prc = cli_parse_opts(argc, argv,
                              OB_CA_DIR | OB_OUT | OB_PROFILE | OB_SAN | OB_TTL | OB_OWNER |
                                  OB_LOCATION | OB_PASS | OB_NAME | OB_FORCE | OB_TOKEN | OB_FORMAT,
                              sign_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (!cli_format(o.cmd, o.format, &json))
        goto out;
    if (o.token != NULL && (o.profile != NULL || o.nsans > 0 || o.name != NULL ||
                            o.owner != NULL || o.location != NULL || o.ttl != 0)) {
        /* The token binds all of these: two sources for one answer is a mistake. */
        fprintf(stderr,
                "%s: --token replaces --profile, --san, --name, --ttl, --owner and --location; "
                "give either the token or those\n%s",
                o.cmd, sign_usage);
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL ||
        (o.profile == NULL && o.token == NULL)) {
        fprintf(stderr, "%s: CSR, --profile (or --token), --ca-dir and --out are required\n%s",
                o.cmd, sign_usage);
        goto out;
    }
    rc = EXIT_INVALID;
    if (cli_check_out_file(o.out, o.force, &err) != 0 ||
        load_bundle_file(o.args[0], NULL, &b, &err) != 0)
        goto fail;
    if (b.csrs == NULL || sk_X509_REQ_num(b.csrs) != 1) {
        err_set(&err, DUET_ERR_INPUT, "%s: expected exactly one certificate request", o.args[0]);
        goto fail;
    }
    if (o.token != NULL) {
        if (sign_with_token(&o, sk_X509_REQ_value(b.csrs, 0), &ca, &cert, &clamped,
                            &token_profile, &err) != 0)
            goto fail;
    } else {
        sopts.profile = o.profile;
        sopts.name = o.name;
        sopts.sans = o.sans;
        sopts.nsans = o.nsans;
        sopts.ttl = o.ttl;
        sopts.owner = o.owner;
        sopts.location = o.location;
        if (ca_csr_check(sk_X509_REQ_value(b.csrs, 0), o.args[0], &sopts, &csr, &err) != 0 ||
            cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0 ||
            ca_sign_csr(ca, &csr, &sopts, &cert, &clamped, &err) != 0)
            goto fail;
    }
    if (cli_write_chain(o.out, cert, ca_issuing_cert(ca), &err) != 0 ||
        ca_csr_drops(sk_X509_REQ_value(b.csrs, 0), cert, &drops, &ndrops, &err) != 0)
        goto fail;
    print_drops(o.cmd, drops, ndrops);
    if (json)
        print_json(cert, token_profile != NULL ? token_profile : o.profile, clamped, o.out, drops,
                   ndrops);
    else
        cli_report_issued("signed", cert, token_profile != NULL ? token_profile : o.profile,
                          clamped, NULL, o.out, NULL, false);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    ca_drops_free(drops, ndrops);
    ca_csr_clear(&csr);
    free(token_profile);
    X509_free(cert);
    load_bundle_clear(&b);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
