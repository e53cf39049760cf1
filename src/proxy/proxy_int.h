/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy_int.h - what the files of src/proxy share and nothing outside sees:
 * the process (struct proxy), its workers, the reference-counted generations
 * a reload swaps, the client connection (struct conn) with its lifecycle
 * state, and the table of hooks (struct conn_mode) through which the
 * connection code drives a mode: the HTTP/1 forwarder (forward.c), HTTP/2
 * (h2.c), the TCP relay (relay.c) and the tunnel (tunnel.c).
 *
 * Threads: worker 0 runs in the main thread and also serves the admin
 * listener, signals and the file watcher; workers 1..N-1 are threads with
 * their own event_base and their own listening sockets (SO_REUSEPORT), so the
 * kernel spreads connections without a shared accept lock.
 *
 * Generations: everything a reload can change (TLS contexts, trust, CRLs,
 * policy, targets) lives in a reference-counted generation.  A connection
 * takes a reference when it is accepted and keeps it to the end, so a reload
 * never changes an open connection; new connections take the new generation.
 *
 * Connections never free themselves inside a callback: conn_close() marks
 * the connection closing and schedules the free on the loop.
 */
#ifndef DUET_PROXY_PROXY_INT_H
#define DUET_PROXY_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "lib/identity.h"
#include "lib/policy.h"
#include "lib/tls.h"
#include "proxy/config.h"
#include "proxy/http.h"
#include "proxy/metrics.h"
#include "proxy/ocspcheck.h"
#include "proxy/proxy.h"
#include "proxy/reqread.h"
#include "proxy/staple.h"
#include "proxy/throttle.h"

#define MAX_WORKERS 256
#define MAX_WATCH 64
/* Bytes held toward one side before reading from the other stops (backpressure). */
#define RELAY_HIGH_WATER (1024 * 1024)

/* --- generations (gen.c) ---------------------------------------------------- */

/* Why an HTTP/2 stream was reset: the reason label of duet_h2_stream_resets_total (h2.c). */
enum h2_reset {
    H2_RESET_CLIENT,   /* RST_STREAM from the client */
    H2_RESET_CANCEL,   /* closed with the error code CANCEL */
    H2_RESET_ERROR,    /* closed with any other error code */
    H2_RESET_UPSTREAM, /* its upstream failed */
    H2_RESET_STALLED,  /* --h2-stream-timeout */
    H2_RESET_RAPID_RESET_GOAWAY,   /* too many resets: GOAWAY ENHANCE_YOUR_CALM */
    H2_RESET_CONTROL_FLOOD_GOAWAY, /* too many PING or SETTINGS frames: the same */
    H2_RESET_QUEUE_TIMEOUT,        /* waited --h2-stream-timeout for an upstream slot */
    H2_RESET_COUNT
};

struct gen_listener {
    const struct listener_cfg *cfg;
    SSL_CTX *ssl_ctx; /* server: toward clients; tunnel: toward the target */
    SSL_CTX *up_ctx;  /* server with upstream TLS */
    struct tls_ctx_info info;
    struct staple *staple; /* server with --ocsp-staple: what ssl_ctx staples (staple.h) */
    STACK_OF(X509) *ocsp_anchors; /* server with --ocsp: --cacert's certificates (issuers) */
    atomic_size_t rr;
    _Atomic int64_t *down_until; /* per target */
    /*
     * Counter series of the per-request metrics, each found on its first count
     * (metrics_slot_count) so that a series that never counted is not scraped.
     */
    char mlabel[128]; /* cfg->name escaped as a label value (metrics_label) */
    _Atomic(struct metrics_counter *) *authz; /* (rule index + 1) * 2 + allow */
    _Atomic(struct metrics_counter *) codes[600];   /* duet_requests_total, HTTP/1.1, by status */
    _Atomic(struct metrics_counter *) h2codes[600]; /* the same with proto="h2",upstream_proto */
    _Atomic(struct metrics_counter *) h2resets[H2_RESET_COUNT]; /* duet_h2_stream_resets_total */
    _Atomic(struct metrics_counter *) h2streams;    /* duet_h2_streams_total */
    _Atomic(struct metrics_counter *) up_h2streams[2]; /* duet_upstream_h2_streams_total: h2c, h2 */
    struct metrics_counter *hs[TLS_FAIL_COUNT]; /* duet_handshakes_total of this listener */
};

