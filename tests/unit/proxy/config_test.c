/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_test.c - unit tests of the proxy and tunnel configuration
 * (src/proxy/config.c): for every row of the settings table, the flag and
 * the equivalent YAML build the same configuration, field by field; every
 * class of bad value (not a number, out of range, not a duration, not one of
 * the names, no value, a setting of the other command, an unknown name, a bad
 * address, pattern or network) is refused by both with the same words apart
 * from the locator ("--drain-timeout" or "FILE:LINE:COL: limits.drain_timeout").
 * No file is read but the YAML: certificates are only named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/err.h"
#include "proxy/config.h"

/* Where an entry's YAML line goes. */
enum sect { S_TOP, S_LIMITS, S_LISTENER, S_UPSTREAM };

/* One setting as a flag and as YAML. */
struct entry {
    const char *row;  /* the table row: its flag, or its key for a YAML-only row */
    const char *flag; /* "--drain-timeout"; NULL: no flag form */
    const char *arg;  /* its value; NULL: a flag without value; "a b": the flag twice */
    enum sect sect;
    const char *yaml; /* "drain_timeout: 45s" */
};

/* What every proxy and tunnel configuration of these tests holds (unless a sample replaces it). */
static const struct entry proxy_base[] = {
    {"name", NULL, NULL, S_LISTENER, "name: proxy"},
    {"listen", "--listen", "127.0.0.1:8443", S_LISTENER, "listen: 127.0.0.1:8443"},
    {"target", "--target", "127.0.0.1:8080", S_LISTENER, "target: 127.0.0.1:8080"},
    {"cert", "--cert", "c.pem", S_LISTENER, "cert: c.pem"},
    {"key", "--key", "k.pem", S_LISTENER, "key: k.pem"},
    {"cacert", "--cacert", "r.pem", S_LISTENER, "cacert: r.pem"},
    {"allow", "--allow", "any", S_LISTENER, "rules: [{name: \"--allow any\", allow: [any]}]"},
};

static const struct entry tunnel_base[] = {
    {"name", NULL, NULL, S_LISTENER, "name: tunnel"},
    {"listen", "--listen", "127.0.0.1:15432", S_LISTENER, "listen: 127.0.0.1:15432"},
    {"target", "--target", "127.0.0.1:5433", S_LISTENER, "target: 127.0.0.1:5433"},
    {"cacert", "--cacert", "r.pem", S_LISTENER, "cacert: r.pem"},
    {"server-name", "--server-name", "db.internal", S_LISTENER, "server_name: db.internal"},
};

/* A value of one row, that is not its default, in both forms. */
struct sample {
    enum proxy_role role;
    struct entry e[2];
};

#define PX ROLE_SERVER
#define TN ROLE_TUNNEL
#define UPCA {"upstream-cacert", "--upstream-cacert", "ur.pem", S_UPSTREAM, "cacert: ur.pem"}

