/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_doctor.c - `duet doctor`: check an mTLS set-up before it fails.
 *
 * `duet doctor --config proxy.yaml` reads the configuration through the
 * proxy's own parser (the file of `duet proxy` or of `duet tunnel`, told
 * apart by which parser accepts it) and checks each listener: its
 * certificate, key, trust bundle and CRLs (doctor_files.c, with the checks
 * of src/lib/doctor.c), its upstream TLS files, and whether something
 * listens or connects where it should not.  `duet doctor --cert C --key K
 * [--cacert R] [--crl F]... [--role server|client]` checks a set of files.
 *
 * Each finding has a severity, a stable code, the file and (from a
 * configuration) the YAML key with its line, one sentence and one "fix:"
 * line.  Exit 0 without errors (warnings and notes included), 1 with at
 * least one error, 2 on a usage error or an unreadable --config.  Output is
 * escaped: names from certificates are hostile.  docs/cli/doctor.md is the
 * contract, codes and JSON keys included.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>

#include "cli/cli.h"
#include "cli/doctor.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/ycfg.h"
#include "proxy/config.h"

enum {
    OPT_CONFIG = 256,
    OPT_CERT,
    OPT_KEY,
    OPT_CACERT,
    OPT_CRL,
    OPT_ROLE,
    OPT_FORMAT,
    OPT_WITHIN,
    OPT_PASSWORD_FILE,
    OPT_HELP
};

static const struct cli_flag flags[] = {
    {{"config", required_argument, NULL, OPT_CONFIG}, "FILE",
     "a duet proxy or duet tunnel configuration: every listener"},
    {{"cert", required_argument, NULL, OPT_CERT}, "C",
     "a certificate file (leaf first, then its chain)"},
    {{"key", required_argument, NULL, OPT_KEY}, "K", "the key of --cert"},
    {{"cacert", required_argument, NULL, OPT_CACERT}, "ROOTS", "the CAs trusted for peers"},
    {{"crl", required_argument, NULL, OPT_CRL}, "F", "a CRL checked with them (repeatable)"},
    {{"role", required_argument, NULL, OPT_ROLE}, "server|client",
     "how --cert is used (default server)"},
    {{"format", required_argument, NULL, OPT_FORMAT}, "text|json",
     "findings as text (default) or one JSON array"},
    {{"within", required_argument, NULL, OPT_WITHIN}, "D",
     "warn about certificates expiring within D (default 30d)"},
    {{"password-file", required_argument, NULL, OPT_PASSWORD_FILE}, "F",
     "the passphrase of an encrypted --key (or PKCS#12), first line"},
    {{"help", no_argument, NULL, OPT_HELP}, NULL, "print this help"},
};

/* The usage, with one line per option. */
static void
doctor_usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet doctor --config FILE [--format text|json] [--within D]\n"
        "       duet doctor --cert C --key K [--password-file F] [--cacert ROOTS] [--crl F]...\n"
        "                   [--role server|client] [--format text|json] [--within D]\n"
        "Checks an mTLS set-up before it fails; each problem with its fix.\n"
        "exit 0 no errors (warnings allowed), 1 at least one error, 2 usage error\n",
        flags, CLI_NFLAGS(flags));
}

/* --- output ------------------------------------------------------------------------- */

/* A line for the terminal: escaped, then a newline. */
static void put_line(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void
put_line(const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cli_put_text(stdout, line);
    fputc('\n', stdout);
}

/* "FILE (KEY, CONFIG:LINE, listener NAME)" of a finding. */
static void
where_text(const struct doctor_finding *f, char *buf, size_t len)
{
    char place[1024] = "";
    size_t off = 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (off < sizeof(place))                                                                   \
            off += (size_t)snprintf(place + off, sizeof(place) - off, __VA_ARGS__);                \
    } while (0)
    if (f->key != NULL)
        ADD("%s", f->key);
    if (f->config != NULL && f->line > 0)
        ADD("%s%s:%zu", off ? ", " : "", f->config, f->line);
    else if (f->config != NULL)
        ADD("%s%s", off ? ", " : "", f->config);
    if (f->listener != NULL)
        ADD("%slistener %s", off ? ", " : "", f->listener);
#undef ADD
    if (f->file != NULL)
        snprintf(buf, len, "%s%s%s%s", f->file, place[0] ? " (" : "", place, place[0] ? ")" : "");
    else
        snprintf(buf, len, "%s", place);
}

