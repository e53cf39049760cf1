/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caserver_int.h - what the files of `duet ca serve` share: the server's
 * state (server.c), the request context with its reply and audit line
 * (request.c), the endpoints (api.c: the /v1 endpoints; pub.c: CRL, roots, OCSP,
 * health, metrics), the counters (camet.c) and the listeners' connections
 * (conns.c).
 */
#ifndef DUET_CASERVER_INT_H
#define DUET_CASERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "ca/ca.h"
#include "ca/ocsp.h"
#include "caserver/caserver.h"
#include "lib/identity.h"
#include "lib/policy.h"

struct casrv;

/* One listener and its connections (conns.c). */
struct caserver_listener {
    struct casrv *s;
    const char *name;           /* "https" or "http": the label in the log and the metrics */
    struct evconnlistener *lev; /* its listening socket (evhttp's), or NULL */
    size_t open;                /* connections accepted and not closed yet */
    bool at_cap;                /* not accepting: --max-connections are open */
    double warned_at;           /* monotonic time of the last ca_connections warning */
    unsigned long unwarned;     /* times the cap was reached since */
};

/* The server's state; one per process, used from the one event loop only. */
struct casrv {
    struct ca *ca;
    const struct caserver_opts *o;
    struct event_base *base;
    struct evhttp *https;
    struct evhttp *http;
    struct caserver_listener lst[2]; /* their sockets: HTTPS, plain HTTP (lev NULL) */
    struct event *accept_backoff;    /* re-enables them after an accept() error */
    SSL_CTX *ssl_ctx;                /* new connections use it; replaced on renewal */
    struct policy_pattern *admins;
    size_t nadmins;
    struct ca_ocsp_signer *signer;
    struct ca_ocsp_cache *ocsp_cache; /* signed answers reused; NULL with --ocsp-cache-age 0 */
    uint8_t *crl_der; /* the current CRL, served from memory */
    size_t crl_der_len;
    char *crl_pem;
    size_t crl_pem_len;
    int64_t crl_this_update;
    int64_t crl_next_update;
    uint64_t crl_number; /* its CRL number */
    uint64_t crl_gen;    /* the inventory's generation when it was last found current */
    bool crl_gen_known;
    char *roots_pem; /* root certificate(s) */
    char *chain_pem; /* issuing CA, then root */
    char *root_sha256;
    char *issuing_sha256;
    int64_t cert_not_before; /* the server certificate's validity */
    int64_t cert_not_after;
    char *cert_serial;
};

/* Which endpoint a request is for, for metrics and the audit log. */
struct careq {
    struct casrv *s;
    struct evhttp_request *req;
    const char *endpoint; /* "/v1/enroll", ... or "other" */
    bool tls;             /* came on the HTTPS listener */
    double t0;
    char peer[64];            /* "ADDR:PORT" */
    struct duet_identity *id; /* verified client certificate, or NULL */
    char *issued;             /* serial issued, or NULL */
    char *revoked;            /* serial revoked, or NULL */
    char *renews;             /* serial renewed, or NULL */
    bool grace_renewal;       /* renews an expired certificate within its profile's grace */
    int64_t expired_at;       /* then: when that certificate expired */
    const char *refusal;      /* error code of a refusal, or NULL */
    char detail[512];         /* its sentence, for the log */
};

/* --- server.c --- */
/*
 * Bring the CRL in memory up to date now (at start, after a revocation): the
 * newest one published in the inventory when it is current, else one signed
 * now (ca_crl_current).
 */
int caserver_crl_refresh(struct casrv *s, struct duet_err *err) MUST_CHECK;
/*
 * Before serving /crl and on the timer: refresh only when the inventory's
 * generation moved since the CRL was last found current (any process wrote:
 * a revocation, a CRL published by another node) or a third of its life is
 * left.  A failure is logged and the CRL in memory stays.
 */
void caserver_crl_check(struct casrv *s);
/* Wall-clock seconds, and a monotonic time in seconds for durations. */
int64_t caserver_now(void);
double caserver_mono(void);

/* --- request.c --- */
/* Start a request's context: endpoint, peer, verified identity (HTTPS). */
void caserver_req_begin(struct careq *r, struct casrv *s, struct evhttp_request *req,
                        const char *endpoint, bool tls);
/*
 * The audit line (ca_request) and request counter of a 200 OCSP answer the
 * plain listener's lean path sent: the fields req_finish() writes for it.
 */
void caserver_audit_ocsp(const char *method, const char *path, size_t path_len, const char *peer,
                         double t0);
