/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_inventory.c - the CA's certificate commands: `duet cert issue`, `sign`,
 * `list`, `show`, `renew`, `revoke`, `export` and `expiring`.
 *
 * One option table serves them all; each command names the options it
 * accepts, so a stray option is an error rather than silently ignored.  Exit
 * 0 on success, 1 when the operation fails or is refused, 2 on usage errors.
 * Files are written only after the inventory has recorded the certificate.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/pemout.h"
#include "lib/x509util.h"

enum opt_bit {
    OB_CA_DIR = 1u << 0, OB_OUT = 1u << 1, OB_PROFILE = 1u << 2, OB_SAN = 1u << 3,
    OB_TTL = 1u << 4, OB_OWNER = 1u << 5, OB_LOCATION = 1u << 6, OB_KEY_TYPE = 1u << 7,
    OB_PASS = 1u << 8, OB_FORMAT = 1u << 9, OB_EXPIRING = 1u << 10, OB_STATUS = 1u << 11,
    OB_REASON = 1u << 12, OB_REUSE_KEY = 1u << 13, OB_CERT = 1u << 14, OB_KEY = 1u << 15,
    OB_LEGACY = 1u << 16, OB_PASSWORD_FILE = 1u << 17, OB_WITHIN = 1u << 18, OB_NAME = 1u << 19,
    OB_FORCE = 1u << 20,
};

/* parse_opts() result for --help: print the usage, exit 0. */
#define PARSE_HELP 1

struct opts {
    const char *cmd;
    const char *ca_dir, *out, *profile, *owner, *location, *key_type, *pass_file, *format;
    const char *status, *reason, *cert, *key, *password_file, *name;
    const char **sans;
    size_t nsans;
    int64_t ttl, expiring, within;
    const char *within_text;
    bool has_expiring, has_within, reuse_key, legacy, force;
    char **args;
    int nargs;
};

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
    {{"help", no_argument, NULL, 'h'}, ~0u},
};
#define NOPTS (sizeof(table) / sizeof(table[0]))

