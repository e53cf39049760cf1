/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - `duet proxy` / `duet tunnel` configuration from flags or YAML.
 *
 * Flags describe one listener (the ghostunnel-style one-liner); the YAML file
 * describes several, each key parsed by its own function through a table.
 * Validation happens here for everything that does not need the files'
 * contents: addresses, modes, rule patterns, and the rule that a plaintext
 * target must be on loopback or a unix socket unless unsafe_target is set.
 */
#include "proxy/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

#include "ca/ca.h"
#include "lib/ycfg.h"

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 300000
#define DEFAULT_HEAD_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNS 10000
#define DEFAULT_UPSTREAM_KEEPALIVE 32
#define DEFAULT_MAX_HEADER 16384
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_DRAIN_TIMEOUT_MS 30000
/*
 * The failed-handshake limiter counts per client address, and one address
 * can be a NAT gateway or a load balancer for many clients: the defaults
 * admit 100 failures at once and 10 a second after that (see docs/proxy.md).
 */
#define DEFAULT_FAIL_BURST 100.0
#define DEFAULT_FAIL_PER_SECOND 10.0

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
    memset(c, 0, sizeof(*c));
}

static void
cfg_defaults(struct proxy_cfg *c, enum proxy_role role)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    memset(c, 0, sizeof(*c));
    c->role = role;
    c->workers = ncpu > 0 ? (int)ncpu : 1;
    c->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    c->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    c->head_timeout_ms = DEFAULT_HEAD_TIMEOUT_MS;
    c->max_conns = DEFAULT_MAX_CONNS;
    c->max_header_bytes = DEFAULT_MAX_HEADER;
    c->upstream_keepalive = DEFAULT_UPSTREAM_KEEPALIVE;
    c->fail_per_second = DEFAULT_FAIL_PER_SECOND;
    c->fail_burst = DEFAULT_FAIL_BURST;
    c->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    c->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
}

/* Add one exempt network to the throttle's list; errors name `what` (the flag or key). */
static int
add_throttle_exempt(struct proxy_cfg *c, const char *what, const char *text, struct duet_err *err)
{
    struct throttle_cidr cidr;
    struct throttle_cidr *nv;

    if (throttle_cidr_parse(text, &cidr, err) != 0) {
        err_prefix(err, "%s", what);
        return -1;
    }
    nv = realloc(c->throttle_exempt, (c->nthrottle_exempt + 1) * sizeof(*nv));
    if (nv == NULL)
        return err_nomem(err);
    c->throttle_exempt = nv;
    nv[c->nthrottle_exempt++] = cidr;
    return 0;
}

/*
 * Settings that expose something by mistake, checked for flags and YAML
 * alike (`yaml` chooses the names in the message): h2 offered in http mode,
 * which speaks HTTP/1.1 only (a client that picks h2 would get nothing back),
 * and a tunnel's plaintext side, which connects with the tunnel's own client
 * certificate, reachable from other machines.
 */
static int
check_exposure(const struct proxy_cfg *c, const struct listener_cfg *l, bool yaml,
               struct duet_err *err)
{
    if (c->role == ROLE_SERVER && l->mode == MODE_HTTP && l->alpn != NULL) {
        const char *p = l->alpn;
        while (*p != '\0') {
            size_t n = strcspn(p, ",");
            if (n == 2 && strncmp(p, "h2", 2) == 0)
                return err_set(err, DUET_ERR_INPUT,
                               "%s: %s \"%s\": HTTP/2 (h2) is not supported in http mode; offer "
                               "http/1.1 only, or use mode tcp to pass h2 through to the target",
                               l->name, yaml ? "alpn" : "--alpn", l->alpn);
            p += n;
            if (*p == ',')
                p++;
        }
    }
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
    if (net_addr_parse(text, !tunnel, &l->targets[l->ntargets], err) != 0) {
        err_prefix(err, "target");
        return -1;
    }
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
    }
    return 0;
}

/* --- flags ----------------------------------------------------------------- */

enum {
    F_LISTEN = 400, F_TARGET, F_CERT, F_KEY, F_CACERT, F_CRL, F_CRL_SCOPE, F_CRL_EXPIRED, F_ALLOW,
    F_MODE, F_ADMIN, F_LOG, F_VERIFY, F_TLS12, F_ALPN, F_XFCC, F_PPV2, F_UNSAFE, F_UP_CERT,
    F_UP_KEY, F_UP_CACERT, F_UP_NAME, F_WORKERS, F_HS_TIMEOUT, F_IDLE_TIMEOUT, F_MAX_CONNS,
    F_MAX_HEADER, F_CONFIG, F_CHECK, F_SERVER_NAME, F_VERIFY_URI, F_DENY, F_INSECURE_KEY, F_HELP,
    F_FAIL_BURST, F_FAIL_RATE, F_NO_TICKETS, F_TICKET_KEYS, F_UP_KEEPALIVE,
    F_THROTTLE_EXEMPT, F_CONNECT_TIMEOUT, F_REUSE_PORT, F_UNSAFE_LISTEN,
    F_FWD_HEADERS, F_HEAD_TIMEOUT, F_DRAIN_TIMEOUT, F_LOG_LEVEL
};

static int
parse_duration_ms(const char *flag, const char *v, int *out, struct duet_err *err)
{
    int64_t s = 0;
    char *end = NULL;
    long ms;

    /* "250ms" is accepted besides ca_duration_parse's units. */
    size_t n = strlen(v);
    if (n > 2 && strcmp(v + n - 2, "ms") == 0) {
        ms = strtol(v, &end, 10);
        if (end == v + n - 2 && ms > 0 && ms < 86400000) {
            *out = (int)ms;
            return 0;
        }
    } else if (ca_duration_parse(v, &s) && s > 0 && s < 86400) {
        *out = (int)(s * 1000);
        return 0;
    }
    return err_set(err, DUET_ERR_INPUT, "%s \"%s\": expected a duration such as 10s, 500ms or 5m",
                   flag, v);
}

