/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - `duet proxy` / `duet tunnel` configuration from flags or YAML.
 *
 * Every setting is one row of a table (see "the settings table" below): its
 * flag, its YAML key, the commands that take it, the kind of its value, the
 * function that stores it, its default and its help line.  The flags, the
 * YAML walker, the defaults and `--help` are all made from that table, so a
 * flag and its key accept the same values and refuse the others with the
 * same words ("--drain-timeout: ..." or "proxy.yaml:3:18: limits.drain_timeout:
 * ...").  Flags describe one listener (the ghostunnel-style one-liner); the
 * YAML file describes several.  Validation happens here for everything that
 * does not need the files' contents: addresses, modes, rule patterns, and the
 * rule that a plaintext target must be on loopback or a unix socket unless
 * unsafe_target is set.
 */
#include "proxy/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/duration.h"
#include "lib/ycfg.h"
#include "proxy/crlplan.h"
#include "proxy/http.h"
#include "proxy/staple.h"
#include "util/log.h"

/* --- clearing ----------------------------------------------------------- */

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static void
listener_clear(struct listener_cfg *l)
{
    free(l->name);
    net_addr_clear(&l->listen);
    free(l->cert);
    free(l->key);
    free(l->cacert);
    strv_free(l->crls, l->ncrls);
    strv_free(l->crl_urls, l->ncrl_urls);
    strv_free(l->crl_fetch_urls, l->ncrl_fetched);
    free(l->ocsp_staple_url);
    free(l->staple_url);
    free(l->staple_file);
    free(l->ocsp_url);
    free(l->alpn);
    free(l->ticket_keys);
    for (size_t i = 0; i < l->ntargets; i++)
        net_addr_clear(&l->targets[i]);
    free(l->targets);
    strv_free(l->target_names, l->ntargets);
    free(l->up_cert);
    free(l->up_key);
    free(l->up_cacert);
    free(l->up_name);
    free(l->server_name);
    strv_free(l->verify_uris, l->nverify_uris);
    policy_clear(&l->policy);
    memset(l, 0, sizeof(*l));
}

void
proxy_cfg_clear(struct proxy_cfg *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nlisteners; i++)
        listener_clear(&c->listeners[i]);
    free(c->listeners);
    free(c->config_file);
    net_addr_clear(&c->admin);
    free(c->log_file);
    free(c->log_level);
    free(c->throttle_exempt);
    free(c->crl_cache);
    memset(c, 0, sizeof(*c));
}

/*
 * Settings that expose something by mistake, checked for flags and YAML
 * alike (`yaml` chooses the names in the message): a tunnel's plaintext
 * side, which connects with the tunnel's own client certificate, reachable
 * from other machines.
 */
static int
check_exposure(const struct proxy_cfg *c, const struct listener_cfg *l, bool yaml,
               struct duet_err *err)
{
    if (c->role == ROLE_TUNNEL && l->listen.text != NULL && !l->unsafe_listen &&
        !net_addr_is_loopback(&l->listen))
        return err_set(err, DUET_ERR_INPUT,
                       "%s: %s %s is not on loopback or a unix socket: anyone who reaches it "
                       "would connect with this tunnel's client certificate; listen on "
                       "127.0.0.1, or set %s if that is intended",
                       l->name, yaml ? "listen" : "--listen", l->listen.text,
                       yaml ? "unsafe_listen: true" : "--unsafe-listen");
    return 0;
}

static int
strv_push(char ***v, size_t *n, const char *s, struct duet_err *err)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));

    if (nv == NULL)
        return err_nomem(err);
    *v = nv;
    if ((nv[*n] = strdup(s)) == NULL)
        return err_nomem(err);
    (*n)++;
    return 0;
}

static int
set_str(char **dst, const char *s, struct duet_err *err)
{
    char *c = strdup(s);

    if (c == NULL)
        return err_nomem(err);
    free(*dst);
    *dst = c;
    return 0;
}

static int
add_target(struct listener_cfg *l, const char *text, bool tunnel, struct duet_err *err)
{
    struct net_addr *nt = realloc(l->targets, (l->ntargets + 1) * sizeof(*nt));
    char **nn;

    if (nt == NULL)
        return err_nomem(err);
    l->targets = nt;
    nn = realloc(l->target_names, (l->ntargets + 1) * sizeof(char *));
    if (nn == NULL)
        return err_nomem(err);
    l->target_names = nn;
    if (net_addr_parse(text, !tunnel, &l->targets[l->ntargets], err) != 0)
        return -1;
    /* The host part as given, for the tunnel's SNI and name check. */
    {
        char host[256] = "";
        const char *colon = strrchr(text, ':');
        size_t n = colon != NULL ? (size_t)(colon - text) : strlen(text);
        if (text[0] == '[' && n >= 2) {
            memcpy(host, text + 1, n - 2 < sizeof(host) - 1 ? n - 2 : sizeof(host) - 1);
        } else {
            memcpy(host, text, n < sizeof(host) - 1 ? n : sizeof(host) - 1);
        }
        if ((nn[l->ntargets] = strdup(host)) == NULL) {
            net_addr_clear(&l->targets[l->ntargets]);
            return err_nomem(err);
        }
    }
    l->ntargets++;
    return 0;
}

/* Checks that need the whole listener. */
static int
validate_listener(const struct proxy_cfg *c, struct listener_cfg *l, struct duet_err *err)
{
    const char *who = l->name;

    if (l->listen.text == NULL)
        return err_set(err, DUET_ERR_INPUT, "%s: listen: an address is required", who);
    if (l->ntargets == 0)
        return err_set(err, DUET_ERR_INPUT, "%s: target: at least one is required", who);
    if (l->cacert == NULL)
        return err_set(err, DUET_ERR_INPUT, "%s: cacert: the certificates to trust are required",
                       who);
    if (c->role == ROLE_SERVER) {
        if (l->cert == NULL || l->key == NULL)
            return err_set(err, DUET_ERR_INPUT, "%s: cert and key are required", who);
        bool upstream_tls = l->up_cert != NULL || l->up_cacert != NULL;
        for (size_t i = 0; i < l->ntargets; i++) {
            if (!upstream_tls && !l->unsafe_target && !net_addr_is_loopback(&l->targets[i]))
                return err_set(err, DUET_ERR_INPUT,
                               "%s: target %s is not on loopback or a unix socket: plaintext "
                               "there would leave the machine; use upstream TLS or "
                               "--unsafe-target",
                               who, l->targets[i].text);
        }
        if (l->up_cacert == NULL && l->up_cert != NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: upstream TLS needs upstream_cacert to verify the upstream", who);
        if (l->up_proto == UPSTREAM_H2 && l->up_cacert == NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: upstream_protocol h2 is HTTP/2 over TLS: it needs "
                           "upstream_tls (upstream_cacert); for plaintext use h2c",
                           who);
        if (l->up_proto == UPSTREAM_H2C && l->up_cacert != NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: upstream_protocol h2c is plaintext but upstream_tls is set; "
                           "expected h2 (HTTP/2 over TLS) or auto",
                           who);
        if (l->up_proto != UPSTREAM_HTTP1 && l->mode != MODE_HTTP)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: upstream_protocol applies to http mode only; tcp mode relays bytes",
                           who);
        if (l->up_proto != UPSTREAM_HTTP1 && l->proxy_protocol)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: an HTTP/2 upstream_protocol shares upstream connections between "
                           "clients; the PROXY protocol describes one client connection",
                           who);
        if (l->policy.nrules == 0 && !l->verify_optional)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: no --allow rule: every client would be denied (use --allow any to "
                           "admit any verified certificate)",
                           who);
    } else {
        if (l->server_name == NULL)
            return err_set(err, DUET_ERR_INPUT, "%s: server-name: required to verify the server",
                           who);
        if ((l->cert == NULL) != (l->key == NULL))
            return err_set(err, DUET_ERR_INPUT, "%s: cert and key go together", who);
        if (l->require_staple && l->no_staple_check)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: require_staple: a staple is required but --no-staple-check "
                           "(staple_check: false) does not ask for one; keep one of the two",
                           who);
    }
    return 0;
}

/* --- YAML rules ------------------------------------------------------------- */

/* One rule: {name, allow|deny: [patterns], methods, host, path | path_prefix}. */
struct rule_tmp {
    char *name;
    char **allow, **deny, **methods;
    size_t nallow, ndeny, nmethods;
    char *host, *path, *path_prefix;
};

static int
r_name(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct rule_tmp *)t)->name, err);
}

static int
pattern_list(struct ycfg *y, yaml_node_t *v, const char *p, char ***out, size_t *n,
             struct duet_err *err)
{
    if (ycfg_strings(y, v, p, out, n, err) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        struct policy_pattern pp;
        struct duet_err e;
        if (policy_pattern_parse((*out)[i], &pp, &e) != 0)
            return ycfg_error(y, v, p, err, "%s", e.msg);
        policy_pattern_clear(&pp);
    }
    return 0;
}

static int
r_allow(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct rule_tmp *r = t;
    return pattern_list(y, v, p, &r->allow, &r->nallow, err);
}

static int
r_deny(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct rule_tmp *r = t;
    return pattern_list(y, v, p, &r->deny, &r->ndeny, err);
}

static int
r_methods(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct rule_tmp *r = t;
    return ycfg_strings(y, v, p, &r->methods, &r->nmethods, err);
}

static int
r_host(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct rule_tmp *)t)->host, err);
}

/* Whether `s` holds a byte >= 0x80 (UTF-8 written as is in the YAML). */
static bool
rule_path_has_8bit(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/*
 * `s` with each byte >= 0x80 percent-encoded in upper-case hex, the form
 * requests are compared in (RFC 3986 2.1, 6.2.2.1); the caller frees it.
 */
static char *
rule_path_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return out;
}

/*
 * A rule's path as requests are compared: requests are decided on their
 * normalised path (http.c), so a rule written otherwise ("/a//b", "/a/../b",
 * "/%61", "/caf\xc3\xa9" for "/caf%C3%A9") could never match, and one with a query
 * would not mean what it says.  Percent-encodings are compared with upper-case
 * hex on both sides, so "%c3" in a request matches "%C3" in a rule.
 */
