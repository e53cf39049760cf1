/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_cert_show.c - `duet cert show`: one inventory row, from a serial or a certificate file,
 * as text or JSON.
 * Exit 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static const char show_usage[] =
    "usage: duet cert show SERIAL|CERTFILE --ca-dir DIR [--format text|json]\n";

/* `duet cert show`; see the usage above. */
int
cmd_cert_show(int argc, char **argv)
{
    int prc;
    struct cli_opts o = {.cmd = "duet cert show"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    json_t *j = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = EXIT_USAGE;

    if ((prc = cli_parse_opts(argc, argv, OB_CA_DIR | OB_FORMAT, show_usage, &o)) != 0) {
        rc = prc == CLI_PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL) {
        fprintf(stderr, "%s: SERIAL and --ca-dir are required\n%s", o.cmd, show_usage);
        goto out;
    }
    if (!cli_format(o.cmd, o.format, &(bool){false}))
        goto out;
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        cli_find_row(ca, o.args[0], &row, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    j = cli_row_json(row, now, true);
    if (o.format != NULL && strcmp(o.format, "json") == 0) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            char *text = json_is_string(v) ? strdup(json_string_value(v))
                         : json_is_null(v) ? strdup("-")
                                           : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            printf("%-18s ", key);
            cli_put_text(stdout, text != NULL ? text : "");
            fputc('\n', stdout);
            free(text);
        }
    }
    rc = EXIT_OK;
out:
    json_decref(j);
    store_cert_free(row);
    ca_close(ca);
    cli_opts_free(&o);
    return rc;
}