static void
proxy_usage(FILE *out, enum proxy_role role)
{
    if (role == ROLE_SERVER)
        fprintf(out,
                "usage: duet proxy --listen ADDR:PORT --target ADDR:PORT|unix:PATH --cert CHAIN.pem\n"
                "                  --key KEY.pem --cacert ROOTS.pem [--crl CRL.pem]... [--allow PATTERN]...\n"
                "                  [--mode http|tcp] [--admin ADDR:PORT] [--log FILE]\n"
                "                  [--verify required|optional] [--tls12] [--alpn LIST]\n"
                "                  [--no-session-tickets | --ticket-keys FILE]\n"
                "                  [--client-cert-header sanitize|forward_only|append_forward|sanitize_set]\n"
                "                  [--proxy-protocol] [--unsafe-target] [--crl-scope chain|leaf]\n"
                "                  [--crl-expired reject|warn] [--upstream-cert F --upstream-key F]\n"
                "                  [--upstream-cacert F] [--upstream-name NAME] [--workers N]\n"
                "                  [--handshake-timeout 10s] [--idle-timeout 5m] [--max-conns N]\n"
                "                  [--request-header-timeout 10s] [--forwarded-headers set|append]\n"
                "                  [--drain-timeout 30s] [--log-level debug|info|warn|error]\n"
                "                  [--max-header-size BYTES] [--upstream-keepalive N]\n"
                "                  [--connect-timeout 5s] [--failed-handshake-burst N]\n"
                "                  [--failed-handshake-rate R] [--throttle-exempt CIDR]...\n"
                "                  [--reuse-port]\n"
                "       duet proxy --config proxy.yaml [--check]\n"
                "PATTERN: uri:GLOB dns:GLOB ip:ADDR email:GLOB cn:GLOB ou:GLOB o:GLOB issuer:GLOB any\n");
    else
        fprintf(out,
                "usage: duet tunnel --listen 127.0.0.1:PORT|unix:PATH --target HOST:PORT --cert F --key F\n"
                "                   --cacert ROOTS.pem --server-name NAME [--verify-uri PATTERN]...\n"
                "                   [--crl CRL.pem]... [--alpn LIST] [--tls12] [--admin ADDR:PORT]\n"
                "                   [--log FILE] [--log-level L] [--workers N]\n"
                "                   [--connect-timeout 5s] [--idle-timeout 5m] [--drain-timeout 30s]\n"
                "                   [--unsafe-listen] [--reuse-port]\n"
                "       duet tunnel --config tunnel.yaml [--check]\n");
}