static int
rule_path(struct ycfg *y, yaml_node_t *v, const char *p, char **out, struct duet_err *err)
{
    char *norm = NULL;
    struct duet_err e;
    int rc = 0;

    if (ycfg_string(y, v, p, out, err) != 0)
        return -1;
    if ((*out)[0] != '/')
        return ycfg_error(y, v, p, err, "\"%s\": a path starts with /", *out);
    if (strchr(*out, '?') != NULL)
        return ycfg_error(y, v, p, err,
                          "\"%s\": a rule matches the path only; a query ('?') is not matched",
                          *out);
    if (rule_path_has_8bit(*out)) {
        char *enc = rule_path_encode(*out);
        if (enc == NULL)
            return err_nomem(err);
        rc = ycfg_error(y, v, p, err,
                        "\"%s\": requests carry bytes outside ASCII percent-encoded, so this "
                        "never matches; write \"%s\"",
                        *out, enc);
        free(enc);
        return rc;
    }
    if (http_normalize_target(*out, &norm, &e) != 0)
        rc = ycfg_error(y, v, p, err, "\"%s\": %s", *out, e.msg);
    else if (strcmp(norm, *out) != 0)
        rc = ycfg_error(y, v, p, err,
                        "\"%s\": requests are matched after normalisation, so this never "
                        "matches; write \"%s\"",
                        *out, norm);
    free(norm);
    return rc;
}

/* `path`: the exact path (the query aside). */
static int
r_path(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return rule_path(y, v, p, &((struct rule_tmp *)t)->path, err);
}

/* `path_prefix`: whole leading segments ("/api" admits /api and /api/x, not /apix). */
static int
r_path_prefix(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return rule_path(y, v, p, &((struct rule_tmp *)t)->path_prefix, err);
}

static const struct ycfg_key rule_keys[] = {
    {"name", r_name, false},       {"allow", r_allow, false},
    {"deny", r_deny, false},       {"methods", r_methods, false},
    {"host", r_host, false},       {"path", r_path, false},
    {"path_prefix", r_path_prefix, false},
    {NULL, NULL, false},
};

/*
 * The YAML `rules` of a listener: an ordered list of {name, allow|deny,
 * methods, host, path | path_prefix}; each pattern is checked here, with its
 * path.
 */
static int
yaml_rules(struct ycfg *y, yaml_node_t *v, const char *p, struct listener_cfg *l,
           struct duet_err *err)
{
    int idx = 0;

    if (v == NULL || v->type != YAML_SEQUENCE_NODE)
        return ycfg_error(y, v, p, err, "expected a list of rules");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *rn = ycfg_node(y, *it);
        struct rule_tmp r;
        char path[300];
        char defname[64];
        int rc;

        memset(&r, 0, sizeof(r));
        snprintf(path, sizeof(path), "%s[%d]", p, idx);
        rc = ycfg_map(y, rn, path, rule_keys, &r, err);
        if (rc == 0 && (r.nallow > 0) == (r.ndeny > 0))
            rc = ycfg_error(y, rn, path, err, "a rule has either allow or deny, with patterns");
        if (rc == 0 && r.path != NULL && r.path_prefix != NULL)
            rc = ycfg_error(y, rn, path, err,
                            "path (exact) and path_prefix exclude each other; keep one");
        if (rc == 0) {
            snprintf(defname, sizeof(defname), "rule %d", idx + 1);
            rc = policy_add_rule(&l->policy, r.name != NULL ? r.name : defname, r.nallow > 0,
                                 (const char *const *)(r.nallow > 0 ? r.allow : r.deny),
                                 r.nallow > 0 ? r.nallow : r.ndeny,
                                 (const char *const *)r.methods, r.nmethods, r.host, r.path,
                                 r.path_prefix, err);
            if (rc != 0)
                err_prefix(err, "%s", path);
        }
        free(r.name);
        strv_free(r.allow, r.nallow);
        strv_free(r.deny, r.ndeny);
        strv_free(r.methods, r.nmethods);
        free(r.host);
        free(r.path);
        free(r.path_prefix);
        if (rc != 0)
            return -1;
    }
    return 0;
}


/* --- the settings table ---------------------------------------------------- */

/* Where a setting's YAML key lives. */
enum cfg_at {
    AT_TOP,      /* the top level of the file */
    AT_LIMITS,   /* limits: */
    AT_LISTENER, /* listeners[N]: */
    AT_UPSTREAM, /* listeners[N].upstream_tls: */
};

/* The commands that take a setting (config.h). */
#define CMD_PROXY PROXY_SETTING_PROXY
#define CMD_TUNNEL PROXY_SETTING_TUNNEL
#define CMD_BOTH (CMD_PROXY | CMD_TUNNEL)
#define CMD_QUIET PROXY_SETTING_QUIET

/* The kinds of value; one parser each, for flags and YAML alike. */
enum cfg_kind {
    KIND_STRING,   /* any text */
    KIND_PATH,     /* a file name */
    KIND_ADDR,     /* ADDR:PORT or unix:PATH; which forms are allowed is the setter's */
    KIND_BOOL,     /* a flag without value; true or false (yes/no, on/off) in YAML */
    KIND_INT,      /* a whole number from min to max */
    KIND_NUMBER,   /* a positive number, fractions allowed */
    KIND_DURATION, /* 500ms, 10s, 5m, 1h: milliseconds, more than 0 and less than a day */
    KIND_ENUM,     /* one of names[] */
    KIND_CSV,      /* a comma-separated list as a flag; a list (or that text) in YAML */
    KIND_PATTERN,  /* an identity pattern (docs/proxy.md#patterns) */
    KIND_CIDR,     /* an IPv4 or IPv6 network, or one address */
    KIND_RULES,    /* YAML only: the ordered rules */
};

/* Options of a row. */
#define OPT_REPEAT 0x1u /* a flag given several times adds; in YAML, one value or a list */
#define OPT_NEGATE 0x2u /* the flag means false (--no-session-tickets vs session_tickets) */
#define OPT_YREQ 0x4u   /* the YAML key is required in its mapping */
#define OPT_META 0x8u   /* says what to do, not how to run (--config, --check, --help) */

/* How help groups the settings. */
enum cfg_group { G_LISTEN, G_TLS, G_ACCESS, G_UPSTREAM, G_LIMITS, G_RUN, G_COUNT };

/* One parsed value, by kind. */
union cfg_val {
    const char *s; /* STRING, PATH, ADDR, CSV, PATTERN, CIDR: the text, valid during the call */
    bool b;        /* BOOL */
    long n;        /* INT */
    double d;      /* NUMBER */
    int ms;        /* DURATION */
    int e;         /* ENUM: the index in names[] */
};

/* What a setter writes into, and what --config/--check/--help ask for. */
struct cfg_ctx {
    struct proxy_cfg *cfg;
    struct listener_cfg *l; /* the listener being described; NULL at the top level */
    enum proxy_role role;
    const char *config; /* --config */
    bool check;         /* --check */
    bool help;          /* --help */
};

struct cfg_row {
    struct proxy_setting pub; /* flag, key, arg, help, default as shown; see config.h */
    enum cfg_at at;
    enum cfg_kind kind;
    unsigned opt;
    long min, max;            /* KIND_INT; max: KIND_DURATION's longest in ms (0: a day) */
    const char *expect;       /* KIND_INT, _DURATION: what the message says after "expected" */
    const char *const *names; /* KIND_ENUM, NULL-terminated; also what help lists */
    const char *dflt;         /* a value applied before the flags or the file, or NULL */
    const char *targ, *thelp; /* the tunnel's placeholder and help line, when they differ */
    enum cfg_group group;
    /* Store a parsed value; errors are the message's body, without the flag or key. */
    int (*set)(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err);
    void (*reset)(struct proxy_cfg *c); /* OPT_REPEAT at the top: empty the list */
};


/* The setters: one per setting, storing what the kind's parser produced. */
#define SET_LSTR(fn, field)                                                                        \
    static int fn(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)                 \
    {                                                                                              \
        return set_str(&x->l->field, v->s, err);                                                   \
    }
#define SET_LBOOL(fn, field)                                                                       \
    static int fn(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)                 \
    {                                                                                              \
        (void)err;                                                                                 \
        x->l->field = v->b;                                                                        \
        return 0;                                                                                  \
    }
#define SET_GMS(fn, field)                                                                         \
    static int fn(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)                 \
    {                                                                                              \
        (void)err;                                                                                 \
        x->cfg->field = v->ms;                                                                     \
        return 0;                                                                                  \
    }


/*
 * `name`: it labels the listener's log lines and metrics series
 * (listener="web"), so 1 to 64 bytes of [A-Za-z0-9._-]; unique is checked
 * once every listener is read (yaml_listeners).
 */
static int
s_name(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    size_t n = strspn(v->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    if (v->s[n] != '\0' || n == 0 || n > 64)
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\": a listener name is 1 to 64 characters of A-Z, a-z, 0-9, '.', "
                       "'_' and '-'",
                       v->s);
    return set_str(&x->l->name, v->s, err);
}
SET_LSTR(s_cert, cert)
SET_LSTR(s_key, key)
SET_LSTR(s_cacert, cacert)
SET_LSTR(s_ticket_keys, ticket_keys)
SET_LSTR(s_alpn, alpn)
SET_LSTR(s_up_cert, up_cert)
SET_LSTR(s_up_key, up_key)
SET_LSTR(s_up_cacert, up_cacert)
SET_LSTR(s_up_name, up_name)
SET_LSTR(s_server_name, server_name)
SET_LBOOL(s_tls12, tls12)
SET_LBOOL(s_ppv2, proxy_protocol)
SET_LBOOL(s_unsafe_target, unsafe_target)
SET_LBOOL(s_reuse_port, reuse_port)
SET_LBOOL(s_unsafe_listen, unsafe_listen)
SET_LBOOL(s_require_staple, require_staple)
SET_GMS(s_hs_timeout, handshake_timeout_ms)
SET_GMS(s_idle_timeout, idle_timeout_ms)
SET_GMS(s_head_timeout, head_timeout_ms)
SET_GMS(s_connect_timeout, connect_timeout_ms)
SET_GMS(s_drain_timeout, drain_timeout_ms)
SET_GMS(s_max_lifetime, max_lifetime_ms)
SET_GMS(s_h2_stream_timeout, h2_stream_timeout_ms)
#undef SET_LSTR
#undef SET_LBOOL
#undef SET_GMS

static int
s_listen(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    net_addr_clear(&x->l->listen);
    return net_addr_parse(v->s, x->role == ROLE_TUNNEL, &x->l->listen, err);
}