/* The findings as text: three lines each, then the result. */
static void
print_text(const struct doctor_report *r)
{
    size_t errors = doctor_count(r, DOCTOR_ERROR), warnings = doctor_count(r, DOCTOR_WARNING);

    for (size_t i = 0; i < r->n; i++) {
        const struct doctor_finding *f = &r->v[i];
        char where[2048];
        where_text(f, where, sizeof(where));
        put_line("%s %s: %s", doctor_sev_name(f->sev), f->code, where);
        put_line("  %s", f->problem);
        put_line("  fix: %s", f->fix);
    }
    if (errors == 0 && warnings == 0)
        put_line("no problems found");
    else
        put_line("result: %zu error%s, %zu warning%s", errors, errors == 1 ? "" : "s", warnings,
                 warnings == 1 ? "" : "s");
}

/* A JSON string or null. */
static json_t *
str_or_null(const char *s)
{
    return s != NULL ? cli_json_text(s) : json_null();
}

/* The findings as one JSON array. */
static void
print_json(const struct doctor_report *r)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < r->n; i++) {
        const struct doctor_finding *f = &r->v[i];
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "severity",
                           doctor_sev_name(f->sev), "code", f->code, "file", str_or_null(f->file),
                           "key", str_or_null(f->key), "config", str_or_null(f->config), "line",
                           f->line > 0 ? json_integer((json_int_t)f->line) : json_null(),
                           "listener", str_or_null(f->listener), "problem",
                           cli_json_text(f->problem), "fix", cli_json_text(f->fix)));
    }
    json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(arr);
}

/* --- a configuration ------------------------------------------------------------------ */

/* The node of key `name` in a mapping, or NULL. */
static yaml_node_t *
map_key(struct ycfg *y, yaml_node_t *map, const char *name)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ycfg_node(y, p->key);
        const char *s = ycfg_scalar(k);
        if (s != NULL && strcmp(s, name) == 0)
            return k;
    }
    return NULL;
}

/* The value node of key `name` in a mapping, or NULL. */
static yaml_node_t *
map_value(struct ycfg *y, yaml_node_t *map, const char *name)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *s = ycfg_scalar(ycfg_node(y, p->key));
        if (s != NULL && strcmp(s, name) == 0)
            return ycfg_node(y, p->value);
    }
    return NULL;
}

/*
 * The 1-based line of a listener's key ("cert"; "upstream_tls" then "cert"
 * when `section` is set; "" for the listener itself), 0 when not found
 * (a key given by default).
 */
static size_t
yaml_line(struct ycfg *y, size_t idx, const char *section, const char *key)
{
    yaml_node_t *ls = map_value(y, ycfg_root(y), "listeners"), *l, *k;

    if (ls == NULL || ls->type != YAML_SEQUENCE_NODE ||
        idx >= (size_t)(ls->data.sequence.items.top - ls->data.sequence.items.start))
        return 0;
    l = ycfg_node(y, ls->data.sequence.items.start[idx]);
    if (section != NULL)
        l = map_value(y, l, section);
    if (key[0] == '\0')
        return l != NULL ? l->start_mark.line + 1 : 0;
    k = map_key(y, l, key);
    return k != NULL ? k->start_mark.line + 1 : 0;
}

/* A source in the configuration: listeners[i].KEY at its line. */
static void
cfg_src(struct doctor_src *src, char *keybuf, size_t klen, struct ycfg *y, const char *config,
        size_t idx, const char *section, const char *key, const char *file, const char *listener)
{
    snprintf(keybuf, klen, "listeners[%zu].%s%s%s", idx, section != NULL ? section : "",
             section != NULL ? "." : "", key);
    *src = (struct doctor_src){.file = file,
                               .key = keybuf,
                               .config = config,
                               .line = yaml_line(y, idx, section, key),
                               .listener = listener};
}

/*
 * Whether an address is a wildcard: 0.0.0.0 (however spelled: "0" resolves
 * to it), :: (or 0:0:0:0:0:0:0:0), or the IPv4-mapped ::ffff:0.0.0.0, which
 * an IPv6 socket accepts every IPv4 client on (RFC 4291 2.5.5.2).
 */