struct gen {
    atomic_int refs;
    uint64_t id;
    struct proxy_cfg cfg;
    bool owns_cfg;   /* false for proxy_check's: the configuration is the caller's */
    size_t nls;      /* listeners in ls (all of cfg's once built) */
    struct gen_listener *ls;
};

/*
 * Build the TLS contexts of a configuration.  On success *out holds the only
 * reference and cfg's memory belongs to it (cfg is zeroed); on failure cfg is
 * still the caller's and err says which listener failed and why.
 */
int gen_build(struct proxy_cfg *cfg, struct gen **out, struct duet_err *err) MUST_CHECK;
/* Take a reference. */
void gen_ref(struct gen *g);
/* Drop a reference; the last one frees the generation (on a thread of its own). */
void gen_unref(struct gen *g);
/* Generations built and not yet freed: the current one and retired ones still held. */
long gen_alive(void);

/* --- the process and its workers -------------------------------------------- */

struct proxy;
struct pooled;
struct conn;
struct crlfetch;

/*
 * A listener whose accept(2) fails (EMFILE when the process is out of file
 * descriptors, ENFILE, ENOBUFS, ENOMEM) stays readable: accepting again at
 * once would spin the worker and flood the log.  It is disabled instead for
 * ACCEPT_PAUSE_MIN_MS, doubling up to ACCEPT_PAUSE_MAX_MS while the errors go
 * on; one log line a second says so.  The first accept that works again
 * resets the delay.
 */
#define ACCEPT_PAUSE_MIN_MS 100
#define ACCEPT_PAUSE_MAX_MS 1000

struct accept_pause {
    struct worker *w;
    size_t li;            /* the listener's index */
    struct event *timer;  /* re-enables the listener */
    int delay_ms;         /* 0: not backing off */
    double logged;        /* monotonic seconds of the last accept_error line */
    unsigned long errors; /* accept errors since that line */
};

struct worker {
    int idx;
    pthread_t thr;
    struct event_base *base;
    struct evconnlistener **lev;
    size_t nlev;
    struct proxy *px;
    struct pooled *pool;        /* idle upstream connections (http mode) */
    int pool_len;               /* how many */
    struct h2up_conn *h2up;     /* HTTP/2 upstream connections (h2up.c) */
    struct accept_pause *pause; /* per listener: accept back-off when out of descriptors */
    struct conn *conns;         /* its open client connections (for draining) */
    struct conn_linger *lingering;   /* refused sockets closing gracefully (conn.c) */
    unsigned nlingering;
    bool draining;              /* SIGTERM: no new connections, open ones finish */
    struct ocsp_worker *ocsp;   /* OCSP queries in flight (ocspcheck.c), made on first use */
    struct ocsp_recheck *recheck; /* --ocsp-recheck of open connections (ocsprecheck.c) */
};

/*
 * Where the running configuration comes from, read again on every reload:
 * a YAML file alone, or the command line as it was given (flags, or --config
 * FILE with flags that override the file's values).
 */
struct cfg_source {
    enum proxy_role role;
    const char *yaml_path; /* non-NULL: this file alone */
    int argc;              /* otherwise: these arguments, after the command's name */
    char **argv;
};

struct file_sig {
    char *path;
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool exists;
};

struct proxy {
    pthread_mutex_t lock;
    struct gen *gen;
    struct worker workers[MAX_WORKERS];
    int nworkers;
    struct cfg_source src;
    struct evhttp *admin;
    struct event *sighup, *sigterm, *sigint, *sigusr1, *watch_timer;
    unsigned long ticks; /* watch_cb runs, one a second */
    struct file_sig watch[MAX_WATCH];
    size_t nwatch;
    atomic_bool reloading;
    atomic_bool reload_again;
    bool crl_warned;
    struct throttle *throttle; /* failed handshakes per client address (throttle.c) */
    atomic_bool draining;      /* SIGTERM received: see drain.c */
    atomic_int drain_listening; /* draining: workers whose listening sockets are still open */
    long drain_open;           /* draining: connections open when the signal came */
    const char *drain_signal;  /* draining: "SIGTERM" or "SIGINT" */
    int drain_timeout_ms;      /* draining: the timeout in force when the signal came */
    double drain_deadline;     /* monotonic */
    struct event *drain_timer;
    struct crlfetch *fetch; /* CRLs and staples fetched by URL (crlfetch.h), or NULL */
    struct ocsp_cache *ocsp_cache; /* OCSP answers about client certificates, all workers' */
};