int
proxy_cfg_from_args(int argc, char **argv, enum proxy_role role, struct proxy_cfg *out,
                    bool *check_only, struct duet_err *err)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, F_LISTEN},
        {"target", required_argument, NULL, F_TARGET},
        {"cert", required_argument, NULL, F_CERT},
        {"key", required_argument, NULL, F_KEY},
        {"cacert", required_argument, NULL, F_CACERT},
        {"crl", required_argument, NULL, F_CRL},
        {"crl-scope", required_argument, NULL, F_CRL_SCOPE},
        {"crl-expired", required_argument, NULL, F_CRL_EXPIRED},
        {"allow", required_argument, NULL, F_ALLOW},
        {"mode", required_argument, NULL, F_MODE},
        {"admin", required_argument, NULL, F_ADMIN},
        {"log", required_argument, NULL, F_LOG},
        {"log-level", required_argument, NULL, F_LOG_LEVEL},
        {"verify", required_argument, NULL, F_VERIFY},
        {"tls12", no_argument, NULL, F_TLS12},
        {"no-session-tickets", no_argument, NULL, F_NO_TICKETS},
        {"ticket-keys", required_argument, NULL, F_TICKET_KEYS},
        {"alpn", required_argument, NULL, F_ALPN},
        {"client-cert-header", required_argument, NULL, F_XFCC},
        {"forwarded-headers", required_argument, NULL, F_FWD_HEADERS},
        {"request-header-timeout", required_argument, NULL, F_HEAD_TIMEOUT},
        {"proxy-protocol", no_argument, NULL, F_PPV2},
        {"unsafe-target", no_argument, NULL, F_UNSAFE},
        {"upstream-cert", required_argument, NULL, F_UP_CERT},
        {"upstream-key", required_argument, NULL, F_UP_KEY},
        {"upstream-cacert", required_argument, NULL, F_UP_CACERT},
        {"upstream-name", required_argument, NULL, F_UP_NAME},
        {"workers", required_argument, NULL, F_WORKERS},
        {"handshake-timeout", required_argument, NULL, F_HS_TIMEOUT},
        {"idle-timeout", required_argument, NULL, F_IDLE_TIMEOUT},
        {"max-conns", required_argument, NULL, F_MAX_CONNS},
        {"max-header-size", required_argument, NULL, F_MAX_HEADER},
        {"upstream-keepalive", required_argument, NULL, F_UP_KEEPALIVE},
        {"failed-handshake-burst", required_argument, NULL, F_FAIL_BURST},
        {"failed-handshake-rate", required_argument, NULL, F_FAIL_RATE},
        {"throttle-exempt", required_argument, NULL, F_THROTTLE_EXEMPT},
        {"connect-timeout", required_argument, NULL, F_CONNECT_TIMEOUT},
        {"drain-timeout", required_argument, NULL, F_DRAIN_TIMEOUT},
        {"reuse-port", no_argument, NULL, F_REUSE_PORT},
        {"unsafe-listen", no_argument, NULL, F_UNSAFE_LISTEN},
        {"config", required_argument, NULL, F_CONFIG},
        {"check", no_argument, NULL, F_CHECK},
        {"server-name", required_argument, NULL, F_SERVER_NAME},
        {"verify-uri", required_argument, NULL, F_VERIFY_URI},
        {"insecure-key-mode", no_argument, NULL, F_INSECURE_KEY},
        {"help", no_argument, NULL, F_HELP},
        {NULL, 0, NULL, 0}};
    struct listener_cfg *l;
    char **allows = NULL;
    size_t nallows = 0;
    const char *config = NULL;
    bool any_listener_flag = false;
    uint64_t given = 0; /* global flags seen, by F_* - F_LISTEN */
    int c;
    int rc = -1;

    *check_only = false;
    cfg_defaults(out, role);
    out->listeners = calloc(1, sizeof(*out->listeners));
    if (out->listeners == NULL)
        return err_nomem(err);
    out->nlisteners = 1;
    l = &out->listeners[0];
    if ((l->name = strdup(role == ROLE_SERVER ? "proxy" : "tunnel")) == NULL)
        return err_nomem(err);
    if (role == ROLE_TUNNEL)
        l->mode = MODE_TCP;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *v = optarg;
        bool lflag = true;
        switch (c) {
        case F_LISTEN:
            net_addr_clear(&l->listen);
            if (net_addr_parse(v, role == ROLE_TUNNEL, &l->listen, err) != 0) {
                err_prefix(err, "--listen");
                goto out;
            }
            break;
        case F_TARGET:
            if (add_target(l, v, role == ROLE_TUNNEL, err) != 0)
                goto out;
            break;
        case F_CERT:
            if (set_str(&l->cert, v, err) != 0)
                goto out;
            break;
        case F_KEY:
            if (set_str(&l->key, v, err) != 0)
                goto out;
            break;
        case F_CACERT:
            if (set_str(&l->cacert, v, err) != 0)
                goto out;
            break;
        case F_CRL:
            if (strv_push(&l->crls, &l->ncrls, v, err) != 0)
                goto out;
            break;
        case F_CRL_SCOPE:
            if (strcmp(v, "chain") == 0)
                l->crl_scope = DUET_CRL_CHAIN;
            else if (strcmp(v, "leaf") == 0)
                l->crl_scope = DUET_CRL_LEAF;
            else {
                err_set(err, DUET_ERR_INPUT, "--crl-scope \"%s\": expected chain or leaf", v);
                goto out;
            }
            break;
        case F_CRL_EXPIRED:
            if (strcmp(v, "reject") == 0)
                l->crl_expired_warn = false;
            else if (strcmp(v, "warn") == 0)
                l->crl_expired_warn = true;
            else {
                err_set(err, DUET_ERR_INPUT, "--crl-expired \"%s\": expected reject or warn", v);
                goto out;
            }
            break;
        case F_ALLOW:
            if (role != ROLE_SERVER)
                goto unknown;
            {
                char **nv = realloc(allows, (nallows + 1) * sizeof(char *));
                if (nv == NULL) {
                    err_nomem(err);
                    goto out;
                }
                allows = nv;
                allows[nallows++] = optarg;
            }
            break;
        case F_MODE:
            if (strcmp(v, "http") == 0)
                l->mode = MODE_HTTP;
            else if (strcmp(v, "tcp") == 0)
                l->mode = MODE_TCP;
            else {
                err_set(err, DUET_ERR_INPUT, "--mode \"%s\": expected http or tcp", v);
                goto out;
            }
            if (role != ROLE_SERVER)
                goto unknown;
            break;
        case F_ADMIN:
            lflag = false;
            net_addr_clear(&out->admin);
            if (net_addr_parse(v, false, &out->admin, err) != 0) {
                err_prefix(err, "--admin");
                goto out;
            }
            out->has_admin = true;
            break;
        case F_LOG:
            lflag = false;
            if (set_str(&out->log_file, v, err) != 0)
                goto out;
            break;
        case F_LOG_LEVEL:
            lflag = false;
            if (log_level_check(v, err) != 0 || set_str(&out->log_level, v, err) != 0) {
                err_prefix(err, "--log-level");
                goto out;
            }
            break;
        case F_VERIFY:
            if (strcmp(v, "required") == 0)
                l->verify_optional = false;
            else if (strcmp(v, "optional") == 0)
                l->verify_optional = true;
            else {
                err_set(err, DUET_ERR_INPUT, "--verify \"%s\": expected required or optional", v);
                goto out;
            }
            break;
        case F_TLS12:
            l->tls12 = true;
            break;
        case F_NO_TICKETS:
            if (role != ROLE_SERVER)
                goto unknown;
            l->no_tickets = true;
            break;
        case F_TICKET_KEYS:
            if (role != ROLE_SERVER)
                goto unknown;
            if (set_str(&l->ticket_keys, v, err) != 0)
                goto out;
            break;
        case F_ALPN:
            if (set_str(&l->alpn, v, err) != 0)
                goto out;
            break;
        case F_XFCC:
            if (xfcc_mode_parse(v, &l->xfcc, err) != 0) {
                err_prefix(err, "--client-cert-header");
                goto out;
            }
            break;
        case F_FWD_HEADERS:
            if (role != ROLE_SERVER)
                goto unknown;
            if (http_fwd_mode_parse(v, &l->forwarded, err) != 0) {
                err_prefix(err, "--forwarded-headers");
                goto out;
            }
            break;
        case F_HEAD_TIMEOUT:
            if (role != ROLE_SERVER)
                goto unknown;
            lflag = false;
            if (parse_duration_ms("--request-header-timeout", v, &out->head_timeout_ms, err) !=
                0)
                goto out;
            break;
        case F_PPV2:
            l->proxy_protocol = true;
            break;
        case F_UNSAFE:
            l->unsafe_target = true;
            break;
        case F_UP_CERT:
            if (set_str(&l->up_cert, v, err) != 0)
                goto out;
            break;
        case F_UP_KEY:
            if (set_str(&l->up_key, v, err) != 0)
                goto out;
            break;
        case F_UP_CACERT:
            if (set_str(&l->up_cacert, v, err) != 0)
                goto out;
            break;
        case F_UP_NAME:
            if (set_str(&l->up_name, v, err) != 0)
                goto out;
            break;
        case F_SERVER_NAME:
            if (role != ROLE_TUNNEL)
                goto unknown;
            if (set_str(&l->server_name, v, err) != 0)
                goto out;
            break;
        case F_VERIFY_URI:
            if (role != ROLE_TUNNEL)
                goto unknown;
            {
                struct policy_pattern pp;
                if (policy_pattern_parse(v, &pp, err) != 0) {
                    err_prefix(err, "--verify-uri");
                    goto out;
                }
                policy_pattern_clear(&pp);
            }
            if (strv_push(&l->verify_uris, &l->nverify_uris, v, err) != 0)
                goto out;
            break;
        case F_WORKERS: {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            lflag = false;
            if (end == v || *end != '\0' || n < 1 || n > 256) {
                err_set(err, DUET_ERR_INPUT, "--workers \"%s\": expected 1 to 256", v);
                goto out;
            }
            out->workers = (int)n;
            break;
        }
        case F_UP_KEEPALIVE: {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            lflag = false;
            if (end == v || *end != '\0' || n < 0 || n > 1024) {
                err_set(err, DUET_ERR_INPUT,
                        "--upstream-keepalive \"%s\": expected 0 (off) to 1024 idle connections", v);
                goto out;
            }
            out->upstream_keepalive = (int)n;
            break;
        }
        case F_HS_TIMEOUT:
            lflag = false;
            if (parse_duration_ms("--handshake-timeout", v, &out->handshake_timeout_ms, err) != 0)
                goto out;
            break;
        case F_IDLE_TIMEOUT:
            lflag = false;
            if (parse_duration_ms("--idle-timeout", v, &out->idle_timeout_ms, err) != 0)
                goto out;
            break;
        case F_CONNECT_TIMEOUT:
            lflag = false;
            if (parse_duration_ms("--connect-timeout", v, &out->connect_timeout_ms, err) != 0)
                goto out;
            break;
        case F_DRAIN_TIMEOUT:
            lflag = false;
            if (parse_duration_ms("--drain-timeout", v, &out->drain_timeout_ms, err) != 0)
                goto out;
            break;
        case F_THROTTLE_EXEMPT:
            lflag = false;
            if (role != ROLE_SERVER)
                goto unknown;
            if (add_throttle_exempt(out, "--throttle-exempt", v, err) != 0)
                goto out;
            break;
        case F_REUSE_PORT:
            l->reuse_port = true;
            break;
        case F_UNSAFE_LISTEN:
            if (role != ROLE_TUNNEL)
                goto unknown;
            l->unsafe_listen = true;
            break;
        case F_MAX_CONNS:
        case F_MAX_HEADER: {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            lflag = false;
            if (end == v || *end != '\0' || n < 1 || n > 100000000) {
                err_set(err, DUET_ERR_INPUT, "%s \"%s\": expected a positive number",
                        c == F_MAX_CONNS ? "--max-conns" : "--max-header-size", v);
                goto out;
            }
            if (c == F_MAX_CONNS)
                out->max_conns = n;
            else
                out->max_header_bytes = (size_t)n;
            break;
        }
        case F_FAIL_BURST:
        case F_FAIL_RATE: {
            char *end = NULL;
            double d = strtod(v, &end);
            lflag = false;
            if (end == v || *end != '\0' || d <= 0) {
                err_set(err, DUET_ERR_INPUT, "%s \"%s\": expected a positive number",
                        c == F_FAIL_BURST ? "--failed-handshake-burst" : "--failed-handshake-rate",
                        v);
                goto out;
            }
            if (c == F_FAIL_BURST)
                out->fail_burst = d;
            else
                out->fail_per_second = d;
            break;
        }
        case F_INSECURE_KEY:
            lflag = false;
            out->insecure_key_mode = true;
            break;
        case F_CONFIG:
            lflag = false;
            config = v;
            break;
        case F_CHECK:
            lflag = false;
            *check_only = true;
            break;
        case F_HELP:
            proxy_usage(stdout, role);
            err_set(err, DUET_ERR_NONE, "help");
            goto out;
        case ':':
            err_set(err, DUET_ERR_INPUT, "%s needs a value", argv[optind - 1]);
            proxy_usage(stderr, role);
            goto out;
        default:
        unknown: {
            /* The option's name (argv[optind - 1] is its value when it takes one). */
            const char *name = argv[optind - 1];
            for (size_t k = 0; opts[k].name != NULL; k++) {
                if (opts[k].val == c) {
                    name = opts[k].name;
                    break;
                }
            }
            err_set(err, DUET_ERR_INPUT, "%s%s is not an option of duet %s",
                    name != argv[optind - 1] ? "--" : "", name,
                    role == ROLE_SERVER ? "proxy" : "tunnel");
        }
            proxy_usage(stderr, role);
            goto out;
        }
        if (lflag)
            any_listener_flag = true;
        else if (c >= F_LISTEN && c < F_LISTEN + 64)
            given |= 1ULL << (c - F_LISTEN);
    }
    if (optind != argc) {
        err_set(err, DUET_ERR_INPUT, "unexpected argument \"%s\"", argv[optind]);
        proxy_usage(stderr, role);
        goto out;
    }
    if (config != NULL) {
        struct proxy_cfg file;
        if (any_listener_flag) {
            err_set(err, DUET_ERR_INPUT,
                    "--config describes the listeners; listener flags cannot be combined with it");
            goto out;
        }
        if (proxy_cfg_from_file(config, role, &file, err) != 0)
            goto out;
        /* Flags given with --config (admin, log, workers, limits) override the file. */
        for (int k = 0; k < 64; k++) {
            if (!(given & (1ULL << k)))
                continue;
            switch (k + F_LISTEN) {
            case F_WORKERS:
                file.workers = out->workers;
                break;
            case F_HS_TIMEOUT:
                file.handshake_timeout_ms = out->handshake_timeout_ms;
                break;
            case F_IDLE_TIMEOUT:
                file.idle_timeout_ms = out->idle_timeout_ms;
                break;
            case F_HEAD_TIMEOUT:
                file.head_timeout_ms = out->head_timeout_ms;
                break;
            case F_MAX_CONNS:
                file.max_conns = out->max_conns;
                break;
            case F_MAX_HEADER:
                file.max_header_bytes = out->max_header_bytes;
                break;
            case F_FAIL_BURST:
                file.fail_burst = out->fail_burst;
                break;
            case F_FAIL_RATE:
                file.fail_per_second = out->fail_per_second;
                break;
            case F_UP_KEEPALIVE:
                file.upstream_keepalive = out->upstream_keepalive;
                break;
            case F_CONNECT_TIMEOUT:
                file.connect_timeout_ms = out->connect_timeout_ms;
                break;
            case F_DRAIN_TIMEOUT:
                file.drain_timeout_ms = out->drain_timeout_ms;
                break;
            case F_THROTTLE_EXEMPT:
                /* The flags' list replaces the file's. */
                free(file.throttle_exempt);
                file.throttle_exempt = out->throttle_exempt;
                file.nthrottle_exempt = out->nthrottle_exempt;
                out->throttle_exempt = NULL;
                out->nthrottle_exempt = 0;
                break;
            case F_INSECURE_KEY:
                file.insecure_key_mode = true;
                break;
            default:
                break;
            }
        }
        if (out->has_admin) {
            net_addr_clear(&file.admin);
            file.admin = out->admin;
            file.has_admin = true;
            memset(&out->admin, 0, sizeof(out->admin));
        }
        if (out->log_file != NULL) {
            free(file.log_file);
            file.log_file = out->log_file;
            out->log_file = NULL;
        }
        if (out->log_level != NULL) {
            free(file.log_level);
            file.log_level = out->log_level;
            out->log_level = NULL;
        }
        proxy_cfg_clear(out);
        *out = file;
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < nallows; i++) {
        char name[300];
        const char *pat = allows[i];
        snprintf(name, sizeof(name), "--allow %s", pat);
        if (policy_add_rule(&l->policy, name, true, &pat, 1, NULL, 0, NULL, NULL, err) != 0)
            goto out;
    }
    if (l->verify_optional && l->policy.nrules == 0) {
        /*
         * Optional verification forwards identities; with no rule every client is
         * allowed, with a certificate or without (migration).
         */
        static const char *const everyone[] = {"any", "anonymous"};
        if (policy_add_rule(&l->policy, "verify-optional", true, everyone, 2, NULL, 0, NULL, NULL,
                            err) != 0)
            goto out;
    }
    if (role == ROLE_TUNNEL && l->nverify_uris > 0) {
        if (policy_add_rule(&l->policy, "--verify-uri", true, (const char *const *)l->verify_uris,
                            l->nverify_uris, NULL, 0, NULL, NULL, err) != 0)
            goto out;
    }
    if (check_exposure(out, l, false, err) != 0 || validate_listener(out, l, err) != 0)
        goto out;
    rc = 0;
