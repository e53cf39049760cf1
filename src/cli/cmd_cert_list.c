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
    "usage: duet cert list --ca-dir DIR [--expiring|--within 30d]\n"
    "                      [--status valid|expired|revoked] [--owner X] [--profile P]\n"
    "                      [--format table|json|csv]\n";

/* Whole days from now to t, as "days_left" of the JSON (cli_row_json()). */
static long long
days_left(int64_t t, int64_t now)
{
    return (long long)((t - now) / 86400);
}

#define NCOLS 8

/*
 * The inventory as a table whose columns are as wide as their longest cell,
 * so long names and owners never shift the columns after them.  Text from
 * the inventory is escaped (cli_text).  -1 when out of memory.
 */
static int
print_table(struct store_cert **rows, size_t n, int64_t now)
{
    static const char *const head[NCOLS] = {"SERIAL",   "NAME",      "PROFILE", "OWNER",
                                            "LOCATION", "NOT AFTER", "DAYS",    "STATUS"};
    char **cell = calloc(n * NCOLS + 1, sizeof(char *));
    size_t width[NCOLS];
    int rc = -1;

    if (cell == NULL)
        return -1;
    for (size_t c = 0; c < NCOLS; c++)
        width[c] = strlen(head[c]);
    for (size_t i = 0; i < n; i++) {
        char na[32], days[24];
        char **r = &cell[i * NCOLS];
        x509u_fmt_rfc3339(rows[i]->not_after, na, sizeof(na));
        snprintf(days, sizeof(days), "%lld", days_left(rows[i]->not_after, now));
        r[0] = cli_text(rows[i]->serial);
        r[1] = cli_text(rows[i]->name != NULL ? rows[i]->name : "?");
        r[2] = cli_text(rows[i]->profile != NULL ? rows[i]->profile : "-");
        r[3] = cli_text(rows[i]->owner != NULL ? rows[i]->owner : "-");
        r[4] = cli_text(rows[i]->location != NULL ? rows[i]->location : "-");
        r[5] = strdup(na);
        r[6] = strdup(days);
        r[7] = strdup(store_status_text(rows[i], now));
        for (size_t c = 0; c < NCOLS; c++) {
            if (r[c] == NULL)
                goto out;
            if (strlen(r[c]) > width[c])
                width[c] = strlen(r[c]);
        }
    }
    for (size_t i = 0; i <= n; i++) {
        for (size_t c = 0; c < NCOLS; c++) {
            const char *v = i == 0 ? head[c] : cell[(i - 1) * NCOLS + c];
            if (c == NCOLS - 1)
                printf("%s\n", v);
            else if (c == 6) /* DAYS, a number: right-aligned */
                printf("%*s  ", (int)width[c], v);
            else
                printf("%-*s  ", (int)width[c], v);
        }
    }
    rc = 0;
out:
    for (size_t k = 0; k < n * NCOLS; k++)
        free(cell[k]);
    free(cell);
    return rc;
}

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
    if ((prc = cli_parse_opts(argc, argv,
                              OB_CA_DIR | OB_EXPIRING | OB_WITHIN | OB_STATUS | OB_OWNER |
                                  OB_PROFILE | OB_FORMAT,
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
    rc = EXIT_INVALID;
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        store_list(ca_store(ca), &f, &rows, &n, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    if (o.has_expiring) {
        /* The rows `cert expiring --within D` reports, by the same test. */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (cli_row_expiring(rows[i], now, o.expiring))
                rows[kept++] = rows[i];
            else
                store_cert_free(rows[i]);
        }
        n = kept;
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
            snprintf(days, sizeof(days), "%lld", days_left(rows[i]->not_after, now));
            csv_field(stdout, rows[i]->serial, false);
            csv_field(stdout, rows[i]->name, false);
            csv_field(stdout, rows[i]->profile, false);
            csv_field(stdout, rows[i]->owner, false);
            csv_field(stdout, rows[i]->location, false);
            csv_field(stdout, na, false);
            csv_field(stdout, days, false);
            csv_field(stdout, store_status_text(rows[i], now), true);
        }
    } else if (print_table(rows, n, now) != 0) {
        fprintf(stderr, "%s: out of memory\n", o.cmd);
        rc = EXIT_INVALID;
        goto out;
    } else {
        printf("%zu certificate%s\n", n, n == 1 ? "" : "s");
    }
    rc = EXIT_OK;
out:
    store_certs_free(rows, n);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