/* The current generation, with a reference the caller drops (gen_unref). */
struct gen *gen_current(struct proxy *px);
/* Whether g is no longer px's current generation (a reload replaced it). */
bool gen_retired(struct proxy *px, const struct gen *g);

static inline double
now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int64_t
wall_now(void)
{
    return (int64_t)time(NULL);
}

/* --- client connections (conn.c) -------------------------------------------- */

/*
 * Where a client connection is in its life.  It only moves forward:
 * HANDSHAKE -> OPEN -> FLUSHING -> CLOSING, and from any state to CLOSING.
 */
enum conn_state {
    CONN_HANDSHAKE = 0, /* accepted; the TLS handshake (the tunnel's: with the target) runs */
    CONN_OPEN,          /* the handshake is done and the peer accepted: relaying or serving */
    CONN_FLUSHING,      /* the last bytes for the client are queued: close once written */
    CONN_CLOSING,       /* conn_close() ran: callbacks stopped, the free is scheduled */
};

/*
 * The upstream side's state, independent of the client's: an HTTP client
 * connection may connect, lose and reconnect upstreams several times.
 */
enum up_state {
    UP_NONE = 0,   /* no upstream connection, or it went away */
    UP_CONNECTING, /* connecting (and with TLS, handshaking), within connect_timeout */
    UP_CONNECTED,
    UP_FAILED,     /* every target was tried and none answered */
};

/* Where the HTTP/1 mode is in the request/response cycle. */
enum req_state { REQ_HEADERS = 0, REQ_BODY, REQ_WAIT_RESPONSE };

/*
 * The HTTP/1 mode's part of a connection (forward.c).  The flags are
 * independent of each other and of the lifecycle: they describe the request
 * and response in flight.
 */
struct conn_h1 {
    http_parser req_p, resp_p;
    enum req_state req_state;
    struct http_reader rd;    /* the request head being read (p->data of req_p) */
    struct event *head_timer; /* the request head deadline, made on first use */
    bool chunked_up;          /* the body goes upstream chunked */
    bool head_method;         /* a HEAD request: its response has no body */
    bool keep_alive;          /* the client keeps the connection after this request */
    bool resp_started;        /* bytes of the response are on their way to the client */
    bool client_eof;   /* the client finished sending; answer what is in flight, then close */
    bool up_reused;    /* the upstream connection came from the idle pool */
    bool up_keepalive; /* the last response completed and the upstream keeps the connection */
    char *retry_head;  /* a bodyless idempotent request sent on a reused connection, for a retry */
    size_t retry_len;
    bool close_sent;   /* retiring: this response's head said Connection: close (or cannot) */
    /*
     * The upstream connection carried a WebSocket upgrade request: only its
     * 101 switches the connection to a relay (relay_mode), and it is never
     * reused, whatever the answer.
     */
    bool upgrading;
    uint64_t resp_from; /* down_bytes when the request went out: what of its response was sent */
};

struct conn_mode;
struct h2_conn;

struct conn {
    struct worker *w;
    struct gen *gen;
    struct gen_listener *gl;
    const struct conn_mode *mode;
    enum conn_state state;
    enum up_state up;
    struct bufferevent *cbev; /* client side */
    struct bufferevent *ubev; /* upstream side */
    struct event *hs_timer;   /* server role: the handshake deadline, counted from accept */
    SSL *ssl;                 /* the TLS side: client (server role) or upstream (tunnel) */
    struct sockaddr_storage peer_ss, local_ss;
    char peer[80];
    char peer_ip[64];
    double t_start;
    struct duet_identity *id;
    size_t target;
    int tries;
    uint64_t up_bytes, down_bytes;
    size_t pp_len; /* PROXY header bytes at the head of the upstream output */
    char *xfcc;    /* the client's X-Forwarded-Client-Cert element, made once */
    /* The idle timeout (see conn_idle_continue): bytes moved at the last check, and when. */
    uint64_t idle_seen;
    double idle_since;
    struct conn *wprev, *wnext; /* the worker's list of open connections */
    struct conn_h1 h1;          /* HTTP/1 mode only */
    struct h2_conn *h2;         /* HTTP/2 mode only (h2.c) */
    struct event *life_timer;   /* --max-connection-lifetime, counted from accept */
    bool retiring;              /* conn_retire() ran: it ends at the mode's next boundary */
    bool linger;                /* a fatal alert was sent: close gracefully (conn.c) */
    struct ocsp_waiter *ocsp_wait; /* --ocsp: the handshake waits for this answer */
};