static const struct sample samples[] = {
    {PX, {{"listen", "--listen", "127.0.0.2:9443", S_LISTENER, "listen: 127.0.0.2:9443"}}},
    {TN, {{"listen", "--listen", "unix:/run/t.sock", S_LISTENER, "listen: unix:/run/t.sock"}}},
    {PX, {{"target", "--target", "127.0.0.1:8081 unix:/run/x.sock", S_LISTENER,
           "target: [127.0.0.1:8081, unix:/run/x.sock]"}}},
    {PX, {{"name", "--name", "hr-app", S_LISTENER, "name: hr-app"}}},
    {TN, {{"name", "--name", "db", S_LISTENER, "name: db"}}},
    {PX, {{"mode", "--mode", "tcp", S_LISTENER, "mode: tcp"}}},
    {PX, {{"unsafe-target", "--unsafe-target", NULL, S_LISTENER, "unsafe_target: true"}}},
    {TN, {{"unsafe-listen", "--unsafe-listen", NULL, S_LISTENER, "unsafe_listen: yes"}}},
    {PX, {{"reuse-port", "--reuse-port", NULL, S_LISTENER, "reuse_port: on"}}},
    {PX, {{"cert", "--cert", "c2.pem", S_LISTENER, "cert: c2.pem"}}},
    {PX, {{"key", "--key", "k2.pem", S_LISTENER, "key: k2.pem"}}},
    {TN, {{"cert", "--cert", "app.pem", S_LISTENER, "cert: app.pem"},
          {"key", "--key", "app.key", S_LISTENER, "key: app.key"}}},
    {PX, {{"cacert", "--cacert", "r2.pem", S_LISTENER, "cacert: r2.pem"}}},
    {PX, {{"crl", "--crl", "a.pem b.pem", S_LISTENER, "crl: [a.pem, b.pem]"}}},
    {TN, {{"crl", "--crl", "a.pem", S_LISTENER, "crl: a.pem"}}},
    {PX, {{"crl-url", "--crl-url", "http://ca.test/crl http://10.0.0.1:8080/i.crl", S_LISTENER,
           "crl_urls: [\"http://ca.test/crl\", \"http://10.0.0.1:8080/i.crl\"]"}}},
    {TN, {{"crl-url", "--crl-url", "http://ca.test/crl", S_LISTENER,
           "crl_urls: http://ca.test/crl"}}},
    {PX, {{"crl-from-cdp", "--crl-from-cdp", NULL, S_LISTENER, "crl_from_cdp: true"}}},
    {PX, {{"ocsp-staple", "--ocsp-staple", NULL, S_LISTENER, "ocsp_staple: true"},
          {"ocsp-staple-url", "--ocsp-staple-url", "http://ocsp.test:8080/ocsp", S_LISTENER,
           "ocsp_staple_url: http://ocsp.test:8080/ocsp"}}},
    {PX, {{"ocsp-staple-url", "--ocsp-staple-url", "http://[::1]/", S_LISTENER,
           "ocsp_staple_url: \"http://[::1]/\""}}},
    {PX, {{"ocsp", "--ocsp", "require", S_LISTENER, "ocsp: require"},
          {"ocsp-url", "--ocsp-url", "http://ocsp.test:8080/", S_LISTENER,
           "ocsp_url: http://ocsp.test:8080/"}}},
    {PX, {{"ocsp", "--ocsp", "prefer", S_LISTENER, "ocsp: prefer"}}},
    {PX, {{"ocsp-url", "--ocsp-url", "http://127.0.0.1:8080/ocsp", S_LISTENER,
           "ocsp_url: http://127.0.0.1:8080/ocsp"}}},
    {PX, {{"ocsp-timeout", "--ocsp-timeout", "500ms", S_TOP, "ocsp_timeout: 500ms"}}},
    {PX, {{"ocsp-cache-size", "--ocsp-cache-size", "50", S_TOP, "ocsp_cache_size: 50"}}},
    {PX, {{"ocsp-recheck", "--ocsp-recheck", "30s", S_TOP, "ocsp_recheck: 30s"}}},
    {PX, {{"crl-cache", "--crl-cache", "/var/tmp/crls", S_TOP, "crl_cache: /var/tmp/crls"}}},
    {PX, {{"crl-refresh", "--crl-refresh", "5m", S_TOP, "crl_refresh: 5m"}}},
    {PX, {{"crl-fetch-timeout", "--crl-fetch-timeout", "3s", S_TOP, "crl_fetch_timeout: 3s"}}},
    {PX, {{"crl-max-size", "--crl-max-size", "1048576", S_TOP, "crl_max_size: 1048576"}}},
    {PX, {{"crl-scope", "--crl-scope", "leaf", S_LISTENER, "crl_scope: leaf"}}},
    {PX, {{"crl-expired", "--crl-expired", "warn", S_LISTENER, "crl_expired: warn"}}},
    {PX, {{"insecure-crl-signature", "--insecure-crl-signature", "dsa", S_LISTENER,
           "insecure_crl_signature: dsa"}}},
    {TN, {{"insecure-crl-signature", "--insecure-crl-signature", "dsa", S_LISTENER,
           "insecure_crl_signature: dsa"}}},
    {PX, {{"verify", "--verify", "optional", S_LISTENER, "verify: optional"}}},
    {PX, {{"tls12", "--tls12", NULL, S_LISTENER, "tls12: true"}}},
    {PX, {{"alpn", "--alpn", "spdy/3,http/1.1", S_LISTENER, "alpn: [spdy/3, http/1.1]"}}},
    {TN, {{"alpn", "--alpn", "postgresql", S_LISTENER, "alpn: postgresql"}}},
    {PX, {{"no-session-tickets", "--no-session-tickets", NULL, S_LISTENER,
           "session_tickets: false"}}},
    {PX, {{"ticket-keys", "--ticket-keys", "t.keys", S_LISTENER, "ticket_keys: t.keys"}}},
    {PX, {{"allow", "--allow", "dns:*.example uri:spiffe://x/*", S_LISTENER,
           "rules: [{name: \"--allow dns:*.example\", allow: [\"dns:*.example\"]}, "
           "{name: \"--allow uri:spiffe://x/*\", allow: [\"uri:spiffe://x/*\"]}]"}}},
    {PX, {{"rules", "--allow", "cn:alice", S_LISTENER,
           "rules: [{name: \"--allow cn:alice\", allow: [\"cn:alice\"]}]"}}},
    {TN, {{"server-name", "--server-name", "db2.internal", S_LISTENER,
           "server_name: db2.internal"}}},
    {TN, {{"verify-uri", "--verify-uri", "uri:spiffe://x/db uri:spiffe://x/db2", S_LISTENER,
           "verify_uri: [\"uri:spiffe://x/db\", \"uri:spiffe://x/db2\"]"}}},
    {TN, {{"no-staple-check", "--no-staple-check", NULL, S_LISTENER, "staple_check: false"}}},
    {TN, {{"require-staple", "--require-staple", NULL, S_LISTENER, "require_staple: true"}}},
    {PX, {{"client-cert-header", "--client-cert-header", "append_forward", S_LISTENER,
           "client_cert_header: append_forward"}}},
    {PX, {{"forwarded-headers", "--forwarded-headers", "append", S_LISTENER,
           "forwarded_headers: append"}}},
    {PX, {{"proxy-protocol", "--proxy-protocol", NULL, S_LISTENER, "proxy_protocol: true"}}},
    {PX, {{"upstream-protocol", "--upstream-protocol", "h2c", S_LISTENER,
           "upstream_protocol: h2c"}}},
    {PX, {{"upstream-h2-connections", "--upstream-h2-connections", "8", S_LIMITS,
           "upstream_h2_connections: 8"}}},
    {PX, {{"upstream-h2-max-connections", "--upstream-h2-max-connections", "16", S_LIMITS,
           "upstream_h2_max_connections: 16"}}},
    {PX, {{"upstream-cert", "--upstream-cert", "u.pem", S_UPSTREAM, "cert: u.pem"}, UPCA}},
    {PX, {{"upstream-key", "--upstream-key", "u.key", S_UPSTREAM, "key: u.key"}, UPCA}},
    {PX, {UPCA}},
    {PX, {{"upstream-name", "--upstream-name", "hr.internal", S_UPSTREAM,
           "server_name: hr.internal"}, UPCA}},
    {PX, {{"upstream-keepalive", "--upstream-keepalive", "0", S_LIMITS,
           "upstream_keepalive: 0"}}},
    {PX, {{"handshake-timeout", "--handshake-timeout", "3s", S_LIMITS,
           "handshake_timeout: 3s"}}},
    {PX, {{"idle-timeout", "--idle-timeout", "90s", S_LIMITS, "idle_timeout: 90s"}}},
    {TN, {{"idle-timeout", "--idle-timeout", "1h", S_LIMITS, "idle_timeout: 1h"}}},
    {PX, {{"request-header-timeout", "--request-header-timeout", "500ms", S_LIMITS,
           "request_header_timeout: 500ms"}}},
    {PX, {{"connect-timeout", "--connect-timeout", "2s", S_LIMITS, "connect_timeout: 2s"}}},
    {PX, {{"drain-timeout", "--drain-timeout", "45s", S_LIMITS, "drain_timeout: 45s"}}},
    {TN, {{"drain-timeout", "--drain-timeout", "1m", S_LIMITS, "drain_timeout: 1m"}}},
    {PX, {{"max-connection-lifetime", "--max-connection-lifetime", "36h", S_LIMITS,
           "max_connection_lifetime: 36h"}}},
    {TN, {{"max-connection-lifetime", "--max-connection-lifetime", "90s", S_LIMITS,
           "max_connection_lifetime: 90s"}}},
    {PX, {{"max-conns", "--max-conns", "500", S_LIMITS, "max_connections: 500"}}},
    {PX, {{"max-header-size", "--max-header-size", "8192", S_LIMITS,
           "max_header_bytes: 8192"}}},
    {PX, {{"h2-max-streams", "--h2-max-streams", "50", S_LIMITS, "h2_max_streams: 50"}}},
    {PX, {{"h2-stream-window", "--h2-stream-window", "65536", S_LIMITS,
           "h2_stream_window: 65536"}}},
    {PX, {{"h2-connection-window", "--h2-connection-window", "4194304", S_LIMITS,
           "h2_connection_window: 4194304"}}},
    {PX, {{"h2-stream-timeout", "--h2-stream-timeout", "20s", S_LIMITS,
           "h2_stream_timeout: 20s"}}},
    {PX, {{"h2-max-upstreams", "--h2-max-upstreams", "8", S_LIMITS, "h2_max_upstreams: 8"}}},
    {PX, {{"h2-max-held-bytes", "--h2-max-held-bytes", "2097152", S_LIMITS,
           "h2_max_held_bytes: 2097152"}}},
    {PX, {{"failed-handshake-burst", "--failed-handshake-burst", "20", S_LIMITS,
           "failed_handshake_burst: 20"}}},
    {PX, {{"failed-handshake-rate", "--failed-handshake-rate", "2.5", S_LIMITS,
           "failed_handshakes_per_second: 2.5"}}},
    {PX, {{"throttle-exempt", "--throttle-exempt", "10.0.0.0/8 2001:db8::/32", S_LIMITS,
           "throttle_exempt: [10.0.0.0/8, \"2001:db8::/32\"]"}}},
    {PX, {{"admin", "--admin", "127.0.0.1:9901", S_TOP, "admin: 127.0.0.1:9901"}}},
    {TN, {{"admin", "--admin", "[::1]:9902", S_TOP, "admin: \"[::1]:9902\""}}},
    {PX, {{"log", "--log", "/var/log/duet/p.jsonl", S_TOP, "log: /var/log/duet/p.jsonl"}}},
    {PX, {{"log-level", "--log-level", "warn", S_TOP, "log_level: warn"}}},
    {PX, {{"workers", "--workers", "3", S_TOP, "workers: 3"}}},
    {PX, {{"insecure-key-mode", "--insecure-key-mode", NULL, S_TOP, "insecure_key_mode: true"}}},
};