/* Answer with a body (may be NULL) of a content type, log the audit line, count it, end. */
void caserver_reply(struct careq *r, int status, const char *ctype, const void *body, size_t len);
/* Answer a JSON object (taken) with status. */
void caserver_reply_json(struct careq *r, int status, json_t *obj);
/* Answer {"error": code, "detail": sentence} with status; counted as a refusal. */
void caserver_reply_error(struct careq *r, int status, const char *code, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* Whether the method is one of `allowed` (EVHTTP_REQ_* bits); else 405 has been answered. */
bool caserver_method_ok(struct careq *r, int allowed);
/*
 * Whether the request's framing is unambiguous: at most one Content-Length,
 * and not with a Transfer-Encoding; else 400 has been answered, closing the
 * connection.
 */
bool caserver_framing_ok(struct careq *r);
/*
 * Whether the body fits --max-body; else 413 has been answered.  Every
 * request is checked before its endpoint runs: libevent reads bodies up to
 * CASERVER_BODY_READ_FACTOR times that, so that this answer is the API's.
 */
bool caserver_body_size_ok(struct careq *r);
/* Why a request is refused: the HTTP status, the error code and its sentence. */
struct caserver_refusal {
    int status;
    const char *code;
    char detail[256];
};
/*
 * The decision on a /v1 request body of len bytes (no NUL needed) sent with
 * Content-Type ctype (may be NULL): the JSON object it is (the caller's), or
 * NULL with ref filled: 415 (not application/json), 413 (over max bytes),
 * 400 (not strict JSON, duplicate keys included, or not an object).  The
 * sentence never quotes the body: it may hold an enrollment token.
 */
json_t *caserver_json_body(const char *ctype, const char *body, size_t len, size_t max,
                           struct caserver_refusal *ref);
/* caserver_json_body() on the request; NULL after answering its refusal. */
json_t *caserver_body_json(struct careq *r);

/* --- api.c --- */
void caserver_api_ca(struct careq *r);
void caserver_api_enroll(struct careq *r);
void caserver_api_renew(struct careq *r);
void caserver_api_revoke(struct careq *r);

/* --- pub.c --- */
void caserver_pub_crl(struct careq *r, bool pem);
void caserver_pub_pem(struct careq *r, const char *pem);
void caserver_pub_ocsp(struct careq *r, const char *path);
/*
 * The DER of the request in GET /ocsp/{base64} (path: what follows "/ocsp/";
 * RFC 6960 A.1: base64, then URL encoding), malloc'd; false when it does not
 * decode.
 */
bool caserver_ocsp_get_der(const char *path, uint8_t **out, size_t *len);
/*
 * Answer one DER OCSP request (the cache, else a signature) into *resp
 * (malloc'd) and count it (requests by status, cache results, the duration
 * since t0).  -1 with err when no answer could be made (nothing counted).
 */
int caserver_ocsp_answer(struct casrv *s, const uint8_t *req, size_t len, double t0, uint8_t **resp,
                         size_t *resp_len, struct duet_err *err) MUST_CHECK;

/* --- leanocsp.c: OCSP on the plain listener without evhttp's request path --- */
/*
 * Watch a plain connection's first bytes (bev: the bufferevent evhttp is
 * given for it): from then on, OCSP requests are read and answered on the
 * lean path, and the connection is handed to evhttp, for good, at the first
 * request it does not read.  Out of memory: evhttp serves it all.
 */
void caserver_lean_watch(struct casrv *s, struct bufferevent *bev);
/*
 * The most a connection's input buffer holds of what its client sends while
 * evhttp writes an answer to it: evhttp keeps reading then (to notice a
 * close) but takes no request, so a client pipelining requests without
 * reading the answers would make the server hold all it sends.  Past this,
 * server.c stops reading the socket until evhttp has written the answer (and
 * reads again, as it always does before the next request); TCP holds the
 * rest at the client, and a client that never reads meets the write timeout.
 * Room for the longest request the lean path reads whole (LEANHTTP_MAX_HEAD
 * plus --max-body) and 64 KiB more.
 */
size_t caserver_input_max(const struct casrv *s);
/* Release the connections waiting for a batch and the batch event (before the loop is freed). */
void caserver_lean_stop(void);
void caserver_pub_healthz(struct careq *r);
void caserver_pub_metrics(struct careq *r);

/* --- conns.c: counting connections, --max-connections, accept() pauses --- */
/* Set up s->lst and the accept() pause timer (s->base made).  -1: out of memory. */
int caserver_conns_init(struct casrv *s, struct duet_err *err) MUST_CHECK;
/* l accepts on lev (bound to its evhttp): count, cap and pause it. */
void caserver_conns_listen(struct caserver_listener *l, struct evconnlistener *lev);
/*
 * Count the bufferevent evhttp gets for a connection l accepted (a TLS one,
 * or a plain socket one) until the connection ends; returns it.  At
 * --max-connections, l stops accepting.  NULL in, NULL out.
 */
struct bufferevent *caserver_conn_counted(struct caserver_listener *l, struct bufferevent *bev);
/* Before the evhttps are freed: never accept again, free the pause timer. */
void caserver_conns_stop(struct casrv *s);
/* Connections the kernel holds in l's accept queue, or -1 when unknown. */
long caserver_conns_waiting(const struct caserver_listener *l);

/* --- camet.c: counters for /metrics (one thread) --- */
/* Add delta to the counter `name` with `labels` ("a=\"x\",b=\"y\"", or "" for none). */
void caserver_metric_add(const char *name, const char *labels, double delta);
/* Record one OCSP answer's duration in the histogram. */
void caserver_metric_ocsp_duration(double seconds);
/* Prometheus text of every counter, the histogram and the gauges given. */
void caserver_metrics_write(FILE *out, const struct casrv *s, int64_t now);
/* Free the counters (at exit). */
void caserver_metrics_clear(void);

#endif