static bool
is_wildcard(const struct net_addr *a)
{
    if (a->is_unix)
        return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)&a->ss)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *in6 =
            &((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_addr;
        static const uint8_t zero4[4];
        return IN6_IS_ADDR_UNSPECIFIED(in6) ||
               (IN6_IS_ADDR_V4MAPPED(in6) && memcmp(&in6->s6_addr[12], zero4, 4) == 0);
    }
    return false;
}

/* Listen, target and admin addresses that reach further than they should. */
static void
check_addresses(struct doctor_run *run, const struct proxy_cfg *c, const struct listener_cfg *l,
                struct ycfg *y, size_t idx)
{
    struct doctor_src src;
    char key[128];

    if (c->role == ROLE_TUNNEL && !net_addr_is_loopback(&l->listen)) {
        cfg_src(&src, key, sizeof(key), y, c->config_file, idx, NULL, "listen", NULL, l->name);
        doctor_add(&run->rep, DOCTOR_WARNING, "listen_exposed", &src,
                   "listen on 127.0.0.1 (or a unix socket) and remove unsafe_listen",
                   "the tunnel listens on %s, beyond loopback: anyone who reaches it connects "
                   "with this tunnel's client certificate",
                   l->listen.text);
    }
    if (c->role == ROLE_SERVER && l->up_cert == NULL && l->up_cacert == NULL) {
        for (size_t t = 0; t < l->ntargets; t++) {
            if (net_addr_is_loopback(&l->targets[t]))
                continue;
            cfg_src(&src, key, sizeof(key), y, c->config_file, idx, NULL, "target", NULL, l->name);
            doctor_add(&run->rep, DOCTOR_WARNING, "target_plaintext", &src,
                       "use upstream TLS to the target (upstream_tls: {cacert: ...}), or run "
                       "the service on the proxy's machine and target 127.0.0.1",
                       "the target %s is not on loopback and upstream TLS is off: requests and "
                       "the client identity header leave the machine in plaintext",
                       l->targets[t].text);
        }
    }
}

/* The admin listener on a wildcard address. */
static void
check_admin(struct doctor_run *run, const struct proxy_cfg *c, struct ycfg *y)
{
    yaml_node_t *k = map_key(y, ycfg_root(y), "admin");
    struct doctor_src src = {
        .key = "admin", .config = c->config_file, .line = k != NULL ? k->start_mark.line + 1 : 0};

    if (!c->has_admin || !is_wildcard(&c->admin))
        return;
    doctor_add(&run->rep, DOCTOR_WARNING, "admin_exposed", &src,
               "listen on 127.0.0.1 (admin: 127.0.0.1:PORT) and let the metrics scraper reach it "
               "there, or bind a private address",
               "the admin listener (/metrics, /healthz, /readyz) is on %s, every interface: "
               "certificate names and counts are visible to anyone who reaches it",
               c->admin.text);
}

/* One listener: its TLS side, its upstream TLS side, its addresses. */
static void
check_listener(struct doctor_run *run, const struct proxy_cfg *c, struct listener_cfg *l,
               struct ycfg *y, size_t idx)
{
    struct doctor_side s = {.role =
                                c->role == ROLE_SERVER ? DOCTOR_ROLE_SERVER : DOCTOR_ROLE_CLIENT,
                            .crl_leaf_only = l->crl_scope == DUET_CRL_LEAF,
                            .crl_expired_warns = l->crl_expired_warn,
                            .key_mode_refused = !c->insecure_key_mode,
                            .peer_crls = true};
    size_t nfiles = l->ncrls - l->ncrl_fetched;
    struct doctor_src *crl_srcs = calloc(nfiles + 1, sizeof(*crl_srcs));
    char kc[128], kk[128], ka[128], kr[128];