/* Rows that only say what to do (no configuration to compare). */
static const char *const meta_rows[] = {"config", "check", "help"};

/* --- building a configuration both ways -------------------------------------------------- */

struct argv_buf {
    char *v[64];
    char store[2048];
    size_t used;
    int n;
};

static void
argv_add(struct argv_buf *a, const char *s)
{
    size_t len = strlen(s) + 1;

    assert_true(a->n < 63 && a->used + len <= sizeof(a->store));
    memcpy(a->store + a->used, s, len);
    a->v[a->n++] = a->store + a->used;
    a->v[a->n] = NULL;
    a->used += len;
}

static void
argv_entry(struct argv_buf *a, const struct entry *e)
{
    char vals[256];
    char *save = NULL;

    if (e->flag == NULL)
        return;
    if (e->arg == NULL) {
        argv_add(a, e->flag);
        return;
    }
    snprintf(vals, sizeof(vals), "%s", e->arg);
    for (char *t = strtok_r(vals, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        argv_add(a, e->flag);
        argv_add(a, t);
    }
}

/* Whether a base entry is replaced by one of the sample's. */
static bool
replaced(const struct entry *b, const struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].row != NULL && (strcmp(e[i].row, b->row) == 0 ||
                                 (e[i].flag != NULL && b->flag != NULL &&
                                  strcmp(e[i].flag, b->flag) == 0)))
            return true;
    }
    return false;
}

static const struct entry *
base_of(enum proxy_role role, size_t *n)
{
    if (role == ROLE_SERVER) {
        *n = sizeof(proxy_base) / sizeof(proxy_base[0]);
        return proxy_base;
    }
    *n = sizeof(tunnel_base) / sizeof(tunnel_base[0]);
    return tunnel_base;
}

/* The flags: the base (less what the sample replaces), then the sample's entries. */
static void
build_argv(enum proxy_role role, const struct entry *e, size_t ne, struct argv_buf *a)
{
    size_t nb;
    const struct entry *b = base_of(role, &nb);

    memset(a, 0, sizeof(*a));
    argv_add(a, role == ROLE_SERVER ? "proxy" : "tunnel");
    for (size_t i = 0; i < nb; i++) {
        if (!replaced(&b[i], e, ne))
            argv_entry(a, &b[i]);
    }
    for (size_t i = 0; i < ne; i++)
        argv_entry(a, &e[i]);
}

static void
yaml_lines(FILE *f, const struct entry *b, size_t nb, const struct entry *e, size_t ne,
           enum sect s, const char *indent)
{
    for (size_t i = 0; i < nb; i++) {
        if (b[i].sect == s && !replaced(&b[i], e, ne))
            fprintf(f, "%s%s\n", indent, b[i].yaml);
    }
    for (size_t i = 0; i < ne; i++) {
        if (e[i].row != NULL && e[i].sect == s)
            fprintf(f, "%s%s\n", indent, e[i].yaml);
    }
}

static bool
has_sect(const struct entry *e, size_t ne, enum sect s)
{
    for (size_t i = 0; i < ne; i++) {
        if (e[i].row != NULL && e[i].sect == s)
            return true;
    }
    return false;
}

/* The same settings as a YAML file, written to `path` (a mkstemp template). */
static void
build_yaml(enum proxy_role role, const struct entry *e, size_t ne, char *path)
{
    size_t nb;
    const struct entry *b = base_of(role, &nb);
    int fd = mkstemp(path);
    FILE *f;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    yaml_lines(f, b, nb, e, ne, S_TOP, "");
    if (has_sect(e, ne, S_LIMITS)) {
        fprintf(f, "limits:\n");
        yaml_lines(f, b, nb, e, ne, S_LIMITS, "  ");
    }
    fprintf(f, "listeners:\n  -\n");
    yaml_lines(f, b, nb, e, ne, S_LISTENER, "    ");
    if (has_sect(e, ne, S_UPSTREAM)) {
        fprintf(f, "    upstream_tls:\n");
        yaml_lines(f, b, nb, e, ne, S_UPSTREAM, "      ");
    }
    assert_int_equal(fclose(f), 0);
}

/* --- comparing two configurations -------------------------------------------------------- */

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!str_eq(a[i], b[i]))
            return false;
    }
    return true;
}