static int
s_target(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return add_target(x->l, v->s, x->role == ROLE_TUNNEL, err);
}

static int
s_mode(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->mode = v->e == 0 ? MODE_HTTP : MODE_TCP;
    return 0;
}

static int
s_crl(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return strv_push(&x->l->crls, &x->l->ncrls, v->s, err);
}

static int
s_crl_url(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    struct crl_url u;

    if (crlplan_url_parse(v->s, &u, err) != 0)
        return -1;
    return strv_push(&x->l->crl_urls, &x->l->ncrl_urls, v->s, err);
}

static int
s_ocsp_staple(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->ocsp_staple = v->b;
    return 0;
}

/* An OCSP responder's URL (--ocsp-staple-url, --ocsp-url): http:// only, parsed like a CRL's. */
static int
check_ocsp_url(const char *url, struct duet_err *err)
{
    struct crl_url u;

    if (strncasecmp(url, "http://", 7) != 0)
        return err_set(err, DUET_ERR_INPUT,
                       "OCSP URL \"%.200s\": only http:// is supported; an OCSP response is "
                       "signed by its responder, so duet fetches it over http://",
                       url);
    if (crlplan_url_parse(url, &u, err) != 0) {
        char msg[DUET_ERR_MSG_MAX];
        /* The parser speaks of CRL URLs; this one is an OCSP responder's. */
        if (strncmp(err->msg, "CRL URL", 7) == 0) {
            snprintf(msg, sizeof(msg), "OCSP URL%.*s", (int)sizeof(msg) - 16, err->msg + 7);
            memcpy(err->msg, msg, sizeof(msg));
        }
        return -1;
    }
    return 0;
}

static int
s_ocsp(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->ocsp = v->e == 2 ? OCSP_REQUIRE : v->e == 1 ? OCSP_PREFER : OCSP_OFF;
    return 0;
}

static int
s_ocsp_url(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    if (check_ocsp_url(v->s, err) != 0)
        return -1;
    free(x->l->ocsp_url);
    x->l->ocsp_url = NULL;
    return set_str(&x->l->ocsp_url, v->s, err);
}

static int
s_ocsp_timeout(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->ocsp_timeout_ms = v->ms;
    return 0;
}

static int
s_ocsp_recheck(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->ocsp_recheck_ms = v->ms;
    return 0;
}

static int
s_ocsp_cache_size(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->ocsp_cache_size = v->n;
    return 0;
}