/*
 * A connection mode: what runs a connection once it is accepted.  conn.c and
 * upstream.c own the sockets, timeouts, logs and metrics common to all, and
 * call these hooks where a mode decides; a NULL hook does what its comment
 * says.  One table per mode: forward_mode (HTTP/1), relay_mode (TCP) and
 * tunnel_mode.
 */
struct conn_mode {
    const char *name;
    /* The proxy terminates the client's TLS: handshake deadline, failed-handshake throttle. */
    bool client_tls;
    /* Bytes queued for an upstream that failed before connecting go to the next target. */
    bool retry_keeps_output;
    /* Set up the client side of an accepted socket; NULL: TLS, conn.c's own. */
    void (*start)(struct conn *c, evutil_socket_t fd);
    /* The client's handshake is done and its identity accepted (server role). */
    void (*handshake_done)(struct conn *c, double secs);
    /* The client sent bytes; NULL: they wait in the input buffer. */
    void (*client_readable)(struct conn *c);
    /* The client took what was queued (after conn.c's close-when-flushed check). */
    void (*client_writable)(struct conn *c);
    /* The client half-closed: true when the mode goes on (an answer is due). */
    bool (*client_eof)(struct conn *c);
    /* The upstream connection is up (with TLS, its handshake done); NULL: nothing yet. */
    void (*upstream_connected)(struct conn *c);
    /* Connecting failed (BEV_EVENT_ERROR or _TIMEOUT in what); NULL: upstream_connect_error. */
    void (*upstream_failed)(struct conn *c, short what);
    /* Every target was tried: answer or close; NULL: close. */
    void (*upstream_unreachable)(struct conn *c);
    /* A response is under way: no other target may be tried; NULL: never. */
    bool (*upstream_answering)(const struct conn *c);
    /* The upstream sent bytes / took what was queued; NULL: no callback. */
    void (*upstream_readable)(struct conn *c);
    void (*upstream_writable)(struct conn *c);
    /* A connected upstream closed, failed or idled out; NULL: close. */
    void (*upstream_closed)(struct conn *c, short what);
    /* The upstream connection may serve another client (the pool); NULL: never. */
    bool (*upstream_reusable)(const struct conn *c);
    /* Waiting for the client's next request: draining may close it now; NULL: never. */
    bool (*idle)(const struct conn *c);
    /* Draining began and the connection is not idle: announce the end now; NULL: at its next
     * boundary. */
    void (*drain)(struct conn *c);
    /* Answer the client and close once flushed (refusals); NULL: the mode cannot answer. */
    void (*reply)(struct conn *c, int status, const char *reason, json_t *body);
    /* conn_close(): the mode's timers stop.  Then, at the free: its memory goes. */
    void (*stop)(struct conn *c);
    void (*release)(struct conn *c);
    /* conn_retire(): end the connection at its next boundary; NULL: close now. */
    void (*retire)(struct conn *c);
};

extern const struct conn_mode forward_mode; /* forward.c: HTTP/1 */
extern const struct conn_mode h2_mode;      /* h2.c: HTTP/2, chosen by ALPN "h2" */
extern const struct conn_mode relay_mode;   /* relay.c: TCP */
extern const struct conn_mode tunnel_mode;  /* tunnel.c */

/* What conn_refuse() refuses, and so what it logs, counts and answers. */
enum conn_refusal_kind {
    CONN_REFUSE_HANDSHAKE, /* the TLS handshake failed or its peer is refused */
    CONN_REFUSE_POLICY,    /* the policy denied a verified client (conn_log_authz ran) */
    CONN_REFUSE_REQUEST,   /* a request refused before the policy: malformed, too large, late */
};