static bool
policy_eq(const struct policy *a, const struct policy *b)
{
    if (a->nrules != b->nrules)
        return false;
    for (size_t i = 0; i < a->nrules; i++) {
        const struct policy_rule *x = &a->rules[i], *y = &b->rules[i];
        if (!str_eq(x->name, y->name) || x->allow != y->allow || x->nids != y->nids ||
            !strv_eq(x->methods, x->nmethods, y->methods, y->nmethods) ||
            !str_eq(x->host, y->host) || !str_eq(x->path, y->path) ||
            !str_eq(x->path_prefix, y->path_prefix))
            return false;
        for (size_t k = 0; k < x->nids; k++) {
            if (x->ids[k].field != y->ids[k].field || !str_eq(x->ids[k].glob, y->ids[k].glob))
                return false;
        }
    }
    return true;
}

static bool
addr_eq(const struct net_addr *a, const struct net_addr *b)
{
    return str_eq(a->text, b->text) && a->len == b->len && a->is_unix == b->is_unix &&
           memcmp(&a->ss, &b->ss, a->len) == 0;
}

#define DIFF(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return what;                                                                           \
    } while (0)

/* The first field in which two listeners differ, or NULL. */
static const char *
listener_diff(const struct listener_cfg *a, const struct listener_cfg *b)
{
    DIFF(str_eq(a->name, b->name), "name");
    DIFF(addr_eq(&a->listen, &b->listen), "listen");
    DIFF(a->mode == b->mode, "mode");
    DIFF(str_eq(a->cert, b->cert), "cert");
    DIFF(str_eq(a->key, b->key), "key");
    DIFF(str_eq(a->cacert, b->cacert), "cacert");
    DIFF(strv_eq(a->crls, a->ncrls, b->crls, b->ncrls), "crls");
    DIFF(strv_eq(a->crl_urls, a->ncrl_urls, b->crl_urls, b->ncrl_urls), "crl_urls");
    DIFF(a->crl_from_cdp == b->crl_from_cdp, "crl_from_cdp");
    DIFF(strv_eq(a->crl_fetch_urls, a->ncrl_fetched, b->crl_fetch_urls, b->ncrl_fetched),
         "crl_fetch_urls");
    DIFF(a->ocsp_staple == b->ocsp_staple, "ocsp_staple");
    DIFF(str_eq(a->ocsp_staple_url, b->ocsp_staple_url), "ocsp_staple_url");
    DIFF(str_eq(a->staple_url, b->staple_url), "staple_url");
    DIFF(str_eq(a->staple_file, b->staple_file), "staple_file");
    DIFF(a->ocsp == b->ocsp, "ocsp");
    DIFF(str_eq(a->ocsp_url, b->ocsp_url), "ocsp_url");
    DIFF(a->crl_scope == b->crl_scope, "crl_scope");
    DIFF(a->crl_expired_warn == b->crl_expired_warn, "crl_expired_warn");
    DIFF(a->insecure_crl_dsa == b->insecure_crl_dsa, "insecure_crl_dsa");
    DIFF(a->tls12 == b->tls12, "tls12");
    DIFF(a->verify_optional == b->verify_optional, "verify_optional");
    DIFF(a->no_tickets == b->no_tickets, "no_tickets");
    DIFF(str_eq(a->ticket_keys, b->ticket_keys), "ticket_keys");
    DIFF(str_eq(a->alpn, b->alpn), "alpn");
    DIFF(a->ntargets == b->ntargets, "ntargets");
    for (size_t i = 0; i < a->ntargets; i++) {
        DIFF(addr_eq(&a->targets[i], &b->targets[i]), "targets");
        DIFF(str_eq(a->target_names[i], b->target_names[i]), "target_names");
    }
    DIFF(a->unsafe_target == b->unsafe_target, "unsafe_target");
    DIFF(a->proxy_protocol == b->proxy_protocol, "proxy_protocol");
    DIFF(a->xfcc == b->xfcc, "xfcc");
    DIFF(a->forwarded == b->forwarded, "forwarded");
    DIFF(a->up_proto == b->up_proto, "up_proto");
    DIFF(str_eq(a->up_cert, b->up_cert), "up_cert");
    DIFF(str_eq(a->up_key, b->up_key), "up_key");
    DIFF(str_eq(a->up_cacert, b->up_cacert), "up_cacert");
    DIFF(str_eq(a->up_name, b->up_name), "up_name");
    DIFF(str_eq(a->server_name, b->server_name), "server_name");
    DIFF(strv_eq(a->verify_uris, a->nverify_uris, b->verify_uris, b->nverify_uris),
         "verify_uris");
    DIFF(policy_eq(&a->policy, &b->policy), "policy");
    DIFF(a->reuse_port == b->reuse_port, "reuse_port");
    DIFF(a->unsafe_listen == b->unsafe_listen, "unsafe_listen");
    DIFF(a->no_staple_check == b->no_staple_check, "no_staple_check");
    DIFF(a->require_staple == b->require_staple, "require_staple");
    return NULL;
}