    if (crl_srcs == NULL) {
        run->rep.nomem = true;
        return;
    }
    cfg_src(&s.cert_src, kc, sizeof(kc), y, c->config_file, idx, NULL, "cert", l->cert, l->name);
    cfg_src(&s.key_src, kk, sizeof(kk), y, c->config_file, idx, NULL, "key", l->key, l->name);
    cfg_src(&s.cacert_src, ka, sizeof(ka), y, c->config_file, idx, NULL, "cacert", l->cacert,
            l->name);
    cfg_src(&crl_srcs[0], kr, sizeof(kr), y, c->config_file, idx, NULL, "crl", NULL, l->name);
    for (size_t i = 0; i < nfiles; i++) {
        crl_srcs[i] = crl_srcs[0];
        crl_srcs[i].file = l->crls[i];
    }
    s.cert = l->cert;
    s.key = l->key;
    s.cacert = l->cacert;
    s.crls = l->crls;
    s.ncrls = nfiles;
    s.crl_srcs = crl_srcs;
    s.crl_fetch = l->ncrl_fetched > 0;
    doctor_check_side(run, &s);
    if (l->up_cert != NULL || l->up_cacert != NULL) {
        struct doctor_side u = {.role = DOCTOR_ROLE_CLIENT,
                                .key_mode_refused = !c->insecure_key_mode,
                                .peer_crls = true,
                                .cert = l->up_cert,
                                .key = l->up_key,
                                .cacert = l->up_cacert};
        cfg_src(&u.cert_src, kc, sizeof(kc), y, c->config_file, idx, "upstream_tls", "cert",
                l->up_cert, l->name);
        cfg_src(&u.key_src, kk, sizeof(kk), y, c->config_file, idx, "upstream_tls", "key",
                l->up_key, l->name);
        cfg_src(&u.cacert_src, ka, sizeof(ka), y, c->config_file, idx, "upstream_tls", "cacert",
                l->up_cacert, l->name);
        doctor_check_side(run, &u);
    }
    check_addresses(run, c, l, y, idx);
    free(crl_srcs);
}

/*
 * Read `path` with the proxy's parser, else the tunnel's; -1 with the
 * proxy's error (the tunnel's when it names a tunnel-only key) when neither
 * accepts it.
 */
static int
load_config(const char *path, struct proxy_cfg *c, struct duet_err *err)
{
    struct duet_err terr;

    err_clear(&terr);
    memset(c, 0, sizeof(*c));
    if (proxy_cfg_from_file(path, ROLE_SERVER, c, err) == 0)
        return 0;
    memset(c, 0, sizeof(*c));
    if (proxy_cfg_from_file(path, ROLE_TUNNEL, c, &terr) == 0) {
        err_clear(err);
        return 0;
    }
    if (strstr(err->msg, "is not a setting of duet proxy") != NULL &&
        strstr(terr.msg, "is not a setting of duet tunnel") == NULL)
        *err = terr;
    return -1;
}

/* `duet doctor --config`: every listener of the file. */
static int
doctor_config(struct doctor_run *run, const char *path)
{
    struct proxy_cfg c;
    struct ycfg y;
    struct duet_err err;

    err_clear(&err);
    if (load_config(path, &c, &err) != 0) {
        struct doctor_src src = {.file = path, .config = path};
        doctor_add(&run->rep, DOCTOR_ERROR, "config_invalid", &src,
                   "correct the file: duet proxy --config FILE --check (or duet tunnel) checks "
                   "it the same way",
                   "%s", err.msg);
        return 0;
    }
    if (ycfg_load(path, &y, &err) != 0) {
        proxy_cfg_clear(&c);
        fprintf(stderr, "duet doctor: ");
        cli_put_text(stderr, err.msg);
        fputc('\n', stderr);
        return -1;
    }
    for (size_t i = 0; i < c.nlisteners; i++)
        check_listener(run, &c, &c.listeners[i], &y, i);
    check_admin(run, &c, &y);
    ycfg_free(&y);
    proxy_cfg_clear(&c);
    return 0;
}

/* --- the command ----------------------------------------------------------------------- */