struct conn_refusal {
    enum conn_refusal_kind kind;
    const char *reason; /* words: the log's "reason", the body's "detail" */
    enum tls_fail fail; /* HANDSHAKE: the category (reason_code, the metric's label) */
    int status;         /* REQUEST: the HTTP status answered */
    const char *rule;   /* POLICY: the rule that denied */
    double secs;        /* HANDSHAKE, POLICY: seconds since accept */
};

/*
 * Refuse a connection or one of its requests, the one path for every refusal
 * after accept: the log line (`handshake` with reason and reason_code, or
 * `request_refused`), the metric (duet_handshakes_total by reason, or
 * duet_requests_total by status), the failed-handshake throttle (a refused
 * handshake keeps the token taken at accept; the client's address pays for
 * it), and the end: an answer then close, or close.
 */
void conn_refuse(struct conn *c, const struct conn_refusal *r);
/* Schedule the free; callbacks stop at once.  Safe to call twice. */
void conn_close(struct conn *c);
/*
 * End an open connection that must not go on (code: its certificate no
 * longer verifies after a reload, as tls_fail_name() says, or
 * "max_lifetime"): logged as `connection_closed` with the reason, counted in
 * duet_connections_closed_total, then the mode's retire hook ends it at its
 * next boundary (HTTP: after the response in flight), or it closes now.
 */
void conn_retire(struct conn *c, const char *code, const char *reason);
/*
 * After a reload, on the worker's own loop: every open client connection
 * whose certificate the new generation g would refuse (new CRLs, anchors
 * taken away) is retired with the reason.
 */
void conn_revalidate(struct worker *w, struct gen *g);
/*
 * An OCSP answer says the certificate whose cache key is key is revoked:
 * its open connections, on every worker, are retired (each on its own
 * worker's loop) with "open connection: " and reason.
 */
/*
 * Fill ask for a query about leaf, c's client certificate: c's worker loop,
 * the shared cache, its listener's name and --ocsp-url, --ocsp-timeout; the
 * issuer is the caller's to set.
 */
void conn_ocsp_ask(struct conn *c, X509 *leaf, struct ocsp_ask *ask);
void conn_ocsp_close_revoked(struct proxy *px, const uint8_t key[OCSP_KEY_LEN],
                             const char *reason);
/*
 * --ocsp-recheck (ocsprecheck.c): start the worker's timer that asks again
 * about the clients of its open connections under --ocsp.  Once per worker,
 * on its loop or before it runs; does nothing without an OCSP cache.
 */
void ocsp_recheck_start(struct worker *w);
/* libevent's accept callback of every listener (arg: the worker). */
void conn_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                    int salen, void *arg);
/* Draining: close the worker's connections that wait for their next request; tell the others
 * (conn_mode.drain) that the end has come. */
void conn_drain_idle(struct worker *w);
/* Close at once the sockets still lingering after a refused handshake (worker exit). */
void conn_linger_clear(struct worker *w);
/*
 * A side's read timeout fired: true when bytes moved either way since the
 * last check (the connection goes on, the side reads again), false when it
 * has been silent both ways for the idle timeout and must be closed.
 */
bool conn_idle_continue(struct conn *c, struct bufferevent *bev);
/* Log (and count) an authorization decision; method NULL in TCP mode. */
void conn_log_authz(struct conn *c, const struct policy_decision *d, const char *method,
                    const char *host, const char *path);
/* The `handshake` log line of a connection (the tunnel logs its own success). */
void conn_log_handshake(struct conn *c, SSL *ssl, bool ok, const char *reason,
                        enum tls_fail fail, double secs);
/* Why a TLS handshake failed, in words, with its metrics category. */
void conn_handshake_failure(struct bufferevent *bev, SSL *ssl, char *buf, size_t len,
                            enum tls_fail *fail);
/* Give back the buffers of a connection that waits for its next request. */
void conn_trim_idle(struct conn *c);
/* "ip:port" or "[ip]:port" (or "unix") into buf, and the bare address into ip. */
void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len, char *ip, size_t iplen);

/* --- upstreams (upstream.c) ------------------------------------------------- */

