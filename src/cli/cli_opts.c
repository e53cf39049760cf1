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
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/duration.h"

static const struct {
    struct cli_flag f;
    unsigned bit;
} table[] = {
    {{{"ca-dir", required_argument, NULL, 'd'}, "DIR", "the CA directory (duet ca init made it)"},
     OB_CA_DIR},
    {{{"out", required_argument, NULL, 'o'},
      "PATH",
      "where to write: a directory (issue, renew; created 0700 when missing) or a file"},
     OB_OUT},
    {{{"profile", required_argument, NULL, 'p'},
      "P",
      "the issuance profile: server, client, peer, device, or one from ca.yaml"},
     OB_PROFILE},
    {{{"san", required_argument, NULL, 's'},
      "dns:H|ip:A|uri:U|email:E",
      "a subject alternative name; repeat for several"},
     OB_SAN},
    {{{"ttl", required_argument, NULL, 't'},
      "D",
      "validity, e.g. 720h or 30d (default: the profile's)"},
     OB_TTL},
    {{{"owner", required_argument, NULL, 'w'}, "TEXT", "who owns it, recorded in the inventory"},
     OB_OWNER},
    {{{"location", required_argument, NULL, 'l'},
      "TEXT",
      "where it is deployed, recorded in the inventory"},
     OB_LOCATION},
    {{{"key-type", required_argument, NULL, 'k'},
      "p256|p384|ed25519|rsa3072",
      "the new key's type (default p256)"},
     OB_KEY_TYPE},
    {{{"passphrase-file", required_argument, NULL, 'P'},
      "F",
      "the CA passphrase's file (else DUET_CA_PASSPHRASE)"},
     OB_PASS},
    {{{"format", required_argument, NULL, 'f'},
      "FMT",
      "the output format; the synopsis lists this command's"},
     OB_FORMAT},
    {{{"expiring", required_argument, NULL, 'e'},
      "D",
      "only those duet cert expiring --within D reports: unrevoked, not renewed"},
     OB_EXPIRING},
    {{{"status", required_argument, NULL, 'S'},
      "valid|expired|revoked",
      "only certificates in that state"},
     OB_STATUS},
    {{{"reason", required_argument, NULL, 'r'},
      "R",
      "the CRL reason code, e.g. keyCompromise, superseded"},
     OB_REASON},
    {{{"reuse-key", no_argument, NULL, 'R'}, NULL, "keep the old key pair (default: a new key)"},
     OB_REUSE_KEY},
    {{{"cert", required_argument, NULL, 'c'}, "F", "the certificate (PEM), chain after it if any"},
     OB_CERT},
    {{{"key", required_argument, NULL, 'K'}, "F", "the private key (PEM), mode 0600"}, OB_KEY},
    {{{"legacy", no_argument, NULL, 'L'},
      NULL,
      "PKCS#12 with 3DES/SHA1 for old Java and Windows (default AES-256/SHA-256)"},
     OB_LEGACY},
    {{{"password-file", required_argument, NULL, 'W'},
      "F",
      "the PKCS#12 password's file (first line; not readable by group or others)"},
     OB_PASSWORD_FILE},
    {{{"within", required_argument, NULL, 'i'},
      "D",
      "the window, e.g. 30d: expiring before now + D (or expired); = --expiring D"},
     OB_WITHIN},
    {{{"name", required_argument, NULL, 'n'},
      "NAME",
      "the file name (and CN where the command sets one)"},
     OB_NAME},
    {{{"force", no_argument, NULL, 'F'}, NULL, "overwrite files that exist already"}, OB_FORCE},
    {{{"token", required_argument, NULL, 'T'},
      "TOKEN",
      "a one-time enrollment token from duet ca token"},
     OB_TOKEN},
    {{{"list", no_argument, NULL, 'I'}, NULL, "list the tokens not yet redeemed"}, OB_LIST},
    {{{"from-p12", required_argument, NULL, 'X'},
      "F.p12",
      "read a PKCS#12 back: its key and certificates to PEM files in --out DIR"},
     OB_FROM_P12},
    {{{"help", no_argument, NULL, 'h'}, NULL, "print this help"}, ~0u},
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
        lo[i] = table[i].f.o; /* all, so a stray option is named in the refusal */
    o->sans = calloc((size_t)argc + 1, sizeof(char *));
    if (o->sans == NULL)
        return -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        unsigned bit = 0;
        const char *name = NULL;
        for (size_t i = 0; i < NOPTS; i++) {
            if (table[i].f.o.val == c) {
                bit = table[i].bit;
                name = table[i].f.o.name;
            }
        }
        if (c == 'h') {
            cli_opts_help(stdout, usage, allowed);
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
        case 'X':
            o->from_p12 = optarg;
            break;
        case 't':
            if (duration_parse(optarg, &o->ttl, &derr) != 0 || o->ttl <= 0) {
                fprintf(stderr, "%s: --ttl \"%s\": expected a duration such as 720h or 30d\n",
                        o->cmd, optarg);
                return -1;
            }
            break;
        case 'e':
        case 'i':
            /* --expiring (cert list) and --within (cert expiring) are one window. */
            if (duration_parse(optarg, &o->within, &derr) != 0) {
                fprintf(stderr, "%s: --%s \"%s\": expected a duration such as 30d\n", o->cmd, name,
                        optarg);
                return -1;
            }
            o->expiring = o->within;
            o->within_text = optarg;
            o->has_within = o->has_expiring = true;
            break;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

/* The synopsis, then a line for each option the command allows; see cli.h. */
void
cli_opts_help(FILE *out, const char *usage, unsigned allowed)
{
    fputs(usage, out);
    fputs("options:\n", out);
    for (size_t i = 0; i < NOPTS; i++) {
        if (table[i].bit & allowed)
            cli_flag_line(out, table[i].f.o.name, table[i].f.arg, table[i].f.help);
    }
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

/* OUTDIR is a writable directory, created when missing; see cli.h. */
int
cli_check_out_dir(const char *dir, struct duet_err *err)
{
    char path[4096];
    struct stat st;
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return err_set(err, DUET_ERR_INPUT, "--out: expected a directory name");
    if (stat(dir, &st) != 0) {
        /* mkdir -p: parents 0755, the directory itself 0700 (keys go there). */
        memcpy(path, dir, len + 1);
        for (char *p = path + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (stat(path, &st) != 0 && mkdir(path, 0755) != 0)
                return err_set(err, DUET_ERR_INPUT, "--out %s: cannot create %s: %s", dir, path,
                               strerror(errno));
            *p = '/';
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return err_set(err, DUET_ERR_INPUT, "--out %s: cannot create it: %s", dir,
                           strerror(errno));
        if (stat(dir, &st) != 0)
            return err_set(err, DUET_ERR_INPUT, "--out %s: %s", dir, strerror(errno));
    }
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