/* Parse the options a command allows; positional arguments go to o->args. */
static int
parse_opts(int argc, char **argv, unsigned allowed, const char *usage, struct opts *o)
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
            return PARSE_HELP;
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
        case 'd': o->ca_dir = optarg; break;
        case 'o': o->out = optarg; break;
        case 'p': o->profile = optarg; break;
        case 's': o->sans[o->nsans++] = optarg; break;
        case 'w': o->owner = optarg; break;
        case 'l': o->location = optarg; break;
        case 'k': o->key_type = optarg; break;
        case 'P': o->pass_file = optarg; break;
        case 'f': o->format = optarg; break;
        case 'S': o->status = optarg; break;
        case 'r': o->reason = optarg; break;
        case 'R': o->reuse_key = true; break;
        case 'c': o->cert = optarg; break;
        case 'K': o->key = optarg; break;
        case 'L': o->legacy = true; break;
        case 'W': o->password_file = optarg; break;
        case 'n': o->name = optarg; break;
        case 'F': o->force = true; break;
        case 't':
            if (duration_parse(optarg, &o->ttl, &derr) != 0 || o->ttl <= 0) {
                fprintf(stderr, "%s: --ttl \"%s\": expected a duration such as 720h or 30d\n",
                        o->cmd, optarg);
                return -1;
            }
            break;
        case 'e':
            if (duration_parse(optarg, &o->expiring, &derr) != 0) {
                fprintf(stderr, "%s: --expiring \"%s\": expected a duration such as 30d\n",
                        o->cmd, optarg);
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

static void
opts_free(struct opts *o)
{
    free(o->sans);
}

/* A file name for NAME: letters, digits, '.', '-', '_', '@', not starting with '.'. */
static bool
safe_name(const char *n)
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

static char *
path_in(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

/* Check that OUTDIR is a writable directory before anything is issued. */
static int
check_out_dir(const char *dir, struct duet_err *err)
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

/*
 * Check that FILE can be written (its directory exists and is writable) and,
 * unless `force`, does not exist yet: checked before anything is issued, so a
 * refusal records nothing.
 */
static int
check_out_file(const char *path, bool force, struct duet_err *err)
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
        return err_set(err, DUET_ERR_INPUT, "--out %s already exists; choose another file or --force",
                       path);
    return 0;
}

/* Leaf then issuing CA, PEM, mode 0644. */
static int
write_chain(const char *path, X509 *leaf, X509 *issuing, struct duet_err *err)
{
    X509 *chain[2] = {leaf, issuing};

    return pemout_certs(path, chain, 2, NULL, err);
}

/* Print a line about an issued certificate. */
static void
report_issued(const char *what, X509 *cert, const char *profile, bool clamped,
              const char *key_path, const char *crt_path)
{
    char *serial = x509u_serial(X509_get0_serialNumber(cert));
    char *subj = x509u_name(X509_get_subject_name(cert));
    int64_t na = 0;
    char date[32];

    x509u_time(X509_get0_notAfter(cert), &na);
    x509u_fmt_rfc3339(na, date, sizeof(date));
    printf("%s ", what);
    cli_put_text(stdout, subj ? subj : "?");
    printf(" (serial %s), profile %s, valid until %s\n", serial ? serial : "?", profile, date);
    if (clamped)
        printf("note: the validity was cut to the issuing CA's notAfter\n");
    if (key_path != NULL)
        printf("key:         %s\n", key_path);
    if (crt_path != NULL)
        printf("certificate: %s\n", crt_path);
    free(serial);
    free(subj);
}

static const char issue_usage[] =
    "usage: duet cert issue NAME --profile server|client|peer|device --ca-dir DIR --out OUTDIR\n"
    "                       [--san dns:H|ip:A|uri:U|email:E]... [--ttl 720h] [--owner TEXT]\n"
    "                       [--location TEXT] [--key-type p256|p384|ed25519|rsa3072]\n"
    "                       [--passphrase-file F] [--force]\n";

int
cmd_cert_issue(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert issue"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *key_path = NULL, *crt_path = NULL;
    bool clamped = false;
    int rc = EXIT_USAGE;

    if ((prc = parse_opts(argc, argv,
                   OB_CA_DIR | OB_OUT | OB_PROFILE | OB_SAN | OB_TTL | OB_OWNER | OB_LOCATION |
                       OB_KEY_TYPE | OB_PASS | OB_FORCE,
                   issue_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL || o.profile == NULL) {
        fprintf(stderr, "%s: NAME, --profile, --ca-dir and --out are required\n%s", o.cmd,
                issue_usage);
        goto out;
    }
    if (!safe_name(o.args[0])) {
        fprintf(stderr,
                "%s: NAME \"%s\" must be 1-64 letters, digits, '.', '-', '_' or '@' (it names "
                "the files)\n",
                o.cmd, o.args[0]);
        goto out;
    }
    rc = EXIT_INVALID;
    if (check_out_dir(o.out, &err) != 0 || cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0)
        goto fail;
    key_path = path_in(o.out, o.args[0], ".key");
    crt_path = path_in(o.out, o.args[0], ".crt");
    if (key_path == NULL || crt_path == NULL) {
        err_nomem(&err);
        goto fail;
    }
    if (!o.force && (access(key_path, F_OK) == 0 || access(crt_path, F_OK) == 0)) {
        err_set(&err, DUET_ERR_INPUT, "%s or %s already exists; choose another NAME or --force",
                key_path, crt_path);
        goto fail;
    }
    {
        struct ca_request req = {.profile = o.profile,
                                 .cn = o.args[0],
                                 .sans = o.sans,
                                 .nsans = o.nsans,
                                 .ttl = o.ttl,
                                 .owner = o.owner,
                                 .location = o.location};
        if (ca_issue_keypair(ca, &req, o.key_type, &cert, &key, &clamped, &err) != 0)
            goto fail;
    }
    /* Recorded in the inventory: now the files. */
    if (pemout_key(key_path, key, NULL, &err) != 0 ||
        write_chain(crt_path, cert, ca_issuing_cert(ca), &err) != 0)
        goto fail;
    report_issued("issued", cert, o.profile, clamped, key_path, crt_path);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    free(key_path);
    free(crt_path);
    ca_close(ca);
    opts_free(&o);
    return rc;
}

static const char sign_usage[] =
    "usage: duet cert sign CSR --profile P --ca-dir DIR --out FILE [--name CN]\n"
    "                      [--san dns:H|ip:A|uri:U|email:E]... [--ttl 720h] [--owner TEXT]\n"
    "                      [--location TEXT] [--passphrase-file F] [--force]\n";

int
cmd_cert_sign(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert sign"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct load_bundle b;
    struct ca *ca = NULL;
    struct ca_sign_opts sopts;
    struct ca_csr csr;
    X509 *cert = NULL;
    bool clamped = false;
    int rc = EXIT_USAGE;

    memset(&b, 0, sizeof(b));
    memset(&sopts, 0, sizeof(sopts));
    memset(&csr, 0, sizeof(csr));
    if ((prc = parse_opts(argc, argv,
                   OB_CA_DIR | OB_OUT | OB_PROFILE | OB_SAN | OB_TTL | OB_OWNER | OB_LOCATION |
                       OB_PASS | OB_NAME | OB_FORCE,
                   sign_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL || o.profile == NULL) {
        fprintf(stderr, "%s: CSR, --profile, --ca-dir and --out are required\n%s", o.cmd,
                sign_usage);
        goto out;
    }
    rc = EXIT_INVALID;
    if (check_out_file(o.out, o.force, &err) != 0 || load_bundle_file(o.args[0], NULL, &b, &err) != 0)
        goto fail;
    if (b.csrs == NULL || sk_X509_REQ_num(b.csrs) != 1) {
        err_set(&err, DUET_ERR_INPUT, "%s: expected exactly one certificate request", o.args[0]);
        goto fail;
    }
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
    if (write_chain(o.out, cert, ca_issuing_cert(ca), &err) != 0)
        goto fail;
    report_issued("signed", cert, o.profile, clamped, NULL, o.out);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    ca_csr_clear(&csr);
    X509_free(cert);
    load_bundle_clear(&b);
    ca_close(ca);
    opts_free(&o);
    return rc;
}

/* --- list / show ------------------------------------------------------------ */

/*
 * A JSON string for inventory text (owner, location, names): as it is when it
 * is UTF-8, else escaped as cli_text() does, so the row is never dropped.
 */
static json_t *
jtext(const char *s)
{
    json_t *j;
    char *esc;

    if (s == NULL)
        return json_null();
    if ((j = json_string(s)) != NULL)
        return j;
    esc = cli_text(s);
    j = esc != NULL ? json_string(esc) : NULL;
    free(esc);
    return j != NULL ? j : json_null();
}

/*
 * One GENERAL_NAME as "DNS:x" for JSON, its value whole: a name holding a NUL
 * is shown escaped rather than cut at the NUL.
 */
static json_t *
name_json(const GENERAL_NAME *g)
{
    char buf[600];

    if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
        const char *tag = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
        const unsigned char *d = ASN1_STRING_get0_data(g->d.ia5);
        size_t n = (size_t)ASN1_STRING_length(g->d.ia5);
        size_t tl = strlen(tag), o = tl + 1;
        bool nul = memchr(d, 0, n) != NULL;
        char *s = malloc(tl + 2 + 4 * n);
        json_t *j;

        if (s == NULL)
            return json_null();
        memcpy(s, tag, tl);
        s[tl] = ':';
        for (size_t i = 0; i < n; i++) {
            if (!nul || (d[i] >= 0x20 && d[i] < 0x7f)) {
                s[o++] = (char)d[i];
            } else {
                snprintf(s + o, 5, "\\x%02x", d[i]);
                o += 4;
            }
        }
        s[o] = '\0';
        j = jtext(s);
        free(s);
        return j;
    }
    x509u_general_name(g, buf, sizeof(buf));
    return jtext(buf);
}

/*
 * The SANs of a row, one JSON string each, read from the certificate itself:
 * the stored "DNS:a, URI:b" text would split a URI holding ", IP:..." in two.
 */
static json_t *
row_sans(const struct store_cert *c)
{
    const unsigned char *p = c->der;
    X509 *x = c->der != NULL ? d2i_X509(NULL, &p, (long)c->der_len) : NULL;
    GENERAL_NAMES *gens = x != NULL ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL)
                                    : NULL;
    json_t *sans = json_array();

    if (x != NULL) {
        for (int i = 0; sans != NULL && gens != NULL && i < sk_GENERAL_NAME_num(gens); i++)
            json_array_append_new(sans, name_json(sk_GENERAL_NAME_value(gens, i)));
    } else if (sans != NULL && c->sans[0] != '\0') {
        /* No certificate to read: the stored text, split where it was joined. */
        char *copy = strdup(c->sans);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            json_array_append_new(sans, jtext(t));
        }
        free(copy);
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    ERR_clear_error();
    return sans;
}

static json_t *
row_json(const struct store_cert *c, int64_t now, bool full)
{
    char nb[32], na[32];
    json_t *j;

    x509u_fmt_rfc3339(c->not_before, nb, sizeof(nb));
    x509u_fmt_rfc3339(c->not_after, na, sizeof(na));
    j = json_pack("{s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:s,s:s,s:I,s:s}", "serial", c->serial, "name",
                  jtext(c->name), "subject", jtext(c->subject), "sans", row_sans(c), "profile",
                  c->profile, "owner", jtext(c->owner), "location", jtext(c->location),
                  "not_before", nb, "not_after", na, "days_left",
                  (json_int_t)((c->not_after - now) / 86400), "status",
                  store_status_text(c, now));
    if (j != NULL && full) {
        char buf[32];
        json_object_set_new(j, "issuer", jtext(c->issuer));
        json_object_set_new(j, "key_fingerprint", json_string(c->key_fingerprint));
        x509u_fmt_rfc3339(c->issued_at, buf, sizeof(buf));
        json_object_set_new(j, "issued_at", json_string(buf));
        if (c->status == STORE_REVOKED) {
            x509u_fmt_rfc3339(c->revoked_at, buf, sizeof(buf));
            json_object_set_new(j, "revoked_at", json_string(buf));
            json_object_set_new(j, "revocation_reason", json_string(x509u_crl_reason(c->reason)));
        }
        json_object_set_new(j, "renews", c->renews ? json_string(c->renews) : json_null());
        json_object_set_new(j, "renewed_by",
                            c->renewed_by ? json_string(c->renewed_by) : json_null());
    }
    return j;
}

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

int
cmd_cert_list(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert list"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_filter f;
    struct store_cert **rows = NULL;
    size_t n = 0;
    int64_t now = (int64_t)time(NULL);
    int rc = EXIT_USAGE;

    memset(&f, 0, sizeof(f));
    if ((prc = parse_opts(argc, argv, OB_CA_DIR | OB_EXPIRING | OB_STATUS | OB_OWNER | OB_PROFILE | OB_FORMAT,
                   list_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
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
            json_array_append_new(arr, row_json(rows[i], now, false));
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
    opts_free(&o);
    return rc;
}

/* Find a row from SERIAL (any openssl form) or a certificate file. */
static int
find_row(struct ca *ca, const char *arg, struct store_cert **row, struct duet_err *err)
{
    char *serial = NULL;
    struct stat st;

    *row = NULL;
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        STACK_OF(X509) *certs = NULL;
        if (load_certs_file(arg, NULL, &certs, err) != 0)
            return -1;
        serial = x509u_serial(X509_get0_serialNumber(sk_X509_value(certs, 0)));
        OSSL_STACK_OF_X509_free(certs);
        if (serial == NULL)
            return err_nomem(err);
    } else if ((serial = store_serial_canonical(arg, err)) == NULL) {
        err_prefix(err, "%s is neither a certificate file nor a serial number", arg);
        return -1;
    }
    if (store_get(ca_store(ca), serial, row, err) != 0) {
        free(serial);
        return -1;
    }
    if (*row == NULL) {
        err_set(err, DUET_ERR_INPUT, "serial %s is not in the inventory of %s", serial,
                ca_dir(ca));
        free(serial);
        return -1;
    }
    free(serial);
    return 0;
}

static const char show_usage[] = "usage: duet cert show SERIAL|CERTFILE --ca-dir DIR [--format text|json]\n";

int
cmd_cert_show(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert show"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    json_t *j = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = EXIT_USAGE;

    if ((prc = parse_opts(argc, argv, OB_CA_DIR | OB_FORMAT, show_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL) {
        fprintf(stderr, "%s: SERIAL and --ca-dir are required\n%s", o.cmd, show_usage);
        goto out;
    }
    if (o.format != NULL && strcmp(o.format, "json") != 0 && strcmp(o.format, "text") != 0) {
        fprintf(stderr, "%s: --format \"%s\": expected text or json\n", o.cmd, o.format);
        goto out;
    }
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 || find_row(ca, o.args[0], &row, &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    j = row_json(row, now, true);
    if (o.format != NULL && strcmp(o.format, "json") == 0) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            char *text = json_is_string(v) ? strdup(json_string_value(v))
                         : json_is_null(v)  ? strdup("-")
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
    opts_free(&o);
    return rc;
}

/* --- renew / revoke -------------------------------------------------------- */

static const char renew_usage[] =
    "usage: duet cert renew SERIAL|CERTFILE --ca-dir DIR --out OUTDIR [--reuse-key] [--ttl D]\n"
    "                       [--key-type T] [--name FILENAME] [--passphrase-file F] [--force]\n"
    "writes OUTDIR/NAME.crt (and NAME.key unless --reuse-key); NAME defaults to the CN\n";

/* A file name from a CN: characters outside [A-Za-z0-9._-@] become '_'. */
static void
file_base(const char *cn, char *buf, size_t len)
{
    size_t n = 0;

    for (const char *p = cn; *p && n + 1 < len && n < 64; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_' || *p == '@';
        buf[n++] = ok ? *p : '_';
    }
    buf[n] = '\0';
    if (n == 0 || buf[0] == '.')
        buf[0] = '_';
}

int
cmd_cert_renew(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert renew"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    struct ca_renewal renewal;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char *key_path = NULL, *crt_path = NULL;
    bool clamped = false;
    int rc = EXIT_USAGE;

    memset(&renewal, 0, sizeof(renewal));
    if ((prc = parse_opts(argc, argv, OB_CA_DIR | OB_OUT | OB_REUSE_KEY | OB_TTL | OB_KEY_TYPE | OB_PASS | OB_NAME | OB_FORCE,
                   renew_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL || o.out == NULL) {
        fprintf(stderr, "%s: SERIAL|CERTFILE, --ca-dir and --out are required\n%s", o.cmd,
                renew_usage);
        goto out;
    }
    if (o.reuse_key && o.key_type != NULL) {
        fprintf(stderr, "%s: --key-type makes a new key; it cannot go with --reuse-key\n", o.cmd);
        goto out;
    }
    if (o.name != NULL && !safe_name(o.name)) {
        fprintf(stderr, "%s: --name \"%s\" must be 1-64 letters, digits, '.', '-', '_' or '@'\n",
                o.cmd, o.name);
        goto out;
    }
    if (check_out_dir(o.out, &err) != 0 || cli_open_ca(o.ca_dir, true, o.pass_file, &ca, &err) != 0 ||
        find_row(ca, o.args[0], &row, &err) != 0)
        goto fail;
    if (ca_renew_check(row, &renewal, &err) != 0)
        goto fail;
    {
        char base[80];
        if (o.name != NULL)
            snprintf(base, sizeof(base), "%s", o.name);
        else
            file_base(renewal.cn, base, sizeof(base));
        key_path = path_in(o.out, base, ".key");
        crt_path = path_in(o.out, base, ".crt");
    }
    if (key_path == NULL || crt_path == NULL) {
        err_nomem(&err);
        goto fail;
    }
    if (!o.force && ((!o.reuse_key && access(key_path, F_OK) == 0) || access(crt_path, F_OK) == 0)) {
        err_set(&err, DUET_ERR_INPUT,
                "%s or %s already exists; renew into another --out, give --name, or --force to "
                "replace them",
                key_path, crt_path);
        goto fail;
    }
    {
        struct ca_renew_opts ropts = {.reuse_key = o.reuse_key, .key_type = o.key_type,
                                      .ttl = o.ttl};
        if (ca_renew(ca, &renewal, &ropts, &cert, &key, &clamped, &err) != 0)
            goto fail;
    }
    if ((!o.reuse_key && pemout_key(key_path, key, NULL, &err) != 0) ||
        write_chain(crt_path, cert, ca_issuing_cert(ca), &err) != 0)
        goto fail;
    report_issued("renewed as", cert, row->profile, clamped, o.reuse_key ? NULL : key_path,
                  crt_path);
    printf("renews:      %s\n", row->serial);
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    ca_renewal_clear(&renewal);
    free(key_path);
    free(crt_path);
    EVP_PKEY_free(key);
    X509_free(cert);
    store_cert_free(row);
    ca_close(ca);
    opts_free(&o);
    return rc;
}

static const char revoke_usage[] =
    "usage: duet cert revoke SERIAL|CERTFILE --ca-dir DIR\n"
    "                        [--reason unspecified|keyCompromise|caCompromise|affiliationChanged|\n"
    "                                  superseded|cessationOfOperation|certificateHold]\n";

int
cmd_cert_revoke(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert revoke"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_cert *row = NULL;
    int reason = 0;
    int rc = EXIT_USAGE;

    if ((prc = parse_opts(argc, argv, OB_CA_DIR | OB_REASON, revoke_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 1 || o.ca_dir == NULL) {
        fprintf(stderr, "%s: SERIAL|CERTFILE and --ca-dir are required\n%s", o.cmd, revoke_usage);
        goto out;
    }
    if (o.reason != NULL && (reason = ca_reason_parse(o.reason)) < 0) {
        fprintf(stderr, "%s: --reason \"%s\" is not a reason\n%s", o.cmd, o.reason, revoke_usage);
        goto out;
    }
    if (cli_protect_secrets(&err) != 0 || cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        find_row(ca, o.args[0], &row, &err) != 0 ||
        ca_revoke(ca, row->serial, reason, (int64_t)time(NULL), &err) != 0) {
        rc = cli_fail(o.cmd, &err);
        goto out;
    }
    printf("revoked ");
    cli_put_text(stdout, row->name);
    printf(" (serial %s), reason %s; publish it with duet crl generate\n", row->serial,
           x509u_crl_reason(reason));
    rc = EXIT_OK;
out:
    store_cert_free(row);
    ca_close(ca);
    opts_free(&o);
    return rc;
}

/* --- export ---------------------------------------------------------------- */

static const char export_usage[] =
    "usage: duet cert export --cert F --key F --format pem|der|p12 [--legacy]\n"
    "                        [--password-file F] --out F\n";

/* The leaf, the rest of its file's certificates, then the key when given, as PEM. */
static int
export_pem(const char *path, X509 *leaf, STACK_OF(X509) *rest, EVP_PKEY *key,
           struct duet_err *err)
{
    size_t n = 1 + (size_t)sk_X509_num(rest);
    X509 **certs = calloc(n, sizeof(*certs));
    int rc;

    if (certs == NULL)
        return err_nomem(err);
    certs[0] = leaf;
    for (size_t i = 1; i < n; i++)
        certs[i] = sk_X509_value(rest, (int)i - 1);
    rc = pemout_certs(path, certs, n, key, err);
    free(certs);
    return rc;
}

int
cmd_cert_export(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert export"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    char *pass = NULL;
    X509 *leaf;
    int wrc;
    int rc = EXIT_USAGE;

    if ((prc = parse_opts(argc, argv, OB_CERT | OB_KEY | OB_FORMAT | OB_LEGACY | OB_PASSWORD_FILE | OB_OUT,
                   export_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 0 || o.cert == NULL || o.out == NULL || o.format == NULL) {
        fprintf(stderr, "%s: --cert, --format and --out are required\n%s", o.cmd, export_usage);
        goto out;
    }
    if (strcmp(o.format, "pem") != 0 && strcmp(o.format, "der") != 0 &&
        strcmp(o.format, "p12") != 0) {
        fprintf(stderr, "%s: --format \"%s\": expected pem, der or p12\n", o.cmd, o.format);
        goto out;
    }
    if (strcmp(o.format, "p12") == 0 && (o.key == NULL || o.password_file == NULL)) {
        fprintf(stderr, "%s: --format p12 needs --key and --password-file\n", o.cmd);
        goto out;
    }
    if (strcmp(o.format, "der") == 0 && (o.key != NULL || o.password_file != NULL)) {
        fprintf(stderr, "%s: --format der holds the certificate only; --key and --password-file "
                        "do not apply\n",
                o.cmd);
        goto out;
    }
    if (strcmp(o.format, "pem") == 0 && o.password_file != NULL) {
        fprintf(stderr, "%s: --format pem writes the key unencrypted; --password-file applies to "
                        "p12 only\n",
                o.cmd);
        goto out;
    }
    if (o.legacy && strcmp(o.format, "p12") != 0) {
        fprintf(stderr, "%s: --legacy applies to --format p12 only\n", o.cmd);
        goto out;
    }
    rc = EXIT_INVALID;
    if (load_certs_file(o.cert, NULL, &certs, &err) != 0 ||
        (o.key != NULL && load_key_file(o.key, NULL, &key, &err) != 0) ||
        (o.password_file != NULL && fileio_read_secret(o.password_file, &pass, &err) != 0))
        goto fail;
    leaf = sk_X509_shift(certs);
    if (key != NULL && X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        X509_free(leaf);
        err_set(&err, DUET_ERR_INPUT, "%s does not belong to the certificate in %s", o.key, o.cert);
        goto fail;
    }
    if (strcmp(o.format, "der") == 0) {
        wrc = pemout_cert_der(o.out, leaf, &err);
    } else if (strcmp(o.format, "pem") == 0) {
        /* The chain, then the key when given: one file for servers that want both. */
        wrc = export_pem(o.out, leaf, certs, key, &err);
    } else {
        wrc = pemout_p12(o.out, key, leaf, certs, pass, o.legacy, &err);
    }
    X509_free(leaf);
    if (wrc != 0)
        goto fail;
    printf("wrote %s (%s%s)\n", o.out, o.format, o.legacy ? ", legacy 3DES/SHA-1" : "");
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail(o.cmd, &err);
out:
    OSSL_STACK_OF_X509_free(certs);
    EVP_PKEY_free(key);
    fileio_free_secret(pass);
    opts_free(&o);
    return rc;
}

/* --- expiring --------------------------------------------------------------- */

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
    "usage: duet cert expiring --ca-dir DIR --within 30d [--format text|prometheus]\n"
    "exit 0 none, 1 when an unrevoked certificate that was not renewed expires within the\n"
    "window (or has expired), 2 when the inventory cannot be read\n";

int
cmd_cert_expiring(int argc, char **argv)
{
    int prc;
    struct opts o = {.cmd = "duet cert expiring"};
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct ca *ca = NULL;
    struct store_filter f;
    struct store_cert **rows = NULL;
    size_t n = 0, hits = 0;
    int64_t now = (int64_t)time(NULL);
    bool prom = false;
    int rc = EXIT_USAGE;

    memset(&f, 0, sizeof(f));
    if ((prc = parse_opts(argc, argv, OB_CA_DIR | OB_WITHIN | OB_FORMAT, expiring_usage, &o)) != 0) {
        rc = prc == PARSE_HELP ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (o.nargs != 0 || o.ca_dir == NULL || !o.has_within) {
        fprintf(stderr, "%s: --ca-dir and --within are required\n%s", o.cmd, expiring_usage);
        goto out;
    }
    if (o.format != NULL) {
        if (strcmp(o.format, "prometheus") == 0)
            prom = true;
        else if (strcmp(o.format, "text") != 0) {
            fprintf(stderr, "%s: --format \"%s\": expected text or prometheus\n", o.cmd, o.format);
            goto out;
        }
    }
    f.now = now;
    if (cli_open_ca(o.ca_dir, false, NULL, &ca, &err) != 0 ||
        store_list(ca_store(ca), &f, &rows, &n, &err) != 0) {
        /* Exit 2, not 1: "cannot tell" must not read as "certificates are expiring". */
        cli_fail(o.cmd, &err);
        rc = EXIT_USAGE;
        goto out;
    }
    if (prom) {
        printf("# HELP duet_certificate_expiry_seconds Seconds until an unrevoked certificate of "
               "the inventory expires.\n# TYPE duet_certificate_expiry_seconds gauge\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = rows[i];
        /* Unrevoked and not replaced by a renewal; already expired ones count too. */
        if (c->status == STORE_REVOKED || c->renewed_by != NULL)
            continue;
        bool in_window = c->not_after <= now + o.within;
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
    } else if (hits == 0) {
        printf("no certificate expires within %s\n", o.within_text);
    }
    rc = hits > 0 ? EXIT_INVALID : EXIT_OK;
out:
    store_certs_free(rows, n);
    ca_close(ca);
    opts_free(&o);
    return rc;
}
