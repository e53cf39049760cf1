/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_expiring.c - `duet cert expiring`: the unrevoked, not renewed certificates expiring
 * within a window, as text or Prometheus gauges, for cron and alerts.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/x509util.h"

/*
 * Prometheus label value escaping (backslash, quote, newline); other bytes
 * outside visible ASCII become the text \xNN (an escaped backslash), so the
 * exposition stays valid and carries no control sequence.
 */
static void
prom_label(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', f);
        if (*p == '\n') {
            fputs("\\n", f);
            continue;
        }
        if (*p < 0x20 || *p >= 0x7f) {
            fprintf(f, "\\\\x%02x", *p);
            continue;
        }
        fputc(*p, f);
    }
}

static const char expiring_usage[] =
    "usage: duet cert expiring --ca-dir DIR --within 30d [--owner X] [--profile P]\n"
    "                          [--format text|json|prometheus]\n"
    "exit 0 none, 1 when an unrevoked certificate that was not renewed expires within the\n"
    "window (or has expired), 2 when the inventory cannot be read.  --expiring D is the same\n"
    "as --within D; duet cert list --expiring D lists the same certificates.\n";

/* `duet cert expiring`; see the usage above. */
int
cmd_cert_expiring(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert expiring"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_filter f;
    struct store_cert **rows = NULL;
    json_t *hits_json = NULL;
    size_t n = 0, hits = 0;
    int64_t now = (int64_t)time(NULL);
    bool prom = false, json = false;
    int rc = EXIT_USAGE;

    memset(&f, 0, sizeof(f));
    if ((prc = cli_parse_opts(
             argc, argv, OB_CA_DIR | OB_WITHIN | OB_EXPIRING | OB_FORMAT | OB_OWNER | OB_PROFILE,
             expiring_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 0 || o.ca_dir == NULL || !o.has_within) {
        fprintf(stderr, "%s: --ca-dir and --within are required\n%s", o.cmd, expiring_usage);
        goto out;
    }
    if (o.format != NULL && strcmp(o.format, "prometheus") == 0)
        prom = true;
    else if (o.format != NULL && strcmp(o.format, "text") != 0 && strcmp(o.format, "json") != 0) {
        fprintf(stderr, "%s: --format \"", o.cmd);
        cli_put_text(stderr, o.format);
        fprintf(stderr, "\": expected text, json or prometheus\n");
        goto out;
    } else {
        json = o.format != NULL && strcmp(o.format, "json") == 0;
    }
    f.now = now;
    f.owner = o.owner;
    f.profile = o.profile;
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        store_list(ca_store(ca), &f, &rows, &n, &err) != 0) {
        /* Exit 2, not 1: "cannot tell" must not read as "certificates are expiring". */
        cli_fail(o.cmd, &err);
        rc = EXIT_USAGE;
        goto out;
    }
    if (json && (hits_json = json_array()) == NULL) {
        fprintf(stderr, "%s: out of memory\n", o.cmd);
        rc = EXIT_USAGE;
        goto out;
    }
    if (prom) {
        printf("# HELP duet_certificate_expiry_seconds Seconds until an unrevoked certificate of "
               "the inventory expires.\n# TYPE duet_certificate_expiry_seconds gauge\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = rows[i];
        bool in_window = cli_row_expiring(c, now, o.within);
        if (c->status == STORE_REVOKED || c->renewed_by != NULL)
            continue;
        if (prom) {
            printf("duet_certificate_expiry_seconds{serial=\"");
            prom_label(stdout, c->serial);
            printf("\",name=\"");
            prom_label(stdout, c->name);
            printf("\",profile=\"");
            prom_label(stdout, c->profile);
            printf("\",owner=\"");
            prom_label(stdout, c->owner);
            printf("\"} %lld\n", (long long)(c->not_after - now));
        } else if (in_window && json) {
            json_array_append_new(hits_json, cli_row_json(c, now, false));
        } else if (in_window) {
            char na[32];
            x509u_fmt_rfc3339(c->not_after, na, sizeof(na));
            char when[48];
            x509u_fmt_days(c->not_after, now, when, sizeof(when));
            cli_put_text(stdout, c->name);
            printf(" (serial %s, profile %s, owner ", c->serial, c->profile);
            cli_put_text(stdout, c->owner ? c->owner : "-");
            printf(") %s %s, %s\n", c->not_after <= now ? "EXPIRED on" : "expires", na, when);
        }
        if (in_window)
            hits++;
    }
    if (prom) {
        printf("# HELP duet_certificates_expiring Unrevoked, not renewed certificates expiring "
               "within the window or already expired.\n# TYPE duet_certificates_expiring gauge\n"
               "duet_certificates_expiring{within=\"%s\"} %zu\n",
               o.within_text, hits);
    } else if (json) {
        json_t *doc = json_pack("{s:s, s:I, s:o}", "within", o.within_text, "within_seconds",
                                (json_int_t)o.within, "expiring", json_incref(hits_json));
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(doc);
    } else if (hits == 0) {
        printf("no certificate expires within %s\n", o.within_text);
    }
    rc = hits > 0 ? EXIT_INVALID : EXIT_OK;
out:
    json_decref(hits_json);
    store_certs_free(rows, n);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
