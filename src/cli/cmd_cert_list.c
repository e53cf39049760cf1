/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_list.c - `duet cert list`: the inventory, filtered, as a table, JSON or CSV.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/x509util.h"

/*
 * CSV field with RFC 4180 quoting; bytes outside visible ASCII are written
 * as \xNN (cli_text), so a field never carries a control sequence or a line
 * break.
 */
static void
csv_field(FILE *f, const char *s, bool last)
{
    char *t = cli_text(s);
    const char *v = t != NULL ? t : "";

    if (strpbrk(v, ",\"") != NULL) {
        fputc('"', f);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else {
        fputs(v, f);
    }
    fputc(last ? '\n' : ',', f);
    free(t);
}

static const char list_usage[] =
    "usage: duet cert list --ca-dir DIR [--expiring 30d] [--status valid|expired|revoked]\n"
    "                      [--owner X] [--profile P] [--format table|json|csv]\n";

/* `duet cert list`; see the usage above. */
int
cmd_cert_list(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert list"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_filter f;
    struct store_cert **rows = NULL;
    size_t n = 0;
    int64_t now = (int64_t)time(NULL);
    int rc = EXIT_USAGE;

    memset(&f, 0, sizeof(f));
    if ((prc = cli_parse_opts(
             argc, argv, OB_CA_DIR | OB_EXPIRING | OB_STATUS | OB_OWNER | OB_PROFILE | OB_FORMAT,
             list_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 0 || o.ca_dir == NULL) {
        fprintf(stderr, "%s: --ca-dir DIR is required\n%s", o.cmd, list_usage);
        goto out;
    }
    if (o.format != NULL && strcmp(o.format, "table") != 0 && strcmp(o.format, "json") != 0 &&
        strcmp(o.format, "csv") != 0) {
        fprintf(stderr, "%s: --format \"%s\": expected table, json or csv\n", o.cmd, o.format);
        goto out;
    }
    if (o.status != NULL) {
        if (strcmp(o.status, "valid") == 0)
            f.only_valid = true;
        else if (strcmp(o.status, "expired") == 0)
            f.only_expired = true;
        else if (strcmp(o.status, "revoked") == 0)
            f.only_revoked = true;
        else {
            fprintf(stderr, "%s: --status \"%s\": expected valid, expired or revoked\n", o.cmd,
                    o.status);
            goto out;
        }
    }
    f.now = now;
    f.owner = o.owner;
    f.profile = o.profile;
    if (o.has_expiring)
        f.expiring_before = now + o.expiring;
    rc = EXIT_INVALID;
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        store_list(ca_store(ca), &f, &rows, &n, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    if (o.format != NULL && strcmp(o.format, "json") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, cli_row_json(rows[i], now, false));
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(arr);
    } else if (o.format != NULL && strcmp(o.format, "csv") == 0) {
        printf("serial,name,profile,owner,location,not_after,days_left,status\n");
        for (size_t i = 0; i < n; i++) {
            char na[32], days[24];
            x509u_fmt_rfc3339(rows[i]->not_after, na, sizeof(na));
            snprintf(days, sizeof(days), "%lld", (long long)((rows[i]->not_after - now) / 86400));
            csv_field(stdout, rows[i]->serial, false);
            csv_field(stdout, rows[i]->name, false);
            csv_field(stdout, rows[i]->profile, false);
            csv_field(stdout, rows[i]->owner, false);
            csv_field(stdout, rows[i]->location, false);
            csv_field(stdout, na, false);
            csv_field(stdout, days, false);
            csv_field(stdout, store_status_text(rows[i], now), true);
        }
    } else {
        printf("%-47s  %-32s  %-10s  %-12s  %-12s  %-20s  %5s  %s\n", "SERIAL", "NAME", "PROFILE",
               "OWNER", "LOCATION", "NOT AFTER", "DAYS", "STATUS");
        for (size_t i = 0; i < n; i++) {
            char na[32];
            x509u_fmt_rfc3339(rows[i]->not_after, na, sizeof(na));
            char *name = cli_text(rows[i]->name);
            char *owner = rows[i]->owner != NULL ? cli_text(rows[i]->owner) : NULL;
            char *location = rows[i]->location != NULL ? cli_text(rows[i]->location) : NULL;
            printf("%-47s  %-32s  %-10s  %-12s  %-12s  %-20s  %5lld  %s\n", rows[i]->serial,
                   name != NULL ? name : "?", rows[i]->profile, owner != NULL ? owner : "-",
                   location != NULL ? location : "-", na,
                   (long long)((rows[i]->not_after - now) / 86400),
                   store_status_text(rows[i], now));
            free(name);
            free(owner);
            free(location);
        }
        printf("%zu certificate%s\n", n, n == 1 ? "" : "s");
    }
    rc = EXIT_OK;
out:
    store_certs_free(rows, n);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
