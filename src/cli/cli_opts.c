/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_opts.c - the one option table of the certificate commands (`duet cert
 * issue`, `sign`, `list`, `show`, `renew`, `revoke`, `export`, `expiring`,
 * and `duet ca token`) and its parser, plus the checks on names and output paths they share.
 *
 * Each command names the options it accepts, so a stray option is an error
 * that names the option (never the value after it) rather than something
 * silently ignored.  Output places are checked before anything is issued, so
 * a refusal records nothing in the inventory.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/duration.h"

static const struct {
    struct option o;
    unsigned bit;
} table[] = {
    {{"ca-dir", required_argument, NULL, 'd'}, OB_CA_DIR},
    {{"out", required_argument, NULL, 'o'}, OB_OUT},
    {{"profile", required_argument, NULL, 'p'}, OB_PROFILE},
    {{"san", required_argument, NULL, 's'}, OB_SAN},
    {{"ttl", required_argument, NULL, 't'}, OB_TTL},
    {{"owner", required_argument, NULL, 'w'}, OB_OWNER},
    {{"location", required_argument, NULL, 'l'}, OB_LOCATION},
    {{"key-type", required_argument, NULL, 'k'}, OB_KEY_TYPE},
    {{"passphrase-file", required_argument, NULL, 'P'}, OB_PASS},
    {{"format", required_argument, NULL, 'f'}, OB_FORMAT},
    {{"expiring", required_argument, NULL, 'e'}, OB_EXPIRING},
    {{"status", required_argument, NULL, 'S'}, OB_STATUS},
    {{"reason", required_argument, NULL, 'r'}, OB_REASON},
    {{"reuse-key", no_argument, NULL, 'R'}, OB_REUSE_KEY},
    {{"cert", required_argument, NULL, 'c'}, OB_CERT},
    {{"key", required_argument, NULL, 'K'}, OB_KEY},
    {{"legacy", no_argument, NULL, 'L'}, OB_LEGACY},
    {{"password-file", required_argument, NULL, 'W'}, OB_PASSWORD_FILE},
    {{"within", required_argument, NULL, 'i'}, OB_WITHIN},
    {{"name", required_argument, NULL, 'n'}, OB_NAME},
    {{"force", no_argument, NULL, 'F'}, OB_FORCE},
    {{"token", required_argument, NULL, 'T'}, OB_TOKEN},
    {{"list", no_argument, NULL, 'I'}, OB_LIST},
    {{"help", no_argument, NULL, 'h'}, ~0u},
};
#define NOPTS (sizeof(table) / sizeof(table[0]))

/* Parse the options a command allows; see cli.h. */
int
cli_parse_opts(int argc, char **argv, unsigned allowed, const char *usage, struct cli_opts *o)
{
    struct option lo[NOPTS + 1];
    struct duet_err derr; /* the messages below name the option and give its examples */
    int c;

    memset(lo, 0, sizeof(lo));
    for (size_t i = 0; i < NOPTS; i++)
        lo[i] = table[i].o;
    o->sans = calloc((size_t)argc + 1, sizeof(char *));
    if (o->sans == NULL)
        return -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        unsigned bit = 0;
        const char *name = NULL;
        for (size_t i = 0; i < NOPTS; i++) {
            if (table[i].o.val == c) {
                bit = table[i].bit;
                name = table[i].o.name;
            }
        }
        if (c == 'h') {
            fputs(usage, stdout);
            return CLI_PARSE_HELP;
        }
        if (c == ':' || c == '?' || (bit & allowed) == 0) {
            /* Name the option itself, not the value that followed it. */
            const char *what = argv[optind - 1];
            char buf[64];
            if (name != NULL) {
                snprintf(buf, sizeof(buf), "--%s", name);
                what = buf;
            } else if (c == '?' && optopt == 0 && optind > 1) {
                what = argv[optind - 1];
            }
            fprintf(stderr, "%s: %s %s\n%s", o->cmd, what,
                    c == ':' ? "needs a value" : "is not an option of this command", usage);
            return -1;
        }
        switch (c) {
        case 'd':
            o->ca_dir = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'p':
            o->profile = optarg;
            break;
        case 's':
            o->sans[o->nsans++] = optarg;
            break;
        case 'w':
            o->owner = optarg;
            break;
        case 'l':
            o->location = optarg;
            break;
        case 'k':
            o->key_type = optarg;
            break;
        case 'P':
            o->pass_file = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case 'S':
            o->status = optarg;
            break;
        case 'r':
            o->reason = optarg;
            break;
        case 'R':
            o->reuse_key = true;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'K':
            o->key = optarg;
            break;
        case 'L':
            o->legacy = true;
            break;
        case 'W':
            o->password_file = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'F':
            o->force = true;
            break;
        case 'T':
            o->token = optarg;
            break;
        case 'I':
            o->list = true;
            break;
        case 't':
            if (duration_parse(optarg, &o->ttl, &derr) != 0 || o->ttl <= 0) {
                fprintf(stderr, "%s: --ttl \"%s\": expected a duration such as 720h or 30d\n",
                        o->cmd, optarg);
                return -1;
            }
            break;
        case 'e':
            if (duration_parse(optarg, &o->expiring, &derr) != 0) {
                fprintf(stderr, "%s: --expiring \"%s\": expected a duration such as 30d\n", o->cmd,
                        optarg);
                return -1;
            }
            o->has_expiring = true;
            break;
        case 'i':
            if (duration_parse(optarg, &o->within, &derr) != 0) {
                fprintf(stderr, "%s: --within \"%s\": expected a duration such as 30d\n", o->cmd,
                        optarg);
                return -1;
            }
            o->within_text = optarg;
            o->has_within = true;
            break;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

/* Free what cli_parse_opts() allocated; see cli.h. */
void
cli_opts_free(struct cli_opts *o)
{
    free(o->sans);
}

/* Whether NAME can name files; see cli.h. */
bool
cli_safe_name(const char *n)
{
    if (n == NULL || n[0] == '\0' || n[0] == '.' || strlen(n) > 64)
        return false;
    for (const char *p = n; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == '@'))
            return false;
    }
    return true;
}

/* DIR/NAME.EXT; see cli.h. */
char *
cli_path_in(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

/* OUTDIR is a writable directory; see cli.h. */
int
cli_check_out_dir(const char *dir, struct duet_err *err)
{
    struct stat st;

    if (stat(dir, &st) != 0)
        return err_set(err, DUET_ERR_INPUT, "--out %s: no such directory", dir);
    if (!S_ISDIR(st.st_mode))
        return err_set(err, DUET_ERR_INPUT, "--out %s: not a directory", dir);
    if (access(dir, W_OK) != 0)
        return err_set(err, DUET_ERR_INPUT, "--out %s: not writable", dir);
    return 0;
}

/* FILE can be written and does not exist; see cli.h. */
int
cli_check_out_file(const char *path, bool force, struct duet_err *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct stat st;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, DUET_ERR_INPUT, "--out %s: directory %s does not exist", path, dir);
    if (access(dir, W_OK) != 0)
        return err_set(err, DUET_ERR_INPUT, "--out %s: directory %s is not writable", path, dir);
    if (!force && stat(path, &st) == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "--out %s already exists; choose another file or --force", path);
    return 0;
}
