/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspcheck.h - OCSP checking of client certificates in `duet proxy`
 * (--ocsp off|prefer|require, --ocsp-url, --ocsp-timeout, --ocsp-cache-size):
 * the cache of answers shared by the workers, the check of a response
 * (staple_check()'s, which names what was wrong), and the query a worker sends
 * without blocking its loop.
 *
 * Where the check runs: OpenSSL 3.0 honours SSL_set_retry_verify() only on
 * the client side of a handshake (on a server the verify callback's request is
 * ignored and the handshake completes), so the proxy asks right after the
 * handshake, before it reads a byte of the client's request or connects
 * upstream: the connection stays in its handshake state, its input is not
 * read, and the worker serves other connections until the answer (or
 * --ocsp-timeout) is in.  The same step runs for resumed sessions, so a
 * session resumed after its client was revoked is refused.
 *
 * Only the client's leaf certificate is checked; intermediates are left to
 * the CRLs.  The request is an RFC 5019 GET (SHA-1 CertID, no nonce), which
 * responders and HTTP caches can answer from a pre-signed response; the
 * response is trusted by its signature (the issuer or its delegated OCSP
 * signer), its CertID and its times, not by a nonce.
 */
#ifndef DUET_PROXY_OCSPCHECK_H
#define DUET_PROXY_OCSPCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "lib/err.h"

/*
 * Bytes of a cache key: the SHA-256 of the leaf certificate's DER, which
 * stands for its issuer and serial (the CertID) and is found without looking
 * for the issuer, whose signature check would cost more than the rest of a
 * cache hit.
 */
#define OCSP_KEY_LEN 32
/* Seconds an answer without nextUpdate is kept (RFC 6960 2.4: newer data is always available). */
#define OCSP_NO_NEXT_UPDATE_SECS 60
/* The oldest thisUpdate taken from a response without nextUpdate (seconds). */
#define OCSP_NO_NEXT_UPDATE_MAX_AGE 300
/* The largest response read from a responder. */
#define OCSP_MAX_RESPONSE 65536

/* What a responder said, as kept in the cache. */
struct ocsp_answer {
    int status;         /* V_OCSP_CERTSTATUS_GOOD, _REVOKED or _UNKNOWN */
    int reason;         /* revoked: the CRL reason code, or -1 */
    int64_t revoked_at; /* revoked: when */
    int64_t this_update;
    int64_t expires; /* the cache drops it at this time: nextUpdate, or a short while */
    int64_t checked; /* when the responder gave it (our clock): open connections are asked
                        about again once it is --ocsp-recheck old (ocsprecheck.c) */
};

/* --- the cache ------------------------------------------------------------------ */

struct ocsp_cache;
struct ocsp_result;

/* A cache of at most cap answers (cap >= 1), safe to share between threads; NULL: no memory. */
struct ocsp_cache *ocsp_cache_new(size_t cap);
/* Free a cache (NULL is fine). */
void ocsp_cache_free(struct ocsp_cache *c);
/*
 * The answer kept for key, if one is kept and has not expired at now (an
 * expired one is dropped).  A hit makes the entry the most recently used.
 */
bool ocsp_cache_get(struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN], int64_t now,
                    struct ocsp_answer *out);
/*
 * Keep an answer for key until a->expires (an answer already expired at now
 * is not kept), replacing the one kept before.  When the cache is full, the
 * least recently used entry goes.
 */
void ocsp_cache_put(struct ocsp_cache *c, const uint8_t key[OCSP_KEY_LEN],
                    const struct ocsp_answer *a, int64_t now);
/* Entries kept now (expired ones included until they are looked up or evicted). */
size_t ocsp_cache_len(struct ocsp_cache *c);

/*
 * The issuers of client certificates seen in full handshakes (the chain a
 * client sends is not kept in its session), so that a resumed session's leaf
 * can be asked about: at most OCSP_MAX_ISSUERS, the first ones seen.
 * ocsp_cache_add_issuer() takes its own reference; ocsp_cache_find_issuer()
 * returns a new one (X509_free it) or NULL.
 */
#define OCSP_MAX_ISSUERS 256
void ocsp_cache_add_issuer(struct ocsp_cache *c, X509 *issuer);
X509 *ocsp_cache_find_issuer(struct ocsp_cache *c, X509 *leaf);

/*
 * The issuer a query about leaf names, with a reference (X509_free it):
 * found in verified (the chain its handshake verified, or NULL; remembered
 * for its resumed sessions) or anchors (--cacert), else among the issuers of
 * earlier verified chains.  NULL, with *res filled (ERROR "no_issuer"), when
 * none is.
 */
X509 *ocsp_issuer_get1(struct ocsp_cache *c, X509 *leaf, STACK_OF(X509) * verified,
                       STACK_OF(X509) * anchors, struct ocsp_result *res);