/* Connect to the next target (round robin, skipping those marked down). */
void upstream_connect(struct conn *c);
/* HTTP: an upstream connection for the request, from the idle pool or new. */
void upstream_for_request(struct conn *c);
/* A target failed: mark it down, log, then try the next or give up (mode's hook). */
void upstream_fail(struct conn *c, const char *why);
/* Connecting failed (the default upstream_failed hook): why in words, then upstream_fail. */
void upstream_connect_error(struct conn *c, short what);
/* Queue bytes toward the upstream, written at once when nothing waits before them. */
void upstream_send(struct conn *c, const char *data, size_t len);
/* The connection is freed: its upstream goes to the idle pool or is closed. */
void upstream_release(struct conn *c);
/* Close every idle upstream connection of a worker (draining, exit). */
void upstream_pool_clear(struct worker *w);
/*
 * Close a worker's idle upstream connections of generations older than g
 * (after a reload): nothing takes them again, and each holds its generation.
 */
void upstream_pool_retire(struct worker *w, const struct gen *g);
/* Set the upstream bufferevent's callbacks to the mode's hooks. */
void upstream_set_callbacks(struct conn *c);
/* Round robin over a listener's targets, skipping those marked down (unless all are). */
size_t upstream_pick(struct gen_listener *gl);
/* A target failed: marked down for a while, the upstream_error line (peer: the client), counted. */
void upstream_target_failed(struct gen_listener *gl, size_t target, const char *peer,
                            const char *why);
/*
 * A new bufferevent toward target of a server listener, with TLS when the
 * listener has upstream TLS, not connected yet (bufferevent_socket_connect is
 * the caller's); NULL when out of memory.
 */
struct bufferevent *upstream_bev_new(struct worker *w, struct gen_listener *gl, size_t target);
/*
 * The keep-alive pool for callers without a struct conn of their own (h2.c's
 * streams): take an idle connection of this listener and generation (false:
 * none), or give one back (false: not kept; the caller frees it).
 */
bool upstream_pool_take_bev(struct worker *w, struct gen *gen, struct gen_listener *gl,
                            struct bufferevent **bev, size_t *target);
bool upstream_pool_put_bev(struct worker *w, struct gen *gen, struct gen_listener *gl,
                           size_t target, struct bufferevent *bev);

/* --- modes ------------------------------------------------------------------- */

/* TCP mode and the tunnel: relay bytes both ways until either side ends. */
void relay_start(struct conn *c);

/*
 * The HTTP/1 decision for one request whose head is read (forward.c): checks,
 * normalisation, the listener's policy for this client, and the head rebuilt
 * for the upstream.  No socket: the unit tests call it.  id_xfcc is the
 * client's identity header element (xfcc_element), or NULL.
 */
void forward_decide(const struct listener_cfg *l, const struct duet_identity *id,
                    const char *id_xfcc, const char *client_ip, struct http_reader *rd,
                    const http_parser *p, struct http_decision *d);

/*
 * Pull into the client's input buffer the TLS records OpenSSL already read
 * ahead (forward.c), up to 256 KiB held: HTTP/1 and HTTP/2 both read so.
 */
void forward_client_pull(struct conn *c);

/* --- listeners, admin, reload, drain ------------------------------------------ */

/* Open a worker's listening sockets (worker 0 first probes that the addresses are free). */
int listener_open(struct worker *w, const struct proxy_cfg *cfg, evutil_socket_t *shared_unix,
                  struct duet_err *err) MUST_CHECK;
/* The admin listener (/metrics, /healthz, /readyz) on worker 0's loop. */
int admin_start(struct proxy *px, const struct proxy_cfg *cfg, struct duet_err *err) MUST_CHECK;
/* Read the configuration from its source again. */
int cfg_source_read(const struct cfg_source *src, struct proxy_cfg *out,
                    struct duet_err *err) MUST_CHECK;
/* Start a reload on its own thread (or ask the running one to go again). */
void reload_start(struct proxy *px, const char *why);
/* SIGHUP: reload (arg: the proxy). */
void reload_sighup_cb(evutil_socket_t sig, short what, void *arg);
/* Every second: reload on changed files, report CRLs near or past nextUpdate. */
void reload_watch_cb(evutil_socket_t fd, short what, void *arg);
/* Remember the files a configuration reads, to notice their changes. */
void reload_watch_reset(struct proxy *px, const struct proxy_cfg *cfg);
/* SIGTERM/SIGINT: stop accepting, let open connections finish (arg: the proxy). */
void drain_signal_cb(evutil_socket_t sig, short what, void *arg);

#endif