out:
    free(allows);
    if (rc != 0 && err->kind != DUET_ERR_NONE) {
        /* keep the message; the caller prints it */
    }
    return rc;
}

/* --- YAML ------------------------------------------------------------------ */

struct lctx {
    struct proxy_cfg *cfg;
    struct listener_cfg *l;
};

#define LSTR(fn, field)                                                                            \
    static int fn(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)   \
    {                                                                                              \
        return ycfg_string(y, v, p, &((struct lctx *)t)->l->field, err);                          \
    }
LSTR(l_name, name)
LSTR(l_cert, cert)
LSTR(l_key, key)
LSTR(l_cacert, cacert)
LSTR(l_server_name, server_name)
#undef LSTR

static int
l_listen(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    const char *s = ycfg_scalar(v);
    struct duet_err e;

    if (s == NULL || net_addr_parse(s, c->cfg->role == ROLE_TUNNEL, &c->l->listen, &e) != 0)
        return ycfg_error(y, v, p, err, "%s", s == NULL ? "expected an address" : e.msg);
    return 0;
}

static int
l_targets(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    char **items = NULL;
    size_t n = 0;
    struct duet_err e;

    if (ycfg_scalar(v) != NULL) {
        if (add_target(c->l, ycfg_scalar(v), c->cfg->role == ROLE_TUNNEL, &e) != 0)
            return ycfg_error(y, v, p, err, "%s", e.msg);
        return 0;
    }
    if (ycfg_strings(y, v, p, &items, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (add_target(c->l, items[i], c->cfg->role == ROLE_TUNNEL, &e) != 0) {
            strv_free(items, n);
            return ycfg_error(y, v, p, err, "%s", e.msg);
        }
    }
    strv_free(items, n);
    return 0;
}

static int
l_crl(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;

    if (ycfg_scalar(v) != NULL)
        return strv_push(&c->l->crls, &c->l->ncrls, ycfg_scalar(v), err);
    strv_free(c->l->crls, c->l->ncrls);
    c->l->crls = NULL;
    c->l->ncrls = 0;
    return ycfg_strings(y, v, p, &c->l->crls, &c->l->ncrls, err);
}

static int
l_mode(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    const char *s = ycfg_scalar(v);

    if (s != NULL && strcmp(s, "http") == 0)
        c->l->mode = MODE_HTTP;
    else if (s != NULL && strcmp(s, "tcp") == 0)
        c->l->mode = MODE_TCP;
    else
        return ycfg_error(y, v, p, err, "\"%s\" is not a mode; expected http or tcp", s ? s : "");
    return 0;
}

static int
l_crl_scope(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    const char *s = ycfg_scalar(v);

    if (s != NULL && strcmp(s, "chain") == 0)
        c->l->crl_scope = DUET_CRL_CHAIN;
    else if (s != NULL && strcmp(s, "leaf") == 0)
        c->l->crl_scope = DUET_CRL_LEAF;
    else
        return ycfg_error(y, v, p, err, "\"%s\": expected chain or leaf", s ? s : "");
    return 0;
}

static int
l_crl_expired(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    const char *s = ycfg_scalar(v);

    if (s != NULL && strcmp(s, "reject") == 0)
        c->l->crl_expired_warn = false;
    else if (s != NULL && strcmp(s, "warn") == 0)
        c->l->crl_expired_warn = true;
    else
        return ycfg_error(y, v, p, err, "\"%s\": expected reject or warn", s ? s : "");
    return 0;
}

static int
l_verify(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    const char *s = ycfg_scalar(v);

    if (s != NULL && strcmp(s, "required") == 0)
        c->l->verify_optional = false;
    else if (s != NULL && strcmp(s, "optional") == 0)
        c->l->verify_optional = true;
    else
        return ycfg_error(y, v, p, err, "\"%s\": expected required or optional", s ? s : "");
    return 0;
}

static int
l_tls12(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, p, &((struct lctx *)t)->l->tls12, err);
}