/* The cache key of leaf; false when OpenSSL fails. */
bool ocsp_cache_key(X509 *leaf, uint8_t key[OCSP_KEY_LEN]);

/* --- responses ------------------------------------------------------------------ */

/*
 * Check a response (DER) about leaf, issued by issuer, at now, as
 * staple_check() does (signer the issuer or its delegated OCSP signer,
 * CertID, thisUpdate at most STAPLE_CLOCK_SKEW ahead, nextUpdate not passed),
 * and say what it answers: 0 with *out filled for good, revoked or unknown
 * (a revoked answer from the right signer holds whatever its times; a good
 * one without nextUpdate expires OCSP_NO_NEXT_UPDATE_SECS after now).
 * Otherwise -1 with code (not_ocsp, unsuccessful, bad_signature,
 * unknown_signer, wrong_certificate, not_yet_valid, expired) and why, a
 * sentence naming what was expected.
 */
int ocsp_evaluate(const unsigned char *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
                  struct ocsp_answer *out, char *code, size_t clen, char *why, size_t wlen);

/*
 * The responder to ask about leaf: override when given, else the first
 * http:// OCSP URL of its authorityInfoAccess.  *url is the caller's (free);
 * false with *url NULL when there is none.
 */
bool ocsp_responder_of(X509 *leaf, const char *override, char **url);

/* --- queries on a worker's loop --------------------------------------------------- */

enum ocsp_result_kind {
    OCSP_R_GOOD = 0,
    OCSP_R_REVOKED,
    OCSP_R_UNKNOWN,
    OCSP_R_ERROR,
    OCSP_R_TIMEOUT,
};

/* The outcome of a check: what the responder said, or what went wrong. */
struct ocsp_result {
    enum ocsp_result_kind kind;
    struct ocsp_answer answer; /* GOOD, REVOKED, UNKNOWN */
    bool cached;               /* from the cache, no query sent */
    char code[32];             /* ERROR: what failed (connect, http_status, not_ocsp, ...) */
    char why[700];             /* ERROR, TIMEOUT, UNKNOWN: a sentence */
    char url[300];             /* the responder (may be cut), or "" when there is none */
};

/* The words of a result kind, the `result` label of duet_ocsp_queries_total. */
const char *ocsp_result_name(enum ocsp_result_kind k);

struct ocsp_worker;
struct ocsp_waiter;

/* Called once with the outcome on the worker's loop, unless the waiter was cancelled. */
typedef void (*ocsp_done_fn)(void *arg, const struct ocsp_result *r);

/* What one check needs. */
struct ocsp_ask {
    struct event_base *base;  /* the worker's loop */
    struct ocsp_cache *cache; /* shared */
    const char *listener;     /* for logs and metrics */
    const char *url;          /* --ocsp-url, or NULL: the leaf's AIA */
    int timeout_ms;           /* the whole query: connect, send, answer */
    X509 *leaf, *issuer;      /* borrowed for the call; issuer: ocsp_check_begin only */
};

/*
 * The cached answer about ask->leaf, counted as a cache hit: true with *res
 * filled (GOOD or REVOKED; the responder's URL only for REVOKED, for the
 * refusal), false when nothing is cached.
 */
bool ocsp_check_cached(const struct ocsp_ask *ask, struct ocsp_result *res);

/*
 * Ask about leaf's status (after ocsp_check_cached() found nothing).  Returns
 * 1 when the outcome is known at once (no responder, an error before
 * sending) with *res filled; 0 when a query is in flight (or one for the same
 * certificate was already, on this worker: it is shared), and
 * done(arg, result) runs once it ends; *wt then names the wait for
 * ocsp_waiter_cancel().  *ow is the worker's query state, made on first use.
 */
int ocsp_check_begin(struct ocsp_worker **ow, const struct ocsp_ask *ask, ocsp_done_fn done,
                     void *arg, struct ocsp_waiter **wt, struct ocsp_result *res);
/*
 * The waiting connection goes away: its callback will not run.  The query
 * goes on for the others (and the cache).  NULL is fine.
 */
void ocsp_waiter_cancel(struct ocsp_waiter *wt);

/*
 * The health of a listener's responders, for /readyz: the queries that failed
 * (error or timeout) since the last one answered (good, revoked or unknown),
 * and the reason of the last failure (cut to len).  0 for a listener that
 * never asked, or whose last query was answered.
 */
#define OCSP_UNREADY_FAILURES 3
int ocsp_failures(const char *listener, char *last, size_t len);

/*
 * The sentence of a refusal for a revoked answer about leaf: "certificate
 * LABEL was revoked on DATE (reason: R) by the OCSP responder URL".
 */
void ocsp_revoked_why(X509 *leaf, const struct ocsp_result *res, char *why, size_t len);

/* Metrics of a check that needed no query (a cache hit). */
void ocsp_count_cache_hit(const char *listener);

#endif