/* The first field in which two configurations differ (the file's name aside), or NULL. */
static const char *
cfg_diff(const struct proxy_cfg *a, const struct proxy_cfg *b)
{
    DIFF(a->role == b->role, "role");
    DIFF(a->nlisteners == b->nlisteners, "nlisteners");
    for (size_t i = 0; i < a->nlisteners; i++) {
        const char *d = listener_diff(&a->listeners[i], &b->listeners[i]);
        if (d != NULL)
            return d;
    }
    DIFF(a->has_admin == b->has_admin && addr_eq(&a->admin, &b->admin), "admin");
    DIFF(str_eq(a->log_file, b->log_file), "log_file");
    DIFF(str_eq(a->log_level, b->log_level), "log_level");
    DIFF(a->workers == b->workers, "workers");
    DIFF(a->handshake_timeout_ms == b->handshake_timeout_ms, "handshake_timeout_ms");
    DIFF(a->idle_timeout_ms == b->idle_timeout_ms, "idle_timeout_ms");
    DIFF(a->head_timeout_ms == b->head_timeout_ms, "head_timeout_ms");
    DIFF(a->max_conns == b->max_conns, "max_conns");
    DIFF(a->max_header_bytes == b->max_header_bytes, "max_header_bytes");
    DIFF(a->upstream_keepalive == b->upstream_keepalive, "upstream_keepalive");
    DIFF(a->h2_max_streams == b->h2_max_streams, "h2_max_streams");
    DIFF(a->h2_stream_window == b->h2_stream_window, "h2_stream_window");
    DIFF(a->h2_conn_window == b->h2_conn_window, "h2_conn_window");
    DIFF(a->h2_stream_timeout_ms == b->h2_stream_timeout_ms, "h2_stream_timeout_ms");
    DIFF(a->h2_max_upstreams == b->h2_max_upstreams, "h2_max_upstreams");
    DIFF(a->h2_max_held == b->h2_max_held, "h2_max_held");
    DIFF(a->upstream_h2_conns == b->upstream_h2_conns, "upstream_h2_conns");
    DIFF(a->upstream_h2_max_conns == b->upstream_h2_max_conns, "upstream_h2_max_conns");
    DIFF(a->fail_per_second == b->fail_per_second, "fail_per_second");
    DIFF(a->fail_burst == b->fail_burst, "fail_burst");
    DIFF(a->nthrottle_exempt == b->nthrottle_exempt &&
             (a->nthrottle_exempt == 0 ||
              memcmp(a->throttle_exempt, b->throttle_exempt,
                     a->nthrottle_exempt * sizeof(*a->throttle_exempt)) == 0),
         "throttle_exempt");
    DIFF(a->ocsp_timeout_ms == b->ocsp_timeout_ms, "ocsp_timeout_ms");
    DIFF(a->ocsp_cache_size == b->ocsp_cache_size, "ocsp_cache_size");
    DIFF(a->ocsp_recheck_ms == b->ocsp_recheck_ms, "ocsp_recheck_ms");
    DIFF(a->connect_timeout_ms == b->connect_timeout_ms, "connect_timeout_ms");
    DIFF(a->drain_timeout_ms == b->drain_timeout_ms, "drain_timeout_ms");
    DIFF(a->max_lifetime_ms == b->max_lifetime_ms, "max_lifetime_ms");
    DIFF(a->insecure_key_mode == b->insecure_key_mode, "insecure_key_mode");
    DIFF(str_eq(a->crl_cache, b->crl_cache), "crl_cache");
    DIFF(a->crl_refresh_ms == b->crl_refresh_ms, "crl_refresh_ms");
    DIFF(a->crl_timeout_ms == b->crl_timeout_ms, "crl_timeout_ms");
    DIFF(a->crl_max_bytes == b->crl_max_bytes, "crl_max_bytes");
    return NULL;
}

static void
from_flags(enum proxy_role role, const struct entry *e, size_t ne, struct proxy_cfg *out)
{
    struct argv_buf a;
    struct duet_err err;
    bool check = false;

    err_clear(&err);
    build_argv(role, e, ne, &a);
    if (proxy_cfg_from_args(a.n, a.v, role, out, &check, &err) != 0)
        fail_msg("flags of %s: %s", e != NULL && ne > 0 ? e[0].row : "the base", err.msg);
}

static void
from_yaml(enum proxy_role role, const struct entry *e, size_t ne, struct proxy_cfg *out)
{
    char path[] = "/tmp/duet-config-test-XXXXXX";
    struct duet_err err;
    int rc;

    err_clear(&err);
    build_yaml(role, e, ne, path);
    rc = proxy_cfg_from_file(path, role, out, &err);
    unlink(path);
    if (rc != 0)
        fail_msg("YAML of %s: %s", e != NULL && ne > 0 ? e[0].row : "the base", err.msg);
}

static size_t
nentries(const struct sample *s)
{
    return s->e[1].row != NULL ? 2 : 1;
}

/* --- the tests --------------------------------------------------------------------------- */

/* Every row of the table has a sample here (or is one that only says what to do). */
static void
test_every_row_has_a_sample(void **state)
{
    const struct proxy_setting *s;

    (void)state;
    for (size_t i = 0; (s = proxy_setting_get(i)) != NULL; i++) {
        const char *name = s->flag != NULL ? s->flag : s->key;
        bool found = false;
        for (size_t m = 0; m < sizeof(meta_rows) / sizeof(meta_rows[0]); m++)
            found = found || strcmp(meta_rows[m], name) == 0;
        for (size_t k = 0; !found && k < sizeof(samples) / sizeof(samples[0]); k++)
            found = strcmp(samples[k].e[0].row, name) == 0;
        if (!found)
            fail_msg("setting %s has no sample in config_test.c", name);
        assert_non_null(s->help);
        assert_true(s->commands != 0);
        if (s->key == NULL && s->flag != NULL && strcmp(s->flag, "allow") != 0) {
            bool meta = false;
            for (size_t m = 0; m < sizeof(meta_rows) / sizeof(meta_rows[0]); m++)
                meta = meta || strcmp(meta_rows[m], s->flag) == 0;
            if (!meta)
                fail_msg("--%s has no YAML key and no stated reason", s->flag);
        }
    }
}

/* The base configurations (every default) are the same from flags and from YAML. */
static void
test_defaults_are_the_same_both_ways(void **state)
{
    (void)state;
    for (int r = 0; r < 2; r++) {
        enum proxy_role role = r == 0 ? ROLE_SERVER : ROLE_TUNNEL;
        struct proxy_cfg a, b;
        const char *d;
        from_flags(role, NULL, 0, &a);
        from_yaml(role, NULL, 0, &b);
        d = cfg_diff(&a, &b);
        if (d != NULL)
            fail_msg("%s defaults differ in %s", r == 0 ? "proxy" : "tunnel", d);
        assert_int_equal(a.drain_timeout_ms, 30000);
        assert_int_equal(a.max_lifetime_ms, 0); /* off unless set */
        assert_int_equal(a.upstream_keepalive, 256);
        assert_int_equal(a.h2_max_streams, 100);
        assert_int_equal(a.h2_stream_window, 256 * 1024);
        assert_int_equal(a.h2_conn_window, 1024 * 1024);
        assert_int_equal(a.h2_stream_timeout_ms, 60000);
        assert_int_equal(a.h2_max_upstreams, 32);
        assert_int_equal(a.h2_max_held, 1024 * 1024);
        assert_true(a.fail_burst == 100.0 && a.fail_per_second == 10.0);
        assert_int_equal(a.listeners[0].mode, role == ROLE_SERVER ? MODE_HTTP : MODE_TCP);
        proxy_cfg_clear(&a);
        proxy_cfg_clear(&b);
    }
}

/* Each sample: the flag and the YAML give the same configuration, which is not the default. */
static void
test_each_flag_equals_its_yaml(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
        const struct sample *s = &samples[k];
        struct proxy_cfg a, b, base;
        const char *d;

        from_flags(s->role, s->e, nentries(s), &a);
        from_yaml(s->role, s->e, nentries(s), &b);
        from_flags(s->role, NULL, 0, &base);
        d = cfg_diff(&a, &b);
        if (d != NULL)
            fail_msg("%s (%s): flag and YAML differ in %s", s->e[0].row,
                     s->role == ROLE_SERVER ? "proxy" : "tunnel", d);
        if (cfg_diff(&a, &base) == NULL)
            fail_msg("%s: the sample changes nothing", s->e[0].row);
        proxy_cfg_clear(&a);
        proxy_cfg_clear(&b);
        proxy_cfg_clear(&base);
    }
}