static int
l_tickets(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    bool on = true;

    if (ycfg_bool(y, v, p, &on, err) != 0)
        return -1;
    ((struct lctx *)t)->l->no_tickets = !on;
    return 0;
}

static int
l_ticket_keys(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct lctx *)t)->l->ticket_keys, err);
}

static int
l_ppv2(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, p, &((struct lctx *)t)->l->proxy_protocol, err);
}

static int
l_unsafe(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, p, &((struct lctx *)t)->l->unsafe_target, err);
}

static int
l_reuse_port(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, p, &((struct lctx *)t)->l->reuse_port, err);
}

static int
l_unsafe_listen(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;

    if (c->cfg->role != ROLE_TUNNEL)
        return ycfg_error(y, v, p, err, "unsafe_listen is a setting of duet tunnel only");
    return ycfg_bool(y, v, p, &c->l->unsafe_listen, err);
}

static int
l_alpn(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    char **items = NULL;
    size_t n = 0, len = 1;

    if (ycfg_strings(y, v, p, &items, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    free(c->l->alpn);
    c->l->alpn = calloc(1, len);
    for (size_t i = 0; c->l->alpn != NULL && i < n; i++) {
        if (i)
            strcat(c->l->alpn, ",");
        strcat(c->l->alpn, items[i]);
    }
    strv_free(items, n);
    return c->l->alpn != NULL ? 0 : err_nomem(err);
}

static int
l_fwd(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;

    if (((struct lctx *)t)->cfg->role != ROLE_SERVER)
        return ycfg_error(y, v, p, err, "forwarded_headers is a setting of duet proxy only");
    if (ycfg_scalar(v) == NULL ||
        http_fwd_mode_parse(ycfg_scalar(v), &((struct lctx *)t)->l->forwarded, &e) != 0)
        return ycfg_error(y, v, p, err, "expected set or append");
    return 0;
}

static int
l_xfcc(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;

    if (xfcc_mode_parse(ycfg_scalar(v), &((struct lctx *)t)->l->xfcc, &e) != 0)
        return ycfg_error(y, v, p, err, "%s", e.msg);
    return 0;
}

static int
up_str(struct ycfg *y, yaml_node_t *v, const char *p, char **dst, struct duet_err *err)
{
    return ycfg_string(y, v, p, dst, err);
}

static int
u_cert(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return up_str(y, v, p, &((struct lctx *)t)->l->up_cert, err);
}

static int
u_key(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return up_str(y, v, p, &((struct lctx *)t)->l->up_key, err);
}

static int
u_cacert(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return up_str(y, v, p, &((struct lctx *)t)->l->up_cacert, err);
}

static int
u_name(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return up_str(y, v, p, &((struct lctx *)t)->l->up_name, err);
}

static const struct ycfg_key upstream_keys[] = {
    {"cert", u_cert, false},
    {"key", u_key, false},
    {"cacert", u_cacert, true},
    {"server_name", u_name, false},
    {NULL, NULL, false},
};

static int
l_upstream_tls(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_map(y, v, p, upstream_keys, t, err);
}

/* One rule: {name, allow|deny: [patterns], methods, host, path_prefix}. */
struct rule_tmp {
    char *name;
    char **allow, **deny, **methods;
    size_t nallow, ndeny, nmethods;
    char *host, *path_prefix;
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

static int
r_path(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct rule_tmp *r = t;
    if (ycfg_string(y, v, p, &r->path_prefix, err) != 0)
        return -1;
    if (r->path_prefix[0] != '/')
        return ycfg_error(y, v, p, err, "\"%s\": a path prefix starts with /", r->path_prefix);
    return 0;
}

static const struct ycfg_key rule_keys[] = {
    {"name", r_name, false},       {"allow", r_allow, false},
    {"deny", r_deny, false},       {"methods", r_methods, false},
    {"host", r_host, false},       {"path_prefix", r_path, false},
    {NULL, NULL, false},
};

static int
l_rules(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
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
        if (rc == 0) {
            snprintf(defname, sizeof(defname), "rule %d", idx + 1);
            rc = policy_add_rule(&c->l->policy, r.name != NULL ? r.name : defname, r.nallow > 0,
                                 (const char *const *)(r.nallow > 0 ? r.allow : r.deny),
                                 r.nallow > 0 ? r.nallow : r.ndeny,
                                 (const char *const *)r.methods, r.nmethods, r.host,
                                 r.path_prefix, err);
            if (rc != 0)
                err_prefix(err, "%s", path);
        }
        free(r.name);
        strv_free(r.allow, r.nallow);
        strv_free(r.deny, r.ndeny);
        strv_free(r.methods, r.nmethods);
        free(r.host);
        free(r.path_prefix);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int
l_verify_uri(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct lctx *c = t;
    return pattern_list(y, v, p, &c->l->verify_uris, &c->l->nverify_uris, err);
}

static const struct ycfg_key listener_keys[] = {
    {"name", l_name, false},
    {"listen", l_listen, true},
    {"mode", l_mode, false},
    {"cert", l_cert, false},
    {"key", l_key, false},
    {"cacert", l_cacert, true},
    {"crl", l_crl, false},
    {"crl_scope", l_crl_scope, false},
    {"crl_expired", l_crl_expired, false},
    {"verify", l_verify, false},
    {"tls12", l_tls12, false},
    {"session_tickets", l_tickets, false},
    {"ticket_keys", l_ticket_keys, false},
    {"alpn", l_alpn, false},
    {"client_cert_header", l_xfcc, false},
    {"forwarded_headers", l_fwd, false},
    {"proxy_protocol", l_ppv2, false},
    {"unsafe_target", l_unsafe, false},
    {"target", l_targets, true},
    {"upstream_tls", l_upstream_tls, false},
    {"rules", l_rules, false},
    {"server_name", l_server_name, false},
    {"verify_uri", l_verify_uri, false},
    {"reuse_port", l_reuse_port, false},
    {"unsafe_listen", l_unsafe_listen, false},
    {NULL, NULL, false},
};

static int
c_listeners(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct proxy_cfg *c = t;
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
        struct lctx lc = {c, l};
        char path[64];
        yaml_node_t *ln = ycfg_node(y, *it);

        snprintf(path, sizeof(path), "%s[%d]", p, idx);
        if (c->role == ROLE_TUNNEL)
            l->mode = MODE_TCP;
        if (ycfg_map(y, ln, path, listener_keys, &lc, err) != 0)
            return -1;
        if (l->name == NULL) {
            char nm[32];
            snprintf(nm, sizeof(nm), "listener-%d", idx + 1);
            if ((l->name = strdup(nm)) == NULL)
                return err_nomem(err);
        }
        if (c->role == ROLE_TUNNEL && l->nverify_uris > 0 &&
            policy_add_rule(&l->policy, "verify_uri", true, (const char *const *)l->verify_uris,
                            l->nverify_uris, NULL, 0, NULL, NULL, err) != 0)
            return -1;
        if (c->role == ROLE_SERVER && l->verify_optional && l->policy.nrules == 0) {
            static const char *const everyone[] = {"any", "anonymous"};
            if (policy_add_rule(&l->policy, "verify-optional", true, everyone, 2, NULL, 0, NULL,
                                NULL, err) != 0)
                return -1;
        }
        if (check_exposure(c, l, true, err) != 0 || validate_listener(c, l, err) != 0)
            return ycfg_error(y, ln, path, err, "%s", err->msg);
    }
    return 0;
}

static int
c_admin(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct proxy_cfg *c = t;
    struct duet_err e;

    if (ycfg_scalar(v) == NULL || net_addr_parse(ycfg_scalar(v), false, &c->admin, &e) != 0)
        return ycfg_error(y, v, p, err, "%s", ycfg_scalar(v) ? e.msg : "expected ADDRESS:PORT");
    c->has_admin = true;
    return 0;
}

static int
c_log(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_string(y, v, p, &((struct proxy_cfg *)t)->log_file, err);
}

static int
c_log_level(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;

    if (ycfg_scalar(v) == NULL || log_level_check(ycfg_scalar(v), &e) != 0)
        return ycfg_error(y, v, p, err, "expected debug, info, warn or error");
    return ycfg_string(y, v, p, &((struct proxy_cfg *)t)->log_level, err);
}

static int
c_workers(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);
    char *end = NULL;
    long n = s != NULL ? strtol(s, &end, 10) : 0;

    if (s == NULL || end == s || *end != '\0' || n < 1 || n > 256)
        return ycfg_error(y, v, p, err, "expected a number of workers 1 to 256");
    ((struct proxy_cfg *)t)->workers = (int)n;
    return 0;
}

static int
lim_hs(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;
    if (ycfg_scalar(v) == NULL ||
        parse_duration_ms(p, ycfg_scalar(v), &((struct proxy_cfg *)t)->handshake_timeout_ms, &e) != 0)
        return ycfg_error(y, v, p, err, "expected a duration such as 10s");
    return 0;
}

static int
lim_head(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;
    if (((struct proxy_cfg *)t)->role != ROLE_SERVER)
        return ycfg_error(y, v, p, err, "request_header_timeout is a setting of duet proxy only");
    if (ycfg_scalar(v) == NULL ||
        parse_duration_ms(p, ycfg_scalar(v), &((struct proxy_cfg *)t)->head_timeout_ms, &e) != 0)
        return ycfg_error(y, v, p, err, "expected a duration such as 10s");
    return 0;
}

static int
lim_idle(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;
    if (ycfg_scalar(v) == NULL ||
        parse_duration_ms(p, ycfg_scalar(v), &((struct proxy_cfg *)t)->idle_timeout_ms, &e) != 0)
        return ycfg_error(y, v, p, err, "expected a duration such as 5m");
    return 0;
}

static int
lim_connect(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;
    if (ycfg_scalar(v) == NULL ||
        parse_duration_ms(p, ycfg_scalar(v), &((struct proxy_cfg *)t)->connect_timeout_ms, &e) != 0)
        return ycfg_error(y, v, p, err, "expected a duration such as 5s or 500ms");
    return 0;
}

static int
lim_drain(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct duet_err e;
    if (ycfg_scalar(v) == NULL ||
        parse_duration_ms(p, ycfg_scalar(v), &((struct proxy_cfg *)t)->drain_timeout_ms, &e) != 0)
        return ycfg_error(y, v, p, err, "expected a duration such as 30s");
    return 0;
}

static int
lim_exempt(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    struct proxy_cfg *c = t;
    char **items = NULL;
    size_t n = 0;
    struct duet_err e;

    if (c->role != ROLE_SERVER)
        return ycfg_error(y, v, p, err, "throttle_exempt is a setting of duet proxy only");
    if (ycfg_scalar(v) != NULL) {
        if (add_throttle_exempt(c, "throttle_exempt", ycfg_scalar(v), &e) != 0)
            return ycfg_error(y, v, p, err, "%s", e.msg);
        return 0;
    }
    if (ycfg_strings(y, v, p, &items, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (add_throttle_exempt(c, "throttle_exempt", items[i], &e) != 0) {
            strv_free(items, n);
            return ycfg_error(y, v, p, err, "%s", e.msg);
        }
    }
    strv_free(items, n);
    return 0;
}

static int
lim_num(struct ycfg *y, yaml_node_t *v, const char *p, double *out, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);
    char *end = NULL;
    double d = s != NULL ? strtod(s, &end) : 0;

    if (s == NULL || end == s || *end != '\0' || d <= 0)
        return ycfg_error(y, v, p, err, "expected a positive number");
    *out = d;
    return 0;
}

static int
lim_conns(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    double d;
    if (lim_num(y, v, p, &d, err) != 0)
        return -1;
    ((struct proxy_cfg *)t)->max_conns = (long)d;
    return 0;
}

static int
lim_header(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    double d;
    if (lim_num(y, v, p, &d, err) != 0)
        return -1;
    ((struct proxy_cfg *)t)->max_header_bytes = (size_t)d;
    return 0;
}

static int
lim_burst(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return lim_num(y, v, p, &((struct proxy_cfg *)t)->fail_burst, err);
}

static int
lim_rate(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return lim_num(y, v, p, &((struct proxy_cfg *)t)->fail_per_second, err);
}

static int
lim_up_keepalive(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    const char *s = ycfg_scalar(v);
    char *end = NULL;
    long n = s != NULL ? strtol(s, &end, 10) : -1;

    if (s == NULL || end == s || *end != '\0' || n < 0 || n > 1024)
        return ycfg_error(y, v, p, err, "expected 0 (off) to 1024 idle connections");
    ((struct proxy_cfg *)t)->upstream_keepalive = (int)n;
    return 0;
}

static const struct ycfg_key limit_keys[] = {
    {"handshake_timeout", lim_hs, false},
    {"idle_timeout", lim_idle, false},
    {"request_header_timeout", lim_head, false},
    {"max_connections", lim_conns, false},
    {"max_header_bytes", lim_header, false},
    {"failed_handshake_burst", lim_burst, false},
    {"failed_handshakes_per_second", lim_rate, false},
    {"upstream_keepalive", lim_up_keepalive, false},
    {"connect_timeout", lim_connect, false},
    {"drain_timeout", lim_drain, false},
    {"throttle_exempt", lim_exempt, false},
    {NULL, NULL, false},
};

static int
c_limits(struct ycfg *y, yaml_node_t *v, const char *p, void *t, struct duet_err *err)
{
    return ycfg_map(y, v, p, limit_keys, t, err);
}

static const struct ycfg_key top_keys[] = {
    {"listeners", c_listeners, true},
    {"admin", c_admin, false},
    {"log", c_log, false},
    {"log_level", c_log_level, false},
    {"workers", c_workers, false},
    {"limits", c_limits, false},
    {NULL, NULL, false},
};

int
proxy_cfg_from_file(const char *path, enum proxy_role role, struct proxy_cfg *out,
                    struct duet_err *err)
{
    struct ycfg y;

    cfg_defaults(out, role);
    if (ycfg_load(path, &y, err) != 0)
        return -1;
    if (ycfg_map(&y, ycfg_root(&y), "", top_keys, out, err) != 0 ||
        (out->config_file = strdup(path)) == NULL) {
        if (err->kind == DUET_ERR_NONE)
            err_nomem(err);
        ycfg_free(&y);
        proxy_cfg_clear(out);
        return -1;
    }
    ycfg_free(&y);
    return 0;
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
    }
#undef ADD
    return n;
}