static int
s_ocsp_staple_url(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{

    if (check_ocsp_url(v->s, err) != 0)
        return -1;
    free(x->l->ocsp_staple_url);
    x->l->ocsp_staple_url = NULL;
    return set_str(&x->l->ocsp_staple_url, v->s, err);
}

static int
s_crl_from_cdp(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->crl_from_cdp = v->b;
    return 0;
}

static int
s_crl_cache(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    free(x->cfg->crl_cache);
    x->cfg->crl_cache = NULL;
    return set_str(&x->cfg->crl_cache, v->s, err);
}

static int
s_crl_refresh(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->crl_refresh_ms = v->ms;
    return 0;
}

static int
s_crl_timeout(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->crl_timeout_ms = v->ms;
    return 0;
}

static int
s_crl_max_size(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->crl_max_bytes = v->n;
    return 0;
}

static int
s_crl_scope(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->crl_scope = v->e == 0 ? DUET_CRL_CHAIN : DUET_CRL_LEAF;
    return 0;
}

static int
s_crl_expired(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->crl_expired_warn = v->e == 1;
    return 0;
}

static int
s_insecure_crl_sig(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->insecure_crl_dsa = v->e == 1;
    return 0;
}

static int
s_verify(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->verify_optional = v->e == 1;
    return 0;
}

static int
s_tickets(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->no_tickets = !v->b;
    return 0;
}

static int
s_staple_check(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->no_staple_check = !v->b;
    return 0;
}

static const char *const xfcc_names[] = {"sanitize", "forward_only", "append_forward",
                                         "sanitize_set", NULL};

static int
s_xfcc(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return xfcc_mode_parse(xfcc_names[v->e], &x->l->xfcc, err);
}

static const char *const fwd_names[] = {"set", "append", NULL};
static const char *const up_proto_names[] = {"http/1.1", "h2c", "h2", "auto", NULL};

static int
s_up_proto(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->l->up_proto = (enum upstream_proto)v->e;
    return 0;
}

static int
s_upstream_h2_conns(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->upstream_h2_conns = (int)v->n;
    return 0;
}

static int
s_upstream_h2_max_conns(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->upstream_h2_max_conns = (int)v->n;
    return 0;
}

static int
s_forwarded(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return http_fwd_mode_parse(fwd_names[v->e], &x->l->forwarded, err);
}

/* --allow PATTERN: one rule, named after the flag, in the order given. */
static int
s_allow(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    char name[300];
    const char *pat = v->s;

    snprintf(name, sizeof(name), "--allow %s", pat);
    return policy_add_rule(&x->l->policy, name, true, &pat, 1, NULL, 0, NULL, NULL, NULL, err);
}

static int
s_verify_uri(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return strv_push(&x->l->verify_uris, &x->l->nverify_uris, v->s, err);
}

static int
s_upstream_keepalive(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->upstream_keepalive = (int)v->n;
    return 0;
}

static int
s_max_conns(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->max_conns = v->n;
    return 0;
}

static int
s_max_header(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->max_header_bytes = (size_t)v->n;
    return 0;
}

/* The HTTP/2 limits (KIND_INT rows: the table checked the range). */
static int
s_h2_int(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err, int *field)
{
    (void)x;
    (void)err;
    *field = (int)v->n;
    return 0;
}

static int
s_h2_max_streams(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return s_h2_int(x, v, err, &x->cfg->h2_max_streams);
}

static int
s_h2_stream_window(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return s_h2_int(x, v, err, &x->cfg->h2_stream_window);
}

static int
s_h2_conn_window(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return s_h2_int(x, v, err, &x->cfg->h2_conn_window);
}

static int
s_h2_max_upstreams(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return s_h2_int(x, v, err, &x->cfg->h2_max_upstreams);
}

static int
s_h2_max_held(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->h2_max_held = v->n;
    return 0;
}

static int
s_fail_burst(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->fail_burst = v->d;
    return 0;
}

static int
s_fail_rate(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->fail_per_second = v->d;
    return 0;
}

static int
s_throttle_exempt(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    struct proxy_cfg *c = x->cfg;
    struct throttle_cidr cidr;
    struct throttle_cidr *nv;

    if (throttle_cidr_parse(v->s, &cidr, err) != 0)
        return -1;
    nv = realloc(c->throttle_exempt, (c->nthrottle_exempt + 1) * sizeof(*nv));
    if (nv == NULL)
        return err_nomem(err);
    c->throttle_exempt = nv;
    nv[c->nthrottle_exempt++] = cidr;
    return 0;
}

static void
r_throttle_exempt(struct proxy_cfg *c)
{
    free(c->throttle_exempt);
    c->throttle_exempt = NULL;
    c->nthrottle_exempt = 0;
}

static int
s_admin(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    net_addr_clear(&x->cfg->admin);
    x->cfg->has_admin = false;
    if (net_addr_parse(v->s, false, &x->cfg->admin, err) != 0)
        return -1;
    x->cfg->has_admin = true;
    return 0;
}

static int
s_log(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    return set_str(&x->cfg->log_file, v->s, err);
}

/* The level names are util/log.c's; its check says "\"loud\": expected debug, ...". */
static int
s_log_level(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    if (log_level_check(v->s, err) != 0)
        return -1;
    return set_str(&x->cfg->log_level, v->s, err);
}

static int
s_workers(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->workers = (int)v->n;
    return 0;
}

static int
s_insecure_key(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->cfg->insecure_key_mode = v->b;
    return 0;
}

static int
s_config(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->config = v->s;
    return 0;
}

static int
s_check(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->check = v->b;
    return 0;
}

static int
s_help(struct cfg_ctx *x, const union cfg_val *v, struct duet_err *err)
{
    (void)err;
    x->help = v->b;
    return 0;
}

static const char *const mode_names[] = {"http", "tcp", NULL};
static const char *const scope_names[] = {"chain", "leaf", NULL};
static const char *const expired_names[] = {"reject", "warn", NULL};
static const char *const legacy_sig_names[] = {"none", "dsa", NULL};
static const char *const verify_names[] = {"required", "optional", NULL};
static const char *const ocsp_names[] = {"off", "prefer", "require", NULL};

#define P(flag_, key_, cmds_, arg_, shown_, help_)                                                 \
    .pub = {.flag = flag_, .key = key_, .commands = cmds_, .arg = arg_, .shown = shown_,           \
            .help = help_}

/*
 * Every setting of duet proxy and duet tunnel, in the order help lists them.
 *
 * A row with a default (`dflt`) has it applied, through its own parser, before
 * the flags or the file are read; `shown` is what help and the docs say.
 *
 * Settings in only one of the two forms, and why:
 * - --allow (flags) and rules (YAML): each --allow is one allow rule, named
 *   "--allow PATTERN", the one-line form of `rules`.  Ordered rules with deny,
 *   methods, hosts and paths have no readable form as flags, and a second way
 *   to write allow rules in a file would compete with `rules` over the order.
 * - --config, --check, --help: they say what to do, not how to run.
 *
 * Settings marked CMD_QUIET are the proxy's but duet tunnel accepts them
 * (flags and YAML) without effect: it did before this table existed, so a
 * tunnel command line or file carrying them keeps working.  The tunnel's help
 * does not list them.  The http-only settings (forwarded headers, the request
 * header timeout) and the throttle's exempt list are refused by the tunnel by
 * name, as before; in tcp mode they are accepted and unused, as before.
 *
 * The failed-handshake limiter counts per client address, and one address can
 * be a NAT gateway or a load balancer for many clients: the defaults admit 100
 * failures at once and 10 a second after that (see docs/proxy.md).
 */
static const struct cfg_row rows[] = {
    /* Where to listen and where to go. */
    {P("listen", "listen", CMD_BOTH, "ADDR:PORT", NULL, "where clients connect (numeric address)"),
     .at = AT_LISTENER, .kind = KIND_ADDR, .opt = OPT_YREQ, .group = G_LISTEN, .set = s_listen,
     .targ = "127.0.0.1:PORT|unix:PATH", .thelp = "the local plaintext side"},
    {P("target", "target", CMD_BOTH, "ADDR:PORT|unix:PATH", NULL,
       "the service; repeat for several (round robin)"),
     .at = AT_LISTENER, .kind = KIND_ADDR, .opt = OPT_REPEAT | OPT_YREQ, .group = G_LISTEN,
     .set = s_target, .targ = "HOST:PORT",
     .thelp = "the mTLS server (a name is resolved at start); repeat for several"},
    {P("name", "name", CMD_BOTH, "NAME", "the command's name; listener-N in YAML",
       "the listener's name in logs and metrics"),
     .at = AT_LISTENER, .kind = KIND_STRING, .group = G_LISTEN, .set = s_name},
    {P("mode", "mode", CMD_PROXY, "http|tcp", "http",
       "HTTP/1.1 (identity header, per-request policy) or raw TCP"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = mode_names, .dflt = "http",
     .group = G_LISTEN, .set = s_mode},
    {P("unsafe-target", "unsafe_target", CMD_PROXY | CMD_QUIET, NULL, "off",
       "allow a plaintext target that is not on loopback or a unix socket"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_LISTEN, .set = s_unsafe_target},
    {P("unsafe-listen", "unsafe_listen", CMD_TUNNEL, NULL, "off",
       "allow a listen address that is not on loopback or a unix socket"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_LISTEN, .set = s_unsafe_listen},
    {P("reuse-port", "reuse_port", CMD_BOTH, NULL, "off",
       "share the listening port with another process on purpose"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_LISTEN, .set = s_reuse_port},

    /* TLS. */
    {P("cert", "cert", CMD_BOTH, "CHAIN.pem", NULL, "the certificate presented, leaf first"),
     .at = AT_LISTENER, .kind = KIND_PATH, .group = G_TLS, .set = s_cert},
    {P("key", "key", CMD_BOTH, "KEY.pem", NULL,
       "its private key (refused if readable by group or others)"),
     .at = AT_LISTENER, .kind = KIND_PATH, .group = G_TLS, .set = s_key},
    {P("cacert", "cacert", CMD_BOTH, "ROOTS.pem", NULL, "the CAs trusted for the peer's chain"),
     .at = AT_LISTENER, .kind = KIND_PATH, .opt = OPT_YREQ, .group = G_TLS, .set = s_cacert},
    {P("crl", "crl", CMD_BOTH, "CRL.pem", "none",
       "CRLs to check the peer's chain against; repeatable"),
     .at = AT_LISTENER, .kind = KIND_PATH, .opt = OPT_REPEAT, .group = G_TLS, .set = s_crl},
    {P("crl-url", "crl_urls", CMD_BOTH, "URL", "none",
       "fetch a CRL from this http:// URL at start and before its nextUpdate; repeatable"),
     .at = AT_LISTENER, .kind = KIND_STRING, .opt = OPT_REPEAT, .group = G_TLS,
     .set = s_crl_url},
    {P("crl-from-cdp", "crl_from_cdp", CMD_BOTH, NULL, "off",
       "also fetch the http:// CRL distribution points of --cacert and --cert"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_TLS, .set = s_crl_from_cdp},
    {P("ocsp-staple", "ocsp_staple", CMD_PROXY, NULL, "off",
       "staple an OCSP response for --cert, fetched from its responder and kept fresh"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_TLS, .set = s_ocsp_staple},
    {P("ocsp-staple-url", "ocsp_staple_url", CMD_PROXY, "URL", "the certificate's AIA",
       "the http:// OCSP responder asked for the staple"),
     .at = AT_LISTENER, .kind = KIND_STRING, .group = G_TLS, .set = s_ocsp_staple_url},
    {P("ocsp", "ocsp", CMD_PROXY, "off|prefer|require", "off",
       "ask the client certificate's OCSP responder: prefer fails open, require fails closed"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = ocsp_names, .dflt = "off", .group = G_TLS,
     .set = s_ocsp},
    {P("ocsp-url", "ocsp_url", CMD_PROXY, "URL", "the client certificate's AIA",
       "the http:// OCSP responder asked about client certificates"),
     .at = AT_LISTENER, .kind = KIND_STRING, .group = G_TLS, .set = s_ocsp_url},
    {P("ocsp-timeout", "ocsp_timeout", CMD_PROXY, "DURATION", "2s",
       "a handshake waits this long for the OCSP answer, then --ocsp decides"),
     .at = AT_TOP, .kind = KIND_DURATION, .dflt = "2s", .group = G_TLS, .set = s_ocsp_timeout},
    {P("ocsp-cache-size", "ocsp_cache_size", CMD_PROXY, "N", "10000",
       "OCSP answers about client certificates kept until their nextUpdate"),
     .at = AT_TOP, .kind = KIND_INT, .min = 1, .max = 10000000, .expect = "1 to 10000000 entries",
     .dflt = "10000", .group = G_TLS, .set = s_ocsp_cache_size},
    {P("ocsp-recheck", "ocsp_recheck", CMD_PROXY, "DURATION", "5m",
       "ask again about the clients of open connections once their answer is this old"),
     .at = AT_TOP, .kind = KIND_DURATION, .dflt = "5m", .group = G_TLS, .set = s_ocsp_recheck},
    {P("crl-cache", "crl_cache", CMD_BOTH, "DIR",
       "$CACHE_DIRECTORY/crl, /var/cache/duet/crl (root), ~/.cache/duet/crl",
       "where fetched CRLs are kept, so a restart works offline"),
     .at = AT_TOP, .kind = KIND_PATH, .group = G_TLS, .set = s_crl_cache},
    {P("crl-refresh", "crl_refresh", CMD_BOTH, "DURATION", "1h",
       "fetch each CRL URL again at least this often (else at 2/3 of its validity)"),
     .at = AT_TOP, .kind = KIND_DURATION, .dflt = "1h", .group = G_TLS, .set = s_crl_refresh},
    {P("crl-fetch-timeout", "crl_fetch_timeout", CMD_BOTH, "DURATION", "10s",
       "give up a CRL fetch when connecting or a read waits this long"),
     .at = AT_TOP, .kind = KIND_DURATION, .dflt = "10s", .group = G_TLS, .set = s_crl_timeout},
    {P("crl-max-size", "crl_max_size", CMD_BOTH, "BYTES", "134217728",
       "refuse a fetched CRL larger than this (128 MiB: a million entries in PEM, twice)"),
     .at = AT_TOP, .kind = KIND_INT, .min = 1024, .max = 1073741824,
     .expect = "1024 to 1073741824 bytes", .dflt = "134217728", .group = G_TLS,
     .set = s_crl_max_size},
    {P("crl-scope", "crl_scope", CMD_BOTH, "chain|leaf", "chain",
       "with CRLs, check every certificate below the anchor, or the leaf only"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = scope_names, .dflt = "chain",
     .group = G_TLS, .set = s_crl_scope},
    {P("crl-expired", "crl_expired", CMD_BOTH, "reject|warn", "reject",
       "a CRL past its nextUpdate: refuse the handshakes that need it, or log"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = expired_names, .dflt = "reject",
     .group = G_TLS, .set = s_crl_expired},
    {P("insecure-crl-signature", "insecure_crl_signature", CMD_BOTH, "none|dsa", "none",
       "dsa: also accept CRLs signed with DSA, a legacy algorithm (refused by default)"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = legacy_sig_names, .dflt = "none",
     .group = G_TLS, .set = s_insecure_crl_sig},
    {P("verify", "verify", CMD_PROXY | CMD_QUIET, "required|optional", "required",
       "optional also admits clients without a certificate"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = verify_names, .dflt = "required",
     .group = G_TLS, .set = s_verify},
    {P("tls12", "tls12", CMD_BOTH, NULL, "off", "also allow TLS 1.2 (AEAD ECDHE suites only)"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_TLS, .set = s_tls12},
    {P("alpn", "alpn", CMD_BOTH, "LIST", "none; h2,http/1.1 in http mode",
       "protocols to negotiate, comma-separated (a list in YAML)"),
     .at = AT_LISTENER, .kind = KIND_CSV, .group = G_TLS, .set = s_alpn},
    {P("no-session-tickets", "session_tickets", CMD_PROXY, NULL, "tickets on",
       "no TLS session tickets: every connection a full handshake"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .opt = OPT_NEGATE, .dflt = "true", .group = G_TLS,
     .set = s_tickets},
    {P("ticket-keys", "ticket_keys", CMD_PROXY, "FILE", "off",
       "ticket keys shared by several instances (mode 0600)"),
     .at = AT_LISTENER, .kind = KIND_PATH, .group = G_TLS, .set = s_ticket_keys},

    /* Who may connect (proxy), which server is accepted (tunnel). */
    {P("allow", NULL, CMD_PROXY, "PATTERN", "none: every client denied",
       "admit identities matching PATTERN; repeatable, first match wins"),
     .at = AT_LISTENER, .kind = KIND_PATTERN, .opt = OPT_REPEAT, .group = G_ACCESS,
     .set = s_allow},
    {P(NULL, "rules", CMD_PROXY, NULL, "none: every client denied",
       "ordered allow/deny rules with methods, host and path or path_prefix"),
     .at = AT_LISTENER, .kind = KIND_RULES, .group = G_ACCESS},
    {P("server-name", "server_name", CMD_TUNNEL, "NAME", NULL,
       "sent as SNI and required in the server's certificate"),
     .at = AT_LISTENER, .kind = KIND_STRING, .group = G_ACCESS, .set = s_server_name},
    {P("verify-uri", "verify_uri", CMD_TUNNEL, "PATTERN", "none",
       "the server's identity must also match; repeatable"),
     .at = AT_LISTENER, .kind = KIND_PATTERN, .opt = OPT_REPEAT, .group = G_ACCESS,
     .set = s_verify_uri},
    {P("no-staple-check", "staple_check", CMD_TUNNEL, NULL, "ask and check",
       "do not ask the server for an OCSP staple (nor check one)"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .opt = OPT_NEGATE, .dflt = "true", .group = G_ACCESS,
     .set = s_staple_check},
    {P("require-staple", "require_staple", CMD_TUNNEL, NULL, "off",
       "refuse a server that sends no OCSP staple (as curl --cert-status)"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_ACCESS, .set = s_require_staple},

    /* What the service receives. */
    {P("client-cert-header", "client_cert_header", CMD_PROXY | CMD_QUIET,
       "sanitize|forward_only|append_forward|sanitize_set", "sanitize",
       "http mode: what happens to a client's X-Forwarded-Client-Cert"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = xfcc_names, .dflt = "sanitize",
     .group = G_UPSTREAM, .set = s_xfcc},
    {P("forwarded-headers", "forwarded_headers", CMD_PROXY, "set|append", "set",
       "http mode: replace the client's X-Forwarded-For/Forwarded, or append"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = fwd_names, .dflt = "set",
     .group = G_UPSTREAM, .set = s_forwarded},
    {P("upstream-protocol", "upstream_protocol", CMD_PROXY, "http/1.1|h2c|h2|auto", "http/1.1",
       "http mode: HTTP/2 clients' requests go upstream as HTTP/1.1, h2c, h2 (TLS), or auto"),
     .at = AT_LISTENER, .kind = KIND_ENUM, .names = up_proto_names, .dflt = "http/1.1",
     .group = G_UPSTREAM, .set = s_up_proto},
    {P("proxy-protocol", "proxy_protocol", CMD_PROXY | CMD_QUIET, NULL, "off",
       "tcp mode: send a PROXY protocol v2 header with SSL TLVs first"),
     .at = AT_LISTENER, .kind = KIND_BOOL, .group = G_UPSTREAM, .set = s_ppv2},
    {P("upstream-cert", "cert", CMD_PROXY | CMD_QUIET, "FILE", "off",
       "mTLS to the target: duet's client certificate"),
     .at = AT_UPSTREAM, .kind = KIND_PATH, .group = G_UPSTREAM, .set = s_up_cert},
    {P("upstream-key", "key", CMD_PROXY | CMD_QUIET, "FILE", NULL, "mTLS to the target: its key"),
     .at = AT_UPSTREAM, .kind = KIND_PATH, .group = G_UPSTREAM, .set = s_up_key},
    {P("upstream-cacert", "cacert", CMD_PROXY | CMD_QUIET, "FILE", NULL,
       "mTLS to the target: the CAs trusted for the target's certificate"),
     .at = AT_UPSTREAM, .kind = KIND_PATH, .opt = OPT_YREQ, .group = G_UPSTREAM,
     .set = s_up_cacert},
    {P("upstream-name", "server_name", CMD_PROXY | CMD_QUIET, "NAME", "the target's address",
       "mTLS to the target: the name its certificate must carry"),
     .at = AT_UPSTREAM, .kind = KIND_STRING, .group = G_UPSTREAM, .set = s_up_name},
    {P("upstream-keepalive", "upstream_keepalive", CMD_PROXY | CMD_QUIET, "N", "256",
       "http mode: idle upstream connections kept per worker and target"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 0, .max = 1024,
     .expect = "0 (off) to 1024 idle connections", .dflt = "256", .group = G_UPSTREAM,
     .set = s_upstream_keepalive},
    {P("upstream-h2-connections", "upstream_h2_connections", CMD_PROXY | CMD_QUIET, "N", "4",
       "HTTP/2 upstreams: connections per worker and listener that streams share"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 256,
     .expect = "1 to 256 connections", .dflt = "4", .group = G_UPSTREAM,
     .set = s_upstream_h2_conns},
    {P("upstream-h2-max-connections", "upstream_h2_max_connections", CMD_PROXY | CMD_QUIET, "N",
       "64",
       "HTTP/2 upstreams: connections per worker and listener when every one is full"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 1024,
     .expect = "1 to 1024 connections", .dflt = "64", .group = G_UPSTREAM,
     .set = s_upstream_h2_max_conns},

    /* Limits and timeouts. */
    {P("handshake-timeout", "handshake_timeout", CMD_BOTH, "DURATION", "10s",
       "close a connection whose TLS handshake has not finished"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "10s", .group = G_LIMITS,
     .set = s_hs_timeout},
    {P("idle-timeout", "idle_timeout", CMD_BOTH, "DURATION", "5m",
       "close a connection on which no byte moved this long"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "5m", .group = G_LIMITS,
     .set = s_idle_timeout},
    {P("request-header-timeout", "request_header_timeout", CMD_PROXY, "DURATION", "10s",
       "http mode: a request head must be complete this long after its first byte"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "10s", .group = G_LIMITS,
     .set = s_head_timeout},
    {P("connect-timeout", "connect_timeout", CMD_BOTH, "DURATION", "5s",
       "give up connecting to an upstream (TLS included) after this long"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "5s", .group = G_LIMITS,
     .set = s_connect_timeout},
    {P("drain-timeout", "drain_timeout", CMD_BOTH, "DURATION", "30s",
       "on SIGTERM, how long open connections may finish"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "30s", .group = G_LIMITS,
     .set = s_drain_timeout},
    {P("max-connection-lifetime", "max_connection_lifetime", CMD_BOTH, "DURATION", "off",
       "end any connection this long after accept (http: after the response in flight)"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .max = 7L * 86400 * 1000,
     .expect = "a duration such as 30m, 12h or 1d, at most 7d", .group = G_LIMITS,
     .set = s_max_lifetime},
    {P("max-conns", "max_connections", CMD_BOTH, "N", "10000",
       "refuse connections beyond this many open"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 100000000,
     .expect = "a positive number", .dflt = "10000", .group = G_LIMITS, .set = s_max_conns},
    {P("max-header-size", "max_header_bytes", CMD_PROXY | CMD_QUIET, "BYTES", "16384",
       "http mode: larger request heads get 431"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 100000000,
     .expect = "a positive number", .dflt = "16384", .group = G_LIMITS, .set = s_max_header},
    {P("h2-max-streams", "h2_max_streams", CMD_PROXY | CMD_QUIET, "N", "100",
       "HTTP/2: streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 1000, .expect = "1 to 1000 streams",
     .dflt = "100", .group = G_LIMITS, .set = s_h2_max_streams},
    {P("h2-stream-window", "h2_stream_window", CMD_PROXY | CMD_QUIET, "BYTES", "262144",
       "HTTP/2: request bytes a stream may send ahead of the upstream (its window)"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 16384, .max = 16777216,
     .expect = "16384 to 16777216 bytes", .dflt = "262144", .group = G_LIMITS,
     .set = s_h2_stream_window},
    {P("h2-connection-window", "h2_connection_window", CMD_PROXY | CMD_QUIET, "BYTES", "1048576",
       "HTTP/2: request bytes all streams of a connection may send ahead together"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 65535, .max = 67108864,
     .expect = "65535 to 67108864 bytes", .dflt = "1048576", .group = G_LIMITS,
     .set = s_h2_conn_window},
    {P("h2-stream-timeout", "h2_stream_timeout", CMD_PROXY | CMD_QUIET, "DURATION", "1m",
       "HTTP/2: reset a stream whose request body or response the client holds up this long"),
     .at = AT_LIMITS, .kind = KIND_DURATION, .dflt = "1m", .group = G_LIMITS,
     .set = s_h2_stream_timeout},
    {P("h2-max-upstreams", "h2_max_upstreams", CMD_PROXY | CMD_QUIET, "N", "32",
       "HTTP/2: upstream connections one client connection uses at once; other streams wait"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 1, .max = 1000, .expect = "1 to 1000 connections",
     .dflt = "32", .group = G_LIMITS, .set = s_h2_max_upstreams},
    {P("h2-max-held-bytes", "h2_max_held_bytes", CMD_PROXY | CMD_QUIET, "BYTES", "1048576",
       "HTTP/2: response bytes held for one client connection; past it upstreams are not read"),
     .at = AT_LIMITS, .kind = KIND_INT, .min = 65536, .max = 1073741824,
     .expect = "65536 to 1073741824 bytes", .dflt = "1048576", .group = G_LIMITS,
     .set = s_h2_max_held},
    {P("failed-handshake-burst", "failed_handshake_burst", CMD_PROXY | CMD_QUIET, "N", "100",
       "failed handshakes one client address may make at once"),
     .at = AT_LIMITS, .kind = KIND_NUMBER, .dflt = "100", .group = G_LIMITS,
     .set = s_fail_burst},
    {P("failed-handshake-rate", "failed_handshakes_per_second", CMD_PROXY | CMD_QUIET, "R", "10",
       "then this many a second"),
     .at = AT_LIMITS, .kind = KIND_NUMBER, .dflt = "10", .group = G_LIMITS, .set = s_fail_rate},
    {P("throttle-exempt", "throttle_exempt", CMD_PROXY, "CIDR", "none",
       "never throttle clients from this network; repeatable"),
     .at = AT_LIMITS, .kind = KIND_CIDR, .opt = OPT_REPEAT, .group = G_LIMITS,
     .set = s_throttle_exempt, .reset = r_throttle_exempt},

    /* Running. */
    {P("admin", "admin", CMD_BOTH, "ADDR:PORT", "off", "/metrics, /healthz and /readyz here"),
     .at = AT_TOP, .kind = KIND_ADDR, .group = G_RUN, .set = s_admin},
    {P("log", "log", CMD_BOTH, "FILE", "stderr", "JSON lines here (SIGUSR1 reopens it)"),
     .at = AT_TOP, .kind = KIND_PATH, .group = G_RUN, .set = s_log},
    {P("log-level", "log_level", CMD_BOTH, "debug|info|warn|error", "info",
       "the least severe lines written"),
     .at = AT_TOP, .kind = KIND_STRING, .group = G_RUN, .set = s_log_level},
    {P("workers", "workers", CMD_BOTH, "N", "one per core",
       "worker threads, each with its own listening socket"),
     .at = AT_TOP, .kind = KIND_INT, .min = 1, .max = 256, .expect = "1 to 256", .group = G_RUN,
     .set = s_workers},
    {P("insecure-key-mode", "insecure_key_mode", CMD_BOTH, NULL, "off",
       "accept key files readable by group or others"),
     .at = AT_TOP, .kind = KIND_BOOL, .group = G_RUN, .set = s_insecure_key},
    {P("config", NULL, CMD_BOTH, "FILE", NULL,
       "read the listeners from YAML; flags of this group and of the limits override it"),
     .at = AT_TOP, .kind = KIND_PATH, .opt = OPT_META, .group = G_RUN, .set = s_config},
    {P("check", NULL, CMD_BOTH, NULL, NULL,
       "load everything, print \"configuration OK\" or the first error, exit"),
     .at = AT_TOP, .kind = KIND_BOOL, .opt = OPT_META, .group = G_RUN, .set = s_check},
    {P("help", NULL, CMD_BOTH, NULL, NULL, "print this help"),
     .at = AT_TOP, .kind = KIND_BOOL, .opt = OPT_META, .group = G_RUN, .set = s_help},
};
#undef P

#define NROWS (sizeof(rows) / sizeof(rows[0]))
/* getopt_long's value for row i is ROW_OPT + i. */
#define ROW_OPT 1000

/* Whether `role` takes the row (CMD_QUIET rows: accepted by the tunnel, without effect). */
static bool
row_taken(const struct cfg_row *r, enum proxy_role role)
{
    return (r->pub.commands & (role == ROLE_SERVER ? CMD_PROXY : (CMD_TUNNEL | CMD_QUIET))) != 0;
}

static const char *
cmd_name(enum proxy_role role)
{
    return role == ROLE_SERVER ? "proxy" : "tunnel";
}

/* A row the command does not take is refused by name: "LOC is a setting of duet tunnel only". */
static int
row_refuse(const struct cfg_row *r, enum proxy_role role, const char *loc, struct duet_err *err)
{
    if (row_taken(r, role))
        return 0;
    return err_set(err, DUET_ERR_INPUT, "%s is a setting of duet %s only", loc,
                   role == ROLE_SERVER ? "tunnel" : "proxy");
}

/* A duration (lib/duration.h's syntax) of 1 ms to max_ms, in milliseconds. */
static bool
duration_ms(const char *v, int64_t max_ms, int *out)
{
    struct duet_err e;
    int64_t ms = 0;

    if (duration_parse_ms(v, 1, max_ms, &ms, &e) != 0)
        return false;
    *out = (int)ms;
    return true;
}

/* "a, b or c" from a NULL-terminated list. */
static void
names_text(const char *const *names, char *buf, size_t len)
{
    size_t off = 0, n = 0;

    while (names[n] != NULL)
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s",
                                i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
}

/*
 * Parse `text` as the row's kind.  The error is the message's body: the value
 * in quotes and what was expected, or the lower parser's sentence (addresses,
 * patterns, networks), which names the value itself.
 */
static int
value_parse(const struct cfg_row *r, const char *text, union cfg_val *v, struct duet_err *err)
{
    char *end = NULL;
    char names[200];

    memset(v, 0, sizeof(*v));
    switch (r->kind) {
    case KIND_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "on") == 0)
            v->b = true;
        else if (strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
                 strcmp(text, "off") == 0)
            v->b = false;
        else
            return err_set(err, DUET_ERR_INPUT, "\"%s\": expected true or false", text);
        return 0;
    case KIND_INT:
        v->n = strtol(text, &end, 10);
        if (end == text || *end != '\0' || v->n < r->min || v->n > r->max)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": expected %s", text, r->expect);
        return 0;
    case KIND_NUMBER:
        v->d = strtod(text, &end);
        if (end == text || *end != '\0' || !(v->d > 0) || v->d > 1e15)
            return err_set(err, DUET_ERR_INPUT, "\"%s\": expected a positive number", text);
        return 0;
    case KIND_DURATION:
        if (!duration_ms(text, r->max > 0 ? r->max : 86399999, &v->ms))
            return err_set(err, DUET_ERR_INPUT, "\"%s\": expected %s", text,
                           r->expect != NULL ? r->expect
                                             : "a duration such as 10s, 500ms or 5m");
        return 0;
    case KIND_ENUM:
        for (int i = 0; r->names[i] != NULL; i++) {
            if (strcmp(text, r->names[i]) == 0) {
                v->e = i;
                return 0;
            }
        }
        names_text(r->names, names, sizeof(names));
        return err_set(err, DUET_ERR_INPUT, "\"%s\": expected %s", text, names);
    case KIND_PATTERN: {
        struct policy_pattern pp;
        if (policy_pattern_parse(text, &pp, err) != 0)
            return -1;
        policy_pattern_clear(&pp);
        v->s = text;
        return 0;
    }
    case KIND_STRING:
    case KIND_PATH:
    case KIND_ADDR:
    case KIND_CSV:
    case KIND_CIDR:
    case KIND_RULES:
        v->s = text;
        return 0;
    }
    return err_set(err, DUET_ERR_INTERNAL, "unknown kind of setting");
}

/*
 * Parse one value of a row and store it.  `loc` names where the value came
 * from: "--drain-timeout", or "proxy.yaml:3:18: limits.drain_timeout".  Every
 * error is "LOC needs a value" or "LOC: BODY", the same body for both.
 */
static int
row_apply(const struct cfg_row *r, struct cfg_ctx *x, const char *loc, const char *text,
          struct duet_err *err)
{
    union cfg_val v;
    struct duet_err e;

    err_clear(&e);
    if (text == NULL || text[0] == '\0')
        return err_set(err, DUET_ERR_INPUT, "%s needs a value", loc);
    if (value_parse(r, text, &v, &e) != 0 || r->set(x, &v, &e) != 0)
        return err_set(err, e.kind != DUET_ERR_NONE ? e.kind : DUET_ERR_INPUT, "%s: %s", loc,
                       e.msg);
    return 0;
}

/* Apply the defaults of the rows at `at` and `also`, whichever command takes them. */
static int
apply_defaults(struct cfg_ctx *x, enum cfg_at at, enum cfg_at also, struct duet_err *err)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].dflt != NULL && (rows[i].at == at || rows[i].at == also) &&
            row_apply(&rows[i], x, "default", rows[i].dflt, err) != 0)
            return -1;
    }
    return 0;
}

static int
cfg_defaults(struct proxy_cfg *c, enum proxy_role role, struct duet_err *err)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct cfg_ctx x = {.cfg = c, .role = role};

    memset(c, 0, sizeof(*c));
    c->role = role;
    c->workers = ncpu > 0 ? (int)ncpu : 1;
    return apply_defaults(&x, AT_TOP, AT_LIMITS, err);
}

/* A new listener's defaults; `name` may be NULL (YAML names it after its keys are read). */
static int
listener_init(struct cfg_ctx *x, struct listener_cfg *l, const char *name, struct duet_err *err)
{
    x->l = l;
    if (name != NULL && (l->name = strdup(name)) == NULL)
        return err_nomem(err);
    if (apply_defaults(x, AT_LISTENER, AT_UPSTREAM, err) != 0)
        return -1;
    if (x->role == ROLE_TUNNEL)
        l->mode = MODE_TCP;
    return 0;
}

/*
 * What a listener's settings imply, for flags and YAML alike: the tunnel's
 * --verify-uri patterns become one rule named "--verify-uri" (the name in logs
 * and metrics, whichever way it was given); optional verification without
 * rules lets everyone through (a migration); then the checks.  `yaml` chooses
 * the names in the exposure messages.
 */
static int
listener_finish(struct cfg_ctx *x, struct listener_cfg *l, bool yaml, struct duet_err *err)
{
    static const char *const everyone[] = {"any", "anonymous"};

    if (x->role == ROLE_TUNNEL && l->nverify_uris > 0 &&
        policy_add_rule(&l->policy, "--verify-uri", true, (const char *const *)l->verify_uris,
                        l->nverify_uris, NULL, 0, NULL, NULL, NULL, err) != 0)
        return -1;
    if (x->role == ROLE_SERVER && l->verify_optional && l->policy.nrules == 0 &&
        policy_add_rule(&l->policy, "verify-optional", true, everyone, 2, NULL, 0, NULL, NULL, NULL,
                        err) != 0)
        return -1;
    if (check_exposure(x->cfg, l, yaml, err) != 0 || validate_listener(x->cfg, l, err) != 0)
        return -1;
    return 0;
}

/*
 * OCSP stapling: each listener's responder (--ocsp-staple-url or the AIA of
 * its --cert) and the cache file of its staple, in the CRL cache directory.
 */
static int
staple_expand(struct proxy_cfg *c, struct duet_err *err)
{
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_cfg *l = &c->listeners[i];
        char path[4096];

        free(l->staple_url);
        free(l->staple_file);
        l->staple_url = l->staple_file = NULL;
        if (!l->ocsp_staple)
            continue;
        if (l->cert == NULL)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: --ocsp-staple staples a response for --cert, which is not given",
                           l->name);
        if (staple_listener_url(l, &l->staple_url, err) != 0) {
            if (c->nlisteners > 1)
                err_prefix(err, "listener %s", l->name);
            return -1;
        }
        if (!staple_cache_name(c->crl_cache, l->staple_url, l->cert, path, sizeof(path)))
            return err_set(err, DUET_ERR_INPUT, "%s: the cache directory name is too long",
                           l->name);
        if ((l->staple_file = strdup(path)) == NULL)
            return err_nomem(err);
    }
    return 0;
}

/*
 * CRLs by URL: each listener's URLs (--crl-url, and with --crl-from-cdp the
 * distribution points of its --cacert and --cert files) and their cache files
 * in the cache directory, appended to its CRL files so that they are loaded,
 * watched and reloaded like --crl files.  Run once the whole configuration is
 * known (the cache directory may come after the listeners); running it again
 * first takes out what the last run appended.
 */
static int
crl_expand(struct proxy_cfg *c, struct duet_err *err)
{
    char dflt[4096];

    if (c->crl_cache == NULL) {
        crlplan_default_dir(dflt, sizeof(dflt));
        if ((c->crl_cache = strdup(dflt)) == NULL)
            return err_nomem(err);
    }
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_cfg *l = &c->listeners[i];
        char **urls = NULL;
        size_t n = 0;

        for (size_t k = l->ncrls - l->ncrl_fetched; k < l->ncrls; k++)
            free(l->crls[k]);
        l->ncrls -= l->ncrl_fetched;
        strv_free(l->crl_fetch_urls, l->ncrl_fetched);
        l->crl_fetch_urls = NULL;
        l->ncrl_fetched = 0;
        if (l->ncrl_urls == 0 && !l->crl_from_cdp)
            continue;
        if (crlplan_listener_urls(l, &urls, &n, err) != 0)
            return -1;
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            int rc = 0;
            if (!crlplan_cache_name(c->crl_cache, urls[k], path, sizeof(path)))
                rc = err_set(err, DUET_ERR_INPUT, "%s: the CRL cache directory name is too long",
                             l->name);
            if (rc == 0)
                rc = strv_push(&l->crls, &l->ncrls, path, err);
            if (rc != 0) {
                for (size_t j = 0; j < k; j++)
                    free(l->crls[--l->ncrls]);
                strv_free(urls, n);
                return -1;
            }
        }
        l->crl_fetch_urls = urls;
        l->ncrl_fetched = n;
    }
    return staple_expand(c, err);
}

/* --- help ------------------------------------------------------------------ */

static const char *const group_titles[2][G_COUNT] = {
    {"Listener and service", "TLS toward clients", "Who may connect", "What the service receives",
     "Limits and timeouts", "Running"},
    {"Listener and server", "TLS toward the server", "Which server is accepted",
     "What the service receives", "Limits and timeouts", "Running"},
};

/* The YAML place of a row, e.g. "limits.drain_timeout" or "listeners[].cert". */
static void
row_yaml_path(const struct cfg_row *r, char *buf, size_t len)
{
    static const char *const at_prefix[] = {"", "limits.", "listeners[].",
                                            "listeners[].upstream_tls."};

    if (r->pub.key == NULL)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%s%s", at_prefix[r->at], r->pub.key);
}

/* Print `text` from column `first`, wrapped before column 100 with lines indented to `col`. */
static void
wrap(FILE *out, const char *text, int first, int col)
{
    int at = first;
    const char *p = text;

    while (*p != '\0') {
        size_t w = strcspn(p, " ");
        if (at > first && at + 1 + (int)w > 100) {
            fprintf(out, "\n%*s", col, "");
            at = first = col;
        } else if (at > first) {
            fputc(' ', out);
            at++;
        }
        fprintf(out, "%.*s", (int)w, p);
        at += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

/*
 * The usage line; with every_setting, each flag the command takes, by group, with
 * its default and its YAML key (the tunnel's help leaves out the CMD_QUIET rows).
 */
void
proxy_cfg_usage(FILE *out, enum proxy_role role, bool every_setting)
{
    const char *cmd = cmd_name(role);
    int r = role == ROLE_SERVER ? 0 : 1;
    char line[1024];

    if (role == ROLE_SERVER)
        snprintf(line, sizeof(line), "usage: duet proxy --listen ADDR:PORT --target "
                 "ADDR:PORT|unix:PATH --cert CHAIN.pem --key KEY.pem --cacert ROOTS.pem "
                 "[--allow PATTERN]... [options]");
    else
        snprintf(line, sizeof(line), "usage: duet tunnel --listen 127.0.0.1:PORT|unix:PATH "
                 "--target HOST:PORT --cacert ROOTS.pem --server-name NAME [--cert CHAIN.pem "
                 "--key KEY.pem] [--verify-uri PATTERN]... [options]");
    wrap(out, line, 0, (int)strlen("usage: duet  ") + (int)strlen(cmd));
    fprintf(out, "       duet %s --config %s.yaml [--check]\n", cmd, cmd);
    if (!every_setting) {
        fprintf(out, "Run 'duet %s --help' for every setting.\n", cmd);
        return;
    }
    for (int g = 0; g < G_COUNT; g++) {
        bool title = false;
        for (size_t i = 0; i < NROWS; i++) {
            const struct cfg_row *row = &rows[i];
            char left[128], right[600], path[96];
            const char *arg;
            if ((int)row->group != g || row->pub.flag == NULL ||
                (row->pub.commands & (role == ROLE_SERVER ? CMD_PROXY : CMD_TUNNEL)) == 0)
                continue;
            if (!title) {
                fprintf(out, "\n%s:\n", group_titles[r][g]);
                title = true;
            }
            arg = role == ROLE_TUNNEL && row->targ != NULL ? row->targ : row->pub.arg;
            snprintf(left, sizeof(left), "  --%s%s%s", row->pub.flag, arg ? " " : "",
                     arg ? arg : "");
            row_yaml_path(row, path, sizeof(path));
            snprintf(right, sizeof(right), "%s%s%s%s%s%s",
                     role == ROLE_TUNNEL && row->thelp != NULL ? row->thelp : row->pub.help,
                     row->pub.shown != NULL ? " (default " : "",
                     row->pub.shown != NULL ? row->pub.shown : "",
                     row->pub.shown != NULL ? ")" : "", row->pub.key != NULL ? "; YAML " : "",
                     row->pub.key != NULL ? path : "");
            if (strlen(left) + 2 > 36) {
                fprintf(out, "%s\n%*s", left, 36, "");
            } else {
                fprintf(out, "%-36s", left);
            }
            wrap(out, right, 36, 36);
        }
    }
    if (role == ROLE_SERVER)
        fprintf(out, "\nYAML only: listeners[].rules, ordered allow/deny rules with methods, host "
                     "and path (exact) or path_prefix (whole segments)\n(the flags' --allow is "
                     "one allow rule each).\n");
    fprintf(out, "\nPATTERN: uri:GLOB dns:GLOB ip:ADDR email:GLOB cn:GLOB ou:GLOB o:GLOB "
                 "issuer:GLOB any anonymous\n"
                 "DURATION: 500ms, 10s, 5m, 1h.  Flags given with --config override the file's "
                 "top level and limits.\nEvery setting in detail: docs/proxy.md.\n");
}

/* --- flags ----------------------------------------------------------------- */

/* The text a flag carries: its argument, or "true"/"false" for a flag without one. */
static const char *
flag_text(const struct cfg_row *r, const char *optarg_)
{
    if (r->kind == KIND_BOOL)
        return (r->opt & OPT_NEGATE) ? "false" : "true";
    return optarg_;
}

/*
 * Flags: every value is parsed and stored as it comes (so the first bad one is
 * reported, by its flag); with --config, the file is read and the flags of the
 * top level and the limits are applied on it again, in order.  On failure the
 * caller clears `out`; --help prints the help and fails with DUET_ERR_NONE.
 */
int
proxy_cfg_from_args(int argc, char **argv, enum proxy_role role, struct proxy_cfg *out,
                    bool *check_only, struct duet_err *err)
{
    struct option opts[NROWS + 1];
    struct cfg_ctx x;
    size_t *given = NULL; /* the row of each flag, in order */
    const char **values = NULL;
    size_t ngiven = 0, nopts = 0;
    bool listener_flag = false;
    int c;
    int rc = -1;

    *check_only = false;
    memset(&x, 0, sizeof(x));
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].pub.flag == NULL)
            continue;
        opts[nopts].name = rows[i].pub.flag;
        opts[nopts].has_arg = rows[i].kind == KIND_BOOL ? no_argument : required_argument;
        opts[nopts].flag = NULL;
        opts[nopts++].val = ROW_OPT + (int)i;
    }
    memset(&opts[nopts], 0, sizeof(opts[nopts]));
    if (cfg_defaults(out, role, err) != 0)
        return -1;
    given = calloc((size_t)argc + 1, sizeof(*given));
    values = calloc((size_t)argc + 1, sizeof(*values));
    out->listeners = calloc(1, sizeof(*out->listeners));
    if (given == NULL || values == NULL || out->listeners == NULL) {
        err_nomem(err);
        goto out;
    }
    out->nlisteners = 1;
    x.cfg = out;
    x.role = role;
    if (listener_init(&x, &out->listeners[0], cmd_name(role), err) != 0)
        goto out;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const struct cfg_row *row;
        char loc[64];

        if (c == ':') {
            err_set(err, DUET_ERR_INPUT, "%s needs a value", argv[optind - 1]);
            proxy_cfg_usage(stderr, role, false);
            goto out;
        }
        if (c < ROW_OPT || c >= ROW_OPT + (int)NROWS) {
            err_set(err, DUET_ERR_INPUT, "%s is not a setting of duet %s", argv[optind - 1],
                    cmd_name(role));
            proxy_cfg_usage(stderr, role, false);
            goto out;
        }
        row = &rows[c - ROW_OPT];
        snprintf(loc, sizeof(loc), "--%s", row->pub.flag);
        if (row_refuse(row, role, loc, err) != 0) {
            proxy_cfg_usage(stderr, role, false);
            goto out;
        }
        if (row->at == AT_LISTENER || row->at == AT_UPSTREAM)
            listener_flag = true;
        given[ngiven] = (size_t)(c - ROW_OPT);
        values[ngiven++] = optarg;
        if (row_apply(row, &x, loc, flag_text(row, optarg), err) != 0)
            goto out;
        if (x.help) {
            proxy_cfg_usage(stdout, role, true);
            err_set(err, DUET_ERR_NONE, "help");
            goto out;
        }
    }
    if (optind != argc) {
        err_set(err, DUET_ERR_INPUT, "unexpected argument \"%s\"", argv[optind]);
        proxy_cfg_usage(stderr, role, false);
        goto out;
    }
    *check_only = x.check;
    if (x.config != NULL) {
        struct proxy_cfg file;
        struct cfg_ctx fx = {.role = role};
        bool reset[NROWS];

        if (listener_flag) {
            err_set(err, DUET_ERR_INPUT,
                    "--config describes the listeners; listener flags cannot be combined with it");
            goto out;
        }
        if (proxy_cfg_from_file(x.config, role, &file, err) != 0)
            goto out;
        /* Flags given with --config (top level and limits) override the file. */
        fx.cfg = &file;
        memset(reset, 0, sizeof(reset));
        for (size_t k = 0; k < ngiven; k++) {
            const struct cfg_row *row = &rows[given[k]];
            char loc[64];
            if (row->opt & OPT_META)
                continue;
            if (row->reset != NULL && !reset[given[k]]) {
                row->reset(&file); /* the flags' list replaces the file's */
                reset[given[k]] = true;
            }
            snprintf(loc, sizeof(loc), "--%s", row->pub.flag);
            if (row_apply(row, &fx, loc, flag_text(row, values[k]), err) != 0) {
                proxy_cfg_clear(&file);
                goto out;
            }
        }
        proxy_cfg_clear(out);
        *out = file;
        rc = crl_expand(out, err);
        goto out;
    }
    if (listener_finish(&x, &out->listeners[0], false, err) != 0 || crl_expand(out, err) != 0)
        goto out;
    rc = 0;
out:
    free(given);
    free(values);
    return rc;
}

/* --- YAML ------------------------------------------------------------------ */

/* "FILE:LINE:COL: keypath" for a node (1-based, as ycfg_error writes it). */
static void
yaml_loc(const struct ycfg *y, const yaml_node_t *n, const char *path, char *buf, size_t len)
{
    if (n != NULL)
        snprintf(buf, len, "%s:%zu:%zu: %s", y->path, n->start_mark.line + 1,
                 n->start_mark.column + 1, path);
    else
        snprintf(buf, len, "%s: %s", y->path, path);
}

/* A row's value from its YAML node: one scalar, or a list for OPT_REPEAT and KIND_CSV rows. */
static int
yaml_value(const struct cfg_row *r, struct ycfg *y, yaml_node_t *v, const char *path,
           struct cfg_ctx *x, struct duet_err *err)
{
    char loc[400];

    yaml_loc(y, v, path, loc, sizeof(loc));
    if (r->kind == KIND_RULES)
        return yaml_rules(y, v, path, x->l, err);
    if (v != NULL && v->type == YAML_SEQUENCE_NODE && (r->opt & OPT_REPEAT)) {
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top; it++) {
            yaml_node_t *item = ycfg_node(y, *it);
            yaml_loc(y, item, path, loc, sizeof(loc));
            if (ycfg_scalar(item) == NULL)
                return err_set(err, DUET_ERR_INPUT, "%s: expected a list of values", loc);
            if (row_apply(r, x, loc, ycfg_scalar(item), err) != 0)
                return -1;
        }
        return 0;
    }
    if (v != NULL && v->type == YAML_SEQUENCE_NODE && r->kind == KIND_CSV) {
        char joined[1024];
        size_t off = 0;
        joined[0] = '\0';
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top; it++) {
            const char *s = ycfg_scalar(ycfg_node(y, *it));
            if (s == NULL || off + strlen(s) + 2 > sizeof(joined))
                return err_set(err, DUET_ERR_INPUT, "%s: expected a short list of values", loc);
            off += (size_t)snprintf(joined + off, sizeof(joined) - off, "%s%s", off ? "," : "", s);
        }
        return row_apply(r, x, loc, joined, err);
    }
    if (ycfg_scalar(v) == NULL)
        return err_set(err, DUET_ERR_INPUT, "%s: expected %s", loc,
                       (r->opt & OPT_REPEAT) || r->kind == KIND_CSV ? "a value or a list of values"
                                                                    : "one value");
    return row_apply(r, x, loc, ycfg_scalar(v), err);
}

static int yaml_listeners(struct ycfg *y, yaml_node_t *v, const char *p, struct cfg_ctx *x,
                          struct duet_err *err);

/* The mappings inside a level: "limits" and "listeners" at the top, "upstream_tls" per listener. */
static const struct {
    enum cfg_at at;
    const char *key;
    enum cfg_at inner; /* AT_TOP: the list of listeners */
    bool required;
} sections[] = {
    {AT_TOP, "listeners", AT_TOP, true},
    {AT_TOP, "limits", AT_LIMITS, false},
    {AT_LISTENER, "upstream_tls", AT_UPSTREAM, false},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static const char *const at_names[] = {"the top level", "limits", "a listener", "upstream_tls"};

/*
 * Walk one mapping with the table: each key is a row of this level (or a
 * section); an unknown key is refused with the same words as an unknown flag,
 * a key of the other command by name, a key given twice or a required one
 * missing with its place.
 */
static int
yaml_level(struct ycfg *y, yaml_node_t *map, const char *prefix, enum cfg_at at,
           struct cfg_ctx *x, struct duet_err *err)
{
    bool seen[NROWS + NSECTIONS];
    const char *cmd = cmd_name(x->role);

    memset(seen, 0, sizeof(seen));
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return ycfg_error(y, map, prefix[0] ? prefix : "(top level)", err,
                          "expected a mapping of keys to values");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ycfg_node(y, p->key);
        yaml_node_t *v = ycfg_node(y, p->value);
        const char *name = ycfg_scalar(k);
        const struct cfg_row *row = NULL;
        char path[256], loc[400];
        size_t idx = NROWS + NSECTIONS;
        int rc;

        if (name == NULL)
            return ycfg_error(y, k, prefix[0] ? prefix : "(top level)", err,
                              "expected a plain key");
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        yaml_loc(y, k, path, loc, sizeof(loc));
        for (size_t s = 0; s < NSECTIONS; s++) {
            if (sections[s].at == at && strcmp(sections[s].key, name) == 0)
                idx = NROWS + s;
        }
        for (size_t i = 0; idx == NROWS + NSECTIONS && i < NROWS; i++) {
            if (rows[i].at == at && rows[i].pub.key != NULL && strcmp(rows[i].pub.key, name) == 0)
                idx = i;
        }
        if (idx == NROWS + NSECTIONS) {
            for (size_t i = 0; i < NROWS; i++) {
                if (rows[i].pub.key != NULL && strcmp(rows[i].pub.key, name) == 0 &&
                    row_taken(&rows[i], x->role))
                    return err_set(err, DUET_ERR_INPUT,
                                   "%s is not a setting of duet %s here; it belongs in %s", loc,
                                   cmd, at_names[rows[i].at]);
            }
            return err_set(err, DUET_ERR_INPUT, "%s is not a setting of duet %s", loc, cmd);
        }
        if (seen[idx])
            return ycfg_error(y, k, path, err, "key given twice");
        seen[idx] = true;
        if (idx >= NROWS) {
            const enum cfg_at inner = sections[idx - NROWS].inner;
            rc = inner == AT_TOP ? yaml_listeners(y, v, path, x, err)
                                 : yaml_level(y, v, path, inner, x, err);
            if (rc != 0)
                return -1;
            continue;
        }
        row = &rows[idx];
        if (row_refuse(row, x->role, loc, err) != 0 || yaml_value(row, y, v, path, x, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < NROWS + NSECTIONS; i++) {
        bool req = i < NROWS ? rows[i].at == at && (rows[i].opt & OPT_YREQ)
                             : sections[i - NROWS].at == at && sections[i - NROWS].required;
        if (req && !seen[i]) {
            char path[256];
            snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                     i < NROWS ? rows[i].pub.key : sections[i - NROWS].key);
            return ycfg_error(y, map, path, err, "required key is missing");
        }
    }
    return 0;
}

/*
 * The last listener read must not share its name with an earlier one: their
 * metrics series would merge.  The error points at its `name` key (or at the
 * listener, for a name given by default).
 */
static int
listener_name_unique(struct ycfg *y, yaml_node_t *ln, const char *path,
                     const struct proxy_cfg *c, struct duet_err *err)
{
    const struct listener_cfg *l = &c->listeners[c->nlisteners - 1];
    yaml_node_t *at = ln;
    char where[310];

    for (size_t i = 0; i + 1 < c->nlisteners; i++) {
        if (strcmp(c->listeners[i].name, l->name) != 0)
            continue;
        /* yaml_level read `ln` as a mapping. */
        for (yaml_node_pair_t *pr = ln->data.mapping.pairs.start;
             pr < ln->data.mapping.pairs.top; pr++) {
            const char *k = ycfg_scalar(ycfg_node(y, pr->key));
            if (k != NULL && strcmp(k, "name") == 0)
                at = ycfg_node(y, pr->value);
        }
        snprintf(where, sizeof(where), "%s.name", path);
        return ycfg_error(y, at, where, err,
                          "\"%s\": listeners[%zu] has this name; each listener needs its own "
                          "(it labels logs and metrics)",
                          l->name, i);
    }
    return 0;
}

static int
yaml_listeners(struct ycfg *y, yaml_node_t *v, const char *p, struct cfg_ctx *x,
               struct duet_err *err)
{
    struct proxy_cfg *c = x->cfg;
    size_t n;
    int idx = 0;

    if (v == NULL || v->type != YAML_SEQUENCE_NODE ||
        (n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)) == 0)
        return ycfg_error(y, v, p, err, "expected a list of listeners");
    c->listeners = calloc(n, sizeof(*c->listeners));
    if (c->listeners == NULL)
        return err_nomem(err);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
        struct listener_cfg *l = &c->listeners[c->nlisteners++];
        char path[300];
        yaml_node_t *ln = ycfg_node(y, *it);

        snprintf(path, sizeof(path), "%s[%d]", p, idx);
        if (listener_init(x, l, NULL, err) != 0 ||
            yaml_level(y, ln, path, AT_LISTENER, x, err) != 0)
            return -1;
        if (l->name == NULL) {
            char nm[32];
            snprintf(nm, sizeof(nm), "listener-%d", idx + 1);
            if ((l->name = strdup(nm)) == NULL)
                return err_nomem(err);
        }
        if (listener_finish(x, l, true, err) != 0)
            return ycfg_error(y, ln, path, err, "%s", err->msg);
        if (listener_name_unique(y, ln, path, c, err) != 0)
            return -1;
    }
    x->l = NULL;
    return 0;
}

/* The YAML file through the table; on failure `out` is cleared. */
int
proxy_cfg_from_file(const char *path, enum proxy_role role, struct proxy_cfg *out,
                    struct duet_err *err)
{
    struct ycfg y;
    struct cfg_ctx x = {.cfg = out, .role = role};

    if (cfg_defaults(out, role, err) != 0) {
        proxy_cfg_clear(out);
        return -1;
    }
    if (ycfg_load(path, &y, err) != 0)
        return -1;
    if (yaml_level(&y, ycfg_root(&y), "", AT_TOP, &x, err) != 0 ||
        (out->config_file = strdup(path)) == NULL || crl_expand(out, err) != 0) {
        if (err->kind == DUET_ERR_NONE)
            err_nomem(err);
        ycfg_free(&y);
        proxy_cfg_clear(out);
        return -1;
    }
    ycfg_free(&y);
    return 0;
}

/* --- the table, read-only -------------------------------------------------- */

/* Row i of the table, for the help's readers and the tests; NULL past the end. */
const struct proxy_setting *
proxy_setting_get(size_t i)
{
    return i < NROWS ? &rows[i].pub : NULL;
}

size_t
proxy_cfg_files(const struct proxy_cfg *c, const char **out, size_t max)
{
    size_t n = 0;

#define ADD(f)                                                                                     \
    do {                                                                                           \
        if ((f) != NULL && n < max)                                                                \
            out[n++] = (f);                                                                        \
    } while (0)
    ADD(c->config_file);
    for (size_t i = 0; i < c->nlisteners; i++) {
        const struct listener_cfg *l = &c->listeners[i];
        ADD(l->cert);
        ADD(l->key);
        ADD(l->cacert);
        for (size_t k = 0; k < l->ncrls; k++)
            ADD(l->crls[k]);
        ADD(l->up_cert);
        ADD(l->up_key);
        ADD(l->up_cacert);
        ADD(l->ticket_keys);
        ADD(l->staple_file);
    }
#undef ADD
    return n;
}