/* The tunnel's --verify-uri rule has one name, whichever way it was given. */
static void
test_verify_uri_rule_has_one_name(void **state)
{
    static const struct entry e = {"verify-uri", "--verify-uri", "uri:spiffe://x/db", S_LISTENER,
                                   "verify_uri: \"uri:spiffe://x/db\""};
    struct proxy_cfg a, b;

    (void)state;
    from_flags(ROLE_TUNNEL, &e, 1, &a);
    from_yaml(ROLE_TUNNEL, &e, 1, &b);
    assert_int_equal(a.listeners[0].policy.nrules, 1);
    assert_string_equal(a.listeners[0].policy.rules[0].name, "--verify-uri");
    assert_string_equal(b.listeners[0].policy.rules[0].name, "--verify-uri");
    proxy_cfg_clear(&a);
    proxy_cfg_clear(&b);
}

/* Flags given with --config override the file's top level and limits; a list is replaced. */
static void
test_flags_override_the_file(void **state)
{
    static const struct entry file[] = {
        {"drain-timeout", "--drain-timeout", "45s", S_LIMITS, "drain_timeout: 45s"},
        {"throttle-exempt", "--throttle-exempt", "192.168.0.0/16", S_LIMITS,
         "throttle_exempt: [192.168.0.0/16]"},
        {"log-level", "--log-level", "warn", S_TOP, "log_level: warn"},
    };
    static const struct entry want[] = {
        {"drain-timeout", "--drain-timeout", "2m", S_LIMITS, "drain_timeout: 2m"},
        {"throttle-exempt", "--throttle-exempt", "10.0.0.0/8", S_LIMITS,
         "throttle_exempt: 10.0.0.0/8"},
        {"log-level", "--log-level", "error", S_TOP, "log_level: error"},
        {"insecure-key-mode", "--insecure-key-mode", NULL, S_TOP, "insecure_key_mode: true"},
    };
    char path[] = "/tmp/duet-config-test-XXXXXX";
    char *argv[] = {"proxy", "--config", path, "--drain-timeout", "2m", "--throttle-exempt",
                    "10.0.0.0/8", "--log-level", "error", "--insecure-key-mode", "--check",
                    NULL};
    struct proxy_cfg a, b;
    struct duet_err err;
    bool check = false;
    const char *d;

    (void)state;
    err_clear(&err);
    build_yaml(ROLE_SERVER, file, 3, path);
    if (proxy_cfg_from_args(11, argv, ROLE_SERVER, &a, &check, &err) != 0)
        fail_msg("%s", err.msg);
    unlink(path);
    assert_true(check);
    from_yaml(ROLE_SERVER, want, 4, &b);
    d = cfg_diff(&a, &b);
    if (d != NULL)
        fail_msg("--config with flags differs in %s", d);
    proxy_cfg_clear(&a);
    proxy_cfg_clear(&b);
}

/* A bad value, given as a flag and as YAML. */
struct bad {
    enum proxy_role role;
    const char *flag;  /* as the flag locator reads: "--drain-timeout" */
    const char *argv;  /* the flags, space-separated ("" for none) */
    const char *key;   /* the YAML key path as the locator reads: "limits.drain_timeout" */
    const char *top;   /* YAML at the top (with its own "limits:") */
    const char *lst;   /* YAML lines of the listener */
    const char *words; /* the message after the locator, exactly */
};

