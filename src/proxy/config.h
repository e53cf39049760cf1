/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - what `duet proxy` and `duet tunnel` run with, from flags or a
 * YAML file.  A configuration is parsed and validated completely (files are
 * loaded by the TLS layer when a generation is built) before it replaces the
 * running one.
 */
#ifndef DUET_PROXY_CONFIG_H
#define DUET_PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "lib/err.h"
#include "lib/policy.h"
#include "lib/tls.h"
#include "lib/xfcc.h"
#include "proxy/http.h"
#include "proxy/throttle.h"
#include "util/net_addr.h"

enum proxy_mode { MODE_HTTP = 0, MODE_TCP };
enum proxy_role { ROLE_SERVER = 0, ROLE_TUNNEL };
enum proxy_ocsp_mode { OCSP_OFF = 0, OCSP_PREFER, OCSP_REQUIRE };
/* What HTTP/2 clients' streams are sent upstream as (h2up.c); auto: h2c, or h2 with upstream TLS. */
enum upstream_proto { UPSTREAM_HTTP1 = 0, UPSTREAM_H2C, UPSTREAM_H2, UPSTREAM_AUTO };

struct listener_cfg {
    char *name;
    struct net_addr listen;
    enum proxy_mode mode;
    /* TLS toward clients (server role) or toward the target (tunnel role). */
    char *cert, *key, *cacert;
    char **crls;
    size_t ncrls;
    enum duet_crl_scope crl_scope;
    bool crl_expired_warn;
    /*
     * CRLs by URL (crlfetch.c): the URLs given, and --crl-from-cdp.  Their
     * cache files are the last ncrl_fetched entries of crls, fetched from
     * crl_fetch_urls[k] (set once the configuration is complete).
     */
    char **crl_urls;
    size_t ncrl_urls;
    bool crl_from_cdp;
    char **crl_fetch_urls;
    size_t ncrl_fetched;
    /*
     * OCSP stapling (staple.c): --ocsp-staple, --ocsp-staple-url; the
     * responder used and the cache file (set once the configuration is
     * complete).
     */
    bool ocsp_staple;
    char *ocsp_staple_url;
    char *staple_url, *staple_file;
    /*
     * OCSP checking of client certificates (ocspcheck.c): --ocsp
     * off|prefer|require and --ocsp-url (NULL: the client leaf's AIA).
     */
    enum proxy_ocsp_mode ocsp;
    char *ocsp_url;
    bool insecure_crl_dsa; /* insecure_crl_signature: dsa */
    bool tls12;
    bool verify_optional;
    bool no_tickets;     /* server: no TLS session tickets (every connection a full handshake) */
    char *ticket_keys;   /* server: shared ticket keys file (stateless tickets), or NULL */
    char *alpn;
    /* Upstreams. */
    struct net_addr *targets;
    size_t ntargets;
    char **target_names; /* tunnel: host names as given, for SNI/verification */
    bool unsafe_target;
    bool proxy_protocol;
    enum xfcc_mode xfcc;
    enum http_fwd_mode forwarded; /* http mode: the client's X-Forwarded-For/Forwarded */
    enum upstream_proto up_proto; /* http mode: HTTP/2 clients' streams go upstream as this */
    /* Optional mTLS to the upstream (server role). */
    char *up_cert, *up_key, *up_cacert, *up_name;
    /* Tunnel: the server's name and SPIFFE patterns it must match. */
    char *server_name;
    char **verify_uris;
    size_t nverify_uris;
    struct policy policy;
    bool reuse_port;    /* share the port with another process (SO_REUSEPORT across processes) */
    bool unsafe_listen; /* tunnel: a plaintext listen address that is not on loopback */
    /* Tunnel: the server's OCSP staple asked for and checked (tunstaple.h), and required. */
    bool no_staple_check;
    bool require_staple;
};