/* `duet doctor`; see the top of the file. */
int
cmd_doctor(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct doctor_run run = {.soon = 30 * 86400};
    struct doctor_side s = {.role = DOCTOR_ROLE_SERVER, .key_mode_refused = true};
    const char *config = NULL;
    char **crls = calloc((size_t)argc + 1, sizeof(char *));
    struct doctor_src *crl_srcs = calloc((size_t)argc + 1, sizeof(*crl_srcs));
    struct duet_err err;
    char *password = NULL;
    bool json = false, files;
    int rc = EXIT_USAGE, c;

    err_clear(&err);
    if (crls == NULL || crl_srcs == NULL) {
        fprintf(stderr, "duet doctor: out of memory\n");
        goto out;
    }
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_CERT:
            s.cert = optarg;
            break;
        case OPT_KEY:
            s.key = optarg;
            break;
        case OPT_CACERT:
            s.cacert = optarg;
            break;
        case OPT_CRL:
            crl_srcs[s.ncrls] = (struct doctor_src){.file = optarg, .key = "--crl"};
            crls[s.ncrls++] = optarg;
            break;
        case OPT_ROLE:
            if (strcmp(optarg, "server") == 0) {
                s.role = DOCTOR_ROLE_SERVER;
            } else if (strcmp(optarg, "client") == 0) {
                s.role = DOCTOR_ROLE_CLIENT;
            } else {
                fprintf(stderr, "duet doctor: --role \"");
                cli_put_text(stderr, optarg);
                fprintf(stderr, "\": expected server or client\n");
                goto out;
            }
            break;
        case OPT_FORMAT:
            if (!cli_format("duet doctor", optarg, &json))
                goto out;
            break;
        case OPT_WITHIN:
            if (!cli_positive_duration("duet doctor", "--within", optarg, "7d, 30d or 90d",
                                       &run.soon))
                goto out;
            break;
        case OPT_PASSWORD_FILE:
            fileio_free_secret(password);
            password = NULL;
            if (fileio_read_secret(optarg, &password, &err) != 0) {
                fprintf(stderr, "duet doctor: --password-file: ");
                cli_put_text(stderr, err.msg);
                fputc('\n', stderr);
                goto out;
            }
            break;
        case OPT_HELP:
            doctor_usage(stdout);
            rc = EXIT_OK;
            goto out;
        default: /* ':' too */
            cli_bad_option("duet doctor", c, argv);
            doctor_usage(stderr);
            goto out;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "duet doctor: unexpected argument \"");
        cli_put_text(stderr, argv[optind]);
        fprintf(stderr, "\"\n");
        doctor_usage(stderr);
        goto out;
    }
    files = s.cert != NULL || s.key != NULL || s.cacert != NULL || s.ncrls > 0;
    if (config != NULL && (files || password != NULL)) {
        fprintf(stderr, "duet doctor: --config checks its own files; give either --config or "
                        "--cert/--key/--cacert/--crl/--password-file\n");
        doctor_usage(stderr);
        goto out;
    }
    if (config == NULL && !files) {
        fprintf(stderr, "duet doctor: nothing to check: give --config FILE, or --cert C --key K\n");
        doctor_usage(stderr);
        goto out;
    }
    if (config == NULL && (s.cert == NULL) != (s.key == NULL)) {
        fprintf(stderr, "duet doctor: --cert and --key go together\n");
        goto out;
    }
    if (config != NULL && access(config, R_OK) != 0) {
        fprintf(stderr, "duet doctor: ");
        cli_put_text(stderr, config);
        fprintf(stderr, ": cannot read the configuration: %s\n", strerror(errno));
        goto out;
    }
    run.now = (int64_t)time(NULL);
    run.uid = geteuid();
    run.config = config != NULL;
    if ((run.system = X509_STORE_new()) == NULL || !X509_STORE_set_default_paths(run.system)) {
        ERR_clear_error();
        X509_STORE_free(run.system);
        run.system = NULL;
    }
    if (config != NULL) {
        if (doctor_config(&run, config) != 0)
            goto out;
    } else {
        s.cert_src = (struct doctor_src){.file = s.cert, .key = "--cert"};
        s.key_src = (struct doctor_src){.file = s.key, .key = "--key"};
        s.cacert_src = (struct doctor_src){.file = s.cacert, .key = "--cacert"};
        s.crls = crls;
        s.crl_srcs = crl_srcs;
        s.password = password;
        doctor_check_side(&run, &s);
    }
    if (run.rep.nomem) {
        fprintf(stderr, "duet doctor: out of memory\n");
        rc = EXIT_INVALID;
        goto out;
    }
    if (json)
        print_json(&run.rep);
    else
        print_text(&run.rep);
    rc = doctor_count(&run.rep, DOCTOR_ERROR) > 0 ? EXIT_INVALID : EXIT_OK;
out:
    X509_STORE_free(run.system);
    doctor_report_clear(&run.rep);
    free(crls);
    free(crl_srcs);
    fileio_free_secret(password);
    return rc;
}