static const struct bad bads[] = {
    /* not a number */
    {PX, "--workers", "--workers many", "workers", "workers: many", NULL,
     ": \"many\": expected 1 to 256"},
    {PX, "--max-conns", "--max-conns 1.5", "limits.max_connections",
     "limits:\n  max_connections: 1.5", NULL, ": \"1.5\": expected a positive number"},
    {PX, "--failed-handshake-rate", "--failed-handshake-rate -1",
     "limits.failed_handshakes_per_second", "limits:\n  failed_handshakes_per_second: -1", NULL,
     ": \"-1\": expected a positive number"},
    /* out of range */
    {PX, "--upstream-keepalive", "--upstream-keepalive 2000", "limits.upstream_keepalive",
     "limits:\n  upstream_keepalive: 2000", NULL,
     ": \"2000\": expected 0 (off) to 1024 idle connections"},
    {TN, "--workers", "--workers 0", "workers", "workers: 0", NULL, ": \"0\": expected 1 to 256"},
    {PX, "--h2-max-streams", "--h2-max-streams 0", "limits.h2_max_streams",
     "limits:\n  h2_max_streams: 0", NULL, ": \"0\": expected 1 to 1000 streams"},
    {PX, "--h2-stream-window", "--h2-stream-window 16383", "limits.h2_stream_window",
     "limits:\n  h2_stream_window: 16383", NULL, ": \"16383\": expected 16384 to 16777216 bytes"},
    {PX, "--h2-max-held-bytes", "--h2-max-held-bytes 2000000000", "limits.h2_max_held_bytes",
     "limits:\n  h2_max_held_bytes: 2000000000", NULL,
     ": \"2000000000\": expected 65536 to 1073741824 bytes"},
    /* not a duration */
    {PX, "--drain-timeout", "--drain-timeout soon", "limits.drain_timeout",
     "limits:\n  drain_timeout: soon", NULL,
     ": \"soon\": expected a duration such as 10s, 500ms or 5m"},
    {TN, "--connect-timeout", "--connect-timeout 0", "limits.connect_timeout",
     "limits:\n  connect_timeout: 0", NULL,
     ": \"0\": expected a duration such as 10s, 500ms or 5m"},
    {PX, "--max-connection-lifetime", "--max-connection-lifetime 8d",
     "limits.max_connection_lifetime", "limits:\n  max_connection_lifetime: 8d", NULL,
     ": \"8d\": expected a duration such as 30m, 12h or 1d, at most 7d"},
    {TN, "--max-connection-lifetime", "--max-connection-lifetime 0",
     "limits.max_connection_lifetime", "limits:\n  max_connection_lifetime: 0", NULL,
     ": \"0\": expected a duration such as 30m, 12h or 1d, at most 7d"},
    {PX, "--idle-timeout", "--idle-timeout 2d", "limits.idle_timeout",
     "limits:\n  idle_timeout: 2d", NULL, ": \"2d\": expected a duration such as 10s, 500ms or 5m"},
    /* not one of the names */
    {PX, "--crl-scope", "--crl-scope root", "listeners[0].crl_scope", NULL, "crl_scope: root",
     ": \"root\": expected chain or leaf"},
    /* CRLs by URL */
    {PX, "--crl-url", "--crl-url https://ca/crl", "listeners[0].crl_urls", NULL,
     "crl_urls: https://ca/crl",
     ": CRL URL \"https://ca/crl\": https:// is not supported; a CRL is signed by its CA, so "
     "duet fetches it over http://"},
    {TN, "--crl-url", "--crl-url ldap://ca/x", "listeners[0].crl_urls", NULL,
     "crl_urls: [\"ldap://ca/x\"]", ": CRL URL \"ldap://ca/x\": expected http://HOST[:PORT]/PATH"},
    /* OCSP stapling */
    {PX, "--ocsp-staple-url", "--ocsp-staple-url https://ocsp/", "listeners[0].ocsp_staple_url",
     NULL, "ocsp_staple_url: https://ocsp/",
     ": OCSP URL \"https://ocsp/\": only http:// is supported; an OCSP response is signed by "
     "its responder, so duet fetches it over http://"},
    {PX, "--ocsp-staple-url", "--ocsp-staple-url http://u@ocsp/", "listeners[0].ocsp_staple_url",
     NULL, "ocsp_staple_url: http://u@ocsp/",
     ": OCSP URL \"http://u@ocsp/\": user information (user@host) is not allowed"},
    {TN, "--ocsp-staple", "--ocsp-staple", "listeners[0].ocsp_staple", NULL, "ocsp_staple: true",
     " is a setting of duet proxy only"},
    /* OCSP checking of client certificates */
    {PX, "--ocsp-url", "--ocsp-url https://ocsp/", "listeners[0].ocsp_url", NULL,
     "ocsp_url: https://ocsp/",
     ": OCSP URL \"https://ocsp/\": only http:// is supported; an OCSP response is signed by "
     "its responder, so duet fetches it over http://"},
    {TN, "--ocsp", "--ocsp require", "listeners[0].ocsp", NULL, "ocsp: require",
     " is a setting of duet proxy only"},
    {PX, "--crl-max-size", "--crl-max-size 10", "crl_max_size", "crl_max_size: 10", NULL,
     ": \"10\": expected 1024 to 1073741824 bytes"},
    {PX, "--crl-refresh", "--crl-refresh 0", "crl_refresh", "crl_refresh: 0", NULL,
     ": \"0\": expected a duration such as 10s, 500ms or 5m"},
    {PX, "--log-level", "--log-level loud", "log_level", "log_level: loud", NULL,
     ": \"loud\": expected debug, info, warn or error"},
    {PX, "--forwarded-headers", "--forwarded-headers bogus", "listeners[0].forwarded_headers",
     NULL, "forwarded_headers: bogus", ": \"bogus\": expected set or append"},
    {PX, "--client-cert-header", "--client-cert-header keep", "listeners[0].client_cert_header",
     NULL, "client_cert_header: keep",
     ": \"keep\": expected sanitize, forward_only, append_forward or sanitize_set"},
    {PX, "--mode", "--mode udp", "listeners[0].mode", NULL, "mode: udp",
     ": \"udp\": expected http or tcp"},
    {PX, "--upstream-protocol", "--upstream-protocol h3", "listeners[0].upstream_protocol", NULL,
     "upstream_protocol: h3", ": \"h3\": expected http/1.1, h2c, h2 or auto"},
    {PX, "--upstream-h2-connections", "--upstream-h2-connections 0",
     "limits.upstream_h2_connections", "limits:\n  upstream_h2_connections: 0", NULL,
     ": \"0\": expected 1 to 256 connections"},
    {PX, "--upstream-h2-max-connections", "--upstream-h2-max-connections 1025",
     "limits.upstream_h2_max_connections", "limits:\n  upstream_h2_max_connections: 1025", NULL,
     ": \"1025\": expected 1 to 1024 connections"},
    /* no value */
    {PX, "--drain-timeout", "--drain-timeout", "limits.drain_timeout", "limits:\n  drain_timeout:",
     NULL, " needs a value"},
    {PX, "--cert", "--cert=", "listeners[0].cert", NULL, "cert: \"\"", " needs a value"},
    /* a setting of the other command (the http-only ones in the tunnel) */
    {TN, "--forwarded-headers", "--forwarded-headers set", "listeners[0].forwarded_headers", NULL,
     "forwarded_headers: set", " is a setting of duet proxy only"},
    {TN, "--request-header-timeout", "--request-header-timeout 1s",
     "limits.request_header_timeout", "limits:\n  request_header_timeout: 1s", NULL,
     " is a setting of duet proxy only"},
    {TN, "--throttle-exempt", "--throttle-exempt 10.0.0.0/8", "limits.throttle_exempt",
     "limits:\n  throttle_exempt: [10.0.0.0/8]", NULL, " is a setting of duet proxy only"},
    {TN, "--mode", "--mode tcp", "listeners[0].mode", NULL, "mode: tcp",
     " is a setting of duet proxy only"},
    {TN, "--no-session-tickets", "--no-session-tickets", "listeners[0].session_tickets", NULL,
     "session_tickets: false", " is a setting of duet proxy only"},
    {PX, "--server-name", "--server-name db", "listeners[0].server_name", NULL,
     "server_name: db", " is a setting of duet tunnel only"},
    {PX, "--unsafe-listen", "--unsafe-listen", "listeners[0].unsafe_listen", NULL,
     "unsafe_listen: true", " is a setting of duet tunnel only"},
    {PX, "--require-staple", "--require-staple", "listeners[0].require_staple", NULL,
     "require_staple: true", " is a setting of duet tunnel only"},
    /* bad addresses, patterns, networks: the lower parser's words */
    {PX, "--listen", "--listen 127.0.0.1:99999", "listeners[0].listen", NULL,
     "listen: 127.0.0.1:99999", ": 127.0.0.1:99999: port \"99999\" is not a number 0-65535"},
    {PX, "--admin", "--admin unix:/run/a.sock", "admin", "admin: unix:/run/a.sock", NULL,
     ": unix:/run/a.sock: a unix socket is not allowed here"},
    {TN, "--verify-uri", "--verify-uri spife:x", "listeners[0].verify_uri", NULL,
     "verify_uri: [spife:x]",
     ": unknown pattern \"spife:x\"; expected uri:, dns:, ip:, email:, cn:, ou:, o:, issuer: "
     "followed by a glob, any or anonymous"},
    {PX, "--throttle-exempt", "--throttle-exempt 10.0.0.0/33", "limits.throttle_exempt",
     "limits:\n  throttle_exempt: 10.0.0.0/33", NULL,
     ": \"10.0.0.0/33\": the prefix length must be 0 to 32"},
};