struct proxy_cfg {
    enum proxy_role role;
    char *config_file; /* NULL when configured by flags */
    struct listener_cfg *listeners;
    size_t nlisteners;
    struct net_addr admin;
    bool has_admin;
    char *log_file;
    char *log_level; /* NULL: info */
    int workers;
    int handshake_timeout_ms;
    int idle_timeout_ms;
    int head_timeout_ms; /* http mode: a request head must arrive within this, from its first byte */
    long max_conns;
    size_t max_header_bytes;
    int upstream_keepalive; /* http mode: idle upstream connections kept per worker and target */
    int upstream_h2_conns;  /* HTTP/2 upstreams: connections per worker and listener */
    int upstream_h2_max_conns; /* ... and at most, when every one is at the upstream's limit */
    double fail_per_second; /* per-IP failed-handshake token bucket */
    double fail_burst;
    struct throttle_cidr *throttle_exempt; /* never throttled */
    size_t nthrottle_exempt;
    int connect_timeout_ms; /* connecting to an upstream, with its TLS handshake */
    int drain_timeout_ms;   /* SIGTERM: how long open connections may finish */
    int max_lifetime_ms;    /* any connection ends this long after accept; 0: no bound */
    /* HTTP/2 from clients (h2.c, docs/proxy.md "HTTP/2"): per client connection. */
    int h2_max_streams;       /* SETTINGS_MAX_CONCURRENT_STREAMS */
    int h2_stream_window;     /* SETTINGS_INITIAL_WINDOW_SIZE: request bytes held per stream */
    int h2_conn_window;       /* the connection's receive window */
    int h2_stream_timeout_ms; /* a stream the client does not move on this long is reset */
    int h2_max_upstreams;     /* upstream connections at once; further streams wait */
    long h2_max_held;         /* response bytes held for the client; past it upstreams wait */
    bool insecure_key_mode;
    /* CRLs by URL: the cache directory, the refresh cap, the fetch timeout, the size limit. */
    char *crl_cache;
    int crl_refresh_ms;
    int crl_timeout_ms;
    long crl_max_bytes;
    /*
     * OCSP checking of client certificates: the query timeout, the cache's
     * entries, how old an answer may get before open connections' clients
     * are asked about again.
     */
    int ocsp_timeout_ms;
    long ocsp_cache_size;
    int ocsp_recheck_ms;
};

/* `duet proxy` flags (argv after "proxy"); with --config, the YAML file. */
int proxy_cfg_from_args(int argc, char **argv, enum proxy_role role, struct proxy_cfg *out,
                        bool *check_only, struct duet_err *err) MUST_CHECK;
/* Parse a YAML configuration file (used at start and on reload). */
int proxy_cfg_from_file(const char *path, enum proxy_role role, struct proxy_cfg *out,
                        struct duet_err *err) MUST_CHECK;
void proxy_cfg_clear(struct proxy_cfg *c);
/* Every file a configuration reads, for the change watcher. */
size_t proxy_cfg_files(const struct proxy_cfg *c, const char **out, size_t max);

/*
 * The settings table: every setting of duet proxy and duet tunnel, from which
 * the flags, the YAML keys, the defaults and the help are made (config.c).
 */
#define PROXY_SETTING_PROXY 0x1u  /* duet proxy takes it */
#define PROXY_SETTING_TUNNEL 0x2u /* duet tunnel takes it */
#define PROXY_SETTING_QUIET 0x4u  /* the proxy's; duet tunnel accepts it without effect */

struct proxy_setting {
    const char *flag;  /* without "--"; NULL: YAML only */
    const char *key;   /* the YAML key in its section; NULL: flags only */
    unsigned commands; /* PROXY_SETTING_* */
    const char *arg;   /* the flag's value as help names it ("DURATION"); NULL: no value */
    const char *shown; /* the default as help and the docs say it, or NULL */
    const char *help;  /* one line */
};

/* Row i of the table (borrowed, static), or NULL past its end. */
const struct proxy_setting *proxy_setting_get(size_t i);
/*
 * The usage of `duet proxy` or `duet tunnel`; with every_setting, each flag
 * the command takes, grouped, with its default and its YAML key.
 */
void proxy_cfg_usage(FILE *out, enum proxy_role role, bool every_setting);

#endif