/* An unknown name, as a flag and as a key. */
static const struct bad unknowns[] = {
    {PX, "--bogus-setting", "--bogus-setting 1", "bogus_setting", "bogus_setting: 1", NULL,
     " is not a setting of duet proxy"},
    {TN, "--colour", "--colour", "listeners[0].colour", NULL, "colour: blue",
     " is not a setting of duet tunnel"},
};

/* Build the YAML of a bad case (the base, plus its lines) and return the error. */
static void
bad_yaml(const struct bad *c, struct duet_err *err, char *path)
{
    size_t nb;
    const struct entry *b = base_of(c->role, &nb);
    struct proxy_cfg cfg;
    int fd = mkstemp(path);
    FILE *f;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    if (c->top != NULL)
        fprintf(f, "%s\n", c->top);
    fprintf(f, "listeners:\n  -\n");
    for (size_t i = 0; i < nb; i++) {
        /* the case's own line replaces the base's line of the same key */
        size_t klen = strcspn(b[i].yaml, ":");
        if (c->lst == NULL || strncmp(c->lst, b[i].yaml, klen + 1) != 0)
            fprintf(f, "    %s\n", b[i].yaml);
    }
    if (c->lst != NULL)
        fprintf(f, "    %s\n", c->lst);
    assert_int_equal(fclose(f), 0);
    err_clear(err);
    if (proxy_cfg_from_file(path, c->role, &cfg, err) == 0) {
        proxy_cfg_clear(&cfg);
        fail_msg("YAML %s: accepted", c->key);
    }
    unlink(path);
}

static void
bad_flags(const struct bad *c, struct duet_err *err)
{
    struct argv_buf a;
    char words[256];
    char *save = NULL;
    struct proxy_cfg cfg;
    bool check = false;
    size_t nb;
    const struct entry *b = base_of(c->role, &nb);
    memset(&a, 0, sizeof(a));
    argv_add(&a, c->role == ROLE_SERVER ? "proxy" : "tunnel");
    for (size_t i = 0; i < nb; i++)
        argv_entry(&a, &b[i]);
    snprintf(words, sizeof(words), "%s", c->argv);
    for (char *t = strtok_r(words, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
        argv_add(&a, t);
    err_clear(err);
    memset(&cfg, 0, sizeof(cfg));
    if (proxy_cfg_from_args(a.n, a.v, c->role, &cfg, &check, err) == 0)
        fail_msg("%s: accepted", c->argv);
    proxy_cfg_clear(&cfg);
}

/* Both paths refuse with the same words after their locator, and these are the words. */
static void
check_bad(const struct bad *c)
{
    struct duet_err ef, ey;
    char path[] = "/tmp/duet-config-test-XXXXXX";
    const char *after;

    bad_flags(c, &ef);
    bad_yaml(c, &ey, path);
    if (strncmp(ef.msg, c->flag, strlen(c->flag)) != 0)
        fail_msg("flag message does not start with %s: %s", c->flag, ef.msg);
    if (strncmp(ey.msg, path, strlen(path)) != 0 || ey.msg[strlen(path)] != ':')
        fail_msg("YAML message does not start with the file: %s", ey.msg);
    after = strstr(ey.msg, c->key);
    if (after == NULL)
        fail_msg("YAML message does not name %s: %s", c->key, ey.msg);
    after += strlen(c->key);
    if (strcmp(ef.msg + strlen(c->flag), after) != 0)
        fail_msg("the two paths differ:\n  %s\n  %s", ef.msg, ey.msg);
    assert_string_equal(after, c->words);
}

static void
test_bad_values_same_words_both_ways(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
        check_bad(&bads[i]);
}

static void
test_unknown_names_same_words_both_ways(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(unknowns) / sizeof(unknowns[0]); i++)
        check_bad(&unknowns[i]);
}

/* A key of another level is named with the place it belongs in. */
static void
test_misplaced_key_says_where_it_belongs(void **state)
{
    static const struct bad c = {PX, NULL, NULL, "listeners[0].drain_timeout", NULL,
                                 "drain_timeout: 30s", NULL};
    struct duet_err err;
    char path[] = "/tmp/duet-config-test-XXXXXX";
    const char *after;

    (void)state;
    bad_yaml(&c, &err, path);
    after = strstr(err.msg, c.key);
    assert_non_null(after);
    assert_string_equal(after + strlen(c.key),
                        " is not a setting of duet proxy here; it belongs in limits");
}

/* The help lists every flag each command takes, and none it does not. */
static void
test_help_lists_every_flag(void **state)
{
    (void)state;
    for (int r = 0; r < 2; r++) {
        enum proxy_role role = r == 0 ? ROLE_SERVER : ROLE_TUNNEL;
        unsigned bit = r == 0 ? PROXY_SETTING_PROXY : PROXY_SETTING_TUNNEL;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        const struct proxy_setting *s;

        assert_non_null(f);
        proxy_cfg_usage(f, role, true);
        assert_int_equal(fclose(f), 0);
        for (size_t i = 0; (s = proxy_setting_get(i)) != NULL; i++) {
            char want[64];
            bool listed;
            if (s->flag == NULL)
                continue;
            snprintf(want, sizeof(want), "\n  --%s%s", s->flag, s->arg != NULL ? " " : "");
            listed = strstr(text, want) != NULL;
            if (s->arg == NULL && !listed) {
                snprintf(want, sizeof(want), "\n  --%s\n", s->flag);
                listed = strstr(text, want) != NULL;
            }
            if (((s->commands & bit) != 0) != listed)
                fail_msg("--%s is %s the help of duet %s", s->flag, listed ? "in" : "missing from",
                         r == 0 ? "proxy" : "tunnel");
        }
        free(text);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_has_a_sample),
        cmocka_unit_test(test_defaults_are_the_same_both_ways),
        cmocka_unit_test(test_each_flag_equals_its_yaml),
        cmocka_unit_test(test_verify_uri_rule_has_one_name),
        cmocka_unit_test(test_flags_override_the_file),
        cmocka_unit_test(test_bad_values_same_words_both_ways),
        cmocka_unit_test(test_unknown_names_same_words_both_ways),
        cmocka_unit_test(test_misplaced_key_says_where_it_belongs),
        cmocka_unit_test(test_help_lists_every_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
